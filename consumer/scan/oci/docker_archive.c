/*
 * docker_archive: `docker save` tarballs as image stores (a regular file
 * whose name ends in ".tar"). manifest.json lists the images: Config
 * names the config entry, Layers the layer entries in order, RepoTags the
 * tags.
 *
 * Ordering. The outer tar is read with libarchive, never extracted;
 * entries are located by name and skipped by seeking. Pass 1 reads
 * manifest.json (wherever it is); pass 2 reads the candidate configs and
 * records the position (entry ordinal) of every layer entry; then layer
 * passes apply layers in manifest order: a pass applies the next layer
 * when it reaches its entry and keeps going while the following layer's
 * entry lies further on, else it ends and the next pass starts over.
 * `docker save` writes layers in order, so that is one pass; the worst
 * case is one pass per layer (<= IMAGESTORE_MAX_LAYERS), each reading
 * headers only plus one layer's data: bounded time, no buffering, every
 * layer's bytes read exactly once. The file must not change between
 * passes (size and mtime are compared: -EAGAIN when it does).
 *
 * Verification. A config whose entry name carries a digest
 * ("<hex>.json", "blobs/sha256/<hex>") must hash to it; the image is the
 * candidate whose config hashes to the image ID. A layer entry must hash
 * to the config's rootfs.diff_ids[i] (docker save's plain tars) or to the
 * digest its name carries ("blobs/sha256/<hex>", Docker 25+). A layer
 * listed but absent from the archive is -EINVAL: an archive is complete
 * or corrupt.
 *
 * Errors. Until the image is identified (its config read and matched), a
 * broken archive is remembered in the lookup and the other stores are
 * searched; afterwards every error is final.
 *
 * Sizes: at most DA_MAX_ENTRIES entries, DA_MAX_IMAGES images in
 * manifest.json, DA_MAX_CANDIDATES configs hashed; JSON entries at most
 * IMAGESTORE_MAX_JSON. Any thread; each call has its own descriptor and
 * libarchive reader.
 */
#include "scan/oci/imagestore_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

/* Entries in a docker-archive's outer tar, images in its manifest.json,
 * images whose configs must be hashed to know which is the one. */
#define DA_MAX_ENTRIES 1000000u
#define DA_MAX_IMAGES 4096
#define DA_MAX_CANDIDATES 16
#define DA_MAX_NAME 4096

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
	unsigned long count; /* entries of this pass so far */
};

/* What pass 2 learns. */
struct da_found {
	struct da_image *c; /* the image, once its config is read */
	json_t *cfg;	    /* its config */
	uint8_t cfgid[DIGEST_LEN];
	bool ours; /* the image is identified: errors are final */
};

static const char *
da_archive_error(struct archive *a, const char *dflt)
{
	const char *s = archive_error_string(a);
	return s != NULL ? s : dflt;
}

static const char *
da_strip_dot(const char *n)
{
	while (n[0] == '.' && n[1] == '/')
		n += 2;
	return n;
}

static const char *
da_name(struct archive_entry *e)
{
	const char *n = archive_entry_pathname(e);
	return n != NULL ? da_strip_dot(n) : "";
}

