/*
 * test_store: the LMDB state store (consumer/store) together with the
 * tracker's record encoding and loading (tracker_record_encode /
 * tracker_record_load / tracker_record_validate).
 *
 * - round trip: a few hundred varied events (images and hosts, several
 *   sources, tags and digests, UNSETs, jobs popped and completed with
 *   success, retryable and permanent failures), committed in batches;
 *   the raw LMDB records are found under their (partition, kind, key)
 *   (37 bytes, partition big-endian), each is tracker_record_encode's
 *   output; after reopen + recover every entity is back, equal field by
 *   field, source by source and byte for byte, the heaps hold the same
 *   (due, key) pairs and tracker_check passes;
 * - SCANNING at the crash comes back QUEUED due at the recovery time with
 *   the same attempt; a retry schedule is kept as it was;
 * - group commit: the dirty set is cleared by a commit, a key forgotten and
 *   created again in one batch ends up present, one forgotten for good
 *   ends up absent; a failed commit writes nothing and keeps the dirty
 *   set; an entity moving to another partition leaves its old key;
 * - partitions: store_load_partition of one partition, of all; release
 *   and load again; store_drop_partition with its meta prefix;
 *   store_partitions;
 * - a format-1 store (slot keys, built here) is migrated at open, and
 *   read as it is when opened read-only;
 * - outbox sequences, meta values (put and deleted);
 * - map growth, and the max_map_size limit (-ENOSPC, nothing lost);
 * - a store of a newer format is refused (-EPROTO);
 * - corrupt records (truncated, random, newer version, an unknown kind, a
 *   malformed key, a key that is not the record's, an over-long host
 *   name) stop recovery with the entity's key (when the record holds one),
 *   the partition and the reason named, and never crash; a mutation fuzz
 *   of tracker_record_load, checked against tracker_record_validate.
 *
 * Every test works in its own mkdtemp directory under /tmp, removed by the
 * teardown. Run it under ASan as well: several cases are about memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "core/tracker.h"
#include "core/tracker_record.h"
#include "service/config.h"
#include "service/engine.h"
#include "store/store.h"
#include "util/digest.h"
#include "util/xmalloc.h"
#include "testutil.h"

#define T0 1700000000000LL /* a fixed "now" (ms since the epoch) */
#define MIN_MS (60 * 1000LL)

/* ---- temporary directories ---- */

static int
dir_setup(void **state)
{
	char tmpl[] = "/tmp/sbomd-test-store-XXXXXX";
	if (mkdtemp(tmpl) == NULL)
		return -1;
	*state = xstrdup(tmpl);
	return 0;
}

static int
dir_teardown(void **state)
{
	char *dir = *state;
	DIR *dp = opendir(dir);
	if (dp != NULL) {
		struct dirent *de;
		while ((de = readdir(dp)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (unlink(path) != 0) {
				/* test_disk_full's mount point */
				umount2(path, MNT_DETACH);
				rmdir(path);
			}
		}
		closedir(dp);
	}
	int rc = rmdir(dir);
	free(dir);
	return rc;
}

/* ---- fixtures ---- */

static void
test_config(struct tracker_config *c)
{
	tracker_config_defaults(c);
	c->retry.base_ms = 1 * MIN_MS;
	c->retry.max_ms = 30 * MIN_MS;
	c->retry.multiplier = 2.0;
	c->retry.jitter = 0.1;
	c->retry.max_attempts = 4;
	c->retry.failed_rescan_after_ms = 120 * MIN_MS;
	c->rescan_after_ms = 60 * MIN_MS;
	c->forget_after_ms = 20 * MIN_MS;
}

static tracker *
new_tracker(void)
{
	struct tracker_config c;
	char err[256];
	test_config(&c);
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)), 0);
	return tracker_new(&c);
}

static void
image_id(unsigned n, char out[DIGEST_STR_LEN])
{
	char buf[64];
	uint8_t d[DIGEST_LEN];
	int len = snprintf(buf, sizeof(buf), "test-image-%u", n);
	digest_sha256(buf, (size_t)len, d);
	digest_format(d, out);
}

static void
key_of(enum entity_kind kind, const char *id, struct tracker_key *key)
{
	char err[256];
	if (tracker_key_from_id(kind, id, key, err, sizeof(err)) != 0)
		fail_msg("key of %s: %s", id, err);
}

static void
key_hex(const struct tracker_key *key, char out[2 * TRACKER_KEY_LEN + 1])
{
	for (size_t i = 0; i < TRACKER_KEY_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", key->bytes[i]);
}

/* A key as bytes that sort like (kind, key): for ordering only. */
#define KEY_BYTES (1 + TRACKER_KEY_LEN)
static void
key_bytes(const struct tracker_key *key, uint8_t out[KEY_BYTES])
{
	out[0] = key->kind;
	memcpy(out + 1, key->bytes, TRACKER_KEY_LEN);
}

/* ---- keys and the record layout ---- */

/* Offsets in a record, versions 2 and 3 (the format is in
 * core/tracker_record.c). */
#define REC_KIND 1
#define REC_KEY 2
#define REC_STATE (REC_KEY + TRACKER_KEY_LEN)
#define REC_FLAGS (REC_STATE + 1)
#define REC_ATTEMPTS (REC_FLAGS + 1)
#define REC_GEN (REC_ATTEMPTS + 2)
#define REC_PARTITION (REC_GEN + 4)
#define REC_DUE (REC_PARTITION + 4 + 8 + 8)
#define REC_NAMELEN (REC_DUE + 8)
#define ENTRY_KEY_LEN (5 + TRACKER_KEY_LEN)

/* The LMDB key of a slot in a format-1 store: 4 bytes, big-endian. */
static void
slot_key(uint32_t slot, uint8_t out[4])
{
	out[0] = (uint8_t)(slot >> 24);
	out[1] = (uint8_t)(slot >> 16);
	out[2] = (uint8_t)(slot >> 8);
	out[3] = (uint8_t)slot;
}

/* The LMDB key of an entry: partition big-endian, kind, key bytes. */
static void
ent_key(int32_t partition, const struct tracker_key *key,
    uint8_t out[ENTRY_KEY_LEN])
{
	slot_key((uint32_t)partition, out);
	out[4] = key->kind;
	memcpy(out + 5, key->bytes, TRACKER_KEY_LEN);
}

/* How store_recover names a bad record: "entry sha256:<hex> (partition
 * P)", "entry host-key:<hex> (partition P)", or "entry ? (partition P)"
 * without a key. */
static void
entry_name(char *out, size_t outlen, const struct tracker_key *key,
    int32_t partition)
{
	char hex[2 * TRACKER_KEY_LEN + 1];
	if (key == NULL) {
		snprintf(out, outlen, "entry ? (partition %d)", partition);
		return;
	}
	key_hex(key, hex);
	snprintf(out, outlen, "entry %s:%s (partition %d)",
	    key->kind == ENTITY_HOST ? "host-key" : "sha256", hex, partition);
}

/* The key a record holds is *want. */
static void
assert_record_key(const uint8_t *rec, size_t len,
    const struct tracker_key *want)
{
	struct tracker_key got;
	assert_int_equal(tracker_record_key(rec, len, &got), 0);
	if (memcmp(&got, want, sizeof(got)) != 0) {
		char a[2 * TRACKER_KEY_LEN + 1], b[2 * TRACKER_KEY_LEN + 1];
		key_hex(&got, a);
		key_hex(want, b);
		fail_msg("record holds key %u:%s, expected %u:%s", got.kind, a,
		    want->kind, b);
	}
}

static enum apply_result
ev_apply(tracker *t, enum event_type type, enum entity_kind kind,
    const char *id, const char *src, const char *const *tags, size_t ntags,
    const char *const *digests, size_t ndigests, int64_t observed,
    int32_t partition, int64_t now, struct tracker_outcome *out)
{
	struct tracker_event ev = {
		.type = type, .kind = kind, .id = id, .source = src,
		.tags = tags, .ntags = ntags, .digests = digests,
		.ndigests = ndigests, .observed_at = observed,
		.partition = partition,
	};
	struct tracker_outcome o;
	char err[256];
	enum apply_result r = tracker_apply(t, &ev, now, out ? out : &o, err,
	    sizeof(err));
	if (r == APPLY_INVALID)
		fail_msg("event on %s from %s rejected: %s", id, src, err);
	return r;
}

static enum apply_result
set1(tracker *t, enum entity_kind kind, const char *id, const char *src,
    const char *tag, int64_t now)
{
	const char *tags[1] = {tag};
	return ev_apply(t, EVENT_SET, kind, id, src, tags, tag ? 1 : 0, NULL, 0,
	    now, 0, now, NULL);
}

static enum apply_result
unset1(tracker *t, enum entity_kind kind, const char *id, const char *src,
    int64_t now, struct tracker_outcome *out)
{
	return ev_apply(t, EVENT_UNSET, kind, id, src, NULL, 0, NULL, 0, now, 0,
	    now, out);
}

static void
check_tracker(const tracker *t)
{
	char err[256];
	if (tracker_check(t, err, sizeof(err)) != 0)
		fail_msg("tracker_check: %s", err);
}

/* What the engine does: t's dirty set collected into the batch, one
 * store_commit, the dirty set cleared when it succeeded. */
static int
tcommit(store *s, tracker *t, const struct store_batch *b, char *err,
    size_t errlen)
{
	static struct store_dirty d;
	struct store_batch all = {0};
	if (b != NULL)
		all = *b;
	all.nentries = store_collect_dirty(t, &d);
	all.entries = d.entries;
	int rc = store_commit(s, &all, err, errlen);
	if (rc == 0)
		tracker_clear_dirty(t);
	return rc;
}

static void
commit(store *s, tracker *t, const struct store_batch *b)
{
	char err[512];
	int rc = tcommit(s, t, b, err, sizeof(err));
	if (rc != 0)
		fail_msg("store_commit: %d %s", rc, err);
	assert_int_equal(tracker_dirty_count(t), 0);
}

/* store_meta_get as one number: the value's length, or the error. */
static long
meta_get(store *s, const char *name, void *buf, size_t buflen)
{
	size_t len = 0;
	int rc = store_meta_get(s, name, buf, buflen, &len);
	return rc == 0 ? (long)len : rc;
}

static store *
open_store(const char *dir, const struct store_options *opt)
{
	store *s = NULL;
	char err[512];
	int rc = store_open(dir, opt, &s, err, sizeof(err));
	if (rc != 0)
		fail_msg("store_open %s: %d %s", dir, rc, err);
	return s;
}

/* Opens dir and recovers it into a new tracker at now. */
static tracker *
reopen(const char *dir, store **sp, int64_t now, struct store_recovery *rec)
{
	struct store_recovery r;
	char err[512];
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	int rc = store_recover(s, t, now, rec ? rec : &r, err, sizeof(err));
	if (rc != 0)
		fail_msg("store_recover: %d %s", rc, err);
	assert_int_equal(tracker_dirty_count(t), 0);
	check_tracker(t);
	*sp = s;
	return t;
}

/* ---- comparing trackers ---- */

struct handles {
	uint32_t *h;
	size_t n, cap;
};

static void
collect_fn(void *ctx, uint32_t handle)
{
	struct handles *hs = ctx;
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? hs->cap * 2 : 256;
		hs->h = xreallocarray(hs->h, hs->cap, sizeof(*hs->h));
	}
	hs->h[hs->n++] = handle;
}

static struct handles
all_handles(const tracker *t)
{
	struct handles hs = {NULL, 0, 0};
	tracker_foreach(t, collect_fn, &hs);
	assert_int_equal(hs.n, tracker_count(t));
	return hs;
}

struct dump {
	char *buf;
	size_t len, cap;
};

