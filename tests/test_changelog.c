/*
 * test_changelog: the state changelog (consumer/service/changelog) against
 * librdkafka's mock cluster, started in-process (rd_kafka_mock_cluster_new
 * on a bookkeeping producer, as devkafka.c does), one fresh cluster per
 * test.
 *
 * What librdkafka 2.0.2's mock cluster can do decides what is tested
 * here (checked by probes): its metadata names broker 0 as the controller,
 * which is none of its brokers, so CreateTopics and DescribeConfigs both
 * wait for their whole timeout ("Failed while waiting for controller"); it
 * auto-creates any topic a metadata request names (with 4 partitions),
 * except those given an error with rd_kafka_mock_topic_set_error; it has
 * no topic deletion. It does answer ListOffsets (watermarks), keeps
 * record headers, null and empty values, and serves Fetch.
 *
 * So: the creation path is tested only for what must hold on any broker
 * (on a cluster that cannot create, prepare fails at once, saying so, and
 * has auto-created nothing on the way); the check paths
 * (equal counts, mismatch, missing input) on topics made with
 * rd_kafka_mock_topic_create; a vanished topic with topic_set_error plus
 * Fetch errors pushed (what a deleted topic looks like to a consumer).
 * Creation itself was checked by hand against Apache Kafka
 * (scripts/kafka.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "service/changelog.h"
#include "service/log.h"

#define INPUT "workload-events"
#define CL "sbomd-state"
#define INSTANCE "sbomd-0123456789abcdef"
#define FETCH_API_KEY 1 /* RD_KAFKAP_Fetch (librdkafka's rdkafka_proto.h) */

struct fixture {
	rd_kafka_t *owner; /* owns the mock cluster's thread */
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap;
	rd_kafka_t *prod;
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK)
		fail_msg("%s=%s: %s", name, value, errstr);
}

/* A producer configured like the engine's (idempotent, linger). */
static rd_kafka_t *
producer_new(const char *bootstrap)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "enable.idempotence", "true");
	conf_set(conf, "linger.ms", "5");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr));
	if (rk == NULL)
		fail_msg("producer: %s", errstr);
	return rk;
}

static int
setup(void **state)
{
	char errstr[256];
	struct fixture *f = calloc(1, sizeof(*f));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "log_level", "3"); /* "no bootstrap.servers" */
	f->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr));
	assert_non_null(f->owner);
	f->mc = rd_kafka_mock_cluster_new(f->owner, 1);
	assert_non_null(f->mc);
	f->bootstrap = rd_kafka_mock_cluster_bootstraps(f->mc);
	f->prod = producer_new(f->bootstrap);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	rd_kafka_destroy(f->prod);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->owner);
	free(f);
	return 0;
}

