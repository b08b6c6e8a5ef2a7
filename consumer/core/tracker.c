/*
 * tracker: entries, the dedup map, the due heap and the state machine (the
 * semantics are spelled out in tracker.h; the memory layout in
 * tracker_impl.h; the durable records in tracker_record.c).
 *
 * Invariants (tracker_check): QUEUED <=> in the heap with a scan due time;
 * SCANNING => not in the heap; DONE/FAILED/CANCELLED are in the heap iff
 * unreferenced (the forget timer); CANCELLED => unreferenced; every live
 * entry is in the map under its key; per-state counters match.
 *
 * Single-threaded: the engine thread owns a tracker.
 */
#include "core/tracker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tracker_impl.h"
#include "util/digest.h"
#include "util/duration.h"
#include "util/errbuf.h"

/* ---- entries ---- */

static bool
map_eq(void *ctx, uint32_t handle, const void *key)
{
	const tracker *t = ctx;
	const struct tracker_key *k = key;
	const struct entry *e = entry_at(t, handle);
	/* An entry spans two cache lines: load the second (the blob
	 * pointer, the state) with the first rather than after it. */
	__builtin_prefetch((const char *)e + sizeof(*e) - 1);
	return e->kind == k->kind &&
	    memcmp(e->key, k->bytes, TRACKER_KEY_LEN) == 0;
}

/* A forgotten entry: gone from memory, its record deleted. */
static void
entry_delete(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	deleted_push(t, e->partition, e->kind, e->key);
	entry_drop(t, h);
}

/* ---- configuration ---- */

void
tracker_config_defaults(struct tracker_config *c)
{
	memset(c, 0, sizeof(*c));
	policy_defaults(&c->retry);
	c->rescan_after_ms = 24LL * 3600 * 1000;
	c->forget_after_ms = 24LL * 3600 * 1000;
	c->jitter_seed = 0x5b0bd;
	c->max_sources = TRACKER_MAX_SOURCES;
	c->max_entity_bytes = TRACKER_DEFAULT_ENTITY_BYTES;
	c->max_clock_skew_ms = 10LL * 60 * 1000;
}

int
tracker_config_validate(const struct tracker_config *c, char *err,
    size_t errlen)
{
	int rc = policy_validate(&c->retry, err, errlen);
	if (rc != 0)
		return rc;
	if (c->rescan_after_ms < 0 || c->rescan_after_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen, "dedup.rescan_after must be >= 0");
		return -EINVAL;
	}
	if (c->forget_after_ms < 0 || c->forget_after_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen, "dedup.forget_after must be >= 0");
		return -EINVAL;
	}
	if (c->max_sources < 1 || c->max_sources > TRACKER_MAX_SOURCES) {
		errbuf_set(err, errlen, "dedup.max_sources must be 1-%d "
		    "(what a stored record may hold)", TRACKER_MAX_SOURCES);
		return -EINVAL;
	}
	if (c->max_entity_bytes < TRACKER_MIN_ENTITY_BYTES ||
	    c->max_entity_bytes > TRACKER_MAX_ENTITY_BYTES) {
		errbuf_set(err, errlen, "dedup.max_entity_bytes must be "
		    "%d KiB-%d MiB", TRACKER_MIN_ENTITY_BYTES >> 10,
		    TRACKER_MAX_ENTITY_BYTES >> 20);
		return -EINVAL;
	}
	if (c->max_clock_skew_ms < 0 ||
	    c->max_clock_skew_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen, "dedup.max_clock_skew must be >= 0");
		return -EINVAL;
	}
	return 0;
}

tracker *
tracker_new(const struct tracker_config *c)
{
	tracker *t = xcalloc(1, sizeof(*t));
	t->cfg = *c;
	t->map = idmap_new(map_eq, t);
	t->heap = dueheap_new();
	t->sources = strtab_new();
	t->blobs = blob_pool_new(t->sources);
	t->srcx = srcidx_new();
	return t;
}

void
tracker_free(tracker *t)
{
	if (t == NULL)
		return;
	/* Large blobs come from malloc, not from the pool's chunks. */
	for (uint32_t h = 0; h < t->nhandles; h++)
		if (entry_at(t, h)->flags & FLAG_LIVE)
			blob_release(t->blobs, entry_at(t, h)->blob);
	for (size_t i = 0; i < t->nchunks; i++)
		xunmap_huge(t->chunks[i], POOL_CHUNK_BYTES);
	free(t->chunks);
	free(t->free_handles);
	idmap_free(t->map);
	dueheap_free(t->heap);
	blob_pool_free(t->blobs);
	strtab_free(t->sources);
	srcidx_free(t->srcx);
	free(t->dirty);
	free(t->deleted);
	free(t);
}

/* ---- validation ---- */

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* Whether s[0..n) has a control character (below 0x20, or 0x7f): eight
 * bytes at a time, since every event's source and refs are checked.
 * (w - 0x20 * ONES) & ~w has a high bit set iff some byte is below 0x20,
 * (x - ONES) & ~x iff some byte of x = w ^ 0x7f.. is zero.) */
