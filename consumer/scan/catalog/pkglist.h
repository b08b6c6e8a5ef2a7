/*
 * pkglist: what the catalogers find (packages and the OS) and the helpers
 * around it that the catalogers, purl and cyclonedx share.
 */
#ifndef SBOMD_SCAN_PKGLIST_H
#define SBOMD_SCAN_PKGLIST_H

#include <stdatomic.h>
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
	/* What pkglist_limit sets (none after pkglist_init): */
	size_t max;	/* 0: no bound; past it packages are counted, not kept */
	size_t total;	/* packages added, kept or not (>= n) */
	struct pkg spill; /* where pkglist_add puts packages past max */
	const atomic_int *cancel; /* NULL, or non-zero: stop cataloguing */
};

/* How many lines or rows a cataloger reads between looks at the cancel
 * flag (an atomic load: cheap, but not free per byte). */
#define PKGLIST_POLL_EVERY 1024

struct os_info {
	char *id;	   /* "debian", "alpine", "rhel"...; NULL unknown */
	char *version_id;  /* "12", "3.19.1"; NULL unknown */
	char *pretty_name; /* NULL unknown */
	char *name;
};

void pkglist_init(struct pkglist *l);
void pkglist_free(struct pkglist *l);
/*
 * Bounds l: at most max packages kept (0: no bound), and cancel (may be
 * NULL) is the flag catalogers look at (pkglist_cancelled).
 */
void pkglist_limit(struct pkglist *l, size_t max, const atomic_int *cancel);
/*
 * Appends a zeroed package and returns it. Past the bound the package is
 * only counted (total): what is returned is a scratch package, emptied
 * by the next call, so that a cataloger runs on unchanged and memory
 * stays bounded; pkglist_over then says so.
 */
struct pkg *pkglist_add(struct pkglist *l);
/* Whether more packages were added than the bound keeps. */
bool pkglist_over(const struct pkglist *l);
/* Whether l's cancel flag is set. */
bool pkglist_cancelled(const struct pkglist *l);
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
