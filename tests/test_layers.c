/*
 * test_layers: the layer walker (consumer/scan/oci/layers) against layers
 * built here with libarchive's write API: plain, gzip and zstd tars,
 * whiteouts, opaque directories in either tar order, links, hostile paths,
 * every bound, decompression bombs, truncated and random input.
 *
 * Bombs are built cheaply: a hand-made ustar header declaring a huge file,
 * followed by one small gzip member of zeros repeated (libarchive reads
 * concatenated gzip members as one stream), so a 4 GiB stream costs a few
 * MiB of memory to build and only the walker's bound keeps it from being
 * inflated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scan/fileset.h"
#include "scan/oci/layers.h"
#include "testutil.h"

#include "tarbuf.h"

/* A layer being written. */
struct tb {
	struct archive *a;
	struct buf out;
};

static struct tb *
tb_new(enum filt f)
{
	struct tb *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(t->a),
	    ARCHIVE_OK);
	if (f == F_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(t->a),
		    ARCHIVE_OK);
	else if (f == F_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(t->a),
		    ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(t->a, 1),
	    ARCHIVE_OK);
	assert_int_equal(archive_write_open(t->a, &t->out, NULL,
			     buf_write_cb, NULL),
	    ARCHIVE_OK);
	return t;
}

static void
tb_entry(struct tb *t, const char *path, unsigned type, const void *data,
    size_t len, const char *symlink, const char *hardlink)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	if (symlink)
		archive_entry_set_symlink(e, symlink);
	if (hardlink)
		archive_entry_set_hardlink(e, hardlink);
	assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
	if (len > 0)
		assert_int_equal(archive_write_data(t->a, data, len),
		    (la_ssize_t)len);
	archive_entry_free(e);
}

static void
tb_file(struct tb *t, const char *path, const char *text)
{
	tb_entry(t, path, AE_IFREG, text, strlen(text), NULL, NULL);
}

static void
tb_dir(struct tb *t, const char *path)
{
	tb_entry(t, path, AE_IFDIR, NULL, 0, NULL, NULL);
}

static void
tb_symlink(struct tb *t, const char *path, const char *target)
{
	tb_entry(t, path, AE_IFLNK, NULL, 0, target, NULL);
}

static void
tb_hardlink(struct tb *t, const char *path, const char *target)
{
	tb_entry(t, path, AE_IFREG, NULL, 0, NULL, target);
}

/* Finishes the layer; the caller frees the returned buffer's p. */
static struct buf
tb_done(struct tb *t)
{
	assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
	archive_write_free(t->a);
	struct buf b = t->out;
	free(t);
	return b;
}

/* Memory source: hands out at most chunk bytes a call; fails with EIO
 * at fail_at when set. */
struct mem {
	const unsigned char *p;
	size_t len, off, chunk;
	size_t fail_at; /* 0: never */
};

static ssize_t
mem_read(void *ctx, void *dst, size_t n)
{
	struct mem *m = ctx;
	if (m->fail_at != 0 && m->off >= m->fail_at)
		return -EIO;
	size_t k = m->len - m->off;
	if (k > n)
		k = n;
	if (m->chunk != 0 && k > m->chunk)
		k = m->chunk;
	memcpy(dst, m->p + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static char errbuf[1024];

static int
apply_lim(fileset *fs, const struct buf *b, const char *name,
    const struct layer_limits *lim)
{
	struct mem m = { b->p, b->len, 0, 3000 + rng_below(70000), 0 };
	memset(errbuf, 0, sizeof(errbuf));
	int rc = layer_apply(fs, mem_read, &m, name, lim, errbuf,
	    sizeof(errbuf));
	if (rc == 0 && errbuf[0] != '\0')
		fail_msg("success with a message: %s", errbuf);
	if (rc != 0 && errbuf[0] == '\0')
		fail_msg("%s: rc %d without a message", name, rc);
	return rc;
}

static int
apply(fileset *fs, const struct buf *b, const char *name)
{
	struct layer_limits lim;
	layer_limits_default(&lim);
	return apply_lim(fs, b, name, &lim);
}

/* Applies and frees a finished layer, expecting success. */
static void
apply_ok(fileset *fs, struct tb *t, const char *name)
{
	struct buf b = tb_done(t);
	int rc = apply(fs, &b, name);
	if (rc != 0)
		fail_msg("%s: rc %d: %s", name, rc, errbuf);
	free(b.p);
}

static void
expect_failure(int rc, int want, const char *name, const char *needle)
{
	if (rc != want)
		fail_msg("rc %d, want %d (%s)", rc, want, errbuf);
	if (strstr(errbuf, name) == NULL)
		fail_msg("message does not name layer %s: %s", name, errbuf);
	if (needle != NULL && strstr(errbuf, needle) == NULL)
		fail_msg("message lacks \"%s\": %s", needle, errbuf);
}

static void
expect_file(const fileset *fs, const char *path, const char *text)
{
	const struct fileset_file *f = fileset_get(fs, path);
	if (f == NULL)
		fail_msg("%s missing", path);
	if (f->len != strlen(text) || memcmp(f->data, text, f->len) != 0)
		fail_msg("%s: got %.*s, want %s", path, (int)f->len,
		    (const char *)f->data, text);
}

static void
expect_none(const fileset *fs, const char *path)
{
	if (fileset_get(fs, path) != NULL)
		fail_msg("%s should be gone", path);
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- bomb material ---------------------------------------------------- */

/* One gzip member holding data (raw format: no tar around it). */
static struct buf
gz_member(const void *data, size_t len)
{
	struct buf out = { 0 };
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1),
	    ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, &out, NULL, buf_write_cb,
			     NULL),
	    ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "x");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (len > 0)
		assert_int_equal(archive_write_data(a, data, len),
		    (la_ssize_t)len);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return out;
}

