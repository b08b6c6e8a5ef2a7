/*
 * backend_exec: an external scanner (syft, trivy, a site's own script) as
 * a backend. The configured argv runs without a shell, "{id}" and "{ref}"
 * filled in wherever they appear; the SBOM is the tool's stdout.
 *
 * The values come from the producers of the events, so they are checked
 * before they reach an argv: a value of a placeholder the argv uses that
 * starts with '-' (it would be read as an option: "--output=/etc/x",
 * "-rf") is refused, and so is an image's {ref} that is not a reference
 * by the distribution grammar (name[:tag][@digest], scan/reference.h);
 * both PERMANENT, naming the value. argv is passed without a shell, so
 * nothing else in a value is special; an argv that hands a value to
 * `sh -c` inside the command text would undo that (README).
 *
 * The child is spawned (posix_spawnp) as the leader of its own process
 * group, with stdin on /dev/null, every signal at its default and an
 * empty signal mask (the service ignores SIGPIPE; the tool should not
 * inherit that). Only its three standard descriptors are open in it: the
 * spawn closes every descriptor from 3 up after setting up 0, 1 and 2
 * (posix_spawn_file_actions_addclosefrom_np: close_range, or a walk of
 * /proc/self/fd where the kernel lacks it), so neither the pipes of scans
 * running in other workers nor anything a library opened without
 * O_CLOEXEC (LMDB, librdkafka's sockets) reaches the tool.
 *
 * One poll() loop reads stdout (bounded by max_sbom_bytes) and stderr (the
 * last STDERR_TAIL bytes are kept for the message) and, at least every
 * POLL_SLICE_MS, looks at the cancel flag, the job's deadline and whether
 * the child has exited (waitid WNOWAIT: it stays a zombie, so its pid and
 * process group id cannot be reused while we may still signal them). To
 * stop a child: SIGTERM to the group, SIGKILL after kill_grace_ms. When
 * the leader ends, anything left in its group is SIGKILLed; the leader is
 * always reaped (no zombies).
 *
 * Results:
 *   exit 0, stdout a JSON object     success; components = the length of
 *                                    its "components" array, if any
 *   exit 0, anything else            PERMANENT "exec output is not JSON"
 *   exit code in retryable list      RETRYABLE, with the stderr tail
 *   other exit codes                 PERMANENT, with the stderr tail
 *   killed by a signal               RETRYABLE, naming the signal
 *   past the deadline                RETRYABLE "scan timed out after 5m"
 *   cancel flag set                  -ECANCELED (the pool reports how)
 *   stdout over max_sbom_bytes       PERMANENT "SBOM larger than N bytes"
 *   argv[0] missing/not executable   PERMANENT, naming it
 *   {id}/{ref} starting with '-', or  PERMANENT "refused", naming the
 *   an image {ref} not a reference    value (nothing is run)
 *
 * The tool's environment is the service's as it was at init, without the
 * SBOMD_* variables (the service's own configuration, credentials
 * included).
 *
 * Concurrency: the context is read-only after init; any number of
 * workers may run scans at once. No signal handlers are installed. Nothing here
 * calls waitpid(-1): only this scan's own child is waited for.
 */
/* pipe2: the pipes must be close-on-exec from birth, or a scan spawned
 * by another worker in between would inherit them. */
#define _GNU_SOURCE

#include "scan/backend.h"
#include "scan/reference.h"
#include "scan/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "util/clock.h"
#include "util/duration.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

/* posix_spawn_file_actions_addclosefrom_np came with glibc 2.34. */
#if !defined(__GLIBC__) || __GLIBC__ < 2 || \
    (__GLIBC__ == 2 && __GLIBC_MINOR__ < 34)
#error "the exec backend needs posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34)"
#endif

extern char **environ;

#define POLL_SLICE_MS 50
#define STDERR_TAIL 1024
#define MAX_ARGS 256
#define OUT_INITIAL (64 * 1024)
/* After the leader exits, how long others holding its pipes may take. */
#define LINGER_MS 200

