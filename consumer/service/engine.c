/*
 * engine: the service loop of `sbomd run` (DESIGN.md "Data flow").
 *
 * One thread, the engine thread, owns the tracker, the store, the Kafka
 * handles and the outbox queue. Each iteration:
 *
 *   1. serves the producer's delivery reports (outbox items in Kafka are
 *      deleted with the next commit);
 *   2. takes the scan pool's completions: tracker_complete, outcome;
 *   3. takes a batch of input messages (up to engine.batch_max), decodes
 *      them (undecodable or invalid ones become dead letters), applies the
 *      batch to the tracker: outcomes (CANCELLED), aborts of running scans;
 *   4. pops due entities into scan jobs while the pool has room;
 *   5. commits everything since the last commit in ONE LMDB transaction
 *      (the tracker's dirty entries, the new outbox items: outcomes and
 *      dead letters, the deletion of delivered ones), at most
 *      COMMIT_EVERY_MS after the first of those changes or once
 *      engine.batch_max events wait (group commit across iterations);
 *   6. only then stores those events' offsets (offset + 1 per partition;
 *      auto-commit sends them to the group every second) and produces the
 *      new outbox items.
 * A crash anywhere loses nothing: an event whose offset was stored has its
 * effect in the store; an outcome in the store is re-sent after a restart
 * until its delivery report arrives (at-least-once; consumers dedupe by
 * (id, attempt, status)).
 *
 * Waiting: poll(2) on a pipe that librdkafka writes to when the consumer
 * or producer queue becomes non-empty and on the pool's wakeup fd, with a
 * timeout of the time until the next heap entry is due, capped at 100 ms.
 *
 * Backpressure: when the outbox holds more than engine.max_outbox items
 * or the heap more than engine.max_pending entries, the assigned
 * partitions are paused; they resume below 90% of both. At most 2 x
 * scan.workers jobs are in the pool at a time; the rest wait in the heap.
 *
 * Jobs: job id = (sequence << 32) | handle. At most one job per entity is
 * in the pool (tracker.h "Jobs"): an entity popped while its previous,
 * aborted job is still running waits in `deferred` until that job is back.
 *
 * Rebalances: revoked partitions' stored offsets are committed before
 * they are given up; new assignments are paused too while input is paused.
 *
 * Shutdown (stop set): stop fetching, abort running scans (they go back
 * to QUEUED with their attempt unchanged), commit, drain the outbox for
 * up to engine.shutdown_timeout, commit the stored offsets, close.
 */
#define _GNU_SOURCE /* pipe2 */
#include "service/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/tracker.h"
#include "kafka/kclient.h"
#include "scan/backend.h"
#include "scan/pool.h"
#include "service/http.h"
#include "service/log.h"
#include "service/publish.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/duration.h"
#include "util/xmalloc.h"
#include "wire/wire.h"

#define WAIT_CAP_MS 100
#define RECENT_MAX 20	  /* outcomes shown on /status */
#define PUBLISH_EVERY_MS 250
/* Group commit: the changes of several loop iterations share one durable
 * transaction, committed this long after the first of them at the
 * latest (or at engine.batch_max events): one fdatasync per 10 ms under
 * load instead of one per poll. The latency it adds to an outcome is at
 * most this. */
#define COMMIT_EVERY_MS 10
#define COMMIT_RETRY_MS 1000

/* ---- the outbox queue --------------------------------------------------- */

/*
 * Outbox records (the store's outbox values), first byte the kind:
 *   'O' u16 keylen | key | value                 an outcome
 *   'D' u16 keylen | key | u16 errlen | error | u16 topiclen | topic |
 *       u32 partition | u64 offset | value       a dead letter
 * All integers big-endian.
 */
struct ob_item {
	uint64_t seq;
	uint8_t *rec; /* owned */
	size_t len;
	bool in_kafka; /* delivered; deleted with the next commit */
	bool produced; /* handed to librdkafka, report pending */
};

struct obq {
	struct ob_item *v;
	size_t head, n, cap; /* live items are v[head..n) in seq order */
	size_t live;	     /* not yet delivered */
};

static void
obq_push(struct obq *q, uint64_t seq, uint8_t *rec, size_t len)
{
	if (q->n == q->cap) {
		if (q->head > 0) {
			memmove(q->v, q->v + q->head,
			    (q->n - q->head) * sizeof(*q->v));
			q->n -= q->head;
			q->head = 0;
		}
		if (q->n == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 1024;
			q->v = xreallocarray(q->v, q->cap, sizeof(*q->v));
		}
	}
	q->v[q->n++] = (struct ob_item){ seq, rec, len, false, false };
	q->live++;
}

static struct ob_item *
obq_find(struct obq *q, uint64_t seq)
{
	size_t lo = q->head, hi = q->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->n && q->v[lo].seq == seq ? &q->v[lo] : NULL;
}

static void
obq_trim(struct obq *q)
{
	while (q->head < q->n && q->v[q->head].in_kafka)
		q->head++;
	if (q->head == q->n)
		q->head = q->n = 0;
}

static void
obq_free(struct obq *q)
{
	for (size_t i = q->head; i < q->n; i++)
		free(q->v[i].rec);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

static void
be16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint64_t
rd_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- a batch arena: strings of events, never moved ------------------ */

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	char data[];
};

struct arena {
	struct arena_block *head;
};

