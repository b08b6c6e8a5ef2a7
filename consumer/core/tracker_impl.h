/*
 * tracker_impl: the tracker's insides, shared by the two files of the
 * module: tracker.c (entries and the state machine) and tracker_record.c
 * (their durable records). Nothing else includes this header. It holds
 * types and small inline helpers only; every function declared for other
 * modules is in tracker.h or tracker_record.h.
 *
 * Memory layout, for a million tracked images:
 *  - entries live in a chunked pool indexed by a 32-bit handle (72 bytes
 *    each: key, two times, the blob pointer, partition, generation,
 *    attempts, kind, state+flags); freed handles are reused (the most
 *    recently freed first). Handles exist in memory only: the store keys
 *    records by (partition, entity key);
 *  - the map stores {hash, handle} (8 bytes a slot, load <= 3/4);
 *  - the heap stores {due, handle, seq} (16 bytes) plus 4 bytes of
 *    position per handle; the heap's due time is the only copy of an
 *    entry's next due time;
 *  - everything of variable size (host name, last error, per-source
 *    records with their tags and digests) is one blob per entry (blob.h).
 *    Source names are interned (strtab) and referenced by id; each source
 *    record holds one reference on its name.
 *  About 150 bytes per image with one source and one tag.
 */
#ifndef SBOMD_CORE_TRACKER_IMPL_H
#define SBOMD_CORE_TRACKER_IMPL_H

#include <string.h>

#include "core/blob.h"
#include "core/dueheap.h"
#include "core/idmap.h"
#include "core/srcidx.h"
#include "core/strtab.h"
#include "core/tracker.h"
#include "util/xmalloc.h"

#define FLAG_STATE 0x07u
#define FLAG_LIVE 0x08u
#define FLAG_DIRTY 0x10u /* handle is in the dirty list */

#define POOL_SHIFT 15 /* 32768 entries: 2 MiB chunks, huge-page backed */
#define POOL_CHUNK (1u << POOL_SHIFT)

struct entry {
	uint8_t key[TRACKER_KEY_LEN];
	int64_t first_seen;
	int64_t last_scan; /* -1 before the first finished scan */
	uint8_t *blob;	   /* blob.h; NULL while the handle is free */
	int32_t partition; /* input partition of the last event applied */
	uint32_t generation; /* scan cycle, >= 1 (tracker.h) */
	uint16_t attempts; /* failed attempts in a row, saturating */
	uint8_t kind;
	uint8_t flags; /* state | FLAG_LIVE | FLAG_DIRTY */
};

#define POOL_CHUNK_BYTES ((size_t)POOL_CHUNK * sizeof(struct entry))

struct tracker {
	struct tracker_config cfg;
	struct entry **chunks;
	size_t nchunks;
	uint32_t nhandles; /* handles ever used */
	uint32_t *free_handles;
	size_t nfree, freecap;
	size_t count;
	size_t state_count[ENTRY_STATE_COUNT];

	idmap *map;
	dueheap *heap;
	blob_pool *blobs;
	strtab *sources;
	srcidx *srcx; /* the source records of entries with many (srcidx.h) */
	struct tracker_stats stats;

	uint32_t *dirty;
	size_t ndirty, dirtycap;
	struct tracker_del *deleted; /* (partition, key)s whose records go */
	size_t ndeleted, deletedcap;

	/* scratch, reused between calls */
	struct blob_ref tags[TRACKER_MAX_REFS], digests[TRACKER_MAX_REFS];
	char errbuf[TRACKER_MAX_ERROR + 1];
};

static inline struct entry *
entry_at(const tracker *t, uint32_t h)
{
	return &t->chunks[h >> POOL_SHIFT][h & (POOL_CHUNK - 1)];
}

static inline enum entry_state
entry_state(const struct entry *e)
{
	return (enum entry_state)(e->flags & FLAG_STATE);
}

static inline bool
entry_is_live(const tracker *t, uint32_t h)
{
	return h < t->nhandles && (entry_at(t, h)->flags & FLAG_LIVE);
}

static inline void
entry_set_state(tracker *t, struct entry *e, enum entry_state s)
{
	t->state_count[entry_state(e)]--;
	t->state_count[s]++;
	e->flags = (uint8_t)((e->flags & ~FLAG_STATE) | s);
}

