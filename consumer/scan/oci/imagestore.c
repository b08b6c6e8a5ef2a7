/*
 * imagestore: finds an image by its image ID (config digest) in OCI image
 * layouts, containerd content stores and docker-archive tarballs, and
 * streams its layers, in order, into a fileset through layer_apply.
 *
 * Finding. In an OCI layout the search starts at index.json and walks
 * descriptors depth first (nested indexes at most IMAGESTORE_MAX_DEPTH
 * deep, at most STORE_MAX_VISITS manifests/indexes read per store). At
 * every index the descriptors are tried in three rounds: hinted ones (the
 * digest is a repo digest of the query, or an annotation names one of its
 * tags, or the parent index was hinted) whose platform matches; then the
 * other platform-matching ones; then those of other platforms. A manifest
 * is the hit when its config digest is the image ID: the image ID decides,
 * the platform only orders the work. Without an image ID only hinted
 * manifests of the query's platform match.
 * A containerd content store has no index: the repo digests are looked up
 * as blobs directly; then a per-store cache maps config digests to the
 * manifests that name them. It is filled by examining each blob of the
 * store once (only regular files < IMAGESTORE_MAX_JSON that parse as a
 * manifest count); blobs are immutable under their digest, so a blob seen
 * once is never examined again, and new pulls cost only their new blobs.
 * A docker-archive's manifest.json lists images; Config names the config.
 *
 * Errors while searching. A blob that cannot be read (missing, corrupt)
 * on a path the query hinted at, or a store that cannot be read at all
 * (bad index.json), is remembered; the search goes on in the other stores
 * and the first remembered error is returned only when no store holds the
 * image. Unreadable blobs nothing pointed us to are skipped silently: a
 * corrupt unrelated image must not make every lookup fail. Once the
 * manifest is found, every error is final.
 *
 * Verification. Every blob is hashed (SHA-256) while it is read: JSON
 * blobs before they are parsed, layers as their compressed bytes pass
 * through layer_apply's read callback, the unread tail after layer_apply
 * stops included. A mismatch is -EINVAL (PERMANENT): containerd and OCI
 * tools only publish a blob under its digest once it is complete, so
 * different bytes under a digest are corruption and retrying reads the
 * same bytes. The one RETRYABLE exception is a blob shorter than its
 * descriptor's size (-EAGAIN): a copy into a layout still being written.
 * Blob paths are built only from parsed digests ("sha256/" + 64 hex, via
 * digest_parse/digest_format), never from JSON strings, and opened with
 * openat(O_NOFOLLOW | O_NONBLOCK) relative to the store under
 * blobs/sha256 (each component without following links), then checked to
 * be regular files (a FIFO cannot hang us). Only sha256 is supported.
 *
 * docker-archive ordering. The outer tar is read with libarchive, never
 * extracted; entries are located by name and skipped by seeking. Pass 1
 * reads manifest.json (wherever it is); pass 2 reads the candidate
 * configs and records the position (entry ordinal) of every layer entry;
 * then layer passes apply layers in manifest order: a pass applies the
 * next layer when it reaches its entry and keeps going while the following
 * layer's entry lies further on, else it ends and the next pass starts
 * over. `docker save` writes layers in order, so that is one pass; the
 * worst case is one pass per layer (<= IMAGESTORE_MAX_LAYERS), each
 * reading headers only plus one layer's data: bounded time, no buffering,
 * every layer's bytes read exactly once. The file must not change between
 * passes (size and mtime are compared). A layer entry must hash to the
 * config's rootfs.diff_ids[i] (docker save's plain tars) or to the digest
 * its name carries ("blobs/sha256/<hex>", Docker 25+). A layer listed but
 * absent from the archive is -EINVAL: an archive is complete or corrupt.
 *
 * Concurrency: imagestore_load is reentrant; the containerd cache is one
 * global list guarded by cd_lock, which is held while a store's directory
 * is examined for new blobs (so concurrent first lookups in one store
 * examine it once). Cache entries live until imagestore_cache_clear.
 */
#include "scan/oci/imagestore.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xmalloc.h"

/* Manifests and indexes read per store per lookup. */
#define STORE_MAX_VISITS 4096
/* Directory entries examined in one containerd content store. */
#define CD_MAX_BLOBS (1u << 20)
/* Entries in a docker-archive's outer tar, images in its manifest.json,
 * images whose configs must be hashed to know which is the one. */
#define DA_MAX_ENTRIES 1000000u
#define DA_MAX_IMAGES 4096
#define DA_MAX_CANDIDATES 16
#define DA_MAX_NAME 4096
#define READ_BUF (1u << 20)

static const char oci_index_media[] = "application/vnd.oci.image.index.v1+json";
static const char oci_manifest_media[] =
    "application/vnd.oci.image.manifest.v1+json";
static const char docker_list_media[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
static const char docker_manifest_media[] =
    "application/vnd.docker.distribution.manifest.v2+json";

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills err and returns rc. */
static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- the query ---------------------------------------------------- */

struct lookup {
	const struct image_query *q;
	const struct layer_limits *lim;
	fileset *fs;
	bool have_id;
	bool any; /* the query names nothing: the store's only image */
	uint8_t id[DIGEST_LEN];
	char idstr[DIGEST_STR_LEN];
	uint8_t (*hints)[DIGEST_LEN]; /* parsed repo digests */
	size_t nhints;
	char os[32], arch[32], variant[32]; /* variant "" = any */
	int rec_rc;			    /* first remembered error, or 0 */
	char rec_err[1024];
};

/* Remembers the first error seen while searching. */
static void
lookup_record(struct lookup *L, int rc, const char *store, const char *msg)
{
	if (L->rec_rc != 0)
		return;
	L->rec_rc = rc;
	snprintf(L->rec_err, sizeof(L->rec_err), "store %s: %s", store, msg);
}

static int
lookup_init(struct lookup *L, const struct image_query *q, char *err,
    size_t errlen)
{
	char why[256];

	if (q->image_id != NULL) {
		if (digest_parse(q->image_id, L->id, why, sizeof(why)) != 0)
			return fail(err, errlen, -EINVAL, "image id: %s", why);
		L->have_id = true;
		digest_format(L->id, L->idstr);
	} else {
		L->any = q->ndigests == 0 && q->ntags == 0;
		/* Messages name the reference asked for. */
		const char *ref = q->ntags > 0 ? q->repo_tags[0] :
		    q->ndigests > 0 ? q->repo_digests[0] : NULL;
		if (L->any || ref == NULL)
			snprintf(L->idstr, sizeof(L->idstr), "%s",
			    "(the store's image)");
		else
			snprintf(L->idstr, sizeof(L->idstr), "\"%.*s\"",
			    (int)sizeof(L->idstr) - 3, ref);
	}
	if (q->ndigests > 0)
		L->hints = xcalloc(q->ndigests, sizeof(*L->hints));
	for (size_t i = 0; i < q->ndigests; i++) {
		const char *d = q->repo_digests[i];
		if (d == NULL)
			continue;
		const char *at = strrchr(d, '@');
		if (digest_parse(at ? at + 1 : d, L->hints[L->nhints], why,
			sizeof(why)) == 0)
			L->nhints++;
	}

	const char *p = q->platform ? q->platform : "linux/amd64";
	const char *s1 = strchr(p, '/');
	const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	size_t lo = s1 ? (size_t)(s1 - p) : 0;
	size_t la = s1 ? (s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1)) : 0;
	size_t lv = s2 ? strlen(s2 + 1) : 0;
	if (s1 == NULL || lo == 0 || la == 0 || lo >= sizeof(L->os) ||
	    la >= sizeof(L->arch) || lv >= sizeof(L->variant) ||
	    (s2 != NULL && (lv == 0 || strchr(s2 + 1, '/') != NULL)))
		return fail(err, errlen, -EINVAL,
		    "platform \"%.64s\": want os/arch[/variant]", p);
	memcpy(L->os, p, lo);
	memcpy(L->arch, s1 + 1, la);
	if (s2 != NULL)
		memcpy(L->variant, s2 + 1, lv);
	return 0;
}