static void *
arena_alloc(struct arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct arena_block *b = a->head;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > (1u << 20) ? n : (1u << 20);
		b = xmalloc(sizeof(*b) + cap);
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

static char *
arena_str(struct arena *a, struct wire_str s)
{
	char *p = arena_alloc(a, s.len + 1);
	memcpy(p, s.ptr, s.len);
	p[s.len] = '\0';
	return p;
}

/* Keeps the newest block for the next batch, frees the others. */
static void
arena_reset(struct arena *a)
{
	if (a->head == NULL)
		return;
	struct arena_block *b = a->head->next;
	while (b != NULL) {
		struct arena_block *nx = b->next;
		free(b);
		b = nx;
	}
	a->head->next = NULL;
	a->head->used = 0;
}

static void
arena_free(struct arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
}

/* ---- the engine ------------------------------------------------------ */

struct deferred {
	struct tracker_job job;
};

struct pending_rec {
	uint8_t *rec;
	size_t len;
};

struct part_off {
	char *topic; /* the input topic (not owned) */
	int32_t partition;
	int64_t next; /* offset + 1 of the newest applied message */
};

typedef struct engine {
	const struct sbomd_config *cfg;
	volatile sig_atomic_t *stop;
	tracker *t;
	store *st;
	rd_kafka_t *cons, *prod;
	rd_kafka_queue_t *cq;
	rd_kafka_topic_partition_list_t *assignment;
	bool paused;
	int wake[2]; /* librdkafka queue events -> our poll */

	const struct scan_backend *backend;
	void *bctx;
	scan_pool *pool;
	uint64_t job_seq;
	uint64_t *job_of;    /* by handle: the job in the pool, 0 = none */
	uint8_t *cancel_of;  /* by handle: that job was aborted by CANCEL */
	size_t job_cap;
	size_t in_pool;
	struct deferred *deferred;
	size_t ndeferred, deferred_cap;

	struct wire_config wcfg;
	uint32_t *schema_ids;
	struct wire_frame oframe;
	struct wire_event *ev; /* decode scratch (large) */
	struct wire_outcome *wo;
	struct wire_buf wbuf;

	/* this iteration's changes, committed together */
	struct pending_rec *adds;
	size_t nadds, adds_cap;
	uint64_t *dels;
	size_t ndels, dels_cap;
	struct part_off *offs;
	size_t noffs, offs_cap;

	struct obq ob;
	bool fatal;
	char fatal_why[640];

	/* batch scratch */
	rd_kafka_message_t **msgs;
	struct tracker_event *tev;
	struct tracker_batch_item *items;
	size_t *item_msg; /* item -> message index */
	struct arena arena;
	struct arena scratch; /* refs of one outcome or job, reset after */
	struct refs *refs;    /* the same, reused */

	struct engine_stats stats;
	int64_t last_commit_fail_log;
	int64_t first_change_ms; /* mono ms of the oldest uncommitted change,
				  * 0 when nothing waits */
	size_t uncommitted;	 /* events applied since the last commit */

	/* what the HTTP thread sees (publish.h) */
	struct publish pub;
	http_server *http;
	struct snapshot *snap;	  /* the engine's working copy */
	int64_t last_publish;
	bool recovered;
	struct recent {
		char id[80];
		int status;
		uint32_t attempt;
		int64_t next;
		int64_t at;
		char error[200];
	} recent[RECENT_MAX];
	size_t nrecent, recent_next;
} engine;

static void
add_rec(engine *e, uint8_t *rec, size_t len)
{
	if (e->nadds == e->adds_cap) {
		e->adds_cap = e->adds_cap ? e->adds_cap * 2 : 64;
		e->adds = xreallocarray(e->adds, e->adds_cap,
		    sizeof(*e->adds));
	}
	e->adds[e->nadds++] = (struct pending_rec){ rec, len };
}

static void
job_table_grow(engine *e, uint32_t handle)
{
	if (handle < e->job_cap)
		return;
	size_t cap = e->job_cap ? e->job_cap : 1024;
	while (cap <= handle)
		cap *= 2;
	e->job_of = xreallocarray(e->job_of, cap, sizeof(*e->job_of));
	e->cancel_of = xreallocarray(e->cancel_of, cap, 1);
	memset(e->job_of + e->job_cap, 0,
	    (cap - e->job_cap) * sizeof(*e->job_of));
	memset(e->cancel_of + e->job_cap, 0, cap - e->job_cap);
	e->job_cap = cap;
}

/* ---- outcomes ---------------------------------------------------------- */

struct refs {
	const char *tags[WIRE_MAX_REFS];
	size_t tag_lens[WIRE_MAX_REFS];
	size_t ntags;
	const char *digests[WIRE_MAX_REFS];
	size_t digest_lens[WIRE_MAX_REFS];
	size_t ndigests;
	struct arena *arena;
};

/* The engine's reusable refs collector, emptied. */
static struct refs *
refs_begin(engine *e)
{
	if (e->refs == NULL)
		e->refs = xmalloc(sizeof(*e->refs));
	e->refs->ntags = e->refs->ndigests = 0;
	e->refs->arena = &e->scratch;
	return e->refs;
}

static void
refs_add(const char **v, size_t *lens, size_t *n, const char *s, size_t len,
    struct arena *a)
{
	for (size_t i = 0; i < *n; i++)
		if (lens[i] == len && memcmp(v[i], s, len) == 0)
			return;
	if (*n >= WIRE_MAX_REFS)
		return;
	char *c = arena_alloc(a, len + 1);
	memcpy(c, s, len);
	c[len] = '\0';
	v[*n] = c;
	lens[(*n)++] = len;
}

static void
refs_collect(void *ctx, const struct tracker_source_info *si)
{
	struct refs *r = ctx;
	if (!si->holding)
		return;
	for (size_t i = 0; i < si->ntags; i++)
		refs_add(r->tags, r->tag_lens, &r->ntags, si->tags[i],
		    si->tag_lens[i], r->arena);
	for (size_t i = 0; i < si->ndigests; i++)
		refs_add(r->digests, r->digest_lens, &r->ndigests,
		    si->digests[i], si->digest_lens[i], r->arena);
}

static const char *const status_names[] = { "SUCCEEDED", "RETRY_SCHEDULED",
	"FAILED", "CANCELLED" };

/* Encodes the outcome into a new outbox record (pending commit) and logs
 * it. res: the scan's result, or NULL (CANCELLED). */
static void
emit_outcome(engine *e, const struct tracker_outcome *o,
    const struct scan_job_result *res, int64_t now)
{
	struct wire_outcome *w = e->wo;
	char id[300], err[256];
	struct refs *r = refs_begin(e);

	tracker_id_string(e->t, o->handle, id, sizeof(id));
	tracker_sources(e->t, o->handle, refs_collect, r);

	memset(w, 0, offsetof(struct wire_outcome, repo_tags));
	w->id = wire_str_c(id);
	w->kind = o->key.kind == ENTITY_HOST ? ENTITY_HOST :
					       ENTITY_IMAGE;
	w->status = (enum outcome_status)o->status;
	w->attempt = (int32_t)o->attempt;
	if (o->next_attempt_at >= 0) {
		w->has_next_attempt_at = 1;
		w->next_attempt_at = o->next_attempt_at;
	}
	/* The error text: the tracker's copy (sanitised on the way in). */
	char *etext = NULL;
	if (o->error != NULL) {
		etext = xstrdup(o->error);
		wire_utf8_sanitize(etext, strlen(etext));
		w->has_error = 1;
		w->error = wire_str_c(etext);
	}
	if (o->error_class >= 0) {
		w->has_error_class = 1;
		w->error_class = (enum error_class)o->error_class;
	}
	w->scanner = wire_str_c(config_backend_name(e->cfg->scan.backend));
	if (res != NULL) {
		w->has_started_at = 1;
		w->started_at = res->started_at_ms;
		w->has_duration_ms = 1;
		w->duration_ms = res->duration_ms;
		if (o->status == OUTCOME_SUCCEEDED && res->sbom != NULL) {
			w->has_sbom = 1;
			w->sbom.format = wire_str_c("CycloneDX");
			w->sbom.spec_version = wire_str_c("1.5");
			w->sbom.component_count = (int32_t)(res->components >
				INT32_MAX ? INT32_MAX : res->components);
			w->sbom.content = (const uint8_t *)res->sbom;
			w->sbom.content_len = res->sbom_len;
		}
	}
	w->ntags = r->ntags;
	for (size_t i = 0; i < r->ntags; i++)
		w->repo_tags[i] = (struct wire_str){ r->tags[i],
			r->tag_lens[i] };
	w->ndigests = r->ndigests;
	for (size_t i = 0; i < r->ndigests; i++)
		w->repo_digests[i] = (struct wire_str){ r->digests[i],
			r->digest_lens[i] };
	w->emitted_at = now;

	if (wire_outcome_encode(w, &e->oframe, &e->wbuf, err, sizeof(err)) !=
	    0) {
		/* Never expected: our own values. Publish without the refs
		 * and SBOM rather than lose the outcome. */
		log_kv(LOG_ERROR, "cannot encode outcome", "id", id, "error",
		    err, (char *)NULL);
		w->ntags = w->ndigests = 0;
		w->has_sbom = 0;
		if (wire_outcome_encode(w, &e->oframe, &e->wbuf, err,
			sizeof(err)) != 0)
			goto out;
	}
	size_t klen = strlen(id);
	uint8_t *rec = xmalloc(3 + klen + e->wbuf.len);
	rec[0] = 'O';
	be16(rec + 1, klen);
	memcpy(rec + 3, id, klen);
	memcpy(rec + 3 + klen, e->wbuf.data, e->wbuf.len);
	add_rec(e, rec, 3 + klen + e->wbuf.len);
	e->stats.outcomes[o->status]++;
	e->snap->outcomes[o->status]++;
	{
		struct recent *rc = &e->recent[e->recent_next];
		e->recent_next = (e->recent_next + 1) % RECENT_MAX;
		if (e->nrecent < RECENT_MAX)
			e->nrecent++;
		snprintf(rc->id, sizeof(rc->id), "%.79s", id);
		rc->status = (int)o->status;
		rc->attempt = o->attempt;
		rc->next = o->next_attempt_at;
		rc->at = now;
		snprintf(rc->error, sizeof(rc->error), "%s",
		    etext ? etext : "");
	}

	if (log_enabled(LOG_INFO)) {
		char att[16], next[64], dur[24];
		snprintf(att, sizeof(att), "%u", o->attempt);
		clock_format(o->next_attempt_at, next, sizeof(next));
		snprintf(dur, sizeof(dur), "%" PRId64,
		    res ? res->duration_ms : 0);
		log_kv(o->status == OUTCOME_FAILED ? LOG_WARN : LOG_INFO,
		    "outcome", "id", id, "status", status_names[o->status],
		    "attempt", att, "next_attempt_at", next, "duration_ms",
		    dur, "error_class",
		    o->error_class < 0 ? "" :
		    o->error_class == ERROR_RETRYABLE ? "RETRYABLE" :
							"PERMANENT",
		    "error", etext ? etext : "", (char *)NULL);
	}
out:
	free(etext);
	arena_reset(&e->scratch);
}

/* A dead letter: the original message with why it was refused. */
static void
dead_letter(engine *e, const rd_kafka_message_t *m, const char *why)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	e->stats.dead_lettered++;
	char part[16], off[24];
	snprintf(part, sizeof(part), "%" PRId32, m->partition);
	snprintf(off, sizeof(off), "%" PRId64, m->offset);
	log_kv(LOG_WARN, "dead letter", "topic", topic, "partition", part,
	    "offset", off, "error", why, (char *)NULL);
	if (e->cfg->kafka.dead_letter_topic[0] == '\0')
		return;
	size_t klen = m->key_len > 65535 ? 0 : m->key_len;
	size_t elen = strnlen(why, 65535), tlen = strnlen(topic, 65535);
	size_t len = 1 + 2 + klen + 2 + elen + 2 + tlen + 4 + 8 + m->len;
	uint8_t *rec = xmalloc(len), *p = rec;
	*p++ = 'D';
	be16(p, klen), p += 2;
	if (klen)
		memcpy(p, m->key, klen), p += klen;
	be16(p, elen), p += 2;
	memcpy(p, why, elen), p += elen;
	be16(p, tlen), p += 2;
	memcpy(p, topic, tlen), p += tlen;
	for (int i = 3; i >= 0; i--)
		*p++ = (uint8_t)((uint32_t)m->partition >> (8 * i));
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)((uint64_t)m->offset >> (8 * i));
	if (m->len)
		memcpy(p, m->payload, m->len);
	add_rec(e, rec, len);
}

