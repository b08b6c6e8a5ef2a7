/*
 * engine: the service loop of `sbomd run` (docs/architecture.md "Data
 * flow and threads"). One thread, the engine thread, owns the tracker,
 * the store, the Kafka clients (kafkaio.c) and the outbox (outbox.c);
 * the committer's thread writes one batch at a time to the store for it.
 * Each iteration:
 *
 *   1. serves the producer's delivery reports (delivered outbox records
 *      are deleted with the next commit);
 *   2. takes the scan pool's completions: tracker_complete, outcome
 *      (scans.c);
 *   3. takes a batch of input and applies it (ingest.c);
 *   4. pops due entities into scan jobs while the pool has room;
 *   5. commits everything since the last commit in ONE LMDB transaction
 *      (the tracker's dirty entries, new outbox records, deletions of
 *      delivered ones), at most COMMIT_EVERY_MS after the first of those
 *      changes or once engine.batch_max events wait (group commit); while
 *      the input is behind, at most every engine.commit_interval. At
 *      least once, the transaction runs on the committer's thread
 *      (committer.h) while the engine goes on with the next input; the
 *      next commit starts when it has ended;
 *   6. only then (at the start of a later iteration, once the committer
 *      woke the engine) stores those events' offsets and produces the
 *      new outbox records.
 * A crash anywhere loses nothing: an event whose offset was stored has its
 * effect in the store; an outcome in the store is re-sent after a restart
 * until its delivery report arrives (at-least-once).
 *
 * Waiting: poll(2) on the wake pipe (librdkafka queue events, HTTP
 * requests) and on the pool's wakeup fd, until the next heap entry is due
 * or the pending commit is, capped at 100 ms.
 *
 * Backpressure: when the outbox holds more than engine.max_outbox
 * outcomes and dead letters, more than engine.max_changelog_bytes of
 * changelog records, the heap more than engine.max_pending entries, or
 * the tracker state.max_entities entities (in any state: DONE and
 * FAILED ones count, they hold memory until forgotten), the assigned
 * partitions are paused; they resume below 90% of all four. The entity
 * bound is checked after each batch, so it may be passed by up to one
 * batch (engine.batch_max events). Changelog records have their own bound: every committed change
 * makes one, so under load a whole poll batch's worth (engine.batch_max)
 * is always on its way to the broker; counted with the outcomes they
 * would pause the input after nearly every batch. Their bound is in
 * bytes because it bounds memory (each record is held once by the outbox
 * and once more by librdkafka until it is acknowledged).
 *
 * Shutdown (stop set: SIGTERM, SIGINT or SIGHUP): stop fetching, abort
 * running scans (they go back to QUEUED with their attempt unchanged),
 * commit, drain the outbox, commit the stored offsets, leave the group,
 * all by one deadline, engine.shutdown_timeout from the start (the drain
 * ends at three quarters of it); each step is given up at its deadline,
 * so a broker gone cannot hold the exit: the last revoke's wait for the
 * changelog ends at it too (ownership.c), and the Kafka clients' destroy
 * is waited for a little past it at most (kafkaio.c, DESTROY_GRACE_MS).
 */
#define _GNU_SOURCE /* pipe2 */
#include "service/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/engine_int.h"
#include "service/log.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/textbuf.h"
#include "util/xmalloc.h"

#define WAIT_CAP_MS 100
#define PUBLISH_EVERY_MS 250
/* Group commit: the changes of several loop iterations share one durable
 * transaction, committed this long after the first of them at the
 * latest (or at engine.batch_max events): one fdatasync per 10 ms under
 * load instead of one per poll. The latency it adds to an outcome is at
 * most this, except while the engine is behind (commit_due). */
#define COMMIT_EVERY_MS 10
#define COMMIT_RETRY_MS 1000
#define COMMIT_FAIL_LOG_MS 10000

/* ---- time --------------------------------------------------------------- */

int64_t
engine_now(engine *e)
{
	int64_t jump = 0, now;
	if (e->t == NULL)
		return clock_watch_now(&e->clock, NULL);
	now = tracker_clock_now(e->t, &e->clock, &jump);
	if (jump != 0) {
		char by[32];
		snprintf(by, sizeof(by), "%+.3f", (double)jump / 1000.0);
		log_kv(LOG_WARN, "wall clock jumped: due times moved with it",
		    "seconds", by, (char *)NULL);
		e->snap->clock_jumps++;
	}
	return now;
}

