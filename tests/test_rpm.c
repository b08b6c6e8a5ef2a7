/*
 * test_rpm: the rpm header parser and the rpm cataloger.
 *
 * Header blobs are built here byte by byte (a valid one, then every
 * prefix of it, and targeted corruptions: il/dl huge, offsets out of
 * range, unterminated strings, bad region trailer, misaligned numbers,
 * plus seeded random byte flips) and must parse to the right values or
 * give -EINVAL, never crash. SQLite rpmdbs are written with the sqlite3
 * API (hand-made blobs, a bad row, a Packages view, a non-database), and
 * a real one with Debian's rpm: rpmbuild -bb of specs written here, then
 * rpm -i --justdb into a fresh --dbpath (skipped with a message when rpm
 * or rpmbuild is missing). Berkeley DB / ndb files give -ENOTSUP.
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
#include <unistd.h>

#include <sqlite3.h>

#include "scan/catalog/catalog.h"
#include "scan/catalog/rpmheader.h"
#include "scan/fileset.h"
#include "testutil.h"

/* ---- building header blobs ---- */

struct hb_entry {
	uint32_t tag, type, offset, count;
};

struct hb {
	struct hb_entry e[32];
	size_t n;
	unsigned char data[4096];
	size_t dl;
};

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
hb_add(struct hb *h, uint32_t tag, uint32_t type, const void *d, size_t len,
    uint32_t count, size_t align)
{
	while (h->dl % align != 0)
		h->data[h->dl++] = 0;
	h->e[h->n++] = (struct hb_entry){ tag, type, (uint32_t)h->dl, count };
	memcpy(h->data + h->dl, d, len);
	h->dl += len;
}

static void
hb_str(struct hb *h, uint32_t tag, const char *s)
{
	hb_add(h, tag, 6, s, strlen(s) + 1, 1, 1);
}

static void
hb_i32(struct hb *h, uint32_t tag, uint32_t v)
{
	unsigned char b[4];
	be32(b, v);
	hb_add(h, tag, 4, b, 4, 1, 4);
}

/* Adds the immutable region (entry 0 + trailer) like rpm does. */
static void
hb_region(struct hb *h)
{
	memmove(&h->e[1], &h->e[0], h->n * sizeof(h->e[0]));
	h->n++;
	h->e[0] = (struct hb_entry){ RPMTAG_HEADERIMMUTABLE, 7,
		(uint32_t)h->dl, 16 };
	unsigned char t[16];
	be32(t, RPMTAG_HEADERIMMUTABLE);
	be32(t + 4, 7);
	be32(t + 8, (uint32_t)-(int32_t)(h->n * 16));
	be32(t + 12, 16);
	memcpy(h->data + h->dl, t, 16);
	h->dl += 16;
}

/* Serialises h into a malloc'ed blob; *len its size. */
static unsigned char *
hb_blob(const struct hb *h, size_t *len)
{
	*len = 8 + 16 * h->n + h->dl;
	unsigned char *b = malloc(*len);
	assert_non_null(b);
	be32(b, (uint32_t)h->n);
	be32(b + 4, (uint32_t)h->dl);
	for (size_t i = 0; i < h->n; i++) {
		unsigned char *p = b + 8 + 16 * i;
		be32(p, h->e[i].tag);
		be32(p + 4, h->e[i].type);
		be32(p + 8, h->e[i].offset);
		be32(p + 12, h->e[i].count);
	}
	memcpy(b + 8 + 16 * h->n, h->data, h->dl);
	return b;
}

static void
hb_valid(struct hb *h, const char *name, int with_epoch)
{
	memset(h, 0, sizeof(*h));
	hb_str(h, RPMTAG_NAME, name);
	hb_str(h, RPMTAG_VERSION, "1.2.3");
	hb_str(h, RPMTAG_RELEASE, "4.el9");
	if (with_epoch)
		hb_i32(h, RPMTAG_EPOCH, 2);
	hb_str(h, RPMTAG_LICENSE, "MIT and BSD");
	hb_str(h, RPMTAG_ARCH, "x86_64");
	hb_str(h, RPMTAG_SOURCERPM, "hello-src-1.2.3-4.el9.src.rpm");
	/* a string array, as rpm has for e.g. PROVIDENAME */
	hb_add(h, 1047, 8, "a\0bb\0", 5, 2, 1);
	hb_region(h);
}

