/*
 * tarbuf: an in-memory byte buffer that libarchive's writer can fill, for
 * the tests that build layers and image archives (test_layers,
 * test_imagestore). Include after <cmocka.h> and <archive.h>.
 */
#ifndef SBOMD_TESTS_TARBUF_H
#define SBOMD_TESTS_TARBUF_H

#include <stdlib.h>
#include <string.h>

enum filt { F_NONE, F_GZIP, F_ZSTD };

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static inline void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* archive_write_open's write callback: appends to the struct buf. */
static inline la_ssize_t
buf_write_cb(struct archive *a, void *ctx, const void *p, size_t n)
{
	(void)a;
	buf_add(ctx, p, n);
	return (la_ssize_t)n;
}

#endif