static struct buf
gz_zeros(size_t len)
{
	void *z = calloc(1, len ? len : 1);
	struct buf b = gz_member(z, len);
	free(z);
	return b;
}

/* A ustar header for a regular file of size bytes. */
static void
ustar_header(unsigned char h[512], const char *name, uint64_t size)
{
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	memcpy(h + 136, "00000000000", 12);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/*
 * A gzip tar stream of entries files of size bytes each (all zeros),
 * built from repeated members of zeros: size must be a multiple of
 * chunk, and chunk of 512.
 */
static struct buf
bomb(const char *name, unsigned files, uint64_t size, size_t chunk)
{
	struct buf out = { 0 };
	struct buf z = gz_zeros(chunk);
	struct buf end = gz_zeros(1024);
	for (unsigned f = 0; f < files; f++) {
		unsigned char h[512];
		char nm[100];
		snprintf(nm, sizeof(nm), files > 1 ? "%s%u" : "%s", name, f);
		ustar_header(h, nm, size);
		struct buf hb = gz_member(h, sizeof(h));
		buf_add(&out, hb.p, hb.len);
		free(hb.p);
		for (uint64_t i = 0; i < size / chunk; i++)
			buf_add(&out, z.p, z.len);
	}
	buf_add(&out, end.p, end.len);
	free(z.p);
	free(end.p);
	return out;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_upper_replaces_lower(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_dir(t, "etc/");
	tb_file(t, "etc/os-release", "ID=debian\n");
	tb_file(t, "var/lib/dpkg/status", "Package: a\n");
	tb_file(t, "usr/share/doc/a/copyright", "License: A\n");
	apply_ok(fs, t, "L1");
	t = tb_new(F_GZIP);
	tb_file(t, "etc/os-release", "ID=ubuntu\n");
	tb_file(t, "usr/share/doc/b/copyright", "License: B\n");
	apply_ok(fs, t, "L2");
	expect_file(fs, "etc/os-release", "ID=ubuntu\n");
	expect_file(fs, "var/lib/dpkg/status", "Package: a\n");
	expect_file(fs, "usr/share/doc/a/copyright", "A\n");
	expect_file(fs, "usr/share/doc/b/copyright", "B\n");
	assert_int_equal(fileset_count(fs), 4);

	/* Within one layer the last entry for a path wins. */
	t = tb_new(F_NONE);
	tb_file(t, "etc/os-release", "first");
	tb_file(t, "etc/os-release", "second");
	tb_file(t, "usr/share/doc/a/copyright", "License: A2\n");
	tb_symlink(t, "usr/share/doc/a/copyright", "/dev/null");
	apply_ok(fs, t, "L3");
	expect_file(fs, "etc/os-release", "second");
	expect_none(fs, "usr/share/doc/a/copyright");
	fileset_free(fs);
}

static void
test_whiteout_file(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "var/lib/dpkg/status", "S");
	tb_file(t, "var/lib/dpkg/status-old", "junk");
	tb_file(t, "etc/os-release", "O");
	apply_ok(fs, t, "L1");
	t = tb_new(F_GZIP);
	tb_file(t, "var/lib/dpkg/.wh.status", "");
	apply_ok(fs, t, "L2");
	expect_none(fs, "var/lib/dpkg/status");
	expect_file(fs, "etc/os-release", "O");
	assert_int_equal(fileset_count(fs), 1);

	/* A whiteout hides lower layers only: the same layer may re-create
	 * the file, before or after the whiteout entry. */
	for (int order = 0; order < 2; order++) {
		t = tb_new(F_NONE);
		if (order == 0)
			tb_file(t, "etc/.wh.os-release", "");
		tb_file(t, "etc/os-release", order ? "N1" : "N0");
		if (order == 1)
			tb_file(t, "etc/.wh.os-release", "");
		apply_ok(fs, t, "L3");
		expect_file(fs, "etc/os-release", order ? "N1" : "N0");
	}
	fileset_free(fs);
}

static void
test_whiteout_dir(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_ZSTD);
	tb_file(t, "usr/share/doc/a/copyright", "License: A\n");
	tb_file(t, "usr/share/doc/ab/copyright", "License: AB\n");
	tb_file(t, "usr/share/doc/b/copyright", "License: B\n");
	tb_file(t, "var/lib/dpkg/status.d/x", "X");
	apply_ok(fs, t, "L1");
	t = tb_new(F_ZSTD);
	tb_file(t, "usr/share/doc/.wh.a", "");
	tb_file(t, "var/lib/dpkg/.wh.status.d", "");
	apply_ok(fs, t, "L2");
	expect_none(fs, "usr/share/doc/a/copyright");
	expect_none(fs, "var/lib/dpkg/status.d/x");
	expect_file(fs, "usr/share/doc/ab/copyright", "AB\n");
	expect_file(fs, "usr/share/doc/b/copyright", "B\n");
	assert_int_equal(fileset_count(fs), 2);

	/* A whiteout of "." or ".." is hostile. */
	t = tb_new(F_NONE);
	tb_file(t, "usr/.wh..", "");
	struct buf b = tb_done(t);
	expect_failure(apply(fs, &b, "L3"), -EINVAL, "L3", "usr/.wh..");
	free(b.p);
	fileset_free(fs);
}

