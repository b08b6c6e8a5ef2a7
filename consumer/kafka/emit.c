/*
 * emit, tail: the producer and consumer ends of sbomd's topics for people
 * and tests.
 *
 *   sbomd emit: JSON lines on stdin -> WorkloadEvent messages (key = id).
 *     event_id (random) and observed_at (now) are filled in when absent.
 *     --raw sends each line's hex bytes as they are ("KEY<TAB>HEX" or
 *     "HEX"): malformed input for tests. Waits for every delivery report.
 *   sbomd tail: ScanOutcome messages (or, with --raw, any message) ->
 *     JSON lines on stdout (wire_outcome_to_json: every field of the
 *     schema, generation included, 0 for outcomes written before it), from
 *     the beginning of every partition (or the end with --from-end); stops
 *     after --count messages or --idle time without one.
 *
 * Both speak Kafka and the wire codec only; they take brokers and topics
 * from flags, else from the SBOMD_KAFKA_* variables the service uses.
 * Single-threaded (librdkafka runs its own threads; the delivery report
 * callback runs in ours, inside rd_kafka_poll and rd_kafka_flush).
 */
#include "kafka/emit.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka/kclient.h"
#include "util/clock.h"
#include "util/duration.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"
#include "wire/wire.h"
#include "wire/wirejson.h"

#define MAX_PROPS 32

static volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

struct cli {
	const char *cmd; /* "emit" or "tail", for messages */
	const char *brokers;
	const char *topic;
	enum wire_framing framing;
	uint32_t schema_id;
	bool raw;
	bool no_sbom;
	bool from_end;
	long count;	 /* tail: stop after this many; 0 = no limit */
	int64_t idle_ms; /* tail: stop after this long without a message */
	int64_t wait_ms; /* emit: delivery budget */
	struct kclient_prop props[MAX_PROPS];
	size_t nprops;
};

/* A flag without a value: whether a is one (it is then set in c). */
static bool
cli_flag(const char *a, struct cli *c)
{
	if (strcmp(a, "--raw") == 0)
		c->raw = true;
	else if (strcmp(a, "--no-sbom") == 0)
		c->no_sbom = true;
	else if (strcmp(a, "--from-end") == 0)
		c->from_end = true;
	else
		return false;
	return true;
}

/* "-X name=value" into c's properties: 0, or -EINVAL. */
static int
cli_prop(struct cli *c, const char *v)
{
	const char *eq = strchr(v, '=');
	if (eq == NULL || eq == v || c->nprops == MAX_PROPS)
		return -EINVAL;
	c->props[c->nprops].name = xstrndup(v, (size_t)(eq - v));
	c->props[c->nprops++].value = eq + 1;
	return 0;
}

/*
 * Option a with its value v: 0; -ENOENT for an unknown option; -EINVAL
 * for a bad value, with the reason in err.
 */
static int
cli_option(struct cli *c, const char *a, const char *v, char *err,
    size_t errlen)
{
	char *end;
	int64_t ms;

	if (strcmp(a, "--brokers") == 0 || strcmp(a, "-b") == 0) {
		c->brokers = v;
	} else if (strcmp(a, "--topic") == 0 || strcmp(a, "-t") == 0) {
		c->topic = v;
	} else if (strcmp(a, "--framing") == 0) {
		if (wire_framing_parse(v, &c->framing) != 0) {
			errbuf_set(err, errlen, "--framing: \"%s\" is not "
			    "single-object or confluent", v);
			return -EINVAL;
		}
	} else if (strcmp(a, "--schema-id") == 0) {
		unsigned long id = strtoul(v, &end, 10);
		if (*v == '\0' || *end != '\0' || id > UINT32_MAX) {
			errbuf_set(err, errlen, "--schema-id: bad id \"%s\"",
			    v);
			return -EINVAL;
		}
		c->schema_id = (uint32_t)id;
	} else if (strcmp(a, "--count") == 0) {
		c->count = strtol(v, &end, 10);
		if (*end != '\0' || c->count < 0) {
			errbuf_set(err, errlen, "--count: bad number \"%s\"",
			    v);
			return -EINVAL;
		}
	} else if (strcmp(a, "--idle") == 0 || strcmp(a, "--wait") == 0) {
		char reason[128];
		if (duration_parse(v, &ms, reason, sizeof(reason)) != 0) {
			errbuf_set(err, errlen, "%s: %s", a, reason);
			return -EINVAL;
		}
		*(strcmp(a, "--idle") == 0 ? &c->idle_ms : &c->wait_ms) = ms;
	} else if (strcmp(a, "-X") == 0) {
		if (cli_prop(c, v) != 0) {
			errbuf_set(err, errlen, "-X wants name=value");
			return -EINVAL;
		}
	} else {
		return -ENOENT;
	}
	return 0;
}

