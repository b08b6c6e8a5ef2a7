/*
 * test_layercache: the per-layer catalog cache on a real directory.
 * Round trips, a torn or corrupt entry (a miss, removed), entries tied
 * to their blob and verified ones, the byte bound
 * with LRU eviction (also across a reopen), a format bump, a delta too
 * large to keep, a copyright file kept as its licenses (a small entry), and scans on several threads sharing one cache against
 * the same scans without it (same documents but for serial number and
 * timestamp).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scan/oci/layercache.h"
#include "scan/oci/layers.h"
#include "scan/scanner.h"

#include "ocilayout.h"

static char tmpdir[] = "/tmp/sbomd-test-layercache-XXXXXX";
static int ndirs;

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh directory name under tmpdir. */
static void
fresh_dir(char *out, size_t len)
{
	snprintf(out, len, "%s/c%d", tmpdir, ndirs++);
}

static void
key_of(int i, uint8_t key[DIGEST_LEN])
{
	char s[32];
	snprintf(s, sizeof(s), "layer %d", i);
	digest_sha256(s, strlen(s), key);
}

/* A delta for key i: two removals and a status file of size bytes whose
 * content depends on i. */
static layer_delta *
delta_of(int i, size_t size)
{
	layer_delta *d = layer_delta_new();
	char *data = malloc(size + 1);
	assert_non_null(data);
	for (size_t k = 0; k < size; k++)
		data[k] = (char)('a' + (int)((k * 7 + (size_t)i) % 26));
	assert_int_equal(layer_delta_remove(d, "usr/share/doc/foo", true), 0);
	assert_int_equal(layer_delta_remove(d, "etc/os-release", false), 0);
	assert_int_equal(fileset_put(layer_delta_files(d),
	    "var/lib/dpkg/status", data, size), 0);
	char osr[64];
	snprintf(osr, sizeof(osr), "ID=test\nVERSION_ID=%d\n", i);
	assert_int_equal(fileset_put(layer_delta_files(d), "etc/os-release",
	    osr, strlen(osr)), 0);
	layer_delta_stats(d)->compressed = 1000 + (uint64_t)i;
	layer_delta_stats(d)->uncompressed = 2000 + (uint64_t)i;
	layer_delta_stats(d)->entries = 30 + (uint64_t)i;
	free(data);
	return d;
}

/* Whether two deltas say the same. */
static void
assert_delta_equal(const layer_delta *a, const layer_delta *b)
{
	assert_int_equal(layer_delta_nremovals(a), layer_delta_nremovals(b));
	for (size_t i = 0; i < layer_delta_nremovals(a); i++) {
		bool ba, bb;
		assert_string_equal(layer_delta_removal(a, i, &ba),
		    layer_delta_removal(b, i, &bb));
		assert_int_equal(ba, bb);
	}
	const fileset *fa = layer_delta_files_const(a);
	const fileset *fb = layer_delta_files_const(b);
	assert_int_equal(fileset_count(fa), fileset_count(fb));
	const char *paths[] = { "var/lib/dpkg/status", "etc/os-release" };
	for (size_t i = 0; i < 2; i++) {
		const struct fileset_file *x = fileset_get(fa, paths[i]);
		const struct fileset_file *y = fileset_get(fb, paths[i]);
		assert_non_null(x);
		assert_non_null(y);
		assert_int_equal(x->len, y->len);
		assert_memory_equal(x->data, y->data, x->len);
	}
	assert_memory_equal(layer_delta_stats_const(a),
	    layer_delta_stats_const(b), sizeof(struct layer_stats));
}

