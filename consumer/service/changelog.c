/*
 * changelog: see changelog.h.
 *
 * Preparing: topics are looked up in the all-topics metadata. A metadata
 * request naming the topic would be simpler, but a producer handle asks
 * the broker to auto-create what it names (allow.auto.create.topics is
 * true for producers), and a broker with auto.create.topics.enable would
 * then make the changelog with its default partition count and
 * cleanup.policy=delete. One all-topics request per attempt, at start-up
 * only, is cheap even for thousands of topics.
 *
 * Reading: the legacy per-partition consumer (rd_kafka_consume_start /
 * rd_kafka_consume): it needs no group.id, where rd_kafka_assign refuses
 * to work without one (_UNKNOWN_GROUP in 2.0.2), and a group would mean
 * coordinator look-ups and group ACLs for a reader that commits nothing.
 * The end is taken once, at the start (ListOffsets through
 * rd_kafka_offsets_for_times, see query_offset; read_committed makes it
 * the last stable offset), and the read is done
 * when a record at end - 1 was handed over, a record at or past the end
 * arrives (not handed over), or the partition-EOF event reports an offset
 * at or past the end (the last offsets may be transaction markers, which
 * the consumer never delivers). While nothing arrives for a second, the
 * topic's metadata is checked, so that a topic deleted under us ends the
 * read with -ENOENT instead of waiting for the timeout (such a partition
 * is not stopped: see the end of changelog_read).
 *
 * Sizes: a changelog partition holds one record per live entity of its
 * input partition (after compaction): thousands to millions; records are
 * handed over one at a time without copying.
 */
#include "service/changelog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/log.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

#define POLL_MS 100	     /* longest wait between stop-flag checks */
#define RETRY_MS 100	     /* between metadata attempts */
#define READ_BATCH 1024	     /* messages taken from librdkafka at a time */
#define IDLE_CHECK_MS 1000   /* no record for this long: check the topic */
/* A partition's leader is not ready to answer offset requests (a topic
 * just created: the metadata names a leader before the broker acts as
 * one; a leader moving): asked again every LEADER_RETRY_MS for up to
 * LEADER_WAIT_MS. */
#define LEADER_RETRY_MS 20
#define LEADER_WAIT_MS 10000

struct prefetched {
	int32_t p;
	int64_t from;
};

/* A partition's log start and end from changelog_bounds, for its next
 * read. */
struct bound {
	int32_t p;
	int64_t lo, hi;
};

struct changelog_reader {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	char *topic;
	struct prefetched *pre; /* started by changelog_prefetch, not read */
	size_t npre, pre_cap;
	struct bound *bounds;	/* by changelog_bounds, not read */
	size_t nbounds, bounds_cap;
};

/* ---- shared ------------------------------------------------------------- */

/* A librdkafka error as a negative errno. */
static int
kerr_errno(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return 0;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
		return -ETIMEDOUT;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		return -ENOENT;
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
		return -EACCES;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL:
		return -ENOBUFS;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		return -EMSGSIZE;
	case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
	case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
		return -EOPNOTSUPP;
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
	case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		return -EINVAL;
	case RD_KAFKA_RESP_ERR__FATAL:
	case RD_KAFKA_RESP_ERR__DESTROY:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

/* Milliseconds left until deadline (a clock_mono_ms time), at least 0. */
static int
remaining_ms(int64_t deadline)
{
	int64_t left = deadline - clock_mono_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---- prepare ------------------------------------------------------------ */

/* What the metadata says of one topic. */
struct topic_state {
	bool listed;		 /* in the metadata at all */
	rd_kafka_resp_err_t err; /* the topic's error */
	int32_t partitions;
	bool leaders;		 /* every partition has a leader */
};

static void
topic_state_of(const struct rd_kafka_metadata *md, const char *topic,
    struct topic_state *ts)
{
	memset(ts, 0, sizeof(*ts));
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (strcmp(t->topic, topic) != 0)
			continue;
		ts->listed = true;
		ts->err = t->err;
		ts->partitions = t->partition_cnt;
		ts->leaders = t->partition_cnt > 0;
		for (int j = 0; j < t->partition_cnt; j++)
			if (t->partitions[j].leader < 0 ||
			    t->partitions[j].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				ts->leaders = false;
		return;
	}
}

/* Whether a topic the metadata lists as ts does not exist. */
static bool
topic_missing(const struct topic_state *ts)
{
	return !ts->listed ||
	    ts->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
}

/* Whether ts is a topic ready for use (no error, partitions, leaders). */
static bool
topic_ready(const struct topic_state *ts)
{
	return ts->listed && ts->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    ts->leaders;
}

/*
 * The all-topics metadata, retried until the input topic is settled
 * (ready, or known missing) and, when want_changelog, the changelog is
 * ready too: 0 with both states, or a negative errno with err.
 */
static int
lookup(rd_kafka_t *rk, const char *input, const char *cl,
    bool want_changelog, int64_t deadline, struct topic_state *in,
    struct topic_state *out, bool *controller, char *err, size_t errlen)
{
	for (;;) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md,
		    remaining_ms(deadline) > 0 ? remaining_ms(deadline) : 1);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			errbuf_set(err, errlen, "metadata for topics %s and "
			    "%s: %s", input, cl, rd_kafka_err2str(e));
			return kerr_errno(e);
		}
		topic_state_of(md, input, in);
		topic_state_of(md, cl, out);
		/* The answer just parsed set librdkafka's controller id. */
		int32_t ctl = rd_kafka_controllerid(rk, 0);
		*controller = false;
		for (int i = 0; i < md->broker_cnt; i++)
			if (md->brokers[i].id == ctl)
				*controller = true;
		rd_kafka_metadata_destroy(md);

		if (in->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
		    out->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
			errbuf_set(err, errlen, "metadata: not authorized "
			    "for topic %s",
			    in->err ==
				RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ?
			    input : cl);
			return -EACCES;
		}
		bool in_settled = topic_missing(in) || topic_ready(in);
		bool cl_settled = !want_changelog || topic_ready(out);
		if (in_settled && cl_settled)
			return 0;
		if (remaining_ms(deadline) == 0) {
			const struct topic_state *ts = in_settled ? out : in;
			errbuf_set(err, errlen, "topic %s not ready in time "
			    "(%s%s)", in_settled ? cl : input,
			    ts->listed ? rd_kafka_err2str(ts->err) :
			    "not in the metadata",
			    ts->listed && ts->err == 0 && !ts->leaders ?
			    ", partitions without leader" : "");
			return -ETIMEDOUT;
		}
		usleep(RETRY_MS * 1000);
	}
}