static void
topic_create(struct fixture *f, const char *topic, int partitions)
{
	assert_int_equal(rd_kafka_mock_topic_create(f->mc, topic, partitions,
	    1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Whether the all-topics metadata (which creates nothing) lists topic. */
static bool
topic_listed(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md;
	bool found = false;
	assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 5000), 0);
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			found = true;
	rd_kafka_metadata_destroy(md);
	return found;
}

/* ---- prepare ------------------------------------------------------------ */

static void
test_prepare_existing(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	int32_t parts = -1;
	topic_create(f, INPUT, 6);
	topic_create(f, CL, 6);
	int64_t t0 = now_ms();
	int rc = changelog_prepare(f->prod, INPUT, CL, 20000, &parts, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("prepare: %d %s", rc, err);
	assert_int_equal(parts, 6);
	/* No controller: the cleanup.policy check is skipped, not waited
	 * for until the timeout. */
	assert_true(now_ms() - t0 < 5000);
}

static void
test_prepare_mismatch(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	int32_t parts = -1;
	topic_create(f, INPUT, 6);
	topic_create(f, CL, 5);
	assert_int_equal(changelog_prepare(f->prod, INPUT, CL, 20000, &parts,
	    err, sizeof(err)), -ECHRNG);
	printf("# %s\n", err);
	assert_non_null(strstr(err, "changelog topic " CL " has 5 partitions"));
	assert_non_null(strstr(err, "input topic " INPUT " has 6"));
	assert_int_equal(parts, 0);
}

/* prepare with a missing input topic says so, within timeout_ms. */
static void
assert_input_missing(struct fixture *f, int timeout_ms)
{
	char err[512] = "";
	int32_t parts = -1;
	assert_int_equal(changelog_prepare(f->prod, "no-such-input", CL,
	    timeout_ms, &parts, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "input topic no-such-input does not "
	    "exist"));
}

static void
test_prepare_no_input(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	int32_t parts = -1;
	topic_create(f, CL, 4);
	assert_input_missing(f, 3000);
	/* Missing, not timed out, also when the deadline passes while it
	 * looks again: with 100 ms a round trip, the first look answers,
	 * and the look after the 200 ms pause has no time left (on a
	 * loaded machine that happened with any timeout). */
	assert_int_equal(rd_kafka_mock_broker_set_rtt(f->mc, 1, 100),
	    RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_input_missing(f, 250);
	assert_int_equal(rd_kafka_mock_broker_set_rtt(f->mc, 1, 0),
	    RD_KAFKA_RESP_ERR_NO_ERROR);
	/* and looking did not create it (the mock auto-creates what a
	 * metadata request names) */
	assert_false(topic_listed(f->prod, "no-such-input"));
	assert_int_equal(changelog_prepare(f->prod, CL, CL, 1000, &parts,
	    err, sizeof(err)), -EINVAL);
}

/*
 * The changelog is missing: prepare asks the controller to create it.
 * The 2.0.2 mock cluster names broker 0 as its controller, which is none
 * of its brokers (1..N): -EOPNOTSUPP at once, saying how to make the
 * topic, and nothing auto-created on the way (the mock creates what a
 * metadata request names). Should a later mock create topics, the topic
 * must then be there with the input's count.
 */
static void
test_prepare_missing_changelog(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	int32_t parts = -1;
	topic_create(f, INPUT, 3);
	int64_t t0 = now_ms();
	int rc = changelog_prepare(f->prod, INPUT, CL, 10000, &parts, err,
	    sizeof(err));
	int64_t took = now_ms() - t0;
	printf("# prepare of a missing changelog: %d (%s) after %lld ms\n",
	    rc, err, (long long)took);
	if (rc == 0) {
		assert_int_equal(parts, 3);
		assert_true(topic_listed(f->prod, CL));
		return;
	}
	assert_int_equal(rc, -EOPNOTSUPP);
	assert_non_null(strstr(err, "changelog topic " CL " does not exist"));
	assert_non_null(strstr(err, "with 3 partitions and "
	    "cleanup.policy=compact"));
	assert_true(took < 3000);
	assert_false(topic_listed(f->prod, CL));
}

/* ---- produce and read --------------------------------------------------- */

#define NREC 40
#define PART 2

struct seen {
	int n;
	int64_t offsets[NREC];
	char keys[NREC][32];
	char values[NREC][32];
	bool tombstone[NREC];
	char instance[NREC][64]; /* "" when absent */
	int fail_at;		 /* offset at which fn fails, -1 never */
	volatile sig_atomic_t *stop;
	int stop_after;		 /* set *stop after this many, -1 never */
};

static int
collect(void *ctx, const struct changelog_record *rec)
{
	struct seen *s = ctx;
	assert_true(s->n < NREC);
	assert_int_equal(rec->partition, PART);
	if (rec->offset == s->fail_at)
		return -ECANCELED;
	int i = s->n++;
	s->offsets[i] = rec->offset;
	assert_true(rec->klen < sizeof(s->keys[i]));
	memcpy(s->keys[i], rec->key, rec->klen);
	s->tombstone[i] = rec->value == NULL;
	if (rec->value) {
		assert_true(rec->vlen < sizeof(s->values[i]));
		memcpy(s->values[i], rec->value, rec->vlen);
	} else {
		assert_int_equal(rec->vlen, 0);
	}
	if (rec->instance) {
		assert_true(rec->ilen < sizeof(s->instance[i]));
		memcpy(s->instance[i], rec->instance, rec->ilen);
	}
	if (s->stop_after >= 0 && s->n == s->stop_after)
		*s->stop = 1;
	return 0;
}

static void
seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->fail_at = -1;
	s->stop_after = -1;
}

/* Record i: key "entity-i"; every 5th (from 3) a tombstone, every 7th
 * (from 6) an empty value, the rest "state-i"; record 11 is produced
 * without the instance header (someone else's tool). */
static void
produce_all(struct fixture *f)
{
	char err[256];
	for (int i = 0; i < NREC; i++) {
		char key[32], val[32];
		snprintf(key, sizeof(key), "entity-%d", i);
		snprintf(val, sizeof(val), "state-%d", i);
		const char *v = i % 5 == 3 ? NULL : i % 7 == 6 ? "" : val;
		if (i == 11) {
			assert_int_equal(rd_kafka_producev(f->prod,
			    RD_KAFKA_V_TOPIC(CL), RD_KAFKA_V_PARTITION(PART),
			    RD_KAFKA_V_KEY(key, strlen(key)),
			    RD_KAFKA_V_VALUE(val, strlen(val)),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			    RD_KAFKA_V_END), 0);
			continue;
		}
		int rc = changelog_produce(f->prod, CL, PART, key,
		    strlen(key), v, v ? strlen(v) : 0, INSTANCE, NULL, err,
		    sizeof(err));
		if (rc != 0)
			fail_msg("produce %d: %d %s", i, rc, err);
	}
	assert_int_equal(rd_kafka_flush(f->prod, 10000), 0);
}

static void
check_seen(const struct seen *s, int first)
{
	assert_int_equal(s->n, NREC - first);
	for (int j = 0; j < s->n; j++) {
		int i = first + j;
		char key[32], val[32];
		snprintf(key, sizeof(key), "entity-%d", i);
		snprintf(val, sizeof(val), "state-%d", i);
		assert_int_equal(s->offsets[j], i);
		assert_string_equal(s->keys[j], key);
		assert_int_equal(s->tombstone[j], i % 5 == 3);
		if (i % 5 != 3)
			assert_string_equal(s->values[j],
			    i % 7 == 6 ? "" : val);
		assert_string_equal(s->instance[j], i == 11 ? "" : INSTANCE);
	}
}

/* A reader with user properties, one of which the reader overrides
 * (without enable.partition.eof the read could not see the end). */
static changelog_reader *
reader_open(struct fixture *f, const char *topic)
{
	const struct kclient_prop props[] = {
		{ "fetch.wait.max.ms", "20" },
		{ "enable.partition.eof", "false" },
		{ "isolation.level", "read_uncommitted" },
	};
	changelog_reader *r = NULL;
	char err[512];
	int rc = changelog_reader_open(f->bootstrap, props, 3, topic, &r, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("reader: %d %s", rc, err);
	return r;
}

static void
test_produce_and_read(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	char err[512] = "";
	int64_t end = -1;
	topic_create(f, INPUT, 4);
	topic_create(f, CL, 4);
	produce_all(f);
	changelog_reader *r = reader_open(f, CL);

	/* everything, in order */
	seen_init(&s);
	int rc = changelog_read(r, PART, 0, collect, &s, &end, NULL, 20000,
	    err, sizeof(err));
	if (rc != 0)
		fail_msg("read: %d %s", rc, err);
	assert_int_equal(end, NREC);
	check_seen(&s, 0);

	/* from the middle */
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, 17, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), 0);
	assert_int_equal(end, NREC);
	check_seen(&s, 17);

	/* from the end: nothing, at once */
	seen_init(&s);
	int64_t t0 = now_ms();
	assert_int_equal(changelog_read(r, PART, NREC, collect, &s, &end,
	    NULL, 20000, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(end, NREC);

	/* an empty partition: nothing, at once, *end = 0 */
	assert_int_equal(changelog_read(r, 0, 0, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(end, 0);
	assert_true(now_ms() - t0 < 2000);

	/* beyond the end */
	assert_int_equal(changelog_read(r, PART, NREC + 5, collect, &s, &end,
	    NULL, 20000, err, sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "offset 45 is beyond its end 40"));
	assert_int_equal(end, NREC + 5);

	/* the callback refuses record 9: its error, *end = 9 */
	seen_init(&s);
	s.fail_at = 9;
	assert_int_equal(changelog_read(r, PART, 4, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), -ECANCELED);
	assert_int_equal(end, 9);
	assert_int_equal(s.n, 5);
	assert_non_null(strstr(err, CL " [2]"));

	/* records written after the read started are not read: the end is
	 * the high watermark at the start (here: a second read sees them) */
	char perr[256];
	assert_int_equal(changelog_produce(f->prod, CL, PART, "late", 4,
	    "x", 1, INSTANCE, NULL, perr, sizeof(perr)), 0);
	assert_int_equal(rd_kafka_flush(f->prod, 10000), 0);
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, NREC - 1, collect, &s, &end,
	    NULL, 20000, err, sizeof(err)), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(end, NREC + 1);
	assert_string_equal(s.keys[1], "late");
	changelog_reader_close(r);
}

/* Prefetched partitions read as the others; one prefetched from another
 * offset, or twice, or never read, changes nothing. */
static void
test_prefetch(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	char err[512] = "";
	int64_t end = -1;
	topic_create(f, CL, 4);
	produce_all(f);
	changelog_reader *r = reader_open(f, CL);

	assert_int_equal(changelog_prefetch(r, PART, 0), 0);
	assert_int_equal(changelog_prefetch(r, PART, 0), 0);
	assert_int_equal(changelog_prefetch(r, PART, 3), -EBUSY);
	assert_int_equal(changelog_prefetch(r, 0, 0), 0);  /* empty */
	assert_int_equal(changelog_prefetch(r, 1, 0), 0);  /* never read */
	assert_int_equal(changelog_prefetch(r, -1, 0), -EINVAL);
	usleep(200 * 1000); /* let the fetches run */

	seen_init(&s);
	int rc = changelog_read(r, PART, 0, collect, &s, &end, NULL, 20000,
	    err, sizeof(err));
	if (rc != 0)
		fail_msg("read: %d %s", rc, err);
	assert_int_equal(end, NREC);
	check_seen(&s, 0);
	assert_int_equal(changelog_read(r, 0, 0, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), 0);
	assert_int_equal(end, 0);

	/* prefetched from 5, read from 17: from 17 */
	assert_int_equal(changelog_prefetch(r, PART, 5), 0);
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, 17, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), 0);
	check_seen(&s, 17);

	/* prefetched beyond the end: the read says so */
	assert_int_equal(changelog_prefetch(r, PART, NREC + 5), 0);
	assert_int_equal(changelog_read(r, PART, NREC + 5, collect, &s, &end,
	    NULL, 20000, err, sizeof(err)), -ERANGE);

	/* and again, prefetched, from the middle */
	assert_int_equal(changelog_prefetch(r, PART, 17), 0);
	usleep(100 * 1000);
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, 17, collect, &s, &end, NULL,
	    20000, err, sizeof(err)), 0);
	check_seen(&s, 17);
	changelog_reader_close(r); /* partition 1 still prefetched */
}

