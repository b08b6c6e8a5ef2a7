/*
 * pkglist: what the catalogers find (packages and the OS) and the helpers
 * around it that the catalogers, purl and cyclonedx share.
 */
#ifndef SBOMD_SCAN_PKGLIST_H
#define SBOMD_SCAN_PKGLIST_H

#include <stdbool.h>
#include <stddef.h>

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

/* Whether s[0..len) can be a package name or version: non-empty, no
 * blank, control or DEL byte, and no '/' unless slash is set. */
bool pkg_token_ok(const char *s, size_t len, bool slash);

/* Whether an rpm version still lacks its release ("1.2" with "3.el9",
 * not "1.2-3.el9"); false when rel is NULL or empty. */
bool pkg_needs_release(const char *version, const char *rel);

void os_info_free(struct os_info *os);

#endif