static void
test_header_valid(void **state)
{
	(void)state;
	struct hb h;
	hb_valid(&h, "hello", 1);
	size_t len;
	unsigned char *b = hb_blob(&h, &len);
	rpmheader *r = NULL;
	char err[256] = "";
	assert_int_equal(rpmheader_parse(b, len, &r, err, sizeof(err)), 0);
	assert_int_equal(rpmheader_count(r), h.n);
	assert_string_equal(rpmheader_string(r, RPMTAG_NAME), "hello");
	assert_string_equal(rpmheader_string(r, RPMTAG_VERSION), "1.2.3");
	assert_string_equal(rpmheader_string(r, RPMTAG_RELEASE), "4.el9");
	assert_string_equal(rpmheader_string(r, 1047), "a");
	uint32_t v = 0;
	assert_true(rpmheader_int32(r, RPMTAG_EPOCH, &v));
	assert_int_equal(v, 2);
	/* wrong type or absent */
	assert_null(rpmheader_string(r, RPMTAG_EPOCH));
	assert_false(rpmheader_int32(r, RPMTAG_NAME, &v));
	assert_null(rpmheader_string(r, 4242));
	rpmheader_free(r);
	free(b);
}

static int
parse_rc(const unsigned char *b, size_t len, char *err, size_t errlen)
{
	rpmheader *r = NULL;
	int rc = rpmheader_parse(b, len, &r, err, errlen);
	if (rc == 0) {
		assert_non_null(r);
		const uint32_t tags[] = { RPMTAG_NAME, RPMTAG_VERSION,
			RPMTAG_RELEASE, RPMTAG_LICENSE, RPMTAG_ARCH,
			RPMTAG_SOURCERPM, 1047 };
		for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
			const char *s = rpmheader_string(r, tags[i]);
			if (s != NULL) /* ASan checks it lies in the blob */
				assert_true(strlen(s) < len);
		}
		uint32_t v;
		(void)rpmheader_int32(r, RPMTAG_EPOCH, &v);
	} else {
		assert_int_equal(rc, -EINVAL);
		assert_null(r);
		assert_non_null(strstr(err, "at byte"));
	}
	rpmheader_free(r);
	return rc;
}

/* Parses a copy of exactly len bytes, so ASan sees any overread. */
static int
parse_exact(const unsigned char *b, size_t len, char *err, size_t errlen)
{
	unsigned char *c = malloc(len ? len : 1);
	assert_non_null(c);
	memcpy(c, b, len);
	int rc = parse_rc(c, len, err, errlen);
	free(c);
	return rc;
}

static void
expect_bad(const struct hb *h, const char *what)
{
	size_t len;
	unsigned char *b = hb_blob(h, &len);
	char err[256] = "";
	assert_int_equal(parse_exact(b, len, err, sizeof(err)), -EINVAL);
	printf("%s -> %s\n", what, err);
	free(b);
}