/* The tag part of a reference: after the last ':' that follows the last
 * '/' ("localhost:5000/a/b:1" -> "1"), or NULL. */
static const char *
ref_tag(const char *ref)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	return colon ? colon + 1 : NULL;
}

/* "docker.io/library/debian:12" and "debian:12" name the same image. */
static const char *
ref_short(const char *ref)
{
	if (strncmp(ref, "docker.io/", 10) == 0)
		ref += 10;
	if (strncmp(ref, "library/", 8) == 0)
		ref += 8;
	return ref;
}

static bool
ref_matches(const char *annotated, const char *tag)
{
	if (strcmp(ref_short(annotated), ref_short(tag)) == 0)
		return true;
	/* OCI layouts usually annotate just the tag ("12"). */
	const char *t = ref_tag(tag);
	return strchr(annotated, ':') == NULL && strchr(annotated, '/') == NULL &&
	    t != NULL && strcmp(annotated, t) == 0;
}

static bool
lookup_tag_hinted(const struct lookup *L, const char *ref)
{
	if (L->any)
		return true;
	for (size_t i = 0; i < L->q->ntags; i++)
		if (L->q->repo_tags[i] != NULL &&
		    ref_matches(ref, L->q->repo_tags[i]))
			return true;
	return false;
}

static bool
lookup_digest_hinted(const struct lookup *L, const uint8_t d[DIGEST_LEN])
{
	if (L->any)
		return true;
	for (size_t i = 0; i < L->nhints; i++)
		if (memcmp(L->hints[i], d, DIGEST_LEN) == 0)
			return true;
	return false;
}

/* ---- blobs ---------------------------------------------------------- */

struct store {
	const char *path;
	size_t index;
	enum imagestore_kind kind;
	int dfd;   /* the store directory, or -1 */
	int algfd; /* its blobs/sha256, or -1 */
	unsigned visits;
};

/* A descriptor: {mediaType, digest, size}. */
struct desc {
	uint8_t digest[DIGEST_LEN];
	char dstr[DIGEST_STR_LEN];
	int64_t size; /* -1 when absent */
	const char *media; /* NULL when absent; owned by the JSON */
};

static int
desc_parse(const json_t *j, struct desc *d, const char *what, char *err,
    size_t errlen)
{
	char why[256];

	if (!json_is_object(j))
		return fail(err, errlen, -EINVAL, "%s: not an object", what);
	const json_t *dg = json_object_get(j, "digest");
	if (!json_is_string(dg))
		return fail(err, errlen, -EINVAL, "%s: no digest", what);
	if (digest_parse(json_string_value(dg), d->digest, why, sizeof(why)) !=
	    0)
		return fail(err, errlen, -EINVAL, "%s: digest: %s", what, why);
	digest_format(d->digest, d->dstr);
	const json_t *sz = json_object_get(j, "size");
	d->size = -1;
	if (sz != NULL) {
		if (!json_is_integer(sz) || json_integer_value(sz) < 0)
			return fail(err, errlen, -EINVAL,
			    "%s %s: size is not a count", what, d->dstr);
		d->size = (int64_t)json_integer_value(sz);
	}
	const json_t *mt = json_object_get(j, "mediaType");
	d->media = json_is_string(mt) ? json_string_value(mt) : NULL;
	return 0;
}

/*
 * Opens blob d of store s: a regular file under blobs/sha256, no link
 * followed. -ENOENT when absent, -EINVAL when not a regular file.
 */
static int
blob_open(const struct store *s, const uint8_t d[DIGEST_LEN], int *fdp,
    struct stat *st, char *err, size_t errlen)
{
	char ds[DIGEST_STR_LEN];
	digest_format(d, ds);
	const char *hex = ds + 7; /* "sha256:" */

	*fdp = -1;
	if (s->algfd < 0)
		return fail(err, errlen, -ENOENT, "blob %s: no blobs/sha256", ds);
	int fd = openat(s->algfd, hex, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return fail(err, errlen, -ENOENT, "blob %s is missing",
			    ds);
		if (e == ELOOP)
			return fail(err, errlen, -EINVAL,
			    "blob %s is a symbolic link", ds);
		return fail(err, errlen, -EIO, "blob %s: open: %s", ds,
		    strerror(e));
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return fail(err, errlen, -EINVAL,
		    "blob %s is not a regular file", ds);
	}
	*fdp = fd;
	return 0;
}

/* Checks a blob's size against its descriptor and a bound. */
static int
blob_check_size(const char *ds, int64_t declared, off_t actual, uint64_t max,
    char *err, size_t errlen)
{
	if (declared >= 0 && (uint64_t)declared > max)
		return fail(err, errlen, -EFBIG,
		    "blob %s: descriptor size %lld is over the bound %llu", ds,
		    (long long)declared, (unsigned long long)max);
	if ((uint64_t)actual > max)
		return fail(err, errlen, -EFBIG,
		    "blob %s: %lld bytes is over the bound %llu", ds,
		    (long long)actual, (unsigned long long)max);
	if (declared >= 0 && actual < declared)
		return fail(err, errlen, -EAGAIN,
		    "blob %s: %lld of %lld bytes (still being written?)", ds,
		    (long long)actual, (long long)declared);
	if (declared >= 0 && actual > declared)
		return fail(err, errlen, -EINVAL,
		    "blob %s: %lld bytes, its descriptor says %lld", ds,
		    (long long)actual, (long long)declared);
	return 0;
}

