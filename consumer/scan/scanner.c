/*
 * scanner: glue from a scan request to a CycloneDX document.
 *
 *   image: imagestore_load -> fileset -> catalogers -> cyclonedx_write
 *          (not in the stores, scan.registry: registry_load by each
 *          repo digest in turn, a fresh fileset for each)
 *   host/dir: dirscan_load  -> fileset -> catalogers -> cyclonedx_write
 *
 * Every catalog runs on every scan (an image may hold dpkg and apk
 * databases both; each finds nothing where its database is absent). The
 * fileset holds only the catalogers' files and is bounded, and so are the
 * packages kept (scan.max_packages; past it they are only counted and the
 * scan fails), so a scan's memory does not grow with the image. The
 * request's cancel flag reaches the catalogers (through the package
 * list) and the writer, so a scan stops promptly even on a huge
 * package database. No global state but the image
 * stores' containerd cache, which locks: workers may run scans in
 * parallel.
 */
#include "scan/scanner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/catalog/catalog.h"
#include "scan/dirscan.h"
#include "scan/fileset.h"
#include "scan/oci/imagestore.h"

enum error_class
scan_classify(int rc)
{
	switch (rc) {
	case -ENOENT: /* not pulled on this node yet */
	case -EAGAIN: /* a pull in progress */
	case -EIO:    /* the disk, or a store being rewritten */
	case -EINTR:
	/* a registry: credentials (fixed by an operator), a registry that
	 * cannot be reached or a TLS failure (fixed by one) */
	case -EACCES:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNABORTED:
		return ERROR_RETRYABLE;
	default:
		return ERROR_PERMANENT;
	}
}

void
scan_result_free(struct scan_result *res)
{
	free(res->sbom);
	res->sbom = NULL;
	res->sbom_len = 0;
}

