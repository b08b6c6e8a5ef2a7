/*
 * slab: a small-record allocator for the tracker's per-entry reference
 * blobs. Sizes are rounded to 8 bytes and served from per-size free lists
 * carved out of 2 MiB chunks, so a 50-byte record costs 56 bytes, not the
 * 64-80 a general-purpose malloc spends on it. Large records go to malloc.
 * Nothing here fails: it aborts when memory runs out (xmalloc).
 */
#ifndef SBOMD_CORE_SLAB_H
#define SBOMD_CORE_SLAB_H

#include <stddef.h>

typedef struct slab slab;

slab *slab_new(void);
/* Frees every chunk at once (records need not be released first). */
void slab_free(slab *s);

/* n > 0 bytes, 8-byte aligned. */
void *slab_alloc(slab *s, size_t n);
/* Releases p, which slab_alloc returned for the same n. */
void slab_release(slab *s, void *p, size_t n);

/* Bytes handed out now (rounded sizes), for metrics and tests. */
size_t slab_in_use(const slab *s);

#endif