struct exec_ctx {
	char **argv;
	size_t argc;
	char **envp;	/* NULL-terminated: environ at init, minus SBOMD_* */
	int *retryable;
	size_t nretryable;
	size_t max_sbom;
	int64_t grace_ms;
	bool uses_id, uses_ref; /* whether argv holds "{id}" / "{ref}" */
};

static void
exec_fini(void *ctx)
{
	struct exec_ctx *x = ctx;
	if (x == NULL)
		return;
	strv_free(x->argv, x->argc);
	for (char **e = x->envp; *e != NULL; e++)
		free(*e);
	free(x->envp);
	free(x->retryable);
	free(x);
}

static int
exec_init(const void *config, void **ctxp, char *err, size_t errlen)
{
	const struct scan_exec_config *c = config;
	struct exec_ctx *x;

	*ctxp = NULL;
	if (c == NULL || c->argc == 0 || c->argv == NULL ||
	    c->argv[0] == NULL || c->argv[0][0] == '\0') {
		errbuf_set(err, errlen, "scan.exec_argv: empty (the exec "
		    "backend needs at least the program)");
		return -EINVAL;
	}
	if (c->argc > MAX_ARGS) {
		errbuf_set(err, errlen, "scan.exec_argv: %zu arguments, at "
		    "most %d", c->argc, MAX_ARGS);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->argc; i++) {
		if (c->argv[i] == NULL) {
			errbuf_set(err, errlen, "scan.exec_argv: argument %zu "
			    "is missing", i + 1);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->nretryable; i++) {
		int code = c->retryable_exit_codes[i];
		if (code < 1 || code > 255) {
			errbuf_set(err, errlen, "scan.exec_retryable_exit_codes"
			    ": %d is not an exit code (1..255)", code);
			return -EINVAL;
		}
	}
	if (c->kill_grace_ms < 0) {
		errbuf_set(err, errlen,
		    "exec kill grace must not be negative");
		return -EINVAL;
	}

	x = xcalloc(1, sizeof(*x));
	x->argc = c->argc;
	x->argv = strv_copy(c->argv, c->argc);
	if (c->nretryable > 0) {
		x->retryable = xcalloc(c->nretryable, sizeof(int));
		memcpy(x->retryable, c->retryable_exit_codes,
		    c->nretryable * sizeof(int));
	}
	x->nretryable = c->nretryable;
	/* The tool gets the service's environment (PATH, HOME, registry
	 * settings) but not its own configuration, which may hold Kafka
	 * credentials. Copied once: environ is not safe to read while
	 * another thread might setenv. */
	size_t nenv = 0, k = 0;
	for (char **e = environ; e != NULL && *e != NULL; e++)
		nenv++;
	x->envp = xcalloc(nenv + 1, sizeof(*x->envp));
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "SBOMD_", 6) != 0)
			x->envp[k++] = xstrdup(environ[i]);
	x->max_sbom = c->max_sbom_bytes > 0 ? c->max_sbom_bytes :
	    SCAN_DEFAULT_MAX_SBOM;
	x->grace_ms = c->kill_grace_ms > 0 ? c->kill_grace_ms :
	    SCAN_EXEC_DEFAULT_GRACE_MS;
	for (size_t i = 0; i < x->argc; i++) {
		x->uses_id |= strstr(x->argv[i], "{id}") != NULL;
		x->uses_ref |= strstr(x->argv[i], "{ref}") != NULL;
	}
	*ctxp = x;
	return 0;
}

/* v as it may be shown in a message: at most 200 bytes, control bytes
 * and non-ASCII as '?'. */
