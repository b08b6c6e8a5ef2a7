/*
 * ownership: which input partitions this instance works on, and the
 * hand-over of their entities (docs/architecture.md "Scale-out").
 *
 * Every entity belongs to the input partition its events arrive on. With
 * a changelog (state.changelog_topic), an instance holds in memory only
 * the entities of the partitions assigned to it:
 *
 *   assigned  restore: replay the partition's changelog from the
 *             checkpoint kept in LMDB to its end into LMDB, then load the
 *             partition from LMDB into the tracker; only then is its input
 *             fetched (this runs inside the rebalance callback);
 *   revoking  abort the partition's running scans (no attempt counted),
 *             commit, wait (up to engine.shutdown_timeout) until the
 *             broker has every record committed so far, store the input
 *             offsets that depend on them, drop the partition's changelog
 *             records still unsent, commit again and release the entities
 *             from memory; kafkaio then commits the offsets.
 *
 * Replay. The checkpoint of a partition is the offset after the newest
 * changelog record of ours the broker acknowledged (kept with the
 * deletion of that record from the outbox, in one commit), or after the
 * last record replayed. Records past it are either ours (acknowledged
 * after the last commit: LMDB is at least as new, nothing to apply) or
 * another instance's (the partition was theirs meanwhile): then every
 * record from the checkpoint on is applied in order, and our own records
 * not yet sent for that partition are stale and dropped. The input events
 * behind them were never committed (offsets wait for the broker), so the
 * partition's new owner -- or we -- read them again.
 *
 * Without a changelog (a lone instance) everything is loaded at start and
 * nothing moves; a revoke is then logged as the mistake it is.
 *
 * Engine thread only.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tracker_record.h"
#include "service/changelog.h"
#include "service/engine_int.h"
#include "service/log.h"
#include "util/clock.h"
#include "util/vocab.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

#define PREPARE_TIMEOUT_MS 30000
#define RESTORE_TIMEOUT_MS 600000
/* A replay stages records in memory and writes them in one LMDB commit
 * (sorted by key, the last record of each key only) when it reaches the
 * end of the partition or one of these: memory for a restore is bounded
 * by about REPLAY_BATCH_BYTES plus 88 bytes a record. */
#define REPLAY_BATCH_RECORDS (1u << 18)
#define REPLAY_BATCH_BYTES ((size_t)64 << 20)
/* Partitions whose changelog is fetched ahead while one is restored. */
#define PREFETCH_PARTITIONS 3
/* Changelog keys: "<KIND>:<64 hex digits>" (util/vocab.h names; the
 * entity key's bytes: an image's digest, a host's name hashed), readable
 * with any Kafka tool and the same for a record and its tombstone. */
#define KEY_MAX 96

/* ---- per-partition state ------------------------------------------------ */

static void
grow(struct ownership *o, int32_t p)
{
	if ((size_t)p < o->cap)
		return;
	size_t cap = o->cap ? o->cap : 64;
	while (cap <= (size_t)p)
		cap *= 2;
	o->owned = xreallocarray(o->owned, cap, sizeof(*o->owned));
	o->ckpt = xreallocarray(o->ckpt, cap, sizeof(*o->ckpt));
	for (size_t i = o->cap; i < cap; i++) {
		o->owned[i] = 0;
		o->ckpt[i] = -1;
	}
	o->cap = cap;
}

static enum own_state
state_of(const engine *e, int32_t p)
{
	const struct ownership *o = &e->own;
	return p >= 0 && (size_t)p < o->cap ? (enum own_state)o->owned[p] :
					      OWN_NONE;
}

bool
own_partition(const engine *e, int32_t p)
{
	return state_of(e, p) == OWN_OWNED;
}

bool
own_may_produce(void *ctx, int32_t p)
{
	return own_partition(ctx, p);
}

static void
meta_name(char *buf, size_t len, int32_t p)
{
	snprintf(buf, len, "changelog/%" PRId32 "/next", p);
}

static void
put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* The checkpoint of p from the store, -1 when there is none. */
static int64_t
stored_checkpoint(engine *e, int32_t p)
{
	char name[48];
	uint8_t v[8];
	size_t len;
	meta_name(name, sizeof(name), p);
	if (store_meta_get(e->st, name, v, sizeof(v), &len) != 0 || len != 8)
		return -1;
	return (int64_t)get_be64(v);
}

/* Checkpoints acknowledged since the last commit, as meta values of the
 * next one (outbox_checkpoints' callback). */
static void
note_checkpoint(void *ctx, int32_t p, int64_t next)
{
	engine *e = ctx;
	struct ownership *o = &e->own;
	grow(o, p);
	if (next > o->ckpt[p])
		o->ckpt[p] = next;
	for (size_t i = 0; i < o->nmeta; i++)
		if (o->meta[i].partition == p) {
			put_be64(o->meta[i].value, (uint64_t)o->ckpt[p]);
			return;
		}
	if (o->nmeta == o->meta_cap) {
		o->meta_cap = o->meta_cap ? o->meta_cap * 2 : 16;
		o->meta = xreallocarray(o->meta, o->meta_cap, sizeof(*o->meta));
		o->metas = xreallocarray(o->metas, o->meta_cap,
		    sizeof(*o->metas));
	}
	struct own_meta *m = &o->meta[o->nmeta++];
	m->partition = p;
	meta_name(m->name, sizeof(m->name), p);
	put_be64(m->value, (uint64_t)o->ckpt[p]);
}

