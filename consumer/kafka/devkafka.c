/*
 * devkafka: `sbomd dev-kafka`, a local Kafka-protocol broker for tries and
 * tests, built on librdkafka's mock cluster (rdkafka_mock.h).
 *
 * The mock cluster runs its brokers in one librdkafka thread owned by a
 * bookkeeping producer handle (rk) that never produces anything. The
 * brokers listen on 127.0.0.1 only, on ports the kernel picks: the public
 * API of librdkafka 2.0.2 has no way to choose a port (no
 * "test.mock.broker.port"; rd_kafka_mock_broker_new binds port 0), so
 * --port is accepted, checked and reported as unsupported. The bootstrap
 * list is printed as the first line on stdout once the topics exist, and
 * optionally written atomically (temp file + rename) to --bootstrap-file.
 *
 * What the 2.0.2 mock supports, as the tests verify: produce (idempotent,
 * any codec: the mock stores record batches as sent, so zstd passes
 * through to consumers), fetch, metadata, consumer groups (FindCoordinator,
 * JoinGroup/SyncGroup/Heartbeat/LeaveGroup, OffsetCommit/OffsetFetch). Not
 * supported: the CreateTopics admin API (hence the `create-topic` control
 * command), persistence, and more than about 5 MiB or 100,000 record
 * batches per partition: the oldest batches are dropped as new ones
 * arrive, so big runs need many partitions.
 *
 * Fault control: `down`/`up` call rd_kafka_mock_broker_set_down/_up, which
 * close the broker's client connections and refuse (or at once close) new
 * ones until it is up again, without moving partition leadership; clients
 * keep their messages queued and retry. SIGUSR1 / SIGUSR2 take all brokers
 * down / up; a FIFO (--control) takes one command a line and acknowledges
 * each on stderr ("sbomd dev-kafka: ok: ..." or "... error: ...").
 *
 * Concurrency: single-threaded on our side. Signal handlers only set
 * volatile sig_atomic_t flags; the main loop polls the FIFO with a 100 ms
 * timeout and applies the flags between polls. librdkafka blocks all
 * signals in its own threads, so signals reach this thread. The mock
 * calls block until the mock thread has applied them.
 */
#include "kafka/devkafka.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "util/errbuf.h"

#define MAX_BROKERS 32
#define MAX_TOPICS 64
#define MAX_PARTITIONS 10000
#define CTL_LINE_MAX 512
#define TOPIC_NAME_MAX 249 /* Kafka's limit */
#define LOOP_MS 100

struct topic_spec {
	char name[TOPIC_NAME_MAX + 1];
	int partitions;
};

struct devkafka {
	rd_kafka_t *rk; /* bookkeeping handle; owns the mock thread */
	rd_kafka_mock_cluster_t *mc;
	int brokers; /* ids are 1..brokers */
	int ctl_fd;  /* FIFO read end, -1 without --control */
	int ctl_wfd; /* our own write end: no EOF when writers close */
	char line[CTL_LINE_MAX];
	size_t linelen;
	bool discarding; /* the current control line is too long */
};