static void
test_opaque_keeps_same_layer(void **state)
{
	(void)state;
	for (int order = 0; order < 3; order++) {
		fileset *fs = fileset_new();
		struct tb *t = tb_new(F_GZIP);
		tb_file(t, "var/lib/dpkg/status.d/x", "X");
		tb_file(t, "var/lib/dpkg/status.d/y", "Y");
		tb_file(t, "var/lib/dpkg/status", "S");
		tb_file(t, "usr/share/doc/a/copyright", "License: A\n");
		apply_ok(fs, t, "L1");

		t = tb_new(order == 2 ? F_ZSTD : F_GZIP);
		if (order == 0)
			tb_file(t, "var/lib/dpkg/status.d/.wh..wh..opq", "");
		tb_dir(t, "var/lib/dpkg/status.d/");
		tb_file(t, "var/lib/dpkg/status.d/z", "Z");
		tb_file(t, "var/lib/dpkg/status.d/y", "Y2");
		if (order != 0)
			tb_file(t, "var/lib/dpkg/status.d/.wh..wh..opq", "");
		apply_ok(fs, t, "L2");
		expect_none(fs, "var/lib/dpkg/status.d/x");
		expect_file(fs, "var/lib/dpkg/status.d/y", "Y2");
		expect_file(fs, "var/lib/dpkg/status.d/z", "Z");
		/* Siblings of the opaque directory are untouched. */
		expect_file(fs, "var/lib/dpkg/status", "S");
		expect_file(fs, "usr/share/doc/a/copyright", "A\n");
		assert_int_equal(fileset_count(fs), 4);

		/* An opaque root hides every lower file. */
		t = tb_new(F_NONE);
		tb_file(t, "etc/os-release", "R");
		tb_file(t, "./.wh..wh..opq", "");
		apply_ok(fs, t, "L3");
		expect_file(fs, "etc/os-release", "R");
		assert_int_equal(fileset_count(fs), 1);
		fileset_free(fs);
	}
}

