/*
 * test_scanner: the built-in scanner through the `oci` backend (scan_run
 * and scan_backend_oci) on OCI image layouts the test builds in a fresh
 * temporary directory (tests/ocilayout.h): the bounds a scan is held to
 * (scan.max_sbom_bytes).
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/backend.h"
#include "scan/job.h"
#include "scan/scanner.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_max_sbom_bytes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
