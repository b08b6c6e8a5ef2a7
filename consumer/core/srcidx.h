/*
 * srcidx: where the record of source sid sits in the blob of entry
 * handle, for entries with many sources (the tracker indexes an entry
 * once it has more than SRCIDX_MIN sources; below that a walk over the
 * blob is as fast). One open-addressing table for the whole tracker,
 * keyed by (handle, sid): finding, adding and removing a source are O(1)
 * expected. The tracker keeps it in step with the blobs: every record of
 * an indexed entry is in the table with its offset, nothing else is.
 *
 * Nothing here fails (xmalloc aborts). Single-threaded: the tracker owns
 * it.
 */
#ifndef SBOMD_CORE_SRCIDX_H
#define SBOMD_CORE_SRCIDX_H

#include <stddef.h>
#include <stdint.h>

#define SRCIDX_MIN 16
#define SRCIDX_NONE UINT32_MAX

typedef struct srcidx srcidx;

srcidx *srcidx_new(void);
void srcidx_free(srcidx *x);

/* The offset of (handle, sid), or SRCIDX_NONE. */
uint32_t srcidx_get(const srcidx *x, uint32_t handle, uint32_t sid);
/* Sets the offset of (handle, sid), adding the key when absent. */
void srcidx_put(srcidx *x, uint32_t handle, uint32_t sid, uint32_t off);
/* Removes (handle, sid) when present. */
void srcidx_del(srcidx *x, uint32_t handle, uint32_t sid);
/* The number of keys. */
size_t srcidx_count(const srcidx *x);

#endif
