/*
 * textbuf: see textbuf.h. Capacity doubles; vsnprintf writes in place and
 * is retried once with the room it asked for.
 */
#include "util/textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

static void
reserve(struct textbuf *b, size_t more)
{
	if (b->cap - b->len > more)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= more)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void
textbuf_printf(struct textbuf *b, const char *fmt, ...)
{
	va_list ap;
	reserve(b, 0);
	va_start(ap, fmt);
	int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		reserve(b, (size_t)n);
		va_start(ap, fmt);
		(void)vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
textbuf_append(struct textbuf *b, const char *s, size_t n)
{
	reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
textbuf_append_html(struct textbuf *b, const char *s)
{
	reserve(b, 0);
	for (; s != NULL && *s != '\0'; s++) {
		const char *r;
		switch (*s) {
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '&': r = "&amp;"; break;
		case '"': r = "&quot;"; break;
		case '\'': r = "&#39;"; break;
		default:
			textbuf_append(b, s, 1);
			continue;
		}
		textbuf_append(b, r, strlen(r));
	}
}

char *
textbuf_take(struct textbuf *b, size_t *len)
{
	reserve(b, 0);
	char *p = b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
textbuf_free(struct textbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
