/*
 * textbuf: a growing, always NUL-terminated text buffer (metrics text,
 * the status page). One thread at a time; aborts when memory runs out.
 */
#ifndef SBOMD_UTIL_TEXTBUF_H
#define SBOMD_UTIL_TEXTBUF_H

#include <stddef.h>

struct textbuf {
	char *data; /* NULL until the first append, then NUL-terminated */
	size_t len, cap;
};

void textbuf_printf(struct textbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void textbuf_append(struct textbuf *b, const char *s, size_t n);
/* s with & < > " ' written as HTML character references. */
void textbuf_append_html(struct textbuf *b, const char *s);
/* Hands the text to the caller (never NULL; free it); b is empty. */
char *textbuf_take(struct textbuf *b, size_t *len);
void textbuf_free(struct textbuf *b);

#endif
