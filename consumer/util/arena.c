/*
 * arena: see arena.h. A list of blocks, newest first; an allocation that
 * does not fit the newest block opens a new one of max(n, 1 MiB). Reset
 * keeps only the newest block, so a steady workload settles on one
 * block and allocates nothing.
 */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define ARENA_BLOCK (1u << 20)

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	_Alignas(8) char data[];
};

void *
arena_alloc(struct arena *a, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct arena_block) - 8)
		abort(); /* no caller asks for this; sizes are bounded */
	n = (n + 7) & ~(size_t)7;
	struct arena_block *b = a->head;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + cap);
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
arena_reset(struct arena *a)
{
	if (a->head == NULL)
		return;
	struct arena_block *b = a->head->next;
	while (b != NULL) {
		struct arena_block *nx = b->next;
		free(b);
		b = nx;
	}
	a->head->next = NULL;
	a->head->used = 0;
}

void
arena_free(struct arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
}