void
own_commit_meta(engine *e, struct store_batch *b)
{
	struct ownership *o = &e->own;
	if (!o->on)
		return;
	outbox_checkpoints(e->ob, note_checkpoint, e);
	for (size_t i = 0; i < o->nmeta; i++)
		o->metas[i] = (struct store_meta){ o->meta[i].name,
			o->meta[i].value, 8 };
	b->meta = o->metas;
	b->nmeta = o->nmeta;
}

void
own_committed(engine *e)
{
	e->own.nmeta = 0;
}

/* ---- changelog records of a commit -------------------------------------- */

/* The changelog key of k in out: its length. */
static size_t
key_text(char *out, const struct tracker_key *k)
{
	static const char hex[] = "0123456789abcdef";
	int n = snprintf(out, KEY_MAX, "%s:",
	    entity_kind_name((enum entity_kind)k->kind));
	for (size_t i = 0; i < TRACKER_KEY_LEN; i++) {
		out[n++] = hex[k->bytes[i] >> 4];
		out[n++] = hex[k->bytes[i] & 15];
	}
	return (size_t)n;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	    c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses a changelog key: 0, or -EINVAL. */
static int
key_parse(const char *s, size_t n, struct tracker_key *k)
{
	const char *colon = memchr(s, ':', n);
	char kind[24];
	if (colon == NULL || (size_t)(colon - s) >= sizeof(kind) ||
	    n - (size_t)(colon - s) - 1 != 2 * TRACKER_KEY_LEN)
		return -EINVAL;
	memcpy(kind, s, (size_t)(colon - s));
	kind[colon - s] = '\0';
	enum entity_kind ek;
	if (entity_kind_parse(kind, &ek) != 0)
		return -EINVAL;
	k->kind = (uint8_t)ek;
	for (size_t i = 0; i < TRACKER_KEY_LEN; i++) {
		int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		k->bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

uint8_t *
own_changelog_record(const struct store_entry *se, size_t *len)
{
	char key[KEY_MAX];
	size_t klen = key_text(key, &se->key);
	struct outbox_msg m = { .kind = OUTBOX_CHANGELOG,
		.partition = se->partition, .key = (const uint8_t *)key,
		.klen = klen, .value = se->rec,
		.vlen = se->rec ? se->len : 0 };
	return outbox_record(&m, len);
}

size_t
own_stage_changes(engine *e, const struct store_entry *ents, size_t n)
{
	struct ownership *o = &e->own;
	size_t staged = 0;
	if (!o->on)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_entry *se = &ents[i];
		/* Only our partitions' changes (those of a lost one wait
		 * for it to come back): a deletion of an entity's old
		 * place in a partition we do not hold is that partition's
		 * owner's business. */
		if (state_of(e, se->partition) == OWN_NONE)
			continue;
		size_t len;
		uint8_t *rec = own_changelog_record(se, &len);
		/* The store keeps a reference to the entry the same
		 * commit writes, not a second copy of it. */
		outbox_stage_entry(e->ob, rec, len, se->partition, &se->key);
		staged++;
	}
	return staged;
}

/* ---- set-up ------------------------------------------------------------- */

int
own_open(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *c = e->cfg;
	struct ownership *o = &e->own;
	o->on = c->state.changelog_topic[0] != '\0';
	e->snap->changelog = o->on;
	snprintf(o->instance, sizeof(o->instance), "%s",
	    c->kafka.group_instance_id[0] ? c->kafka.group_instance_id :
					    "sbomd");
	if (!o->on)
		return 0;
	int32_t n = 0;
	int rc = changelog_prepare(kio_producer(e->k), c->kafka.input_topic,
	    c->state.changelog_topic, PREPARE_TIMEOUT_MS, &n, err, errlen);
	if (rc != 0)
		return rc;
	o->npart = n;
	grow(o, n > 0 ? n - 1 : 0);
	struct kclient_prop *props = xcalloc(
	    c->kafka.consumer_properties.n + 1, sizeof(*props));
	for (size_t i = 0; i < c->kafka.consumer_properties.n; i++)
		props[i] = (struct kclient_prop){
			c->kafka.consumer_properties.v[i].name,
			c->kafka.consumer_properties.v[i].value };
	rc = changelog_reader_open(c->kafka.brokers, props,
	    c->kafka.consumer_properties.n, c->state.changelog_topic,
	    &o->reader, err, errlen);
	free(props);
	if (rc != 0)
		return rc;
	char np[16];
	snprintf(np, sizeof(np), "%" PRId32, n);
	log_kv(LOG_INFO, "changelog ready", "topic", c->state.changelog_topic,
	    "partitions", np, "instance", o->instance, (char *)NULL);
	return 0;
}
static void
batch_reset(struct replay_batch *b)
{
	b->nents = 0;
	b->nbytes = 0;
	b->sorted = false;
	arena_reset(&b->bytes);
}

static void
batch_free(struct replay_batch *b)
{
	free(b->ents);
	arena_free(&b->bytes);
	memset(b, 0, sizeof(*b));
}

void
own_close(engine *e)
{
	struct ownership *o = &e->own;
	changelog_reader_close(o->reader);
	free(o->owned);
	free(o->ckpt);
	free(o->meta);
	free(o->metas);
	batch_free(&o->batch);
	memset(o, 0, sizeof(*o));
}

/* ---- restore ------------------------------------------------------------ */

struct replay {
	engine *e;
	struct replay_batch *b; /* where records are staged */
	int32_t p;
	bool apply;	/* pass 2: write every record */
	bool foreign;	/* a record of another instance was seen */
	/* The partition had nothing in LMDB and the whole replay went in one
	 * commit: the tracker is loaded from that batch (loaded), not read
	 * back from LMDB. */
	bool direct, loaded;
	/* On the stager's thread: records are only staged, counters are the
	 * engine's to add (records, bad), and a partition larger than one
	 * batch is refused (-EOVERFLOW). */
	bool staging;
	int64_t next;	/* the offset after the last record handled */
	uint64_t records, bad;
	int64_t read_ms; /* staged: the stager's time on it */
	struct store_recovery rec; /* what the direct load loaded */
	int64_t sort_us, commit_us, load_us; /* where the time went */
	char err[512];
};

static bool
is_ours(const struct ownership *o, const struct changelog_record *r)
{
	size_t n = strlen(o->instance);
	return r->instance != NULL && r->ilen == n &&
	    memcmp(r->instance, o->instance, n) == 0;
}

struct staged {
	uint64_t head; /* the key's first 8 bytes, big-endian: most
			  comparisons end here */
	struct tracker_key key;
	uint32_t i; /* in the changelog's order */
};

static int
staged_cmp(const void *a, const void *b)
{
	const struct staged *x = a, *y = b;
	if (x->head != y->head)
		return x->head < y->head ? -1 : 1;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));
	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* Puts the staged entries in key order, keeping the newest record of each
 * key only: LMDB then writes each leaf page once, and the batch can be
 * loaded as it is. */
static void
sort_staged(struct replay_batch *b)
{
	if (b->sorted || b->nents < 2) {
		b->sorted = true;
		return;
	}
	struct staged *ord = xreallocarray(NULL, b->nents, sizeof(*ord));
	struct store_entry *out = xreallocarray(NULL, b->nents,
	    sizeof(*out));
	for (size_t i = 0; i < b->nents; i++) {
		ord[i].key = b->ents[i].key;
		ord[i].i = (uint32_t)i;
		ord[i].head = (uint64_t)ord[i].key.kind << 56 |
		    get_be64(ord[i].key.bytes) >> 8;
	}
	qsort(ord, b->nents, sizeof(*ord), staged_cmp);
	size_t n = 0;
	for (size_t i = 0; i < b->nents; i++) {
		if (i + 1 < b->nents && memcmp(&ord[i].key, &ord[i + 1].key,
		    sizeof(ord[i].key)) == 0)
			continue; /* a newer record of the key follows */
		out[n++] = b->ents[ord[i].i];
	}
	memcpy(b->ents, out, n * sizeof(*out));
	b->nents = n;
	b->sorted = true;
	free(out);
	free(ord);
}


/* Loads the staged batch, just committed, into the tracker. */
static int
load_staged(struct replay *rp)
{
	engine *e = rp->e;
	const struct replay_batch *b = rp->b;
	int64_t now = engine_now(e);
	memset(&rp->rec, 0, sizeof(rp->rec));
	tracker_reserve(e->t, b->nents);
	for (size_t i = 0; i < b->nents; i++) {
		const struct store_entry *se = &b->ents[i];
		bool requeued = false;
		if (se->rec == NULL)
			continue; /* a tombstone: nothing in memory */
		int rc = tracker_record_load(e->t, se->rec, se->len, now,
		    &requeued, rp->err, sizeof(rp->err));
		if (rc != 0)
			return rc;
		rp->rec.entries++;
		rp->rec.requeued += requeued;
	}
	return 0;
}

/* Writes the replayed entries so far and the checkpoint after them, in
 * one commit; the last one of a direct replay loads them too. */
static int
replay_flush(struct replay *rp, bool last)
{
	engine *e = rp->e;
	struct replay_batch *rb = rp->b;
	char name[48];
	uint8_t v[8];
	meta_name(name, sizeof(name), rp->p);
	put_be64(v, (uint64_t)rp->next);
	int64_t t0 = clock_mono_us();
	sort_staged(rb);
	int64_t t1 = clock_mono_us();
	struct store_meta m = { name, v, 8 };
	struct store_batch b = { .entries = rb->ents, .nentries = rb->nents,
		.meta = &m, .nmeta = 1 };
	int rc = store_commit(e->st, &b, rp->err, sizeof(rp->err));
	int64_t t2 = clock_mono_us();
	rp->sort_us += t1 - t0;
	rp->commit_us += t2 - t1;
	if (rc != 0)
		return rc;
	e->own.ckpt[rp->p] = rp->next;
	if (!last)
		rp->direct = false; /* what went before is in LMDB only */
	else if (rp->direct && load_staged(rp) == 0)
		rp->loaded = true;
	rp->load_us += clock_mono_us() - t2;
	batch_reset(rb);
	engine_publish(e); /* /healthz: the engine is busy, not stalled */
	return 0;
}

static void
bad_record(struct replay *rp, const struct changelog_record *r,
    const char *why)
{
	rp->bad++;
	if (!rp->staging)
		rp->e->snap->bad_records++;
	char part[16], off[24];
	snprintf(part, sizeof(part), "%" PRId32, r->partition);
	snprintf(off, sizeof(off), "%" PRId64, r->offset);
	log_kv(LOG_WARN, "changelog record skipped", "partition", part,
	    "offset", off, "error", why, (char *)NULL);
}

static int
replay_one(void *ctx, const struct changelog_record *r)
{
	struct replay *rp = ctx;
	struct replay_batch *b = rp->b;
	if (!rp->apply) {
		if (!is_ours(&rp->e->own, r)) {
			rp->foreign = true;
			return -EAGAIN; /* pass 2 from the checkpoint */
		}
		rp->next = r->offset + 1;
		return 0;
	}
	rp->next = r->offset + 1;
	rp->records++;
	if (!rp->staging)
		rp->e->snap->restored_records++;
	struct tracker_key key;
	memset(&key, 0, sizeof(key));
	if (r->key == NULL || key_parse(r->key, r->klen, &key) != 0) {
		bad_record(rp, r, "the key is not an entity key "
		    "(KIND:64 hex digits)");
		return 0;
	}
	struct store_entry se = { rp->p, key, NULL, 0 };
	if (r->value != NULL) {
		struct tracker_key rk;
		int32_t rpart;
		char why[256];
		if (tracker_record_validate(r->value, r->vlen, &rk, &rpart,
			why, sizeof(why)) != 0) {
			bad_record(rp, r, why);
			return 0;
		}
		if (rpart != rp->p || memcmp(&rk, &key, sizeof(key)) != 0) {
			bad_record(rp, r, "the record's partition or key is "
			    "not the message's");
			return 0;
		}
		void *copy = arena_alloc(&b->bytes, r->vlen);
		memcpy(copy, r->value, r->vlen);
		se.rec = copy;
		se.len = r->vlen;
	}
	if (b->nents == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		b->ents = xreallocarray(b->ents, b->cap, sizeof(*b->ents));
	}
	b->ents[b->nents++] = se;
	b->sorted = false;
	b->nbytes += se.len;
	if (b->nents >= REPLAY_BATCH_RECORDS ||
	    b->nbytes >= REPLAY_BATCH_BYTES)
		return rp->staging ? -EOVERFLOW : replay_flush(rp, false);
	return 0;
}

/* Replays p's changelog into the store (see the top of the file): 0, or a
 * negative errno with err. */
static int
replay(engine *e, int32_t p, struct replay *rp)
{
	struct ownership *o = &e->own;
	int64_t ckpt = stored_checkpoint(e, p);
	int64_t from = ckpt >= 0 ? ckpt : 0, end = from;
	memset(rp, 0, sizeof(*rp));
	rp->e = e;
	rp->b = &o->batch;
	rp->p = p;
	rp->next = from;
	/* With no checkpoint everything is applied; else look first.
	 * Exactly-once: LMDB follows Kafka's transactions, so every record
	 * past the checkpoint is newer than LMDB, ours too. */
	rp->apply = ckpt < 0 || e->txn.on;
	rp->direct = store_partition_empty(e->st, p) == 1;
	int rc = changelog_read(o->reader, p, from, replay_one, rp, &end,
	    e->stop, RESTORE_TIMEOUT_MS, rp->err, sizeof(rp->err));
	if (rc == -EAGAIN && rp->foreign) {
		size_t dropped = outbox_drop_changelog(e->ob, p);
		if (dropped > 0) {
			char n[24], part[16];
			snprintf(n, sizeof(n), "%zu", dropped);
			snprintf(part, sizeof(part), "%" PRId32, p);
			log_kv(LOG_WARN, "stale changelog records dropped",
			    "partition", part, "records", n, (char *)NULL);
		}
		rp->apply = true;
		rp->next = from;
		rc = changelog_read(o->reader, p, from, replay_one, rp, &end,
		    e->stop, RESTORE_TIMEOUT_MS, rp->err, sizeof(rp->err));
	}
	if (rc != 0)
		return rc;
	rp->next = end;
	return replay_flush(rp, true);
}

/* Restores partition p: replays its changelog, or, with staged (a replay
 * the stager read in full, see below), commits and loads what it read. */
static int
restore(engine *e, int32_t p, struct replay *staged)
{
	char part[16], err[512];
	snprintf(part, sizeof(part), "%" PRId32, p);
	int64_t t0 = clock_mono_ms();
	struct replay rp;
	int rc;
	if (staged != NULL) {
		rp = *staged;
		rp.staging = false;
		e->snap->restored_records += rp.records;
		e->snap->bad_records += rp.bad;
		t0 -= rp.read_ms;
		rc = replay_flush(&rp, true);
	} else {
		rc = replay(e, p, &rp);
	}
	/* The checkpoint is past the partition's end: the topic was deleted
	 * and created again (or truncated). What it held is gone; LMDB is
	 * the state, published again below from offset 0. */
	bool recreated = rc == -ERANGE;
	if (rc != 0) {
		/* Keep what LMDB has: it is this instance's latest state. */
		log_kv(LOG_ERROR, "changelog replay failed; the partition "
		    "runs on the local state", "partition", part, "error",
		    rp.err, (char *)NULL);
	}
	if (recreated) {
		rp.next = 0;
		rp.direct = false;
		batch_reset(rp.b);
		if (replay_flush(&rp, true) != 0)
			log_kv(LOG_ERROR, "resetting the checkpoint failed",
			    "partition", part, "error", rp.err, (char *)NULL);
	}
	int64_t ckpt_before = stored_checkpoint(e, p);
	struct store_recovery rec = rp.rec;
	if (!rp.loaded)
		rc = store_load_partition(e->st, p, e->t, engine_now(e), &rec,
		    err, sizeof(err));
	if (rc != 0) {
		log_kv(LOG_ERROR, "loading the partition failed", "partition",
		    part, "error", err, (char *)NULL);
		snprintf(e->own.fatal, sizeof(e->own.fatal),
		    "loading partition %" PRId32 ": %s", p, err);
		return rc;
	}
	/* A state kept before there was a changelog (or one whose changelog
	 * was deleted and is empty now): publish it, or a takeover would
	 * not see it. */
	if ((rp.records == 0 && rp.next == 0 && rec.entries > 0 &&
	    ckpt_before <= 0) || (recreated && rec.entries > 0)) {
		size_t n = tracker_touch_partition(e->t, p);
		char nn[24];
		snprintf(nn, sizeof(nn), "%zu", n);
		log_kv(LOG_INFO, "publishing the local state to an empty "
		    "changelog partition", "partition", part, "entities", nn,
		    (char *)NULL);
	}
	char ents[24], recs[24], bad[24], secs[24], ck[24], rs[24], cs[24],
	    ls[24];
	int64_t took_us = (clock_mono_ms() - t0) * 1000;
	int64_t write_us = rp.sort_us + rp.commit_us;
	snprintf(ents, sizeof(ents), "%zu", rec.entries);
	snprintf(recs, sizeof(recs), "%" PRIu64, rp.records);
	snprintf(bad, sizeof(bad), "%" PRIu64, rp.bad);
	snprintf(secs, sizeof(secs), "%.3f", (double)took_us / 1e6);
	int64_t read_us = took_us - write_us - rp.load_us;
	snprintf(rs, sizeof(rs), "%.3f", (double)(read_us > 0 ? read_us : 0) /
	    1e6);
	snprintf(cs, sizeof(cs), "%.3f", (double)write_us / 1e6);
	snprintf(ls, sizeof(ls), "%.3f", (double)rp.load_us / 1e6);
	snprintf(ck, sizeof(ck), "%" PRId64, e->own.ckpt[p]);
	/* seconds = reading (the changelog, decoding, staging) + writing
	 * (sorting, the LMDB commit) + loading (into the tracker). */
	log_kv(LOG_INFO, "partition restored", "partition", part, "entities",
	    ents, "replayed", recs, "bad", bad, "checkpoint", ck, "seconds",
	    secs, "reading", rs, "writing", cs, "loading", ls, (char *)NULL);
	return 0;
}

/* ---- rebalances --------------------------------------------------------- */

static bool
input_partition(const engine *e, const rd_kafka_topic_partition_t *tp)
{
	return strcmp(tp->topic, e->cfg->kafka.input_topic) == 0 &&
	    tp->partition >= 0;
}

/* Whether p's changelog has records of another instance past its
 * checkpoint (the partition was someone else's meanwhile): -1 when it
 * cannot be read. */
static int
foreign_since_checkpoint(engine *e, int32_t p)
{
	struct replay rp;
	memset(&rp, 0, sizeof(rp));
	rp.e = e;
	rp.p = p;
	int64_t from = stored_checkpoint(e, p), end;
	if (from < 0)
		from = 0;
	int rc = changelog_read(e->own.reader, p, from, replay_one, &rp, &end,
	    e->stop, RESTORE_TIMEOUT_MS, rp.err, sizeof(rp.err));
	if (rc == -EAGAIN && rp.foreign)
		return 1;
	return rc == 0 ? 0 : -1;
}

/* Lets go of partition p: its scans aborted, its changes committed, its
 * unsent changelog records dropped, its entities released from memory.
 * Returns how many entities. */
static size_t
let_go(engine *e, int32_t p, size_t *dropped)
{
	char why[512];
	scans_release_partition(e, p, engine_now(e));
	if (engine_commit_now(e, why, sizeof(why)) != 0)
		log_kv(LOG_ERROR, "commit on release failed", "error", why,
		    (char *)NULL);
	kio_forget_offsets(e->k, p);
	*dropped += outbox_drop_changelog(e->ob, p);
	if (engine_commit_now(e, why, sizeof(why)) != 0)
		log_kv(LOG_ERROR, "commit on release failed", "error", why,
		    (char *)NULL);
	e->own.owned[p] = OWN_NONE;
	return tracker_release_partition(e->t, p);
}

/* A lost partition assigned to us again: kept as it is when nobody
 * wrote its changelog meanwhile, else let go and restored. */
static void
regain(engine *e, int32_t p)
{
	if (foreign_since_checkpoint(e, p) == 0) {
		e->own.owned[p] = OWN_OWNED;
		return;
	}
	size_t dropped = 0;
	e->snap->released += let_go(e, p, &dropped);
	if (restore(e, p, NULL) == 0)
		e->own.owned[p] = OWN_OWNED;
}

static bool
in_list(const rd_kafka_topic_partition_list_t *parts, const engine *e,
    int32_t p)
{
	for (int i = 0; i < parts->cnt; i++)
		if (input_partition(e, &parts->elems[i]) &&
		    parts->elems[i].partition == p)
			return true;
	return false;
}

/* Starts fetching the changelog of the next partition of parts from
 * index *next on that will be restored (assigned, not lost). */
static void
prefetch_next(engine *e, const rd_kafka_topic_partition_list_t *parts,
    int *next)
{
	for (; *next < parts->cnt; (*next)++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[*next];
		if (!input_partition(e, tp) || (tp->partition <
		    (int32_t)e->own.cap && e->own.owned[tp->partition] ==
		    OWN_LOST))
			continue;
		int64_t from = stored_checkpoint(e, tp->partition);
		changelog_prefetch(e->own.reader, tp->partition,
		    from >= 0 ? from : 0);
		(*next)++;
		return;
	}
}

/* ---- the stager ----------------------------------------------------------
 *
 * A restore of partitions new to this instance (no checkpoint, nothing in
 * LMDB: every record is applied, in one commit when the partition fits
 * one batch) reads, checks and sorts the next partition on a thread of
 * its own while the engine commits and loads the one before it.
 *
 * Concurrency: from stager_start to stager_end the stager's thread owns
 * the changelog reader; the engine does not touch it. Two slots pass
 * partitions from the stager to the engine under mu and cv: the stager
 * fills a FREE slot (FILLING) and hands it over READY, or FAILED and then
 * ends; the engine commits and loads a READY slot and frees it again. The
 * stager touches nothing else of the engine's: the engine adds its
 * counters when it takes a slot. A partition larger than one batch, an
 * error or a stop ends the stager; that partition and the ones after it
 * are restored by the engine itself, after stager_end. Memory: two
 * batches (up to about 2 x REPLAY_BATCH_BYTES) instead of one.
 */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_FAILED };

