/*
 * imagestore: finds an image by its image ID (config digest), or by repo
 * digest or tag, in OCI image layouts, containerd content stores and
 * docker-archive tarballs, and streams its layers, in order, into a
 * fileset through layer_apply. This file is the front: the query, the
 * store kinds and the dispatch between them, descriptors, the walk of
 * indexes and manifests that layouts and content stores share, platform
 * selection, and applying the manifest found. The kinds themselves are in
 * oci_layout.c, containerd.c and docker_archive.c; reading and verifying
 * blobs in blob.c (imagestore_int.h lists them). docs/architecture.md,
 * "The scanner", places the module in a scan.
 *
 * Finding. Stores are tried in the order given; the first that holds the
 * image wins. In an OCI layout the search starts at index.json and walks
 * descriptors depth first (nested indexes at most IMAGESTORE_MAX_DEPTH
 * deep, at most IMAGESTORE_MAX_VISITS manifests/indexes read per store).
 * At every index the descriptors are tried in three rounds: hinted ones
 * (the digest is a repo digest of the query, or an annotation names one
 * of its tags, or the parent index was hinted) whose platform matches;
 * then the other platform-matching ones; then those of other platforms. A
 * manifest is the hit when its config digest is the image ID: the image
 * ID decides, the platform only orders the work. Without an image ID only
 * hinted manifests of the query's platform match. A containerd content
 * store has no index: hinted digests are looked up as blobs directly,
 * then a cache maps config digests to manifests (containerd.c). A
 * docker-archive's manifest.json lists images (docker_archive.c).
 *
 * Errors while searching. A blob that cannot be read (missing, corrupt)
 * on a path the query hinted at, or a store that cannot be read at all
 * (bad index.json), is remembered in the lookup; the search goes on in
 * the other stores and the first remembered error is returned only when
 * no store holds the image. Unreadable blobs nothing pointed us to are
 * skipped silently: a corrupt unrelated image must not make every lookup
 * fail. Once the manifest is found, every error is final.
 *
 * Sizes: a lookup reads at most IMAGESTORE_MAX_VISITS JSON blobs of at
 * most IMAGESTORE_MAX_JSON bytes per store, and applies at most
 * IMAGESTORE_MAX_LAYERS layers; it holds one index or manifest chain in
 * memory at a time.
 *
 * Concurrency: imagestore_load is reentrant: everything but the
 * containerd cache (see containerd.c) belongs to one call, so workers may
 * load images on separate threads into separate filesets.
 */
#include "scan/oci/imagestore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/textbuf.h"
#include "util/xmalloc.h"

static const char oci_index_media[] = "application/vnd.oci.image.index.v1+json";
static const char oci_manifest_media[] =
    "application/vnd.oci.image.manifest.v1+json";
static const char docker_list_media[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
static const char docker_manifest_media[] =
    "application/vnd.docker.distribution.manifest.v2+json";

/* ---- the query ---------------------------------------------------- */

void
image_lookup_record(struct image_lookup *L, int rc, const char *store,
    const char *msg)
{
	if (L->rec_rc != 0)
		return;
	L->rec_rc = rc;
	snprintf(L->rec_err, sizeof(L->rec_err), "store %s: %s", store, msg);
}

/* Splits "os/arch[/variant]" into L. */
static int
lookup_platform(struct image_lookup *L, const char *p, char *err,
    size_t errlen)
{
	const char *s1 = strchr(p, '/');
	const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	size_t lo = s1 ? (size_t)(s1 - p) : 0;
	size_t la = s1 ? (s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1)) : 0;
	size_t lv = s2 ? strlen(s2 + 1) : 0;

	if (s1 == NULL || lo == 0 || la == 0 || lo >= sizeof(L->os) ||
	    la >= sizeof(L->arch) || lv >= sizeof(L->variant) ||
	    (s2 != NULL && (lv == 0 || strchr(s2 + 1, '/') != NULL))) {
		errbuf_set(err, errlen,
		    "platform \"%.64s\": want os/arch[/variant]", p);
		return -EINVAL;
	}
	memcpy(L->os, p, lo);
	memcpy(L->arch, s1 + 1, la);
	if (s2 != NULL)
		memcpy(L->variant, s2 + 1, lv);
	return 0;
}

