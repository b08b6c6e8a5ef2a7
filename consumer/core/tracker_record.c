/*
 * tracker_record: see tracker_record.h. Record format, version 1, all
 * integers little-endian:
 *
 *   u8 version | u8 kind | 32 bytes key | u8 state |
 *   u8 flags (bit 0: in heap) |
 *   u16 attempts | i32 partition | i64 first_seen | i64 last_scan |
 *   i64 due | u8 namelen | name | u16 errlen | error | u16 nsrc |
 *   nsrc x { u8 namelen | name | i64 observed_at | u8 holding |
 *            u8 ntags | u8 ndigests | (ntags + ndigests) x
 *            { u16 len | bytes } }
 *
 * Sources are in name order, tags and digests sorted: one logical state
 * has exactly one encoding. Source names travel as text, not as the
 * in-memory strtab ids, which are not stable across restarts.
 *
 * Loading reads and checks the whole record (format, ranges, the rules
 * that tie state, heap membership and references together) and builds
 * the entry's blob on the side; only a record that passes every check
 * takes its slot, so a refused one leaves nothing behind.
 */
#include "core/tracker_record.h"

#include <errno.h>

#include "core/tracker_impl.h"
#include "util/errbuf.h"

#define RECORD_VERSION 1
#define REC_FIXED (36 + TRACKER_KEY_LEN)

/* ---- writing ---- */

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
	if (n > 0)
		memcpy(wb_room(w, n), data, n);
}