/* ---- producing ------------------------------------------------------- */

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	engine *e = opaque;
	uint64_t seq = (uint64_t)(uintptr_t)m->_private;
	struct ob_item *it = obq_find(&e->ob, seq);
	if (it == NULL)
		return;
	it->produced = false;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		it->in_kafka = true;
		free(it->rec);
		it->rec = NULL;
		e->ob.live--;
		e->stats.delivered++;
		e->snap->delivered++;
		if (e->ndels == e->dels_cap) {
			e->dels_cap = e->dels_cap ? e->dels_cap * 2 : 256;
			e->dels = xreallocarray(e->dels, e->dels_cap,
			    sizeof(*e->dels));
		}
		e->dels[e->ndels++] = seq;
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		return; /* shutting down: the outbox keeps it */
	e->stats.produce_errors++;
	e->snap->produce_errors++;
	log_kv(LOG_WARN, "delivery failed, will retry", "error",
	    rd_kafka_err2str(m->err), (char *)NULL);
}

/* librdkafka's own log lines (any of its threads) in our format. */
static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN :
	    level <= 6 ? LOG_INFO : LOG_DEBUG;
	log_kv(l, "librdkafka", "client", rd_kafka_name(rk), "facility", fac,
	    "error", buf, (char *)NULL);
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	engine *e = opaque;
	char buf[512];
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		snprintf(e->fatal_why, sizeof(e->fatal_why),
		    "fatal Kafka error: %s", buf);
		e->fatal = true;
		return;
	}
	log_kv(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
		   err == RD_KAFKA_RESP_ERR__TRANSPORT ? LOG_WARN : LOG_INFO,
	    "kafka", "client", rd_kafka_name(rk), "error",
	    rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason,
	    (char *)NULL);
}

/* Hands every delivered-or-not item that is not with librdkafka to it. */
static void
produce_pending(engine *e)
{
	for (size_t i = e->ob.head; i < e->ob.n; i++) {
		struct ob_item *it = &e->ob.v[i];
		if (it->in_kafka || it->produced)
			continue;
		const uint8_t *p = it->rec;
		size_t klen = (size_t)rd_be(p + 1, 2);
		const uint8_t *key = p + 3;
		const char *topic = e->cfg->kafka.output_topic;
		const uint8_t *val = p + 3 + klen;
		rd_kafka_headers_t *hdrs = NULL;
		if (p[0] == 'D') {
			const uint8_t *q = p + 3 + klen;
			size_t elen = (size_t)rd_be(q, 2);
			const char *why = (const char *)q + 2;
			q += 2 + elen;
			size_t tlen = (size_t)rd_be(q, 2);
			const char *src = (const char *)q + 2;
			q += 2 + tlen;
			char part[16], off[24];
			snprintf(part, sizeof(part), "%" PRIu64, rd_be(q, 4));
			snprintf(off, sizeof(off), "%" PRIu64, rd_be(q + 4, 8));
			val = q + 12;
			hdrs = rd_kafka_headers_new(4);
			rd_kafka_header_add(hdrs, "sbomd.error", -1, why,
			    (ssize_t)elen);
			rd_kafka_header_add(hdrs, "sbomd.topic", -1, src,
			    (ssize_t)tlen);
			rd_kafka_header_add(hdrs, "sbomd.partition", -1, part,
			    -1);
			rd_kafka_header_add(hdrs, "sbomd.offset", -1, off, -1);
			topic = e->cfg->kafka.dead_letter_topic;
		}
		size_t vlen = it->len - (size_t)(val - p);
		rd_kafka_resp_err_t rc = rd_kafka_producev(e->prod,
		    RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(klen ? key : NULL, klen),
		    RD_KAFKA_V_VALUE((void *)val, vlen),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)it->seq),
		    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
		if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (hdrs)
				rd_kafka_headers_destroy(hdrs);
			if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				e->stats.produce_errors++;
				e->snap->produce_errors++;
				log_kv(LOG_ERROR, "produce failed", "topic",
				    topic, "error", rd_kafka_err2str(rc),
				    (char *)NULL);
			}
			break; /* try again next iteration */
		}
		it->produced = true;
	}
}

/* ---- committing --------------------------------------------------------- */

static int
commit(engine *e, char *err, size_t errlen)
{
	if (e->nadds == 0 && e->ndels == 0 && tracker_dirty_count(e->t) == 0)
		return 0;
	struct store_blob *blobs = NULL;
	uint64_t *seqs = NULL;
	if (e->nadds > 0) {
		blobs = xcalloc(e->nadds, sizeof(*blobs));
		seqs = xcalloc(e->nadds, sizeof(*seqs));
		for (size_t i = 0; i < e->nadds; i++)
			blobs[i] = (struct store_blob){ e->adds[i].rec,
				e->adds[i].len };
	}
	struct store_batch b = {
		.outbox_add = blobs,
		.noutbox_add = e->nadds,
		.outbox_seqs = seqs,
		.outbox_del = e->dels,
		.noutbox_del = e->ndels,
	};
	int64_t t0 = clock_mono_us();
	int rc = store_commit(e->st, e->t, &b, err, errlen);
	hist_observe(&e->snap->commit_duration,
	    (double)(clock_mono_us() - t0) / 1e6);
	if (rc == 0) {
		for (size_t i = 0; i < e->nadds; i++)
			obq_push(&e->ob, seqs[i], e->adds[i].rec,
			    e->adds[i].len);
		e->nadds = 0;
		e->ndels = 0;
		obq_trim(&e->ob);
		e->first_change_ms = 0;
		e->uncommitted = 0;
		e->stats.commits++;
		e->snap->commits++;
	} else {
		e->stats.commit_failures++;
		e->snap->commit_failures++;
	}
	free(blobs);
	free(seqs);
	return rc;
}

static void
store_offsets(engine *e)
{
	if (e->noffs == 0)
		return;
	rd_kafka_topic_partition_list_t *l =
	    rd_kafka_topic_partition_list_new((int)e->noffs);
	for (size_t i = 0; i < e->noffs; i++)
		rd_kafka_topic_partition_list_add(l, e->offs[i].topic,
		    e->offs[i].partition)->offset = e->offs[i].next;
	/* Partitions revoked meanwhile are refused: their new owner reads
	 * from the last committed offset (at-least-once). */
	(void)rd_kafka_offsets_store(e->cons, l);
	rd_kafka_topic_partition_list_destroy(l);
	e->noffs = 0;
}

static void
note_offset(engine *e, const rd_kafka_message_t *m)
{
	for (size_t i = 0; i < e->noffs; i++)
		if (e->offs[i].partition == m->partition) {
			if (m->offset + 1 > e->offs[i].next)
				e->offs[i].next = m->offset + 1;
			return;
		}
	if (e->noffs == e->offs_cap) {
		e->offs_cap = e->offs_cap ? e->offs_cap * 2 : 16;
		e->offs = xreallocarray(e->offs, e->offs_cap,
		    sizeof(*e->offs));
	}
	e->offs[e->noffs++] = (struct part_off){ e->cfg->kafka.input_topic,
		m->partition, m->offset + 1 };
}

/* ---- consuming ------------------------------------------------------------ */

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	engine *e = opaque;
	e->stats.rebalances++;
	e->snap->rebalances++;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		if (e->assignment)
			rd_kafka_topic_partition_list_destroy(e->assignment);
		e->assignment = rd_kafka_topic_partition_list_copy(parts);
		if (e->paused)
			rd_kafka_pause_partitions(rk, parts);
		char n[16];
		snprintf(n, sizeof(n), "%d", parts->cnt);
		log_kv(LOG_INFO, "partitions assigned", "count", n,
		    (char *)NULL);
	} else {
		/* Give up nothing uncommitted: what was applied and stored
		 * is committed before the partitions go. */
		rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
		if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
		    cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
			log_kv(LOG_WARN, "commit on revoke failed", "error",
			    rd_kafka_err2str(cerr), (char *)NULL);
		rd_kafka_assign(rk, NULL);
		if (e->assignment)
			rd_kafka_topic_partition_list_destroy(e->assignment);
		e->assignment = NULL;
		log_kv(LOG_INFO, "partitions revoked", (char *)NULL);
	}
}