struct stage_slot {
	enum slot_state state;
	struct replay rp;
	struct replay_batch b;
};

struct stager {
	engine *e;
	int32_t *parts; /* to stage, in the assignment's order */
	size_t nparts;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	volatile sig_atomic_t cancel; /* set under mu */
	struct stage_slot slot[2];
};

static void *
stager_main(void *arg)
{
	struct stager *s = arg;
	changelog_reader *r = s->e->own.reader;
	size_t ahead = 0;
	for (size_t i = 0; i < s->nparts; i++) {
		for (; ahead < s->nparts && ahead <= i + PREFETCH_PARTITIONS;
		     ahead++)
			changelog_prefetch(r, s->parts[ahead], 0);
		struct stage_slot *sl = &s->slot[i % 2];
		pthread_mutex_lock(&s->mu);
		while (sl->state != SLOT_FREE && !s->cancel)
			pthread_cond_wait(&s->cv, &s->mu);
		bool cancel = s->cancel;
		if (!cancel)
			sl->state = SLOT_FILLING;
		pthread_mutex_unlock(&s->mu);
		if (cancel)
			break;
		struct replay *rp = &sl->rp;
		batch_reset(&sl->b);
		memset(rp, 0, sizeof(*rp));
		rp->e = s->e;
		rp->b = &sl->b;
		rp->p = s->parts[i];
		rp->apply = rp->direct = rp->staging = true;
		int64_t t0 = clock_mono_us(), end = 0;
		int rc = changelog_read(r, rp->p, 0, replay_one, rp, &end,
		    &s->cancel, RESTORE_TIMEOUT_MS, rp->err, sizeof(rp->err));
		if (rc == 0) {
			int64_t t1 = clock_mono_us();
			rp->next = end;
			sort_staged(rp->b);
			rp->sort_us = clock_mono_us() - t1;
		}
		rp->read_ms = (clock_mono_us() - t0) / 1000;
		pthread_mutex_lock(&s->mu);
		sl->state = rc == 0 ? SLOT_READY : SLOT_FAILED;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		if (rc != 0)
			break;
	}
	return NULL;
}

