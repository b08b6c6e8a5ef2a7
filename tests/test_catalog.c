/*
 * test_catalog: the dpkg, apk and os-release catalogers on fixtures
 * written here (status with installed, deinstalled, held and purged
 * stanzas, multi-line fields, Source with version; distroless status.d
 * with md5sums and a duplicate; DEP-5 copyright files; apk installed;
 * os-release quoting and precedence), malformed inputs that must give
 * -EINVAL naming file and line, random corruptions that must never crash,
 * and the machine's own dpkg database against dpkg-query.
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

#include "scan/catalog/catalog.h"
#include "scan/dirscan.h"
#include "scan/fileset.h"
#include "testutil.h"

static void
put(fileset *fs, const char *path, const char *s)
{
	assert_int_equal(fileset_put(fs, path, s, strlen(s)), 0);
}

static const struct pkg *
find(const struct pkglist *l, const char *name)
{
	const struct pkg *hit = NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->pkgs[i].name, name) == 0) {
			assert_null(hit); /* unique in these fixtures */
			hit = &l->pkgs[i];
		}
	return hit;
}

/* licenses equal the NULL-terminated list want, in order */
static void
assert_licenses(const struct pkg *p, const char *const *want)
{
	size_t n = 0;
	while (want[n] != NULL)
		n++;
	for (size_t i = 0; i < p->nlicenses; i++)
		printf("%s license %zu: %s\n", p->name, i, p->licenses[i]);
	assert_int_equal(p->nlicenses, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(p->licenses[i], want[i]);
	if (n > 0)
		assert_null(p->licenses[n]);
}

static const char status_fixture[] =
    "Package: adduser\n"
    "Status: install ok installed\n"
    "Priority: important\n"
    "Architecture: all\n"
    "Multi-Arch: foreign\n"
    "Version: 3.134\n"
    "Conffiles:\n"
    " /etc/deluser.conf 773fb95e98a27947de4a95abb3d3f2a2\n"
    "Description: add and remove users and groups\n"
    " This package includes the 'adduser' and 'deluser' commands.\n"
    " .\n"
    " Package: not-a-package\n"
    "\n"
    "Package: libfoo1\n"
    "Status: deinstall ok config-files\n"
    "Architecture: amd64\n"
    "Version: 1.0-1\n"
    "\n"
    "Package: libbar2\n"
    "Status: install ok installed\n"
    "Architecture: amd64\n"
    "Source: bar (1.2-3)\n"
    "Version: 1.2-3+b1\n"
    "\n"
    "\n"
    "Package: purged\n"
    "Status: purge ok not-installed\n"
    "Architecture: amd64\n"
    "\n"
    "Package: held\n"
    "Status: hold ok installed\n"
    "Version: 2:1.0\n"
    "\n"
    "Package: half\n"
    "Status: install ok half-installed\n"
    "Version: 1\n"
    "\n"
    "package: libbaz\n"
    "status: install ok installed\n"
    "source: libbaz\n"
    "version: 0.9\n"
    "\n"
    "Package: baz-utils\n"
    "Status: install ok installed\n"
    "Source: baz\n"
    "Version: 0.9\n"
    "Architecture: amd64\n";

static void
dpkg_fixture(fileset *fs)
{
	put(fs, "var/lib/dpkg/status", status_fixture);
	/* distroless: no Status; one file per package, md5sums beside */
	put(fs, "var/lib/dpkg/status.d/base-files",
	    "Package: base-files\n"
	    "Version: 12.4+deb12u5\n"
	    "Architecture: amd64\n"
	    "Maintainer: Santiago Vila <sanvila@debian.org>\n");
	put(fs, "var/lib/dpkg/status.d/libssl3",
	    "Package: libssl3\n"
	    "Source: openssl\n"
	    "Version: 3.0.11-1~deb12u2\n"
	    "Architecture: amd64\n"
	    "Description: Secure Sockets Layer toolkit\n"
	    " multi\n line\n");
	put(fs, "var/lib/dpkg/status.d/libssl3.md5sums",
	    "0123456789abcdef0123456789abcdef  usr/lib/libssl.so.3\n");
	/* the same package as in status: reported once */
	put(fs, "var/lib/dpkg/status.d/adduser",
	    "Package: adduser\nVersion: 3.134\nArchitecture: all\n");
	put(fs, "usr/share/doc/adduser/copyright",
	    "Format: https://www.debian.org/doc/packaging-manuals/"
	    "copyright-format/1.0/\n"
	    "Upstream-Name: adduser\n"
	    "\n"
	    "Files: *\n"
	    "Copyright: 1997 Guy Maor\n"
	    "License: GPL-2+\n"
	    "\n"
	    "Files: debian/*\n"
	    "License: GPL-2+ or BSD-3-clause\n"
	    "\n"
	    "Files: contrib/*\n"
	    "License: MIT (with advertising clause)\n"
	    "\n"
	    "Files: other/*\n"
	    "License: Apache-2.0, LGPL-2.1 and Zlib\n"
	    "\n"
	    "License: GPL-2+\n"
	    " This program is free software; License: not-a-field\n"
	    " .\n"
	    " On Debian systems, see /usr/share/common-licenses/GPL-2.\n");
	put(fs, "usr/share/doc/libbar2/copyright",
	    "This is not machine-readable.\n"
	    "You can find it in /usr/share/common-licenses/LGPL-2.1.\n");
	put(fs, "usr/share/doc/base-files/copyright",
	    "License: The main library is licensed under GPL license\n");
}

/*
 * The fileset keeps a copyright file as its licenses; what the cataloger
 * reports from them is what scanning the file gives, even for names with
 * a NUL byte (cut there, and then not recognised as duplicates).
 */
static void
test_dpkg_copyright_nul(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	put(fs, "var/lib/dpkg/status", "Package: n\nStatus: install ok "
	    "installed\nVersion: 1\n\n");
	static const char cr[] = "License: a\0b, a\0c, \0z or a\n";
	assert_int_equal(fileset_put(fs, "usr/share/doc/n/copyright", cr,
	    sizeof(cr) - 1), 0);
	struct pkglist l;
	pkglist_init(&l);
	char err[256] = "";
	assert_int_equal(catalog_dpkg(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	static const char *const want[] = {"a", "a", "", NULL};
	assert_licenses(&l.pkgs[0], want);
	pkglist_free(&l);
	fileset_free(fs);
}

static void
test_dpkg(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	dpkg_fixture(fs);
	struct pkglist l;
	pkglist_init(&l);
	char err[256] = "";
	int rc = catalog_dpkg(fs, &l, err, sizeof(err));
	if (rc != 0)
		fail_msg("catalog_dpkg: %d %s", rc, err);
	for (size_t i = 0; i < l.n; i++)
		printf("pkg %s %s\n", l.pkgs[i].name, l.pkgs[i].version);
	assert_int_equal(l.n, 7);
	const char *names[] = {"adduser", "base-files", "baz-utils", "held",
	    "libbar2", "libbaz", "libssl3"};
	for (size_t i = 0; i < l.n; i++) {
		/* sorted, all deb */
		assert_string_equal(l.pkgs[i].name, names[i]);
		assert_int_equal(l.pkgs[i].type, PKG_DEB);
	}
	assert_null(find(&l, "libfoo1"));
	assert_null(find(&l, "purged"));
	assert_null(find(&l, "half"));
	assert_null(find(&l, "not-a-package"));

	const struct pkg *p = find(&l, "adduser");
	assert_string_equal(p->version, "3.134");
	assert_str_or_null(p->arch, "all");
	assert_null(p->source_name);
	assert_null(p->source_version);
	static const char *const adduser_lic[] = {"GPL-2+", "BSD-3-clause",
	    "MIT", "Apache-2.0", "LGPL-2.1", "Zlib", "GPL-2", NULL};
	assert_licenses(p, adduser_lic);

	p = find(&l, "libbar2");
	assert_string_equal(p->version, "1.2-3+b1");
	assert_str_or_null(p->source_name, "bar");
	assert_str_or_null(p->source_version, "1.2-3");
	static const char *const bar_lic[] = {"LGPL-2.1", NULL};
	assert_licenses(p, bar_lic);

	p = find(&l, "held");
	assert_string_equal(p->version, "2:1.0");
	assert_null(p->arch);
	assert_int_equal(p->nlicenses, 0);

	p = find(&l, "libbaz"); /* lower-case field names; Source == name */
	assert_string_equal(p->version, "0.9");
	assert_null(p->source_name);

	p = find(&l, "baz-utils");
	assert_str_or_null(p->source_name, "baz");
	assert_null(p->source_version);

	p = find(&l, "libssl3");
	assert_string_equal(p->version, "3.0.11-1~deb12u2");
	assert_str_or_null(p->source_name, "openssl");
	p = find(&l, "base-files");
	static const char *const base_lic[] = {"GPL", NULL};
	assert_licenses(p, base_lic);

	/* appends: a second run doubles the list, not the dedup */
	assert_int_equal(catalog_dpkg(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 14);
	pkglist_free(&l);
	assert_int_equal(l.n, 0);
	pkglist_free(&l);

	/* no database: nothing, no error */
	fileset *empty = fileset_new();
	assert_int_equal(catalog_dpkg(empty, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	fileset_free(empty);
	fileset_free(fs);
}

struct bad_case {
	const char *path;
	const char *content;
	size_t len; /* 0: strlen */
	const char *where;
};

static void
expect_bad(int (*fn)(const fileset *, struct pkglist *, char *, size_t),
    const struct bad_case *c)
{
	fileset *fs = fileset_new();
	size_t len = c->len ? c->len : strlen(c->content);
	assert_int_equal(fileset_put(fs, c->path, c->content, len), 0);
	struct pkglist l;
	pkglist_init(&l);
	char err[256] = "";
	int rc = fn(fs, &l, err, sizeof(err));
	printf("%s -> %d %s\n", c->where, rc, err);
	assert_int_equal(rc, -EINVAL);
	if (strstr(err, c->where) == NULL)
		fail_msg("error \"%s\" does not name \"%s\"", err, c->where);
	pkglist_free(&l);
	fileset_free(fs);
}

static void
test_dpkg_malformed(void **state)
{
	(void)state;
	static const char st[] = "var/lib/dpkg/status";
	const struct bad_case cases[] = {
		{st, " continuation first\n", 0, "var/lib/dpkg/status:1:"},
		{st, "Package: a\nVersion: 1\n\nno colon here\n", 0,
		    "var/lib/dpkg/status:4:"},
		{st, "Package: a\nVersion: 1\n\n: empty name\n", 0,
		    "var/lib/dpkg/status:4:"},
		{st, "Package: a\nVersion: 1\n\n\nVersion: 2\nStatus: install"
		     " ok installed\n", 0, "var/lib/dpkg/status:5:"},
		{st, "Package: a\nStatus: install ok installed\n\n", 0,
		    "var/lib/dpkg/status:1:"},
		{st, "Package: a\nVersion: 1\nSource: b (1.0\n", 0,
		    "var/lib/dpkg/status:1:"},
		{st, "Package: a\nVersion: 1\nSource: b 1.0\n", 0,
		    "var/lib/dpkg/status:1:"},
		{st, "Package: a b\nVersion: 1\n", 0,
		    "var/lib/dpkg/status:1:"},
		{st, "Package: a\nVersion: 1 2\n", 0,
		    "var/lib/dpkg/status:1:"},
		{st, "Package: a\nVersion: 1\nDescr\0iption: x\n",
		    sizeof("Package: a\nVersion: 1\nDescr\0iption: x\n") - 1,
		    "var/lib/dpkg/status:3:"},
		{"var/lib/dpkg/status.d/x", "Package: x\nVersion: 1\nbad\n", 0,
		    "var/lib/dpkg/status.d/x:3:"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad(catalog_dpkg, &cases[i]);
}

static void
test_apk(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	put(fs, "lib/apk/db/installed",
	    "C:Q1abc=\n"
	    "P:musl\n"
	    "V:1.2.4_git20230717-r4\n"
	    "A:x86_64\n"
	    "S:383152\n"
	    "T:the musl c library\n"
	    "o:musl\n"
	    "L:MIT\n"
	    "F:lib\n"
	    "R:libc.musl-x86_64.so.1\n"
	    "a:0:0:777\n"
	    "Z:Q1abc=\n"
	    "\n"
	    "P:ssl_client\n"
	    "V:1.36.1-r15\n"
	    "A:x86_64\n"
	    "o:busybox\n"
	    "L:(MIT OR Apache-2.0) AND BSD-2-Clause and MIT\n"
	    "\n"
	    "P:alpine-baselayout\n"
	    "V:3.4.3-r2\n"
	    "L:\n");
	struct pkglist l;
	pkglist_init(&l);
	char err[256] = "";
	int rc = catalog_apk(fs, &l, err, sizeof(err));
	if (rc != 0)
		fail_msg("catalog_apk: %d %s", rc, err);
	assert_int_equal(l.n, 3);
	pkglist_sort(&l);
	assert_string_equal(l.pkgs[0].name, "alpine-baselayout");
	assert_string_equal(l.pkgs[1].name, "musl");
	assert_string_equal(l.pkgs[2].name, "ssl_client");
	const struct pkg *p = find(&l, "musl");
	assert_int_equal(p->type, PKG_APK);
	assert_string_equal(p->version, "1.2.4_git20230717-r4");
	assert_str_or_null(p->arch, "x86_64");
	assert_null(p->source_name); /* origin == name */
	static const char *const musl_lic[] = {"MIT", NULL};
	assert_licenses(p, musl_lic);
	p = find(&l, "ssl_client");
	assert_str_or_null(p->source_name, "busybox");
	static const char *const ssl_lic[] = {"MIT", "Apache-2.0",
	    "BSD-2-Clause", NULL};
	assert_licenses(p, ssl_lic);
	p = find(&l, "alpine-baselayout");
	assert_null(p->arch);
	assert_int_equal(p->nlicenses, 0);
	pkglist_free(&l);
	fileset_free(fs);

	static const char db[] = "lib/apk/db/installed";
	const struct bad_case cases[] = {
		{db, "P:a\nV:1\nbogus line\n", 0, "lib/apk/db/installed:3:"},
		{db, "P:a\nV:1\n\nV:2\n", 0, "lib/apk/db/installed:4:"},
		{db, "P:a\n\n", 0, "lib/apk/db/installed:1:"},
		{db, "P:a b\nV:1\n", 0, "lib/apk/db/installed:1:"},
		{db, "P:a\nV:1\nT:x\0y\n", sizeof("P:a\nV:1\nT:x\0y\n") - 1,
		    "lib/apk/db/installed:3:"},
		{db, "P:a\nV:1\n:x\n", 0, "lib/apk/db/installed:3:"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad(catalog_apk, &cases[i]);
}

static void
test_os_release(void **state)
{
	(void)state;
	fileset *fs = fileset_new();
	struct os_info os = {0};
	char err[256] = "";
	/* absent: 0, nothing known */
	assert_int_equal(catalog_os(fs, &os, err, sizeof(err)), 0);
	assert_null(os.id);

	/* usr/lib/os-release alone is used */
	put(fs, "usr/lib/os-release",
	    "NAME=Alpine\nID=alpine\nVERSION_ID=3.19.1\n"
	    "PRETTY_NAME='Alpine Linux v3.19'\n");
	assert_int_equal(catalog_os(fs, &os, err, sizeof(err)), 0);
	assert_string_equal(os.id, "alpine");
	assert_string_equal(os.version_id, "3.19.1");
	assert_string_equal(os.pretty_name, "Alpine Linux v3.19");
	assert_string_equal(os.name, "Alpine");
	os_info_free(&os);
	assert_null(os.id);

	/* etc/os-release wins; quoting and escapes per os-release(5) */
	put(fs, "etc/os-release",
	    "# a comment\n"
	    "\n"
	    "  PRETTY_NAME=\"Debian \\\"GNU\\\"/Linux \\$12 \\\\ \\n `x`\"\n"
	    "NAME='It''s' \n"
	    "VERSION_ID=\"12\"\n"
	    "ID=debian\r\n"
	    "HOME_URL=\"https://www.debian.org/\"\n"
	    "UNQUOTED=a\\ b\n"
	    "VERSION_CODENAME=bookworm # trailing\n");
	assert_int_equal(catalog_os(fs, &os, err, sizeof(err)), 0);
	assert_string_equal(os.id, "debian");
	assert_string_equal(os.version_id, "12");
	assert_string_equal(os.pretty_name,
	    "Debian \"GNU\"/Linux $12 \\ \\n `x`");
	assert_string_equal(os.name, "Its");
	os_info_free(&os);

	/* malformed: unterminated quotes, no '=', bad keys, NUL */
	const char *bad[][2] = {
		{"ID=debian\nPRETTY_NAME=\"Debian\n", "etc/os-release:2:"},
		{"ID='debian\n", "etc/os-release:1:"},
		{"ID=debian\n\njust words\n", "etc/os-release:3:"},
		{"1D=x\n", "etc/os-release:1:"},
		{"=x\n", "etc/os-release:1:"},
		{"ID=\"a\\\"\n", "etc/os-release:1:"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(fs, "etc/os-release", bad[i][0]);
		int rc = catalog_os(fs, &os, err, sizeof(err));
		printf("%s -> %d %s\n", bad[i][1], rc, err);
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, bad[i][1]));
		os_info_free(&os);
	}
	assert_int_equal(fileset_put(fs, "etc/os-release", "ID=a\nX=\0\n", 9),
	    0);
	assert_int_equal(catalog_os(fs, &os, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "etc/os-release:2:"));
	os_info_free(&os);
	fileset_free(fs);
}

/*
 * Random corruptions of valid inputs: every result is 0 or -EINVAL with a
 * message naming the file; nothing crashes or leaks (ASan build).
 */
/* Debian's point release comes from etc/debian_version when it fits. */
static void
test_debian_point_release(void **state)
{
	(void)state;
	static const struct {
		const char *debian_version; /* NULL: absent */
		const char *id, *version_id, *want;
	} cases[] = {
		{"12.5\n", "debian", "12", "12.5"},
		{"12.11", "debian", "12", "12.11"},
		{NULL, "debian", "12", "12"},
		{"trixie/sid\n", "debian", "12", "12"},
		{"11.9\n", "debian", "12", "12"},	 /* another major */
		{"12\n", "debian", "12", "12"},
		{"12.5 extra\n", "debian", "12", "12"},
		{"12.5\n", "ubuntu", "22.04", "22.04"}, /* not Debian */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fileset *fs = fileset_new();
		char osr[128], err[256] = "";
		snprintf(osr, sizeof(osr), "ID=%s\nVERSION_ID=\"%s\"\n",
		    cases[i].id, cases[i].version_id);
		put(fs, "etc/os-release", osr);
		if (cases[i].debian_version != NULL)
			put(fs, "etc/debian_version", cases[i].debian_version);
		struct os_info os = {0};
		assert_int_equal(catalog_os(fs, &os, err, sizeof(err)), 0);
		assert_string_equal(os.version_id, cases[i].want);
		os_info_free(&os);
		fileset_free(fs);
	}
}

static void
test_corrupt_never_crash(void **state)
{
	(void)state;
	fileset *good = fileset_new();
	dpkg_fixture(good);
	put(good, "lib/apk/db/installed",
	    "P:musl\nV:1.2\nA:x86_64\no:musl\nL:MIT OR (BSD)\n\nP:b\nV:2\n");
	put(good, "etc/os-release", "ID=\"debian\"\nNAME='x'\nA=b\\c\n");
	static const char *const files[] = {"var/lib/dpkg/status",
	    "var/lib/dpkg/status.d/libssl3", "usr/share/doc/adduser/copyright",
	    "lib/apk/db/installed", "etc/os-release"};
	static const char alphabet[] = "\n\n\n :::\t \"'\\()(,a\0\r.";
	rng_seed(77);
	for (int iter = 0; iter < 3000; iter++) {
		const char *path = files[rng_below(5)];
		const struct fileset_file *f = fileset_get(good, path);
		size_t len = f->len;
		unsigned char *buf = malloc(len + 8);
		memcpy(buf, f->data, len);
		size_t nmut = 1 + rng_below(6);
		for (size_t m = 0; m < nmut; m++) {
			size_t at = rng_below(len + 1), kind = rng_below(3);
			char c = alphabet[rng_below(sizeof(alphabet) - 1)];
			if (kind == 0 && at < len)
				buf[at] = (unsigned char)c;
			else if (kind == 1 && at < len)
				memmove(buf + at, buf + at + 1, len-- - at - 1);
			else if (len < f->len + 7) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (unsigned char)c;
				len++;
			}
		}
		fileset *fs = fileset_new();
		const char *others[] = {"var/lib/dpkg/status",
		    "usr/share/doc/adduser/copyright"};
		for (size_t k = 0; k < 2; k++) {
			const struct fileset_file *o = fileset_get(good,
			    others[k]);
			assert_int_equal(fileset_put(fs, others[k], o->data,
			    o->len), 0);
		}
		assert_int_equal(fileset_put(fs, path, buf, len), 0);
		free(buf);
		struct pkglist l;
		pkglist_init(&l);
		struct os_info os = {0};
		char err[256];
		int rcs[3];
		rcs[0] = catalog_dpkg(fs, &l, (err[0] = 0, err), sizeof(err));
		if (rcs[0] != 0)
			assert_non_null(strstr(err, "var/lib/dpkg/status"));
		rcs[1] = catalog_apk(fs, &l, (err[0] = 0, err), sizeof(err));
		if (rcs[1] != 0)
			assert_non_null(strstr(err, "lib/apk/db/installed:"));
		rcs[2] = catalog_os(fs, &os, (err[0] = 0, err), sizeof(err));
		if (rcs[2] != 0)
			assert_non_null(strstr(err, "etc/os-release:"));
		for (int k = 0; k < 3; k++)
			assert_true(rcs[k] == 0 || rcs[k] == -EINVAL);
		for (size_t k = 0; k < l.n; k++) {
			assert_non_null(l.pkgs[k].name);
			assert_non_null(l.pkgs[k].version);
		}
		pkglist_free(&l);
		os_info_free(&os);
		fileset_free(fs);
	}
	fileset_free(good);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The machine's own dpkg database, read through dirscan from "/", gives
 * exactly the (name, version, arch) that dpkg-query lists as installed
 * ("ii", and "hi": held packages are installed too).
 */
static void
test_host_dpkg_matches_dpkg_query(void **state)
{
	(void)state;
	if (system("command -v dpkg-query >/dev/null 2>&1") != 0) {
		printf("SKIP: dpkg-query is absent\n");
		skip();
	}
	FILE *p = popen("dpkg-query -W -f "
	    "'${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\\n'",
	    "r");
	assert_non_null(p);
	size_t nq = 0, capq = 256;
	char **q = malloc(capq * sizeof(char *));
	char line[1024];
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!((line[0] == 'i' || line[0] == 'h') && line[1] == 'i'))
			continue;
		char *bar = strchr(line, '|');
		assert_non_null(bar);
		if (nq == capq)
			q = realloc(q, (capq *= 2) * sizeof(char *));
		q[nq++] = strdup(bar + 1);
	}
	assert_int_equal(pclose(p), 0);
	if (nq == 0) {
		free(q);
		printf("SKIP: dpkg-query lists no installed package\n");
		skip();
	}

	fileset *fs = fileset_new();
	char err[512] = "";
	int rc = dirscan_load(fs, "/", err, sizeof(err));
	if (rc != 0)
		fail_msg("dirscan_load /: %d %s", rc, err);
	assert_non_null(fileset_get(fs, "var/lib/dpkg/status"));
	struct pkglist l;
	pkglist_init(&l);
	rc = catalog_dpkg(fs, &l, err, sizeof(err));
	if (rc != 0)
		fail_msg("catalog_dpkg: %d %s", rc, err);
	char **g = malloc((l.n + 1) * sizeof(char *));
	size_t nlic = 0;
	for (size_t i = 0; i < l.n; i++) {
		const struct pkg *k = &l.pkgs[i];
		size_t n = strlen(k->name) + strlen(k->version) +
		    (k->arch ? strlen(k->arch) : 0) + 3;
		g[i] = malloc(n);
		snprintf(g[i], n, "%s|%s|%s", k->name, k->version,
		    k->arch ? k->arch : "");
		nlic += k->nlicenses > 0;
	}
	qsort(q, nq, sizeof(char *), cmp_str);
	qsort(g, l.n, sizeof(char *), cmp_str);
	size_t i = 0, j = 0, diffs = 0;
	while (i < nq || j < l.n) {
		int c = i == nq ? 1 : j == l.n ? -1 : strcmp(q[i], g[j]);
		if (c < 0)
			printf("only in dpkg-query: %s\n", q[i++]), diffs++;
		else if (c > 0)
			printf("only in sbomd: %s\n", g[j++]), diffs++;
		else
			i++, j++;
	}
	printf("host: %zu installed packages, %zu with licenses\n", l.n, nlic);
	assert_int_equal(diffs, 0);
	assert_int_equal(nq, l.n);
	for (i = 0; i < nq; i++)
		free(q[i]);
	for (j = 0; j < l.n; j++)
		free(g[j]);
	free(q);
	free(g);
	pkglist_free(&l);
	fileset_free(fs);
}

/*
 * The package list's bound and cancel flag as the catalogers see them:
 * past the bound packages are counted, not kept (the dpkg ones after
 * removing duplicates); a set flag stops dpkg and apk at line
 * PKGLIST_POLL_EVERY.
 */
static void
test_bound_and_cancel(void **state)
{
	(void)state;
	char err[256], want[128];
	size_t n = 3000, cap = n * 64 + 1, used = 0, aused = 0;
	char *status = malloc(cap), *apk = malloc(cap);
	assert_non_null(status);
	assert_non_null(apk);
	for (size_t i = 0; i < n; i++) {
		used += (size_t)snprintf(status + used, cap - used,
		    "Package: p%zu\nStatus: install ok installed\n"
		    "Version: 1\n\n", i);
		aused += (size_t)snprintf(apk + aused, cap - aused,
		    "P:a%zu\nV:1\n\n", i);
	}
	fileset *fs = fileset_new();
	put(fs, "var/lib/dpkg/status", status);
	/* p0 again: a duplicate, counted once */
	put(fs, "var/lib/dpkg/status.d/p0", "Package: p0\nVersion: 1\n");
	put(fs, "lib/apk/db/installed", apk);
	free(status);
	free(apk);

	struct pkglist l;
	pkglist_init(&l);
	pkglist_limit(&l, 2000, NULL);
	assert_int_equal(catalog_dpkg(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2000);
	assert_int_equal(l.total, n);
	assert_true(pkglist_over(&l));
	assert_int_equal(catalog_apk(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2000);
	assert_int_equal(l.total, 2 * n);
	pkglist_free(&l);
	/* past twice the bound dpkg only counts: the duplicate twice */
	pkglist_init(&l);
	pkglist_limit(&l, 100, NULL);
	assert_int_equal(catalog_dpkg(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 100);
	assert_int_equal(l.total, n + 1);
	pkglist_free(&l);

	atomic_int cancel = 1;
	pkglist_init(&l);
	pkglist_limit(&l, 0, &cancel);
	assert_false(pkglist_over(&l));
	assert_int_equal(catalog_dpkg(fs, &l, err, sizeof(err)), -ECANCELED);
	snprintf(want, sizeof(want), "var/lib/dpkg/status:%d: cancelled",
	    PKGLIST_POLL_EVERY);
	assert_string_equal(err, want);
	assert_int_equal(catalog_apk(fs, &l, err, sizeof(err)), -ECANCELED);
	snprintf(want, sizeof(want), "lib/apk/db/installed:%d: cancelled",
	    PKGLIST_POLL_EVERY);
	assert_string_equal(err, want);
	pkglist_free(&l);
	fileset_free(fs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_and_cancel),
		cmocka_unit_test(test_dpkg),
		cmocka_unit_test(test_dpkg_copyright_nul),
		cmocka_unit_test(test_dpkg_malformed),
		cmocka_unit_test(test_apk),
		cmocka_unit_test(test_os_release),
		cmocka_unit_test(test_debian_point_release),
		cmocka_unit_test(test_corrupt_never_crash),
		cmocka_unit_test(test_host_dpkg_matches_dpkg_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