static void
test_filters(void **state)
{
	(void)state;
	static const unsigned char gz_magic[] = { 0x1f, 0x8b };
	static const unsigned char zs_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
	for (int f = F_NONE; f <= F_ZSTD; f++) {
		fileset *fs = fileset_new();
		struct tb *t = tb_new((enum filt)f);
		tb_file(t, "lib/apk/db/installed", "P:musl\nV:1.2\n");
		tb_file(t, "bin/busybox", "elf");
		struct buf b = tb_done(t);
		/* The layer really is what it claims. */
		if (f == F_GZIP)
			assert_memory_equal(b.p, gz_magic, 2);
		else if (f == F_ZSTD)
			assert_memory_equal(b.p, zs_magic, 4);
		else
			assert_memory_equal(b.p + 257, "ustar", 5);
		int rc = apply(fs, &b, "Lf");
		if (rc != 0)
			fail_msg("filter %d: %s", f, errbuf);
		expect_file(fs, "lib/apk/db/installed", "P:musl\nV:1.2\n");
		assert_int_equal(fileset_count(fs), 1);
		free(b.p);
		fileset_free(fs);
	}
}

static void
test_dotdot_rejected(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"../etc/os-release",
		"usr/../../etc/os-release",
		"a/b/..",
		"/../x",
		"./..",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fileset *fs = fileset_new();
		struct tb *t = tb_new(F_GZIP);
		tb_file(t, "etc/os-release", "ok");
		tb_file(t, bad[i], "evil");
		struct buf b = tb_done(t);
		expect_failure(apply(fs, &b, "sha256:dotdot"), -EINVAL,
		    "sha256:dotdot", bad[i]);
		free(b.p);
		fileset_free(fs);
	}
	/* ".." as a hard link target, too. */
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_NONE);
	tb_file(t, "etc/passwd", "root");
	tb_hardlink(t, "etc/os-release", "../etc/passwd");
	struct buf b = tb_done(t);
	expect_failure(apply(fs, &b, "Lh"), -EINVAL, "Lh", "etc/os-release");
	free(b.p);
	fileset_free(fs);
}

static void
test_absolute_normalised(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "/etc/os-release", "abs");
	tb_file(t, ".//var//lib/./dpkg/status", "dots");
	tb_file(t, "./usr/share/doc/a/copyright", "License: A\n");
	apply_ok(fs, t, "L1");
	expect_file(fs, "etc/os-release", "abs");
	expect_file(fs, "var/lib/dpkg/status", "dots");
	expect_file(fs, "usr/share/doc/a/copyright", "A\n");
	assert_int_equal(fileset_count(fs), 3);
	/* Whiteouts are normalised the same way. */
	t = tb_new(F_NONE);
	tb_file(t, "/etc//.wh.os-release", "");
	apply_ok(fs, t, "L2");
	expect_none(fs, "etc/os-release");
	fileset_free(fs);
}

static void
test_symlinks(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "etc/os-release", "old");
	tb_file(t, "usr/share/doc/a/copyright", "License: A\n");
	tb_file(t, "lib/apk/db/installed", "P:x\n");
	apply_ok(fs, t, "L1");
	t = tb_new(F_GZIP);
	/* Debian's layout: a relative link at a wanted path; and links
	 * replacing a lower directory. None is followed. */
	tb_symlink(t, "etc/os-release", "../usr/lib/os-release");
	tb_file(t, "usr/lib/os-release", "new");
	tb_symlink(t, "usr/share/doc/a", "/etc");
	tb_symlink(t, "lib", "usr/lib");
	tb_symlink(t, "var/lib/dpkg/status", "/etc/shadow");
	apply_ok(fs, t, "L2");
	expect_none(fs, "etc/os-release");
	expect_none(fs, "usr/share/doc/a/copyright");
	expect_none(fs, "lib/apk/db/installed");
	expect_none(fs, "var/lib/dpkg/status");
	expect_file(fs, "usr/lib/os-release", "new");
	assert_int_equal(fileset_count(fs), 1);

	/* A non-wanted directory or regular file at a wanted path also
	 * replaces the lower file. */
	t = tb_new(F_NONE);
	tb_dir(t, "usr/lib/os-release");
	apply_ok(fs, t, "L3");
	assert_int_equal(fileset_count(fs), 0);
	fileset_free(fs);
}

