/*
 * test_crash: crash consistency of the state store (kill -9).
 *
 * A child process drives a tracker with random events in batches of
 * 50-200 (SETs and UNSETs over 2,000 images and hosts from 20 sources,
 * jobs popped and completed with success, retryable or permanent failure,
 * a clock that advances) and commits each batch with store_commit: the
 * tracker's dirty set, the batch's outcomes appended to the outbox, the
 * outbox items of two batches ago deleted ("delivered"), and meta "batch" =
 * the batch number, all in one transaction. It runs until the parent kills
 * it with SIGKILL a random 1-60 ms after it started or (three times in
 * four) after it finished recovering.
 *
 * Everything the child does is a function of (seed, batch number, state):
 * the parent replays it in a model tracker and keeps, from the model's
 * dirty sets, what the store must hold after each batch: entity ->
 * record (entries are keyed by (partition, kind, key); each entity keeps
 * its partition here; the model allocates the same handles as the child
 * because it applies the same operations, and recovers in the store's key
 * order as the child does). After each kill it reads meta
 * "batch" = k from the crashed store and checks, with raw LMDB reads, that
 * the store holds exactly the model's state after batch k: the same keys,
 * every record byte for byte (so the entity key each holds too), the same
 * outbox items in the same order -- never a part of batch k+1. It then
 * recovers the store into a fresh tracker and compares it with the model's
 * own recovery, entity by entity and handle by handle.
 *
 * Kills are chained: CHAIN rounds use one directory, each child recovering
 * what the previous one left (SCANNING entries queued again, at the
 * recovery time) and continuing with batch k+1; the model does the same
 * recovery from its expected records. A page shared with the child says
 * what it was doing when it died (opening, recovering, between commits,
 * inside store_commit of batch b), so the parent also checks that every
 * commit that returned is there and that a commit in flight is either
 * wholly there or not at all.
 *
 * SBOMD_CRASH_ROUNDS (default 100) and SBOMD_CRASH_SEED change the run.
 * The seed decides the events and the kill schedule (when each kill is
 * planned); the run prints it with a digest of that schedule, and
 * tests/crash_seed.sh checks that two runs with one seed print the same
 * digest (and another seed another one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "core/tracker.h"
#include "core/tracker_record.h"
#include "store/store.h"
#include "util/digest.h"
#include "util/xmalloc.h"

#define NIDS 2000
#define NIMAGES 1600
#define NSRC 20
#define MAXJOBS 256
#define MAXOUT 256
#define OUT_LEN 56
#define MAX_EVENTS 200

#define T0 1700000000000LL
#define CHAIN 10 /* kill rounds per directory */

/* The model keeps one expected record per entity. */
#define NSLOTS NIDS
#define PARTITION(id) ((int32_t)((id) % 12))

/* Offsets in a record, versions 2 and 3 (core/tracker_record.c). */
#define REC_KEY 2
#define REC_STATE (REC_KEY + TRACKER_KEY_LEN)
#define REC_DUE (REC_STATE + 2 + 2 + 4 + 4 + 8 + 8)
#define ENTRY_KEY_LEN (5 + TRACKER_KEY_LEN)

/* A key as bytes: kind, then the 32 key bytes. */
#define KEY_BYTES (1 + TRACKER_KEY_LEN)

/* ---- the universe of ids ---- */

struct world {
	char id[NIDS][DIGEST_STR_LEN];
	enum entity_kind kind[NIDS];
	struct tracker_key tkey[NIDS];
	uint8_t key[NIDS][KEY_BYTES];
	uint32_t sorted[NIDS]; /* ids in key order, for id_of_key */
	uint32_t stored[NIDS]; /* ids in the store's key order */
	uint8_t skey[NIDS][ENTRY_KEY_LEN]; /* the store's key of each id */
	char src[NSRC][24];
};

static struct world W;

static void
key_bytes(const struct tracker_key *key, uint8_t out[KEY_BYTES])
{
	out[0] = key->kind;
	memcpy(out + 1, key->bytes, TRACKER_KEY_LEN);
}

static int
sorted_cmp(const void *a, const void *b)
{
	return memcmp(W.key[*(const uint32_t *)a], W.key[*(const uint32_t *)b],
	    KEY_BYTES);
}

static int
stored_cmp(const void *a, const void *b)
{
	return memcmp(W.skey[*(const uint32_t *)a],
	    W.skey[*(const uint32_t *)b], ENTRY_KEY_LEN);
}

