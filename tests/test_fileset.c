/*
 * test_fileset: the fileset (put/replace/remove/remove_below, ordered
 * prefix iteration, bounds, path checks, wanted patterns, and a random
 * operation sequence against a naive model) and dirscan on trees the
 * tests build: links inside root followed, links out of root and loops
 * skipped, FIFOs skipped, an oversized file refused with its name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/dirscan.h"
#include "scan/fileset.h"
#include "testutil.h"

static void
put_str(fileset *fs, const char *path, const char *s)
{
	assert_int_equal(fileset_put(fs, path, s, strlen(s)), 0);
}

static void
assert_content(const fileset *fs, const char *path, const char *s)
{
	const struct fileset_file *f = fileset_get(fs, path);
	assert_non_null(f);
	assert_string_equal(f->path, path);
	assert_int_equal(f->len, strlen(s));
	assert_memory_equal(f->data, s, f->len);
}

static void
test_put_get_replace_remove(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	assert_int_equal(fileset_count(fs), 0);
	assert_null(fileset_get(fs, "etc/os-release"));
	put_str(fs, "etc/os-release", "ID=debian\n");
	put_str(fs, "var/lib/dpkg/status", "Package: a\n");
	assert_int_equal(fileset_count(fs), 2);
	assert_content(fs, "etc/os-release", "ID=debian\n");
	/* an upper layer replaces the file */
	put_str(fs, "etc/os-release", "ID=alpine\nVERSION_ID=3.19\n");
	assert_int_equal(fileset_count(fs), 2);
	assert_content(fs, "etc/os-release", "ID=alpine\nVERSION_ID=3.19\n");
	/* empty files are files */
	assert_int_equal(fileset_put(fs, "lib/apk/db/installed", "", 0), 0);
	assert_content(fs, "lib/apk/db/installed", "");
	/* the data is a copy */
	char buf[] = "xyz";
	assert_int_equal(fileset_put(fs, "a/b", buf, 3), 0);
	buf[0] = 'Q';
	assert_content(fs, "a/b", "xyz");
	fileset_remove(fs, "etc/os-release");
	assert_null(fileset_get(fs, "etc/os-release"));
	fileset_remove(fs, "etc/os-release"); /* absent: no-op */
	fileset_remove(fs, "etc");	      /* a prefix is not the file */
	assert_int_equal(fileset_count(fs), 3);
	assert_content(fs, "var/lib/dpkg/status", "Package: a\n");
	fileset_free(fs);
	fileset_free(NULL);
}

static void
test_remove_below(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	const char *paths[] = {"a/b", "a/b/c", "a/b/d/e", "a/bc", "a/b.x",
	    "a/b-", "a/a/b/c", "b/a/b/c", "a/b0"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		put_str(fs, paths[i], paths[i]);
	fileset_remove_below(fs, "a/b");
	assert_null(fileset_get(fs, "a/b/c"));
	assert_null(fileset_get(fs, "a/b/d/e"));
	/* the directory itself, siblings sharing the prefix, and paths
	 * that merely contain it are kept */
	assert_content(fs, "a/b", "a/b");
	assert_content(fs, "a/bc", "a/bc");
	assert_content(fs, "a/b.x", "a/b.x");
	assert_content(fs, "a/b-", "a/b-");
	assert_content(fs, "a/b0", "a/b0");
	assert_content(fs, "a/a/b/c", "a/a/b/c");
	assert_content(fs, "b/a/b/c", "b/a/b/c");
	assert_int_equal(fileset_count(fs), 7);
	/* a trailing slash means the same directory */
	fileset_remove_below(fs, "b/a/");
	assert_null(fileset_get(fs, "b/a/b/c"));
	assert_int_equal(fileset_count(fs), 6);
	fileset_remove_below(fs, "zzz"); /* nothing below: no-op */
	assert_int_equal(fileset_count(fs), 6);
	/* the root: everything is below it */
	fileset_remove_below(fs, "");
	assert_int_equal(fileset_count(fs), 0);
	fileset_free(fs);
}

struct collect {
	char paths[64][64];
	size_t n;
};

static void
collect_one(void *ctx, const struct fileset_file *f)
{
	struct collect *c = ctx;
	assert_true(c->n < 64);
	snprintf(c->paths[c->n++], sizeof(c->paths[0]), "%s", f->path);
}

static void
test_foreach_order(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	/* inserted out of order */
	const char *in[] = {"var/lib/dpkg/status.d/zlib", "etc/os-release",
	    "var/lib/dpkg/status.d/base", "var/lib/dpkg/status",
	    "var/lib/dpkg/status.d/a.md5sums", "usr/lib/os-release",
	    "var/lib/dpkg/status.dx"};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		put_str(fs, in[i], "x");
	struct collect c = {.n = 0};
	fileset_foreach(fs, "var/lib/dpkg/status.d/", collect_one, &c);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.paths[0], "var/lib/dpkg/status.d/a.md5sums");
	assert_string_equal(c.paths[1], "var/lib/dpkg/status.d/base");
	assert_string_equal(c.paths[2], "var/lib/dpkg/status.d/zlib");
	c.n = 0;
	fileset_foreach(fs, "", collect_one, &c);
	assert_int_equal(c.n, 7);
	for (size_t i = 1; i < c.n; i++)
		assert_true(strcmp(c.paths[i - 1], c.paths[i]) < 0);
	c.n = 0;
	fileset_foreach(fs, "nothing/", collect_one, &c);
	assert_int_equal(c.n, 0);
	fileset_free(fs);
}

