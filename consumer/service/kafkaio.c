/*
 * kafkaio: see kafkaio.h.
 *
 * Defaults we set (the user's properties win over them):
 *   producer  idempotent, zstd, linger 5 ms, message.timeout.ms=0 (the
 *             outbox re-sends; librdkafka never gives up on a message),
 *             message.max.bytes sized for scan.max_sbom_bytes; the
 *             changelog topic lz4 (its own topic handle): a changelog
 *             record is a few hundred bytes, and spread over as many
 *             partitions as the input, its batches hold a few records
 *             each, where zstd spends more time setting up than
 *             compressing (about 1 s of CPU per 230k records on the
 *             2-core bench box). compression.codec or compression.type
 *             in kafka.producer_properties applies to it too.
 *   changelog producer  at-least-once with a changelog: a second
 *             producer for the changelog records alone, the same but
 *             linger CHANGELOG_LINGER_MS (see there); the changelog's
 *             topic handle (lz4) is of it. Exactly-once keeps one
 *             (transactional) producer for everything.
 *   consumer  enable.auto.offset.store=false (we store after the commit),
 *             auto-commit every second, earliest, statistics every 5 s
 *             (consumer lag for /metrics), a local queue of up to
 *             CONSUMER_QUEUE_KB of fetched messages, not bounded by
 *             their count (see there)
 * All clients' queues forward an I/O event (one byte) to the engine's
 * wake pipe, so the engine sleeps in poll(2) on one fd.
 */
#include "service/kafkaio.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kclient.h"
#include "service/log.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

/* Exactly-once (kafka.delivery): the transaction timeout (a killed
 * instance's open transaction blocks read_committed readers this long
 * at most), and how long one call to the coordinator may take before it
 * is tried again. */
#define TXN_TIMEOUT_MS "15000"
#define TXN_INIT_TIMEOUT_MS 30000
#define TXN_CALL_TIMEOUT_MS 5000

/* At-least-once with a changelog, the changelog records have a producer
 * of their own: a changelog record waits for nobody (only the input
 * offsets wait for its acknowledgement), and spread over as many
 * partitions as the input, batches of 5 ms held a few records each: the
 * producer's broker thread and the broker spent more on requests than
 * on records. Outcomes keep the short linger. */
#define CHANGELOG_LINGER_MS "100"
/* The consumer's local queue of fetched messages. librdkafka stops
 * fetching every partition once the queue (one, shared by all of them)
 * holds queued.min.messages or queued.max.messages.kbytes, and looks
 * again only when its broker thread next wakes, up to a second later
 * (librdkafka 2.2 made that wait fetch.queue.backoff.ms, default 1 s).
 * With the defaults, 100,000 messages, the 1 M-event bench hit the
 * count at 16.7 MB queued, about 0.3 s of the engine's intake; fetching
 * resumed 290 ms later with 2,698 messages left (debug=fetch), and in
 * most runs the engine waited for input while behind. The count is
 * raised out of the way; the bytes, 256 MiB (about 1.5 M such events,
 * several seconds of intake), are the bound on what the queue holds. */
#define CONSUMER_QUEUE_MSGS "1000000"
#define CONSUMER_QUEUE_KB "262144"
/* kio_poll_producer with two producers: the slice it waits on one. */
#define POLL_SLICE_MS 5

/* A consumer fenced again this soon after it was replaced: another live
 * process uses our group.instance.id, and replacing ours would only fence
 * that one in turn. */
#define CONSUMER_REFENCE_MS 60000

/* Closing: how long past engine.shutdown_timeout each client's destroy
 * may take (the consumer's, then the producer's) before it is left to
 * finish in the background: the whole shutdown ends within the budget
 * and 2 x this. */
#define DESTROY_GRACE_MS 300
/* librdkafka before 2.3.0 aborts when it destroys a cooperative-sticky
 * consumer that has joined a group (its assignor is chosen) but has had
 * no assignment yet (the assignor's state is still NULL): such a consumer
 * is closed but not destroyed (close_consumer). */
#define RDKAFKA_DESTROYS_UNASSIGNED 0x020300ff

struct part_off {
	int32_t partition;
	int64_t next; /* offset + 1 of the newest applied message */
};

struct sealed_off {
	uint64_t tag;
	struct part_off off;
};

struct kio {
	const struct sbomd_config *cfg;
	struct snapshot *counters;
	struct kio_hooks hooks;
	rd_kafka_t *cons, *prod;
	rd_kafka_t *cprod; /* at-least-once with a changelog: the changelog
			    * records' own producer; else NULL (prod) */
	rd_kafka_topic_t *changelog; /* of cprod or prod, made on first use;
				      * NULL: not yet, or no changelog */
	bool changelog_failed;	     /* making it failed (logged once) */
	rd_kafka_queue_t *cq;
	rd_kafka_topic_partition_list_t *assignment; /* NULL: none */
	bool paused;
	bool eos;	  /* kafka.delivery = "exactly-once" */
	bool prod_broken; /* exactly-once: the producer hit a fatal
			   * transaction error; a new one is needed */
	int wake_fd;
	bool cooperative; /* the group's rebalance protocol, last seen */
	struct part_off *offs; /* noted, not yet stored */
	size_t noffs, offs_cap;
	struct sealed_off *sealed; /* waiting for the broker, by tag */
	size_t sealed_head, nsealed, sealed_cap;
	int64_t lag, lag_at_ms;	 /* kio_input_lag, and when (mono ms) */
	bool cons_subscribed;	 /* the consumer has joined, or joins */
	bool cons_assigned_once; /* ... and has had an assignment */
	bool cons_broken;	 /* the consumer hit a fatal error (a static
				  * member fenced): kio_consumer_renew */
	int64_t cons_renewed_ms; /* monotonic; 0: never */
	int64_t deadline_ms; /* monotonic; 0: none. Shutdown: every
			      * transaction call ends by then */
	bool fatal;
	char fatal_why[640];
	bool closing;	  /* the consumer closes: no blocking commit on
			   * revoke */
	bool abandoned;	  /* a client's destroy outlived the deadline and
			   * runs on in the background (kclient_destroy_by) */
};