static void
test_header_malformed(void **state)
{
	(void)state;
	struct hb h;
	size_t len;
	char err[256];

	/* every proper prefix of a valid blob */
	hb_valid(&h, "hello", 1);
	unsigned char *b = hb_blob(&h, &len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(parse_exact(b, i, err, sizeof(err)), -EINVAL);
	/* a trailing byte is refused too */
	unsigned char *longer = calloc(1, len + 1);
	memcpy(longer, b, len);
	assert_int_equal(parse_exact(longer, len + 1, err, sizeof(err)),
	    -EINVAL);
	free(longer);

	/* il huge, il 0, dl huge: intro fields */
	unsigned char *c = malloc(len);
	memcpy(c, b, len);
	be32(c, 0xffffffffu);
	assert_int_equal(parse_exact(c, len, err, sizeof(err)), -EINVAL);
	printf("il huge -> %s\n", err);
	be32(c, 0x10000u);
	assert_int_equal(parse_exact(c, len, err, sizeof(err)), -EINVAL);
	be32(c, 0);
	assert_int_equal(parse_exact(c, len, err, sizeof(err)), -EINVAL);
	memcpy(c, b, len);
	be32(c + 4, 0x7fffffffu);
	assert_int_equal(parse_exact(c, len, err, sizeof(err)), -EINVAL);
	printf("dl huge -> %s\n", err);
	free(c);
	free(b);

	hb_valid(&h, "hello", 1);
	h.e[1].offset = (uint32_t)h.dl; /* NAME at the end of the data */
	expect_bad(&h, "offset == dl");
	hb_valid(&h, "hello", 1);
	h.e[1].offset = 0xfffffff0u;
	expect_bad(&h, "offset huge");

	/* string without NUL: the last string runs to the end */
	memset(&h, 0, sizeof(h));
	hb_str(&h, RPMTAG_NAME, "x");
	hb_add(&h, RPMTAG_VERSION, 6, "1.0", 3, 1, 1);
	expect_bad(&h, "unterminated string");

	hb_valid(&h, "hello", 1);
	h.e[2].count = 2;
	expect_bad(&h, "STRING count 2");
	hb_valid(&h, "hello", 1);
	h.e[2].count = 0;
	expect_bad(&h, "count 0");
	hb_valid(&h, "hello", 1);
	h.e[2].type = 10;
	expect_bad(&h, "type 10");
	hb_valid(&h, "hello", 1);
	h.e[8].count = 1000000; /* string array: more strings than bytes */
	expect_bad(&h, "array count huge");

	/* INT32 misaligned, and running past the data */
	hb_valid(&h, "hello", 1);
	h.e[4].offset += 1;
	expect_bad(&h, "misaligned int32");
	hb_valid(&h, "hello", 1);
	h.e[4].count = 0x40000000u;
	expect_bad(&h, "int32 count past data");

	/* region: wrong type, count, trailer outside, trailer offset */
	hb_valid(&h, "hello", 1);
	h.e[0].type = 6;
	expect_bad(&h, "region type");
	hb_valid(&h, "hello", 1);
	h.e[0].count = 8;
	expect_bad(&h, "region count");
	hb_valid(&h, "hello", 1);
	h.e[0].offset = (uint32_t)h.dl - 8;
	expect_bad(&h, "region trailer outside");
	hb_valid(&h, "hello", 1);
	be32(h.data + h.e[0].offset + 8, (uint32_t)-(int32_t)(100 * 16));
	expect_bad(&h, "region trailer il");
	hb_valid(&h, "hello", 1);
	be32(h.data + h.e[0].offset, RPMTAG_NAME);
	expect_bad(&h, "region trailer tag");

	/* no data at all, but entries */
	unsigned char z[8 + 16] = { 0, 0, 0, 1, 0, 0, 0, 0 };
	be32(z + 8, RPMTAG_NAME);
	be32(z + 12, 6);
	be32(z + 20, 1);
	assert_int_equal(parse_exact(z, sizeof(z), err, sizeof(err)), -EINVAL);
}

static void
test_header_random(void **state)
{
	(void)state;
	struct hb h;
	size_t len;
	hb_valid(&h, "hello", 1);
	unsigned char *b = hb_blob(&h, &len);
	unsigned char *c = malloc(len);
	char err[256];
	size_t ok = 0;
	rng_seed(0x7270u);
	for (int iter = 0; iter < 20000; iter++) {
		memcpy(c, b, len);
		int flips = 1 + (int)rng_below(4);
		for (int k = 0; k < flips; k++)
			c[rng_below(len)] ^= (unsigned char)(1u << rng_below(8));
		size_t cut = rng_below(8) == 0 ? rng_below(len + 1) : len;
		if (parse_exact(c, cut, err, sizeof(err)) == 0)
			ok++;
	}
	printf("random corruptions: %zu of 20000 still parse\n", ok);
	free(c);
	free(b);
}

/* ---- SQLite rpmdbs ---- */

static char tmpdir[] = "/tmp/sbomd-test-rpm-XXXXXX";

static int
setup_tmp(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* Writes an rpmdb-shaped sqlite file with the given blobs; wal sets WAL. */
static void
make_db(const char *path, unsigned char **blobs, size_t *lens, size_t n,
    int wal)
{
	sqlite3 *db;
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (wal)
		exec_sql(db, "PRAGMA journal_mode=WAL");
	exec_sql(db, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY "
	    "AUTOINCREMENT, blob BLOB NOT NULL)");
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
	    "INSERT INTO Packages (blob) VALUES (?)", -1, &st, NULL),
	    SQLITE_OK);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_blob(st, 1, blobs[i], (int)lens[i],
		    SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void
put_file(fileset *fs, const char *fspath, const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static unsigned char buf[8u << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	assert_true(n < sizeof(buf));
	fclose(f);
	assert_int_equal(fileset_put(fs, fspath, buf, n), 0);
}

static const struct pkg *
find(const struct pkglist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->pkgs[i].name, name) == 0)
			return &l->pkgs[i];
	return NULL;
}

static void
test_catalog_handmade(void **state)
{
	(void)state;
	struct hb h;
	unsigned char *blobs[3];
	size_t lens[3];
	char path[256], err[512] = "";
	snprintf(path, sizeof(path), "%s/hand.sqlite", tmpdir);

	hb_valid(&h, "hello", 1);
	blobs[0] = hb_blob(&h, &lens[0]);
	hb_valid(&h, "hello-src", 0);
	blobs[1] = hb_blob(&h, &lens[1]);

	for (int wal = 0; wal <= 1; wal++) {
		make_db(path, blobs, lens, 2, wal);
		fileset *fs = fileset_new();
		put_file(fs, "var/lib/rpm/rpmdb.sqlite", path);
		struct pkglist l;
		pkglist_init(&l);
		assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)), 0);
		assert_int_equal(l.n, 2);
		const struct pkg *p = find(&l, "hello");
		assert_non_null(p);
		assert_int_equal(p->type, PKG_RPM);
		assert_string_equal(p->version, "1.2.3");
		assert_string_equal(p->release, "4.el9");
		assert_string_equal(p->epoch, "2");
		assert_string_equal(p->arch, "x86_64");
		assert_string_equal(p->source_name, "hello-src");
		assert_null(p->source_version);
		assert_int_equal(p->nlicenses, 1);
		assert_string_equal(p->licenses[0], "MIT and BSD");
		assert_null(p->licenses[1]);
		p = find(&l, "hello-src");
		assert_non_null(p);
		assert_null(p->epoch);
		assert_null(p->source_name); /* same as name */
		pkglist_free(&l);
		fileset_free(fs);
	}

	/* a bad second row: -EINVAL naming the file and the row */
	blobs[2] = malloc(lens[0]);
	memcpy(blobs[2], blobs[0], lens[0]);
	be32(blobs[2] + 8 + 16 + 8, 0xfffffff0u); /* NAME offset */
	unsigned char *bad[2] = { blobs[0], blobs[2] };
	size_t badlen[2] = { lens[0], lens[0] };
	make_db(path, bad, badlen, 2, 1);
	fileset *fs = fileset_new();
	put_file(fs, "usr/lib/sysimage/rpm/rpmdb.sqlite", path);
	struct pkglist l;
	pkglist_init(&l);
	assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)), -EINVAL);
	printf("bad row -> %s\n", err);
	assert_non_null(strstr(err, "usr/lib/sysimage/rpm/rpmdb.sqlite"));
	assert_non_null(strstr(err, "hnum 2"));
	assert_non_null(strstr(err, "at byte 32"));
	pkglist_free(&l);
	fileset_free(fs);
	for (int i = 0; i < 3; i++)
		free(blobs[i]);
}