/* The command line. */
struct options {
	struct topic_spec topics[MAX_TOPICS];
	int ntopics;
	int brokers;
	int port; /* 0: none asked for */
	const char *bootstrap_file, *control; /* NULL: none */
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t updown_want; /* 1 down, 2 up: the last asked */
static volatile sig_atomic_t updown_gen;  /* bumped by each SIGUSR1/2 */

static const struct topic_spec default_topics[] = {
	{"workload-events", 8},
	{"scan-outcomes", 8},
	{"sbomd-dead-letter", 1},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd dev-kafka [--brokers N] [--topic NAME[:PARTITIONS]]...\n"
	    "                       [--port PORT] [--bootstrap-file FILE]\n"
	    "                       [--control FIFO]\n"
	    "\n"
	    "Runs a local Kafka-protocol broker (librdkafka's mock cluster) on\n"
	    "127.0.0.1 until SIGTERM or SIGINT. Prints its bootstrap address,\n"
	    "\"127.0.0.1:PORT[,...]\", as the first line on standard output.\n"
	    "Nothing is persisted. For tries and tests, not production.\n"
	    "\n"
	    "options:\n"
	    "  --brokers N            number of brokers, ids 1..N (default 1,\n"
	    "                         at most %d)\n"
	    "  --topic NAME[:PARTS]   create a topic (PARTS default 1);\n"
	    "                         repeatable, replaces the defaults:\n"
	    "                         workload-events:8, scan-outcomes:8,\n"
	    "                         sbomd-dead-letter:1. The mock keeps only\n"
	    "                         about 5 MiB (and 100,000 produce\n"
	    "                         batches) per partition and silently\n"
	    "                         drops the oldest beyond that: use many\n"
	    "                         partitions for big runs.\n"
	    "                         Other topics are auto-created on use.\n"
	    "  --port PORT            wanted port of the first broker; the\n"
	    "                         mock cluster of librdkafka 2.0.2 cannot\n"
	    "                         bind a chosen port, so this only warns\n"
	    "                         and a random port is used: read the\n"
	    "                         printed address\n"
	    "  --bootstrap-file FILE  also write the address to FILE\n"
	    "                         (atomically, once ready; removed on exit)\n"
	    "  --control FIFO         create FIFO and read commands from it,\n"
	    "                         one a line, each acknowledged on stderr:\n"
	    "                           down [BROKER_ID|all]\n"
	    "                           up [BROKER_ID|all]\n"
	    "                           create-topic NAME PARTITIONS\n"
	    "                           leader TOPIC PARTITION BROKER_ID|-1\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "signals: SIGUSR1 takes all brokers down, SIGUSR2 brings them up.\n"
	    "A broker that is down drops its connections and refuses new ones;\n"
	    "partition leadership does not move (clients retry and keep their\n"
	    "messages queued). `leader` moves a partition's leadership.\n"
	    "\n"
	    "example:\n"
	    "  sbomd dev-kafka --topic workload-events:64 --control /tmp/k.ctl \\\n"
	    "      --bootstrap-file /tmp/k.addr &\n"
	    "  echo 'down all' > /tmp/k.ctl\n"
	    "\n"
	    "exit status: 0 after SIGTERM/SIGINT, 1 setup failure, 2 usage\n"
	    "error\n", MAX_BROKERS);
}

static void
on_signal(int sig)
{
	if (sig == SIGUSR1 || sig == SIGUSR2) {
		/* want first: the main loop reads gen, then want */
		updown_want = sig == SIGUSR1 ? 1 : 2;
		updown_gen = (sig_atomic_t)(updown_gen + 1);
	} else {
		stop_requested = 1;
	}
}

/* Parses a decimal integer in [lo, hi]; 0 or -EINVAL. */
static int
parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Kafka's rule: 1..249 characters of [a-zA-Z0-9._-], not "." or "..". */
static bool
topic_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > TOPIC_NAME_MAX)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' &&
	    s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* "NAME[:PARTITIONS]" into t (spec is left alone): 0, or -EINVAL with
 * err. */
static int
topic_parse(const char *spec, struct topic_spec *t, char *err, size_t errlen)
{
	const char *colon = strrchr(spec, ':');
	size_t len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);

	t->partitions = 1;
	if (!topic_name_valid(spec, len)) {
		errbuf_set(err, errlen, "--topic: \"%.*s\" is not a valid "
		    "topic name ([a-zA-Z0-9._-], 1..249 characters)", (int)len,
		    spec);
		return -EINVAL;
	}
	memcpy(t->name, spec, len);
	t->name[len] = '\0';
	if (colon != NULL && parse_int(colon + 1, 1, MAX_PARTITIONS,
	    &t->partitions) != 0) {
		errbuf_set(err, errlen, "--topic %s: partitions must be 1..%d, "
		    "not \"%s\"", t->name, MAX_PARTITIONS, colon + 1);
		return -EINVAL;
	}
	return 0;
}

/* What a mock call answered: 0, or -EIO with librdkafka's words in err. */
static int
mock_result(rd_kafka_resp_err_t e, char *err, size_t errlen)
{
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	errbuf_set(err, errlen, "%s", rd_kafka_err2str(e));
	return -EIO;
}

/* Takes broker broker_id (-1: all) up or down: 0, or -ENOENT (no such
 * broker) or -EIO (the mock refused) with err. */