/* Starts a stager for the leading partitions of parts that are new to
 * this instance; NULL when fewer than two are (nothing to overlap) or
 * the thread cannot start. */
static struct stager *
stager_start(engine *e, const rd_kafka_topic_partition_list_t *parts)
{
	struct ownership *o = &e->own;
	struct stager *s = xcalloc(1, sizeof(*s));
	s->e = e;
	s->parts = xreallocarray(NULL, (size_t)parts->cnt + 1,
	    sizeof(*s->parts));
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (!input_partition(e, tp))
			continue;
		grow(o, tp->partition);
		if (o->owned[tp->partition] == OWN_LOST ||
		    stored_checkpoint(e, tp->partition) >= 0 ||
		    store_partition_empty(e->st, tp->partition) != 1)
			break;
		s->parts[s->nparts++] = tp->partition;
	}
	if (s->nparts >= 2) {
		pthread_mutex_init(&s->mu, NULL);
		pthread_cond_init(&s->cv, NULL);
		if (pthread_create(&s->th, NULL, stager_main, s) == 0)
			return s;
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
	}
	free(s->parts);
	free(s);
	return NULL;
}

/* Stops the stager (at once: a read in progress is abandoned), waits for
 * its thread and frees it; the reader is the engine's again. */
static void
stager_end(struct stager *s)
{
	pthread_mutex_lock(&s->mu);
	s->cancel = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	for (size_t i = 0; i < 2; i++)
		batch_free(&s->slot[i].b);
	free(s->parts);
	free(s);
}

