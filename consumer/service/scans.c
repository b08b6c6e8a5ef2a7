/*
 * scans: the engine's side of the scan pool. Due entities are popped
 * from the tracker into jobs while the pool holds fewer than 2 x
 * scan.workers (the rest wait in the heap, where they can still be
 * cancelled cheaply); completions go back to the tracker, whose outcome
 * is emitted.
 *
 * A job aborted because its entity was CANCELLED has had its outcome
 * already (`cancelled` is set); a job aborted otherwise (shutdown) goes
 * back to QUEUED with its attempt count unchanged. At most one job per
 * entity is in the pool: see struct jobs in engine_int.h.
 *
 * Engine thread only; the pool's workers see only their job (a copy of
 * the id and refs) and hand back a result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/engine_int.h"
#include "service/log.h"
#include "util/xmalloc.h"

#define POLL_MAX 32

/* The configured backend and the pool; 0, or a negative errno with err. */
int
scans_open(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *c = e->cfg;
	int rc;
	if (c->scan.backend == CONFIG_BACKEND_EXEC) {
		struct scan_exec_config xc = {
			.argv = (const char *const *)c->scan.exec_argv.v,
			.argc = c->scan.exec_argv.n,
			.retryable_exit_codes =
			    (const int *)c->scan.exec_retryable_exit_codes.v,
			.nretryable = c->scan.exec_retryable_exit_codes.n,
			.max_sbom_bytes = (size_t)c->scan.max_sbom_bytes,
		};
		e->backend = &scan_backend_exec;
		rc = e->backend->init(&xc, &e->bctx, err, errlen);
	} else {
		/* scan.layer_cache_dir: relative to state.dir. */
		char cache_dir[4096];
		const char *lcd = c->scan.layer_cache_dir;
		if (lcd[0] == '\0' || lcd[0] == '/')
			snprintf(cache_dir, sizeof(cache_dir), "%s", lcd);
		else if ((size_t)snprintf(cache_dir, sizeof(cache_dir), "%s/%s",
			     c->state.dir, lcd) >= sizeof(cache_dir)) {
			snprintf(err, errlen, "scan.layer_cache_dir: %s/%s: "
			    "path too long", c->state.dir, lcd);
			return -EINVAL;
		}
		struct registry_config regc = {
			.auth_file = c->scan.registry_auth_file[0] ?
			    c->scan.registry_auth_file : NULL,
			.ca_file = c->scan.registry_ca_file[0] ?
			    c->scan.registry_ca_file : NULL,
			.insecure_hosts = (const char *const *)
			    c->scan.registry_insecure_hosts.v,
			.ninsecure = c->scan.registry_insecure_hosts.n,
			.mirrors = (const char *const *)
			    c->scan.registry_mirrors.v,
			.nmirrors = c->scan.registry_mirrors.n,
			.timeout_ms = c->scan.registry_timeout_ms,
		};
		struct scan_oci_config oc = {
			.stores = (const char *const *)c->scan.stores.v,
			.nstores = c->scan.stores.n,
			.platform = c->scan.platform,
			.host_root = c->scan.host_root,
			.max_sbom_bytes = (size_t)c->scan.max_sbom_bytes,
			.max_packages = (size_t)c->scan.max_packages,
			.registry = c->scan.registry ? &regc : NULL,
			.layer_cache_dir = cache_dir[0] ? cache_dir : NULL,
			.layer_cache_max_bytes =
			    (uint64_t)c->scan.layer_cache_max_bytes,
		};
		e->backend = &scan_backend_oci;
		rc = e->backend->init(&oc, &e->bctx, err, errlen);
	}
	if (rc != 0)
		return rc;
	struct scan_pool_config pc = { c->scan.workers, c->scan.timeout_ms };
	e->pool = scan_pool_new(e->backend, e->bctx, &pc, err, errlen);
	return e->pool ? 0 : -EINVAL;
}

