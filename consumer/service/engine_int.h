/*
 * engine_int: the engine's state, shared by the files of the engine and
 * nothing else: engine.c (set-up, the loop, commits, shutdown), ingest.c
 * (input batches), scans.c (jobs in the scan pool) and outcomes.c (what
 * goes to the outbox). See engine.c for the loop and docs/architecture.md
 * for the data flow.
 *
 * Concurrency: every field belongs to the engine thread, except `pub`
 * (publish.h's mutex) which the HTTP thread shares.
 */
#ifndef SBOMD_SERVICE_ENGINE_INT_H
#define SBOMD_SERVICE_ENGINE_INT_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"
#include "scan/backend.h"
#include "scan/pool.h"
#include "service/committer.h"
#include "service/config.h"
#include "service/http.h"
#include "service/kafkaio.h"
#include "service/outbox.h"
#include "service/publish.h"
#include "service/views.h"
#include "store/store.h"
#include "util/arena.h"
#include "wire/wire.h"
#include "wire/writers.h"

/* The refs of one entity, all holding sources merged (outcomes, jobs). */
struct refs {
	const char *tags[WIRE_MAX_REFS];
	size_t tag_lens[WIRE_MAX_REFS];
	size_t ntags;
	const char *digests[WIRE_MAX_REFS];
	size_t digest_lens[WIRE_MAX_REFS];
	size_t ndigests;
};

/*
 * Jobs in the pool. Job id = (sequence << 32) | handle. At most one job
 * per entity is in the pool (tracker.h "Jobs"): an entity popped while its
 * previous, aborted job is still running waits in `deferred` until that
 * job is back.
 */
struct jobs {
	uint64_t seq;
	uint64_t *of;	    /* by handle: the job in the pool, 0 = none */
	uint8_t *cancelled; /* by handle: that job was aborted by CANCEL */
	size_t cap;	    /* of `of` and `cancelled` */
	size_t in_pool;
	struct tracker_job *deferred;
	size_t ndeferred, deferred_cap;
};

typedef struct engine engine;

/* A changelog checkpoint waiting for the next commit (ownership.c). */
struct own_meta {
	int32_t partition;
	char name[48];
	uint8_t value[8];
};

/* A partition, for this instance (ownership.c). */
enum own_state {
	OWN_NONE = 0, /* not ours: nothing of it in memory */
	OWN_OWNED,    /* assigned and restored */
	OWN_LOST      /* the group session expired: its entities stay in
		       * memory and are scanned; changelog records are
		       * kept back until it is assigned again */
};

/* ownership.c: the partitions this instance works on. */
/* ownership.c: the records a replay of one partition has staged: entries
 * (sorted: in key order, the newest record of each key only) and the
 * bytes of their records. */
struct replay_batch {
	struct store_entry *ents;
	size_t nents, cap;
	size_t nbytes; /* of records */
	bool sorted;
	struct arena bytes;
};

struct ownership {
	bool on;	  /* state.changelog_topic is set */
	int32_t npart;	  /* the input topic's partitions (with a changelog) */
	uint8_t *owned;	  /* by partition: enum own_state */
	int64_t *ckpt;	  /* by partition: changelog checkpoint, -1 none */
	size_t cap;	  /* of owned and ckpt */
	struct changelog_reader *reader;
	char instance[256]; /* the sbomd-instance header of our records */
	bool warned_lone;
	struct own_meta *meta; /* checkpoints for the next commit */
	struct store_meta *metas;
	size_t nmeta, meta_cap;
	struct replay_batch batch; /* a replay's staged records */
	char fatal[640];	  /* set: the engine stops with this error */
};

/* txn.c: exactly-once commits. */
struct txn_state {
	bool on;	  /* kafka.delivery = "exactly-once" */
	bool kafka_done;  /* the transaction committed; LMDB is next */
	size_t nentries;  /* of e->dirty, for that LMDB commit */
};

struct engine {
	int64_t shutdown_deadline; /* clock_mono_ms; 0 until shutdown */
	const struct sbomd_config *cfg;
	volatile sig_atomic_t *stop;
	struct clock_watch clock; /* now: engine_now */
	tracker *t;
	store *st;
	kio *k;
	outbox *ob;
	bool paused;
	int wake[2]; /* librdkafka queue events and HTTP requests -> poll */

	/* scans.c */
	const struct scan_backend *backend;
	void *bctx;
	scan_pool *pool;
	struct jobs jobs;

	/* ingest.c: input batch scratch */
	struct wire_config wcfg;
	uint32_t *schema_ids;
	wire_writers *writers; /* kafka.writer_schemas_dir; NULL = none */
	struct wire_event *ev; /* decode scratch (large) */
	rd_kafka_message_t **msgs;
	struct tracker_event *tev;
	struct tracker_batch_item *items;
	size_t *item_msg; /* item -> message index */
	struct arena batch; /* the batch's strings */

