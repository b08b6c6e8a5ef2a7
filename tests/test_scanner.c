/*
 * test_scanner: the built-in scanner through the `oci` backend (scan_run
 * and scan_backend_oci) on OCI image layouts the test builds in a fresh
 * temporary directory (tests/ocilayout.h): the bounds a scan is held to
 * (scan.max_sbom_bytes, scan.max_packages), the time a database of
 * 20,000 copies of one package takes (the one timed assertion: well
 * under a second, where unique bom-refs once made it quadratic), and
 * cancellation while cataloguing and writing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scan/backend.h"
#include "scan/job.h"
#include "scan/scanner.h"
#include "util/xmalloc.h"

#include "ocilayout.h"

static char tmpdir[] = "/tmp/sbomd-test-scanner-XXXXXX";

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

static const char apk_three[] =
    "P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\n"
    "P:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n\n"
    "P:zlib\nV:1.3.1-r0\nA:x86_64\nL:Zlib\n";

static const char alpine_release[] =
    "ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n";

/* An image of three apk packages in tmpdir/name; its ID into id. */
static void
small_alpine(const char *name, char id[DIGEST_STR_LEN], char *dir,
    size_t dirlen)
{
	snprintf(dir, dirlen, "%s/%s", tmpdir, name);
	struct ocil_file files[] = {
		{"etc/os-release", alpine_release, strlen(alpine_release)},
		{"lib/apk/db/installed", apk_three, strlen(apk_three)},
	};
	ocil_image(dir, files, 2, id);
}

/* One scan of image id through the oci backend configured with c. */
static void
oci_scan_one(const struct scan_oci_config *c, const char *id,
    const atomic_int *cancel, struct scan_result *r)
{
	char err[256];
	void *ctx;
	assert_int_equal(scan_backend_oci.init(c, &ctx, err, sizeof(err)), 0);
	struct scan_job *j = scan_job_new(1, ENTITY_IMAGE, id, NULL, 0, NULL,
	    0, 1);
	memset(r, 0, sizeof(*r));
	scan_backend_oci.scan(ctx, j, cancel, r);
	scan_job_free(j);
	scan_backend_oci.fini(ctx);
}

/* scan.max_sbom_bytes holds for the oci backend: an SBOM over it is a
 * PERMANENT failure naming its size and the bound. */