static void
test_invalid_paths(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	const char *bad[] = {"", "/etc/os-release", "./etc/os-release",
	    "etc/./os-release", "etc/../etc/os-release", "..", ".",
	    "etc//os-release", "etc/", "etc/os-release/", "a/.."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fileset_put(fs, bad[i], "x", 1), -EINVAL);
		assert_false(fileset_wanted(bad[i]));
	}
	/* names that merely contain dots are fine */
	assert_int_equal(fileset_put(fs, "a/.b/..c/...", "x", 1), 0);
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(fileset_put(fs, longp, "x", 1), -EINVAL);
	assert_int_equal(fileset_count(fs), 1);
	fileset_free(fs);
}

static void
test_wanted(void **state)
{
	(void)state;
	const char *yes[] = {"etc/os-release", "usr/lib/os-release",
	    "var/lib/dpkg/status", "var/lib/dpkg/status.d/base-files",
	    "var/lib/dpkg/status.d/libssl3.md5sums",
	    "usr/share/doc/adduser/copyright", "lib/apk/db/installed",
	    "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite",
	    "var/lib/rpm/Packages", "var/lib/rpm/Packages.db"};
	const char *no[] = {"etc/passwd", "var/lib/dpkg/status-old",
	    "var/lib/dpkg/status.d", "var/lib/dpkg/status.d/",
	    "var/lib/dpkg/status.d/a/b", "usr/share/doc/copyright",
	    "usr/share/doc//copyright", "usr/share/doc/a/b/copyright",
	    "usr/share/doc/a/copyright.gz", "usr/share/doc/a/changelog",
	    "usr/share/doc/../copyright", "/etc/os-release",
	    "etc/os-release/x", "lib/apk/db/installed.new",
	    "var/lib/rpm/Packages.x", "usr/lib/os-release.d", "x"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!fileset_wanted(yes[i]))
			fail_msg("%s should be wanted", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (fileset_wanted(no[i]))
			fail_msg("%s should not be wanted", no[i]);
}

/* A copyright file is kept as the licenses it names (what the dpkg
 * cataloger reads of it); an entry of another set is kept as it is. */
static void
test_copyright_kept(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	static const char cr[] = "Files: *\nLicense: MIT\n Permission is "
	    "granted, see /usr/share/common-licenses/GPL-2.\n";
	const char *path = "usr/share/doc/foo/copyright";
	assert_int_equal(fileset_put(fs, path, cr, strlen(cr)), 0);
	assert_content(fs, path, "MIT\nGPL-2\n");
	/* Not a copyright file: whole. */
	put_str(fs, "var/lib/dpkg/status", cr);
	assert_content(fs, "var/lib/dpkg/status", cr);
	/* Copied from another set: as it is, not scanned again. */
	fileset *up = fileset_new();
	const struct fileset_file *f = fileset_get(fs, path);
	assert_int_equal(fileset_put_kept(up, f->path, f->data, f->len), 0);
	assert_content(up, path, "MIT\nGPL-2\n");
	/* No license: an empty entry, still there (it hides a lower one). */
	assert_int_equal(fileset_put(up, "usr/share/doc/bar/copyright", "x",
	    1), 0);
	assert_content(up, "usr/share/doc/bar/copyright", "");
	/* The file's own size is bounded, whatever is kept of it. */
	assert_int_equal(fileset_put(up, "usr/share/doc/baz/copyright", cr,
	    (size_t)FILESET_MAX_FILE + 1), -EFBIG);
	assert_null(fileset_get(up, "usr/share/doc/baz/copyright"));
	fileset_free(up);
	fileset_free(fs);
}

static void
test_bounds(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	/* one file: the bound is allowed, one byte more is not */
	unsigned char *big = calloc(FILESET_MAX_FILE + 1, 1);
	assert_non_null(big);
	assert_int_equal(fileset_put(fs, "f/big", big, FILESET_MAX_FILE + 1),
	    -EFBIG);
	assert_int_equal(fileset_count(fs), 0);
	/* the set: FILESET_MAX_BYTES in files of FILESET_MAX_FILE */
	size_t nbig = FILESET_MAX_BYTES / FILESET_MAX_FILE;
	for (size_t i = 0; i < nbig; i++) {
		char p[32];
		snprintf(p, sizeof(p), "f/%zu", i);
		assert_int_equal(fileset_put(fs, p, big, FILESET_MAX_FILE), 0);
	}
	assert_int_equal(fileset_put(fs, "g", "x", 1), -EFBIG);
	assert_null(fileset_get(fs, "g"));
	/* replacing a file frees its bytes first */
	assert_int_equal(fileset_put(fs, "f/0", big, FILESET_MAX_FILE), 0);
	assert_int_equal(fileset_put(fs, "f/0", "x", 1), 0);
	assert_int_equal(fileset_put(fs, "g", "y", 1), 0);
	/* and a failed replace leaves the old content */
	assert_int_equal(fileset_put(fs, "g", big, FILESET_MAX_FILE), -EFBIG);
	assert_content(fs, "g", "y");
	free(big);
	fileset_free(fs);

	/* the number of files */
	fs = fileset_new();
	for (size_t i = 0; i < FILESET_MAX_FILES; i++) {
		char p[32];
		snprintf(p, sizeof(p), "n/%08zu", i);
		assert_int_equal(fileset_put(fs, p, "", 0), 0);
	}
	assert_int_equal(fileset_count(fs), FILESET_MAX_FILES);
	assert_int_equal(fileset_put(fs, "n/x", "", 0), -EFBIG);
	assert_int_equal(fileset_put(fs, "n/00000007", "z", 1), 0);
	assert_content(fs, "n/00000007", "z");
	fileset_remove_below(fs, "n");
	assert_int_equal(fileset_count(fs), 0);
	fileset_free(fs);
}

/* Random puts/removes against a naive table of path -> value. */
static void
test_random_vs_naive(void **state)
{
	(void)state;
	enum { NP = 40, OPS = 20000 };
	static const char *dirs[] = {"a", "a/b", "a/bc", "b", "a/b/c"};
	char paths[NP][32];
	int model[NP]; /* -1 absent, else the value last put */
	for (int i = 0; i < NP; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/f%d",
		    dirs[i % 5], i / 5);
		model[i] = -1;
	}
	rng_seed(20261128);
	fileset *fs = fileset_new();
	for (int op = 0; op < OPS; op++) {
		size_t i = rng_below(NP), kind = rng_below(10);
		if (kind < 6) {
			int v = (int)rng_below(1000);
			char val[16];
			snprintf(val, sizeof(val), "%d", v);
			put_str(fs, paths[i], val);
			model[i] = v;
		} else if (kind < 9) {
			fileset_remove(fs, paths[i]);
			model[i] = -1;
		} else {
			const char *d = dirs[rng_below(5)];
			size_t dl = strlen(d);
			fileset_remove_below(fs, d);
			for (int k = 0; k < NP; k++)
				if (strncmp(paths[k], d, dl) == 0 &&
				    paths[k][dl] == '/')
					model[k] = -1;
		}
		size_t live = 0;
		for (int k = 0; k < NP; k++) {
			const struct fileset_file *f = fileset_get(fs, paths[k]);
			if (model[k] < 0) {
				assert_null(f);
				continue;
			}
			live++;
			char val[16];
			snprintf(val, sizeof(val), "%d", model[k]);
			assert_non_null(f);
			assert_int_equal(f->len, strlen(val));
			assert_memory_equal(f->data, val, f->len);
		}
		assert_int_equal(fileset_count(fs), live);
	}
	fileset_free(fs);
}