/* ---- callbacks ---------------------------------------------------------- */

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	kio *k = opaque;
	k->hooks.delivered(k->hooks.ctx, m);
}

/* librdkafka's own log lines (any of its threads) in our format. */
static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN :
	    level <= 6 ? LOG_INFO : LOG_DEBUG;
	log_kv(l, "librdkafka", "client", rd_kafka_name(rk), "facility", fac,
	    "error", buf, (char *)NULL);
}

/* Whether a fatal producer error means another process took our
 * transactional id (or we may not use it): then we stop, as a new producer
 * would only fence the other one in turn. */
static bool
fenced(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR__FENCED ||
	    e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
	    e == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	kio *k = opaque;
	char buf[512];
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_resp_err_t why = rd_kafka_fatal_error(rk, buf,
		    sizeof(buf));
		if (rk == k->cons) {
			kio_consumer_failed(k, buf);
			return;
		}
		if (k->eos && rk == k->prod && !fenced(why)) {
			/* The transaction manager gave up on this producer
			 * (e.g. after a long broker outage): the engine
			 * makes a new one and rewinds (kio_txn_renew). */
			log_kv(LOG_WARN, "transactional producer failed; it "
			    "is replaced", "error", buf, (char *)NULL);
			k->prod_broken = true;
			return;
		}
		snprintf(k->fatal_why, sizeof(k->fatal_why),
		    "fatal Kafka error: %s", buf);
		k->fatal = true;
		return;
	}
	log_kv(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
		   err == RD_KAFKA_RESP_ERR__TRANSPORT ? LOG_WARN : LOG_INFO,
	    "kafka", "client", rd_kafka_name(rk), "error",
	    rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason,
	    (char *)NULL);
}

/* The assignment after adding (add) or removing parts. */
static void
assignment_update(kio *k, const rd_kafka_topic_partition_list_t *parts,
    bool add)
{
	if (k->assignment == NULL)
		k->assignment = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &parts->elems[i];
		rd_kafka_topic_partition_t *have =
		    rd_kafka_topic_partition_list_find(k->assignment, p->topic,
			p->partition);
		if (add && have == NULL)
			rd_kafka_topic_partition_list_add(k->assignment,
			    p->topic, p->partition);
		else if (!add && have != NULL)
			rd_kafka_topic_partition_list_del(k->assignment,
			    p->topic, p->partition);
	}
}

/* What the group coordinator's assignment call answered, logged. */
static void
assign_result(rd_kafka_error_t *e, rd_kafka_resp_err_t err, const char *op)
{
	const char *why = e ? rd_kafka_error_string(e) :
	    err ? rd_kafka_err2str(err) : NULL;
	if (why != NULL)
		log_kv(LOG_ERROR, "rebalance", "operation", op, "error", why,
		    (char *)NULL);
	if (e)
		rd_kafka_error_destroy(e);
}

/*
 * Both rebalance protocols: cooperative (the default assignor,
 * cooperative-sticky: only moved partitions are revoked and assigned) and
 * eager (a user's partition.assignment.strategy: everything is revoked
 * and reassigned).
 */
static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	kio *k = opaque;
	/* NULL outside the group (closing after the session was lost): the
	 * protocol of the last rebalance then. */
	const char *proto = rd_kafka_rebalance_protocol(rk);
	if (proto != NULL)
		k->cooperative = strcmp(proto, "COOPERATIVE") == 0;
	bool cooperative = k->cooperative;
	if (k->cons_broken) {
		/* A failed consumer closing (kio_consumer_renew): the engine
		 * has already let its partitions go as lost. */
		if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
			k->cons_assigned_once = true;
			return;
		}
		if (cooperative)
			assign_result(rd_kafka_incremental_unassign(rk, parts),
			    0, "incremental unassign");
		else
			assign_result(NULL, rd_kafka_assign(rk, NULL),
			    "unassign");
		return;
	}
	char n[16];
	snprintf(n, sizeof(n), "%d", parts->cnt);
	k->counters->rebalances++;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		k->cons_assigned_once = true;
		if (cooperative)
			assign_result(rd_kafka_incremental_assign(rk, parts),
			    0, "incremental assign");
		else
			assign_result(NULL, rd_kafka_assign(rk, parts),
			    "assign");
		assignment_update(k, parts, true);
		if (k->paused)
			rd_kafka_pause_partitions(rk, parts);
		log_kv(LOG_INFO, "partitions assigned", "count", n,
		    (char *)NULL);
		if (k->hooks.assigned)
			k->hooks.assigned(k->hooks.ctx, parts);
		return;
	}
	bool lost = rd_kafka_assignment_lost(rk);
	if (k->hooks.revoking)
		k->hooks.revoking(k->hooks.ctx, parts, lost);
	if (lost) {
		log_kv(LOG_WARN, "partitions lost (group session expired)",
		    "count", n, (char *)NULL);
	}
	/* Give up nothing uncommitted: what was applied and stored is
	 * committed before the partitions go (exactly-once: the hook
	 * committed the transaction that holds the offsets). */
	/* Closing: kio_commit committed them already within the shutdown
	 * deadline; an asynchronous commit here cannot hold the close. */
	rd_kafka_resp_err_t cerr = k->eos ? RD_KAFKA_RESP_ERR_NO_ERROR :
	    rd_kafka_commit(rk, NULL, k->closing ? 1 : 0);
	if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_kv(LOG_WARN, "commit on revoke failed", "error",
		    rd_kafka_err2str(cerr), (char *)NULL);
	if (cooperative)
		assign_result(rd_kafka_incremental_unassign(rk, parts), 0,
		    "incremental unassign");
	else
		assign_result(NULL, rd_kafka_assign(rk, NULL), "unassign");
	if (cooperative) {
		assignment_update(k, parts, false);
	} else if (k->assignment) {
		rd_kafka_topic_partition_list_destroy(k->assignment);
		k->assignment = NULL;
	}
	log_kv(LOG_INFO, "partitions revoked", "count", n, (char *)NULL);
}

