/*
 * xmalloc: allocation that never returns NULL.
 *
 * Out-of-memory is decided once, here: the process aborts with the size it
 * asked for. Sizes that come from outside must be bounded by the caller
 * before they reach these functions; xcalloc and xreallocarray also refuse
 * a count*size product that overflows.
 */
#ifndef SBOMD_UTIL_XMALLOC_H
#define SBOMD_UTIL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