static void
dump_put(struct dump *d, const void *p, size_t n)
{
	if (d->len + n > d->cap) {
		d->cap = (d->len + n) * 2;
		d->buf = xrealloc(d->buf, d->cap);
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

static void
dump_str(struct dump *d, const char *s, size_t n)
{
	char hdr[32];
	int k = snprintf(hdr, sizeof(hdr), "[%zu]", n);
	dump_put(d, hdr, (size_t)k);
	dump_put(d, s, n);
}

static void
dump_source_fn(void *ctx, const struct tracker_source_info *si)
{
	struct dump *d = ctx;
	char hdr[128];
	dump_str(d, si->source, strlen(si->source));
	int k = snprintf(hdr, sizeof(hdr), "|%lld|%d|%zu|%zu|",
	    (long long)si->observed_at, si->holding, si->ntags, si->ndigests);
	dump_put(d, hdr, (size_t)k);
	for (size_t i = 0; i < si->ntags; i++)
		dump_str(d, si->tags[i], si->tag_lens[i]);
	for (size_t i = 0; i < si->ndigests; i++)
		dump_str(d, si->digests[i], si->digest_lens[i]);
	dump_put(d, "\n", 1);
}

static struct dump
sources_of(const tracker *t, uint32_t h)
{
	struct dump d = {NULL, 0, 0};
	assert_int_equal(tracker_sources(t, h, dump_source_fn, &d), 0);
	return d;
}

static void
assert_entity_equal(const tracker *a, uint32_t ha, const tracker *b,
    uint32_t hb)
{
	struct tracker_info ia, ib;
	char ea[TRACKER_MAX_ERROR + 1] = "", eb[TRACKER_MAX_ERROR + 1] = "";
	char ida[300], idb[300];

	tracker_id_string(a, ha, ida, sizeof(ida));
	tracker_id_string(b, hb, idb, sizeof(idb));
	assert_string_equal(ida, idb);
	assert_int_equal(tracker_info_get(a, ha, &ia), 0);
	if (ia.last_error)
		snprintf(ea, sizeof(ea), "%s", ia.last_error);
	assert_int_equal(tracker_info_get(b, hb, &ib), 0);
	if (ib.last_error)
		snprintf(eb, sizeof(eb), "%s", ib.last_error);
	assert_memory_equal(&ia.key, &ib.key, sizeof(ia.key));
	if (ia.state != ib.state)
		fail_msg("%s: state %s vs %s", ida, entry_state_name(ia.state),
		    entry_state_name(ib.state));
	assert_int_equal(ia.attempts, ib.attempts);
	assert_int_equal(ia.partition, ib.partition);
	assert_int_equal(ia.first_seen, ib.first_seen);
	assert_int_equal(ia.last_scan, ib.last_scan);
	assert_int_equal(ia.in_heap, ib.in_heap);
	assert_int_equal(ia.due, ib.due);
	assert_int_equal(ia.referenced, ib.referenced);
	assert_int_equal(ia.nsources, ib.nsources);
	assert_int_equal((ia.last_error == NULL), (ib.last_error == NULL));
	assert_string_equal(ea, eb);

	struct dump sa = sources_of(a, ha), sb = sources_of(b, hb);
	assert_int_equal(sa.len, sb.len);
	if (sa.len > 0)
		assert_memory_equal(sa.buf, sb.buf, sa.len);
	free(sa.buf);
	free(sb.buf);

	uint8_t *ba = NULL, *bb = NULL;
	size_t ca = 0, cb = 0;
	size_t la = tracker_record_encode(a, ha, &ba, &ca);
	size_t lb = tracker_record_encode(b, hb, &bb, &cb);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(ba);
	free(bb);
}

/* Every entity of a is in b and equal; same counts everywhere. */
static void
assert_trackers_equal(const tracker *a, const tracker *b)
{
	assert_int_equal(tracker_count(a), tracker_count(b));
	assert_int_equal(tracker_heap_size(a), tracker_heap_size(b));
	for (int s = ENTRY_QUEUED; s <= ENTRY_CANCELLED; s++)
		assert_int_equal(tracker_count_state(a, (enum entry_state)s),
		    tracker_count_state(b, (enum entry_state)s));
	struct handles hs = all_handles(a);
	for (size_t i = 0; i < hs.n; i++) {
		struct tracker_info ia;
		assert_int_equal(tracker_info_get(a, hs.h[i], &ia), 0);
		uint32_t hb = tracker_find(b, &ia.key);
		assert_int_not_equal(hb, TRACKER_NONE);
		assert_entity_equal(a, hs.h[i], b, hb);
	}
	free(hs.h);
}

/* ---- raw LMDB access, bypassing the store ---- */

static MDB_env *
raw_env(const char *dir)
{
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
	int rc = mdb_env_open(env, dir, MDB_NOSYNC, 0600);
	if (rc != 0)
		fail_msg("mdb_env_open %s: %s", dir, mdb_strerror(rc));
	return env;
}

static void
raw_put(const char *dir, const char *db, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
	MDB_val mk = {klen, (void *)k}, mv = {vlen, (void *)v};
	assert_int_equal(mdb_put(txn, dbi, &mk, &mv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
raw_del(const char *dir, const char *db, const void *k, size_t klen)
{
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	MDB_val mk = {klen, (void *)k};
	assert_int_equal(mdb_del(txn, dbi, &mk, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A copy of the value (caller frees), or NULL when absent. */
static uint8_t *
raw_get(const char *dir, const char *db, const void *k, size_t klen,
    size_t *len)
{
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t *copy = NULL;
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	int rc = mdb_dbi_open(txn, db, 0, &dbi);
	MDB_val mk = {klen, (void *)k}, mv;
	if (rc == 0)
		rc = mdb_get(txn, dbi, &mk, &mv);
	if (rc == 0) {
		copy = xmalloc(mv.mv_size + 1);
		memcpy(copy, mv.mv_data, mv.mv_size);
		*len = mv.mv_size;
	} else {
		assert_int_equal(rc, MDB_NOTFOUND);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return copy;
}

static size_t
raw_count(const char *dir, const char *db)
{
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

static void
raw_ent_put(const char *dir, int32_t partition, const struct tracker_key *key,
    const void *v, size_t vlen)
{
	uint8_t kb[ENTRY_KEY_LEN];
	ent_key(partition, key, kb);
	raw_put(dir, "entries", kb, sizeof(kb), v, vlen);
}

static void
raw_ent_del(const char *dir, int32_t partition, const struct tracker_key *key)
{
	uint8_t kb[ENTRY_KEY_LEN];
	ent_key(partition, key, kb);
	raw_del(dir, "entries", kb, sizeof(kb));
}

/* The record of (partition, key) (caller frees), or NULL. */
static uint8_t *
raw_ent_get(const char *dir, int32_t partition, const struct tracker_key *key,
    size_t *len)
{
	uint8_t kb[ENTRY_KEY_LEN];
	ent_key(partition, key, kb);
	return raw_get(dir, "entries", kb, sizeof(kb), len);
}

/* The same for live entry h of t: its partition and key. */
static uint8_t *
raw_h_get(const char *dir, const tracker *t, uint32_t h, size_t *len)
{
	struct tracker_info info;
	assert_int_equal(tracker_info_get(t, h, &info), 0);
	return raw_ent_get(dir, info.partition, &info.key, len);
}

/*
 * The store's entries are exactly t's: one record per live entity, under
 * its (partition, key), equal to tracker_record_encode. t must have been
 * committed, with no entry requeued by a recovery since (those differ from
 * their SCANNING record until written). The store must be closed: LMDB
 * does not want an environment open twice in one process.
 */
static void
assert_store_holds(const char *dir, const tracker *t)
{
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int rc;

	assert_int_equal(tracker_dirty_count(t), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "entries", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct tracker_info info;
		struct tracker_key key;
		if (k.mv_size != ENTRY_KEY_LEN)
			fail_msg("a key of %zu bytes in entries", k.mv_size);
		assert_int_equal(tracker_record_key(v.mv_data, v.mv_size,
		    &key), 0);
		uint32_t h = tracker_find(t, &key);
		if (h == TRACKER_NONE)
			fail_msg("a record in the store is not live");
		assert_int_equal(tracker_info_get(t, h, &info), 0);
		uint8_t want[ENTRY_KEY_LEN];
		ent_key(info.partition, &info.key, want);
		assert_memory_equal(k.mv_data, want, ENTRY_KEY_LEN);
		size_t len = tracker_record_encode(t, h, &buf, &cap);
		if (v.mv_size != len || memcmp(v.mv_data, buf, len) != 0)
			fail_msg("handle %u: the record differs (%zu bytes, "
			    "encoded %zu)", h, v.mv_size, len);
		n++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	free(buf);
	/* and every live handle was among them */
	if (n != tracker_count(t))
		fail_msg("the store holds %zu records, the tracker %zu "
		    "entities", n, tracker_count(t));
}

/* ---- 1. round trip ---- */

#define RT_IMAGES 90
#define RT_HOSTS 25
#define RT_EVENTS 420

struct rt_stats {
	size_t apply[APPLY_RESULT_COUNT];
	size_t outcome[4];
	size_t complete_stale;
};

struct rt_ids {
	char images[RT_IMAGES][DIGEST_STR_LEN];
	char hosts[RT_HOSTS][TRACKER_MAX_NAME + 1];
};

static void
rt_ids_init(struct rt_ids *ids)
{
	for (unsigned i = 0; i < RT_IMAGES; i++)
		image_id(i, ids->images[i]);
	for (unsigned i = 0; i < RT_HOSTS; i++)
		snprintf(ids->hosts[i], sizeof(ids->hosts[i]),
		    "host-%02u.dc1.example.com", i);
	/* the longest host name there may be */
	memset(ids->hosts[0], 'h', TRACKER_MAX_NAME);
	ids->hosts[0][TRACKER_MAX_NAME] = '\0';
}

static void
count_outcome(struct rt_stats *st, const struct tracker_outcome *o)
{
	if (o->status != OUTCOME_NONE)
		st->outcome[o->status]++;
}

/*
 * Drives t through RT_EVENTS random operations from *now on; jobs handed
 * out and not completed are left in jobs[] (SCANNING). Committed to s
 * every 40 operations, when s is not NULL.
 */
static void
rt_drive(tracker *t, store *s, const struct rt_ids *ids, int64_t *nowp,
    struct tracker_job *jobs, size_t *njobsp, struct rt_stats *st)
{
	static char long_tag[300], long_src[TRACKER_MAX_NAME + 1];
	static char long_error[TRACKER_MAX_ERROR + 500];
	static const char *sources[] = {"node-a", "node-b", "node-c",
	    "node-d", "worker-17.eu-west-1.compute.internal", long_src};
	const char *tag_pool[] = {"registry.example.com/app:1.0",
	    "registry.example.com/app:latest", "docker.io/library/nginx:1.25",
	    "quay.io/org/tool:v2", "localhost:5000/x:y", long_tag};
	const char *digest_pool[] = {
	    "registry.example.com/app@sha256:"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "docker.io/library/nginx@sha256:"
	    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
	    "quay.io/org/tool@sha256:"
	    "00000000000000000000000000000000000000000000000000000000000000ff"};
	int32_t partitions[] = {0, 3, -1, 2147483647, 11};
	int64_t now = *nowp;
	size_t njobs = *njobsp;
	bool have_last = false;
	enum entity_kind last_kind = ENTITY_IMAGE;
	const char *last_id = NULL, *last_src = NULL;
	const char *last_tags[8], *last_digs[4];
	size_t last_nt = 0, last_nd = 0;
	int64_t last_obs = 0;
	int32_t last_part = 0;

	memset(long_tag, 't', sizeof(long_tag) - 1);
	memcpy(long_tag, "registry.example.com/", 21);
	memset(long_src, 's', sizeof(long_src) - 1);
	memset(long_error, 'e', sizeof(long_error) - 1);
	memcpy(long_error, "very long error: ", 17);

	for (int i = 0; i < RT_EVENTS; i++) {
		now += (int64_t)rng_below(40000);
		if (rng_below(60) == 0)
			now += 25 * MIN_MS; /* let forget timers fire */
		enum entity_kind kind = rng_below(4) == 0 ? ENTITY_HOST :
		    ENTITY_IMAGE;
		const char *id = kind == ENTITY_HOST ?
		    ids->hosts[rng_below(RT_HOSTS)] : ids->images[rng_below(RT_IMAGES)];
		const char *src = sources[rng_below(6)];
		int64_t observed = now - (int64_t)rng_below(120000);
		size_t op = rng_below(100);
		struct tracker_outcome o;

		if (op < 8 && have_last) {
			/* the last SET again: newer (a dedup) or older (stale) */
			int64_t obs = op < 4 ? last_obs + 1 : last_obs - 1000;
			enum apply_result r = ev_apply(t, EVENT_SET, last_kind,
			    last_id, last_src, last_tags, last_nt, last_digs,
			    last_nd, obs, last_part, now, &o);
			if (op < 4)
				last_obs = obs;
			st->apply[r]++;
			count_outcome(st, &o);
		} else if (op < 50) {
			const char *tags[8], *digs[4];
			size_t nt = rng_below(5), nd = rng_below(3);
			for (size_t k = 0; k < nt; k++)
				tags[k] = tag_pool[rng_below(6)];
			for (size_t k = 0; k < nd; k++)
				digs[k] = digest_pool[rng_below(3)];
			int32_t part = partitions[rng_below(5)];
			enum apply_result r = ev_apply(t, EVENT_SET, kind, id,
			    src, tags, nt, digs, nd, observed, part, now, &o);
			if (r != APPLY_STALE) {
				have_last = true;
				last_kind = kind;
				last_id = id;
				last_src = src;
				memcpy(last_tags, tags, sizeof(tags));
				memcpy(last_digs, digs, sizeof(digs));
				last_nt = nt;
				last_nd = nd;
				last_obs = observed;
				last_part = part;
			}
			st->apply[r]++;
			count_outcome(st, &o);
		} else if (op < 70) {
			const char *unknown = "sha256:"
			    "abababababababababababababababababababababababababababababababab";
			if (rng_below(15) == 0) {
				kind = ENTITY_IMAGE;
				id = unknown;
			}
			enum apply_result r = ev_apply(t, EVENT_UNSET, kind, id,
			    src, NULL, 0, NULL, 0, observed, 0, now, &o);
			st->apply[r]++;
			count_outcome(st, &o);
		} else if (op < 85) {
			if (njobs < 60 && tracker_pop_due(t, now, &jobs[njobs]))
				njobs++;
		} else if (njobs > 0) {
			size_t j = rng_below(njobs);
			struct tracker_result res = {true, ERROR_RETRYABLE,
			    NULL, 0};
			char msg[128];
			size_t kindres = rng_below(10);
			if (kindres >= 4) {
				res.ok = false;
				res.error_class = kindres < 8 ? ERROR_RETRYABLE :
				    ERROR_PERMANENT;
				snprintf(msg, sizeof(msg),
				    "scan of attempt %u failed: %s",
				    jobs[j].attempt, kindres < 8 ?
				    "registry timeout" : "manifest unknown");
				res.error = rng_below(8) == 0 ? long_error : msg;
			}
			int rc = tracker_complete(t, jobs[j].handle,
			    jobs[j].attempt, &res, now, &o);
			if (rc == -ESTALE)
				st->complete_stale++;
			else
				assert_int_equal(rc, 0);
			count_outcome(st, &o);
			jobs[j] = jobs[--njobs];
		}
		if (i % 10 == 0)
			check_tracker(t);
		if (s != NULL && i % 40 == 39) {
			uint8_t bn[4] = {(uint8_t)i, 0, 0, 0};
			struct store_meta m = {"batch", bn, 4};
			struct store_batch b = {.meta = &m, .nmeta = 1};
			commit(s, t, &b);
		}
	}
	*nowp = now;
	*njobsp = njobs;
}

struct pop_rec {
	int64_t due;
	uint8_t key[KEY_BYTES];
	uint32_t attempt;
};

static int
pop_rec_cmp(const void *a, const void *b)
{
	const struct pop_rec *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return memcmp(x->key, y->key, sizeof(x->key));
}

/* Pops every job due by `until`; returns them sorted by (due, key). */
static struct pop_rec *
pop_all(tracker *t, int64_t until, size_t *n)
{
	struct pop_rec *v = xcalloc(tracker_count(t) + 1, sizeof(*v));
	struct tracker_job job;
	int64_t last = INT64_MIN;
	*n = 0;
	while (tracker_pop_due(t, until, &job)) {
		assert_true(job.due >= last); /* soonest first */
		last = job.due;
		v[*n].due = job.due;
		v[*n].attempt = job.attempt;
		key_bytes(&job.key, v[*n].key);
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), pop_rec_cmp);
	return v;
}

/* ---- version 2, the format older sbomds wrote ---- */

static uint64_t
get_varint(const uint8_t **p)
{
	uint64_t v = 0;
	for (unsigned i = 0;; i++) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			return v;
	}
}

static uint64_t
get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * The version-2 form of a (valid) version-3 record, built here apart
 * from the encoder, as the format was specified (core/tracker_record.c):
 * no refs table, each source's refs in place as u16 len + bytes, and
 * observed_at as an i64. Returns a malloc'd record, its size in *len.
 */
static uint8_t *
record_v2(const uint8_t *v3, size_t v3len, size_t *len)
{
	struct dump o = {0};
	const uint8_t *p = v3 + REC_NAMELEN, *end = v3 + v3len;
	int64_t first_seen = (int64_t)get_le(v3 + REC_PARTITION + 4, 8);
	assert_int_equal(v3[0], 3);
	dump_put(&o, v3, REC_NAMELEN);
	o.buf[0] = 2;
	size_t namelen = *p;
	dump_put(&o, p, 1 + namelen), p += 1 + namelen;
	size_t errlen = (size_t)get_le(p, 2);
	dump_put(&o, p, 2 + errlen), p += 2 + errlen;
	size_t nrefs = (size_t)get_varint(&p);
	const uint8_t **ref = xcalloc(nrefs + 1, sizeof(*ref));
	size_t *reflen = xcalloc(nrefs + 1, sizeof(*reflen));
	for (size_t i = 0; i < nrefs; i++) {
		reflen[i] = (size_t)get_varint(&p);
		ref[i] = p;
		p += reflen[i];
	}
	size_t nsrc = (size_t)get_le(p, 2);
	dump_put(&o, p, 2), p += 2;
	for (size_t i = 0; i < nsrc; i++) {
		size_t sl = *p;
		dump_put(&o, p, 1 + sl), p += 1 + sl;
		uint64_t z = get_varint(&p);
		uint64_t obs = (uint64_t)first_seen + ((z >> 1) ^ (0 - (z & 1)));
		uint8_t le[8];
		for (int k = 0; k < 8; k++)
			le[k] = (uint8_t)(obs >> (8 * k));
		dump_put(&o, le, 8);
		size_t nrefs_src = (size_t)p[1] + p[2];
		dump_put(&o, p, 3), p += 3; /* holding, ntags, ndigests */
		for (size_t k = 0; k < nrefs_src; k++) {
			size_t at = (size_t)get_varint(&p);
			assert_true(at < nrefs);
			uint8_t l2[2] = {(uint8_t)reflen[at],
			    (uint8_t)(reflen[at] >> 8)};
			dump_put(&o, l2, 2);
			dump_put(&o, ref[at], reflen[at]);
		}
	}
	assert_ptr_equal(p, end);
	free(ref);
	free(reflen);
	*len = o.len;
	return (uint8_t *)o.buf;
}

static void
test_round_trip(void **state)
{
	const char *dir = *state;
	struct rt_ids *ids = xcalloc(1, sizeof(*ids));
	struct rt_stats st;
	struct tracker_job jobs[64];
	size_t njobs = 0;
	int64_t now = T0;

	memset(&st, 0, sizeof(st));
	rng_seed(0x5eed1);
	rt_ids_init(ids);
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	rt_drive(t, s, ids, &now, jobs, &njobs, &st);

	/* Make sure the interesting states exist at the end. */
	char cancel_id[DIGEST_STR_LEN];
	image_id(999999, cancel_id); /* not one of the random ones */
	now += 1000;
	set1(t, ENTITY_IMAGE, cancel_id, "node-z", "x:1", now);
	struct tracker_outcome o;
	assert_int_equal(unset1(t, ENTITY_IMAGE, cancel_id, "node-z", now + 1,
	    &o), APPLY_UPDATED);
	assert_int_equal(o.status, OUTCOME_CANCELLED);
	for (int i = 0; i < 2; i++)
		assert_true(tracker_pop_due(t, now, &jobs[njobs++]));
	commit(s, t, NULL);
	check_tracker(t);

	print_message("round trip: %zu entities (queued %zu, scanning %zu, "
	    "done %zu, failed %zu, cancelled %zu), heap %zu; apply new %zu "
	    "updated %zu dedup %zu stale %zu unknown %zu; outcomes ok %zu "
	    "retry %zu failed %zu cancelled %zu\n", tracker_count(t),
	    tracker_count_state(t, ENTRY_QUEUED),
	    tracker_count_state(t, ENTRY_SCANNING),
	    tracker_count_state(t, ENTRY_DONE),
	    tracker_count_state(t, ENTRY_FAILED),
	    tracker_count_state(t, ENTRY_CANCELLED), tracker_heap_size(t),
	    st.apply[APPLY_NEW], st.apply[APPLY_UPDATED], st.apply[APPLY_DEDUP],
	    st.apply[APPLY_STALE], st.apply[APPLY_UNKNOWN],
	    st.outcome[OUTCOME_SUCCEEDED], st.outcome[OUTCOME_RETRY_SCHEDULED],
	    st.outcome[OUTCOME_FAILED], st.outcome[OUTCOME_CANCELLED]);
	/* The run must have covered what it claims to. */
	for (int r = APPLY_NEW; r <= APPLY_UNKNOWN; r++)
		assert_true(st.apply[r] > 0);
	for (int k = 0; k < 4; k++)
		assert_true(st.outcome[k] > 0);
	for (int k = ENTRY_QUEUED; k <= ENTRY_CANCELLED; k++)
		assert_true(tracker_count_state(t, (enum entry_state)k) > 0);
	assert_true(tracker_count(t) > 80);

	/* Every record as it was committed. */
	struct handles hs = all_handles(t);
	uint8_t **before = xcalloc(hs.n, sizeof(*before));
	size_t *before_len = xcalloc(hs.n, sizeof(*before_len));
	size_t nscanning = 0;
	for (size_t i = 0; i < hs.n; i++) {
		size_t cap = 0;
		before_len[i] = tracker_record_encode(t, hs.h[i], &before[i],
		    &cap);
	}

	store_close(s);

	/* The raw records are exactly tracker_record_encode's output, each
	 * under its entity's handle and holding that entity's key. */
	for (size_t i = 0; i < hs.n; i++) {
		struct tracker_info info;
		size_t len;
		assert_int_equal(tracker_info_get(t, hs.h[i], &info), 0);
		uint8_t *raw = raw_h_get(dir, t, hs.h[i], &len);
		if (raw == NULL)
			fail_msg("no record of handle %u", hs.h[i]);
		assert_int_equal(len, before_len[i]);
		assert_memory_equal(raw, before[i], len);
		assert_record_key(raw, len, &info.key);
		free(raw);
	}
	assert_int_equal(raw_count(dir, "entries"), tracker_count(t));
	assert_store_holds(dir, t);

	int64_t now2 = now + 1234;
	struct store_recovery rec;
	tracker *t2 = reopen(dir, &s, now2, &rec);
	assert_int_equal(rec.entries, tracker_count(t));
	assert_int_equal(rec.outbox, 0);
	assert_true(rec.seconds >= 0);

	/* What recovery does to SCANNING entries, done by hand on t. */
	for (size_t i = 0; i < hs.n; i++) {
		struct tracker_info info;
		assert_int_equal(tracker_info_get(t, hs.h[i], &info), 0);
		if (info.state == ENTRY_SCANNING) {
			assert_int_equal(tracker_requeue(t, hs.h[i], now2), 0);
			nscanning++;
		}
	}
	assert_true(nscanning > 0);
	assert_int_equal(rec.requeued, nscanning);
	assert_trackers_equal(t, t2);
	assert_trackers_equal(t2, t);

	/* Untouched records encode identically before and after. */
	for (size_t i = 0; i < hs.n; i++) {
		struct tracker_info info;
		assert_int_equal(tracker_info_get(t, hs.h[i], &info), 0);
		uint32_t h2 = tracker_find(t2, &info.key);
		assert_int_not_equal(h2, TRACKER_NONE);
		uint8_t *buf = NULL;
		size_t cap = 0, len = tracker_record_encode(t2, h2, &buf, &cap);
		if (before[i][REC_STATE] != ENTRY_SCANNING) {
			assert_int_equal(len, before_len[i]);
			assert_memory_equal(buf, before[i], len);
		}
		free(buf);
		free(before[i]);
	}
	free(before);
	free(before_len);
	free(hs.h);

	/* The heaps hold the same (due, key) pairs: pop everything. */
	size_t n1, n2;
	struct pop_rec *p1 = pop_all(t, now2 + 400 * MIN_MS, &n1);
	struct pop_rec *p2 = pop_all(t2, now2 + 400 * MIN_MS, &n2);
	assert_int_equal(n1, n2);
	assert_true(n1 > 0);
	if (n1 > 0)
		assert_memory_equal(p1, p2, n1 * sizeof(*p1));
	free(p1);
	free(p2);
	assert_trackers_equal(t, t2);
	check_tracker(t);
	check_tracker(t2);

	store_close(s);
	tracker_free(t);
	tracker_free(t2);
	free(ids);
}

/*
 * The largest records the limits allow: a host with the longest name,
 * sources with the longest names, each with TRACKER_MAX_REFS tags and
 * digests of TRACKER_MAX_REF_LEN bytes, and the longest error (LMDB
 * overflow pages, two-byte lengths, blobs past the slab's size classes).
 */
/*
 * Version-2 records (what older sbomds stored and wrote to changelogs)
 * load: each entity of the round trip's mix, written in version 2 by
 * record_v2, loads into an entity that encodes exactly as its version-3
 * record loaded does. Version 3 is the smaller one, by more than half
 * for an image that ten nodes report with the same tag.
 */
static void
test_records_v2_load(void **state)
{
	(void)state;
	struct rt_ids *ids = xcalloc(1, sizeof(*ids));
	struct rt_stats st;
	struct tracker_job jobs[64];
	size_t njobs = 0, v2_total = 0, v3_total = 0;
	int64_t now = T0;
	char err[256];

	memset(&st, 0, sizeof(st));
	rng_seed(0x5eed1);
	rt_ids_init(ids);
	tracker *t = new_tracker();
	rt_drive(t, NULL, ids, &now, jobs, &njobs, &st);
	struct handles hs = all_handles(t);
	assert_true(hs.n > 80);
	for (size_t i = 0; i < hs.n; i++) {
		uint8_t *v3 = NULL, *a = NULL, *b = NULL;
		size_t cap = 0, ca = 0, cb = 0, v2len;
		size_t v3len = tracker_record_encode(t, hs.h[i], &v3, &cap);
		uint8_t *v2 = record_v2(v3, v3len, &v2len);
		tracker *t3 = new_tracker(), *t2 = new_tracker();
		assert_int_equal(tracker_record_load(t3, v3, v3len, now, NULL,
		    err, sizeof(err)), 0);
		if (tracker_record_load(t2, v2, v2len, now, NULL, err,
		    sizeof(err)) != 0)
			fail_msg("version 2 of entity %zu refused: %s", i, err);
		assert_int_equal(tracker_record_validate(v2, v2len, NULL, NULL,
		    err, sizeof(err)), 0);
		size_t la = tracker_record_encode(t3, 0, &a, &ca);
		size_t lb = tracker_record_encode(t2, 0, &b, &cb);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		assert_int_equal(a[0], TRACKER_RECORD_VERSION);
		v2_total += v2len;
		v3_total += v3len;
		free(v3);
		free(v2);
		free(a);
		free(b);
		tracker_free(t3);
		tracker_free(t2);
	}
	print_message("round trip mix: %zu records, version 2 %zu bytes, "
	    "version 3 %zu\n", hs.n, v2_total, v3_total);
	assert_true(v3_total < v2_total);
	free(hs.h);
	tracker_free(t);
	free(ids);

	/* An image on ten nodes, one tag each. */
	char id[DIGEST_STR_LEN];
	image_id(7, id);
	t = new_tracker();
	for (int n = 0; n < 10; n++) {
		char node[16];
		snprintf(node, sizeof(node), "node-%d", n);
		set1(t, ENTITY_IMAGE, id, node,
		    "registry.example.com/team-7/app-77:v1", T0 + 400 * n);
	}
	uint8_t *v3 = NULL;
	size_t cap = 0, v2len;
	size_t v3len = tracker_record_encode(t, 0, &v3, &cap);
	uint8_t *v2 = record_v2(v3, v3len, &v2len);
	print_message("ten nodes, one tag: version 2 %zu bytes, version 3 "
	    "%zu\n", v2len, v3len);
	assert_true(2 * v3len < v2len);
	free(v3);
	free(v2);
	tracker_free(t);
}

/*
 * What version 3 adds is checked as strictly as the rest: a ref index
 * past the table, a table out of order or with a repeat, a varint that
 * does not end, a table longer than the record could hold.
 */
static void
test_corrupt_refs_table(void **state)
{
	(void)state;
	char id[DIGEST_STR_LEN], err[256];
	image_id(9, id);
	tracker *t = new_tracker();
	set1(t, ENTITY_IMAGE, id, "node-a", "b.example/x:1", T0);
	set1(t, ENTITY_IMAGE, id, "node-b", "a.example/x:1", T0 + 5);
	uint8_t *rec = NULL;
	size_t cap = 0;
	size_t len = tracker_record_encode(t, 0, &rec, &cap);
	tracker_free(t);
	/* namelen 0, errlen 0: the table starts at REC_NAMELEN + 3 */
	size_t tab = REC_NAMELEN + 3;
	assert_int_equal(rec[tab], 2); /* two refs */
	assert_int_equal(rec[tab + 1], 13);
	assert_memory_equal(rec + tab + 2, "a.example/x:1", 13);
	assert_memory_equal(rec + tab + 16, "b.example/x:1", 13);
	/* the last byte is node-b's one ref, index 0 ("a.example") */
	assert_int_equal(rec[len - 1], 0);

	struct {
		const char *what;
		size_t at;
		uint8_t byte;
	} cases[] = {
		{"bad reference index", 0, 2},		 /* past the table */
		{"refs table not sorted", tab + 2, 'c'}, /* "c..." > "b..." */
		{"refs table not sorted", tab + 16, 'a'}, /* a repeat */
		{"refs table too large", tab, 0x7f},
		{"bad reference", tab + 1, 0},		 /* empty ref */
		{"bad reference index", 0, 0x80},	 /* unended varint */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint8_t *bad = xmalloc(len);
		memcpy(bad, rec, len);
		bad[cases[c].at ? cases[c].at : len - 1] = cases[c].byte;
		t = new_tracker();
		int rc = tracker_record_load(t, bad, len, T0, NULL, err,
		    sizeof(err));
		if (rc != -EINVAL || strstr(err, cases[c].what) == NULL)
			fail_msg("case %zu: %d (%s), expected \"%s\"", c, rc,
			    rc ? err : "loaded", cases[c].what);
		assert_int_equal(tracker_record_validate(bad, len, NULL, NULL,
		    err, sizeof(err)), -EINVAL);
		assert_int_equal(tracker_count(t), 0);
		tracker_free(t);
		free(bad);
	}
	free(rec);
}

static void
test_large_record(void **state)
{
	const char *dir = *state;
	char host[TRACKER_MAX_NAME + 1], srcs[3][TRACKER_MAX_NAME + 1];
	char (*refs)[TRACKER_MAX_REF_LEN + 1] = xcalloc(2 * TRACKER_MAX_REFS,
	    sizeof(*refs));
	const char *tags[TRACKER_MAX_REFS], *digs[TRACKER_MAX_REFS];
	char *error = xmalloc(TRACKER_MAX_ERROR + 100);

	memset(host, 'h', TRACKER_MAX_NAME);
	host[TRACKER_MAX_NAME] = '\0';
	for (int i = 0; i < 3; i++) {
		memset(srcs[i], 'a' + i, TRACKER_MAX_NAME);
		srcs[i][TRACKER_MAX_NAME] = '\0';
	}
	for (int i = 0; i < 2 * TRACKER_MAX_REFS; i++) {
		memset(refs[i], 'r', TRACKER_MAX_REF_LEN);
		snprintf(refs[i], 16, "ref-%03d", i);
		refs[i][7] = '/';
		refs[i][TRACKER_MAX_REF_LEN] = '\0';
	}
	for (int i = 0; i < TRACKER_MAX_REFS; i++) {
		tags[i] = refs[i];
		digs[i] = refs[TRACKER_MAX_REFS + i];
	}
	memset(error, 'E', TRACKER_MAX_ERROR + 99);
	error[TRACKER_MAX_ERROR + 99] = '\0';

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	char img[DIGEST_STR_LEN];
	image_id(7, img);
	for (int i = 0; i < 3; i++) {
		ev_apply(t, EVENT_SET, ENTITY_HOST, host, srcs[i], tags,
		    TRACKER_MAX_REFS, digs, TRACKER_MAX_REFS, T0, i, T0, NULL);
		ev_apply(t, EVENT_SET, ENTITY_IMAGE, img, srcs[i], tags,
		    TRACKER_MAX_REFS, digs, TRACKER_MAX_REFS, T0, i, T0, NULL);
	}
	struct tracker_job job;
	struct tracker_outcome o;
	struct tracker_result fail = {false, ERROR_RETRYABLE, error, 0};
	while (tracker_pop_due(t, T0, &job))
		assert_int_equal(tracker_complete(t, job.handle, job.attempt,
		    &fail, T0, &o), 0);
	assert_int_equal(tracker_count_state(t, ENTRY_FAILED), 1); /* host */
	assert_int_equal(tracker_count_state(t, ENTRY_QUEUED), 1); /* retry */
	commit(s, t, NULL);
	store_close(s);

	struct store_recovery rec;
	tracker *t2 = reopen(dir, &s, T0 + 1, &rec);
	assert_int_equal(rec.entries, 2);
	assert_trackers_equal(t, t2);
	struct handles hs = all_handles(t2);
	for (size_t i = 0; i < hs.n; i++) {
		struct tracker_info info;
		uint8_t *buf = NULL;
		size_t cap = 0;
		size_t len = tracker_record_encode(t2, hs.h[i], &buf, &cap);
		/* the three sources' refs are the same: held once */
		assert_true(len > 2 * TRACKER_MAX_REFS * TRACKER_MAX_REF_LEN);
		assert_true(len < 3 * TRACKER_MAX_REFS * TRACKER_MAX_REF_LEN);
		assert_int_equal(tracker_info_get(t2, hs.h[i], &info), 0);
		assert_int_equal(strlen(info.last_error), TRACKER_MAX_ERROR);
		assert_int_equal(info.nsources, 3);
		free(buf);
	}
	free(hs.h);
	store_close(s);
	tracker_free(t);
	tracker_free(t2);
	free(refs);
	free(error);
}

/* ---- 2. SCANNING at the crash; retry schedules ---- */

static void
test_scanning_requeued(void **state)
{
	const char *dir = *state;
	char a[DIGEST_STR_LEN];
	struct tracker_key ka;
	struct tracker_job job;
	image_id(1, a);
	key_of(ENTITY_IMAGE, a, &ka);

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	assert_int_equal(set1(t, ENTITY_IMAGE, a, "node-a", "app:1", T0),
	    APPLY_NEW);
	assert_true(tracker_pop_due(t, T0, &job));
	assert_int_equal(job.attempt, 1);
	commit(s, t, NULL);
	store_close(s);
	tracker_free(t);

	int64_t now2 = T0 + 7 * MIN_MS;
	struct store_recovery rec;
	t = reopen(dir, &s, now2, &rec);
	assert_int_equal(rec.entries, 1);
	assert_int_equal(rec.requeued, 1);
	uint32_t h = tracker_find(t, &ka);
	assert_int_not_equal(h, TRACKER_NONE);
	struct tracker_info info;
	assert_int_equal(tracker_info_get(t, h, &info), 0);
	assert_int_equal(info.state, ENTRY_QUEUED);
	assert_true(info.in_heap);
	assert_int_equal(info.due, now2);
	assert_int_equal(info.attempts, 0);
	assert_int_equal(info.first_seen, T0);
	assert_int_equal(tracker_count_state(t, ENTRY_QUEUED), 1);
	assert_int_equal(tracker_count_state(t, ENTRY_SCANNING), 0);
	/* not due before the recovery time, due at it, same attempt */
	assert_false(tracker_pop_due(t, now2 - 1, &job));
	assert_true(tracker_pop_due(t, now2, &job));
	assert_memory_equal(&job.key, &ka, sizeof(ka));
	assert_int_equal(job.attempt, 1);
	assert_int_equal(job.due, now2);

	/* The requeue is not persisted by itself: the store still has it
	 * SCANNING, and a second crash before any change requeues it again. */
	store_close(s);
	tracker_free(t);
	t = reopen(dir, &s, now2 + 1, &rec);
	assert_int_equal(rec.requeued, 1);
	assert_true(tracker_pop_due(t, now2 + 1, &job));
	assert_int_equal(job.attempt, 1);
	store_close(s);
	tracker_free(t);
}

static void
test_retry_schedule_kept(void **state)
{
	const char *dir = *state;
	struct tracker_config c;
	char b[DIGEST_STR_LEN], d[DIGEST_STR_LEN], err[256];
	struct tracker_key kb, kd;
	struct tracker_job job;
	struct tracker_outcome o;
	struct tracker_result fail = {false, ERROR_RETRYABLE, "timeout", 0};

	test_config(&c);
	c.retry.base_ms = 10 * MIN_MS;
	c.retry.max_ms = 60 * MIN_MS;
	c.retry.jitter = 0;
	c.retry.max_attempts = 0;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)), 0);
	image_id(2, b);
	image_id(4, d);
	key_of(ENTITY_IMAGE, b, &kb);
	key_of(ENTITY_IMAGE, d, &kd);

	store *s = open_store(dir, NULL);
	tracker *t = tracker_new(&c);
	set1(t, ENTITY_IMAGE, b, "node-a", NULL, T0);
	set1(t, ENTITY_IMAGE, d, "node-a", NULL, T0);
	/* b: attempt 1 fails, retried 10 min later; attempt 2 is running */
	assert_true(tracker_pop_due(t, T0, &job));
	assert_memory_equal(&job.key, &kb, sizeof(kb));
	assert_int_equal(tracker_complete(t, job.handle, 1, &fail, T0, &o), 0);
	assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
	assert_int_equal(o.next_attempt_at, T0 + 10 * MIN_MS);
	/* d: attempt 1 fails 5 minutes later: its retry is due at T0+15m */
	assert_true(tracker_pop_due(t, T0, &job));
	assert_memory_equal(&job.key, &kd, sizeof(kd));
	assert_int_equal(tracker_complete(t, job.handle, 1, &fail,
	    T0 + 5 * MIN_MS, &o), 0);
	int64_t d_due = o.next_attempt_at;
	assert_int_equal(d_due, T0 + 15 * MIN_MS);
	int64_t t2 = T0 + 10 * MIN_MS;
	assert_true(tracker_pop_due(t, t2, &job));
	assert_memory_equal(&job.key, &kb, sizeof(kb));
	assert_int_equal(job.attempt, 2);
	assert_false(tracker_pop_due(t, t2, &job));
	commit(s, t, NULL);
	store_close(s);
	tracker_free(t);

	int64_t now2 = t2 + 30 * 1000;
	struct store_recovery rec;
	char err2[512];
	s = open_store(dir, NULL);
	t = tracker_new(&c);
	assert_int_equal(store_recover(s, t, now2, &rec, err2, sizeof(err2)),
	    0);
	check_tracker(t);
	assert_int_equal(rec.entries, 2);
	assert_int_equal(rec.requeued, 1);

	struct tracker_info info;
	assert_int_equal(tracker_info_get(t, tracker_find(t, &kb), &info), 0);
	assert_int_equal(info.state, ENTRY_QUEUED);
	assert_int_equal(info.due, now2);
	assert_int_equal(info.attempts, 1);
	assert_string_equal(info.last_error, "timeout");
	assert_int_equal(tracker_info_get(t, tracker_find(t, &kd), &info), 0);
	assert_int_equal(info.state, ENTRY_QUEUED);
	assert_int_equal(info.due, d_due); /* not now */
	assert_int_equal(info.attempts, 1);

	assert_true(tracker_pop_due(t, now2, &job));
	assert_memory_equal(&job.key, &kb, sizeof(kb));
	assert_int_equal(job.attempt, 2);
	assert_false(tracker_pop_due(t, now2, &job));
	int64_t next;
	assert_true(tracker_next_due(t, &next));
	assert_int_equal(next, d_due);
	assert_false(tracker_pop_due(t, d_due - 1, &job));
	assert_true(tracker_pop_due(t, d_due, &job));
	assert_memory_equal(&job.key, &kd, sizeof(kd));
	assert_int_equal(job.attempt, 2);
	store_close(s);
	tracker_free(t);
}

/* ---- 3. group commit: dirty clearing, delete + re-create ---- */

static void
test_group_commit(void **state)
{
	const char *dir = *state;
	char x[DIGEST_STR_LEN], w[DIGEST_STR_LEN], v[DIGEST_STR_LEN],
	    u[DIGEST_STR_LEN];
	struct tracker_key kx, kw, kv, ku;
	struct tracker_job job;
	struct tracker_outcome o;
	const int64_t forget = 20 * MIN_MS;

	image_id(10, x);
	image_id(11, w);
	image_id(12, v);
	image_id(13, u);
	key_of(ENTITY_IMAGE, x, &kx);
	key_of(ENTITY_IMAGE, w, &kw);
	key_of(ENTITY_IMAGE, v, &kv);
	key_of(ENTITY_IMAGE, u, &ku);

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	assert_int_equal(tracker_dirty_count(t), 0);
	set1(t, ENTITY_IMAGE, x, "node-a", "x:1", T0);
	set1(t, ENTITY_IMAGE, w, "node-a", "w:1", T0);
	assert_int_equal(tracker_dirty_count(t), 2);
	commit(s, t, NULL);
	/* the same commit again: nothing dirty, nothing to do */
	commit(s, t, NULL);

	/* Both cancelled: a forget timer each, at T0 + 1 + forget. */
	unset1(t, ENTITY_IMAGE, x, "node-a", T0 + 1, &o);
	assert_int_equal(o.status, OUTCOME_CANCELLED);
	unset1(t, ENTITY_IMAGE, w, "node-a", T0 + 1, &o);
	assert_int_equal(o.status, OUTCOME_CANCELLED);
	commit(s, t, NULL);

	/* One batch: both forgotten; x comes back, w does not, v is new (it
	 * may take w's handle), u is created and forgotten in the batch. */
	int64_t t1 = T0 + 1 + forget;
	assert_false(tracker_pop_due(t, t1, &job));
	assert_int_equal(tracker_find(t, &kx), TRACKER_NONE);
	assert_int_equal(tracker_find(t, &kw), TRACKER_NONE);
	assert_int_equal(tracker_count(t), 0);
	assert_int_equal(tracker_dirty_count(t), 2);
	assert_int_equal(set1(t, ENTITY_IMAGE, x, "node-b", "x:2", t1),
	    APPLY_NEW);
	assert_int_equal(set1(t, ENTITY_IMAGE, v, "node-b", "v:1", t1),
	    APPLY_NEW);
	set1(t, ENTITY_IMAGE, u, "node-c", "u:1", t1);
	unset1(t, ENTITY_IMAGE, u, "node-c", t1, &o);
	/* x and v are handed out (and put back), u's timer fires */
	struct tracker_job xv[2];
	assert_true(tracker_pop_due(t, t1 + forget, &xv[0]));
	assert_true(tracker_pop_due(t, t1 + forget, &xv[1]));
	assert_false(tracker_pop_due(t, t1 + forget, &job));
	assert_int_equal(tracker_find(t, &ku), TRACKER_NONE);
	for (int i = 0; i < 2; i++)
		assert_int_equal(tracker_requeue(t, xv[i].handle, t1 + forget),
		    0);
	assert_true(tracker_dirty_count(t) > 0);
	uint8_t one[1] = {1};
	struct store_meta m = {"batch", one, 1};
	struct store_batch b = {.meta = &m, .nmeta = 1};
	commit(s, t, &b);
	store_close(s);
	/* x and v under their keys, nothing else */
	assert_store_holds(dir, t);

	struct store_recovery rec;
	tracker *t2 = reopen(dir, &s, t1 + forget, &rec);
	assert_int_equal(rec.entries, 2);
	assert_int_equal(rec.requeued, 0);
	assert_int_equal(tracker_find(t2, &kw), TRACKER_NONE);
	assert_int_equal(tracker_find(t2, &ku), TRACKER_NONE);
	uint32_t hx = tracker_find(t2, &kx);
	assert_int_not_equal(hx, TRACKER_NONE);
	assert_int_not_equal(tracker_find(t2, &kv), TRACKER_NONE);
	struct tracker_info info;
	assert_int_equal(tracker_info_get(t2, hx, &info), 0);
	assert_int_equal(info.state, ENTRY_QUEUED);
	assert_int_equal(info.first_seen, t1);
	assert_int_equal(info.nsources, 1);
	assert_trackers_equal(t, t2);
	assert_int_equal(meta_get(s, "batch", one, 1), 1);
	assert_int_equal(one[0], 1);

	/* A failed commit writes nothing and keeps the dirty set. */
	set1(t, ENTITY_IMAGE, w, "node-a", "w:2", t1 + forget);
	size_t dirty = tracker_dirty_count(t);
	assert_true(dirty > 0);
	{
		/* A meta name of 600 bytes exceeds LMDB's key size limit
		 * (511): the transaction fails after the entries and the
		 * outbox item were put. */
		char longname[600];
		memset(longname, 'm', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		uint8_t val[1] = {9};
		struct store_meta bad = {longname, val, 1};
		struct store_blob ob = {"outcome", 7};
		uint64_t seq = 77;
		struct store_batch fb = {.outbox_add = &ob, .noutbox_add = 1,
		    .outbox_seqs = &seq, .meta = &bad, .nmeta = 1};
		char err[512];
		int rc = tcommit(s, t, &fb, err, sizeof(err));
		assert_true(rc < 0);
		print_message("failed commit: %d %s\n", rc, err);
		assert_non_null(strstr(err, dir));
		assert_int_equal(tracker_dirty_count(t), dirty);
	}
	store_close(s);
	tracker_free(t2);
	t2 = reopen(dir, &s, t1 + forget, &rec);
	assert_int_equal(tracker_find(t2, &kw), TRACKER_NONE);
	assert_int_equal(rec.outbox, 0);
	assert_int_equal(store_outbox_count(s), 0);
	/* and the retried commit then writes it all */
	commit(s, t, NULL);
	store_close(s);
	tracker_free(t2);
	t2 = reopen(dir, &s, t1 + forget, &rec);
	assert_int_not_equal(tracker_find(t2, &kw), TRACKER_NONE);
	assert_trackers_equal(t, t2);
	store_close(s);
	assert_store_holds(dir, t);

	tracker_free(t);
	tracker_free(t2);
}

/* ---- 4. outbox ---- */

struct ob_seen {
	uint64_t seq[32];
	char data[32][32];
	size_t n;
};

static int
ob_collect(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	struct ob_seen *o = ctx;
	assert_null(ref); /* plain items, no entry references */
	assert_true(o->n < 32);
	assert_true(len < 32);
	o->seq[o->n] = seq;
	memcpy(o->data[o->n], data, len);
	o->data[o->n][len] = '\0';
	o->n++;
	return 0;
}

static int
ob_stop(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	(void)seq, (void)data, (void)len, (void)ref;
	int *calls = ctx;
	++*calls;
	return 42;
}

static void
ob_add(store *s, tracker *t, const char *const *items, size_t n,
    uint64_t *seqs, const uint64_t *del, size_t ndel)
{
	struct store_blob blobs[8];
	for (size_t i = 0; i < n; i++) {
		blobs[i].data = items[i];
		blobs[i].len = strlen(items[i]);
	}
	struct store_batch b = {.outbox_add = blobs, .noutbox_add = n,
	    .outbox_seqs = seqs, .outbox_del = del, .noutbox_del = ndel};
	commit(s, t, &b);
}

static void
test_outbox(void **state)
{
	const char *dir = *state;
	const char *first[] = {"one", "two", "three"};
	const char *second[] = {"four", "five"};
	uint64_t s1[3], s2[2], s3[1], s4[1];
	struct store_recovery rec;
	struct ob_seen seen;

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	assert_int_equal(store_outbox_count(s), 0);
	ob_add(s, t, first, 3, s1, NULL, 0);
	assert_true(s1[0] < s1[1] && s1[1] < s1[2]);
	ob_add(s, t, second, 2, s2, NULL, 0);
	assert_true(s1[2] < s2[0] && s2[0] < s2[1]);
	assert_int_equal(store_outbox_count(s), 5);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ob_collect, &seen), 0);
	assert_int_equal(seen.n, 5);
	const char *all[] = {"one", "two", "three", "four", "five"};
	uint64_t allseq[] = {s1[0], s1[1], s1[2], s2[0], s2[1]};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(seen.seq[i], allseq[i]);
		assert_string_equal(seen.data[i], all[i]);
	}
	int calls = 0;
	assert_int_equal(store_outbox_foreach(s, ob_stop, &calls), 42);
	assert_int_equal(calls, 1);

	/* delivered: "two", and a sequence that does not exist */
	uint64_t del[2] = {s1[1], 999999};
	ob_add(s, t, NULL, 0, NULL, del, 2);
	assert_int_equal(store_outbox_count(s), 4);
	store_close(s);
	tracker_free(t);

	/* After reopen: the same items in order, sequences continue. */
	t = reopen(dir, &s, T0, &rec);
	assert_int_equal(rec.outbox, 4);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ob_collect, &seen), 0);
	assert_int_equal(seen.n, 4);
	const char *left[] = {"one", "three", "four", "five"};
	uint64_t leftseq[] = {s1[0], s1[2], s2[0], s2[1]};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(seen.seq[i], leftseq[i]);
		assert_string_equal(seen.data[i], left[i]);
	}
	const char *six[] = {"six"};
	ob_add(s, t, six, 1, s3, NULL, 0);
	assert_true(s3[0] > s2[1]);
	/* the newest item delivered (its sequence may be used again after
	 * a restart: nothing refers to a delivered item any more) */
	uint64_t del2[1] = {s3[0]};
	ob_add(s, t, NULL, 0, NULL, del2, 1);
	store_close(s);
	tracker_free(t);

	/* Even by a process that commits without recovering first (a tool). */
	s = open_store(dir, NULL);
	t = new_tracker();
	const char *seven[] = {"seven"};
	ob_add(s, t, seven, 1, s4, NULL, 0);
	assert_true(s4[0] > s2[1]);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ob_collect, &seen), 0);
	assert_int_equal(seen.n, 5);
	assert_string_equal(seen.data[0], "one"); /* not overwritten */
	assert_string_equal(seen.data[4], "seven");
	store_close(s);
	tracker_free(t);
}