/* A rebalance event of the closing consumer's queue (kio_close). */
static void
rebalance_event(kio *k, rd_kafka_event_t *ev)
{
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_event_topic_partition_list(ev);
	if (parts != NULL)
		rebalance_cb(k->cons, rd_kafka_event_error(ev), parts, k);
}

/* librdkafka statistics (consumer, every statistics.interval.ms, on the
 * engine thread inside the consume call): lag per assigned partition. */
static int
stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	kio *k = opaque;
	struct snapshot *s = k->counters;
	json_error_t je;
	json_t *root = json_loadb(json, len, 0, &je);
	if (root == NULL)
		return 0;
	json_t *pobj = json_object_get(json_object_get(json_object_get(root,
	    "topics"), k->cfg->kafka.input_topic), "partitions");
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach(pobj, key, v) {
		json_int_t pid = json_integer_value(json_object_get(v,
		    "partition"));
		if (pid < 0 || n >= PUB_MAX_PARTITIONS)
			continue;
		const char *fs = json_string_value(json_object_get(v,
		    "fetch_state"));
		if (fs != NULL && strcmp(fs, "none") == 0)
			continue; /* not assigned to us */
		struct part_lag *l = &s->lags[n++];
		l->partition = (int32_t)pid;
		l->lag = json_integer_value(json_object_get(v, "consumer_lag"));
		l->committed = json_integer_value(json_object_get(v,
		    "committed_offset"));
		l->high = json_integer_value(json_object_get(v, "hi_offset"));
	}
	s->nlags = n;
	json_decref(root);
	return 0;
}

/* ---- set-up ------------------------------------------------------------- */

static struct kclient_prop *
props_of(const struct config_props *p)
{
	struct kclient_prop *v = xcalloc(p->n + 1, sizeof(*v));
	for (size_t i = 0; i < p->n; i++)
		v[i] = (struct kclient_prop){ p->v[i].name, p->v[i].value };
	return v;
}

/* The configuration of the producer (changelog: of the changelog's own
 * producer, see the top of this file). */
static rd_kafka_conf_t *
producer_conf(kio *k, bool changelog, char *err, size_t errlen)
{
	const struct sbomd_config *c = k->cfg;
	char maxmsg[24];
	int64_t mm = c->scan.max_sbom_bytes + (1 << 20);
	snprintf(maxmsg, sizeof(maxmsg), "%" PRId64,
	    mm > 1000000000 ? 1000000000 : mm);
	char txnid[512];
	snprintf(txnid, sizeof(txnid), "%s/%s", c->kafka.group_id,
	    c->kafka.group_instance_id[0] ? c->kafka.group_instance_id :
					    "sbomd");
	const struct kclient_prop def[] = {
		{ "client.id", changelog ? "sbomd-changelog-producer" :
					   "sbomd-producer" },
		{ "enable.idempotence", "true" },
		{ "compression.codec", "zstd" }, /* the changelog's topic
						   * handle: lz4 */
		{ "linger.ms", changelog ? CHANGELOG_LINGER_MS : "5" },
		{ "message.timeout.ms", "0" }, /* the outbox retries */
		{ "message.max.bytes", maxmsg },
		/* exactly-once only (the last three, see below): one
		 * transactional id per instance; a transaction left open
		 * by a killed instance holds read_committed readers back
		 * until it times out (or the instance restarts) */
		{ "transactional.id", txnid },
		{ "transaction.timeout.ms", TXN_TIMEOUT_MS },
		{ "message.timeout.ms", TXN_TIMEOUT_MS },
	};
	struct kclient_prop *user = props_of(&c->kafka.producer_properties);
	size_t ndef = sizeof(def) / sizeof(def[0]);
	if (!k->eos || changelog)
		ndef -= 3; /* no transactions */
	rd_kafka_conf_t *conf = kclient_conf(c->kafka.brokers, def, ndef,
	    user, c->kafka.producer_properties.n, "kafka.producer_properties",
	    err, errlen);
	free(user);
	if (conf == NULL)
		return NULL;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return conf;
}

static rd_kafka_conf_t *
consumer_conf(kio *k, char *err, size_t errlen)
{
	const struct sbomd_config *c = k->cfg;
	const struct kclient_prop def[] = {
		{ "client.id", "sbomd-consumer" },
		{ "group.id", c->kafka.group_id },
		{ "enable.auto.offset.store", "false" },
		{ "enable.auto.commit", "true" },
		{ "auto.commit.interval.ms", "1000" },
		{ "auto.offset.reset", "earliest" },
		{ "enable.partition.eof", "false" },
		{ "statistics.interval.ms", "5000" }, /* lag for /metrics */
		/* seconds of intake: see CONSUMER_QUEUE_KB */
		{ "queued.min.messages", CONSUMER_QUEUE_MSGS },
		{ "queued.max.messages.kbytes", CONSUMER_QUEUE_KB },
		/* incremental rebalances: only moved partitions pay */
		{ "partition.assignment.strategy", "cooperative-sticky" },
		/* events of a transactional producer once committed */
		{ "isolation.level", "read_committed" },
		/* static membership: a restart gets its partitions back */
		{ "group.instance.id", c->kafka.group_instance_id },
	};
	struct kclient_prop *user = props_of(&c->kafka.consumer_properties);
	size_t ndef = sizeof(def) / sizeof(def[0]);
	struct kclient_prop d[sizeof(def) / sizeof(def[0])];
	memcpy(d, def, sizeof(def));
	if (k->eos) /* offsets go with the transactions */
		d[3].value = "false"; /* enable.auto.commit */
	if (c->kafka.group_instance_id[0] == '\0')
		ndef--; /* the last: no static membership */
	rd_kafka_conf_t *conf = kclient_conf(c->kafka.brokers, d, ndef,
	    user, c->kafka.consumer_properties.n, "kafka.consumer_properties",
	    err, errlen);
	free(user);
	if (conf == NULL)
		return NULL;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return conf;
}