static void
test_produce_refuses(void **state)
{
	struct fixture *f = *state;
	char err[256];
	assert_int_equal(changelog_produce(f->prod, CL, 0, NULL, 0, "v", 1,
	    INSTANCE, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(changelog_produce(f->prod, CL, 0, "k", 1, "v", 1,
	    NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(changelog_produce(f->prod, CL, -1, "k", 1, "v", 1,
	    INSTANCE, NULL, err, sizeof(err)), -EINVAL);

	/* a full queue is -ENOBUFS */
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", f->bootstrap);
	conf_set(conf, "queue.buffering.max.messages", "3");
	rd_kafka_t *small = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr));
	assert_non_null(small);
	int rc = 0, i;
	for (i = 0; i < 10 && rc == 0; i++)
		rc = changelog_produce(small, CL, 0, "k", 1, "v", 1, INSTANCE,
		    NULL, err, sizeof(err));
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(i, 4);
	assert_non_null(strstr(err, CL " [0]"));
	rd_kafka_purge(small, RD_KAFKA_PURGE_F_QUEUE);
	rd_kafka_destroy(small);

	const struct kclient_prop bad[] = { { "fetch.max.bytez", "1" } };
	changelog_reader *r = NULL;
	assert_int_equal(changelog_reader_open(f->bootstrap, bad, 1, CL, &r,
	    err, sizeof(err)), -EINVAL);
	assert_null(r);
	assert_non_null(strstr(err, "kafka.consumer_properties: "
	    "property \"fetch.max.bytez\" refused"));
}

static void
test_stop_and_timeout(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	char err[512] = "";
	int64_t end = -1;
	volatile sig_atomic_t stop = 0;
	topic_create(f, CL, 4);
	produce_all(f);
	changelog_reader *r = reader_open(f, CL);

	/* stop raised by the callback after 3 records */
	seen_init(&s);
	s.stop = &stop;
	s.stop_after = 3;
	assert_int_equal(changelog_read(r, PART, 0, collect, &s, &end, &stop,
	    20000, err, sizeof(err)), -EINTR);
	assert_int_equal(s.n, 3);
	assert_int_equal(end, 3);

	/* already raised: nothing read */
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, 5, collect, &s, &end, &stop,
	    20000, err, sizeof(err)), -EINTR);
	assert_int_equal(s.n, 0);
	assert_int_equal(end, 5);

	/* the broker down: the timeout ends the read, on time */
	stop = 0;
	rd_kafka_mock_broker_set_down(f->mc, 1);
	seen_init(&s);
	int64_t t0 = now_ms();
	int rc = changelog_read(r, PART, 0, collect, &s, &end, &stop, 1500,
	    err, sizeof(err));
	int64_t took = now_ms() - t0;
	printf("# broker down: %d (%s) after %lld ms\n", rc, err,
	    (long long)took);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(took >= 1000 && took < 3500);
	rd_kafka_mock_broker_set_up(f->mc, 1);
	changelog_reader_close(r);
}

