/*
 * tracker: entries, the dedup map, the due heap and the state machine (the
 * semantics are spelled out in tracker.h).
 *
 * Memory layout, for a million tracked images:
 *  - entries live in a chunked pool indexed by a 32-bit handle (64 bytes
 *    each: key, two times, the blob pointer, partition, attempts, kind,
 *    state+flags); freed handles are reused;
 *  - the map stores {hash, handle} (8 bytes a slot, load <= 3/4);
 *  - the heap stores {due, handle, seq} (16 bytes) plus 4 bytes of
 *    position per handle; the heap's due time is the only copy of an
 *    entry's next due time;
 *  - everything of variable size (host name, last error, per-source
 *    records with their tags and digests) is one "blob" per entry from
 *    the slab allocator, sources sorted by name so the record encoding is
 *    canonical. Source names are interned (strtab) and referenced by id.
 *  About 150 bytes per image with one source and one tag.
 *
 * Blob format (native, never persisted as such):
 *   u16 nsrc | u16 errlen | u8 namelen | name | error |
 *   nsrc x { u32 source_id | i64 observed_at | u8 holding | u8 ntags |
 *            u8 ndigests | (ntags + ndigests) x { len | bytes } }
 *   where len is one byte below 0x80, else two bytes big-endian | 0x8000.
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

#include "core/dueheap.h"
#include "core/idmap.h"
#include "core/slab.h"
#include "core/strtab.h"
#include "util/digest.h"
#include "util/duration.h"
#include "util/xmalloc.h"

#define FLAG_STATE 0x07u
#define FLAG_LIVE 0x08u
#define FLAG_DIRTY 0x10u /* handle is in the dirty list */

#define POOL_SHIFT 15 /* 32768 entries: 2 MiB chunks, huge-page backed */
#define POOL_CHUNK (1u << POOL_SHIFT)

#define RECORD_VERSION 1

struct entry {
	uint8_t key[TRACKER_KEY_LEN];
	int64_t first_seen;
	int64_t last_scan; /* -1 before the first finished scan */
	uint8_t *blob;	   /* slab record, see the format above */
	int32_t partition;
	uint16_t attempts; /* failed attempts in a row, saturating */
	uint8_t kind;
	uint8_t flags; /* state | FLAG_LIVE | FLAG_DIRTY */
};

struct ref {
	const char *s;
	size_t len;
};

/* A decoded source record inside a blob. */
struct srcrec {
	uint32_t id;
	int64_t observed;
	uint8_t holding, ntags, ndigests;
	const uint8_t *refs;  /* the encoded strings */
	size_t refs_len;
	size_t off, size;     /* the whole record within the blob */
};

struct tracker {
	struct tracker_config cfg;
	struct entry **chunks;
	size_t nchunks;
	uint32_t nhandles; /* handles ever used */
	uint32_t *free_handles;
	size_t nfree, freecap;
	size_t count;
	size_t state_count[5];

	idmap *map;
	dueheap *heap;
	slab *slab;
	strtab *sources;

	uint32_t *dirty;
	size_t ndirty, dirtycap;
	uint32_t *deleted; /* slots whose records must go */
	size_t ndeleted, deletedcap;

	/* scratch, reused between calls */
	uint8_t *build;
	size_t buildcap;
	struct ref tags[TRACKER_MAX_REFS], digests[TRACKER_MAX_REFS];
	char errbuf[TRACKER_MAX_ERROR + 1];
	struct srcrec *recs;
	size_t recscap;
};

/* ---- small helpers ---- */

static inline struct entry *
entry_at(const tracker *t, uint32_t h)
{
	return &t->chunks[h >> POOL_SHIFT][h & (POOL_CHUNK - 1)];
}

static inline enum entry_state
entry_state(const struct entry *e)
{
	return (enum entry_state)(e->flags & FLAG_STATE);
}

static void
set_state(tracker *t, struct entry *e, enum entry_state s)
{
	t->state_count[entry_state(e)]--;
	t->state_count[s]++;
	e->flags = (uint8_t)((e->flags & ~FLAG_STATE) | s);
}

static inline uint32_t
key_hash(uint8_t kind, const uint8_t *bytes)
{
	uint32_t h;
	memcpy(&h, bytes, sizeof(h));
	return h ^ (kind * 0x9e3779b1u);
}

static bool
map_eq(void *ctx, uint32_t handle, const void *key)
{
	const tracker *t = ctx;
	const struct tracker_key *k = key;
	const struct entry *e = entry_at(t, handle);
	return e->kind == k->kind &&
	    memcmp(e->key, k->bytes, TRACKER_KEY_LEN) == 0;
}

static void
mark_dirty(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	if (e->flags & FLAG_DIRTY)
		return;
	e->flags |= FLAG_DIRTY;
	if (t->ndirty == t->dirtycap) {
		t->dirtycap = t->dirtycap ? t->dirtycap * 2 : 1024;
		t->dirty = xreallocarray(t->dirty, t->dirtycap,
		    sizeof(*t->dirty));
	}
	t->dirty[t->ndirty++] = h;
}

static void
build_reserve(tracker *t, size_t n)
{
	if (n <= t->buildcap)
		return;
	size_t cap = t->buildcap ? t->buildcap : 256;
	while (cap < n)
		cap *= 2;
	t->build = xrealloc(t->build, cap);
	t->buildcap = cap;
}

static size_t
ref_len_size(size_t len)
{
	return len < 0x80 ? 1 : 2;
}

static uint8_t *
put_ref(uint8_t *p, const char *s, size_t len)
{
	if (len < 0x80) {
		*p++ = (uint8_t)len;
	} else {
		*p++ = (uint8_t)(0x80 | (len >> 8));
		*p++ = (uint8_t)(len & 0xff);
	}
	memcpy(p, s, len);
	return p + len;
}

static const uint8_t *
get_ref(const uint8_t *p, const char **s, size_t *len)
{
	if (*p < 0x80) {
		*len = *p++;
	} else {
		*len = (size_t)((p[0] & 0x7f) << 8 | p[1]);
		p += 2;
	}
	*s = (const char *)p;
	return p + *len;
}

