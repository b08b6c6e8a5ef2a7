/*
 * tracker: one entry per entity (container image or host), the state
 * machine (docs/architecture.md "The tracker"), the dedup map and the due
 * heap. No Kafka, no Avro,
 * no I/O, no threads, no clock: time is always passed in (ms since the
 * epoch), so every transition is exact and replayable; the caller moves
 * the due times when the wall clock jumps (tracker_shift_due).
 *
 * Semantics (the contract the tests check):
 *
 * Keys. An image is keyed by its ID, "sha256:" + 64 lowercase hex (32 raw
 * bytes); a host by SHA-256("host\0" + name). The kind is part of the key,
 * so an image and a host never collide.
 *
 * States. QUEUED (in the heap, waiting for its due time), SCANNING (handed
 * to a worker), DONE (last scan succeeded), FAILED (terminal failure),
 * CANCELLED (every reference went while it was QUEUED or SCANNING).
 *
 * References. Per source (a node): the repo tags and repo digests it
 * reported, the newest observed_at seen from it, and whether it holds the
 * entity now (SET) or not (UNSET). An entity is referenced while at least
 * one source holds it. A source record stays after UNSET (without refs)
 * so that a late, older SET is recognised as stale.
 *
 * SET(id, source, refs, observed_at):
 *  - stale (observed_at < that source's newest) -> APPLY_STALE, nothing
 *    changes;
 *  - new entity -> QUEUED, due now, attempts 0, first_seen now: APPLY_NEW;
 *  - same source, same refs, already holding -> APPLY_DEDUP (observed_at
 *    still advances);
 *  - otherwise the source's refs are replaced: APPLY_UPDATED.
 *  Then, for an existing entity: QUEUED or SCANNING stay as they are (the
 *  backoff schedule is kept). DONE is queued (due now) only when
 *  rescan_after > 0 and now - last_scan >= rescan_after. FAILED is queued
 *  (attempts reset to 0) only when failed_rescan_after > 0 and now -
 *  last_scan >= failed_rescan_after. CANCELLED is queued due now with
 *  attempts reset to 0. A queued-again entity reports APPLY_UPDATED even
 *  when its refs were the same.
 *
 * UNSET(id, source, observed_at):
 *  - unknown entity or unknown source -> APPLY_UNKNOWN (nothing is created);
 *  - stale -> APPLY_STALE; a source not holding already -> APPLY_DEDUP;
 *  - else the source's refs are dropped: APPLY_UPDATED. When no source
 *    holds the entity any more: QUEUED -> CANCELLED (out of the heap),
 *    SCANNING -> CANCELLED and the outcome asks the caller to abort the
 *    scan; either way a CANCELLED outcome is produced, with attempt =
 *    attempts done so far (QUEUED) or the running attempt (SCANNING).
 *
 * Forgetting. An unreferenced entity (any state but QUEUED/SCANNING) sits
 * in the heap with a forget timer at (time it became unreferenced) +
 * forget_after; when that timer pops it is deleted. A SET before then
 * cancels the timer.
 *
 * Scanning. tracker_pop_due hands out QUEUED entities whose due time has
 * come (soonest first; ties by the order they were queued) as jobs, moving
 * them to SCANNING with attempt = attempts + 1. tracker_complete with the
 * job's attempt: success -> DONE, attempts 0, last_scan now, SUCCEEDED.
 * Failure -> attempts = n; retried (policy_should_retry) -> QUEUED at now +
 * policy_backoff(n), RETRY_SCHEDULED; else FAILED, last_scan now, FAILED.
 * A completion for an entity that is not SCANNING that attempt is stale
 * and ignored (-ESTALE). tracker_requeue puts a SCANNING entity back to
 * QUEUED due now with its attempt count unchanged (shutdown, recovery).
 *
 * Heap order. (due, sequence), the sequence counting every push and every
 * reschedule: an entity queued or re-timed later sorts after others with
 * the same due time.
 *
 * Generations. Every entry counts its scan cycles: generation 1 for a new
 * entity, +1 each time it is queued again from a state that is not
 * queued (DONE rescanned, FAILED rescanned, CANCELLED set again), i.e.
 * whenever its attempts restart from 0. Every job and every outcome
 * carries the generation, so (id, generation, attempt, status) is unique
 * per outcome: a consumer can tell a second cycle's "attempt 1 FAILED"
 * from the first's, and a replayed outcome from a new one.
 *
 * Partitions. An entry belongs to the input partition of the last event
 * applied to it (neither stale nor unknown nor invalid); an event on
 * another partition moves it there.
 *
 * Durability hooks. Every change marks the entry dirty; a forgotten entry,
 * and the old place of an entry that moved to another partition, are
 * recorded as deleted (partition, key) pairs. The caller (the engine,
 * through store_collect_dirty) walks the dirty set at the end of a batch,
 * writes it in one transaction, and clears it on success. Handles exist in
 * memory only; the store keys records by (partition, key).
 *
 * Partition-scoped memory. tracker_record_load adds (or replaces) one
 * entry from its record, tracker_release_partition drops every entry of
 * a partition from memory (their records stay where they are): an
 * instance holds only the partitions it is assigned.
 *
 * Limits (bounded memory; violations are APPLY_INVALID with a reason):
 * ids and source names up to 253 bytes without control characters, up to
 * TRACKER_MAX_REFS tags and as many digests per source, each up to
 * TRACKER_MAX_REF_LEN bytes; per entity, up to cfg.max_sources source
 * records (at most TRACKER_MAX_SOURCES, what a record may hold) and
 * cfg.max_entity_bytes bytes of them (tags, digests, per-source overhead;
 * the last error, at most TRACKER_MAX_ERROR bytes, comes on top). A SET
 * that would pass either bound first makes room by dropping records of
 * sources that no longer hold the entity (UNSET), the oldest observed_at
 * first -- at least max_sources / 16 of them at a time, so that the cost
 * is amortised -- and is refused only when that is not enough (every
 * source holds it). A dropped record only forgets that its source
 * UNSET the entity: a later, older SET from it counts again. Each record
 * the tracker holds therefore encodes into a record tracker_record_load
 * accepts.
 *
 * Clock skew. An event whose observed_at is more than
 * cfg.max_clock_skew_ms ahead of now is applied as if observed at now
 * (and counted: tracker_stats), so that a far-future timestamp cannot
 * make its source's later events stale.
 *
 * Threads: the engine thread owns a tracker; nothing here locks.
 */
