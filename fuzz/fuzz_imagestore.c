/*
 * fuzz_imagestore: bytes -> the image-store JSON parsers (OCI index.json,
 * image manifest and config, docker-archive manifest.json) through
 * imagestore_load, on stores the target writes from the input.
 *
 * The input is up to four parts split at form feeds: index.json, the
 * manifest, the config, manifest.json. Since the fuzzer cannot guess
 * SHA-256 digests, tokens are replaced before the files are written: in
 * the index "$M" by the manifest's digest and "$m" by its size; in the
 * manifest "$C"/"$c" by the config's, "$L"/"$l" by an empty layer's
 * (1024 zero bytes, a valid empty tar); in manifest.json "$C" by the
 * config's entry name ("<hex>.json") and "$L" by the layer's
 * ("layer.tar"). Then an OCI layout (oci-layout, index.json,
 * blobs/sha256/...) and a docker-archive (.tar) are written to a
 * directory of the process and searched for the config's image ID, and
 * for no ID at all. Any return code is fine; crashes, leaks and UB are
 * not. FUZZ_DEBUG=1 prints each search's result (to check that seeds
 * reach a loaded image).
 */
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/fileset.h"
#include "scan/oci/imagestore.h"
#include "util/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void
cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_imagestore: cannot remove %s\n", dir);
}

static void
put(const char *name, const void *p, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (n > 0 && fwrite(p, 1, n, f) != n)
		abort();
	if (fclose(f) != 0)
		abort();
}

struct text {
	char *p;
	size_t len;
};

/* s[0..n) with each token [0..ntok) replaced by its value. */
static struct text
subst(const uint8_t *s, size_t n, const char *const *tok,
    const char *const *val, size_t ntok)
{
	struct text t = { NULL, 0 };
	size_t cap = n + 1;

	for (size_t i = 0; i < n; i++)
		if (s[i] == '$')
			cap += 80;
	if ((t.p = malloc(cap)) == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		for (; k < ntok; k++)
			if (i + 1 < n && s[i] == '$' && s[i + 1] == tok[k][1])
				break;
		if (k < ntok) {
			size_t vl = strlen(val[k]);
			memcpy(t.p + t.len, val[k], vl);
			t.len += vl;
			i++;
		} else {
			t.p[t.len++] = (char)s[i];
		}
	}
	t.p[t.len] = '\0';
	return t;
}

static void
blob(const void *p, size_t n, char digest[DIGEST_STR_LEN], char hex[65])
{
	uint8_t d[DIGEST_LEN];
	char name[128];

	digest_sha256(p, n, d);
	digest_format(d, digest);
	snprintf(hex, 65, "%s", digest + 7);
	snprintf(name, sizeof(name), "oci/blobs/sha256/%s", hex);
	put(name, p, n);
}

static void
tar_add(struct archive *a, const char *name, const void *p, size_t n)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)n);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (n > 0 && archive_write_data(a, p, n) != (la_ssize_t)n))
		abort();
	archive_entry_free(e);
}

static void
search(const char *store, const char *image_id)
{
	const char *stores[] = { store };
	struct image_query q = { .image_id = image_id };
	struct layer_limits lim;
	struct image_found found;
	char err[512];
	fileset *fs = fileset_new();

	layer_limits_default(&lim);
	lim.max_uncompressed = 1u << 20;
	int rc = imagestore_load(stores, 1, &q, &lim, fs, &found, err,
	    sizeof(err));
	if (getenv("FUZZ_DEBUG") != NULL)
		fprintf(stderr, "%s %s: %d %s\n", store, image_id ? image_id :
		    "-", rc, rc ? err : "");
	fileset_free(fs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t empty_tar[1024];
	const uint8_t *part[4] = { NULL };
	size_t plen[4] = { 0 };
	size_t np = 0, start = 0;
	char cdig[DIGEST_STR_LEN], chex[65], mdig[DIGEST_STR_LEN], mhex[65];
	char ldig[DIGEST_STR_LEN], lhex[65], csize[24], msize[24], lsize[24];
	char cname[80], path[128];

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/fuzz_imagestore.XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
		atexit(cleanup);
		snprintf(path, sizeof(path), "%s/oci", dir);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/oci/blobs", dir);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/oci/blobs/sha256", dir);
		mkdir(path, 0755);
		put("oci/oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}", 31);
	}
	for (size_t i = 0; i <= size && np < 4; i++) {
		if (i == size || (data[i] == '\f' && np < 3)) {
			part[np] = data + start;
			plen[np++] = i - start;
			start = i + 1;
		}
	}

	/* the layer, the config, the manifest, the index */
	blob(empty_tar, sizeof(empty_tar), ldig, lhex);
	snprintf(lsize, sizeof(lsize), "%zu", sizeof(empty_tar));
	blob(np > 2 ? part[2] : (const uint8_t *)"", np > 2 ? plen[2] : 0,
	    cdig, chex);
	snprintf(csize, sizeof(csize), "%zu", np > 2 ? plen[2] : 0);
	const char *mtok[] = { "$C", "$c", "$L", "$l" };
	const char *mval[] = { cdig, csize, ldig, lsize };
	struct text man = subst(np > 1 ? part[1] : (const uint8_t *)"",
	    np > 1 ? plen[1] : 0, mtok, mval, 4);
	blob(man.p, man.len, mdig, mhex);
	snprintf(msize, sizeof(msize), "%zu", man.len);
	const char *itok[] = { "$M", "$m" };
	const char *ival[] = { mdig, msize };
	struct text idx = subst(part[0], plen[0], itok, ival, 2);
	put("oci/index.json", idx.p, idx.len);
	snprintf(path, sizeof(path), "%s/oci", dir);
	search(path, cdig);
	search(path, NULL);

	/* the docker-archive */
	snprintf(cname, sizeof(cname), "%s.json", chex);
	const char *dtok[] = { "$C", "$L" };
	const char *dval[] = { cname, "layer.tar" };
	struct text dm = subst(np > 3 ? part[3] : (const uint8_t *)"",
	    np > 3 ? plen[3] : 0, dtok, dval, 2);
	snprintf(path, sizeof(path), "%s/image.tar", dir);
	struct archive *a = archive_write_new();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_filename(a, path) != ARCHIVE_OK)
		abort();
	tar_add(a, "manifest.json", dm.p, dm.len);
	tar_add(a, cname, np > 2 ? part[2] : (const uint8_t *)"",
	    np > 2 ? plen[2] : 0);
	tar_add(a, "layer.tar", empty_tar, sizeof(empty_tar));
	archive_write_close(a);
	archive_write_free(a);
	search(path, cdig);
	search(path, NULL);

	free(man.p);
	free(idx.p);
	free(dm.p);
	return 0;
}
