/*
 * slab: size classes of 8 bytes up to SLAB_MAX; each class keeps an
 * intrusive free list (the first word of a free record points to the next).
 * New records are cut from the current 2 MiB chunk; chunks are kept until
 * slab_free, so memory is bounded by the peak number of live records, and
 * freed records are reused by the next allocation of their class.
 *
 * Single-threaded: owned by the tracker, on the engine thread.
 */
#include "core/slab.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/xmalloc.h"

#define SLAB_GRAIN 8
#define SLAB_MAX 1024
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN)
#define SLAB_CHUNK (2u << 20) /* huge-page backed */

struct chunk {
	struct chunk *next;
	/* records follow, 8-byte aligned */
};

struct slab {
	void *free_list[SLAB_CLASSES + 1];
	struct chunk *chunks;
	char *cur, *end; /* unused space of the newest chunk */
	size_t in_use;
};

slab *
slab_new(void)
{
	return xcalloc(1, sizeof(slab));
}

void
slab_free(slab *s)
{
	if (s == NULL)
		return;
	while (s->chunks != NULL) {
		struct chunk *next = s->chunks->next;
		xunmap_huge(s->chunks, SLAB_CHUNK);
		s->chunks = next;
	}
	free(s);
}

static size_t
slab_class(size_t n)
{
	return (n + SLAB_GRAIN - 1) / SLAB_GRAIN;
}

void *
slab_alloc(slab *s, size_t n)
{
	if (n > SLAB_MAX)
		return xmalloc(n);
	size_t c = slab_class(n ? n : 1);
	size_t sz = c * SLAB_GRAIN;
	s->in_use += sz;
	if (s->free_list[c] != NULL) {
		void *p = s->free_list[c];
		s->free_list[c] = *(void **)p;
		return p;
	}
	if ((size_t)(s->end - s->cur) < sz) {
		/* The tail of the old chunk (< SLAB_MAX) goes to its class. */
		size_t rest = (size_t)(s->end - s->cur);
		if (rest >= SLAB_GRAIN) {
			size_t rc = rest / SLAB_GRAIN;
			*(void **)s->cur = s->free_list[rc];
			s->free_list[rc] = s->cur;
		}
		struct chunk *ch = xmap_huge(SLAB_CHUNK, s->chunks != NULL);
		ch->next = s->chunks;
		s->chunks = ch;
		s->cur = (char *)ch + sizeof(struct chunk);
		s->end = (char *)ch + SLAB_CHUNK;
	}
	void *p = s->cur;
	s->cur += sz;
	return p;
}

void
slab_release(slab *s, void *p, size_t n)
{
	if (p == NULL)
		return;
	if (n > SLAB_MAX) {
		free(p);
		return;
	}
	size_t c = slab_class(n ? n : 1);
	s->in_use -= c * SLAB_GRAIN;
	*(void **)p = s->free_list[c];
	s->free_list[c] = p;
}

size_t
slab_in_use(const slab *s)
{
	return s->in_use;
}