static int
devkafka_set_state(struct devkafka *dk, int32_t broker_id, bool up,
    char *err, size_t errlen)
{
	if (broker_id != -1 && (broker_id < 1 || broker_id > dk->brokers)) {
		errbuf_set(err, errlen, "no broker %d (brokers are 1..%d)",
		    (int)broker_id, dk->brokers);
		return -ENOENT;
	}
	return mock_result(up ? rd_kafka_mock_broker_set_up(dk->mc, broker_id) :
	    rd_kafka_mock_broker_set_down(dk->mc, broker_id), err, errlen);
}

/* "all", NULL (all) or a broker id into *id (-1 means all): 0, or
 * -EINVAL. */
static int
broker_arg(const char *s, int32_t *id)
{
	int v;

	if (s == NULL || strcmp(s, "all") == 0) {
		*id = -1;
		return 0;
	}
	if (parse_int(s, 0, INT_MAX, &v) != 0)
		return -EINVAL;
	*id = v;
	return 0;
}

/* "down|up [ID|all]": 0, or a negative errno with err. */
static int
cmd_updown(struct devkafka *dk, char **word, int nword, char *err,
    size_t errlen)
{
	int32_t id;

	if (broker_arg(nword == 2 ? word[1] : NULL, &id) != 0) {
		errbuf_set(err, errlen, "bad broker id \"%s\"", word[1]);
		return -EINVAL;
	}
	return devkafka_set_state(dk, id, word[0][0] == 'u', err, errlen);
}

/* "create-topic NAME PARTITIONS": 0, or a negative errno with err. */
static int
cmd_create_topic(struct devkafka *dk, char **word, char *err, size_t errlen)
{
	int parts;

	if (!topic_name_valid(word[1], strlen(word[1]))) {
		errbuf_set(err, errlen, "bad topic name");
		return -EINVAL;
	}
	if (parse_int(word[2], 1, MAX_PARTITIONS, &parts) != 0) {
		errbuf_set(err, errlen, "partitions must be 1..%d",
		    MAX_PARTITIONS);
		return -EINVAL;
	}
	return mock_result(rd_kafka_mock_topic_create(dk->mc, word[1], parts,
	    dk->brokers < 3 ? dk->brokers : 3), err, errlen);
}

/* "leader TOPIC PARTITION BROKER_ID|-1": 0, or a negative errno with
 * err. */
static int
cmd_leader(struct devkafka *dk, char **word, char *err, size_t errlen)
{
	int part, broker;

	if (parse_int(word[2], 0, MAX_PARTITIONS - 1, &part) != 0 ||
	    parse_int(word[3], -1, dk->brokers, &broker) != 0 || broker == 0) {
		errbuf_set(err, errlen, "usage: leader TOPIC PARTITION "
		    "BROKER_ID|-1 (brokers are 1..%d)", dk->brokers);
		return -EINVAL;
	}
	return mock_result(rd_kafka_mock_partition_set_leader(dk->mc, word[1],
	    part, broker), err, errlen);
}

/* Runs one control line and acknowledges it on stderr. */
static void
devkafka_command(struct devkafka *dk, char *line)
{
	char err[256] = "";
	char echo[CTL_LINE_MAX];
	char *save = NULL, *word[5];
	int nword = 0, rc;

	for (char *tok = strtok_r(line, " \t\r", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r", &save)) {
		if (nword == 5) {
			nword++;
			break;
		}
		word[nword++] = tok;
	}
	if (nword == 0 || word[0][0] == '#')
		return; /* blank line or comment */

	/* the command as understood, for the acknowledgement */
	echo[0] = '\0';
	for (int i = 0; i < nword && i < 5; i++) {
		size_t off = strlen(echo);
		snprintf(echo + off, sizeof(echo) - off, "%s%s",
		    i ? " " : "", word[i]);
	}

	if ((strcmp(word[0], "down") == 0 || strcmp(word[0], "up") == 0) &&
	    nword <= 2)
		rc = cmd_updown(dk, word, nword, err, sizeof(err));
	else if (strcmp(word[0], "create-topic") == 0 && nword == 3)
		rc = cmd_create_topic(dk, word, err, sizeof(err));
	else if (strcmp(word[0], "leader") == 0 && nword == 4)
		rc = cmd_leader(dk, word, err, sizeof(err));
	else {
		errbuf_set(err, sizeof(err), "unknown command (down [ID|all], "
		    "up [ID|all], create-topic NAME PARTITIONS, leader TOPIC "
		    "PARTITION BROKER_ID|-1)");
		rc = -EINVAL;
	}
	if (rc == 0)
		fprintf(stderr, "sbomd dev-kafka: ok: %s\n", echo);
	else
		fprintf(stderr, "sbomd dev-kafka: error: %s: %s\n", echo, err);
	fflush(stderr);
}

/* Reads what the FIFO holds and runs every complete line. */
static void
ctl_drain(struct devkafka *dk)
{
	char buf[1024];

	for (;;) {
		ssize_t n = read(dk->ctl_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "sbomd dev-kafka: reading the "
				    "control FIFO: %s\n", strerror(errno));
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (dk->linelen < sizeof(dk->line) - 1)
					dk->line[dk->linelen++] = buf[i];
				else
					dk->discarding = true;
				continue;
			}
			if (dk->discarding)
				fprintf(stderr, "sbomd dev-kafka: error: "
				    "control line longer than %d bytes "
				    "ignored\n", CTL_LINE_MAX - 1);
			else {
				dk->line[dk->linelen] = '\0';
				devkafka_command(dk, dk->line);
			}
			dk->linelen = 0;
			dk->discarding = false;
		}
	}
}

