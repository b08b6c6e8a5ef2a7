/*
 * test_pool: the scan worker pool against a backend defined here (its
 * collaborator is the interface): parallelism measured with counters,
 * every completion delivered exactly once, aborts of queued and running
 * jobs, timeouts, shutdown, the wakeup fd; and one real `oci` HOST scan
 * of a tree the test builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/backend.h"
#include "scan/pool.h"

/* ---- the test backend: what a job does is named by its image_id ---- */

#define MAX_IDS 1024

struct tb {
	atomic_int running;	/* scans in progress now */
	atomic_int max_running; /* the most at once */
	atomic_int release;	/* opens the "gate" jobs */
	atomic_int calls[MAX_IDS]; /* scans per job id */
};

static struct tb tb;

static void
sleep_ms(int ms)
{
	(void)poll(NULL, 0, ms);
}

static void
tb_scan(void *ctx, const struct scan_job *job, const atomic_int *cancel,
    struct scan_result *res)
{
	struct tb *t = ctx;
	const char *m = job->image_id;
	int now = atomic_fetch_add(&t->running, 1) + 1;
	int max = atomic_load(&t->max_running);
	while (now > max &&
	    !atomic_compare_exchange_weak(&t->max_running, &max, now))
		;
	if (job->id < MAX_IDS)
		atomic_fetch_add(&t->calls[job->id], 1);

	if (strcmp(m, "gate") == 0) {
		/* holds its worker until the test opens the gate */
		while (!atomic_load(&t->release) && !atomic_load(cancel))
			sleep_ms(1);
	} else if (strcmp(m, "spin") == 0) {
		/* runs until cancelled, like a scan that hangs */
		while (!atomic_load(cancel))
			sleep_ms(1);
		scan_result_fail(res, -ECANCELED, ERROR_RETRYABLE,
		    "spin cancelled");
		goto out;
	} else if (strncmp(m, "sleep:", 6) == 0) {
		sleep_ms(atoi(m + 6));
	} else if (strcmp(m, "fail") == 0) {
		scan_result_fail(res, -EIO, ERROR_RETRYABLE, "boom %llu",
		    (unsigned long long)job->id);
		goto out;
	}
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "{\"job\":%llu}",
	    (unsigned long long)job->id);
	res->sbom = strdup(buf);
	res->sbom_len = (size_t)n;
	res->components = 1;
	res->rc = 0;
out:
	atomic_fetch_sub(&t->running, 1);
}

static const struct scan_backend test_backend = {
	.name = "test",
	.scan = tb_scan,
};

static scan_pool *
new_pool(int workers, int64_t timeout_ms)
{
	char err[256];
	memset(&tb, 0, sizeof(tb));
	struct scan_pool_config cfg = {.workers = workers,
	    .timeout_ms = timeout_ms};
	scan_pool *p = scan_pool_new(&test_backend, &tb, &cfg, err,
	    sizeof(err));
	assert_non_null(p);
	return p;
}

static void
submit(scan_pool *p, uint64_t id, const char *what)
{
	struct scan_job *j = scan_job_new(id, ENTITY_IMAGE, what, NULL, 0, NULL,
	    0, 1);
	assert_int_equal(scan_pool_submit(p, j), 0);
}

static void
release(struct scan_completion *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		scan_result_free(&c[i].result);
		scan_job_free(c[i].job);
	}
}

/* Polls until n completions arrived (failing after 20 s). */
static void
collect(scan_pool *p, struct scan_completion *out, size_t n)
{
	size_t got = 0;
	for (int rounds = 0; got < n; rounds++) {
		assert_true(rounds < 200);
		scan_pool_wait(p, 100);
		got += scan_pool_poll(p, out + got, n - got);
	}
}

/* Waits until f(p) == want (failing after 20 s). */
static void
await(scan_pool *p, size_t (*f)(scan_pool *), size_t want)
{
	for (int i = 0; f(p) != want; i++) {
		assert_true(i < 20000);
		sleep_ms(1);
	}
}