static void
set_paused(engine *e, bool pause, const char *why)
{
	if (pause == e->paused)
		return;
	e->paused = pause;
	if (pause)
		e->stats.paused++;
	if (e->assignment) {
		if (pause)
			rd_kafka_pause_partitions(e->cons, e->assignment);
		else
			rd_kafka_resume_partitions(e->cons, e->assignment);
	}
	char ob[24], heap[24];
	snprintf(ob, sizeof(ob), "%zu", e->ob.live);
	snprintf(heap, sizeof(heap), "%zu", tracker_heap_size(e->t));
	log_kv(pause && why[0] == 'b' ? LOG_WARN : LOG_INFO,
	    pause ? "input paused" : "input resumed", "reason", why, "outbox",
	    ob, "heap", heap, (char *)NULL);
}

static void
backpressure(engine *e)
{
	size_t ob = e->ob.live, heap = tracker_heap_size(e->t);
	size_t mo = (size_t)e->cfg->engine.max_outbox;
	size_t mp = (size_t)e->cfg->engine.max_pending;
	if (!e->paused && (ob > mo || heap > mp))
		set_paused(e, true, "backpressure");
	else if (e->paused && ob <= mo - mo / 10 && heap <= mp - mp / 10)
		set_paused(e, false, "below the bounds");
}

/* Decodes m into e->tev[i] (strings in the arena); 0, or -1 with why. */
static int
decode(engine *e, const rd_kafka_message_t *m, struct tracker_event *tev,
    char *why, size_t whylen)
{
	struct wire_event *ev = e->ev;
	if (m->payload == NULL || m->len == 0) {
		snprintf(why, whylen, "empty message");
		return -1;
	}
	if (wire_event_decode(m->payload, m->len, &e->wcfg, ev, NULL, why,
		whylen) != 0)
		return -1;
	struct arena *a = &e->arena;
	tev->type = ev->type == EVENT_SET ? EVENT_SET : EVENT_UNSET;
	tev->kind = ev->kind == ENTITY_HOST ? ENTITY_HOST : ENTITY_IMAGE;
	tev->id = arena_str(a, ev->id);
	tev->source = arena_str(a, ev->source);
	const char **tags = NULL, **digs = NULL;
	if (ev->ntags) {
		tags = arena_alloc(a, ev->ntags * sizeof(*tags));
		for (size_t i = 0; i < ev->ntags; i++)
			tags[i] = arena_str(a, ev->repo_tags[i]);
	}
	if (ev->ndigests) {
		digs = arena_alloc(a, ev->ndigests * sizeof(*digs));
		for (size_t i = 0; i < ev->ndigests; i++)
			digs[i] = arena_str(a, ev->repo_digests[i]);
	}
	tev->tags = tags;
	tev->ntags = ev->ntags;
	tev->digests = digs;
	tev->ndigests = ev->ndigests;
	tev->observed_at = ev->observed_at;
	tev->partition = m->partition;
	return 0;
}

static void abort_job(engine *e, uint32_t handle);

/* Takes up to batch_max messages and applies them. Returns the count
 * taken (so the caller knows whether more may be waiting). */
static size_t
consume_batch(engine *e, int64_t now)
{
	size_t max = (size_t)e->cfg->engine.batch_max, n = 0, ni = 0;
	char why[512];

	/* One call takes what the queue holds (serving rebalance and stats
	 * callbacks on the way); errors are dropped from the batch. */
	ssize_t got = rd_kafka_consume_batch_queue(e->cq, 0, e->msgs, max);
	size_t taken = got > 0 ? (size_t)got : 0;
	for (size_t k = 0; k < taken; k++) {
		rd_kafka_message_t *m = e->msgs[k];
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_kv(LOG_WARN, "consumer", "error",
				    rd_kafka_message_errstr(m), (char *)NULL);
			rd_kafka_message_destroy(m);
			continue;
		}
		e->msgs[n] = m;
		e->stats.events++;
		note_offset(e, m);
		if (decode(e, m, &e->tev[ni], why, sizeof(why)) != 0) {
			e->snap->events[EVENTS_UNDECODABLE][EVR_DEAD_LETTERED]++;
			dead_letter(e, m, why);
		} else {
			e->items[ni].ev = &e->tev[ni];
			e->item_msg[ni] = n;
			ni++;
		}
		n++;
	}
	if (ni > 0) {
		tracker_apply_batch(e->t, e->items, ni, now);
		for (size_t i = 0; i < ni; i++) {
			struct tracker_batch_item *it = &e->items[i];
			e->stats.applied[it->result]++;
			int ty = it->ev->type == EVENT_SET ? EVENT_SET : EVENT_UNSET;
			static const int evr[APPLY_RESULT_COUNT] = {
				[APPLY_NEW] = EVR_APPLIED,
				[APPLY_UPDATED] = EVR_APPLIED,
				[APPLY_DEDUP] = EVR_DEDUPLICATED,
				[APPLY_STALE] = EVR_STALE,
				[APPLY_UNKNOWN] = EVR_UNKNOWN_ENTITY,
				[APPLY_INVALID] = EVR_DEAD_LETTERED,
			};
			e->snap->events[ty][evr[it->result]]++;
			if (it->result == APPLY_INVALID) {
				dead_letter(e, e->msgs[e->item_msg[i]],
				    it->err);
				continue;
			}
			if (it->out.status != OUTCOME_NONE) {
				if (it->out.abort_scan)
					abort_job(e, it->out.handle);
				emit_outcome(e, &it->out, NULL, now);
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(e->msgs[i]);
	arena_reset(&e->arena);
	return n;
}

/* ---- scanning --------------------------------------------------------- */

static void
abort_job(engine *e, uint32_t handle)
{
	if (handle >= e->job_cap || e->job_of[handle] == 0)
		return;
	e->cancel_of[handle] = 1;
	(void)scan_pool_abort(e->pool, e->job_of[handle]);
}

static int
submit(engine *e, const struct tracker_job *tj)
{
	char id[300];
	struct refs *r = refs_begin(e);
	tracker_id_string(e->t, tj->handle, id, sizeof(id));
	tracker_sources(e->t, tj->handle, refs_collect, r);
	uint64_t job_id = (++e->job_seq << 32) | tj->handle;
	struct scan_job *job = scan_job_new(job_id,
	    tj->key.kind == ENTITY_HOST ? ENTITY_HOST : ENTITY_IMAGE, id, r->tags,
	    r->ntags, r->digests, r->ndigests, tj->attempt);
	arena_reset(&e->scratch);
	if (scan_pool_submit(e->pool, job) != 0) {
		scan_job_free(job);
		return -1;
	}
	job_table_grow(e, tj->handle);
	e->job_of[tj->handle] = job_id;
	e->cancel_of[tj->handle] = 0;
	e->in_pool++;
	e->stats.scans_started++;
	e->snap->scans_started++;
	char att[16];
	snprintf(att, sizeof(att), "%u", tj->attempt);
	log_kv(LOG_DEBUG, "scan started", "id", id, "attempt", att,
	    (char *)NULL);
	return 0;
}

static void
dispatch(engine *e, int64_t now)
{
	if (e->cfg->scan.backend == CONFIG_BACKEND_NONE)
		return; /* scanning disabled: due entities wait in the heap */
	size_t cap = (size_t)e->cfg->scan.workers * 2;
	struct tracker_job tj;
	while (e->in_pool < cap && tracker_pop_due(e->t, now, &tj) == 1) {
		job_table_grow(e, tj.handle);
		if (e->job_of[tj.handle] != 0) {
			/* Its aborted predecessor is still running. */
			if (e->ndeferred == e->deferred_cap) {
				e->deferred_cap = e->deferred_cap ?
				    e->deferred_cap * 2 : 16;
				e->deferred = xreallocarray(e->deferred,
				    e->deferred_cap, sizeof(*e->deferred));
			}
			e->deferred[e->ndeferred++].job = tj;
			continue;
		}
		if (submit(e, &tj) != 0) {
			(void)tracker_requeue(e->t, tj.handle, now);
			break;
		}
	}
}

static void
completions(engine *e, int64_t now)
{
	struct scan_completion c[32];
	size_t n;
	while ((n = scan_pool_poll(e->pool, c, 32)) > 0) {
		for (size_t i = 0; i < n; i++) {
			uint32_t h = (uint32_t)(c[i].job_id & 0xffffffffu);
			uint32_t attempt = c[i].job->attempt;
			bool cancelled = h < e->job_cap && e->cancel_of[h];
			if (h < e->job_cap && e->job_of[h] == c[i].job_id) {
				e->job_of[h] = 0;
				e->cancel_of[h] = 0;
			}
			e->in_pool--;
			struct scan_job_result *res = &c[i].result;
			if (cancelled) {
				/* CANCELLED already published. */
			} else if (c[i].aborted) {
				(void)tracker_requeue(e->t, h, now);
			} else {
				struct tracker_result tr = {
					.ok = res->rc == 0,
					.error_class = res->error_class ==
						ERROR_PERMANENT ?
					    ERROR_PERMANENT :
					    ERROR_RETRYABLE,
					.error = res->rc == 0 ? NULL :
								res->error,
				};
				struct tracker_outcome out;
				e->stats.scans_finished[res->rc == 0 ? 0 : 1]++;
				e->snap->scans_finished[res->rc == 0 ? 0 :
					res->error_class == ERROR_PERMANENT ? 2 :
									     1]++;
				hist_observe(&e->snap->scan_duration,
				    (double)res->duration_ms / 1000.0);
				if (tracker_complete(e->t, h, attempt, &tr, now,
					&out) == 0 &&
				    out.status != OUTCOME_NONE)
					emit_outcome(e, &out, res, now);
			}
			scan_job_result_free(res);
			scan_job_free(c[i].job);
			/* A job that waited for this one may go now. */
			for (size_t d = 0; d < e->ndeferred; d++) {
				if (e->deferred[d].job.handle != h)
					continue;
				struct tracker_job tj = e->deferred[d].job;
				e->deferred[d] =
				    e->deferred[--e->ndeferred];
				if (submit(e, &tj) != 0)
					(void)tracker_requeue(e->t, h, now);
				break;
			}
		}
	}
}

/* ---- set-up ------------------------------------------------------------------- */

static struct kclient_prop *
props_of(const struct config_props *p)
{
	struct kclient_prop *v = xcalloc(p->n + 1, sizeof(*v));
	for (size_t i = 0; i < p->n; i++)
		v[i] = (struct kclient_prop){ p->v[i].name, p->v[i].value };
	return v;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque);

static int
kafka_open(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *c = e->cfg;
	char maxmsg[24];
	int64_t mm = c->scan.max_sbom_bytes + (1 << 20);
	snprintf(maxmsg, sizeof(maxmsg), "%" PRId64,
	    mm > 1000000000 ? 1000000000 : mm);
	const struct kclient_prop pdef[] = {
		{ "client.id", "sbomd-producer" },
		{ "enable.idempotence", "true" },
		{ "compression.codec", "zstd" },
		{ "linger.ms", "5" },
		{ "message.timeout.ms", "0" }, /* the outbox retries */
		{ "message.max.bytes", maxmsg },
	};
	const struct kclient_prop cdef[] = {
		{ "client.id", "sbomd-consumer" },
		{ "group.id", c->kafka.group_id },
		{ "enable.auto.offset.store", "false" },
		{ "enable.auto.commit", "true" },
		{ "auto.commit.interval.ms", "1000" },
		{ "auto.offset.reset", "earliest" },
		{ "enable.partition.eof", "false" },
		{ "statistics.interval.ms", "5000" }, /* lag for /metrics */
	};
	struct kclient_prop *pp = props_of(&c->kafka.producer_properties);
	struct kclient_prop *cp = props_of(&c->kafka.consumer_properties);
	char why[512];
	int rc = -EINVAL;
	rd_kafka_conf_t *pc = kclient_conf(c->kafka.brokers, pdef,
	    sizeof(pdef) / sizeof(pdef[0]), pp,
	    c->kafka.producer_properties.n, "kafka.producer_properties", err,
	    errlen);
	rd_kafka_conf_t *cc = kclient_conf(c->kafka.brokers, cdef,
	    sizeof(cdef) / sizeof(cdef[0]), cp,
	    c->kafka.consumer_properties.n, "kafka.consumer_properties", err,
	    errlen);
	free(pp);
	free(cp);
	if (pc == NULL || cc == NULL)
		goto out;
	rd_kafka_conf_set_opaque(pc, e);
	rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
	rd_kafka_conf_set_error_cb(pc, error_cb);
	rd_kafka_conf_set_log_cb(pc, kafka_log_cb);
	e->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof(why));
	if (e->prod == NULL) {
		snprintf(err, errlen, "kafka producer: %s", why);
		goto out;
	}
	pc = NULL; /* owned by the producer */
	rd_kafka_conf_set_opaque(cc, e);
	rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
	rd_kafka_conf_set_stats_cb(cc, stats_cb);
	rd_kafka_conf_set_error_cb(cc, error_cb);
	rd_kafka_conf_set_log_cb(cc, kafka_log_cb);
	e->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof(why));
	if (e->cons == NULL) {
		snprintf(err, errlen, "kafka consumer: %s", why);
		goto out;
	}
	cc = NULL;
	rd_kafka_poll_set_consumer(e->cons);
	e->cq = rd_kafka_queue_get_consumer(e->cons);
	rd_kafka_queue_io_event_enable(e->cq, e->wake[1], "c", 1);
	rd_kafka_queue_t *pq = rd_kafka_queue_get_main(e->prod);
	rd_kafka_queue_io_event_enable(pq, e->wake[1], "p", 1);
	rd_kafka_queue_destroy(pq);

	rd_kafka_topic_partition_list_t *sub =
	    rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, c->kafka.input_topic,
	    RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(e->cons, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "subscribing to %s: %s",
		    c->kafka.input_topic, rd_kafka_err2str(kerr));
		goto out;
	}
	rc = 0;
out:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (cc)
		rd_kafka_conf_destroy(cc);
	return rc;
}

static int
load_outbox_item(void *ctx, uint64_t seq, const void *data, size_t len)
{
	engine *e = ctx;
	if (len < 3)
		return 0; /* not ours: leave it */
	uint8_t *rec = xmalloc(len);
	memcpy(rec, data, len);
	obq_push(&e->ob, seq, rec, len);
	return 0;
}

static int
scanner_open(engine *e, char *err, size_t errlen)
{
	const struct sbomd_config *c = e->cfg;
	int rc;
	if (c->scan.backend == CONFIG_BACKEND_EXEC) {
		struct scan_exec_config xc = {
			.argv = (const char *const *)c->scan.exec_argv.v,
			.argc = c->scan.exec_argv.n,
			.retryable_exit_codes =
			    (const int *)c->scan.exec_retryable_exit_codes.v,
			.nretryable = c->scan.exec_retryable_exit_codes.n,
			.max_sbom_bytes = (size_t)c->scan.max_sbom_bytes,
		};
		e->backend = &scan_backend_exec;
		rc = e->backend->init(&xc, &e->bctx, err, errlen);
	} else {
		struct scan_oci_config oc = {
			.stores = (const char *const *)c->scan.stores.v,
			.nstores = c->scan.stores.n,
			.platform = c->scan.platform,
			.host_root = c->scan.host_root,
		};
		e->backend = &scan_backend_oci;
		rc = e->backend->init(&oc, &e->bctx, err, errlen);
	}
	if (rc != 0)
		return rc;
	struct scan_pool_config pc = { c->scan.workers, c->scan.timeout_ms };
	e->pool = scan_pool_new(e->backend, e->bctx, &pc, err, errlen);
	return e->pool ? 0 : -EINVAL;
}

/* ---- what operators see (publish.h) ------------------------------------ */

/* librdkafka statistics (consumer, every statistics.interval.ms, on the
 * engine thread inside consumer_poll): consumer lag per partition. */
static int
stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	engine *e = opaque;
	json_error_t je;
	json_t *root = json_loadb(json, len, 0, &je);
	if (root == NULL)
		return 0;
	json_t *pobj = json_object_get(json_object_get(json_object_get(root,
	    "topics"), e->cfg->kafka.input_topic), "partitions");
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(pobj, k, v) {
		json_int_t pid = json_integer_value(json_object_get(v,
		    "partition"));
		if (pid < 0 || n >= PUB_MAX_PARTITIONS)
			continue;
		const char *fs = json_string_value(json_object_get(v,
		    "fetch_state"));
		if (fs != NULL && strcmp(fs, "none") == 0)
			continue; /* not assigned to us */
		struct part_lag *l = &e->snap->lags[n++];
		l->partition = (int32_t)pid;
		l->lag = json_integer_value(json_object_get(v, "consumer_lag"));
		l->committed = json_integer_value(json_object_get(v,
		    "committed_offset"));
		l->high = json_integer_value(json_object_get(v, "hi_offset"));
	}
	e->snap->nlags = n;
	json_decref(root);
	return 0;
}