static inline uint16_t
rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* ---- blobs ---- */

#define BLOB_HDR 5
#define SRC_HDR 15

static size_t
blob_nsrc(const uint8_t *b)
{
	return rd16(b);
}

static size_t
blob_errlen(const uint8_t *b)
{
	return rd16(b + 2);
}

static size_t
blob_namelen(const uint8_t *b)
{
	return b[4];
}

static size_t
blob_src_start(const uint8_t *b)
{
	return BLOB_HDR + blob_namelen(b) + blob_errlen(b);
}

/* Parses the source record at off; returns the offset after it. */
static size_t
blob_src(const uint8_t *b, size_t off, struct srcrec *r)
{
	const uint8_t *p = b + off;
	memcpy(&r->id, p, 4);
	memcpy(&r->observed, p + 4, 8);
	r->holding = p[12];
	r->ntags = p[13];
	r->ndigests = p[14];
	const uint8_t *q = p + SRC_HDR;
	r->refs = q;
	for (unsigned i = 0; i < (unsigned)r->ntags + r->ndigests; i++) {
		const char *s;
		size_t len;
		q = get_ref(q, &s, &len);
	}
	r->refs_len = (size_t)(q - r->refs);
	r->off = off;
	r->size = (size_t)(q - p);
	return off + r->size;
}

static size_t
blob_size(const uint8_t *b)
{
	size_t off = blob_src_start(b);
	struct srcrec r;
	for (size_t i = 0; i < blob_nsrc(b); i++)
		off = blob_src(b, off, &r);
	return off;
}

/* Decodes all source records of a blob into t->recs. */
static size_t
blob_recs(tracker *t, const uint8_t *b)
{
	size_t n = blob_nsrc(b);
	if (n > t->recscap) {
		t->recscap = n * 2;
		t->recs = xreallocarray(t->recs, t->recscap, sizeof(*t->recs));
	}
	size_t off = blob_src_start(b);
	for (size_t i = 0; i < n; i++)
		off = blob_src(b, off, &t->recs[i]);
	return n;
}

static bool
blob_referenced(const uint8_t *b)
{
	size_t off = blob_src_start(b);
	struct srcrec r;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		off = blob_src(b, off, &r);
		if (r.holding)
			return true;
	}
	return false;
}

/* Finds source id in a blob; returns 1 with *r filled, or 0. */
static int
blob_find_src(const uint8_t *b, uint32_t id, struct srcrec *r)
{
	size_t off = blob_src_start(b);
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		off = blob_src(b, off, r);
		if (r->id == id)
			return 1;
	}
	return 0;
}

static void
blob_release(tracker *t, uint8_t *b)
{
	if (b != NULL)
		slab_release(t->slab, b, blob_size(b));
}

static uint8_t *
blob_commit(tracker *t, size_t len)
{
	uint8_t *b = slab_alloc(t->slab, len);
	memcpy(b, t->build, len);
	return b;
}

/* The canonical encoding of one source record into p. */
static size_t
src_encoded_size(size_t ntags, const struct ref *tags, size_t ndigests,
    const struct ref *digests)
{
	size_t n = SRC_HDR;
	for (size_t i = 0; i < ntags; i++)
		n += ref_len_size(tags[i].len) + tags[i].len;
	for (size_t i = 0; i < ndigests; i++)
		n += ref_len_size(digests[i].len) + digests[i].len;
	return n;
}

static uint8_t *
src_encode(uint8_t *p, uint32_t id, int64_t observed, bool holding,
    size_t ntags, const struct ref *tags, size_t ndigests,
    const struct ref *digests)
{
	memcpy(p, &id, 4);
	memcpy(p + 4, &observed, 8);
	p[12] = holding;
	p[13] = (uint8_t)ntags;
	p[14] = (uint8_t)ndigests;
	p += SRC_HDR;
	for (size_t i = 0; i < ntags; i++)
		p = put_ref(p, tags[i].s, tags[i].len);
	for (size_t i = 0; i < ndigests; i++)
		p = put_ref(p, digests[i].s, digests[i].len);
	return p;
}

/*
 * Rebuilds e's blob with: the error replaced (when err_set), and the
 * record of source id replaced by a new one (when new_src: inserted in
 * name order if absent) or removed (when drop_src).
 */
struct blob_edit {
	bool err_set;
	const char *err;
	size_t errlen;
	bool new_src;
	bool drop_src;
	uint32_t id;
	int64_t observed;
	bool holding;
	size_t ntags, ndigests;
	const struct ref *tags, *digests;
};

static int
src_name_cmp(const tracker *t, uint32_t a, uint32_t b)
{
	size_t la, lb;
	const char *sa = strtab_get(t->sources, a, &la);
	const char *sb = strtab_get(t->sources, b, &lb);
	int c = memcmp(sa, sb, la < lb ? la : lb);
	return c != 0 ? c : (la < lb ? -1 : la > lb ? 1 : 0);
}

static void
blob_rebuild(tracker *t, struct entry *e, const struct blob_edit *ed)
{
	const uint8_t *old = e->blob;
	size_t namelen = blob_namelen(old);
	const char *err = (const char *)old + BLOB_HDR + namelen;
	size_t errlen = blob_errlen(old);
	if (ed->err_set) {
		err = ed->err;
		errlen = ed->errlen;
	}
	size_t nold = blob_recs(t, old);
	size_t newsize = 0;
	if (ed->new_src)
		newsize = src_encoded_size(ed->ntags, ed->tags, ed->ndigests,
		    ed->digests);

	size_t need = BLOB_HDR + namelen + errlen + newsize;
	for (size_t i = 0; i < nold; i++)
		need += t->recs[i].size;
	build_reserve(t, need);

	uint8_t *p = t->build;
	size_t nsrc = 0;
	p[4] = (uint8_t)namelen;
	wr16(p + 2, (uint16_t)errlen);
	memcpy(p + BLOB_HDR, old + BLOB_HDR, namelen);
	memmove(p + BLOB_HDR + namelen, err, errlen);
	p += BLOB_HDR + namelen + errlen;

	bool placed = !ed->new_src;
	for (size_t i = 0; i < nold; i++) {
		const struct srcrec *r = &t->recs[i];
		if ((ed->new_src || ed->drop_src) && r->id == ed->id)
			continue;
		if (!placed && src_name_cmp(t, ed->id, r->id) < 0) {
			p = src_encode(p, ed->id, ed->observed, ed->holding,
			    ed->ntags, ed->tags, ed->ndigests, ed->digests);
			placed = true;
			nsrc++;
		}
		memcpy(p, old + r->off, r->size);
		p += r->size;
		nsrc++;
	}
	if (!placed) {
		p = src_encode(p, ed->id, ed->observed, ed->holding, ed->ntags,
		    ed->tags, ed->ndigests, ed->digests);
		nsrc++;
	}
	wr16(t->build, (uint16_t)nsrc);
	size_t len = (size_t)(p - t->build);
	blob_release(t, e->blob);
	e->blob = blob_commit(t, len);
}