static layer_cache *
open_cache(const char *dir, uint64_t max, uint32_t format)
{
	struct layer_cache_options o = { dir, max, format };
	layer_cache *c = NULL;
	char err[256];
	int rc = layer_cache_open(&o, &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("layer_cache_open: %s", err);
	return c;
}

static void
entry_path(const char *dir, int i, char *out, size_t len)
{
	uint8_t key[DIGEST_LEN];
	char ds[DIGEST_STR_LEN];
	key_of(i, key);
	digest_format(key, ds);
	snprintf(out, len, "%s/%s", dir, ds + 7);
}

static void
test_round_trip(void **state)
{
	(void)state;
	char dir[256];
	uint8_t key[DIGEST_LEN];
	layer_delta *got = NULL;
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, 0, 0);
	key_of(1, key);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	assert_null(got);
	layer_delta *d = delta_of(1, 5000);
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	assert_delta_equal(d, got);
	layer_delta_free(got);
	layer_cache_close(c);

	/* Reopened: the entry is indexed and read again. */
	c = open_cache(dir, 0, 0);
	struct layer_cache_counters ct;
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.entries, 1);
	assert_true(ct.bytes > 5000);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	assert_delta_equal(d, got);
	layer_delta_free(got);
	layer_delta_free(d);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.hits, 1);
	assert_int_equal(ct.misses, 0);
	layer_cache_close(c);
}

/* A torn entry (cut short, as a crash may leave it) and a corrupt one
 * (one byte changed) are misses and are removed; a put makes it whole. */
static void
test_torn_and_corrupt(void **state)
{
	(void)state;
	char dir[256], path[512];
	uint8_t key[DIGEST_LEN];
	layer_delta *got = NULL;
	struct stat st;
	struct layer_cache_counters ct;
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, 0, 0);
	key_of(2, key);
	layer_delta *d = delta_of(2, 20000);
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	entry_path(dir, 2, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);

	/* Torn: the last half gone. */
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	assert_null(got);
	assert_int_not_equal(access(path, F_OK), 0);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.rejected, 1);
	assert_int_equal(ct.entries, 0);
	assert_int_equal(ct.bytes, 0);

	/* Corrupt: one byte of the payload flipped. */
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, 1000), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, 1000), 1);
	close(fd);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.rejected, 2);

	/* An entry of another layer's key under this name: a miss. */
	uint8_t other[DIGEST_LEN];
	key_of(3, other);
	assert_int_equal(layer_cache_put(c, other, NULL, d), 0);
	char opath[512];
	entry_path(dir, 3, opath, sizeof(opath));
	assert_int_equal(rename(opath, path), 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);

	/* Whole again after a put. */
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	assert_delta_equal(d, got);
	layer_delta_free(got);
	layer_delta_free(d);

	/* A temporary file of a dead writer is removed by open; the index
	 * ignores other names. */
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s/.tmp.%d.7", dir, getpid());
	ocil_write(tmp, "x", 1);
	layer_cache_close(c);
	c = open_cache(dir, 0, 0);
	assert_int_not_equal(access(tmp, F_OK), 0);
	layer_cache_close(c);
}

/*
 * An entry tied to its blob (read from a blob whose uncompressed stream
 * was not hashed) stands for that blob only: a layer with the same
 * diffID and another blob, or an unknown one, misses with *other set,
 * and the flipped flag byte of a tied entry fails its checksum. A
 * verified entry stands for every blob; a verified put replaces a tied
 * entry.
 */