/*
 * The common flags: true to go on; false when the command is done, with
 * *status 0 after --help, 2 after a usage error (said on stderr).
 */
static bool
cli_parse(int argc, char **argv, struct cli *c, void (*usage)(FILE *),
    int *status)
{
	char err[256];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc = -ENOENT;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			*status = 0;
			return false;
		}
		if (cli_flag(a, c))
			continue;
		if (i + 1 < argc)
			rc = cli_option(c, a, argv[++i], err, sizeof(err));
		if (rc == 0)
			continue;
		if (rc == -EINVAL) {
			fprintf(stderr, "sbomd %s: %s\n", c->cmd, err);
		} else {
			fprintf(stderr, "sbomd %s: unknown or incomplete "
			    "argument \"%s\"\n", c->cmd, a);
			usage(stderr);
		}
		*status = 2;
		return false;
	}
	return true;
}

static void
cli_free(struct cli *c)
{
	for (size_t i = 0; i < c->nprops; i++)
		free((char *)c->props[i].name);
}

/*
 * The client of a subcommand: our defaults, then the -X properties; dr
 * (may be NULL) gets delivery reports with opaque. NULL with the message
 * printed and *status set (2: a refused property, 1: the client could
 * not be made).
 */
static rd_kafka_t *
cli_client(const struct cli *c, rd_kafka_type_t type,
    const struct kclient_prop *defs, size_t ndefs,
    void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    void *opaque, int *status)
{
	char err[512];
	rd_kafka_conf_t *conf = kclient_conf(c->brokers, defs, ndefs, c->props,
	    c->nprops, "-X", err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "sbomd %s: %s\n", c->cmd, err);
		*status = 2;
		return NULL;
	}
	if (dr != NULL)
		rd_kafka_conf_set_dr_msg_cb(conf, dr);
	rd_kafka_conf_set_opaque(conf, opaque);
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "sbomd %s: %s\n", c->cmd, err);
		rd_kafka_conf_destroy(conf);
		*status = 1;
	}
	return rk;
}

/*
 * The start of a subcommand: the flags, then the client. The client, or
 * NULL when the command is done, with *status the exit status (see
 * cli_parse and cli_client).
 */
static rd_kafka_t *
cli_start(struct cli *c, int argc, char **argv, void (*usage)(FILE *),
    rd_kafka_type_t type, const struct kclient_prop *defs, size_t ndefs,
    void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    void *opaque, int *status)
{
	if (!cli_parse(argc, argv, c, usage, status))
		return NULL;
	return cli_client(c, type, defs, ndefs, dr, opaque, status);
}

/* ---- emit ---- */

static void
emit_usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd emit [-b BROKERS] [-t TOPIC] [--framing F]\n"
	    "                  [--schema-id N] [--raw] [--wait DURATION]\n"
	    "                  [-X name=value]...\n"
	    "\n"
	    "Reads JSON lines on stdin, one WorkloadEvent each, and produces\n"
	    "them Avro-encoded to the input topic, keyed by id:\n"
	    "  {\"type\":\"SET\",\"kind\":\"CONTAINER_IMAGE\",\"id\":\"sha256:...\",\n"
	    "   \"source\":\"node-1\",\"repo_tags\":[\"nginx:1.25\"]}\n"
	    "event_id and observed_at (ms) are filled in when absent.\n"
	    "\n"
	    "  -b, --brokers  bootstrap servers (default $SBOMD_KAFKA_BROKERS,\n"
	    "                 else 127.0.0.1:9092)\n"
	    "  -t, --topic    default $SBOMD_KAFKA_INPUT_TOPIC, else\n"
	    "                 workload-events\n"
	    "  --framing      single-object (default) or confluent\n"
	    "  --schema-id N  the id written with confluent framing (1)\n"
	    "  --raw          each line is \"HEX\" or \"KEY<TAB>HEX\": the bytes\n"
	    "                 are sent as they are (for tests)\n"
	    "  --wait D       how long to wait for delivery (default 60s)\n"
	    "  -X name=value  a librdkafka producer property\n"
	    "\n"
	    "exit status: 0 all delivered, 1 a line was refused or a delivery\n"
	    "failed, 2 usage error\n");
}

