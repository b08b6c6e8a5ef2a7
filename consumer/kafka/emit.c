/*
 * emit, tail: the producer and consumer ends of sbomd's topics for people
 * and tests.
 *
 *   sbomd emit: JSON lines on stdin -> WorkloadEvent messages (key = id).
 *     event_id (random) and observed_at (now) are filled in when absent.
 *     --raw sends each line's hex bytes as they are ("KEY<TAB>HEX" or
 *     "HEX"): malformed input for tests. Waits for every delivery report.
 *   sbomd tail: ScanOutcome messages (or, with --raw, any message) ->
 *     JSON lines on stdout, from the beginning of every partition (or the
 *     end with --from-end); stops after --count messages or --idle time
 *     without one.
 *
 * Both speak Kafka and the wire codec only; they take brokers and topics
 * from flags, else from the SBOMD_KAFKA_* variables the service uses.
 * Single-threaded (librdkafka runs its own threads).
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
#include "util/xmalloc.h"
#include "wire/wire.h"
#include "wire/wirejson.h"

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
	struct kclient_prop props[32];
	size_t nprops;
};

/* Common flags; returns 0, 1 (help), 2 (usage error). */
static int
cli_parse(const char *cmd, int argc, char **argv, struct cli *c,
    void (*usage)(FILE *))
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char why[128];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "--raw") == 0) {
			c->raw = true;
			continue;
		}
		if (strcmp(a, "--no-sbom") == 0) {
			c->no_sbom = true;
			continue;
		}
		if (strcmp(a, "--from-end") == 0) {
			c->from_end = true;
			continue;
		}
		if (v == NULL)
			goto bad;
		i++;
		if (strcmp(a, "--brokers") == 0 || strcmp(a, "-b") == 0) {
			c->brokers = v;
		} else if (strcmp(a, "--topic") == 0 || strcmp(a, "-t") == 0) {
			c->topic = v;
		} else if (strcmp(a, "--framing") == 0) {
			if (wire_framing_parse(v, &c->framing) != 0) {
				fprintf(stderr, "sbomd %s: --framing: "
				    "\"%s\" is not single-object or "
				    "confluent\n", cmd, v);
				return 2;
			}
		} else if (strcmp(a, "--schema-id") == 0) {
			char *end;
			unsigned long id = strtoul(v, &end, 10);
			if (*v == '\0' || *end != '\0' || id > UINT32_MAX) {
				fprintf(stderr, "sbomd %s: --schema-id: bad "
				    "id \"%s\"\n", cmd, v);
				return 2;
			}
			c->schema_id = (uint32_t)id;
		} else if (strcmp(a, "--count") == 0) {
			char *end;
			c->count = strtol(v, &end, 10);
			if (*end != '\0' || c->count < 0) {
				fprintf(stderr, "sbomd %s: --count: bad "
				    "number \"%s\"\n", cmd, v);
				return 2;
			}
		} else if (strcmp(a, "--idle") == 0 ||
		    strcmp(a, "--wait") == 0) {
			int64_t ms;
			if (duration_parse(v, &ms, why, sizeof(why)) != 0) {
				fprintf(stderr, "sbomd %s: %s: %s\n", cmd, a,
				    why);
				return 2;
			}
			if (strcmp(a, "--idle") == 0)
				c->idle_ms = ms;
			else
				c->wait_ms = ms;
		} else if (strcmp(a, "-X") == 0) {
			const char *eq = strchr(v, '=');
			if (eq == NULL || eq == v || c->nprops == 32) {
				fprintf(stderr, "sbomd %s: -X wants "
				    "name=value\n", cmd);
				return 2;
			}
			c->props[c->nprops].name = xstrndup(v, (size_t)(eq - v));
			c->props[c->nprops++].value = eq + 1;
		} else {
			goto bad;
		}
		continue;
bad:
		fprintf(stderr, "sbomd %s: unknown or incomplete argument "
		    "\"%s\"\n", cmd, a);
		usage(stderr);
		return 2;
	}
	return 0;
}

static void
cli_free(struct cli *c)
{
	for (size_t i = 0; i < c->nprops; i++)
		free((char *)c->props[i].name);
}

/*
 * The client of a subcommand: our defaults, then the -X properties. NULL
 * with the message printed and *rc set (2: a refused property, 1: the
 * client could not be made).
 */
