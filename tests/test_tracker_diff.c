/*
 * test_tracker_diff: a randomized differential test of the tracker
 * (consumer/core/tracker) against a naive reference model.
 *
 * The model is written from the contract in tracker.h, not from
 * tracker.c: plain arrays indexed by entity and source, linear scans, no
 * map and no heap. "The heap" of the model is an (in_heap, due, seq)
 * triple per entity; the next job is the minimum (due, seq) found by a
 * scan, seq being a global counter bumped on every push (a new entity,
 * a requeue, a retry, a rescan, a forget timer). The only thing taken from
 * the implementation is the jitter seed tracker_complete passes to
 * policy_backoff (jitter_seed ^ first 8 key bytes ^ attempt << 32); the
 * delay is also checked against the policy.h formula independently.
 *
 * The universe is small so that everything collides: 40 images (the first
 * eight share their first four key bytes), 8 hosts, 6 sources whose name
 * order differs from their index order, 8 tags and 5 digests (two of them
 * longer than 127 bytes), sent unsorted and with duplicates. Time only
 * goes forward, mostly by seconds, sometimes by minutes or hours, and now
 * and then exactly onto (or 1 ms before) a deadline: a heap time, or the
 * moment a SET would rescan a DONE or FAILED entity, so that every `<` vs
 * `<=` of the contract is exercised. observed_at is sometimes older than
 * what a source sent before (stale).
 *
 * After every operation: tracker_check, then the whole state against the
 * model (every entity's info and sources, absence of forgotten ones,
 * counts per state, heap size and next due time, the handle set) and the
 * dirty set (every changed entry dirty, every forgotten key deleted, no
 * dirt at all after an operation that changes nothing).
 *
 * Two runs: max_attempts 4 and unlimited. SBOMD_DIFF_OPS sets the number
 * of operations per run (default 1,000,000). Every kind of transition is
 * counted, printed, and must have happened at least MIN_COUNT times
 * (scaled down with a smaller SBOMD_DIFF_OPS). Mutating any one of the
 * tracker's decisions (a comparison, an attempt count, a dirty mark, the
 * heap's tie order) makes this test fail within a few hundred steps.
 *
 * Readings of the contract where tracker.h is silent (the implementation
 * agrees with each): a successful scan clears last_error, a failure
 * replaces it, nothing else touches it; an UNSET from a source that does
 * not hold the entity still advances that source's observed_at (it is
 * "the newest observed_at seen from it"); the forget timer runs from the
 * tracker's now, not from observed_at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/policy.h"
#include "core/tracker.h"
#include "util/digest.h"
#include "testutil.h"

#define N_IMAGES 40
#define N_HOSTS 8
#define N_ENT (N_IMAGES + N_HOSTS)
#define N_SOURCES 6
#define N_TAGS 8
#define N_DIGESTS 5
#define N_ERRORS 4
#define JOB_RING 256
#define MAX_HANDLES 512 /* handles are reused: few beyond N_ENT */
#define DEFAULT_OPS 1000000L
#define MIN_COUNT 300

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static bool
rng_chance(unsigned per_mille)
{
	return rng_below(1000) < per_mille;
}

/* ---- the universe ---- */

static char image_ids[N_IMAGES][DIGEST_STR_LEN];
static const char *const host_names[N_HOSTS] = {
	"node-01.example.com", "db", "h", "edge-7", "a.b.c", "worker-10",
	"worker-1", "host",
};
/* Index order differs from name order on purpose. */
static const char *const source_names[N_SOURCES] = {
	"kubelet-b", "kubelet-a", "agent", "kubelet-aa", "z", "agent-2",
};
static char tag_pool[N_TAGS][300];
static char digest_pool[N_DIGESTS][300];
static size_t tag_len[N_TAGS], digest_len[N_DIGESTS];
static const char *const error_pool[N_ERRORS] = {
	"timeout after 30s",
	"registry returned 503 Service Unavailable",
	"manifest unknown",
	"scanner crashed: signal 11 while reading layer "
	"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	"abcdef (a message long enough to need more than one length byte)",
};

/* Name order of sources, tags, digests: index lists sorted by strcmp. */
static int source_order[N_SOURCES];
static int tag_order[N_TAGS];
static int digest_order[N_DIGESTS];

struct ent_static {
	enum entity_kind kind;
	const char *id;
	struct tracker_key key;
	int32_t partition;
};
static struct ent_static ents[N_ENT];

static const char *const *sort_pool;

static int
cmp_by_name(const void *a, const void *b)
{
	return strcmp(sort_pool[*(const int *)a], sort_pool[*(const int *)b]);
}

static void
sort_indices(const char *const *names, int n, int *order)
{
	for (int i = 0; i < n; i++)
		order[i] = i;
	sort_pool = names;
	qsort(order, (size_t)n, sizeof(*order), cmp_by_name);
}

