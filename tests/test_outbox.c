/*
 * test_outbox: the outbox's record format and its life cycle
 * (consumer/service/outbox): stage -> commit in a real LMDB store ->
 * produce -> delivery report -> deleted with the next commit, and
 * records read back from the store after a "restart"; a batch committed
 * in the background (service/committer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/committer.h"
#include "service/outbox.h"
#include "store/store.h"

static void
test_record_round_trip(void **state)
{
	(void)state;
	struct outbox_msg o = { .kind = OUTBOX_OUTCOME,
		.key = (const uint8_t *)"sha256:ab", .klen = 9,
		.value = (const uint8_t *)"\xc3\x01payload", .vlen = 9 };
	size_t len;
	uint8_t *rec = outbox_record(&o, &len);
	assert_int_equal(len, 1 + 2 + 9 + 9);
	struct outbox_msg m;
	assert_int_equal(outbox_record_parse(rec, len, &m), 0);
	assert_int_equal(m.kind, OUTBOX_OUTCOME);
	assert_int_equal(m.klen, 9);
	assert_memory_equal(m.key, "sha256:ab", 9);
	assert_int_equal(m.vlen, 9);
	assert_memory_equal(m.value, "\xc3\x01payload", 9);
	free(rec);

	struct outbox_msg d = { .kind = OUTBOX_DEAD_LETTER,
		.key = NULL, .klen = 0, .value = (const uint8_t *)"\x00\xff",
		.vlen = 2, .error = "bad magic", .elen = 9,
		.topic = "workload-events", .tlen = 15, .partition = 7,
		.offset = 0x123456789aLL };
	rec = outbox_record(&d, &len);
	assert_int_equal(outbox_record_parse(rec, len, &m), 0);
	assert_int_equal(m.kind, OUTBOX_DEAD_LETTER);
	assert_int_equal(m.klen, 0);
	assert_int_equal(m.elen, 9);
	assert_memory_equal(m.error, "bad magic", 9);
	assert_memory_equal(m.topic, "workload-events", 15);
	assert_int_equal(m.partition, 7);
	assert_int_equal(m.offset, 0x123456789aLL);
	assert_int_equal(m.vlen, 2);
	assert_memory_equal(m.value, "\x00\xff", 2);

	/* Every truncation of a well-formed record is refused or parses
	 * within its bounds: never a read past the end. */
	for (size_t cut = 0; cut < len; cut++) {
		int rc = outbox_record_parse(rec, cut, &m);
		if (rc == 0)
			assert_true(m.value + m.vlen <= rec + cut);
		else
			assert_int_equal(rc, -EINVAL);
	}
	assert_int_equal(outbox_record_parse(rec, 14, &m), -EINVAL);
	free(rec);
	assert_int_equal(outbox_record_parse((const uint8_t *)"X\0\0", 3, &m),
	    -EINVAL);
}

/* Changelog records: their partition survives the round trip, an empty
 * value is a tombstone, and a truncated one is refused. */
static void
test_changelog_record(void **state)
{
	(void)state;
	struct outbox_msg c = { .kind = OUTBOX_CHANGELOG, .partition = 5,
		.key = (const uint8_t *)"CONTAINER_IMAGE:ab", .klen = 18,
		.value = (const uint8_t *)"\x02rec", .vlen = 4 };
	size_t len;
	uint8_t *rec = outbox_record(&c, &len);
	assert_int_equal(len, 1 + 4 + 2 + 18 + 4);
	struct outbox_msg m;
	assert_int_equal(outbox_record_parse(rec, len, &m), 0);
	assert_int_equal(m.kind, OUTBOX_CHANGELOG);
	assert_int_equal(m.partition, 5);
	assert_memory_equal(m.key, "CONTAINER_IMAGE:ab", 18);
	assert_int_equal(m.vlen, 4);
	assert_int_equal(outbox_record_parse(rec, 4, &m), -EINVAL);
	free(rec);
	c.value = NULL;
	c.vlen = 0;
	rec = outbox_record(&c, &len);
	assert_int_equal(outbox_record_parse(rec, len, &m), 0);
	assert_int_equal(m.vlen, 0);
	free(rec);
}

/* Dropped changelog records count as acknowledged (offsets may go on)
 * without a checkpoint; only that partition's go. */
static bool
never(void *ctx, int32_t p)
{
	(void)ctx;
	(void)p;
	return false;
}

