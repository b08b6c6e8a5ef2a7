/*
 * test_devkafka: `sbomd dev-kafka` as a child process, driven with a real
 * librdkafka producer and consumer group.
 *
 * The child is `$SBOMD_BIN dev-kafka ...` when that binary knows the
 * subcommand (its `dev-kafka --help` exits 0), else a fork() of this test
 * that calls devkafka_main() directly. Its stdout is a pipe (the first
 * line is the bootstrap address), its stderr a temporary file in which
 * the tests wait for the acknowledgements of control commands.
 *
 * The round trip: an idempotent, zstd-compressing producer sends 1000
 * keyed messages to workload-events (8 partitions) and counts delivery
 * reports per partition; a consumer group reads them all back (each value
 * exactly once), commits synchronously, and the committed offsets fetched
 * back from the coordinator must equal the per-partition counts. Then the
 * brokers go down (control FIFO, later SIGUSR1): a message produced must
 * stay undelivered for seconds, and be delivered once they are up again
 * (FIFO, later SIGUSR2). SIGTERM must end the child with status 0 and
 * remove the FIFO and the bootstrap file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka/devkafka.h"

#define NMSG 1000
#define NPART 8
#define TOPIC "workload-events"

struct child {
	pid_t pid;	     /* 0 when none is running */
	int out;	     /* read end of the child's stdout, -1 if none */
	char errpath[64];    /* the child's stderr */
	char dir[64];	     /* scratch directory for the FIFO etc. */
};

static struct child child = {.out = -1};
static int use_binary = -1; /* 1: exec $SBOMD_BIN, 0: fork + call */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms for pid; returns its wait status or -1. */
static int
wait_child(pid_t pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 || now_ms() > deadline)
			return -1;
		usleep(20000);
	}
}

/* Does $SBOMD_BIN dispatch dev-kafka? Decided once. */
static int
binary_usable(void)
{
	const char *bin = getenv("SBOMD_BIN");

	if (use_binary >= 0)
		return use_binary;
	use_binary = 0;
	if (bin == NULL || access(bin, X_OK) != 0) {
		printf("# dev-kafka via fork() + devkafka_main() (no "
		    "$SBOMD_BIN)\n");
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(bin, bin, "dev-kafka", "--help", (char *)NULL);
		_exit(127);
	}
	int status = wait_child(pid, 10000);
	use_binary = status >= 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0;
	printf("# dev-kafka via %s\n", use_binary ? bin :
	    "fork() + devkafka_main()");
	return use_binary;
}

/*
 * Starts dev-kafka with args (NULL-terminated, without the subcommand).
 * stdout goes to child.out, stderr to child.errpath.
 */
static void
spawn(const char *const *args)
{
	int pfd[2];
	char *argv[32];
	int argc = 0;
	int binary = binary_usable();

	argv[argc++] = binary ? getenv("SBOMD_BIN") : "dev-kafka";
	if (binary)
		argv[argc++] = "dev-kafka";
	for (; *args != NULL && argc < 31; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;

	snprintf(child.errpath, sizeof(child.errpath),
	    "/tmp/test_devkafka.err.XXXXXX");
	int errfd = mkstemp(child.errpath);
	assert_true(errfd >= 0);
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL); /* or the child would write our buffered output too */
	child.pid = fork();
	assert_true(child.pid >= 0);
	if (child.pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], 1);
		dup2(errfd, 2);
		close(pfd[1]);
		close(errfd);
		if (binary) {
			execv(argv[0], argv);
			_exit(127);
		}
		exit(devkafka_main(argc, argv));
	}
	close(pfd[1]);
	close(errfd);
	child.out = pfd[0];
}