/* ---- committing --------------------------------------------------------- */

static void commit_start(engine *e);
static int commit_collect(engine *e, bool wait, char *err, size_t errlen);

/* A commit failed (why): /readyz and the log say so (the log at most
 * every COMMIT_FAIL_LOG_MS) and, unless the service is ending, the input
 * is held COMMIT_RETRY_MS: true when the commit is to be tried again. */
static bool
commit_failed(engine *e, const char *why)
{
	e->snap->commit_failures++;
	/* Alive, waiting: /healthz stays 200, /readyz says why. */
	snprintf(e->snap->commit_error, sizeof(e->snap->commit_error),
	    "%.250s", why);
	engine_publish(e);
	int64_t now = clock_mono_ms();
	if (now - e->last_commit_fail_log > COMMIT_FAIL_LOG_MS) {
		log_kv(LOG_ERROR, "state commit failed, retrying", "error",
		    why, (char *)NULL);
		e->last_commit_fail_log = now;
	}
	if (*e->stop || kio_fatal(e->k, NULL, 0) || e->own.fatal[0] != '\0')
		return false;
	kio_hold_input(e->k);
	clock_sleep_ms(COMMIT_RETRY_MS);
	return true;
}

/* Commits what waits, now: at least once through the committer (a
 * refused commit is tried again there, see commit_finish), exactly once
 * on this thread (tried again by commit_until_done). */
static int
commit(engine *e, char *err, size_t errlen)
{
	int rc = commit_collect(e, true, err, errlen);
	if (rc != 0)
		return rc;
	if (!e->txn.on) {
		commit_start(e);
		return commit_collect(e, true, err, errlen);
	}
	e->commit_started_ms = clock_mono_ms();
	int64_t t0 = clock_mono_us();
	rc = txn_commit(e, err, errlen);
	hist_observe(&e->snap->commit_duration,
	    (double)(clock_mono_us() - t0) / 1e6);
	if (rc != 0)
		return rc;
	e->snap->commit_error[0] = '\0';
	e->first_change_ms = 0;
	e->uncommitted = 0;
	e->snap->commits++;
	return 0;
}

static int commit_until_done(engine *e, char *err, size_t errlen);

int
engine_commit_now(engine *e, char *err, size_t errlen)
{
	return commit_until_done(e, err, errlen);
}

/*
 * The group commit in the background (at-least-once): commit_start
 * encodes and hands the batch to the committer and goes on with the
 * input; commit_collect takes the result when the committer wakes the
 * engine up (or waits for it: commit, when a rebalance or the shutdown
 * needs everything durable now) and finishes it (the outbox's records
 * get their sequences and go to Kafka, the batch's offsets are stored or
 * sealed). Meanwhile the tracker's new
 * changes, the newly staged outbox records and the newly noted offsets
 * wait for the next batch; the batch's offsets are sealed as
 * KIO_TAG_PENDING, which nothing releases before the commit is durable.
 */
static void
commit_start(engine *e)
{
	if (!outbox_changes(e->ob) && tracker_dirty_count(e->t) == 0) {
		/* Only offsets of events that changed nothing: nothing to
		 * make durable first. */
		if (e->own.on)
			kio_seal_offsets(e->k, outbox_last_seq(e->ob));
		else
			kio_store_offsets(e->k);
		e->first_change_ms = 0;
		e->uncommitted = 0;
		return;
	}
	struct store_batch *b = &e->cm_batch;
	memset(b, 0, sizeof(*b));
	e->cm_t0 = clock_mono_us();
	e->commit_started_ms = clock_mono_ms();
	b->nentries = store_collect_dirty(e->t, &e->dirty);
	b->entries = e->dirty.entries;
	(void)own_stage_changes(e, b->entries, b->nentries);
	outbox_batch(e->ob, b);
	own_commit_meta(e, b);
	tracker_clear_dirty(e->t);
	kio_seal_offsets(e->k, KIO_TAG_PENDING);
	/* The next batch is encoded into the other buffers. */
	struct store_dirty d = e->dirty;
	e->dirty = e->dirty_spare;
	e->dirty_spare = d;
	e->first_change_ms = 0;
	e->uncommitted = 0;
	committer_submit(e->cm, b);
}

/* The background commit ended with rc (why): a failed one is tried again
 * here, on the engine thread, until it succeeds or stop is set (as
 * commit_until_done does). */