static void
world_init(void)
{
	for (uint32_t i = 0; i < NIDS; i++) {
		char err[128];
		struct tracker_key key;
		if (i < NIMAGES) {
			char buf[32];
			uint8_t d[DIGEST_LEN];
			int n = snprintf(buf, sizeof(buf), "crash-image-%u", i);
			digest_sha256(buf, (size_t)n, d);
			digest_format(d, W.id[i]);
			W.kind[i] = ENTITY_IMAGE;
		} else {
			snprintf(W.id[i], sizeof(W.id[i]),
			    "host-%04u.crash.example", i);
			W.kind[i] = ENTITY_HOST;
		}
		if (tracker_key_from_id(W.kind[i], W.id[i], &key, err,
			sizeof(err)) != 0)
			fail_msg("%s: %s", W.id[i], err);
		W.tkey[i] = key;
		key_bytes(&key, W.key[i]);
		W.sorted[i] = i;
	}
	qsort(W.sorted, NIDS, sizeof(W.sorted[0]), sorted_cmp);
	for (uint32_t i = 0; i < NIDS; i++) {
		uint32_t p = (uint32_t)PARTITION(i);
		W.skey[i][0] = (uint8_t)(p >> 24);
		W.skey[i][1] = (uint8_t)(p >> 16);
		W.skey[i][2] = (uint8_t)(p >> 8);
		W.skey[i][3] = (uint8_t)p;
		memcpy(W.skey[i] + 4, W.key[i], KEY_BYTES);
		W.stored[i] = i;
	}
	qsort(W.stored, NIDS, sizeof(W.stored[0]), stored_cmp);
	for (int i = 0; i < NSRC; i++)
		snprintf(W.src[i], sizeof(W.src[i]), "node-%02d", i);
}