static rd_kafka_t *
cli_client(const char *cmd, const struct cli *c, rd_kafka_type_t type,
    const struct kclient_prop *defs, size_t ndefs,
    void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *), int *rc)
{
	char err[512];
	rd_kafka_conf_t *conf = kclient_conf(c->brokers, defs, ndefs, c->props,
	    c->nprops, "-X", err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "sbomd %s: %s\n", cmd, err);
		*rc = 2;
		return NULL;
	}
	if (dr != NULL)
		rd_kafka_conf_set_dr_msg_cb(conf, dr);
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "sbomd %s: %s\n", cmd, err);
		rd_kafka_conf_destroy(conf);
		*rc = 1;
	}
	return rk;
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

static long emit_failed;

static void
emit_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		emit_failed++;
		fprintf(stderr, "sbomd emit: delivery failed: %s\n",
		    rd_kafka_err2str(m->err));
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex in place; returns the byte count or -1. */
static ssize_t
unhex(char *s, size_t len)
{
	if (len % 2)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
		if (h < 0 || l < 0)
			return -1;
		s[i] = (char)(h << 4 | l);
	}
	return (ssize_t)(len / 2);
}

int
emit_main(int argc, char **argv)
{
	struct cli c = { 0 };
	c.brokers = env_or("SBOMD_KAFKA_BROKERS", "127.0.0.1:9092");
	c.topic = env_or("SBOMD_KAFKA_INPUT_TOPIC", "workload-events");
	c.schema_id = 1;
	c.wait_ms = 60000;
	int r = cli_parse("emit", argc, argv, &c, emit_usage);
	if (r != 0) {
		cli_free(&c);
		return r == 1 ? 0 : 2;
	}
	const struct kclient_prop defs[] = {
		{ "enable.idempotence", "true" },
		{ "compression.codec", "zstd" },
		{ "linger.ms", "20" },
	};
	char err[512];
	rd_kafka_t *rk = cli_client("emit", &c, RD_KAFKA_PRODUCER, defs, 3,
	    emit_dr, &r);
	if (rk == NULL) {
		cli_free(&c);
		return r;
	}
	signal(SIGPIPE, SIG_IGN);

	struct wire_event *ev = xmalloc(sizeof(*ev));
	struct wire_buf buf = { 0 };
	struct wire_frame frame = { c.framing, c.schema_id };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0, sent = 0, bad = 0;
	uint64_t rnd = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 32);

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		const void *key = NULL, *val;
		size_t klen = 0, vlen;
		json_t *obj = NULL;
		if (c.raw) {
			char *tab = strchr(line, '\t');
			char *hex = line;
			if (tab) {
				*tab = '\0';
				key = line;
				klen = (size_t)(tab - line);
				hex = tab + 1;
			}
			ssize_t n = unhex(hex, strlen(hex));
			if (n < 0) {
				fprintf(stderr, "sbomd emit: line %ld: not "
				    "hex\n", lineno);
				bad++;
				continue;
			}
			val = hex;
			vlen = (size_t)n;
		} else {
			json_error_t je;
			obj = json_loadb(line, (size_t)len, 0, &je);
			unsigned present = 0;
			if (obj == NULL) {
				fprintf(stderr, "sbomd emit: line %ld: %s\n",
				    lineno, je.text);
				bad++;
				continue;
			}
			if (wire_event_from_json(obj, ev, &present, err,
				sizeof(err)) != 0) {
				fprintf(stderr, "sbomd emit: line %ld: %s\n",
				    lineno, err);
				json_decref(obj);
				bad++;
				continue;
			}
			char eid[40];
			if (!(present & WIRE_JSON_HAS_EVENT_ID)) {
				rnd = rnd * 6364136223846793005ULL +
				    1442695040888963407ULL;
				snprintf(eid, sizeof(eid), "%016" PRIx64 "-%ld",
				    rnd, lineno);
				ev->event_id = wire_str_c(eid);
			}
			if (!(present & WIRE_JSON_HAS_OBSERVED_AT))
				ev->observed_at = clock_wall_ms();
			if (wire_event_encode(ev, &frame, &buf, err,
				sizeof(err)) != 0) {
				fprintf(stderr, "sbomd emit: line %ld: %s\n",
				    lineno, err);
				json_decref(obj);
				bad++;
				continue;
			}
			key = ev->id.ptr;
			klen = ev->id.len;
			val = buf.data;
			vlen = buf.len;
		}
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(rk,
			    RD_KAFKA_V_TOPIC(c.topic),
			    RD_KAFKA_V_KEY(key, klen),
			    RD_KAFKA_V_VALUE((void *)val, vlen),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			    RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				rd_kafka_poll(rk, 100);
				continue;
			}
			if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
				fprintf(stderr, "sbomd emit: line %ld: %s\n",
				    lineno, rd_kafka_err2str(e));
				bad++;
			} else {
				sent++;
			}
			break;
		}
		json_decref(obj);
		rd_kafka_poll(rk, 0);
	}
	free(line);
	rd_kafka_resp_err_t fe = rd_kafka_flush(rk, (int)c.wait_ms);
	if (fe != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "sbomd emit: %d messages not delivered within "
		    "%" PRId64 " ms\n", rd_kafka_outq_len(rk), c.wait_ms);
		emit_failed += rd_kafka_outq_len(rk);
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE |
			RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_destroy(rk);
	fprintf(stderr, "sbomd emit: %ld sent to %s, %ld refused, %ld not "
	    "delivered\n", sent, c.topic, bad, emit_failed);
	wire_buf_free(&buf);
	free(ev);
	cli_free(&c);
	return bad || emit_failed ? 1 : 0;
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
	    "--from-end); joins no consumer group.\n"
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

