/*
 * test_imagestore: finding images in OCI layouts, containerd content
 * stores and docker-archives (consumer/scan/oci/imagestore), against
 * stores built here with libarchive's write API and jansson in a fresh
 * temporary directory: gzip / zstd / plain layers with whiteouts,
 * multi-platform and nested indexes, `docker save` archives in and out of
 * order, and every way a store can be missing, partial, corrupt or
 * hostile. Assertions are on the fileset the layers leave. The
 * containerd cache is also tested for what it reads and when, and for
 * lookups on several threads at once (through the internal read hook).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scan/fileset.h"
#include "scan/oci/imagestore.h"
#include "scan/oci/imagestore_int.h"
#include "util/digest.h"

#include "tarbuf.h"

/* A tar of (path, content) pairs, NULL-terminated; content NULL = dir. */
static struct buf
make_tar(enum filt f, const char *const *ents)
{
	struct buf out = { 0 };
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (f == F_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (f == F_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1),
	    ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, &out, NULL, buf_write_cb, NULL),
	    ARCHIVE_OK);
	for (size_t i = 0; ents[i] != NULL; i += 2) {
		struct archive_entry *e = archive_entry_new();
		const char *c = ents[i + 1];
		archive_entry_set_pathname(e, ents[i]);
		archive_entry_set_mode(e, c ? (AE_IFREG | 0644) :
					      (AE_IFDIR | 0755));
		archive_entry_set_size(e, c ? (la_int64_t)strlen(c) : 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (c != NULL && strlen(c) > 0)
			assert_int_equal(archive_write_data(a, c, strlen(c)),
			    (la_ssize_t)strlen(c));
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return out;
}

static char tmpdir[256];

static void
mkdirs(const char *path)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void
read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char tmp[65536];
	size_t n;
	b->len = 0;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(b, tmp, n);
	fclose(f);
}

static void
sha(const void *p, size_t n, char out[DIGEST_STR_LEN])
{
	uint8_t d[DIGEST_LEN];
	digest_sha256(p, n, d);
	digest_format(d, out);
}

/* Writes a blob into dir/blobs/sha256 and returns its digest. */
static void
put_blob(const char *dir, const void *p, size_t n, char out[DIGEST_STR_LEN])
{
	char path[1024];
	sha(p, n, out);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	mkdirs(path);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, out + 7);
	write_file(path, p, n);
}

static void
blob_path(const char *dir, const char *digest, char *path, size_t len)
{
	snprintf(path, len, "%s/blobs/sha256/%s", dir, digest + 7);
}

/* Puts a JSON value as a blob (and frees it). */
static size_t
put_json(const char *dir, json_t *j, char out[DIGEST_STR_LEN])
{
	char *s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	size_t n = strlen(s);
	put_blob(dir, s, n, out);
	free(s);
	json_decref(j);
	return n;
}

static json_t *
descj(const char *media, const char *digest, size_t size)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", media, "digest",
	    digest, "size", (json_int_t)size);
}

struct image {
	char config[DIGEST_STR_LEN];
	char manifest[DIGEST_STR_LEN];
	size_t manifest_size;
	char layer[4][DIGEST_STR_LEN];
};

/* An image (config + layers + manifest) as blobs of dir. */
static void
put_image(const char *dir, const char *arch, const struct buf *layers,
    const char *const *media, size_t n, struct image *img)
{
	json_t *diff = json_array(), *ls = json_array();
	for (size_t i = 0; i < n; i++) {
		put_blob(dir, layers[i].p, layers[i].len, img->layer[i]);
		json_array_append_new(diff, json_string(img->layer[i]));
		json_array_append_new(ls, descj(media[i], img->layer[i],
		    layers[i].len));
	}
	json_t *cfg = json_pack("{s:s, s:s, s:{s:s, s:o}}", "architecture",
	    arch, "os", "linux", "rootfs", "type", "layers", "diff_ids", diff);
	size_t cn = put_json(dir, cfg, img->config);
	json_t *man = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2,
	    "mediaType", "application/vnd.oci.image.manifest.v1+json", "config",
	    descj("application/vnd.oci.image.config.v1+json", img->config, cn),
	    "layers", ls);
	img->manifest_size = put_json(dir, man, img->manifest);
}

static void
put_layout(const char *dir, json_t *manifests)
{
	char path[1024];
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	const char *ol = "{\"imageLayoutVersion\":\"1.0.0\"}";
	write_file(path, ol, strlen(ol));
	json_t *idx = json_pack("{s:i, s:o}", "schemaVersion", 2, "manifests",
	    manifests);
	char *s = json_dumps(idx, JSON_COMPACT);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	write_file(path, s, strlen(s));
	free(s);
	json_decref(idx);
}