static void
publish_snapshot(engine *e, int64_t now)
{
	struct snapshot *s = e->snap;
	s->taken_mono_ms = clock_mono_ms();
	s->recovered = e->recovered;
	s->assigned = e->assignment != NULL && e->assignment->cnt > 0;
	s->paused = e->paused;
	for (int i = 0; i < 5 && e->t != NULL; i++)
		s->by_state[i] = tracker_count_state(e->t, (enum entry_state)i);
	s->heap = e->t ? tracker_heap_size(e->t) : 0;
	int64_t due;
	s->next_due_ms = INT64_MIN;
	s->overdue_ms = 0;
	if (e->t != NULL && tracker_next_due(e->t, &due) == 0 && due >= 0) {
		s->next_due_ms = due - now;
		if (due < now && s->by_state[ENTRY_QUEUED] > 0)
			s->overdue_ms = now - due;
	}
	s->outbox = e->ob.live;
	s->workers_busy = e->pool ? scan_pool_busy(e->pool) : 0;
	s->workers = (uint64_t)e->cfg->scan.workers;
	s->in_pool = e->in_pool;
	s->log_suppressed = log_suppressed();
	snprintf(s->topic, sizeof(s->topic), "%s", e->cfg->kafka.input_topic);
	pthread_mutex_lock(&e->pub.mu);
	e->pub.snap = *s;
	pthread_mutex_unlock(&e->pub.mu);
	e->last_publish = s->taken_mono_ms;
}

static json_t *
json_time(int64_t ms)
{
	if (ms < 0)
		return json_null();
	char b[64];
	clock_format(ms, b, sizeof(b));
	return json_string(b);
}

static void
source_json(void *ctx, const struct tracker_source_info *si)
{
	json_t *arr = ctx, *o = json_object(), *tags = json_array(),
	       *digs = json_array();
	json_object_set_new(o, "source", json_string(si->source));
	json_object_set_new(o, "holding", json_boolean(si->holding));
	json_object_set_new(o, "observed_at", json_time(si->observed_at));
	for (size_t i = 0; i < si->ntags; i++)
		json_array_append_new(tags, json_stringn(si->tags[i],
		    si->tag_lens[i]));
	for (size_t i = 0; i < si->ndigests; i++)
		json_array_append_new(digs, json_stringn(si->digests[i],
		    si->digest_lens[i]));
	json_object_set_new(o, "repo_tags", tags);
	json_object_set_new(o, "repo_digests", digs);
	json_array_append_new(arr, o);
}

static uint32_t
find_entity(engine *e, const char *id)
{
	struct tracker_key key;
	uint32_t h = TRACKER_NONE;
	if (tracker_key_from_id(ENTITY_IMAGE, id, &key, NULL, 0) == 0)
		h = tracker_find(e->t, &key);
	if (h == TRACKER_NONE &&
	    tracker_key_from_id(ENTITY_HOST, id, &key, NULL, 0) == 0)
		h = tracker_find(e->t, &key);
	return h;
}

static void
answer_entity(engine *e, struct pub_req *q)
{
	uint32_t h = find_entity(e, q->id);
	json_t *o = json_object();
	if (h == TRACKER_NONE) {
		json_object_set_new(o, "error", json_string("no such entity"));
		json_object_set_new(o, "id", json_string(q->id));
		q->status = 404;
	} else {
		struct tracker_info in;
		char id[300];
		tracker_info_get(e->t, h, &in);
		tracker_id_string(e->t, h, id, sizeof(id));
		json_object_set_new(o, "id", json_string(id));
		json_object_set_new(o, "kind", json_string(in.key.kind ==
			ENTITY_HOST ? "HOST" : "CONTAINER_IMAGE"));
		json_object_set_new(o, "state",
		    json_string(entry_state_name(in.state)));
		json_object_set_new(o, "attempts", json_integer(in.attempts));
		json_object_set_new(o, "next_attempt_at",
		    json_time(in.state == ENTRY_QUEUED ? in.due : -1));
		json_object_set_new(o, "next_attempt_at_ms",
		    in.state == ENTRY_QUEUED ? json_integer(in.due) :
					       json_null());
		json_object_set_new(o, "forget_at",
		    json_time(in.in_heap && in.state != ENTRY_QUEUED ? in.due :
								      -1));
		json_object_set_new(o, "first_seen", json_time(in.first_seen));
		json_object_set_new(o, "last_scan", json_time(in.last_scan));
		json_object_set_new(o, "last_error", in.last_error ?
			json_string(in.last_error) : json_null());
		json_object_set_new(o, "partition", json_integer(in.partition));
		json_object_set_new(o, "referenced",
		    json_boolean(in.referenced));
		json_object_set_new(o, "scanning", json_boolean(h <
			e->job_cap && e->job_of[h] != 0));
		json_t *srcs = json_array();
		tracker_sources(e->t, h, source_json, srcs);
		json_object_set_new(o, "sources", srcs);
		q->status = 200;
	}
	q->body = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	q->len = q->body ? strlen(q->body) : 0;
	json_decref(o);
}

static void
html_esc(struct pub_req *q, size_t *cap, const char *t)
{
	for (; t && *t; t++) {
		const char *r = NULL;
		switch (*t) {
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '&': r = "&amp;"; break;
		case '"': r = "&quot;"; break;
		}
		size_t n = r ? strlen(r) : 1;
		if (q->len + n + 1 > *cap) {
			*cap = (*cap + n + 1) * 2;
			q->body = xrealloc(q->body, *cap);
		}
		memcpy(q->body + q->len, r ? r : t, n);
		q->len += n;
	}
	q->body[q->len] = '\0';
}

static void html_put(struct pub_req *q, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
html_put(struct pub_req *q, size_t *cap, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(q->body + q->len, *cap - q->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < *cap - q->len) {
			q->len += (size_t)n;
			return;
		}
		*cap = (*cap + (size_t)n + 1) * 2;
		q->body = xrealloc(q->body, *cap);
	}
}

struct pending_row {
	uint32_t h;
	int64_t due;
};

struct pending_scan {
	engine *e;
	struct pending_row *v;
	size_t n, cap;
};

static void
pending_collect(void *ctx, uint32_t h)
{
	struct pending_scan *p = ctx;
	struct tracker_info in;
	if (tracker_info_get(p->e->t, h, &in) != 0 ||
	    in.state != ENTRY_QUEUED || in.attempts == 0)
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = xreallocarray(p->v, p->cap, sizeof(*p->v));
	}
	p->v[p->n++] = (struct pending_row){ h, in.due };
}

static int
pending_cmp(const void *a, const void *b)
{
	const struct pending_row *x = a, *y = b;
	return x->due < y->due ? -1 : x->due > y->due;
}

static void
refs_first(void *ctx, const struct tracker_source_info *si)
{
	char *buf = ctx;
	if (buf[0] != '\0' || !si->holding)
		return;
	if (si->ntags > 0)
		snprintf(buf, 200, "%.*s", (int)si->tag_lens[0], si->tags[0]);
	else if (si->ndigests > 0)
		snprintf(buf, 200, "%.*s", (int)si->digest_lens[0],
		    si->digests[0]);
}