/* The low n bytes of v, little-endian. */
static void
wb_uint(struct wbuf *w, uint64_t v, size_t n)
{
	uint8_t *p = wb_room(w, n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

size_t
tracker_record_encode(const tracker *t, uint32_t h, uint8_t **buf,
    size_t *bufcap)
{
	const struct entry *e = entry_at(t, h);
	const uint8_t *b = e->blob;
	struct wbuf w = {buf, bufcap, 0};
	bool in_heap = dueheap_contains(t->heap, h);
	size_t namelen, errlen;
	const char *name = blob_name(b, &namelen);
	const char *error = blob_error(b, &errlen);

	wb_uint(&w, RECORD_VERSION, 1);
	wb_uint(&w, e->kind, 1);
	wb_put(&w, e->key, TRACKER_KEY_LEN);
	wb_uint(&w, entry_state(e), 1);
	wb_uint(&w, in_heap ? 1 : 0, 1);
	wb_uint(&w, e->attempts, 2);
	wb_uint(&w, (uint32_t)e->partition, 4);
	wb_uint(&w, (uint64_t)e->first_seen, 8);
	wb_uint(&w, (uint64_t)e->last_scan, 8);
	wb_uint(&w, (uint64_t)(in_heap ? dueheap_due(t->heap, h) : 0), 8);
	wb_uint(&w, namelen, 1);
	wb_put(&w, name, namelen);
	wb_uint(&w, errlen, 2);
	wb_put(&w, error, errlen);
	wb_uint(&w, blob_nsrc(b), 2);
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct blob_src r;
		off = blob_src_next(b, off, &r);
		size_t nlen;
		const char *sname = strtab_get(t->sources, r.id, &nlen);
		wb_uint(&w, nlen, 1);
		wb_put(&w, sname, nlen);
		wb_uint(&w, (uint64_t)r.observed, 8);
		wb_uint(&w, r.holding, 1);
		wb_uint(&w, r.ntags, 1);
		wb_uint(&w, r.ndigests, 1);
		const uint8_t *q = r.refs;
		for (size_t k = 0; k < (size_t)r.ntags + r.ndigests; k++) {
			const char *s;
			size_t len;
			q = blob_ref_next(q, &s, &len);
			wb_uint(&w, len, 2);
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

/* ---- reading ---- */

/* A cursor; once a read runs past the end, bad is set and reads give 0. */
struct rbuf {
	const uint8_t *start, *p, *end;
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

/* n bytes little-endian. */
static uint64_t
rb_uint(struct rbuf *r, size_t n)
{
	const uint8_t *p = rb_take(r, n);
	uint64_t v = 0;
	for (size_t i = 0; p != NULL && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int
rec_fail(const struct rbuf *r, const char *what, char *err, size_t errlen)
{
	errbuf_set(err, errlen, "corrupt record: %s at byte %zu", what,
	    (size_t)(r->p - r->start));
	return -EINVAL;
}

/* The part of a record before its sources. */
struct rec_head {
	struct tracker_key key;
	unsigned state, flags;
	uint16_t attempts;
	int32_t partition;
	int64_t first_seen, last_scan, due;
	const uint8_t *name, *error;
	size_t namelen, errlen, nsrc;
};

/* The fixed-size fields; NULL, or what is wrong. */
static const char *
read_fixed(struct rbuf *r, struct rec_head *h)
{
	if ((size_t)(r->end - r->start) < REC_FIXED)
		return "truncated header";
	unsigned kind = (unsigned)rb_uint(r, 1);
	h->key.kind = (uint8_t)kind;
	memcpy(h->key.bytes, rb_take(r, TRACKER_KEY_LEN), TRACKER_KEY_LEN);
	h->state = (unsigned)rb_uint(r, 1);
	h->flags = (unsigned)rb_uint(r, 1);
	h->attempts = (uint16_t)rb_uint(r, 2);
	h->partition = (int32_t)(uint32_t)rb_uint(r, 4);
	h->first_seen = (int64_t)rb_uint(r, 8);
	h->last_scan = (int64_t)rb_uint(r, 8);
	h->due = (int64_t)rb_uint(r, 8);
	if (kind > ENTITY_HOST)
		return "unknown kind";
	return NULL;
}

/* Whether the fixed fields fit this tracker at slot: NULL, or the
 * problem. */
static const char *
check_fixed(const tracker *t, uint32_t slot, const struct rec_head *h)
{
	if (slot >= TRACKER_MAX_SLOTS)
		return "slot out of range";
	if (entry_is_live(t, slot))
		return "slot in use";
	if (h->state > ENTRY_CANCELLED || h->flags > 1)
		return "bad state or flags";
	if (tracker_find(t, &h->key) != TRACKER_NONE)
		return "duplicate key";
	return NULL;
}

/* The name, the error and the source count; NULL, or what is wrong. */
static const char *
read_name_error(struct rbuf *r, struct rec_head *h)
{
	h->namelen = (size_t)rb_uint(r, 1);
	h->name = rb_take(r, h->namelen);
	h->errlen = (size_t)rb_uint(r, 2);
	h->error = rb_take(r, h->errlen);
	h->nsrc = (size_t)rb_uint(r, 2);
	if (r->bad)
		return "truncated";
	bool host = h->key.kind == ENTITY_HOST;
	if (h->errlen > TRACKER_MAX_ERROR || h->nsrc > TRACKER_MAX_SOURCES ||
	    h->namelen > TRACKER_MAX_NAME || host != (h->namelen > 0))
		return "field out of range";
	if (host) {
		char hn[TRACKER_MAX_NAME + 1], e2[16];
		struct tracker_key k2;
		memcpy(hn, h->name, h->namelen);
		hn[h->namelen] = '\0';
		if (tracker_key_from_id(ENTITY_HOST, hn, &k2, e2,
			sizeof(e2)) != 0 ||
		    memcmp(k2.bytes, h->key.bytes, TRACKER_KEY_LEN) != 0)
			return "host name does not match key";
	}
	return NULL;
}

/* One source record into *ed (its refs into t's scratch arrays) and its
 * name; NULL, or what is wrong. */
static const char *
read_source(tracker *t, struct rbuf *r, const uint8_t **name, size_t *len,
    struct blob_edit *ed)
{
	*len = (size_t)rb_uint(r, 1);
	*name = rb_take(r, *len);
	ed->observed = (int64_t)rb_uint(r, 8);
	unsigned holding = (unsigned)rb_uint(r, 1);
	ed->ntags = (size_t)rb_uint(r, 1);
	ed->ndigests = (size_t)rb_uint(r, 1);
	if (r->bad)
		return "truncated source";
	if (*len == 0 || *len > TRACKER_MAX_NAME || holding > 1 ||
	    ed->ntags > TRACKER_MAX_REFS || ed->ndigests > TRACKER_MAX_REFS)
		return "source field out of range";
	ed->holding = holding != 0;
	/* as for events: strtab keeps names NUL-terminated */
	for (size_t k = 0; k < *len; k++)
		if ((*name)[k] < 0x20 || (*name)[k] == 0x7f)
			return "control character in a source name";
	struct blob_ref *refs[2] = {t->tags, t->digests};
	size_t counts[2] = {ed->ntags, ed->ndigests};
	for (int g = 0; g < 2; g++) {
		for (size_t k = 0; k < counts[g]; k++) {
			size_t rl = (size_t)rb_uint(r, 2);
			const uint8_t *s = rb_take(r, rl);
			if (r->bad || rl == 0 || rl > TRACKER_MAX_REF_LEN)
				return "bad reference";
			refs[g][k].s = (const char *)s;
			refs[g][k].len = rl;
		}
	}
	ed->tags = t->tags;
	ed->digests = t->digests;
	return NULL;
}

/*
 * Adds the sources of the record to *b, taking a name reference for each;
 * sets *any_holding. NULL, or what is wrong (the references taken so far
 * are in *b: blob_discard drops them).
 */
static const char *
read_sources(tracker *t, struct rbuf *r, size_t nsrc, uint8_t **b,
    bool *any_holding)
{
	*any_holding = false;
	for (size_t i = 0; i < nsrc; i++) {
		struct blob_edit ed = {.new_src = true};
		const uint8_t *name;
		size_t len;
		const char *problem = read_source(t, r, &name, &len, &ed);
		if (problem != NULL)
			return problem;
		uint32_t sid = strtab_lookup(t->sources, (const char *)name,
		    len);
		struct blob_src dup;
		if (sid != STRTAB_NONE && blob_find_src(*b, sid, &dup))
			return "duplicate source";
		ed.id = strtab_intern(t->sources, (const char *)name, len);
		blob_rebuild(t->blobs, b, &ed);
		*any_holding |= ed.holding;
	}
	return NULL;
}

/* Heap membership and references must follow from the state. */
static const char *
check_state(const struct rec_head *h, bool any_holding)
{
	if (h->state == ENTRY_CANCELLED && any_holding)
		return "cancelled entity still referenced";
	bool want_heap = h->state == ENTRY_QUEUED ||
	    (h->state != ENTRY_SCANNING && !any_holding);
	bool want_ref = h->state == ENTRY_QUEUED || h->state == ENTRY_SCANNING;
	if (h->state != ENTRY_SCANNING && (h->flags & 1) != want_heap)
		return "heap flag contradicts the state";
	if (want_ref && !any_holding)
		return "queued or scanning entity without references";
	return NULL;
}

/* Puts a checked record at slot, with its blob b. */
static void
place(tracker *t, uint32_t slot, const struct rec_head *h, uint8_t *b,
    int64_t now, bool *requeued)
{
	struct entry *e = entry_claim(t, slot);
	memcpy(e->key, h->key.bytes, TRACKER_KEY_LEN);
	e->kind = h->key.kind;
	e->partition = h->partition;
	e->attempts = h->attempts;
	e->first_seen = h->first_seen;
	e->last_scan = h->last_scan;
	e->blob = b;
	idmap_insert(t->map, key_hash(e->kind, e->key), slot);
	if (h->state == ENTRY_SCANNING) {
		/* Interrupted by the crash: run it again, same attempt. */
		dueheap_append(t->heap, slot, now);
		if (requeued != NULL)
			*requeued = true;
		return;
	}
	entry_set_state(t, e, (enum entry_state)h->state);
	if (h->flags & 1)
		dueheap_append(t->heap, slot, h->due);
}

int
tracker_record_load(tracker *t, uint32_t slot, const uint8_t *rec,
    size_t len, int64_t now, bool *requeued, char *err, size_t errlen)
{
	struct rbuf r = {rec, rec, rec + len, false};
	struct rec_head h;

	if (requeued != NULL)
		*requeued = false;
	if (len < 1)
		return rec_fail(&r, "empty", err, errlen);
	unsigned version = (unsigned)rb_uint(&r, 1);
	if (version > RECORD_VERSION) {
		errbuf_set(err, errlen, "record format version %u is newer "
		    "than this sbomd understands (%d)", version,
		    RECORD_VERSION);
		return -EPROTO;
	}
	if (version != RECORD_VERSION)
		return rec_fail(&r, "unknown version", err, errlen);
	const char *problem = read_fixed(&r, &h);
	if (problem == NULL)
		problem = check_fixed(t, slot, &h);
	if (problem == NULL)
		problem = read_name_error(&r, &h);
	if (problem != NULL)
		return rec_fail(&r, problem, err, errlen);

	uint8_t *b = blob_new(t->blobs, (const char *)h.name, h.namelen);
	if (h.errlen > 0) {
		struct blob_edit ed = {.err_set = true,
		    .err = (const char *)h.error, .errlen = h.errlen};
		blob_rebuild(t->blobs, &b, &ed);
	}
	bool any_holding = false;
	problem = read_sources(t, &r, h.nsrc, &b, &any_holding);
	if (problem == NULL && r.p != r.end)
		problem = "trailing bytes";
	if (problem == NULL)
		problem = check_state(&h, any_holding);
	if (problem != NULL) {
		blob_discard(t->blobs, b);
		return rec_fail(&r, problem, err, errlen);
	}
	place(t, slot, &h, b, now, requeued);
	return 0;
}

void
tracker_record_load_finish(tracker *t)
{
	/* Free slots: every hole below the highest slot, lowest reused
	 * first so that new records keep landing close together. */
	t->nfree = 0;
	for (uint32_t h = t->nhandles; h-- > 0;)
		if (!(entry_at(t, h)->flags & FLAG_LIVE))
			handles_push(&t->free_handles, &t->nfree, &t->freecap,
			    h);
	dueheap_build(t->heap);
	tracker_clear_dirty(t);
}
