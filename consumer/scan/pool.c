/*
 * pool: the scan worker pool. N workers take jobs from a FIFO, run them
 * through the backend and append the results to a completion FIFO that
 * the engine drains. A watchdog thread sets a running job's cancel flag
 * when its deadline passes; the backend notices and gives up.
 *
 * Sizes: a handful to a few dozen workers; the engine keeps the job queue
 * short (it holds back due entries rather than queueing thousands), so
 * the O(queued + workers) search of scan_pool_abort and the O(workers)
 * watchdog pass are fine. Every job is one allocation (struct pool_item)
 * from submit to poll.
 *
 * Invariant: each item is in exactly one place: the pending queue, one
 * worker's `cur`, or the done queue; it leaves the pool through
 * scan_pool_poll (or scan_pool_free). So every job completes exactly once.
 *
 * Concurrency (where the pool sits among the service's threads:
 * docs/architecture.md, "Data flow and threads"):
 *  - One mutex (mu) guards both queues, the workers' `cur` pointers, the
 *    counters and the stop flags. Nothing blocks while holding it but a
 *    non-blocking eventfd write/read.
 *  - The engine thread alone calls submit, abort, poll, wait, the
 *    counters, shutdown and free (one caller thread; the functions lock,
 *    so another single thread would do, but not two at once for
 *    shutdown/free).
 *  - A worker owns its item's job and result between taking it (under mu)
 *    and handing it to the done queue (under mu); the job's timeout_ms and
 *    deadline_ms are written under mu before that and read-only after.
 *  - The cancel flag is an atomic_int: set (compare-and-swap from NONE)
 *    under mu by abort, shutdown and the watchdog; read without a lock by
 *    the backend, which may block for as long as a scan takes (without
 *    holding mu).
 *  - work_cv: pending work or stop, for idle workers. done_cv: a
 *    completion arrived, for scan_pool_wait. watch_cv (CLOCK_MONOTONIC):
 *    a job with a deadline started, or stop, for the watchdog. The eventfd
 *    is readable exactly while the done queue is non-empty (written on
 *    the empty->non-empty edge, drained by poll when it empties; both
 *    under mu).
 */
#include "scan/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/duration.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

struct pool_item {
	struct scan_job *job;
	atomic_int cancel; /* enum scan_cancel */
	struct scan_result res;
	bool started;
	bool aborted, timed_out;
	struct pool_item *next; /* in the pending or the done queue */
};

struct pool_worker {
	struct scan_pool *pool;
	pthread_t thread;
	struct pool_item *cur; /* the job being run, NULL when idle (mu) */
};

struct scan_pool {
	const struct scan_backend *backend;
	void *ctx;
	int64_t default_timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	pthread_cond_t done_cv;
	pthread_cond_t watch_cv;

	struct pool_item *pend_head, *pend_tail;
	size_t npend;
	struct pool_item *done_head, *done_tail;
	size_t ndone;
	size_t nbusy;

	bool stopping;	 /* no new jobs, workers exit when idle */
	bool watch_stop; /* the watchdog exits */
	bool shut;	 /* shutdown finished: every thread joined */

	int efd;
	int nworkers;
	int nstarted; /* workers whose thread exists */
	struct pool_worker *workers;
	pthread_t watchdog;
	bool watchdog_started;
};

/* ---- queues (mu held) ---- */

static void
push_done(scan_pool *p, struct pool_item *it)
{
	it->next = NULL;
	if (p->done_tail != NULL)
		p->done_tail->next = it;
	else
		p->done_head = it;
	p->done_tail = it;
	if (p->ndone++ == 0) {
		uint64_t one = 1;
		/* Cannot fail short of a bug: the counter stays at 0 or 1. */
		if (write(p->efd, &one, sizeof(one)) < 0)
			abort();
	}
	pthread_cond_broadcast(&p->done_cv);
}

/* Decides how a job ended from its cancel flag and deadline. */
static void
finish_item(struct pool_item *it, int64_t now_mono)
{
	struct scan_result *r = &it->res;
	const struct scan_job *j = it->job;
	int c = atomic_load(&it->cancel);

	if (c == SCAN_CANCEL_ABORT) {
		it->aborted = true;
		scan_result_fail(r, -ECANCELED, ERROR_RETRYABLE,
		    "scan aborted");
	} else if (c == SCAN_CANCEL_TIMEOUT ||
	    (r->rc != 0 && j->deadline_ms > 0 && now_mono >= j->deadline_ms)) {
		char d[32];
		it->timed_out = true;
		if (r->rc != -ETIMEDOUT || r->error[0] == '\0') {
			duration_format(j->timeout_ms, d, sizeof(d));
			scan_result_fail(r, -ETIMEDOUT, ERROR_RETRYABLE,
			    "scan timed out after %s", d);
		}
		r->error_class = ERROR_RETRYABLE;
		scan_result_free(r);
	}
}

static void
abort_queued(scan_pool *p, struct pool_item *it)
{
	atomic_store(&it->cancel, SCAN_CANCEL_ABORT);
	it->res.started_at_ms = clock_wall_ms();
	finish_item(it, clock_mono_ms());
	push_done(p, it);
}