static void
test_hardlinks(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "usr/share/doc/a/copyright", "License: GPL\n");
	tb_hardlink(t, "usr/share/doc/b/copyright",
	    "./usr/share/doc/a/copyright");
	/* Target not seen (yet, or not wanted): ignored, no failure. */
	tb_hardlink(t, "usr/share/doc/c/copyright", "usr/share/doc/z/copyright");
	tb_file(t, "etc/passwd", "root");
	tb_hardlink(t, "etc/os-release", "etc/passwd");
	tb_file(t, "usr/share/doc/z/copyright", "License: late\n");
	apply_ok(fs, t, "L1");
	expect_file(fs, "usr/share/doc/a/copyright", "GPL\n");
	expect_file(fs, "usr/share/doc/b/copyright", "GPL\n");
	expect_file(fs, "usr/share/doc/z/copyright", "late\n");
	expect_none(fs, "usr/share/doc/c/copyright");
	expect_none(fs, "etc/os-release");
	assert_int_equal(fileset_count(fs), 3);

	/* A hard link in an upper layer to a lower layer's file is not
	 * resolved, but does replace the lower file at its own path. */
	t = tb_new(F_NONE);
	tb_hardlink(t, "usr/share/doc/b/copyright",
	    "usr/share/doc/a/copyright");
	apply_ok(fs, t, "L2");
	expect_none(fs, "usr/share/doc/b/copyright");
	expect_file(fs, "usr/share/doc/a/copyright", "GPL\n");
	fileset_free(fs);
}

static void
test_unwanted_skipped(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "var/lib/dpkg/status-old", "x");
	tb_file(t, "usr/share/doc/a/b/copyright", "License: x\n");
	tb_file(t, "usr/share/doc/a/changelog.gz", "x");
	tb_file(t, "etc/os-release.d", "x");
	tb_file(t, "etc/os-release", "keep");
	apply_ok(fs, t, "L1");
	assert_int_equal(fileset_count(fs), 1);

	/* A 96 MiB file passes every per-file bound when nobody wants it
	 * (it is skipped, not read); the same file at a wanted path is
	 * refused, and fast: its size is checked before its data. */
	struct buf big = bomb("usr/bin/huge", 1, (uint64_t)96 << 20, 1 << 20);
	int rc = apply(fs, &big, "Lbig");
	if (rc != 0)
		fail_msg("unwanted big file: %s", errbuf);
	free(big.p);
	assert_int_equal(fileset_count(fs), 1);
	fileset_free(fs);
}

static void
test_wanted_too_big(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	uint64_t size = FILESET_MAX_FILE + 512;
	struct buf b = bomb("var/lib/dpkg/status", 1, size, 512 * 1024);
	double t0 = now();
	expect_failure(apply(fs, &b, "Lfat"), -EFBIG, "Lfat",
	    "var/lib/dpkg/status");
	assert_true(now() - t0 < 0.5);
	free(b.p);

	/* Exactly at the bound is fine. */
	b = bomb("var/lib/dpkg/status", 1, FILESET_MAX_FILE, 512 * 1024);
	int rc = apply(fs, &b, "Lmax");
	if (rc != 0)
		fail_msg("file at the bound: %s", errbuf);
	const struct fileset_file *f = fileset_get(fs, "var/lib/dpkg/status");
	assert_non_null(f);
	assert_int_equal(f->len, FILESET_MAX_FILE);
	free(b.p);
	fileset_free(fs);
}

static void
test_entry_bound(void **state)
{
	(void)state;
	struct tb *t = tb_new(F_GZIP);
	for (int i = 0; i < 10; i++) {
		char p[64];
		snprintf(p, sizeof(p), "usr/share/doc/p%d/copyright", i);
		tb_file(t, p, "x");
	}
	struct buf b = tb_done(t);
	struct layer_limits lim;
	layer_limits_default(&lim);
	lim.max_entries = 10;
	fileset *fs = fileset_new();
	int rc = apply_lim(fs, &b, "L10", &lim);
	if (rc != 0)
		fail_msg("10 entries at a bound of 10: %s", errbuf);
	assert_int_equal(fileset_count(fs), 10);
	fileset_free(fs);

	lim.max_entries = 9;
	fs = fileset_new();
	expect_failure(apply_lim(fs, &b, "L9", &lim), -EFBIG, "L9",
	    "more than 9 entries");
	fileset_free(fs);
	free(b.p);
}