/* What emit keeps between lines. */
struct emitter {
	const struct cli *c;
	struct wire_event *ev;
	struct wire_buf buf;
	struct wire_frame frame;
	uint64_t rnd;	/* for event ids */
	char eid[40];	/* the generated event id of the current line */
	long lineno, sent, refused;
	long failed;	/* delivery reports with an error */
};

/* One message to produce. */
struct msg {
	const void *key, *val;
	size_t klen, vlen;
};

static void
emit_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct emitter *em = opaque;
	(void)rk;
	if (m->err) {
		em->failed++;
		fprintf(stderr, "sbomd emit: delivery failed: %s\n",
		    rd_kafka_err2str(m->err));
	}
}

/* The value of hex digit c: whether it is one (then *v is set). */
static bool
hexval(char c, unsigned *v)
{
	if (c >= '0' && c <= '9')
		*v = (unsigned)(c - '0');
	else if (c >= 'a' && c <= 'f')
		*v = (unsigned)(c - 'a' + 10);
	else if (c >= 'A' && c <= 'F')
		*v = (unsigned)(c - 'A' + 10);
	else
		return false;
	return true;
}

/* Decodes s[0..len) hex in place: 0 with *n bytes, or -EINVAL. */
static int
unhex(char *s, size_t len, size_t *n)
{
	unsigned h, l;

	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		if (!hexval(s[2 * i], &h) || !hexval(s[2 * i + 1], &l))
			return -EINVAL;
		s[i] = (char)(h << 4 | l);
	}
	*n = len / 2;
	return 0;
}

/* A --raw line, "HEX" or "KEY<TAB>HEX", decoded in place: 0, or -EINVAL
 * with err. */
static int
emit_raw(char *line, struct msg *m, char *err, size_t errlen)
{
	char *tab = strchr(line, '\t');
	char *hex = line;

	if (tab != NULL) {
		*tab = '\0';
		m->key = line;
		m->klen = (size_t)(tab - line);
		hex = tab + 1;
	}
	if (unhex(hex, strlen(hex), &m->vlen) != 0) {
		errbuf_set(err, errlen, "not hex");
		return -EINVAL;
	}
	m->val = hex;
	return 0;
}

/*
 * A JSON line as an encoded event keyed by its id, event_id and
 * observed_at filled in when absent. *obj holds the strings: the caller
 * releases it (also on failure). 0, or -EINVAL with err.
 */
static int
emit_json(struct emitter *em, const char *line, size_t len, json_t **obj,
    struct msg *m, char *err, size_t errlen)
{
	json_error_t je;
	unsigned present = 0;
	int rc;

	if ((*obj = json_loadb(line, len, 0, &je)) == NULL) {
		errbuf_set(err, errlen, "%s", je.text);
		return -EINVAL;
	}
	if ((rc = wire_event_from_json(*obj, em->ev, &present, err,
	    errlen)) != 0)
		return rc;
	if (!(present & WIRE_JSON_HAS_EVENT_ID)) {
		em->rnd = em->rnd * 6364136223846793005ULL +
		    1442695040888963407ULL;
		snprintf(em->eid, sizeof(em->eid), "%016" PRIx64 "-%ld",
		    em->rnd, em->lineno);
		em->ev->event_id = wire_str_c(em->eid);
	}
	if (!(present & WIRE_JSON_HAS_OBSERVED_AT))
		em->ev->observed_at = clock_wall_ms();
	if ((rc = wire_event_encode(em->ev, &em->frame, &em->buf, err,
	    errlen)) != 0)
		return rc;
	m->key = em->ev->id.ptr;
	m->klen = em->ev->id.len;
	m->val = em->buf.data;
	m->vlen = em->buf.len;
	return 0;
}

/* Produces m (copied), waiting while librdkafka's queue is full: 0, or
 * -EIO with err. */
static int
emit_produce(rd_kafka_t *rk, const char *topic, const struct msg *m,
    char *err, size_t errlen)
{
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(rk,
		    RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(m->key, m->klen),
		    RD_KAFKA_V_VALUE((void *)m->val, m->vlen),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			return 0;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			errbuf_set(err, errlen, "%s", rd_kafka_err2str(e));
			return -EIO;
		}
		rd_kafka_poll(rk, 100);
	}
}

/* One line of stdin (without its newline): produced, or refused with
 * the reason on stderr. */