int
image_lookup_init(struct image_lookup *L, const struct image_query *q,
    char *err, size_t errlen)
{
	char why[256];

	if (q->image_id != NULL) {
		if (digest_parse(q->image_id, L->id, why, sizeof(why)) != 0) {
			errbuf_set(err, errlen, "image id: %s", why);
			return -EINVAL;
		}
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
	return lookup_platform(L, q->platform ? q->platform : "linux/amd64",
	    err, errlen);
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
	return strchr(annotated, ':') == NULL &&
	    strchr(annotated, '/') == NULL && t != NULL &&
	    strcmp(annotated, t) == 0;
}

bool
image_lookup_tag_hinted(const struct image_lookup *L, const char *ref)
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
lookup_digest_hinted(const struct image_lookup *L,
    const uint8_t d[DIGEST_LEN])
{
	if (L->any)
		return true;
	for (size_t i = 0; i < L->nhints; i++)
		if (memcmp(L->hints[i], d, DIGEST_LEN) == 0)
			return true;
	return false;
}

/* ---- descriptors, indexes and manifests ----------------------------- */

int
image_desc_parse(const json_t *j, struct image_desc *d, const char *what,
    char *err, size_t errlen)
{
	char why[256];

	if (!json_is_object(j)) {
		errbuf_set(err, errlen, "%s: not an object", what);
		return -EINVAL;
	}
	const json_t *dg = json_object_get(j, "digest");
	if (!json_is_string(dg)) {
		errbuf_set(err, errlen, "%s: no digest", what);
		return -EINVAL;
	}
	if (digest_parse(json_string_value(dg), d->digest, why, sizeof(why)) !=
	    0) {
		errbuf_set(err, errlen, "%s: digest: %s", what, why);
		return -EINVAL;
	}
	digest_format(d->digest, d->dstr);
	const json_t *sz = json_object_get(j, "size");
	d->size = -1;
	if (sz != NULL) {
		if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
			errbuf_set(err, errlen, "%s %s: size is not a count",
			    what, d->dstr);
			return -EINVAL;
		}
		d->size = (int64_t)json_integer_value(sz);
	}
	const json_t *mt = json_object_get(j, "mediaType");
	d->media = json_is_string(mt) ? json_string_value(mt) : NULL;
	return 0;
}

enum image_blob_kind
image_blob_classify(const char *desc_media, const json_t *j)
{
	const json_t *mt = json_object_get(j, "mediaType");
	const char *m = json_is_string(mt) ? json_string_value(mt) : desc_media;
	if (m != NULL) {
		if (strcmp(m, oci_index_media) == 0 ||
		    strcmp(m, docker_list_media) == 0)
			return IMAGE_BLOB_INDEX;
		if (strcmp(m, oci_manifest_media) == 0 ||
		    strcmp(m, docker_manifest_media) == 0)
			return IMAGE_BLOB_MANIFEST;
		return IMAGE_BLOB_OTHER;
	}
	/* OCI allows mediaType to be absent: go by shape. */
	if (json_is_array(json_object_get(j, "manifests")))
		return IMAGE_BLOB_INDEX;
	if (json_is_object(json_object_get(j, "config")) &&
	    json_is_array(json_object_get(j, "layers")))
		return IMAGE_BLOB_MANIFEST;
	return IMAGE_BLOB_OTHER;
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

bool
image_platform_ok(const struct image_lookup *L, const json_t *d)
{
	const json_t *p = json_object_get(d, "platform");
	if (!json_is_object(p))
		return true;
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p,
	    "architecture"));
	const char *var = json_string_value(json_object_get(p, "variant"));
	if (os == NULL || arch == NULL || strcmp(os, L->os) != 0 ||
	    strcmp(arch, L->arch) != 0)
		return false;
	return L->variant[0] == '\0' || var == NULL ||
	    strcmp(var, L->variant) == 0;
}

/* Whether an index descriptor's annotations name one of the query's tags. */
static bool
desc_tag_hinted(const struct image_lookup *L, const json_t *d)
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
		if (v != NULL && image_lookup_tag_hinted(L, v))
			return true;
	}
	return false;
}

/* Whether manifest j (descriptor d) is the one sought. */
static bool
search_manifest(struct image_store *s, struct image_lookup *L,
    const struct image_desc *d, json_t **j, bool hinted, bool record,
    struct image_hit *h)
{
	struct image_desc cfg;
	char why[768];

