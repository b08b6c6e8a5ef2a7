/*
 * store: sbomd's durable state in LMDB under state.dir.
 *
 *   entries  u32 partition (big-endian) | u8 kind | 32 key bytes
 *            (37 bytes)                 -> versioned tracker record
 *            (tracker_record.h); grouped by input partition, so one
 *            partition's entries are one key range
 *   outbox   sequence (u64 big-endian)  -> encoded outcome, until delivered
 *   meta     name -> value: "format" (the store format), and whatever the
 *            service records with a batch
 *
 * A batch's changes (entries put and deleted, outbox appends and
 * deletions, meta values put and deleted) go into ONE write transaction:
 * after a crash the store holds the state after some whole batch, never
 * part of one. Entries are written from pre-encoded records
 * (store_collect_dirty), so the caller can send the same bytes to a
 * changelog.
 */
#ifndef SBOMD_STORE_STORE_H
#define SBOMD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"

#define STORE_FORMAT 2
#define STORE_ALL_PARTITIONS (-1)

typedef struct store store;

struct store_options {
	size_t initial_map_size; /* bytes; 0 = 64 MiB */
	size_t max_map_size;	 /* bytes; 0 = 64 GiB */
	bool no_sync;		 /* no fsync per commit (benchmarks only) */
	bool read_only;		 /* inspect only (`sbomd state`), next to a
				  * running service; nothing is created and
				  * store_commit fails */
};

struct store_blob {
	const void *data;
	size_t len;
};

struct store_meta {
	const char *name;
	const void *value; /* NULL: the value is deleted */
	size_t len;
};

/* One entry of a batch: its record is put, or (rec NULL) deleted. */
struct store_entry {
	int32_t partition;
	struct tracker_key key;
	const void *rec;
	size_t len;
};

/* Everything a batch commits. Entries are applied in order (a later one
 * of the same (partition, key) wins). */
struct store_batch {
	const struct store_entry *entries;
	size_t nentries;
	const struct store_blob *outbox_add; /* appended in order */
	size_t noutbox_add;
	uint64_t *outbox_seqs;		     /* out: their sequences, or NULL */
	const uint64_t *outbox_del;	     /* delivered: removed */
	size_t noutbox_del;
	const struct store_meta *meta;
	size_t nmeta;
};

struct store_recovery {
	size_t entries;
	size_t outbox;
	size_t requeued; /* SCANNING at the crash, queued again */
	double seconds;
};

/* What store_open did to a store of an older format. */
struct store_migration {
	unsigned from_format; /* 0: nothing was migrated */
	size_t entries;	      /* records re-keyed */
	double seconds;
};

/*
 * Growing buffers for store_collect_dirty, reused between batches:
 * zero-initialise, release with store_dirty_free.
 */
struct store_dirty {
	struct store_entry *entries;
	size_t nentries, entcap;
	uint8_t *bytes; /* the records, back to back */
	size_t nbytes, bytecap;
};

/*
 * Opens (creating when needed, unless read_only) the store in dir: 0 with
 * *out set, or a negative errno with err naming the directory: -EPROTO
 * for a store written by a newer format (the message names both formats),
 * -ENOENT for a missing directory or one that is not a store (read_only),
 * -EINVAL for a corrupt format record or a format-1 entry that cannot be
 * migrated, else the error of the system or of LMDB.
 *
 * A format-1 store (entries keyed by slot) is migrated to format 2 in one
 * write transaction: each record is read, its partition and key taken
 * from it, and it is put again under its new key (store_migration says
 * what was done). A read-only open leaves it as it is: loading reads
 * format-1 entries then, filtering by the partition in the record.
 */
int store_open(const char *dir, const struct store_options *opt, store **out,
    char *err, size_t errlen);
void store_close(store *s);
/* Whether a commit is durable when store_commit returns: the environment
 * syncs data and meta pages on commit (none of MDB_NOSYNC,
 * MDB_NOMETASYNC, MDB_MAPASYNC set; read with mdb_env_get_flags). */
bool store_syncs_on_commit(const store *s);

/* What store_open migrated: true with *m filled, or false when the store
 * was current (or opened read-only). */
bool store_migration(const store *s, struct store_migration *m);