/* Creates (or reuses an existing) FIFO at path and opens both ends: 0,
 * or a negative errno with err. *created says whether it was made here
 * (then the caller removes it). */
static int
ctl_open(struct devkafka *dk, const char *path, bool *created, char *err,
    size_t errlen)
{
	struct stat st;

	*created = false;
	if (mkfifo(path, 0600) == 0) {
		*created = true;
	} else if (errno != EEXIST) {
		errbuf_set(err, errlen, "--control %s: mkfifo: %s", path,
		    strerror(errno));
		return -errno;
	} else if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
		errbuf_set(err, errlen,
		    "--control %s: exists and is not a FIFO", path);
		return -EEXIST;
	}
	dk->ctl_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (dk->ctl_fd >= 0)
		dk->ctl_wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (dk->ctl_fd < 0 || dk->ctl_wfd < 0) {
		int e = errno;
		errbuf_set(err, errlen, "--control %s: open: %s", path,
		    strerror(e));
		return -e;
	}
	return 0;
}

/* Writes text and a newline to path via a temporary file and rename: 0,
 * or a negative errno with err. */
static int
bootstrap_file_write(const char *path, const char *text, char *err,
    size_t errlen)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text);
	int fd, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
	    (long)getpid()) >= sizeof(tmp)) {
		errbuf_set(err, errlen, "--bootstrap-file %s: name too long",
		    path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		errbuf_set(err, errlen, "--bootstrap-file %.256s: %s", tmp,
		    strerror(errno));
		return rc;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		errbuf_set(err, errlen, "--bootstrap-file %.256s: writing: %s",
		    tmp, strerror(-rc));
	}
	if (close(fd) != 0 && rc == 0) {
		rc = -errno;
		errbuf_set(err, errlen, "--bootstrap-file %.256s: %s", tmp,
		    strerror(errno));
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -errno;
		errbuf_set(err, errlen, "--bootstrap-file %.256s: rename: %s",
		    path, strerror(errno));
	}
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* Whether every entry of the mock's bootstrap list is on 127.0.0.1. */
static bool
bootstraps_loopback(const char *list)
{
	const char *p = list;

	for (;;) {
		if (strncmp(p, "127.0.0.1:", 10) != 0)
			return false;
		p = strchr(p, ',');
		if (p == NULL)
			return true;
		p++;
	}
}

/* Creates the bookkeeping handle, the cluster and the topics: 0, or a
 * negative errno with err. */
static int
devkafka_start(struct devkafka *dk, const struct topic_spec *topics,
    int ntopics, char *err, size_t errlen)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	/* warnings and worse: the idle handle's notices are noise */
	if (rd_kafka_conf_set(conf, "client.id", "sbomd-dev-kafka", errstr,
	    sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "4", errstr,
	    sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		errbuf_set(err, errlen, "librdkafka configuration: %.400s",
		    errstr);
		return -EINVAL;
	}
	dk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (dk->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		errbuf_set(err, errlen, "rd_kafka_new: %.400s", errstr);
		return -EIO;
	}
	conf = NULL; /* rd_kafka_new took it */

	dk->mc = rd_kafka_mock_cluster_new(dk->rk, dk->brokers);
	if (dk->mc == NULL) {
		errbuf_set(err, errlen, "rd_kafka_mock_cluster_new failed (see "
		    "the librdkafka log above)");
		return -EIO;
	}
	if (!bootstraps_loopback(rd_kafka_mock_cluster_bootstraps(dk->mc))) {
		errbuf_set(err, errlen, "mock brokers not on 127.0.0.1: %.400s",
		    rd_kafka_mock_cluster_bootstraps(dk->mc));
		return -EADDRNOTAVAIL;
	}
	for (int i = 0; i < ntopics; i++) {
		rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(dk->mc,
		    topics[i].name, topics[i].partitions,
		    dk->brokers < 3 ? dk->brokers : 3);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			errbuf_set(err, errlen, "creating topic %.250s: %s",
			    topics[i].name, rd_kafka_err2str(e));
			return -EIO;
		}
	}
	return 0;
}