static void
test_bad_config(void **state)
{
	(void)state;
	char err[256];
	struct scan_pool_config cfg = {.workers = 0};
	assert_null(scan_pool_new(&test_backend, &tb, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "scan.workers"));
	cfg.workers = 2;
	cfg.timeout_ms = -1;
	assert_null(scan_pool_new(&test_backend, &tb, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "scan.timeout"));
}

/* N workers run N jobs at once: all are inside the backend together. */
static void
test_parallel(void **state)
{
	(void)state;
	enum { N = 4 };
	scan_pool *p = new_pool(N, 0);
	assert_int_equal(scan_pool_workers(p), N);
	for (int i = 0; i < N; i++)
		submit(p, (uint64_t)i, "gate");
	await(p, scan_pool_busy, N);
	while (atomic_load(&tb.running) != N)
		sleep_ms(1);
	assert_int_equal(scan_pool_queued(p), 0);
	assert_int_equal(scan_pool_pending(p), 0);
	atomic_store(&tb.release, 1);

	struct scan_completion c[N];
	collect(p, c, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(c[i].result.rc, 0);
		assert_true(c[i].started);
		assert_false(c[i].aborted);
		assert_false(c[i].timed_out);
	}
	assert_int_equal(atomic_load(&tb.max_running), N);
	release(c, N);
	scan_pool_free(p);
}

/* More jobs than workers: never more than `workers` at once, the rest
 * wait in the queue. */
static void
test_bounded(void **state)
{
	(void)state;
	enum { W = 3, J = 10 };
	scan_pool *p = new_pool(W, 0);
	for (int i = 0; i < J; i++)
		submit(p, (uint64_t)i, "gate");
	await(p, scan_pool_busy, W);
	assert_int_equal(scan_pool_queued(p), J - W);
	atomic_store(&tb.release, 1);
	struct scan_completion c[J];
	collect(p, c, J);
	assert_int_equal(atomic_load(&tb.max_running), W);
	release(c, J);
	scan_pool_free(p);
}

/* Hundreds of jobs: each comes back once, with its own result. */
static void
test_exactly_once(void **state)
{
	(void)state;
	enum { J = 300 };
	scan_pool *p = new_pool(4, 0);
	for (int i = 0; i < J; i++)
		submit(p, (uint64_t)i, i % 3 == 0 ? "fail" : "ok");

	struct scan_completion *c = calloc(J, sizeof(*c));
	int seen[J] = {0};
	collect(p, c, J);
	for (int i = 0; i < J; i++) {
		uint64_t id = c[i].job_id;
		assert_true(id < J);
		assert_int_equal(c[i].job->id, id);
		seen[id]++;
		assert_int_equal(atomic_load(&tb.calls[id]), 1);
		assert_true(c[i].result.started_at_ms > 0);
		assert_true(c[i].result.duration_ms >= 0);
		if (id % 3 == 0) {
			char want[64];
			snprintf(want, sizeof(want), "boom %llu",
			    (unsigned long long)id);
			assert_int_equal(c[i].result.rc, -EIO);
			assert_int_equal(c[i].result.error_class,
			    ERROR_RETRYABLE);
			assert_string_equal(c[i].result.error, want);
			assert_null(c[i].result.sbom);
		} else {
			char want[64];
			snprintf(want, sizeof(want), "{\"job\":%llu}",
			    (unsigned long long)id);
			assert_int_equal(c[i].result.rc, 0);
			assert_string_equal(c[i].result.sbom, want);
		}
	}
	for (int i = 0; i < J; i++)
		assert_int_equal(seen[i], 1);
	struct scan_completion extra;
	assert_int_equal(scan_pool_poll(p, &extra, 1), 0);
	assert_int_equal(scan_pool_pending(p), 0);
	assert_int_equal(scan_pool_busy(p), 0);
	release(c, J);
	free(c);
	scan_pool_free(p);
}