/*
 * Loads every entry of partition (STORE_ALL_PARTITIONS: of all of them)
 * into t with tracker_record_load (an entity in memory already is
 * replaced), in key order: 0 with *rec filled (the outbox counted, and its
 * sequence continued). A record that cannot be read, or whose key is not
 * the record's (partition, key), is counted and the others are read on;
 * then -EINVAL (-EPROTO when one is of a newer format), the error naming
 * the first such record by key and partition and counting the others;
 * nothing is changed on disk, and what did load stays in t (release the
 * partition to undo it). See README "Durable state" for why a service
 * refuses to start then. -EINVAL for a partition below -1; -EIO or LMDB's
 * error when reading fails.
 */
int store_load_partition(store *s, int32_t partition, tracker *t, int64_t now,
    struct store_recovery *rec, char *err, size_t errlen);
/* store_load_partition(s, STORE_ALL_PARTITIONS, ...) into an empty tracker:
 * what the service does at start and `sbomd state` reads. */
int store_recover(store *s, tracker *t, int64_t now, struct store_recovery *rec,
    char *err, size_t errlen);

/*
 * Deletes, in one durable write transaction, every entry of partition
 * (>= 0) and, when meta_prefix is not NULL, every meta value whose name
 * starts with it (e.g. "changelog/3/" for that partition's checkpoints):
 * 0, or an error as store_commit's.
 */
int store_drop_partition(store *s, int32_t partition, const char *meta_prefix,
    char *err, size_t errlen);

/* Whether partition (>= 0) has no entries: 1 when it has none, 0 when it
 * has some (or the store is of format 1, whose keys do not say), -EIO
 * when the store cannot be read. */
int store_partition_empty(store *s, int32_t partition);

/* The partitions that have entries, ascending, in *out (caller frees;
 * NULL when none) and *n: 0, or -EIO. */
int store_partitions(store *s, int32_t **out, size_t *n);

/*
 * Encodes every entry of t's dirty set (tracker_foreach_dirty: deletions,
 * then puts) into d, replacing what d held, and returns how many entries
 * d->entries holds: each record is encoded once, and d->entries can be
 * given to store_commit as they are and their bytes sent elsewhere too.
 * Valid until the next call or until t changes; the dirty set is not
 * cleared (do that after the commit succeeded).
 */
size_t store_collect_dirty(const tracker *t, struct store_dirty *d);
void store_dirty_free(struct store_dirty *d);

/*
 * Commits the batch in one durable write transaction, growing the map
 * when it is full (up to max_map_size): 0. On failure nothing was
 * written, so the same batch can be committed again: -ENOSPC when the map
 * reached max_map_size, -EROFS for a read-only store, the write error
 * otherwise (-EIO on a full disk; err then says how full). Deleting what
 * is not there is no error.
 */
int store_commit(store *s, const struct store_batch *b, char *err,
    size_t errlen);

/*
 * Reads meta value name: 0 with its first buflen bytes (at most) in buf
 * and its whole length in *len; -ENOENT when there is none; -EIO when the
 * store cannot be read.
 */
int store_meta_get(store *s, const char *name, void *buf, size_t buflen,
    size_t *len);

/*
 * An outbox item may stand for an entry instead of holding bytes of its
 * own: STORE_ENTRY_REF, then the entry's (partition, key) as the store
 * keys it (u32 partition big-endian, u8 kind, the key's bytes). A
 * changelog record is the entry record committed with it, so the outbox
 * keeps this reference in its place, not a second copy of the record.
 */
#define STORE_ENTRY_REF 'c'
#define STORE_ENTRY_REF_LEN (6 + TRACKER_KEY_LEN)

/* The reference to the entry (partition, key), into out. */
void store_entry_ref(int32_t partition, const struct tracker_key *key,
    uint8_t out[STORE_ENTRY_REF_LEN]);

/*
 * Calls fn for each outbox item in sequence order (read transaction)
 * until fn returns non-zero: 0, fn's value, or -EIO. data and len are
 * the item as stored; for an entry reference, ref is the entry it names
 * as the store holds it now (ref->rec NULL when there is none: it was
 * deleted, or moved), else ref is NULL.
 */
int store_outbox_foreach(store *s,
    int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len,
	const struct store_entry *ref),
    void *ctx);
/* The number of outbox items; 0 also when the store cannot be read. */
size_t store_outbox_count(store *s);

size_t store_map_size(const store *s);
const char *store_dir(const store *s);

#endif
