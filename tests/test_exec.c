/*
 * test_exec: the exec backend with real processes. The scripts are
 * written by the test into a temporary directory and run by /bin/sh
 * named in the argv (the backend itself uses no shell). Every test ends
 * checking that no child is left unreaped and no descriptor leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "scan/backend.h"
#include "scan/pool.h"
#include "util/clock.h"

static char tmpdir[] = "/tmp/sbomd-test-exec-XXXXXX";
static int fds_at_start;

static const char *IMG =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
#define DIG "example.com/app@sha256:" \
    "feedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeed"

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static int64_t
mono_ms(void)
{
	return clock_mono_ms();
}

static void
sleep_ms(int ms)
{
	(void)poll(NULL, 0, ms);
}

/* Writes a script into tmpdir; returns its path (static buffer). */
static const char *
script(const char *name, const char *body, mode_t mode)
{
	static char path[4][4200];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(body, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

struct run_opts {
	size_t max_sbom;
	const int *retryable;
	size_t nretryable;
	int64_t timeout_ms;
	int64_t grace_ms;
	int cancel_after_ms; /* 0: never */
};

struct canceller {
	atomic_int *flag;
	int after_ms;
};

static void *
cancel_later(void *arg)
{
	struct canceller *c = arg;
	sleep_ms(c->after_ms);
	atomic_store(c->flag, SCAN_CANCEL_ABORT);
	return NULL;
}

/* Runs one job through the exec backend as a pool worker would. */
static void
run(const char *const *argv, size_t argc, const struct scan_job *tmpl,
    const struct run_opts *o, struct scan_result *res)
{
	char err[256];
	void *ctx;
	struct scan_exec_config c = {
		.argv = argv, .argc = argc,
		.retryable_exit_codes = o ? o->retryable : NULL,
		.nretryable = o ? o->nretryable : 0,
		.max_sbom_bytes = o ? o->max_sbom : 0,
		.kill_grace_ms = o ? o->grace_ms : 0,
	};
	assert_int_equal(scan_backend_exec.init(&c, &ctx, err, sizeof(err)),
	    0);
	struct scan_job job = *tmpl;
	if (o != NULL && o->timeout_ms > 0) {
		job.timeout_ms = o->timeout_ms;
		job.deadline_ms = mono_ms() + o->timeout_ms;
	}
	atomic_int cancel = SCAN_CANCEL_NONE;
	pthread_t t;
	struct canceller cc = {&cancel, o ? o->cancel_after_ms : 0};
	if (cc.after_ms > 0)
		assert_int_equal(pthread_create(&t, NULL, cancel_later, &cc),
		    0);
	memset(res, 0, sizeof(*res));
	scan_backend_exec.scan(ctx, &job, &cancel, res);
	if (cc.after_ms > 0)
		pthread_join(t, NULL);
	scan_backend_exec.fini(ctx);
}

static struct scan_job *
image_job(void)
{
	const char *tags[] = {"example.com/app:1.2"};
	const char *digs[] = {DIG};
	return scan_job_new(1, ENTITY_IMAGE, IMG, tags, 1, digs, 1, 1);
}

static void
assert_no_leaks(void)
{
	int st;
	errno = 0;
	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD); /* no child, zombie or alive */
	assert_int_equal(count_fds(), fds_at_start);
}

/* Gone, or a zombie left to init (which may not reap in containers). */
static bool
process_gone(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			char *rp = strrchr(buf, ')');
			if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
				return true;
		}
		sleep_ms(10);
	}
	return false;
}

static pid_t
read_pid(const char *name)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int pid = 0;
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	assert_true(pid > 1);
	return (pid_t)pid;
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	fds_at_start = count_fds();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static const char ECHO_ARGS[] =
    "stdin=$(cat)\n"
    "printf '{\"bomFormat\":\"CycloneDX\",\"args\":[\"%s\",\"%s\",\"%s\"],"
    "\"stdin\":\"%s\",\"components\":[{\"name\":\"a\"},{\"name\":\"b\"}]}'"
    " \"$1\" \"$2\" \"$3\" \"$stdin\"\n"
    "echo 'a warning nobody reads' >&2\n";