	if (image_desc_parse(json_object_get(*j, "config"), &cfg, "config",
		why, sizeof(why)) != 0) {
		if (record)
			image_lookup_record(L, -EINVAL, s->path, why);
		return false;
	}
	if (L->have_id ? memcmp(cfg.digest, L->id, DIGEST_LEN) != 0 : !hinted)
		return false;
	h->manifest = *j;
	*j = NULL;
	memcpy(h->dstr, d->dstr, sizeof(h->dstr));
	return true;
}

bool
image_search_desc(struct image_store *s, struct image_lookup *L,
    const struct image_desc *d, bool hinted, bool record, int depth,
    struct image_hit *h)
{
	char why[768];
	json_t *j = NULL;
	bool found = false;
	int rc;

	if (s->visits >= IMAGESTORE_MAX_VISITS) {
		if (s->visits++ == IMAGESTORE_MAX_VISITS) {
			snprintf(why, sizeof(why),
			    "more than %d manifests and indexes to search",
			    IMAGESTORE_MAX_VISITS);
			image_lookup_record(L, -EFBIG, s->path, why);
		}
		return false;
	}
	s->visits++;
	rc = blob_read_json(s, d->digest, d->size, &j, why, sizeof(why));
	if (rc != 0) {
		if (record)
			image_lookup_record(L, rc == -ENOENT ? -EAGAIN : rc,
			    s->path, why);
		return false;
	}
	switch (image_blob_classify(d->media, j)) {
	case IMAGE_BLOB_INDEX:
		if (depth >= IMAGESTORE_MAX_DEPTH) {
			snprintf(why, sizeof(why),
			    "index %s: indexes nested more than %d deep",
			    d->dstr, IMAGESTORE_MAX_DEPTH);
			image_lookup_record(L, -EFBIG, s->path, why);
			break;
		}
		found = image_search_index(s, L, j, depth + 1, hinted, h);
		break;
	case IMAGE_BLOB_MANIFEST:
		found = search_manifest(s, L, d, &j, hinted, record, h);
		break;
	case IMAGE_BLOB_OTHER:
		break;
	}
	json_decref(j);
	return found;
}

bool
image_search_index(struct image_store *s, struct image_lookup *L,
    const json_t *idx, int depth, bool hinted, struct image_hit *h)
{
	const json_t *ms = json_object_get(idx, "manifests");
	char why[512];

	if (!json_is_array(ms)) {
		if (hinted || depth == 0)
			image_lookup_record(L, -EINVAL, s->path,
			    "index without a manifests array");
		return false;
	}
	/* Rounds: 0 hinted and of the platform; 1 of the platform; 2 others.
	 * Without an image ID only round 0 can match. */
	for (int round = 0; round < (L->have_id ? 3 : 1); round++) {
		for (size_t i = 0; i < json_array_size(ms); i++) {
			const json_t *dj = json_array_get(ms, i);
			struct image_desc d;
			if (image_desc_parse(dj, &d, "index entry", why,
				sizeof(why)) != 0) {
				if (round == 0 && hinted)
					image_lookup_record(L, -EINVAL,
					    s->path, why);
				continue;
			}
			bool hint = hinted ||
			    lookup_digest_hinted(L, d.digest) ||
			    desc_tag_hinted(L, dj);
			bool plat = image_platform_ok(L, dj);
			bool mine = round == 0 ? hint && plat :
			    round == 1	       ? !hint && plat :
						 !plat;
			if (mine && image_search_desc(s, L, &d, hint,
					hint && plat, depth, h))
				return true;
		}
	}
	return false;
}

/* ---- applying a manifest ------------------------------------------------ */

uint8_t (*image_diff_ids(const struct image_lookup *L, const json_t *cfg,
    size_t n))[DIGEST_LEN]
{
	const json_t *a = json_object_get(json_object_get(cfg, "rootfs"),
	    "diff_ids");
	if (L->cache == NULL || !json_is_array(a) || json_array_size(a) != n ||
	    n == 0)
		return NULL;
	uint8_t (*ids)[DIGEST_LEN] = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (s == NULL || digest_parse(s, ids[i], NULL, 0) != 0) {
			free(ids);
			return NULL;
		}
	}
	return ids;
}

void
image_found_platform(struct image_found *f, const json_t *cfg)
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