#ifndef SBOMD_CORE_TRACKER_H
#define SBOMD_CORE_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "util/clock.h"

#define TRACKER_KEY_LEN 32
#define TRACKER_MAX_NAME 253
#define TRACKER_MAX_REFS 64
#define TRACKER_MAX_REF_LEN 512
#define TRACKER_MAX_SOURCES 4096 /* what a record may hold */
#define TRACKER_DEFAULT_ENTITY_BYTES (1 << 20)
#define TRACKER_MIN_ENTITY_BYTES (64 << 10)
#define TRACKER_MAX_ENTITY_BYTES (64 << 20)
#define TRACKER_MAX_ERROR 1024
#define TRACKER_NONE UINT32_MAX
#define TRACKER_MAX_ENTRIES (1u << 28) /* handles in memory at once */

typedef struct tracker tracker;

enum apply_result {
	APPLY_NEW = 0,
	APPLY_UPDATED,
	APPLY_DEDUP,
	APPLY_STALE,
	APPLY_UNKNOWN,
	APPLY_INVALID,
	APPLY_RESULT_COUNT
};

struct tracker_key {
	uint8_t kind; /* enum entity_kind */
	uint8_t bytes[TRACKER_KEY_LEN];
};

struct tracker_config {
	struct retry_policy retry;
	int64_t rescan_after_ms; /* 0 = DONE entities are never rescanned */
	int64_t forget_after_ms; /* >= 0 */
	uint64_t jitter_seed;	 /* mixed with key and attempt for jitter */
	size_t max_sources;	 /* per entity, 1..TRACKER_MAX_SOURCES */
	size_t max_entity_bytes; /* per entity, see "Limits" */
	int64_t max_clock_skew_ms; /* >= 0, see "Clock skew" */
};

/* Counters since tracker_new. */
struct tracker_stats {
	uint64_t clock_clamped;	 /* events whose observed_at was clamped */
	uint64_t sources_pruned; /* UNSET source records dropped for room */
};

struct tracker_event {
	enum event_type type;
	enum entity_kind kind;
	const char *id;
	const char *source;
	const char *const *tags;
	size_t ntags;
	const char *const *digests;
	size_t ndigests;
	int64_t observed_at;
	int32_t partition; /* input partition, kept for scale-out */
};

