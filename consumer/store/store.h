/*
 * store: sbomd's durable state in LMDB under state.dir.
 *
 *   entries  slot (u32 big-endian)      -> versioned tracker record
 *            (the record holds the entity key; see tracker.h on slots)
 *   outbox   sequence (u64 big-endian)  -> encoded outcome, until delivered
 *   meta     name -> value: "format" (the store format), "slots" (one
 *            more than the highest slot used, committed with every batch),
 *            and whatever the service records with a batch
 *
 * A batch's changes (every dirty entry, deleted keys, outbox appends and
 * deletions, meta values) go into ONE write transaction: after a crash the
 * store holds the state after some whole batch, never part of one.
 */
#ifndef SBOMD_STORE_STORE_H
#define SBOMD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"

#define STORE_FORMAT 1

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
	const void *value;
	size_t len;
};

/* Everything besides the tracker's dirty set that a batch commits. */
struct store_batch {
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

/*
 * Opens (creating when needed, unless read_only) the store in dir: 0 with
 * *out set, or a negative errno with err naming the directory: -EPROTO
 * for a store written by a newer format (the message names both formats),
 * -ENOENT for a missing directory or one that is not a store (read_only),
 * -EINVAL for a corrupt format record, else the error of the system or of
 * LMDB.
 */
int store_open(const char *dir, const struct store_options *opt, store **out,
    char *err, size_t errlen);
void store_close(store *s);

/*
 * Loads every entry into an empty tracker: 0 with *rec filled. A record
 * that cannot be read stops the start-up: -EINVAL (-EPROTO when one is of
 * a newer format), the error naming the first such record's key and slot
 * and counting the others; nothing is changed on disk. See README
 * "Durable state" for why. -EIO or LMDB's error when reading fails.
 */
int store_recover(store *s, tracker *t, int64_t now, struct store_recovery *rec,
    char *err, size_t errlen);

/*
 * Commits the tracker's dirty set and the batch in one durable write
 * transaction, growing the map when it is full (up to max_map_size): 0,
 * and the tracker's dirty set is cleared. On failure nothing was written
 * and the dirty set is kept, so the same commit can be retried: -ENOSPC
 * when the map reached max_map_size, -EROFS for a read-only store, the
 * write error otherwise (-EIO on a full disk; err then says how full).
 * A store that holds entries must have been recovered (store_recover)
 * before the first commit: a tracker that does not know them would reuse
 * their slots (-EINVAL).
 */
int store_commit(store *s, tracker *t, const struct store_batch *b, char *err,
    size_t errlen);

/*
 * Reads meta value name: 0 with its first buflen bytes (at most) in buf
 * and its whole length in *len; -ENOENT when there is none; -EIO when the
 * store cannot be read.
 */
int store_meta_get(store *s, const char *name, void *buf, size_t buflen,
    size_t *len);

/* Calls fn for each outbox item in sequence order (read transaction)
 * until fn returns non-zero: 0, fn's value, or -EIO. */
int store_outbox_foreach(store *s,
    int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len),
    void *ctx);
/* The number of outbox items; 0 also when the store cannot be read. */
size_t store_outbox_count(store *s);

size_t store_map_size(const store *s);
const char *store_dir(const store *s);

#endif