static void
test_bomb(void **state)
{
	(void)state;
	struct layer_limits lim;
	layer_limits_default(&lim);
	fileset *fs = fileset_new();

	/* Validity: a 64 MiB one-entry stream built this way is read. */
	struct buf b = bomb("zeros", 1, (uint64_t)64 << 20, 16 << 20);
	if (apply_lim(fs, &b, "Lvalid", &lim) != 0)
		fail_msg("bomb material unreadable: %s", errbuf);
	free(b.p);

	/* 10 MB of zeros, gzipped by libarchive into a tiny layer. */
	struct tb *t = tb_new(F_GZIP);
	void *z = calloc(1, 10 << 20);
	tb_entry(t, "zeros", AE_IFREG, z, 10 << 20, NULL, NULL);
	free(z);
	b = tb_done(t);
	assert_true(b.len < 100 * 1024);
	lim.max_uncompressed = 1 << 20;
	expect_failure(apply_lim(fs, &b, "Lbomb10", &lim), -EFBIG, "Lbomb10",
	    "decompression bomb");
	free(b.p);

	/* 4 GiB in one entry, about 4 MiB compressed: fails at the header,
	 * long before inflating it would end. */
	b = bomb("zeros", 1, (uint64_t)4 << 30, 16 << 20);
	double t0 = now();
	expect_failure(apply_lim(fs, &b, "Lbomb4g", &lim), -EFBIG, "Lbomb4g",
	    "zeros");
	double dt = now() - t0;
	if (dt > 0.5)
		fail_msg("bomb took %.2f s to refuse", dt);
	free(b.p);

	/* Many entries, each small enough: the running total stops it. */
	b = bomb("z", 64, 1 << 20, 1 << 20);
	lim.max_uncompressed = (uint64_t)16 << 20;
	expect_failure(apply_lim(fs, &b, "Lmany", &lim), -EFBIG, "Lmany",
	    "more than 16777216 bytes");
	lim.max_uncompressed = (uint64_t)80 << 20;
	if (apply_lim(fs, &b, "Lmany80", &lim) != 0)
		fail_msg("64 MiB within an 80 MiB bound: %s", errbuf);
	free(b.p);
	assert_int_equal(fileset_count(fs), 0);
	fileset_free(fs);
}

static void
test_compressed_bound(void **state)
{
	(void)state;
	struct tb *t = tb_new(F_NONE);
	unsigned char *junk = malloc(300000);
	for (size_t i = 0; i < 300000; i++)
		junk[i] = (unsigned char)rng_next();
	tb_entry(t, "junk", AE_IFREG, junk, 300000, NULL, NULL);
	free(junk);
	struct buf b = tb_done(t);
	struct layer_limits lim;
	layer_limits_default(&lim);
	lim.max_compressed = b.len - 1;
	fileset *fs = fileset_new();
	expect_failure(apply_lim(fs, &b, "Lc", &lim), -EFBIG, "Lc",
	    "compressed");
	lim.max_compressed = b.len;
	if (apply_lim(fs, &b, "Lc2", &lim) != 0)
		fail_msg("at the compressed bound: %s", errbuf);
	free(b.p);
	fileset_free(fs);
}

static struct buf
random_layer(enum filt f)
{
	struct tb *t = tb_new(f);
	size_t n = 400000;
	unsigned char *junk = malloc(n);
	for (size_t i = 0; i < n; i++)
		junk[i] = (unsigned char)rng_next();
	tb_file(t, "etc/os-release", "ID=x\n");
	tb_entry(t, "usr/bin/junk", AE_IFREG, junk, n, NULL, NULL);
	tb_entry(t, "var/lib/dpkg/status", AE_IFREG, junk, n, NULL, NULL);
	free(junk);
	return tb_done(t);
}

static void
test_truncated(void **state)
{
	(void)state;
	rng_seed(7);
	for (int f = F_NONE; f <= F_ZSTD; f++) {
		struct buf b = random_layer((enum filt)f);
		size_t cuts[] = { 1, 10, 300, b.len / 3, b.len / 2 + 100,
			b.len - 2000 };
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			struct buf c = { b.p, cuts[i], 0 };
			fileset *fs = fileset_new();
			expect_failure(apply(fs, &c, "Ltrunc"), -EINVAL,
			    "Ltrunc", NULL);
			fileset_free(fs);
		}
		/* libarchive's leniency: a plain tar that ends at an entry
		 * boundary, without the end-of-archive blocks, is a complete
		 * (shorter) tar: some writers omit those blocks. The walker
		 * keeps what it read. Compressed streams detect the cut. */
		size_t boundary = 1024 + 512 + 400384; /* after usr/bin/junk */
		struct buf c = { b.p, f == F_NONE ? boundary : b.len / 2, 0 };
		if (f == F_NONE)
			assert_int_equal(b.p[boundary + 257], 'u'); /* ustar */
		fileset *cfs = fileset_new();
		int crc = apply(cfs, &c, "Lcut");
		if (f == F_NONE) {
			if (crc != 0)
				fail_msg("boundary cut: %s", errbuf);
			expect_file(cfs, "etc/os-release", "ID=x\n");
			expect_none(cfs, "var/lib/dpkg/status");
		} else {
			expect_failure(crc, -EINVAL, "Lcut", NULL);
		}
		fileset_free(cfs);

		/* The whole layer is fine. */
		fileset *fs = fileset_new();
		if (apply(fs, &b, "Lwhole") != 0)
			fail_msg("filter %d whole: %s", f, errbuf);
		assert_int_equal(fileset_count(fs), 2);
		fileset_free(fs);
		free(b.p);
	}
}

