/*
 * imagestore: finds an image in local image stores and applies its layers,
 * in order, to a fileset (scan/oci/layers). Nothing is unpacked to disk.
 *
 * A store is one of:
 *  - an OCI image layout: a directory with "oci-layout" and "index.json"
 *    (nested indexes and multi-platform indexes included);
 *  - a containerd content store: a directory with "blobs/sha256/" and no
 *    index (containerd's io.containerd.content.v1.content directory);
 *  - a docker-archive: a regular file whose name ends in ".tar" (the
 *    output of `docker save`, with manifest.json).
 * Stores are tried in the order given; the first that holds the image
 * wins. The image is identified by its image ID (its config digest).
 *
 * Every blob read is verified against its digest. Everything read from a
 * store is bounded (see imagestore.c). Thread-safe: separate calls may run
 * on separate threads with separate filesets (the containerd cache is
 * shared; see containerd.c for how it is locked).
 */
#ifndef SBOMD_SCAN_IMAGESTORE_H
#define SBOMD_SCAN_IMAGESTORE_H

#include <stddef.h>

#include "scan/fileset.h"
#include "scan/oci/layercache.h"
#include "scan/oci/layers.h"
#include "util/digest.h"

/* Largest index.json / manifest / config / manifest.json read. */
#define IMAGESTORE_MAX_JSON (4u << 20)
/* Deepest chain of indexes below index.json (index.json is depth 0). */
#define IMAGESTORE_MAX_DEPTH 8
/* Most layers in one image. */
#define IMAGESTORE_MAX_LAYERS 256

struct image_query {
	/* "sha256:<hex>", the config digest; NULL to pick the image by
	 * repo digest or tag alone (then the platform is a strict filter).
	 * With no ID, digest or tag at all: the store's image (a
	 * docker-archive's only one; an OCI layout's first for the
	 * platform; never a containerd store's). */
	const char *image_id;
	/* "sha256:<hex>" or "name@sha256:<hex>": manifest or index digests;
	 * hints only (malformed ones are ignored). */
	const char *const *repo_digests;
	size_t ndigests;
	/* "name:tag" references, matched against an OCI layout's
	 * org.opencontainers.image.ref.name annotations and a docker-archive's
	 * RepoTags. Hints only. */
	const char *const *repo_tags;
	size_t ntags;
	/* "os/arch[/variant]"; NULL means "linux/amd64". With an image_id the
	 * platform orders the search of multi-platform indexes (the image ID
	 * decides); without one it filters them. */
	const char *platform;
	/* NULL, or the per-layer catalog cache (scan/oci/layercache.h):
	 * a layer whose diffID it holds is not read, and a layer read and
	 * verified is stored in it. Not part of what the query names: the
	 * image found and the fileset are the same with it or without. */
	struct layer_cache *layer_cache;
};

enum imagestore_kind {
	IMAGESTORE_OCI_LAYOUT,
	IMAGESTORE_CONTAINERD,
	IMAGESTORE_DOCKER_ARCHIVE,
	IMAGESTORE_REGISTRY, /* pulled by scan/oci/registry */
};

struct image_found {
	size_t store;		     /* index into stores[] */
	enum imagestore_kind kind;   /* of that store */
	char image_id[DIGEST_STR_LEN]; /* the config digest */
	char manifest[DIGEST_STR_LEN]; /* manifest digest; "" in archives */
	char platform[96];	     /* os/arch[/variant] from the config, or "" */
	size_t nlayers;		     /* layers applied */
};

/*
 * Finds the image q names in stores[0..nstores) and applies its layers to
 * fs (which should be empty). lim bounds each layer (NULL: defaults).
 * found (may be NULL) says where it was found. Returns 0, or:
 *  -ENOENT  the image is in none of the stores (message names them);
 *  -EAGAIN  found, but a blob it needs is missing or shorter than its
 *           descriptor says (a pull in progress);
 *  -EINVAL  corrupt or hostile content: bad JSON, a digest that does not
 *           match the bytes, a path-like digest, an unsupported media type;
 *  -EFBIG   a bound was passed (JSON size, nesting, layer count, layer
 *           bytes or entries);
 *  -EIO     a read failed.
 * err names the store and the blob, file or entry. On failure fs may hold
 * part of the image: the caller discards it.
 */
int imagestore_load(const char *const *stores, size_t nstores,
    const struct image_query *q, const struct layer_limits *lim, fileset *fs,
    struct image_found *found, char *err, size_t errlen);

/* Forgets what was learned about containerd content stores (tests and
 * shutdown). Safe while lookups run: it waits for directory reads in
 * progress to end, and later lookups read the directories again. */
void imagestore_cache_clear(void);

#endif
