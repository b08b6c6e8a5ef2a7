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
#include "service/config.h"
#include "service/http.h"
#include "service/kafkaio.h"
#include "service/outbox.h"
#include "service/publish.h"
#include "service/views.h"
#include "store/store.h"
#include "util/arena.h"
#include "wire/wire.h"

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

struct engine {
	const struct sbomd_config *cfg;
	volatile sig_atomic_t *stop;
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
	int64_t last_commit_fail_log;

	/* what operators see: snap is the one set of counters and gauges;
	 * the HTTP thread gets copies of it through pub */
	struct snapshot *snap;
	struct publish pub;
	http_server *http;
	int64_t last_publish;
	struct recent_outcomes recent;
};

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
void scans_free(engine *e);

/* outcomes.c */
struct refs *outcomes_refs(engine *e, uint32_t handle);
void outcomes_emit(engine *e, const struct tracker_outcome *o,
    const struct scan_result *res, int64_t now);
void outcomes_dead_letter(engine *e, const rd_kafka_message_t *m,
    const char *why);

#endif
