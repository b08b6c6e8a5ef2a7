/*
 * kafkaio: see kafkaio.h.
 *
 * Defaults we set (the user's properties win over them):
 *   producer  idempotent, zstd, linger 5 ms, message.timeout.ms=0 (the
 *             outbox re-sends; librdkafka never gives up on a message),
 *             message.max.bytes sized for scan.max_sbom_bytes
 *   consumer  enable.auto.offset.store=false (we store after the commit),
 *             auto-commit every second, earliest, statistics every 5 s
 *             (consumer lag for /metrics)
 * Both clients' queues forward an I/O event (one byte) to the engine's
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
#include "util/errbuf.h"
#include "util/xmalloc.h"

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
	rd_kafka_queue_t *cq;
	rd_kafka_topic_partition_list_t *assignment; /* NULL: none */
	bool paused;
	bool cooperative; /* the group's rebalance protocol, last seen */
	struct part_off *offs; /* noted, not yet stored */
	size_t noffs, offs_cap;
	struct sealed_off *sealed; /* waiting for the broker, by tag */
	size_t sealed_head, nsealed, sealed_cap;
	bool fatal;
	char fatal_why[640];
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

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	kio *k = opaque;
	char buf[512];
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
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
	char n[16];
	snprintf(n, sizeof(n), "%d", parts->cnt);
	k->counters->rebalances++;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
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
	 * committed before the partitions go. */
	rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
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

static rd_kafka_conf_t *
producer_conf(kio *k, char *err, size_t errlen)
{
	const struct sbomd_config *c = k->cfg;
	char maxmsg[24];
	int64_t mm = c->scan.max_sbom_bytes + (1 << 20);
	snprintf(maxmsg, sizeof(maxmsg), "%" PRId64,
	    mm > 1000000000 ? 1000000000 : mm);
	const struct kclient_prop def[] = {
		{ "client.id", "sbomd-producer" },
		{ "enable.idempotence", "true" },
		{ "compression.codec", "zstd" },
		{ "linger.ms", "5" },
		{ "message.timeout.ms", "0" }, /* the outbox retries */
		{ "message.max.bytes", maxmsg },
	};
	struct kclient_prop *user = props_of(&c->kafka.producer_properties);
	rd_kafka_conf_t *conf = kclient_conf(c->kafka.brokers, def,
	    sizeof(def) / sizeof(def[0]), user, c->kafka.producer_properties.n,
	    "kafka.producer_properties", err, errlen);
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
		/* incremental rebalances: only moved partitions pay */
		{ "partition.assignment.strategy", "cooperative-sticky" },
		/* static membership: a restart gets its partitions back */
		{ "group.instance.id", c->kafka.group_instance_id },
	};
	struct kclient_prop *user = props_of(&c->kafka.consumer_properties);
	size_t ndef = sizeof(def) / sizeof(def[0]);
	if (c->kafka.group_instance_id[0] == '\0')
		ndef--; /* the last: no static membership */
	rd_kafka_conf_t *conf = kclient_conf(c->kafka.brokers, def, ndef,
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

static int
subscribe(kio *k, char *err, size_t errlen)
{
	const char *topic = k->cfg->kafka.input_topic;
	rd_kafka_topic_partition_list_t *sub =
	    rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(k->cons, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		errbuf_set(err, errlen, "subscribing to %s: %s", topic,
		    rd_kafka_err2str(kerr));
		return -EINVAL;
	}
	return 0;
}

int
kio_open(const struct sbomd_config *cfg, int wake_fd,
    struct snapshot *counters, const struct kio_hooks *hooks, kio **out,
    char *err, size_t errlen)
{
	char why[512];
	int rc = -EINVAL;
	rd_kafka_conf_t *pc = NULL, *cc = NULL;
	kio *k = xcalloc(1, sizeof(*k));
	k->cfg = cfg;
	k->cooperative = true; /* our default assignor, cooperative-sticky */
	k->counters = counters;
	k->hooks = *hooks;

	if ((pc = producer_conf(k, err, errlen)) == NULL ||
	    (cc = consumer_conf(k, err, errlen)) == NULL)
		goto fail;
	k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof(why));
	if (k->prod == NULL) {
		errbuf_set(err, errlen, "kafka producer: %s", why);
		goto fail;
	}
	pc = NULL; /* owned by the producer */
	k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof(why));
	if (k->cons == NULL) {
		errbuf_set(err, errlen, "kafka consumer: %s", why);
		goto fail;
	}
	cc = NULL; /* owned by the consumer */
	rd_kafka_poll_set_consumer(k->cons);
	k->cq = rd_kafka_queue_get_consumer(k->cons);
	rd_kafka_queue_io_event_enable(k->cq, wake_fd, "c", 1);
	rd_kafka_queue_t *pq = rd_kafka_queue_get_main(k->prod);
	rd_kafka_queue_io_event_enable(pq, wake_fd, "p", 1);
	rd_kafka_queue_destroy(pq);
	if ((rc = subscribe(k, err, errlen)) != 0)
		goto fail;
	*out = k;
	return 0;
fail:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (cc)
		rd_kafka_conf_destroy(cc);
	kio_close(k);
	return rc;
}

void
kio_close(kio *k)
{
	if (k == NULL)
		return;
	if (k->cons) {
		if (k->cq) {
			rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
			rd_kafka_queue_destroy(k->cq);
		}
		/* Runs rebalance_cb a last time (revoke). */
		rd_kafka_consumer_close(k->cons);
		rd_kafka_destroy(k->cons);
	}
	if (k->prod) {
		/* Undelivered messages stay in the outbox for the next
		 * start. */
		rd_kafka_purge(k->prod,
		    RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(k->prod, 0);
		rd_kafka_destroy(k->prod);
	}
	if (k->assignment)
		rd_kafka_topic_partition_list_destroy(k->assignment);
	free(k->offs);
	free(k->sealed);
	free(k);
}

rd_kafka_t *
kio_producer(kio *k)
{
	return k->prod;
}

rd_kafka_queue_t *
kio_input(kio *k)
{
	return k->cq;
}

void
kio_poll_producer(kio *k, int timeout_ms)
{
	rd_kafka_poll(k->prod, timeout_ms);
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
kio_commit(kio *k)
{
	rd_kafka_resp_err_t cerr = rd_kafka_commit(k->cons, NULL, 0);
	if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_kv(LOG_WARN, "offset commit failed", "error",
		    rd_kafka_err2str(cerr), (char *)NULL);
}

void
kio_hold_input(kio *k)
{
	rd_kafka_poll(k->prod, 0);
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

bool
kio_fatal(const kio *k, char *err, size_t errlen)
{
	if (k->fatal)
		errbuf_set(err, errlen, "%s", k->fatal_why);
	return k->fatal;
}