static const char *mt_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
static const char *mt_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
static const char *mt_tar = "application/vnd.oci.image.layer.v1.tar";

/* The two-layer image of the first tests: a gzip lower layer with a dpkg
 * status and os-release, a zstd upper layer that replaces the status and
 * whites out os-release. */
static void
two_layer_image(const char *dir, struct image *img)
{
	static const char *const lower[] = { "etc", NULL, "etc/os-release",
		"ID=debian\n", "var/lib/dpkg/status", "Package: lower\n",
		NULL };
	static const char *const upper[] = { "etc/.wh.os-release", "",
		"var/lib/dpkg/status", "Package: upper\n", NULL };
	struct buf l[2] = { make_tar(F_GZIP, lower), make_tar(F_ZSTD, upper) };
	const char *media[2] = { mt_gzip, mt_zstd };
	put_image(dir, "amd64", l, media, 2, img);
	free(l[0].p);
	free(l[1].p);
}

static void
layout_two_layers(const char *dir, struct image *img)
{
	two_layer_image(dir, img);
	json_t *d = descj("application/vnd.oci.image.manifest.v1+json",
	    img->manifest, img->manifest_size);
	json_object_set_new(d, "annotations", json_pack("{s:s}",
	    "org.opencontainers.image.ref.name", "1.0"));
	put_layout(dir, json_pack("[o]", d));
}

static int
load(const char *const *stores, size_t n, const struct image_query *q,
    fileset **fs, struct image_found *f, char *err, size_t errlen)
{
	*fs = fileset_new();
	return imagestore_load(stores, n, q, NULL, *fs, f, err, errlen);
}

static void
assert_file(const fileset *fs, const char *path, const char *content)
{
	const struct fileset_file *f = fileset_get(fs, path);
	if (content == NULL) {
		assert_null(f);
		return;
	}
	assert_non_null(f);
	assert_int_equal(f->len, strlen(content));
	assert_memory_equal(f->data, content, f->len);
}

static void
subdir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void
test_oci_two_layers(void **state)
{
	(void)state;
	char dir[512], err[1024];
	struct image img;
	struct image_found f;
	fileset *fs;
	subdir(dir, sizeof(dir), "oci2");
	layout_two_layers(dir, &img);

	const char *stores[] = { dir };
	struct image_query q = { .image_id = img.config };
	int rc = load(stores, 1, &q, &fs, &f, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
	assert_file(fs, "etc/os-release", NULL);
	assert_int_equal(f.kind, IMAGESTORE_OCI_LAYOUT);
	assert_int_equal(f.store, 0);
	assert_int_equal(f.nlayers, 2);
	assert_string_equal(f.image_id, img.config);
	assert_string_equal(f.manifest, img.manifest);
	assert_string_equal(f.platform, "linux/amd64");
	fileset_free(fs);

	/* By tag alone (the annotation holds just the tag). */
	const char *tags[] = { "docker.io/library/debian:1.0" };
	struct image_query qt = { .repo_tags = tags, .ntags = 1 };
	assert_int_equal(load(stores, 1, &qt, &fs, &f, err, sizeof(err)), 0);
	assert_string_equal(f.image_id, img.config);
	assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
	fileset_free(fs);

	/* A tag no annotation names. */
	const char *other[] = { "debian:2.0" };
	struct image_query qo = { .repo_tags = other, .ntags = 1 };
	assert_int_equal(load(stores, 1, &qo, &fs, &f, err, sizeof(err)),
	    -ENOENT);
	fileset_free(fs);
}

/* amd64 and arm64 images under an index under another index. */
static void
layout_multi(const char *dir, struct image *amd, struct image *arm,
    char index[DIGEST_STR_LEN])
{
	static const char *const a[] = { "var/lib/dpkg/status",
		"Package: amd\n", NULL };
	static const char *const b[] = { "var/lib/dpkg/status",
		"Package: arm\n", NULL };
	const char *media[1] = { mt_gzip };
	struct buf la = make_tar(F_GZIP, a), lb = make_tar(F_GZIP, b);
	put_image(dir, "amd64", &la, media, 1, amd);
	put_image(dir, "arm64", &lb, media, 1, arm);
	free(la.p);
	free(lb.p);

	/* arm64 first, so picking the first entry would be wrong. */
	json_t *d1 = descj("application/vnd.oci.image.manifest.v1+json",
	    arm->manifest, arm->manifest_size);
	json_object_set_new(d1, "platform", json_pack("{s:s, s:s, s:s}",
	    "os", "linux", "architecture", "arm64", "variant", "v8"));
	json_t *d2 = descj("application/vnd.oci.image.manifest.v1+json",
	    amd->manifest, amd->manifest_size);
	json_object_set_new(d2, "platform", json_pack("{s:s, s:s}", "os",
	    "linux", "architecture", "amd64"));
	json_t *inner = json_pack("{s:i, s:s, s:[o,o]}", "schemaVersion", 2,
	    "mediaType", "application/vnd.oci.image.index.v1+json",
	    "manifests", d1, d2);
	char inner_d[DIGEST_STR_LEN];
	size_t n = put_json(dir, inner, inner_d);
	json_t *outer = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2,
	    "mediaType", "application/vnd.oci.image.index.v1+json",
	    "manifests",
	    descj("application/vnd.oci.image.index.v1+json", inner_d, n));
	n = put_json(dir, outer, index);
	put_layout(dir, json_pack("[o]",
	    descj("application/vnd.oci.image.index.v1+json", index, n)));
}