static void
hexbytes(char *out, const uint8_t *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
universe_init(void)
{
	rng_seed(0x1d5eed);
	uint8_t prefix[4];
	for (int k = 0; k < 4; k++)
		prefix[k] = (uint8_t)rng_next();
	for (int i = 0; i < N_IMAGES; i++) {
		uint8_t b[32];
		for (int k = 0; k < 32; k++)
			b[k] = (uint8_t)rng_next();
		if (i < 8) /* the same 32-bit hash prefix */
			memcpy(b, prefix, 4);
		memcpy(image_ids[i], "sha256:", 7);
		hexbytes(image_ids[i] + 7, b, 32);
		ents[i].kind = ENTITY_IMAGE;
		ents[i].id = image_ids[i];
		ents[i].key.kind = ENTITY_IMAGE;
		memcpy(ents[i].key.bytes, b, 32);
	}
	for (int i = 0; i < N_HOSTS; i++) {
		struct ent_static *e = &ents[N_IMAGES + i];
		uint8_t buf[5 + 64];
		size_t n = strlen(host_names[i]);
		memcpy(buf, "host", 5);
		memcpy(buf + 5, host_names[i], n);
		e->kind = ENTITY_HOST;
		e->id = host_names[i];
		e->key.kind = ENTITY_HOST;
		digest_sha256(buf, 5 + n, e->key.bytes);
	}
	for (int i = 0; i < N_ENT; i++)
		ents[i].partition = (int32_t)(i % 7);

	static const char *const tags[N_TAGS - 1] = {
		"app:v1", "app:v10", "app:v2", "nginx:latest", "redis:7",
		"registry.example.com/team/service:2024-01-01", "a",
	};
	for (int i = 0; i < N_TAGS - 1; i++)
		snprintf(tag_pool[i], sizeof(tag_pool[i]), "%s", tags[i]);
	/* a 200-byte tag: two length bytes in the tracker's encoding */
	snprintf(tag_pool[N_TAGS - 1], sizeof(tag_pool[0]),
	    "registry.example.com/%0170d:tag", 7);
	for (int i = 0; i < N_DIGESTS; i++) {
		uint8_t b[32];
		char hex[65];
		for (int k = 0; k < 32; k++)
			b[k] = (uint8_t)rng_next();
		hexbytes(hex, b, 32);
		if (i == 3)
			snprintf(digest_pool[i], sizeof(digest_pool[i]),
			    "registry.example.com/a/rather/long/repository/"
			    "path/for/testing/the/encoding@sha256:%s", hex);
		else
			snprintf(digest_pool[i], sizeof(digest_pool[i]),
			    "%s@sha256:%s", i == 1 ? "redis" : "nginx", hex);
	}
	const char *tp[N_TAGS], *dp[N_DIGESTS];
	for (int i = 0; i < N_TAGS; i++)
		tp[i] = tag_pool[i];
	for (int i = 0; i < N_DIGESTS; i++)
		dp[i] = digest_pool[i];
	for (int i = 0; i < N_TAGS; i++)
		tag_len[i] = strlen(tag_pool[i]);
	for (int i = 0; i < N_DIGESTS; i++)
		digest_len[i] = strlen(digest_pool[i]);
	sort_indices(source_names, N_SOURCES, source_order);
	sort_indices(tp, N_TAGS, tag_order);
	sort_indices(dp, N_DIGESTS, digest_order);
}

/* ---- the model ---- */

struct msrc {
	bool present; /* a record exists (holding or not) */
	bool holding;
	int64_t observed;
	uint32_t tags, digests; /* sets, as bitmasks over the pools */
};

struct ment {
	bool live;
	uint32_t handle; /* learnt from the tracker when created */
	enum entry_state state;
	uint32_t attempts;
	uint32_t generation; /* scan cycles: 1 new, +1 per re-queue */
	int64_t first_seen;
	int64_t last_scan;
	bool in_heap;
	int64_t due;
	uint64_t seq;
	int error; /* index into error_pool, -1 none */
	struct msrc src[N_SOURCES];
};

/* What one operation must produce. */
struct expect {
	enum outcome_status status;
	uint32_t generation;
	uint32_t attempt;
	bool abort_scan;
	int64_t next_attempt_at;
	int error;		/* -1: none */
	int error_class;	/* -1: none */
};

enum counter {
	C_SET_NEW,
	C_SET_UPDATED,
	C_SET_DEDUP,
	C_SET_STALE,
	C_SET_KEEPS_QUEUED,
	C_SET_KEEPS_SCANNING,
	C_SET_DONE_RESCAN,
	C_SET_DONE_KEPT,
	C_SET_FAILED_RESCAN,
	C_SET_FAILED_KEPT,
	C_SET_CANCELLED_REQUEUE,
	C_SET_STOPS_FORGET_TIMER,
	C_SET_DEDUP_PROMOTED,
	C_SET_AT_RESCAN_BOUNDARY,
	C_UNSET_STILL_REFERENCED,
	C_UNSET_CANCEL_QUEUED,
	C_UNSET_CANCEL_SCANNING,
	C_UNSET_TIMER_DONE,
	C_UNSET_TIMER_FAILED,
	C_UNSET_DEDUP,
	C_UNSET_STALE,
	C_UNSET_UNKNOWN_ENTITY,
	C_UNSET_UNKNOWN_SOURCE,
	C_INVALID,
	C_POP_FIRST_ATTEMPT,
	C_POP_RETRY_ATTEMPT,
	C_POP_TIE,
	C_POP_NOTHING_DUE,
	C_POP_DUE_NOW,
	C_FORGOTTEN,
	C_FORGOTTEN_CANCELLED,
	C_COMPLETE_SUCCEEDED,
	C_COMPLETE_RETRY,
	C_COMPLETE_FAILED_EXHAUSTED,
	C_COMPLETE_FAILED_PERMANENT,
	C_COMPLETE_FAILED_HOST,
	C_BACKOFF_CAPPED,
	C_COMPLETE_STALE,
	C_REQUEUE,
	C_REQUEUE_STALE,
	C_BATCH,
	C_COUNT
};

static const char *const counter_names[C_COUNT] = {
	"SET new entity",
	"SET updated refs",
	"SET dedup",
	"SET stale",
	"SET on QUEUED (kept)",
	"SET on SCANNING (kept)",
	"SET on DONE -> rescan",
	"SET on DONE (not due)",
	"SET on FAILED -> rescan",
	"SET on FAILED (not due)",
	"SET on CANCELLED -> QUEUED",
	"SET cancels forget timer",
	"SET dedup reported UPDATED",
	"SET exactly at a rescan time",
	"UNSET, still referenced",
	"UNSET cancels QUEUED",
	"UNSET cancels SCANNING",
	"UNSET starts timer (DONE)",
	"UNSET starts timer (FAILED)",
	"UNSET dedup",
	"UNSET stale",
	"UNSET unknown entity",
	"UNSET unknown source",
	"invalid event",
	"pop job, attempt 1",
	"pop job, attempt > 1",
	"pop tie broken by seq",
	"pop, nothing due",
	"pop job due exactly now",
	"forgotten",
	"forgotten (CANCELLED)",
	"complete SUCCEEDED",
	"complete RETRY_SCHEDULED",
	"complete FAILED (attempts)",
	"complete FAILED (permanent)",
	"complete FAILED (host)",
	"backoff at max",
	"complete -ESTALE",
	"requeue",
	"requeue -ESTALE",
	"apply_batch",
};

struct run {
	struct tracker_config cfg;
	tracker *t;
	int64_t now;
	uint64_t seq;
	struct ment ent[N_ENT];
	struct ment before[N_ENT];
	struct tracker_job ring[JOB_RING];
	size_t nring;
	uint64_t counts[C_COUNT];
	uint64_t slot_checks, slot_not_lowest;
	long step;
	int focus;	 /* the entity whose deadline the clock hit, or -1 */
	bool focus_heap; /* that deadline was its heap time */
	char op[512]; /* the current operation, for failure messages */
};

#define FAILF(r, ...) fail_msg_at(r, __LINE__, __VA_ARGS__)

static void fail_msg_at(const struct run *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail_msg_at(const struct run *r, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("line %d, step %ld, now %" PRId64 ", op [%s]: %s", line,
	    r->step, r->now, r->op, msg);
}

static bool
referenced(const struct ment *e)
{
	for (int s = 0; s < N_SOURCES; s++)
		if (e->src[s].present && e->src[s].holding)
			return true;
	return false;
}

static uint32_t
running_attempt(const struct ment *e)
{
	return e->attempts < POLICY_MAX_ATTEMPTS ? e->attempts + 1 :
	    POLICY_MAX_ATTEMPTS;
}

static void
heap_put(struct run *r, struct ment *e, int64_t due)
{
	e->in_heap = true;
	e->due = due;
	e->seq = ++r->seq;
}

static struct expect
expect_none(void)
{
	struct expect x = {.status = OUTCOME_NONE, .next_attempt_at = -1,
	    .error = -1, .error_class = -1};
	return x;
}

/* SET, from the contract. */
static enum apply_result
model_set(struct run *r, int ei, int si, uint32_t tags, uint32_t digests,
    int64_t obs, struct expect *x)
{
	struct ment *e = &r->ent[ei];
	struct msrc *s = &e->src[si];
	*x = expect_none();
	if (!e->live) {
		memset(e, 0, sizeof(*e));
		e->live = true;
		e->handle = TRACKER_NONE;
		e->state = ENTRY_QUEUED;
		e->attempts = 0;
		e->generation = 1;
		e->first_seen = r->now;
		e->last_scan = -1;
		e->error = -1;
		heap_put(r, e, r->now);
		*s = (struct msrc){true, true, obs, tags, digests};
		r->counts[C_SET_NEW]++;
		return APPLY_NEW;
	}
	if (s->present && obs < s->observed) {
		r->counts[C_SET_STALE]++;
		return APPLY_STALE;
	}
	bool was_referenced = referenced(e);
	enum apply_result res;
	if (s->present && s->holding && s->tags == tags &&
	    s->digests == digests) {
		if (obs > s->observed)
			s->observed = obs;
		res = APPLY_DEDUP;
	} else {
		*s = (struct msrc){true, true, obs, tags, digests};
		res = APPLY_UPDATED;
	}
	if (!was_referenced) {
		if (!e->in_heap || e->state == ENTRY_QUEUED ||
		    e->state == ENTRY_SCANNING)
			FAILF(r, "model: unreferenced entity without timer");
		e->in_heap = false; /* the forget timer */
		r->counts[C_SET_STOPS_FORGET_TIMER]++;
	}
	bool queue = false;
	switch (e->state) {
	case ENTRY_QUEUED:
		r->counts[C_SET_KEEPS_QUEUED]++;
		break;
	case ENTRY_SCANNING:
		r->counts[C_SET_KEEPS_SCANNING]++;
		break;
	case ENTRY_DONE:
		if (r->now - e->last_scan == r->cfg.rescan_after_ms)
			r->counts[C_SET_AT_RESCAN_BOUNDARY]++;
		queue = r->cfg.rescan_after_ms > 0 &&
		    r->now - e->last_scan >= r->cfg.rescan_after_ms;
		r->counts[queue ? C_SET_DONE_RESCAN : C_SET_DONE_KEPT]++;
		break;
	case ENTRY_FAILED:
		if (r->now - e->last_scan ==
		    r->cfg.retry.failed_rescan_after_ms)
			r->counts[C_SET_AT_RESCAN_BOUNDARY]++;
		queue = r->cfg.retry.failed_rescan_after_ms > 0 &&
		    r->now - e->last_scan >=
		    r->cfg.retry.failed_rescan_after_ms;
		if (queue)
			e->attempts = 0;
		r->counts[queue ? C_SET_FAILED_RESCAN : C_SET_FAILED_KEPT]++;
		break;
	case ENTRY_CANCELLED:
		queue = true;
		e->attempts = 0;
		r->counts[C_SET_CANCELLED_REQUEUE]++;
		break;
	}
	if (queue) {
		e->state = ENTRY_QUEUED;
		e->generation++; /* a new scan cycle */
		heap_put(r, e, r->now);
		if (res == APPLY_DEDUP)
			r->counts[C_SET_DEDUP_PROMOTED]++;
		res = APPLY_UPDATED;
	}
	r->counts[res == APPLY_DEDUP ? C_SET_DEDUP : C_SET_UPDATED]++;
	return res;
}

/* UNSET, from the contract. */
static enum apply_result
model_unset(struct run *r, int ei, int si, int64_t obs, struct expect *x)
{
	struct ment *e = &r->ent[ei];
	struct msrc *s = &e->src[si];
	*x = expect_none();
	if (!e->live) {
		r->counts[C_UNSET_UNKNOWN_ENTITY]++;
		return APPLY_UNKNOWN;
	}
	if (!s->present) {
		r->counts[C_UNSET_UNKNOWN_SOURCE]++;
		return APPLY_UNKNOWN;
	}
	if (obs < s->observed) {
		r->counts[C_UNSET_STALE]++;
		return APPLY_STALE;
	}
	if (!s->holding) {
		if (obs > s->observed)
			s->observed = obs;
		r->counts[C_UNSET_DEDUP]++;
		return APPLY_DEDUP;
	}
	*s = (struct msrc){true, false, obs, 0, 0};
	if (referenced(e)) {
		r->counts[C_UNSET_STILL_REFERENCED]++;
		return APPLY_UPDATED;
	}
	switch (e->state) {
	case ENTRY_QUEUED:
		e->state = ENTRY_CANCELLED;
		e->in_heap = false;
		x->status = OUTCOME_CANCELLED;
		x->generation = e->generation;
		x->attempt = e->attempts;
		r->counts[C_UNSET_CANCEL_QUEUED]++;
		break;
	case ENTRY_SCANNING:
		e->state = ENTRY_CANCELLED;
		x->status = OUTCOME_CANCELLED;
		x->generation = e->generation;
		x->attempt = running_attempt(e);
		x->abort_scan = true;
		r->counts[C_UNSET_CANCEL_SCANNING]++;
		break;
	case ENTRY_DONE:
		r->counts[C_UNSET_TIMER_DONE]++;
		break;
	case ENTRY_FAILED:
		r->counts[C_UNSET_TIMER_FAILED]++;
		break;
	case ENTRY_CANCELLED:
		FAILF(r, "model: CANCELLED entity was referenced");
	}
	if (e->in_heap)
		FAILF(r, "model: referenced entity had a heap entry");
	heap_put(r, e, r->now + r->cfg.forget_after_ms);
	return APPLY_UPDATED;
}

/* pop_due: min (due, seq) by a linear scan; forget timers on the way. */
static bool
model_pop(struct run *r, int *ei_out, uint32_t *attempt, int64_t *due)
{
	for (;;) {
		int best = -1;
		for (int i = 0; i < N_ENT; i++) {
			const struct ment *e = &r->ent[i];
			if (!e->live || !e->in_heap)
				continue;
			if (best < 0 || e->due < r->ent[best].due ||
			    (e->due == r->ent[best].due &&
			    e->seq < r->ent[best].seq))
				best = i;
		}
		if (best < 0)
			return false;
		struct ment *e = &r->ent[best];
		if (e->due > r->now) {
			r->counts[C_POP_NOTHING_DUE]++;
			return false;
		}
		e->in_heap = false;
		if (e->state != ENTRY_QUEUED) {
			if (e->state == ENTRY_SCANNING || referenced(e))
				FAILF(r, "model: timer on a busy entity");
			r->counts[e->state == ENTRY_CANCELLED ?
			    C_FORGOTTEN_CANCELLED : C_FORGOTTEN]++;
			e->live = false;
			continue;
		}
		for (int i = 0; i < N_ENT; i++)
			if (i != best && r->ent[i].live &&
			    r->ent[i].in_heap && r->ent[i].due == e->due) {
				r->counts[C_POP_TIE]++;
				break;
			}
		if (e->due == r->now)
			r->counts[C_POP_DUE_NOW]++;
		e->state = ENTRY_SCANNING;
		*ei_out = best;
		*attempt = running_attempt(e);
		*due = e->due;
		r->counts[*attempt == 1 ? C_POP_FIRST_ATTEMPT :
		    C_POP_RETRY_ATTEMPT]++;
		return true;
	}
}

/* The live model entity holding handle h, or -1. */
static int
model_by_handle(const struct run *r, uint32_t h)
{
	for (int i = 0; i < N_ENT; i++)
		if (r->ent[i].live && r->ent[i].handle == h)
			return i;
	return -1;
}

/* policy_should_retry as policy.h words it. */
static bool
model_should_retry(const struct run *r, enum entity_kind kind,
    enum error_class cls, uint32_t n)
{
	if (kind != ENTITY_IMAGE || cls != ERROR_RETRYABLE)
		return false;
	return r->cfg.retry.max_attempts == 0 ||
	    n < r->cfg.retry.max_attempts;
}

/* The delay before attempt n+1 as policy.h words it, without jitter. */
static double
model_backoff_base(const struct run *r, uint32_t n)
{
	double d = (double)r->cfg.retry.base_ms *
	    pow(r->cfg.retry.multiplier, (double)(n - 1));
	return d < (double)r->cfg.retry.max_ms ? d :
	    (double)r->cfg.retry.max_ms;
}

/* tracker_complete; returns 0 or -ESTALE. */
static int
model_complete(struct run *r, uint32_t h, uint32_t attempt, int result,
    int error, struct expect *x)
{
	*x = expect_none();
	int ei = model_by_handle(r, h);
	if (ei < 0 || r->ent[ei].state != ENTRY_SCANNING ||
	    running_attempt(&r->ent[ei]) != attempt) {
		r->counts[C_COMPLETE_STALE]++;
		return -ESTALE;
	}
	struct ment *e = &r->ent[ei];
	x->attempt = attempt;
	if (result == 0) {
		e->state = ENTRY_DONE;
		e->attempts = 0;
		e->last_scan = r->now;
		e->error = -1;
		x->status = OUTCOME_SUCCEEDED;
		x->generation = e->generation;
		r->counts[C_COMPLETE_SUCCEEDED]++;
		return 0;
	}
	enum error_class cls = result == 1 ? ERROR_RETRYABLE : ERROR_PERMANENT;
	e->attempts = attempt;
	e->error = error;
	x->error = error;
	x->error_class = (int)cls;
	if (model_should_retry(r, ents[ei].kind, cls, attempt)) {
		/* The seed is the one detail taken from tracker.c. */
		uint64_t k64;
		memcpy(&k64, ents[ei].key.bytes, sizeof(k64));
		uint64_t seed = r->cfg.jitter_seed ^ k64 ^
		    ((uint64_t)attempt << 32);
		int64_t delay = policy_backoff(&r->cfg.retry, attempt, seed);
		double base = model_backoff_base(r, attempt);
		double j = r->cfg.retry.jitter;
		if ((double)delay < floor(base * (1 - j)) ||
		    (double)delay > ceil(base * (1 + j)))
			FAILF(r, "backoff %" PRId64 " for attempt %u outside "
			    "%.0f +- %.0f%%", delay, attempt, base, j * 100);
		if (base >= (double)r->cfg.retry.max_ms)
			r->counts[C_BACKOFF_CAPPED]++;
		e->state = ENTRY_QUEUED;
		heap_put(r, e, r->now + delay);
		x->status = OUTCOME_RETRY_SCHEDULED;
		x->generation = e->generation;
		x->next_attempt_at = r->now + delay;
		r->counts[C_COMPLETE_RETRY]++;
		return 0;
	}
	e->state = ENTRY_FAILED;
	e->last_scan = r->now;
	x->status = OUTCOME_FAILED;
	x->generation = e->generation;
	if (ents[ei].kind == ENTITY_HOST)
		r->counts[C_COMPLETE_FAILED_HOST]++;
	else if (cls == ERROR_PERMANENT)
		r->counts[C_COMPLETE_FAILED_PERMANENT]++;
	else
		r->counts[C_COMPLETE_FAILED_EXHAUSTED]++;
	return 0;
}

static int
model_requeue(struct run *r, uint32_t h)
{
	int ei = model_by_handle(r, h);
	if (ei < 0 || r->ent[ei].state != ENTRY_SCANNING) {
		r->counts[C_REQUEUE_STALE]++;
		return -ESTALE;
	}
	r->ent[ei].state = ENTRY_QUEUED;
	heap_put(r, &r->ent[ei], r->now);
	r->counts[C_REQUEUE]++;
	return 0;
}

/* ---- comparing ---- */

static bool
key_eq(const struct tracker_key *a, const struct tracker_key *b)
{
	return a->kind == b->kind &&
	    memcmp(a->bytes, b->bytes, TRACKER_KEY_LEN) == 0;
}

static void
check_outcome(const struct run *r, const char *what,
    const struct tracker_outcome *o, const struct expect *x, int ei)
{
	if (o->status != x->status)
		FAILF(r, "%s: status %s, model %s", what,
		    outcome_status_name(o->status),
		    outcome_status_name(x->status));
	if (o->abort_scan != x->abort_scan)
		FAILF(r, "%s: abort_scan %d, model %d", what, o->abort_scan,
		    x->abort_scan);
	if (o->next_attempt_at != x->next_attempt_at)
		FAILF(r, "%s: next_attempt_at %" PRId64 ", model %" PRId64,
		    what, o->next_attempt_at, x->next_attempt_at);
	if (x->status == OUTCOME_NONE)
		return;
	if (o->handle != r->ent[ei].handle || !key_eq(&o->key, &ents[ei].key))
		FAILF(r, "%s: outcome for handle %u, model entity %d handle "
		    "%u", what, o->handle, ei, r->ent[ei].handle);
	if (o->attempt != x->attempt)
		FAILF(r, "%s: attempt %u, model %u", what, o->attempt,
		    x->attempt);
	if (o->generation != x->generation)
		FAILF(r, "%s: generation %u, model %u", what, o->generation,
		    x->generation);
	if (x->status == OUTCOME_CANCELLED)
		return; /* error fields: the contract says nothing */
	if (o->error_class != x->error_class)
		FAILF(r, "%s: error_class %d, model %d", what, o->error_class,
		    x->error_class);
	if (x->error < 0 ? o->error != NULL :
	    (o->error == NULL || strcmp(o->error, error_pool[x->error]) != 0))
		FAILF(r, "%s: error \"%s\", model \"%s\"", what,
		    o->error ? o->error : "(null)",
		    x->error < 0 ? "(null)" : error_pool[x->error]);
}

struct src_walk {
	const struct ment *e;
	int k;		/* position in source_order */
	size_t seen;
	char err[512];
};

static void
src_walk_fn(void *ctx, const struct tracker_source_info *si)
{
	struct src_walk *w = ctx;
	if (w->err[0] != '\0')
		return;
	while (w->k < N_SOURCES && !w->e->src[source_order[w->k]].present)
		w->k++;
	w->seen++;
	if (w->k == N_SOURCES) {
		snprintf(w->err, sizeof(w->err), "extra source \"%s\"",
		    si->source);
		return;
	}
	int s = source_order[w->k++];
	const struct msrc *m = &w->e->src[s];
	if (strcmp(si->source, source_names[s]) != 0) {
		snprintf(w->err, sizeof(w->err),
		    "source \"%s\" where the model has \"%s\"", si->source,
		    source_names[s]);
		return;
	}
	if (si->observed_at != m->observed || si->holding != m->holding) {
		snprintf(w->err, sizeof(w->err),
		    "source %s: observed %" PRId64 " holding %d, model %"
		    PRId64 " %d", source_names[s], si->observed_at,
		    si->holding, m->observed, m->holding);
		return;
	}
	size_t k = 0;
	for (int i = 0; i < N_TAGS; i++) {
		int p = tag_order[i];
		if (!(m->tags >> p & 1))
			continue;
		if (k >= si->ntags || si->tag_lens[k] != tag_len[p] ||
		    memcmp(si->tags[k], tag_pool[p], si->tag_lens[k]) != 0) {
			snprintf(w->err, sizeof(w->err),
			    "source %s: tag %zu is not \"%.40s\"",
			    source_names[s], k, tag_pool[p]);
			return;
		}
		k++;
	}
	if (k != si->ntags) {
		snprintf(w->err, sizeof(w->err), "source %s: %zu tags, model "
		    "%zu", source_names[s], si->ntags, k);
		return;
	}
	k = 0;
	for (int i = 0; i < N_DIGESTS; i++) {
		int p = digest_order[i];
		if (!(m->digests >> p & 1))
			continue;
		if (k >= si->ndigests ||
		    si->digest_lens[k] != digest_len[p] ||
		    memcmp(si->digests[k], digest_pool[p],
		    si->digest_lens[k]) != 0) {
			snprintf(w->err, sizeof(w->err),
			    "source %s: digest %zu is not \"%.40s\"",
			    source_names[s], k, digest_pool[p]);
			return;
		}
		k++;
	}
	if (k != si->ndigests)
		snprintf(w->err, sizeof(w->err), "source %s: %zu digests, "
		    "model %zu", source_names[s], si->ndigests, k);
}

static void
collect_handle(void *ctx, uint32_t h)
{
	uint32_t *n = ctx;
	if (h < MAX_HANDLES)
		n[1 + h]++;
	n[0]++;
}

static bool
ment_same(const struct ment *a, const struct ment *b)
{
	if (a->live != b->live)
		return false;
	if (!a->live)
		return true;
	if (a->state != b->state || a->attempts != b->attempts ||
	    a->generation != b->generation || a->first_seen != b->first_seen || a->last_scan != b->last_scan ||
	    a->in_heap != b->in_heap || (a->in_heap && a->due != b->due) ||
	    a->error != b->error)
		return false;
	for (int s = 0; s < N_SOURCES; s++) {
		const struct msrc *x = &a->src[s], *y = &b->src[s];
		if (x->present != y->present || (x->present &&
		    (x->holding != y->holding || x->observed != y->observed ||
		    x->tags != y->tags || x->digests != y->digests)))
			return false;
	}
	return true;
}

static void
check_entity(const struct run *r, int i)
{
	const struct ment *e = &r->ent[i];
	uint32_t h = tracker_find(r->t, &ents[i].key);
	if (!e->live) {
		if (h != TRACKER_NONE)
			FAILF(r, "entity %d (%s) should be absent, has handle "
			    "%u", i, ents[i].id, h);
		return;
	}
	if (h == TRACKER_NONE || h != e->handle)
		FAILF(r, "entity %d (%s): handle %u, model %u", i, ents[i].id,
		    h, e->handle);
	struct tracker_info in;
	if (tracker_info_get(r->t, h, &in) != 0)
		FAILF(r, "entity %d: tracker_info_get failed", i);
	if (!key_eq(&in.key, &ents[i].key))
		FAILF(r, "entity %d: wrong key in info", i);
	if (in.state != e->state)
		FAILF(r, "entity %d (%s): state %s, model %s", i, ents[i].id,
		    entry_state_name(in.state), entry_state_name(e->state));
	if (in.attempts != e->attempts)
		FAILF(r, "entity %d: attempts %u, model %u", i, in.attempts,
		    e->attempts);
	if (in.generation != e->generation)
		FAILF(r, "entity %d: generation %u, model %u", i,
		    in.generation, e->generation);
	if (in.partition != ents[i].partition)
		FAILF(r, "entity %d: partition %d", i, in.partition);
	if (in.first_seen != e->first_seen || in.last_scan != e->last_scan)
		FAILF(r, "entity %d: first_seen %" PRId64 " last_scan %" PRId64
		    ", model %" PRId64 " %" PRId64, i, in.first_seen,
		    in.last_scan, e->first_seen, e->last_scan);
	if (in.in_heap != e->in_heap || (e->in_heap && in.due != e->due))
		FAILF(r, "entity %d (%s, %s): in_heap %d due %" PRId64
		    ", model %d %" PRId64, i, ents[i].id,
		    entry_state_name(e->state), in.in_heap, in.due,
		    e->in_heap, e->due);
	if (in.referenced != referenced(e))
		FAILF(r, "entity %d: referenced %d", i, in.referenced);
	size_t nsrc = 0;
	for (int s = 0; s < N_SOURCES; s++)
		nsrc += e->src[s].present;
	if (in.nsources != nsrc)
		FAILF(r, "entity %d: %zu sources, model %zu", i, in.nsources,
		    nsrc);
	if (e->error < 0 ? in.last_error != NULL :
	    (in.last_error == NULL ||
	    strcmp(in.last_error, error_pool[e->error]) != 0))
		FAILF(r, "entity %d: last_error \"%s\", model \"%s\"", i,
		    in.last_error ? in.last_error : "(null)",
		    e->error < 0 ? "(null)" : error_pool[e->error]);

	struct src_walk w = {.e = e};
	if (tracker_sources(r->t, h, src_walk_fn, &w) != 0)
		FAILF(r, "entity %d: tracker_sources failed", i);
	if (w.err[0] == '\0' && w.seen != nsrc)
		snprintf(w.err, sizeof(w.err), "%zu sources walked", w.seen);
	if (w.err[0] != '\0')
		FAILF(r, "entity %d (%s): %s", i, ents[i].id, w.err);

	/* The id never changes while live: check it when the entity was
	 * touched, and everywhere now and then (it is slow under ASan). */
	if (!ment_same(&r->before[i], e) || r->step % 1024 == 0) {
		char idbuf[300];
		tracker_id_string(r->t, h, idbuf, sizeof(idbuf));
		if (strcmp(idbuf, ents[i].id) != 0)
			FAILF(r, "entity %d: id string \"%s\"", i, idbuf);
	}
}

struct dirty_walk {
	bool put[MAX_HANDLES];
	bool del[N_ENT]; /* by entity: its (partition, key) deleted */
	bool overflow;
};

static int
dirty_put(void *ctx, uint32_t handle)
{
	struct dirty_walk *d = ctx;
	if (handle < MAX_HANDLES)
		d->put[handle] = true;
	else
		d->overflow = true;
	return 0;
}

static int
dirty_del(void *ctx, int32_t partition, const struct tracker_key *key)
{
	struct dirty_walk *d = ctx;
	for (int i = 0; i < N_ENT; i++) {
		if (key_eq(&ents[i].key, key) &&
		    ents[i].partition == partition) {
			d->del[i] = true;
			return 0;
		}
	}
	d->overflow = true; /* a key or partition no entity has */
	return 0;
}

/* Every changed entity is dirty, every forgotten entity's key is deleted,
 * no other key is deleted; then clear. */
static void
check_dirty(struct run *r, bool no_change)
{
	if (no_change && tracker_dirty_count(r->t) != 0)
		FAILF(r, "an operation that changes nothing left %zu dirty",
		    tracker_dirty_count(r->t));
	static struct dirty_walk d;
	memset(&d, 0, sizeof(d));
	if (tracker_foreach_dirty(r->t, dirty_put, dirty_del, &d) != 0 ||
	    d.overflow)
		FAILF(r, "tracker_foreach_dirty");
	for (int i = 0; i < N_ENT; i++) {
		const struct ment *a = &r->before[i], *b = &r->ent[i];
		if (a->live && !b->live) {
			if (!d.del[i])
				FAILF(r, "forgotten entity %d: key not "
				    "deleted in the dirty set", i);
		} else if (b->live && !ment_same(a, b)) {
			if (!d.put[b->handle])
				FAILF(r, "entity %d changed but handle %u is "
				    "not dirty", i, b->handle);
		}
		/* a deletion only of a forgotten entity (one forgotten and
		 * set again in one step is written by its put) */
		if (d.del[i] && !(a->live && !b->live))
			FAILF(r, "entity %d deleted, but the model forgot "
			    "nothing", i);
	}
	tracker_clear_dirty(r->t);
}

static void
check_all(struct run *r, bool no_change)
{
	char err[256];
	if (tracker_check(r->t, err, sizeof(err)) != 0)
		FAILF(r, "tracker_check: %s", err);

	size_t live = 0, states[5] = {0}, heap = 0;
	int64_t min_due = INT64_MAX;
	for (int i = 0; i < N_ENT; i++) {
		check_entity(r, i);
		const struct ment *e = &r->ent[i];
		if (!e->live)
			continue;
		live++;
		states[e->state]++;
		if (e->in_heap) {
			heap++;
			if (e->due < min_due)
				min_due = e->due;
		}
	}
	if (tracker_count(r->t) != live)
		FAILF(r, "count %zu, model %zu", tracker_count(r->t), live);
	for (int s = 0; s < 5; s++)
		if (tracker_count_state(r->t, (enum entry_state)s) != states[s])
			FAILF(r, "%s: %zu, model %zu",
			    entry_state_name((enum entry_state)s),
			    tracker_count_state(r->t, (enum entry_state)s),
			    states[s]);
	if (tracker_heap_size(r->t) != heap)
		FAILF(r, "heap size %zu, model %zu", tracker_heap_size(r->t),
		    heap);
	int64_t due = -7;
	bool some = tracker_next_due(r->t, &due);
	if (heap == 0 ? some : (!some || due != min_due))
		FAILF(r, "next_due %d due %" PRId64 ", model %" PRId64, some,
		    due, heap ? min_due : -1);

	static uint32_t seen[1 + MAX_HANDLES];
	memset(seen, 0, sizeof(seen));
	tracker_foreach(r->t, collect_handle, seen);
	if (seen[0] != live)
		FAILF(r, "foreach visited %u handles, model has %zu live",
		    seen[0], live);
	for (int i = 0; i < N_ENT; i++)
		if (r->ent[i].live && (r->ent[i].handle >= MAX_HANDLES ||
		    seen[1 + r->ent[i].handle] != 1))
			FAILF(r, "foreach missed entity %d", i);

	check_dirty(r, no_change);
}

/* ---- generating operations ---- */

/* A deadline of a random live entity: its heap time (*heap set), or when a
 * SET would rescan it; 0 when it has none. */
static int64_t
some_deadline(const struct run *r, int *ei, bool *heap)
{
	*ei = (int)rng_below(N_ENT);
	const struct ment *e = &r->ent[*ei];
	*heap = true;
	if (rng_chance(550)) { /* the next future heap time */
		int64_t min = 0;
		for (int i = 0; i < N_ENT; i++)
			if (r->ent[i].live && r->ent[i].in_heap &&
			    r->ent[i].due > r->now &&
			    (min == 0 || r->ent[i].due < min))
				min = r->ent[i].due;
		return min;
	}
	if (!e->live)
		return 0;
	if (e->in_heap && rng_chance(500))
		return e->due;
	*heap = false;
	if (e->state == ENTRY_DONE)
		return e->last_scan + r->cfg.rescan_after_ms;
	if (e->state == ENTRY_FAILED)
		return e->last_scan + r->cfg.retry.failed_rescan_after_ms;
	*heap = true;
	return e->in_heap ? e->due : 0;
}

static void
advance_clock(struct run *r)
{
	unsigned x = (unsigned)rng_below(10000);
	r->focus = -1;
	if (x < 600) {
		/* exactly on a deadline, or one millisecond before it; the
		 * next operation then mostly looks at that deadline */
		int ei;
		bool heap;
		int64_t d = some_deadline(r, &ei, &heap) - (x < 150 ? 1 : 0);
		if (d > r->now) {
			r->now = d;
			r->focus = ei;
			r->focus_heap = heap;
		}
		return;
	}
	if (x < 5000)
		return;
	if (x < 8700)
		r->now += (int64_t)rng_below(5 * SEC + 1);
	else if (x < 9970)
		r->now += (int64_t)rng_below(3 * MIN + 1);
	else
		r->now += (int64_t)rng_below(2 * HOUR + 1);
}

/* n refs from the set mask, in random order, sometimes with a duplicate. */
static size_t
refs_from_mask(uint32_t mask, int pool_n, const char *out[16],
    const char (*pool)[300])
{
	size_t n = 0;
	for (int i = 0; i < pool_n; i++)
		if (mask >> i & 1)
			out[n++] = pool[i];
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(i);
		const char *tmp = out[i - 1];
		out[i - 1] = out[j];
		out[j] = tmp;
	}
	if (n > 0 && rng_chance(300)) {
		size_t at = (size_t)rng_below(n + 1);
		const char *dup = out[rng_below(n)];
		memmove(&out[at + 1], &out[at], (n - at) * sizeof(out[0]));
		out[at] = dup;
		n++;
	}
	return n;
}

static uint32_t
random_mask(int pool_n, unsigned max_draws)
{
	uint32_t m = 0;
	unsigned n = (unsigned)rng_below(max_draws + 1);
	for (unsigned i = 0; i < n; i++)
		m |= 1u << rng_below((uint64_t)pool_n);
	return m;
}

static int
pick_entity(void)
{
	/* hosts a bit more often than their share */
	if (rng_chance(250))
		return N_IMAGES + (int)rng_below(N_HOSTS);
	return (int)rng_below(N_IMAGES);
}

static int64_t
pick_observed(const struct run *r, const struct msrc *s)
{
	unsigned x = (unsigned)rng_below(100);
	if (s->present && x < 10)
		return s->observed; /* the same time again: not stale */
	if (s->present && x < 22) /* older than the last one: stale */
		return s->observed - 1 - (int64_t)rng_below(10 * MIN);
	if (x < 30)
		return r->now - (int64_t)rng_below(2 * HOUR);
	return r->now - (int64_t)rng_below(3 * SEC);
}

static void
record_job(struct run *r, const struct tracker_job *j)
{
	r->ring[r->nring % JOB_RING] = *j;
	r->nring++;
}

/* One generated event, with the storage its pointers refer to. */
struct gen {
	struct tracker_event ev;
	const char *tags[TRACKER_MAX_REFS + 1], *digests[16];
	int ei; /* the entity, or -1 for an invalid event */
	int si;
	uint32_t tmask, dmask;
};

static void
gen_event(struct run *r, bool set, int ei, struct gen *g)
{
	if (ei < 0)
		ei = pick_entity();
	const struct ment *e = &r->ent[ei];
	int si;
	if (!set && e->live && rng_chance(800)) {
		/* mostly a source that holds it, so entities lose refs */
		int cand[N_SOURCES], nc = 0;
		for (int s = 0; s < N_SOURCES; s++)
			if (e->src[s].present && e->src[s].holding)
				cand[nc++] = s;
		si = nc ? cand[rng_below((uint64_t)nc)] :
		    (int)rng_below(N_SOURCES);
	} else if (rng_chance(600)) {
		si = (int)rng_below(2);
	} else {
		si = (int)rng_below(N_SOURCES);
	}
	const struct msrc *s = &e->src[si];
	int64_t obs = pick_observed(r, s);

	uint32_t tmask, dmask;
	if (s->present && s->holding && rng_chance(450)) {
		tmask = s->tags;
		dmask = s->digests;
	} else {
		tmask = random_mask(N_TAGS, 3);
		dmask = random_mask(N_DIGESTS, 2);
	}
	size_t ntags = refs_from_mask(tmask, N_TAGS, g->tags, tag_pool);
	size_t ndigests = refs_from_mask(dmask, N_DIGESTS, g->digests,
	    digest_pool);
	g->ei = ei;
	g->si = si;
	g->tmask = set ? tmask : 0;
	g->dmask = set ? dmask : 0;
	g->ev = (struct tracker_event){
		.type = set ? EVENT_SET : EVENT_UNSET,
		.kind = ents[ei].kind,
		.id = ents[ei].id,
		.source = source_names[si],
		.tags = set ? g->tags : NULL,
		.ntags = set ? ntags : 0,
		.digests = set ? g->digests : NULL,
		.ndigests = set ? ndigests : 0,
		.observed_at = obs,
		.partition = ents[ei].partition,
	};
}

/* An event the tracker must reject as APPLY_INVALID. */
static void
gen_invalid(struct run *r, struct gen *g)
{
	int ei = pick_entity();
	static char longname[TRACKER_MAX_NAME + 2];
	if (longname[0] == '\0')
		memset(longname, 'n', TRACKER_MAX_NAME + 1);
	static const char *const bad_tags[] = {"", "bad\ttag", "x\x7f"};
	/* initializers are evaluated in no set order: draw first */
	enum event_type type = rng_chance(500) ? EVENT_SET : EVENT_UNSET;
	const char *source = source_names[rng_below(N_SOURCES)];
	g->ei = -1;
	g->ev = (struct tracker_event){
		.type = type,
		.kind = ents[ei].kind,
		.id = ents[ei].id,
		.source = source,
		.observed_at = r->now,
		.partition = ents[ei].partition,
	};
	switch (rng_below(6)) {
	case 0:
		g->ev.kind = ENTITY_IMAGE;
		g->ev.id = rng_chance(500) ? "sha256:XYZ" : "SHA256:0";
		break;
	case 1:
		g->ev.kind = ENTITY_HOST;
		g->ev.id = rng_chance(500) ? "bad host" : "";
		break;
	case 2:
		g->ev.source = rng_chance(500) ? "" : NULL;
		break;
	case 3:
		g->ev.source = longname;
		break;
	case 4: /* refs: SET only */
		g->ev.type = EVENT_SET;
		g->ev.tags = g->tags;
		g->ev.ntags = 1;
		g->tags[0] = bad_tags[rng_below(3)];
		break;
	default:
		g->ev.type = EVENT_SET;
		for (size_t i = 0; i <= TRACKER_MAX_REFS; i++)
			g->tags[i] = tag_pool[i % N_TAGS];
		g->ev.tags = g->tags;
		g->ev.ntags = TRACKER_MAX_REFS + 1;
		break;
	}
}

static int
describe_event(const struct run *r, const struct gen *g, char *buf,
    size_t len)
{
	if (g->ei < 0)
		return snprintf(buf, len, "invalid %s (id \"%.20s\", source "
		    "%.20s, %zu tags)", g->ev.type == EVENT_SET ? "SET" :
		    "UNSET", g->ev.id, g->ev.source ? g->ev.source : "NULL",
		    g->ev.ntags);
	return snprintf(buf, len, "%s entity %d (%.20s, %s) source %s obs %"
	    PRId64 " tags %#x digests %#x", g->ev.type == EVENT_SET ? "SET" :
	    "UNSET", g->ei, ents[g->ei].id, r->ent[g->ei].live ?
	    entry_state_name(r->ent[g->ei].state) : "absent",
	    source_names[g->si], g->ev.observed_at, g->tmask, g->dmask);
}

/* The model's answer to one generated event. */
static enum apply_result
model_event(struct run *r, const struct gen *g, struct expect *x)
{
	if (g->ei < 0) {
		*x = expect_none();
		r->counts[C_INVALID]++;
		return APPLY_INVALID;
	}
	if (g->ev.type == EVENT_SET)
		return model_set(r, g->ei, g->si, g->tmask, g->dmask,
		    g->ev.observed_at, x);
	return model_unset(r, g->ei, g->si, g->ev.observed_at, x);
}

/* The lowest slot no live entity but ei holds. */
static uint32_t
lowest_free_slot(const struct run *r, int ei)
{
	bool used[MAX_HANDLES] = {false};
	for (int i = 0; i < N_ENT; i++)
		if (i != ei && r->ent[i].live && r->ent[i].handle < MAX_HANDLES)
			used[r->ent[i].handle] = true;
	uint32_t h = 0;
	while (used[h])
		h++;
	return h;
}

/* After APPLY_NEW: the handle the tracker chose, which must be free. */
static void
learn_handle(struct run *r, int ei)
{
	struct ment *e = &r->ent[ei];
	uint32_t lowest = lowest_free_slot(r, ei);
	e->handle = tracker_find(r->t, &ents[ei].key);
	if (e->handle == TRACKER_NONE || e->handle >= MAX_HANDLES)
		FAILF(r, "new entity %d has handle %u", ei, e->handle);
	for (int i = 0; i < N_ENT; i++)
		if (i != ei && r->ent[i].live && r->ent[i].handle == e->handle)
			FAILF(r, "new entity %d got slot %u of entity %d", ei,
			    e->handle, i);
	/* tracker.h: "new entries take the lowest free slot". Counted,
	 * not asserted: the implementation reuses the last freed slot. */
	r->slot_checks++;
	if (e->handle != lowest)
		r->slot_not_lowest++;
}

static void
op_apply(struct run *r, bool set, int ei, bool invalid)
{
	struct gen g;
	if (invalid)
		gen_invalid(r, &g);
	else
		gen_event(r, set, ei, &g);
	describe_event(r, &g, r->op, sizeof(r->op));

	struct expect x;
	enum apply_result want = model_event(r, &g, &x);
	struct tracker_outcome out;
	char err[256] = "";
	enum apply_result got = tracker_apply(r->t, &g.ev, r->now, &out, err,
	    sizeof(err));
	if (got != want)
		FAILF(r, "apply: %s, model %s (%s)", tracker_apply_name(got),
		    tracker_apply_name(want), err);
	if (want == APPLY_INVALID && err[0] == '\0')
		FAILF(r, "APPLY_INVALID without a reason");
	if (want == APPLY_NEW)
		learn_handle(r, g.ei);
	check_outcome(r, "apply", &out, &x, g.ei);
	check_all(r, want == APPLY_STALE || want == APPLY_UNKNOWN ||
	    want == APPLY_INVALID);
}

/* tracker_apply_batch: 1-12 events, often the same entity again. */
static void
op_batch(struct run *r)
{
	enum { MAXB = 12 };
	static struct gen g[MAXB];
	static struct tracker_batch_item items[MAXB];
	struct expect x[MAXB];
	enum apply_result want[MAXB];
	size_t n = 1 + (size_t)rng_below(MAXB);
	bool no_change = true;
	int len = snprintf(r->op, sizeof(r->op), "batch of %zu:", n);

	for (size_t k = 0; k < n; k++) {
		/* one PRNG call per statement: the sequence must not depend
		 * on the compiler's order of evaluating arguments */
		int again = k > 0 ? g[k - 1].ei : -1;
		if (rng_chance(80)) {
			gen_invalid(r, &g[k]);
		} else {
			bool set = rng_chance(600);
			if (again >= 0 && !rng_chance(300))
				again = -1;
			gen_event(r, set, again, &g[k]);
		}
		size_t room = sizeof(r->op) - (size_t)len;
		if (len < (int)sizeof(r->op) - 3) {
			len += snprintf(r->op + len, room, " %zu: ", k);
			if (len < (int)sizeof(r->op) - 1)
				len += describe_event(r, &g[k], r->op + len,
				    sizeof(r->op) - (size_t)len);
		}
		want[k] = model_event(r, &g[k], &x[k]);
		no_change &= want[k] == APPLY_STALE ||
		    want[k] == APPLY_UNKNOWN || want[k] == APPLY_INVALID;
		memset(&items[k], 0, sizeof(items[k]));
		items[k].ev = &g[k].ev;
	}
	tracker_apply_batch(r->t, items, n, r->now);
	for (size_t k = 0; k < n; k++)
		if (want[k] == APPLY_NEW)
			learn_handle(r, g[k].ei);
	for (size_t k = 0; k < n; k++) {
		char what[32];
		snprintf(what, sizeof(what), "batch item %zu", k);
		if (items[k].result != want[k])
			FAILF(r, "%s: %s, model %s (%s)", what,
			    tracker_apply_name(items[k].result),
			    tracker_apply_name(want[k]), items[k].err);
		if (want[k] == APPLY_INVALID && items[k].err[0] == '\0')
			FAILF(r, "%s: APPLY_INVALID without a reason", what);
		check_outcome(r, what, &items[k].out, &x[k], g[k].ei);
	}
	r->counts[C_BATCH]++;
	check_all(r, no_change);
}

static void
op_pop(struct run *r)
{
	snprintf(r->op, sizeof(r->op), "pop_due");
	int ei = -1;
	uint32_t attempt = 0;
	int64_t due = 0;
	bool want = model_pop(r, &ei, &attempt, &due);
	struct tracker_job job;
	memset(&job, 0, sizeof(job));
	bool got = tracker_pop_due(r->t, r->now, &job);
	if (got != want)
		FAILF(r, "pop_due returned %d, model %d (entity %d)", got,
		    want, ei);
	if (want) {
		if (job.handle != r->ent[ei].handle ||
		    !key_eq(&job.key, &ents[ei].key))
			FAILF(r, "pop_due gave handle %u, model entity %d (%s) "
			    "handle %u", job.handle, ei, ents[ei].id,
			    r->ent[ei].handle);
		if (job.generation != r->ent[ei].generation)
			FAILF(r, "job generation %u, model %u", job.generation,
			    r->ent[ei].generation);
		if (job.attempt != attempt || job.due != due)
			FAILF(r, "job attempt %u due %" PRId64 ", model %u %"
			    PRId64, job.attempt, job.due, attempt, due);
		record_job(r, &job);
	}
	check_all(r, false);
}

/* Completes a job the model says is in flight. */
static void
op_complete(struct run *r)
{
	int cand[N_ENT], nc = 0;
	for (int i = 0; i < N_ENT; i++)
		if (r->ent[i].live && r->ent[i].state == ENTRY_SCANNING)
			cand[nc++] = i;
	if (nc == 0) {
		op_pop(r);
		return;
	}
	int ei = cand[rng_below((uint64_t)nc)];
	uint32_t h = r->ent[ei].handle;
	uint32_t attempt = running_attempt(&r->ent[ei]);
	unsigned x = (unsigned)rng_below(100);
	int result = x < 45 ? 0 : x < 85 ? 1 : 2;
	if (attempt >= 4 && x < 75) /* long retry chains reach the cap */
		result = 1;
	int error = result ? (int)rng_below(N_ERRORS) : -1;
	struct tracker_result tr = {
		.ok = result == 0,
		.error_class = result == 2 ? ERROR_PERMANENT : ERROR_RETRYABLE,
		.error = result ? error_pool[error] : NULL,
	};
	snprintf(r->op, sizeof(r->op), "complete entity %d (%s) handle %u "
	    "attempt %u result %d", ei, ents[ei].id, h, attempt, result);
	struct expect ex;
	int want = model_complete(r, h, attempt, result, error, &ex);
	if (want != 0)
		FAILF(r, "model: an in-flight job was stale");
	struct tracker_outcome out;
	int got = tracker_complete(r->t, h, attempt, &tr, r->now, &out);
	if (got != 0)
		FAILF(r, "tracker_complete: %d", got);
	check_outcome(r, "complete", &out, &ex, ei);
	check_all(r, false);
}

/* A completion that should mostly be stale: old jobs, wrong attempts. */
static void
op_complete_stale(struct run *r)
{
	uint32_t h, attempt;
	unsigned how = (unsigned)rng_below(10);
	if (how < 5 && r->nring > 0) {
		size_t n = r->nring < JOB_RING ? r->nring : JOB_RING;
		const struct tracker_job *j = &r->ring[rng_below(n)];
		h = j->handle;
		attempt = j->attempt;
	} else if (how < 9) {
		int ei = pick_entity();
		const struct ment *e = &r->ent[ei];
		h = e->live ? e->handle : (uint32_t)rng_below(64);
		if (e->live && e->state == ENTRY_SCANNING) {
			uint32_t ra = running_attempt(e);
			attempt = rng_chance(500) ? ra + 1 :
			    rng_chance(500) ? ra - 1 : 0;
		} else {
			attempt = (uint32_t)rng_below(4);
		}
	} else {
		h = rng_chance(500) ? TRACKER_NONE :
		    (uint32_t)(100000 + rng_below(1000000));
		attempt = 1;
	}
	unsigned x = (unsigned)rng_below(3);
	int error = x ? (int)rng_below(N_ERRORS) : -1;
	struct tracker_result tr = {
		.ok = x == 0,
		.error_class = x == 2 ? ERROR_PERMANENT : ERROR_RETRYABLE,
		.error = x ? error_pool[error] : NULL,
	};
	snprintf(r->op, sizeof(r->op), "stale-ish complete handle %u attempt "
	    "%u result %u", h, attempt, x);
	struct expect ex;
	int want = model_complete(r, h, attempt, (int)x, error, &ex);
	int ei = model_by_handle(r, h);
	struct tracker_outcome out;
	int got = tracker_complete(r->t, h, attempt, &tr, r->now, &out);
	if (got != want)
		FAILF(r, "tracker_complete: %d, model %d", got, want);
	if (want == 0)
		check_outcome(r, "complete", &out, &ex, ei);
	else if (out.status != OUTCOME_NONE)
		FAILF(r, "stale completion produced an outcome");
	check_all(r, want != 0);
}

static void
op_requeue(struct run *r)
{
	uint32_t h;
	int cand[N_ENT], nc = 0;
	for (int i = 0; i < N_ENT; i++)
		if (r->ent[i].live && r->ent[i].state == ENTRY_SCANNING)
			cand[nc++] = i;
	if (nc > 0 && rng_chance(850)) {
		h = r->ent[cand[rng_below((uint64_t)nc)]].handle;
	} else {
		int ei = pick_entity();
		h = r->ent[ei].live ? r->ent[ei].handle :
		    (uint32_t)rng_below(200);
	}
	snprintf(r->op, sizeof(r->op), "requeue handle %u", h);
	int want = model_requeue(r, h);
	int got = tracker_requeue(r->t, h, r->now);
	if (got != want)
		FAILF(r, "tracker_requeue: %d, model %d", got, want);
	check_all(r, want != 0);
}

static long
ops_per_run(void)
{
	const char *s = getenv("SBOMD_DIFF_OPS");
	if (s == NULL || *s == '\0')
		return DEFAULT_OPS;
	char *end;
	long n = strtol(s, &end, 10);
	if (*end != '\0' || n <= 0)
		fail_msg("SBOMD_DIFF_OPS=\"%s\" is not a positive number", s);
	return n;
}

static void
run_diff(uint32_t max_attempts, uint64_t seed)
{
	static struct run r; /* large: not on the stack */
	memset(&r, 0, sizeof(r));
	universe_init();

	tracker_config_defaults(&r.cfg);
	r.cfg.retry.base_ms = 1 * SEC;
	r.cfg.retry.max_ms = 30 * SEC;
	r.cfg.retry.multiplier = 2.0;
	r.cfg.retry.jitter = 0.1;
	r.cfg.retry.max_attempts = max_attempts;
	r.cfg.retry.failed_rescan_after_ms = 20 * MIN;
	r.cfg.rescan_after_ms = 10 * MIN;
	r.cfg.forget_after_ms = 15 * MIN;
	r.cfg.jitter_seed = 0xfeedface12345ULL;
	char err[256];
	if (tracker_config_validate(&r.cfg, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	r.t = tracker_new(&r.cfg);

	/* The keys the model computes are the tracker's keys. */
	for (int i = 0; i < N_ENT; i++) {
		struct tracker_key k;
		if (tracker_key_from_id(ents[i].kind, ents[i].id, &k, err,
			sizeof(err)) != 0 || !key_eq(&k, &ents[i].key))
			fail_msg("key of %s differs from the model's",
			    ents[i].id);
		r.ent[i].live = false;
	}

	rng_seed(seed);
	r.now = 1700000000000LL;
	long nops = ops_per_run();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (r.step = 0; r.step < nops; r.step++) {
		advance_clock(&r);
		memcpy(r.before, r.ent, sizeof(r.ent));
		unsigned x = (unsigned)rng_below(1000);
		if (r.focus >= 0 && x < (r.focus_heap ? 950u : 700u)) {
			if (r.focus_heap)
				op_pop(&r);
			else
				op_apply(&r, true, r.focus, false);
		} else if (x < 300)
			op_apply(&r, true, -1, false);
		else if (x < 510)
			op_apply(&r, false, -1, false);
		else if (x < 560)
			op_batch(&r);
		else if (x < 750)
			op_pop(&r);
		else if (x < 900)
			op_complete(&r);
		else if (x < 950)
			op_complete_stale(&r);
		else if (x < 995)
			op_requeue(&r);
		else
			op_apply(&r, false, -1, true);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("tracker diff, max_attempts %u: %ld operations in %.2f s, "
	    "%.1f simulated days\n", max_attempts, nops, secs,
	    (double)(r.now - 1700000000000LL) / (24.0 * HOUR));
	for (int c = 0; c < C_COUNT; c++)
		printf("  %-30s %10" PRIu64 "\n", counter_names[c],
		    r.counts[c]);
	printf("  new entities not in the lowest free slot: %" PRIu64
	    " of %" PRIu64 "\n", r.slot_not_lowest, r.slot_checks);
	fflush(stdout);

	/* Each transition must have happened (unless impossible in this run,
	 * or the run was shortened on purpose). */
	long min_count = (long)((double)MIN_COUNT * (double)nops /
	    (double)DEFAULT_OPS);
	for (int c = 0; c < C_COUNT; c++) {
		if (c == C_COMPLETE_FAILED_EXHAUSTED && max_attempts == 0)
			continue;
		if (c == C_BACKOFF_CAPPED && max_attempts != 0 &&
		    model_backoff_base(&r, max_attempts - 1) <
		    (double)r.cfg.retry.max_ms)
			continue;
		if ((long)r.counts[c] < min_count)
			fail_msg("\"%s\" happened %" PRIu64 " times, want at "
			    "least %ld", counter_names[c], r.counts[c],
			    min_count);
	}
	if (max_attempts == 0 && r.counts[C_COMPLETE_FAILED_EXHAUSTED] != 0)
		fail_msg("retries exhausted without a limit");
	tracker_free(r.t);
}

static void
test_diff_max_attempts_4(void **state)
{
	(void)state;
	run_diff(4, 0x9e3779b97f4a7c15ULL);
}

static void
test_diff_unlimited(void **state)
{
	(void)state;
	run_diff(0, 0xd1b54a32d192ed03ULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_max_attempts_4),
		cmocka_unit_test(test_diff_unlimited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
