/*
 * store: LMDB environment with three named databases (entries, outbox,
 * meta). One process writes (the engine thread); other processes such as
 * `sbomd state` may read at the same time (LMDB readers never block the
 * writer).
 *
 * Group commit: store_commit writes everything a batch changed in one
 * write transaction and commits it durably (fdatasync, unless no_sync).
 * When the map is full, the transaction is aborted, the map doubled and
 * the whole batch written again; the caller clears the tracker's dirty
 * set only after a successful commit, so a failed commit loses nothing.
 *
 * Entries are keyed by (partition, kind, key), partition big-endian first:
 * a partition is one key range (loaded with one cursor from its prefix,
 * dropped the same way), and an entity's key does not depend on memory
 * (handles are not stored). Format 1 keyed records by slot (the handle);
 * store_open migrates such a store in one transaction.
 *
 * Sizes: a record is ~100 bytes for an image with one source; a million
 * entries take ~200 MiB of map. Loading reads every record of the range
 * once (O(n log n) with the heap pushes).
 *
 * Concurrency: a store is used by one thread at a time.
 *
 * Over 1,000 lines: the format-1 migration sits with the key layout it
 * converts; it can go once no format-1 store is left.
 */
#include "store/store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <lmdb.h>

#include "core/tracker_record.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/fsutil.h"
#include "util/xmalloc.h"

#define DEFAULT_MAP (64ULL << 20)
#define DEFAULT_MAX_MAP (64ULL << 30)

struct store {
	MDB_env *env;
	MDB_dbi entries, outbox, meta;
	size_t map_size, max_map_size;
	uint64_t next_seq;
	unsigned format; /* on disk: 1 only when opened read-only */
	bool read_only;
	struct store_migration migration;
	char *dir;
};

/* An LMDB error (rc: LMDB's code or an errno) as a negative errno, with
 * err naming the store and the step. */
static int
mdb_fail(int rc, const char *what, const store *s, char *err, size_t errlen)
{
	errbuf_set(err, errlen, "state store %s: %s: %s", s ? s->dir : "?",
	    what, mdb_strerror(rc));
	return rc > 0 ? -rc : -EIO;
}

static void
seq_key(uint64_t seq, uint8_t out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t
seq_from_key(const MDB_val *k)
{
	uint64_t v = 0;
	const uint8_t *p = k->mv_data;
	for (size_t i = 0; i < 8 && i < k->mv_size; i++)
		v = v << 8 | p[i];
	return v;
}

#define ENTRY_KEY_LEN (5 + TRACKER_KEY_LEN)

static void
be32_put(uint32_t v, uint8_t out[4])
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

static uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* An entry's LMDB key: partition big-endian (so that a partition is one
 * key range, in partition order), kind, key bytes. */
static void
entry_key(int32_t partition, const struct tracker_key *key,
    uint8_t out[ENTRY_KEY_LEN])
{
	be32_put((uint32_t)partition, out);
	out[4] = key->kind;
	memcpy(out + 5, key->bytes, TRACKER_KEY_LEN);
}

/* "entry sha256:<hex> (partition P): reason", naming what can be named
 * (a format-1 key names its slot). */
static void
describe_record(const store *s, const MDB_val *k, const MDB_val *v,
    const char *reason, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	struct tracker_key key;
	char id[80] = "?";
	char where[48] = "partition ?";

	if (k->mv_size == ENTRY_KEY_LEN)
		snprintf(where, sizeof(where), "partition %d",
		    (int32_t)be32_get(k->mv_data));
	else if (k->mv_size == 4 && s->format == 1)
		snprintf(where, sizeof(where), "slot %u",
		    be32_get(k->mv_data));
	if (tracker_record_key(v->mv_data, v->mv_size, &key) == 0) {
		size_t n = (size_t)snprintf(id, sizeof(id), "%s:",
		    key.kind == ENTITY_HOST ? "host-key" : "sha256");
		for (size_t i = 0; i < TRACKER_KEY_LEN; i++) {
			id[n++] = hex[key.bytes[i] >> 4];
			id[n++] = hex[key.bytes[i] & 15];
		}
		id[n] = '\0';
	}
	snprintf(out, outlen, "entry %s (%s): %s", id, where, reason);
}