static int
commit_finish(engine *e, int rc, char *why, size_t whylen)
{
	while (rc != 0) {
		/* Given up: its offsets stay sealed as pending, so nothing
		 * after it is stored either; the next start reads the
		 * input again from before it. Its outbox records stay
		 * staged, for whatever commit comes next. */
		if (!commit_failed(e, why)) {
			outbox_unstage(e->ob, 0);
			return rc;
		}
		rc = store_commit(e->st, &e->cm_batch, why, whylen);
	}
	e->snap->commit_error[0] = '\0';
	hist_observe(&e->snap->commit_duration,
	    (double)(clock_mono_us() - e->cm_t0) / 1e6);
	outbox_committed(e->ob);
	own_committed(e);
	if (e->own.on) {
		kio_retag_offsets(e->k, KIO_TAG_PENDING, outbox_last_seq(e->ob));
	} else {
		kio_retag_offsets(e->k, KIO_TAG_PENDING, 0);
		kio_release_offsets(e->k, UINT64_MAX);
	}
	e->snap->commits++;
	outbox_produce(e->ob, kio_producer(e->k), kio_changelog_topic(e->k));
	return 0;
}

/* Takes the background commit's result when it has one (waiting for it
 * when wait): 0, or its error once given up (commit_finish). */
static int
commit_collect(engine *e, bool wait, char *err, size_t errlen)
{
	if (!committer_busy(e->cm))
		return 0;
	char why[512] = "";
	bool done;
	int rc = committer_result(e->cm, wait, &done, why, sizeof(why));
	if (!done)
		return 0;
	rc = commit_finish(e, rc, why, sizeof(why));
	if (rc != 0)
		errbuf_set(err, errlen, "%s", why);
	return rc;
}

void
engine_commit_settle(engine *e)
{
	(void)commit_collect(e, true, NULL, 0);
}

/* Commits, retrying while the store refuses (full disk): input is not
 * consumed meanwhile; the snapshot is published at each try, so the
 * liveness probe sees a live engine and /readyz the store's error.
 * Returns 0, or the error once the service is ending. */
static int
commit_until_done(engine *e, char *err, size_t errlen)
{
	for (;;) {
		char why[512] = "";
		int rc = commit(e, why, sizeof(why));
		if (rc == 0)
			return 0;
		/* At least once, commit_finish has tried again already. */
		if (!e->txn.on || !commit_failed(e, why)) {
			errbuf_set(err, errlen, "%s", why);
			return rc;
		}
	}
}

/* Whether changes wait for a commit; notes when the first of them came. */
static bool
changes_pending(engine *e)
{
	bool p = outbox_changes(e->ob) || kio_offsets_pending(e->k) ||
	    tracker_dirty_count(e->t) > 0 ||
	    (e->txn.on && outbox_unsent(e->ob) > 0);
	if (p && e->first_change_ms == 0)
		e->first_change_ms = clock_mono_ms();
	return p;
}

static bool
commit_due(engine *e)
{
	if (!changes_pending(e))
		return false;
	int64_t now = clock_mono_ms();
	/* Behind (a whole batch or more waits in Kafka: iterate): a
	 * commit starts at most every engine.commit_interval. A transaction
	 * then holds more events, an entity changed by several of them is
	 * written (and sent to the changelog) once, and the store's pages
	 * are rewritten less often. Nothing waits for it that is not late
	 * already; caught up, the 10 ms rule holds again. */
	if (e->behind && now - e->commit_started_ms <
	    e->cfg->engine.commit_interval_ms)
		return false;
	return e->uncommitted >= (size_t)e->cfg->engine.batch_max ||
	    now - e->first_change_ms >= COMMIT_EVERY_MS;
}

/* ---- flow --------------------------------------------------------------- */

enum pause_reason { PAUSE_BACKPRESSURE, PAUSE_SHUTDOWN, RESUME_BELOW_BOUNDS };

static void
set_paused(engine *e, bool pause, enum pause_reason why)
{
	static const char *const reasons[] = { "backpressure", "shutdown",
		"below the bounds" };
	if (pause == e->paused)
		return;
	e->paused = pause;
	kio_set_paused(e->k, pause);
	char ob[24], heap[24], cl[24], ents[24];
	snprintf(ob, sizeof(ob), "%zu",
	    outbox_live(e->ob) - outbox_live_changelog(e->ob));
	snprintf(heap, sizeof(heap), "%zu", tracker_heap_size(e->t));
	snprintf(cl, sizeof(cl), "%zu", outbox_live_changelog_bytes(e->ob));
	snprintf(ents, sizeof(ents), "%zu", tracker_count(e->t));
	log_kv(why == PAUSE_BACKPRESSURE ? LOG_WARN : LOG_INFO,
	    pause ? "input paused" : "input resumed", "reason", reasons[why],
	    "outbox", ob, "heap", heap, "changelog_bytes", cl, "entities",
	    ents, (char *)NULL);
}