/* Reads child.out until EOF (or timeout), NUL-terminated, into buf. */
static size_t
read_all(char *buf, size_t size, int timeout_ms)
{
	size_t len = 0;
	int64_t deadline = now_ms() + timeout_ms;

	while (len < size - 1 && now_ms() < deadline) {
		struct pollfd p = {.fd = child.out, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(child.out, buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

/* Reads the first line of child.out (without the newline). */
static int
read_line(char *buf, size_t size, int timeout_ms)
{
	size_t len = 0;
	int64_t deadline = now_ms() + timeout_ms;

	while (len < size - 1 && now_ms() < deadline) {
		struct pollfd p = {.fd = child.out, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(child.out, buf + len, 1);
		if (n <= 0)
			break;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return 0;
		}
		len++;
	}
	buf[len] = '\0';
	return -1;
}

/* The child's stderr so far, NUL-terminated (static buffer). */
static const char *
child_stderr(void)
{
	static char buf[1 << 16];
	FILE *f = fopen(child.errpath, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static int
wait_stderr(const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		if (strstr(child_stderr(), needle) != NULL)
			return 0;
		usleep(20000);
	}
	fprintf(stderr, "no \"%s\" in the child's stderr:\n%s\n", needle,
	    child_stderr());
	return -1;
}

static void
ctl_send(const char *path, const char *cmd)
{
	int fd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	close(fd);
}

static int
teardown_child(void **state)
{
	(void)state;
	if (child.pid > 0) {
		kill(child.pid, SIGKILL);
		waitpid(child.pid, NULL, 0);
	}
	child.pid = 0;
	if (child.out >= 0)
		close(child.out);
	child.out = -1;
	if (child.errpath[0])
		unlink(child.errpath);
	child.errpath[0] = '\0';
	if (child.dir[0]) {
		char p[128];
		snprintf(p, sizeof(p), "%s/ctl", child.dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/addr", child.dir);
		unlink(p);
		rmdir(child.dir);
	}
	child.dir[0] = '\0';
	return 0;
}

static void
test_help(void **state)
{
	static char out[16384];
	const char *args[] = {"--help", NULL};
	/* each option must have its own description line */
	const char *flags[] = {"\n  --brokers ", "\n  --topic ",
	    "\n  --port ", "\n  --bootstrap-file ", "\n  --control ",
	    "--help ", "down [", "up [", "create-topic NAME", "SIGUSR1",
	    "SIGUSR2", "5 MiB", "partitions for big runs", NULL};

	(void)state;
	spawn(args);
	read_all(out, sizeof(out), 10000);
	int status = wait_child(child.pid, 10000);
	child.pid = 0;
	assert_true(status >= 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; flags[i] != NULL; i++) {
		if (strstr(out, flags[i]) == NULL)
			fail_msg("--help does not mention %s:\n%s", flags[i],
			    out);
	}
}

static void
expect_usage_error(const char *const *args, const char *needle)
{
	char out[256];

	spawn(args);
	read_all(out, sizeof(out), 10000);
	int status = wait_child(child.pid, 10000);
	child.pid = 0;
	assert_true(status >= 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
		fail_msg("%s: wait status 0x%x, not exit 2; stderr: %s",
		    args[0], status, child_stderr());
	assert_string_equal(out, ""); /* no address printed */
	if (strstr(child_stderr(), needle) == NULL)
		fail_msg("no \"%s\" in: %s", needle, child_stderr());
	teardown_child(NULL);
}

static void
test_bad_flags(void **state)
{
	const char *bogus[] = {"--bogus", NULL};
	const char *brokers[] = {"--brokers", "0", NULL};
	const char *topic[] = {"--topic", "bad/name:3", NULL};
	const char *parts[] = {"--topic=x:0", NULL};
	const char *noval[] = {"--control", NULL};

	(void)state;
	expect_usage_error(bogus, "--bogus");
	expect_usage_error(brokers, "--brokers");
	expect_usage_error(topic, "bad/name");
	expect_usage_error(parts, "partitions");
	expect_usage_error(noval, "--control");
}

/* Delivery reports land here. */
struct dr_state {
	int delivered, failed;
	int per_part[NPART];
	int bad_part;
};

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct dr_state *dr = opaque;

	(void)rk;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "delivery failed: %s\n",
		    rd_kafka_err2str(m->err));
		dr->failed++;
		return;
	}
	dr->delivered++;
	if (m->partition >= 0 && m->partition < NPART)
		dr->per_part[m->partition]++;
	else
		dr->bad_part++;
}

static void
conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK)
		fail_msg("%s=%s: %s", name, value, errstr);
}

static rd_kafka_t *
producer_new(const char *bootstrap, struct dr_state *dr)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "enable.idempotence", "true");
	conf_set(conf, "compression.codec", "zstd");
	conf_set(conf, "linger.ms", "5");
	conf_set(conf, "reconnect.backoff.ms", "100");
	conf_set(conf, "reconnect.backoff.max.ms", "500");
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, dr);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		fail_msg("producer: %s", errstr);
	}
	return rk;
}

