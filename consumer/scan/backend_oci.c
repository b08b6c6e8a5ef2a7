/*
 * backend_oci: the built-in scanner (scan_run) as a backend. Images are
 * looked up by ID in the configured stores (scan.stores, tried in order,
 * scan.platform picking from multi-platform indexes); HOST jobs catalogue
 * scan.host_root and name the subject after the host.
 *
 * The job's result is scan_run's own (one struct scan_result, nothing
 * copied).
 *
 * Size bound: a document larger than max_sbom_bytes (scan.max_sbom_bytes)
 * is a PERMANENT failure naming its size and the bound, as the exec
 * backend's is: an outcome that large would not fit the output topic,
 * and a rescan of the same image gives the same document.
 *
 * Package bound: more packages than max_packages (scan.max_packages) is
 * a PERMANENT failure naming the count and the bound (scan_run's).
 *
 * Cancellation: the flag is looked at before the scan starts, by the
 * layer walk before every tar entry (layer_limits.cancel), by the
 * catalogers and the SBOM writer every PKGLIST_POLL_EVERY lines, rows or
 * packages (scan_request.cancel), and after the scan; a scan cancelled
 * (aborted or timed out) has its result dropped and reports -ECANCELED,
 * which the pool turns into an aborted or timed-out completion. A worker
 * is held at most for one entry's worth of reading, or a thousand
 * lines' or packages' worth of cataloguing or writing, after the flag is
 * set (plus the final json_dumps of at most scan.max_packages
 * packages).
 *
 * Registry (scan.registry): an image in none of the stores is pulled by
 * its repo digests (scan_run, scan/oci/registry.h); the registry
 * object, shared by the workers, caches tokens under its own lock. A
 * registry's Retry-After reaches the result (retry_after_ms), which the
 * engine passes to the tracker as the earliest next attempt.
 *
 * Concurrency: the context is read-only after init; scan_run is thread-safe,
 * so any number of workers may scan at once.
 */
#include "scan/backend.h"
#include "scan/strv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/oci/layercache.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

struct oci_ctx {
	char **stores;
	size_t nstores;
	char *platform;		/* NULL: the scanner's default */
	char *host_root;	/* NULL: HOST jobs fail */
	struct layer_limits limits;
	bool have_limits;
	size_t max_sbom;	/* bytes, > 0 */
	size_t max_packages;	/* 0: the scanner's default */
	registry *registry;	/* NULL: scan.registry off */
	layer_cache *layer_cache; /* NULL: scan.layer_cache_dir off */
};

static void oci_fini(void *ctx);

static int
oci_init(const void *config, void **ctxp, char *err, size_t errlen)
{
	const struct scan_oci_config *c = config;
	struct oci_ctx *x;

	*ctxp = NULL;
	if (c == NULL) {
		errbuf_set(err, errlen,
		    "scan: oci backend without configuration");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->nstores; i++) {
		if (c->stores[i] == NULL || c->stores[i][0] == '\0') {
			errbuf_set(err, errlen,
			    "scan.stores: entry %zu is empty", i + 1);
			return -EINVAL;
		}
	}
	if (c->host_root != NULL && c->host_root[0] == '\0') {
		errbuf_set(err, errlen, "scan.host_root: empty");
		return -EINVAL;
	}
	x = xcalloc(1, sizeof(*x));
	x->stores = strv_copy(c->stores, c->nstores);
	x->nstores = c->nstores;
	x->platform = c->platform != NULL && c->platform[0] != '\0' ?
	    xstrdup(c->platform) : NULL;
	x->host_root = c->host_root != NULL ? xstrdup(c->host_root) : NULL;
	if (c->limits != NULL) {
		x->limits = *c->limits;
		x->have_limits = true;
	}
	x->max_sbom = c->max_sbom_bytes > 0 ? c->max_sbom_bytes :
	    SCAN_DEFAULT_MAX_SBOM;
	x->max_packages = c->max_packages;
	if (c->registry != NULL) {
		int rc = registry_new(c->registry, &x->registry, err, errlen);
		if (rc != 0) {
			oci_fini(x);
			return rc;
		}
	}
	if (c->layer_cache_dir != NULL && c->layer_cache_dir[0] != '\0') {
		struct layer_cache_options lo = {
			.dir = c->layer_cache_dir,
			.max_bytes = c->layer_cache_max_bytes,
		};
		char why[512];
		int rc = layer_cache_open(&lo, &x->layer_cache, why,
		    sizeof(why));
		if (rc != 0) {
			errbuf_set(err, errlen, "scan.layer_cache_dir: %s",
			    why);
			oci_fini(x);
			return rc;
		}
	}
	*ctxp = x;
	return 0;
}

static void
oci_scan(void *ctx, const struct scan_job *job, const atomic_int *cancel,
    struct scan_result *res)
{
	const struct oci_ctx *x = ctx;

	if (atomic_load(cancel) != SCAN_CANCEL_NONE) {
		scan_result_fail(res, -ECANCELED, ERROR_RETRYABLE,
		    "scan cancelled before it started");
		return;
	}
	if (job->kind == ENTITY_HOST && x->host_root == NULL) {
		scan_result_fail(res, -EINVAL, ERROR_PERMANENT,
		    "host %s: no scan.host_root configured for host scans",
		    job->image_id);
		return;
	}

	/* The walk looks at the cancel flag before every layer entry. */
	struct layer_limits lim;
	if (x->have_limits)
		lim = x->limits;
	else
		layer_limits_default(&lim);
	lim.cancel = cancel;

	struct scan_request req = {
		.kind = job->kind,
		.image_id = job->kind == ENTITY_IMAGE ? job->image_id : NULL,
		.repo_tags = (const char *const *)job->repo_tags,
		.ntags = job->ntags,
		.repo_digests = (const char *const *)job->repo_digests,
		.ndigests = job->ndigests,
		.stores = (const char *const *)x->stores,
		.nstores = x->nstores,
		.platform = x->platform,
		.root = job->kind == ENTITY_HOST ? x->host_root : NULL,
		.host_name = job->kind == ENTITY_HOST ? job->image_id : NULL,
		.limits = &lim,
		.now_ms = clock_wall_ms(),
		.max_packages = x->max_packages,
		.cancel = cancel,
		.registry = x->registry,
		.layer_cache = x->layer_cache,
	};
	scan_run(&req, res);
	if (res->rc == 0 && res->sbom_len > x->max_sbom)
		scan_result_fail(res, -EFBIG, ERROR_PERMANENT,
		    "SBOM of %zu bytes is larger than scan.max_sbom_bytes "
		    "(%zu bytes)", res->sbom_len, x->max_sbom);

	/* Cancelled: whatever scan_run returned (-ECANCELED from the
	 * layer walk, or a finished scan) is reported as aborted. */
	if (atomic_load(cancel) != SCAN_CANCEL_NONE)
		scan_result_fail(res, -ECANCELED, ERROR_RETRYABLE,
		    "scan cancelled while running");
}

static void
oci_fini(void *ctx)
{
	struct oci_ctx *x = ctx;
	if (x == NULL)
		return;
	registry_free(x->registry);
	layer_cache_close(x->layer_cache);
	strv_free(x->stores, x->nstores);
	free(x->platform);
	free(x->host_root);
	free(x);
}

const struct scan_backend scan_backend_oci = {
	.name = "oci",
	.init = oci_init,
	.scan = oci_scan,
	.fini = oci_fini,
};