/* The staged replay of partition p, the stager's k-th, once it is ready;
 * NULL when p is not that partition or the stager failed it (or the
 * engine is stopping): the caller then ends the stager and restores p
 * itself. */
static struct replay *
stager_take(struct stager *s, size_t k, int32_t p)
{
	if (k >= s->nparts || s->parts[k] != p)
		return NULL;
	struct stage_slot *sl = &s->slot[k % 2];
	pthread_mutex_lock(&s->mu);
	while (sl->state == SLOT_FREE || sl->state == SLOT_FILLING) {
		if (*s->e->stop)
			break;
		struct timespec dl = clock_realtime_in(100);
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			engine_publish(s->e); /* busy, not stalled */
			pthread_mutex_lock(&s->mu);
		}
	}
	bool ready = sl->state == SLOT_READY;
	pthread_mutex_unlock(&s->mu);
	return ready ? &sl->rp : NULL;
}

/* Gives the k-th slot back to the stager. */
static void
stager_release(struct stager *s, size_t k)
{
	struct stage_slot *sl = &s->slot[k % 2];
	pthread_mutex_lock(&s->mu);
	sl->state = SLOT_FREE;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* The changelog bounds of every input partition of parts, in two
 * requests (changelog_bounds); a failure only costs the reads their own
 * look-ups. */
static void
look_up_bounds(engine *e, const rd_kafka_topic_partition_list_t *parts)
{
	int32_t *ps = xreallocarray(NULL, (size_t)parts->cnt + 1,
	    sizeof(*ps));
	size_t n = 0;
	for (int i = 0; i < parts->cnt; i++)
		if (input_partition(e, &parts->elems[i]))
			ps[n++] = parts->elems[i].partition;
	char err[512];
	if (changelog_bounds(e->own.reader, ps, n, PREPARE_TIMEOUT_MS, err,
	    sizeof(err)) < 0)
		log_kv(LOG_WARN, "changelog offsets: each partition is looked "
		    "up on its own", "error", err, (char *)NULL);
	free(ps);
}

void
own_assigned(void *ctx, const rd_kafka_topic_partition_list_t *parts)
{
	engine *e = ctx;
	engine_commit_settle(e);
	struct ownership *o = &e->own;
	int next = 0;
	if (e->shutdown_deadline != 0) {
		/* Assigned while the consumer closes (the group came back
		 * during the shutdown): revoked again at once, so nothing is
		 * restored or regained, which would not be bounded by the
		 * shutdown's deadline. */
		char n[16];
		snprintf(n, sizeof(n), "%d", parts->cnt);
		log_kv(LOG_INFO, "partitions assigned while shutting down: "
		    "left alone", "count", n, (char *)NULL);
		return;
	}
	/* Every partition to restore counts from the start: the stager
	 * reads ahead while the engine waits for it. */
	for (int i = 0; o->on && i < parts->cnt; i++)
		e->snap->restoring += input_partition(e, &parts->elems[i]);
	engine_publish(e);
	if (o->on)
		look_up_bounds(e, parts);
	struct stager *sg = o->on ? stager_start(e, parts) : NULL;
	size_t taken = 0;
	for (int i = 0; sg == NULL && o->on && i < PREFETCH_PARTITIONS; i++)
		prefetch_next(e, parts, &next);
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (!input_partition(e, tp))
			continue;
		struct replay *staged = NULL;
		if (sg != NULL &&
		    (staged = stager_take(sg, taken, tp->partition)) == NULL) {
			/* The engine goes on alone from here. */
			stager_end(sg);
			sg = NULL;
			next = i;
			for (int k = 0; k < PREFETCH_PARTITIONS; k++)
				prefetch_next(e, parts, &next);
		}
		if (o->on && sg == NULL)
			prefetch_next(e, parts, &next);
		grow(o, tp->partition);
		if (!o->on) {
			o->owned[tp->partition] = OWN_OWNED;
			continue;
		}
		engine_publish(e);
		if (o->owned[tp->partition] == OWN_LOST)
			regain(e, tp->partition);
		else if (restore(e, tp->partition, staged) == 0)
			o->owned[tp->partition] = OWN_OWNED;
		if (staged != NULL)
			stager_release(sg, taken++);
		e->snap->restoring--;
	}
	if (sg != NULL)
		stager_end(sg);
	if (o->on) /* a later read asks for its own end */
		changelog_bounds(o->reader, NULL, 0, 0, NULL, 0);
	if (o->on) {
		/* Lost partitions that did not come back are someone
		 * else's; records of partitions that are not ours are stale
		 * (a restart after a crash): their input is read again by
		 * the partition's owner. */
		size_t released = 0, dropped = 0;
		for (size_t p = 0; p < o->cap; p++) {
			if (o->owned[p] == OWN_LOST &&
			    !in_list(parts, e, (int32_t)p))
				released += let_go(e, (int32_t)p, &dropped);
			if (o->owned[p] == OWN_NONE)
				dropped += outbox_drop_changelog(e->ob,
				    (int32_t)p);
		}
		e->snap->released += released;
		/* Records held while their partition was not ours (unsent
		 * at a crash, or of a lost partition back now) go out now:
		 * a quiet input would make no commit to take them. */
		outbox_produce_soon(e->ob);
	}
	engine_publish(e);
}

