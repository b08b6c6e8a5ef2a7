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

#include <stdbool.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* A copy of at most n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);

/*
 * Asks the kernel to back the 2 MiB-aligned interior of [p, p+len) with
 * transparent huge pages. For the tracker's large arrays, whose first
 * touch would otherwise cost one page fault per 4 KiB. A hint: harmless
 * where huge pages are off.
 */
void mem_hint_huge(void *p, size_t len);

/*
 * len bytes (a multiple of 2 MiB) of zeroed memory mapped straight from
 * the kernel, 2 MiB-aligned and, when huge is set, hinted for huge pages:
 * nothing is touched (or zeroed by us) until used. Aborts when out of
 * memory. Release with xunmap_huge(p, len). Callers hint only from their
 * second chunk on, so that small users (and tests that make thousands of
 * them) do not pay for zeroing whole huge pages.
 */
void *xmap_huge(size_t len, bool huge);
void xunmap_huge(void *p, size_t len);

#endif