static bool
has_control(const char *s, size_t n)
{
	uint64_t hit = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w, x;
		memcpy(&w, s + i, 8);
		x = w ^ (0x7f * ONES);
		hit |= ((w - 0x20 * ONES) & ~w) | ((x - ONES) & ~x);
	}
	for (; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return (hit & HIGH) != 0;
}

static bool
valid_name(const char *s, size_t *len)
{
	size_t n = strnlen(s, TRACKER_MAX_NAME + 1);
	if (n == 0 || n > TRACKER_MAX_NAME || has_control(s, n))
		return false;
	*len = n;
	return true;
}

int
tracker_key_from_id(enum entity_kind kind, const char *id,
    struct tracker_key *key, char *err, size_t errlen)
{
	key->kind = (uint8_t)kind;
	if (kind == ENTITY_IMAGE)
		return digest_parse(id, key->bytes, err, errlen);
	if (kind != ENTITY_HOST) {
		errbuf_set(err, errlen, "unknown entity kind %d", (int)kind);
		return -EINVAL;
	}
	size_t n;
	if (id == NULL || !valid_name(id, &n)) {
		errbuf_set(err, errlen,
		    "host name must be 1-%d bytes without control characters",
		    TRACKER_MAX_NAME);
		return -EINVAL;
	}
	if (memchr(id, ' ', n) != NULL) {
		errbuf_set(err, errlen, "host name \"%.80s\" contains a space",
		    id);
		return -EINVAL;
	}
	uint8_t buf[5 + TRACKER_MAX_NAME];
	memcpy(buf, "host", 5); /* with its NUL */
	memcpy(buf + 5, id, n);
	digest_sha256(buf, 5 + n, key->bytes);
	return 0;
}

static int
ref_cmp(const void *a, const void *b)
{
	const struct blob_ref *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len ? 1 : 0);
}

/* Copies, validates, sorts and de-duplicates a list of refs: 0, or
 * -EINVAL with the reason in err. */