static void
test_oci_multi_platform_nested(void **state)
{
	(void)state;
	char dir[512], err[1024], index[DIGEST_STR_LEN];
	struct image amd, arm;
	struct image_found f;
	fileset *fs;
	subdir(dir, sizeof(dir), "multi");
	layout_multi(dir, &amd, &arm, index);
	const char *stores[] = { dir };

	struct image_query q = { .image_id = amd.config };
	assert_int_equal(load(stores, 1, &q, &fs, &f, err, sizeof(err)), 0);
	assert_file(fs, "var/lib/dpkg/status", "Package: amd\n");
	assert_string_equal(f.manifest, amd.manifest);
	fileset_free(fs);

	struct image_query q2 = { .image_id = arm.config,
		.platform = "linux/arm64/v8" };
	assert_int_equal(load(stores, 1, &q2, &fs, &f, err, sizeof(err)), 0);
	assert_file(fs, "var/lib/dpkg/status", "Package: arm\n");
	assert_string_equal(f.platform, "linux/arm64");
	fileset_free(fs);

	/* No image ID: the repo digest (of the outer index) and the
	 * platform choose. */
	char rd[200];
	snprintf(rd, sizeof(rd), "example.org/app@%s", index);
	const char *rds[] = { rd };
	struct image_query q3 = { .repo_digests = rds, .ndigests = 1,
		.platform = "linux/arm64" };
	assert_int_equal(load(stores, 1, &q3, &fs, &f, err, sizeof(err)), 0);
	assert_file(fs, "var/lib/dpkg/status", "Package: arm\n");
	assert_string_equal(f.image_id, arm.config);
	fileset_free(fs);
	struct image_query q4 = { .repo_digests = rds, .ndigests = 1 };
	assert_int_equal(load(stores, 1, &q4, &fs, &f, err, sizeof(err)), 0);
	assert_file(fs, "var/lib/dpkg/status", "Package: amd\n");
	fileset_free(fs);
	struct image_query q5 = { .repo_digests = rds, .ndigests = 1,
		.platform = "linux/s390x" };
	assert_int_equal(load(stores, 1, &q5, &fs, &f, err, sizeof(err)),
	    -ENOENT);
	fileset_free(fs);

	struct image_query bad = { .image_id = amd.config,
		.platform = "linux" };
	assert_int_equal(load(stores, 1, &bad, &fs, &f, err, sizeof(err)),
	    -EINVAL);
	fileset_free(fs);
}

static void
test_oci_nesting_bound(void **state)
{
	(void)state;
	char dir[512], err[1024], d[DIGEST_STR_LEN];
	struct image img;
	fileset *fs;
	subdir(dir, sizeof(dir), "deep");
	two_layer_image(dir, &img);
	size_t n = img.manifest_size;
	memcpy(d, img.manifest, sizeof(d));
	const char *media = "application/vnd.oci.image.manifest.v1+json";
	/* 10 indexes deep below index.json. */
	for (int i = 0; i < 10; i++) {
		json_t *ix = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2,
		    "mediaType", "application/vnd.oci.image.index.v1+json",
		    "manifests", descj(media, d, n));
		n = put_json(dir, ix, d);
		media = "application/vnd.oci.image.index.v1+json";
	}
	put_layout(dir, json_pack("[o]", descj(media, d, n)));
	const char *stores[] = { dir };
	struct image_query q = { .image_id = img.config };
	int rc = load(stores, 1, &q, &fs, NULL, err, sizeof(err));
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(err, "nested"));
	fileset_free(fs);
}