/* Sets a running job's flag unless it already has one. */
static void
cancel_running(struct pool_item *it, int why)
{
	int none = SCAN_CANCEL_NONE;
	atomic_compare_exchange_strong(&it->cancel, &none, why);
}

/* ---- threads ---- */

static void *
worker_main(void *arg)
{
	struct pool_worker *w = arg;
	scan_pool *p = w->pool;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stopping && p->pend_head == NULL)
			pthread_cond_wait(&p->work_cv, &p->mu);
		struct pool_item *it = p->pend_head;
		if (it == NULL)
			break; /* stopping, nothing left */
		if ((p->pend_head = it->next) == NULL)
			p->pend_tail = NULL;
		p->npend--;
		it->next = NULL;
		it->started = true;
		w->cur = it;
		p->nbusy++;

		struct scan_job *job = it->job;
		int64_t t = job->timeout_ms == 0 ? p->default_timeout_ms :
		    job->timeout_ms < 0 ? 0 : job->timeout_ms;
		int64_t t0 = clock_mono_ms();
		job->timeout_ms = t;
		job->deadline_ms = t > 0 ? t0 + t : 0;
		if (job->deadline_ms > 0)
			pthread_cond_signal(&p->watch_cv);
		pthread_mutex_unlock(&p->mu);

		int64_t started = clock_wall_ms();
		memset(&it->res, 0, sizeof(it->res));
		if (atomic_load(&it->cancel) == SCAN_CANCEL_NONE)
			p->backend->scan(p->ctx, job, &it->cancel, &it->res);
		else
			it->res.rc = -ECANCELED;
		int64_t t1 = clock_mono_ms();
		it->res.started_at_ms = started;
		it->res.duration_ms = t1 - t0;

		pthread_mutex_lock(&p->mu);
		w->cur = NULL;
		p->nbusy--;
		finish_item(it, t1);
		push_done(p, it);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