static int
catalog_file(const char *path, char *err, size_t errlen, size_t *n)
{
	fileset *fs = fileset_new();
	put_file(fs, "var/lib/rpm/rpmdb.sqlite", path);
	struct pkglist l;
	pkglist_init(&l);
	int rc = catalog_rpm(fs, &l, err, errlen);
	*n = l.n;
	pkglist_free(&l);
	fileset_free(fs);
	return rc;
}

static void
test_catalog_not_rpmdb(void **state)
{
	(void)state;
	char path[256], err[512];
	size_t n;
	snprintf(path, sizeof(path), "%s/odd.sqlite", tmpdir);

	/* a Packages view (could hide a recursive query) */
	sqlite3 *db;
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS "
	    "(SELECT 1 UNION ALL SELECT x + 1 FROM c) "
	    "SELECT x AS hnum, x AS blob FROM c");
	sqlite3_close(db);
	assert_int_equal(catalog_file(path, err, sizeof(err), &n), -EINVAL);
	printf("view -> %s\n", err);

	/* no Packages at all */
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE Other (x)");
	sqlite3_close(db);
	assert_int_equal(catalog_file(path, err, sizeof(err), &n), -EINVAL);
	assert_non_null(strstr(err, "no Packages table"));

	/* blob column holding text */
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)");
	exec_sql(db, "INSERT INTO Packages VALUES (7, 'text')");
	sqlite3_close(db);
	assert_int_equal(catalog_file(path, err, sizeof(err), &n), -EINVAL);
	assert_non_null(strstr(err, "hnum 7"));

	/* empty Packages: no packages, no error */
	unlink(path);
	make_db(path, NULL, NULL, 0, 1);
	assert_int_equal(catalog_file(path, err, sizeof(err), &n), 0);
	assert_int_equal(n, 0);

	/* not a database */
	fileset *fs = fileset_new();
	assert_int_equal(fileset_put(fs, "var/lib/rpm/rpmdb.sqlite",
	    "hello", 5), 0);
	struct pkglist l;
	pkglist_init(&l);
	assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "var/lib/rpm/rpmdb.sqlite"));
	pkglist_free(&l);
	fileset_free(fs);

	/* truncated and corrupted copies of a real database never crash */
	struct hb h;
	unsigned char *blobs[1];
	size_t lens[1];
	hb_valid(&h, "hello", 1);
	blobs[0] = hb_blob(&h, &lens[0]);
	make_db(path, blobs, lens, 1, 1);
	free(blobs[0]);
	FILE *f = fopen(path, "rb");
	static unsigned char buf[1 << 20], c[1 << 20];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	rng_seed(0x5a17);
	int errors = 0;
	for (int iter = 0; iter < 300; iter++) {
		memcpy(c, buf, len);
		size_t cut = iter % 3 == 0 ? rng_below(len) : len;
		for (int k = 0; k < 8; k++)
			c[100 + rng_below(len - 100)] ^= (unsigned char)rng_next();
		fs = fileset_new();
		assert_int_equal(fileset_put(fs, "var/lib/rpm/rpmdb.sqlite",
		    c, cut), 0);
		pkglist_init(&l);
		int rc = catalog_rpm(fs, &l, err, sizeof(err));
		assert_true(rc == 0 || rc == -EINVAL);
		errors += rc != 0;
		pkglist_free(&l);
		fileset_free(fs);
	}
	printf("corrupt databases: %d of 300 rejected\n", errors);
}