static void
test_missing_and_vanished(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	char err[512] = "";
	int64_t end = -1;

	/* a topic that is not there (set_error: else the mock would
	 * auto-create it when asked) */
	rd_kafka_mock_topic_set_error(f->mc, "gone",
	    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	changelog_reader *r = reader_open(f, "gone");
	seen_init(&s);
	assert_int_equal(changelog_read(r, 0, 0, collect, &s, &end, NULL,
	    10000, err, sizeof(err)), -ENOENT);
	printf("# %s\n", err);
	assert_non_null(strstr(err, "gone [0]"));
	changelog_reader_close(r);

	/* a partition that is not there */
	topic_create(f, CL, 4);
	produce_all(f);
	r = reader_open(f, CL);
	assert_int_equal(changelog_read(r, 7, 0, collect, &s, &end, NULL,
	    10000, err, sizeof(err)), -ENOENT);

	/* deleted while reading: the reader knows the topic (a read done),
	 * then the metadata says it is gone and fetches fail as they do for a
	 * deleted topic (UNKNOWN_TOPIC_OR_PART); ListOffsets, answered from
	 * the mock's partitions, still works, so the read starts and must
	 * notice while fetching, long before its timeout; and closing the
	 * reader afterwards must not hang (it did in librdkafka 2.0.2 when
	 * the vanished partition was stopped) */
	seen_init(&s);
	assert_int_equal(changelog_read(r, PART, 0, collect, &s, &end, NULL,
	    10000, err, sizeof(err)), 0);
	assert_int_equal(s.n, NREC);
	rd_kafka_resp_err_t errs[500];
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		errs[i] = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
	rd_kafka_mock_push_request_errors_array(f->mc, FETCH_API_KEY,
	    sizeof(errs) / sizeof(errs[0]), errs);
	rd_kafka_mock_topic_set_error(f->mc, CL,
	    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	seen_init(&s);
	int64_t t0 = now_ms();
	int rc = changelog_read(r, PART, 0, collect, &s, &end, NULL, 20000,
	    err, sizeof(err));
	int64_t took = now_ms() - t0;
	printf("# vanished: %d (%s) after %lld ms, %d records\n", rc, err,
	    (long long)took, s.n);
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, CL " [2]"));
	assert_true(took < 10000);
	assert_int_equal(end, 0);
	rd_kafka_mock_clear_request_errors(f->mc, FETCH_API_KEY);
	changelog_reader_close(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prepare_existing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prepare_mismatch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prepare_no_input, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_prepare_missing_changelog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_produce_and_read, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prefetch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_produce_refuses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stop_and_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_vanished,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_DEBUG, LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