/* ---- 5. meta ---- */

/* What store_outbox_foreach saw of one entry reference. */
struct ref_seen {
	size_t n;
	uint64_t seq;
	int32_t partition;
	struct tracker_key key;
	uint8_t rec[1024];
	size_t len;
	bool present;
};

static int
ref_collect(void *ctx, uint64_t seq, const void *data, size_t len,
    const struct store_entry *ref)
{
	struct ref_seen *r = ctx;
	assert_non_null(ref);
	assert_int_equal(len, STORE_ENTRY_REF_LEN);
	assert_int_equal(((const uint8_t *)data)[0], STORE_ENTRY_REF);
	r->n++;
	r->seq = seq;
	r->partition = ref->partition;
	r->key = ref->key;
	r->present = ref->rec != NULL;
	r->len = ref->len;
	assert_true(ref->len <= sizeof(r->rec));
	if (ref->rec != NULL)
		memcpy(r->rec, ref->rec, ref->len);
	return 0;
}

/*
 * An outbox item that is a reference to an entry (what a changelog
 * record is stored as) is read back as that entry is in the store then:
 * its newest record after later commits, none once it is deleted.
 */
static void
test_outbox_entry_ref(void **state)
{
	const char *dir = *state;
	char id[DIGEST_STR_LEN];
	struct tracker_key key;
	struct ref_seen seen;
	image_id(3, id);
	key_of(ENTITY_IMAGE, id, &key);

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	set1(t, ENTITY_IMAGE, id, "node-a", "a:1", T0);
	uint8_t ref[STORE_ENTRY_REF_LEN];
	store_entry_ref(0, &key, ref);
	assert_int_equal(ref[0], STORE_ENTRY_REF);
	struct store_blob blob = {ref, sizeof(ref)};
	uint64_t seq;
	struct store_batch b = {.outbox_add = &blob, .noutbox_add = 1,
	    .outbox_seqs = &seq};
	commit(s, t, &b); /* the entry and the reference, one commit */

	uint8_t *want = NULL;
	size_t cap = 0;
	uint32_t h = tracker_find(t, &key);
	size_t wlen = tracker_record_encode(t, h, &want, &cap);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ref_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.seq, seq);
	assert_int_equal(seen.partition, 0);
	assert_memory_equal(&seen.key, &key, sizeof(key));
	assert_true(seen.present);
	assert_int_equal(seen.len, wlen);
	assert_memory_equal(seen.rec, want, wlen);

	/* a later commit changes the entry: the reference reads the new
	 * record */
	set1(t, ENTITY_IMAGE, id, "node-b", "b:1", T0 + 1);
	commit(s, t, NULL);
	wlen = tracker_record_encode(t, h, &want, &cap);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ref_collect, &seen), 0);
	assert_int_equal(seen.len, wlen);
	assert_memory_equal(seen.rec, want, wlen);
	free(want);

	/* the entry deleted (forgotten): nothing to read, after a reopen
	 * too */
	struct store_entry del = {0, key, NULL, 0};
	struct store_batch d = {.entries = &del, .nentries = 1};
	char err[256];
	if (store_commit(s, &d, err, sizeof(err)) != 0)
		fail_msg("store_commit: %s", err);
	store_close(s);
	s = open_store(dir, NULL);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_outbox_foreach(s, ref_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_false(seen.present);
	assert_int_equal(seen.partition, 0);
	store_close(s);
	tracker_free(t);
}