/*
 * The partition inside a record (any version), for the migration and for
 * format-1 keys: 0, or -EINVAL when the record is too short or not one.
 */
static int
record_partition(const uint8_t *rec, size_t len, int32_t *partition)
{
	size_t off;
	if (len < 1 || (rec[0] != 1 && rec[0] != 2))
		return -EINVAL;
	off = rec[0] == 1 ? 38 : 42; /* after the attempts (and generation) */
	if (len < off + 4)
		return -EINVAL;
	*partition = (int32_t)((uint32_t)rec[off] | (uint32_t)rec[off + 1] << 8 |
	    (uint32_t)rec[off + 2] << 16 | (uint32_t)rec[off + 3] << 24);
	return 0;
}

static int
put_format(store *s, MDB_txn *txn)
{
	uint8_t f[4] = {STORE_FORMAT, 0, 0, 0};
	MDB_val k = {6, "format"}, v = {4, f};
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/*
 * Format 1 -> 2 inside txn: every slot-keyed record put again under its
 * (partition, key), meta "slots" gone, the format raised. 0, LMDB's code,
 * or -EINVAL with err naming a record that does not say where it goes.
 */
static int
migrate_v1(store *s, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint32_t *slots = NULL;
	size_t n = 0, cap = 0;
	uint8_t *copy = NULL;
	size_t copycap = 0;
	int rc;

	/* The old keys first: the new ones go into the same database. */
	if ((rc = mdb_cursor_open(txn, s->entries, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == ENTRY_KEY_LEN)
			continue;
		if (k.mv_size != 4) {
			errbuf_set(err, errlen, "state store %s: migrating "
			    "from format 1: malformed slot key (%zu bytes)",
			    s->dir, k.mv_size);
			rc = -EINVAL;
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			slots = xreallocarray(slots, cap, sizeof(*slots));
		}
		slots[n++] = be32_get(k.mv_data);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != MDB_NOTFOUND)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint8_t ok[4], nk[ENTRY_KEY_LEN];
		struct tracker_key key;
		int32_t partition;
		be32_put(slots[i], ok);
		MDB_val okv = {4, ok};
		if ((rc = mdb_get(txn, s->entries, &okv, &v)) != 0)
			goto out;
		if (tracker_record_key(v.mv_data, v.mv_size, &key) != 0 ||
		    record_partition(v.mv_data, v.mv_size, &partition) != 0) {
			char what[512];
			describe_record(s, &okv, &v, "too short to migrate",
			    what, sizeof(what));
			errbuf_set(err, errlen, "state store %s: migrating "
			    "from format 1: %s", s->dir, what);
			rc = -EINVAL;
			goto out;
		}
		/* LMDB's pointer dies with the next write: copy it. */
		if (v.mv_size > copycap) {
			copycap = v.mv_size;
			copy = xrealloc(copy, copycap);
		}
		memcpy(copy, v.mv_data, v.mv_size);
		entry_key(partition, &key, nk);
		MDB_val nkv = {sizeof(nk), nk}, nv = {v.mv_size, copy};
		if ((rc = mdb_put(txn, s->entries, &nkv, &nv, 0)) != 0 ||
		    (rc = mdb_del(txn, s->entries, &okv, NULL)) != 0)
			goto out;
	}
	MDB_val sk = {5, "slots"};
	rc = mdb_del(txn, s->meta, &sk, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0)
		rc = put_format(s, txn);
	s->migration.entries = n;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	free(slots);
	free(copy);
	return rc;
}

/* Migrates a format-1 store in one write transaction, growing the map
 * when it is full. */
static int
migrate(store *s, char *err, size_t errlen)
{
	int64_t start = clock_mono_us();
	for (;;) {
		MDB_txn *txn = NULL;
		int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if (rc != 0)
			return mdb_fail(rc, "migrating", s, err, errlen);
		rc = migrate_v1(s, txn, err, errlen);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		if (rc == MDB_MAP_FULL && s->map_size >= s->max_map_size) {
			errbuf_set(err, errlen, "state store %s is full while "
			    "migrating from format 1: the map reached its limit "
			    "of %zu MiB (raise state.max_map_size)", s->dir,
			    s->max_map_size >> 20);
			return -ENOSPC;
		}
		if (rc != MDB_MAP_FULL)
			return mdb_fail(rc, "migrating from format 1", s, err,
			    errlen);
		size_t grown = s->map_size * 2 < s->max_map_size ?
		    s->map_size * 2 : s->max_map_size;
		if ((rc = mdb_env_set_mapsize(s->env, grown)) != 0)
			return mdb_fail(rc, "growing the map", s, err, errlen);
		s->map_size = grown;
	}
	s->migration.from_format = 1;
	s->migration.seconds = (double)(clock_mono_us() - start) / 1e6;
	s->format = STORE_FORMAT;
	return 0;
}

static int
check_format(store *s, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0,
	    &txn);
	if (rc != 0)
		return mdb_fail(rc, "begin", s, err, errlen);
	MDB_val k = {6, "format"}, v;
	rc = mdb_get(txn, s->meta, &k, &v);
	s->format = STORE_FORMAT;
	if (rc == MDB_NOTFOUND && s->read_only) {
		mdb_txn_abort(txn);
		return 0; /* a fresh store: nothing committed yet */
	}
	if (rc == MDB_NOTFOUND) {
		rc = put_format(s, txn);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		txn = NULL;
		return rc ? mdb_fail(rc, "writing the format", s, err, errlen)
			  : 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return mdb_fail(rc, "reading the format", s, err, errlen);
	}
	uint32_t fmt = 0;
	if (v.mv_size == 4) {
		const uint8_t *p = v.mv_data;
		fmt = (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 |
		    (uint32_t)p[3] << 24);
	}
	mdb_txn_abort(txn);
	if (v.mv_size != 4) {
		errbuf_set(err, errlen, "state store %s: meta \"format\" is "
		    "corrupt (%zu bytes)", s->dir, v.mv_size);
		return -EINVAL;
	}
	if (fmt > STORE_FORMAT) {
		errbuf_set(err, errlen,
		    "state store %s was written by a newer sbomd (store format "
		    "%u; this sbomd reads format %d or older)", s->dir, fmt,
		    STORE_FORMAT);
		return -EPROTO;
	}
	s->format = fmt < 2 ? 1 : fmt;
	if (s->format < STORE_FORMAT && !s->read_only)
		return migrate(s, err, errlen);
	return 0;
}