static void
test_catalog_unsupported(void **state)
{
	(void)state;
	const char *paths[] = { "var/lib/rpm/Packages",
		"var/lib/rpm/Packages.db" };
	const char *fmt[] = { "Berkeley DB", "ndb" };
	char err[512];
	for (int i = 0; i < 2; i++) {
		fileset *fs = fileset_new();
		assert_int_equal(fileset_put(fs, paths[i], "\0\0\0\0", 4), 0);
		struct pkglist l;
		pkglist_init(&l);
		assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)),
		    -ENOTSUP);
		printf("%s\n", err);
		assert_non_null(strstr(err, paths[i]));
		assert_non_null(strstr(err, fmt[i]));
		assert_non_null(strstr(err, "rpm >= 4.16"));
		assert_int_equal(l.n, 0);
		pkglist_free(&l);
		fileset_free(fs);
	}
	assert_int_equal(strcmp(err, "rpm database var/lib/rpm/Packages.db is "
	    "ndb, which sbomd does not read (only the SQLite rpmdb of rpm "
	    ">= 4.16)"), 0);

	/* nothing rpm at all: no packages, no error */
	fileset *fs = fileset_new();
	struct pkglist l;
	pkglist_init(&l);
	assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	fileset_free(fs);
}

/* ---- a real rpmdb from Debian's rpm ---- */