static void
backpressure(engine *e)
{
	size_t cl = outbox_live_changelog_bytes(e->ob);
	size_t ob = outbox_live(e->ob) - outbox_live_changelog(e->ob);
	size_t heap = tracker_heap_size(e->t);
	size_t mo = (size_t)e->cfg->engine.max_outbox;
	size_t mc = (size_t)e->cfg->engine.max_changelog_bytes;
	size_t mp = (size_t)e->cfg->engine.max_pending;
	size_t ents = tracker_count(e->t);
	size_t me = (size_t)e->cfg->state.max_entities;
	e->snap->at_max_entities = ents >= me;
	if (!e->paused && (ob > mo || cl > mc || heap > mp || ents >= me))
		set_paused(e, true, PAUSE_BACKPRESSURE);
	else if (e->paused && ob <= mo - mo / 10 && cl <= mc - mc / 10 &&
	    heap <= mp - mp / 10 && ents < me - me / 10)
		set_paused(e, false, RESUME_BELOW_BOUNDS);
}

static int
wait_time(engine *e, int64_t now, bool more)
{
	if (more || scan_pool_pending(e->pool) > 0)
		return 0;
	int64_t due;
	int64_t t = WAIT_CAP_MS;
	bool scanning = e->cfg->scan.backend != CONFIG_BACKEND_NONE;
	/* While a commit runs in the background, the committer wakes the
	 * engine when it ends: the next one cannot start before. */
	if (e->first_change_ms != 0 && !committer_busy(e->cm)) {
		int64_t left = e->first_change_ms + COMMIT_EVERY_MS -
		    clock_mono_ms();
		if (left <= 0)
			return 0;
		if (left < t)
			t = left;
	}
	if (scanning && e->jobs.in_pool < (size_t)e->cfg->scan.workers * 2 &&
	    tracker_next_due(e->t, &due) && due >= 0) {
		if (due <= now)
			return 0;
		if (due - now < t)
			t = due - now;
	}
	return (int)t;
}

static void
drain_wake(engine *e)
{
	char buf[256];
	while (read(e->wake[0], buf, sizeof(buf)) > 0)
		;
}

/* ---- what operators see (publish.h, views.h) ---------------------------- */

static void
publish_snapshot(engine *e, int64_t now)
{
	struct snapshot *s = e->snap;
	s->taken_mono_ms = clock_mono_ms();
	s->assigned = e->k != NULL && kio_assigned(e->k);
	s->paused = e->paused;
	if (e->t != NULL) {
		for (int i = 0; i < ENTRY_STATE_COUNT; i++)
			s->by_state[i] = tracker_count_state(e->t,
			    (enum entry_state)i);
		s->heap = tracker_heap_size(e->t);
		struct tracker_stats ts;
		tracker_stats(e->t, &ts);
		s->clock_clamped = ts.clock_clamped;
		s->sources_pruned = ts.sources_pruned;
	}
	s->max_entities = (uint64_t)e->cfg->state.max_entities;
	int64_t due;
	s->next_due_ms = INT64_MIN;
	s->overdue_ms = 0;
	if (e->t != NULL && tracker_next_due(e->t, &due) && due >= 0) {
		s->next_due_ms = due - now;
		if (due < now && s->by_state[ENTRY_QUEUED] > 0)
			s->overdue_ms = now - due;
	}
	s->outbox_changelog = e->ob ? outbox_live_changelog(e->ob) : 0;
	s->outbox_changelog_bytes = e->ob ?
	    outbox_live_changelog_bytes(e->ob) : 0;
	s->outbox = e->ob ? outbox_live(e->ob) - s->outbox_changelog : 0;
	s->workers_busy = e->pool ? scan_pool_busy(e->pool) : 0;
	s->workers = (uint64_t)e->cfg->scan.workers;
	s->in_pool = e->jobs.in_pool;
	s->log_suppressed = log_suppressed();
	own_snapshot(e, s);
	snprintf(s->topic, sizeof(s->topic), "%s", e->cfg->kafka.input_topic);
	publish_put(&e->pub, s);
	e->last_publish = s->taken_mono_ms;
}

