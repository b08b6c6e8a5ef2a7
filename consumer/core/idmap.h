/*
 * idmap: the digest-keyed hash map of the tracker. Open addressing, linear
 * probing, backward-shift deletion (no tombstones).
 *
 * The map stores 32-bit handles, not keys: the owner keeps the keys and
 * answers "does handle h have this key?" through the eq callback, which is
 * called only when the stored 32-bit hash matches, so almost never for a
 * wrong handle.
 *
 * Nothing here fails (memory comes from xmalloc, which aborts); only
 * idmap_check reports an error.
 */
#ifndef SBOMD_CORE_IDMAP_H
#define SBOMD_CORE_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDMAP_NONE UINT32_MAX

typedef struct idmap idmap;

/* True when the handle's key equals key (an owner-defined object). */
typedef bool (*idmap_eq_fn)(void *ctx, uint32_t handle, const void *key);

idmap *idmap_new(idmap_eq_fn eq, void *ctx);
void idmap_free(idmap *m);

/* The handle stored under key (whose hash is hash), or IDMAP_NONE. */
uint32_t idmap_find(const idmap *m, uint32_t hash, const void *key);

/*
 * Hints for batch lookups: start loading the slot where hash lives, and
 * name the first handle stored with that hash (without comparing keys: it
 * may be wrong, or IDMAP_NONE), so the caller can prefetch its entry.
 */
void idmap_prefetch(const idmap *m, uint32_t hash);
uint32_t idmap_peek(const idmap *m, uint32_t hash);

/* Adds handle under hash; the key must not be present already. */
void idmap_insert(idmap *m, uint32_t hash, uint32_t handle);

/* Removes and returns the handle stored under key, or IDMAP_NONE. */
uint32_t idmap_remove(idmap *m, uint32_t hash, const void *key);

/* Makes room for n handles without growing again. */
void idmap_reserve(idmap *m, size_t n);

size_t idmap_count(const idmap *m);
size_t idmap_capacity(const idmap *m);
/* The longest probe sequence now in the table (slots from home). */
size_t idmap_max_probe(const idmap *m);

/*
 * Checks every invariant (count, no empty slot between an element and its
 * home, each handle found by its own hash): 0, or -EINVAL with what is
 * wrong in err.
 */
int idmap_check(const idmap *m, char *err, size_t errlen);

#endif