static int
have_tool(const char *name)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static void
write_text(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static void
run(const char *cmd)
{
	printf("+ %s\n", cmd);
	fflush(stdout);
	int rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
}

static void
test_real_rpmdb(void **state)
{
	(void)state;
	if (!have_tool("rpm") || !have_tool("rpmbuild")) {
		printf("SKIP test_real_rpmdb: rpm/rpmbuild not installed "
		    "(Debian package rpm; scripts/setup.sh installs it)\n");
		skip();
	}
	char top[256], path[512], cmd[2048];
	snprintf(top, sizeof(top), "%s/top", tmpdir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/SPECS %s/db", top, tmpdir);
	run(cmd);
	snprintf(path, sizeof(path), "%s/SPECS/hello.spec", top);
	write_text(path,
	    "Name: hello-sbomd\n"
	    "Epoch: 2\n"
	    "Version: 1.2.3\n"
	    "Release: 4.el9\n"
	    "Summary: sbomd test package\n"
	    "License: MIT and BSD\n"
	    "BuildArch: noarch\n"
	    "%description\nA test.\n"
	    "%package libs\n"
	    "Summary: its library\n"
	    "License: LGPL-2.1-or-later\n"
	    "%description libs\nA test library.\n"
	    "%files\n"
	    "%files libs\n");
	snprintf(path, sizeof(path), "%s/SPECS/other.spec", top);
	write_text(path,
	    "Name: other\n"
	    "Version: 0.9\n"
	    "Release: 1\n"
	    "Summary: sbomd test package without epoch\n"
	    "License: GPL-2.0-only\n"
	    "%description\nAnother test.\n"
	    "%files\n");
	snprintf(cmd, sizeof(cmd),
	    "cd %s && for s in hello other; do rpmbuild -bb --quiet "
	    "--target x86_64 --define '_topdir %s' --define '_dbpath %s/db' "
	    "SPECS/$s.spec >/dev/null 2>&1 || exit 1; done", top, top,
	    tmpdir);
	run(cmd);
	snprintf(cmd, sizeof(cmd),
	    "rpm --dbpath %s/db --initdb && rpm --dbpath %s/db -i --justdb "
	    "--nodeps --noscripts --nosignature --ignorearch --ignoreos "
	    "$(find %s/RPMS -name '*.rpm') 2>/dev/null && "
	    "rpm --dbpath %s/db -qa --qf '%%{NAME} %%{EPOCH} %%{VERSION} "
	    "%%{RELEASE} %%{ARCH} %%{SOURCERPM}\\n'",
	    tmpdir, tmpdir, top, tmpdir);
	run(cmd);

	snprintf(path, sizeof(path), "%s/db/rpmdb.sqlite", tmpdir);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char hdr[20];
	assert_int_equal(fread(hdr, 1, 20, f), 20);
	fclose(f);
	printf("rpmdb.sqlite header bytes 18,19: %d,%d (2 = WAL)\n", hdr[18],
	    hdr[19]);

	fileset *fs = fileset_new();
	put_file(fs, "var/lib/rpm/rpmdb.sqlite", path);
	struct pkglist l;
	pkglist_init(&l);
	char err[512] = "";
	int rc = catalog_rpm(fs, &l, err, sizeof(err));
	if (rc != 0)
		fail_msg("catalog_rpm: %d %s", rc, err);
	assert_int_equal(l.n, 3);

	const struct pkg *p = find(&l, "hello-sbomd");
	assert_non_null(p);
	assert_int_equal(p->type, PKG_RPM);
	assert_string_equal(p->version, "1.2.3");
	assert_string_equal(p->release, "4.el9");
	assert_string_equal(p->epoch, "2");
	assert_string_equal(p->arch, "noarch");
	assert_null(p->source_name);
	assert_null(p->source_version);
	assert_int_equal(p->nlicenses, 1);
	assert_string_equal(p->licenses[0], "MIT and BSD");

	p = find(&l, "hello-sbomd-libs");
	assert_non_null(p);
	assert_string_equal(p->epoch, "2");
	assert_string_equal(p->arch, "noarch");
	assert_str_or_null(p->source_name, "hello-sbomd");
	assert_null(p->source_version);
	assert_string_equal(p->licenses[0], "LGPL-2.1-or-later");

	p = find(&l, "other");
	assert_non_null(p);
	assert_null(p->epoch);
	assert_string_equal(p->version, "0.9");
	assert_string_equal(p->release, "1");
	assert_string_equal(p->arch, "x86_64");
	assert_null(p->source_name);
	assert_string_equal(p->licenses[0], "GPL-2.0-only");
	pkglist_free(&l);

	/* the same file where Fedora keeps it */
	fileset_free(fs);
	fs = fileset_new();
	put_file(fs, "usr/lib/sysimage/rpm/rpmdb.sqlite", path);
	assert_int_equal(fileset_put(fs, "var/lib/rpm/Packages", "x", 1), 0);
	pkglist_init(&l);
	assert_int_equal(catalog_rpm(fs, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 3);
	pkglist_free(&l);
	fileset_free(fs);

	/* the blobs themselves parse on their own, with a region */
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM Packages",
	    -1, &st, NULL), SQLITE_OK);
	int rows = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *b = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		assert_true(len > 8);
		/* entry 0 is the immutable region, as rpm writes it */
		assert_int_equal(b[8 + 3], RPMTAG_HEADERIMMUTABLE);
		assert_int_equal(parse_exact(b, len, err, sizeof(err)), 0);
		rows++;
	}
	assert_int_equal(rows, 3);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_valid),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_header_random),
		cmocka_unit_test(test_catalog_handmade),
		cmocka_unit_test(test_catalog_not_rpmdb),
		cmocka_unit_test(test_catalog_unsupported),
		cmocka_unit_test(test_real_rpmdb),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