static void
devkafka_stop(struct devkafka *dk)
{
	if (dk->mc != NULL)
		rd_kafka_mock_cluster_destroy(dk->mc);
	if (dk->rk != NULL)
		rd_kafka_destroy(dk->rk);
	if (dk->ctl_fd >= 0)
		close(dk->ctl_fd);
	if (dk->ctl_wfd >= 0)
		close(dk->ctl_wfd);
	dk->mc = NULL;
	dk->rk = NULL;
	dk->ctl_fd = dk->ctl_wfd = -1;
	rd_kafka_wait_destroyed(5000);
}

static void
signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1); /* the handlers do not nest */
	sigaddset(&sa.sa_mask, SIGUSR2);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns early */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Option name (namelen bytes of arg) with its value: 0, or -EINVAL with
 * err. */
static int
option_set(struct options *o, const char *arg, size_t namelen,
    const char *val, char *err, size_t errlen)
{
#define IS(flag) (namelen == strlen(flag) && strncmp(arg, flag, namelen) == 0)
	if (IS("--brokers")) {
		if (parse_int(val, 1, MAX_BROKERS, &o->brokers) != 0) {
			errbuf_set(err, errlen, "--brokers must be 1..%d, not "
			    "\"%s\"", MAX_BROKERS, val);
			return -EINVAL;
		}
	} else if (IS("--topic")) {
		if (o->ntopics == MAX_TOPICS) {
			errbuf_set(err, errlen, "at most %d --topic options",
			    MAX_TOPICS);
			return -EINVAL;
		}
		struct topic_spec *t = &o->topics[o->ntopics];
		if (topic_parse(val, t, err, errlen) != 0)
			return -EINVAL;
		for (int j = 0; j < o->ntopics; j++) {
			if (strcmp(o->topics[j].name, t->name) == 0) {
				errbuf_set(err, errlen,
				    "--topic %s given twice", t->name);
				return -EINVAL;
			}
		}
		o->ntopics++;
	} else if (IS("--port")) {
		if (parse_int(val, 1, 65535, &o->port) != 0) {
			errbuf_set(err, errlen, "--port must be 1..65535, not "
			    "\"%s\"", val);
			return -EINVAL;
		}
	} else if (IS("--bootstrap-file")) {
		o->bootstrap_file = val;
	} else {
		o->control = val;
	}
	return 0;
#undef IS
}

/*
 * The command line into *o: true to go on; false when done, with *status
 * 0 after --help, 2 after a usage error (said on stderr).
 */
static bool
options_parse(int argc, char **argv, struct options *o, int *status)
{
	static const char *const names[] = {"--brokers", "--topic", "--port",
	    "--bootstrap-file", "--control"};
	char err[512];

	*status = 2;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		size_t namelen = strcspn(arg, "="), k;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			*status = 0;
			return false;
		}
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (namelen == strlen(names[k]) &&
			    strncmp(arg, names[k], namelen) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "sbomd dev-kafka: unknown option "
			    "\"%s\"; see 'sbomd dev-kafka --help'\n", arg);
			return false;
		}
		if (arg[namelen] == '=')
			val = arg + namelen + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (val == NULL || *val == '\0') {
			fprintf(stderr, "sbomd dev-kafka: option %.*s needs a "
			    "value\n", (int)namelen, arg);
			return false;
		}
		if (option_set(o, arg, namelen, val, err, sizeof(err)) != 0) {
			fprintf(stderr, "sbomd dev-kafka: %s\n", err);
			return false;
		}
	}
	if (o->ntopics == 0) {
		o->ntopics = (int)(sizeof(default_topics) /
		    sizeof(default_topics[0]));
		memcpy(o->topics, default_topics, sizeof(default_topics));
	}
	return true;
}