/*
 * The gzip stage (ISA-L on its own thread): a stream far larger than its
 * ring of buffers, with the wanted file at the end; the same stream cut
 * into two gzip members at an odd byte; bytes after the last member
 * (ignored, as gzip does); a CRC-32 mismatch in the trailer and a bad
 * length (corrupt: -EINVAL naming the check).
 */
static void
test_gzip_stage(void **state)
{
	(void)state;
	rng_seed(21);
	/* ~12 MiB of incompressible data, then the wanted file. */
	struct tb *t = tb_new(F_NONE);
	size_t big = (12u << 20) + 777;
	unsigned char *junk = malloc(big);
	for (size_t i = 0; i < big; i++)
		junk[i] = (unsigned char)rng_next();
	tb_entry(t, "usr/lib/junk.so", AE_IFREG, junk, big, NULL, NULL);
	tb_file(t, "etc/os-release", "ID=gz\n");
	struct buf tar = tb_done(t);
	free(junk);

	/* One member. */
	struct buf one = gz_member(tar.p, tar.len);
	fileset *fs = fileset_new();
	if (apply(fs, &one, "Lgz1") != 0)
		fail_msg("one member: %s", errbuf);
	expect_file(fs, "etc/os-release", "ID=gz\n");
	fileset_free(fs);

	/* Two members, split at an odd offset, plus trailing bytes. */
	size_t cut = tar.len / 2 + 13;
	struct buf a = gz_member(tar.p, cut);
	struct buf b = gz_member(tar.p + cut, tar.len - cut);
	struct buf two = { 0 };
	buf_add(&two, a.p, a.len);
	buf_add(&two, b.p, b.len);
	buf_add(&two, "\0\0\0\0trailing", 12);
	fs = fileset_new();
	if (apply(fs, &two, "Lgz2") != 0)
		fail_msg("two members: %s", errbuf);
	expect_file(fs, "etc/os-release", "ID=gz\n");
	fileset_free(fs);

	/* CRC-32 (trailer bytes -8..-5) and ISIZE (-4..-1) corrupted. */
	for (int which = 0; which < 2; which++) {
		struct buf bad = { 0 };
		buf_add(&bad, one.p, one.len);
		bad.p[bad.len - (which == 0 ? 8 : 2)] ^= 0x40;
		fs = fileset_new();
		int rc = apply(fs, &bad, "Lgzbad");
		expect_failure(rc, -EINVAL, "Lgzbad", "CRC-32 or length");
		fileset_free(fs);
		free(bad.p);
	}
	free(tar.p);
	free(one.p);
	free(a.p);
	free(b.p);
	free(two.p);
}

/* A set cancel flag stops the walk before its next entry. */
static void
test_cancel(void **state)
{
	(void)state;
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "etc/os-release", "ID=x\n");
	struct buf b = tb_done(t);
	struct layer_limits lim;
	layer_limits_default(&lim);
	atomic_int flag = 0;
	lim.cancel = &flag;
	fileset *fs = fileset_new();
	if (apply_lim(fs, &b, "Lgo", &lim) != 0)
		fail_msg("flag clear: %s", errbuf);
	expect_file(fs, "etc/os-release", "ID=x\n");
	fileset_free(fs);
	atomic_store(&flag, 1);
	fs = fileset_new();
	expect_failure(apply_lim(fs, &b, "Lstop", &lim), -ECANCELED, "Lstop",
	    "cancelled");
	assert_int_equal(fileset_count(fs), 0);
	fileset_free(fs);
	free(b.p);
}