/* Waits until the broker has every record committed so far, up to
 * engine.shutdown_timeout, and while shutting down no later than the
 * shutdown's deadline (this runs in the last revoke, inside kio_close,
 * after the drain has spent most of the budget: a whole budget more here
 * held the exit with the broker gone); true when it has. */
static bool
wait_acks(engine *e)
{
	uint64_t target = outbox_last_seq(e->ob);
	int64_t deadline = clock_mono_ms() + e->cfg->engine.shutdown_timeout_ms;
	if (e->shutdown_deadline != 0 && e->shutdown_deadline < deadline)
		deadline = e->shutdown_deadline;
	outbox_produce(e->ob, kio_producer(e->k),
	    kio_changelog_topic(e->k));
	while (outbox_unacked_min(e->ob) <= target) {
		if (clock_mono_ms() >= deadline)
			return false;
		kio_poll_producer(e->k, 50);
		outbox_produce(e->ob, kio_producer(e->k),
		    kio_changelog_topic(e->k));
	}
	return true;
}

/* The group session expired: nothing can be committed for these
 * partitions, and the broker is probably out of reach. Their entities
 * stay in memory and are scanned (outcomes wait in the outbox); their
 * changelog records are kept back. When the partition comes back it is
 * kept, or let go and restored if another instance wrote it meanwhile;
 * when it does not, it is let go. */