static void
test_meta(void **state)
{
	const char *dir = *state;
	uint8_t bin[300], big[2000], buf[2048];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)i; /* includes NUL bytes */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	uint8_t pos[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	assert_int_equal(meta_get(s, "positions", buf, sizeof(buf)),
	    -ENOENT);
	/* the format is there from the start */
	assert_int_equal(meta_get(s, "format", buf, sizeof(buf)), 4);
	assert_int_equal(buf[0], STORE_FORMAT);

	struct store_meta m[4] = {{"positions", pos, 8}, {"bin", bin, 300},
	    {"big", big, 2000}, {"empty", "", 0}};
	struct store_batch b = {.meta = m, .nmeta = 4};
	commit(s, t, &b);
	uint8_t pos2[3] = {9, 9, 9};
	struct store_meta m2 = {"positions", pos2, 3};
	struct store_batch b2 = {.meta = &m2, .nmeta = 1};
	commit(s, t, &b2);
	store_close(s);
	tracker_free(t);

	struct store_recovery rec;
	t = reopen(dir, &s, T0, &rec);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(meta_get(s, "positions", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, pos2, 3);
	assert_int_equal(meta_get(s, "bin", buf, sizeof(buf)), 300);
	assert_memory_equal(buf, bin, 300);
	assert_int_equal(meta_get(s, "big", buf, sizeof(buf)), 2000);
	assert_memory_equal(buf, big, 2000);
	assert_int_equal(meta_get(s, "empty", buf, sizeof(buf)), 0);
	/* a short buffer gets a prefix; the length says how much there is */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(meta_get(s, "bin", buf, 10), 300);
	assert_memory_equal(buf, bin, 10);
	assert_int_equal(buf[10], 0xee);
	assert_int_equal(meta_get(s, "nope", buf, sizeof(buf)), -ENOENT);

	/* A NULL value deletes (what is not there too), in the same
	 * transaction as the puts, in order. */
	struct store_meta m3[4] = {{"bin", NULL, 0}, {"nope", NULL, 0},
	    {"positions", NULL, 0}, {"positions", pos, 8}};
	struct store_batch b3 = {.meta = m3, .nmeta = 4};
	commit(s, t, &b3);
	assert_int_equal(meta_get(s, "bin", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(meta_get(s, "nope", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(meta_get(s, "positions", buf, sizeof(buf)), 8);
	assert_int_equal(meta_get(s, "big", buf, sizeof(buf)), 2000);
	store_close(s);
	tracker_free(t);
}

/* ---- 6. map growth and its limit ---- */

static void
add_images(tracker *t, unsigned from, unsigned n, int64_t now)
{
	for (unsigned i = from; i < from + n; i++) {
		char id[DIGEST_STR_LEN];
		image_id(i, id);
		assert_int_equal(set1(t, ENTITY_IMAGE, id, "node-a",
		    "registry.example.com/app:1.0", now), APPLY_NEW);
	}
}

static void
test_map_growth(void **state)
{
	const char *dir = *state;
	struct store_options opt = {.initial_map_size = 1u << 20};
	store *s = open_store(dir, &opt);
	tracker *t = new_tracker();
	size_t initial = store_map_size(s);
	assert_int_equal(initial, 1u << 20);
	for (unsigned b = 0; b < 10; b++) {
		add_images(t, b * 5000, 5000, T0 + b);
		commit(s, t, NULL);
	}
	size_t grown = store_map_size(s);
	print_message("map: %zu -> %zu bytes for %zu entries\n", initial,
	    grown, tracker_count(t));
	assert_true(grown > initial);
	assert_int_equal(tracker_count(t), 50000);
	store_close(s);

	/* The data already there wins over a smaller configured size (LMDB
	 * sizes the map to the used part of the file). */
	s = open_store(dir, &opt);
	size_t reopened = store_map_size(s);
	print_message("map after reopen with 1 MiB configured: %zu\n",
	    reopened);
	assert_true(reopened > initial && reopened <= grown);
	tracker *t2 = new_tracker();
	struct store_recovery rec;
	char err[512];
	assert_int_equal(store_recover(s, t2, T0 + 100, &rec, err,
	    sizeof(err)), 0);
	assert_int_equal(rec.entries, 50000);
	assert_trackers_equal(t, t2);
	/* and it grows again from there */
	add_images(t2, 50000, 20000, T0 + 200);
	commit(s, t2, NULL);
	assert_true(store_map_size(s) > reopened);
	store_close(s);
	tracker_free(t);
	t = reopen(dir, &s, T0 + 300, &rec);
	assert_int_equal(rec.entries, 70000);
	assert_trackers_equal(t, t2);
	store_close(s);
	tracker_free(t);
	tracker_free(t2);
}

/* One SET of image img from source "node-<i>" (one tag) at observed. */
static enum apply_result
set_from(tracker *t, const char *img, unsigned i, int64_t observed,
    char *err, size_t errlen)
{
	char src[32];
	snprintf(src, sizeof(src), "node-%05u", i);
	const char *tags[1] = {"registry.local/app:1.0"};
	struct tracker_event ev = {
		.type = EVENT_SET, .kind = ENTITY_IMAGE, .id = img,
		.source = src, .tags = tags, .ntags = 1, .observed_at = observed,
	};
	struct tracker_outcome o;
	return tracker_apply(t, &ev, observed, &o, err, errlen);
}

/* The sources of one entity are bounded where events are applied, not
 * only where records are loaded: 4,097 sources (one more than the loader
 * takes) applied, committed and reopened load again. The 4,097th is
 * refused while all hold the image; once some have UNSET it, the oldest
 * of those make room. */
static void
test_many_sources(void **state)
{
	const char *dir = *state;
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	char img[DIGEST_STR_LEN], err[256];
	image_id(4097, img);
	enum apply_result r = APPLY_NEW;
	for (unsigned i = 0; i < TRACKER_MAX_SOURCES + 1; i++) {
		err[0] = '\0';
		r = set_from(t, img, i, T0 + i, err, sizeof(err));
		if (i < TRACKER_MAX_SOURCES)
			assert_true(r == APPLY_NEW || r == APPLY_UPDATED);
	}
	assert_int_equal(r, APPLY_INVALID);
	assert_non_null(strstr(err, "dedup.max_sources"));
	commit(s, t, NULL);
	store_close(s);

	struct store_recovery rec;
	tracker *t2 = reopen(dir, &s, T0 + 10000, &rec);
	assert_int_equal(rec.entries, 1);
	assert_trackers_equal(t, t2);
	struct tracker_key key;
	assert_int_equal(tracker_key_from_id(ENTITY_IMAGE, img, &key, err,
	    sizeof(err)), 0);
	struct tracker_info info;
	assert_int_equal(tracker_info_get(t2, tracker_find(t2, &key), &info),
	    0);
	assert_int_equal(info.nsources, TRACKER_MAX_SOURCES);

	/* Sources 10, 11 and 12 UNSET it: a new source makes room by
	 * dropping their records (up to max_sources / 16 at a time; the
	 * order is test_tracker's). */
	char src[32];
	for (unsigned i = 10; i < 13; i++) {
		snprintf(src, sizeof(src), "node-%05u", i);
		assert_int_equal(unset1(t2, ENTITY_IMAGE, img, src, T0 + 20000,
		    NULL), APPLY_UPDATED);
	}
	assert_int_equal(set_from(t2, img, 5000, T0 + 30000, err,
	    sizeof(err)), APPLY_UPDATED);
	assert_int_equal(tracker_info_get(t2, tracker_find(t2, &key), &info),
	    0);
	assert_int_equal(info.nsources, TRACKER_MAX_SOURCES - 2);
	/* their UNSETs are forgotten: the sources are unknown again */
	snprintf(src, sizeof(src), "node-%05u", 12);
	assert_int_equal(unset1(t2, ENTITY_IMAGE, img, src, T0 + 20000, NULL),
	    APPLY_UNKNOWN);
	check_tracker(t2);
	commit(s, t2, NULL);
	store_close(s);
	tracker *t3 = reopen(dir, &s, T0 + 40000, &rec);
	assert_trackers_equal(t2, t3);
	store_close(s);
	tracker_free(t);
	tracker_free(t2);
	tracker_free(t3);
}

/* A random string of 1..max bytes (printable) into buf. */
static const char *
rand_str(char *buf, size_t max)
{
	size_t n = 1 + rng_below(max);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + rng_below(26));
	buf[n] = '\0';
	return buf;
}

/* Encodes entity h of t and loads the record into a fresh tracker: every
 * record the encoder writes must load. */
static void
assert_record_loads(const tracker *t, uint32_t h, tracker *fresh)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = tracker_record_encode(t, h, &buf, &cap);
	char err[256];
	struct tracker_key key;
	if (tracker_record_validate(buf, len, &key, NULL, err,
		sizeof(err)) != 0 ||
	    tracker_record_load(fresh, buf, len, T0, NULL, err,
		sizeof(err)) != 0)
		fail_msg("a record the encoder wrote (%zu bytes) does not "
		    "load: %s", len, err);
	uint8_t *again = NULL;
	size_t cap2 = 0;
	size_t len2 = tracker_record_encode(fresh, tracker_find(fresh, &key),
	    &again, &cap2);
	/* SCANNING loads QUEUED: the rest is byte for byte the same */
	assert_int_equal(len2, len);
	free(buf);
	free(again);
}

/*
 * Property: random entities -- random sources (a few to past
 * max_sources), tags and digests (counts and lengths up to and beyond
 * the bounds), UNSETs, scan errors of up to 1.1 KiB -- go through the
 * record encoder and back through the loader: every record the encoder
 * produces decodes. Run under small bounds (max_sources 20, so entries
 * also cross the source index's threshold; 64 KiB per entity) and under
 * the defaults with one entity at TRACKER_MAX_SOURCES.
 */
static void
test_records_always_load(void **state)
{
	(void)state;
	rng_seed(0x5eed);
	for (int round = 0; round < 2; round++) {
		struct tracker_config c;
		test_config(&c);
		if (round == 0) {
			c.max_sources = 20;
			c.max_entity_bytes = TRACKER_MIN_ENTITY_BYTES;
		}
		tracker *t = tracker_new(&c);
		char (*refbuf)[TRACKER_MAX_REF_LEN + 40] = xcalloc(
		    2 * (TRACKER_MAX_REFS + 4), sizeof(*refbuf));
		const char *tags[TRACKER_MAX_REFS + 4];
		const char *digs[TRACKER_MAX_REFS + 4];
		char img[8][DIGEST_STR_LEN], src[32], msg[TRACKER_MAX_ERROR + 100];
		for (unsigned i = 0; i < 8; i++)
			image_id(900 + i, img[i]);
		size_t invalid = 0, pruned_checked = 0;
		int ops = round == 0 ? 6000 : 4200;
		for (int op = 0; op < ops; op++) {
			int64_t now = T0 + op;
			const char *id = img[round == 0 ? rng_below(8) : 0];
			snprintf(src, sizeof(src), "node-%u",
			    (unsigned)(round == 0 ? rng_below(40) : (unsigned)op));
			struct tracker_event ev = {
				.type = round == 0 && rng_below(3) == 0 ?
				    EVENT_UNSET : EVENT_SET,
				.kind = ENTITY_IMAGE, .id = id, .source = src,
				.observed_at = now,
			};
			if (round == 0 && ev.type == EVENT_SET) {
				size_t big = rng_below(10) == 0;
				ev.ntags = big ? rng_below(TRACKER_MAX_REFS + 4) :
				    rng_below(3);
				ev.ndigests = big ? rng_below(TRACKER_MAX_REFS + 4) :
				    rng_below(2);
				for (size_t k = 0; k < ev.ntags; k++)
					tags[k] = rand_str(refbuf[k], big ?
					    TRACKER_MAX_REF_LEN + 30 : 40);
				for (size_t k = 0; k < ev.ndigests; k++)
					digs[k] = rand_str(refbuf[TRACKER_MAX_REFS
					    + 4 + k], big ? TRACKER_MAX_REF_LEN + 30 :
					    80);
				ev.tags = tags;
				ev.digests = digs;
			}
			struct tracker_outcome o;
			char err[256];
			enum apply_result r = tracker_apply(t, &ev, now, &o, err,
			    sizeof(err));
			invalid += r == APPLY_INVALID;
			/* scans: pop what is due, fail or succeed it */
			struct tracker_job job;
			while (tracker_pop_due(t, now, &job)) {
				struct tracker_result res = {rng_below(2) == 0,
				    ERROR_RETRYABLE,
				    rand_str(msg, TRACKER_MAX_ERROR + 90), 0};
				tracker_complete(t, job.handle, job.attempt, &res,
				    now, &o);
			}
			if (round == 1 && op % 500 != 0 && op != ops - 1)
				continue;
			check_tracker(t);
			tracker *fresh = new_tracker();
			struct handles hs = all_handles(t);
			for (size_t i = 0; i < hs.n; i++)
				assert_record_loads(t, hs.h[i], fresh);
			pruned_checked += hs.n;
			free(hs.h);
			tracker_free(fresh);
		}
		struct tracker_stats st;
		tracker_stats(t, &st);
		print_message("round %d: %zu refused, %llu sources pruned, "
		    "%zu records loaded back\n", round, invalid,
		    (unsigned long long)st.sources_pruned, pruned_checked);
		assert_true(invalid > 0);
		if (round == 0)
			assert_true(st.sources_pruned > 0);
		free(refbuf);
		tracker_free(t);
	}
}

static void
test_map_limit(void **state)
{
	const char *dir = *state;
	struct store_options opt = {.initial_map_size = 1u << 20,
	    .max_map_size = 2u << 20};
	store *s = open_store(dir, &opt);
	tracker *t = new_tracker();
	char err[512] = "";
	int rc = 0;
	unsigned b, committed = 0;
	for (b = 1; b <= 50; b++) {
		add_images(t, (b - 1) * 1000, 1000, T0 + b);
		uint8_t bn[1] = {(uint8_t)b};
		struct store_meta m = {"batch", bn, 1};
		struct store_batch sb = {.meta = &m, .nmeta = 1};
		size_t dirty = tracker_dirty_count(t);
		rc = tcommit(s, t, &sb, err, sizeof(err));
		if (rc != 0) {
			/* nothing silently lost: the dirty set is all there */
			assert_int_equal(tracker_dirty_count(t), dirty);
			break;
		}
		committed = b;
		assert_int_equal(tracker_dirty_count(t), 0);
	}
	print_message("limit hit at batch %u: %d %s\n", b, rc, err);
	assert_int_equal(rc, -ENOSPC);
	assert_true(committed >= 1);
	assert_non_null(strstr(err, "limit"));
	assert_non_null(strstr(err, "2 MiB"));
	/* the key to raise, as the configuration spells it */
	assert_non_null(strstr(err, "state.max_map_size"));
	assert_null(strstr(err, "state.max_size"));
	assert_non_null(strstr(err, dir));
	assert_int_equal(store_map_size(s), 2u << 20);
	/* trying again fails the same way and still keeps everything */
	size_t dirty = tracker_dirty_count(t);
	assert_int_equal(tcommit(s, t, NULL, err, sizeof(err)), -ENOSPC);
	assert_int_equal(tracker_dirty_count(t), dirty);
	store_close(s);

	/* On disk: exactly the batches before the failed one. */
	struct store_recovery rec;
	tracker *t2 = reopen(dir, &s, T0 + 100, &rec);
	assert_int_equal(rec.entries, committed * 1000);
	uint8_t bn[1];
	assert_int_equal(meta_get(s, "batch", bn, 1), 1);
	assert_int_equal(bn[0], committed);
	/* With room, the kept dirty set is committed and nothing is lost. */
	commit(s, t, NULL);
	store_close(s);
	tracker_free(t2);
	t2 = reopen(dir, &s, T0 + 100, &rec);
	assert_int_equal(rec.entries, tracker_count(t));
	assert_trackers_equal(t, t2);
	store_close(s);
	tracker_free(t);
	tracker_free(t2);
}

/* ---- 7. a newer store format ---- */

/*
 * A full disk (a 512 KiB tmpfs; needs root, skipped otherwise): the commit
 * fails with an error naming the directory and the free space, keeps the
 * batch pending, and the same commit succeeds once there is room.
 */
static void
test_disk_full(void **state)
{
	const char *dir = *state;
	char mnt[4096], sdir[4200];
	snprintf(mnt, sizeof(mnt), "%s/small", dir);
	snprintf(sdir, sizeof(sdir), "%s/state", mnt);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=512k") != 0) {
		printf("skipped: cannot mount a small tmpfs (%s)\n",
		    strerror(errno));
		skip();
	}
	struct store_options opt = {.initial_map_size = 8u << 20};
	store *s = open_store(sdir, &opt);
	tracker *t = new_tracker();
	char err[512] = "";
	int rc = 0;
	unsigned next = 0;
	for (int i = 0; i < 200 && rc == 0; i++) {
		add_images(t, next, 500, T0);
		next += 500;
		rc = tcommit(s, t, NULL, err, sizeof(err));
	}
	assert_true(rc < 0);
	printf("commit on a full disk: %s\n", err);
	assert_non_null(strstr(err, sdir));
	assert_non_null(strstr(err, "free on the disk"));
	size_t pending = tracker_dirty_count(t);
	assert_true(pending >= 500);
	/* still failing: nothing is lost, nothing is half-written */
	assert_true(tcommit(s, t, NULL, err, sizeof(err)) < 0);
	assert_int_equal(tracker_dirty_count(t), pending);

	assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT,
	    "size=64m"), 0);
	rc = tcommit(s, t, NULL, err, sizeof(err));
	if (rc != 0)
		fail_msg("commit after making room: %s", err);
	assert_int_equal(tracker_dirty_count(t), 0);
	store_close(s);
	store *s2;
	tracker *back = reopen(sdir, &s2, T0 + 1, NULL);
	assert_int_equal(tracker_count(back), next);
	assert_trackers_equal(t, back);
	store_close(s2);
	tracker_free(back);
	tracker_free(t);
	assert_int_equal(umount(mnt), 0);
}