/* The map's hash of a key: image keys are uniform already. */
static inline uint32_t
key_hash(uint8_t kind, const uint8_t *bytes)
{
	uint32_t h;
	memcpy(&h, bytes, sizeof(h));
	return h ^ (kind * 0x9e3779b1u);
}

/* Makes handles below n usable (the pool grows by whole chunks), then
 * makes the free entry at handle h live and QUEUED, generation 1,
 * never scanned, all else zero. */
static inline struct entry *
entry_claim(tracker *t, uint32_t h)
{
	if (h >= t->nhandles)
		t->nhandles = h + 1;
	size_t need = ((size_t)t->nhandles + POOL_CHUNK - 1) >> POOL_SHIFT;
	if (need > t->nchunks) {
		t->chunks = xreallocarray(t->chunks, need, sizeof(*t->chunks));
		for (; t->nchunks < need; t->nchunks++)
			t->chunks[t->nchunks] = xmap_huge(POOL_CHUNK_BYTES,
			    t->nchunks > 0);
	}
	struct entry *e = entry_at(t, h);
	uint8_t dirty = e->flags & FLAG_DIRTY;
	memset(e, 0, sizeof(*e));
	e->flags = (uint8_t)(FLAG_LIVE | dirty | ENTRY_QUEUED);
	e->last_scan = -1;
	e->generation = 1;
	t->state_count[ENTRY_QUEUED]++;
	t->count++;
	return e;
}

/* Appends (partition, key) to the deleted list. */
static inline void
deleted_push(tracker *t, int32_t partition, uint8_t kind, const uint8_t *key)
{
	if (t->ndeleted == t->deletedcap) {
		t->deletedcap = t->deletedcap ? t->deletedcap * 2 : 256;
		t->deleted = xreallocarray(t->deleted, t->deletedcap,
		    sizeof(*t->deleted));
	}
	struct tracker_del *d = &t->deleted[t->ndeleted++];
	d->partition = partition;
	d->key.kind = kind;
	memcpy(d->key.bytes, key, TRACKER_KEY_LEN);
}

/* Appends handle h to a growing array of handles. */
static inline void
handles_push(uint32_t **v, size_t *n, size_t *cap, uint32_t h)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = h;
}

/* Marks live handle h dirty (once). */
static inline void
mark_dirty(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	if (e->flags & FLAG_DIRTY)
		return;
	e->flags |= FLAG_DIRTY;
	handles_push(&t->dirty, &t->ndirty, &t->dirtycap, h);
}

/* A new live entry at a free handle (the most recently freed first). */
static inline uint32_t
entry_alloc(tracker *t)
{
	uint32_t h = t->nfree > 0 ? t->free_handles[--t->nfree] :
	    t->nhandles;
	entry_claim(t, h);
	return h;
}

/* Whether an entry whose blob is b has its sources in t->srcx. */
static inline bool
blob_indexed(const uint8_t *b)
{
	return blob_nsrc(b) > SRCIDX_MIN;
}

/* Puts (or takes, when del) every source record of entry h, blob b,
 * into (out of) the source index. */
static inline void
srcidx_entry(tracker *t, uint32_t h, const uint8_t *b, bool del)
{
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct blob_src r;
		size_t at = off;
		off = blob_src_next(b, off, &r);
		if (del)
			srcidx_del(t->srcx, h, r.id);
		else
			srcidx_put(t->srcx, h, r.id, (uint32_t)at);
	}
}

/* Takes live entry h out of memory (blob, heap, map, counters) and frees
 * its handle. Its dirty mark stays with the handle: the dirty list may
 * hold it, and a reuse of the handle is then written once. */
static inline void
entry_drop(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	struct tracker_key key;
	key.kind = e->kind;
	memcpy(key.bytes, e->key, TRACKER_KEY_LEN);
	if (blob_indexed(e->blob))
		srcidx_entry(t, h, e->blob, true);
	blob_discard(t->blobs, e->blob);
	e->blob = NULL;
	dueheap_remove(t->heap, h);
	idmap_remove(t->map, key_hash(key.kind, key.bytes), &key);
	t->state_count[entry_state(e)]--;
	t->count--;
	e->flags &= FLAG_DIRTY;
	handles_push(&t->free_handles, &t->nfree, &t->freecap, h);
}

#endif
