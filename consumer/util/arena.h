/*
 * arena: a bump allocator for short-lived bytes that are freed together
 * (the strings of one poll batch, the refs of one outcome). Blocks of at
 * least 1 MiB; nothing allocated is ever moved, so pointers stay valid
 * until arena_reset. One thread at a time.
 */
#ifndef SBOMD_UTIL_ARENA_H
#define SBOMD_UTIL_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head; /* newest block first; NULL when empty */
};

/* n bytes, 8-byte aligned; aborts when memory runs out (xmalloc). */
void *arena_alloc(struct arena *a, size_t n);
/* A NUL-terminated copy of s[0..len). */
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* Forgets everything allocated; keeps the newest block for reuse. */
void arena_reset(struct arena *a);
/* Frees every block; the arena is empty and reusable. */
void arena_free(struct arena *a);

#endif