static uint8_t *
blob_new(tracker *t, const char *name, size_t namelen)
{
	build_reserve(t, BLOB_HDR + namelen);
	wr16(t->build, 0);
	wr16(t->build + 2, 0);
	t->build[4] = (uint8_t)namelen;
	memcpy(t->build + BLOB_HDR, name, namelen);
	return blob_commit(t, BLOB_HDR + namelen);
}

/* ---- entries ---- */

/* Makes handles below n usable (the pool grows by whole chunks). */
#define POOL_CHUNK_BYTES ((size_t)POOL_CHUNK * sizeof(struct entry))

static void
pool_cover(tracker *t, uint32_t n)
{
	size_t need = ((size_t)n + POOL_CHUNK - 1) >> POOL_SHIFT;
	if (need <= t->nchunks)
		return;
	t->chunks = xreallocarray(t->chunks, need, sizeof(*t->chunks));
	for (; t->nchunks < need; t->nchunks++)
		t->chunks[t->nchunks] = xmap_huge(POOL_CHUNK_BYTES,
		    t->nchunks > 0);
}

/* Initialises the (free) entry at handle h as a live, QUEUED entry. */
static void
entry_init(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	uint8_t dirty = e->flags & FLAG_DIRTY;
	memset(e, 0, sizeof(*e));
	e->flags = (uint8_t)(FLAG_LIVE | dirty | ENTRY_QUEUED);
	e->last_scan = -1;
	t->state_count[ENTRY_QUEUED]++;
	t->count++;
}

static uint32_t
entry_alloc(tracker *t)
{
	uint32_t h;
	if (t->nfree > 0) {
		h = t->free_handles[--t->nfree];
	} else {
		h = t->nhandles++;
		pool_cover(t, t->nhandles);
	}
	entry_init(t, h);
	return h;
}

static void
entry_delete(tracker *t, uint32_t h)
{
	struct entry *e = entry_at(t, h);
	struct tracker_key key;
	key.kind = e->kind;
	memcpy(key.bytes, e->key, TRACKER_KEY_LEN);

	size_t n = blob_recs(t, e->blob);
	for (size_t i = 0; i < n; i++)
		strtab_unref(t->sources, t->recs[i].id);
	blob_release(t, e->blob);
	e->blob = NULL;
	dueheap_remove(t->heap, h);
	idmap_remove(t->map, key_hash(key.kind, key.bytes), &key);
	t->state_count[entry_state(e)]--;
	t->count--;
	e->flags &= FLAG_DIRTY;

	if (t->ndeleted == t->deletedcap) {
		t->deletedcap = t->deletedcap ? t->deletedcap * 2 : 256;
		t->deleted = xreallocarray(t->deleted, t->deletedcap,
		    sizeof(*t->deleted));
	}
	t->deleted[t->ndeleted++] = h;

	if (t->nfree == t->freecap) {
		t->freecap = t->freecap ? t->freecap * 2 : 1024;
		t->free_handles = xreallocarray(t->free_handles, t->freecap,
		    sizeof(*t->free_handles));
	}
	t->free_handles[t->nfree++] = h;
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
}