/* Reads all of fd (at most max bytes) into a NUL-terminated buffer. */
static int
read_all(int fd, size_t max, char **out, size_t *outlen, const char *name,
    char *err, size_t errlen)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap + 1);

	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				return fail(err, errlen, -EFBIG,
				    "%s: more than %zu bytes", name, max);
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return fail(err, errlen, -EIO, "%s: read: %s", name,
			    strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return fail(err, errlen, -EFBIG, "%s: more than %zu bytes",
		    name, max);
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Parses a JSON object (duplicate keys refused: parsers disagree on them). */
static int
json_parse_object(const char *buf, size_t len, json_t **out, const char *name,
    char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return fail(err, errlen, -EINVAL,
		    "%s: invalid JSON at line %d: %s", name, je.line, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return fail(err, errlen, -EINVAL, "%s: not a JSON object",
		    name);
	}
	*out = j;
	return 0;
}

/* Reads, verifies and parses JSON blob d (declared size or -1). */
static int
blob_json(const struct store *s, const uint8_t d[DIGEST_LEN], int64_t declared,
    json_t **out, char *err, size_t errlen)
{
	char ds[DIGEST_STR_LEN], *buf = NULL;
	uint8_t got[DIGEST_LEN];
	struct stat st;
	size_t len;
	int fd = -1, rc;

	digest_format(d, ds);
	*out = NULL;
	if (declared >= 0 && (uint64_t)declared > IMAGESTORE_MAX_JSON)
		return fail(err, errlen, -EFBIG,
		    "blob %s: descriptor size %lld is over the bound %u", ds,
		    (long long)declared, IMAGESTORE_MAX_JSON);
	if ((rc = blob_open(s, d, &fd, &st, err, errlen)) != 0)
		goto out;
	if ((rc = blob_check_size(ds, declared, st.st_size, IMAGESTORE_MAX_JSON,
		 err, errlen)) != 0)
		goto out;
	if ((rc = read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, ds, err,
		 errlen)) != 0)
		goto out;
	digest_sha256(buf, len, got);
	if (memcmp(got, d, DIGEST_LEN) != 0) {
		char gs[DIGEST_STR_LEN];
		digest_format(got, gs);
		rc = fail(err, errlen, -EINVAL,
		    "blob %s: digest mismatch: its bytes hash to %s", ds, gs);
		goto out;
	}
	rc = json_parse_object(buf, len, out, ds, err, errlen);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- hashing layer streams ------------------------------------------ */

/* A layer's bytes on their way to layer_apply, hashed as they pass. */
struct layer_src {
	int fd;		    /* a blob file, or -1 */
	struct archive *ar; /* or an entry of an outer tar */
	EVP_MD_CTX *md;
	uint64_t n; /* bytes passed */
};

static ssize_t
layer_src_read(void *ctx, void *buf, size_t len)
{
	struct layer_src *s = ctx;
	ssize_t n;

	if (s->fd >= 0) {
		do
			n = read(s->fd, buf, len);
		while (n < 0 && errno == EINTR);
	} else {
		la_ssize_t r = archive_read_data(s->ar, buf, len);
		if (r < 0) {
			errno = EIO;
			return -1;
		}
		n = (ssize_t)r;
	}
	if (n > 0) {
		if (EVP_DigestUpdate(s->md, buf, (size_t)n) != 1) {
			errno = EIO;
			return -1;
		}
		s->n += (uint64_t)n;
	}
	return n;
}

/* Reads (and hashes) the rest of the layer stream, then finishes the hash. */
static int
layer_src_finish(struct layer_src *s, uint8_t out[DIGEST_LEN], const char *name,
    char *err, size_t errlen)
{
	unsigned char *buf = xmalloc(READ_BUF);
	unsigned int olen = 0;
	ssize_t n;

	while ((n = layer_src_read(s, buf, READ_BUF)) > 0)
		;
	free(buf);
	if (n < 0)
		return fail(err, errlen, -EIO, "layer %s: read: %s", name,
		    strerror(errno));
	if (EVP_DigestFinal_ex(s->md, out, &olen) != 1 || olen != DIGEST_LEN)
		return fail(err, errlen, -EIO, "layer %s: SHA-256 failed",
		    name);
	return 0;
}

/*
 * Applies the layer read through src to L->fs and checks that its bytes
 * hash to want[0] or, when want1 is not NULL, to want1. On a corrupt-
 * content failure of layer_apply the digest is checked too: a mismatch is
 * the better explanation.
 */
static int
layer_run(struct lookup *L, struct layer_src *src, const char *name,
    const uint8_t want0[DIGEST_LEN], const uint8_t *want1, char *err,
    size_t errlen)
{
	uint8_t got[DIGEST_LEN];
	char gs[DIGEST_STR_LEN];
	int rc;

	src->md = EVP_MD_CTX_new();
	if (src->md == NULL || EVP_DigestInit_ex(src->md, EVP_sha256(), NULL) !=
	    1) {
		rc = fail(err, errlen, -EIO, "layer %s: SHA-256 init failed",
		    name);
		goto out;
	}
	rc = layer_apply(L->fs, layer_src_read, src, name, L->lim, err, errlen);
	if (rc != 0 && rc != -EINVAL)
		goto out;
	char why[512];
	int frc = layer_src_finish(src, got, name, why, sizeof(why));
	if (frc != 0) {
		if (rc == 0)
			rc = fail(err, errlen, frc, "%s", why);
		goto out;
	}
	if (memcmp(got, want0, DIGEST_LEN) != 0 &&
	    (want1 == NULL || memcmp(got, want1, DIGEST_LEN) != 0)) {
		digest_format(got, gs);
		rc = fail(err, errlen, -EINVAL,
		    "layer %s: digest mismatch: its %llu bytes hash to %s",
		    name, (unsigned long long)src->n, gs);
	}
out:
	EVP_MD_CTX_free(src->md);
	src->md = NULL;
	return rc;
}

/* ---- OCI layouts and containerd content stores ------------------------ */

enum blob_kind { BLOB_OTHER, BLOB_INDEX, BLOB_MANIFEST };

static enum blob_kind
blob_classify(const char *desc_media, const json_t *j)
{
	const json_t *mt = json_object_get(j, "mediaType");
	const char *m = json_is_string(mt) ? json_string_value(mt) : desc_media;
	if (m != NULL) {
		if (strcmp(m, oci_index_media) == 0 ||
		    strcmp(m, docker_list_media) == 0)
			return BLOB_INDEX;
		if (strcmp(m, oci_manifest_media) == 0 ||
		    strcmp(m, docker_manifest_media) == 0)
			return BLOB_MANIFEST;
		return BLOB_OTHER;
	}
	/* OCI allows mediaType to be absent: go by shape. */
	if (json_is_array(json_object_get(j, "manifests")))
		return BLOB_INDEX;
	if (json_is_object(json_object_get(j, "config")) &&
	    json_is_array(json_object_get(j, "layers")))
		return BLOB_MANIFEST;
	return BLOB_OTHER;
}

static bool
layer_media_ok(const char *m)
{
	static const char *const ok[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.diff.tar.zstd",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	};
	if (m == NULL)
		return true; /* libarchive tells tar, gzip and zstd apart */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i]) == 0)
			return true;
	return false;
}