static void
emit_line(struct emitter *em, rd_kafka_t *rk, char *line, size_t len)
{
	struct msg m = {0};
	json_t *obj = NULL;
	char err[512];
	int rc = em->c->raw ? emit_raw(line, &m, err, sizeof(err)) :
	    emit_json(em, line, len, &obj, &m, err, sizeof(err));

	if (rc == 0)
		rc = emit_produce(rk, em->c->topic, &m, err, sizeof(err));
	if (rc == 0) {
		em->sent++;
	} else {
		fprintf(stderr, "sbomd emit: line %ld: %s\n", em->lineno, err);
		em->refused++;
	}
	json_decref(obj);
}

/* Waits up to the delivery budget; what is still queued then fails. */
static void
emit_flush(struct emitter *em, rd_kafka_t *rk)
{
	if (rd_kafka_flush(rk, (int)em->c->wait_ms) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	fprintf(stderr, "sbomd emit: %d messages not delivered within "
	    "%" PRId64 " ms\n", rd_kafka_outq_len(rk), em->c->wait_ms);
	em->failed += rd_kafka_outq_len(rk);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(rk, 0);
}

int
emit_main(int argc, char **argv)
{
	static const struct kclient_prop defs[] = {
		{ "enable.idempotence", "true" },
		{ "compression.codec", "zstd" },
		{ "linger.ms", "20" },
	};
	struct cli c = { .cmd = "emit", .schema_id = 1, .wait_ms = 60000 };
	struct emitter em = { .c = &c };
	int status = 0;

	c.brokers = env_or("SBOMD_KAFKA_BROKERS", "127.0.0.1:9092");
	c.topic = env_or("SBOMD_KAFKA_INPUT_TOPIC", "workload-events");
	rd_kafka_t *rk = cli_start(&c, argc, argv, emit_usage,
	    RD_KAFKA_PRODUCER, defs, 3, emit_dr, &em, &status);
	if (rk == NULL) {
		cli_free(&c);
		return status;
	}
	signal(SIGPIPE, SIG_IGN);

	em.ev = xmalloc(sizeof(*em.ev));
	em.frame = (struct wire_frame){ c.framing, c.schema_id };
	em.rnd = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 32);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		em.lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len > 0)
			emit_line(&em, rk, line, (size_t)len);
		rd_kafka_poll(rk, 0);
	}
	free(line);
	emit_flush(&em, rk);
	rd_kafka_destroy(rk);
	fprintf(stderr, "sbomd emit: %ld sent to %s, %ld refused, %ld not "
	    "delivered\n", em.sent, c.topic, em.refused, em.failed);
	wire_buf_free(&em.buf);
	free(em.ev);
	cli_free(&c);
	return em.refused || em.failed ? 1 : 0;
}

/* ---- tail ---- */

static void
tail_usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd tail [-b BROKERS] [-t TOPIC] [--no-sbom] [--raw]\n"
	    "                  [--from-end] [--count N] [--idle DURATION]\n"
	    "                  [-X name=value]...\n"
	    "\n"
	    "Prints the outcomes on the output topic as JSON lines, each with\n"
	    "a \"kafka\" member (partition, offset, key). Reads every\n"
	    "partition from the beginning (or only new messages with\n"
	    "--from-end); joins no consumer group. An outcome is identified\n"
	    "by (id, generation, attempt, status); one written before\n"
	    "generations existed shows \"generation\": 0.\n"
	    "\n"
	    "  -b, --brokers  default $SBOMD_KAFKA_BROKERS, else 127.0.0.1:9092\n"
	    "  -t, --topic    default $SBOMD_KAFKA_OUTPUT_TOPIC, else\n"
	    "                 scan-outcomes\n"
	    "  --no-sbom      leave the SBOM document out (its length stays)\n"
	    "  --raw          any message: headers and the value as hex (for\n"
	    "                 the dead-letter topic)\n"
	    "  --count N      stop after N messages\n"
	    "  --idle D       stop after D without a message (e.g. 5s)\n"
	    "  -X name=value  a librdkafka consumer property\n"
	    "\n"
	    "exit status: 0, 1 when the topic cannot be read, 2 usage error\n");
}

static json_t *
tail_raw(const rd_kafka_message_t *m)
{
	json_t *o = json_object();
	rd_kafka_headers_t *h = NULL;
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		json_t *hj = json_object();
		const char *name;
		const void *val;
		size_t sz;
		for (size_t i = 0;
		     rd_kafka_header_get_all(h, i, &name, &val, &sz) ==
		     RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++)
			json_object_set_new(hj, name,
			    json_stringn(val ? val : "", val ? sz : 0));
		json_object_set_new(o, "headers", hj);
	}
	char *hex = xmalloc(m->len * 2 + 1);
	for (size_t i = 0; i < m->len; i++)
		snprintf(hex + 2 * i, 3, "%02x",
		    ((const unsigned char *)m->payload)[i]);
	hex[m->len * 2] = '\0';
	json_object_set_new(o, "value_hex", json_string(hex));
	free(hex);
	return o;
}