/* A `docker save` archive: manifest.json, <hex>.json config, layers as
 * <id>/layer.tar (v1 style) and blobs/sha256/<hex> (Docker 25+). */
static void
docker_archive(const char *path, bool shuffled, bool corrupt,
    char config[DIGEST_STR_LEN])
{
	static const char *const lower[] = { "var/lib/dpkg/status",
		"Package: lower\n", "etc/os-release", "ID=debian\n", NULL };
	static const char *const upper[] = { "var/lib/dpkg/status",
		"Package: upper\n", "etc/.wh.os-release", "", NULL };
	struct buf l0 = make_tar(F_NONE, lower), l1 = make_tar(F_NONE, upper);
	char d0[DIGEST_STR_LEN], d1[DIGEST_STR_LEN];
	sha(l0.p, l0.len, d0);
	sha(l1.p, l1.len, d1);
	json_t *cfg = json_pack("{s:s, s:s, s:{s:s, s:[s,s]}}",
	    "architecture", "amd64", "os", "linux", "rootfs", "type", "layers",
	    "diff_ids", d0, d1);
	char *cs = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	sha(cs, strlen(cs), config);
	char cname[100], l1name[100];
	snprintf(cname, sizeof(cname), "%s.json", config + 7);
	snprintf(l1name, sizeof(l1name), "blobs/sha256/%s", d1 + 7);
	json_t *man = json_pack("[{s:s, s:[s], s:[s,s]}]", "Config", cname,
	    "RepoTags", "debian:12", "Layers", "aaaa/layer.tar", l1name);
	char *ms = json_dumps(man, JSON_COMPACT);
	json_decref(man);
	if (corrupt)
		l1.p[l1.len - 1] ^= 1; /* in the zero padding */

	const char *ents[20];
	size_t k = 0;
	if (shuffled) { /* manifest first, upper layer before lower */
		ents[k++] = "manifest.json";
		ents[k++] = ms;
		ents[k++] = l1name;
		ents[k++] = (const char *)l1.p;
		ents[k++] = "aaaa/layer.tar";
		ents[k++] = (const char *)l0.p;
		ents[k++] = cname;
		ents[k++] = cs;
	} else {
		ents[k++] = "aaaa/layer.tar";
		ents[k++] = (const char *)l0.p;
		ents[k++] = l1name;
		ents[k++] = (const char *)l1.p;
		ents[k++] = cname;
		ents[k++] = cs;
		ents[k++] = "manifest.json";
		ents[k++] = ms;
	}
	/* Entries with binary content: written by hand, sizes known. */
	size_t sizes[4];
	for (size_t i = 0; i < 4; i++) {
		const char *c = ents[2 * i + 1];
		sizes[i] = c == (const char *)l0.p ? l0.len :
		    c == (const char *)l1.p	   ? l1.len :
						     strlen(c);
	}
	struct buf out = { 0 };
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open(a, &out, NULL, buf_write_cb, NULL);
	for (size_t i = 0; i < 4; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[2 * i]);
		archive_entry_set_mode(e, AE_IFREG | 0644);
		archive_entry_set_size(e, (la_int64_t)sizes[i]);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, ents[2 * i + 1],
				     sizes[i]),
		    (la_ssize_t)sizes[i]);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	write_file(path, out.p, out.len);
	free(out.p);
	free(l0.p);
	free(l1.p);
	free(cs);
	free(ms);
}

static void
test_docker_archive(void **state)
{
	(void)state;
	char path[512], err[1024], cfg[DIGEST_STR_LEN];
	struct image_found f;
	fileset *fs;

	for (int shuffled = 0; shuffled < 2; shuffled++) {
		subdir(path, sizeof(path), shuffled ? "shuf.tar" : "save.tar");
		docker_archive(path, shuffled, false, cfg);
		const char *stores[] = { path };
		struct image_query q = { .image_id = cfg };
		int rc = load(stores, 1, &q, &fs, &f, err, sizeof(err));
		if (rc != 0)
			fail_msg("%s", err);
		assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
		assert_file(fs, "etc/os-release", NULL);
		assert_int_equal(f.kind, IMAGESTORE_DOCKER_ARCHIVE);
		assert_int_equal(f.nlayers, 2);
		assert_string_equal(f.image_id, cfg);
		assert_string_equal(f.platform, "linux/amd64");
		fileset_free(fs);

		const char *tags[] = { "docker.io/library/debian:12" };
		struct image_query qt = { .repo_tags = tags, .ntags = 1 };
		assert_int_equal(load(stores, 1, &qt, &fs, &f, err,
				     sizeof(err)),
		    0);
		assert_string_equal(f.image_id, cfg);
		fileset_free(fs);
	}

	/* A layer whose bytes are not its diff_id. */
	subdir(path, sizeof(path), "corrupt.tar");
	docker_archive(path, false, true, cfg);
	const char *stores[] = { path };
	struct image_query q = { .image_id = cfg };
	assert_int_equal(load(stores, 1, &q, &fs, &f, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "digest mismatch"));
	assert_non_null(strstr(err, "blobs/sha256/"));
	fileset_free(fs);
}