/* Runs one admin request's event queue: the result event or NULL. */
static rd_kafka_event_t *
admin_wait(rd_kafka_queue_t *q, int64_t deadline)
{
	/* The request times out by itself (request_timeout = what is left);
	 * the margin lets its own _TIMED_OUT result arrive. */
	return rd_kafka_queue_poll(q, remaining_ms(deadline) + 1000);
}

static rd_kafka_AdminOptions_t *
admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, int64_t deadline,
    bool operation)
{
	char why[256];
	int ms = remaining_ms(deadline) > 0 ? remaining_ms(deadline) : 1;
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
	rd_kafka_AdminOptions_set_request_timeout(o, ms, why, sizeof(why));
	if (operation)
		rd_kafka_AdminOptions_set_operation_timeout(o, ms, why,
		    sizeof(why));
	return o;
}

/*
 * CreateTopics for the changelog: 0 (created, or created meanwhile by
 * someone else: *existed set), or a negative errno with err.
 */
static int
create_changelog(rd_kafka_t *rk, const char *cl, int32_t partitions,
    int64_t deadline, bool *existed, char *err, size_t errlen)
{
	char why[512];
	int rc = -EIO;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_AdminOptions_t *opts = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(cl, partitions, -1,
	    why, sizeof(why));

	*existed = false;
	if (nt == NULL) {
		errbuf_set(err, errlen, "creating changelog topic %s: %s", cl,
		    why);
		return -EINVAL;
	}
	rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt,
	    "cleanup.policy", "compact");
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		errbuf_set(err, errlen, "creating changelog topic %s: "
		    "cleanup.policy: %s", cl, rd_kafka_err2str(e));
		rc = -EINVAL;
		goto out;
	}
	q = rd_kafka_queue_new(rk);
	opts = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, deadline,
	    true);
	rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
	ev = admin_wait(q, deadline);
	if (ev == NULL) {
		errbuf_set(err, errlen, "creating changelog topic %s: no "
		    "answer in time", cl);
		rc = -ETIMEDOUT;
		goto out;
	}
	if ((e = rd_kafka_event_error(ev)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		errbuf_set(err, errlen, "creating changelog topic %s: %s", cl,
		    rd_kafka_event_error_string(ev));
		rc = kerr_errno(e);
		goto out;
	}
	size_t n = 0;
	const rd_kafka_topic_result_t **res =
	    rd_kafka_CreateTopics_result_topics(
		rd_kafka_event_CreateTopics_result(ev), &n);
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		e = rd_kafka_topic_result_error(res[i]);
		if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			*existed = true;
		} else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			const char *s = rd_kafka_topic_result_error_string(
			    res[i]);
			errbuf_set(err, errlen, "creating changelog topic %s "
			    "(%" PRId32 " partitions, cleanup.policy=compact):"
			    " %s", cl, partitions,
			    s != NULL && *s ? s : rd_kafka_err2str(e));
			rc = kerr_errno(e);
		}
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (opts)
		rd_kafka_AdminOptions_destroy(opts);
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