static void
count_ckpt(void *ctx, int32_t p, int64_t next)
{
	(void)p;
	(void)next;
	(*(int *)ctx)++;
}

/* n changelog records read back from the store, sequences 1..n, of
 * partitions 0, 1, 0, 1, ... */
static void
load_changelog_records(outbox *ob, int n)
{
	for (int i = 0; i < n; i++) {
		struct outbox_msg c = { .kind = OUTBOX_CHANGELOG,
			.partition = i % 2, .key = (const uint8_t *)"k",
			.klen = 1, .value = (const uint8_t *)"v", .vlen = 1 };
		size_t len;
		uint8_t *rec = outbox_record(&c, &len);
		outbox_load(ob, (uint64_t)i + 1, rec, len);
		free(rec);
	}
}

static void
test_changelog_drop(void **state)
{
	(void)state;
	struct snapshot *snap = calloc(1, sizeof(*snap));
	struct outbox_topics t = { "out", "dlq", "cl", "me", never, NULL };
	outbox *ob = outbox_new(&t, snap);
	load_changelog_records(ob, 4);
	assert_int_equal(outbox_live(ob), 4);
	assert_int_equal(outbox_live_changelog(ob), 4);
	assert_int_equal(outbox_last_seq(ob), 4);
	assert_int_equal(outbox_unacked_min(ob), 1);
	assert_true(outbox_changelog_pending(ob, 0));
	assert_int_equal(outbox_drop_changelog(ob, 0), 2);
	assert_false(outbox_changelog_pending(ob, 0));
	assert_true(outbox_changelog_pending(ob, 1));
	assert_int_equal(outbox_unacked_min(ob), 2);
	assert_int_equal(outbox_live(ob), 2);
	assert_true(outbox_changes(ob)); /* their deletions */
	int n = 0;
	outbox_checkpoints(ob, count_ckpt, &n);
	assert_int_equal(n, 0);
	assert_int_equal(outbox_drop_changelog(ob, 1), 2);
	assert_int_equal(outbox_unacked_min(ob), UINT64_MAX);
	outbox_free(ob);
	free(snap);
}

/* Partition 1 is ours, the others are not (lost, not assigned yet). */
static bool
only_one(void *ctx, int32_t p)
{
	(void)ctx;
	return p == 1;
}

/*
 * What the shutdown's drain waits for: outcomes and the changelog
 * records of partitions that are ours, not those held for a partition
 * lost while the broker was away (they cannot go; the store keeps
 * them). Waiting for those spent the drain's whole budget.
 */
static void
test_sendable(void **state)
{
	(void)state;
	struct snapshot *snap = calloc(1, sizeof(*snap));
	struct outbox_topics t = { "out", "dlq", "cl", "me", only_one, NULL };
	outbox *ob = outbox_new(&t, snap);
	load_changelog_records(ob, 4);
	struct outbox_msg o = { .kind = OUTBOX_OUTCOME,
		.key = (const uint8_t *)"o", .klen = 1,
		.value = (const uint8_t *)"{}", .vlen = 2 };
	size_t len;
	uint8_t *rec = outbox_record(&o, &len);
	outbox_load(ob, 5, rec, len);
	free(rec);
	assert_int_equal(outbox_live(ob), 5);
	/* partition 1's two and the outcome */
	assert_int_equal(outbox_sendable(ob), 3);
	assert_int_equal(outbox_drop_changelog(ob, 1), 2);
	assert_int_equal(outbox_sendable(ob), 1);
	assert_int_equal(outbox_live(ob), 3);
	outbox_free(ob);
	free(snap);
}

/* The bytes of the changelog records not yet in Kafka (what
 * engine.max_changelog_bytes bounds): staged and queued ones count,
 * outcomes do not, unstaged, dropped and reset ones stop counting. */
static uint8_t *
changelog_rec(int32_t p, size_t vlen, size_t *len)
{
	static const uint8_t v[64];
	struct outbox_msg c = { .kind = OUTBOX_CHANGELOG, .partition = p,
		.key = (const uint8_t *)"CONTAINER_IMAGE:ab", .klen = 18,
		.value = v, .vlen = vlen };
	return outbox_record(&c, len);
}

