/*
 * blob: the variable-size part of a tracker entry, one slab record per
 * entry: the host name (hosts only), the last error, and one record per
 * source (node) holding the tags and digests it reported. Sources are
 * kept in the order they were added (the store's record encoding sorts
 * them by name, so it stays canonical: blob_sources_sorted). Source names
 * are strtab ids: each source record holds one reference on its name
 * (taken by the caller when it adds the record, dropped by blob_discard
 * and blob_prune).
 *
 * One contiguous record keeps a lookup to one cache miss after the
 * entry's. A blob has room to grow: adding a source appends its record
 * (blob_append_src), the blob doubling when it is full, so adding the
 * n-th source costs amortised O(1), not a copy of the n before it. Other
 * changes (the error, a source's refs) rewrite the record in place when
 * its size stays, else rebuild the blob (blob_rebuild, O(size)). Finding
 * a source is a walk over the records (blob_find_src); the tracker keeps
 * an index (srcidx.h) for entities with many sources.
 *
 * Nothing here fails: memory comes from the slab and xmalloc, which
 * abort when it runs out. Single-threaded: the tracker owns its pool.
 */
#ifndef SBOMD_CORE_BLOB_H
#define SBOMD_CORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strtab.h"

typedef struct blob_pool blob_pool;

/* A string that is not NUL-terminated (a tag, a digest). */
struct blob_ref {
	const char *s;
	size_t len;
};

/* A decoded source record inside a blob. */
struct blob_src {
	uint32_t id;		/* the source name's strtab id */
	int64_t observed;	/* newest observed_at seen from the source */
	bool holding;		/* SET (true) or UNSET (false) */
	uint8_t ntags, ndigests;
	const uint8_t *refs;	/* tags then digests: read with blob_ref_next */
	size_t off, size;	/* the whole record within the blob */
};

/*
 * A change for blob_rebuild: the error replaced (when err_set), and the
 * record of source id replaced by a new one (when new_src; added at the
 * end if absent).
 */
struct blob_edit {
	bool err_set;
	const char *err;	/* err_set: the new error, errlen bytes */
	size_t errlen;
	bool new_src;
	uint32_t id;
	int64_t observed;
	bool holding;
	size_t ntags, ndigests;
	const struct blob_ref *tags, *digests;
};

/* A pool whose source ids name strings of names (not owned). */
blob_pool *blob_pool_new(strtab *names);
/* Frees the pool; live blobs must have been released (large ones come
 * from malloc, not from the pool's chunks). */
void blob_pool_free(blob_pool *p);

/* A blob with name[0..namelen) (at most 255 bytes), no error, no source. */
uint8_t *blob_new(blob_pool *p, const char *name, size_t namelen);
/* The blob's size in bytes (what it holds, not its capacity). */
size_t blob_used(const uint8_t *b);
/* The number of source records holding the entity. */
size_t blob_nhold(const uint8_t *b);
/* The size of the record ed would add (ed->new_src). */
size_t blob_src_size(const struct blob_edit *ed);
/* Appends the record of ed (ed->new_src; source ed->id must have none
 * yet), growing *b when it is full: amortised O(1). Returns the new
 * record's offset. */
size_t blob_append_src(blob_pool *p, uint8_t **b, const struct blob_edit *ed);
/* Drops records that do not hold the entity, the lowest observed_at
 * first (ties: the lowest id), except the record of source keep (may be
 * UINT32_MAX): at least k of them, and more until they freed at least
 * bytes bytes (as many as there are at most), releasing their name
 * references. Returns how many went. O(n log n). */
size_t blob_prune(blob_pool *p, uint8_t **b, size_t k, size_t bytes,
    uint32_t keep);
/* The bytes held by records that do not hold the entity, except keep's. */
size_t blob_unheld_bytes(const uint8_t *b, uint32_t keep);
/* Releases a blob (NULL is ignored). */
void blob_release(blob_pool *p, uint8_t *b);
/* Releases a blob and the name reference of each of its source records. */
void blob_discard(blob_pool *p, uint8_t *b);
/* Applies the edit: in place when the sizes allow it, else *b is
 * replaced by a new blob and the old one released. A new source (absent
 * before) is added at the end. */
void blob_rebuild(blob_pool *p, uint8_t **b, const struct blob_edit *ed);

/* The host name (namelen bytes, "" for images) and the last error. */
const char *blob_name(const uint8_t *b, size_t *namelen);
const char *blob_error(const uint8_t *b, size_t *errlen);
/* The number of source records, holding or not. */
size_t blob_nsrc(const uint8_t *b);

/*
 * Walking the source records (in the order they were added):
 *   for (size_t i = 0, off = blob_src_first(b); i < blob_nsrc(b); i++)
 *           off = blob_src_next(b, off, &r);
 */
size_t blob_src_first(const uint8_t *b);
/* Decodes the record at off into *r; returns the offset after it. */
size_t blob_src_next(const uint8_t *b, size_t off, struct blob_src *r);
/* Every record decoded into the pool's scratch array (*out, valid until
 * the next call on the pool); returns their number. */
size_t blob_sources(blob_pool *p, const uint8_t *b,
    const struct blob_src **out);
/* The same, sorted by source name (bytes, then length): O(n log n). */
size_t blob_sources_sorted(blob_pool *p, const uint8_t *b,
    const struct blob_src **out);
/* The record at offset off (from blob_append_src or a walk). */
void blob_src_at(const uint8_t *b, size_t off, struct blob_src *r);

/* Whether some source holds the entity. */
bool blob_referenced(const uint8_t *b);
/* Whether source id has a record; if so *r is filled. */
bool blob_find_src(const uint8_t *b, uint32_t id, struct blob_src *r);
/* Advances the observed_at of the record r (found in b) in place. */
void blob_set_observed(uint8_t *b, const struct blob_src *r,
    int64_t observed);
/* Whether the record holds exactly these (sorted, distinct) refs. */
bool blob_refs_equal(const struct blob_src *r, size_t ntags,
    const struct blob_ref *tags, size_t ndigests,
    const struct blob_ref *digests);

/* Reads one ref at p (within a record's refs); returns the next one. */
const uint8_t *blob_ref_next(const uint8_t *p, const char **s, size_t *len);

#endif