/*
 * Warns when the changelog's cleanup.policy is not "compact". Never
 * fails: what cannot be checked is logged (debug when the cluster cannot
 * answer DescribeConfigs at all).
 */
static void
check_policy(rd_kafka_t *rk, const char *cl, bool controller,
    int64_t deadline)
{
	rd_kafka_queue_t *q = NULL;
	rd_kafka_AdminOptions_t *opts = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_ConfigResource_t *res = NULL;

	/* librdkafka 2.0.2 sends DescribeConfigs for topics to the
	 * controller; on a cluster that names none of its brokers as the
	 * controller (the mock cluster says 0, its brokers are 1..N) it would
	 * wait for the whole timeout. */
	if (!controller) {
		log_kv(LOG_DEBUG, "changelog cleanup.policy not checked",
		    "topic", cl, "reason", "no controller among the brokers "
		    "(cannot DescribeConfigs)", (char *)NULL);
		return;
	}
	res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cl);
	q = rd_kafka_queue_new(rk);
	opts = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, deadline,
	    false);
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
	ev = admin_wait(q, deadline);
	rd_kafka_resp_err_t e = ev ? rd_kafka_event_error(ev) :
	    RD_KAFKA_RESP_ERR__TIMED_OUT;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_kv(kerr_errno(e) == -EOPNOTSUPP ? LOG_DEBUG : LOG_WARN,
		    "changelog cleanup.policy not checked", "topic", cl,
		    "error", ev ? rd_kafka_event_error_string(ev) :
		    "no answer in time", (char *)NULL);
		goto out;
	}
	size_t nres = 0, nent = 0;
	const rd_kafka_ConfigResource_t **rs =
	    rd_kafka_DescribeConfigs_result_resources(
		rd_kafka_event_DescribeConfigs_result(ev), &nres);
	if (nres < 1 || rd_kafka_ConfigResource_error(rs[0]) != 0) {
		log_kv(LOG_WARN, "changelog cleanup.policy not checked",
		    "topic", cl, "error", nres < 1 ? "no resource in the "
		    "answer" : rd_kafka_ConfigResource_error_string(rs[0]),
		    (char *)NULL);
		goto out;
	}
	const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(
	    rs[0], &nent);
	const char *policy = NULL;
	for (size_t i = 0; i < nent; i++)
		if (strcmp(rd_kafka_ConfigEntry_name(ents[i]),
		    "cleanup.policy") == 0)
			policy = rd_kafka_ConfigEntry_value(ents[i]);
	if (policy == NULL) {
		log_kv(LOG_WARN, "changelog cleanup.policy not checked",
		    "topic", cl, "error", "not in the topic's configuration",
		    (char *)NULL);
	} else if (strcmp(policy, "compact") != 0) {
		/* "delete" loses state after retention.ms; so does
		 * "compact,delete" for entities that did not change. */
		log_kv(LOG_WARN, "changelog topic is not compacted: state of "
		    "unchanged entities will be lost after its retention",
		    "topic", cl, "cleanup.policy", policy, "want", "compact",
		    (char *)NULL);
	} else {
		log_kv(LOG_DEBUG, "changelog topic is compacted", "topic", cl,
		    (char *)NULL);
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	rd_kafka_ConfigResource_destroy(res);
}

/* -ECHRNG with err when the two counts differ, else 0. */
static int
check_counts(const char *input, int32_t in_parts, const char *cl,
    int32_t cl_parts, char *err, size_t errlen)
{
	if (in_parts == cl_parts)
		return 0;
	errbuf_set(err, errlen, "changelog topic %s has %" PRId32
	    " partitions, input topic %s has %" PRId32 ": they must be equal "
	    "(partition P of the changelog holds the state of input "
	    "partition P)", cl, cl_parts, input, in_parts);
	return -ECHRNG;
}