int
tail_main(int argc, char **argv)
{
	struct cli c = { 0 };
	c.brokers = env_or("SBOMD_KAFKA_BROKERS", "127.0.0.1:9092");
	c.topic = env_or("SBOMD_KAFKA_OUTPUT_TOPIC", "scan-outcomes");
	int r = cli_parse("tail", argc, argv, &c, tail_usage);
	if (r != 0) {
		cli_free(&c);
		return r == 1 ? 0 : 2;
	}
	const struct kclient_prop defs[] = {
		{ "group.id", "sbomd-tail" }, /* required; never joined */
		{ "enable.auto.commit", "false" },
		{ "enable.partition.eof", "false" },
	};
	char err[512];
	int rc = 1;
	rd_kafka_t *rk = cli_client("tail", &c, RD_KAFKA_CONSUMER, defs, 3,
	    NULL, &r);
	if (rk == NULL) {
		cli_free(&c);
		return r;
	}
	rd_kafka_poll_set_consumer(rk);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Every partition of the topic, from the start (or the end). */
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, c.topic, NULL);
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
	if (md == NULL) {
		fprintf(stderr, "sbomd tail: topic %s: %s\n", c.topic,
		    rd_kafka_err2str(me));
		goto out;
	}
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, c.topic,
		    md->topics[0].partitions[i].id)->offset = c.from_end ?
		    RD_KAFKA_OFFSET_END :
		    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);

	struct wire_outcome *o = xmalloc(sizeof(*o));
	struct wire_config wc = { .max_payload = (size_t)1 << 30,
		.any_schema_id = 1 };
	long seen = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int64_t last = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
	while (!cli_stop && (c.count == 0 || seen < c.count)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (m == NULL) {
			if (c.idle_ms > 0 && mono - last >= c.idle_ms)
				break;
			continue;
		}
		if (m->err) {
			fprintf(stderr, "sbomd tail: %s\n",
			    rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		last = mono;
		seen++;
		json_t *j;
		if (c.raw) {
			j = tail_raw(m);
		} else if (wire_outcome_decode(m->payload, m->len, &wc, o,
			       NULL, err, sizeof(err)) == 0) {
			j = wire_outcome_to_json(o,
			    c.no_sbom ? WIRE_JSON_OMIT_CONTENT : 0);
		} else {
			j = json_object();
			json_object_set_new(j, "error", json_string(err));
		}
		json_t *k = json_object();
		json_object_set_new(k, "partition",
		    json_integer(m->partition));
		json_object_set_new(k, "offset", json_integer(m->offset));
		json_object_set_new(k, "key", m->key ?
			json_stringn(m->key, m->key_len) : json_null());
		json_object_set_new(j, "kafka", k);
		char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			free(s);
		}
		json_decref(j);
		rd_kafka_message_destroy(m);
	}
	free(o);
	rc = 0;
out:
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	cli_free(&c);
	return rc;
}