static void
test_changelog_bytes(void **state)
{
	(void)state;
	struct snapshot *snap = calloc(1, sizeof(*snap));
	struct outbox_topics t = { "out", "dlq", "cl", "me", never, NULL };
	outbox *ob = outbox_new(&t, snap);
	size_t l1, l2, l3, lo;
	uint8_t *r1 = changelog_rec(0, 10, &l1);
	uint8_t *r2 = changelog_rec(1, 30, &l2);
	outbox_load(ob, 1, r1, l1);
	outbox_load(ob, 2, r2, l2);
	free(r1);
	free(r2);
	assert_int_equal(outbox_live_changelog_bytes(ob), l1 + l2);
	struct outbox_msg o = { .kind = OUTBOX_OUTCOME,
		.key = (const uint8_t *)"k", .klen = 1,
		.value = (const uint8_t *)"v", .vlen = 1 };
	uint8_t *ro = outbox_record(&o, &lo);
	outbox_stage(ob, ro, lo);
	uint8_t *r3 = changelog_rec(1, 60, &l3);
	outbox_stage(ob, r3, l3);
	assert_int_equal(outbox_live(ob), 4);
	assert_int_equal(outbox_live_changelog(ob), 3);
	assert_int_equal(outbox_live_changelog_bytes(ob), l1 + l2 + l3);
	outbox_unstage(ob, 1); /* the newest: the changelog record */
	assert_int_equal(outbox_live_changelog(ob), 2);
	assert_int_equal(outbox_live_changelog_bytes(ob), l1 + l2);
	outbox_unstage(ob, 1); /* the outcome */
	assert_int_equal(outbox_live_changelog_bytes(ob), l1 + l2);
	assert_int_equal(outbox_drop_changelog(ob, 1), 1);
	assert_int_equal(outbox_live_changelog_bytes(ob), l1);
	r3 = changelog_rec(0, 5, &l3);
	outbox_stage(ob, r3, l3);
	assert_int_equal(outbox_live_changelog_bytes(ob), l1 + l3);
	outbox_reset(ob);
	assert_int_equal(outbox_live_changelog(ob), 0);
	assert_int_equal(outbox_live_changelog_bytes(ob), 0);
	outbox_free(ob);
	free(snap);
}

static void
test_long_strings_cut(void **state)
{
	(void)state;
	size_t big = 70000;
	char *s = malloc(big);
	memset(s, 'e', big);
	struct outbox_msg d = { .kind = OUTBOX_DEAD_LETTER, .error = s,
		.elen = big, .topic = "t", .tlen = 1 };
	size_t len;
	struct outbox_msg m;
	uint8_t *rec = outbox_record(&d, &len);
	assert_int_equal(outbox_record_parse(rec, len, &m), 0);
	assert_int_equal(m.elen, 65535);
	assert_int_equal(m.vlen, 0);
	free(rec);
	free(s);
}

struct fixture {
	char dir[64];
	store *st;
	tracker *t;
	struct snapshot counters;
	outbox *ob;
};

static const struct outbox_topics topics = { "out", "dlq", "", "", NULL, NULL };

static void
open_store(struct fixture *f)
{
	char err[256];
	struct tracker_config tc;
	tracker_config_defaults(&tc);
	f->t = tracker_new(&tc);
	assert_int_equal(store_open(f->dir, &(struct store_options){ 0 },
	    &f->st, err, sizeof(err)), 0);
	struct store_recovery rec;
	assert_int_equal(store_recover(f->st, f->t, 0, &rec, err,
	    sizeof(err)), 0);
}

static void
close_store(struct fixture *f)
{
	store_close(f->st);
	tracker_free(f->t);
}

/* A fresh store in a temporary directory and an outbox of topics. */
static void
fixture_open(struct fixture *f, const struct outbox_topics *topics_)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sbomd-test-outbox-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	open_store(f);
	f->ob = outbox_new(topics_, &f->counters);
}