int
changelog_prepare(rd_kafka_t *rk, const char *input_topic,
    const char *changelog_topic, int timeout_ms, int32_t *partitions,
    char *err, size_t errlen)
{
	int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct topic_state in, cl;
	bool controller = false;
	int rc;

	*partitions = 0;
	if (input_topic == NULL || *input_topic == '\0' ||
	    changelog_topic == NULL || *changelog_topic == '\0' ||
	    strcmp(input_topic, changelog_topic) == 0) {
		errbuf_set(err, errlen, "changelog topic \"%s\": must be set "
		    "and differ from the input topic \"%s\"",
		    changelog_topic ? changelog_topic : "",
		    input_topic ? input_topic : "");
		return -EINVAL;
	}
	/* A topic just created may take a moment to show in the metadata
	 * (a real cluster propagates it): look again until the deadline. A
	 * look that fails then (the deadline leaves it no time) does not
	 * undo the answer before it: the input topic is missing. */
	for (bool answered = false;;) {
		struct topic_state in1, cl1;
		bool ctl1;
		int r = lookup(rk, input_topic, changelog_topic, false,
		    deadline, &in1, &cl1, &ctl1, err, errlen);
		if (r != 0) {
			rc = answered ? 0 : r;
			break;
		}
		answered = true;
		rc = 0;
		in = in1;
		cl = cl1;
		controller = ctl1;
		if (!topic_missing(&in) || remaining_ms(deadline) <= 0)
			break;
		clock_sleep_ms(200);
	}
	if (rc != 0)
		return rc;
	if (topic_missing(&in)) {
		errbuf_set(err, errlen, "input topic %s does not exist (the "
		    "changelog %s gets its partition count)", input_topic,
		    changelog_topic);
		return -ENOENT;
	}
	if (topic_missing(&cl) && !controller) {
		errbuf_set(err, errlen, "changelog topic %s does not exist and "
		    "cannot be created: the cluster names no controller among "
		    "its brokers (as librdkafka's mock cluster, `sbomd "
		    "dev-kafka`); create it with %" PRId32 " partitions and "
		    "cleanup.policy=compact", changelog_topic, in.partitions);
		return -EOPNOTSUPP;
	}
	if (topic_missing(&cl)) {
		bool existed;
		rc = create_changelog(rk, changelog_topic, in.partitions,
		    deadline, &existed, err, errlen);
		if (rc != 0)
			return rc;
		log_kv(LOG_INFO, existed ? "changelog topic created by "
		    "someone else meanwhile" : "changelog topic created",
		    "topic", changelog_topic, "input_topic", input_topic,
		    (char *)NULL);
		rc = lookup(rk, input_topic, changelog_topic, true, deadline,
		    &in, &cl, &controller, err, errlen);
		if (rc != 0)
			return rc;
		if ((rc = check_counts(input_topic, in.partitions,
		    changelog_topic, cl.partitions, err, errlen)) != 0)
			return rc;
		if (existed)
			check_policy(rk, changelog_topic, controller, deadline);
		*partitions = in.partitions;
		return 0;
	}
	if (cl.err == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    (rc = check_counts(input_topic, in.partitions, changelog_topic,
	    cl.partitions, err, errlen)) != 0)
		return rc;
	/* Listed with another error (no leader yet): wait until usable. */
	rc = lookup(rk, input_topic, changelog_topic, true, deadline, &in,
	    &cl, &controller, err, errlen);
	if (rc != 0)
		return rc;
	if ((rc = check_counts(input_topic, in.partitions, changelog_topic,
	    cl.partitions, err, errlen)) != 0)
		return rc;
	check_policy(rk, changelog_topic, controller, deadline);
	*partitions = in.partitions;
	return 0;
}

/* ---- produce ------------------------------------------------------------ */

int
changelog_produce(rd_kafka_t *prod, const char *topic, int32_t partition,
    const void *key, size_t klen, const void *value, size_t vlen,
    const char *instance, void *msg_opaque, char *err, size_t errlen)
{
	if (topic == NULL || partition < 0 || key == NULL || klen == 0 ||
	    instance == NULL) {
		errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: a record "
		    "needs a key and an instance", topic ? topic : "(null)",
		    partition);
		return -EINVAL;
	}
	rd_kafka_resp_err_t e = rd_kafka_producev(prod,
	    RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
	    RD_KAFKA_V_KEY(key, klen),
	    RD_KAFKA_V_VALUE((void *)value, value ? vlen : 0),
	    RD_KAFKA_V_HEADER(CHANGELOG_INSTANCE_HEADER, instance,
		(ssize_t)strlen(instance)),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	errbuf_set(err, errlen, "producing to changelog %s [%" PRId32 "]: %s",
	    topic, partition, rd_kafka_err2str(e));
	return kerr_errno(e);
}

/* ---- reader ------------------------------------------------------------- */

/* librdkafka's log lines (any of its threads) in our format. */
static void
reader_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN :
	    level <= 6 ? LOG_INFO : LOG_DEBUG;
	log_kv(l, "librdkafka", "client", rd_kafka_name(rk), "facility", fac,
	    "error", buf, (char *)NULL);
}

/* Client-level errors: a broker down is retried by librdkafka and
 * bounded by the read's timeout, so they are only logged. */