int
image_manifest_layers(const json_t *manifest, struct image_desc **layers,
    size_t *n, char *err, size_t errlen)
{
	const json_t *lj = json_object_get(manifest, "layers");
	int rc;

	*layers = NULL;
	if (!json_is_array(lj)) {
		errbuf_set(err, errlen, "no layers array");
		return -EINVAL;
	}
	*n = json_array_size(lj);
	if (*n > IMAGESTORE_MAX_LAYERS) {
		errbuf_set(err, errlen, "%zu layers, more than %d", *n,
		    IMAGESTORE_MAX_LAYERS);
		return -EFBIG;
	}
	*layers = xcalloc(*n ? *n : 1, sizeof(**layers));
	for (size_t i = 0; i < *n; i++) {
		struct image_desc *d = &(*layers)[i];
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i);
		if ((rc = image_desc_parse(json_array_get(lj, i), d, what, err,
			 errlen)) != 0)
			return rc;
		if (!layer_media_ok(d->media)) {
			errbuf_set(err, errlen,
			    "layer %s: unsupported media type \"%.100s\"",
			    d->dstr, d->media);
			return -EINVAL;
		}
	}
	return 0;
}

/* Whether blob d of s is there; a missing one is -EAGAIN (a pull in
 * progress). */
static int
blob_present(const struct image_store *s, const uint8_t d[DIGEST_LEN],
    char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	rc = blob_open(s, d, &fd, &st, err, errlen);
	if (rc == 0)
		close(fd);
	return rc == -ENOENT ? -EAGAIN : rc;
}

/* Applies one layer blob of store s (diff: its diffID, or NULL). */
static int
apply_blob_layer(struct image_store *s, struct image_lookup *L,
    const struct image_desc *d, const uint8_t *diff, bool verify, char *err,
    size_t errlen)
{
	struct blob_stream src = { .fd = -1 };
	struct stat st;
	int rc;

	if ((rc = blob_open(s, d->digest, &src.fd, &st, err, errlen)) != 0)
		return rc == -ENOENT ? -EAGAIN : rc;
	rc = blob_check_size(d->dstr, d->size, st.st_size,
	    L->lim->max_compressed, err, errlen);
	if (rc == 0)
		rc = blob_apply_layer(L, &src, d->dstr, d->digest, NULL, diff,
		    verify, err, errlen);
	close(src.fd);
	return rc;
}

/* The manifest is found: check everything it names, then apply it. */
static int
apply_manifest(struct image_store *s, struct image_lookup *L,
    struct image_hit *h, struct image_found *f, char *err, size_t errlen)
{
	struct image_desc cfgd = { .size = -1 }, *layers = NULL;
	uint8_t (*ids)[DIGEST_LEN] = NULL;
	json_t *cfg = NULL;
	char why[768];
	size_t n = 0;
	int rc;

	if ((rc = image_desc_parse(json_object_get(h->manifest, "config"),
		 &cfgd, "config", why, sizeof(why))) != 0 ||
	    (rc = image_manifest_layers(h->manifest, &layers, &n, why,
		 sizeof(why))) != 0)
		goto fail;
	/* The config (which is the image ID) and every layer must be there
	 * before anything is applied: a partial pull is RETRYABLE. */
	if ((rc = blob_read_json(s, cfgd.digest, cfgd.size, &cfg, why,
		 sizeof(why))) != 0) {
		if (rc == -ENOENT)
			rc = -EAGAIN;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = blob_present(s, layers[i].digest, why,
			 sizeof(why))) != 0)
			goto fail;
	ids = image_diff_ids(L, cfg, n);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *diff = ids != NULL ? ids[i] : NULL;
		bool verify;
		rc = blob_cached_layer(L, diff, layers[i].digest,
		    layers[i].dstr, &verify, why, sizeof(why));
		if (rc == -ENOENT)
			rc = apply_blob_layer(s, L, &layers[i], diff, verify,
			    why, sizeof(why));
		if (rc != 0)
			goto fail;
	}

	f->store = s->index;
	f->kind = s->kind;
	digest_format(cfgd.digest, f->image_id);
	memcpy(f->manifest, h->dstr, sizeof(f->manifest));
	image_found_platform(f, cfg);
	f->nlayers = n;
	goto out;
fail:
	errbuf_set(err, errlen, "store %s: image %s: manifest %s: %s",
	    s->path, cfgd.dstr[0] ? cfgd.dstr : L->idstr, h->dstr, why);