static void
test_tied_to_blob(void **state)
{
	(void)state;
	char dir[256], path[512], err[256];
	uint8_t key[DIGEST_LEN], blob[DIGEST_LEN], blob2[DIGEST_LEN];
	layer_delta *got = NULL;
	struct layer_limits lim;
	struct layer_cache_counters ct;
	bool other;
	layer_limits_default(&lim);
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, 0, 0);
	key_of(9, key);
	digest_sha256("blob a", 6, blob);
	digest_sha256("blob b", 6, blob2);
	layer_delta *d = delta_of(9, 3000);
	assert_int_equal(layer_cache_put(c, key, blob, d), 0);

	assert_int_equal(layer_cache_get(c, key, blob, &got), 0);
	assert_delta_equal(d, got);
	layer_delta_free(got);
	assert_int_equal(layer_cache_get(c, key, blob2, &got), -ENOENT);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	fileset *fs = fileset_new();
	assert_int_equal(layer_cache_apply(c, key, blob2, &lim, fs, "l",
	    &other, err, sizeof(err)), -ENOENT);
	assert_true(other);
	assert_int_equal(fileset_count(fs), 0);
	assert_int_equal(layer_cache_apply(c, key, blob, &lim, fs, "l",
	    &other, err, sizeof(err)), 0);
	assert_false(other);
	assert_int_equal(fileset_count(fs), 2);
	fileset_free(fs);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.hits, 2);
	assert_int_equal(ct.misses, 3);
	assert_int_equal(ct.rejected, 0); /* misses, not corrupt: kept */
	assert_int_equal(ct.entries, 1);

	/* Claiming it verified is a changed byte: a miss, removed. */
	entry_path(dir, 9, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b = 1;
	assert_int_equal(pwrite(fd, &b, 1, 12), 1);
	close(fd);
	assert_int_equal(layer_cache_get(c, key, blob2, &got), -ENOENT);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.rejected, 1);

	/* Verified: any blob. */
	assert_int_equal(layer_cache_put(c, key, blob, d), 0);
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	assert_int_equal(layer_cache_get(c, key, blob2, &got), 0);
	layer_delta_free(got);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	layer_delta_free(got);
	layer_delta_free(d);
	layer_cache_close(c);
}

/* The bound holds after every put; the least recently used entry goes
 * first, and recency survives a reopen. */
static void
test_eviction_bound(void **state)
{
	(void)state;
	char dir[256];
	const uint64_t max = 2u << 20; /* entries of ~200 KB: ten fit */
	struct layer_cache_counters ct;
	layer_delta *got;
	uint8_t key[DIGEST_LEN];
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, max, 0);
	for (int i = 0; i < 10; i++) {
		layer_delta *d = delta_of(i, 200000);
		key_of(i, key);
		assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
		layer_delta_free(d);
	}
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.entries, 10);
	assert_int_equal(ct.evictions, 0);
	/* 0 is used: 1 is now the least recent. */
	key_of(0, key);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	layer_delta_free(got);
	for (int i = 10; i < 46; i++) {
		layer_delta *d = delta_of(i, 150000 + (size_t)i * 1000);
		key_of(i, key);
		assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
		layer_delta_free(d);
		layer_cache_counters(c, &ct);
		assert_true(ct.bytes <= max);
		if (i == 10) {
			key_of(1, key);
			assert_int_equal(layer_cache_get(c, key, NULL, &got),
			    -ENOENT);
			key_of(0, key);
			assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
			layer_delta_free(got);
		}
	}
	layer_cache_counters(c, &ct);
	assert_true(ct.evictions >= 30);
	/* What the directory holds is what the index counts. */
	uint64_t on_disk = 0;
	int files = 0;
	for (int i = 0; i < 46; i++) {
		char p[512];
		struct stat st;
		entry_path(dir, i, p, sizeof(p));
		if (stat(p, &st) == 0) {
			on_disk += (uint64_t)st.st_size;
			files++;
		}
	}
	assert_int_equal(on_disk, ct.bytes);
	assert_int_equal(files, ct.entries);

	/* A delta over a quarter of the bound is not kept. */
	layer_delta *big = delta_of(99, 600000);
	key_of(99, key);
	assert_int_equal(layer_cache_put(c, key, NULL, big), -EFBIG);
	layer_delta_free(big);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	layer_cache_close(c);

	/* Reopened under a smaller bound: evicted down to it at once, the
	 * most recently used (45) kept. */
	c = open_cache(dir, max / 2, 0);
	layer_cache_counters(c, &ct);
	assert_true(ct.bytes <= max / 2);
	key_of(45, key);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	layer_delta_free(got);
	layer_cache_close(c);
}

/* A cache of the next format ignores (and removes) the entries of the
 * one before; the old format's reader ignores the new ones. */