static void
reader_error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
	(void)opaque;
	log_kv(LOG_INFO, "changelog reader", "client", rd_kafka_name(rk),
	    "error", rd_kafka_err2name((rd_kafka_resp_err_t)e), "reason",
	    reason, (char *)NULL);
}

int
changelog_reader_open(const char *brokers, const struct kclient_prop *props,
    size_t nprops, const char *topic, changelog_reader **out, char *err,
    size_t errlen)
{
	static const struct kclient_prop def[] = {
		{ "client.id", "sbomd-changelog" },
		/* A replay ends at the partition's end: do not let the
		 * broker hold the last fetch. */
		{ "fetch.wait.max.ms", "10" },
		/* Per partition fetched (changelog_prefetch). */
		{ "queued.max.messages.kbytes", "16384" },
	};
	/* What the read loop depends on; set over the user's. */
	static const struct kclient_prop forced[] = {
		{ "enable.partition.eof", "true" },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "isolation.level", "read_committed" },
		{ "auto.offset.reset", "earliest" },
		{ "allow.auto.create.topics", "false" },
	};
	char why[512];
	changelog_reader *r = NULL;

	*out = NULL;
	if (topic == NULL || *topic == '\0') {
		errbuf_set(err, errlen, "changelog reader: no topic");
		return -EINVAL;
	}
	rd_kafka_conf_t *conf = kclient_conf(brokers, def,
	    sizeof(def) / sizeof(def[0]), props, nprops,
	    "kafka.consumer_properties", err, errlen);
	if (conf == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(forced) / sizeof(forced[0]); i++) {
		if (kclient_has(props, nprops, forced[i].name))
			log_kv(LOG_DEBUG, "changelog reader overrides a "
			    "consumer property", "property", forced[i].name,
			    "value", forced[i].value, (char *)NULL);
		if (rd_kafka_conf_set(conf, forced[i].name, forced[i].value,
		    why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			errbuf_set(err, errlen, "changelog reader: %s=%s: %s",
			    forced[i].name, forced[i].value, why);
			rd_kafka_conf_destroy(conf);
			return -EINVAL;
		}
	}
	rd_kafka_conf_set_log_cb(conf, reader_log_cb);
	rd_kafka_conf_set_error_cb(conf, reader_error_cb);

	r = xcalloc(1, sizeof(*r));
	r->topic = xstrdup(topic);
	r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (r->rk == NULL) {
		errbuf_set(err, errlen, "changelog reader for %s: %s", topic,
		    why);
		rd_kafka_conf_destroy(conf);
		changelog_reader_close(r);
		return -EINVAL;
	}
	conf = NULL; /* owned by r->rk */
	/* No offsets are ever stored or committed by this reader (the
	 * legacy consumer's own per-topic auto-commit included). */
	rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
	if (rd_kafka_topic_conf_set(tc, "auto.commit.enable", "false", why,
	    sizeof(why)) != RD_KAFKA_CONF_OK) {
		errbuf_set(err, errlen, "changelog reader: auto.commit.enable:"
		    " %s", why);
		rd_kafka_topic_conf_destroy(tc);
		changelog_reader_close(r);
		return -EINVAL;
	}
	r->rkt = rd_kafka_topic_new(r->rk, topic, tc); /* owns tc */
	if (r->rkt == NULL) {
		errbuf_set(err, errlen, "changelog reader for %s: %s", topic,
		    rd_kafka_err2str(rd_kafka_last_error()));
		changelog_reader_close(r);
		return -EINVAL;
	}
	*out = r;
	return 0;
}

void
changelog_reader_close(changelog_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->npre; i++)
		rd_kafka_consume_stop(r->rkt, r->pre[i].p);
	free(r->pre);
	free(r->bounds);
	if (r->rkt)
		rd_kafka_topic_destroy(r->rkt);
	if (r->rk)
		rd_kafka_destroy(r->rk);
	free(r->topic);
	free(r);
}

/* Whether the metadata says partition p of the reader's topic is gone
 * (false when the metadata cannot be had: the read's timeout decides). */
static bool
partition_gone(changelog_reader *r, int32_t p, int64_t deadline)
{
	const struct rd_kafka_metadata *md = NULL;
	int ms = remaining_ms(deadline);
	if (ms > 2000)
		ms = 2000;
	if (rd_kafka_metadata(r->rk, 0, r->rkt, &md, ms > 0 ? ms : 1) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	bool gone = false;
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (strcmp(t->topic, r->topic) != 0)
			continue;
		gone = t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
		    (t->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    t->partition_cnt <= p);
	}
	rd_kafka_metadata_destroy(md);
	return gone;
}

/* Whether an offset request failed only because the partition's leader
 * was not ready (see LEADER_WAIT_MS). */
static bool
leader_not_ready(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	    e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
	    e == RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE ||
	    e == RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH ||
	    e == RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH ||
	    e == RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE;
}