static void
test_abort_queued_and_running(void **state)
{
	(void)state;
	scan_pool *p = new_pool(1, 0);
	submit(p, 1, "spin");
	submit(p, 2, "ok");
	submit(p, 3, "ok");
	await(p, scan_pool_busy, 1);
	assert_int_equal(scan_pool_queued(p), 2);

	/* queued: back at once, never run */
	assert_int_equal(scan_pool_abort(p, 3), 0);
	struct scan_completion c[3];
	assert_int_equal(scan_pool_poll(p, c, 3), 1);
	assert_int_equal(c[0].job_id, 3);
	assert_true(c[0].aborted);
	assert_false(c[0].started);
	assert_false(c[0].timed_out);
	assert_int_equal(c[0].result.rc, -ECANCELED);
	assert_int_equal(atomic_load(&tb.calls[3]), 0);
	assert_int_equal(scan_pool_queued(p), 1);
	release(c, 1);

	/* unknown ids */
	assert_int_equal(scan_pool_abort(p, 99), -ENOENT);
	assert_int_equal(scan_pool_abort(p, 3), -ENOENT);

	/* running: its backend sees the flag and gives up */
	assert_int_equal(scan_pool_abort(p, 1), 0);
	collect(p, c, 2);
	assert_int_equal(c[0].job_id, 1);
	assert_true(c[0].aborted);
	assert_true(c[0].started);
	assert_int_equal(c[0].result.rc, -ECANCELED);
	assert_int_equal(c[1].job_id, 2);
	assert_false(c[1].aborted);
	assert_int_equal(c[1].result.rc, 0);
	assert_int_equal(atomic_load(&tb.calls[2]), 1);
	release(c, 2);
	scan_pool_free(p);
}

/* The tail of the queue can be aborted and the queue still works. */
static void
test_abort_queue_tail(void **state)
{
	(void)state;
	scan_pool *p = new_pool(1, 0);
	submit(p, 1, "gate");
	await(p, scan_pool_busy, 1);
	submit(p, 2, "ok");
	submit(p, 3, "ok");
	assert_int_equal(scan_pool_abort(p, 3), 0); /* the tail */
	assert_int_equal(scan_pool_abort(p, 2), 0); /* now head and tail */
	submit(p, 4, "ok");
	atomic_store(&tb.release, 1);
	struct scan_completion c[4];
	collect(p, c, 4);
	assert_int_equal(c[0].job_id, 3);
	assert_int_equal(c[1].job_id, 2);
	for (int i = 2; i < 4; i++) {
		assert_true(c[i].job_id == 1 || c[i].job_id == 4);
		assert_false(c[i].aborted);
		assert_int_equal(c[i].result.rc, 0);
	}
	release(c, 4);
	scan_pool_free(p);
}

static void
test_timeout(void **state)
{
	(void)state;
	scan_pool *p = new_pool(2, 100);
	submit(p, 1, "spin");
	/* its own limit beats the default */
	struct scan_job *j = scan_job_new(2, ENTITY_IMAGE, "spin", NULL, 0,
	    NULL, 0, 1);
	j->timeout_ms = 50;
	assert_int_equal(scan_pool_submit(p, j), 0);
	struct scan_completion c[2];
	collect(p, c, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(c[i].timed_out);
		assert_false(c[i].aborted);
		assert_int_equal(c[i].result.rc, -ETIMEDOUT);
		assert_int_equal(c[i].result.error_class, ERROR_RETRYABLE);
		assert_null(c[i].result.sbom);
		const char *want = c[i].job_id == 1 ?
		    "scan timed out after 100ms" : "scan timed out after 50ms";
		assert_string_equal(c[i].result.error, want);
	}
	release(c, 2);

	/* a quick job under a limit is not timed out */
	submit(p, 3, "ok");
	/* no limit at all: runs past the default */
	j = scan_job_new(4, ENTITY_IMAGE, "sleep:300", NULL, 0, NULL, 0, 1);
	j->timeout_ms = -1;
	assert_int_equal(scan_pool_submit(p, j), 0);
	collect(p, c, 2);
	for (int i = 0; i < 2; i++) {
		assert_false(c[i].timed_out);
		assert_int_equal(c[i].result.rc, 0);
	}
	release(c, 2);
	scan_pool_free(p);
}