/* A containerd content store: the blobs of an image, no index. */
static void
test_containerd(void **state)
{
	(void)state;
	char dir[512], err[1024], noise[DIGEST_STR_LEN];
	struct image img;
	struct image_found f;
	fileset *fs;
	subdir(dir, sizeof(dir), "containerd/blobs");
	two_layer_image(dir, &img);
	/* Non-manifest JSON and junk, which the cache must pass over. */
	const char *junk = "{\"hello\": 1}";
	put_blob(dir, junk, strlen(junk), noise);
	const char *stores[] = { dir };

	imagestore_cache_clear();
	char rd[200];
	snprintf(rd, sizeof(rd), "registry.example/app@%s", img.manifest);
	const char *rds[] = { rd };
	struct image_query q = { .image_id = img.config, .repo_digests = rds,
		.ndigests = 1 };
	assert_int_equal(load(stores, 1, &q, &fs, &f, err, sizeof(err)), 0);
	assert_int_equal(f.kind, IMAGESTORE_CONTAINERD);
	assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
	fileset_free(fs);

	/* No hints: found by examining the blobs, then from the cache. */
	struct image_query q2 = { .image_id = img.config };
	for (int i = 0; i < 2; i++) {
		int rc = load(stores, 1, &q2, &fs, &f, err, sizeof(err));
		if (rc != 0)
			fail_msg("%s", err);
		assert_string_equal(f.manifest, img.manifest);
		assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
		assert_file(fs, "etc/os-release", NULL);
		fileset_free(fs);
	}
	/* An image pulled after the cache was filled is found too. */
	struct image img2;
	static const char *const l[] = { "lib/apk/db/installed", "P:musl\n",
		NULL };
	struct buf lb = make_tar(F_NONE, l);
	const char *media[1] = { mt_tar };
	put_image(dir, "amd64", &lb, media, 1, &img2);
	free(lb.p);
	struct image_query q3 = { .image_id = img2.config };
	assert_int_equal(load(stores, 1, &q3, &fs, &f, err, sizeof(err)), 0);
	assert_file(fs, "lib/apk/db/installed", "P:musl\n");
	fileset_free(fs);
	imagestore_cache_clear();
}

static void
test_not_found(void **state)
{
	(void)state;
	char dir[512], cd[512], missing[512], err[1024];
	struct image img;
	fileset *fs;
	subdir(dir, sizeof(dir), "nf-oci");
	layout_two_layers(dir, &img);
	subdir(cd, sizeof(cd), "nf-cd");
	char junk[DIGEST_STR_LEN];
	put_blob(cd, "x", 1, junk);
	subdir(missing, sizeof(missing), "no-such-store.tar");
	const char *stores[] = { dir, cd, missing };
	const char *id = "sha256:"
			 "0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef";
	struct image_query q = { .image_id = id };
	assert_int_equal(load(stores, 3, &q, &fs, NULL, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, id));
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, cd));
	assert_non_null(strstr(err, missing));
	fileset_free(fs);
	imagestore_cache_clear();

	/* A store later in the list has it. */
	const char *stores2[] = { missing, cd, dir };
	struct image_found f;
	struct image_query q2 = { .image_id = img.config };
	assert_int_equal(load(stores2, 3, &q2, &fs, &f, err, sizeof(err)), 0);
	assert_int_equal(f.store, 2);
	fileset_free(fs);
	imagestore_cache_clear();

	struct image_query bad = { .image_id = "sha256:../../etc/passwd" };
	assert_int_equal(load(stores, 1, &bad, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	fileset_free(fs);
}

static void
test_missing_layer(void **state)
{
	(void)state;
	char dir[512], err[1024], path[1024];
	struct image img;
	fileset *fs;
	subdir(dir, sizeof(dir), "partial");
	layout_two_layers(dir, &img);
	blob_path(dir, img.layer[1], path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	const char *stores[] = { dir };
	struct image_query q = { .image_id = img.config };
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -EAGAIN);
	assert_non_null(strstr(err, img.layer[1]));
	assert_null(fileset_get(fs, "var/lib/dpkg/status")); /* none applied */
	fileset_free(fs);

	/* A layer shorter than its descriptor: still being copied. */
	subdir(dir, sizeof(dir), "partial2");
	layout_two_layers(dir, &img);
	blob_path(dir, img.layer[0], path, sizeof(path));
	assert_int_equal(truncate(path, 10), 0);
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -EAGAIN);
	fileset_free(fs);
}

