/*
 * registry: pulls an image from its registry (the OCI distribution API)
 * and applies its layers to a fileset, as imagestore_load does from a
 * local store: every byte verified against its digest as it streams,
 * memory bounded, nothing unpacked to disk. docs/architecture.md, "The
 * registry client", describes the design.
 *
 * A reference is [HOST[:PORT]/]REPO[:TAG][@sha256:HEX]. Docker Hub names
 * are normalised: "nginx" is docker.io/library/nginx, served by
 * registry-1.docker.io.
 *
 * One registry object is shared by every scan worker: it holds the
 * configuration and the token cache (locked). Credentials are read from
 * the Docker config file at each pull, so fixed credentials take effect
 * at the next retry.
 */
#ifndef SBOMD_SCAN_REGISTRY_H
#define SBOMD_SCAN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "scan/fileset.h"
#include "scan/oci/imagestore.h"
#include "scan/oci/layers.h"

/* The default of scan.registry_timeout. */
#define REGISTRY_DEFAULT_TIMEOUT_MS 30000
/* Redirects followed per request. */
#define REGISTRY_MAX_REDIRECTS 5

struct registry_config {
	/* scan.registry_auth_file: a Docker config.json; NULL: the
	 * default ($DOCKER_CONFIG/config.json, else ~/.docker/config.json);
	 * "": anonymous only. A missing file means no credentials. */
	const char *auth_file;
	/* scan.registry_ca_file: PEM certificates trusted besides the
	 * system's; NULL: the system bundle only. */
	const char *ca_file;
	/* scan.registry_insecure_hosts: "host[:port]" spoken to in plain
	 * HTTP (and only these). */
	const char *const *insecure_hosts;
	size_t ninsecure;
	/* scan.registry_mirrors: "REGISTRY=URL", tried first, in order,
	 * for images of REGISTRY, then REGISTRY itself. */
	const char *const *mirrors;
	size_t nmirrors;
	/* scan.registry_timeout: connecting, and no byte for this long;
	 * whole manifest/token requests; 0: REGISTRY_DEFAULT_TIMEOUT_MS. */
	int64_t timeout_ms;
};

typedef struct registry registry;

/* 0 with *out, or -EINVAL naming the key (a bad mirror, the CA file). */
int registry_new(const struct registry_config *c, registry **out, char *err,
    size_t errlen);
void registry_free(registry *r);

/* A reference, parsed and normalised. */
struct registry_ref {
	char name[256];	  /* "docker.io", "127.0.0.1:5000": the registry */
	char repo[256];	  /* "library/nginx" */
	char tag[129];	  /* "" when none */
	char digest[80];  /* "sha256:…" or "" */
	char text[800];	  /* NAME/REPO[:TAG][@DIGEST], for messages */
};

/* 0, or -EINVAL with a reason. Without a tag or digest, "latest". */
int registry_ref_parse(const char *s, struct registry_ref *r, char *err,
    size_t errlen);

/* The registry's own endpoint for ref (after its mirrors):
 * "https://registry-1.docker.io" for docker.io, "http://HOST" for an
 * insecure host, else "https://HOST". */
void registry_upstream(const registry *r, const struct registry_ref *ref,
    char *out, size_t outlen);

/* What a pull tells besides its code. */
struct registry_status {
	/* The registry's Retry-After (a 429 or 503), in ms; 0 when none. */
	int64_t retry_after_ms;
};

/*
 * Pulls the image ref names and applies its layers to fs. q supplies the
 * platform (an index's manifest is chosen by it) and, when its image_id
 * is set, the config digest the image must have (a multi-platform index
 * is searched for it; no manifest with it is -EINVAL). lim bounds each
 * layer and its cancel flag stops the pull. Returns 0 with *found filled
 * (store 0, kind IMAGESTORE_REGISTRY), or:
 *  -ENOENT        the manifest is unknown (404);
 *  -EAGAIN        a blob is unknown (404), 429, a 5xx;
 *  -EACCES        401/403: the credentials (or their absence);
 *  -ETIMEDOUT, -ECONNREFUSED, -ECONNABORTED (TLS, other transport
 *                 failures): the registry cannot be reached;
 *  -EINVAL        corrupt or hostile content: a digest mismatch (naming
 *                 the blob), bad JSON, the image ID not in the image;
 *  -EFBIG         a bound was passed (manifest size, layers, bytes);
 *  -ECANCELED     lim->cancel was set.
 * err always names the reference tried. st (may be NULL) gets the
 * Retry-After.
 */
int registry_load(registry *r, const char *ref, const struct image_query *q,
    const struct layer_limits *lim, fileset *fs, struct image_found *found,
    struct registry_status *st, char *err, size_t errlen);

/* Forgets every cached token (tests). */
void registry_tokens_clear(registry *r);

#endif