/* The state directory: created when writing, required when reading. */
static int
open_dir(const char *dir, bool read_only, char *err, size_t errlen)
{
	struct stat dst;
	int rc;

	if (read_only) {
		if (stat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) {
			errbuf_set(err, errlen, "state.dir %s: %s", dir,
			    strerror(errno ? errno : ENOTDIR));
			return -ENOENT;
		}
		return 0;
	}
	if ((rc = fs_mkdir_p(dir)) != 0)
		errbuf_set(err, errlen, "state.dir %s: cannot create: %s", dir,
		    strerror(-rc));
	return rc;
}

bool
store_syncs_on_commit(const store *s)
{
	unsigned flags = 0;
	if (mdb_env_get_flags(s->env, &flags) != 0)
		return false;
	return (flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC)) == 0;
}

/* The environment, with the map at least s->map_size. */
static int
open_env(store *s, const struct store_options *opt, char *err, size_t errlen)
{
	int rc;

	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0)
		return mdb_fail(rc, "setting up", s, err, errlen);
	unsigned flags = MDB_NOTLS | (opt && opt->no_sync ? MDB_NOSYNC : 0) |
	    (s->read_only ? MDB_RDONLY : 0);
	if ((rc = mdb_env_open(s->env, s->dir, flags, 0600)) != 0)
		return mdb_fail(rc, "opening", s, err, errlen);
	/* An existing, larger map wins over the configured initial size. */
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	s->map_size = info.me_mapsize;
	return 0;
}

/* The three databases, whether entries are stored, and where the outbox
 * sequence goes on. */