static void
test_digest_mismatch(void **state)
{
	(void)state;
	char dir[512], err[1024], path[1024];
	struct image img;
	struct buf b = { 0 };
	fileset *fs;
	const char *stores[] = { dir };
	struct image_query q = { .image_id = img.config };

	for (int which = 0; which < 3; which++) {
		char name[32];
		snprintf(name, sizeof(name), "mismatch%d", which);
		subdir(dir, sizeof(dir), name);
		layout_two_layers(dir, &img);
		const char *victim = which == 0 ? img.layer[0] :
		    which == 1		       ? img.layer[1] :
						 img.config;
		blob_path(dir, victim, path, sizeof(path));
		read_file(path, &b);
		b.p[b.len / 2] ^= 0x20;
		write_file(path, b.p, b.len);
		int rc = load(stores, 1, &q, &fs, NULL, err, sizeof(err));
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, "digest mismatch"));
		assert_non_null(strstr(err, victim));
		fileset_free(fs);
	}
	free(b.p);
}

/* A manifest in the layout whose JSON is replaced by body. */
static void
layout_with_manifest(const char *dir, const char *body, size_t len,
    char digest[DIGEST_STR_LEN])
{
	put_blob(dir, body, len, digest);
	put_layout(dir, json_pack("[o]",
	    descj("application/vnd.oci.image.manifest.v1+json", digest,
		len)));
}

static void
test_hostile(void **state)
{
	(void)state;
	char dir[512], err[1024], md[DIGEST_STR_LEN], rd[200];
	struct image img;
	fileset *fs;
	const char *stores[] = { dir };
	const char *rds[] = { rd };

	/* A layer "digest" that is a path. */
	subdir(dir, sizeof(dir), "traversal");
	two_layer_image(dir, &img);
	json_t *man = json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, "
				"s:i}]}",
	    "schemaVersion", 2, "mediaType",
	    "application/vnd.oci.image.manifest.v1+json", "config",
	    "mediaType", "application/vnd.oci.image.config.v1+json", "digest",
	    img.config, "size", 10, "layers", "mediaType", mt_tar, "digest",
	    "sha256:../../../../etc/passwd", "size", 10);
	char *s = json_dumps(man, JSON_COMPACT);
	json_decref(man);
	layout_with_manifest(dir, s, strlen(s), md);
	free(s);
	struct image_query q = { .image_id = img.config };
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "layer 0"));
	fileset_free(fs);

	/* A 5 MiB manifest (hinted by its repo digest). */
	subdir(dir, sizeof(dir), "huge");
	size_t n = 5u << 20;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	layout_with_manifest(dir, big, n, md);
	free(big);
	snprintf(rd, sizeof(rd), "x@%s", md);
	struct image_query qh = { .image_id = img.config, .repo_digests = rds,
		.ndigests = 1 };
	assert_int_equal(load(stores, 1, &qh, &fs, NULL, err, sizeof(err)),
	    -EFBIG);
	assert_non_null(strstr(err, md));
	fileset_free(fs);
	/* Unhinted, an unreadable manifest does not spoil the lookup. */
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -ENOENT);
	fileset_free(fs);

	/* Bad JSON in a manifest, and in index.json. */
	subdir(dir, sizeof(dir), "badjson");
	layout_with_manifest(dir, "{\"layers\": [", 12, md);
	snprintf(rd, sizeof(rd), "%s", md);
	assert_int_equal(load(stores, 1, &qh, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));
	fileset_free(fs);
	char path[1024];
	snprintf(path, sizeof(path), "%s/index.json", dir);
	write_file(path, "[1,", 3);
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "index.json"));
	fileset_free(fs);

	/* A blob that is a symlink out of the store. */
	subdir(dir, sizeof(dir), "symlink");
	layout_two_layers(dir, &img);
	blob_path(dir, img.layer[0], path, sizeof(path));
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(load(stores, 1, &q, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "symbolic link"));
	fileset_free(fs);

	/* A garbage docker-archive before a good store: skipped. */
	char tarp[512], good[512];
	subdir(tarp, sizeof(tarp), "garbage.tar");
	write_file(tarp, "not a tar at all", 16);
	subdir(good, sizeof(good), "symlink-free");
	layout_two_layers(good, &img);
	const char *two[] = { tarp, good };
	struct image_query qg = { .image_id = img.config };
	assert_int_equal(load(two, 2, &qg, &fs, NULL, err, sizeof(err)), 0);
	fileset_free(fs);
	/* Alone, its error is reported. */
	assert_int_equal(load(two, 1, &qg, &fs, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, tarp));
	fileset_free(fs);
}