static void
test_oci_max_sbom_bytes(void **state)
{
	(void)state;
	char id[DIGEST_STR_LEN], dir[512], want[128];
	struct scan_result r;
	atomic_int cancel = SCAN_CANCEL_NONE;
	small_alpine("max-sbom", id, dir, sizeof(dir));
	const char *stores[] = {dir};

	/* The default bound: the document, whose size we learn. */
	struct scan_oci_config c = {.stores = stores, .nstores = 1};
	oci_scan_one(&c, id, &cancel, &r);
	if (r.rc != 0)
		fail_msg("scan: %d %s", r.rc, r.error);
	assert_int_equal(r.components, 3);
	size_t size = r.sbom_len;
	assert_true(size > 1000);
	scan_result_free(&r);

	/* Exactly its size: still fine. */
	c.max_sbom_bytes = size;
	oci_scan_one(&c, id, &cancel, &r);
	assert_int_equal(r.rc, 0);
	scan_result_free(&r);

	/* One byte less: PERMANENT, both sizes named, no document. */
	c.max_sbom_bytes = size - 1;
	oci_scan_one(&c, id, &cancel, &r);
	assert_int_equal(r.rc, -EFBIG);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_null(r.sbom);
	assert_int_equal(r.components, 0);
	snprintf(want, sizeof(want), "SBOM of %zu bytes", size);
	if (strstr(r.error, want) == NULL)
		fail_msg("error lacks \"%s\": %s", want, r.error);
	snprintf(want, sizeof(want), "scan.max_sbom_bytes (%zu bytes)",
	    size - 1);
	if (strstr(r.error, want) == NULL)
		fail_msg("error lacks \"%s\": %s", want, r.error);
	scan_result_free(&r);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * An apk installed database of n packages: all "dup" 1.0-r0 when same,
 * else "pkg<i>" (so n distinct ones). Its length into *len (malloc'd).
 */
static char *
apk_db(size_t n, bool same, size_t *len)
{
	size_t cap = n * 64 + 1, used = 0;
	char *d = xmalloc(cap);
	for (size_t i = 0; i < n; i++) {
		int k = same ?
		    snprintf(d + used, cap - used, "P:dup\nV:1.0-r0\n"
			"A:x86_64\nL:MIT\n\n") :
		    snprintf(d + used, cap - used, "P:pkg%zu\nV:1.0-r0\n"
			"A:x86_64\nL:MIT\n\n", i);
		assert_true(k > 0 && (size_t)k < cap - used);
		used += (size_t)k;
	}
	*len = used;
	return d;
}

/* An image in tmpdir/name whose apk database is apk_db(n, same). */
static void
apk_image(const char *name, size_t n, bool same, char id[DIGEST_STR_LEN],
    char *dir, size_t dirlen)
{
	size_t len;
	char *db = apk_db(n, same, &len);
	snprintf(dir, dirlen, "%s/%s", tmpdir, name);
	struct ocil_file files[] = {
		{"etc/os-release", alpine_release, strlen(alpine_release)},
		{"lib/apk/db/installed", db, len},
	};
	ocil_image(dir, files, 2, id);
	free(db);
}

/*
 * 20,000 copies of one apk package: one component each, every bom-ref
 * unique (the purl, then "&package-id=2", 3, ...), and the whole scan
 * (layer, catalogue, document) in under a second.
 */
static void
test_duplicates_fast(void **state)
{
	(void)state;
	enum { N = 20000 };
	char id[DIGEST_STR_LEN], dir[512], ref[256];
	struct scan_result r;
	atomic_int cancel = SCAN_CANCEL_NONE;
	apk_image("dups", N, true, id, dir, sizeof(dir));
	const char *stores[] = {dir};
	struct scan_oci_config c = {.stores = stores, .nstores = 1};

	int64_t t0 = now_ms();
	oci_scan_one(&c, id, &cancel, &r);
	int64_t took = now_ms() - t0;
	if (r.rc != 0)
		fail_msg("scan: %d %s", r.rc, r.error);
	print_message("20000 duplicate packages scanned in %lld ms "
	    "(%zu bytes of SBOM)\n", (long long)took, r.sbom_len);
	if (took >= 1000)
		fail_msg("20000 duplicate packages took %lld ms (>= 1 s)",
		    (long long)took);
	assert_int_equal(r.components, N);

	json_error_t je;
	json_t *doc = json_loadb(r.sbom, r.sbom_len, 0, &je);
	assert_non_null(doc);
	json_t *comps = json_object_get(doc, "components");
	assert_int_equal(json_array_size(comps), N + 1); /* and the OS */
	json_t *refs = json_object();
	const char *base = "pkg:apk/alpine/dup@1.0-r0?arch=x86_64&"
	    "distro=3.19.1";
	for (size_t i = 1; i <= N; i++) {
		json_t *comp = json_array_get(comps, i);
		const char *br = json_string_value(json_object_get(comp,
		    "bom-ref"));
		assert_non_null(br);
		assert_null(json_object_get(refs, br));
		json_object_set_new(refs, br, json_true());
		if (i == 1)
			snprintf(ref, sizeof(ref), "%s", base);
		else
			snprintf(ref, sizeof(ref), "%s&package-id=%zu", base,
			    i);
		assert_string_equal(br, ref);
	}
	/* The OS depends on every one of them, by its unique ref. */
	json_t *deps = json_object_get(doc, "dependencies");
	json_t *on = json_object_get(json_array_get(deps, 1), "dependsOn");
	assert_int_equal(json_array_size(on), N);
	assert_string_equal(json_string_value(json_array_get(on, N - 1)),
	    ref);
	json_decref(refs);
	json_decref(doc);
	scan_result_free(&r);
}

/* scan.max_packages: more packages is PERMANENT, naming the count and
 * the bound; exactly the bound is fine. */
static void
test_max_packages(void **state)
{
	(void)state;
	char id[DIGEST_STR_LEN], dir[512], want[160];
	struct scan_result r;
	atomic_int cancel = SCAN_CANCEL_NONE;
	apk_image("maxpkgs", 5000, false, id, dir, sizeof(dir));
	const char *stores[] = {dir};
	struct scan_oci_config c = {.stores = stores, .nstores = 1,
	    .max_packages = 5000};

	oci_scan_one(&c, id, &cancel, &r);
	if (r.rc != 0)
		fail_msg("scan: %d %s", r.rc, r.error);
	assert_int_equal(r.components, 5000);
	scan_result_free(&r);

	c.max_packages = 4999;
	oci_scan_one(&c, id, &cancel, &r);
	assert_int_equal(r.rc, -EFBIG);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_null(r.sbom);
	snprintf(want, sizeof(want), "%s: 5000 packages, more than "
	    "scan.max_packages (4999)", id);
	assert_string_equal(r.error, want);
	scan_result_free(&r);

	/* Far past the bound: still the exact count. */
	c.max_packages = 10;
	oci_scan_one(&c, id, &cancel, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	snprintf(want, sizeof(want), "%s: 5000 packages, more than "
	    "scan.max_packages (10)", id);
	assert_string_equal(r.error, want);
	scan_result_free(&r);

	/* dpkg: duplicates across status and status.d are counted once. */
	static const char status[] =
	    "Package: a\nStatus: install ok installed\nVersion: 1\n\n"
	    "Package: b\nStatus: install ok installed\nVersion: 1\n\n"
	    "Package: c\nStatus: install ok installed\nVersion: 1\n";
	static const char sd_a[] = "Package: a\nVersion: 1\n";
	static const char sd_d[] = "Package: d\nVersion: 1\n";
	snprintf(dir, sizeof(dir), "%s/maxdpkg", tmpdir);
	struct ocil_file files[] = {
		{"var/lib/dpkg/status", status, strlen(status)},
		{"var/lib/dpkg/status.d/a", sd_a, strlen(sd_a)},
		{"var/lib/dpkg/status.d/d", sd_d, strlen(sd_d)},
	};
	ocil_image(dir, files, 3, id);
	c.max_packages = 4;
	oci_scan_one(&c, id, &cancel, &r);
	if (r.rc != 0)
		fail_msg("scan: %d %s", r.rc, r.error);
	assert_int_equal(r.components, 4);
	scan_result_free(&r);
	c.max_packages = 3;
	oci_scan_one(&c, id, &cancel, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	snprintf(want, sizeof(want), "%s: 4 packages, more than "
	    "scan.max_packages (3)", id);
	assert_string_equal(r.error, want);
	scan_result_free(&r);
}

/* The catalogers look at the request's cancel flag: with the layer walk
 * not cancelled (no layer_limits.cancel), the apk catalogue stops at the
 * first look, line PKGLIST_POLL_EVERY. */
static void
test_cancel_in_catalog(void **state)
{
	(void)state;
	char id[DIGEST_STR_LEN], dir[512];
	struct scan_result r;
	apk_image("cancel-cat", 20000, false, id, dir, sizeof(dir));
	const char *stores[] = {dir};
	atomic_int cancel = SCAN_CANCEL_TIMEOUT;
	struct scan_request req = {
		.kind = ENTITY_IMAGE, .image_id = id,
		.stores = stores, .nstores = 1,
		.cancel = &cancel,
	};
	scan_run(&req, &r);
	assert_int_equal(r.rc, -ECANCELED);
	assert_null(r.sbom);
	char want[64];
	snprintf(want, sizeof(want), "lib/apk/db/installed:%d: cancelled",
	    PKGLIST_POLL_EVERY);
	assert_string_equal(r.error, want);
	scan_result_free(&r);
}

struct canceller {
	atomic_int *flag;
	int delay_ms;
	int64_t at_ms; /* when it was set */
};

static void *
canceller_run(void *arg)
{
	struct canceller *c = arg;
	struct timespec ts = {c->delay_ms / 1000,
	    (long)(c->delay_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	c->at_ms = now_ms();
	atomic_store(c->flag, SCAN_CANCEL_TIMEOUT);
	return NULL;
}

/*
 * A scan of 200,000 packages (a few seconds of cataloguing and writing
 * uncancelled), cancelled 100 ms in from another thread, as the pool's
 * watchdog does at scan.timeout: the backend returns -ECANCELED within
 * a fraction of a second of the flag.
 */
static void
test_cancel_prompt(void **state)
{
	(void)state;
	enum { N = 200000 };
	char id[DIGEST_STR_LEN], dir[512];
	struct scan_result r;
	apk_image("cancel-big", N, false, id, dir, sizeof(dir));
	const char *stores[] = {dir};
	struct scan_oci_config c = {.stores = stores, .nstores = 1,
	    .max_packages = N};
	atomic_int cancel = SCAN_CANCEL_NONE;
	struct canceller cn = {.flag = &cancel, .delay_ms = 100};
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, canceller_run, &cn), 0);
	oci_scan_one(&c, id, &cancel, &r);
	int64_t end = now_ms();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.rc, -ECANCELED);
	assert_null(r.sbom);
	print_message("cancelled scan returned %lld ms after the flag\n",
	    (long long)(end - cn.at_ms));
	if (end - cn.at_ms > 500)
		fail_msg("the scan went on %lld ms after it was cancelled",
		    (long long)(end - cn.at_ms));
	scan_result_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_max_sbom_bytes),
		cmocka_unit_test(test_duplicates_fast),
		cmocka_unit_test(test_max_packages),
		cmocka_unit_test(test_cancel_in_catalog),
		cmocka_unit_test(test_cancel_prompt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