struct tracker_outcome {
	enum outcome_status status; /* OUTCOME_NONE: nothing to publish */
	uint32_t handle;
	struct tracker_key key;
	uint32_t generation;	 /* see "Generations" above */
	uint32_t attempt;
	int64_t next_attempt_at; /* -1 when none */
	int error_class;	 /* enum error_class, or -1 */
	const char *error;	 /* NULL, or valid until the next call */
	bool abort_scan;	 /* CANCELLED while SCANNING: abort the job */
};

struct tracker_job {
	uint32_t handle;
	struct tracker_key key;
	uint32_t generation;
	uint32_t attempt; /* 1-based */
	int64_t due;
};

struct tracker_result {
	bool ok;
	enum error_class error_class;
	const char *error;
	/* 0, or the earliest time of a retry (a registry's Retry-After):
	 * the backoff's due time is raised to it. */
	int64_t not_before;
};

/* A read-only picture of one entry (for inspection and tests). */
struct tracker_info {
	struct tracker_key key;
	enum entry_state state;
	uint32_t attempts;
	uint32_t generation;
	int32_t partition;
	int64_t first_seen;
	int64_t last_scan;	/* -1 never */
	int64_t due;		/* heap time: scan due (QUEUED) or forget time */
	bool in_heap;
	bool referenced;
	size_t nsources;	/* records, holding or not */
	const char *last_error;	/* NULL or valid until the next call */
};

/* Per source, for tracker_sources. */
struct tracker_source_info {
	const char *source;
	int64_t observed_at;
	bool holding;
	size_t ntags, ndigests;
	/* tag i: tags[i] of tag_lens[i] bytes (not NUL-terminated) */
	const char *tags[TRACKER_MAX_REFS];
	size_t tag_lens[TRACKER_MAX_REFS];
	const char *digests[TRACKER_MAX_REFS];
	size_t digest_lens[TRACKER_MAX_REFS];
};

/* 0, or -EINVAL with the offending key named in err. */
int tracker_config_validate(const struct tracker_config *c, char *err,
    size_t errlen);
void tracker_config_defaults(struct tracker_config *c);

tracker *tracker_new(const struct tracker_config *c);
void tracker_free(tracker *t);

/* Parses an entity id of the given kind into a key: 0, or -EINVAL with
 * the reason in err. */
int tracker_key_from_id(enum entity_kind kind, const char *id,
    struct tracker_key *key, char *err, size_t errlen);

/*
 * Applies one event at time now. Returns an apply_result (APPLY_INVALID
 * with err filled for bad input, which changes nothing). out->status is
 * OUTCOME_CANCELLED when the event cancelled the entity, else OUTCOME_NONE.
 */
enum apply_result tracker_apply(tracker *t, const struct tracker_event *ev,
    int64_t now, struct tracker_outcome *out, char *err, size_t errlen);

/* One event of a batch and what applying it did. */
struct tracker_batch_item {
	const struct tracker_event *ev;
	enum apply_result result;
	struct tracker_outcome out;
	char err[192]; /* the reason, for APPLY_INVALID */
};

/*
 * Applies items[0..n) in order, exactly as n calls of tracker_apply would,
 * but faster: lookups of later events are prefetched while earlier ones
 * are applied. (Outcomes carry no error text, so nothing dangles.)
 */
void tracker_apply_batch(tracker *t, struct tracker_batch_item *items,
    size_t n, int64_t now);

/*
 * The wall clock jumped by delta ms (clock_watch): every heap time (scan
 * due times, forget timers) moves by delta, so that what was due in 5
 * minutes is still due in 5 minutes and nothing expires early or late
 * because of the jump. O(heap). Nothing is marked dirty: the stored due
 * times of entries not written again are from before the jump (see
 * docs/architecture.md "Time").
 */
void tracker_shift_due(tracker *t, int64_t delta);

/* Reads w (clock_watch_now) and moves the due times by the jump it saw,
 * if any (*jump, may be NULL): the time to pass to the calls here. */
int64_t tracker_clock_now(tracker *t, struct clock_watch *w, int64_t *jump);

/* The soonest heap time (scan or forget) in *due: true, or false when the
 * heap is empty. */
bool tracker_next_due(const tracker *t, int64_t *due);

/*
 * Hands out the next QUEUED entity due at or before now (forgetting due
 * unreferenced entities on the way): true with *job filled, or false when
 * nothing is due.
 */
bool tracker_pop_due(tracker *t, int64_t now, struct tracker_job *job);

/* Records a job's result: 0, or -ESTALE when handle/attempt is not
 * SCANNING (nothing changes then). */