/* ---- the containerd cache: what it reads, and on which thread ---- */

/* What the read hook saw, and how it behaves. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char slow[512];	   /* a read of this store waits for release */
	bool slow_reading; /* that read has begun */
	bool released;	   /* the test let it go on */
	bool timed_out;	   /* it waited 10 s and was not let go */
	int sleep_ms;	   /* every read first sleeps this long */
	char counted[512]; /* reads of this store are counted */
	int reads;
} hk = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void
read_hook(const char *store)
{
	pthread_mutex_lock(&hk.mu);
	if (strcmp(store, hk.counted) == 0)
		hk.reads++;
	if (strcmp(store, hk.slow) == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		hk.slow_reading = true;
		pthread_cond_broadcast(&hk.cv);
		while (!hk.released && !hk.timed_out)
			if (pthread_cond_timedwait(&hk.cv, &hk.mu, &ts) ==
			    ETIMEDOUT)
				hk.timed_out = true;
	}
	int ms = hk.sleep_ms;
	pthread_mutex_unlock(&hk.mu);
	if (ms > 0) {
		struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000L };
		nanosleep(&d, NULL);
	}
}

static void
hook_reset(void)
{
	pthread_mutex_lock(&hk.mu);
	hk.slow[0] = hk.counted[0] = '\0';
	hk.slow_reading = hk.released = hk.timed_out = false;
	hk.sleep_ms = 0;
	hk.reads = 0;
	pthread_mutex_unlock(&hk.mu);
}

static int
hook_reads(void)
{
	pthread_mutex_lock(&hk.mu);
	int n = hk.reads;
	pthread_mutex_unlock(&hk.mu);
	return n;
}

/* Makes a content store's blobs/sha256 look untouched for an hour, so
 * that the cache may trust its mtime. */