static void
test_newer_format(void **state)
{
	const char *dir = *state;
	char err[512] = "";
	store *s = open_store(dir, NULL);
	store_close(s);

	uint8_t f99[4] = {99, 0, 0, 0};
	raw_put(dir, "meta", "format", 6, f99, 4);
	int rc = store_open(dir, NULL, &s, err, sizeof(err));
	print_message("format 99: %d %s\n", rc, err);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "99"));
	assert_non_null(strstr(err, dir));

	/* a big one, to be sure the value is read as 32-bit little-endian */
	uint8_t fbig[4] = {1, 0, 0, 1};
	raw_put(dir, "meta", "format", 6, fbig, 4);
	assert_int_equal(store_open(dir, NULL, &s, err, sizeof(err)), -EPROTO);

	uint8_t fbad[3] = {1, 0, 0};
	raw_put(dir, "meta", "format", 6, fbad, 3);
	rc = store_open(dir, NULL, &s, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "format"));

	uint8_t f1[4] = {STORE_FORMAT, 0, 0, 0};
	raw_put(dir, "meta", "format", 6, f1, 4);
	s = open_store(dir, NULL);
	store_close(s);
}

/* ---- 8. corrupt records ---- */

/* A store of 20 images and 5 hosts; returns the tracker it holds. */
static tracker *
corrupt_fixture(const char *dir)
{
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	const char *tags[] = {"registry.example.com/app:1.0", "app:latest"};
	const char *digs[] = {"registry.example.com/app@sha256:"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
	for (unsigned i = 0; i < 20; i++) {
		char id[DIGEST_STR_LEN];
		image_id(100 + i, id);
		ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-a", tags, 2,
		    digs, 1, T0, 1, T0, NULL);
		ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-b", tags, 1,
		    NULL, 0, T0, 1, T0, NULL);
	}
	for (unsigned i = 0; i < 5; i++) {
		char host[64];
		snprintf(host, sizeof(host), "host-%u.example.com", i);
		set1(t, ENTITY_HOST, host, "node-a", NULL, T0);
	}
	struct tracker_job job;
	struct tracker_outcome o;
	struct tracker_result fail = {false, ERROR_RETRYABLE, "boom", 0};
	assert_true(tracker_pop_due(t, T0, &job));
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &fail,
	    T0, &o), 0);
	commit(s, t, NULL);
	store_close(s);
	return t;
}