/* Exactly-once: registers our transactional id with its coordinator,
 * which aborts a transaction a previous run left open (kill -9) and
 * fences that run's producer. Before the group is joined: a partition's
 * restore then reads its changelog to the end. */
static int
init_transactions(kio *k, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_error_t *e = rd_kafka_init_transactions(k->prod, timeout_ms);
	if (e == NULL)
		return 0;
	errbuf_set(err, errlen, "kafka.delivery = \"exactly-once\": "
	    "initialising transactions: %s (the brokers must support "
	    "transactions: Apache Kafka 2.5 or later, with "
	    "transaction.state.log.* settings the cluster can meet)",
	    rd_kafka_error_string(e));
	rd_kafka_error_destroy(e);
	return -EIO;
}

/* Whether the user's producer properties name the codec. */
static bool
user_codec(const struct sbomd_config *c)
{
	for (size_t i = 0; i < c->kafka.producer_properties.n; i++) {
		const char *n = c->kafka.producer_properties.v[i].name;
		if (strcmp(n, "compression.codec") == 0 ||
		    strcmp(n, "compression.type") == 0)
			return true;
	}
	return false;
}

/* The producer's handle of the changelog topic, lz4 unless the user
 * chose a codec (see the top of this file): NULL with err. */
static rd_kafka_topic_t *
changelog_topic(kio *k, char *err, size_t errlen)
{
	char why[512];
	const char *name = k->cfg->state.changelog_topic;
	rd_kafka_t *rk = k->cprod != NULL ? k->cprod : k->prod;
	rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(rk);
	if (!user_codec(k->cfg) &&
	    rd_kafka_topic_conf_set(tc, "compression.codec", "lz4", why,
		sizeof(why)) != RD_KAFKA_CONF_OK) {
		rd_kafka_topic_conf_destroy(tc);
		errbuf_set(err, errlen, "kafka producer, topic %s: %s", name,
		    why);
		return NULL;
	}
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, name, tc);
	if (t == NULL)
		errbuf_set(err, errlen, "kafka producer, topic %s: %s", name,
		    rd_kafka_err2str(rd_kafka_last_error()));
	/* rd_kafka_topic_new takes tc, whatever it returns */
	return t;
}

/* A producer (changelog: the changelog's own) whose queue wakes the
 * engine: NULL with err. */
static rd_kafka_t *
new_producer(kio *k, bool changelog, char *err, size_t errlen)
{
	char why[512];
	rd_kafka_conf_t *pc = producer_conf(k, changelog, err, errlen);
	if (pc == NULL)
		return NULL;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why,
	    sizeof(why));
	if (rk == NULL) {
		rd_kafka_conf_destroy(pc);
		errbuf_set(err, errlen, "kafka producer: %s", why);
		return NULL;
	}
	rd_kafka_queue_t *pq = rd_kafka_queue_get_main(rk);
	rd_kafka_queue_io_event_enable(pq, k->wake_fd, "p", 1);
	rd_kafka_queue_destroy(pq);
	return rk;
}

/* The producers (transactions initialised in exactly-once mode): 0, or a
 * negative errno with err. */
static int
open_producer(kio *k, int init_timeout_ms, char *err, size_t errlen)
{
	if ((k->prod = new_producer(k, false, err, errlen)) == NULL)
		return -EINVAL;
	if (!k->eos && k->cfg->state.changelog_topic[0] != '\0' &&
	    (k->cprod = new_producer(k, true, err, errlen)) == NULL)
		return -EINVAL;
	k->prod_broken = false;
	return k->eos ? init_transactions(k, init_timeout_ms, err, errlen) :
			0;
}

/* Destroys the producer; what it still holds is purged (the outbox keeps
 * or makes it again). Waited for until deadline_ms (monotonic), or for as
 * long as it takes when deadline_ms < 0. */
static void
destroy_producer(kio *k, rd_kafka_t *rk, int64_t deadline_ms)
{
	if (deadline_ms < 0) {
		rd_kafka_destroy(rk);
	} else if (!kclient_destroy_by(rk, 0, deadline_ms)) {
		log_kv(LOG_WARN, "the Kafka producer was still closing at "
		    "engine.shutdown_timeout: left to finish in the "
		    "background", "client", rd_kafka_name(rk), (char *)NULL);
		k->abandoned = true;
	}
}

static void
close_producer(kio *k, int64_t deadline_ms)
{
	rd_kafka_t *rks[2] = { k->cprod, k->prod };
	for (size_t i = 0; i < 2; i++) {
		if (rks[i] == NULL)
			continue;
		rd_kafka_purge(rks[i], RD_KAFKA_PURGE_F_QUEUE |
		    RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(rks[i], 0);
	}
	if (k->changelog != NULL)
		rd_kafka_topic_destroy(k->changelog);
	k->changelog = NULL;
	for (size_t i = 0; i < 2; i++)
		if (rks[i] != NULL)
			destroy_producer(k, rks[i], deadline_ms);
	k->cprod = NULL;
	k->prod = NULL;
}

static int
subscribe(kio *k, char *err, size_t errlen)
{
	const char *topic = k->cfg->kafka.input_topic;
	rd_kafka_topic_partition_list_t *sub =
	    rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(k->cons, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	k->cons_subscribed = true;
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		errbuf_set(err, errlen, "subscribing to %s: %s", topic,
		    rd_kafka_err2str(kerr));
		return -EINVAL;
	}
	return 0;
}

/* The group consumer, subscribed when subscribed is true; its queue
 * wakes the engine. */
static int
open_consumer(kio *k, bool subscribed, char *err, size_t errlen)
{
	char why[512];
	rd_kafka_conf_t *cc = consumer_conf(k, err, errlen);
	if (cc == NULL)
		return -EINVAL;
	k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof(why));
	if (k->cons == NULL) {
		rd_kafka_conf_destroy(cc);
		errbuf_set(err, errlen, "kafka consumer: %s", why);
		return -EINVAL;
	}
	/* cc is owned by the consumer now */
	rd_kafka_poll_set_consumer(k->cons);
	k->cons_subscribed = false;
	k->cons_assigned_once = false;
	k->cq = rd_kafka_queue_get_consumer(k->cons);
	rd_kafka_queue_io_event_enable(k->cq, k->wake_fd, "c", 1);
	return subscribed ? subscribe(k, err, errlen) : 0;
}