static int
canon_refs(const char *const *in, size_t n, struct blob_ref *out,
    size_t *nout, const char *what, char *err, size_t errlen)
{
	if (n > TRACKER_MAX_REFS) {
		errbuf_set(err, errlen, "%zu %s (at most %d per source)", n,
		    what, TRACKER_MAX_REFS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = in[i];
		size_t len = s ? strnlen(s, TRACKER_MAX_REF_LEN + 1) : 0;
		if (len == 0 || len > TRACKER_MAX_REF_LEN) {
			errbuf_set(err, errlen,
			    "%s entry %zu must be 1-%d bytes", what, i,
			    TRACKER_MAX_REF_LEN);
			return -EINVAL;
		}
		if (has_control(s, len)) {
			errbuf_set(err, errlen,
			    "%s entry %zu has a control character", what, i);
			return -EINVAL;
		}
		out[i].s = s;
		out[i].len = len;
	}
	if (n > 1)
		qsort(out, n, sizeof(*out), ref_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || ref_cmp(&out[k - 1], &out[i]) != 0)
			out[k++] = out[i];
	*nout = k;
	return 0;
}

/* A source name as events must give it: its length, or false with err. */
static bool
source_check(const char *source, size_t *len, char *err, size_t errlen)
{
	if (valid_name(source, len))
		return true;
	errbuf_set(err, errlen,
	    "source must be 1-%d bytes without control characters",
	    TRACKER_MAX_NAME);
	return false;
}

/* ---- source records (blob.h), with the index of wide entries ---- */

/* The record of source sid in entry h: true with *r, or false. */
static bool
src_find(const tracker *t, uint32_t h, uint32_t sid, struct blob_src *r)
{
	const uint8_t *b = entry_at(t, h)->blob;
	if (!blob_indexed(b))
		return blob_find_src(b, sid, r);
	uint32_t off = srcidx_get(t->srcx, h, sid);
	if (off == SRCIDX_NONE)
		return false;
	blob_src_at(b, off, r);
	return true;
}

/* Adds the record of ed (a source entry h has none of): amortised O(1). */
static void
src_add(tracker *t, uint32_t h, const struct blob_edit *ed)
{
	struct entry *e = entry_at(t, h);
	bool was = blob_indexed(e->blob);
	size_t off = blob_append_src(t->blobs, &e->blob, ed);
	if (was)
		srcidx_put(t->srcx, h, ed->id, (uint32_t)off);
	else if (blob_indexed(e->blob))
		srcidx_entry(t, h, e->blob, false);
}

/* Any other change of entry h's blob; records that moved are indexed
 * again (O(sources) for a wide entry, unless the change was in place). */
static void
src_edit(tracker *t, uint32_t h, const struct blob_edit *ed)
{
	struct entry *e = entry_at(t, h);
	const uint8_t *before = e->blob;
	size_t used = blob_used(before);
	bool was = blob_indexed(before);
	blob_rebuild(t->blobs, &e->blob, ed);
	if (blob_indexed(e->blob) &&
	    (!was || e->blob != before || blob_used(e->blob) != used))
		srcidx_entry(t, h, e->blob, false);
}

/*
 * Makes room in entry h for a record of srcbytes bytes that replaces
 * oldbytes (0 for a new source, which also counts against max_sources),
 * dropping records of sources that UNSET the entity (not keep's): true,
 * or false with the reason in err when that is not enough (nothing
 * changed then).
 */
static bool
src_room(tracker *t, uint32_t h, uint32_t keep, size_t srcbytes,
    size_t oldbytes, bool new_src, char *err, size_t errlen)
{
	struct entry *e = entry_at(t, h);
	const uint8_t *b = e->blob;
	size_t nsrc = blob_nsrc(b), max = t->cfg.max_sources;
	size_t used = blob_used(b) - oldbytes + srcbytes;
	size_t maxb = t->cfg.max_entity_bytes;
	bool over_n = new_src && nsrc + 1 > max, over_b = used > maxb;
	if (!over_n && !over_b)
		return true;
	char id[TRACKER_MAX_NAME + 8];
	tracker_id_string(t, h, id, sizeof(id));
	size_t unheld = blob_nsrc(b) - blob_nhold(b);
	/* (A record loaded under a higher bound may hold more already.) */
	size_t need_n = over_n ? nsrc + 1 - max : 0;
	if (unheld < need_n) { /* (keep is none for a new source) */
		errbuf_set(err, errlen, "%.80s has %zu sources holding it, "
		    "the most dedup.max_sources (%zu) allows", id, nsrc, max);
		return false;
	}
	size_t need = over_b ? used - maxb : 0;
	if (over_b && blob_unheld_bytes(b, keep) < need) {
		errbuf_set(err, errlen, "%.80s would hold %zu bytes of sources, "
		    "tags and digests, over dedup.max_entity_bytes (%zu)", id,
		    used, maxb);
		return false;
	}
	size_t k = over_n ? need_n - 1 + (max / 16 > 0 ? max / 16 : 1) : 0;
	bool was = blob_indexed(b);
	if (was)
		srcidx_entry(t, h, b, true);
	t->stats.sources_pruned += blob_prune(t->blobs, &e->blob, k, need,
	    keep);
	if (blob_indexed(e->blob))
		srcidx_entry(t, h, e->blob, false);
	mark_dirty(t, h);
	return true;
}

/* ---- the state machine ---- */

static void
outcome_clear(struct tracker_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->status = OUTCOME_NONE;
	out->handle = TRACKER_NONE;
	out->next_attempt_at = -1;
	out->error_class = -1;
}

static void
outcome_fill(const tracker *t, uint32_t h, enum outcome_status status,
    uint32_t attempt, struct tracker_outcome *out)
{
	const struct entry *e = entry_at(t, h);
	out->status = status;
	out->handle = h;
	out->key.kind = e->kind;
	memcpy(out->key.bytes, e->key, TRACKER_KEY_LEN);
	out->generation = e->generation;
	out->attempt = attempt;
}

static uint32_t
running_attempt(const struct entry *e)
{
	return e->attempts < POLICY_MAX_ATTEMPTS ? e->attempts + 1u :
	    POLICY_MAX_ATTEMPTS;
}

static void
queue_now(tracker *t, uint32_t h, int64_t now)
{
	struct entry *e = entry_at(t, h);
	entry_set_state(t, e, ENTRY_QUEUED);
	dueheap_push(t->heap, h, now);
}

/* An event of another partition moves the entry there: its record at the
 * old place goes, it is written at the new one. */
static void
move_partition(tracker *t, uint32_t h, int32_t partition)
{
	struct entry *e = entry_at(t, h);
	if (e->partition == partition)
		return;
	deleted_push(t, e->partition, e->kind, e->key);
	e->partition = partition;
	mark_dirty(t, h);
}

/* A referenced entity after a SET: decides whether to queue it again. */
static bool
reschedule_on_set(tracker *t, uint32_t h, int64_t now)
{
	struct entry *e = entry_at(t, h);
	switch (entry_state(e)) {
	case ENTRY_QUEUED:
	case ENTRY_SCANNING:
		return false;
	case ENTRY_DONE:
		if (t->cfg.rescan_after_ms > 0 &&
		    now - e->last_scan >= t->cfg.rescan_after_ms) {
			e->generation++;
			queue_now(t, h, now);
			return true;
		}
		return false;
	case ENTRY_FAILED:
		if (t->cfg.retry.failed_rescan_after_ms > 0 &&
		    now - e->last_scan >= t->cfg.retry.failed_rescan_after_ms) {
			e->attempts = 0;
			e->generation++;
			queue_now(t, h, now);
			return true;
		}
		return false;
	case ENTRY_CANCELLED:
		e->attempts = 0;
		e->generation++;
		queue_now(t, h, now);
		return true;
	}
	return false;
}

/* A SET of a new entity: the entry, its blob with this source, due now. */
static enum apply_result
set_new(tracker *t, const struct tracker_event *ev,
    const struct tracker_key *key, uint32_t hash, size_t namelen,
    struct blob_edit *ed, size_t srclen, int64_t now, char *err,
    size_t errlen)
{
	if (t->nfree == 0 && t->nhandles >= TRACKER_MAX_ENTRIES) {
		errbuf_set(err, errlen, "tracker is full (%u entities)",
		    TRACKER_MAX_ENTRIES);
		return APPLY_INVALID;
	}
	uint32_t h = entry_alloc(t);
	struct entry *e = entry_at(t, h);
	memcpy(e->key, key->bytes, TRACKER_KEY_LEN);
	e->kind = key->kind;
	e->partition = ev->partition;
	e->first_seen = now;
	e->blob = blob_new(t->blobs, key->kind == ENTITY_HOST ? ev->id : "",
	    key->kind == ENTITY_HOST ? namelen : 0);
	ed->id = strtab_intern(t->sources, ev->source, srclen);
	src_add(t, h, ed);
	idmap_insert(t->map, hash, h);
	dueheap_push(t->heap, h, now);
	mark_dirty(t, h);
	return APPLY_NEW;
}

static enum apply_result
apply_set(tracker *t, const struct tracker_event *ev,
    const struct tracker_key *key, size_t namelen, int64_t now,
    char *err, size_t errlen)
{
	size_t ntags, ndigests, srclen;
	if (!source_check(ev->source, &srclen, err, errlen) ||
	    canon_refs(ev->tags, ev->ntags, t->tags, &ntags, "repo_tags", err,
		errlen) != 0 ||
	    canon_refs(ev->digests, ev->ndigests, t->digests, &ndigests,
		"repo_digests", err, errlen) != 0)
		return APPLY_INVALID;

	uint32_t hash = key_hash(key->kind, key->bytes);
	uint32_t h = idmap_find(t->map, hash, key);
	struct blob_edit ed = {
		.new_src = true, .observed = ev->observed_at, .holding = true,
		.ntags = ntags, .tags = t->tags, .ndigests = ndigests,
		.digests = t->digests,
	};
	if (h == IDMAP_NONE) {
		if (blob_src_size(&ed) > t->cfg.max_entity_bytes) {
			errbuf_set(err, errlen, "%zu bytes of tags and digests, "
			    "over dedup.max_entity_bytes (%zu)",
			    blob_src_size(&ed), t->cfg.max_entity_bytes);
			return APPLY_INVALID;
		}
		return set_new(t, ev, key, hash, namelen, &ed, srclen, now,
		    err, errlen);
	}

	struct entry *e = entry_at(t, h);
	/* The blob is the next cache miss (two lines): start both before
	 * the source's name is looked up. */
	__builtin_prefetch(e->blob);
	__builtin_prefetch(e->blob + 64);
	uint32_t sid = strtab_lookup(t->sources, ev->source, srclen);
	struct blob_src r;
	bool known = sid != STRTAB_NONE && src_find(t, h, sid, &r);
	enum apply_result res;

	if (known && ev->observed_at < r.observed)
		return APPLY_STALE;
	bool was_referenced = blob_referenced(e->blob);
	if (known && r.holding &&
	    blob_refs_equal(&r, ntags, t->tags, ndigests, t->digests)) {
		if (ev->observed_at > r.observed) {
			blob_set_observed(e->blob, &r, ev->observed_at);
			mark_dirty(t, h);
		}
		res = APPLY_DEDUP;
	} else {
		if (!src_room(t, h, known ? sid : STRTAB_NONE,
			blob_src_size(&ed), known ? r.size : 0, !known, err,
			errlen))
			return APPLY_INVALID;
		e = entry_at(t, h);
		if (!known) {
			ed.id = strtab_intern(t->sources, ev->source, srclen);
			src_add(t, h, &ed);
		} else {
			ed.id = sid;
			src_edit(t, h, &ed);
		}
		mark_dirty(t, h);
		res = APPLY_UPDATED;
	}
	move_partition(t, h, ev->partition);
	if (!was_referenced)
		dueheap_remove(t->heap, h); /* the forget timer */
	if (reschedule_on_set(t, h, now)) {
		mark_dirty(t, h);
		res = APPLY_UPDATED;
	}
	return res;
}

static enum apply_result
apply_unset(tracker *t, const struct tracker_event *ev,
    const struct tracker_key *key, int64_t now, struct tracker_outcome *out,
    char *err, size_t errlen)
{
	size_t srclen;
	if (!source_check(ev->source, &srclen, err, errlen))
		return APPLY_INVALID;
	uint32_t h = idmap_find(t->map, key_hash(key->kind, key->bytes), key);
	if (h == IDMAP_NONE)
		return APPLY_UNKNOWN;
	struct entry *e = entry_at(t, h);
	uint32_t sid = strtab_lookup(t->sources, ev->source, srclen);
	struct blob_src r;
	if (sid == STRTAB_NONE || !src_find(t, h, sid, &r))
		return APPLY_UNKNOWN;
	if (ev->observed_at < r.observed)
		return APPLY_STALE;
	move_partition(t, h, ev->partition);
	if (!r.holding) {
		if (ev->observed_at > r.observed) {
			blob_set_observed(e->blob, &r, ev->observed_at);
			mark_dirty(t, h);
		}
		return APPLY_DEDUP;
	}
	struct blob_edit ed = {
		.new_src = true, .id = sid, .observed = ev->observed_at,
		.holding = false,
	};
	src_edit(t, h, &ed);
	mark_dirty(t, h);
	if (blob_referenced(e->blob))
		return APPLY_UPDATED;

	switch (entry_state(e)) {
	case ENTRY_QUEUED:
		dueheap_remove(t->heap, h);
		entry_set_state(t, e, ENTRY_CANCELLED);
		outcome_fill(t, h, OUTCOME_CANCELLED, e->attempts, out);
		break;
	case ENTRY_SCANNING:
		entry_set_state(t, e, ENTRY_CANCELLED);
		outcome_fill(t, h, OUTCOME_CANCELLED, running_attempt(e), out);
		out->abort_scan = true;
		break;
	default:
		break;
	}
	dueheap_push(t->heap, h, now + t->cfg.forget_after_ms);
	return APPLY_UPDATED;
}

/* Checks what tracker_apply needs besides the key: 0, or -EINVAL. */
static int
event_check(const struct tracker_event *ev, char *err, size_t errlen)
{
	if (ev->type != EVENT_SET && ev->type != EVENT_UNSET) {
		errbuf_set(err, errlen, "unknown event type %d", (int)ev->type);
		return -EINVAL;
	}
	if (ev->source == NULL) {
		errbuf_set(err, errlen, "missing source");
		return -EINVAL;
	}
	return 0;
}

/* tracker_apply once the event is checked and its key parsed. */
static enum apply_result
apply_keyed(tracker *t, const struct tracker_event *ev,
    const struct tracker_key *key, int64_t now, struct tracker_outcome *out,
    char *err, size_t errlen)
{
	/* The map slot is the first cache miss: start it before the
	 * source and refs are checked. */
	idmap_prefetch(t->map, key_hash(key->kind, key->bytes));
	size_t namelen = ev->kind == ENTITY_HOST ? strlen(ev->id) : 0;
	struct tracker_event clamped;
	if (ev->observed_at > now &&
	    ev->observed_at - now > t->cfg.max_clock_skew_ms) {
		clamped = *ev;
		clamped.observed_at = now;
		ev = &clamped;
		t->stats.clock_clamped++;
	}
	if (ev->type == EVENT_SET)
		return apply_set(t, ev, key, namelen, now, err, errlen);
	return apply_unset(t, ev, key, now, out, err, errlen);
}

enum apply_result
tracker_apply(tracker *t, const struct tracker_event *ev, int64_t now,
    struct tracker_outcome *out, char *err, size_t errlen)
{
	struct tracker_key key;

	outcome_clear(out);
	if (event_check(ev, err, errlen) != 0 ||
	    tracker_key_from_id(ev->kind, ev->id, &key, err, errlen) != 0)
		return APPLY_INVALID;
	return apply_keyed(t, ev, &key, now, out, err, errlen);
}

/*
 * Batches hide the three cache misses of a lookup (map slot, entry, blob;
 * together most of an event's cost when a million entities are tracked)
 * behind the work on earlier events: a software pipeline parses event
 * i + 3D and prefetches its map slot, peeks at the slot of event i + 2D
 * and prefetches its entry, prefetches the blob of event i + D, and
 * applies event i. Prefetches are hints only: event i is applied exactly
 * as tracker_apply would, whatever earlier events changed.
 */
#define PF_DIST 4
#define PF_RING (4 * PF_DIST)

void
tracker_apply_batch(tracker *t, struct tracker_batch_item *items, size_t n,
    int64_t now)
{
	struct tracker_key keys[PF_RING];
	uint32_t hints[PF_RING];
	bool ok[PF_RING];

	for (size_t i = 0; i < n + 3 * PF_DIST; i++) {
		if (i < n) {
			size_t r = i % PF_RING;
			struct tracker_batch_item *it = &items[i];
			it->err[0] = '\0';
			ok[r] = event_check(it->ev, it->err,
			    sizeof(it->err)) == 0 &&
			    tracker_key_from_id(it->ev->kind, it->ev->id,
				&keys[r], it->err, sizeof(it->err)) == 0;
			hints[r] = IDMAP_NONE;
			if (ok[r])
				idmap_prefetch(t->map, key_hash(keys[r].kind,
				    keys[r].bytes));
		}
		if (i >= PF_DIST && i - PF_DIST < n) {
			size_t r = (i - PF_DIST) % PF_RING;
			if (ok[r]) {
				hints[r] = idmap_peek(t->map,
				    key_hash(keys[r].kind, keys[r].bytes));
				if (hints[r] < t->nhandles)
					__builtin_prefetch(entry_at(t,
					    hints[r]));
			}
		}
		if (i >= 2 * PF_DIST && i - 2 * PF_DIST < n) {
			size_t r = (i - 2 * PF_DIST) % PF_RING;
			uint32_t h = hints[r];
			if (ok[r] && entry_is_live(t, h))
				__builtin_prefetch(entry_at(t, h)->blob);
		}
		if (i >= 3 * PF_DIST) {
			size_t k = i - 3 * PF_DIST;
			size_t r = k % PF_RING;
			struct tracker_batch_item *it = &items[k];
			outcome_clear(&it->out);
			it->result = ok[r] ? apply_keyed(t, it->ev, &keys[r], now,
			    &it->out, it->err, sizeof(it->err)) :
			    APPLY_INVALID;
		}
	}
}

void
tracker_shift_due(tracker *t, int64_t delta)
{
	dueheap_shift(t->heap, delta);
}

int64_t
tracker_clock_now(tracker *t, struct clock_watch *w, int64_t *jump)
{
	int64_t d;
	int64_t now = clock_watch_now(w, &d);
	if (d != 0)
		tracker_shift_due(t, d);
	if (jump != NULL)
		*jump = d;
	return now;
}

bool
tracker_next_due(const tracker *t, int64_t *due)
{
	uint32_t h;
	return dueheap_peek(t->heap, &h, due);
}

bool
tracker_pop_due(tracker *t, int64_t now, struct tracker_job *job)
{
	uint32_t h;
	int64_t due;
	while (dueheap_peek(t->heap, &h, &due) && due <= now) {
		dueheap_pop(t->heap, &h, &due);
		/* The next root is likely the next job: start loading it. */
		uint32_t next;
		int64_t next_due;
		if (dueheap_peek(t->heap, &next, &next_due))
			__builtin_prefetch(entry_at(t, next));
		struct entry *e = entry_at(t, h);
		if (entry_state(e) != ENTRY_QUEUED) {
			entry_delete(t, h); /* a forget timer */
			continue;
		}
		entry_set_state(t, e, ENTRY_SCANNING);
		mark_dirty(t, h);
		/* The caller reads the refs next (the scan job needs them). */
		__builtin_prefetch(e->blob);
		job->handle = h;
		job->key.kind = e->kind;
		memcpy(job->key.bytes, e->key, TRACKER_KEY_LEN);
		job->generation = e->generation;
		job->attempt = running_attempt(e);
		job->due = due;
		return true;
	}
	return false;
}

static bool
is_scanning(const tracker *t, uint32_t h, uint32_t attempt)
{
	if (!entry_is_live(t, h))
		return false;
	const struct entry *e = entry_at(t, h);
	return entry_state(e) == ENTRY_SCANNING &&
	    running_attempt(e) == attempt;
}

static void
set_error(tracker *t, uint32_t h, const char *msg)
{
	struct entry *e = entry_at(t, h);
	if (msg == NULL)
		msg = ""; /* memcmp/memmove of NULL is undefined even for 0 */
	size_t len = strnlen(msg, TRACKER_MAX_ERROR), oldlen;
	const char *old = blob_error(e->blob, &oldlen);
	if (len == oldlen && memcmp(old, msg, len) == 0)
		return;
	struct blob_edit ed = {.err_set = true, .err = msg, .errlen = len};
	src_edit(t, h, &ed);
}

/* The entry's last error as a C string in t's scratch, or NULL. */
static const char *
error_copy(tracker *t, const struct entry *e)
{
	size_t len;
	const char *s = blob_error(e->blob, &len);
	if (len == 0)
		return NULL;
	memcpy(t->errbuf, s, len);
	t->errbuf[len] = '\0';
	return t->errbuf;
}

int
tracker_complete(tracker *t, uint32_t h, uint32_t attempt,
    const struct tracker_result *r, int64_t now, struct tracker_outcome *out)
{
	outcome_clear(out);
	if (!is_scanning(t, h, attempt))
		return -ESTALE;
	struct entry *e = entry_at(t, h);
	mark_dirty(t, h);
	if (r->ok) {
		e->attempts = 0;
		e->last_scan = now;
		set_error(t, h, NULL);
		entry_set_state(t, e, ENTRY_DONE);
		outcome_fill(t, h, OUTCOME_SUCCEEDED, attempt, out);
		return 0;
	}
	e->attempts = (uint16_t)attempt;
	set_error(t, h, r->error ? r->error : "scan failed");
	out->error = error_copy(t, e);
	out->error_class = (int)r->error_class;
	if (policy_should_retry(&t->cfg.retry, (enum entity_kind)e->kind,
		r->error_class, attempt)) {
		uint64_t k64;
		memcpy(&k64, e->key, sizeof(k64));
		uint64_t seed = t->cfg.jitter_seed ^ k64 ^
		    ((uint64_t)attempt << 32);
		int64_t due = now + policy_backoff(&t->cfg.retry, attempt, seed);
		if (r->not_before > due)
			due = r->not_before;
		entry_set_state(t, e, ENTRY_QUEUED);
		dueheap_push(t->heap, h, due);
		outcome_fill(t, h, OUTCOME_RETRY_SCHEDULED, attempt, out);
		out->next_attempt_at = due;
		return 0;
	}
	e->last_scan = now;
	entry_set_state(t, e, ENTRY_FAILED);
	outcome_fill(t, h, OUTCOME_FAILED, attempt, out);
	return 0;
}

int
tracker_requeue(tracker *t, uint32_t h, int64_t now)
{
	if (!entry_is_live(t, h) ||
	    entry_state(entry_at(t, h)) != ENTRY_SCANNING)
		return -ESTALE;
	queue_now(t, h, now);
	mark_dirty(t, h);
	return 0;
}

/* ---- inspection ---- */

uint32_t
tracker_find(const tracker *t, const struct tracker_key *key)
{
	uint32_t h = idmap_find(t->map, key_hash(key->kind, key->bytes), key);
	return h == IDMAP_NONE ? TRACKER_NONE : h;
}

int
tracker_info_get(const tracker *t, uint32_t h, struct tracker_info *info)
{
	if (!entry_is_live(t, h))
		return -ENOENT;
	const struct entry *e = entry_at(t, h);
	memset(info, 0, sizeof(*info));
	info->key.kind = e->kind;
	memcpy(info->key.bytes, e->key, TRACKER_KEY_LEN);
	info->state = entry_state(e);
	info->attempts = e->attempts;
	info->generation = e->generation;
	info->partition = e->partition;
	info->first_seen = e->first_seen;
	info->last_scan = e->last_scan;
	info->in_heap = dueheap_contains(t->heap, h);
	info->due = info->in_heap ? dueheap_due(t->heap, h) : -1;
	info->referenced = blob_referenced(e->blob);
	info->nsources = blob_nsrc(e->blob);
	info->last_error = error_copy((tracker *)t, e);
	return 0;
}

int
tracker_sources(const tracker *t, uint32_t h,
    void (*fn)(void *ctx, const struct tracker_source_info *s), void *ctx)
{
	if (!entry_is_live(t, h))
		return -ENOENT;
	const uint8_t *b = entry_at(t, h)->blob;
	const struct blob_src *recs;
	size_t n = blob_sources_sorted(t->blobs, b, &recs);
	/* fn may call back into the tracker: copy the order first. */
	struct blob_src *v = xcalloc(n ? n : 1, sizeof(*v));
	memcpy(v, recs, n * sizeof(*v));
	struct tracker_source_info si;
	for (size_t i = 0; i < n; i++) {
		struct blob_src r = v[i];
		si.source = strtab_get(t->sources, r.id, NULL);
		si.observed_at = r.observed;
		si.holding = r.holding;
		si.ntags = r.ntags;
		si.ndigests = r.ndigests;
		const uint8_t *q = r.refs;
		for (size_t k = 0; k < r.ntags; k++)
			q = blob_ref_next(q, &si.tags[k], &si.tag_lens[k]);
		for (size_t k = 0; k < r.ndigests; k++)
			q = blob_ref_next(q, &si.digests[k],
			    &si.digest_lens[k]);
		fn(ctx, &si);
	}
	free(v);
	return 0;
}

void
tracker_id_string(const tracker *t, uint32_t h, char *buf, size_t buflen)
{
	if (!entry_is_live(t, h)) {
		snprintf(buf, buflen, "?");
		return;
	}
	const struct entry *e = entry_at(t, h);
	if (e->kind == ENTITY_IMAGE) {
		char s[DIGEST_STR_LEN];
		digest_format(e->key, s);
		snprintf(buf, buflen, "%s", s);
	} else {
		size_t len;
		const char *name = blob_name(e->blob, &len);
		snprintf(buf, buflen, "%.*s", (int)len, name);
	}
}

size_t
tracker_count(const tracker *t)
{
	return t->count;
}

void
tracker_stats(const tracker *t, struct tracker_stats *s)
{
	*s = t->stats;
}

size_t
tracker_count_state(const tracker *t, enum entry_state s)
{
	return (unsigned)s < ENTRY_STATE_COUNT ? t->state_count[s] : 0;
}

size_t
tracker_heap_size(const tracker *t)
{
	return dueheap_size(t->heap);
}

void
tracker_foreach(const tracker *t, void (*fn)(void *ctx, uint32_t handle),
    void *ctx)
{
	for (uint32_t h = 0; h < t->nhandles; h++)
		if (entry_at(t, h)->flags & FLAG_LIVE)
			fn(ctx, h);
}

size_t
tracker_page(const tracker *t, uint32_t from, size_t max_slots,
    uint32_t *out, size_t max, uint32_t *next)
{
	size_t n = 0;
	uint32_t h = from;
	size_t left = t->nhandles > from ? t->nhandles - from : 0;
	if (left > max_slots)
		left = max_slots;
	for (; left > 0 && n < max; left--, h++)
		if (entry_at(t, h)->flags & FLAG_LIVE)
			out[n++] = h;
	*next = from < t->nhandles ? h : t->nhandles;
	return n;
}

uint32_t
tracker_slots(const tracker *t)
{
	return t->nhandles;
}

/* ---- invariants ---- */

/* The blob's counts and, for a wide entry, the index agree with the
 * records; no source twice. */
static int
check_sources(const tracker *t, uint32_t h, char *err, size_t errlen)
{
	const uint8_t *b = entry_at(t, h)->blob;
	size_t off = blob_src_first(b), nhold = 0;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct blob_src r, r2;
		size_t at = off;
		off = blob_src_next(b, off, &r);
		nhold += r.holding;
		if (blob_indexed(b) &&
		    srcidx_get(t->srcx, h, r.id) != (uint32_t)at) {
			errbuf_set(err, errlen, "handle %u: source %u not "
			    "indexed at %zu", h, r.id, at);
			return -EINVAL;
		}
		if (!blob_indexed(b) && i < 64 &&
		    (!blob_find_src(b, r.id, &r2) || r2.off != at)) {
			errbuf_set(err, errlen, "handle %u: source %u twice",
			    h, r.id);
			return -EINVAL;
		}
	}
	if (off != blob_used(b) || nhold != blob_nhold(b)) {
		errbuf_set(err, errlen, "handle %u: blob of %zu bytes, %zu "
		    "holding, records say %zu and %zu", h, blob_used(b),
		    blob_nhold(b), off, nhold);
		return -EINVAL;
	}
	return 0;
}