/*
 * Recovers dir into a fresh tracker, expecting failure rc with err naming
 * `name` and containing each of the further strings; no crash, no leak.
 */
static void
expect_recover_fails(const char *dir, int want_rc, const char *name,
    const char *also1, const char *also2)
{
	char err[1024] = "";
	struct store_recovery rec;
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	int rc = store_recover(s, t, T0 + 1, &rec, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("store_recover: %d (wanted %d): %s", rc, want_rc,
		    err);
	if (name && strstr(err, name) == NULL)
		fail_msg("error does not name %s: %s", name, err);
	if (also1 && strstr(err, also1) == NULL)
		fail_msg("error does not say \"%s\": %s", also1, err);
	if (also2 && strstr(err, also2) == NULL)
		fail_msg("error does not say \"%s\": %s", also2, err);
	assert_non_null(strstr(err, dir));
	store_close(s);
	tracker_free(t);
}

static void
test_corrupt_records(void **state)
{
	const char *dir = *state;
	tracker *t = corrupt_fixture(dir);
	size_t total = tracker_count(t);
	char id[DIGEST_STR_LEN], name[160], anon[64];
	struct tracker_key key;
	size_t len;

	image_id(105, id);
	key_of(ENTITY_IMAGE, id, &key);
	/* the fixture's images are at partition 1, its hosts at 0 */
	assert_int_not_equal(tracker_find(t, &key), TRACKER_NONE);
	entry_name(name, sizeof(name), &key, 1);
	entry_name(anon, sizeof(anon), NULL, 1);
	uint8_t *good = raw_ent_get(dir, 1, &key, &len);
	assert_non_null(good);
	assert_true(len > 100);
	assert_record_key(good, len, &key);

	/* (a) every truncation of a valid record: named by its key while the
	 * record still holds all of it, by its partition always */
	for (size_t cut = 0; cut < len; cut++) {
		raw_ent_put(dir, 1, &key, good, cut);
		expect_recover_fails(dir, -EINVAL,
		    cut >= REC_KEY + TRACKER_KEY_LEN ? name : anon,
		    "corrupt record", "1 unreadable record");
	}
	print_message("truncations 0..%zu of a %zu-byte record refused\n",
	    len - 1, len);
	/* one byte too many */
	uint8_t *longer = xmalloc(len + 1);
	memcpy(longer, good, len);
	longer[len] = 0;
	raw_ent_put(dir, 1, &key, longer, len + 1);
	expect_recover_fails(dir, -EINVAL, name, "trailing bytes", NULL);
	free(longer);

	/* (b) random bytes: version 1, 2 or 3 (so the parser runs), then any;
	 * named
	 * by whatever key the bytes hold, or "?" */
	rng_seed(0xbadbad);
	uint8_t junk[400];
	for (int i = 0; i < 60; i++) {
		size_t n = 1 + rng_below(sizeof(junk) - 1);
		char jname[160];
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rng_next();
		if (i < 40)
			junk[0] = (uint8_t)(1 + i % TRACKER_RECORD_VERSION);
		if (i < 20 && n > 1)
			junk[1] = ENTITY_IMAGE; /* gets past the kind check */
		struct tracker_key jk;
		bool keyed = n >= REC_KEY + TRACKER_KEY_LEN &&
		    junk[REC_KIND] <= ENTITY_HOST;
		if (keyed) {
			jk.kind = junk[REC_KIND];
			memcpy(jk.bytes, junk + REC_KEY, TRACKER_KEY_LEN);
		}
		entry_name(jname, sizeof(jname), keyed ? &jk : NULL, 1);
		raw_ent_put(dir, 1, &key, junk, n);
		bool newer = junk[0] > TRACKER_RECORD_VERSION;
		expect_recover_fails(dir, newer ? -EPROTO : -EINVAL,
		    jname, newer ? "newer" : "corrupt record", NULL);
	}

	/* version 0 never existed */
	uint8_t *v0 = xmalloc(len);
	memcpy(v0, good, len);
	v0[0] = 0;
	raw_ent_put(dir, 1, &key, v0, len);
	expect_recover_fails(dir, -EINVAL, name, "unknown version", NULL);
	free(v0);
	/* (c) a record of a newer version */
	uint8_t *v200 = xmalloc(len);
	memcpy(v200, good, len);
	v200[0] = 200;
	raw_ent_put(dir, 1, &key, v200, len);
	expect_recover_fails(dir, -EPROTO, name, "newer", "200");
	free(v200);

	/* Recovery changed nothing on disk. */
	assert_int_equal(raw_count(dir, "entries"), total);
	size_t now_len;
	uint8_t *still = raw_ent_get(dir, 1, &key, &now_len);
	assert_non_null(still);
	assert_int_equal(now_len, len);
	assert_int_equal(still[0], 200);
	free(still);

	/* Several bad records: all counted, the first in key order named
	 * (by key and partition); -EPROTO wins when one of them is newer.
	 * Three more, cut short after their key. */
	struct tracker_key keys[3];
	uint8_t *recs[3];
	size_t lens[3];
	static const unsigned which[3] = {101, 110, 115};
	for (int i = 0; i < 3; i++) {
		image_id(which[i], id);
		key_of(ENTITY_IMAGE, id, &keys[i]);
		assert_int_not_equal(tracker_find(t, &keys[i]), TRACKER_NONE);
		recs[i] = raw_ent_get(dir, 1, &keys[i], &lens[i]);
		assert_non_null(recs[i]);
		raw_ent_put(dir, 1, &keys[i], recs[i], 40);
	}
	const struct tracker_key *lowest = &key, *lowest3 = NULL;
	for (int i = 0; i < 3; i++) {
		if (memcmp(keys[i].bytes, lowest->bytes, TRACKER_KEY_LEN) < 0)
			lowest = &keys[i];
		if (lowest3 == NULL || memcmp(keys[i].bytes, lowest3->bytes,
		    TRACKER_KEY_LEN) < 0)
			lowest3 = &keys[i];
	}
	entry_name(name, sizeof(name), lowest, 1);
	expect_recover_fails(dir, -EPROTO, name, "4 unreadable record(s)",
	    NULL);
	raw_ent_put(dir, 1, &key, good, len);
	entry_name(name, sizeof(name), lowest3, 1);
	expect_recover_fails(dir, -EINVAL, name, "3 unreadable record(s)",
	    "truncated header");
	for (int i = 0; i < 3; i++) {
		raw_ent_put(dir, 1, &keys[i], recs[i], lens[i]);
		free(recs[i]);
	}
	entry_name(name, sizeof(name), &key, 1); /* image 105 again */

	/* A host record: named by the key it holds; the kind is checked
	 * against the name, the name against the key. */
	char host[64];
	struct tracker_key hk;
	snprintf(host, sizeof(host), "host-%u.example.com", 3u);
	key_of(ENTITY_HOST, host, &hk);
	assert_int_not_equal(tracker_find(t, &hk), TRACKER_NONE);
	size_t hlen;
	uint8_t *hrec = raw_ent_get(dir, 0, &hk, &hlen);
	assert_non_null(hrec);
	assert_record_key(hrec, hlen, &hk);
	char hname[160];
	entry_name(hname, sizeof(hname), &hk, 0);
	assert_non_null(strstr(hname, "host-key:"));
	hrec[REC_KIND] = ENTITY_IMAGE; /* an image with a host name */
	raw_ent_put(dir, 0, &hk, hrec, hlen);
	{
		struct tracker_key as_image = hk;
		char iname[160];
		as_image.kind = ENTITY_IMAGE;
		entry_name(iname, sizeof(iname), &as_image, 0);
		expect_recover_fails(dir, -EINVAL, iname, "out of range",
		    NULL);
	}
	hrec[REC_KIND] = 7; /* no such kind: no key to name either */
	raw_ent_put(dir, 0, &hk, hrec, hlen);
	entry_name(anon, sizeof(anon), NULL, 0);
	expect_recover_fails(dir, -EINVAL, anon, "unknown kind", NULL);
	hrec[REC_KIND] = ENTITY_HOST;
	assert_int_equal(hrec[REC_NAMELEN], strlen(host));
	hrec[REC_NAMELEN + 1] ^= 1; /* a letter of the name */
	raw_ent_put(dir, 0, &hk, hrec, hlen);
	expect_recover_fails(dir, -EINVAL, hname, "does not match", NULL);
	hrec[REC_NAMELEN + 1] ^= 1;
	hrec[REC_KEY + 7] ^= 0x40; /* a byte of the key */
	raw_ent_put(dir, 0, &hk, hrec, hlen);
	{
		struct tracker_key bent = hk;
		char bname[160];
		bent.bytes[7] ^= 0x40;
		entry_name(bname, sizeof(bname), &bent, 0);
		expect_recover_fails(dir, -EINVAL, bname, "does not match",
		    NULL);
	}
	hrec[REC_KEY + 7] ^= 0x40;
	raw_ent_put(dir, 0, &hk, hrec, hlen);
	free(hrec);

	/* Keys that are not 37 bytes: no partition to name, the record's
	 * key still named. (Before, after and among the others.) */
	{
		char kname[160], why[64];
		static const uint8_t k3[3] = {0, 0, 0}, k5[5] = {0, 0, 0, 5, 0},
				     k8[8] = {0xff, 1, 2, 3, 4, 5, 6, 7};
		const struct {
			const uint8_t *k;
			size_t n;
		} bad[] = {{k3, 3}, {k5, 5}, {k8, 8},
		    {(const uint8_t *)"short", 5}};
		struct tracker_key hidden;
		char hid[DIGEST_STR_LEN];
		image_id(9999, hid); /* an entity that is nowhere else */
		key_of(ENTITY_IMAGE, hid, &hidden);
		uint8_t *other = xmalloc(len);
		memcpy(other, good, len);
		memcpy(other + REC_KEY, hidden.bytes, TRACKER_KEY_LEN);
		char hex[2 * TRACKER_KEY_LEN + 1];
		key_hex(&hidden, hex);
		snprintf(kname, sizeof(kname), "entry sha256:%s (partition ?)",
		    hex);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			raw_put(dir, "entries", bad[i].k, bad[i].n, other, len);
			snprintf(why, sizeof(why), "malformed key (%zu bytes)",
			    bad[i].n);
			expect_recover_fails(dir, -EINVAL, kname, why,
			    "1 unreadable");
			raw_del(dir, "entries", bad[i].k, bad[i].n);
		}
		free(other);
	}

	/* A record under a key that is not its own (another partition,
	 * another entity): refused, named by the record's key and the
	 * partition of the key it was found under. */
	{
		char fname[160];
		static const int32_t parts[] = {0, 2, 0x7fffffff, -1};
		raw_ent_del(dir, 1, &key);
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			raw_ent_put(dir, parts[i], &key, good, len);
			entry_name(fname, sizeof(fname), &key, parts[i]);
			expect_recover_fails(dir, -EINVAL, fname,
			    "the key is not the record's", "(record: partition "
			    "1)");
			raw_ent_del(dir, parts[i], &key);
		}
		raw_ent_put(dir, 1, &key, good, len);
		struct tracker_key other;
		char oid[DIGEST_STR_LEN];
		image_id(7777, oid);
		key_of(ENTITY_IMAGE, oid, &other);
		raw_ent_put(dir, 1, &other, good, len);
		expect_recover_fails(dir, -EINVAL, name, "not the record's",
		    "1 unreadable");
		raw_ent_del(dir, 1, &other);
		raw_ent_put(dir, 1, &key, good, len);
	}

	/* All repaired: the store holds the tracker again, and recovers
	 * equal to it. */
	assert_store_holds(dir, t);
	struct store_recovery rec;
	store *s;
	tracker *t2 = reopen(dir, &s, T0 + 1, &rec);
	assert_int_equal(rec.entries, total);
	assert_trackers_equal(t, t2);
	store_close(s);
	tracker_free(t2);
	tracker_free(t);
	free(good);
}

