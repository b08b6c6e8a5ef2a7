/*
 * imagestore_int: what the files of the image store module share, and
 * nothing else may use. The module is:
 *
 *   imagestore.c      the front: the query, the store kinds and dispatch,
 *                     descriptors, the index/manifest walk, platform
 *                     selection, applying a found manifest
 *   blob.c            reading and verifying blobs; hashing layer streams
 *   oci_layout.c      OCI image layouts (index.json)
 *   containerd.c      containerd content stores and their shared cache
 *   docker_archive.c  `docker save` tarballs
 *
 * Everything here lives for one imagestore_load call on one thread, but
 * the containerd cache (containerd.c), which is process-wide.
 */
#ifndef SBOMD_SCAN_IMAGESTORE_INT_H
#define SBOMD_SCAN_IMAGESTORE_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "scan/oci/imagestore.h"

struct archive;

/* Manifests and indexes read per store per lookup. */
#define IMAGESTORE_MAX_VISITS 4096

/* The query of one imagestore_load, parsed, and the first error
 * remembered while searching (see "Errors while searching" in
 * imagestore.c). */
struct image_lookup {
	const struct image_query *q;
	const struct layer_limits *lim; /* never NULL */
	fileset *fs;			/* where layers are applied */
	layer_cache *cache;		/* NULL: no per-layer cache */
	bool have_id;
	bool any; /* the query names nothing: the store's only image */
	uint8_t id[DIGEST_LEN];
	char idstr[DIGEST_STR_LEN]; /* the ID, or what messages call it */
	uint8_t (*hints)[DIGEST_LEN]; /* parsed repo digests */
	size_t nhints;
	char os[32], arch[32], variant[32]; /* variant "" = any */
	int rec_rc;			    /* first remembered error, or 0 */
	char rec_err[1024];
};

/* One store being searched by one imagestore_load. */
struct image_store {
	const char *path;
	size_t index; /* in the caller's stores[] */
	enum imagestore_kind kind;
	int dfd;	 /* the store directory, or -1 */
	int algfd;	 /* its blobs/sha256, or -1 */
	unsigned visits; /* manifests and indexes read so far */
};

/* A descriptor: {mediaType, digest, size}. */
struct image_desc {
	uint8_t digest[DIGEST_LEN];
	char dstr[DIGEST_STR_LEN];
	int64_t size;	   /* -1 when absent */
	const char *media; /* NULL when absent; owned by the JSON */
};

/* The manifest found. */
struct image_hit {
	json_t *manifest; /* owned */
	char dstr[DIGEST_STR_LEN];
};

enum image_blob_kind {
	IMAGE_BLOB_OTHER,
	IMAGE_BLOB_INDEX,
	IMAGE_BLOB_MANIFEST,
};

/* ---- imagestore.c ---- */

/* Parses q into L (L zeroed, L->q, L->lim and L->fs set by the caller):
 * 0, or -EINVAL naming the image ID or platform. L->hints is malloc'd. */
int image_lookup_init(struct image_lookup *L, const struct image_query *q,
    char *err, size_t errlen);
/* Whether a descriptor's platform (absent: any) suits the query. */
bool image_platform_ok(const struct image_lookup *L, const json_t *d);
/* Parses a manifest's layer descriptors into *layers (malloc'd, n of
 * them): -EINVAL, -EFBIG past IMAGESTORE_MAX_LAYERS. */
int image_manifest_layers(const json_t *manifest, struct image_desc **layers,
    size_t *n, char *err, size_t errlen);

/* Remembers the first error seen while searching (store: its path). */
void image_lookup_record(struct image_lookup *L, int rc, const char *store,
    const char *msg);
/* Whether a reference ("debian:12", an annotation's "12") names one of
 * the query's tags (any reference does when the query names nothing). */
bool image_lookup_tag_hinted(const struct image_lookup *L, const char *ref);
/* Parses descriptor j (what names it in messages). -EINVAL. */
int image_desc_parse(const json_t *j, struct image_desc *d, const char *what,
    char *err, size_t errlen);
/* What a parsed blob is, by its mediaType (else desc_media, else its
 * shape). */
enum image_blob_kind image_blob_classify(const char *desc_media,
    const json_t *j);
/*
 * Looks at the blob descriptor d names (depth: of the index it is in).
 * true with *h filled when it is, or leads to, the manifest sought.
 * Errors are remembered when record is set, and the search goes on.
 */
bool image_search_desc(struct image_store *s, struct image_lookup *L,
    const struct image_desc *d, bool hinted, bool record, int depth,
    struct image_hit *h);
/* The same for the descriptors of index idx (index.json: depth 0). */
bool image_search_index(struct image_store *s, struct image_lookup *L,
    const json_t *idx, int depth, bool hinted, struct image_hit *h);