static void
test_shutdown_abort(void **state)
{
	(void)state;
	scan_pool *p = new_pool(2, 0);
	for (int i = 0; i < 7; i++)
		submit(p, (uint64_t)i, "spin");
	await(p, scan_pool_busy, 2);
	scan_pool_shutdown(p, true); /* hangs here if the abort is lost */
	assert_int_equal(scan_pool_busy(p), 0);
	assert_int_equal(scan_pool_queued(p), 0);
	assert_int_equal(scan_pool_pending(p), 7);
	struct scan_job *j = scan_job_new(9, ENTITY_IMAGE, "ok", NULL, 0, NULL,
	    0, 1);
	assert_int_equal(scan_pool_submit(p, j), -ESHUTDOWN);
	scan_job_free(j);
	scan_pool_shutdown(p, true); /* idempotent */

	struct scan_completion c[7];
	assert_int_equal(scan_pool_poll(p, c, 7), 7);
	int started = 0;
	for (int i = 0; i < 7; i++) {
		assert_true(c[i].aborted);
		started += c[i].started;
	}
	assert_int_equal(started, 2);
	release(c, 7);
	assert_false(scan_pool_wait(p, -1)); /* nothing can come any more */
	scan_pool_free(p);
}

static void *
open_when_drained(void *arg)
{
	scan_pool *p = arg;
	while (scan_pool_queued(p) != 0)
		sleep_ms(1);
	atomic_store(&tb.release, 1);
	return NULL;
}

/* Without abort_running: running jobs finish, queued ones come back
 * aborted; completions not polled are freed by scan_pool_free. */
static void
test_shutdown_drain(void **state)
{
	(void)state;
	scan_pool *p = new_pool(1, 0);
	submit(p, 1, "gate");
	submit(p, 2, "ok");
	submit(p, 3, "ok");
	await(p, scan_pool_busy, 1);
	/* the gate opens once shutdown has emptied the queue */
	pthread_t opener;
	assert_int_equal(pthread_create(&opener, NULL, open_when_drained, p),
	    0);
	scan_pool_shutdown(p, false);
	pthread_join(opener, NULL);
	struct scan_completion c[2];
	assert_int_equal(scan_pool_pending(p), 3);
	assert_int_equal(scan_pool_poll(p, c, 2), 2);
	/* the queued ones were aborted first, the running one finished */
	assert_true(c[0].aborted);
	assert_true(c[1].aborted);
	assert_false(c[0].started);
	release(c, 2);
	assert_int_equal(atomic_load(&tb.calls[1]), 1);
	assert_int_equal(atomic_load(&tb.calls[2]), 0);
	scan_pool_free(p); /* frees job 1's completion (ASan checks) */
}

static bool
readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

static void
test_wakeup_fd(void **state)
{
	(void)state;
	scan_pool *p = new_pool(2, 0);
	int fd = scan_pool_wakeup_fd(p);
	assert_true(fd >= 0);
	assert_false(readable(fd, 0));
	assert_false(scan_pool_wait(p, 10));

	submit(p, 1, "ok");
	submit(p, 2, "ok");
	assert_true(readable(fd, 10000));
	assert_true(scan_pool_wait(p, 0));
	await(p, scan_pool_pending, 2);
	struct scan_completion c[2];
	assert_int_equal(scan_pool_poll(p, c, 1), 1);
	assert_true(readable(fd, 0)); /* one is still waiting */
	assert_int_equal(scan_pool_poll(p, c + 1, 1), 1);
	assert_false(readable(fd, 0));
	release(c, 2);

	submit(p, 3, "sleep:20");
	assert_true(readable(fd, 10000));
	assert_int_equal(scan_pool_poll(p, c, 2), 1);
	assert_false(readable(fd, 0));
	release(c, 1);
	scan_pool_free(p);
}

/* ---- the real oci backend, HOST job on a tree built here ---- */

static char tmpdir[] = "/tmp/sbomd-test-pool-XXXXXX";

