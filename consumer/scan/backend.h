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
 * A job is a self-contained copy of what a scan needs (the engine's
 * tracker never crosses to a worker). A result is an SBOM or an error with
 * a class, RETRYABLE or PERMANENT.
 *
 * Threads: scan is called from several worker threads at once with the
 * same context, which it must only read. init and fini run on one thread
 * with no scan in progress. The cancel flag passed to scan is written by
 * another thread (the pool, on abort or timeout) at any time: a backend
 * polls it and, once it is non-zero, gives up promptly (the exec backend
 * kills its process group; the oci backend can only look before and after
 * scan_run for now).
 */
#ifndef SBOMD_SCAN_BACKEND_H
#define SBOMD_SCAN_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/oci/layers.h"
#include "scan/scanner.h"

/* Values of a job's cancel flag. */
enum scan_cancel {
	SCAN_CANCEL_NONE = 0,
	SCAN_CANCEL_ABORT = 1,	 /* the engine aborted the job */
	SCAN_CANCEL_TIMEOUT = 2, /* the job passed its deadline */
};

/* Longest error text a result carries (the tracker keeps 1024 bytes). */
#define SCAN_ERROR_MAX 1024

struct scan_job {
	uint64_t id;		    /* the engine's job id, unique in a pool */
	enum entity_kind kind; /* ENTITY_IMAGE or ENTITY_HOST */
	char *image_id;		    /* images: "sha256:…"; hosts: the name */
	char **repo_tags;	    /* ntags copies */
	size_t ntags;
	char **repo_digests;	    /* ndigests copies */
	size_t ndigests;
	uint32_t attempt;	    /* 1-based */
	/*
	 * The per-scan limit: 0 takes the pool's default, < 0 means none.
	 * When a worker starts the job the pool replaces it with the
	 * effective limit (0 = none) and sets deadline_ms, on the
	 * CLOCK_MONOTONIC clock in ms (0 = none). Backends only read them.
	 */
	int64_t timeout_ms;
	int64_t deadline_ms;
};

struct scan_job_result {
	char *sbom;		/* CycloneDX JSON (malloc'd, NUL-terminated) */
	size_t sbom_len;	/* or NULL/0 on failure */
	size_t components;	/* packages / components found */
	char image_id[80];	/* images: the ID scanned, when known */
	int rc;			/* 0, or the negative errno of the failure */
	enum error_class error_class; /* when rc != 0 */
	char error[SCAN_ERROR_MAX]; /* when rc != 0: what and why */
	int64_t started_at_ms;	/* wall clock (ms since the epoch) */
	int64_t duration_ms;
};

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
	 * -ECANCELED or -ETIMEDOUT; the pool decides how the job ended.
	 */
	void (*scan)(void *ctx, const struct scan_job *job,
	    const atomic_int *cancel, struct scan_job_result *res);
	void (*fini)(void *ctx);
};

/* ---- oci ---- */

struct scan_oci_config {
	const char *const *stores; /* scan.stores, tried in order */
	size_t nstores;
	const char *platform;	   /* scan.platform; NULL: linux/amd64 */
	const char *host_root;	   /* scan.host_root; NULL: no HOST scans */
	const struct layer_limits *limits; /* NULL: defaults */
};

extern const struct scan_backend scan_backend_oci;

/* ---- exec ---- */

#define SCAN_EXEC_DEFAULT_MAX_SBOM ((size_t)256 << 20)
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
	size_t max_sbom_bytes;	/* 0: SCAN_EXEC_DEFAULT_MAX_SBOM */
	int64_t kill_grace_ms;	/* SIGTERM..SIGKILL; 0: the default */
};

extern const struct scan_backend scan_backend_exec;

/* ---- jobs and results ---- */

/* A job holding copies of everything given (arrays may be NULL when the
 * count is 0). Free with scan_job_free. */
struct scan_job *scan_job_new(uint64_t id, enum entity_kind kind,
    const char *image_id, const char *const *tags, size_t ntags,
    const char *const *digests, size_t ndigests, uint32_t attempt);
void scan_job_free(struct scan_job *job);

/* The reference a tool is best given: the first repo digest, else the
 * first repo tag, else the id ({ref}). */
const char *scan_job_ref(const struct scan_job *job);

/* Frees the SBOM; the rest of the result stays readable. */
void scan_job_result_free(struct scan_job_result *res);

/* Fills res as a failure: rc, class and a printf-style message. */
void scan_job_result_fail(struct scan_job_result *res, int rc,
    enum error_class cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ms. */
int64_t scan_clock_mono_ms(void);
int64_t scan_clock_wall_ms(void);

#endif