static void
lose(engine *e, const rd_kafka_topic_partition_list_t *parts)
{
	struct ownership *o = &e->own;
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (!input_partition(e, tp) || !own_partition(e, tp->partition))
			continue;
		kio_forget_offsets(e->k, tp->partition);
		o->owned[tp->partition] = OWN_LOST;
	}
	engine_publish(e);
}

void
own_revoking(void *ctx, const rd_kafka_topic_partition_list_t *parts,
    bool lost)
{
	engine *e = ctx;
	struct ownership *o = &e->own;
	engine_commit_settle(e);
	int64_t now = engine_now(e);
	if (o->on && lost && e->txn.on) {
		/* Nothing can be committed for them any more, and memory
		 * holds work not in Kafka: back to what Kafka has. */
		own_rewind(e, parts);
		return;
	}
	if (o->on && lost && !*e->stop) {
		lose(e, parts);
		return;
	}
	if (!o->on) {
		if (!o->warned_lone && !*e->stop) {
			log_kv(LOG_WARN, "partitions revoked, but "
			    "state.changelog_topic is \"\": another member "
			    "joined the group, and entities do not follow "
			    "their partition without a changelog; run one "
			    "instance, or set state.changelog_topic",
			    (char *)NULL);
			o->warned_lone = true;
		}
		return;
	}
	size_t n = 0;
	for (int i = 0; i < parts->cnt; i++)
		if (input_partition(e, &parts->elems[i]) &&
		    own_partition(e, parts->elems[i].partition)) {
			scans_release_partition(e, parts->elems[i].partition,
			    now);
			n++;
		}
	if (n == 0)
		return;
	char why[512];
	if (engine_commit_now(e, why, sizeof(why)) != 0)
		log_kv(LOG_ERROR, "commit on revoke failed", "error", why,
		    (char *)NULL);
	bool acked = wait_acks(e);
	kio_release_offsets(e->k, outbox_unacked_min(e->ob));
	size_t released = 0, dropped = 0;
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (!input_partition(e, tp) || !own_partition(e, tp->partition))
			continue;
		kio_forget_offsets(e->k, tp->partition);
		dropped += outbox_drop_changelog(e->ob, tp->partition);
	}
	if (engine_commit_now(e, why, sizeof(why)) != 0)
		log_kv(LOG_ERROR, "commit on revoke failed", "error", why,
		    (char *)NULL);
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (!input_partition(e, tp) || !own_partition(e, tp->partition))
			continue;
		released += tracker_release_partition(e->t, tp->partition);
		o->owned[tp->partition] = OWN_NONE;
	}
	e->snap->released += released;
	char np[24], ne[24], nd[24];
	snprintf(np, sizeof(np), "%zu", n);
	snprintf(ne, sizeof(ne), "%zu", released);
	snprintf(nd, sizeof(nd), "%zu", dropped);
	log_kv(acked ? LOG_INFO : LOG_WARN, acked ? "partitions released" :
	    "partitions released before the broker acknowledged everything",
	    "partitions", np, "entities", ne, "unsent_changelog", nd,
	    (char *)NULL);
	engine_publish(e);
}

