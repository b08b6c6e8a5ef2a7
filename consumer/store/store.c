/*
 * store: LMDB environment with three named databases (entries, outbox,
 * meta). One process writes (the engine thread); other processes such as
 * `sbomd state` may read at the same time (LMDB readers never block the
 * writer).
 *
 * Group commit: store_commit writes everything a batch changed in one
 * write transaction and commits it durably (fdatasync, unless no_sync).
 * When the map is full, the transaction is aborted, the map doubled and
 * the whole batch written again; the tracker's dirty set is only cleared
 * after a successful commit, so a failed commit loses nothing.
 *
 * Sizes: a record is ~100 bytes for an image with one source; a million
 * entries take ~200 MiB of map. Recovery reads every record once (O(n)).
 *
 * Concurrency: a store is used by one thread at a time.
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
#include "util/xmalloc.h"

#define DEFAULT_MAP (64ULL << 20)
#define DEFAULT_MAX_MAP (64ULL << 30)

struct store {
	MDB_env *env;
	MDB_dbi entries, outbox, meta;
	size_t map_size, max_map_size;
	uint64_t next_seq;
	bool recovered; /* entries were loaded into the committing tracker */
	bool has_entries;
	bool read_only;
	char *dir;
	uint8_t *buf; /* record encoding scratch */
	size_t bufcap;
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

