/*
 * rpm cataloger: the packages of an rpm-based image, from the SQLite
 * rpmdb of rpm >= 4.16 (usr/lib/sysimage/rpm/rpmdb.sqlite, else
 * var/lib/rpm/rpmdb.sqlite; the first present is read, so a distribution
 * that keeps both paths is not counted twice).
 *
 * The database is opened in memory with sqlite3_deserialize, read-only:
 * nothing is written to disk. rpm keeps its db in WAL mode, which an
 * in-memory database cannot open; for such a file (header bytes 18 and 19
 * are 2) we deserialize a private copy with those bytes set back to 1
 * (rollback journal), which is how the file reads once its WAL has been
 * checkpointed; rpm checkpoints on close, and an image holds no -wal
 * file we would read anyway. Schema (rpm lib/backend/sqlite.c):
 * Packages(hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL),
 * one header blob per installed package, parsed by rpmheader.
 *
 * The file is hostile input: it is bounded by the fileset (64 MiB); the
 * connection is defensive, with views, triggers and untrusted schema
 * functions off; Packages must be a real table; and a progress handler
 * stops a query that runs far longer than the file's size allows (a
 * corrupt b-tree) or once the scan's cancel flag is set (looked at
 * there and before every row: -ECANCELED). A header that does not validate is -EINVAL naming the
 * file and the row (hnum); so is a file that is not a database.
 *
 * Per package: name, version, release, epoch (decimal, NULL when the
 * header has none; "0" is kept as the database says), arch, licenses =
 * [LICENSE], and the source package from SOURCERPM split as Trivy does
 * ("name-ver-rel.arch.rpm", cut at the last ".", then the last two
 * "-"): source_name when it differs from name, source_version
 * ("ver-rel") when it differs from the package's version-release. A
 * SOURCERPM that does not split is ignored.
 *
 * Berkeley DB (Packages) and ndb (Packages.db) databases without a
 * SQLite one are -ENOTSUP with a message saying which file and format.
 *
 * On an error, packages before the bad one may already be in out (the
 * caller frees out either way). Single-threaded per call; SQLite itself
 * is built thread-safe, so scans may run on several threads.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "scan/catalog/catalog.h"
#include "scan/catalog/rpmheader.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

static const char *const rpm_sqlite_paths[] = {
	"usr/lib/sysimage/rpm/rpmdb.sqlite",
	"var/lib/rpm/rpmdb.sqlite",
};

static const struct {
	const char *path, *format;
} rpm_other_dbs[] = {
	{ "var/lib/rpm/Packages", "Berkeley DB" },
	{ "usr/lib/sysimage/rpm/Packages", "Berkeley DB" },
	{ "var/lib/rpm/Packages.db", "ndb" },
	{ "usr/lib/sysimage/rpm/Packages.db", "ndb" },
};

/* Progress handler: called every RPM_PROGRESS_OPS virtual-machine ops. */
#define RPM_PROGRESS_OPS 10000

struct rpm_budget {
	uint64_t left; /* handler calls before the query is interrupted */
	const atomic_int *cancel; /* the scan's; NULL: none */
};

static int
rpm_progress(void *ctx)
{
	struct rpm_budget *b = ctx;
	if (b->left == 0 || (b->cancel != NULL && atomic_load(b->cancel) != 0))
		return 1;
	b->left--;
	return 0;
}

/*
 * Splits a source rpm file name as Trivy's splitFileName does. On
 * success *name, *ver, *rel point into a copy the caller frees (*buf).
 */
static int
rpm_split_srpm(const char *srpm, char **buf, const char **name,
    const char **ver, const char **rel)
{
	size_t len = strlen(srpm);
	char *s = xstrndup(srpm, len);
	if (len >= 4 && strcmp(s + len - 4, ".rpm") == 0)
		s[len - 4] = '\0';
	char *arch = strrchr(s, '.');
	if (arch == NULL)
		goto fail;
	*arch = '\0';
	char *r = strrchr(s, '-');
	if (r == NULL)
		goto fail;
	*r = '\0';
	char *v = strrchr(s, '-');
	if (v == NULL)
		goto fail;
	*v = '\0';
	if (s[0] == '\0' || v[1] == '\0' || r[1] == '\0')
		goto fail;
	*buf = s;
	*name = s;
	*ver = v + 1;
	*rel = r + 1;
	return 0;
fail:
	free(s);
	return -EINVAL;
}