/*
 * The config's rootfs.diff_ids, one per layer (n), parsed (malloc'd),
 * when L has a cache; NULL without a cache or when the config does not
 * list n well-formed ones (its layers are then neither looked up nor
 * stored).
 */
uint8_t (*image_diff_ids(const struct image_lookup *L, const json_t *cfg,
    size_t n))[DIGEST_LEN];
/* f->platform from an image config ("" when it says none). */
void image_found_platform(struct image_found *f, const json_t *cfg);

/* ---- blob.c ---- */

/* "<64 hex>" as a digest; false when it is not one. */
bool blob_hex_digest(const char *hex, uint8_t out[DIGEST_LEN]);
/*
 * Opens blob d of store s: a regular file under blobs/sha256, no link
 * followed. -ENOENT when absent, -EINVAL when a link or not a regular
 * file, -EIO.
 */
int blob_open(const struct image_store *s, const uint8_t d[DIGEST_LEN],
    int *fdp, struct stat *st, char *err, size_t errlen);
/* A blob's size against its descriptor's (-1: none) and a bound:
 * -EFBIG, -EAGAIN (shorter: still being written), -EINVAL (longer). */
int blob_check_size(const char *ds, int64_t declared, off_t actual,
    uint64_t max, char *err, size_t errlen);
/* Reads all of fd, at most max bytes (else -EFBIG), NUL-terminated. */
int blob_read_all(int fd, size_t max, char **out, size_t *outlen,
    const char *name, char *err, size_t errlen);
/* Parses a JSON object, duplicate keys refused. -EINVAL. */
int blob_parse_object(const char *buf, size_t len, json_t **out,
    const char *name, char *err, size_t errlen);
/* Reads, verifies and parses JSON blob d (declared size or -1). */
int blob_read_json(const struct image_store *s, const uint8_t d[DIGEST_LEN],
    int64_t declared, json_t **out, char *err, size_t errlen);

/* A layer's bytes on their way to layer_apply, hashed as they pass. */
struct blob_stream {
	int fd;		    /* a blob file, or -1 */
	struct archive *ar; /* or the current entry of an outer tar */
	layer_read_fn fn;   /* or a reader (a registry's blob), when set */
	void *fnctx;
	EVP_MD_CTX *md;
	uint64_t n; /* bytes passed */
};

/*
 * Applies the layer read through src to L->fs and checks that its bytes
 * hash to want0 or, when want1 is not NULL, to want1 (-EINVAL naming the
 * hash when they do not). diff: NULL, or the layer's diffID from the
 * config: with L->cache, once the blob is verified, the layer's delta is
 * stored under it, verified when the uncompressed stream hashed to diff
 * (a plain tar always; a gzip stream is hashed only when verify is set:
 * blob_cached_layer says when), else tied to the blob's digest.
 */
int blob_apply_layer(struct image_lookup *L, struct blob_stream *src,
    const char *name, const uint8_t want0[DIGEST_LEN], const uint8_t *want1,
    const uint8_t *diff, bool verify, char *err, size_t errlen);
/*
 * Applies the layer whose diffID is diff and blob digest blob (NULL when
 * not known before it is read) from L->cache: 0; -ENOENT when there is
 * no cache, no diff, no intact entry for this blob, or one read under
 * larger limits than L's (the caller reads the layer, with *verify: set
 * when an entry of another blob is there); -ECANCELED, or
 * layer_delta_apply's error.
 */
int blob_cached_layer(struct image_lookup *L, const uint8_t *diff,
    const uint8_t *blob, const char *name, bool *verify, char *err,
    size_t errlen);

/* ---- oci_layout.c ---- */

/* Whether the directory dfd is an OCI image layout. */
bool oci_layout_is(int dfd);
/* Searches the layout from its index.json; true with *h filled when
 * found. */
bool oci_layout_search(struct image_store *s, struct image_lookup *L,
    struct image_hit *h);

/* ---- containerd.c ---- */

/* Searches a content store: hinted digests, then the cache by image ID.
 * true with *h filled when found. */
bool containerd_search(struct image_store *s, struct image_lookup *L,
    struct image_hit *h);
/* Empties the cache (imagestore_cache_clear). */
void containerd_cache_clear(void);
/*
 * Tests only: called by the thread that reads a content store's
 * blobs/sha256 (store: its path), with no lock held, just before it
 * reads. NULL normally; set only while no lookup runs.
 */
extern void (*containerd_read_hook)(const char *store);

/* ---- docker_archive.c ---- */

/*
 * Finds the image in the docker-archive s->path and applies it: 0;
 * -ENOENT when it is not there (errors that do not end the search are
 * remembered in L); another negative errno with err filled when the
 * image was identified and could not be applied.
 */
int docker_archive_load(struct image_store *s, struct image_lookup *L,
    struct image_found *f, char *err, size_t errlen);

#endif