static int
mkdir_p(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
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

/* Entries are keyed by their slot, big-endian so that LMDB's byte order
 * is slot order and neighbouring slots share pages. */
static void
slot_key(uint32_t slot, uint8_t out[4])
{
	out[0] = (uint8_t)(slot >> 24);
	out[1] = (uint8_t)(slot >> 16);
	out[2] = (uint8_t)(slot >> 8);
	out[3] = (uint8_t)slot;
}

static uint32_t
slot_from_key(const MDB_val *k)
{
	const uint8_t *p = k->mv_data;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* "entry sha256:<hex> (slot N): reason", naming what can be named. */
static void
describe_record(const MDB_val *k, const MDB_val *v, const char *reason,
    char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	struct tracker_key key;
	char id[80] = "?";
	char slot[32] = "?";

	if (k->mv_size == 4)
		snprintf(slot, sizeof(slot), "%u", slot_from_key(k));
	if (tracker_record_key(v->mv_data, v->mv_size, &key) == 0) {
		size_t n = (size_t)snprintf(id, sizeof(id), "%s:",
		    key.kind == ENTITY_HOST ? "host-key" : "sha256");
		for (size_t i = 0; i < TRACKER_KEY_LEN; i++) {
			id[n++] = hex[key.bytes[i] >> 4];
			id[n++] = hex[key.bytes[i] & 15];
		}
		id[n] = '\0';
	}
	snprintf(out, outlen, "entry %s (slot %s): %s", id, slot, reason);
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
	if (rc == MDB_NOTFOUND && s->read_only) {
		mdb_txn_abort(txn);
		return 0; /* a fresh store: nothing committed yet */
	}
	if (rc == MDB_NOTFOUND) {
		uint8_t f[4] = {STORE_FORMAT, 0, 0, 0};
		MDB_val nv = {4, f};
		rc = mdb_put(txn, s->meta, &k, &nv, 0);
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
	if ((rc = mkdir_p(dir)) != 0)
		errbuf_set(err, errlen, "state.dir %s: cannot create: %s", dir,
		    strerror(-rc));
	return rc;
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
	MDB_stat est;
	if (mdb_stat(txn, s->entries, &est) == 0)
		s->has_entries = est.ms_entries > 0;
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
	free(s->buf);
	free(s);
}

/*
 * Loads every record of entries into t; a record that cannot be loaded is
 * counted and the first is described in first, the others are read on.
 * 0, -EPROTO (a record of a newer format), -EINVAL, or an LMDB error.
 */
static int
recover_entries(store *s, MDB_txn *txn, tracker *t, int64_t now,
    struct store_recovery *rec, char *err, size_t errlen)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t bad = 0;
	int rc, result = 0;
	char first[512] = "";

	/* Slots are dense (freed ones are reused first), so every record's
	 * slot is below the count committed with it: a corrupt key cannot
	 * make recovery allocate up to a huge slot. */
	uint32_t slots = 0;
	MDB_val mk = {5, "slots"}, mv;
	if (mdb_get(txn, s->meta, &mk, &mv) == 0 && mv.mv_size == 4)
		memcpy(&slots, mv.mv_data, 4);
	if ((rc = mdb_cursor_open(txn, s->entries, &cur)) != 0)
		return mdb_fail(rc, "cursor", s, err, errlen);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char reason[256];
		int lrc;
		bool requeued = false;
		if (k.mv_size != 4) {
			snprintf(reason, sizeof(reason), "malformed slot key "
			    "(%zu bytes)", k.mv_size);
			lrc = -EINVAL;
		} else if (slot_from_key(&k) >= slots) {
			snprintf(reason, sizeof(reason), "slot out of range "
			    "(the store records %u slots)", slots);
			lrc = -EINVAL;
		} else {
			lrc = tracker_record_load(t, slot_from_key(&k),
			    v.mv_data, v.mv_size, now, &requeued, reason,
			    sizeof(reason));
		}
		if (lrc == 0) {
			rec->entries++;
			rec->requeued += requeued;
			continue;
		}
		if (bad++ == 0)
			describe_record(&k, &v, reason, first, sizeof(first));
		if (lrc == -EPROTO && result == 0)
			result = -EPROTO;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
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
store_recover(store *s, tracker *t, int64_t now, struct store_recovery *rec,
    char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	int64_t start = clock_mono_us();
	int rc;

	memset(rec, 0, sizeof(*rec));
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return mdb_fail(rc, "begin", s, err, errlen);
	if (mdb_stat(txn, s->entries, &st) == 0)
		tracker_reserve(t, st.ms_entries);
	if ((rc = recover_entries(s, txn, t, now, rec, err, errlen)) != 0)
		goto out;
	/* The outbox: count it and continue its sequence. */
	if ((rc = mdb_cursor_open(txn, s->outbox, &cur)) != 0) {
		rc = mdb_fail(rc, "cursor", s, err, errlen);
		goto out;
	}
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0)
		s->next_seq = seq_from_key(&k) + 1;
	mdb_cursor_close(cur);
	if (mdb_stat(txn, s->outbox, &st) == 0)
		rec->outbox = st.ms_entries;
	tracker_record_load_finish(t);
	s->recovered = true;
	rec->seconds = (double)(clock_mono_us() - start) / 1e6;
out:
	mdb_txn_abort(txn);
	return rc;
}

struct commit_ctx {
	store *s;
	tracker *t;
	MDB_txn *txn;
	int rc; /* the LMDB code of a failed put or delete */
};

/* tracker_foreach_dirty callbacks: 0, or -EIO with the code in c->rc. */
static int
commit_put(void *ctx, uint32_t slot)
{
	struct commit_ctx *c = ctx;
	uint8_t kb[4];
	slot_key(slot, kb);
	size_t len = tracker_record_encode(c->t, slot, &c->s->buf,
	    &c->s->bufcap);
	MDB_val k = {sizeof(kb), kb}, v = {len, c->s->buf};
	c->rc = mdb_put(c->txn, c->s->entries, &k, &v, 0);
	return c->rc == 0 ? 0 : -EIO;
}

static int
commit_del(void *ctx, uint32_t slot)
{
	struct commit_ctx *c = ctx;
	uint8_t kb[4];
	slot_key(slot, kb);
	MDB_val k = {sizeof(kb), kb};
	int rc = mdb_del(c->txn, c->s->entries, &k, NULL);
	c->rc = rc == MDB_NOTFOUND ? 0 : rc;
	return c->rc == 0 ? 0 : -EIO;
}

/* One attempt at the batch's transaction: 0, or LMDB's code. */
static int
commit_once(store *s, tracker *t, const struct store_batch *b)
{
	struct commit_ctx c = {s, t, NULL, 0};
	int rc = mdb_txn_begin(s->env, NULL, 0, &c.txn);
	if (rc != 0)
		return rc;
	if (tracker_foreach_dirty(t, commit_put, commit_del, &c) != 0) {
		rc = c.rc;
		goto abort;
	}
	uint32_t slots = tracker_slots(t);
	MDB_val sk = {5, "slots"}, sv = {4, &slots};
	if ((rc = mdb_put(c.txn, s->meta, &sk, &sv, 0)) != 0)
		goto abort;
	uint64_t seq = s->next_seq;
	for (size_t i = 0; b && i < b->noutbox_add; i++) {
		uint8_t kb[8];
		seq_key(seq, kb);
		MDB_val k = {8, kb};
		MDB_val v = {b->outbox_add[i].len,
		    (void *)b->outbox_add[i].data};
		if ((rc = mdb_put(c.txn, s->outbox, &k, &v, 0)) != 0)
			goto abort;
		if (b->outbox_seqs)
			b->outbox_seqs[i] = seq;
		seq++;
	}
	for (size_t i = 0; b && i < b->noutbox_del; i++) {
		uint8_t kb[8];
		seq_key(b->outbox_del[i], kb);
		MDB_val k = {8, kb};
		rc = mdb_del(c.txn, s->outbox, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto abort;
	}
	for (size_t i = 0; b && i < b->nmeta; i++) {
		MDB_val k = {strlen(b->meta[i].name), (void *)b->meta[i].name};
		MDB_val v = {b->meta[i].len, (void *)b->meta[i].value};
		if ((rc = mdb_put(c.txn, s->meta, &k, &v, 0)) != 0)
			goto abort;
	}
	rc = mdb_txn_commit(c.txn);
	if (rc == 0)
		s->next_seq = seq;
	return rc;
abort:
	mdb_txn_abort(c.txn);
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

int
store_commit(store *s, tracker *t, const struct store_batch *b, char *err,
    size_t errlen)
{
	if (s->read_only) {
		errbuf_set(err, errlen, "state store %s: opened read-only",
		    s->dir);
		return -EROFS;
	}
	if (s->has_entries && !s->recovered) {
		errbuf_set(err, errlen,
		    "state store %s: commit before recovery would overwrite "
		    "the stored entries", s->dir);
		return -EINVAL;
	}
	for (;;) {
		int rc = commit_once(s, t, b);
		if (rc == 0) {
			tracker_clear_dirty(t);
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

int
store_outbox_foreach(store *s,
    int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len),
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
		if ((result = fn(ctx, seq_from_key(&k), v.mv_data,
			 v.mv_size)) != 0)
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