static void
check_args(const struct scan_result *r, const char *a1, const char *a2,
    const char *a3)
{
	assert_int_equal(r->rc, 0);
	assert_non_null(r->sbom);
	assert_int_equal(strlen(r->sbom), r->sbom_len);
	assert_int_equal(r->components, 2);
	json_t *doc = json_loads(r->sbom, 0, NULL);
	assert_non_null(doc);
	json_t *args = json_object_get(doc, "args");
	assert_string_equal(json_string_value(json_array_get(args, 0)), a1);
	assert_string_equal(json_string_value(json_array_get(args, 1)), a2);
	assert_string_equal(json_string_value(json_array_get(args, 2)), a3);
	assert_string_equal(json_string_value(json_object_get(doc, "stdin")),
	    "");
	json_decref(doc);
}

static void
test_success_placeholders(void **state)
{
	(void)state;
	const char *s = script("echo.sh", ECHO_ARGS, 0644);
	const char *argv[] = {"/bin/sh", s, "--image={id}", "{ref}",
	    "{id}/{ref}{nope}"};
	struct scan_job *j = image_job();
	struct scan_result r;
	run(argv, 5, j, NULL, &r);
	char both[512];
	snprintf(both, sizeof(both), "%s/%s{nope}", IMG, DIG);
	char first[256];
	snprintf(first, sizeof(first), "--image=%s", IMG);
	check_args(&r, first, DIG, both);
	scan_result_free(&r);
	scan_job_free(j);

	/* {ref} falls back to the first tag, then to the id (hosts) */
	const char *tags[] = {"example.com/app:1.2", "other:2"};
	j = scan_job_new(2, ENTITY_IMAGE, IMG, tags, 2, NULL, 0, 1);
	run(argv, 4, j, NULL, &r);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.sbom, "\"example.com/app:1.2\""));
	scan_result_free(&r);
	scan_job_free(j);
	j = scan_job_new(3, ENTITY_HOST, "node-7", NULL, 0, NULL, 0, 1);
	const char *argv3[] = {"/bin/sh", s, "{id}", "{ref}", "x"};
	run(argv3, 5, j, NULL, &r);
	check_args(&r, "node-7", "node-7", "x");
	scan_result_free(&r);
	scan_job_free(j);

	/* argv[0] is looked up in PATH */
	const char *argv4[] = {"sh", s, "a", "b", "c"};
	j = image_job();
	run(argv4, 5, j, NULL, &r);
	check_args(&r, "a", "b", "c");
	scan_result_free(&r);
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_not_json(void **state)
{
	(void)state;
	const struct {
		const char *body;
		const char *want;
	} cases[] = {
		{"echo 'this is not json'\n", "exec output is not JSON: "},
		{"echo '[1, 2]'\n", "exec output is not JSON: a JSON object"},
		{"exit 0\n", "exec output is not JSON: no output"},
		{"printf '{\"a\": 1} trailing'\n", "exec output is not JSON: "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *s = script("nj.sh", cases[i].body, 0644);
		const char *argv[] = {"/bin/sh", s};
		struct scan_job *j = image_job();
		struct scan_result r;
		run(argv, 2, j, NULL, &r);
		assert_int_not_equal(r.rc, 0);
		assert_int_equal(r.error_class, ERROR_PERMANENT);
		assert_null(r.sbom);
		assert_non_null(strstr(r.error, cases[i].want));
		scan_job_free(j);
	}
	assert_no_leaks();
}

static void
test_oversize(void **state)
{
	(void)state;
	/* endless output: the group is killed at the bound */
	const char *s = script("big.sh", "yes 'aaaaaaaaaaaaaaaa'\n", 0644);
	const char *argv[] = {"/bin/sh", s};
	struct run_opts o = {.max_sbom = 1000, .grace_ms = 500};
	struct scan_job *j = image_job();
	struct scan_result r;
	int64_t t0 = mono_ms();
	run(argv, 2, j, &o, &r);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(r.rc, -EFBIG);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "SBOM larger than 1000 bytes"));
	assert_null(r.sbom);

	/* exactly at the bound is fine */
	s = script("exact.sh", "printf '{\"x\":\"%s\"}' "
	    "\"$(printf '%0992d' 0)\"\n", 0644);
	const char *argv2[] = {"/bin/sh", s};
	run(argv2, 2, j, &o, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.sbom_len, 1000);
	scan_result_free(&r);
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_exit_codes(void **state)
{
	(void)state;
	const char *s = script("code.sh",
	    "echo 'first line' >&2\necho \"registry busy, code $1\" >&2\n"
	    "exit \"$1\"\n", 0644);
	const int retry[] = {75, 69};
	struct run_opts o = {.retryable = retry, .nretryable = 2};
	struct scan_job *j = image_job();
	struct scan_result r;

	const char *a75[] = {"/bin/sh", s, "75"};
	run(a75, 3, j, &o, &r);
	assert_int_equal(r.error_class, ERROR_RETRYABLE);
	assert_int_not_equal(r.rc, 0);
	assert_non_null(strstr(r.error, "exited with code 75"));
	assert_non_null(strstr(r.error, "/bin/sh"));
	assert_non_null(strstr(r.error, "first line registry busy, code 75"));

	const char *a3[] = {"/bin/sh", s, "3"};
	run(a3, 3, j, &o, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "exited with code 3"));
	assert_non_null(strstr(r.error, "code 3"));

	/* a long stderr: its end is what the message keeps */
	s = script("chatty.sh",
	    "i=0; while [ $i -lt 500 ]; do echo \"noise line $i\" >&2; "
	    "i=$((i+1)); done\necho 'THE REAL CAUSE' >&2\nexit 2\n", 0644);
	const char *a2[] = {"/bin/sh", s};
	run(a2, 2, j, &o, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_true(strlen(r.error) < SCAN_ERROR_MAX);
	assert_non_null(strstr(r.error, "exited with code 2: ..."));
	assert_non_null(strstr(r.error, "THE REAL CAUSE"));
	assert_null(strstr(r.error, "noise line 0 "));
	scan_job_free(j);
	assert_no_leaks();
}