static int
open_dbs(store *s, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	unsigned dbf = s->read_only ? 0 : MDB_CREATE;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0,
		 &txn)) != 0)
		return mdb_fail(rc, "opening databases", s, err, errlen);
	if ((rc = mdb_dbi_open(txn, "entries", dbf, &s->entries)) != 0 ||
	    (rc = mdb_dbi_open(txn, "outbox", dbf, &s->outbox)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", dbf, &s->meta)) != 0) {
		mdb_txn_abort(txn);
		if (rc != MDB_NOTFOUND)
			return mdb_fail(rc, "opening databases", s, err,
			    errlen);
		errbuf_set(err, errlen, "state.dir %s: not an sbomd state "
		    "directory (no entries/outbox/meta)", s->dir);
		return -ENOENT;
	}
	/* Outbox sequences continue after the newest item even when the
	 * caller commits without store_recover: never overwrite one. */
	MDB_cursor *cur;
	MDB_val ok, ov;
	if (mdb_cursor_open(txn, s->outbox, &cur) == 0) {
		if (mdb_cursor_get(cur, &ok, &ov, MDB_LAST) == 0)
			s->next_seq = seq_from_key(&ok) + 1;
		mdb_cursor_close(cur);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return mdb_fail(rc, "opening databases", s, err, errlen);
	return 0;
}

int
store_open(const char *dir, const struct store_options *opt, store **out,
    char *err, size_t errlen)
{
	store *s = xcalloc(1, sizeof(*s));
	int rc;

	s->dir = xstrdup(dir);
	s->map_size = opt && opt->initial_map_size ? opt->initial_map_size :
	    DEFAULT_MAP;
	s->max_map_size = opt && opt->max_map_size ? opt->max_map_size :
	    DEFAULT_MAX_MAP;
	if (s->map_size > s->max_map_size)
		s->map_size = s->max_map_size;
	s->read_only = opt && opt->read_only;
	if ((rc = open_dir(dir, s->read_only, err, errlen)) != 0 ||
	    (rc = open_env(s, opt, err, errlen)) != 0 ||
	    (rc = open_dbs(s, err, errlen)) != 0 ||
	    (rc = check_format(s, err, errlen)) != 0) {
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void
store_close(store *s)
{
	if (s == NULL)
		return;
	if (s->env != NULL)
		mdb_env_close(s->env);
	free(s->dir);
	free(s);
}

bool
store_migration(const store *s, struct store_migration *m)
{
	*m = s->migration;
	return s->migration.from_format != 0;
}

/* The partition a key (format 2) or its record (format 1) belongs to:
 * 0, or -EINVAL. */
static int
key_partition(const store *s, const MDB_val *k, const MDB_val *v,
    int32_t *partition)
{
	if (s->format == 1 && k->mv_size == 4)
		return record_partition(v->mv_data, v->mv_size, partition);
	if (k->mv_size != ENTRY_KEY_LEN)
		return -EINVAL;
	*partition = (int32_t)be32_get(k->mv_data);
	return 0;
}

/* One record at key k: 0 (loaded), or why not in reason: -EPROTO,
 * -EINVAL. */
static int
load_one(const store *s, const MDB_val *k, const MDB_val *v, tracker *t,
    int64_t now, bool *requeued, char *reason, size_t rlen)
{
	struct tracker_key key;
	int32_t partition;
	int rc = tracker_record_validate(v->mv_data, v->mv_size, &key,
	    &partition, reason, rlen);
	if (rc != 0)
		return rc;
	if (s->format == 1 && k->mv_size == 4) {
		/* read-only format 1: keyed by slot, nothing to compare */
	} else if (k->mv_size != ENTRY_KEY_LEN) {
		snprintf(reason, rlen, "malformed key (%zu bytes)",
		    k->mv_size);
		return -EINVAL;
	} else {
		uint8_t want[ENTRY_KEY_LEN];
		entry_key(partition, &key, want);
		if (memcmp(want, k->mv_data, ENTRY_KEY_LEN) != 0) {
			snprintf(reason, rlen, "the key is not the record's "
			    "(record: partition %d)", partition);
			return -EINVAL;
		}
	}
	return tracker_record_load(t, v->mv_data, v->mv_size, now, requeued,
	    reason, rlen);
}

/*
 * Loads every record of partition (or all) into t; a record that cannot
 * be loaded is counted and the first is described in first, the others
 * are read on. 0, -EPROTO (a record of a newer format), -EINVAL, or an
 * LMDB error.
 */
static int
load_entries(store *s, MDB_txn *txn, int32_t partition, tracker *t,
    int64_t now, struct store_recovery *rec, char *err, size_t errlen)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t bad = 0;
	int rc, result = 0;
	char first[512] = "";
	uint8_t prefix[4];
	bool ranged = partition != STORE_ALL_PARTITIONS && s->format != 1;

	be32_put((uint32_t)partition, prefix);
	if ((rc = mdb_cursor_open(txn, s->entries, &cur)) != 0)
		return mdb_fail(rc, "cursor", s, err, errlen);
	k.mv_size = sizeof(prefix);
	k.mv_data = prefix;
	for (rc = ranged ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) :
		 mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char reason[256];
		bool requeued = false;
		int32_t kp;
		if (ranged && (k.mv_size < 4 ||
		    memcmp(k.mv_data, prefix, 4) != 0))
			break;
		if (partition != STORE_ALL_PARTITIONS && !ranged &&
		    (key_partition(s, &k, &v, &kp) != 0 || kp != partition))
			continue; /* format 1, read-only: filtered */
		int lrc = load_one(s, &k, &v, t, now, &requeued, reason,
		    sizeof(reason));
		if (lrc == 0) {
			rec->entries++;
			rec->requeued += requeued;
			continue;
		}
		if (bad++ == 0)
			describe_record(s, &k, &v, reason, first, sizeof(first));
		if (lrc == -EPROTO && result == 0)
			result = -EPROTO;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return mdb_fail(rc, "reading entries", s, err, errlen);
	if (bad > 0) {
		errbuf_set(err, errlen,
		    "state store %s: %zu unreadable record(s); first: %s "
		    "(refusing to start rather than drop them)", s->dir, bad,
		    first);
		return result != 0 ? result : -EINVAL;
	}
	return 0;
}

int
store_load_partition(store *s, int32_t partition, tracker *t, int64_t now,
    struct store_recovery *rec, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	int64_t start = clock_mono_us();
	int rc;

	memset(rec, 0, sizeof(*rec));
	if (partition < STORE_ALL_PARTITIONS) {
		errbuf_set(err, errlen, "state store %s: no partition %d",
		    s->dir, partition);
		return -EINVAL;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return mdb_fail(rc, "begin", s, err, errlen);
	if (partition == STORE_ALL_PARTITIONS &&
	    mdb_stat(txn, s->entries, &st) == 0)
		tracker_reserve(t, st.ms_entries);
	if ((rc = load_entries(s, txn, partition, t, now, rec, err,
		 errlen)) != 0)
		goto out;
	/* The outbox: count it and continue its sequence. */
	if ((rc = mdb_cursor_open(txn, s->outbox, &cur)) != 0) {
		rc = mdb_fail(rc, "cursor", s, err, errlen);
		goto out;
	}
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 &&
	    seq_from_key(&k) + 1 > s->next_seq)
		s->next_seq = seq_from_key(&k) + 1;
	mdb_cursor_close(cur);
	if (mdb_stat(txn, s->outbox, &st) == 0)
		rec->outbox = st.ms_entries;
	rec->seconds = (double)(clock_mono_us() - start) / 1e6;
out:
	mdb_txn_abort(txn);
	return rc;
}

int
store_recover(store *s, tracker *t, int64_t now, struct store_recovery *rec,
    char *err, size_t errlen)
{
	return store_load_partition(s, STORE_ALL_PARTITIONS, t, now, rec, err,
	    errlen);
}

int
store_partition_empty(store *s, int32_t partition)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	uint8_t prefix[4];
	MDB_val k = { sizeof(prefix), prefix }, v;

	if (partition < 0 || s->format == 1)
		return 0;
	be32_put((uint32_t)partition, prefix);
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -EIO;
	if (mdb_cursor_open(txn, s->entries, &cur) != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	int empty = rc == MDB_NOTFOUND ? 1 : rc != 0 ? -EIO :
	    k.mv_size < sizeof(prefix) ||
	    memcmp(k.mv_data, prefix, sizeof(prefix)) != 0;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return empty;
}

int
store_partitions(store *s, int32_t **out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int32_t *ps = NULL;
	size_t np = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -EIO;
	if (mdb_cursor_open(txn, s->entries, &cur) != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		int32_t p;
		if (key_partition(s, &k, &v, &p) != 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		bool seen = false;
		for (size_t i = 0; i < np && s->format == 1; i++)
			seen |= ps[i] == p;
		if (!seen) {
			if (np == cap) {
				cap = cap ? cap * 2 : 16;
				ps = xreallocarray(ps, cap, sizeof(*ps));
			}
			ps[np++] = p;
		}
		if (s->format == 1 || (uint32_t)p == UINT32_MAX) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* format 2: skip to the next partition's first key */
		uint8_t next[4];
		be32_put((uint32_t)p + 1, next);
		k.mv_size = sizeof(next);
		k.mv_data = next;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND) {
		free(ps);
		return -EIO;
	}
	/* big-endian u32 order: negative partitions came last */
	for (size_t i = 1; i < np; i++)
		for (size_t j = i; j > 0 && ps[j - 1] > ps[j]; j--) {
			int32_t x = ps[j];
			ps[j] = ps[j - 1];
			ps[j - 1] = x;
		}
	*out = ps;
	*n = np;
	return 0;
}

/* ---- collecting the dirty set ---- */

static struct store_entry *
dirty_push(struct store_dirty *d)
{
	if (d->nentries == d->entcap) {
		d->entcap = d->entcap ? d->entcap * 2 : 256;
		d->entries = xreallocarray(d->entries, d->entcap,
		    sizeof(*d->entries));
	}
	struct store_entry *e = &d->entries[d->nentries++];
	memset(e, 0, sizeof(*e));
	return e;
}

struct collect_ctx {
	const tracker *t;
	struct store_dirty *d;
};

static int
collect_put(void *ctx, uint32_t handle)
{
	struct collect_ctx *c = ctx;
	struct tracker_info info;
	if (tracker_info_get(c->t, handle, &info) != 0)
		return 0;
	struct store_entry *e = dirty_push(c->d);
	e->partition = info.partition;
	e->key = info.key;
	e->len = tracker_record_append(c->t, handle, &c->d->bytes,
	    &c->d->bytecap, &c->d->nbytes);
	return 0;
}

static int
collect_del(void *ctx, int32_t partition, const struct tracker_key *key)
{
	struct collect_ctx *c = ctx;
	struct store_entry *e = dirty_push(c->d);
	e->partition = partition;
	e->key = *key;
	return 0;
}

size_t
store_collect_dirty(const tracker *t, struct store_dirty *d)
{
	struct collect_ctx c = {t, d};
	d->nentries = 0;
	d->nbytes = 0;
	tracker_foreach_dirty(t, collect_put, collect_del, &c);
	/* The bytes moved while they grew: point at them now. Puts were
	 * appended in order and no record is empty. */
	size_t off = 0;
	for (size_t i = 0; i < d->nentries; i++) {
		if (d->entries[i].len == 0)
			continue;
		d->entries[i].rec = d->bytes + off;
		off += d->entries[i].len;
	}
	return d->nentries;
}

void
store_dirty_free(struct store_dirty *d)
{
	free(d->entries);
	free(d->bytes);
	memset(d, 0, sizeof(*d));
}

/* ---- writing ---- */

struct sorted_key {
	uint8_t k[ENTRY_KEY_LEN];
	uint32_t i; /* in the batch: a later one of the same key wins */
};

static int
sorted_key_cmp(const void *a, const void *b)
{
	const struct sorted_key *x = a, *y = b;
	int c = memcmp(x->k, y->k, ENTRY_KEY_LEN);
	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* The batch's entry keys in LMDB's order (memcmp): written in that order,
 * consecutive puts land on the same or the next leaf page, still in the
 * CPU's cache, instead of anywhere in the tree. */
static struct sorted_key *
sort_entries(const struct store_batch *b)
{
	size_t n = b ? b->nentries : 0;
	struct sorted_key *v = xmalloc((n ? n : 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		entry_key(b->entries[i].partition, &b->entries[i].key, v[i].k);
		v[i].i = (uint32_t)i;
	}
	qsort(v, n, sizeof(*v), sorted_key_cmp);
	return v;
}

/* One attempt at the batch's transaction: 0, or LMDB's code; *seq is
 * where the outbox sequence goes on after it. */
static int
commit_once(store *s, const struct store_batch *b, uint64_t *seqp)
{
	MDB_txn *txn = NULL;
	struct sorted_key *order = sort_entries(b);
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0) {
		free(order);
		return rc;
	}
	for (size_t j = 0; b && j < b->nentries; j++) {
		const struct store_entry *e = &b->entries[order[j].i];
		MDB_val k = {ENTRY_KEY_LEN, order[j].k};
		if (e->rec != NULL) {
			MDB_val v = {e->len, (void *)e->rec};
			rc = mdb_put(txn, s->entries, &k, &v, 0);
		} else {
			rc = mdb_del(txn, s->entries, &k, NULL);
			rc = rc == MDB_NOTFOUND ? 0 : rc;
		}
		if (rc != 0)
			goto abort;
	}
	uint64_t seq = s->next_seq;
	for (size_t i = 0; b && i < b->noutbox_add; i++) {
		uint8_t kb[8];
		seq_key(seq, kb);
		MDB_val k = {8, kb};
		MDB_val v = {b->outbox_add[i].len,
		    (void *)b->outbox_add[i].data};
		/* Sequence numbers only grow: appended at the tree's end
		 * without a search (LMDB refuses a key out of order). */
		if ((rc = mdb_put(txn, s->outbox, &k, &v, MDB_APPEND)) != 0)
			goto abort;
		if (b->outbox_seqs)
			b->outbox_seqs[i] = seq;
		seq++;
	}
	for (size_t i = 0; b && i < b->noutbox_del; i++) {
		uint8_t kb[8];
		seq_key(b->outbox_del[i], kb);
		MDB_val k = {8, kb};
		rc = mdb_del(txn, s->outbox, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto abort;
	}
	for (size_t i = 0; b && i < b->nmeta; i++) {
		MDB_val k = {strlen(b->meta[i].name), (void *)b->meta[i].name};
		if (b->meta[i].value == NULL) {
			rc = mdb_del(txn, s->meta, &k, NULL);
			rc = rc == MDB_NOTFOUND ? 0 : rc;
		} else {
			MDB_val v = {b->meta[i].len, (void *)b->meta[i].value};
			rc = mdb_put(txn, s->meta, &k, &v, 0);
		}
		if (rc != 0)
			goto abort;
	}
	free(order);
	*seqp = seq;
	return mdb_txn_commit(txn);
abort:
	free(order);
	mdb_txn_abort(txn);
	return rc;
}

/* A failed commit; write errors also say how full the disk is (LMDB
 * reports a short write on a full disk as EIO). */
static int
commit_fail(store *s, int rc, char *err, size_t errlen)
{
	struct statvfs vfs;
	int r = mdb_fail(rc, "commit", s, err, errlen);
	if (err != NULL && (rc == EIO || rc == ENOSPC || rc == EDQUOT) &&
	    statvfs(s->dir, &vfs) == 0) {
		size_t n = strnlen(err, errlen);
		unsigned long long avail = (unsigned long long)vfs.f_bavail *
		    vfs.f_frsize;
		errbuf_set(err + n, errlen - n,
		    " (%llu KiB free on the disk holding it%s)", avail >> 10,
		    avail < (4u << 20) ? ": the disk is full" : "");
	}
	return r;
}

/* Runs a write transaction (once: 0 or LMDB's code, sets *seq) until it
 * fits the map, doubling the map up to max_map_size. */
static int
write_txn(store *s, int (*once)(store *, const void *, uint64_t *),
    const void *arg, char *err, size_t errlen)
{
	if (s->read_only) {
		errbuf_set(err, errlen, "state store %s: opened read-only",
		    s->dir);
		return -EROFS;
	}
	for (;;) {
		uint64_t seq = s->next_seq;
		int rc = once(s, arg, &seq);
		if (rc == 0) {
			s->next_seq = seq;
			return 0;
		}
		if (rc != MDB_MAP_FULL)
			return commit_fail(s, rc, err, errlen);
		if (s->map_size >= s->max_map_size) {
			errbuf_set(err, errlen,
			    "state store %s is full: the map reached its limit "
			    "of %zu MiB (raise state.max_map_size)", s->dir,
			    s->max_map_size >> 20);
			return -ENOSPC;
		}
		size_t grown = s->map_size * 2;
		if (grown > s->max_map_size)
			grown = s->max_map_size;
		if ((rc = mdb_env_set_mapsize(s->env, grown)) != 0)
			return mdb_fail(rc, "growing the map", s, err, errlen);
		s->map_size = grown;
	}
}

static int
commit_cb(store *s, const void *arg, uint64_t *seq)
{
	return commit_once(s, arg, seq);
}

int
store_commit(store *s, const struct store_batch *b, char *err, size_t errlen)
{
	return write_txn(s, commit_cb, b, err, errlen);
}

struct drop_arg {
	int32_t partition;
	const char *meta_prefix;
};

/* Deletes every key of dbi starting with prefix[0..n): 0, or LMDB's
 * code. */
static int
del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t n)
{
	MDB_cursor *cur;
	MDB_val k = {n, (void *)prefix}, v;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT)) {
		if (k.mv_size < n || memcmp(k.mv_data, prefix, n) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

static int
drop_once(store *s, const void *arg, uint64_t *seq)
{
	const struct drop_arg *d = arg;
	MDB_txn *txn = NULL;
	uint8_t prefix[4];
	(void)seq;
	be32_put((uint32_t)d->partition, prefix);
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return rc;
	if ((rc = del_prefix(txn, s->entries, prefix, sizeof(prefix))) != 0 ||
	    (d->meta_prefix != NULL && d->meta_prefix[0] != '\0' &&
		(rc = del_prefix(txn, s->meta, d->meta_prefix,
		     strlen(d->meta_prefix))) != 0)) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

int
store_drop_partition(store *s, int32_t partition, const char *meta_prefix,
    char *err, size_t errlen)
{
	if (partition < 0) {
		errbuf_set(err, errlen, "state store %s: no partition %d",
		    s->dir, partition);
		return -EINVAL;
	}
	if (meta_prefix != NULL && meta_prefix[0] != '\0' &&
	    strncmp(meta_prefix, "format", strlen(meta_prefix)) == 0) {
		errbuf_set(err, errlen, "state store %s: meta prefix \"%s\" "
		    "would drop the store format", s->dir, meta_prefix);
		return -EINVAL;
	}
	struct drop_arg d = {partition, meta_prefix};
	return write_txn(s, drop_once, &d, err, errlen);
}

int
store_meta_get(store *s, const char *name, void *buf, size_t buflen,
    size_t *len)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return -EIO;
	MDB_val k = {strlen(name), (void *)name}, v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		size_t n = v.mv_size < buflen ? v.mv_size : buflen;
		if (n > 0)
			memcpy(buf, v.mv_data, n);
		*len = v.mv_size;
	} else {
		rc = rc == MDB_NOTFOUND ? -ENOENT : -EIO;
	}
	mdb_txn_abort(txn);
	return rc;
}

void
store_entry_ref(int32_t partition, const struct tracker_key *key,
    uint8_t out[STORE_ENTRY_REF_LEN])
{
	out[0] = STORE_ENTRY_REF;
	entry_key(partition, key, out + 1);
}

/* The entry an outbox item names, when it is a reference: true, with
 * *ref filled (rec NULL when the store has no such entry). */
static bool
entry_ref_resolve(store *s, MDB_txn *txn, const MDB_val *v,
    struct store_entry *ref)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size != STORE_ENTRY_REF_LEN || p[0] != STORE_ENTRY_REF)
		return false;
	memset(ref, 0, sizeof(*ref));
	ref->partition = (int32_t)be32_get(p + 1);
	ref->key.kind = p[5];
	memcpy(ref->key.bytes, p + 6, TRACKER_KEY_LEN);
	MDB_val k = {ENTRY_KEY_LEN, (void *)(p + 1)}, e;
	if (mdb_get(txn, s->entries, &k, &e) == 0) {
		ref->rec = e.mv_data;
		ref->len = e.mv_size;
	}
	return true;
}

int
store_outbox_foreach(store *s,
    int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len,
	const struct store_entry *ref),
    void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return -EIO;
	if (mdb_cursor_open(txn, s->outbox, &cur) != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	int result = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_entry ref;
		bool is_ref = entry_ref_resolve(s, txn, &v, &ref);
		if ((result = fn(ctx, seq_from_key(&k), v.mv_data,
			 v.mv_size, is_ref ? &ref : NULL)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return result;
}

size_t
store_outbox_count(store *s)
{
	MDB_txn *txn;
	MDB_stat st;
	size_t n = 0;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_stat(txn, s->outbox, &st) == 0)
		n = st.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

size_t
store_map_size(const store *s)
{
	return s->map_size;
}

const char *
store_dir(const store *s)
{
	return s->dir;
}