void
engine_publish(engine *e)
{
	publish_snapshot(e, engine_now(e));
}

static void
answer(engine *e, struct pub_req *q, int64_t now)
{
	if (q->kind == PUB_REQ_ENTITY) {
		uint32_t h = view_find_entity(e->t, q->id);
		json_t *o;
		if (h == TRACKER_NONE) {
			o = json_pack("{s:s, s:s}", "error", "no such entity",
			    "id", q->id);
			q->status = 404;
		} else {
			o = view_entity_json(e->t, h, scans_running(e, h));
			q->status = 200;
		}
		q->body = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		q->len = q->body ? strlen(q->body) : 0;
		json_decref(o);
		return;
	}
	/* A page of entities: bounded work whatever their number. */
	struct view_page page;
	char why[512];
	if (view_page_open(e->t, q->has_limit ? q->limit : NULL,
	    q->has_after ? q->after : NULL, &page, why, sizeof(why)) != 0) {
		size_t n = strlen(why);
		q->body = xmalloc(n + 2);
		memcpy(q->body, why, n);
		memcpy(q->body + n, "\n", 2);
		q->len = n + 1;
		q->status = 400;
		q->plain = true;
		return;
	}
	publish_snapshot(e, now);
	struct textbuf b = { 0 };
	struct view_status v = { e->t, e->snap, &e->recent,
		e->cfg->kafka.input_topic, e->cfg->kafka.output_topic, now,
		&page };
	view_status_html(&b, &v);
	q->body = textbuf_take(&b, &q->len);
	q->status = 200;
}

static void
serve_requests(engine *e, int64_t now)
{
	struct pub_req *q = publish_take_requests(&e->pub);
	while (q != NULL) {
		struct pub_req *next = q->next;
		answer(e, q, now);
		publish_answered(&e->pub, q);
		q = next;
	}
}

/* ---- set-up ------------------------------------------------------------- */

static void
delivered(void *ctx, const rd_kafka_message_t *m)
{
	engine *e = ctx;
	outbox_delivered(e->ob, m);
}

static int
load_outbox_record(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	if (ref == NULL) {
		outbox_load(ctx, seq, data, len);
		return 0;
	}
	/* A changelog record kept as a reference to its entry: the entry
	 * as it is now (newer than the record, when a later commit changed
	 * it again: what a compacted changelog keeps anyway), or a
	 * tombstone when it is gone. */
	size_t rlen;
	uint8_t *rec = own_changelog_record(ref, &rlen);
	outbox_load(ctx, seq, rec, rlen);
	free(rec);
	return 0;
}

void
engine_reload_outbox(engine *e)
{
	if (store_outbox_foreach(e->st, load_outbox_record, e->ob) != 0)
		log_kv(LOG_ERROR, "reading the outbox back failed",
		    (char *)NULL);
}