static void
answer_status(engine *e, struct pub_req *q, int64_t now)
{
	static const char *const st[4] = { "SUCCEEDED", "RETRY_SCHEDULED",
		"FAILED", "CANCELLED" };
	size_t cap = 16384;
	char t1[64], t2[64];
	q->body = xmalloc(cap);
	q->len = 0;
	q->body[0] = '\0';
	publish_snapshot(e, now);
	const struct snapshot *s = e->snap;
	clock_format(now, t1, sizeof(t1));
	html_put(q, &cap,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta http-equiv=\"refresh\" content=\"5\">"
	    "<title>sbomd status</title><style>"
	    "body{font-family:sans-serif;margin:1.5em;color:#222}"
	    "table{border-collapse:collapse;margin-bottom:1.5em}"
	    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;"
	    "font-size:90%%;max-width:36em;overflow-wrap:anywhere}"
	    "th{background:#eee}.num{text-align:right}"
	    "code{font-size:90%%}</style></head><body>\n"
	    "<h1>sbomd</h1><p>%s &middot; input <code>", t1);
	html_esc(q, &cap, e->cfg->kafka.input_topic);
	html_put(q, &cap, "</code> &rarr; output <code>");
	html_esc(q, &cap, e->cfg->kafka.output_topic);
	html_put(q, &cap, "</code> &middot; %s &middot; %s &middot; refreshes "
			  "every 5 s</p>\n",
	    s->recovered && s->assigned ? "ready" : "not ready",
	    s->paused ? "input paused" : "consuming");

	html_put(q, &cap, "<h2>Entities</h2><table id=\"states\"><tr>");
	for (int i = 0; i < 5; i++)
		html_put(q, &cap, "<th>%s</th>",
		    entry_state_name((enum entry_state)i));
	html_put(q, &cap, "<th>outbox</th><th>workers busy</th></tr><tr>");
	for (int i = 0; i < 5; i++)
		html_put(q, &cap, "<td class=\"num\">%" PRIu64 "</td>",
		    s->by_state[i]);
	html_put(q, &cap, "<td class=\"num\">%" PRIu64 "</td><td class=\"num\">"
			  "%" PRIu64 " / %" PRIu64 "</td></tr></table>\n",
	    s->outbox, s->workers_busy, s->workers);

	struct pending_scan ps = { e, NULL, 0, 0 };
	tracker_foreach(e->t, pending_collect, &ps);
	qsort(ps.v, ps.n, sizeof(*ps.v), pending_cmp);
	html_put(q, &cap, "<h2>Pending retries (%zu), soonest first</h2>\n"
			  "<table id=\"retries\"><tr><th>id</th><th>refs</th>"
			  "<th>attempt</th><th>next attempt</th>"
			  "<th>last error</th></tr>\n", ps.n);
	for (size_t i = 0; i < ps.n && i < 50; i++) {
		struct tracker_info in;
		char id[300], ref[200] = "";
		tracker_info_get(e->t, ps.v[i].h, &in);
		tracker_id_string(e->t, ps.v[i].h, id, sizeof(id));
		tracker_sources(e->t, ps.v[i].h, refs_first, ref);
		clock_format(in.due, t1, sizeof(t1));
		int64_t left = in.due > now ? in.due - now : 0;
		if (left >= 1000)
			left -= left % 1000;
		duration_format(left, t2, sizeof(t2));
		html_put(q, &cap, "<tr><td><code>");
		html_esc(q, &cap, id);
		html_put(q, &cap, "</code></td><td>");
		html_esc(q, &cap, ref);
		html_put(q, &cap, "</td><td class=\"num\">%u</td><td>%s (in "
				  "%s)</td><td>", in.attempts + 1, t1, t2);
		html_esc(q, &cap, in.last_error ? in.last_error : "");
		html_put(q, &cap, "</td></tr>\n");
	}
	if (ps.n > 50)
		html_put(q, &cap, "<tr><td colspan=\"5\">&hellip; %zu more "
				  "(sbomd state list)</td></tr>\n", ps.n - 50);
	html_put(q, &cap, "</table>\n");
	free(ps.v);

	html_put(q, &cap, "<h2>Recent outcomes</h2><table id=\"outcomes\">"
			  "<tr><th>time</th><th>id</th><th>status</th>"
			  "<th>attempt</th><th>next attempt</th><th>error</th>"
			  "</tr>\n");
	for (size_t k = 0; k < e->nrecent; k++) {
		const struct recent *r = &e->recent[(e->recent_next +
		    RECENT_MAX - 1 - k) % RECENT_MAX];
		clock_format(r->at, t1, sizeof(t1));
		clock_format(r->next, t2, sizeof(t2));
		html_put(q, &cap, "<tr><td>%s</td><td><code>", t1);
		html_esc(q, &cap, r->id);
		html_put(q, &cap, "</code></td><td>%s</td><td class=\"num\">%u"
				  "</td><td>%s</td><td>", st[r->status],
		    r->attempt, t2);
		html_esc(q, &cap, r->error);
		html_put(q, &cap, "</td></tr>\n");
	}
	html_put(q, &cap, "</table>\n<h2>Consumer lag</h2><table id=\"lag\">"
			  "<tr><th>partition</th><th>lag</th><th>committed"
			  "</th><th>high watermark</th></tr>\n");
	for (size_t i = 0; i < s->nlags; i++) {
		const struct part_lag *l = &s->lags[i];
		char lag[24] = "-", com[24] = "-", hi[24] = "-";
		if (l->lag >= 0)
			snprintf(lag, sizeof(lag), "%" PRId64, l->lag);
		if (l->committed >= 0)
			snprintf(com, sizeof(com), "%" PRId64, l->committed);
		if (l->high >= 0)
			snprintf(hi, sizeof(hi), "%" PRId64, l->high);
		html_put(q, &cap, "<tr><td class=\"num\">%d</td><td class="
				  "\"num\">%s</td><td class=\"num\">%s</td>"
				  "<td class=\"num\">%s</td></tr>\n",
		    l->partition, lag, com, hi);
	}
	html_put(q, &cap, "</table>\n<p><a href=\"/metrics\">metrics</a> "
			  "&middot; <a href=\"/healthz\">healthz</a> &middot; "
			  "<a href=\"/readyz\">readyz</a></p></body></html>\n");
	q->status = 200;
}

/* Answers the HTTP thread's requests (on the engine thread). */
static void
serve_requests(engine *e, int64_t now)
{
	pthread_mutex_lock(&e->pub.mu);
	struct pub_req *q = e->pub.reqs;
	e->pub.reqs = NULL;
	pthread_mutex_unlock(&e->pub.mu);
	while (q != NULL) {
		struct pub_req *next = q->next;
		if (q->kind == PUB_REQ_ENTITY)
			answer_entity(e, q);
		else
			answer_status(e, q, now);
		pthread_mutex_lock(&e->pub.mu);
		bool gone = q->abandoned;
		q->done = true;
		pthread_cond_broadcast(&e->pub.cv);
		pthread_mutex_unlock(&e->pub.mu);
		if (gone) {
			free(q->body);
			free(q);
		}
		q = next;
	}
}

/* ---- the loop -------------------------------------------------------------- */

/* Whether this iteration's changes wait for a commit; notes when the
 * first of them came. */
static bool
changes_pending(engine *e)
{
	bool p = e->nadds > 0 || e->ndels > 0 || e->noffs > 0 ||
	    tracker_dirty_count(e->t) > 0;
	if (p && e->first_change_ms == 0)
		e->first_change_ms = clock_mono_ms();
	return p;
}

static bool
commit_due(engine *e)
{
	if (!changes_pending(e))
		return false;
	return e->uncommitted >= (size_t)e->cfg->engine.batch_max ||
	    clock_mono_ms() - e->first_change_ms >= COMMIT_EVERY_MS;
}

static int
wait_time(engine *e, int64_t now, bool more)
{
	if (more || scan_pool_pending(e->pool) > 0)
		return 0;
	int64_t due;
	int64_t t = WAIT_CAP_MS;
	bool scanning = e->cfg->scan.backend != CONFIG_BACKEND_NONE;
	if (e->first_change_ms != 0) {
		int64_t left = e->first_change_ms + COMMIT_EVERY_MS - clock_mono_ms();
		if (left <= 0)
			return 0;
		if (left < t)
			t = left;
	}
	if (scanning && e->in_pool < (size_t)e->cfg->scan.workers * 2 &&
	    tracker_next_due(e->t, &due) == 0 && due >= 0) {
		if (due <= now)
			return 0;
		if (due - now < t)
			t = due - now;
	}
	return (int)t;
}

static void
drain_wake(engine *e)
{
	char buf[256];
	while (read(e->wake[0], buf, sizeof(buf)) > 0)
		;
}

/* Commits, retrying while the store refuses (full disk): input is not
 * consumed meanwhile. Returns 0, or the error once stop is set. */
