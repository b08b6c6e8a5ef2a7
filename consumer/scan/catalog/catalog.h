/*
 * catalog: the OS packages of an image or host, read from its fileset.
 * One cataloger per package database: dpkg (status and distroless
 * status.d, licenses from DEP-5 copyright files), apk (installed), rpm
 * (SQLite rpmdb header blobs); and the OS from os-release.
 */
#ifndef SBOMD_SCAN_CATALOG_H
#define SBOMD_SCAN_CATALOG_H

#include <stddef.h>

#include "scan/fileset.h"

enum pkg_type { PKG_DEB = 0, PKG_APK = 1, PKG_RPM = 2 };

struct pkg {
	enum pkg_type type;
	char *name;
	char *version;	      /* full version as the database has it */
	char *arch;	      /* NULL when unknown */
	char *source_name;    /* NULL when the same as name / unknown */
	char *source_version; /* NULL when the same as version / unknown */
	char *epoch;	      /* rpm only; NULL when none */
	char *release;	      /* rpm only */
	char **licenses;      /* NULL-terminated; may be empty */
	size_t nlicenses;
};

struct pkglist {
	struct pkg *pkgs;
	size_t n, cap;
};

struct os_info {
	char *id;	   /* "debian", "alpine", "rhel"...; NULL unknown */
	char *version_id;  /* "12", "3.19.1"; NULL unknown */
	char *pretty_name; /* NULL unknown */
	char *name;
};

void pkglist_init(struct pkglist *l);
void pkglist_free(struct pkglist *l);
/* Appends a zeroed package and returns it. */
struct pkg *pkglist_add(struct pkglist *l);
/* The most licenses kept per package, and the longest name kept. */
#define PKG_MAX_LICENSES 64
#define PKG_MAX_LICENSE_LEN 256

/* Adds license name s (len bytes) to p unless it is empty, too long,
 * already there, or p has PKG_MAX_LICENSES. */
void pkg_add_license(struct pkg *p, const char *s, size_t len);

/* Sorts by (type, name, version, arch) so that output is stable. */
void pkglist_sort(struct pkglist *l);

void os_info_free(struct os_info *os);

/*
 * Each cataloger appends what it finds. 0 also when its database is
 * absent; a malformed database is an error (-EINVAL) naming the file and
 * the line or offset; an unsupported format (rpm Berkeley DB / ndb) is
 * -ENOTSUP with a message saying so.
 */
int catalog_os(const fileset *fs, struct os_info *os, char *err,
    size_t errlen);
int catalog_dpkg(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);
int catalog_apk(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);
/*
 * rpm: the SQLite rpmdb (usr/lib/sysimage/rpm/rpmdb.sqlite, else
 * var/lib/rpm/rpmdb.sqlite), one package per header blob: version,
 * release and epoch (NULL when none) apart, licenses [LICENSE], source
 * from SOURCERPM. A Berkeley DB (Packages) or ndb (Packages.db) database
 * without a SQLite one is -ENOTSUP; a bad header is -EINVAL naming the
 * file and the package row.
 */
int catalog_rpm(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);

#endif