/* Consumers closed but not destroyed (RDKAFKA_DESTROYS_UNASSIGNED): kept
 * here, they are still referenced at exit (a leak checker counts what is
 * referenced from nowhere). Rare: at most one a start and one a minute. */
static rd_kafka_t *undestroyed[8]; /* engine thread */
static size_t nundestroyed;

static void
keep_undestroyed(rd_kafka_t *rk)
{
	if (nundestroyed < sizeof(undestroyed) / sizeof(undestroyed[0]))
		undestroyed[nundestroyed++] = rk;
}

/* Leaves the group in the background, running rebalance_cb a last time
 * (revoke) from the queue served here, until deadline_ms (monotonic): with
 * the broker gone it would wait for its requests' timeouts. Nothing is
 * lost past the deadline: the state is in the store, offsets not committed
 * are read again. */
static void
close_consumer(kio *k, int64_t deadline_ms)
{
	if (k->cons == NULL)
		return;
	if (k->cq) {
		rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
		rd_kafka_queue_destroy(k->cq);
		k->cq = NULL;
	}
	k->closing = true;
	rd_kafka_queue_t *q = rd_kafka_queue_new(k->cons);
	rd_kafka_error_t *ce = rd_kafka_consumer_close_queue(k->cons,
	    q);
	bool closed = ce == NULL;
	if (ce != NULL) {
		log_kv(LOG_WARN, "leaving the group", "error",
		    rd_kafka_error_string(ce), (char *)NULL);
		rd_kafka_error_destroy(ce);
	}
	while (closed && !rd_kafka_consumer_closed(k->cons)) {
		int64_t left = deadline_ms - clock_mono_ms();
		if (left <= 0) {
			closed = false;
			log_kv(LOG_WARN, "left the group unfinished: "
			    "engine.shutdown_timeout reached (broker "
			    "unreachable?); the group notices after "
			    "the session timeout", (char *)NULL);
			break;
		}
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q,
		    left < 100 ? (int)left : 100);
		if (ev == NULL)
			continue;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
			rebalance_event(k, ev);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_queue_destroy(q);
	if (k->cons_subscribed && !k->cons_assigned_once &&
	    rd_kafka_version() < RDKAFKA_DESTROYS_UNASSIGNED) {
		/* Closed while it joined the group (a stop during a start):
		 * what it holds goes with the process, or stays (a replaced
		 * consumer, at most one a minute). */
		log_kv(LOG_INFO, "the Kafka consumer had no assignment yet: "
		    "closed, not destroyed (librdkafka before 2.3.0 aborts "
		    "then)", (char *)NULL);
		keep_undestroyed(k->cons);
		k->abandoned = true;
		k->cons = NULL;
		k->closing = false;
		return;
	}
	/* librdkafka's destroy can outlast our deadline (kclient.h: an
	 * offset commit deferred while the coordinator is unreachable holds
	 * it for up to session.timeout.ms): not waited for past it. */
	if (!kclient_destroy_by(k->cons, closed ? 0 :
	    RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, deadline_ms +
	    DESTROY_GRACE_MS)) {
		log_kv(LOG_WARN, "the Kafka consumer was still closing at "
		    "engine.shutdown_timeout (an offset commit waiting for "
		    "an unreachable group coordinator?): left to finish in "
		    "the background", (char *)NULL);
		k->abandoned = true;
	}
	k->cons = NULL;
	k->closing = false;
}

int
kio_open(const struct sbomd_config *cfg, int wake_fd,
    struct snapshot *counters, const struct kio_hooks *hooks, kio **out,
    char *err, size_t errlen)
{
	int rc;
	kio *k = xcalloc(1, sizeof(*k));
	k->cfg = cfg;
	k->cooperative = true; /* our default assignor, cooperative-sticky */
	k->counters = counters;
	k->hooks = *hooks;
	k->eos = cfg->kafka.delivery == CONFIG_DELIVERY_EXACTLY_ONCE;

	k->wake_fd = wake_fd;
	if ((rc = open_producer(k, TXN_INIT_TIMEOUT_MS, err, errlen)) != 0)
		goto fail;
	if ((rc = open_consumer(k, false, err, errlen)) != 0)
		goto fail;
	*out = k;
	return 0;
fail:
	kio_close(k, clock_mono_ms() + 10000);
	return rc;
}

int
kio_subscribe(kio *k, char *err, size_t errlen)
{
	return subscribe(k, err, errlen);
}

void
kio_close(kio *k, int64_t deadline_ms)
{
	if (k == NULL)
		return;
	close_consumer(k, deadline_ms);
	/* Undelivered messages stay in the outbox for the next start. */
	close_producer(k, deadline_ms + 2 * DESTROY_GRACE_MS);
	if (k->assignment)
		rd_kafka_topic_partition_list_destroy(k->assignment);
	free(k->offs);
	free(k->sealed);
	/* A destroy still running in the background may call back with k
	 * as the opaque: k stays until the process exits. */
	if (!k->abandoned)
		free(k);
}

rd_kafka_t *
kio_consumer(kio *k)
{
	return k->cons;
}

rd_kafka_t *
kio_producer(kio *k)
{
	return k->prod;
}

rd_kafka_t *
kio_changelog_producer(kio *k)
{
	return k->cprod;
}

rd_kafka_topic_t *
kio_changelog_topic(kio *k)
{
	/* Made on first use, after changelog_prepare: a topic handle makes
	 * librdkafka ask the broker for the topic's metadata, and a broker
	 * that auto-creates topics would create the changelog then, before
	 * changelog_prepare could create it compacted. */
	if (k->changelog == NULL && k->prod != NULL &&
	    k->cfg->state.changelog_topic[0] != '\0' && !k->changelog_failed) {
		char why[512];
		k->changelog = changelog_topic(k, why, sizeof(why));
		if (k->changelog == NULL) {
			/* Records then go by the topic's name, with the
			 * producer's codec. */
			log_kv(LOG_WARN, "changelog topic handle", "error", why,
			    (char *)NULL);
			k->changelog_failed = true;
		}
	}
	return k->changelog;
}

