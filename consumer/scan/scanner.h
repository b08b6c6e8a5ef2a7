/*
 * scanner: one scan, start to finish: find the image (or read the host's
 * directory tree), catalog its packages, write the CycloneDX document, and
 * classify any failure as RETRYABLE or PERMANENT. This is the built-in
 * `oci` backend's work and `sbomd scan`'s.
 */
#ifndef SBOMD_SCAN_SCANNER_H
#define SBOMD_SCAN_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#include "scan/oci/layers.h"
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
};

struct scan_result {
	char *sbom; /* the CycloneDX JSON (malloc'd), NULL on failure */
	size_t sbom_len;
	size_t components; /* packages found */
	char image_id[80]; /* images: the ID of the image scanned */
	int rc;		   /* 0, or the negative errno of the failure */
	enum error_class error_class;
	char error[512];
};

/* Runs the scan; res->rc says whether it worked. Thread-safe. */
void scan_run(const struct scan_request *req, struct scan_result *res);
void scan_result_free(struct scan_result *res);

/* The class of a failure code: not found / pull in progress / I/O are
 * RETRYABLE; corrupt, hostile, too large or unsupported are PERMANENT. */
enum error_class scan_classify(int rc);

#endif