static void
fixture_close(struct fixture *f)
{
	outbox_free(f->ob);
	close_store(f);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

static int
commit(struct fixture *f)
{
	char err[256];
	struct store_batch b = { 0 };
	outbox_batch(f->ob, &b);
	int rc = store_commit(f->st, &b, err, sizeof(err));
	if (rc == 0)
		outbox_committed(f->ob);
	return rc;
}

static void
stage_outcome(outbox *ob, const char *key)
{
	struct outbox_msg o = { .kind = OUTBOX_OUTCOME,
		.key = (const uint8_t *)key, .klen = strlen(key),
		.value = (const uint8_t *)"v", .vlen = 1 };
	size_t len;
	uint8_t *rec = outbox_record(&o, &len);
	outbox_stage(ob, rec, len);
}

static int
load_one(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	assert_null(ref);
	outbox_load(ctx, seq, data, len);
	return 0;
}

struct seqs {
	uint64_t v[8];
	size_t n;
};

static int
note_seq(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	struct seqs *q = ctx;
	(void)data;
	(void)ref;
	(void)len;
	if (q->n < 8)
		q->v[q->n++] = seq;
	return 0;
}

/* A delivery report as librdkafka hands it to dr_msg_cb. */
static void
report(outbox *ob, uint64_t seq, rd_kafka_resp_err_t err)
{
	rd_kafka_message_t m;
	memset(&m, 0, sizeof(m));
	m._private = (void *)(uintptr_t)seq;
	m.err = err;
	outbox_delivered(ob, &m);
}

static void
test_life_cycle(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, &topics);

	assert_false(outbox_changes(f.ob));
	stage_outcome(f.ob, "a");
	stage_outcome(f.ob, "b");
	stage_outcome(f.ob, "c");
	assert_true(outbox_changes(f.ob));
	assert_int_equal(outbox_live(f.ob), 3);
	assert_int_equal(commit(&f), 0);
	assert_false(outbox_changes(f.ob));
	assert_int_equal(outbox_live(f.ob), 3);
	assert_int_equal(store_outbox_count(f.st), 3);

	/* Sequences are the store's: read them back. */
	struct seqs q = { 0 };
	assert_int_equal(store_outbox_foreach(f.st, note_seq, &q), 0);
	assert_int_equal(q.n, 3);

	report(f.ob, q.v[1], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(f.counters.delivered, 1);
	assert_int_equal(outbox_live(f.ob), 2);
	assert_true(outbox_changes(f.ob)); /* the deletion waits */
	report(f.ob, q.v[2], RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
	assert_int_equal(f.counters.produce_errors, 1);
	assert_int_equal(outbox_live(f.ob), 2);
	report(f.ob, q.v[2] + 100, RD_KAFKA_RESP_ERR_NO_ERROR); /* unknown */
	assert_int_equal(f.counters.delivered, 1);
	assert_int_equal(commit(&f), 0);
	assert_int_equal(store_outbox_count(f.st), 2);

	/* A restart reads back exactly the undelivered records. */
	outbox_free(f.ob);
	close_store(&f);
	open_store(&f);
	f.ob = outbox_new(&topics, &f.counters);
	assert_int_equal(store_outbox_foreach(f.st, load_one, f.ob), 0);
	assert_int_equal(outbox_live(f.ob), 2);
	report(f.ob, q.v[1], RD_KAFKA_RESP_ERR_NO_ERROR); /* gone already */
	assert_int_equal(outbox_live(f.ob), 2);
	report(f.ob, q.v[0], RD_KAFKA_RESP_ERR_NO_ERROR);
	report(f.ob, q.v[2], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(outbox_live(f.ob), 0);
	assert_int_equal(commit(&f), 0);
	assert_int_equal(store_outbox_count(f.st), 0);

	fixture_close(&f);
}


/*
 * A batch committed in the background (committer.h): what is staged and
 * delivered while it commits is not in it, and goes with the next one.
 */
static void
test_background_commit(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, &topics);
	int wake[2];
	assert_int_equal(pipe(wake), 0);
	committer *c = NULL;
	assert_int_equal(committer_start(f.st, wake[1], &c), 0);

	stage_outcome(f.ob, "x");
	assert_int_equal(commit(&f), 0);
	struct seqs q = { 0 };
	assert_int_equal(store_outbox_foreach(f.st, note_seq, &q), 0);
	assert_int_equal(q.n, 1);

	stage_outcome(f.ob, "a");
	stage_outcome(f.ob, "b");
	struct store_batch b = { 0 };
	outbox_batch(f.ob, &b);
	committer_submit(c, &b);
	assert_true(committer_busy(c));
	/* Meanwhile: a new record, and x delivered. */
	stage_outcome(f.ob, "c");
	report(f.ob, q.v[0], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_true(outbox_changes(f.ob));

	bool done = false;
	char err[256];
	assert_int_equal(committer_result(c, true, &done, err, sizeof(err)),
	    0);
	assert_true(done);
	assert_false(committer_busy(c));
	char byte;
	assert_int_equal(read(wake[0], &byte, 1), 1);
	outbox_committed(f.ob);
	/* x, a and b are stored; c and x's deletion wait. */
	assert_int_equal(store_outbox_count(f.st), 3);
	assert_int_equal(outbox_live(f.ob), 3); /* a, b queued; c staged */
	assert_true(outbox_changes(f.ob));
	assert_int_equal(outbox_last_seq(f.ob), q.v[0] + 2);

	assert_int_equal(commit(&f), 0);
	assert_false(outbox_changes(f.ob));
	assert_int_equal(store_outbox_count(f.st), 3); /* a, b, c */
	struct seqs r = { 0 };
	assert_int_equal(store_outbox_foreach(f.st, note_seq, &r), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.v[0], q.v[0] + 1);
	assert_int_equal(r.v[2], q.v[0] + 3);

	/* Nothing submitted: nothing to take; stopping is quick. */
	assert_int_equal(committer_result(c, false, &done, err, sizeof(err)),
	    0);
	assert_false(done);
	committer_stop(c);
	close(wake[0]);
	close(wake[1]);
	fixture_close(&f);
}


static void
stage_changelog(outbox *ob, int32_t partition, const char *key)
{
	struct outbox_msg c = { .kind = OUTBOX_CHANGELOG,
		.partition = partition, .key = (const uint8_t *)key,
		.klen = strlen(key), .value = (const uint8_t *)"r", .vlen = 1 };
	size_t len;
	uint8_t *rec = outbox_record(&c, &len);
	outbox_stage(ob, rec, len);
}

/* The changelog topic deleted while running: its records are refused,
 * the error shows (for /readyz) until every refused partition works
 * again, and outcomes are delivered meanwhile. */
static void
test_changelog_gone_shows_and_blocks_nothing(void **state)
{
	(void)state;
	static const struct outbox_topics cl = { "out", "dlq", "state", "me",
		NULL, NULL };
	struct fixture f;
	fixture_open(&f, &cl);
	stage_changelog(f.ob, 3, "CONTAINER_IMAGE:00");
	stage_changelog(f.ob, 5, "CONTAINER_IMAGE:01");
	stage_outcome(f.ob, "a");
	assert_int_equal(commit(&f), 0);
	struct seqs q = { 0 };
	assert_int_equal(store_outbox_foreach(f.st, note_seq, &q), 0);
	assert_int_equal(q.n, 3);

	report(f.ob, q.v[0], RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION);
	report(f.ob, q.v[1], RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	assert_string_equal(f.counters.changelog_error,
	    "state: Local: Unknown partition");
	report(f.ob, q.v[2], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(f.counters.delivered, 1);
	assert_int_equal(outbox_live(f.ob), 2);
	/* A timeout is no sign of a missing topic. */
	report(f.ob, q.v[0], RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
	/* One partition works again: the other still does not. */
	report(f.ob, q.v[0], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_string_not_equal(f.counters.changelog_error, "");
	report(f.ob, q.v[1], RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_string_equal(f.counters.changelog_error, "");
	assert_int_equal(outbox_live(f.ob), 0);

	fixture_close(&f);
}

/* Exactly-once: staged records are queued without the store, produced
 * only inside a transaction, and forgotten by a reset. */
static void
test_transactional(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, &topics);
	outbox_set_transactional(f.ob);
	stage_outcome(f.ob, "a");
	stage_outcome(f.ob, "b");
	outbox_take_staged(f.ob);
	assert_int_equal(outbox_unsent(f.ob), 2);
	assert_int_equal(outbox_live(f.ob), 2);
	assert_false(outbox_changes(f.ob));
	/* Outside a transaction nothing goes (no producer is touched). */
	assert_int_equal(outbox_produce(f.ob, NULL, NULL), -EAGAIN);
	assert_int_equal(outbox_unsent(f.ob), 2);
	/* Never written to the store. */
	assert_int_equal(commit(&f), 0);
	assert_int_equal(store_outbox_count(f.st), 0);
	outbox_reset(f.ob);
	assert_int_equal(outbox_live(f.ob), 0);
	assert_int_equal(outbox_unsent(f.ob), 0);
	stage_outcome(f.ob, "c");
	outbox_take_staged(f.ob);
	assert_int_equal(outbox_unsent(f.ob), 1);

	fixture_close(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_changelog_record),
		cmocka_unit_test(test_changelog_drop),
		cmocka_unit_test(test_changelog_bytes),
		cmocka_unit_test(test_sendable),
		cmocka_unit_test(test_long_strings_cut),
		cmocka_unit_test(test_life_cycle),
		cmocka_unit_test(test_background_commit),
		cmocka_unit_test(test_changelog_gone_shows_and_blocks_nothing),
		cmocka_unit_test(test_transactional),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