/* Whether a descriptor's platform (absent: any) suits the query. */
static bool
platform_ok(const struct lookup *L, const json_t *d)
{
	const json_t *p = json_object_get(d, "platform");
	if (!json_is_object(p))
		return true;
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	const char *var = json_string_value(json_object_get(p, "variant"));
	if (os == NULL || arch == NULL || strcmp(os, L->os) != 0 ||
	    strcmp(arch, L->arch) != 0)
		return false;
	return L->variant[0] == '\0' || var == NULL ||
	    strcmp(var, L->variant) == 0;
}

/* Whether an index descriptor's annotations name one of the query's tags. */
static bool
desc_tag_hinted(const struct lookup *L, const json_t *d)
{
	static const char *const keys[] = {
		"org.opencontainers.image.ref.name",
		"io.containerd.image.name",
	};
	const json_t *an = json_object_get(d, "annotations");
	if (!json_is_object(an))
		return false;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(an, keys[i]));
		if (v != NULL && lookup_tag_hinted(L, v))
			return true;
	}
	return false;
}

/* The manifest found. */
struct hit {
	json_t *manifest;
	char dstr[DIGEST_STR_LEN];
};

static int search_index(struct store *s, struct lookup *L, const json_t *idx,
    int depth, bool hinted, struct hit *h);

/*
 * Looks at the blob a descriptor names. 1 with *h filled when it is (or
 * leads to) the manifest, 0 when not. Errors are remembered (when record)
 * and the search goes on.
 */