/* Builds a version-3 host record by hand: DONE, unreferenced, in the heap
 * (its forget timer), no error, no refs, no sources, with the given key
 * and name. */
static size_t
host_record(uint8_t *p, const struct tracker_key *key, const char *name,
    size_t namelen)
{
	size_t n = 0;
	p[n++] = 3;	     /* version */
	p[n++] = ENTITY_HOST;
	memcpy(p + n, key->bytes, TRACKER_KEY_LEN), n += TRACKER_KEY_LEN;
	assert_int_equal(n, REC_STATE);
	p[n++] = ENTRY_DONE;
	p[n++] = 1;	     /* in heap */
	p[n++] = 0, p[n++] = 0; /* attempts */
	p[n++] = 1, p[n++] = 0, p[n++] = 0, p[n++] = 0; /* generation */
	memset(p + n, 0, 4), n += 4; /* partition */
	for (int f = 0; f < 3; f++) { /* first_seen, last_scan, due */
		uint64_t v = (uint64_t)T0 + (uint64_t)f;
		for (int i = 0; i < 8; i++)
			p[n++] = (uint8_t)(v >> (8 * i));
	}
	assert_int_equal(n, REC_NAMELEN);
	p[n++] = (uint8_t)namelen;
	memcpy(p + n, name, namelen), n += namelen;
	p[n++] = 0, p[n++] = 0; /* error */
	p[n++] = 0;		/* refs table */
	p[n++] = 0, p[n++] = 0; /* sources */
	return n;
}

static void
test_corrupt_names(void **state)
{
	const char *dir = *state;
	uint8_t rec[400];
	char name[256], err[512];
	struct tracker_key key;

	/* The longest valid name loads. */
	memset(name, 'h', TRACKER_MAX_NAME);
	name[TRACKER_MAX_NAME] = '\0';
	key_of(ENTITY_HOST, name, &key);
	size_t n = host_record(rec, &key, name, TRACKER_MAX_NAME);
	tracker *t = new_tracker();
	assert_int_equal(tracker_record_load(t, rec, n, T0, NULL, err,
	    sizeof(err)), 0);
	check_tracker(t);
	assert_int_equal(tracker_count(t), 1);
	assert_int_equal(tracker_find(t, &key), 0);
	tracker_free(t);

	/* A name byte of 254 or 255 (longer than any host name) is corrupt
	 * and must be refused without touching memory past the name. */
	for (size_t len = TRACKER_MAX_NAME + 1; len <= 255; len++) {
		memset(name, 'h', len);
		name[len] = '\0';
		n = host_record(rec, &key, name, len);
		t = new_tracker();
		int rc = tracker_record_load(t, rec, n, T0, NULL, err,
		    sizeof(err));
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, "corrupt record"));
		assert_non_null(strstr(err, "out of range")); /* the length */
		assert_int_equal(tracker_record_validate(rec, n, NULL, NULL,
		    err, sizeof(err)), -EINVAL);
		assert_int_equal(tracker_count(t), 0);
		check_tracker(t);
		tracker_free(t);
	}

	/* Source names are checked like those of events: 1-253 bytes, no
	 * control characters (a NUL would also cut the interned copy short:
	 * tracker_record_encode then read past it). */
	{
		char img[DIGEST_STR_LEN];
		struct tracker_key ik;
		image_id(3, img);
		key_of(ENTITY_IMAGE, img, &ik);
		struct {
			const char *name;
			size_t len;
			int rc;
		} cases[] = {
			{"node-a", 6, 0},
			{"node\0a", 6, -EINVAL},
			{"node\na", 6, -EINVAL},
			{"node\x7f", 5, -EINVAL},
			{name, TRACKER_MAX_NAME, 0},
			{name, TRACKER_MAX_NAME + 1, -EINVAL},
			{name, 255, -EINVAL},
		};
		memset(name, 's', 255);
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			n = host_record(rec, &ik, "", 0);
			rec[REC_KIND] = ENTITY_IMAGE;
			/* DONE and referenced: not in the heap, no due time */
			rec[REC_FLAGS] = 0;
			memset(rec + REC_DUE, 0, 8);
			rec[n - 2] = 1; /* one source */
			rec[n++] = (uint8_t)cases[c].len;
			memcpy(rec + n, cases[c].name, cases[c].len);
			n += cases[c].len;
			rec[n++] = 0; /* observed_at: first_seen */
			rec[n++] = 1; /* holding */
			rec[n++] = 0, rec[n++] = 0;	/* no refs */
			t = new_tracker();
			int rc = tracker_record_load(t, rec, n, T0, NULL,
			    err, sizeof(err));
			if (rc != cases[c].rc)
				fail_msg("source case %zu: %d (%s)", c, rc,
				    rc ? err : "loaded");
			assert_int_equal(tracker_record_validate(rec, n, NULL,
			    NULL, err, sizeof(err)), cases[c].rc);
			check_tracker(t);
			if (rc == 0) {
				assert_int_equal(tracker_find(t, &ik), 0);
				uint8_t *buf = NULL;
				size_t cap = 0;
				size_t l = tracker_record_encode(t, 0, &buf,
				    &cap);
				assert_int_equal(l, n);
				assert_memory_equal(buf, rec, n);
				free(buf);
			}
			tracker_free(t);
		}
	}

	/* ... also through the store. */
	memset(name, 'h', 255);
	n = host_record(rec, &key, name, 255);
	store *s = open_store(dir, NULL);
	store_close(s);
	raw_ent_put(dir, 0, &key, rec, n);
	char want[160];
	entry_name(want, sizeof(want), &key, 0);
	assert_non_null(strstr(want, "host-key:"));
	expect_recover_fails(dir, -EINVAL, want, "corrupt record",
	    "out of range");
}

/* ---- 9. a mutation fuzz of tracker_record_load ---- */

static void
test_load_fuzz(void **state)
{
	const char *dir = *state;
	struct rt_ids *ids = xcalloc(1, sizeof(*ids));
	struct rt_stats st;
	struct tracker_job jobs[64];
	size_t njobs = 0;
	int64_t now = T0;

	/* A pool of valid records from a realistic tracker. */
	memset(&st, 0, sizeof(st));
	rng_seed(0xf022);
	rt_ids_init(ids);
	store *s = open_store(dir, NULL);
	tracker *src = new_tracker();
	rt_drive(src, s, ids, &now, jobs, &njobs, &st);
	store_close(s);

	struct handles hs = all_handles(src);
	size_t npool = hs.n;
	uint8_t **pool = xcalloc(npool, sizeof(*pool));
	size_t *plen = xcalloc(npool, sizeof(*plen));
	for (size_t i = 0; i < npool; i++) {
		size_t cap = 0;
		struct tracker_info info;
		plen[i] = tracker_record_encode(src, hs.h[i], &pool[i], &cap);
		assert_int_equal(tracker_info_get(src, hs.h[i], &info), 0);
		assert_record_key(pool[i], plen[i], &info.key);
	}
	free(hs.h);

	size_t outcomes[3] = {0, 0, 0}; /* loaded, -EINVAL, -EPROTO */
	size_t replaced = 0;
	uint8_t *m = xmalloc(8192);
	for (int iter = 0; iter < 20000; iter++) {
		size_t pi = rng_below(npool);
		size_t n = plen[pi];
		memcpy(m, pool[pi], n);
		int nmut = 1 + (int)rng_below(3);
		for (int k = 0; k < nmut; k++) {
			switch (rng_below(6)) {
			case 0: /* flip a bit */
				m[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
				break;
			case 1: /* any byte */
				m[rng_below(n)] = (uint8_t)rng_next();
				break;
			case 2: /* an extreme byte */
				m[rng_below(n)] = rng_below(2) ? 0xff : 0x00;
				break;
			case 3: /* truncate */
				n = rng_below(n + 1);
				break;
			case 4: /* append */
				for (size_t a = rng_below(16); a > 0 && n < 8192; a--)
					m[n++] = (uint8_t)rng_next();
				break;
			default: /* a known version, so the parser runs */
				if (n > 0)
					m[0] = rng_below(4) ? 2 : 1;
				break;
			}
			if (n == 0)
				break;
		}
		/* Sometimes the key of one of the neighbours loaded first:
		 * a valid mutant then replaces it. */
		if (rng_below(8) == 0 && n >= REC_KEY + TRACKER_KEY_LEN)
			memcpy(m + REC_KEY, pool[(pi + 1) % npool] + REC_KEY,
			    TRACKER_KEY_LEN);
		/* Load three valid neighbours and the mutant. */
		tracker *t = new_tracker();
		char err[512] = "", verr[512] = "";
		size_t before = 0;
		for (size_t k = 0; k < 3; k++) {
			size_t q = (pi + 1 + k) % npool;
			assert_int_equal(tracker_record_load(t, pool[q],
			    plen[q], now, NULL, err, sizeof(err)), 0);
			before++;
		}
		tracker_clear_dirty(t);
		struct tracker_key vkey;
		int32_t vpart = 0;
		int vrc = tracker_record_validate(m, n, &vkey, &vpart, verr,
		    sizeof(verr));
		bool known = vrc == 0 && tracker_find(t, &vkey) != TRACKER_NONE;
		err[0] = '\0';
		bool requeued = true;
		int rc = tracker_record_load(t, m, n, now, &requeued, err,
		    sizeof(err));
		/* validation is exactly as strict as loading */
		assert_int_equal(rc, vrc);
		if (rc != 0)
			assert_string_equal(err, verr);
		if (rc == 0) {
			outcomes[0]++;
			replaced += known;
			assert_int_equal(tracker_count(t), before + !known);
			/* SCANNING comes back QUEUED, and says so */
			assert_int_equal(requeued,
			    m[REC_STATE] == ENTRY_SCANNING);
		} else {
			if (rc != -EINVAL && rc != -EPROTO)
				fail_msg("tracker_record_load returned %d", rc);
			assert_false(requeued);
			outcomes[rc == -EINVAL ? 1 : 2]++;
			assert_true(err[0] != '\0');
			assert_int_equal(tracker_count(t), before);
			assert_int_equal(tracker_dirty_count(t), 0);
		}
		check_tracker(t);
		/* what loaded is there under the key it holds, and can be
		 * encoded and loaded again */
		if (rc == 0) {
			struct tracker_info info;
			uint32_t h = tracker_find(t, &vkey);
			assert_int_not_equal(h, TRACKER_NONE);
			assert_int_equal(tracker_info_get(t, h, &info), 0);
			assert_record_key(m, n, &info.key);
			assert_int_equal(info.partition, vpart);
			uint8_t *buf = NULL;
			size_t cap = 0;
			size_t l = tracker_record_encode(t, h, &buf, &cap);
			assert_record_key(buf, l, &info.key);
			tracker *t2 = new_tracker();
			assert_int_equal(tracker_record_load(t2, buf, l,
			    now, NULL, err, sizeof(err)), 0);
			assert_int_not_equal(tracker_find(t2, &info.key),
			    TRACKER_NONE);
			free(buf);
			tracker_free(t2);
		}
		tracker_free(t);
	}
	print_message("fuzz: %zu loaded (%zu replacing an entry), %zu -EINVAL, "
	    "%zu -EPROTO\n", outcomes[0], replaced, outcomes[1],
	    outcomes[2]);
	assert_true(outcomes[1] > 1000);
	assert_true(outcomes[0] > 100);
	free(m);
	for (size_t i = 0; i < npool; i++)
		free(pool[i]);
	free(pool);
	free(plen);
	tracker_free(src);
	free(ids);
}

/* ---- 10. partitions ---- */

/* n images image_id(from..) at partition p, SET at now. */
static void
add_at(tracker *t, unsigned from, unsigned n, int32_t p, int64_t now)
{
	for (unsigned i = from; i < from + n; i++) {
		char id[DIGEST_STR_LEN];
		const char *tags[1] = {"app:1"};
		image_id(i, id);
		ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-a", tags, 1, NULL,
		    0, now, p, now, NULL);
	}
}