/* Asks for one end (which: RD_KAFKA_OFFSET_BEGINNING or _END) of every
 * partition of l at once, into the list's offsets and errors; asked again
 * while a leader is not ready (LEADER_WAIT_MS). The request's error. */
static rd_kafka_resp_err_t
list_offsets(changelog_reader *r, rd_kafka_topic_partition_list_t *l,
    int64_t which, int64_t deadline)
{
	int64_t leader_deadline = clock_mono_ms() + LEADER_WAIT_MS;
	for (;;) {
		for (int i = 0; i < l->cnt; i++) {
			l->elems[i].offset = which;
			l->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
		}
		int ms = remaining_ms(deadline);
		rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(r->rk, l,
		    ms > 0 ? ms : 1);
		bool again = leader_not_ready(e);
		for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt;
		     i++)
			again |= leader_not_ready(l->elems[i].err);
		if (!again || clock_mono_ms() >= leader_deadline ||
		    remaining_ms(deadline) <= LEADER_RETRY_MS)
			return e;
		clock_sleep_ms(LEADER_RETRY_MS);
	}
}

/*
 * The log start (which = RD_KAFKA_OFFSET_BEGINNING) or end (_END; with
 * read_committed the last stable offset) of partition p in *off: 0, or a
 * negative errno with err. rd_kafka_offsets_for_times rather than
 * rd_kafka_query_watermark_offsets: in 2.0.2 the latter waits for its
 * ListOffsets answer without bound while the leader is down, the former
 * keeps to its timeout.
 */
static int
query_offset(changelog_reader *r, int32_t p, int64_t which, int64_t deadline,
    int64_t *off, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, r->topic, p);
	rd_kafka_resp_err_t e = list_offsets(r, l, which, deadline);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		e = l->elems[0].err;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].offset < 0)
		e = RD_KAFKA_RESP_ERR__BAD_MSG; /* no offset in the answer */
	*off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	int rc = kerr_errno(e);
	errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: %s%s", r->topic,
	    p, rc == -ENOENT ? "no such topic or partition: " :
	    which == RD_KAFKA_OFFSET_END ? "reading its end offset: " :
	    "reading its start offset: ", rd_kafka_err2str(e));
	return rc;
}

/* The bounds changelog_bounds found for p (NULL: none). */
static struct bound *
bound_of(changelog_reader *r, int32_t p)
{
	for (size_t i = 0; i < r->nbounds; i++)
		if (r->bounds[i].p == p)
			return &r->bounds[i];
	return NULL;
}

/* Takes p's bounds for a read: true with *lo and *hi when there were. */
static bool
take_bounds(changelog_reader *r, int32_t p, int64_t *lo, int64_t *hi)
{
	struct bound *b = bound_of(r, p);
	if (b == NULL)
		return false;
	*lo = b->lo;
	*hi = b->hi;
	*b = r->bounds[--r->nbounds];
	return true;
}

int
changelog_bounds(changelog_reader *r, const int32_t *parts, size_t n,
    int timeout_ms, char *err, size_t errlen)
{
	r->nbounds = 0; /* the last call's are forgotten */
	if (n == 0)
		return 0;
	int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	rd_kafka_topic_partition_list_t *hi =
	    rd_kafka_topic_partition_list_new((int)n);
	rd_kafka_topic_partition_list_t *lo =
	    rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++) {
		rd_kafka_topic_partition_list_add(hi, r->topic, parts[i]);
		rd_kafka_topic_partition_list_add(lo, r->topic, parts[i]);
	}
	rd_kafka_resp_err_t e = list_offsets(r, hi, RD_KAFKA_OFFSET_END,
	    deadline);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		e = list_offsets(r, lo, RD_KAFKA_OFFSET_BEGINNING, deadline);
	size_t found = 0;
	for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < hi->cnt; i++) {
		const rd_kafka_topic_partition_t *h = &hi->elems[i];
		const rd_kafka_topic_partition_t *s =
		    rd_kafka_topic_partition_list_find(lo, r->topic,
			h->partition);
		if (h->err != RD_KAFKA_RESP_ERR_NO_ERROR || h->offset < 0 ||
		    s == NULL || s->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
		    s->offset < 0)
			continue; /* its read asks again */
		struct bound *b = bound_of(r, h->partition);
		if (b == NULL) {
			if (r->nbounds == r->bounds_cap) {
				r->bounds_cap = r->bounds_cap ?
				    2 * r->bounds_cap : 64;
				r->bounds = xreallocarray(r->bounds,
				    r->bounds_cap, sizeof(*r->bounds));
			}
			b = &r->bounds[r->nbounds++];
		}
		*b = (struct bound){ h->partition, s->offset, h->offset };
		found++;
	}
	rd_kafka_topic_partition_list_destroy(hi);
	rd_kafka_topic_partition_list_destroy(lo);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		errbuf_set(err, errlen, "changelog %s: reading the offsets of "
		    "%zu partitions: %s", r->topic, n, rd_kafka_err2str(e));
		return kerr_errno(e) != 0 ? kerr_errno(e) : -EIO;
	}
	return (int)found;
}