static int
search_desc(struct store *s, struct lookup *L, const struct desc *d,
    bool hinted, bool record, int depth, struct hit *h)
{
	char why[768];
	json_t *j = NULL;
	int rc;

	if (s->visits >= STORE_MAX_VISITS) {
		if (s->visits++ == STORE_MAX_VISITS) {
			snprintf(why, sizeof(why),
			    "more than %d manifests and indexes to search",
			    STORE_MAX_VISITS);
			lookup_record(L, -EFBIG, s->path, why);
		}
		return 0;
	}
	s->visits++;
	rc = blob_json(s, d->digest, d->size, &j, why, sizeof(why));
	if (rc != 0) {
		if (record)
			lookup_record(L, rc == -ENOENT ? -EAGAIN : rc, s->path,
			    why);
		return 0;
	}
	switch (blob_classify(d->media, j)) {
	case BLOB_INDEX:
		if (depth >= IMAGESTORE_MAX_DEPTH) {
			snprintf(why, sizeof(why),
			    "index %s: indexes nested more than %d deep",
			    d->dstr, IMAGESTORE_MAX_DEPTH);
			lookup_record(L, -EFBIG, s->path, why);
			rc = 0;
			break;
		}
		rc = search_index(s, L, j, depth + 1, hinted, h);
		break;
	case BLOB_MANIFEST: {
		struct desc cfg;
		if (desc_parse(json_object_get(j, "config"), &cfg, "config", why,
			sizeof(why)) != 0) {
			if (record)
				lookup_record(L, -EINVAL, s->path, why);
			rc = 0;
			break;
		}
		if (L->have_id ? memcmp(cfg.digest, L->id, DIGEST_LEN) == 0 :
				 hinted) {
			h->manifest = j;
			j = NULL;
			memcpy(h->dstr, d->dstr, sizeof(h->dstr));
			rc = 1;
		} else
			rc = 0;
		break;
	}
	default:
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static int
search_index(struct store *s, struct lookup *L, const json_t *idx, int depth,
    bool hinted, struct hit *h)
{
	const json_t *ms = json_object_get(idx, "manifests");
	char why[512];

	if (!json_is_array(ms)) {
		if (hinted || depth == 0)
			lookup_record(L, -EINVAL, s->path,
			    "index without a manifests array");
		return 0;
	}
	/* Rounds: 0 hinted and of the platform; 1 of the platform; 2 others.
	 * Without an image ID only round 0 can match. */
	for (int round = 0; round < (L->have_id ? 3 : 1); round++) {
		for (size_t i = 0; i < json_array_size(ms); i++) {
			const json_t *dj = json_array_get(ms, i);
			struct desc d;
			if (desc_parse(dj, &d, "index entry", why,
				sizeof(why)) != 0) {
				if (round == 0 && hinted)
					lookup_record(L, -EINVAL, s->path, why);
				continue;
			}
			bool hint = hinted ||
			    lookup_digest_hinted(L, d.digest) ||
			    desc_tag_hinted(L, dj);
			bool plat = platform_ok(L, dj);
			bool mine = round == 0 ? hint && plat :
			    round == 1	       ? !hint && plat :
						 !plat;
			if (!mine)
				continue;
			int r = search_desc(s, L, &d, hint, hint && plat, depth,
			    h);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

/* ---- the containerd cache --------------------------------------------- */

struct cd_pair {
	uint8_t config[DIGEST_LEN];
	uint8_t manifest[DIGEST_LEN];
};

/* What one content store is known to hold. seen is sorted. */
struct cd_cache {
	char *path;
	uint8_t (*seen)[DIGEST_LEN]; /* blobs examined, sorted */
	size_t nseen, seencap;
	struct cd_pair *pairs; /* manifests found, by config */
	size_t npairs, paircap;
	struct cd_cache *next;
};

static pthread_mutex_t cd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cd_cache *cd_caches; /* guarded by cd_lock */

static int
cd_cmp(const void *a, const void *b)
{
	return memcmp(a, b, DIGEST_LEN);
}

static bool
hex_digest(const char *name, uint8_t out[DIGEST_LEN])
{
	char full[DIGEST_STR_LEN + 8];
	if (strlen(name) != 64)
		return false;
	snprintf(full, sizeof(full), "sha256:%s", name);
	return digest_parse(full, out, NULL, 0) == 0;
}

/* Examines one blob of a content store: a manifest adds a pair. */
static void
cd_examine(struct cd_cache *c, int algfd, const char *name,
    const uint8_t d[DIGEST_LEN])
{
	struct stat st;
	char *buf = NULL;
	size_t len;
	json_t *j = NULL;
	struct desc cfg;
	int fd;

	if (fstatat(algfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_size < 2 ||
	    (uint64_t)st.st_size > IMAGESTORE_MAX_JSON)
		return;
	fd = openat(algfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	char c0;
	/* Cheap test first: JSON manifests start with '{'. */
	if (pread(fd, &c0, 1, 0) != 1 || c0 != '{' ||
	    read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, name, NULL, 0) != 0)
		goto out;
	/* Not verified here: the manifest is verified when it is used. */
	if (json_parse_object(buf, len, &j, name, NULL, 0) != 0 ||
	    blob_classify(NULL, j) != BLOB_MANIFEST ||
	    desc_parse(json_object_get(j, "config"), &cfg, "config", NULL, 0) !=
		0)
		goto out;
	if (c->npairs == c->paircap) {
		c->paircap = c->paircap ? c->paircap * 2 : 16;
		c->pairs = xreallocarray(c->pairs, c->paircap,
		    sizeof(*c->pairs));
	}
	memcpy(c->pairs[c->npairs].config, cfg.digest, DIGEST_LEN);
	memcpy(c->pairs[c->npairs].manifest, d, DIGEST_LEN);
	c->npairs++;
out:
	json_decref(j);
	free(buf);
	close(fd);
}

/*
 * Brings the cache of store s up to date (examining blobs not seen yet)
 * and copies out the manifests whose config is id. Called with cd_lock.
 */
static int
cd_refresh(struct store *s, const uint8_t id[DIGEST_LEN],
    uint8_t (**out)[DIGEST_LEN], size_t *nout, char *err, size_t errlen)
{
	struct cd_cache *c;
	int rc = 0;

	for (c = cd_caches; c != NULL; c = c->next)
		if (strcmp(c->path, s->path) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->path = xstrdup(s->path);
		c->next = cd_caches;
		cd_caches = c;
	}

	int dfd = dup(s->algfd);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dir == NULL) {
		if (dfd >= 0)
			close(dfd);
		return fail(err, errlen, -EIO, "blobs/sha256: %s",
		    strerror(errno));
	}
	size_t before = c->nseen, entries = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		uint8_t d[DIGEST_LEN];
		if (++entries > CD_MAX_BLOBS) {
			rc = fail(err, errlen, -EFBIG,
			    "blobs/sha256: more than %u entries", CD_MAX_BLOBS);
			break;
		}
		if (!hex_digest(de->d_name, d))
			continue;
		if (before > 0 &&
		    bsearch(d, c->seen, before, DIGEST_LEN, cd_cmp) != NULL)
			continue;
		cd_examine(c, s->algfd, de->d_name, d);
		if (c->nseen == c->seencap) {
			c->seencap = c->seencap ? c->seencap * 2 : 256;
			c->seen = xreallocarray(c->seen, c->seencap,
			    DIGEST_LEN);
		}
		memcpy(c->seen[c->nseen++], d, DIGEST_LEN);
	}
	closedir(dir);
	if (c->nseen > before)
		qsort(c->seen, c->nseen, DIGEST_LEN, cd_cmp);

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < c->npairs; i++) {
		if (memcmp(c->pairs[i].config, id, DIGEST_LEN) != 0)
			continue;
		*out = xreallocarray(*out, *nout + 1, DIGEST_LEN);
		memcpy((*out)[(*nout)++], c->pairs[i].manifest, DIGEST_LEN);
	}
	return rc;
}

void
imagestore_cache_clear(void)
{
	pthread_mutex_lock(&cd_lock);
	while (cd_caches != NULL) {
		struct cd_cache *c = cd_caches;
		cd_caches = c->next;
		free(c->path);
		free(c->seen);
		free(c->pairs);
		free(c);
	}
	pthread_mutex_unlock(&cd_lock);
}

static int
containerd_search(struct store *s, struct lookup *L, struct hit *h)
{
	uint8_t (*ms)[DIGEST_LEN] = NULL;
	size_t nms = 0;
	char why[512];
	int r;

	for (size_t i = 0; i < L->nhints; i++) {
		struct desc d = { .size = -1 };
		memcpy(d.digest, L->hints[i], DIGEST_LEN);
		digest_format(d.digest, d.dstr);
		int fd;
		struct stat st;
		/* A hint for another store: not an error here. */
		if (blob_open(s, d.digest, &fd, &st, why, sizeof(why)) != 0)
			continue;
		close(fd);
		if ((r = search_desc(s, L, &d, true, true, 0, h)) != 0)
			return r;
	}
	if (!L->have_id)
		return 0;

	pthread_mutex_lock(&cd_lock);
	r = cd_refresh(s, L->id, &ms, &nms, why, sizeof(why));
	pthread_mutex_unlock(&cd_lock);
	if (r != 0)
		lookup_record(L, r, s->path, why);
	r = 0;
	for (size_t i = 0; i < nms && r == 0; i++) {
		struct desc d = { .size = -1 };
		memcpy(d.digest, ms[i], DIGEST_LEN);
		digest_format(d.digest, d.dstr);
		r = search_desc(s, L, &d, true, true, 0, h);
	}
	free(ms);
	return r;
}

/* ---- applying a manifest ------------------------------------------------ */

static void
found_platform(struct image_found *f, const json_t *cfg)
{
	const char *os = json_string_value(json_object_get(cfg, "os"));
	const char *arch = json_string_value(json_object_get(cfg,
	    "architecture"));
	const char *var = json_string_value(json_object_get(cfg, "variant"));
	f->platform[0] = '\0';
	if (os != NULL && arch != NULL)
		snprintf(f->platform, sizeof(f->platform), "%.31s/%.31s%s%.31s",
		    os, arch, var ? "/" : "", var ? var : "");
}

/* Applies one layer blob of store s. */
static int
apply_blob_layer(struct store *s, struct lookup *L, const struct desc *d,
    char *err, size_t errlen)
{
	struct layer_src src = { .fd = -1 };
	struct stat st;
	int rc;

	if ((rc = blob_open(s, d->digest, &src.fd, &st, err, errlen)) != 0) {
		if (rc == -ENOENT)
			rc = -EAGAIN;
		return rc;
	}
	rc = blob_check_size(d->dstr, d->size, st.st_size,
	    L->lim->max_compressed, err, errlen);
	if (rc == 0)
		rc = layer_run(L, &src, d->dstr, d->digest, NULL, err, errlen);
	close(src.fd);
	return rc;
}

/* The manifest is found: check everything it names, then apply it. */
static int
apply_manifest(struct store *s, struct lookup *L, struct hit *h,
    struct image_found *f, char *err, size_t errlen)
{
	struct desc cfgd = { .size = -1 }, *layers = NULL;
	json_t *cfg = NULL;
	char why[768];
	size_t n;
	int rc;

	if ((rc = desc_parse(json_object_get(h->manifest, "config"), &cfgd,
		 "config", why, sizeof(why))) != 0)
		goto fail;
	const json_t *lj = json_object_get(h->manifest, "layers");
	if (!json_is_array(lj)) {
		rc = fail(why, sizeof(why), -EINVAL, "no layers array");
		goto fail;
	}
	n = json_array_size(lj);
	if (n > IMAGESTORE_MAX_LAYERS) {
		rc = fail(why, sizeof(why), -EFBIG,
		    "%zu layers, more than %d", n, IMAGESTORE_MAX_LAYERS);
		goto fail;
	}
	layers = xcalloc(n ? n : 1, sizeof(*layers));
	for (size_t i = 0; i < n; i++) {
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i);
		if ((rc = desc_parse(json_array_get(lj, i), &layers[i], what,
			 why, sizeof(why))) != 0)
			goto fail;
		if (!layer_media_ok(layers[i].media)) {
			rc = fail(why, sizeof(why), -EINVAL,
			    "layer %s: unsupported media type \"%.100s\"",
			    layers[i].dstr, layers[i].media);
			goto fail;
		}
	}
	/* The config (which is the image ID) and every layer must be there
	 * before anything is applied: a partial pull is RETRYABLE. */
	if ((rc = blob_json(s, cfgd.digest, cfgd.size, &cfg, why,
		 sizeof(why))) != 0) {
		if (rc == -ENOENT)
			rc = -EAGAIN;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		int fd;
		struct stat st;
		if ((rc = blob_open(s, layers[i].digest, &fd, &st, why,
			 sizeof(why))) != 0) {
			if (rc == -ENOENT)
				rc = -EAGAIN;
			goto fail;
		}
		close(fd);
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = apply_blob_layer(s, L, &layers[i], why,
			 sizeof(why))) != 0)
			goto fail;

	f->store = s->index;
	f->kind = s->kind;
	digest_format(cfgd.digest, f->image_id);
	memcpy(f->manifest, h->dstr, sizeof(f->manifest));
	found_platform(f, cfg);
	f->nlayers = n;
	goto out;
fail:
	rc = fail(err, errlen, rc, "store %s: image %s: manifest %s: %s",
	    s->path, cfgd.dstr[0] ? cfgd.dstr : L->idstr, h->dstr, why);
out:
	json_decref(cfg);
	free(layers);
	return rc;
}

/* Opens a store directory: OCI layout or content store. 1 when it is
 * neither (or absent), 0 when opened. */
static int
store_open_dir(struct store *s, char *err, size_t errlen)
{
	struct stat st;
	int bfd;

	s->dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 1;
		return fail(err, errlen, -EIO, "open: %s", strerror(errno));
	}
	bfd = openat(s->dfd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		O_CLOEXEC);
	if (bfd >= 0) {
		s->algfd = openat(bfd, "sha256", O_RDONLY | O_DIRECTORY |
			O_NOFOLLOW | O_CLOEXEC);
		close(bfd);
	}
	if (fstatat(s->dfd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) &&
	    fstatat(s->dfd, "index.json", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		s->kind = IMAGESTORE_OCI_LAYOUT;
		return 0;
	}
	if (s->algfd >= 0) {
		s->kind = IMAGESTORE_CONTAINERD;
		return 0;
	}
	return 1;
}

static int
oci_search(struct store *s, struct lookup *L, struct hit *h)
{
	char why[512], *buf = NULL;
	json_t *idx = NULL;
	size_t len;
	int fd, rc;

	fd = openat(s->dfd, "index.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof(why), "index.json: %s", strerror(errno));
		lookup_record(L, errno == ELOOP ? -EINVAL : -EIO, s->path, why);
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		lookup_record(L, -EINVAL, s->path,
		    "index.json is not a regular file");
		return 0;
	}
	rc = read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, "index.json", why,
	    sizeof(why));
	close(fd);
	if (rc == 0)
		rc = json_parse_object(buf, len, &idx, "index.json", why,
		    sizeof(why));
	free(buf);
	if (rc != 0) {
		lookup_record(L, rc, s->path, why);
		return 0;
	}
	rc = search_index(s, L, idx, 0, false, h);
	json_decref(idx);
	return rc;
}