static int
commit_until_done(engine *e, bool give_up_on_stop, char *err, size_t errlen)
{
	for (;;) {
		char why[512];
		int rc = commit(e, why, sizeof(why));
		if (rc == 0)
			return 0;
		int64_t now = clock_mono_ms();
		if (now - e->last_commit_fail_log > 10000) {
			log_kv(LOG_ERROR, "state commit failed, retrying",
			    "error", why, (char *)NULL);
			e->last_commit_fail_log = now;
		}
		if (give_up_on_stop && *e->stop) {
			snprintf(err, errlen, "%s", why);
			return rc;
		}
		/* Keep the group membership and delivery reports alive. */
		rd_kafka_poll(e->prod, 0);
		rd_kafka_message_t *m;
		while ((m = rd_kafka_consumer_poll(e->cons, 0)) != NULL) {
			/* Not applied: seek back so it is fetched again. */
			rd_kafka_topic_partition_list_t *l =
			    rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(l,
			    rd_kafka_topic_name(m->rkt), m->partition)
			    ->offset = m->offset;
			rd_kafka_error_t *se = rd_kafka_seek_partitions(
			    e->cons, l, 1000);
			if (se)
				rd_kafka_error_destroy(se);
			rd_kafka_topic_partition_list_destroy(l);
			rd_kafka_message_destroy(m);
		}
		struct timespec ts = { 0, COMMIT_RETRY_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static int
shutdown_drain(engine *e, char *err, size_t errlen)
{
	int64_t now = clock_wall_ms();
	log_kv(LOG_INFO, "shutting down", (char *)NULL);
	set_paused(e, true, "shutdown");
	scan_pool_shutdown(e->pool, true);
	completions(e, now);
	for (size_t d = 0; d < e->ndeferred; d++)
		(void)tracker_requeue(e->t, e->deferred[d].job.handle, now);
	e->ndeferred = 0;
	int rc = commit_until_done(e, true, err, errlen);
	if (rc != 0)
		return rc;
	store_offsets(e);

	int64_t deadline = clock_mono_ms() + e->cfg->engine.shutdown_timeout_ms;
	produce_pending(e);
	while (e->ob.live > 0 && clock_mono_ms() < deadline) {
		rd_kafka_poll(e->prod, 50);
		produce_pending(e);
	}
	rc = commit_until_done(e, true, err, errlen);
	char left[24];
	snprintf(left, sizeof(left), "%zu", e->ob.live);
	log_kv(e->ob.live ? LOG_WARN : LOG_INFO, "outbox drained",
	    "undelivered", left, (char *)NULL);
	rd_kafka_resp_err_t cerr = rd_kafka_commit(e->cons, NULL, 0);
	if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_kv(LOG_WARN, "final offset commit failed", "error",
		    rd_kafka_err2str(cerr), (char *)NULL);
	return rc;
}

static void
engine_close(engine *e)
{
	http_stop(e->http);
	e->http = NULL;
	for (struct pub_req *q = e->pub.reqs, *n; q != NULL; q = n) {
		n = q->next;
		free(q->body);
		free(q);
	}
	if (e->cons) {
		if (e->cq) {
			rd_kafka_queue_io_event_enable(e->cq, -1, NULL, 0);
			rd_kafka_queue_destroy(e->cq);
		}
		rd_kafka_consumer_close(e->cons);
		rd_kafka_destroy(e->cons);
	}
	if (e->prod) {
		/* Undelivered items stay in the outbox for the next start. */
		rd_kafka_purge(e->prod,
		    RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(e->prod, 0);
		rd_kafka_destroy(e->prod);
	}
	if (e->assignment)
		rd_kafka_topic_partition_list_destroy(e->assignment);
	if (e->pool) {
		scan_pool_shutdown(e->pool, true);
		struct scan_completion c[32];
		size_t n;
		while ((n = scan_pool_poll(e->pool, c, 32)) > 0)
			for (size_t i = 0; i < n; i++) {
				scan_job_result_free(&c[i].result);
				scan_job_free(c[i].job);
			}
		scan_pool_free(e->pool);
	}
	if (e->backend && e->bctx)
		e->backend->fini(e->bctx);
	if (e->st)
		store_close(e->st);
	if (e->t)
		tracker_free(e->t);
	for (size_t i = 0; i < e->nadds; i++)
		free(e->adds[i].rec);
	free(e->adds);
	free(e->dels);
	free(e->offs);
	obq_free(&e->ob);
	free(e->job_of);
	free(e->cancel_of);
	free(e->deferred);
	free(e->schema_ids);
	free(e->ev);
	free(e->wo);
	wire_buf_free(&e->wbuf);
	free(e->msgs);
	free(e->tev);
	free(e->items);
	free(e->item_msg);
	arena_free(&e->arena);
	arena_free(&e->scratch);
	free(e->refs);
	if (e->wake[0] >= 0)
		close(e->wake[0]);
	if (e->wake[1] >= 0)
		close(e->wake[1]);
	/* Last: closing the consumer above still runs rebalance_cb. */
	pthread_mutex_destroy(&e->pub.mu);
	pthread_cond_destroy(&e->pub.cv);
	free(e->snap);
}

int
engine_run(const struct sbomd_config *cfg, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	engine E, *e = &E;
	int rc;

	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	e->stop = stop;
	e->wake[0] = e->wake[1] = -1;
	pthread_mutex_init(&e->pub.mu, NULL);
	pthread_cond_init(&e->pub.cv, NULL);
	e->snap = xcalloc(1, sizeof(*e->snap));
	if (pipe2(e->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		pthread_mutex_destroy(&e->pub.mu);
		pthread_cond_destroy(&e->pub.cv);
		free(e->snap);
		return -errno;
	}
	e->pub.wake_fd = e->wake[1];

	/* Wire settings. */
	e->wcfg.max_payload = (size_t)cfg->kafka.max_payload_bytes;
	if (cfg->kafka.accepted_schema_ids.n == 0) {
		e->wcfg.any_schema_id = 1;
	} else {
		e->schema_ids = xcalloc(cfg->kafka.accepted_schema_ids.n,
		    sizeof(uint32_t));
		for (size_t i = 0; i < cfg->kafka.accepted_schema_ids.n; i++)
			e->schema_ids[i] =
			    (uint32_t)cfg->kafka.accepted_schema_ids.v[i];
		e->wcfg.schema_ids = e->schema_ids;
		e->wcfg.nschema_ids = cfg->kafka.accepted_schema_ids.n;
	}
	e->oframe.framing = cfg->kafka.output_framing ==
		CONFIG_FRAMING_CONFLUENT ? WIRE_FRAMING_CONFLUENT :
					   WIRE_FRAMING_SINGLE_OBJECT;
	e->oframe.schema_id = (uint32_t)cfg->kafka.output_schema_id;
	e->ev = xmalloc(sizeof(*e->ev));
	e->wo = xmalloc(sizeof(*e->wo));
	size_t bm = (size_t)cfg->engine.batch_max;
	e->msgs = xcalloc(bm, sizeof(*e->msgs));
	e->tev = xcalloc(bm, sizeof(*e->tev));
	e->items = xcalloc(bm, sizeof(*e->items));
	e->item_msg = xcalloc(bm, sizeof(*e->item_msg));

	/* HTTP first: /readyz says "recovering" while recovery runs. */
	publish_snapshot(e, clock_wall_ms());
	if (cfg->http.listen[0] != '\0') {
		e->http = http_start(cfg->http.listen, &e->pub, err, errlen);
		if (e->http == NULL) {
			rc = -EADDRINUSE;
			goto out;
		}
		log_kv(LOG_INFO, "http listening", "address", cfg->http.listen,
		    (char *)NULL);
	}

	/* State. */
	struct tracker_config tc;
	config_to_tracker(cfg, &tc);
	e->t = tracker_new(&tc);
	struct store_options so = { .max_map_size =
					(size_t)cfg->state.max_map_size };
	if ((rc = store_open(cfg->state.dir, &so, &e->st, err, errlen)) != 0)
		goto out;
	struct store_recovery rec;
	if ((rc = store_recover(e->st, e->t, clock_wall_ms(), &rec, err, errlen)) !=
	    0)
		goto out;
	e->recovered = true;
	if ((rc = store_outbox_foreach(e->st, load_outbox_item, e)) != 0) {
		snprintf(err, errlen, "state.dir %s: reading the outbox: %s",
		    cfg->state.dir, strerror(-rc));
		goto out;
	}
	{
		char ne[24], no[24], nr[24], secs[24];
		snprintf(ne, sizeof(ne), "%zu", rec.entries);
		snprintf(no, sizeof(no), "%zu", e->ob.live);
		snprintf(nr, sizeof(nr), "%zu", rec.requeued);
		snprintf(secs, sizeof(secs), "%.3f", rec.seconds);
		log_kv(LOG_INFO, "state recovered", "dir", cfg->state.dir,
		    "entries", ne, "outbox", no, "requeued", nr, "seconds",
		    secs, (char *)NULL);
	}

	if ((rc = scanner_open(e, err, errlen)) != 0)
		goto out;
	if ((rc = kafka_open(e, err, errlen)) != 0)
		goto out;
	produce_pending(e); /* outcomes of an earlier run, not yet in Kafka */
	log_kv(LOG_INFO, "running", "brokers", cfg->kafka.brokers, "input",
	    cfg->kafka.input_topic, "output", cfg->kafka.output_topic,
	    "group", cfg->kafka.group_id, "backend", e->backend->name,
	    (char *)NULL);

	bool more = false;
	while (!*stop && !e->fatal) {
		int64_t now = clock_wall_ms();
		struct pollfd pfd[2] = {
			{ e->wake[0], POLLIN, 0 },
			{ scan_pool_wakeup_fd(e->pool), POLLIN, 0 },
		};
		int timeout = wait_time(e, now, more);
		if (timeout > 0 && poll(pfd, 2, timeout) < 0 && errno != EINTR)
			break;
		drain_wake(e);
		if (*stop)
			break;
		now = clock_wall_ms();
		rd_kafka_poll(e->prod, 0);
		completions(e, now);
		size_t n = consume_batch(e, now);
		e->uncommitted += n;
		more = n == (size_t)cfg->engine.batch_max;
		dispatch(e, now);
		if (commit_due(e)) {
			if ((rc = commit_until_done(e, true, err, errlen)) != 0)
				goto out;
			store_offsets(e);
			produce_pending(e);
		}
		backpressure(e);
		serve_requests(e, now);
		if (clock_mono_ms() - e->last_publish >= PUBLISH_EVERY_MS)
			publish_snapshot(e, now);
	}
	if (e->fatal) {
		snprintf(err, errlen, "%s", e->fatal_why);
		(void)commit(e, err + strlen(err), 0);
		rc = -EIO;
		goto out;
	}
	rc = shutdown_drain(e, err, errlen);
out:
	engine_close(e);
	return rc;
}
