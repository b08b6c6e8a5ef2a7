/*
 * errbuf: filling a caller's `char *err, size_t errlen`, the last two
 * parameters of every function at a boundary (config, Avro, Kafka, image
 * stores, scanners, the store); see docs/architecture.md "Conventions".
 */
#ifndef SBOMD_UTIL_ERRBUF_H
#define SBOMD_UTIL_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* printf into err (truncating); nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a va_list, for functions that take a format themselves. */
void errbuf_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