/* ---- dirscan ---- */

static char tmproot[256];

static void
mkfile(const char *rel, const char *content)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", tmproot, rel);
	/* parents */
	for (char *s = p + strlen(tmproot) + 1; (s = strchr(s, '/')) != NULL;
	    s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	if (content == NULL)
		return;
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void
mklink(const char *rel, const char *target)
{
	char p[512];
	mkfile(rel, NULL);
	snprintf(p, sizeof(p), "%s/%s", tmproot, rel);
	if (symlink(target, p) < 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

static void
rmtree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_dirscan_tree(void **state)
{
	(void)state;
	char top[] = "/tmp/sbomd-dirscan-XXXXXX";
	assert_non_null(mkdtemp(top));
	/* top/outside holds what a link out of the tree would reach */
	snprintf(tmproot, sizeof(tmproot), "%s/outside", top);
	assert_int_equal(mkdir(tmproot, 0755), 0);
	mkfile("secret", "SECRET\n");
	mkfile("copyright", "SECRET\n");
	snprintf(tmproot, sizeof(tmproot), "%s/root", top);
	assert_int_equal(mkdir(tmproot, 0755), 0);
	mkfile("usr/lib/os-release", "ID=debian\n");
	mklink("etc/os-release", "../usr/lib/os-release"); /* inside */
	mkfile("var/lib/dpkg/status", "Package: a\n");
	mkfile("var/lib/dpkg/status.d/base", "Package: base\n");
	mklink("var/lib/dpkg/status.d/abs", "/var/lib/dpkg/status");
	mklink("var/lib/dpkg/status.d/escape",
	    "../../../../../outside/secret");
	mklink("var/lib/dpkg/status.d/escape2", "/../outside/secret");
	mklink("var/lib/dpkg/status.d/loop", "loop");
	mklink("var/lib/dpkg/status.d/dangling", "nowhere");
	mkfile("var/lib/dpkg/status.d/adir/x", "x");
	char fifo[512];
	snprintf(fifo, sizeof(fifo), "%s/var/lib/dpkg/status.d/fifo", tmproot);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	mkfile("usr/share/doc/foo/copyright", "License: MIT\n");
	mkfile("usr/share/doc/foo/changelog", "not wanted\n");
	mklink("usr/share/doc/foo-dev", "foo"); /* a dir link inside */
	mklink("usr/share/doc/evil", "../../../../outside");
	mkfile("usr/share/doc/nocopyright/README", "x");
	mkfile("etc/passwd", "root:x:0:0\n");
	/* what an escaping link would reach if ".." were clamped at root
	 * instead of the link being skipped */
	mkfile("outside/secret", "CLAMPED\n");
	mkfile("outside/copyright", "CLAMPED\n");

	fileset *fs = fileset_new();
	char err[512] = "";
	int rc = dirscan_load(fs, tmproot, err, sizeof(err));
	if (rc != 0)
		fail_msg("dirscan_load: %d %s", rc, err);
	struct collect c = {.n = 0};
	fileset_foreach(fs, "", collect_one, &c);
	const char *want[] = {"etc/os-release",
	    "usr/lib/os-release", "usr/share/doc/foo-dev/copyright",
	    "usr/share/doc/foo/copyright", "var/lib/dpkg/status",
	    "var/lib/dpkg/status.d/abs", "var/lib/dpkg/status.d/base"};
	for (size_t i = 0; i < c.n; i++)
		printf("loaded %s\n", c.paths[i]);
	assert_int_equal(c.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < c.n; i++)
		assert_string_equal(c.paths[i], want[i]);
	assert_content(fs, "etc/os-release", "ID=debian\n");
	assert_content(fs, "var/lib/dpkg/status.d/abs", "Package: a\n");
	/* a copyright file is kept as the licenses it names */
	assert_content(fs, "usr/share/doc/foo-dev/copyright", "MIT\n");
	fileset_free(fs);

	/* a root given with a trailing slash reads the same */
	char root2[300];
	snprintf(root2, sizeof(root2), "%s/", tmproot);
	fs = fileset_new();
	assert_int_equal(dirscan_load(fs, root2, err, sizeof(err)), 0);
	assert_int_equal(fileset_count(fs), 7);
	fileset_free(fs);

	/* a root that is not there is an error naming it */
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/missing", top);
	fs = fileset_new();
	assert_int_equal(dirscan_load(fs, missing, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, missing));
	fileset_free(fs);
	rmtree(top);
}

static void
test_dirscan_too_big(void **state)
{
	(void)state;
	char top[] = "/tmp/sbomd-dirscan-XXXXXX";
	assert_non_null(mkdtemp(top));
	snprintf(tmproot, sizeof(tmproot), "%s", top);
	mkfile("etc/os-release", "ID=debian\n");
	mkfile("var/lib/dpkg/status", "");
	char p[512];
	snprintf(p, sizeof(p), "%s/var/lib/dpkg/status", top);
	/* sparse: exactly the bound is read */
	assert_int_equal(truncate(p, FILESET_MAX_FILE), 0);
	fileset *fs = fileset_new();
	char err[512] = "";
	assert_int_equal(dirscan_load(fs, top, err, sizeof(err)), 0);
	const struct fileset_file *f = fileset_get(fs, "var/lib/dpkg/status");
	assert_non_null(f);
	assert_int_equal(f->len, FILESET_MAX_FILE);
	fileset_free(fs);
	/* one byte more is refused, naming the file */
	assert_int_equal(truncate(p, (off_t)FILESET_MAX_FILE + 1), 0);
	fs = fileset_new();
	assert_int_equal(dirscan_load(fs, top, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, p));
	fileset_free(fs);
	rmtree(top);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_remove),
		cmocka_unit_test(test_remove_below),
		cmocka_unit_test(test_foreach_order),
		cmocka_unit_test(test_invalid_paths),
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_copyright_kept),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_random_vs_naive),
		cmocka_unit_test(test_dirscan_tree),
		cmocka_unit_test(test_dirscan_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