void
own_rewind(engine *e, const rd_kafka_topic_partition_list_t *gone)
{
	struct ownership *o = &e->own;
	int64_t now = engine_now(e);
	size_t released = 0;
	for (size_t p = 0; p < o->cap; p++)
		if (o->owned[p] != OWN_NONE)
			scans_release_partition(e, (int32_t)p, now);
	/* Changes not in Kafka are dropped with their entities. */
	tracker_clear_dirty(e->t);
	for (size_t p = 0; p < o->cap; p++)
		if (o->owned[p] != OWN_NONE) {
			released += tracker_release_partition(e->t, (int32_t)p);
			o->owned[p] = OWN_NONE;
		}
	e->snap->released += released;
	o->nmeta = 0;
	e->txn.kafka_done = false;
	e->txn.nentries = 0;
	e->first_change_ms = 0;
	e->uncommitted = 0;
	outbox_reset(e->ob);
	engine_reload_outbox(e);
	kio_rewind(e->k, gone);
	const rd_kafka_topic_partition_list_t *a = kio_assignment(e->k);
	size_t n = 0;
	for (int i = 0; a != NULL && i < a->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &a->elems[i];
		if (!input_partition(e, tp) || (gone != NULL &&
		    rd_kafka_topic_partition_list_find(gone, tp->topic,
			tp->partition) != NULL))
			continue;
		grow(o, tp->partition);
		e->snap->restoring++;
		engine_publish(e);
		if (restore(e, tp->partition, NULL) == 0)
			o->owned[tp->partition] = OWN_OWNED;
		e->snap->restoring--;
		n++;
	}
	char np[24], ne[24];
	snprintf(np, sizeof(np), "%zu", n);
	snprintf(ne, sizeof(ne), "%zu", released);
	log_kv(LOG_WARN, "state rewound to the last committed transaction",
	    "partitions_restored", np, "entities_dropped", ne, (char *)NULL);
	engine_publish(e);
}

void
own_snapshot(const engine *e, struct snapshot *s)
{
	const struct ownership *o = &e->own;
	size_t owned = 0, n = 0;
	for (size_t p = 0; p < o->cap; p++) {
		if (!o->owned[p] && o->ckpt[p] < 0)
			continue;
		owned += o->owned[p] == OWN_OWNED;
		if (n < PUB_MAX_PARTITIONS) {
			s->ckpts[n].partition = (int32_t)p;
			s->ckpts[n].next = o->ckpt[p];
			s->ckpts[n].owned = o->owned[p] == OWN_OWNED;
			n++;
		}
	}
	s->nckpts = n;
	s->partitions_owned = owned;
}