static void
jobs_grow(struct jobs *j, uint32_t handle)
{
	if (handle < j->cap)
		return;
	size_t cap = j->cap ? j->cap : 1024;
	while (cap <= handle)
		cap *= 2;
	j->of = xreallocarray(j->of, cap, sizeof(*j->of));
	j->cancelled = xreallocarray(j->cancelled, cap, 1);
	memset(j->of + j->cap, 0, (cap - j->cap) * sizeof(*j->of));
	memset(j->cancelled + j->cap, 0, cap - j->cap);
	j->cap = cap;
}

bool
scans_running(const engine *e, uint32_t handle)
{
	return handle < e->jobs.cap && e->jobs.of[handle] != 0;
}

void
scans_abort(engine *e, uint32_t handle)
{
	if (!scans_running(e, handle))
		return;
	e->jobs.cancelled[handle] = 1;
	(void)scan_pool_abort(e->pool, e->jobs.of[handle]);
}

/* Hands tj to the pool; 0, or the pool's error (the caller requeues). */
static int
submit(engine *e, const struct tracker_job *tj)
{
	struct jobs *j = &e->jobs;
	char id[300];
	tracker_id_string(e->t, tj->handle, id, sizeof(id));
	struct refs *r = outcomes_refs(e, tj->handle);
	uint64_t job_id = (++j->seq << 32) | tj->handle;
	struct scan_job *job = scan_job_new(job_id,
	    (enum entity_kind)tj->key.kind, id, r->tags, r->ntags, r->digests,
	    r->ndigests, tj->attempt);
	arena_reset(&e->scratch);
	int rc = scan_pool_submit(e->pool, job);
	if (rc != 0) {
		scan_job_free(job);
		return rc;
	}
	jobs_grow(j, tj->handle);
	j->of[tj->handle] = job_id;
	j->cancelled[tj->handle] = 0;
	j->in_pool++;
	e->snap->scans_started++;
	char att[16];
	snprintf(att, sizeof(att), "%u", tj->attempt);
	log_kv(LOG_DEBUG, "scan started", "id", id, "attempt", att,
	    (char *)NULL);
	return 0;
}

static void
defer(struct jobs *j, const struct tracker_job *tj)
{
	if (j->ndeferred == j->deferred_cap) {
		j->deferred_cap = j->deferred_cap ? j->deferred_cap * 2 : 16;
		j->deferred = xreallocarray(j->deferred, j->deferred_cap,
		    sizeof(*j->deferred));
	}
	j->deferred[j->ndeferred++] = *tj;
}

void
scans_dispatch(engine *e, int64_t now)
{
	if (e->cfg->scan.backend == CONFIG_BACKEND_NONE)
		return; /* scanning disabled: due entities wait in the heap */
	size_t cap = (size_t)e->cfg->scan.workers * 2;
	struct tracker_job tj;
	while (e->jobs.in_pool < cap && tracker_pop_due(e->t, now, &tj)) {
		if (scans_running(e, tj.handle)) {
			/* Its aborted predecessor is still running. */
			defer(&e->jobs, &tj);
			continue;
		}
		if (submit(e, &tj) != 0) {
			(void)tracker_requeue(e->t, tj.handle, now);
			break;
		}
	}
}

/* A job that waited for handle's previous job may go now. */
static void
undefer(engine *e, uint32_t h, int64_t now)
{
	struct jobs *j = &e->jobs;
	for (size_t d = 0; d < j->ndeferred; d++) {
		if (j->deferred[d].handle != h)
			continue;
		struct tracker_job tj = j->deferred[d];
		j->deferred[d] = j->deferred[--j->ndeferred];
		if (submit(e, &tj) != 0)
			(void)tracker_requeue(e->t, h, now);
		return;
	}
}