/* Whether live entry h's state agrees with its heap membership and its
 * references; 0, or -EINVAL with err. */
static int
check_entry(const tracker *t, uint32_t h, char *err, size_t errlen)
{
	const struct entry *e = entry_at(t, h);
	enum entry_state s = entry_state(e);
	if (s > ENTRY_CANCELLED) {
		errbuf_set(err, errlen, "handle %u: bad state", h);
		return -EINVAL;
	}
	bool heap = dueheap_contains(t->heap, h);
	bool ref = blob_referenced(e->blob);
	struct tracker_key k = {.kind = e->kind};
	memcpy(k.bytes, e->key, TRACKER_KEY_LEN);
	if (tracker_find(t, &k) != h) {
		errbuf_set(err, errlen, "handle %u not found by key", h);
		return -EINVAL;
	}
	bool ok;
	switch (s) {
	case ENTRY_QUEUED: ok = heap && ref; break;
	case ENTRY_SCANNING: ok = !heap && ref; break;
	case ENTRY_CANCELLED: ok = heap && !ref; break;
	default: ok = heap == !ref; break;
	}
	if (!ok) {
		errbuf_set(err, errlen,
		    "handle %u: state %s, in heap %d, referenced %d",
		    h, entry_state_name(s), heap, ref);
		return -EINVAL;
	}
	if (e->generation == 0) {
		errbuf_set(err, errlen, "handle %u: generation 0", h);
		return -EINVAL;
	}
	if (blob_nsrc(e->blob) > TRACKER_MAX_SOURCES) {
		errbuf_set(err, errlen, "handle %u: too many sources", h);
		return -EINVAL;
	}
	return check_sources(t, h, err, errlen);
}

