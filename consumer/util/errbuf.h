/*
 * errbuf: filling a caller's `char *err, size_t errlen` (the boundary
 * modules' error convention, STYLE.md 3).
 */
#ifndef SBOMD_UTIL_ERRBUF_H
#define SBOMD_UTIL_ERRBUF_H

#include <stddef.h>

/* printf into err; nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