/* ---- docker-archive --------------------------------------------------- */

/* One image of manifest.json that may be the one. */
struct da_image {
	const char *config; /* entry name, owned by the manifest JSON */
	bool config_named;  /* the name carries the config digest */
	const char *layers[IMAGESTORE_MAX_LAYERS];
	long pos[IMAGESTORE_MAX_LAYERS]; /* entry ordinal, -1 unseen */
	size_t nlayers;
};

/* The archive being read, pass after pass. */
struct da {
	const char *path;
	int fd;
	struct stat st; /* at the first pass: the file must not change */
	struct archive *a;
};

static const char *
da_name(struct archive_entry *e)
{
	const char *n = archive_entry_pathname(e);
	if (n == NULL)
		return "";
	while (n[0] == '.' && n[1] == '/')
		n += 2;
	return n;
}

/* Starts a pass over the outer tar. */
static int
da_pass(struct da *d, char *err, size_t errlen)
{
	struct stat st;

	if (d->a != NULL)
		archive_read_free(d->a);
	d->a = NULL;
	if (fstat(d->fd, &st) != 0 || st.st_size != d->st.st_size ||
	    st.st_mtim.tv_sec != d->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != d->st.st_mtim.tv_nsec)
		return fail(err, errlen, -EAGAIN,
		    "the archive changed while it was read");
	if (lseek(d->fd, 0, SEEK_SET) != 0)
		return fail(err, errlen, -EIO, "seek: %s", strerror(errno));
	d->a = archive_read_new();
	if (d->a == NULL)
		return fail(err, errlen, -ENOMEM, "archive_read_new failed");
	if (archive_read_support_format_tar(d->a) != ARCHIVE_OK ||
	    archive_read_open_fd(d->a, d->fd, 65536) != ARCHIVE_OK)
		return fail(err, errlen, -EINVAL, "not a tar: %s",
		    archive_error_string(d->a) ? archive_error_string(d->a) :
						 "?");
	return 0;
}

/* The next header: 1, 0 at the end, <0 on error. */
static int
da_next(struct da *d, struct archive_entry **e, unsigned long *count,
    char *err, size_t errlen)
{
	int r = archive_read_next_header(d->a, e);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return fail(err, errlen, -EINVAL, "entry %lu: %s", *count,
		    archive_error_string(d->a) ? archive_error_string(d->a) :
						 "corrupt tar");
	if (++*count > DA_MAX_ENTRIES)
		return fail(err, errlen, -EFBIG, "more than %u entries",
		    DA_MAX_ENTRIES);
	return 1;
}