static void
test_garbage(void **state)
{
	(void)state;
	static const unsigned char magics[][4] = {
		{ 0, 0, 0, 0 },		     /* none */
		{ 0x1f, 0x8b, 0x08, 0x00 },  /* gzip */
		{ 0x28, 0xb5, 0x2f, 0xfd },  /* zstd */
	};
	rng_seed(11);
	for (int round = 0; round < 60; round++) {
		size_t n = 1 + rng_below(20000);
		unsigned char *p = malloc(n + 4);
		for (size_t i = 0; i < n + 4; i++)
			p[i] = (unsigned char)rng_next();
		int m = round % 3;
		if (m != 0)
			memcpy(p, magics[m], 4);
		struct buf b = { p, n + 4, 0 };
		fileset *fs = fileset_new();
		int rc = apply(fs, &b, "Lgarbage");
		expect_failure(rc, -EINVAL, "Lgarbage", NULL);
		assert_int_equal(fileset_count(fs), 0);
		fileset_free(fs);
		free(p);
	}

	/* Random bit flips in a real layer: any outcome but a crash, a
	 * leak or a silent message-less failure (apply checks that). */
	rng_seed(12);
	struct buf good = random_layer(F_GZIP);
	for (int round = 0; round < 40; round++) {
		unsigned char *p = malloc(good.len);
		memcpy(p, good.p, good.len);
		for (int k = 0; k < 4; k++)
			p[rng_below(good.len)] ^= (unsigned char)(1u
			    << rng_below(8));
		struct buf b = { p, good.len, 0 };
		fileset *fs = fileset_new();
		(void)apply(fs, &b, "Lflip");
		fileset_free(fs);
		free(p);
	}
	free(good.p);
}

static void
test_empty_layer(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct tb *t = tb_new(F_GZIP);
	tb_file(t, "etc/os-release", "E");
	apply_ok(fs, t, "L1");
	for (int f = F_NONE; f <= F_ZSTD; f++) {
		t = tb_new((enum filt)f);
		apply_ok(fs, t, "Lempty");
	}
	/* Docker's empty layer: 1024 zero bytes, gzipped; and 0 bytes. */
	struct buf z = gz_zeros(1024);
	if (apply(fs, &z, "Lzeros") != 0)
		fail_msg("gzipped end-of-archive: %s", errbuf);
	free(z.p);
	struct buf none = { (unsigned char *)"", 0, 0 };
	if (apply(fs, &none, "Lnothing") != 0)
		fail_msg("zero-byte layer: %s", errbuf);
	expect_file(fs, "etc/os-release", "E");
	assert_int_equal(fileset_count(fs), 1);
	fileset_free(fs);
}

static void
test_read_error_and_file(void **state)
{
	(void)state;
	rng_seed(3);
	struct buf b = random_layer(F_GZIP);
	struct mem m = { b.p, b.len, 0, 4096, 8192 };
	fileset *fs = fileset_new();
	memset(errbuf, 0, sizeof(errbuf));
	int rc = layer_apply(fs, mem_read, &m, "Lio", NULL, errbuf,
	    sizeof(errbuf));
	expect_failure(rc, -EIO, "Lio", "read: Input/output error");

	char path[] = "/tmp/test_layers_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b.p, b.len), (ssize_t)b.len);
	close(fd);
	rc = layer_apply_file(fs, path, NULL, errbuf, sizeof(errbuf));
	if (rc != 0)
		fail_msg("layer_apply_file: %s", errbuf);
	expect_file(fs, "etc/os-release", "ID=x\n");
	struct layer_limits lim;
	layer_limits_default(&lim);
	lim.max_compressed = 100;
	rc = layer_apply_file(fs, path, &lim, errbuf, sizeof(errbuf));
	expect_failure(rc, -EFBIG, path, NULL);
	unlink(path);
	rc = layer_apply_file(fs, path, NULL, errbuf, sizeof(errbuf));
	expect_failure(rc, -EIO, path, NULL);
	free(b.p);
	fileset_free(fs);

	struct layer_limits d;
	layer_limits_default(&d);
	assert_true(d.max_compressed == (uint64_t)8 << 30);
	assert_true(d.max_uncompressed == (uint64_t)32 << 30);
	assert_true(d.max_entries == 2000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upper_replaces_lower),
		cmocka_unit_test(test_whiteout_file),
		cmocka_unit_test(test_whiteout_dir),
		cmocka_unit_test(test_opaque_keeps_same_layer),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_dotdot_rejected),
		cmocka_unit_test(test_absolute_normalised),
		cmocka_unit_test(test_symlinks),
		cmocka_unit_test(test_hardlinks),
		cmocka_unit_test(test_unwanted_skipped),
		cmocka_unit_test(test_wanted_too_big),
		cmocka_unit_test(test_entry_bound),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_gzip_stage),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_compressed_bound),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_empty_layer),
		cmocka_unit_test(test_read_error_and_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