static void
produce_one(rd_kafka_t *rk, int i)
{
	char key[32], val[32];

	snprintf(key, sizeof(key), "entity-%d", i);
	snprintf(val, sizeof(val), "v%d", i);
	rd_kafka_resp_err_t e = rd_kafka_producev(rk,
	    RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
	    RD_KAFKA_V_VALUE(val, strlen(val)),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		fail_msg("produce %d: %s", i, rd_kafka_err2str(e));
}

/* Polls rk for ms milliseconds or until dr->delivered reaches want. */
static void
poll_until(rd_kafka_t *rk, struct dr_state *dr, int want, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (dr->delivered < want && dr->failed == 0 && now_ms() < deadline)
		rd_kafka_poll(rk, 50);
}

/* Consumes NMSG messages with a group, commits, checks the offsets. */
static void
consume_and_commit(const char *bootstrap, const struct dr_state *dr)
{
	char errstr[256];
	static unsigned char seen[NMSG];
	int got = 0, dups = 0, bad = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "group.id", "test-devkafka");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "auto.offset.reset", "earliest");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
	    sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		fail_msg("consumer: %s", errstr);
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *sub =
	    rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, TOPIC, RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
	rd_kafka_topic_partition_list_destroy(sub);

	memset(seen, 0, sizeof(seen));
	int64_t deadline = now_ms() + 60000;
	while (got < NMSG && now_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			char val[32];
			int i;
			size_t n = m->len < sizeof(val) - 1 ? m->len :
			    sizeof(val) - 1;
			memcpy(val, m->payload, n);
			val[n] = '\0';
			if (sscanf(val, "v%d", &i) != 1 || i < 0 || i >= NMSG)
				bad++;
			else if (seen[i]++)
				dups++;
			else
				got++;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			fprintf(stderr, "consume: %s\n",
			    rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	assert_int_equal(got, NMSG);
	assert_int_equal(dups, 0);
	assert_int_equal(bad, 0);

	assert_int_equal(rd_kafka_commit(rk, NULL, 0), 0);

	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(NPART);
	for (int p = 0; p < NPART; p++)
		rd_kafka_topic_partition_list_add(parts, TOPIC, p);
	assert_int_equal(rd_kafka_committed(rk, parts, 10000), 0);
	int64_t sum = 0;
	for (int p = 0; p < NPART; p++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[p];
		assert_int_equal(tp->err, 0);
		if (dr->per_part[p] == 0) {
			/* nothing consumed there: nothing or 0 committed */
			assert_true(tp->offset == RD_KAFKA_OFFSET_INVALID ||
			    tp->offset == 0);
			continue;
		}
		if (tp->offset != dr->per_part[p])
			fail_msg("partition %d: committed %lld, produced %d",
			    p, (long long)tp->offset, dr->per_part[p]);
		sum += tp->offset;
	}
	assert_int_equal(sum, NMSG);
	rd_kafka_topic_partition_list_destroy(parts);

	assert_int_equal(rd_kafka_consumer_close(rk), 0);
	rd_kafka_destroy(rk);
}

/* Down (by `down`), a message stays queued; up (by `up`), delivered. */
static void
down_then_up(rd_kafka_t *rk, struct dr_state *dr, int i, const char *ctl,
    int hold_ms)
{
	int before = dr->delivered;

	if (ctl != NULL) {
		char needle[64];
		ctl_send(ctl, "down all\n");
		snprintf(needle, sizeof(needle), "ok: down all\n");
		assert_int_equal(wait_stderr(needle, 10000), 0);
	} else {
		assert_int_equal(kill(child.pid, SIGUSR1), 0);
		assert_int_equal(wait_stderr("ok: down all (SIGUSR1)", 10000),
		    0);
	}
	produce_one(rk, i);
	poll_until(rk, dr, before + 1, hold_ms);
	assert_int_equal(dr->failed, 0);
	assert_int_equal(dr->delivered, before); /* still queued */
	assert_int_equal(rd_kafka_outq_len(rk) > 0, 1);

	if (ctl != NULL) {
		ctl_send(ctl, "up all\n");
		assert_int_equal(wait_stderr("ok: up all\n", 10000), 0);
	} else {
		assert_int_equal(kill(child.pid, SIGUSR2), 0);
		assert_int_equal(wait_stderr("ok: up all (SIGUSR2)", 10000), 0);
	}
	poll_until(rk, dr, before + 1, 30000);
	assert_int_equal(dr->failed, 0);
	assert_int_equal(dr->delivered, before + 1);
}

static void
test_roundtrip(void **state)
{
	char bootstrap[512], ctl[128], addr[128], filed[512];
	char features[512];
	size_t flen = sizeof(features);
	struct dr_state dr;
	struct stat st;

	(void)state;
	snprintf(child.dir, sizeof(child.dir), "/tmp/test_devkafka.XXXXXX");
	assert_non_null(mkdtemp(child.dir));
	snprintf(ctl, sizeof(ctl), "%s/ctl", child.dir);
	snprintf(addr, sizeof(addr), "%s/addr", child.dir);
	const char *args[] = {"--control", ctl, "--bootstrap-file", addr,
	    NULL};

	spawn(args);
	assert_int_equal(read_line(bootstrap, sizeof(bootstrap), 30000), 0);
	printf("# bootstrap %s\n", bootstrap);
	assert_int_equal(strncmp(bootstrap, "127.0.0.1:", 10), 0);
	assert_null(strchr(bootstrap, ',')); /* one broker by default */

	/* the file was renamed into place before the line was printed */
	FILE *f = fopen(addr, "r");
	assert_non_null(f);
	assert_non_null(fgets(filed, sizeof(filed), f));
	fclose(f);
	filed[strcspn(filed, "\n")] = '\0';
	assert_string_equal(filed, bootstrap);
	assert_int_equal(stat(ctl, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));

	memset(&dr, 0, sizeof(dr));
	rd_kafka_t *rk = producer_new(bootstrap, &dr);
	rd_kafka_conf_t *dup = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_get(dup, "builtin.features", features,
	    &flen), RD_KAFKA_CONF_OK);
	rd_kafka_conf_destroy(dup);
	if (strstr(features, "zstd") == NULL)
		fail_msg("this librdkafka has no zstd: %s", features);

	for (int i = 0; i < NMSG; i++) {
		produce_one(rk, i);
		rd_kafka_poll(rk, 0);
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	assert_int_equal(dr.failed, 0);
	assert_int_equal(dr.delivered, NMSG);
	assert_int_equal(dr.bad_part, 0);
	int used = 0;
	for (int p = 0; p < NPART; p++)
		used += dr.per_part[p] > 0;
	assert_true(used >= 2); /* keys spread across partitions */
	char fatal[256];
	assert_int_equal(rd_kafka_fatal_error(rk, fatal, sizeof(fatal)), 0);

	consume_and_commit(bootstrap, &dr);

	down_then_up(rk, &dr, NMSG, ctl, 3000);
	down_then_up(rk, &dr, NMSG + 1, NULL, 2000);
	assert_int_equal(rd_kafka_fatal_error(rk, fatal, sizeof(fatal)), 0);
	assert_int_equal(rd_kafka_flush(rk, 10000), 0);
	rd_kafka_destroy(rk);

	/* a bad control command is answered, and the broker lives on */
	ctl_send(ctl, "down 99\n");
	assert_int_equal(wait_stderr("error: down 99: no broker 99", 10000),
	    0);

	assert_int_equal(kill(child.pid, SIGTERM), 0);
	int status = wait_child(child.pid, 30000);
	assert_true(status >= 0);
	child.pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat(ctl, &st), -1);  /* FIFO removed */
	assert_int_equal(stat(addr, &st), -1); /* address file removed */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_help, teardown_child),
		cmocka_unit_test_teardown(test_bad_flags, teardown_child),
		cmocka_unit_test_teardown(test_roundtrip, teardown_child),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