/*
 * The topic's metadata, retried for about a minute while the topic does
 * not exist yet (or until a signal): the metadata (destroy it), or NULL
 * with the error said on stderr.
 */
static const struct rd_kafka_metadata *
tail_metadata(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t me = RD_KAFKA_RESP_ERR__TIMED_OUT;

	for (int tries = 0; tries < 30 && !cli_stop; tries++) {
		me = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
		if (me == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
		    md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topics[0].partition_cnt > 0)
			break;
		if (me == RD_KAFKA_RESP_ERR_NO_ERROR) {
			me = md->topic_cnt == 1 && md->topics[0].err ?
			    md->topics[0].err :
			    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
			rd_kafka_metadata_destroy(md);
			md = NULL;
		}
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
	}
	rd_kafka_topic_destroy(rkt);
	if (md == NULL)
		fprintf(stderr, "sbomd tail: topic %s: %s\n", topic,
		    rd_kafka_err2str(me));
	return md;
}

/* Every partition of the topic, from the start (or the end): 0, or -EIO
 * (said on stderr). */
static int
tail_assign(rd_kafka_t *rk, const struct cli *c)
{
	const struct rd_kafka_metadata *md = tail_metadata(rk, c->topic);
	if (md == NULL)
		return -EIO;
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, c->topic,
		    md->topics[0].partitions[i].id)->offset = c->from_end ?
		    RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	return 0;
}

/* Message m as one JSON line on stdout: the outcome (or the raw message,
 * or the decoding error) with a "kafka" member. */
static void
tail_print(const rd_kafka_message_t *m, const struct cli *c,
    struct wire_outcome *o)
{
	static const struct wire_config wc = { .max_payload = (size_t)1 << 30,
		.any_schema_id = true };
	char err[512];
	json_t *j;

	if (c->raw) {
		j = tail_raw(m);
	} else if (wire_outcome_decode(m->payload, m->len, &wc, o, NULL, err,
	    sizeof(err)) == 0) {
		j = wire_outcome_to_json(o,
		    c->no_sbom ? WIRE_JSON_OMIT_CONTENT : 0);
	} else {
		j = json_object();
		json_object_set_new(j, "error", json_string(err));
	}
	json_t *k = json_object();
	json_object_set_new(k, "partition", json_integer(m->partition));
	json_object_set_new(k, "offset", json_integer(m->offset));
	json_object_set_new(k, "key", m->key ?
	    json_stringn(m->key, m->key_len) : json_null());
	json_object_set_new(j, "kafka", k);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
	}
	json_decref(j);
}

/* Prints messages until --count, --idle or a signal. */
static void
tail_loop(rd_kafka_t *rk, const struct cli *c)
{
	struct wire_outcome *o = xmalloc(sizeof(*o));
	int64_t last = clock_mono_ms();

	for (long seen = 0; !cli_stop && (c->count == 0 || seen < c->count);) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		int64_t mono = clock_mono_ms();
		if (m == NULL) {
			if (c->idle_ms > 0 && mono - last >= c->idle_ms)
				break;
			continue;
		}
		if (m->err) {
			fprintf(stderr, "sbomd tail: %s\n",
			    rd_kafka_message_errstr(m));
		} else {
			last = mono;
			seen++;
			tail_print(m, c, o);
		}
		rd_kafka_message_destroy(m);
	}
	free(o);
}

int
tail_main(int argc, char **argv)
{
	static const struct kclient_prop defs[] = {
		{ "group.id", "sbomd-tail" }, /* required; never joined */
		{ "enable.auto.commit", "false" },
		{ "enable.partition.eof", "false" },
	};
	struct cli c = { .cmd = "tail" };
	int status = 0;

	c.brokers = env_or("SBOMD_KAFKA_BROKERS", "127.0.0.1:9092");
	c.topic = env_or("SBOMD_KAFKA_OUTPUT_TOPIC", "scan-outcomes");
	rd_kafka_t *rk = cli_start(&c, argc, argv, tail_usage,
	    RD_KAFKA_CONSUMER, defs, 3, NULL, NULL, &status);
	if (rk == NULL) {
		cli_free(&c);
		return status;
	}
	rd_kafka_poll_set_consumer(rk);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	status = 1;
	if (tail_assign(rk, &c) == 0) {
		tail_loop(rk, &c);
		status = 0;
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	cli_free(&c);
	return status;
}
