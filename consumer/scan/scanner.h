/*
 * scanner: one scan, start to finish: find the image (or read the host's
 * directory tree), catalog its packages, write the CycloneDX document, and
 * classify any failure as RETRYABLE or PERMANENT. This is the built-in
 * `oci` backend's work and `sbomd scan`'s. struct scan_result is also
 * what every backend returns for a job (scan/backend.h).
 */
#ifndef SBOMD_SCAN_SCANNER_H
#define SBOMD_SCAN_SCANNER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/oci/layers.h"
#include "scan/oci/registry.h"
#include "scan/sbom/cyclonedx.h"
#include "util/vocab.h"

struct scan_request {
	enum entity_kind kind;
	/* images: the image ID ("sha256:…"), or NULL to pick by the hints */
	const char *image_id;
	const char *const *repo_tags;
	size_t ntags;
	const char *const *repo_digests;
	size_t ndigests;
	const char *const *stores; /* image stores, tried in order */
	size_t nstores;
	const char *platform;	   /* NULL: linux/amd64 */
	const char *root;	   /* hosts and dir scans: the directory */
	const char *host_name;	   /* hosts: the subject's name */
	const struct layer_limits *limits; /* NULL: defaults */
	int64_t now_ms;		   /* the document's timestamp */
	/* scan.max_packages: more packages fail the scan (PERMANENT, the
	 * count and the bound named); 0: SCAN_DEFAULT_MAX_PACKAGES */
	size_t max_packages;
	/* NULL, or a flag another thread sets to stop the scan: the
	 * catalogers and the SBOM writer look at it (every
	 * PKGLIST_POLL_EVERY lines, rows or packages) and the scan fails
	 * with -ECANCELED. (The layer walk has its own, limits->cancel.) */
	const atomic_int *cancel;
	/* NULL, or the registry client: an image in none of the stores is
	 * pulled by its repo digests ("name@sha256:…"), in order, until one
	 * works (scan.registry). */
	registry *registry;
	/* NULL, or the per-layer catalog cache (scan/oci/layercache.h),
	 * shared by every scan: known layers are not read. */
	struct layer_cache *layer_cache;
	/* With registry: pull this reference and look in no store (`sbomd
	 * scan registry:REF`). */
	const char *registry_ref;
};

/* The default of scan.max_packages (config/sbomd.cfg says the same). */
#define SCAN_DEFAULT_MAX_PACKAGES 100000

/* Longest error text a result carries (the tracker keeps 1024 bytes). */
#define SCAN_ERROR_MAX 1024

/* What a scan produced: scan_run's result, and every backend's. */
struct scan_result {
	char *sbom;	    /* CycloneDX JSON (malloc'd, NUL-terminated), */
	size_t sbom_len;    /* or NULL/0 on failure */
	size_t components;  /* packages / components found */
	char image_id[80];  /* images: the ID scanned, when known */
	int rc;		    /* 0, or the negative errno of the failure */
	enum error_class error_class;	/* when rc != 0 */
	char error[SCAN_ERROR_MAX];	/* when rc != 0: what and why */
	/* When rc != 0: the least delay (ms) before the next attempt, as
	 * a registry's Retry-After asked; 0 when none. */
	int64_t retry_after_ms;
	/* Set by the scan pool for a job: wall clock (ms since the epoch)
	 * when it started, and how long it ran. 0 from scan_run. */
	int64_t started_at_ms;
	int64_t duration_ms;
};

/* Runs the scan; res->rc says whether it worked. Thread-safe. */
void scan_run(const struct scan_request *req, struct scan_result *res);

/* Frees the SBOM; the rest of the result stays readable. */
void scan_result_free(struct scan_result *res);

/* Makes res a failure (its SBOM freed): rc, class and a printf-style
 * message. */
void scan_result_fail(struct scan_result *res, int rc, enum error_class cls,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The class of a failure code: not found / pull in progress / I/O are
 * RETRYABLE; corrupt, hostile, too large or unsupported are PERMANENT. */
enum error_class scan_classify(int rc);

#endif
