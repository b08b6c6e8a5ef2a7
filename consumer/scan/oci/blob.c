/*
 * blob: reading and verifying the blobs of OCI layouts and containerd
 * content stores, and hashing any layer stream (a blob file or a
 * docker-archive entry) while layer_apply reads it.
 *
 * Paths. Blob paths are built only from parsed digests ("sha256/" + 64
 * hex, via digest_parse/digest_format), never from JSON strings, and
 * opened with openat(O_NOFOLLOW | O_NONBLOCK) relative to the store's
 * blobs/sha256, then checked to be regular files (a FIFO cannot hang us).
 * Only sha256 is supported.
 *
 * Verification. Every blob is hashed (SHA-256) while it is read: JSON
 * blobs before they are parsed, layers as their compressed bytes pass
 * through layer_apply's read callback, the unread tail after layer_apply
 * stops included. A mismatch is -EINVAL (PERMANENT): containerd and OCI
 * tools only publish a blob under its digest once it is complete, so
 * different bytes under a digest are corruption and retrying reads the
 * same bytes. The one RETRYABLE exception is a blob shorter than its
 * descriptor's size (-EAGAIN): a copy into a layout still being written.
 *
 * Sizes: JSON blobs are read whole, at most IMAGESTORE_MAX_JSON (4 MiB);
 * layers are streamed through a 1 MiB buffer, bounded by the layer
 * limits. No state: any thread, one stream per thread.
 */
#include "scan/oci/imagestore_int.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

#define BLOB_READ_BUF (1u << 20)

bool
blob_hex_digest(const char *hex, uint8_t out[DIGEST_LEN])
{
	char full[DIGEST_STR_LEN + 8];
	if (strlen(hex) != 64)
		return false;
	snprintf(full, sizeof(full), "sha256:%s", hex);
	return digest_parse(full, out, NULL, 0) == 0;
}

int
blob_open(const struct image_store *s, const uint8_t d[DIGEST_LEN], int *fdp,
    struct stat *st, char *err, size_t errlen)
{
	char ds[DIGEST_STR_LEN];
	digest_format(d, ds);
	const char *hex = ds + 7; /* "sha256:" */

	*fdp = -1;
	if (s->algfd < 0) {
		errbuf_set(err, errlen, "blob %s: no blobs/sha256", ds);
		return -ENOENT;
	}
	int fd = openat(s->algfd, hex, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT) {
			errbuf_set(err, errlen, "blob %s is missing", ds);
			return -ENOENT;
		}
		if (e == ELOOP) {
			errbuf_set(err, errlen, "blob %s is a symbolic link",
			    ds);
			return -EINVAL;
		}
		errbuf_set(err, errlen, "blob %s: open: %s", ds, strerror(e));
		return -EIO;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errbuf_set(err, errlen, "blob %s is not a regular file", ds);
		return -EINVAL;
	}
	*fdp = fd;
	return 0;
}

int
blob_check_size(const char *ds, int64_t declared, off_t actual, uint64_t max,
    char *err, size_t errlen)
{
	if (declared >= 0 && (uint64_t)declared > max) {
		errbuf_set(err, errlen,
		    "blob %s: descriptor size %lld is over the bound %llu", ds,
		    (long long)declared, (unsigned long long)max);
		return -EFBIG;
	}
	if ((uint64_t)actual > max) {
		errbuf_set(err, errlen,
		    "blob %s: %lld bytes is over the bound %llu", ds,
		    (long long)actual, (unsigned long long)max);
		return -EFBIG;
	}
	if (declared >= 0 && actual < declared) {
		errbuf_set(err, errlen,
		    "blob %s: %lld of %lld bytes (still being written?)", ds,
		    (long long)actual, (long long)declared);
		return -EAGAIN;
	}
	if (declared >= 0 && actual > declared) {
		errbuf_set(err, errlen,
		    "blob %s: %lld bytes, its descriptor says %lld", ds,
		    (long long)actual, (long long)declared);
		return -EINVAL;
	}
	return 0;
}