int
tracker_config_validate(const struct tracker_config *c, char *err,
    size_t errlen)
{
	int rc = policy_validate(&c->retry, err, errlen);
	if (rc != 0)
		return rc;
	if (c->rescan_after_ms < 0 || c->rescan_after_ms > DURATION_MAX_MS) {
		snprintf(err, errlen, "dedup.rescan_after must be >= 0");
		return -EINVAL;
	}
	if (c->forget_after_ms < 0 || c->forget_after_ms > DURATION_MAX_MS) {
		snprintf(err, errlen, "dedup.forget_after must be >= 0");
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
	t->slab = slab_new();
	t->sources = strtab_new();
	return t;
}

void
tracker_free(tracker *t)
{
	if (t == NULL)
		return;
	/* Large blobs come from malloc, not from the slab's chunks. */
	for (uint32_t h = 0; h < t->nhandles; h++)
		if (entry_at(t, h)->flags & FLAG_LIVE)
			blob_release(t, entry_at(t, h)->blob);
	for (size_t i = 0; i < t->nchunks; i++)
		xunmap_huge(t->chunks[i], POOL_CHUNK_BYTES);
	free(t->chunks);
	free(t->free_handles);
	idmap_free(t->map);
	dueheap_free(t->heap);
	slab_free(t->slab);
	strtab_free(t->sources);
	free(t->dirty);
	free(t->deleted);
	free(t->build);
	free(t->recs);
	free(t);
}

/* ---- validation ---- */

static bool
valid_name(const char *s, size_t *len)
{
	size_t n = strnlen(s, TRACKER_MAX_NAME + 1);
	if (n == 0 || n > TRACKER_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
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
		snprintf(err, errlen, "unknown entity kind %d", (int)kind);
		return -EINVAL;
	}
	size_t n;
	if (id == NULL || !valid_name(id, &n)) {
		snprintf(err, errlen,
		    "host name must be 1-%d bytes without control characters",
		    TRACKER_MAX_NAME);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (id[i] == ' ') {
			snprintf(err, errlen,
			    "host name \"%.80s\" contains a space", id);
			return -EINVAL;
		}
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
	const struct ref *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len ? 1 : 0);
}

/* Copies, validates, sorts and de-duplicates a list of refs. */
static int
canon_refs(const char *const *in, size_t n, struct ref *out, size_t *nout,
    const char *what, char *err, size_t errlen)
{
	if (n > TRACKER_MAX_REFS) {
		snprintf(err, errlen, "%zu %s (at most %d per source)", n,
		    what, TRACKER_MAX_REFS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = in[i];
		size_t len = s ? strnlen(s, TRACKER_MAX_REF_LEN + 1) : 0;
		if (len == 0 || len > TRACKER_MAX_REF_LEN) {
			snprintf(err, errlen,
			    "%s entry %zu must be 1-%d bytes", what, i,
			    TRACKER_MAX_REF_LEN);
			return -EINVAL;
		}
		for (size_t k = 0; k < len; k++) {
			if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) {
				snprintf(err, errlen,
				    "%s entry %zu has a control character",
				    what, i);
				return -EINVAL;
			}
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

/* Whether a stored record holds exactly these refs. */
static bool
refs_equal(const struct srcrec *r, size_t ntags, const struct ref *tags,
    size_t ndigests, const struct ref *digests)
{
	if (r->ntags != ntags || r->ndigests != ndigests)
		return false;
	const uint8_t *q = r->refs;
	for (size_t i = 0; i < ntags + ndigests; i++) {
		const struct ref *want = i < ntags ? &tags[i] :
		    &digests[i - ntags];
		const char *s;
		size_t len;
		q = get_ref(q, &s, &len);
		if (len != want->len || memcmp(s, want->s, len) != 0)
			return false;
	}
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
	set_state(t, e, ENTRY_QUEUED);
	dueheap_push(t->heap, h, now);
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
			queue_now(t, h, now);
			return true;
		}
		return false;
	case ENTRY_FAILED:
		if (t->cfg.retry.failed_rescan_after_ms > 0 &&
		    now - e->last_scan >= t->cfg.retry.failed_rescan_after_ms) {
			e->attempts = 0;
			queue_now(t, h, now);
			return true;
		}
		return false;
	case ENTRY_CANCELLED:
		e->attempts = 0;
		queue_now(t, h, now);
		return true;
	}
	return false;
}

static enum apply_result
apply_set(tracker *t, const struct tracker_event *ev,
    const struct tracker_key *key, size_t namelen, int64_t now,
    char *err, size_t errlen)
{
	size_t ntags, ndigests, srclen;
	if (!valid_name(ev->source, &srclen)) {
		snprintf(err, errlen,
		    "source must be 1-%d bytes without control characters",
		    TRACKER_MAX_NAME);
		return APPLY_INVALID;
	}
	if (canon_refs(ev->tags, ev->ntags, t->tags, &ntags, "repo_tags", err,
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
		if (t->nfree == 0 && t->nhandles >= TRACKER_MAX_SLOTS) {
			snprintf(err, errlen, "tracker is full (%u entities)",
			    TRACKER_MAX_SLOTS);
			return APPLY_INVALID;
		}
		h = entry_alloc(t);
		struct entry *e = entry_at(t, h);
		memcpy(e->key, key->bytes, TRACKER_KEY_LEN);
		e->kind = key->kind;
		e->partition = ev->partition;
		e->first_seen = now;
		e->blob = blob_new(t, key->kind == ENTITY_HOST ? ev->id : "",
		    key->kind == ENTITY_HOST ? namelen : 0);
		ed.id = strtab_intern(t->sources, ev->source, srclen);
		blob_rebuild(t, e, &ed);
		idmap_insert(t->map, hash, h);
		dueheap_push(t->heap, h, now);
		mark_dirty(t, h);
		return APPLY_NEW;
	}

	struct entry *e = entry_at(t, h);
	uint32_t sid = strtab_lookup(t->sources, ev->source, srclen);
	struct srcrec r;
	bool known = sid != STRTAB_NONE && blob_find_src(e->blob, sid, &r);
	enum apply_result res;

	if (known && ev->observed_at < r.observed)
		return APPLY_STALE;
	bool was_referenced = blob_referenced(e->blob);
	if (known && r.holding &&
	    refs_equal(&r, ntags, t->tags, ndigests, t->digests)) {
		if (ev->observed_at > r.observed) {
			memcpy(e->blob + r.off + 4, &ev->observed_at, 8);
			mark_dirty(t, h);
		}
		res = APPLY_DEDUP;
	} else {
		if (!known)
			sid = strtab_intern(t->sources, ev->source, srclen);
		ed.id = sid;
		blob_rebuild(t, e, &ed);
		mark_dirty(t, h);
		res = APPLY_UPDATED;
	}
	if (e->partition != ev->partition) {
		e->partition = ev->partition;
		mark_dirty(t, h);
	}
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
	if (!valid_name(ev->source, &srclen)) {
		snprintf(err, errlen,
		    "source must be 1-%d bytes without control characters",
		    TRACKER_MAX_NAME);
		return APPLY_INVALID;
	}
	uint32_t h = idmap_find(t->map, key_hash(key->kind, key->bytes), key);
	if (h == IDMAP_NONE)
		return APPLY_UNKNOWN;
	struct entry *e = entry_at(t, h);
	uint32_t sid = strtab_lookup(t->sources, ev->source, srclen);
	struct srcrec r;
	if (sid == STRTAB_NONE || !blob_find_src(e->blob, sid, &r))
		return APPLY_UNKNOWN;
	if (ev->observed_at < r.observed)
		return APPLY_STALE;
	if (!r.holding) {
		if (ev->observed_at > r.observed) {
			memcpy(e->blob + r.off + 4, &ev->observed_at, 8);
			mark_dirty(t, h);
		}
		return APPLY_DEDUP;
	}
	struct blob_edit ed = {
		.new_src = true, .id = sid, .observed = ev->observed_at,
		.holding = false,
	};
	blob_rebuild(t, e, &ed);
	mark_dirty(t, h);
	if (blob_referenced(e->blob))
		return APPLY_UPDATED;

	switch (entry_state(e)) {
	case ENTRY_QUEUED:
		dueheap_remove(t->heap, h);
		set_state(t, e, ENTRY_CANCELLED);
		outcome_fill(t, h, OUTCOME_CANCELLED, e->attempts, out);
		break;
	case ENTRY_SCANNING:
		set_state(t, e, ENTRY_CANCELLED);
		outcome_fill(t, h, OUTCOME_CANCELLED, running_attempt(e), out);
		out->abort_scan = true;
		break;
	default:
		break;
	}
	dueheap_push(t->heap, h, now + t->cfg.forget_after_ms);
	return APPLY_UPDATED;
}

/* Checks what tracker_apply needs besides the key. */
static int
event_check(const struct tracker_event *ev, char *err, size_t errlen)
{
	if (ev->type != EVENT_SET && ev->type != EVENT_UNSET) {
		snprintf(err, errlen, "unknown event type %d", (int)ev->type);
		return -EINVAL;
	}
	if (ev->source == NULL) {
		snprintf(err, errlen, "missing source");
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
	size_t namelen = ev->kind == ENTITY_HOST ? strlen(ev->id) : 0;
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
			if (ok[r] && h < t->nhandles &&
			    (entry_at(t, h)->flags & FLAG_LIVE))
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

int
tracker_next_due(const tracker *t, int64_t *due)
{
	uint32_t h;
	return dueheap_peek(t->heap, &h, due);
}

int
tracker_pop_due(tracker *t, int64_t now, struct tracker_job *job)
{
	uint32_t h;
	int64_t due;
	while (dueheap_peek(t->heap, &h, &due) == 0 && due <= now) {
		dueheap_pop(t->heap, &h, &due);
		/* The next root is likely the next job: start loading it. */
		uint32_t next;
		int64_t next_due;
		if (dueheap_peek(t->heap, &next, &next_due) == 0)
			__builtin_prefetch(entry_at(t, next));
		struct entry *e = entry_at(t, h);
		if (entry_state(e) != ENTRY_QUEUED) {
			entry_delete(t, h); /* a forget timer */
			continue;
		}
		set_state(t, e, ENTRY_SCANNING);
		mark_dirty(t, h);
		/* The caller reads the refs next (the scan job needs them). */
		__builtin_prefetch(e->blob);
		job->handle = h;
		job->key.kind = e->kind;
		memcpy(job->key.bytes, e->key, TRACKER_KEY_LEN);
		job->attempt = running_attempt(e);
		job->due = due;
		return 1;
	}
	return 0;
}

static bool
is_scanning(const tracker *t, uint32_t h, uint32_t attempt)
{
	if (h >= t->nhandles)
		return false;
	const struct entry *e = entry_at(t, h);
	return (e->flags & FLAG_LIVE) && entry_state(e) == ENTRY_SCANNING &&
	    running_attempt(e) == attempt;
}

static void
set_error(tracker *t, struct entry *e, const char *msg)
{
	if (msg == NULL)
		msg = ""; /* memcmp/memmove of NULL is undefined even for 0 */
	size_t len = strnlen(msg, TRACKER_MAX_ERROR);
	if (len == blob_errlen(e->blob) &&
	    memcmp(e->blob + BLOB_HDR + blob_namelen(e->blob), msg, len) == 0)
		return;
	struct blob_edit ed = {.err_set = true, .err = msg, .errlen = len};
	blob_rebuild(t, e, &ed);
}

static const char *
error_copy(tracker *t, const struct entry *e)
{
	size_t len = blob_errlen(e->blob);
	if (len == 0)
		return NULL;
	memcpy(t->errbuf, e->blob + BLOB_HDR + blob_namelen(e->blob), len);
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
		set_error(t, e, NULL);
		set_state(t, e, ENTRY_DONE);
		outcome_fill(t, h, OUTCOME_SUCCEEDED, attempt, out);
		return 0;
	}
	e->attempts = (uint16_t)attempt;
	set_error(t, e, r->error ? r->error : "scan failed");
	out->error = error_copy(t, e);
	out->error_class = (int)r->error_class;
	if (policy_should_retry(&t->cfg.retry, (enum entity_kind)e->kind,
		r->error_class, attempt)) {
		uint64_t k64;
		memcpy(&k64, e->key, sizeof(k64));
		uint64_t seed = t->cfg.jitter_seed ^ k64 ^
		    ((uint64_t)attempt << 32);
		int64_t due = now + policy_backoff(&t->cfg.retry, attempt, seed);
		set_state(t, e, ENTRY_QUEUED);
		dueheap_push(t->heap, h, due);
		outcome_fill(t, h, OUTCOME_RETRY_SCHEDULED, attempt, out);
		out->next_attempt_at = due;
		return 0;
	}
	e->last_scan = now;
	set_state(t, e, ENTRY_FAILED);
	outcome_fill(t, h, OUTCOME_FAILED, attempt, out);
	return 0;
}

int
tracker_requeue(tracker *t, uint32_t h, int64_t now)
{
	if (h >= t->nhandles)
		return -ESTALE;
	struct entry *e = entry_at(t, h);
	if (!(e->flags & FLAG_LIVE) || entry_state(e) != ENTRY_SCANNING)
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

static bool
is_live(const tracker *t, uint32_t h)
{
	return h < t->nhandles && (entry_at(t, h)->flags & FLAG_LIVE);
}

int
tracker_info_get(const tracker *t, uint32_t h, struct tracker_info *info)
{
	if (!is_live(t, h))
		return -ENOENT;
	const struct entry *e = entry_at(t, h);
	memset(info, 0, sizeof(*info));
	info->key.kind = e->kind;
	memcpy(info->key.bytes, e->key, TRACKER_KEY_LEN);
	info->state = entry_state(e);
	info->attempts = e->attempts;
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
	if (!is_live(t, h))
		return -ENOENT;
	const uint8_t *b = entry_at(t, h)->blob;
	size_t off = blob_src_start(b);
	struct tracker_source_info si;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct srcrec r;
		off = blob_src(b, off, &r);
		si.source = strtab_get(t->sources, r.id, NULL);
		si.observed_at = r.observed;
		si.holding = r.holding;
		si.ntags = r.ntags;
		si.ndigests = r.ndigests;
		const uint8_t *q = r.refs;
		for (size_t k = 0; k < r.ntags; k++)
			q = get_ref(q, &si.tags[k], &si.tag_lens[k]);
		for (size_t k = 0; k < r.ndigests; k++)
			q = get_ref(q, &si.digests[k], &si.digest_lens[k]);
		fn(ctx, &si);
	}
	return 0;
}

void
tracker_id_string(const tracker *t, uint32_t h, char *buf, size_t buflen)
{
	if (!is_live(t, h)) {
		snprintf(buf, buflen, "?");
		return;
	}
	const struct entry *e = entry_at(t, h);
	if (e->kind == ENTITY_IMAGE) {
		char s[DIGEST_STR_LEN];
		digest_format(e->key, s);
		snprintf(buf, buflen, "%s", s);
	} else {
		snprintf(buf, buflen, "%.*s", (int)blob_namelen(e->blob),
		    (const char *)e->blob + BLOB_HDR);
	}
}

size_t
tracker_count(const tracker *t)
{
	return t->count;
}

size_t
tracker_count_state(const tracker *t, enum entry_state s)
{
	return (unsigned)s < 5 ? t->state_count[s] : 0;
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

/* ---- records ----
 *
 * Record format, version 1, all integers little-endian:
 *   u8 version | u8 kind | 32 bytes key | u8 state |
 *   u8 flags (bit 0: in heap) |
 *   u16 attempts | i32 partition | i64 first_seen | i64 last_scan |
 *   i64 due | u8 namelen | name | u16 errlen | error | u16 nsrc |
 *   nsrc x { u8 namelen | name | i64 observed_at | u8 holding |
 *            u8 ntags | u8 ndigests | (ntags + ndigests) x
 *            { u16 len | bytes } }
 * Sources are in name order, tags and digests sorted: one logical state
 * has exactly one encoding.
 */

#define REC_FIXED (36 + TRACKER_KEY_LEN)

struct wbuf {
	uint8_t **buf;
	size_t *cap;
	size_t len;
};

static uint8_t *
wb_room(struct wbuf *w, size_t n)
{
	if (w->len + n > *w->cap) {
		size_t cap = *w->cap ? *w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		*w->buf = xrealloc(*w->buf, cap);
		*w->cap = cap;
	}
	uint8_t *p = *w->buf + w->len;
	w->len += n;
	return p;
}

static void
wb_put(struct wbuf *w, const void *data, size_t n)
{
	memcpy(wb_room(w, n), data, n);
}

static void
wb_u8(struct wbuf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	wb_put(w, &b, 1);
}

static void
wb_u16(struct wbuf *w, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v & 0xff), (uint8_t)(v >> 8)};
	wb_put(w, b, 2);
}

static void
wb_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	wb_put(w, b, 8);
}

size_t
tracker_encode(const tracker *t, uint32_t h, uint8_t **buf, size_t *bufcap)
{
	const struct entry *e = entry_at(t, h);
	const uint8_t *b = e->blob;
	struct wbuf w = {buf, bufcap, 0};
	bool in_heap = dueheap_contains(t->heap, h);

	wb_u8(&w, RECORD_VERSION);
	wb_u8(&w, e->kind);
	wb_put(&w, e->key, TRACKER_KEY_LEN);
	wb_u8(&w, entry_state(e));
	wb_u8(&w, in_heap ? 1 : 0);
	wb_u16(&w, e->attempts);
	uint8_t p4[4];
	uint32_t part = (uint32_t)e->partition;
	for (int i = 0; i < 4; i++)
		p4[i] = (uint8_t)(part >> (8 * i));
	wb_put(&w, p4, 4);
	wb_u64(&w, (uint64_t)e->first_seen);
	wb_u64(&w, (uint64_t)e->last_scan);
	wb_u64(&w, (uint64_t)(in_heap ? dueheap_due(t->heap, h) : 0));
	wb_u8(&w, (unsigned)blob_namelen(b));
	wb_put(&w, b + BLOB_HDR, blob_namelen(b));
	wb_u16(&w, blob_errlen(b));
	wb_put(&w, b + BLOB_HDR + blob_namelen(b), blob_errlen(b));
	wb_u16(&w, blob_nsrc(b));
	size_t off = blob_src_start(b);
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct srcrec r;
		off = blob_src(b, off, &r);
		size_t nlen;
		const char *name = strtab_get(t->sources, r.id, &nlen);
		wb_u8(&w, (unsigned)nlen);
		wb_put(&w, name, nlen);
		wb_u64(&w, (uint64_t)r.observed);
		wb_u8(&w, r.holding);
		wb_u8(&w, r.ntags);
		wb_u8(&w, r.ndigests);
		const uint8_t *q = r.refs;
		for (size_t k = 0; k < (size_t)r.ntags + r.ndigests; k++) {
			const char *s;
			size_t len;
			q = get_ref(q, &s, &len);
			wb_u16(&w, len);
			wb_put(&w, s, len);
		}
	}
	return w.len;
}

int
tracker_record_key(const uint8_t *rec, size_t len, struct tracker_key *key)
{
	if (len < 2 + TRACKER_KEY_LEN || rec[1] > ENTITY_HOST)
		return -EINVAL;
	key->kind = rec[1];
	memcpy(key->bytes, rec + 2, TRACKER_KEY_LEN);
	return 0;
}

struct rbuf {
	const uint8_t *p, *end;
	bool bad;
};

static const uint8_t *
rb_take(struct rbuf *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

static unsigned
rb_u8(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 1);
	return p ? p[0] : 0;
}

static size_t
rb_u16(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 2);
	return p ? (size_t)(p[0] | p[1] << 8) : 0;
}