static size_t
load_part(store *s, int32_t p, tracker *t, int64_t now)
{
	struct store_recovery rec;
	char err[512];
	int rc = store_load_partition(s, p, t, now, &rec, err, sizeof(err));
	if (rc != 0)
		fail_msg("store_load_partition %d: %d %s", p, rc, err);
	check_tracker(t);
	return rec.entries;
}

/*
 * Entries grouped by partition: one partition loads alone, all load
 * together, a partition released from memory loads again equal, one
 * dropped is gone (with its meta prefix, and nothing else); an entity
 * moving to another partition is stored under the new key only.
 */
static void
test_partitions(void **state)
{
	const char *dir = *state;
	char err[512];
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	add_at(t, 0, 10, 0, T0);
	add_at(t, 100, 7, 3, T0);
	add_at(t, 200, 5, 12, T0);
	struct tracker_job job;
	assert_true(tracker_pop_due(t, T0, &job)); /* one SCANNING */
	uint8_t one = 1;
	struct store_meta m[3] = {{"changelog/3/offset", &one, 1},
	    {"changelog/3/x", &one, 1}, {"changelog/30/offset", &one, 1}};
	struct store_batch b = {.meta = m, .nmeta = 3};
	commit(s, t, &b);
	assert_int_equal(tracker_count_partition(t, 0), 10);
	assert_int_equal(tracker_count_partition(t, 3), 7);
	assert_int_equal(tracker_count_partition(t, 12), 5);
	assert_int_equal(tracker_count_partition(t, 4), 0);

	int32_t *ps;
	size_t np;
	assert_int_equal(store_partitions(s, &ps, &np), 0);
	assert_int_equal(np, 3);
	assert_int_equal(ps[0], 0);
	assert_int_equal(ps[1], 3);
	assert_int_equal(ps[2], 12);
	free(ps);

	/* one partition at a time, into one tracker */
	tracker *t2 = new_tracker();
	assert_int_equal(load_part(s, 3, t2, T0), 7);
	assert_int_equal(tracker_count(t2), 7);
	assert_int_equal(tracker_count_partition(t2, 3), 7);
	assert_int_equal(load_part(s, 4, t2, T0), 0);
	assert_int_equal(load_part(s, 12, t2, T0), 5);
	assert_int_equal(load_part(s, 0, t2, T0), 10);
	assert_int_equal(tracker_dirty_count(t2), 0);
	/* loading a partition again replaces its entries */
	assert_int_equal(load_part(s, 3, t2, T0), 7);
	assert_int_equal(tracker_count(t2), 22);
	struct store_recovery rec;
	assert_int_equal(store_load_partition(s, -2, t2, T0, &rec, err,
	    sizeof(err)), -EINVAL);

	/* released from memory (nothing dirty), loaded back equal */
	tracker *all = new_tracker();
	assert_int_equal(load_part(s, STORE_ALL_PARTITIONS, all, T0), 22);
	assert_int_equal(tracker_release_partition(t2, 3), 7);
	check_tracker(t2);
	assert_int_equal(tracker_count(t2), 15);
	assert_int_equal(tracker_count_partition(t2, 3), 0);
	assert_int_equal(tracker_dirty_count(t2), 0);
	assert_int_equal(tracker_release_partition(t2, 3), 0);
	/* new entities reuse the released handles */
	add_at(t2, 900, 2, 5, T0);
	check_tracker(t2);
	assert_int_equal(tracker_release_partition(t2, 5), 2);
	assert_int_equal(load_part(s, 3, t2, T0), 7);
	assert_trackers_equal(all, t2);
	tracker_free(all);

	/* dropped: entries and the meta prefix, nothing else */
	assert_int_equal(store_drop_partition(s, 3, "changelog/3/", err,
	    sizeof(err)), 0);
	uint8_t buf[8];
	assert_int_equal(meta_get(s, "changelog/3/offset", buf, 8), -ENOENT);
	assert_int_equal(meta_get(s, "changelog/3/x", buf, 8), -ENOENT);
	assert_int_equal(meta_get(s, "changelog/30/offset", buf, 8), 1);
	assert_int_equal(meta_get(s, "format", buf, 8), 4);
	assert_int_equal(store_drop_partition(s, 3, "format", err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(store_drop_partition(s, -1, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(store_drop_partition(s, 77, NULL, err, sizeof(err)),
	    0);
	tracker *t3 = new_tracker();
	assert_int_equal(load_part(s, 3, t3, T0), 0);
	assert_int_equal(load_part(s, STORE_ALL_PARTITIONS, t3, T0), 15);
	assert_int_equal(store_partitions(s, &ps, &np), 0);
	assert_int_equal(np, 2);
	assert_int_equal(ps[0], 0);
	assert_int_equal(ps[1], 12);
	free(ps);
	tracker_free(t3);

	/* An entity moves: image 0 seen on partition 12 now. Stored under
	 * (12, key) only; a move back and forth within one batch leaves
	 * it where it ended. */
	char id[DIGEST_STR_LEN];
	struct tracker_key k0, k1;
	image_id(0, id);
	key_of(ENTITY_IMAGE, id, &k0);
	const char *tags[1] = {"app:1"};
	ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-a", tags, 1, NULL, 0,
	    T0 + 1, 12, T0 + 1, NULL);
	image_id(1, id);
	key_of(ENTITY_IMAGE, id, &k1);
	ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-a", tags, 1, NULL, 0,
	    T0 + 1, 12, T0 + 1, NULL);
	ev_apply(t, EVENT_UNSET, ENTITY_IMAGE, id, "node-b", NULL, 0, NULL, 0,
	    T0 + 1, 0, T0 + 1, NULL); /* unknown source: no move */
	ev_apply(t, EVENT_SET, ENTITY_IMAGE, id, "node-a", tags, 1, NULL, 0,
	    T0 + 2, 0, T0 + 2, NULL);
	commit(s, t, NULL);
	store_close(s);
	tracker_free(t2);
	t2 = NULL;
	size_t len;
	uint8_t *r = raw_ent_get(dir, 0, &k0, &len);
	assert_null(r);
	r = raw_ent_get(dir, 12, &k0, &len);
	assert_non_null(r);
	free(r);
	r = raw_ent_get(dir, 0, &k1, &len);
	assert_non_null(r);
	free(r);
	assert_null(raw_ent_get(dir, 12, &k1, &len));
	/* the dropped partition's entries are still in t: the store holds
	 * t but for them */
	assert_int_equal(tracker_release_partition(t, 3), 7);
	assert_store_holds(dir, t);
	tracker_free(t);
}

/*
 * A format-1 store (entries keyed by slot, meta "slots", version-1
 * records without a generation), built here with the old layout: a
 * read-only open reads it as it is (one partition, or all); a writing open
 * migrates it in one transaction (the records re-keyed by partition and
 * key, byte for byte, "slots" gone, format 2), and it then loads equal.
 */
static void
test_migrate_v1(void **state)
{
	const char *dir = *state;
	char err[512];
	/* the entities, from a live tracker */
	store *s = open_store(dir, NULL);
	tracker *t = new_tracker();
	add_at(t, 0, 6, 0, T0);
	add_at(t, 50, 4, 2, T0);
	char hn[] = "host-1.example.com";
	set1(t, ENTITY_HOST, hn, "node-a", NULL, T0);
	struct tracker_job job;
	struct tracker_outcome o;
	struct tracker_result ok = {true, ERROR_RETRYABLE, NULL, 0};
	assert_true(tracker_pop_due(t, T0, &job));
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &ok, T0,
	    &o), 0);
	assert_true(tracker_pop_due(t, T0, &job)); /* SCANNING */
	store_close(s);

	/* rewrite the store in format 1 by hand */
	MDB_env *env = raw_env(dir);
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "entries", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	struct handles hs = all_handles(t);
	uint8_t *buf = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < hs.n; i++) {
		size_t v3len = tracker_record_encode(t, hs.h[i], &buf, &cap);
		size_t len;
		uint8_t *v1 = record_v2(buf, v3len, &len);
		/* version 1: no generation (4 bytes at REC_GEN) */
		memmove(v1 + REC_GEN, v1 + REC_GEN + 4, len - REC_GEN - 4);
		v1[0] = 1;
		uint8_t kb[4];
		slot_key(hs.h[i] + 5, kb);
		raw_put(dir, "entries", kb, 4, v1, len - 4);
		free(v1);
	}
	uint32_t slots = hs.h[hs.n - 1] + 6;
	raw_put(dir, "meta", "slots", 5, &slots, 4);
	uint8_t f1[4] = {1, 0, 0, 0};
	raw_put(dir, "meta", "format", 6, f1, 4);

	/* read-only: read as it is, filtered by the records' partition */
	struct store_options ro = {.read_only = true};
	s = open_store(dir, &ro);
	struct store_migration mig;
	assert_false(store_migration(s, &mig));
	tracker *t2 = new_tracker();
	assert_int_equal(load_part(s, 2, t2, T0), 4);
	assert_int_equal(load_part(s, STORE_ALL_PARTITIONS, t2, T0),
	    hs.n);
	int32_t *ps;
	size_t np;
	assert_int_equal(store_partitions(s, &ps, &np), 0);
	assert_int_equal(np, 2);
	free(ps);
	tracker_free(t2);
	store_close(s);
	uint8_t fb[4];
	size_t n = 0;
	uint8_t *fv = raw_get(dir, "meta", "format", 6, &n);
	assert_int_equal(fv[0], 1);
	free(fv);

	/* writing: migrated */
	s = open_store(dir, NULL);
	assert_true(store_migration(s, &mig));
	assert_int_equal(mig.from_format, 1);
	assert_int_equal(mig.entries, hs.n);
	assert_int_equal(meta_get(s, "format", fb, 4), 4);
	assert_int_equal(fb[0], STORE_FORMAT);
	assert_int_equal(meta_get(s, "slots", fb, 4), -ENOENT);
	store_close(s);
	assert_int_equal(raw_count(dir, "entries"), hs.n);
	for (size_t i = 0; i < hs.n; i++) {
		/* moved as they were: still version 1 */
		size_t v3len = tracker_record_encode(t, hs.h[i], &buf, &cap);
		size_t len;
		uint8_t *v1 = record_v2(buf, v3len, &len);
		memmove(v1 + REC_GEN, v1 + REC_GEN + 4, len - REC_GEN - 4);
		v1[0] = 1;
		uint8_t *raw = raw_h_get(dir, t, hs.h[i], &n);
		assert_non_null(raw);
		assert_int_equal(n, len - 4);
		assert_memory_equal(raw, v1, n);
		free(raw);
		free(v1);
	}
	/* and loads equal (generation 1; the SCANNING one requeued) */
	struct store_recovery rec;
	s = open_store(dir, NULL);
	assert_false(store_migration(s, &mig)); /* once */
	store_close(s);
	t2 = reopen(dir, &s, T0 + 5, &rec);
	assert_int_equal(rec.entries, hs.n);
	assert_int_equal(rec.requeued, 1);
	assert_int_equal(tracker_requeue(t, job.handle, T0 + 5), 0);
	assert_trackers_equal(t, t2);
	/* version-1 records load as generation 1; a commit rewrites what
	 * changed in version 3 */
	struct tracker_info info;
	uint32_t h = tracker_find(t2, &job.key);
	assert_int_equal(tracker_info_get(t2, h, &info), 0);
	assert_int_equal(info.generation, 1);
	const char *tags[1] = {"z:1"};
	char jid[300];
	tracker_id_string(t2, h, jid, sizeof(jid));
	ev_apply(t2, EVENT_SET, (enum entity_kind)info.key.kind, jid,
	    "node-z", tags, 1, NULL, 0, T0, info.partition, T0 + 5, NULL);
	commit(s, t2, NULL);
	store_close(s);
	uint8_t *raw = raw_ent_get(dir, info.partition, &info.key, &n);
	assert_non_null(raw);
	assert_int_equal(raw[0], TRACKER_RECORD_VERSION);
	free(raw);

	/* a format-1 record too short to say where it goes: the migration
	 * fails, naming it, and changes nothing */
	uint8_t bad[10] = {1, 0};
	uint8_t kb[4];
	slot_key(1000, kb);
	raw_put(dir, "entries", kb, 4, bad, sizeof(bad));
	raw_put(dir, "meta", "format", 6, f1, 4);
	size_t before = raw_count(dir, "entries");
	store *s2 = NULL;
	int rc = store_open(dir, NULL, &s2, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "slot 1000"));
	assert_non_null(strstr(err, "migrat"));
	assert_int_equal(raw_count(dir, "entries"), before);
	free(hs.h);
	free(buf);
	tracker_free(t);
	tracker_free(t2);
}

/* The service's store syncs on every commit: opened with the options
 * `sbomd run` uses (engine_store_options of the default configuration),
 * the environment has none of MDB_NOSYNC / MDB_NOMETASYNC / MDB_MAPASYNC.
 * The benchmarks' no_sync is seen as such (the check can fail). */
static void
test_service_store_syncs(void **state)
{
	const char *dir = *state;
	struct sbomd_config cfg;
	char err[512];
	char *envp[] = { NULL };
	assert_int_equal(config_load(&cfg, NULL, envp, err, sizeof(err)), 0);
	struct store_options so;
	engine_store_options(&cfg, &so);
	store *s = NULL;
	assert_int_equal(store_open(dir, &so, &s, err, sizeof(err)), 0);
	assert_true(store_syncs_on_commit(s));
	store_close(s);
	so.no_sync = true;
	assert_int_equal(store_open(dir, &so, &s, err, sizeof(err)), 0);
	assert_false(store_syncs_on_commit(s));
	store_close(s);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, dir_setup,
		    dir_teardown),
		cmocka_unit_test(test_records_v2_load),
		cmocka_unit_test(test_corrupt_refs_table),
		cmocka_unit_test_setup_teardown(test_large_record, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_scanning_requeued,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_retry_schedule_kept,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_outbox, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_outbox_entry_ref,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_meta, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_many_sources, dir_setup,
		    dir_teardown),
		cmocka_unit_test(test_records_always_load),
		cmocka_unit_test_setup_teardown(test_map_limit, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_newer_format, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_records,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_names,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_partitions, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_load_fuzz, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_service_store_syncs,
		    dir_setup, dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