/* The id of a key, or -1. */
static int
id_of_key(const struct tracker_key *key)
{
	uint8_t kb[KEY_BYTES];
	key_bytes(key, kb);
	size_t lo = 0, hi = NIDS;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(W.key[W.sorted[mid]], kb, KEY_BYTES);
		if (c == 0)
			return (int)W.sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The id of the entity a record holds, or -1. */
static int
id_of_record(const void *rec, size_t len)
{
	struct tracker_key key;
	if (tracker_record_key(rec, len, &key) != 0)
		return -1;
	return id_of_key(&key);
}

/* For messages: the id a record holds. */
static const char *
record_id(const void *rec, size_t len)
{
	int id = id_of_record(rec, len);
	return id < 0 ? "(no known key)" : W.id[id];
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- the workload, shared by the child and the parent's model ---- */

static void
crash_config(struct tracker_config *c)
{
	tracker_config_defaults(c);
	c->retry.base_ms = 3000;
	c->retry.max_ms = 60000;
	c->retry.multiplier = 2.0;
	c->retry.jitter = 0.2;
	c->retry.max_attempts = 4;
	c->retry.failed_rescan_after_ms = 50000;
	c->rescan_after_ms = 40000;
	c->forget_after_ms = 6000; /* 3 batches: handles change hands often */
	c->jitter_seed = 42;
}

static int64_t
batch_clock(uint64_t b)
{
	return T0 + (int64_t)b * 2000; /* a batch spans < 1,400 ms */
}

static int64_t
recovery_clock(uint64_t k)
{
	return batch_clock(k) + 1500; /* after batch k, before k+1 */
}

struct obx {
	uint64_t seq, batch;
	uint8_t data[OUT_LEN];
};

struct sim {
	tracker *t;
	uint64_t seed;
	uint64_t rng;
	struct tracker_job jobs[MAXJOBS];
	size_t njobs;
	/* this batch's outcomes, to be appended to the outbox */
	uint8_t out[MAXOUT][OUT_LEN];
	size_t nout;
	/* this batch's outbox deletions */
	uint64_t *dels;
	size_t ndels, delscap;
	/* the outbox as the store holds it, in sequence order */
	struct obx *obx;
	size_t nobx, obxcap;
};

static tracker *
crash_tracker(void)
{
	struct tracker_config c;
	crash_config(&c);
	return tracker_new(&c);
}

static void
sim_init(struct sim *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->t = crash_tracker();
	s->seed = seed;
}

static void
sim_free(struct sim *s)
{
	tracker_free(s->t);
	free(s->dels);
	free(s->obx);
}

static uint64_t
srnd(struct sim *s, uint64_t n)
{
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return (x * 0x2545F4914F6CDD1DULL) % n;
}

static void
sim_outcome(struct sim *s, uint64_t b, const struct tracker_outcome *o)
{
	if (o->status == OUTCOME_NONE)
		return;
	if (s->nout == MAXOUT)
		abort();
	uint8_t *p = s->out[s->nout++];
	memset(p, 0, OUT_LEN);
	put64(p, b);
	key_bytes(&o->key, p + 8);
	p[41] = (uint8_t)o->status;
	put64(p + 42, o->attempt);
	put64(p + 48, (uint64_t)o->next_attempt_at);
}

static void
obx_push(struct sim *s, uint64_t seq, const uint8_t *data)
{
	if (s->nobx == s->obxcap) {
		s->obxcap = s->obxcap ? 2 * s->obxcap : 256;
		s->obx = xreallocarray(s->obx, s->obxcap, sizeof(*s->obx));
	}
	struct obx *x = &s->obx[s->nobx++];
	x->seq = seq;
	x->batch = get64(data);
	memcpy(x->data, data, OUT_LEN);
}

/* The random events of batch b: a function of (seed, b) and the state. */
static void
sim_batch(struct sim *s, uint64_t b)
{
	static const char *tag_pool[] = {"registry.example.com/app:1",
	    "registry.example.com/app:2", "registry.example.com/app:latest",
	    "docker.io/library/nginx:1.25", "quay.io/org/tool:v3",
	    "ghcr.io/org/svc:main", "localhost:5000/dev:x", "k8s.gcr.io/pause"};
	static const char *digest_pool[] = {
	    "registry.example.com/app@sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111",
	    "docker.io/library/nginx@sha256:"
	    "2222222222222222222222222222222222222222222222222222222222222222",
	    "quay.io/org/tool@sha256:"
	    "3333333333333333333333333333333333333333333333333333333333333333"};
	char err[256];

	s->rng = policy_mix64(s->seed ^ policy_mix64(b)) | 1;
	s->nout = 0;
	int64_t now = batch_clock(b);
	uint64_t n = 50 + srnd(s, MAX_EVENTS - 50 + 1);
	for (uint64_t i = 0; i < n; i++) {
		now += (int64_t)srnd(s, 7);
		uint64_t op = srnd(s, 100);
		struct tracker_outcome o;
		if (op < 72) {
			uint32_t id = (uint32_t)srnd(s, NIDS);
			uint32_t src = (uint32_t)((id * 7 + srnd(s, 3)) % NSRC);
			struct tracker_event ev = {
				.type = op < 55 ? EVENT_SET : EVENT_UNSET,
				.kind = W.kind[id], .id = W.id[id],
				.source = W.src[src],
				.observed_at = now - (int64_t)srnd(s, 4000),
				.partition = PARTITION(id),
			};
			const char *tags[4], *digs[2];
			if (ev.type == EVENT_SET) {
				if (srnd(s, 5) != 0) { /* the usual refs */
					tags[0] = tag_pool[id % 8];
					digs[0] = digest_pool[id % 3];
					ev.ntags = 1;
					ev.ndigests = W.kind[id] == ENTITY_IMAGE;
				} else {
					ev.ntags = srnd(s, 5);
					ev.ndigests = srnd(s, 3);
					for (size_t k = 0; k < ev.ntags; k++)
						tags[k] = tag_pool[srnd(s, 8)];
					for (size_t k = 0; k < ev.ndigests; k++)
						digs[k] = digest_pool[srnd(s, 3)];
				}
				ev.tags = tags;
				ev.digests = digs;
			}
			if (tracker_apply(s->t, &ev, now, &o, err, sizeof(err)) ==
			    APPLY_INVALID)
				abort();
			sim_outcome(s, b, &o);
		} else if (op < 86) {
			if (s->njobs < MAXJOBS &&
			    tracker_pop_due(s->t, now, &s->jobs[s->njobs]))
				s->njobs++;
		} else if (s->njobs > 0) {
			size_t j = srnd(s, s->njobs);
			uint64_t r = srnd(s, 20);
			char msg[64];
			struct tracker_result res = {true, ERROR_RETRYABLE,
			    NULL, 0};
			uint32_t attempt = s->jobs[j].attempt;
			if (r >= 10) {
				res.ok = false;
				res.error_class = r < 17 ? ERROR_RETRYABLE :
				    ERROR_PERMANENT;
				snprintf(msg, sizeof(msg), "%s (attempt %u)",
				    r < 17 ? "registry timeout" :
				    "manifest unknown", attempt);
				res.error = msg;
			}
			if (r == 0)
				attempt++; /* a stale completion */
			int rc = tracker_complete(s->t, s->jobs[j].handle,
			    attempt, &res, now, &o);
			if (rc != 0 && rc != -ESTALE)
				abort();
			sim_outcome(s, b, &o);
			if (r != 0)
				s->jobs[j] = s->jobs[--s->njobs];
		}
	}
	/* Delivered: the outbox items of batch b-2 and older (a prefix). */
	s->ndels = 0;
	for (size_t i = 0; i < s->nobx && s->obx[i].batch + 2 <= b; i++) {
		if (s->ndels == s->delscap) {
			s->delscap = s->delscap ? 2 * s->delscap : 256;
			s->dels = xreallocarray(s->dels, s->delscap,
			    sizeof(*s->dels));
		}
		s->dels[s->ndels++] = s->obx[i].seq;
	}
}

/* After the batch's commit: the outbox mirror follows. */
static void
sim_committed(struct sim *s, const uint64_t *seqs)
{
	if (s->ndels > 0) {
		memmove(s->obx, s->obx + s->ndels,
		    (s->nobx - s->ndels) * sizeof(*s->obx));
		s->nobx -= s->ndels;
	}
	for (size_t i = 0; i < s->nout; i++)
		obx_push(s, seqs[i], s->out[i]);
}

/* ---- the child ---- */

enum phase {
	PH_FORKED = 0,
	PH_OPEN,
	PH_RECOVER,
	PH_RUN,	   /* between commits */
	PH_COMMIT, /* inside store_commit of batch `committing` */
	PH_COUNT
};

/* Shared with the child (MAP_SHARED): what it was doing when it died. */
struct progress {
	_Atomic uint64_t phase;
	_Atomic uint64_t start_k;    /* meta "batch" it started from */
	_Atomic uint64_t committed;  /* the last batch store_commit returned */
	_Atomic uint64_t committing; /* the batch in store_commit */
	_Atomic uint64_t requeued;   /* SCANNING entries its recovery found */
};

static int
mirror_fn(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	(void)ref; /* the model's items are plain */
	if (len != OUT_LEN)
		return -1;
	obx_push(ctx, seq, data);
	return 0;
}

_Noreturn static void
child_main(const char *dir, uint64_t seed, struct progress *pg)
{
	static struct sim sim;
	struct store_blob blobs[MAXOUT];
	uint64_t seqs[MAXOUT];
	char err[512];
	uint8_t kb[8];
	store *s;
	static struct store_dirty dirty;

	atomic_store(&pg->phase, PH_OPEN);
	if (store_open(dir, NULL, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "child: %s\n", err);
		_exit(10);
	}
	uint64_t k0 = 0;
	size_t n = 0;
	int rc = store_meta_get(s, "batch", kb, sizeof(kb), &n);
	if (rc == 0 && n == 8)
		k0 = get64(kb);
	else if (rc != -ENOENT)
		_exit(11);
	atomic_store(&pg->start_k, k0);
	atomic_store(&pg->committed, k0);
	atomic_store(&pg->phase, PH_RECOVER);
	sim_init(&sim, seed);
	struct store_recovery rec;
	if (store_recover(s, sim.t, recovery_clock(k0), &rec, err,
		sizeof(err)) != 0) {
		fprintf(stderr, "child: %s\n", err);
		_exit(12);
	}
	if (store_outbox_foreach(s, mirror_fn, &sim) != 0)
		_exit(13);
	atomic_store(&pg->requeued, rec.requeued);
	atomic_store(&pg->phase, PH_RUN);
	for (uint64_t b = k0 + 1;; b++) {
		sim_batch(&sim, b);
		for (size_t i = 0; i < sim.nout; i++) {
			blobs[i].data = sim.out[i];
			blobs[i].len = OUT_LEN;
		}
		put64(kb, b);
		struct store_meta m = {"batch", kb, 8};
		struct store_batch sb = {.outbox_add = blobs,
		    .noutbox_add = sim.nout, .outbox_seqs = seqs,
		    .outbox_del = sim.dels, .noutbox_del = sim.ndels,
		    .meta = &m, .nmeta = 1};
		sb.nentries = store_collect_dirty(sim.t, &dirty);
		sb.entries = dirty.entries;
		atomic_store(&pg->committing, b);
		atomic_store(&pg->phase, PH_COMMIT);
		if (store_commit(s, &sb, err, sizeof(err)) != 0) {
			fprintf(stderr, "child: batch %llu: %s\n",
			    (unsigned long long)b, err);
			_exit(14);
		}
		tracker_clear_dirty(sim.t);
		atomic_store(&pg->committed, b);
		atomic_store(&pg->phase, PH_RUN);
		atomic_store(&pg->committing, 0);
		sim_committed(&sim, seqs);
	}
}

/* ---- the parent's model: what the store must hold ---- */

struct model {
	struct sim sim;
	uint64_t k;	    /* the model is at the state after batch k */
	uint64_t next_seq;  /* the store's next outbox sequence */
	/* the store's entries: the expected record of each entity */
	uint8_t *rec[NSLOTS];
	size_t rec_len[NSLOTS], rec_cap[NSLOTS];
	bool present[NSLOTS];
	/* loaded SCANNING (so QUEUED in the tracker) and not written since:
	 * the store still has the SCANNING record */
	bool requeued_clean[NSLOTS];
	size_t requeued;
};

/* What the replays' dirty sets did, over the whole run. */
static struct {
	size_t puts, dels;
	size_t reused;	    /* a key deleted and written again in one batch */
	uint32_t max_slot;  /* the highest handle written */
	bool freed[NSLOTS]; /* in the batch being replayed */
} slot_stats;

static int
model_put(void *ctx, uint32_t handle)
{
	struct model *m = ctx;
	struct tracker_info info;
	assert_int_equal(tracker_info_get(m->sim.t, handle, &info), 0);
	int id = id_of_key(&info.key);
	assert_true(id >= 0);
	assert_int_equal(info.partition, PARTITION(id));
	m->rec_len[id] = tracker_record_encode(m->sim.t, handle, &m->rec[id],
	    &m->rec_cap[id]);
	/* the record holds the key of the entity at that handle */
	assert_int_equal(id_of_record(m->rec[id], m->rec_len[id]), id);
	m->present[id] = true;
	m->requeued_clean[id] = false;
	slot_stats.puts++;
	slot_stats.reused += slot_stats.freed[id];
	if (handle > slot_stats.max_slot)
		slot_stats.max_slot = handle;
	return 0;
}

static int
model_del(void *ctx, int32_t partition, const struct tracker_key *key)
{
	struct model *m = ctx;
	int id = id_of_key(key);
	if (id < 0 || partition != PARTITION(id))
		fail_msg("batch %llu: deletion of an unknown key (partition "
		    "%d)", (unsigned long long)m->k + 1, partition);
	m->present[id] = false;
	m->requeued_clean[id] = false;
	slot_stats.dels++;
	slot_stats.freed[id] = true;
	return 0;
}

static void
model_reset(struct model *m, uint64_t seed)
{
	for (int i = 0; i < NSLOTS; i++)
		free(m->rec[i]);
	sim_free(&m->sim);
	memset(m, 0, sizeof(*m));
	sim_init(&m->sim, seed);
}

/* What store_open + store_recover do, from the expected records. */
static void
model_recover(struct model *m)
{
	char err[256];
	size_t n = 0;
	tracker_free(m->sim.t);
	m->sim.t = crash_tracker();
	m->sim.njobs = 0;
	m->requeued = 0;
	for (int i = 0; i < NSLOTS; i++)
		n += m->present[i];
	tracker_reserve(m->sim.t, n);
	/* in the store's key order, as LMDB returns them: the order of the
	 * loads is the order of the handles and of the heap's ties */
	for (uint32_t i = 0; i < NIDS; i++) {
		uint32_t id = W.stored[i];
		m->requeued_clean[id] = false;
		if (!m->present[id])
			continue;
		bool requeued;
		int rc = tracker_record_load(m->sim.t, m->rec[id],
		    m->rec_len[id], recovery_clock(m->k), &requeued, err,
		    sizeof(err));
		if (rc != 0)
			fail_msg("model recovery of %s: %s", W.id[id], err);
		m->requeued_clean[id] = requeued;
		m->requeued += requeued;
	}
	assert_int_equal(tracker_dirty_count(m->sim.t), 0);
	m->next_seq = m->sim.nobx ? m->sim.obx[m->sim.nobx - 1].seq + 1 : 0;
}

static void
model_batch(struct model *m, uint64_t b)
{
	uint64_t seqs[MAXOUT];
	assert_int_equal(b, m->k + 1);
	sim_batch(&m->sim, b);
	memset(slot_stats.freed, 0, sizeof(slot_stats.freed));
	assert_int_equal(tracker_foreach_dirty(m->sim.t, model_put, model_del,
	    m), 0);
	tracker_clear_dirty(m->sim.t);
	for (size_t i = 0; i < m->sim.nout; i++)
		seqs[i] = m->next_seq++;
	sim_committed(&m->sim, seqs);
	m->k = b;
}

/*
 * The model's expected records against its own live tracker: every live
 * entity's tracker_record_encode is its expected record (so the dirty
 * sets missed nothing), except entities requeued by a recovery and
 * untouched since, whose record still says SCANNING; no other entity has
 * a record.
 */
static void
model_self_check(const struct model *m)
{
	uint8_t *buf = NULL;
	size_t cap = 0, live = 0;
	char err[256];
	if (tracker_check(m->sim.t, err, sizeof(err)) != 0)
		fail_msg("model tracker: %s", err);
	for (uint32_t id = 0; id < NIDS; id++) {
		uint32_t h = tracker_find(m->sim.t, &W.tkey[id]);
		if (h == TRACKER_NONE) {
			if (m->present[id])
				fail_msg("%s: in the store, not live in the "
				    "tracker", W.id[id]);
			continue;
		}
		live++;
		if (!m->present[id])
			fail_msg("%s (handle %u): live but never written",
			    W.id[id], h);
		if (id_of_record(m->rec[id], m->rec_len[id]) != (int)id)
			fail_msg("the record of %s holds %s", W.id[id],
			    record_id(m->rec[id], m->rec_len[id]));
		size_t len = tracker_record_encode(m->sim.t, h, &buf, &cap);
		assert_int_equal(len, m->rec_len[id]);
		const uint8_t *want = m->rec[id];
		if (!m->requeued_clean[id]) {
			if (memcmp(buf, want, len) != 0)
				fail_msg("%s (handle %u): changed but not "
				    "written", W.id[id], h);
			continue;
		}
		/* state, heap flag and due differ; the rest is the same */
		assert_int_equal(want[REC_STATE], ENTRY_SCANNING);
		assert_int_equal(buf[REC_STATE], ENTRY_QUEUED);
		assert_memory_equal(buf, want, REC_STATE);
		assert_memory_equal(buf + REC_STATE + 2, want + REC_STATE + 2,
		    REC_DUE - (REC_STATE + 2));
		assert_memory_equal(buf + REC_DUE + 8, want + REC_DUE + 8,
		    len - (REC_DUE + 8));
	}
	/* and no live entity is not one of them */
	assert_int_equal(live, tracker_count(m->sim.t));
	free(buf);
}

/* ---- checking the crashed store ---- */

static MDB_env *
raw_open(const char *dir, MDB_txn **txn)
{
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	int rc = mdb_env_open(env, dir, MDB_RDONLY, 0600);
	if (rc != 0)
		fail_msg("mdb_env_open %s: %s", dir, mdb_strerror(rc));
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, txn), 0);
	return env;
}