/* Wire settings and the batch buffers. */
static void
init_buffers(engine *e)
{
	const struct sbomd_config *cfg = e->cfg;
	e->wcfg.max_payload = (size_t)cfg->kafka.max_payload_bytes;
	if (cfg->kafka.accepted_schema_ids.n == 0) {
		e->wcfg.any_schema_id = 1;
	} else {
		size_t n = cfg->kafka.accepted_schema_ids.n;
		e->schema_ids = xcalloc(n, sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			e->schema_ids[i] =
			    (uint32_t)cfg->kafka.accepted_schema_ids.v[i];
		e->wcfg.schema_ids = e->schema_ids;
		e->wcfg.nschema_ids = n;
	}
	e->oframe.framing = cfg->kafka.output_framing ==
		CONFIG_FRAMING_CONFLUENT ? WIRE_FRAMING_CONFLUENT :
					   WIRE_FRAMING_SINGLE_OBJECT;
	e->oframe.schema_id = (uint32_t)cfg->kafka.output_schema_id;
	e->ev = xmalloc(sizeof(*e->ev));
	e->wo = xmalloc(sizeof(*e->wo));
	size_t bm = (size_t)cfg->engine.batch_max;
	e->msgs = xcalloc(bm, sizeof(*e->msgs));
	e->tev = xcalloc(bm, sizeof(*e->tev));
	e->items = xcalloc(bm, sizeof(*e->items));
	e->item_msg = xcalloc(bm, sizeof(*e->item_msg));
	struct outbox_topics ot = { cfg->kafka.output_topic,
		cfg->kafka.dead_letter_topic, cfg->state.changelog_topic,
		e->own.instance, own_may_produce, e };
	e->ob = outbox_new(&ot, e->snap);
	e->txn.on = cfg->kafka.delivery == CONFIG_DELIVERY_EXACTLY_ONCE;
	e->snap->exactly_once = e->txn.on;
	if (e->txn.on)
		outbox_set_transactional(e->ob);
}

void
engine_store_options(const struct sbomd_config *cfg, struct store_options *so)
{
	memset(so, 0, sizeof(*so));
	so->max_map_size = (size_t)cfg->state.max_map_size;
}

/* The store, recovered into a new tracker, and the outbox's records. */
static int
open_state(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *cfg = e->cfg;
	struct tracker_config tc;
	struct store_recovery rec;
	int rc;
	config_to_tracker(cfg, &tc);
	e->t = tracker_new(&tc);
	struct store_options so;
	engine_store_options(cfg, &so);
	if ((rc = store_open(cfg->state.dir, &so, &e->st, err, errlen)) != 0)
		return rc;
	struct store_migration mig;
	if (store_migration(e->st, &mig)) {
		char nm[24], from[24], secs[24];
		snprintf(nm, sizeof(nm), "%zu", mig.entries);
		snprintf(from, sizeof(from), "%u", mig.from_format);
		snprintf(secs, sizeof(secs), "%.3f", mig.seconds);
		log_kv(LOG_INFO, "state store migrated", "dir", cfg->state.dir,
		    "from_format", from, "entries", nm, "seconds", secs,
		    (char *)NULL);
	}
	/* A lone instance owns every partition; with a changelog, each
	 * partition is loaded when it is assigned (ownership.c). */
	memset(&rec, 0, sizeof(rec));
	if (cfg->state.changelog_topic[0] == '\0' &&
	    (rc = store_load_partition(e->st, STORE_ALL_PARTITIONS, e->t,
		 engine_now(e), &rec, err, errlen)) != 0)
		return rc;
	if ((rc = store_outbox_foreach(e->st, load_outbox_record, e->ob)) !=
	    0) {
		errbuf_set(err, errlen, "state.dir %s: reading the outbox: %s",
		    cfg->state.dir, strerror(-rc));
		return rc;
	}
	e->snap->recovered = true;
	char ne[24], no[24], nr[24], secs[24];
	snprintf(ne, sizeof(ne), "%zu", rec.entries);
	snprintf(no, sizeof(no), "%zu", outbox_live(e->ob));
	snprintf(nr, sizeof(nr), "%zu", rec.requeued);
	snprintf(secs, sizeof(secs), "%.3f", rec.seconds);
	log_kv(LOG_INFO, "state recovered", "dir", cfg->state.dir, "entries",
	    ne, "outbox", no, "requeued", nr, "seconds", secs, (char *)NULL);
	return 0;
}

/* kafka.writer_schemas_dir: the writer schemas events may come in, each
 * logged with what finds it. */
static int
open_writers(engine *e, char *err, size_t errlen)
{
	const char *dir = e->cfg->kafka.writer_schemas_dir;
	char why[1024];
	int rc;

	if (dir[0] == '\0')
		return 0;
	if ((rc = wire_writers_load(dir, &e->writers, why,
	    sizeof(why))) != 0) {
		errbuf_set(err, errlen, "kafka.writer_schemas_dir: %s", why);
		return rc;
	}
	e->wcfg.writers = e->writers;
	for (size_t i = 0; i < wire_writers_count(e->writers); i++) {
		char fp[24];
		snprintf(fp, sizeof(fp), "0x%016llx", (unsigned long long)
		    wire_writers_fp(e->writers, (int)i));
		log_kv(LOG_INFO, "writer schema", "dir", dir, "file",
		    wire_writers_file(e->writers, (int)i), "fingerprint", fp,
		    (char *)NULL);
	}
	return 0;
}

static int
engine_open(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *cfg = e->cfg;
	int rc;
	if (pipe2(e->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		rc = -errno;
		errbuf_set(err, errlen, "pipe: %s", strerror(errno));
		return rc;
	}
	e->pub.wake_fd = e->wake[1];
	init_buffers(e);
	if ((rc = open_writers(e, err, errlen)) != 0)
		return rc;
	/* HTTP first: /readyz says "recovering" while recovery runs. */
	publish_snapshot(e, engine_now(e));
	if (cfg->http.listen[0] != '\0') {
		struct http_limits lim = {
			(unsigned)cfg->http.max_connections,
			(unsigned)((cfg->http.connection_timeout_ms + 999) /
			    1000) };
		e->http = http_start(cfg->http.listen, &lim, &e->pub, err,
		    errlen);
		if (e->http == NULL)
			return -EADDRINUSE;
		log_kv(LOG_INFO, "http listening", "address", cfg->http.listen,
		    (char *)NULL);
	}
	if ((rc = open_state(e, err, errlen)) != 0 ||
	    (rc = scans_open(e, err, errlen)) != 0)
		return rc;
	if ((rc = committer_start(e->st, e->wake[1], &e->cm)) != 0) {
		errbuf_set(err, errlen, "starting the committer: %s",
		    strerror(-rc));
		return rc;
	}
	struct kio_hooks hooks = { delivered, own_assigned, own_revoking, e };
	if ((rc = kio_open(cfg, e->wake[1], e->snap, &hooks, &e->k, err,
		 errlen)) != 0 ||
	    (rc = own_open(e, err, errlen)) != 0 ||
	    (rc = kio_subscribe(e->k, err, errlen)) != 0)
		return rc;
	outbox_set_changelog_producer(e->ob, kio_changelog_producer(e->k));
	/* Outcomes of an earlier run, not yet in Kafka. */
	outbox_produce(e->ob, kio_producer(e->k),
	    kio_changelog_topic(e->k));
	char *cprops = config_props_text(&cfg->kafka.consumer_properties);
	char *pprops = config_props_text(&cfg->kafka.producer_properties);
	log_kv(LOG_INFO, "running", "brokers", cfg->kafka.brokers, "input",
	    cfg->kafka.input_topic, "output", cfg->kafka.output_topic,
	    "group", cfg->kafka.group_id, "backend", e->backend->name,
	    "consumer_properties", cprops, "producer_properties", pprops,
	    (char *)NULL);
	free(cprops);
	free(pprops);
	return 0;
}

static void
engine_close(engine *e)
{
	http_stop(e->http);
	e->http = NULL;
	publish_drop_requests(&e->pub);
	/* Before the counters go: it still counts; its last revoke still
	 * needs the state. Bounded by engine.shutdown_timeout. */
	kio_close(e->k, e->shutdown_deadline ? e->shutdown_deadline :
	    clock_mono_ms() + e->cfg->engine.shutdown_timeout_ms);
	engine_commit_settle(e);
	committer_stop(e->cm);
	e->cm = NULL;
	own_close(e);
	store_dirty_free(&e->dirty);
	store_dirty_free(&e->dirty_spare);
	scans_free(e);
	if (e->st)
		store_close(e->st);
	if (e->t)
		tracker_free(e->t);
	outbox_free(e->ob);
	free(e->schema_ids);
	wire_writers_free(e->writers);
	free(e->ev);
	free(e->wo);
	wire_buf_free(&e->wbuf);
	free(e->msgs);
	free(e->tev);
	free(e->items);
	free(e->item_msg);
	arena_free(&e->batch);
	arena_free(&e->scratch);
	if (e->wake[0] >= 0)
		close(e->wake[0]);
	if (e->wake[1] >= 0)
		close(e->wake[1]);
	publish_fini(&e->pub);
	free(e->snap);
}

/* ---- the loop ----------------------------------------------------------- */

/* One iteration after the wait; 0, or a negative errno when the store
 * keeps refusing commits and stop is set. */
static int
iterate(engine *e, bool *more, char *err, size_t errlen)
{
	int64_t now = engine_now(e);
	kio_poll_producer(e->k, 0);
	int rc = commit_collect(e, false, err, errlen);
	if (rc != 0)
		return rc;
	scans_complete(e, now);
	size_t n = ingest_batch(e, now);
	e->uncommitted += n;
	*more = n == (size_t)e->cfg->engine.batch_max;
	/* A whole batch or more waits in Kafka or fetched. */
	e->behind = *more || kio_input_lag(e->k) >=
	    e->cfg->engine.batch_max;
	scans_dispatch(e, now);
	if (!e->txn.on) {
		/* In the background; its result is taken above, later. */
		if (commit_due(e) && !committer_busy(e->cm))
			commit_start(e);
		if (outbox_resend_due(e->ob))
			outbox_produce(e->ob, kio_producer(e->k),
			    kio_changelog_topic(e->k));
	} else if (commit_due(e)) {
		rc = commit_until_done(e, err, errlen);
		if (rc != 0)
			return rc;
		outbox_produce(e->ob, kio_producer(e->k),
		    kio_changelog_topic(e->k));
	}
	if (e->own.on)
		kio_release_offsets(e->k, outbox_unacked_min(e->ob));
	backpressure(e);
	serve_requests(e, now);
	if (clock_mono_ms() - e->last_publish >= PUBLISH_EVERY_MS)
		publish_snapshot(e, now);
	return 0;
}

static int
engine_loop(engine *e, char *err, size_t errlen)
{
	bool more = false;
	while (!*e->stop && !kio_fatal(e->k, NULL, 0) &&
	    e->own.fatal[0] == '\0') {
		struct pollfd pfd[2] = {
			{ e->wake[0], POLLIN, 0 },
			{ scan_pool_wakeup_fd(e->pool), POLLIN, 0 },
		};
		int timeout = wait_time(e, engine_now(e), more);
		if (timeout > 0 && poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			int rc = -errno;
			errbuf_set(err, errlen, "poll: %s", strerror(errno));
			return rc;
		}
		drain_wake(e);
		if (*e->stop)
			break;
		int rc = iterate(e, &more, err, errlen);
		if (rc == 0 && kio_consumer_broken(e->k))
			rc = kio_consumer_renew(e->k, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (kio_fatal(e->k, err, errlen)) {
		/* Keep what was applied; the outbox re-sends after restart. */
		(void)commit(e, NULL, 0);
		return -EIO;
	}
	if (e->own.fatal[0] != '\0') {
		errbuf_set(err, errlen, "%s", e->own.fatal);
		(void)commit(e, NULL, 0);
		return -EIO;
	}
	return 0;
}

static int
shutdown_drain(engine *e, char *err, size_t errlen)
{
	int64_t now = engine_now(e);
	int64_t budget = e->cfg->engine.shutdown_timeout_ms;
	/* The whole shutdown, leaving the group included, within the
	 * budget; the last quarter of it is kept for the offset commit and
	 * leaving the group. */
	e->shutdown_deadline = kio_deadline(e->k) != 0 ? kio_deadline(e->k) :
	    clock_mono_ms() + budget;
	kio_set_deadline(e->k, e->shutdown_deadline);
	log_kv(LOG_INFO, "shutting down", (char *)NULL);
	set_paused(e, true, PAUSE_SHUTDOWN);
	scan_pool_shutdown(e->pool, true);
	scans_complete(e, now);
	scans_requeue_deferred(e, now);
	int rc = commit_until_done(e, err, errlen);
	if (rc != 0)
		return rc;

	int64_t deadline = e->shutdown_deadline - budget / 4;
	outbox_produce(e->ob, kio_producer(e->k),
	    kio_changelog_topic(e->k));
	/* Records held for a partition that is not ours now (lost while
	 * the broker was away, not assigned again yet) cannot go: the
	 * store keeps them, and waiting for them would only spend the
	 * budget the consumer's close needs. */
	while (outbox_sendable(e->ob) > 0 && clock_mono_ms() < deadline) {
		kio_poll_producer(e->k, 50);
		outbox_produce(e->ob, kio_producer(e->k),
		    kio_changelog_topic(e->k));
	}
	rc = commit_until_done(e, err, errlen);
	char left[24];
	snprintf(left, sizeof(left), "%zu", outbox_live(e->ob));
	log_kv(outbox_live(e->ob) ? LOG_WARN : LOG_INFO, "outbox drained",
	    "undelivered", left, (char *)NULL);
	if (e->own.on)
		kio_release_offsets(e->k, outbox_unacked_min(e->ob));
	kio_commit(e->k, e->shutdown_deadline - budget / 8);
	return rc;
}

int
engine_run(const struct sbomd_config *cfg, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	engine E, *e = &E;
	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	e->stop = stop;
	e->wake[0] = e->wake[1] = -1;
	clock_watch_init(&e->clock, NULL);
	e->snap = xcalloc(1, sizeof(*e->snap));
	publish_init(&e->pub);

	int rc = engine_open(e, err, errlen);
	if (rc == 0)
		rc = engine_loop(e, err, errlen);
	if (rc == 0)
		rc = shutdown_drain(e, err, errlen);
	engine_close(e);
	return rc;
}