	/* outcomes.c */
	struct wire_frame oframe;
	struct wire_outcome *wo;
	struct wire_buf wbuf;
	struct refs refs;     /* one entity's refs, reused */
	struct arena scratch; /* their strings, reset after each use */

	/* group commit */
	int64_t first_change_ms; /* mono ms of the oldest uncommitted
				  * change, 0 when nothing waits */
	size_t uncommitted;	 /* events applied since the last commit */
	int64_t commit_started_ms; /* mono ms the last commit started */
	bool behind;		 /* the input is engine.batch_max events or
				  * more behind its end (commit_due) */
	int64_t last_commit_fail_log;

	struct ownership own;
	struct store_dirty dirty; /* the commit's encoded entries */
	/* at-least-once: the group commit runs in the background
	 * (committer.h) on cm_batch, whose entries are in dirty_spare */
	committer *cm;
	struct store_batch cm_batch;
	struct store_dirty dirty_spare;
	int64_t cm_t0; /* mono us when it was handed over */
	struct txn_state txn;

	/* what operators see: snap is the one set of counters and gauges;
	 * the HTTP thread gets copies of it through pub */
	struct snapshot *snap;
	struct publish pub;
	http_server *http;
	int64_t last_publish;
	struct recent_outcomes recent;
};

/* engine.c: publishes a snapshot now (long operations call it); commits
 * what waits, retrying while the store refuses (0, or the error once
 * stop is set). */
void engine_publish(engine *e);
int engine_commit_now(engine *e, char *err, size_t errlen);
/* Waits for the commit running in the background, if any, and finishes
 * it: before anything reads or writes the store, or looks at the outbox
 * or the sealed offsets as a whole (a rebalance). */
void engine_commit_settle(engine *e);
/* Reads the store's outbox records into the outbox again (after
 * outbox_reset). */
void engine_reload_outbox(engine *e);

/* txn.c: the commit in exactly-once mode: 0 (also when the transaction
 * was aborted and everything rewound), or a negative errno with err (the
 * store refused: retried; fatal Kafka error; stop). */
int txn_commit(engine *e, char *err, size_t errlen);

/* ownership.c */
int own_open(engine *e, char *err, size_t errlen);
void own_close(engine *e);
bool own_partition(const engine *e, int32_t p);
bool own_may_produce(void *ctx, int32_t p);
void own_assigned(void *ctx, const rd_kafka_topic_partition_list_t *parts);
void own_revoking(void *ctx, const rd_kafka_topic_partition_list_t *parts,
    bool lost);
/* The changelog record (outbox kind 'C', malloc'd, *len bytes) of an
 * entry as committed: its record, or a tombstone when se->rec is NULL. */
uint8_t *own_changelog_record(const struct store_entry *se, size_t *len);
/* Stages the changelog records of a commit's entries (of our partitions):
 * returns how many. */
size_t own_stage_changes(engine *e, const struct store_entry *ents,
    size_t n);
/* Adds the acknowledged checkpoints to b's meta; own_committed after the
 * commit succeeded. */
void own_commit_meta(engine *e, struct store_batch *b);
void own_committed(engine *e);
void own_snapshot(const engine *e, struct snapshot *s);
/* Exactly-once: what memory holds beyond Kafka's last transaction is
 * undone. Every partition's scans are aborted and its entities dropped;
 * the partitions still assigned, except those in gone, are restored from
 * LMDB and the changelog and their input read again from the committed
 * offsets. */
void own_rewind(engine *e, const rd_kafka_topic_partition_list_t *gone);

/* ingest.c: takes up to engine.batch_max messages and applies them;
 * returns how many were taken. */
size_t ingest_batch(engine *e, int64_t now);

/* scans.c */
int scans_open(engine *e, char *err, size_t errlen);
void scans_dispatch(engine *e, int64_t now);
void scans_complete(engine *e, int64_t now);
void scans_abort(engine *e, uint32_t handle);
bool scans_running(const engine *e, uint32_t handle);
void scans_requeue_deferred(engine *e, int64_t now);
/* Partition p is revoked: its entities' jobs are aborted and forgotten
 * (their completions are ignored; the entities are QUEUED again, no
 * attempt counted), deferred ones dropped. */
void scans_release_partition(engine *e, int32_t p, int64_t now);
void scans_free(engine *e);

/* outcomes.c */
struct refs *outcomes_refs(engine *e, uint32_t handle);
void outcomes_emit(engine *e, const struct tracker_outcome *o,
    const struct scan_result *res, int64_t now);
void outcomes_dead_letter(engine *e, const rd_kafka_message_t *m,
    const char *why);

/* The wall time now, for the tracker and everything it schedules; a jump
 * of the wall clock moves the due times with it (tracker_clock_now),
 * logged and counted. Engine thread. */
int64_t engine_now(engine *e);

#endif