/* Opens the archive: -ENOENT when there is no such file. */
static int
da_open(struct da *d, char *err, size_t errlen)
{
	d->fd = open(d->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (d->fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		errbuf_set(err, errlen, "open: %s", strerror(errno));
		return -EIO;
	}
	if (fstat(d->fd, &d->st) != 0 || !S_ISREG(d->st.st_mode)) {
		errbuf_set(err, errlen, "not a regular file");
		return -EINVAL;
	}
	return 0;
}

/* Starts a pass over the outer tar. */
static int
da_pass(struct da *d, char *err, size_t errlen)
{
	struct stat st;

	if (d->a != NULL)
		archive_read_free(d->a);
	d->a = NULL;
	d->count = 0;
	if (fstat(d->fd, &st) != 0 || st.st_size != d->st.st_size ||
	    st.st_mtim.tv_sec != d->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != d->st.st_mtim.tv_nsec) {
		errbuf_set(err, errlen,
		    "the archive changed while it was read");
		return -EAGAIN;
	}
	if (lseek(d->fd, 0, SEEK_SET) != 0) {
		errbuf_set(err, errlen, "seek: %s", strerror(errno));
		return -EIO;
	}
	d->a = archive_read_new();
	if (d->a == NULL) {
		errbuf_set(err, errlen, "archive_read_new failed");
		return -ENOMEM;
	}
	if (archive_read_support_format_tar(d->a) != ARCHIVE_OK ||
	    archive_read_open_fd(d->a, d->fd, 65536) != ARCHIVE_OK) {
		errbuf_set(err, errlen, "not a tar: %s",
		    da_archive_error(d->a, "?"));
		return -EINVAL;
	}
	return 0;
}

/* The next header: 0, -ENOENT at the end of the archive, or an error. */
static int
da_next(struct da *d, struct archive_entry **e, char *err, size_t errlen)
{
	int r = archive_read_next_header(d->a, e);
	if (r == ARCHIVE_EOF)
		return -ENOENT;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		errbuf_set(err, errlen, "entry %lu: %s", d->count,
		    da_archive_error(d->a, "corrupt tar"));
		return -EINVAL;
	}
	if (++d->count > DA_MAX_ENTRIES) {
		errbuf_set(err, errlen, "more than %u entries", DA_MAX_ENTRIES);
		return -EFBIG;
	}
	return 0;
}

/* The ordinal of the entry da_next returned last. */
static long
da_pos(const struct da *d)
{
	return (long)d->count - 1;
}