/* Reads the current entry (a regular file of at most max bytes). */
static int
da_read_entry(struct da *d, struct archive_entry *e, char **out, size_t *len,
    const char *name, char *err, size_t errlen)
{
	if (archive_entry_filetype(e) != AE_IFREG)
		return fail(err, errlen, -EINVAL, "%s is not a regular file",
		    name);
	la_int64_t sz = archive_entry_size(e);
	if (sz < 0 || (uint64_t)sz > IMAGESTORE_MAX_JSON)
		return fail(err, errlen, -EFBIG, "%s: %lld bytes, over %u",
		    name, (long long)sz, IMAGESTORE_MAX_JSON);
	char *buf = xmalloc((size_t)sz + 1);
	size_t got = 0;
	while (got < (size_t)sz) {
		la_ssize_t n = archive_read_data(d->a, buf + got,
		    (size_t)sz - got);
		if (n <= 0) {
			free(buf);
			return fail(err, errlen, -EINVAL, "%s: truncated",
			    name);
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* The digest an entry name carries: "blobs/sha256/<hex>", "<hex>.json",
 * "<hex>.tar" or "<hex>/layer.tar" is not one (a v1 ID), so not that. */
static bool
da_named_digest(const char *name, uint8_t out[DIGEST_LEN])
{
	char hex[65];
	if (strncmp(name, "blobs/sha256/", 13) == 0)
		return hex_digest(name + 13, out);
	size_t n = strlen(name);
	if (n == 69 && strcmp(name + 64, ".json") == 0) {
		memcpy(hex, name, 64);
		hex[64] = '\0';
		return hex_digest(hex, out);
	}
	return false;
}

static bool
da_tag_hinted(const struct lookup *L, const json_t *img)
{
	if (L->any)
		return true;
	const json_t *tags = json_object_get(img, "RepoTags");
	for (size_t i = 0; i < json_array_size(tags); i++) {
		const char *t = json_string_value(json_array_get(tags, i));
		if (t != NULL && lookup_tag_hinted(L, t))
			return true;
	}
	return false;
}

/* Fills the candidates from manifest.json. */
static int
da_candidates(struct lookup *L, const json_t *man, struct da_image *c,
    size_t *nc, char *err, size_t errlen)
{
	if (!json_is_array(man))
		return fail(err, errlen, -EINVAL,
		    "manifest.json: not a JSON array");
	if (json_array_size(man) > DA_MAX_IMAGES)
		return fail(err, errlen, -EFBIG,
		    "manifest.json: more than %d images", DA_MAX_IMAGES);
	*nc = 0;
	for (size_t i = 0; i < json_array_size(man); i++) {
		const json_t *img = json_array_get(man, i);
		const char *cfg = json_string_value(json_object_get(img,
		    "Config"));
		const json_t *lj = json_object_get(img, "Layers");
		if (cfg == NULL || !json_is_array(lj))
			return fail(err, errlen, -EINVAL,
			    "manifest.json: image %zu: no Config or Layers", i);
		uint8_t d[DIGEST_LEN];
		bool named = da_named_digest(cfg, d);
		if (L->have_id) {
			if (named && memcmp(d, L->id, DIGEST_LEN) != 0)
				continue;
		} else if (!da_tag_hinted(L, img))
			continue;
		if (*nc == DA_MAX_CANDIDATES)
			return fail(err, errlen, -EFBIG,
			    "manifest.json: more than %d images to hash",
			    DA_MAX_CANDIDATES);
		size_t n = json_array_size(lj);
		if (n > IMAGESTORE_MAX_LAYERS)
			return fail(err, errlen, -EFBIG,
			    "manifest.json: image %zu: %zu layers, more than "
			    "%d", i, n, IMAGESTORE_MAX_LAYERS);
		struct da_image *ci = &c[(*nc)++];
		ci->config = cfg;
		ci->config_named = named;
		ci->nlayers = n;
		for (size_t k = 0; k < n; k++) {
			const char *ln = json_string_value(json_array_get(lj,
			    k));
			if (ln == NULL || strlen(ln) > DA_MAX_NAME)
				return fail(err, errlen, -EINVAL,
				    "manifest.json: image %zu: layer %zu is "
				    "not a name", i, k);
			while (ln[0] == '.' && ln[1] == '/')
				ln += 2;
			ci->layers[k] = ln;
			ci->pos[k] = -1;
		}
		while (ci->config[0] == '.' && ci->config[1] == '/')
			ci->config += 2;
	}
	if (L->any && *nc > 1)
		return fail(err, errlen, -EINVAL,
		    "manifest.json: %zu images; name one by image ID or tag",
		    *nc);
	return 0;
}

/* Applies the layers of image c, in order, in as few passes as it takes. */
static int
da_apply_layers(struct da *d, struct lookup *L, const struct da_image *c,
    const json_t *diff_ids, char *err, size_t errlen)
{
	char why[768];
	size_t k = 0;
	int rc;

	while (k < c->nlayers) {
		struct archive_entry *e;
		unsigned long count = 0;
		if ((rc = da_pass(d, err, errlen)) != 0)
			return rc;
		for (;;) {
			int r = da_next(d, &e, &count, err, errlen);
			if (r < 0)
				return r;
			if (r == 0)
				return fail(err, errlen, -EINVAL,
				    "layer %s: entry gone", c->layers[k]);
			if ((long)(count - 1) != c->pos[k])
				continue;
			la_int64_t sz = archive_entry_size(e);
			if (sz < 0 || (uint64_t)sz > L->lim->max_compressed)
				return fail(err, errlen, -EFBIG,
				    "layer %s: %lld bytes, over %llu",
				    c->layers[k], (long long)sz,
				    (unsigned long long)L->lim->max_compressed);
			uint8_t want0[DIGEST_LEN], want1[DIGEST_LEN];
			digest_parse(json_string_value(json_array_get(diff_ids,
					 k)),
			    want0, NULL, 0);
			bool named = da_named_digest(c->layers[k], want1);
			struct layer_src src = { .fd = -1, .ar = d->a };
			rc = layer_run(L, &src, c->layers[k], want0,
			    named ? want1 : NULL, why, sizeof(why));
			if (rc != 0)
				return fail(err, errlen, rc, "%s", why);
			k++;
			if (k == c->nlayers || c->pos[k] <= (long)(count - 1))
				break; /* done, or the next one is behind */
		}
	}
	return 0;
}

static int
da_load(struct store *s, struct lookup *L, struct image_found *f, char *err,
    size_t errlen)
{
	struct da d = { .path = s->path, .fd = -1 };
	struct da_image *cands = NULL, *c = NULL;
	struct archive_entry *e;
	json_t *man = NULL, *cfg = NULL;
	char why[768], *buf = NULL;
	uint8_t cfgid[DIGEST_LEN];
	bool ours = false; /* the image is identified: errors are final */
	unsigned long count;
	size_t nc = 0, len;
	int rc, r;

	d.fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (d.fd < 0) {
		rc = errno == ENOENT ? 1 : fail(why, sizeof(why), -EIO,
						  "open: %s", strerror(errno));
		goto out;
	}
	if (fstat(d.fd, &d.st) != 0 || !S_ISREG(d.st.st_mode)) {
		rc = fail(why, sizeof(why), -EINVAL, "not a regular file");
		goto out;
	}

	/* Pass 1: manifest.json. */
	if ((rc = da_pass(&d, why, sizeof(why))) != 0)
		goto out;
	count = 0;
	while ((r = da_next(&d, &e, &count, why, sizeof(why))) > 0) {
		if (strcmp(da_name(e), "manifest.json") != 0)
			continue;
		if (buf != NULL) {
			rc = fail(why, sizeof(why), -EINVAL,
			    "two manifest.json entries");
			goto out;
		}
		if ((rc = da_read_entry(&d, e, &buf, &len, "manifest.json", why,
			 sizeof(why))) != 0)
			goto out;
	}
	if ((rc = r) < 0)
		goto out;
	if (buf == NULL) {
		rc = fail(why, sizeof(why), -EINVAL,
		    "no manifest.json: not `docker save` output");
		goto out;
	}
	json_error_t je;
	man = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	buf = NULL;
	if (man == NULL) {
		rc = fail(why, sizeof(why), -EINVAL,
		    "manifest.json: invalid JSON at line %d: %s", je.line,
		    je.text);
		goto out;
	}
	cands = xcalloc(DA_MAX_CANDIDATES, sizeof(*cands));
	if ((rc = da_candidates(L, man, cands, &nc, why, sizeof(why))) != 0)
		goto out;
	if (nc == 0) {
		rc = 1;
		goto out;
	}

	/* Pass 2: the candidates' configs, and where every layer is. */
	if ((rc = da_pass(&d, why, sizeof(why))) != 0)
		goto out;
	count = 0;
	while ((r = da_next(&d, &e, &count, why, sizeof(why))) > 0) {
		const char *name = da_name(e);
		for (size_t i = 0; i < nc; i++)
			for (size_t k = 0; k < cands[i].nlayers; k++) {
				if (strcmp(name, cands[i].layers[k]) != 0)
					continue;
				/* Same name listed twice in Layers is fine
				 * (docker save dedups); twice in the tar is
				 * ambiguous. */
				if (cands[i].pos[k] >= 0 &&
				    cands[i].pos[k] != (long)(count - 1)) {
					rc = fail(why, sizeof(why), -EINVAL,
					    "two entries named %.200s", name);
					goto out;
				}
				cands[i].pos[k] = (long)(count - 1);
			}
		if (c != NULL)
			continue;
		for (size_t i = 0; i < nc && c == NULL; i++) {
			if (strcmp(name, cands[i].config) != 0)
				continue;
			if ((rc = da_read_entry(&d, e, &buf, &len, name, why,
				 sizeof(why))) != 0)
				goto out;
			digest_sha256(buf, len, cfgid);
			if (cands[i].config_named) {
				uint8_t nd[DIGEST_LEN];
				da_named_digest(name, nd);
				if (memcmp(nd, cfgid, DIGEST_LEN) != 0) {
					char gs[DIGEST_STR_LEN];
					ours = L->have_id &&
					    memcmp(nd, L->id, DIGEST_LEN) == 0;
					digest_format(cfgid, gs);
					rc = fail(why, sizeof(why), -EINVAL,
					    "config %.200s: digest mismatch: "
					    "its bytes hash to %s",
					    name, gs);
					goto out;
				}
			}
			if (!L->have_id ||
			    memcmp(cfgid, L->id, DIGEST_LEN) == 0) {
				c = &cands[i];
				ours = true;
				rc = json_parse_object(buf, len, &cfg, name,
				    why, sizeof(why));
				if (rc != 0)
					goto out;
			}
			free(buf);
			buf = NULL;
		}
	}
	if ((rc = r) < 0)
		goto out;
	if (c == NULL) {
		rc = 1;
		goto out;
	}

	/* Everything the layers need, before any is applied. */
	const json_t *ids = json_object_get(json_object_get(cfg, "rootfs"),
	    "diff_ids");
	if (json_array_size(ids) != c->nlayers) {
		rc = fail(why, sizeof(why), -EINVAL,
		    "config %.200s: %zu diff_ids for %zu layers", c->config,
		    json_array_size(ids), c->nlayers);
		goto out;
	}
	for (size_t k = 0; k < c->nlayers; k++) {
		uint8_t x[DIGEST_LEN];
		char dwhy[256];
		if (c->pos[k] < 0) {
			rc = fail(why, sizeof(why), -EINVAL,
			    "layer %.200s is listed but not in the archive",
			    c->layers[k]);
			goto out;
		}
		if (digest_parse(json_string_value(json_array_get(ids, k)), x,
			dwhy, sizeof(dwhy)) != 0) {
			rc = fail(why, sizeof(why), -EINVAL,
			    "config: diff_ids[%zu]: %s", k, dwhy);
			goto out;
		}
	}
	if ((rc = da_apply_layers(&d, L, c, ids, why, sizeof(why))) != 0)
		goto out;

	f->store = s->index;
	f->kind = s->kind;
	digest_format(cfgid, f->image_id);
	f->manifest[0] = '\0';
	found_platform(f, cfg);
	f->nlayers = c->nlayers;
out:
	/* A broken archive that is not the image's is remembered, and the
	 * other stores are searched. */
	if (rc < 0 && !ours) {
		lookup_record(L, rc, s->path, why);
		rc = 1;
	} else if (rc < 0)
		fail(err, errlen, rc, "store %s: image %s: %s", s->path,
		    L->idstr, why);
	if (d.a != NULL)
		archive_read_free(d.a);
	if (d.fd >= 0)
		close(d.fd);
	json_decref(man);
	json_decref(cfg);
	free(buf);
	free(cands);
	return rc;
}

/* ---- the entry point -------------------------------------------------- */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Tries one store: 0 found and applied, 1 not there, <0 a final error
 * (err filled). Errors that do not end the search are remembered in L.
 */
static int
store_try(struct lookup *L, const char *path, size_t index,
    struct image_found *f, char *err, size_t errlen)
{
	struct store s = { .path = path, .index = index, .dfd = -1,
		.algfd = -1 };
	struct hit h = { NULL, "" };
	char why[512];
	int rc;

	if (ends_with(path, ".tar")) {
		s.kind = IMAGESTORE_DOCKER_ARCHIVE;
		return da_load(&s, L, f, err, errlen);
	}
	rc = store_open_dir(&s, why, sizeof(why));
	if (rc < 0) {
		lookup_record(L, rc, path, why);
		rc = 1;
		goto out;
	}
	if (rc == 1)
		goto out;
	rc = s.kind == IMAGESTORE_OCI_LAYOUT ? oci_search(&s, L, &h) :
					      containerd_search(&s, L, &h);
	if (rc == 0) {
		rc = 1;
		goto out;
	}
	rc = apply_manifest(&s, L, &h, f, err, errlen);
out:
	json_decref(h.manifest);
	if (s.algfd >= 0)
		close(s.algfd);
	if (s.dfd >= 0)
		close(s.dfd);
	return rc;
}

int
imagestore_load(const char *const *stores, size_t nstores,
    const struct image_query *q, const struct layer_limits *lim, fileset *fs,
    struct image_found *found, char *err, size_t errlen)
{
	struct lookup L;
	struct layer_limits deflim;
	struct image_found dummy;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&L, 0, sizeof(L));
	if (lim == NULL) {
		layer_limits_default(&deflim);
		lim = &deflim;
	}
	L.q = q;
	L.lim = lim;
	L.fs = fs;
	if (found == NULL)
		found = &dummy;
	memset(found, 0, sizeof(*found));
	if ((rc = lookup_init(&L, q, err, errlen)) != 0)
		goto out;

	for (size_t i = 0; i < nstores; i++) {
		rc = store_try(&L, stores[i], i, found, err, errlen);
		if (rc <= 0)
			goto out;
	}
	if (L.rec_rc != 0) {
		rc = fail(err, errlen, L.rec_rc, "image %s: %s", L.idstr,
		    L.rec_err);
		goto out;
	}
	/* Not found: name every store searched. */
	rc = -ENOENT;
	if (err != NULL && errlen > 0) {
		size_t o = (size_t)snprintf(err, errlen,
		    "image %s not found in stores: ", L.idstr);
		for (size_t i = 0; i < nstores && o < errlen; i++)
			o += (size_t)snprintf(err + o, errlen - o, "%s%s",
			    i ? ", " : "", stores[i]);
		if (nstores == 0 && o < errlen)
			snprintf(err + o, errlen - o, "(none configured)");
	}
out:
	free(L.hints);
	return rc;
}