/* The script's background grandchild writes its pid to pidfile. */
static const char HANG[] =
    "sleep 1000 &\n"
    "echo $! > \"$1\"\n"
    "echo 'scanner started' >&2\n"
    "sleep 1000\n";

static void
test_timeout_kills_group(void **state)
{
	(void)state;
	char pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/grandchild.pid", tmpdir);
	const char *s = script("hang.sh", HANG, 0644);
	const char *argv[] = {"/bin/sh", s, pidfile};
	struct run_opts o = {.timeout_ms = 300};
	struct scan_job *j = image_job();
	struct scan_result r;
	int64_t t0 = mono_ms();
	run(argv, 3, j, &o, &r);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(r.rc, -ETIMEDOUT);
	assert_int_equal(r.error_class, ERROR_RETRYABLE);
	assert_non_null(strstr(r.error, "scan timed out after 300ms"));
	assert_non_null(strstr(r.error, "scanner started"));
	assert_true(process_gone(read_pid("grandchild.pid")));
	scan_job_free(j);
	assert_no_leaks();
}

/* A tool that ignores SIGTERM is SIGKILLed after the grace period. */
static void
test_timeout_term_ignored(void **state)
{
	(void)state;
	char pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/stubborn.pid", tmpdir);
	const char *s = script("stubborn.sh",
	    "trap '' TERM\nsleep 1000 &\necho $! > \"$1\"\n"
	    "while :; do sleep 1; done\n", 0644);
	const char *argv[] = {"/bin/sh", s, pidfile};
	struct run_opts o = {.timeout_ms = 300, .grace_ms = 200};
	struct scan_job *j = image_job();
	struct scan_result r;
	int64_t t0 = mono_ms();
	run(argv, 3, j, &o, &r);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(r.rc, -ETIMEDOUT);
	assert_true(process_gone(read_pid("stubborn.pid")));
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_cancel(void **state)
{
	(void)state;
	char pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/cancel.pid", tmpdir);
	const char *s = script("hang2.sh", HANG, 0644);
	const char *argv[] = {"/bin/sh", s, pidfile};
	struct run_opts o = {.cancel_after_ms = 300, .timeout_ms = 60000};
	struct scan_job *j = image_job();
	struct scan_result r;
	int64_t t0 = mono_ms();
	run(argv, 3, j, &o, &r);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(r.rc, -ECANCELED);
	assert_null(r.sbom);
	assert_true(process_gone(read_pid("cancel.pid")));
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_missing_and_not_executable(void **state)
{
	(void)state;
	struct scan_job *j = image_job();
	struct scan_result r;
	const char *argv[] = {"/nonexistent/sbom-tool", "{id}"};
	run(argv, 2, j, NULL, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "/nonexistent/sbom-tool"));
	assert_non_null(strstr(r.error, "not found"));

	const char *argv2[] = {"no-such-sbom-tool-in-path"};
	run(argv2, 1, j, NULL, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "no-such-sbom-tool-in-path"));

	const char *s = script("noexec.sh", "#!/bin/sh\necho '{}'\n", 0644);
	const char *argv3[] = {s};
	run(argv3, 1, j, NULL, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, s));
	assert_non_null(strstr(r.error, "not executable"));

	/* the same file, executable, runs directly (no shell in argv) */
	assert_int_equal(chmod(s, 0755), 0);
	run(argv3, 1, j, NULL, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.components, 0);
	scan_result_free(&r);
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_killed_by_signal(void **state)
{
	(void)state;
	const char *s = script("sig.sh",
	    "echo 'about to die' >&2\nkill -USR1 $$\nsleep 5\n", 0644);
	const char *argv[] = {"/bin/sh", s};
	struct scan_job *j = image_job();
	struct scan_result r;
	run(argv, 2, j, NULL, &r);
	assert_int_equal(r.error_class, ERROR_RETRYABLE);
	assert_non_null(strstr(r.error, "killed by SIGUSR1"));
	assert_non_null(strstr(r.error, "about to die"));
	scan_job_free(j);
	assert_no_leaks();
}