int64_t
kio_input_lag(kio *k)
{
	int64_t now = clock_mono_ms();
	if (now - k->lag_at_ms < 50)
		return k->lag;
	k->lag_at_ms = now;
	k->lag = 0;
	if (k->cons == NULL || k->assignment == NULL ||
	    k->assignment->cnt == 0)
		return 0;
	rd_kafka_topic_partition_list_t *pos =
	    rd_kafka_topic_partition_list_copy(k->assignment);
	if (rd_kafka_position(k->cons, pos) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < pos->cnt; i++) {
			int64_t lo, hi;
			const rd_kafka_topic_partition_t *p = &pos->elems[i];
			if (p->offset < 0 || rd_kafka_get_watermark_offsets(
			    k->cons, p->topic, p->partition, &lo, &hi) !=
			    RD_KAFKA_RESP_ERR_NO_ERROR || hi < p->offset)
				continue;
			k->lag += hi - p->offset;
		}
	}
	rd_kafka_topic_partition_list_destroy(pos);
	return k->lag;
}

rd_kafka_queue_t *
kio_input(kio *k)
{
	return k->cq;
}

void
kio_poll_producer(kio *k, int timeout_ms)
{
	if (k->cprod == NULL) {
		rd_kafka_poll(k->prod, timeout_ms);
		return;
	}
	/* Two queues: served in turns, waiting on the changelog's (what
	 * waits for acknowledgements mostly waits for) a slice at a time. */
	int64_t end = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		int n = rd_kafka_poll(k->cprod, 0) + rd_kafka_poll(k->prod, 0);
		int64_t left = end - clock_mono_ms();
		if (n > 0 || left <= 0)
			return;
		rd_kafka_poll(k->cprod, left < POLL_SLICE_MS ? (int)left :
							      POLL_SLICE_MS);
	}
}

/* ---- offsets ------------------------------------------------------------ */

void
kio_note_offset(kio *k, const rd_kafka_message_t *m)
{
	for (size_t i = 0; i < k->noffs; i++)
		if (k->offs[i].partition == m->partition) {
			if (m->offset + 1 > k->offs[i].next)
				k->offs[i].next = m->offset + 1;
			return;
		}
	if (k->noffs == k->offs_cap) {
		k->offs_cap = k->offs_cap ? k->offs_cap * 2 : 16;
		k->offs = xreallocarray(k->offs, k->offs_cap,
		    sizeof(*k->offs));
	}
	k->offs[k->noffs++] = (struct part_off){ m->partition,
		m->offset + 1 };
}

bool
kio_offsets_pending(const kio *k)
{
	return k->noffs > 0;
}

void
kio_store_offsets(kio *k)
{
	/* Nothing else is sealed without a changelog: store them now. */
	kio_seal_offsets(k, 0);
	kio_release_offsets(k, UINT64_MAX);
}

void
kio_seal_offsets(kio *k, uint64_t tag)
{
	if (k->sealed_head > 0 && k->sealed_head == k->nsealed)
		k->sealed_head = k->nsealed = 0;
	for (size_t i = 0; i < k->noffs; i++) {
		if (k->nsealed == k->sealed_cap) {
			if (k->sealed_head > 0) {
				memmove(k->sealed, k->sealed + k->sealed_head,
				    (k->nsealed - k->sealed_head) *
					sizeof(*k->sealed));
				k->nsealed -= k->sealed_head;
				k->sealed_head = 0;
			}
			if (k->nsealed == k->sealed_cap) {
				k->sealed_cap = k->sealed_cap ?
				    k->sealed_cap * 2 : 64;
				k->sealed = xreallocarray(k->sealed,
				    k->sealed_cap, sizeof(*k->sealed));
			}
		}
		k->sealed[k->nsealed++] = (struct sealed_off){ tag,
			k->offs[i] };
	}
	k->noffs = 0;
}

void
kio_retag_offsets(kio *k, uint64_t from, uint64_t to)
{
	for (size_t i = k->sealed_head; i < k->nsealed; i++)
		if (k->sealed[i].tag == from)
			k->sealed[i].tag = to;
}

void
kio_release_offsets(kio *k, uint64_t acked_below)
{
	size_t end = k->sealed_head;
	while (end < k->nsealed && k->sealed[end].tag < acked_below)
		end++;
	if (end == k->sealed_head)
		return;
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_new((int)(end - k->sealed_head));
	for (size_t i = k->sealed_head; i < end; i++) {
		const struct part_off *o = &k->sealed[i].off;
		rd_kafka_topic_partition_t *tp =
		    rd_kafka_topic_partition_list_find(l,
			k->cfg->kafka.input_topic, o->partition);
		if (tp == NULL)
			tp = rd_kafka_topic_partition_list_add(l,
			    k->cfg->kafka.input_topic, o->partition);
		if (o->next > tp->offset)
			tp->offset = o->next;
	}
	(void)rd_kafka_offsets_store(k->cons, l);
	rd_kafka_topic_partition_list_destroy(l);
	k->sealed_head = end;
}

void
kio_forget_offsets(kio *k, int32_t p)
{
	size_t w = k->sealed_head;
	for (size_t i = k->sealed_head; i < k->nsealed; i++)
		if (k->sealed[i].off.partition != p)
			k->sealed[w++] = k->sealed[i];
	k->nsealed = w;
	size_t j = 0;
	for (size_t i = 0; i < k->noffs; i++)
		if (k->offs[i].partition != p)
			k->offs[j++] = k->offs[i];
	k->noffs = j;
}