/*
 * Publishes the bootstrap list: to --bootstrap-file (setting *written),
 * and as the first line on stdout. 0, or a negative errno with err; a
 * failure to write stdout only counts without a bootstrap file.
 */
static int
announce(const struct devkafka *dk, const struct options *o, bool *written,
    char *err, size_t errlen)
{
	const char *bootstraps = rd_kafka_mock_cluster_bootstraps(dk->mc);
	int rc;

	if (o->bootstrap_file != NULL) {
		if ((rc = bootstrap_file_write(o->bootstrap_file, bootstraps,
		    err, errlen)) != 0)
			return rc;
		*written = true;
	}
	if (printf("%s\n", bootstraps) < 0 || fflush(stdout) != 0) {
		rc = errno ? -errno : -EIO;
		errbuf_set(err, errlen, "writing the address to stdout: %s",
		    strerror(-rc));
		if (o->bootstrap_file == NULL)
			return rc;
		fprintf(stderr, "sbomd dev-kafka: %s\n", err);
	}
	fprintf(stderr, "sbomd dev-kafka: %d broker(s) at %s, %d topic(s)%s%s; "
	    "SIGTERM to stop\n", dk->brokers, bootstraps, o->ntopics,
	    o->control ? ", control FIFO " : "", o->control ? o->control : "");
	fflush(stderr);
	return 0;
}

/* Takes all brokers down or up as the last SIGUSR1/SIGUSR2 asked, once
 * per signal generation (*seen: the generation applied). */
static void
apply_updown(struct devkafka *dk, sig_atomic_t *seen)
{
	char err[256];
	sig_atomic_t gen = updown_gen;

	if (gen == *seen)
		return;
	/* a signal after the read of gen is seen next time */
	bool up = updown_want == 2;
	*seen = gen;
	if (devkafka_set_state(dk, -1, up, err, sizeof(err)) == 0)
		fprintf(stderr, "sbomd dev-kafka: ok: %s all (%s)\n",
		    up ? "up" : "down", up ? "SIGUSR2" : "SIGUSR1");
	else
		fprintf(stderr, "sbomd dev-kafka: error: %s all: %s\n",
		    up ? "up" : "down", err);
	fflush(stderr);
}

int
devkafka_main(int argc, char **argv)
{
	struct options o = {.brokers = 1};
	struct devkafka dk = {.ctl_fd = -1, .ctl_wfd = -1};
	bool fifo_created = false, bootstrap_written = false;
	sig_atomic_t updown_seen = updown_gen;
	char err[512];
	int status;

	if (!options_parse(argc, argv, &o, &status))
		return status;
	dk.brokers = o.brokers;
	if (o.port != 0)
		fprintf(stderr, "sbomd dev-kafka: --port %d: librdkafka %s's "
		    "mock cluster cannot listen on a chosen port; using a "
		    "random one (see the printed address)\n", o.port,
		    rd_kafka_version_str());

	signals_install();
	if ((o.control != NULL && ctl_open(&dk, o.control, &fifo_created,
	    err, sizeof(err)) != 0) ||
	    devkafka_start(&dk, o.topics, o.ntopics, err, sizeof(err)) != 0 ||
	    announce(&dk, &o, &bootstrap_written, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd dev-kafka: %s\n", err);
		status = 1;
	} else {
		while (!stop_requested) {
			struct pollfd pfd = {.fd = dk.ctl_fd, .events = POLLIN};
			apply_updown(&dk, &updown_seen);
			if (poll(&pfd, dk.ctl_fd >= 0 ? 1 : 0, LOOP_MS) > 0)
				ctl_drain(&dk);
		}
		fprintf(stderr, "sbomd dev-kafka: stopping\n");
		status = 0;
	}
	devkafka_stop(&dk);
	if (bootstrap_written)
		unlink(o.bootstrap_file);
	if (fifo_created)
		unlink(o.control);
	return status;
}