int tracker_complete(tracker *t, uint32_t handle, uint32_t attempt,
    const struct tracker_result *r, int64_t now, struct tracker_outcome *out);

/* SCANNING -> QUEUED due now, attempts unchanged: 0, or -ESTALE. */
int tracker_requeue(tracker *t, uint32_t handle, int64_t now);

/* The handle of key, or TRACKER_NONE. */
uint32_t tracker_find(const tracker *t, const struct tracker_key *key);
/* A picture of live entry handle: 0, or -ENOENT for no such entry. */
int tracker_info_get(const tracker *t, uint32_t handle,
    struct tracker_info *info);
/* Calls fn for each source record of handle, in source-name order: 0, or
 * -ENOENT for no such entry. */
int tracker_sources(const tracker *t, uint32_t handle,
    void (*fn)(void *ctx, const struct tracker_source_info *s), void *ctx);
/* The entity's id as users write it ("sha256:..." or the host name). */
void tracker_id_string(const tracker *t, uint32_t handle, char *buf,
    size_t buflen);

size_t tracker_count(const tracker *t);
void tracker_stats(const tracker *t, struct tracker_stats *s);
size_t tracker_count_state(const tracker *t, enum entry_state s);
size_t tracker_heap_size(const tracker *t);
/* Calls fn for every live handle. */
void tracker_foreach(const tracker *t, void (*fn)(void *ctx, uint32_t handle),
    void *ctx);

/*
 * Listing a page at a time (the status page): handles are slots of the
 * entry pool, and slot order is the one order the tracker can resume
 * cheaply. tracker_page examines the slots from `from` on, at most
 * max_slots of them, and stores the live handles it meets in out, at most
 * max; it returns how many it stored and sets *next to the first slot it
 * did not examine (tracker_slots(t) when it reached the end). The order
 * is stable while entities stay tracked; a new entity may take a freed
 * slot anywhere (the most recently freed first), so a listing that goes
 * on across changes may miss entities added meanwhile, never repeats one.
 */
size_t tracker_page(const tracker *t, uint32_t from, size_t max_slots,
    uint32_t *out, size_t max, uint32_t *next);
/* Slots ever used: every handle is below this. */
uint32_t tracker_slots(const tracker *t);

/* ---- durability and partitions (records: tracker_record.h) ---- */

/* Makes room in the map for n more entries (a loader that knows how many
 * are coming). */
void tracker_reserve(tracker *t, size_t n);

/* A deleted record: where it was stored. */
struct tracker_del {
	int32_t partition;
	struct tracker_key key;
};

/*
 * Dirty set: changed entries and deleted (partition, key)s since the last
 * clear. The callbacks return 0 to go on, or a negative errno that stops
 * the visit.
 */
typedef int (*tracker_put_fn)(void *ctx, uint32_t handle);
typedef int (*tracker_del_fn)(void *ctx, int32_t partition,
    const struct tracker_key *key);
/*
 * Visits every deletion, then every dirty live entry (each once; read its
 * partition and key with tracker_info_get): 0, or the first callback
 * error. Applying the visits in order gives the store the tracker's state;
 * a deletion of a (partition, key) that a put of the same visit writes
 * again is skipped.
 */
int tracker_foreach_dirty(const tracker *t, tracker_put_fn put,
    tracker_del_fn del, void *ctx);
size_t tracker_dirty_count(const tracker *t);
void tracker_clear_dirty(tracker *t);

/*
 * Drops every entry of partition from memory (map, heap, pool, blobs) and
 * returns how many there were. Nothing is marked dirty: their records stay
 * in the store (and the changelog), to be loaded again when the partition
 * comes back. Preconditions (the caller's): the dirty set was committed
 * (a dirty entry of the partition would lose its change; its pending
 * deletions are still written), and no job of these entries is in flight
 * (their handles are reused).
 */
size_t tracker_release_partition(tracker *t, int32_t partition);
/* Marks every live entry of partition dirty, so that the next commit
 * writes (and publishes) each again: returns how many. O(entries). */
size_t tracker_touch_partition(tracker *t, int32_t partition);
/* The number of live entries of partition. O(entries). */
size_t tracker_count_partition(const tracker *t, int32_t partition);

/* Checks every internal invariant (map, heap, states vs heap membership,
 * counters): 0, or -EINVAL with what is wrong in err. For tests and
 * debug builds. */
int tracker_check(const tracker *t, char *err, size_t errlen);

const char *tracker_apply_name(enum apply_result r);

#endif