void
kio_commit(kio *k, int64_t deadline_ms)
{
	if (k->eos)
		return; /* offsets went with the transactions */
	rd_kafka_queue_t *q = rd_kafka_queue_new(k->cons);
	rd_kafka_resp_err_t cerr = rd_kafka_commit_queue(k->cons, NULL, q,
	    NULL, NULL);
	if (cerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
		cerr = RD_KAFKA_RESP_ERR__TIMED_OUT;
		int64_t left;
		while ((left = deadline_ms - clock_mono_ms()) > 0) {
			rd_kafka_event_t *ev = rd_kafka_queue_poll(q,
			    left < 100 ? (int)left : 100);
			if (ev == NULL)
				continue;
			bool done = rd_kafka_event_type(ev) ==
			    RD_KAFKA_EVENT_OFFSET_COMMIT;
			if (done)
				cerr = rd_kafka_event_error(ev);
			rd_kafka_event_destroy(ev);
			if (done)
				break;
		}
	}
	rd_kafka_queue_destroy(q);
	if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_kv(LOG_WARN, "offset commit failed", "error",
		    rd_kafka_err2str(cerr), (char *)NULL);
}

void
kio_hold_input(kio *k)
{
	kio_poll_producer(k, 0);
	rd_kafka_message_t *m;
	while ((m = rd_kafka_consumer_poll(k->cons, 0)) != NULL) {
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			/* Not applied: seek back so it is fetched again. */
			rd_kafka_topic_partition_list_t *l =
			    rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(l,
			    rd_kafka_topic_name(m->rkt), m->partition)
			    ->offset = m->offset;
			rd_kafka_error_t *se = rd_kafka_seek_partitions(
			    k->cons, l, 1000);
			if (se)
				rd_kafka_error_destroy(se);
			rd_kafka_topic_partition_list_destroy(l);
		}
		rd_kafka_message_destroy(m);
	}
}

/* ---- flow --------------------------------------------------------------- */

void
kio_set_paused(kio *k, bool paused)
{
	if (paused == k->paused)
		return;
	k->paused = paused;
	if (k->assignment == NULL)
		return;
	if (paused)
		rd_kafka_pause_partitions(k->cons, k->assignment);
	else
		rd_kafka_resume_partitions(k->cons, k->assignment);
}

bool
kio_assigned(const kio *k)
{
	return k->assignment != NULL && k->assignment->cnt > 0;
}

void
kio_consumer_failed(kio *k, const char *why)
{
	if (k->cons_broken || k->fatal)
		return;
	int64_t now = clock_mono_ms();
	if (k->cons_renewed_ms != 0 &&
	    now - k->cons_renewed_ms < CONSUMER_REFENCE_MS) {
		snprintf(k->fatal_why, sizeof(k->fatal_why),
		    "fatal Kafka consumer error again %" PRId64 " s after the "
		    "consumer was replaced (another running instance with "
		    "group.instance.id \"%s\"?): %s",
		    (now - k->cons_renewed_ms) / 1000,
		    k->cfg->kafka.group_instance_id, why);
		k->fatal = true;
		return;
	}
	log_kv(LOG_WARN, "consumer failed; it is replaced", "error", why,
	    (char *)NULL);
	k->cons_broken = true;
}

bool
kio_consumer_broken(const kio *k)
{
	return k->cons_broken;
}

int
kio_consumer_renew(kio *k, char *err, size_t errlen)
{
	/* Its partitions are lost: nothing more can be committed for them
	 * with this consumer, and the group gives them out again. */
	if (k->assignment != NULL) {
		if (k->assignment->cnt > 0 && k->hooks.revoking)
			k->hooks.revoking(k->hooks.ctx, k->assignment, true);
		rd_kafka_topic_partition_list_destroy(k->assignment);
		k->assignment = NULL;
	}
	k->noffs = 0;
	k->nsealed = 0;
	k->sealed_head = 0;
	close_consumer(k, clock_mono_ms() + 5000);
	k->cons_broken = false;
	k->cons_renewed_ms = clock_mono_ms();
	k->counters->consumer_renewals++;
	int rc = open_consumer(k, true, err, errlen);
	if (rc == 0)
		log_kv(LOG_INFO, "consumer replaced; joining the group again",
		    (char *)NULL);
	return rc;
}

bool
kio_fatal(const kio *k, char *err, size_t errlen)
{
	if (k->fatal)
		errbuf_set(err, errlen, "%s", k->fatal_why);
	return k->fatal;
}

/* ---- transactions (exactly-once) ---------------------------------------- */

bool
kio_exactly_once(const kio *k)
{
	return k->eos;
}

/* Handles a transactional call's error (destroyed here): 0 none, -EAGAIN
 * retriable, -ECANCELED the transaction must be aborted, -EIO fatal (the
 * engine stops with it). */
static int
txn_error(kio *k, rd_kafka_error_t *e, const char *op, char *err,
    size_t errlen)
{
	if (e == NULL)
		return 0;
	int rc = rd_kafka_error_is_fatal(e) ?
	    (fenced(rd_kafka_error_code(e)) ? -EIO : -ENOTRECOVERABLE) :
	    rd_kafka_error_txn_requires_abort(e) ? -ECANCELED :
	    rd_kafka_error_is_retriable(e) ? -EAGAIN : -EIO;
	errbuf_set(err, errlen, "transaction %s: %s", op,
	    rd_kafka_error_string(e));
	if (rc == -ENOTRECOVERABLE)
		k->prod_broken = true;
	if (rc == -EIO) {
		snprintf(k->fatal_why, sizeof(k->fatal_why),
		    "fatal Kafka transaction error (%s): %s", op,
		    rd_kafka_error_string(e));
		k->fatal = true;
	}
	rd_kafka_error_destroy(e);
	return rc;
}

int
kio_txn_begin(kio *k, char *err, size_t errlen)
{
	return txn_error(k, rd_kafka_begin_transaction(k->prod), "begin", err,
	    errlen);
}

/* The positions of our assignment (the offset after the last message
 * applied), for the transaction; NULL when there are none. */