/* The tool's leftovers holding stdout open do not hold up the scan. */
static void
test_leftover_holds_pipe(void **state)
{
	(void)state;
	char pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/leftover.pid", tmpdir);
	const char *s = script("leftover.sh",
	    "sleep 1000 &\necho $! > \"$1\"\necho '{\"components\":[]}'\n",
	    0644);
	const char *argv[] = {"/bin/sh", s, pidfile};
	struct run_opts o = {.timeout_ms = 60000};
	struct scan_job *j = image_job();
	struct scan_result r;
	int64_t t0 = mono_ms();
	run(argv, 3, j, &o, &r);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.sbom, "{\"components\":[]}\n");
	assert_true(process_gone(read_pid("leftover.pid")));
	scan_result_free(&r);
	scan_job_free(j);
	assert_no_leaks();
}

static void
test_bad_config(void **state)
{
	(void)state;
	char err[256];
	void *ctx = NULL;
	struct scan_exec_config c = {0};
	assert_int_equal(scan_backend_exec.init(&c, &ctx, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "scan.exec_argv"));
	const char *argv[] = {"/bin/true"};
	const int codes[] = {0};
	c = (struct scan_exec_config){.argv = argv, .argc = 1,
	    .retryable_exit_codes = codes, .nretryable = 1};
	assert_int_equal(scan_backend_exec.init(&c, &ctx, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "scan.exec_retryable_exit_codes"));
	assert_null(ctx);
}

/* The tool gets the environment, minus the service's SBOMD_* settings. */
static void
test_environment(void **state)
{
	(void)state;
	setenv("SBOMD_KAFKA_CONSUMER_PROPERTIES", "sasl.password=hunter2", 1);
	setenv("SBOMD_TEST_KEEP", "no", 1);
	setenv("REGISTRY_MIRROR_FOR_TEST", "mirror.example", 1);
	const char *s = script("env.sh",
	    "printf '{\"secret\":\"%s\",\"mirror\":\"%s\"}' "
	    "\"$SBOMD_KAFKA_CONSUMER_PROPERTIES$SBOMD_TEST_KEEP\" "
	    "\"$REGISTRY_MIRROR_FOR_TEST\"\n", 0644);
	const char *argv[] = {"/bin/sh", s};
	struct scan_job *j = image_job();
	struct scan_result r;
	run(argv, 2, j, NULL, &r);
	unsetenv("SBOMD_KAFKA_CONSUMER_PROPERTIES");
	unsetenv("SBOMD_TEST_KEEP");
	unsetenv("REGISTRY_MIRROR_FOR_TEST");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.sbom,
	    "{\"secret\":\"\",\"mirror\":\"mirror.example\"}");
	scan_result_free(&r);
	scan_job_free(j);
	assert_no_leaks();
}