static void
rpm_set_source(struct pkg *p, const char *srpm)
{
	char *buf = NULL;
	const char *name, *ver, *rel;
	if (srpm == NULL || rpm_split_srpm(srpm, &buf, &name, &ver, &rel) != 0)
		return;
	if (strcmp(name, p->name) != 0)
		p->source_name = xstrdup(name);
	size_t n = strlen(ver) + strlen(rel) + 2;
	char *full = xmalloc(n);
	snprintf(full, n, "%s-%s", ver, rel);
	if (strcmp(ver, p->version) != 0 ||
	    strcmp(rel, p->release != NULL ? p->release : "") != 0)
		p->source_version = full;
	else
		free(full);
	free(buf);
}

/* Appends the package of one header blob (row hnum of path). */
static int
rpm_add_blob(const char *path, sqlite3_int64 hnum, const void *blob,
    size_t len, struct pkglist *out, char *err, size_t errlen)
{
	rpmheader *h = NULL;
	char why[192];
	int rc = rpmheader_parse(blob, len, &h, why, sizeof(why));
	if (rc != 0) {
		errbuf_set(err, errlen, "%s: package hnum %lld: %s", path,
		    (long long)hnum, why);
		return rc;
	}
	const char *name = rpmheader_string(h, RPMTAG_NAME);
	const char *version = rpmheader_string(h, RPMTAG_VERSION);
	const char *release = rpmheader_string(h, RPMTAG_RELEASE);
	if (name == NULL || name[0] == '\0' || version == NULL ||
	    version[0] == '\0' || release == NULL) {
		errbuf_set(err, errlen,
		    "%s: package hnum %lld: header lacks %s", path,
		    (long long)hnum,
		    name == NULL || name[0] == '\0' ? "NAME" :
		    version == NULL || version[0] == '\0' ? "VERSION" :
		    "RELEASE");
		rc = -EINVAL;
		goto out;
	}
	struct pkg *p = pkglist_add(out);
	p->type = PKG_RPM;
	p->name = xstrdup(name);
	p->version = xstrdup(version);
	p->release = xstrdup(release);
	uint32_t epoch;
	if (rpmheader_int32(h, RPMTAG_EPOCH, &epoch)) {
		char num[16];
		snprintf(num, sizeof(num), "%" PRIu32, epoch);
		p->epoch = xstrdup(num);
	}
	const char *arch = rpmheader_string(h, RPMTAG_ARCH);
	if (arch != NULL && arch[0] != '\0')
		p->arch = xstrdup(arch);
	const char *lic = rpmheader_string(h, RPMTAG_LICENSE);
	if (lic != NULL && lic[0] != '\0') {
		p->licenses = xcalloc(2, sizeof(*p->licenses));
		p->licenses[0] = xstrdup(lic);
		p->nlicenses = 1;
	} else
		p->licenses = xcalloc(1, sizeof(*p->licenses));
	rpm_set_source(p, rpmheader_string(h, RPMTAG_SOURCERPM));
	rc = 0;
out:
	rpmheader_free(h);
	return rc;
}

static int
rpm_sqlite_err(const char *path, sqlite3 *db, const char *what, char *err,
    size_t errlen)
{
	errbuf_set(err, errlen, "%s: %s: %s", path, what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return -EINVAL;
}

/*
 * Opens f as a read-only in-memory database (a WAL file through a copy:
 * see the top), defensive, and interrupted once it has spent *budget.
 * *db is set even on failure (close it).
 */
static int
rpm_open(const struct fileset_file *f, struct rpm_budget *budget,
    sqlite3 **db, char *err, size_t errlen)
{
	unsigned char *copy = NULL; /* owned by db once deserialized */
	unsigned char *bytes = (unsigned char *)(uintptr_t)f->data;

	*db = NULL;
	if (f->len < 100 || memcmp(f->data, "SQLite format 3", 16) != 0) {
		errbuf_set(err, errlen, "%s: not a SQLite database", f->path);
		return -EINVAL;
	}
	if (f->len > FILESET_MAX_FILE) { /* the fileset bounds it already */
		errbuf_set(err, errlen, "%s: %zu bytes, more than %u", f->path,
		    f->len, FILESET_MAX_FILE);
		return -EFBIG;
	}
	if (sqlite3_open_v2(":memory:", db, SQLITE_OPEN_READWRITE,
	    NULL) != SQLITE_OK)
		return rpm_sqlite_err(f->path, *db, "open", err, errlen);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, (int *)NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, (int *)NULL);
	sqlite3_limit(*db, SQLITE_LIMIT_LENGTH, (int)FILESET_MAX_FILE);

	/* WAL (18, 19 == 2) cannot be read in memory: see the top. */
	if (f->data[18] == 2 || f->data[19] == 2) {
		copy = sqlite3_malloc64(f->len);
		if (copy == NULL) {
			fprintf(stderr, "sbomd: out of memory (%zu bytes)\n",
			    f->len);
			abort();
		}
		memcpy(copy, f->data, f->len);
		copy[18] = copy[19] = 1;
		bytes = copy;
	}
	unsigned flags = SQLITE_DESERIALIZE_READONLY |
	    (copy != NULL ? SQLITE_DESERIALIZE_FREEONCLOSE : 0);
	/* copy is freed by SQLite, even when deserialize fails */
	if (sqlite3_deserialize(*db, "main", bytes, (sqlite3_int64)f->len,
	    (sqlite3_int64)f->len, flags) != SQLITE_OK)
		return rpm_sqlite_err(f->path, *db, "deserialize", err,
		    errlen);
	/* About 64 ops per byte of file, and never under 10^8 ops. */
	budget->left = ((uint64_t)f->len * 64 + 100000000u) / RPM_PROGRESS_OPS;
	sqlite3_progress_handler(*db, RPM_PROGRESS_OPS, rpm_progress, budget);
	return 0;
}

