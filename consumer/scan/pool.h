/*
 * pool: N worker threads running scan jobs through one backend, a job
 * queue in, a completion queue out, per-scan timeouts and aborts.
 *
 * The engine thread submits jobs (ownership passes), may abort one by id,
 * and polls completions without blocking; the wakeup fd (or
 * scan_pool_wait) tells it when there is something to poll. Every
 * submitted job comes back exactly once as a completion: finished,
 * failed, timed out or aborted (an aborted job that had not started comes
 * back at once without running). See pool.c for the concurrency contract.
 */
#ifndef SBOMD_SCAN_POOL_H
#define SBOMD_SCAN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/backend.h"

typedef struct scan_pool scan_pool;

struct scan_pool_config {
	int workers;		/* scan.workers, 1..SCAN_POOL_MAX_WORKERS */
	int64_t timeout_ms;	/* scan.timeout for jobs without their own;
				 * 0 = none */
};

#define SCAN_POOL_MAX_WORKERS 1024

struct scan_completion {
	uint64_t job_id;
	struct scan_job *job;	/* the submitted job, back to the caller:
				 * scan_job_free it */
	struct scan_result result; /* scan_result_free it */
	/*
	 * aborted: scan_pool_abort or scan_pool_shutdown ended it (result
	 * rc -ECANCELED "scan aborted", whatever the backend had reached).
	 * timed_out: it ran past its deadline (result rc -ETIMEDOUT,
	 * RETRYABLE, "scan timed out after 5m"). At most one is set; with
	 * neither the result is the backend's own.
	 */
	bool aborted;
	bool timed_out;
	bool started;		/* a worker ran it (false: aborted queued) */
};

/*
 * Starts the workers. backend_ctx is the context made by b->init; the
 * caller keeps owning it (fini after scan_pool_free). NULL with err filled
 * on bad config or when threads cannot be made.
 */
scan_pool *scan_pool_new(const struct scan_backend *b, void *backend_ctx,
    const struct scan_pool_config *cfg, char *err, size_t errlen);

/*
 * Queues a job. On success (0) the pool owns it until it comes back in a
 * completion. -ESHUTDOWN after scan_pool_shutdown, -EINVAL for NULL: the
 * caller keeps the job then.
 */
int scan_pool_submit(scan_pool *p, struct scan_job *job);

/*
 * Aborts the job with that id: a queued job completes at once (aborted,
 * never started), a running one has its cancel flag set and completes
 * when its backend gives up. 0, or -ENOENT when no such job is queued or
 * running (it may already be among the completions).
 */
int scan_pool_abort(scan_pool *p, uint64_t job_id);

/* Moves up to max completions into out without blocking; returns how
 * many. */
size_t scan_pool_poll(scan_pool *p, struct scan_completion *out, size_t max);

/*
 * A descriptor that is readable while completions are waiting to be
 * polled (level-triggered; only scan_pool_poll reads it). For poll()/
 * epoll in the engine's wait.
 */
int scan_pool_wakeup_fd(const scan_pool *p);

/* Waits up to timeout_ms (< 0: forever) for a completion to be waiting;
 * returns true if one is. */
bool scan_pool_wait(scan_pool *p, int timeout_ms);

size_t scan_pool_busy(scan_pool *p);	     /* workers running a job */
size_t scan_pool_queued(scan_pool *p);	     /* jobs waiting for a worker */
size_t scan_pool_pending(scan_pool *p);	     /* completions not polled */
int scan_pool_workers(const scan_pool *p);

/*
 * Stops the pool: queued jobs complete as aborted at once; running jobs
 * are cancelled when abort_running is set, else run to their end (or
 * their timeout). Returns when every worker has exited; completions stay
 * pollable. Submitting afterwards fails. Idempotent.
 */
void scan_pool_shutdown(scan_pool *p, bool abort_running);

/* Shuts down (aborting running jobs) if that has not been done, frees
 * every completion not polled and the pool. NULL is fine. */
void scan_pool_free(scan_pool *p);

#endif