abstime_mono(int64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

static void *
watchdog_main(void *arg)
{
	scan_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->watch_stop) {
		int64_t now = clock_mono_ms(), next = INT64_MAX;
		for (int i = 0; i < p->nworkers; i++) {
			struct pool_item *it = p->workers[i].cur;
			if (it == NULL || it->job->deadline_ms <= 0 ||
			    atomic_load(&it->cancel) != SCAN_CANCEL_NONE)
				continue;
			if (now >= it->job->deadline_ms)
				cancel_running(it, SCAN_CANCEL_TIMEOUT);
			else if (it->job->deadline_ms < next)
				next = it->job->deadline_ms;
		}
		if (next == INT64_MAX) {
			pthread_cond_wait(&p->watch_cv, &p->mu);
		} else {
			struct timespec ts;
			abstime_mono(next, &ts);
			pthread_cond_timedwait(&p->watch_cv, &p->mu, &ts);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- API ---- */

static int
cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rc;
	if ((rc = pthread_condattr_init(&a)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return rc;
}

scan_pool *
scan_pool_new(const struct scan_backend *b, void *backend_ctx,
    const struct scan_pool_config *cfg, char *err, size_t errlen)
{
	scan_pool *p;
	int rc;

	if (b == NULL || b->scan == NULL || cfg == NULL) {
		errbuf_set(err, errlen, "scan pool: no backend");
		return NULL;
	}
	if (cfg->workers < 1 || cfg->workers > SCAN_POOL_MAX_WORKERS) {
		errbuf_set(err, errlen,
		    "scan.workers: %d is not between 1 and %d", cfg->workers,
		    SCAN_POOL_MAX_WORKERS);
		return NULL;
	}
	if (cfg->timeout_ms < 0) {
		errbuf_set(err, errlen, "scan.timeout: must not be negative");
		return NULL;
	}

	p = xcalloc(1, sizeof(*p));
	p->backend = b;
	p->ctx = backend_ctx;
	p->default_timeout_ms = cfg->timeout_ms;
	p->nworkers = cfg->workers;
	p->workers = xcalloc((size_t)cfg->workers, sizeof(*p->workers));
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		errbuf_set(err, errlen, "scan pool: eventfd: %s",
		    strerror(errno));
		free(p->workers);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	if ((rc = cond_init_mono(&p->done_cv)) != 0 ||
	    (rc = cond_init_mono(&p->watch_cv)) != 0) {
		/* glibc cannot fail here; be plain about it if one does */
		fprintf(stderr, "sbomd: scan pool: condvar: %s\n",
		    strerror(rc));
		abort();
	}

	if ((rc = pthread_create(&p->watchdog, NULL, watchdog_main, p)) != 0)
		goto fail;
	p->watchdog_started = true;
	for (int i = 0; i < p->nworkers; i++) {
		p->workers[i].pool = p;
		rc = pthread_create(&p->workers[i].thread, NULL, worker_main,
		    &p->workers[i]);
		if (rc != 0)
			goto fail;
		p->nstarted++;
	}
	return p;

fail:
	errbuf_set(err, errlen, "scan pool: starting %d workers: %s",
	    cfg->workers, strerror(rc));
	scan_pool_free(p);
	return NULL;
}

int
scan_pool_submit(scan_pool *p, struct scan_job *job)
{
	if (p == NULL || job == NULL)
		return -EINVAL;
	struct pool_item *it = xcalloc(1, sizeof(*it));
	it->job = job;
	atomic_init(&it->cancel, SCAN_CANCEL_NONE);

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		free(it);
		return -ESHUTDOWN;
	}
	if (p->pend_tail != NULL)
		p->pend_tail->next = it;
	else
		p->pend_head = it;
	p->pend_tail = it;
	p->npend++;
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int
scan_pool_abort(scan_pool *p, uint64_t job_id)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&p->mu);
	for (struct pool_item *prev = NULL, *it = p->pend_head; it != NULL;
	     prev = it, it = it->next) {
		if (it->job->id != job_id)
			continue;
		if (prev != NULL)
			prev->next = it->next;
		else
			p->pend_head = it->next;
		if (p->pend_tail == it)
			p->pend_tail = prev;
		p->npend--;
		abort_queued(p, it);
		rc = 0;
		goto out;
	}
	for (int i = 0; i < p->nworkers; i++) {
		struct pool_item *it = p->workers[i].cur;
		if (it != NULL && it->job->id == job_id) {
			cancel_running(it, SCAN_CANCEL_ABORT);
			rc = 0;
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

size_t
scan_pool_poll(scan_pool *p, struct scan_completion *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	while (n < max && p->done_head != NULL) {
		struct pool_item *it = p->done_head;
		if ((p->done_head = it->next) == NULL)
			p->done_tail = NULL;
		p->ndone--;
		struct scan_completion *c = &out[n++];
		c->job_id = it->job->id;
		c->job = it->job;
		c->result = it->res;
		c->aborted = it->aborted;
		c->timed_out = it->timed_out;
		c->started = it->started;
		free(it);
	}
	if (p->ndone == 0) {
		uint64_t v;
		/* EAGAIN when it was already drained: fine */
		if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			abort();
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

int
scan_pool_wakeup_fd(const scan_pool *p)
{
	return p->efd;
}

bool
scan_pool_wait(scan_pool *p, int timeout_ms)
{
	struct timespec ts;
	bool any;

	if (timeout_ms >= 0)
		abstime_mono(clock_mono_ms() + timeout_ms, &ts);
	pthread_mutex_lock(&p->mu);
	while (p->ndone == 0 && !p->shut) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->done_cv, &p->mu);
		} else if (pthread_cond_timedwait(&p->done_cv, &p->mu, &ts) ==
		    ETIMEDOUT) {
			break;
		}
	}
	any = p->ndone > 0;
	pthread_mutex_unlock(&p->mu);
	return any;
}

static size_t
locked_count(scan_pool *p, const size_t *field)
{
	pthread_mutex_lock(&p->mu);
	size_t n = *field;
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t
scan_pool_busy(scan_pool *p)
{
	return locked_count(p, &p->nbusy);
}

size_t
scan_pool_queued(scan_pool *p)
{
	return locked_count(p, &p->npend);
}

size_t
scan_pool_pending(scan_pool *p)
{
	return locked_count(p, &p->ndone);
}

int
scan_pool_workers(const scan_pool *p)
{
	return p->nworkers;
}

void
scan_pool_shutdown(scan_pool *p, bool abort_running)
{
	pthread_mutex_lock(&p->mu);
	if (p->shut) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	p->stopping = true;
	while (p->pend_head != NULL) {
		struct pool_item *it = p->pend_head;
		p->pend_head = it->next;
		p->npend--;
		abort_queued(p, it);
	}
	p->pend_tail = NULL;
	if (abort_running) {
		for (int i = 0; i < p->nworkers; i++)
			if (p->workers[i].cur != NULL)
				cancel_running(p->workers[i].cur,
				    SCAN_CANCEL_ABORT);
	}
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);

	/* The watchdog keeps timing the jobs still running meanwhile. */
	for (int i = 0; i < p->nstarted; i++)
		pthread_join(p->workers[i].thread, NULL);

	pthread_mutex_lock(&p->mu);
	p->watch_stop = true;
	pthread_cond_signal(&p->watch_cv);
	pthread_mutex_unlock(&p->mu);
	if (p->watchdog_started)
		pthread_join(p->watchdog, NULL);

	pthread_mutex_lock(&p->mu);
	p->shut = true;
	pthread_cond_broadcast(&p->done_cv);
	pthread_mutex_unlock(&p->mu);
}

void
scan_pool_free(scan_pool *p)
{
	if (p == NULL)
		return;
	scan_pool_shutdown(p, true);
	while (p->done_head != NULL) {
		struct pool_item *it = p->done_head;
		p->done_head = it->next;
		scan_result_free(&it->res);
		scan_job_free(it->job);
		free(it);
	}
	close(p->efd);
	pthread_cond_destroy(&p->watch_cv);
	pthread_cond_destroy(&p->done_cv);
	pthread_cond_destroy(&p->work_cv);
	pthread_mutex_destroy(&p->mu);
	free(p->workers);
	free(p);
}