/* Whether Packages is a real table: -EINVAL when not. */
static int
rpm_check_schema(const char *path, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
	    "SELECT type FROM sqlite_schema WHERE name = 'Packages'", -1, &st,
	    NULL) != SQLITE_OK)
		return rpm_sqlite_err(path, db, "reading the schema", err,
		    errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "table") == 0) {
		rc = 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		errbuf_set(err, errlen, "%s: no Packages table: not an rpmdb",
		    path);
		rc = -EINVAL;
	} else {
		rc = rpm_sqlite_err(path, db, "reading the schema", err,
		    errlen);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Appends the package of every row of Packages. */
static int
rpm_read_rows(const char *path, sqlite3 *db, struct pkglist *out, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT hnum, blob FROM Packages", -1,
	    &st, NULL) != SQLITE_OK)
		return rpm_sqlite_err(path, db, "reading Packages", err,
		    errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 hnum = sqlite3_column_int64(st, 0);
		if (pkglist_cancelled(out)) {
			errbuf_set(err, errlen, "%s: cancelled", path);
			rc = -ECANCELED;
			goto out;
		}
		/* The type first: reading the value may convert it. */
		bool isblob = sqlite3_column_type(st, 1) == SQLITE_BLOB;
		const void *blob = isblob ? sqlite3_column_blob(st, 1) : NULL;
		int blen = isblob ? sqlite3_column_bytes(st, 1) : 0;
		const char *bad = !isblob ? "blob is not a BLOB" :
		    blob == NULL || blen <= 0 ? "empty header blob" : NULL;
		if (bad != NULL) {
			errbuf_set(err, errlen, "%s: package hnum %lld: %s",
			    path, (long long)hnum, bad);
			rc = -EINVAL;
			goto out;
		}
		if ((rc = rpm_add_blob(path, hnum, blob, (size_t)blen, out,
			 err, errlen)) != 0)
			goto out;
	}
	if (rc == SQLITE_INTERRUPT && pkglist_cancelled(out)) {
		errbuf_set(err, errlen, "%s: cancelled", path);
		rc = -ECANCELED;
		goto out;
	}
	if (rc != SQLITE_DONE) {
		rc = rpm_sqlite_err(path, db,
		    rc == SQLITE_INTERRUPT ? "query interrupted after its "
		    "budget (corrupt database?)" : "reading Packages", err,
		    errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
rpm_read_sqlite(const struct fileset_file *f, struct pkglist *out,
    char *err, size_t errlen)
{
	struct rpm_budget budget;
	sqlite3 *db = NULL;
	int rc;

	budget.cancel = out->cancel;
	if ((rc = rpm_open(f, &budget, &db, err, errlen)) == 0 &&
	    (rc = rpm_check_schema(f->path, db, err, errlen)) == 0)
		rc = rpm_read_rows(f->path, db, out, err, errlen);
	sqlite3_close(db);
	return rc;
}

int
catalog_rpm(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen)
{
	for (size_t i = 0; i < sizeof(rpm_sqlite_paths) /
	    sizeof(rpm_sqlite_paths[0]); i++) {
		const struct fileset_file *f = fileset_get(fs,
		    rpm_sqlite_paths[i]);
		if (f != NULL)
			return rpm_read_sqlite(f, out, err, errlen);
	}
	for (size_t i = 0; i < sizeof(rpm_other_dbs) /
	    sizeof(rpm_other_dbs[0]); i++) {
		if (fileset_get(fs, rpm_other_dbs[i].path) == NULL)
			continue;
		errbuf_set(err, errlen,
		    "rpm database %s is %s, which sbomd does not read (only "
		    "the SQLite rpmdb of rpm >= 4.16)", rpm_other_dbs[i].path,
		    rpm_other_dbs[i].format);
		return -ENOTSUP;
	}
	return 0;
}