/* Reads the current entry (a regular file of at most max bytes). */
static int
da_read_entry(struct da *d, struct archive_entry *e, char **out, size_t *len,
    const char *name, char *err, size_t errlen)
{
	if (archive_entry_filetype(e) != AE_IFREG) {
		errbuf_set(err, errlen, "%s is not a regular file", name);
		return -EINVAL;
	}
	la_int64_t sz = archive_entry_size(e);
	if (sz < 0 || (uint64_t)sz > IMAGESTORE_MAX_JSON) {
		errbuf_set(err, errlen, "%s: %lld bytes, over %u", name,
		    (long long)sz, IMAGESTORE_MAX_JSON);
		return -EFBIG;
	}
	char *buf = xmalloc((size_t)sz + 1);
	size_t got = 0;
	while (got < (size_t)sz) {
		la_ssize_t n = archive_read_data(d->a, buf + got,
		    (size_t)sz - got);
		if (n <= 0) {
			free(buf);
			errbuf_set(err, errlen, "%s: truncated", name);
			return -EINVAL;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* The digest an entry name carries: "blobs/sha256/<hex>" or
 * "<hex>.json" ("<hex>.tar" and "<hex>/layer.tar" carry v1 IDs, not
 * digests). */
static bool
da_named_digest(const char *name, uint8_t out[DIGEST_LEN])
{
	char hex[65];
	if (strncmp(name, "blobs/sha256/", 13) == 0)
		return blob_hex_digest(name + 13, out);
	size_t n = strlen(name);
	if (n == 69 && strcmp(name + 64, ".json") == 0) {
		memcpy(hex, name, 64);
		hex[64] = '\0';
		return blob_hex_digest(hex, out);
	}
	return false;
}

/* Pass 1: finds and parses manifest.json. */
static int
da_read_manifest(struct da *d, json_t **man, char *err, size_t errlen)
{
	struct archive_entry *e;
	json_error_t je;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = da_pass(d, err, errlen)) != 0)
		return rc;
	while ((rc = da_next(d, &e, err, errlen)) == 0) {
		if (strcmp(da_name(e), "manifest.json") != 0)
			continue;
		if (buf != NULL) {
			errbuf_set(err, errlen, "two manifest.json entries");
			rc = -EINVAL;
			goto out;
		}
		if ((rc = da_read_entry(d, e, &buf, &len, "manifest.json", err,
			 errlen)) != 0)
			goto out;
	}
	if (rc != -ENOENT)
		goto out;
	if (buf == NULL) {
		errbuf_set(err, errlen,
		    "no manifest.json: not `docker save` output");
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
	*man = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (*man == NULL) {
		errbuf_set(err, errlen,
		    "manifest.json: invalid JSON at line %d: %s", je.line,
		    je.text);
		rc = -EINVAL;
	}
out:
	free(buf);
	return rc;
}

static bool
da_tag_hinted(const struct image_lookup *L, const json_t *img)
{
	if (L->any)
		return true;
	const json_t *tags = json_object_get(img, "RepoTags");
	for (size_t i = 0; i < json_array_size(tags); i++) {
		const char *t = json_string_value(json_array_get(tags, i));
		if (t != NULL && image_lookup_tag_hinted(L, t))
			return true;
	}
	return false;
}

/* Fills candidate ci from image i of manifest.json (Layers lj). */
static int
da_candidate(struct da_image *ci, size_t i, const char *cfg, bool named,
    const json_t *lj, char *err, size_t errlen)
{
	size_t n = json_array_size(lj);

	if (n > IMAGESTORE_MAX_LAYERS) {
		errbuf_set(err, errlen,
		    "manifest.json: image %zu: %zu layers, more than %d", i, n,
		    IMAGESTORE_MAX_LAYERS);
		return -EFBIG;
	}
	ci->config = da_strip_dot(cfg);
	ci->config_named = named;
	ci->nlayers = n;
	for (size_t k = 0; k < n; k++) {
		const char *ln = json_string_value(json_array_get(lj, k));
		if (ln == NULL || strlen(ln) > DA_MAX_NAME) {
			errbuf_set(err, errlen,
			    "manifest.json: image %zu: layer %zu is not a name",
			    i, k);
			return -EINVAL;
		}
		ci->layers[k] = da_strip_dot(ln);
		ci->pos[k] = -1;
	}
	return 0;
}

/* Fills the candidates from manifest.json. */
static int
da_candidates(struct image_lookup *L, const json_t *man, struct da_image *c,
    size_t *nc, char *err, size_t errlen)
{
	int rc;

	if (!json_is_array(man)) {
		errbuf_set(err, errlen, "manifest.json: not a JSON array");
		return -EINVAL;
	}
	if (json_array_size(man) > DA_MAX_IMAGES) {
		errbuf_set(err, errlen, "manifest.json: more than %d images",
		    DA_MAX_IMAGES);
		return -EFBIG;
	}
	*nc = 0;
	for (size_t i = 0; i < json_array_size(man); i++) {
		const json_t *img = json_array_get(man, i);
		const char *cfg = json_string_value(json_object_get(img,
		    "Config"));
		const json_t *lj = json_object_get(img, "Layers");
		if (cfg == NULL || !json_is_array(lj)) {
			errbuf_set(err, errlen,
			    "manifest.json: image %zu: no Config or Layers", i);
			return -EINVAL;
		}
		uint8_t d[DIGEST_LEN];
		bool named = da_named_digest(cfg, d);
		if (L->have_id ? named && memcmp(d, L->id, DIGEST_LEN) != 0 :
				 !da_tag_hinted(L, img))
			continue;
		if (*nc == DA_MAX_CANDIDATES) {
			errbuf_set(err, errlen,
			    "manifest.json: more than %d images to hash",
			    DA_MAX_CANDIDATES);
			return -EFBIG;
		}
		if ((rc = da_candidate(&c[(*nc)++], i, cfg, named, lj, err,
			 errlen)) != 0)
			return rc;
	}
	if (L->any && *nc > 1) {
		errbuf_set(err, errlen,
		    "manifest.json: %zu images; name one by image ID or tag",
		    *nc);
		return -EINVAL;
	}
	return 0;
}

/* Records where entry name (ordinal pos) is among the candidates'
 * layers. */
static int
da_note_layer(struct da_image *cands, size_t nc, const char *name, long pos,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < nc; i++)
		for (size_t k = 0; k < cands[i].nlayers; k++) {
			if (strcmp(name, cands[i].layers[k]) != 0)
				continue;
			/* Same name listed twice in Layers is fine (docker
			 * save dedups); twice in the tar is ambiguous. */
			if (cands[i].pos[k] >= 0 && cands[i].pos[k] != pos) {
				errbuf_set(err, errlen,
				    "two entries named %.200s", name);
				return -EINVAL;
			}
			cands[i].pos[k] = pos;
		}
	return 0;
}

/* Reads config entry e of candidate ci; takes ci as the image when the
 * config hashes to the image ID sought (or when there is no ID). */
static int
da_read_config(struct da *d, struct image_lookup *L, struct archive_entry *e,
    struct da_image *ci, struct da_found *fd, char *err, size_t errlen)
{
	const char *name = da_name(e);
	uint8_t got[DIGEST_LEN], nd[DIGEST_LEN];
	char gs[DIGEST_STR_LEN], *buf = NULL;
	size_t len;
	int rc;

	if ((rc = da_read_entry(d, e, &buf, &len, name, err, errlen)) != 0)
		return rc;
	digest_sha256(buf, len, got);
	if (ci->config_named && da_named_digest(name, nd) &&
	    memcmp(nd, got, DIGEST_LEN) != 0) {
		fd->ours = L->have_id && memcmp(nd, L->id, DIGEST_LEN) == 0;
		digest_format(got, gs);
		errbuf_set(err, errlen,
		    "config %.200s: digest mismatch: its bytes hash to %s",
		    name, gs);
		rc = -EINVAL;
	} else if (!L->have_id || memcmp(got, L->id, DIGEST_LEN) == 0) {
		fd->c = ci;
		fd->ours = true;
		memcpy(fd->cfgid, got, DIGEST_LEN);
		rc = blob_parse_object(buf, len, &fd->cfg, name, err, errlen);
	}
	free(buf);
	return rc;
}

/* Pass 2: the candidates' configs, and where every layer is. */
static int
da_scan(struct da *d, struct image_lookup *L, struct da_image *cands,
    size_t nc, struct da_found *fd, char *err, size_t errlen)
{
	struct archive_entry *e;
	int rc;

	if ((rc = da_pass(d, err, errlen)) != 0)
		return rc;
	while ((rc = da_next(d, &e, err, errlen)) == 0) {
		const char *name = da_name(e);
		if ((rc = da_note_layer(cands, nc, name, da_pos(d), err,
			 errlen)) != 0)
			return rc;
		for (size_t i = 0; i < nc && fd->c == NULL; i++) {
			if (strcmp(name, cands[i].config) != 0)
				continue;
			/* An entry's data is read once: the first candidate
			 * naming it decides. */
			if ((rc = da_read_config(d, L, e, &cands[i], fd, err,
				 errlen)) != 0)
				return rc;
			break;
		}
	}
	return rc == -ENOENT ? 0 : rc;
}

/* Everything the layers of c need, before any is applied: an entry each,
 * and a diff_id each in the config. */
static int
da_check_layers(const struct da_image *c, const json_t *ids, char *err,
    size_t errlen)
{
	uint8_t x[DIGEST_LEN];
	char why[256];

	if (json_array_size(ids) != c->nlayers) {
		errbuf_set(err, errlen,
		    "config %.200s: %zu diff_ids for %zu layers", c->config,
		    json_array_size(ids), c->nlayers);
		return -EINVAL;
	}
	for (size_t k = 0; k < c->nlayers; k++) {
		if (c->pos[k] < 0) {
			errbuf_set(err, errlen,
			    "layer %.200s is listed but not in the archive",
			    c->layers[k]);
			return -EINVAL;
		}
		if (digest_parse(json_string_value(json_array_get(ids, k)), x,
			why, sizeof(why)) != 0) {
			errbuf_set(err, errlen, "config: diff_ids[%zu]: %s", k,
			    why);
			return -EINVAL;
		}
	}
	return 0;
}

/* Applies layer k of c, whose entry the pass has reached. */
static int
da_apply_layer(struct da *d, struct image_lookup *L, struct archive_entry *e,
    const struct da_image *c, size_t k, const json_t *diff_ids, char *err,
    size_t errlen)
{
	uint8_t want0[DIGEST_LEN], want1[DIGEST_LEN];
	struct blob_stream src = { .fd = -1, .ar = d->a };
	la_int64_t sz = archive_entry_size(e);

	if (sz < 0 || (uint64_t)sz > L->lim->max_compressed) {
		errbuf_set(err, errlen, "layer %s: %lld bytes, over %llu",
		    c->layers[k], (long long)sz,
		    (unsigned long long)L->lim->max_compressed);
		return -EFBIG;
	}
	/* Checked by da_check_layers. */
	digest_parse(json_string_value(json_array_get(diff_ids, k)), want0,
	    NULL, 0);
	bool named = da_named_digest(c->layers[k], want1), verify;
	int rc = blob_cached_layer(L, want0, named ? want1 : NULL,
	    c->layers[k], &verify, err, errlen);
	if (rc != -ENOENT)
		return rc; /* from the cache: the entry is skipped */
	return blob_apply_layer(L, &src, c->layers[k], want0,
	    named ? want1 : NULL, want0, verify, err, errlen);
}

/* Applies the layers of image c, in order, in as few passes as it takes. */
static int
da_apply_layers(struct da *d, struct image_lookup *L, const struct da_image *c,
    const json_t *diff_ids, char *err, size_t errlen)
{
	struct archive_entry *e;
	size_t k = 0;
	int rc;

	while (k < c->nlayers) {
		if ((rc = da_pass(d, err, errlen)) != 0)
			return rc;
		for (;;) {
			if ((rc = da_next(d, &e, err, errlen)) == -ENOENT) {
				errbuf_set(err, errlen, "layer %s: entry gone",
				    c->layers[k]);
				return -EINVAL;
			}
			if (rc != 0)
				return rc;
			if (da_pos(d) != c->pos[k])
				continue;
			if ((rc = da_apply_layer(d, L, e, c, k, diff_ids, err,
				 errlen)) != 0)
				return rc;
			k++;
			if (k == c->nlayers || c->pos[k] <= da_pos(d))
				break; /* done, or the next one is behind */
		}
	}
	return 0;
}

int
docker_archive_load(struct image_store *s, struct image_lookup *L,
    struct image_found *f, char *err, size_t errlen)
{
	struct da d = { .path = s->path, .fd = -1 };
	struct da_found fd = { 0 };
	struct da_image *cands = NULL;
	const json_t *ids;
	json_t *man = NULL;
	char why[768];
	size_t nc = 0;
	int rc;

	if ((rc = da_open(&d, why, sizeof(why))) != 0 ||
	    (rc = da_read_manifest(&d, &man, why, sizeof(why))) != 0)
		goto out;
	cands = xcalloc(DA_MAX_CANDIDATES, sizeof(*cands));
	if ((rc = da_candidates(L, man, cands, &nc, why, sizeof(why))) != 0 ||
	    (nc > 0 &&
		(rc = da_scan(&d, L, cands, nc, &fd, why, sizeof(why))) != 0))
		goto out;
	if (fd.c == NULL) {
		rc = -ENOENT;
		goto out;
	}
	ids = json_object_get(json_object_get(fd.cfg, "rootfs"), "diff_ids");
	if ((rc = da_check_layers(fd.c, ids, why, sizeof(why))) != 0 ||
	    (rc = da_apply_layers(&d, L, fd.c, ids, why, sizeof(why))) != 0)
		goto out;

	f->store = s->index;
	f->kind = s->kind;
	digest_format(fd.cfgid, f->image_id);
	f->manifest[0] = '\0';
	image_found_platform(f, fd.cfg);
	f->nlayers = fd.c->nlayers;
out:
	/* A broken archive that is not the image's is remembered, and the
	 * other stores are searched. */
	if (rc != 0 && rc != -ENOENT) {
		if (!fd.ours) {
			image_lookup_record(L, rc, s->path, why);
			rc = -ENOENT;
		} else {
			errbuf_set(err, errlen, "store %s: image %s: %s",
			    s->path, L->idstr, why);
		}
	}
	if (d.a != NULL)
		archive_read_free(d.a);
	if (d.fd >= 0)
		close(d.fd);
	json_decref(man);
	json_decref(fd.cfg);
	free(cands);
	return rc;
}