static void
printable(const char *v, char *buf, size_t buflen)
{
	size_t n = 0;
	for (; v[n] != '\0' && n + 1 < buflen && n < 200; n++) {
		unsigned char c = (unsigned char)v[n];
		buf[n] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	buf[n] = '\0';
	if (v[n] != '\0' && n >= 3)
		memcpy(buf + n - 3, "...", 3);
}

/*
 * Whether the job's values may be put into argv (see the top); when not,
 * res is a PERMANENT failure naming the placeholder and the value.
 */
static bool
values_ok(const struct exec_ctx *x, const struct scan_job *job,
    struct scan_result *res)
{
	const char *id = job->image_id, *ref = scan_job_ref(job);
	const char *what = NULL, *v = NULL, *why = NULL;
	char shown[208];

	if (x->uses_id && id[0] == '-') {
		what = "{id}";
		v = id;
		why = "starts with '-' (it would be read as an option)";
	} else if (x->uses_ref && ref[0] == '-') {
		what = "{ref}";
		v = ref;
		why = "starts with '-' (it would be read as an option)";
	} else if (x->uses_ref && job->kind == ENTITY_IMAGE &&
	    !reference_valid(ref)) {
		what = "{ref}";
		v = ref;
		why = "is not an image reference (name[:tag][@digest])";
	}
	if (v == NULL)
		return true;
	printable(v, shown, sizeof(shown));
	scan_result_fail(res, -EINVAL, ERROR_PERMANENT,
	    "exec: %s: refused: %s \"%s\" %s", x->argv[0], what, shown, why);
	return false;
}

/* arg with every "{id}" and "{ref}" replaced (malloc'd). */
static char *
substitute(const char *arg, const char *id, const char *ref)
{
	size_t cap = strlen(arg) + 1, len = 0;
	char *out = xmalloc(cap);

	for (const char *s = arg; *s != '\0';) {
		const char *put = NULL;
		size_t skip = 1, n;
		if (strncmp(s, "{id}", 4) == 0) {
			put = id;
			skip = 4;
		} else if (strncmp(s, "{ref}", 5) == 0) {
			put = ref;
			skip = 5;
		}
		n = put != NULL ? strlen(put) : 1;
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = xrealloc(out, cap);
		}
		memcpy(out + len, put != NULL ? put : s, n);
		len += n;
		s += skip;
	}
	out[len] = '\0';
	return out;
}

/* ---- the child's output ---- */

struct run {
	int out_fd, err_fd; /* read ends, -1 once at EOF */
	char *out;
	size_t out_len, out_cap, max;
	bool oversize;
	char tail[STDERR_TAIL]; /* a ring: the last bytes of stderr */
	size_t err_total;
};

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Reads what stdout has now; false when it is at EOF (or failed). */
static bool
read_out(struct run *r)
{
	for (int rounds = 0; rounds < 64 && !r->oversize; rounds++) {
		if (r->out_len == r->out_cap) {
			size_t cap = r->out_cap == 0 ? OUT_INITIAL :
			    r->out_cap * 2;
			if (cap > r->max + 1)
				cap = r->max + 1; /* one byte over: oversize */
			r->out = xrealloc(r->out, cap + 1);
			r->out_cap = cap;
		}
		ssize_t n = read(r->out_fd, r->out + r->out_len,
		    r->out_cap - r->out_len);
		if (n > 0) {
			r->out_len += (size_t)n;
			if (r->out_len > r->max)
				r->oversize = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		return false; /* EOF, or an error: nothing more comes */
	}
	return true;
}

static bool
read_err(struct run *r)
{
	char buf[4096];
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = read(r->err_fd, buf, sizeof(buf));
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				r->tail[r->err_total++ % STDERR_TAIL] = buf[i];
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		return false;
	}
	return true;
}

/*
 * The stderr tail as one printable ASCII line into buf: control bytes
 * become spaces, other bytes '?', ends trimmed, "..." first if cut.
 * Keeps the last bytes when buflen is short.
 */
static void
stderr_tail(const struct run *r, char *buf, size_t buflen)
{
	size_t n = r->err_total < STDERR_TAIL ? r->err_total : STDERR_TAIL;
	size_t start = r->err_total < STDERR_TAIL ? 0 :
	    r->err_total % STDERR_TAIL;
	char tmp[STDERR_TAIL + 1];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)r->tail[(start + i) %
		    STDERR_TAIL];
		tmp[len++] = ch < 0x20 || ch == 0x7f ? ' ' :
		    ch >= 0x80 ? '?' : (char)ch;
	}
	size_t a = 0;
	while (a < len && tmp[a] == ' ')
		a++;
	while (len > a && tmp[len - 1] == ' ')
		len--;
	tmp[len] = '\0';
	bool cut = r->err_total > STDERR_TAIL;
	if (buflen < 8) {
		if (buflen > 0)
			buf[0] = '\0';
		return;
	}
	size_t room = buflen - 1 - 3;
	if (len - a > room) {
		a = len - room;
		cut = true;
	}
	snprintf(buf, buflen, "%s%s", cut ? "..." : "", tmp + a);
}