int
tracker_check(const tracker *t, char *err, size_t errlen)
{
	size_t counts[ENTRY_STATE_COUNT] = {0}, live = 0, in_heap = 0;
	size_t indexed = 0;
	int rc;
	if ((rc = idmap_check(t->map, err, errlen)) != 0 ||
	    (rc = dueheap_check(t->heap, err, errlen)) != 0)
		return rc;
	for (uint32_t h = 0; h < t->nhandles; h++) {
		if (!entry_is_live(t, h)) {
			if (dueheap_contains(t->heap, h)) {
				errbuf_set(err, errlen,
				    "dead handle %u in heap", h);
				return -EINVAL;
			}
			continue;
		}
		if ((rc = check_entry(t, h, err, errlen)) != 0)
			return rc;
		live++;
		counts[entry_state(entry_at(t, h))]++;
		if (blob_indexed(entry_at(t, h)->blob))
			indexed += blob_nsrc(entry_at(t, h)->blob);
		in_heap += dueheap_contains(t->heap, h);
	}
	if (live != t->count || live != idmap_count(t->map) ||
	    in_heap != dueheap_size(t->heap)) {
		errbuf_set(err, errlen,
		    "count %zu, live %zu, map %zu, heap %zu vs %zu", t->count,
		    live, idmap_count(t->map), dueheap_size(t->heap), in_heap);
		return -EINVAL;
	}
	if (indexed != srcidx_count(t->srcx)) {
		errbuf_set(err, errlen, "source index holds %zu, wide entries "
		    "%zu", srcidx_count(t->srcx), indexed);
		return -EINVAL;
	}
	for (int s = 0; s < ENTRY_STATE_COUNT; s++) {
		if (counts[s] != t->state_count[s]) {
			errbuf_set(err, errlen,
			    "state %s: counted %zu, kept %zu",
			    entry_state_name((enum entry_state)s), counts[s],
			    t->state_count[s]);
			return -EINVAL;
		}
	}
	return 0;
}

const char *
tracker_apply_name(enum apply_result r)
{
	static const char *names[] = {"new", "updated", "deduplicated", "stale",
	    "unknown", "invalid"};
	return (unsigned)r < APPLY_RESULT_COUNT ? names[r] : "?";
}