int
changelog_prefetch(changelog_reader *r, int32_t p, int64_t from)
{
	if (p < 0 || from < 0)
		return -EINVAL;
	const struct bound *b = bound_of(r, p);
	if (b != NULL && (from >= b->hi || b->lo >= b->hi))
		return 0; /* nothing to fetch: the read ends at once */
	for (size_t i = 0; i < r->npre; i++)
		if (r->pre[i].p == p)
			return r->pre[i].from == from ? 0 : -EBUSY;
	if (rd_kafka_consume_start(r->rkt, p, from) != 0) {
		int rc = kerr_errno(rd_kafka_last_error());
		return rc != 0 ? rc : -EIO;
	}
	if (r->npre == r->pre_cap) {
		r->pre_cap = r->pre_cap ? 2 * r->pre_cap : 8;
		r->pre = xreallocarray(r->pre, r->pre_cap, sizeof(*r->pre));
	}
	r->pre[r->npre++] = (struct prefetched){ p, from };
	return 0;
}

/* Takes p off the prefetched list: true when it is being fetched from
 * `from` (and is left started for the read), false when it was not
 * prefetched or was from another offset (then it is stopped). */
static bool
take_prefetched(changelog_reader *r, int32_t p, int64_t from)
{
	for (size_t i = 0; i < r->npre; i++) {
		if (r->pre[i].p != p)
			continue;
		bool same = r->pre[i].from == from;
		r->pre[i] = r->pre[--r->npre];
		if (!same)
			rd_kafka_consume_stop(r->rkt, p);
		return same;
	}
	return false;
}

enum read_step { STEP_MORE, STEP_END, STEP_FAIL, STEP_GONE };

/* Hands one message of a replay to fn and destroys it: STEP_END once the
 * partition's end (hi, as of the read's start) is reached; STEP_GONE
 * (the topic or partition is) or STEP_FAIL (fn refused the record) with
 * *rc and err set. */
static enum read_step
read_one(changelog_reader *r, int32_t p, int64_t hi, rd_kafka_message_t *m,
    int (*fn)(void *ctx, const struct changelog_record *rec), void *ctx,
    int64_t *end, int *rc, char *err, size_t errlen)
{
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		bool done = m->offset >= hi;
		rd_kafka_message_destroy(m);
		return done ? STEP_END : STEP_MORE;
	}
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		*rc = kerr_errno(m->err);
		if (*rc == -ENOENT) {
			errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: at "
			    "offset %" PRId64 ": %s", r->topic, p, *end,
			    rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			return STEP_GONE;
		}
		/* Transient (broker down, offset reset): librdkafka retries;
		 * the timeout bounds us. */
		log_kv(LOG_WARN, "changelog read", "topic", r->topic, "error",
		    rd_kafka_message_errstr(m), (char *)NULL);
		rd_kafka_message_destroy(m);
		*rc = 0;
		return STEP_MORE;
	}
	if (m->offset >= hi) { /* written after we started */
		rd_kafka_message_destroy(m);
		return STEP_END;
	}
	struct changelog_record rec = {
		.partition = p,
		.offset = m->offset,
		.key = m->key,
		.klen = m->key_len,
		.value = m->payload,
		.vlen = m->payload ? m->len : 0,
	};
	rd_kafka_headers_t *hdrs = NULL;
	const void *hv = NULL;
	size_t hl = 0;
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(hdrs, CHANGELOG_INSTANCE_HEADER, &hv,
		&hl) == RD_KAFKA_RESP_ERR_NO_ERROR && hv != NULL) {
		rec.instance = hv;
		rec.ilen = hl;
	}
	int64_t off = m->offset;
	*rc = fn(ctx, &rec);
	rd_kafka_message_destroy(m);
	if (*rc != 0) { /* *end stays at off: not applied */
		errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: stopped "
		    "by the caller at offset %" PRId64 ": %s", r->topic, p,
		    off, strerror(*rc < 0 ? -*rc : *rc));
		return STEP_FAIL;
	}
	*end = off + 1;
	return off + 1 >= hi ? STEP_END : STEP_MORE;
}

