/*
 * layercache: the per-layer catalog cache. What the layer walk extracted
 * from a layer (its delta: the wanted files, the whiteouts and opaque
 * directories that touch them, scan/oci/layers.h) is kept on disk under
 * the layer's diffID (the SHA-256 of its uncompressed tar stream), so an
 * image whose layers are all known is catalogued without reading any
 * layer, and a registry pull fetches only the layers it does not know.
 *
 * A delta is stored only after the layer's blob was verified against its
 * digest (the caller's duty: blob.c). The diffID is the image config's
 * word until the uncompressed stream is hashed, which costs a SHA-256 of
 * the whole tar stream (as much CPU as the inflating): so an entry is
 * either verified (read from a stream that hashed to its diffID: it
 * stands for any layer with that diffID, whatever its compression) or
 * tied to its blob (read from a gzip or zstd blob whose stream was not
 * hashed: it stands only for layers with that same blob digest). An
 * image that lies about its diffIDs can then plant nothing for another
 * image; a layer first met as a gzip blob is read again, its stream
 * hashed, when it turns up in another form (layer_cache_apply's other). The cache is bounded in bytes (least recently used
 * entries go first), versioned (LAYER_CACHE_FORMAT: an entry of another
 * format is a miss), crash-safe (an entry is written to a temporary file
 * and renamed into place, and carries a CRC-64 of its bytes: a torn or
 * corrupt entry is a miss, removed), and thread-safe: any number of
 * scans may read and write it at once.
 */
#ifndef SBOMD_SCAN_LAYERCACHE_H
#define SBOMD_SCAN_LAYERCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/oci/layers.h"
#include "util/digest.h"

/*
 * The format of an entry and of what it means. Bump it whenever the
 * encoding, fileset_wanted (what a layer contributes) or the layer walk's
 * semantics (whiteouts, links, what replaces what) change: entries of
 * another format are then misses, replaced as layers are read again.
 */
/* 2: a copyright file is kept as the licenses it names (fileset_put).
 * 3: the blob an entry was read from, and whether its diffID was
 * verified. */
#define LAYER_CACHE_FORMAT 3

/* The default bound of scan.layer_cache_max_bytes: 1 GiB. */
#define LAYER_CACHE_DEFAULT_MAX ((uint64_t)1 << 30)
/* The smallest bound accepted (an entry may use a quarter of it). */
#define LAYER_CACHE_MIN_MAX ((uint64_t)1 << 20)

typedef struct layer_cache layer_cache;

struct layer_cache_options {
	const char *dir;    /* created (0700) when absent */
	uint64_t max_bytes; /* 0: LAYER_CACHE_DEFAULT_MAX */
	uint32_t format;    /* 0: LAYER_CACHE_FORMAT (tests set others) */
};

struct layer_cache_counters {
	uint64_t hits, misses;
	uint64_t stores;    /* entries written */
	uint64_t too_large; /* deltas not stored: over a quarter of the bound */
	uint64_t evictions; /* entries removed to keep the bound */
	uint64_t rejected;  /* torn, corrupt or other-format entries removed */
	uint64_t entries, bytes; /* now */
};

/*
 * Opens (creating) the cache in o->dir: indexes the entries there by
 * their file names and modification times (the recency of their last
 * use), removes temporary files of dead processes, and evicts down to the
 * bound. 0, or -EINVAL (a bound under LAYER_CACHE_MIN_MAX) / -EIO with
 * err naming the directory.
 */
int layer_cache_open(const struct layer_cache_options *o, layer_cache **out,
    char *err, size_t errlen);
void layer_cache_close(layer_cache *c);

/* The delta of the layer whose diffID is diff and blob digest blob (NULL:
 * not known): 0 with *out (the caller frees it), or -ENOENT (not cached,
 * an entry that was not intact, or one tied to another blob). */
int layer_cache_get(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, layer_delta **out);

/*
 * Applies the cached delta of the layer whose diffID is diff and blob
 * digest blob (NULL: not known) straight to fs (the image's lower
 * layers), as layer_delta_apply would: 0; -ENOENT when it is not cached
 * intact, is tied to another blob, or was read under larger bounds than
 * lim's (fs untouched: the caller reads the layer); -EFBIG when the files
 * pass the fileset bound (err names layer). *other (may be NULL): set when
 * the miss was an entry tied to another blob, so that the caller hashes
 * the stream it reads and stores a verified entry in its place.
 */
int layer_cache_apply(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, const struct layer_limits *lim, fileset *fs,
    const char *layer, bool *other, char *err, size_t errlen);

/* Stores d under diff, evicting the least recently used entries past the
 * bound: verified against diff when blob is NULL, else tied to the blob
 * digest blob (whose bytes d was read from and checked against). 0,
 * -EFBIG (the entry would be over a quarter of the bound: not stored), or
 * -EIO (nothing stored; the scan goes on). */
int layer_cache_put(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, const layer_delta *d);

void layer_cache_counters(layer_cache *c, struct layer_cache_counters *out);

#endif