static void
test_format_bump(void **state)
{
	(void)state;
	char dir[256];
	uint8_t key[DIGEST_LEN];
	layer_delta *got;
	struct layer_cache_counters ct;
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, 0, 0);
	layer_delta *d = delta_of(5, 1000);
	key_of(5, key);
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	layer_cache_close(c);

	c = open_cache(dir, 0, LAYER_CACHE_FORMAT + 1);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.rejected, 1);
	assert_int_equal(ct.entries, 0);
	assert_int_equal(layer_cache_put(c, key, NULL, d), 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), 0);
	layer_delta_free(got);
	layer_cache_close(c);

	c = open_cache(dir, 0, 0);
	assert_int_equal(layer_cache_get(c, key, NULL, &got), -ENOENT);
	layer_cache_close(c);
	layer_delta_free(d);
}

/* The bytes of the entries in dir. */
static off_t
dir_bytes(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "du -sb --apparent-size '%s'", dir);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	long long n = -1;
	assert_int_equal(fscanf(f, "%lld", &n), 1);
	pclose(f);
	return (off_t)n;
}

static char *scan_one(const char *layout, const char *id, layer_cache *c);

/*
 * A layer's copyright files are kept in its entry as the licenses they
 * name, not whole: a layer with a 200 KB copyright file makes an entry of
 * a few KB, and the document from the cache is the one without it.
 */
static void
test_copyright_kept_small(void **state)
{
	(void)state;
	static const char status[] = "Package: big\nStatus: install ok "
	    "installed\nArchitecture: amd64\nVersion: 1.0\n\n";
	static char copyright[200000];
	static const char head[] = "Format: https://www.debian.org/doc/"
	    "packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
	    "License: MIT or Apache-2.0\n";
	memset(copyright, ' ', sizeof(copyright));
	memcpy(copyright, head, sizeof(head) - 1);
	static const char line[] = "\n Permission is hereby granted, see "
	    "/usr/share/common-licenses/GPL-2 ...";
	for (size_t k = sizeof(head); k + 80 < sizeof(copyright); k += 80)
		memcpy(copyright + k, line, sizeof(line) - 1);
	copyright[sizeof(copyright) - 1] = '\n';
	struct ocil_file files[] = {
		{ "etc/os-release", "ID=debian\n", 10 },
		{ "usr/share/doc/big/copyright", copyright, sizeof(copyright) },
		{ "var/lib/dpkg/status", status, strlen(status) },
	};
	char layout[256], id[DIGEST_STR_LEN], dir[256];
	snprintf(layout, sizeof(layout), "%s/bigcopyright", tmpdir);
	ocil_image(layout, files, 3, id);
	char *want = scan_one(layout, id, NULL);
	assert_non_null(strstr(want, "Apache-2.0"));
	assert_non_null(strstr(want, "GPL-2"));

	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, 0, 0);
	char *fill = scan_one(layout, id, c);
	off_t bytes = dir_bytes(dir);
	printf("entry for a 200 KB copyright file: %lld bytes\n",
	    (long long)bytes);
	assert_true(bytes < 16384);
	char *hit = scan_one(layout, id, c);
	struct layer_cache_counters ct;
	layer_cache_counters(c, &ct);
	assert_int_equal(ct.hits, 1);
	assert_string_equal(fill, want);
	assert_string_equal(hit, want);
	layer_cache_close(c);
	free(want);
	free(fill);
	free(hit);
}

/* ---- threads ---------------------------------------------------------- */

#define NIMG 6
#define NTHREADS 4
#define ROUNDS 3

static char *img_dirs[NIMG];
static char img_ids[NIMG][DIGEST_STR_LEN];
static char *want_docs[NIMG];

/* The document without its serial number and timestamp. */
static char *
normalised(const char *sbom)
{
	json_error_t je;
	json_t *j = json_loads(sbom, 0, &je);
	assert_non_null(j);
	json_object_del(j, "serialNumber");
	json_object_del(json_object_get(j, "metadata"), "timestamp");
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	return s;
}

