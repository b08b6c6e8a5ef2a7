/*
 * blob: the variable-size part of a tracker entry, one slab record per
 * entry: the host name (hosts only), the last error, and one record per
 * source (node) holding the tags and digests it reported. Sources are
 * kept sorted by name, so the store's record encoding of an entry is
 * canonical. Source names are strtab ids: each source record holds one
 * reference on its name (taken by the caller when it adds the record,
 * dropped by blob_discard); the pool compares their text when it places
 * a new source.
 *
 * A blob is rebuilt whole on every change (blob_rebuild): changes are
 * rare next to lookups, and one contiguous record keeps a lookup to one
 * cache miss after the entry's.
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
 * record of source id replaced by a new one (when new_src; inserted in
 * name order if absent) or removed (when drop_src).
 */
struct blob_edit {
	bool err_set;
	const char *err;	/* err_set: the new error, errlen bytes */
	size_t errlen;
	bool new_src;
	bool drop_src;
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
/* Releases a blob (NULL is ignored). */
void blob_release(blob_pool *p, uint8_t *b);
/* Releases a blob and the name reference of each of its source records. */
void blob_discard(blob_pool *p, uint8_t *b);
/* Replaces *b by a new blob with the edit applied; the old one is released. */
void blob_rebuild(blob_pool *p, uint8_t **b, const struct blob_edit *ed);

/* The host name (namelen bytes, "" for images) and the last error. */
const char *blob_name(const uint8_t *b, size_t *namelen);
const char *blob_error(const uint8_t *b, size_t *errlen);
/* The number of source records, holding or not. */
size_t blob_nsrc(const uint8_t *b);

/*
 * Walking the source records in name order:
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