static void
age_blobs(const char *dir)
{
	char path[1024];
	struct timespec t[2];
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= 3600;
	t[1] = t[0];
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* A content store dir (under name) holding the two-layer image, idle
 * for an hour. */
static void
cd_store(char *dir, size_t len, const char *name, struct image *img)
{
	subdir(dir, len, name);
	two_layer_image(dir, img);
	age_blobs(dir);
}

/* An empty cache, and the read hook on: reads of counted are counted,
 * reads of slow (may be NULL) wait for the test, every read first sleeps
 * sleep_ms. */
static void
hook_start(const char *counted, const char *slow, int sleep_ms)
{
	imagestore_cache_clear();
	hook_reset();
	snprintf(hk.counted, sizeof(hk.counted), "%s", counted);
	snprintf(hk.slow, sizeof(hk.slow), "%s", slow ? slow : "");
	hk.sleep_ms = sleep_ms;
	containerd_read_hook = read_hook;
}

static void
hook_stop(void)
{
	containerd_read_hook = NULL;
	imagestore_cache_clear();
}

/* Looks img up by image ID alone (so through the cache); returns rc. */
static int
cd_load(const char *dir, const struct image *img, char *err, size_t errlen)
{
	const char *stores[] = { dir };
	struct image_query q = { .image_id = img->config };
	fileset *fs;
	int rc = load(stores, 1, &q, &fs, NULL, err, errlen);
	if (rc == 0)
		assert_file(fs, "var/lib/dpkg/status", "Package: upper\n");
	fileset_free(fs);
	return rc;
}

/* An idle store is read once; a change to it (a pull, a removal) makes
 * the next lookup read it again, and removed manifests are forgotten. */
static void
test_containerd_freshness(void **state)
{
	(void)state;
	char dir[512], err[1024], path[1024];
	struct image img, img2;
	cd_store(dir, sizeof(dir), "cd-fresh", &img);
	hook_start(dir, NULL, 0);

	for (int i = 0; i < 3; i++)
		if (cd_load(dir, &img, err, sizeof(err)) != 0)
			fail_msg("%s", err);
	assert_int_equal(hook_reads(), 1);

	/* A pull: the directory changes, and the new image is found. */
	static const char *const l[] = { "var/lib/dpkg/status",
		"Package: upper\n", NULL };
	struct buf lb = make_tar(F_NONE, l);
	const char *media[1] = { mt_tar };
	put_image(dir, "arm64", &lb, media, 1, &img2);
	free(lb.p);
	if (cd_load(dir, &img2, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(hook_reads(), 2);

	/* A removal: the manifest is gone, so is the image (not a pull in
	 * progress, which a stale cache entry would make it look like). */
	blob_path(dir, img2.manifest, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	age_blobs(dir);
	assert_int_equal(cd_load(dir, &img2, err, sizeof(err)), -ENOENT);
	assert_int_equal(hook_reads(), 3);
	if (cd_load(dir, &img, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(hook_reads(), 3);
	hook_stop();
}

struct cd_thread {
	const char *dir;
	const struct image *img;
	int rc;
	char err[1024];
};

static void *
cd_thread_main(void *arg)
{
	struct cd_thread *t = arg;
	t->rc = cd_load(t->dir, t->img, t->err, sizeof(t->err));
	return NULL;
}

/* While one thread reads a store's directory, a lookup in another store
 * that is already indexed goes ahead: no lock is held during the read. */
static void
test_containerd_read_unlocked(void **state)
{
	(void)state;
	char a[512], b[512], err[1024];
	struct image ia, ib;
	cd_store(a, sizeof(a), "cd-a", &ia);
	cd_store(b, sizeof(b), "cd-b", &ib);
	hook_start(a, b, 0);
	if (cd_load(a, &ia, err, sizeof(err)) != 0)
		fail_msg("%s", err);

	pthread_t th;
	struct cd_thread t = { b, &ib, -1, "" };
	assert_int_equal(pthread_create(&th, NULL, cd_thread_main, &t), 0);
	pthread_mutex_lock(&hk.mu);
	while (!hk.slow_reading && !hk.timed_out)
		pthread_cond_wait(&hk.cv, &hk.mu);
	pthread_mutex_unlock(&hk.mu);

	/* B is being read, and stays so until this lookup is done. */
	int rc = cd_load(a, &ia, err, sizeof(err));
	pthread_mutex_lock(&hk.mu);
	bool timed_out = hk.timed_out;
	hk.released = true;
	pthread_cond_broadcast(&hk.cv);
	pthread_mutex_unlock(&hk.mu);
	pthread_join(th, NULL);

	if (rc != 0)
		fail_msg("%s", err);
	if (t.rc != 0)
		fail_msg("%s", t.err);
	assert_false(timed_out);
	assert_int_equal(hook_reads(), 1); /* A was not read again */
	hook_stop();
}

/* Lookups of one store on several threads at once read it once. */
static void
test_containerd_concurrent(void **state)
{
	(void)state;
	enum { N = 6 };
	char dir[512];
	struct image img;
	cd_store(dir, sizeof(dir), "cd-many", &img);
	for (int round = 0; round < 3; round++) {
		/* The read sleeps: the others arrive meanwhile. */
		hook_start(dir, NULL, 100);
		pthread_t th[N];
		struct cd_thread t[N];
		for (int i = 0; i < N; i++) {
			t[i] = (struct cd_thread){ dir, &img, -1, "" };
			assert_int_equal(pthread_create(&th[i], NULL,
					     cd_thread_main, &t[i]),
			    0);
		}
		/* A clear in the middle waits for the read, and is safe. */
		if (round == 2)
			imagestore_cache_clear();
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			if (t[i].rc != 0)
				fail_msg("thread %d: %s", i, t[i].err);
		}
		if (round < 2)
			assert_int_equal(hook_reads(), 1);
		else
			assert_in_range(hook_reads(), 1, N);
		hook_stop();
	}
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/imagestore-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_two_layers),
		cmocka_unit_test(test_oci_multi_platform_nested),
		cmocka_unit_test(test_oci_nesting_bound),
		cmocka_unit_test(test_docker_archive),
		cmocka_unit_test(test_containerd),
		cmocka_unit_test(test_containerd_freshness),
		cmocka_unit_test(test_containerd_read_unlocked),
		cmocka_unit_test(test_containerd_concurrent),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_missing_layer),
		cmocka_unit_test(test_digest_mismatch),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