/* Opens a named database; false when the child died before creating it
 * (store_open creates all three in one transaction). */
static bool
raw_dbi(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
	int rc = mdb_dbi_open(txn, name, 0, dbi);
	if (rc == MDB_NOTFOUND)
		return false;
	if (rc != 0)
		fail_msg("database %s: %s", name, mdb_strerror(rc));
	return true;
}

/* Whether the child got as far as creating the LMDB files. */
static bool
store_exists(const char *dir)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return stat(path, &st) == 0 && st.st_size > 0;
}

/* meta "batch" of the store in dir: 0 when none was committed yet. */
static uint64_t
raw_batch(const char *dir)
{
	if (!store_exists(dir))
		return 0;
	MDB_txn *txn;
	MDB_env *env = raw_open(dir, &txn);
	MDB_val k = {5, "batch"}, v;
	MDB_dbi meta;
	uint64_t b = 0;
	int rc = MDB_NOTFOUND;
	if (raw_dbi(txn, "meta", &meta))
		rc = mdb_get(txn, meta, &k, &v);
	if (rc == 0) {
		assert_int_equal(v.mv_size, 8);
		b = get64(v.mv_data);
	} else {
		assert_int_equal(rc, MDB_NOTFOUND);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return b;
}

/* The raw records and outbox of the store equal the model's, exactly. */
static void
raw_compare(const char *dir, const struct model *m)
{
	if (!store_exists(dir)) {
		/* killed before store_open made it: nothing was committed */
		assert_int_equal(m->k, 0);
		return;
	}
	MDB_txn *txn;
	MDB_env *env = raw_open(dir, &txn);
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_dbi entries, outbox;
	size_t n = 0, want = 0;
	int rc;

	if (!raw_dbi(txn, "entries", &entries)) {
		assert_int_equal(m->k, 0);
		assert_false(raw_dbi(txn, "outbox", &outbox));
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return;
	}
	assert_true(raw_dbi(txn, "outbox", &outbox));
	assert_int_equal(mdb_cursor_open(txn, entries, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != ENTRY_KEY_LEN)
			fail_msg("batch %llu: a key of %zu bytes in the store",
			    (unsigned long long)m->k, k.mv_size);
		const uint8_t *vp = v.mv_data;
		int id = id_of_record(vp, v.mv_size);
		if (id < 0)
			fail_msg("batch %llu: a record with no known key",
			    (unsigned long long)m->k);
		if (memcmp(k.mv_data, W.skey[id], ENTRY_KEY_LEN) != 0)
			fail_msg("batch %llu: %s stored under another key",
			    (unsigned long long)m->k, W.id[id]);
		if (!m->present[id])
			fail_msg("batch %llu: %s is in the store but should "
			    "not be", (unsigned long long)m->k, W.id[id]);
		if (v.mv_size != m->rec_len[id] ||
		    memcmp(vp, m->rec[id], v.mv_size) != 0)
			fail_msg("batch %llu: the record of %s differs "
			    "(%zu bytes, state %u; expected %zu bytes, state "
			    "%u)", (unsigned long long)m->k, W.id[id],
			    v.mv_size, v.mv_size > REC_STATE ? vp[REC_STATE] :
			    99, m->rec_len[id], m->rec[id][REC_STATE]);
		n++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	for (int i = 0; i < NSLOTS; i++)
		want += m->present[i];
	if (n != want)
		fail_msg("batch %llu: %zu records in the store, expected %zu",
		    (unsigned long long)m->k, n, want);

	n = 0;
	assert_int_equal(mdb_cursor_open(txn, outbox, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		assert_true(n < m->sim.nobx);
		const struct obx *x = &m->sim.obx[n];
		uint64_t seq = 0;
		assert_int_equal(k.mv_size, 8);
		for (int i = 0; i < 8; i++)
			seq = seq << 8 | ((uint8_t *)k.mv_data)[i];
		if (seq != x->seq || v.mv_size != OUT_LEN ||
		    memcmp(v.mv_data, x->data, OUT_LEN) != 0)
			fail_msg("batch %llu: outbox item %zu differs (seq "
			    "%llu, expected %llu)", (unsigned long long)m->k,
			    n, (unsigned long long)seq,
			    (unsigned long long)x->seq);
		n++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	assert_int_equal(n, m->sim.nobx);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* store_recover of the crashed store equals the model's recovery. */
static void
recover_compare(const char *dir, const struct model *m)
{
	store *s;
	char err[512];
	uint8_t kb[8];
	struct store_recovery rec;
	assert_int_equal(store_open(dir, NULL, &s, err, sizeof(err)), 0);
	size_t klen = 0;
	assert_int_equal(store_meta_get(s, "batch", kb, sizeof(kb), &klen),
	    m->k ? 0 : -ENOENT);
	if (m->k)
		assert_int_equal(klen, 8);
	if (m->k)
		assert_int_equal(get64(kb), m->k);
	tracker *t = crash_tracker();
	if (store_recover(s, t, recovery_clock(m->k), &rec, err,
		sizeof(err)) != 0)
		fail_msg("recovery after batch %llu: %s",
		    (unsigned long long)m->k, err);
	if (tracker_check(t, err, sizeof(err)) != 0)
		fail_msg("recovered tracker: %s", err);
	assert_int_equal(rec.entries, tracker_count(m->sim.t));
	assert_int_equal(tracker_count(t), tracker_count(m->sim.t));
	assert_int_equal(rec.requeued, m->requeued);
	assert_int_equal(rec.outbox, m->sim.nobx);
	assert_int_equal(tracker_heap_size(t), tracker_heap_size(m->sim.t));
	for (int st = ENTRY_QUEUED; st <= ENTRY_CANCELLED; st++)
		assert_int_equal(tracker_count_state(t, (enum entry_state)st),
		    tracker_count_state(m->sim.t, (enum entry_state)st));
	uint8_t *a = NULL, *b = NULL;
	size_t ca = 0, cb = 0;
	for (int id = 0; id < NIDS; id++) {
		uint32_t ht = tracker_find(t, &W.tkey[id]);
		uint32_t hm = tracker_find(m->sim.t, &W.tkey[id]);
		assert_int_equal(ht == TRACKER_NONE, hm == TRACKER_NONE);
		if (ht == TRACKER_NONE)
			continue;
		/* the same handle too: the child's next batches depend on
		 * it */
		if (ht != hm)
			fail_msg("after batch %llu: %s recovered at handle %u, "
			    "the model's at %u", (unsigned long long)m->k,
			    W.id[id], ht, hm);
		size_t la = tracker_record_encode(t, ht, &a, &ca);
		size_t lb = tracker_record_encode(m->sim.t, hm, &b, &cb);
		assert_int_equal(la, lb);
		if (memcmp(a, b, la) != 0)
			fail_msg("recovered %s differs from the model",
			    W.id[id]);
	}
	free(a);
	free(b);
	tracker_free(t);
	store_close(s);
}

/* ---- the test ---- */

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void
remove_dir(const char *dir)
{
	DIR *dp = opendir(dir);
	if (dp != NULL) {
		struct dirent *de;
		while ((de = readdir(dp)) != NULL) {
			char path[4096];
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		closedir(dp);
	}
	assert_int_equal(rmdir(dir), 0);
}

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The directory of the current chain, removed by the teardown even when
 * the test fails (the seed and batch number reproduce a failure). */
static char crash_dir[64];

static int
crash_teardown(void **state)
{
	(void)state;
	if (crash_dir[0])
		remove_dir(crash_dir);
	crash_dir[0] = '\0';
	return 0;
}

static void
test_kill9(void **state)
{
	(void)state;
	const uint64_t rounds = env_u64("SBOMD_CRASH_ROUNDS", 100);
	const uint64_t seed = env_u64("SBOMD_CRASH_SEED", 0xc0ffee);
	struct model *m = xcalloc(1, sizeof(*m));
	struct progress *pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(pg != MAP_FAILED);
	uint64_t *ks = xcalloc(rounds, sizeof(*ks));
	uint64_t *deltas = xcalloc(rounds, sizeof(*deltas));
	size_t by_phase[PH_COUNT] = {0};
	size_t commit_landed = 0, commit_lost = 0, requeue_rounds = 0;
	/* The kill schedule comes from the seed as well: a seed gives the
	 * same events and the same planned kill moments (where a child is
	 * at a kill still depends on the machine's speed). */
	uint64_t sleep_rng = policy_mix64(seed ^ 0x6b696c6c); /* "kill" */
	uint64_t schedule = 1469598103934665603ull; /* FNV-1a of the plan */
	double start = mono(), replay_s = 0;
	char *dir = crash_dir;
	uint64_t k_prev = 0;

	world_init();
	sim_init(&m->sim, 1);
	print_message("crash test: %llu kills, %d per directory, seed %#llx\n",
	    (unsigned long long)rounds, CHAIN, (unsigned long long)seed);
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t chain_seed = seed + r / CHAIN;
		if (r % CHAIN == 0) {
			if (dir[0])
				remove_dir(dir);
			snprintf(dir, sizeof(crash_dir),
			    "/tmp/sbomd-test-crash-XXXXXX");
			assert_non_null(mkdtemp(dir));
			model_reset(m, chain_seed);
			k_prev = 0;
		}
		/* The child starts from what the model recovered (k_prev). */
		size_t expect_requeued = m->requeued;
		memset(pg, 0, sizeof(*pg));
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_main(dir, chain_seed, pg);

		sleep_rng = policy_mix64(sleep_rng);
		/* Three rounds in four wait until the child has recovered
		 * and runs batches (however slow the machine: sanitizers,
		 * load), then kill it a random 1-60 ms later; the fourth
		 * kills it at a random moment from its start, so opening
		 * and recovery are crash points too. */
		if (sleep_rng % 4 != 0) {
			struct timespec poll = {0, 200 * 1000};
			for (int w = 0; w < 50000 &&
			    atomic_load(&pg->phase) < PH_RUN; w++)
				nanosleep(&poll, NULL);
		}
		long us = 1000 + (long)((sleep_rng >> 8) % 59001);
		uint64_t plan[3] = { chain_seed, sleep_rng % 4 != 0,
			(uint64_t)us };
		for (size_t i = 0; i < sizeof(plan); i++)
			schedule = (schedule ^ ((const uint8_t *)plan)[i]) *
			    1099511628211ull;
		struct timespec ts = {0, us * 1000};
		nanosleep(&ts, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("the child ended by itself (status %#x)",
			    status);

		uint64_t phase = atomic_load(&pg->phase);
		uint64_t committed = atomic_load(&pg->committed);
		uint64_t committing = atomic_load(&pg->committing);
		uint64_t k = raw_batch(dir);
		by_phase[phase]++;
		if (k < k_prev)
			fail_msg("round %llu: the store went back from batch "
			    "%llu to %llu", (unsigned long long)r,
			    (unsigned long long)k_prev, (unsigned long long)k);
		if (phase >= PH_RECOVER)
			assert_int_equal(atomic_load(&pg->start_k), k_prev);
		if (phase == PH_COMMIT) {
			/* the commit in flight: all of it or nothing */
			if (k != committing && k + 1 != committing)
				fail_msg("killed committing batch %llu, store "
				    "at %llu", (unsigned long long)committing,
				    (unsigned long long)k);
			if (k == committing)
				commit_landed++;
			else
				commit_lost++;
		} else if (phase == PH_RUN) {
			/* every commit that returned is there */
			if (k != committed)
				fail_msg("last commit returned %llu, store at "
				    "%llu", (unsigned long long)committed,
				    (unsigned long long)k);
		} else {
			assert_int_equal(k, k_prev);
		}
		if (phase >= PH_RUN) {
			/* its recovery found what the model's did */
			assert_int_equal(atomic_load(&pg->requeued),
			    expect_requeued);
			requeue_rounds += expect_requeued > 0;
		}

		/* Replay to batch k and compare, then recover as the next
		 * child will. */
		double t0 = mono();
		while (m->k < k)
			model_batch(m, m->k + 1);
		model_self_check(m);
		raw_compare(dir, m);
		model_recover(m);
		recover_compare(dir, m);
		replay_s += mono() - t0;

		ks[r] = k;
		deltas[r] = k - k_prev;
		k_prev = k;
	}
	remove_dir(dir);
	dir[0] = '\0';
	double total = mono() - start;

	/* The distribution. */
	uint64_t *sorted = xcalloc(rounds, sizeof(*sorted));
	memcpy(sorted, deltas, rounds * sizeof(*sorted));
	qsort(sorted, rounds, sizeof(*sorted), u64_cmp);
	size_t distinct_k = 0, zero = 0;
	uint64_t sum = 0;
	uint64_t dmin = sorted[0], dmed = sorted[rounds / 2],
		 dmax = sorted[rounds - 1];
	for (uint64_t i = 0; i < rounds; i++) {
		sum += sorted[i];
		zero += sorted[i] == 0;
	}
	memcpy(sorted, ks, rounds * sizeof(*sorted));
	qsort(sorted, rounds, sizeof(*sorted), u64_cmp);
	for (uint64_t i = 0; i < rounds; i++)
		distinct_k += i == 0 || sorted[i] != sorted[i - 1];
	print_message("k after each kill (chains of %d):", CHAIN);
	for (uint64_t i = 0; i < rounds; i++)
		print_message("%s%llu", i % CHAIN ? " " : "\n  ",
		    (unsigned long long)ks[i]);
	print_message("\nbatches committed per round: min %llu, median %llu, "
	    "max %llu, total %llu; rounds without a commit %zu\n",
	    (unsigned long long)dmin, (unsigned long long)dmed,
	    (unsigned long long)dmax, (unsigned long long)sum, zero);
	print_message("distinct k: %zu; killed while forked %zu, opening %zu, "
	    "recovering %zu, between commits %zu, inside store_commit %zu "
	    "(landed %zu, not %zu); rounds resuming with requeued SCANNING "
	    "entries %zu\n", distinct_k, by_phase[PH_FORKED],
	    by_phase[PH_OPEN], by_phase[PH_RECOVER], by_phase[PH_RUN],
	    by_phase[PH_COMMIT], commit_landed, commit_lost, requeue_rounds);
	print_message("entries: %zu records written, %zu deleted, %zu keys "
	    "deleted and written again within one batch, highest handle "
	    "%u\n",
	    slot_stats.puts, slot_stats.dels, slot_stats.reused,
	    slot_stats.max_slot);
	print_message("%.1f s in all, %.1f s replaying and checking\n", total,
	    replay_s);
	/* Same seed, same digest: tests/crash_seed.sh checks it. */
	print_message("crash test: seed %#llx schedule digest %016llx "
	    "(SBOMD_CRASH_SEED=%#llx reproduces it)\n",
	    (unsigned long long)seed, (unsigned long long)schedule,
	    (unsigned long long)seed);

	/* The children did commit, and the kills fell at many batches. */
	assert_true(sum > 0);
	assert_true(distinct_k >= (rounds < 50 ? rounds / 5 : 10));
	assert_true(by_phase[PH_COMMIT] > 0); /* kills mid-transaction */
	assert_true(requeue_rounds > 0);
	if (rounds >= 50) { /* forgetting, and handles changing hands */
		assert_true(slot_stats.dels > 0);
	}

	free(sorted);
	free(ks);
	free(deltas);
	munmap(pg, sizeof(*pg));
	model_reset(m, 0);
	sim_free(&m->sim);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kill9, crash_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