static void
write_file(const char *rel, const char *content)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	for (char *s = path + strlen(tmpdir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void
test_oci_host(void **state)
{
	(void)state;
	char root[4200], err[256];
	assert_non_null(mkdtemp(tmpdir));
	write_file("root/etc/os-release",
	    "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n");
	write_file("root/var/lib/dpkg/status",
	    "Package: adduser\nStatus: install ok installed\n"
	    "Architecture: all\nVersion: 3.134\n\n"
	    "Package: libc6\nStatus: install ok installed\n"
	    "Architecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u7\n");
	snprintf(root, sizeof(root), "%s/root", tmpdir);

	struct scan_oci_config oc = {.host_root = root};
	void *ctx;
	assert_int_equal(scan_backend_oci.init(&oc, &ctx, err, sizeof(err)),
	    0);
	struct scan_pool_config cfg = {.workers = 2, .timeout_ms = 60000};
	scan_pool *p = scan_pool_new(&scan_backend_oci, ctx, &cfg, err,
	    sizeof(err));
	assert_non_null(p);

	struct scan_job *host = scan_job_new(1, ENTITY_HOST, "node-7", NULL, 0,
	    NULL, 0, 1);
	assert_int_equal(scan_pool_submit(p, host), 0);
	/* an image in no store: the retryable "not pulled yet" */
	const char *img = "sha256:"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	assert_int_equal(scan_pool_submit(p, scan_job_new(2, ENTITY_IMAGE, img,
	    NULL, 0, NULL, 0, 1)), 0);

	struct scan_completion c[2];
	collect(p, c, 2);
	for (int i = 0; i < 2; i++) {
		struct scan_result *r = &c[i].result;
		assert_false(c[i].aborted);
		assert_false(c[i].timed_out);
		if (c[i].job_id == 1) {
			assert_int_equal(r->rc, 0);
			assert_non_null(r->sbom);
			assert_int_equal(strlen(r->sbom), r->sbom_len);
			assert_int_equal(r->components, 2);
			assert_non_null(strstr(r->sbom,
			    "pkg:deb/debian/adduser@3.134"));
			assert_non_null(strstr(r->sbom, "node-7"));
		} else {
			assert_int_not_equal(r->rc, 0);
			assert_int_equal(r->error_class, ERROR_RETRYABLE);
			assert_null(r->sbom);
		}
	}
	release(c, 2);
	scan_pool_free(p);
	scan_backend_oci.fini(ctx);

	/* without scan.host_root, host scans are a configuration error */
	struct scan_oci_config none = {0};
	assert_int_equal(scan_backend_oci.init(&none, &ctx, err, sizeof(err)),
	    0);
	struct scan_job *j = scan_job_new(5, ENTITY_HOST, "node-8", NULL, 0,
	    NULL, 0, 1);
	struct scan_result r = {0};
	atomic_int cancel = SCAN_CANCEL_NONE;
	scan_backend_oci.scan(ctx, j, &cancel, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "scan.host_root"));
	/* a cancelled oci scan does not start */
	atomic_store(&cancel, SCAN_CANCEL_ABORT);
	memset(&r, 0, sizeof(r));
	scan_backend_oci.scan(ctx, j, &cancel, &r);
	assert_int_equal(r.rc, -ECANCELED);
	scan_job_free(j);
	scan_backend_oci.fini(ctx);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void
test_job_copy(void **state)
{
	(void)state;
	const char *tags[] = {"repo:1", "repo:latest"};
	const char *digs[] = {"repo@sha256:ab"};
	struct scan_job *j = scan_job_new(7, ENTITY_IMAGE, "sha256:x", tags, 2,
	    digs, 1, 3);
	assert_true(j->repo_tags[0] != tags[0]);
	assert_string_equal(j->repo_tags[1], "repo:latest");
	assert_string_equal(scan_job_ref(j), "repo@sha256:ab");
	assert_int_equal(j->attempt, 3);
	scan_job_free(j);
	j = scan_job_new(7, ENTITY_IMAGE, "sha256:x", tags, 2, NULL, 0, 1);
	assert_string_equal(scan_job_ref(j), "repo:1");
	scan_job_free(j);
	j = scan_job_new(7, ENTITY_HOST, "node-1", NULL, 0, NULL, 0, 1);
	assert_string_equal(scan_job_ref(j), "node-1");
	scan_job_free(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_job_copy),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_exactly_once),
		cmocka_unit_test(test_abort_queued_and_running),
		cmocka_unit_test(test_abort_queue_tail),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_shutdown_abort),
		cmocka_unit_test(test_shutdown_drain),
		cmocka_unit_test(test_wakeup_fd),
		cmocka_unit_test(test_oci_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