static rd_kafka_topic_partition_list_t *
positions(kio *k)
{
	if (k->assignment == NULL || k->assignment->cnt == 0)
		return NULL;
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_copy(k->assignment);
	if (rd_kafka_position(k->cons, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_topic_partition_list_destroy(l);
		return NULL;
	}
	rd_kafka_topic_partition_list_t *v =
	    rd_kafka_topic_partition_list_new(l->cnt);
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset >= 0 && l->elems[i].err == 0)
			rd_kafka_topic_partition_list_add(v, l->elems[i].topic,
			    l->elems[i].partition)->offset = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	if (v->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(v);
		return NULL;
	}
	return v;
}

/* A transaction call's timeout: base, or what is left of the shutdown's
 * budget (kio_set_deadline) when that is less; at least 10 ms. */
static int
call_timeout(const kio *k, int base)
{
	if (k->deadline_ms == 0)
		return base;
	int64_t left = k->deadline_ms - clock_mono_ms();
	return left < 10 ? 10 : left < base ? (int)left : base;
}

void
kio_set_deadline(kio *k, int64_t deadline_ms)
{
	k->deadline_ms = deadline_ms;
}

int64_t
kio_deadline(const kio *k)
{
	return k->deadline_ms;
}

/* One call, again while it fails retriably (broker or coordinator away),
 * until stop is set. */
static int
txn_call(kio *k, int what, const rd_kafka_topic_partition_list_t *offs,
    const struct kio_txn_wait *w, char *err, size_t errlen)
{
	for (;;) {
		rd_kafka_error_t *e;
		if (what == 0) {
			rd_kafka_consumer_group_metadata_t *md =
			    rd_kafka_consumer_group_metadata(k->cons);
			e = rd_kafka_send_offsets_to_transaction(k->prod, offs,
			    md, call_timeout(k, TXN_CALL_TIMEOUT_MS));
			rd_kafka_consumer_group_metadata_destroy(md);
		} else {
			e = rd_kafka_commit_transaction(k->prod,
			    call_timeout(k, TXN_CALL_TIMEOUT_MS));
		}
		int rc = txn_error(k, e, what == 0 ? "send offsets" :
		    "commit", err, errlen);
		if (rc != -EAGAIN)
			return rc;
		if (w->stop != NULL && *w->stop) {
			/* The shutdown's budget starts now: the abort that
			 * follows is bounded by it too. */
			if (k->deadline_ms == 0)
				k->deadline_ms = clock_mono_ms() +
				    k->cfg->engine.shutdown_timeout_ms;
			return -EINTR;
		}
		log_kv(LOG_WARN, "transaction call failed, retrying", "error",
		    err, (char *)NULL);
		rd_kafka_poll(k->prod, 0);
		if (w->tick != NULL)
			w->tick(w->ctx);
	}
}

int
kio_txn_commit(kio *k, const struct kio_txn_wait *w, char *err,
    size_t errlen)
{
	int rc = 0;
	/* The offsets tie the transaction to our group generation: an
	 * instance whose partitions moved on (a zombie) is fenced. */
	rd_kafka_topic_partition_list_t *offs = positions(k);
	if (offs != NULL)
		rc = txn_call(k, 0, offs, w, err, errlen);
	if (offs != NULL)
		rd_kafka_topic_partition_list_destroy(offs);
	if (rc == 0)
		rc = txn_call(k, 1, NULL, w, err, errlen);
	k->noffs = 0; /* committed, or read again after the rewind */
	if ((rc == -ECANCELED || rc == -EINTR) && !k->prod_broken)
		kio_txn_abort(k);
	return rc;
}

void
kio_txn_abort(kio *k)
{
	char why[512];
	rd_kafka_error_t *e = rd_kafka_abort_transaction(k->prod,
	    call_timeout(k, TXN_INIT_TIMEOUT_MS));
	if (txn_error(k, e, "abort", why, sizeof(why)) != 0)
		log_kv(LOG_ERROR, "transaction abort failed", "error", why,
		    (char *)NULL);
}

bool
kio_txn_broken(const kio *k)
{
	return k->prod_broken;
}

int
kio_txn_renew(kio *k, const struct kio_txn_wait *w, char *err,
    size_t errlen)
{
	for (;;) {
		close_producer(k, -1);
		int rc = open_producer(k, call_timeout(k, TXN_CALL_TIMEOUT_MS),
		    err, errlen);
		if (rc == 0) {
			log_kv(LOG_INFO, "transactional producer replaced",
			    (char *)NULL);
			return 0;
		}
		if (k->fatal)
			return -EIO;
		if (w->stop != NULL && *w->stop)
			return -EINTR;
		log_kv(LOG_WARN, "replacing the transactional producer failed, "
		    "retrying", "error", err, (char *)NULL);
		if (w->tick != NULL)
			w->tick(w->ctx);
	}
}

const rd_kafka_topic_partition_list_t *
kio_assignment(const kio *k)
{
	return k->assignment;
}

void
kio_rewind(kio *k, const rd_kafka_topic_partition_list_t *skip)
{
	k->noffs = 0;
	k->sealed_head = k->nsealed = 0;
	if (k->assignment == NULL || k->assignment->cnt == 0)
		return;
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_new(k->assignment->cnt);
	for (int i = 0; i < k->assignment->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &k->assignment->elems[i];
		if (skip == NULL || rd_kafka_topic_partition_list_find(skip,
		    p->topic, p->partition) == NULL)
			rd_kafka_topic_partition_list_add(l, p->topic,
			    p->partition);
	}
	rd_kafka_resp_err_t e = l->cnt == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR :
	    rd_kafka_committed(k->cons, l, TXN_INIT_TIMEOUT_MS);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_kv(LOG_ERROR, "reading the committed offsets failed",
		    "error", rd_kafka_err2str(e), (char *)NULL);
	} else if (l->cnt > 0) {
		for (int i = 0; i < l->cnt; i++)
			if (l->elems[i].offset < 0) /* none: the reset policy */
				l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
		rd_kafka_error_t *se = rd_kafka_seek_partitions(k->cons, l,
		    TXN_INIT_TIMEOUT_MS);
		if (se != NULL) {
			log_kv(LOG_ERROR, "seeking to the committed offsets "
			    "failed", "error", rd_kafka_error_string(se),
			    (char *)NULL);
			rd_kafka_error_destroy(se);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
}