/* Through the pool: its deadline, several scans at once. */
static void
test_pool_exec(void **state)
{
	(void)state;
	char err[256], pidfile[4200];
	snprintf(pidfile, sizeof(pidfile), "%s/pool.pid", tmpdir);
	char body[8600];
	const char *s = script("poolhang.sh", HANG, 0644);
	snprintf(body, sizeof(body), "case \"$2\" in hang*) exec /bin/sh %s "
	    "\"$1\";; esac\n", s);
	size_t used = strlen(body);
	snprintf(body + used, sizeof(body) - used, "%s", ECHO_ARGS);
	const char *e = script("pooldispatch.sh", body, 0644);
	const char *argv[] = {"/bin/sh", e, pidfile, "{ref}", "{id}"};
	struct scan_exec_config c = {.argv = argv, .argc = 5,
	    .kill_grace_ms = 500};
	void *ctx;
	assert_int_equal(scan_backend_exec.init(&c, &ctx, err, sizeof(err)),
	    0);
	struct scan_pool_config pc = {.workers = 3, .timeout_ms = 400};
	scan_pool *p = scan_pool_new(&scan_backend_exec, ctx, &pc, err,
	    sizeof(err));
	assert_non_null(p);
	/* {ref} picks: the hanging script by a digest, echo by tags */
	const char *d1[] = {"hang@sha256:"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
	assert_int_equal(scan_pool_submit(p, scan_job_new(1, ENTITY_IMAGE, IMG,
	    NULL, 0, d1, 1, 1)), 0);
	const char *t2[] = {"echo:1"};
	for (uint64_t id = 2; id <= 5; id++)
		assert_int_equal(scan_pool_submit(p, scan_job_new(id,
		    ENTITY_IMAGE, IMG, t2, 1, NULL, 0, 1)), 0);

	struct scan_completion done[5];
	size_t got = 0;
	int64_t t0 = mono_ms();
	while (got < 5) {
		assert_true(mono_ms() - t0 < 20000);
		scan_pool_wait(p, 100);
		got += scan_pool_poll(p, done + got, 5 - got);
	}
	for (size_t i = 0; i < 5; i++) {
		if (done[i].job_id == 1) {
			assert_true(done[i].timed_out);
			assert_int_equal(done[i].result.rc, -ETIMEDOUT);
			assert_non_null(strstr(done[i].result.error,
			    "scan timed out after 400ms"));
		} else {
			assert_false(done[i].timed_out);
			assert_int_equal(done[i].result.rc, 0);
			assert_int_equal(done[i].result.components, 2);
		}
		scan_result_free(&done[i].result);
		scan_job_free(done[i].job);
	}
	assert_true(process_gone(read_pid("pool.pid")));
	scan_pool_free(p);
	scan_backend_exec.fini(ctx);
	assert_no_leaks();
}

/* Runs argv for a job made of (kind, id, one tag, one digest); the
 * result into r. */
static void
run_values(const char *const *argv, size_t argc, enum entity_kind kind,
    const char *id, const char *tag, const char *digest,
    struct scan_result *r)
{
	const char *t[] = {tag}, *d[] = {digest};
	struct scan_job *j = scan_job_new(9, kind, id, t, tag ? 1 : 0, d,
	    digest ? 1 : 0, 1);
	run(argv, argc, j, NULL, r);
	scan_job_free(j);
}

/*
 * Values a producer controls are checked before they reach argv: a
 * leading '-' in {id} or {ref}, or an image {ref} that is not a
 * reference, is PERMANENT naming the value, and the tool never runs.
 */
static void
test_refused_values(void **state)
{
	(void)state;
	char mark[4200], body[8400];
	struct scan_result r;
	snprintf(mark, sizeof(mark), "%s/ran", tmpdir);
	snprintf(body, sizeof(body), "echo ran >> %s\n%s", mark, ECHO_ARGS);
	const char *s = script("values.sh", body, 0644);
	const char *argv[] = {"/bin/sh", s, "{ref}", "{id}", "x"};

	/* an option smuggled in as a tag: {ref} */
	run_values(argv, 5, ENTITY_IMAGE, IMG, "--output=/tmp/x", NULL, &r);
	assert_int_equal(r.rc, -EINVAL);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_null(r.sbom);
	if (strstr(r.error, "{ref} \"--output=/tmp/x\" starts with '-'") ==
	    NULL)
		fail_msg("%s", r.error);
	scan_result_free(&r);

	/* a host named "-rf": {id} (and {ref}, the same name) */
	run_values(argv, 5, ENTITY_HOST, "-rf", NULL, NULL, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	if (strstr(r.error, "{id} \"-rf\" starts with '-'") == NULL)
		fail_msg("%s", r.error);
	scan_result_free(&r);

	/* not a reference: uppercase path, a digest that is not one */
	run_values(argv, 5, ENTITY_IMAGE, IMG, NULL, "UPPER/Case@xyz", &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	if (strstr(r.error, "{ref} \"UPPER/Case@xyz\" is not an image "
	    "reference") == NULL)
		fail_msg("%s", r.error);
	scan_result_free(&r);
	/* control bytes are not echoed into the message */
	run_values(argv, 5, ENTITY_IMAGE, IMG, "app:1\nx", NULL, &r);
	assert_int_equal(r.error_class, ERROR_PERMANENT);
	assert_non_null(strstr(r.error, "\"app:1?x\""));
	scan_result_free(&r);
	assert_int_equal(access(mark, F_OK), -1); /* nothing ran */

	/* a placeholder argv does not use is not looked at */
	const char *noref[] = {"/bin/sh", s, "{id}", "a", "b"};
	run_values(noref, 5, ENTITY_IMAGE, IMG, "--output=/tmp/x", NULL, &r);
	check_args(&r, IMG, "a", "b");
	scan_result_free(&r);

	/* references of every form run */
	static const char *const good[] = {
		"debian", "debian:12", "library/debian:bookworm-slim",
		"docker.io/library/debian:12",
		"localhost:5000/team/app_x/a-b.c:v1.2_rc-3",
		"[::1]:5000/app:1", "Registry.Example.COM/app:1",
		"ghcr.io/o/app@sha256:"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		run_values(argv, 5, ENTITY_IMAGE, IMG, good[i], NULL, &r);
		if (r.rc != 0)
			fail_msg("%s: %s", good[i], r.error);
		check_args(&r, good[i], IMG, "x");
		scan_result_free(&r);
	}
	/* no tag or digest: {ref} is the image ID, which parses */
	run_values(argv, 5, ENTITY_IMAGE, IMG, NULL, NULL, &r);
	check_args(&r, IMG, IMG, "x");
	scan_result_free(&r);
	assert_no_leaks();
}

/*
 * The tool gets descriptors 0, 1 and 2 only, though this process holds
 * others open without O_CLOEXEC (pipes and files, as a library might):
 * the tool's `ls -l /proc/self/fd` shows 0, 1, 2 and ls's own descriptor
 * of the directory it lists, nothing else.
 */
static void
test_only_std_fds(void **state)
{
	(void)state;
	char list[4200], body[8400], path[4200];
	struct scan_result r;
	snprintf(list, sizeof(list), "%s/fds", tmpdir);
	snprintf(body, sizeof(body), "ls -l /proc/self/fd > \"$1\"\n"
	    "printf '{\"components\":[]}'\n");
	const char *s = script("fds.sh", body, 0644);
	const char *argv[] = {"/bin/sh", s, list};

	/* descriptors this process holds open, inheritable */
	int p1[2], p2[2], held[6];
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	snprintf(path, sizeof(path), "%s/held", tmpdir);
	held[0] = p1[0];
	held[1] = p1[1];
	held[2] = p2[0];
	held[3] = p2[1];
	held[4] = open(path, O_WRONLY | O_CREAT, 0600);
	held[5] = open("/dev/null", O_RDONLY);
	assert_true(held[4] > 2 && held[5] > 2);
	/* one far up, where a loop over a small range would miss it */
	assert_int_equal(dup2(held[5], 1000), 1000);

	struct scan_job *j = image_job();
	run(argv, 3, j, NULL, &r);
	scan_job_free(j);
	if (r.rc != 0)
		fail_msg("%s", r.error);
	scan_result_free(&r);

	FILE *f = fopen(list, "r");
	assert_non_null(f);
	char line[1024];
	int seen[3] = {0}, others = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *arrow = strstr(line, " -> ");
		if (arrow == NULL)
			continue; /* "total 0" */
		char *num = arrow;
		while (num > line && num[-1] != ' ')
			num--;
		int fd = atoi(num);
		if (fd >= 0 && fd <= 2) {
			seen[fd] = 1;
			continue;
		}
		/* ls's own: "N -> /proc/<its pid>/fd" */
		int pid = 0;
		char tail[8] = "";
		if (sscanf(arrow, " -> /proc/%d/%7s", &pid, tail) == 2 &&
		    pid > 1 && strcmp(tail, "fd") == 0 && others == 0) {
			others++;
			continue;
		}
		fail_msg("the tool inherited descriptor %d: %s", fd, line);
	}
	fclose(f);
	assert_true(seen[0] && seen[1] && seen[2]);

	for (int i = 0; i < 6; i++)
		close(held[i]);
	close(1000);
	assert_no_leaks();
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the service does: not inherited */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_success_placeholders),
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_timeout_term_ignored),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_missing_and_not_executable),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_leftover_holds_pipe),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_pool_exec),
		cmocka_unit_test(test_refused_values),
		cmocka_unit_test(test_only_std_fds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