static char *
scan_one(const char *layout, const char *id, layer_cache *cache)
{
	const char *stores[] = { layout };
	struct scan_request req = {
		.kind = ENTITY_IMAGE,
		.image_id = id,
		.stores = stores,
		.nstores = 1,
		.now_ms = 1700000000000,
		.layer_cache = cache,
	};
	struct scan_result r;
	scan_run(&req, &r);
	if (r.rc != 0)
		fail_msg("scan of %s: %s", id, r.error);
	char *s = normalised(r.sbom);
	scan_result_free(&r);
	return s;
}

static char *
scan_image(int i, layer_cache *cache)
{
	return scan_one(img_dirs[i], img_ids[i], cache);
}

struct worker {
	layer_cache *cache;
	int seed;
	int bad;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < NIMG; k++) {
			int i = (k * (w->seed + 1) + r) % NIMG;
			char *s = scan_image(i, w->cache);
			if (strcmp(s, want_docs[i]) != 0)
				w->bad++;
			free(s);
		}
	}
	return NULL;
}

/* Scans on several threads share one cache (a small one, so entries are
 * evicted and rewritten while others read them): every document is the
 * one the scan gives without a cache. */
static void
test_threads_share_layers(void **state)
{
	(void)state;
	static const char status_fmt[] =
	    "Package: pkg%d-%d\nStatus: install ok installed\n"
	    "Architecture: amd64\nVersion: 1.%d-%d\n\n";
	for (int i = 0; i < NIMG; i++) {
		char status[8192] = "", osr[128];
		size_t n = 0;
		for (int p = 0; p < 20 + i; p++)
			n += (size_t)snprintf(status + n, sizeof(status) - n,
			    status_fmt, i, p, i, p);
		snprintf(osr, sizeof(osr), "ID=debian\nVERSION_ID=\"%d\"\n",
		    10 + i);
		/* ~200 KB a layer: four fit the bound, six do not. The
		 * padding is a file kept whole (a copyright file is kept as
		 * the few license names it gives): usr/lib/os-release, which
		 * etc/os-release overrides. */
		char cpath[64];
		static const char copyright[] = "License: MIT\n";
		static char pad[200000];
		memset(pad, 'x', sizeof(pad));
		snprintf(cpath, sizeof(cpath), "usr/share/doc/pkg%d-0/copyright",
		    i);
		struct ocil_file files[] = {
			{ "etc/os-release", osr, strlen(osr) },
			{ "usr/lib/os-release", pad, sizeof(pad) },
			{ cpath, copyright, strlen(copyright) },
			{ "var/lib/dpkg/status", status, n },
		};
		char d[256];
		snprintf(d, sizeof(d), "%s/img%d", tmpdir, i);
		img_dirs[i] = strdup(d);
		assert_non_null(img_dirs[i]);
		ocil_image(img_dirs[i], files, 4, img_ids[i]);
		want_docs[i] = scan_image(i, NULL);
	}
	char dir[256];
	fresh_dir(dir, sizeof(dir));
	layer_cache *c = open_cache(dir, LAYER_CACHE_MIN_MAX, 0);
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ c, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main,
		    &w[i]), 0);
	}
	int bad = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	assert_int_equal(bad, 0);
	struct layer_cache_counters ct;
	layer_cache_counters(c, &ct);
	assert_true(ct.hits > 0);
	assert_true(ct.stores > NIMG);	/* evicted ones stored again */
	assert_true(ct.evictions > 0);
	assert_true(ct.bytes <= LAYER_CACHE_MIN_MAX);
	layer_cache_close(c);
	for (int i = 0; i < NIMG; i++) {
		free(want_docs[i]);
		free(img_dirs[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_torn_and_corrupt),
		cmocka_unit_test(test_tied_to_blob),
		cmocka_unit_test(test_eviction_bound),
		cmocka_unit_test(test_format_bump),
		cmocka_unit_test(test_copyright_kept_small),
		cmocka_unit_test(test_threads_share_layers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