static void
count_finished(engine *e, const struct scan_result *res)
{
	int row = res->rc == 0 ? 0 :
	    res->error_class == ERROR_PERMANENT ? 2 : 1;
	e->snap->scans_finished[row]++;
	hist_observe(&e->snap->scan_duration,
	    (double)res->duration_ms / 1000.0);
}

static void
complete_one(engine *e, struct scan_completion *c, int64_t now)
{
	struct jobs *j = &e->jobs;
	uint32_t h = (uint32_t)(c->job_id & 0xffffffffu);
	bool current = h < j->cap && j->of[h] == c->job_id;
	bool cancelled = current && j->cancelled[h];
	if (current) {
		j->of[h] = 0;
		j->cancelled[h] = 0;
	}
	j->in_pool--;
	struct scan_result *res = &c->result;
	if (!current) {
		/* Released with its partition: the handle may be another
		 * entity's by now. */
	} else if (cancelled) {
		/* CANCELLED already published. */
	} else if (c->aborted) {
		(void)tracker_requeue(e->t, h, now);
	} else {
		struct tracker_result tr = {
			.ok = res->rc == 0,
			.error_class = res->error_class,
			.error = res->rc == 0 ? NULL : res->error,
			.not_before = res->rc != 0 && res->retry_after_ms > 0 ?
			    now + res->retry_after_ms : 0,
		};
		struct tracker_outcome out;
		count_finished(e, res);
		if (tracker_complete(e->t, h, c->job->attempt, &tr, now,
			&out) == 0 &&
		    out.status != OUTCOME_NONE)
			outcomes_emit(e, &out, res, now);
	}
	scan_result_free(res);
	scan_job_free(c->job);
	if (current)
		undefer(e, h, now);
}

void
scans_complete(engine *e, int64_t now)
{
	struct scan_completion c[POLL_MAX];
	size_t n;
	while ((n = scan_pool_poll(e->pool, c, POLL_MAX)) > 0)
		for (size_t i = 0; i < n; i++)
			complete_one(e, &c[i], now);
}

void
scans_requeue_deferred(engine *e, int64_t now)
{
	for (size_t d = 0; d < e->jobs.ndeferred; d++)
		(void)tracker_requeue(e->t, e->jobs.deferred[d].handle, now);
	e->jobs.ndeferred = 0;
}

void
scans_release_partition(engine *e, int32_t p, int64_t now)
{
	struct jobs *j = &e->jobs;
	struct tracker_info info;
	for (uint32_t h = 0; h < j->cap; h++) {
		if (j->of[h] == 0 || tracker_info_get(e->t, h, &info) != 0 ||
		    info.partition != p)
			continue;
		(void)scan_pool_abort(e->pool, j->of[h]);
		j->of[h] = 0;
		j->cancelled[h] = 0;
		(void)tracker_requeue(e->t, h, now);
	}
	for (size_t d = 0; d < j->ndeferred;) {
		uint32_t h = j->deferred[d].handle;
		if (tracker_info_get(e->t, h, &info) == 0 &&
		    info.partition == p) {
			(void)tracker_requeue(e->t, h, now);
			j->deferred[d] = j->deferred[--j->ndeferred];
		} else {
			d++;
		}
	}
}

void
scans_free(engine *e)
{
	if (e->pool) {
		scan_pool_shutdown(e->pool, true);
		struct scan_completion c[POLL_MAX];
		size_t n;
		while ((n = scan_pool_poll(e->pool, c, POLL_MAX)) > 0)
			for (size_t i = 0; i < n; i++) {
				scan_result_free(&c[i].result);
				scan_job_free(c[i].job);
			}
		scan_pool_free(e->pool);
		e->pool = NULL;
	}
	if (e->backend && e->bctx)
		e->backend->fini(e->bctx);
	e->bctx = NULL;
	free(e->jobs.of);
	free(e->jobs.cancelled);
	free(e->jobs.deferred);
	memset(&e->jobs, 0, sizeof(e->jobs));
}