static uint64_t
rb_u64(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 8);
	uint64_t v = 0;
	for (int i = 0; p && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int
rec_fail(struct rbuf *r, const uint8_t *rec, char *err, size_t errlen,
    const char *what)
{
	snprintf(err, errlen, "corrupt record: %s at byte %zu", what,
	    (size_t)(r->p - rec));
	return -EINVAL;
}

int
tracker_load(tracker *t, uint32_t slot, const uint8_t *rec, size_t len,
    int64_t now, char *err, size_t errlen)
{
	struct rbuf r = {rec, rec + len, false};
	struct tracker_key keybuf;
	const struct tracker_key *key = &keybuf;
	if (len < 1)
		return rec_fail(&r, rec, err, errlen, "empty");
	unsigned version = rb_u8(&r);
	if (version > RECORD_VERSION) {
		snprintf(err, errlen,
		    "record format version %u is newer than this sbomd "
		    "understands (%d)", version, RECORD_VERSION);
		return -EPROTO;
	}
	if (version != RECORD_VERSION)
		return rec_fail(&r, rec, err, errlen, "unknown version");
	if (len < REC_FIXED)
		return rec_fail(&r, rec, err, errlen, "truncated header");
	unsigned kind = rb_u8(&r);
	keybuf.kind = (uint8_t)kind;
	memcpy(keybuf.bytes, rb_take(&r, TRACKER_KEY_LEN), TRACKER_KEY_LEN);
	unsigned state = rb_u8(&r), flags = rb_u8(&r);
	size_t attempts = rb_u16(&r);
	const uint8_t *pp = rb_take(&r, 4);
	int32_t partition = (int32_t)(uint32_t)(pp[0] | pp[1] << 8 |
	    pp[2] << 16 | (uint32_t)pp[3] << 24);
	int64_t first_seen = (int64_t)rb_u64(&r);
	int64_t last_scan = (int64_t)rb_u64(&r);
	int64_t due = (int64_t)rb_u64(&r);
	if (kind > ENTITY_HOST)
		return rec_fail(&r, rec, err, errlen, "unknown kind");
	if (slot >= TRACKER_MAX_SLOTS)
		return rec_fail(&r, rec, err, errlen, "slot out of range");
	if (slot < t->nhandles && (entry_at(t, slot)->flags & FLAG_LIVE))
		return rec_fail(&r, rec, err, errlen, "slot in use");
	if (state > ENTRY_CANCELLED || flags > 1)
		return rec_fail(&r, rec, err, errlen, "bad state or flags");
	if (tracker_find(t, key) != TRACKER_NONE)
		return rec_fail(&r, rec, err, errlen, "duplicate key");

	size_t namelen = rb_u8(&r);
	const uint8_t *name = rb_take(&r, namelen);
	size_t elen = rb_u16(&r);
	const uint8_t *emsg = rb_take(&r, elen);
	size_t nsrc = rb_u16(&r);
	if (r.bad)
		return rec_fail(&r, rec, err, errlen, "truncated");
	if (elen > TRACKER_MAX_ERROR || nsrc > TRACKER_MAX_SOURCES ||
	    namelen > TRACKER_MAX_NAME ||
	    (kind == ENTITY_HOST) != (namelen > 0))
		return rec_fail(&r, rec, err, errlen, "field out of range");
	if (kind == ENTITY_HOST) {
		char hn[TRACKER_MAX_NAME + 1];
		struct tracker_key k2;
		char e2[16];
		memcpy(hn, name, namelen);
		hn[namelen] = '\0';
		if (tracker_key_from_id(ENTITY_HOST, hn, &k2, e2,
			sizeof(e2)) != 0 ||
		    memcmp(k2.bytes, key->bytes, TRACKER_KEY_LEN) != 0)
			return rec_fail(&r, rec, err, errlen,
			    "host name does not match key");
	}

	/* Build the entry at its slot; on a later error it is torn down. */
	uint32_t h = slot;
	if (h >= t->nhandles) {
		t->nhandles = h + 1;
		pool_cover(t, t->nhandles);
	}
	entry_init(t, h);
	struct entry *e = entry_at(t, h);
	memcpy(e->key, key->bytes, TRACKER_KEY_LEN);
	e->kind = (uint8_t)kind;
	e->partition = partition;
	e->attempts = (uint16_t)attempts;
	e->first_seen = first_seen;
	e->last_scan = last_scan;
	e->blob = blob_new(t, (const char *)name, namelen);
	if (elen > 0) {
		struct blob_edit ed = {.err_set = true,
		    .err = (const char *)emsg, .errlen = elen};
		blob_rebuild(t, e, &ed);
	}
	idmap_insert(t->map, key_hash(e->kind, e->key), h);
	int rc = 0;
	const char *why = NULL;
	bool any_holding = false;
	for (size_t i = 0; i < nsrc && why == NULL; i++) {
		size_t sl = rb_u8(&r);
		const uint8_t *sname = rb_take(&r, sl);
		int64_t observed = (int64_t)rb_u64(&r);
		unsigned holding = rb_u8(&r), nt = rb_u8(&r), nd = rb_u8(&r);
		if (r.bad) {
			why = "truncated source";
			break;
		}
		if (sl == 0 || sl > TRACKER_MAX_NAME || holding > 1 ||
		    nt > TRACKER_MAX_REFS || nd > TRACKER_MAX_REFS) {
			why = "source field out of range";
			break;
		}
		/* as for events: strtab keeps names NUL-terminated */
		for (size_t k = 0; k < sl && why == NULL; k++)
			if (sname[k] < 0x20 || sname[k] == 0x7f)
				why = "control character in a source name";
		if (why != NULL)
			break;
		struct ref *refs[2] = {t->tags, t->digests};
		unsigned counts[2] = {nt, nd};
		for (int g = 0; g < 2 && why == NULL; g++) {
			for (unsigned k = 0; k < counts[g]; k++) {
				size_t rl = rb_u16(&r);
				const uint8_t *s = rb_take(&r, rl);
				if (r.bad || rl == 0 ||
				    rl > TRACKER_MAX_REF_LEN) {
					why = "bad reference";
					break;
				}
				refs[g][k].s = (const char *)s;
				refs[g][k].len = rl;
			}
		}
		if (why != NULL)
			break;
		uint32_t sid = strtab_lookup(t->sources, (const char *)sname,
		    sl);
		struct srcrec dup;
		if (sid != STRTAB_NONE && blob_find_src(e->blob, sid, &dup)) {
			why = "duplicate source";
			break;
		}
		sid = strtab_intern(t->sources, (const char *)sname, sl);
		struct blob_edit ed = {.new_src = true, .id = sid,
		    .observed = observed, .holding = holding != 0,
		    .ntags = nt, .tags = t->tags, .ndigests = nd,
		    .digests = t->digests};
		blob_rebuild(t, e, &ed);
		any_holding |= holding != 0;
	}
	if (why == NULL && r.p != r.end)
		why = "trailing bytes";
	if (why == NULL && state == ENTRY_CANCELLED && any_holding)
		why = "cancelled entity still referenced";
	if (why == NULL) {
		/* Heap membership must follow from state and references. */
		bool want_heap = state == ENTRY_QUEUED ||
		    (state != ENTRY_SCANNING && !any_holding);
		bool want_ref = state == ENTRY_QUEUED ||
		    state == ENTRY_SCANNING;
		if (state != ENTRY_SCANNING && (flags & 1) != want_heap)
			why = "heap flag contradicts the state";
		else if (want_ref && !any_holding)
			why = "queued or scanning entity without references";
	}
	if (why != NULL) {
		rc = rec_fail(&r, rec, err, errlen, why);
		entry_delete(t, h);
		t->ndeleted--; /* not a deletion to persist */
		return rc;
	}

	set_state(t, e, (enum entry_state)state);
	if (state == ENTRY_SCANNING) {
		/* Interrupted by the crash: run it again, same attempt. */
		set_state(t, e, ENTRY_QUEUED);
		dueheap_append(t->heap, h, now);
		return 1;
	}
	if (flags & 1)
		dueheap_append(t->heap, h, due);
	return 0;
}

uint32_t
tracker_slots(const tracker *t)
{
	return t->nhandles;
}

void
tracker_reserve(tracker *t, size_t n)
{
	idmap_reserve(t->map, n);
}

void
tracker_load_finish(tracker *t)
{
	/* Free slots: every hole below the highest slot, lowest reused
	 * first so that new records keep landing close together. */
	t->nfree = 0;
	for (uint32_t h = t->nhandles; h-- > 0;) {
		if (entry_at(t, h)->flags & FLAG_LIVE)
			continue;
		if (t->nfree == t->freecap) {
			t->freecap = t->freecap ? t->freecap * 2 : 1024;
			t->free_handles = xreallocarray(t->free_handles,
			    t->freecap, sizeof(*t->free_handles));
		}
		t->free_handles[t->nfree++] = h;
	}
	dueheap_build(t->heap);
	tracker_clear_dirty(t);
}

int
tracker_foreach_dirty(const tracker *t, tracker_put_fn put, tracker_del_fn del,
    void *ctx)
{
	int rc;
	/* Deletions first: a slot freed and reused in one batch must end
	 * up holding its new entry. */
	for (size_t i = 0; i < t->ndeleted; i++)
		if ((rc = del(ctx, t->deleted[i])) != 0)
			return rc;
	for (size_t i = 0; i < t->ndirty; i++) {
		uint32_t h = t->dirty[i];
		if (!(entry_at(t, h)->flags & FLAG_LIVE))
			continue;
		if ((rc = put(ctx, h)) != 0)
			return rc;
	}
	return 0;
}

size_t
tracker_dirty_count(const tracker *t)
{
	return t->ndirty + t->ndeleted;
}

void
tracker_clear_dirty(tracker *t)
{
	for (size_t i = 0; i < t->ndirty; i++)
		entry_at(t, t->dirty[i])->flags &= (uint8_t)~FLAG_DIRTY;
	t->ndirty = 0;
	t->ndeleted = 0;
}

int
tracker_check(const tracker *t, char *err, size_t errlen)
{
	size_t counts[5] = {0}, live = 0, in_heap = 0;
	if (idmap_check(t->map, err, errlen) != 0)
		return -1;
	if (dueheap_check(t->heap, err, errlen) != 0)
		return -1;
	for (uint32_t h = 0; h < t->nhandles; h++) {
		const struct entry *e = entry_at(t, h);
		if (!(e->flags & FLAG_LIVE)) {
			if (dueheap_contains(t->heap, h)) {
				snprintf(err, errlen, "dead handle %u in heap",
				    h);
				return -1;
			}
			continue;
		}
		live++;
		enum entry_state s = entry_state(e);
		if (s > ENTRY_CANCELLED) {
			snprintf(err, errlen, "handle %u: bad state", h);
			return -1;
		}
		counts[s]++;
		bool heap = dueheap_contains(t->heap, h);
		bool ref = blob_referenced(e->blob);
		in_heap += heap;
		struct tracker_key k = {.kind = e->kind};
		memcpy(k.bytes, e->key, TRACKER_KEY_LEN);
		if (tracker_find(t, &k) != h) {
			snprintf(err, errlen, "handle %u not found by key", h);
			return -1;
		}
		bool ok;
		switch (s) {
		case ENTRY_QUEUED: ok = heap && ref; break;
		case ENTRY_SCANNING: ok = !heap && ref; break;
		case ENTRY_CANCELLED: ok = heap && !ref; break;
		default: ok = heap == !ref; break;
		}
		if (!ok) {
			snprintf(err, errlen,
			    "handle %u: state %s, in heap %d, referenced %d",
			    h, entry_state_name(s), heap, ref);
			return -1;
		}
		if (blob_nsrc(e->blob) > TRACKER_MAX_SOURCES) {
			snprintf(err, errlen, "handle %u: too many sources", h);
			return -1;
		}
	}
	if (live != t->count || live != idmap_count(t->map) ||
	    in_heap != dueheap_size(t->heap)) {
		snprintf(err, errlen,
		    "count %zu, live %zu, map %zu, heap %zu vs %zu", t->count,
		    live, idmap_count(t->map), dueheap_size(t->heap), in_heap);
		return -1;
	}
	for (int s = 0; s < 5; s++) {
		if (counts[s] != t->state_count[s]) {
			snprintf(err, errlen, "state %s: counted %zu, kept %zu",
			    entry_state_name((enum entry_state)s), counts[s],
			    t->state_count[s]);
			return -1;
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
