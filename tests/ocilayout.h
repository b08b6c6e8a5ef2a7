/*
 * ocilayout: builds a one-image OCI image layout on disk for the tests
 * that scan real images (test_scanner): one plain-tar layer of given
 * files, its config and manifest as blobs, index.json and oci-layout.
 * Include after <cmocka.h>, <archive.h>, <archive_entry.h> and
 * <jansson.h>.
 */
#ifndef SBOMD_TESTS_OCILAYOUT_H
#define SBOMD_TESTS_OCILAYOUT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/digest.h"

#include "tarbuf.h"

/* A file of the layer: its path and content (len bytes). */
struct ocil_file {
	const char *path;
	const char *data;
	size_t len;
};

static inline void
ocil_mkdirs(const char *path)
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

static inline void
ocil_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Writes p as a blob of dir; its digest into out. */
static inline void
ocil_blob(const char *dir, const void *p, size_t n,
    char out[DIGEST_STR_LEN])
{
	uint8_t d[DIGEST_LEN];
	char path[1024];
	digest_sha256(p, n, d);
	digest_format(d, out);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	ocil_mkdirs(path);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, out + 7);
	ocil_write(path, p, n);
}

/* Writes j (and frees it) as a blob; returns its size. */
static inline size_t
ocil_json_blob(const char *dir, json_t *j, char out[DIGEST_STR_LEN])
{
	char *s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	size_t n = strlen(s);
	ocil_blob(dir, s, n, out);
	free(s);
	json_decref(j);
	return n;
}

/*
 * The layout in dir (created) of one linux/amd64 image whose single
 * layer holds files[0..n); the image ID (the config's digest) into id.
 */
static inline void
ocil_image(const char *dir, const struct ocil_file *files, size_t n,
    char id[DIGEST_STR_LEN])
{
	struct buf tar = {0};
	struct archive *a = archive_write_new();
	char layer[DIGEST_STR_LEN], manifest[DIGEST_STR_LEN], path[1024];

	assert_int_equal(archive_write_set_format_pax_restricted(a),
	    ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1),
	    ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, &tar, NULL, buf_write_cb,
	    NULL), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i].path);
		archive_entry_set_mode(e, AE_IFREG | 0644);
		archive_entry_set_size(e, (la_int64_t)files[i].len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (files[i].len > 0)
			assert_int_equal(archive_write_data(a, files[i].data,
			    files[i].len), (la_ssize_t)files[i].len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);

	ocil_mkdirs(dir);
	ocil_blob(dir, tar.p, tar.len, layer);
	json_t *cfg = json_pack("{s:s, s:s, s:{s:s, s:[s]}}", "architecture",
	    "amd64", "os", "linux", "rootfs", "type", "layers", "diff_ids",
	    layer);
	size_t cn = ocil_json_blob(dir, cfg, id);
	json_t *man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, "
	    "s:[{s:s, s:s, s:I}]}", "schemaVersion", 2, "mediaType",
	    "application/vnd.oci.image.manifest.v1+json",
	    "config", "mediaType", "application/vnd.oci.image.config.v1+json",
	    "digest", id, "size", (json_int_t)cn,
	    "layers", "mediaType", "application/vnd.oci.image.layer.v1.tar",
	    "digest", layer, "size", (json_int_t)tar.len);
	size_t mn = ocil_json_blob(dir, man, manifest);
	free(tar.p);

	json_t *idx = json_pack("{s:i, s:[{s:s, s:s, s:I}]}", "schemaVersion",
	    2, "manifests", "mediaType",
	    "application/vnd.oci.image.manifest.v1+json", "digest", manifest,
	    "size", (json_int_t)mn);
	char *s = json_dumps(idx, JSON_COMPACT);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	ocil_write(path, s, strlen(s));
	free(s);
	json_decref(idx);
	const char *ol = "{\"imageLayoutVersion\":\"1.0.0\"}";
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	ocil_write(path, ol, strlen(ol));
}

#endif
