/*
 * test_scan_cmd: the real `sbomd scan` binary on trees the test builds:
 * the SBOM on stdout, diagnostics on stderr, documented exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

static char tmpdir[] = "/tmp/sbomd-test-scan-XXXXXX";

static void
write_file(const char *rel, const char *content)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	for (char *p = path + strlen(tmpdir) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* Runs sbomd with args; returns the exit status, stdout in *out. */
static int
run_sbomd(const char *args, char **out)
{
	const char *bin = getenv("SBOMD_BIN");
	if (bin == NULL)
		bin = "./sbomd";
	char cmd[8192], outpath[4200];
	snprintf(outpath, sizeof(outpath), "%s/stdout", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s %s > %s 2>%s/stderr", bin, args,
	    outpath, tmpdir);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	FILE *f = fopen(outpath, "r");
	assert_non_null(f);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	*out = buf;
	return WEXITSTATUS(st);
}

/* What the last run wrote to stderr. */
static const char *
run_stderr(void)
{
	static char buf[65536];
	char path[4200];
	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_dir_target(void **state)
{
	(void)state;
	write_file("root/etc/os-release",
	    "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n");
	write_file("root/etc/debian_version", "12.7\n");
	write_file("root/var/lib/dpkg/status",
	    "Package: adduser\nStatus: install ok installed\n"
	    "Architecture: all\nVersion: 3.134\n\n"
	    "Package: libc6\nStatus: install ok installed\n"
	    "Architecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u7\n\n"
	    "Package: gone\nStatus: deinstall ok config-files\n"
	    "Architecture: amd64\nVersion: 1.0\n");
	char args[4200], *out;
	snprintf(args, sizeof(args), "scan dir:%s/root", tmpdir);
	assert_int_equal(run_sbomd(args, &out), 0);
	json_error_t jerr;
	json_t *doc = json_loads(out, 0, &jerr);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc,
	    "specVersion")), "1.5");
	json_t *comps = json_object_get(doc, "components");
	assert_int_equal(json_array_size(comps), 3); /* OS + 2 packages */
	int seen = 0;
	size_t i;
	json_t *c;
	json_array_foreach(comps, i, c) {
		const char *purl = json_string_value(json_object_get(c,
		    "purl"));
		if (purl && strcmp(purl, "pkg:deb/debian/adduser@3.134"
		    "?arch=all&distro=debian-12.7") == 0)
			seen++;
		if (purl && strcmp(purl, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7"
		    "?arch=amd64&distro=debian-12.7") == 0)
			seen++;
	}
	assert_int_equal(seen, 2);
	json_decref(doc);
}

static void
test_exit_codes(void **state)
{
	(void)state;
	char args[4200], *out;
	assert_int_equal(run_sbomd("scan", &out), 2);
	assert_int_equal(run_sbomd("scan bogus:thing", &out), 2);
	assert_int_equal(run_sbomd("scan --help", &out), 0);
	assert_non_null(strstr(out, "docker-archive:FILE"));
	/* an empty OCI layout: the image is not there (retryable) */
	write_file("empty/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_file("empty/index.json",
	    "{\"schemaVersion\":2,\"manifests\":[]}");
	snprintf(args, sizeof(args), "scan oci:%s/empty@sha256:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    tmpdir);
	assert_int_equal(run_sbomd(args, &out), 3);
	assert_string_equal(out, "");
	/* the message names the store, and the class as outcomes do */
	assert_non_null(strstr(run_stderr(), "/empty"));
	assert_non_null(strstr(run_stderr(), "(RETRYABLE)"));
	/* a corrupt layout: a scan failure */
	write_file("bad/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_file("bad/index.json", "{not json");
	snprintf(args, sizeof(args), "scan oci:%s/bad", tmpdir);
	assert_int_equal(run_sbomd(args, &out), 4);
	assert_non_null(strstr(run_stderr(), "index.json"));
	assert_non_null(strstr(run_stderr(), "(PERMANENT)"));
	/* a dpkg database that is not one */
	write_file("junk/var/lib/dpkg/status", "this is not a stanza\n");
	snprintf(args, sizeof(args), "scan dir:%s/junk", tmpdir);
	assert_int_equal(run_sbomd(args, &out), 4);
}

/* scan.max_packages' default holds for `sbomd scan`, and --max-packages
 * changes it: more packages is a scan failure naming the count and the
 * bound. */
static void
test_max_packages(void **state)
{
	(void)state;
	char args[4200], *out;
	/* one more apk package than the default bound, tiny entries */
	size_t n = 100001, cap = n * 24 + 1, used = 0;
	char *db = malloc(cap);
	assert_non_null(db);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(db + used, cap - used,
		    "P:p%zu\nV:1\n\n", i);
	write_file("many/lib/apk/db/installed", db);
	free(db);
	snprintf(args, sizeof(args), "scan dir:%s/many", tmpdir);
	assert_int_equal(run_sbomd(args, &out), 4);
	assert_string_equal(out, "");
	if (strstr(run_stderr(), "100001 packages, more than "
	    "scan.max_packages (100000)") == NULL)
		fail_msg("stderr: %s", run_stderr());
	assert_non_null(strstr(run_stderr(), "(PERMANENT)"));

	write_file("three/lib/apk/db/installed",
	    "P:a\nV:1\n\nP:b\nV:1\n\nP:c\nV:1\n");
	snprintf(args, sizeof(args), "scan --max-packages 2 dir:%s/three",
	    tmpdir);
	assert_int_equal(run_sbomd(args, &out), 4);
	assert_non_null(strstr(run_stderr(), "3 packages, more than "
	    "scan.max_packages (2)"));
	snprintf(args, sizeof(args), "scan --max-packages 3 dir:%s/three",
	    tmpdir);
	assert_int_equal(run_sbomd(args, &out), 0);
	snprintf(args, sizeof(args), "scan --max-packages 0 dir:%s/three",
	    tmpdir);
	assert_int_equal(run_sbomd(args, &out), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_target),
		cmocka_unit_test(test_max_packages),
		cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