/* Appends ": <stderr tail>" to res->error when stderr said anything. */
static void
append_tail(struct scan_result *res, const struct run *r)
{
	size_t used = strlen(res->error);
	if (used + 3 >= sizeof(res->error))
		return;
	char tail[STDERR_TAIL + 8];
	size_t room = sizeof(res->error) - used - 2;
	stderr_tail(r, tail, room < sizeof(tail) ? room : sizeof(tail));
	size_t tl = strlen(tail);
	if (tl > 0 && used + 2 + tl < sizeof(res->error)) {
		memcpy(res->error + used, ": ", 2);
		memcpy(res->error + used + 2, tail, tl + 1);
	}
}

/* ---- the child ---- */

static int
spawn_child(char *const *argv, char *const *envp, int in_fd, int out_fd,
    int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defaults;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	sigemptyset(&none);
	sigfillset(&defaults);
	sigdelset(&defaults, SIGKILL);
	sigdelset(&defaults, SIGSTOP);
	if ((rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2)) != 0 ||
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&at, &defaults)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
	    (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
		 POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
		goto out;
	rc = posix_spawnp(pid, argv[0], &fa, &at, argv, envp);
out:
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* Whether the child has ended, leaving it a zombie (not reaped). A child
 * somebody else reaped (SIGCHLD ignored) counts as ended. */
static bool
child_ended(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno != EINTR;
	return si.si_pid == pid;
}

/* Reaps the child; false when its status is lost (reaped elsewhere). */
static bool
reap(pid_t pid, int *status)
{
	for (;;) {
		if (waitpid(pid, status, 0) == pid)
			return true;
		if (errno != EINTR)
			return false;
	}
}

/*
 * Stops a running child's process group: SIGTERM, then SIGKILL after the
 * grace period. The leader is left unreaped (its group id stays ours).
 */
static void
stop_group(pid_t pid, int64_t grace_ms)
{
	int64_t end = clock_mono_ms() + grace_ms;
	if (child_ended(pid))
		return;
	(void)kill(-pid, SIGTERM);
	while (!child_ended(pid) && clock_mono_ms() < end)
		clock_sleep_ms(10);
}

static const char *
signal_name(int sig, char *buf, size_t buflen)
{
	static const struct {
		int sig;
		const char *name;
	} names[] = {
		{SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"},
		{SIGILL, "SIGILL"}, {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
		{SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"}, {SIGKILL, "SIGKILL"},
		{SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"},
		{SIGUSR2, "SIGUSR2"}, {SIGPIPE, "SIGPIPE"},
		{SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
		{SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].sig == sig)
			return names[i].name;
	snprintf(buf, buflen, "signal %d", sig);
	return buf;
}

enum stop_reason { STOP_NONE, STOP_CANCEL, STOP_TIMEOUT, STOP_OVERSIZE };

/* Runs the loop of the module comment until the child is done or must be
 * stopped. */
static enum stop_reason
pump(struct run *r, pid_t pid, const struct scan_job *job,
    const atomic_int *cancel)
{
	bool ended = false;
	int64_t linger_until = 0;

	for (;;) {
		int64_t now = clock_mono_ms();
		if (atomic_load(cancel) != SCAN_CANCEL_NONE)
			return STOP_CANCEL;
		if (r->oversize)
			return STOP_OVERSIZE;
		if (job->deadline_ms > 0 && now >= job->deadline_ms)
			return STOP_TIMEOUT;
		if (!ended)
			ended = child_ended(pid);
		if (ended) {
			if (r->out_fd < 0 && r->err_fd < 0)
				return STOP_NONE;
			/* Others of its group still hold the pipes. */
			if (linger_until == 0)
				linger_until = now + LINGER_MS;
			else if (now >= linger_until)
				return STOP_NONE;
		}

		int64_t wait = POLL_SLICE_MS;
		if (job->deadline_ms > 0 && job->deadline_ms - now < wait)
			wait = job->deadline_ms - now;
		if (ended && linger_until - now < wait)
			wait = linger_until - now;
		if (wait < 1)
			wait = 1;

		struct pollfd pfd[2];
		nfds_t n = 0;
		if (r->out_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = r->out_fd,
			    .events = POLLIN};
		if (r->err_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = r->err_fd,
			    .events = POLLIN};
		if (n == 0) {
			/* It closed its output but runs on. */
			clock_sleep_ms(wait < 10 ? (int)wait : 10);
			continue;
		}
		if (poll(pfd, n, (int)wait) <= 0)
			continue;
		for (nfds_t i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == r->out_fd) {
				if (!read_out(r))
					close_fd(&r->out_fd);
			} else if (!read_err(r)) {
				close_fd(&r->err_fd);
			}
		}
	}
}

static bool
is_retryable(const struct exec_ctx *x, int code)
{
	for (size_t i = 0; i < x->nretryable; i++)
		if (x->retryable[i] == code)
			return true;
	return false;
}

/* Exit 0: the output must be a JSON object. */
static void
take_output(struct run *r, struct scan_result *res)
{
	json_error_t jerr;
	json_t *doc;

	r->out[r->out_len] = '\0';
	doc = json_loadb(r->out, r->out_len, 0, &jerr);
	if (doc == NULL) {
		scan_result_fail(res, -EBADMSG, ERROR_PERMANENT,
		    "exec output is not JSON: %s (line %d, column %d)",
		    r->out_len == 0 ? "no output" : jerr.text, jerr.line,
		    jerr.column);
		return;
	}
	if (!json_is_object(doc)) {
		scan_result_fail(res, -EBADMSG, ERROR_PERMANENT,
		    "exec output is not JSON: a JSON object was expected");
		json_decref(doc);
		return;
	}
	json_t *comps = json_object_get(doc, "components");
	res->components = json_is_array(comps) ? json_array_size(comps) : 0;
	json_decref(doc);
	res->rc = 0;
	res->sbom = r->out;
	res->sbom_len = r->out_len;
	r->out = NULL;
}

/* A child that could not be started: PERMANENT when the command is
 * missing or not executable, RETRYABLE when the system is short of
 * processes, memory or descriptors. */
static void
spawn_failed(struct scan_result *res, const char *prog, int e)
{
	if (e == ENOENT || e == ENOTDIR)
		scan_result_fail(res, -e, ERROR_PERMANENT,
		    "exec: %s: command not found", prog);
	else if (e == EACCES || e == EPERM || e == ENOEXEC)
		scan_result_fail(res, -e, ERROR_PERMANENT,
		    "exec: %s: not executable: %s", prog, strerror(e));
	else
		scan_result_fail(res, -e,
		    e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE ?
			ERROR_RETRYABLE : ERROR_PERMANENT,
		    "exec: %s: cannot start: %s", prog, strerror(e));
}

/*
 * Starts the tool with stdin on /dev/null and its stdout and stderr on
 * fresh pipes, whose read ends (non-blocking) go to r. 0 with *pid set,
 * or a negative errno with res filled.
 */
static int
exec_start(const struct exec_ctx *x, char *const *argv, struct run *r,
    pid_t *pid, struct scan_result *res)
{
	const char *prog = x->argv[0];
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, devnull = -1, e = 0;

	*pid = -1;
	if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		e = errno;
		scan_result_fail(res, -e, ERROR_RETRYABLE,
		    "exec: %s: cannot make pipes: %s", prog, strerror(e));
		goto out;
	}
	if (fcntl(outp[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(errp[0], F_SETFL, O_NONBLOCK) != 0) {
		e = errno;
		scan_result_fail(res, -e, ERROR_RETRYABLE,
		    "exec: %s: fcntl: %s", prog, strerror(e));
		goto out;
	}
	if ((e = spawn_child(argv, x->envp, devnull, outp[1], errp[1],
		 pid)) != 0) {
		*pid = -1;
		spawn_failed(res, prog, e);
		goto out;
	}
	/* Only the child holds the write ends now: EOF when it is done. */
	r->out_fd = outp[0];
	r->err_fd = errp[0];
	outp[0] = errp[0] = -1;
out:
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&devnull);
	return -e;
}

/* The result of a run that ended (why) with the leader reaped (status,
 * when have_status): the table of the module comment. */
static void
exec_result(const struct exec_ctx *x, const struct scan_job *job,
    enum stop_reason why, bool have_status, int status, struct run *r,
    struct scan_result *res)
{
	const char *prog = x->argv[0];
	char d[32], sbuf[32];

	switch (why) {
	case STOP_CANCEL:
		scan_result_fail(res, -ECANCELED, ERROR_RETRYABLE,
		    "exec: %s: cancelled", prog);
		return;
	case STOP_TIMEOUT:
		duration_format(job->timeout_ms, d, sizeof(d));
		scan_result_fail(res, -ETIMEDOUT, ERROR_RETRYABLE,
		    "scan timed out after %s (exec: %s killed)", d, prog);
		append_tail(res, r);
		return;
	case STOP_OVERSIZE:
		scan_result_fail(res, -EFBIG, ERROR_PERMANENT,
		    "exec: %s: SBOM larger than %zu bytes", prog, x->max_sbom);
		return;
	case STOP_NONE:
		break;
	}
	if (!have_status) {
		scan_result_fail(res, -ECHILD, ERROR_RETRYABLE,
		    "exec: %s: exit status lost (is SIGCHLD ignored?)", prog);
	} else if (WIFSIGNALED(status)) {
		scan_result_fail(res, -EINTR, ERROR_RETRYABLE,
		    "exec: %s killed by %s", prog,
		    signal_name(WTERMSIG(status), sbuf, sizeof(sbuf)));
		append_tail(res, r);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);
		scan_result_fail(res, -EIO,
		    is_retryable(x, code) ? ERROR_RETRYABLE : ERROR_PERMANENT,
		    "exec: %s exited with code %d", prog, code);
		append_tail(res, r);
	} else if (r->out == NULL) {
		scan_result_fail(res, -EBADMSG, ERROR_PERMANENT,
		    "exec output is not JSON: no output");
	} else {
		take_output(r, res);
	}
}

static void
exec_scan(void *ctx, const struct scan_job *job, const atomic_int *cancel,
    struct scan_result *res)
{
	const struct exec_ctx *x = ctx;
	char *argv[MAX_ARGS + 1] = {0};
	struct run r = {.out_fd = -1, .err_fd = -1, .max = x->max_sbom};
	pid_t pid;
	int status = 0;

	if (atomic_load(cancel) != SCAN_CANCEL_NONE) {
		scan_result_fail(res, -ECANCELED, ERROR_RETRYABLE,
		    "exec: %s: cancelled before it started", x->argv[0]);
		return;
	}
	if (!values_ok(x, job, res))
		return;
	for (size_t i = 0; i < x->argc; i++)
		argv[i] = substitute(x->argv[i], job->image_id,
		    scan_job_ref(job));
	if (exec_start(x, argv, &r, &pid, res) == 0) {
		enum stop_reason why = pump(&r, pid, job, cancel);
		if (why != STOP_NONE)
			stop_group(pid, x->grace_ms);
		/* Whatever is left of the group goes with its leader. */
		(void)kill(-pid, SIGKILL);
		bool have_status = reap(pid, &status);
		exec_result(x, job, why, have_status, status, &r, res);
	}
	close_fd(&r.out_fd);
	close_fd(&r.err_fd);
	free(r.out);
	for (size_t i = 0; i < x->argc; i++)
		free(argv[i]);
}

const struct scan_backend scan_backend_exec = {
	.name = "exec",
	.init = exec_init,
	.scan = exec_scan,
	.fini = exec_fini,
};
