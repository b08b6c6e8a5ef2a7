/*
 * backend: the scanner backend interface. A backend is a const struct of
 * function pointers (OpenSMTPD's scheduler backends are the model): init
 * turns the backend's configuration into a context, scan runs one job,
 * fini releases the context. Two are built in:
 *
 *   scan_backend_oci   the built-in scanner (scan_run) over the configured
 *                      image stores; HOST jobs catalogue scan.host_root
 *   scan_backend_exec  an external tool: a configured argv (no shell),
 *                      the SBOM read from its stdout
 *
 * A job (scan/job.h) is a self-contained copy of what a scan needs; a
 * result (struct scan_result, scan/scanner.h) is an SBOM or an error with
 * a class, RETRYABLE or PERMANENT.
 *
 * Threads (docs/architecture.md, "Data flow and threads"): scan is called
 * from several worker threads at once with the same context, which it
 * must only read. init and fini run on one thread with no scan in
 * progress. The cancel flag passed to scan is written by another thread
 * (the pool, on abort or timeout) at any time, and a backend gives up
 * promptly once it is non-zero: the oci backend passes it to the layer
 * walk as layer_limits.cancel, which looks at it before every tar entry
 * (so a scan stops within one entry's reading), and to the catalogers
 * and the SBOM writer (scan_request.cancel), which look at it every
 * PKGLIST_POLL_EVERY lines, rows or packages; the exec backend looks at it at
 * least every 50 ms and stops the tool's process group (SIGTERM, then
 * SIGKILL after the grace period).
 */
#ifndef SBOMD_SCAN_BACKEND_H
#define SBOMD_SCAN_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/job.h"
#include "scan/oci/layers.h"
#include "scan/oci/registry.h"
#include "scan/scanner.h"

struct scan_backend {
	const char *name; /* "oci", "exec": the outcome's `scanner` */
	/*
	 * Makes the context from the backend's configuration (struct
	 * scan_oci_config / scan_exec_config below), copying what it keeps:
	 * the config may be freed afterwards. 0, or a negative errno with
	 * err filled (naming the config key).
	 */
	int (*init)(const void *config, void **ctx, char *err, size_t errlen);
	/*
	 * Runs one job. res arrives zeroed; on return res->rc says whether
	 * it worked (error_class and error set when not). Must give up soon
	 * (well under a second) after *cancel becomes non-zero, reporting
	 * -ECANCELED or -ETIMEDOUT; the pool decides how the job ended and
	 * sets res's timing.
	 */
	void (*scan)(void *ctx, const struct scan_job *job,
	    const atomic_int *cancel, struct scan_result *res);
	void (*fini)(void *ctx);
};

/* ---- oci ---- */

struct scan_oci_config {
	const char *const *stores; /* scan.stores, tried in order */
	size_t nstores;
	const char *platform;	   /* scan.platform; NULL: linux/amd64 */
	const char *host_root;	   /* scan.host_root; NULL: no HOST scans */
	const struct layer_limits *limits; /* NULL: defaults */
	/* scan.max_sbom_bytes: a larger document fails the scan, PERMANENT,
	 * naming its size and the bound; 0: SCAN_DEFAULT_MAX_SBOM */
	size_t max_sbom_bytes;
	/* scan.max_packages: more packages fail the scan, PERMANENT, naming
	 * the count and the bound; 0: SCAN_DEFAULT_MAX_PACKAGES */
	size_t max_packages;
	/* scan.registry: NULL, or how to pull an image in none of the
	 * stores by its repo digests (scan/oci/registry.h) */
	const struct registry_config *registry;
	/* scan.layer_cache_dir: NULL, or the per-layer catalog cache's
	 * directory (opened by init, shared by the workers) */
	const char *layer_cache_dir;
	uint64_t layer_cache_max_bytes; /* 0: LAYER_CACHE_DEFAULT_MAX */
};

extern const struct scan_backend scan_backend_oci;

/* The bound on one SBOM when a backend's config gives none (the
 * service always passes scan.max_sbom_bytes). */
#define SCAN_DEFAULT_MAX_SBOM ((size_t)256 << 20)

/* ---- exec ---- */

#define SCAN_EXEC_DEFAULT_GRACE_MS 2000

struct scan_exec_config {
	/*
	 * scan.exec_argv: argv[0] is the program (searched in PATH when it
	 * has no '/'). "{id}" (the image ID or host name) and "{ref}" (the
	 * first repo digest, else the first repo tag, else the id) are
	 * replaced wherever they appear inside an argument.
	 */
	const char *const *argv;
	size_t argc;
	const int *retryable_exit_codes; /* scan.exec_retryable_exit_codes */
	size_t nretryable;
	size_t max_sbom_bytes;	/* 0: SCAN_DEFAULT_MAX_SBOM */
	int64_t kill_grace_ms;	/* SIGTERM..SIGKILL; 0: the default */
};

extern const struct scan_backend scan_backend_exec;

#endif