int
changelog_read(changelog_reader *r, int32_t p, int64_t from,
    int (*fn)(void *ctx, const struct changelog_record *rec), void *ctx,
    int64_t *end, volatile sig_atomic_t *stop, int timeout_ms, char *err,
    size_t errlen)
{
	int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int64_t lo = 0, hi = 0;
	bool started = false;
	int rc;
	rd_kafka_resp_err_t e;

	*end = from;
	if (p < 0 || from < 0 || fn == NULL) {
		errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: bad read "
		    "from offset %" PRId64, r->topic, p, from);
		return -EINVAL;
	}
	/* Prefetched from `from`: fetching since, below the log start
	 * reset to it (auto.offset.reset); left started until out:. */
	started = take_prefetched(r, p, from);
	if (!take_bounds(r, p, &lo, &hi) &&
	    ((rc = query_offset(r, p, RD_KAFKA_OFFSET_END, deadline, &hi, err,
	    errlen)) != 0 ||
	    (rc = query_offset(r, p, RD_KAFKA_OFFSET_BEGINNING, deadline, &lo,
	    err, errlen)) != 0)) {
		if (rc == -ENOENT)
			started = false; /* see out: */
		goto out;
	}
	if (from > hi) {
		errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: offset %"
		    PRId64 " is beyond its end %" PRId64 " (topic recreated or "
		    "truncated?)", r->topic, p, from, hi);
		rc = -ERANGE;
		goto out;
	}
	if (from >= hi || lo >= hi) { /* nothing (left) to read */
		*end = hi;
		rc = 0;
		goto out;
	}
	int64_t start = from < lo ? lo : from;
	if (!started && rd_kafka_consume_start(r->rkt, p, start) != 0) {
		e = rd_kafka_last_error();
		errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: starting "
		    "at offset %" PRId64 ": %s", r->topic, p, start,
		    rd_kafka_err2str(e));
		return kerr_errno(e) == 0 ? -EIO : kerr_errno(e);
	}
	started = true;

	int64_t last_progress = clock_mono_ms();
	rd_kafka_message_t *msgs[READ_BATCH];
	for (;;) {
		if (stop != NULL && *stop) {
			errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: "
			    "stopped at offset %" PRId64 " of %" PRId64,
			    r->topic, p, *end, hi);
			rc = -EINTR;
			goto out;
		}
		int left = remaining_ms(deadline);
		if (left == 0) {
			errbuf_set(err, errlen, "changelog %s [%" PRId32 "]: "
			    "timed out at offset %" PRId64 " of %" PRId64,
			    r->topic, p, *end, hi);
			rc = -ETIMEDOUT;
			goto out;
		}
		/* What is queued, without waiting; only when nothing is,
		 * wait for one message. librdkafka's batch call waits until
		 * the whole batch is there or the timeout passes, so asking
		 * for READ_BATCH with a timeout held each partition's tail
		 * (fewer records than that, and the end-of-partition event
		 * does not end the wait) for the whole POLL_MS: 100 ms a
		 * partition, a third of a restore's time. */
		ssize_t n = rd_kafka_consume_batch(r->rkt, p, 0, msgs,
		    READ_BATCH);
		if (n == 0)
			n = rd_kafka_consume_batch(r->rkt, p,
			    left < POLL_MS ? left : POLL_MS, msgs, 1);
		if (n <= 0) {
			if (clock_mono_ms() - last_progress >= IDLE_CHECK_MS) {
				if (partition_gone(r, p, deadline)) {
					errbuf_set(err, errlen, "changelog %s "
					    "[%" PRId32 "]: topic or partition "
					    "gone at offset %" PRId64, r->topic,
					    p, *end);
					rc = -ENOENT;
					started = false; /* see out: */
					goto out;
				}
				last_progress = clock_mono_ms();
			}
			continue;
		}
		last_progress = clock_mono_ms();
		enum read_step step = STEP_MORE;
		ssize_t i;
		for (i = 0; i < n && step == STEP_MORE &&
		     (stop == NULL || !*stop); i++)
			step = read_one(r, p, hi, msgs[i], fn, ctx, end, &rc,
			    err, errlen);
		for (; i < n; i++) /* after the end, an error or a stop */
			rd_kafka_message_destroy(msgs[i]);
		if (step == STEP_END)
			break;
		if (step == STEP_GONE)
			started = false; /* see out: */
		if (step != STEP_MORE)
			goto out;
	}
	*end = hi;
	rc = 0;
out:
	/* Not for a partition that vanished while being fetched: in 2.0.2,
	 * rd_kafka_consume_stop on it leaves a reference behind and the
	 * reader's rd_kafka_destroy then hangs for ever (seen on the mock
	 * cluster and on Apache Kafka 4.1 after deleting the topic). Left
	 * started, the handle is destroyed at once. */
	if (started)
		rd_kafka_consume_stop(r->rkt, p);
	return rc;
}