void
scan_result_fail(struct scan_result *res, int rc, enum error_class cls,
    const char *fmt, ...)
{
	va_list ap;

	scan_result_free(res);
	res->components = 0;
	res->rc = rc;
	res->error_class = cls;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

/* Fails res with rc, classified, the message already in res->error. */
static void
scan_failed(struct scan_result *res, int rc)
{
	res->rc = rc;
	res->error_class = scan_classify(rc);
}

/*
 * Runs every cataloger over fs into pkgs (bounded by pkglist_limit):
 * -EFBIG naming the count and the bound when they found more packages
 * than scan.max_packages.
 */
static int
catalog_all(const fileset *fs, const char *subject, struct os_info *os,
    struct pkglist *pkgs, char *err, size_t errlen)
{
	int rc;
	if ((rc = catalog_os(fs, os, err, errlen)) != 0 ||
	    (rc = catalog_dpkg(fs, pkgs, err, errlen)) != 0 ||
	    (rc = catalog_apk(fs, pkgs, err, errlen)) != 0 ||
	    (rc = catalog_rpm(fs, pkgs, err, errlen)) != 0)
		return rc;
	if (pkglist_over(pkgs)) {
		snprintf(err, errlen, "%s: %zu packages, more than "
		    "scan.max_packages (%zu)", subject, pkgs->total, pkgs->max);
		return -EFBIG;
	}
	pkglist_sort(pkgs);
	return 0;
}

/*
 * The image is in none of the stores: pulls it by each of its repo
 * digests that names a repository, in order, until one works (each into
 * a fresh fileset: a failed pull may have applied some layers). The
 * error is the first reference's, saying how many others failed too.
 */
static int
pull_by_digests(const struct scan_request *req, const struct image_query *q,
    fileset **fs, struct image_found *found, struct scan_result *res)
{
	char first[SCAN_ERROR_MAX], why[SCAN_ERROR_MAX];
	int rc = -ENOENT, frc = 0;
	size_t tried = 0;

	for (size_t i = 0; i < req->ndigests; i++) {
		const char *ref = req->repo_digests[i];
		if (ref == NULL || strchr(ref, '@') == NULL || ref[0] == '@')
			continue;
		struct registry_status st;
		if (tried > 0) {
			fileset_free(*fs);
			*fs = fileset_new();
		}
		tried++;
		rc = registry_load(req->registry, ref, q, req->limits, *fs,
		    found, &st, why, sizeof(why));
		if (rc == 0)
			return 0;
		if (st.retry_after_ms > res->retry_after_ms)
			res->retry_after_ms = st.retry_after_ms;
		if (frc == 0) {
			frc = rc;
			memcpy(first, why, sizeof(first));
		}
		if (rc == -ECANCELED)
			break;
	}
	if (tried == 0) {
		size_t n = strlen(res->error);
		snprintf(res->error + n, sizeof(res->error) - n,
		    "; no repo digest to pull it from a registry");
		return -ENOENT;
	}
	if (tried == 1)
		snprintf(res->error, sizeof(res->error), "%s", first);
	else
		snprintf(res->error, sizeof(res->error), "%.*s (and %zu other "
		    "references failed)", (int)sizeof(res->error) - 64, first,
		    tried - 1);
	return frc;
}

void
scan_run(const struct scan_request *req, struct scan_result *res)
{
	fileset *fs = fileset_new();
	struct os_info os = {0};
	struct pkglist pkgs;
	int rc;

	memset(res, 0, sizeof(*res));
	pkglist_init(&pkgs);
	pkglist_limit(&pkgs, req->max_packages > 0 ? req->max_packages :
	    SCAN_DEFAULT_MAX_PACKAGES, req->cancel);

	struct sbom_doc doc = {
		.subject = {
			.kind = req->kind,
			.repo_tags = req->repo_tags, .ntags = req->ntags,
			.repo_digests = req->repo_digests,
			.ndigests = req->ndigests,
		},
		.timestamp_ms = req->now_ms,
		.tool_version = SBOMD_VERSION,
		.cancel = req->cancel,
	};

	if (req->kind == ENTITY_IMAGE && req->root == NULL) {
		struct image_query q = {
			.image_id = req->image_id,
			.repo_digests = req->repo_digests,
			.ndigests = req->ndigests,
			.repo_tags = req->repo_tags, .ntags = req->ntags,
			.platform = req->platform,
			.layer_cache = req->layer_cache,
		};
		struct image_found found;
		if (req->registry_ref != NULL)
			rc = registry_load(req->registry, req->registry_ref,
			    &q, req->limits, fs, &found, NULL, res->error,
			    sizeof(res->error));
		else
			rc = imagestore_load(req->stores, req->nstores, &q,
			    req->limits, fs, &found, res->error,
			    sizeof(res->error));
		if (rc == -ENOENT && req->registry != NULL &&
		    req->registry_ref == NULL)
			rc = pull_by_digests(req, &q, &fs, &found, res);
		if (rc != 0) {
			scan_failed(res, rc);
			goto out;
		}
		snprintf(res->image_id, sizeof(res->image_id), "%s",
		    found.image_id);
		doc.subject.id = res->image_id;
	} else {
		rc = dirscan_load(fs, req->root, res->error,
		    sizeof(res->error));
		if (rc != 0) {
			scan_failed(res, rc);
			goto out;
		}
		doc.subject.id = req->kind == ENTITY_HOST ? req->host_name :
		    req->image_id ? req->image_id : req->root;
	}

	if ((rc = catalog_all(fs, doc.subject.id, &os, &pkgs, res->error,
		 sizeof(res->error))) != 0) {
		scan_failed(res, rc);
		goto out;
	}
	doc.os = os.id != NULL ? &os : NULL;
	doc.pkgs = &pkgs;
	if ((rc = cyclonedx_write(&doc, &res->sbom, &res->sbom_len)) != 0) {
		scan_result_fail(res, rc, scan_classify(rc),
		    "writing the CycloneDX document: %s", strerror(-rc));
		goto out;
	}
	res->components = pkgs.n;
	res->rc = 0;
out:
	pkglist_free(&pkgs);
	os_info_free(&os);
	fileset_free(fs);
}