int
blob_read_all(int fd, size_t max, char **out, size_t *outlen,
    const char *name, char *err, size_t errlen)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap + 1);
	int rc = 0;

	for (;;) {
		if (len == cap) {
			if (cap > max)
				break; /* over the bound: said below */
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errbuf_set(err, errlen, "%s: read: %s", name,
			    strerror(errno));
			rc = -EIO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		errbuf_set(err, errlen, "%s: more than %zu bytes", name, max);
		rc = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	return rc;
}

int
blob_parse_object(const char *buf, size_t len, json_t **out,
    const char *name, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		errbuf_set(err, errlen, "%s: invalid JSON at line %d: %s",
		    name, je.line, je.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		errbuf_set(err, errlen, "%s: not a JSON object", name);
		return -EINVAL;
	}
	*out = j;
	return 0;
}

int
blob_read_json(const struct image_store *s, const uint8_t d[DIGEST_LEN],
    int64_t declared, json_t **out, char *err, size_t errlen)
{
	char ds[DIGEST_STR_LEN], *buf = NULL;
	uint8_t got[DIGEST_LEN];
	struct stat st;
	size_t len;
	int fd = -1, rc;

	digest_format(d, ds);
	*out = NULL;
	/* Too large by its descriptor: said before looking for it. */
	if (declared >= 0 && (uint64_t)declared > IMAGESTORE_MAX_JSON)
		return blob_check_size(ds, declared, 0, IMAGESTORE_MAX_JSON,
		    err, errlen);
	if ((rc = blob_open(s, d, &fd, &st, err, errlen)) != 0 ||
	    (rc = blob_check_size(ds, declared, st.st_size,
		 IMAGESTORE_MAX_JSON, err, errlen)) != 0 ||
	    (rc = blob_read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, ds, err,
		 errlen)) != 0)
		goto out;
	digest_sha256(buf, len, got);
	if (memcmp(got, d, DIGEST_LEN) != 0) {
		char gs[DIGEST_STR_LEN];
		digest_format(got, gs);
		errbuf_set(err, errlen,
		    "blob %s: digest mismatch: its bytes hash to %s", ds, gs);
		rc = -EINVAL;
		goto out;
	}
	rc = blob_parse_object(buf, len, out, ds, err, errlen);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- hashing layer streams ------------------------------------------ */

/* layer_read_fn over a blob stream: the count, 0 at the end, or a
 * negative errno. */
static ssize_t
blob_stream_read(void *ctx, void *buf, size_t len)
{
	struct blob_stream *s = ctx;
	ssize_t n;

	if (s->fn != NULL) {
		n = s->fn(s->fnctx, buf, len);
		if (n < 0)
			return n;
	} else if (s->fd >= 0) {
		do
			n = read(s->fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
	} else {
		la_ssize_t r = archive_read_data(s->ar, buf, len);
		if (r < 0)
			return -EIO;
		n = (ssize_t)r;
	}
	if (n > 0) {
		if (EVP_DigestUpdate(s->md, buf, (size_t)n) != 1)
			return -EIO;
		s->n += (uint64_t)n;
	}
	return n;
}

/* Reads (and hashes) the rest of the stream, then finishes the hash. */
static int
blob_stream_finish(struct blob_stream *s, uint8_t out[DIGEST_LEN],
    const char *name, char *err, size_t errlen)
{
	unsigned char *buf = xmalloc(BLOB_READ_BUF);
	unsigned int olen = 0;
	ssize_t n;

	while ((n = blob_stream_read(s, buf, BLOB_READ_BUF)) > 0)
		;
	free(buf);
	if (n < 0) {
		errbuf_set(err, errlen, "layer %s: read: %s", name,
		    strerror((int)-n));
		return s->fn != NULL ? (int)n : -EIO;
	}
	if (EVP_DigestFinal_ex(s->md, out, &olen) != 1 || olen != DIGEST_LEN) {
		errbuf_set(err, errlen, "layer %s: SHA-256 failed", name);
		return -EIO;
	}
	return 0;
}

/*
 * On a corrupt-content failure of layer_apply (-EINVAL) the digest is
 * checked too: a mismatch is the better explanation.
 */
int
blob_apply_layer(struct image_lookup *L, struct blob_stream *src,
    const char *name, const uint8_t want0[DIGEST_LEN], const uint8_t *want1,
    const uint8_t *diff, bool verify, char *err, size_t errlen)
{
	uint8_t got[DIGEST_LEN];
	char gs[DIGEST_STR_LEN], why[512];
	layer_delta *d = layer_delta_new();
	struct layer_read_info info = { .want_diff = L->cache != NULL &&
		diff != NULL && verify };
	int rc, frc;

	src->md = EVP_MD_CTX_new();
	if (src->md == NULL ||
	    EVP_DigestInit_ex(src->md, EVP_sha256(), NULL) != 1) {
		errbuf_set(err, errlen, "layer %s: SHA-256 init failed", name);
		rc = -EIO;
		goto out;
	}
	rc = layer_read(d, blob_stream_read, src, name, L->lim, &info, err,
	    errlen);
	if (rc != 0 && rc != -EINVAL)
		goto out;
	if ((frc = blob_stream_finish(src, got, name, why, sizeof(why))) !=
	    0) {
		if (rc == 0) {
			errbuf_set(err, errlen, "%s", why);
			rc = frc;
		}
		goto out;
	}
	if (memcmp(got, want0, DIGEST_LEN) != 0 &&
	    (want1 == NULL || memcmp(got, want1, DIGEST_LEN) != 0)) {
		digest_format(got, gs);
		errbuf_set(err, errlen,
		    "layer %s: digest mismatch: its %llu bytes hash to %s",
		    name, (unsigned long long)src->n, gs);
		rc = -EINVAL;
	}
	if (rc != 0)
		goto out;
	/* The blob is verified. Cached as verified when the uncompressed
	 * stream is the config's diffID too (a plain tar is its own
	 * stream; a gzip layer's inflated stream was hashed when verify
	 * asked for it); else tied to the blob, unless verify was asked
	 * for and failed (an entry of another blob stays). */
	layer_delta_stats(d)->compressed = src->n;
	if (L->cache != NULL && diff != NULL) {
		bool checked = (info.comp == LAYER_COMP_PLAIN &&
				   memcmp(got, diff, DIGEST_LEN) == 0) ||
		    (info.want_diff && info.comp == LAYER_COMP_GZIP &&
			info.diff_known &&
			memcmp(info.diff, diff, DIGEST_LEN) == 0);
		if (checked)
			(void)layer_cache_put(L->cache, diff, NULL, d);
		else if (!verify)
			(void)layer_cache_put(L->cache, diff, got, d);
	}
	rc = layer_delta_apply(L->fs, d, name, err, errlen);
out:
	EVP_MD_CTX_free(src->md);
	src->md = NULL;
	layer_delta_free(d);
	return rc;
}

int
blob_cached_layer(struct image_lookup *L, const uint8_t *diff,
    const uint8_t *blob, const char *name, bool *verify, char *err,
    size_t errlen)
{
	*verify = false;
	if (L->cache == NULL || diff == NULL)
		return -ENOENT;
	if (L->lim->cancel != NULL && atomic_load(L->lim->cancel) != 0) {
		errbuf_set(err, errlen, "layer %s: cancelled", name);
		return -ECANCELED;
	}
	return layer_cache_apply(L->cache, diff, blob, L->lim, L->fs, name,
	    verify, err, errlen);
}