out:
	json_decref(cfg);
	free(layers);
	free(ids);
	return rc;
}

/* ---- the stores ------------------------------------------------------- */

/*
 * Opens a store directory and tells its kind: an OCI layout, or a content
 * store (blobs/sha256 without a layout). -ENOENT when it is neither (or
 * absent), -EIO when it cannot be opened.
 */
static int
store_open_dir(struct image_store *s, char *err, size_t errlen)
{
	int bfd;

	s->dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		errbuf_set(err, errlen, "open: %s", strerror(errno));
		return -EIO;
	}
	bfd = openat(s->dfd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		O_CLOEXEC);
	if (bfd >= 0) {
		s->algfd = openat(bfd, "sha256", O_RDONLY | O_DIRECTORY |
			O_NOFOLLOW | O_CLOEXEC);
		close(bfd);
	}
	if (oci_layout_is(s->dfd)) {
		s->kind = IMAGESTORE_OCI_LAYOUT;
		return 0;
	}
	if (s->algfd >= 0) {
		s->kind = IMAGESTORE_CONTAINERD;
		return 0;
	}
	return -ENOENT;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Tries one store: 0 found and applied; -ENOENT not there (errors that do
 * not end the search are remembered in L); another negative errno is
 * final, with err filled.
 */
static int
store_try(struct image_lookup *L, const char *path, size_t index,
    struct image_found *f, char *err, size_t errlen)
{
	struct image_store s = { .path = path, .index = index, .dfd = -1,
		.algfd = -1 };
	struct image_hit h = { NULL, "" };
	char why[512];
	bool found;
	int rc;

	if (ends_with(path, ".tar")) {
		s.kind = IMAGESTORE_DOCKER_ARCHIVE;
		return docker_archive_load(&s, L, f, err, errlen);
	}
	if ((rc = store_open_dir(&s, why, sizeof(why))) != 0) {
		if (rc != -ENOENT)
			image_lookup_record(L, rc, path, why);
		rc = -ENOENT;
		goto out;
	}
	found = s.kind == IMAGESTORE_OCI_LAYOUT ? oci_layout_search(&s, L, &h) :
						  containerd_search(&s, L, &h);
	rc = found ? apply_manifest(&s, L, &h, f, err, errlen) : -ENOENT;
out:
	json_decref(h.manifest);
	if (s.algfd >= 0)
		close(s.algfd);
	if (s.dfd >= 0)
		close(s.dfd);
	return rc;
}

/* -ENOENT, naming every store searched. */
static int
not_found(const struct image_lookup *L, const char *const *stores,
    size_t nstores, char *err, size_t errlen)
{
	struct textbuf names = { 0 };

	for (size_t i = 0; i < nstores; i++)
		textbuf_printf(&names, "%s%s", i ? ", " : "", stores[i]);
	errbuf_set(err, errlen, "image %s not found in stores: %s", L->idstr,
	    nstores > 0 ? names.data : "(none configured)");
	textbuf_free(&names);
	return -ENOENT;
}

void
imagestore_cache_clear(void)
{
	containerd_cache_clear();
}

int
imagestore_load(const char *const *stores, size_t nstores,
    const struct image_query *q, const struct layer_limits *lim, fileset *fs,
    struct image_found *found, char *err, size_t errlen)
{
	struct image_lookup L;
	struct layer_limits deflim;
	struct image_found dummy;
	int rc;

	errbuf_set(err, errlen, "%s", "");
	memset(&L, 0, sizeof(L));
	if (lim == NULL) {
		layer_limits_default(&deflim);
		lim = &deflim;
	}
	L.q = q;
	L.lim = lim;
	L.fs = fs;
	L.cache = q->layer_cache;
	if (found == NULL)
		found = &dummy;
	memset(found, 0, sizeof(*found));
	if ((rc = image_lookup_init(&L, q, err, errlen)) != 0)
		goto out;

	for (size_t i = 0; i < nstores; i++) {
		rc = store_try(&L, stores[i], i, found, err, errlen);
		if (rc != -ENOENT)
			goto out;
	}
	if (L.rec_rc != 0) {
		errbuf_set(err, errlen, "image %s: %s", L.idstr, L.rec_err);
		rc = L.rec_rc;
		goto out;
	}
	rc = not_found(&L, stores, nstores, err, errlen);
out:
	free(L.hints);
	return rc;
}
