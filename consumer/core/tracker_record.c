/*
 * tracker_record: see tracker_record.h. Record format, version 3, all
 * fixed-size integers little-endian, varints LEB128 (7 bits a byte, low
 * first, at most 10 bytes):
 *
 *   u8 version | u8 kind | 32 bytes key | u8 state |
 *   u8 flags (bit 0: in heap) |
 *   u16 attempts | u32 generation | i32 partition | i64 first_seen |
 *   i64 last_scan | i64 due | u8 namelen | name | u16 errlen | error |
 *   varint nrefs | nrefs x { varint len | bytes } |
 *   u16 nsrc | nsrc x { u8 namelen | name | varint observed_at |
 *            u8 holding | u8 ntags | u8 ndigests |
 *            (ntags + ndigests) x varint ref }
 *
 * The refs table holds every tag and digest of the entity once, sorted
 * and distinct; a source names its refs by their index in it. A tag
 * that every node reports (an image of a DaemonSet has one source per
 * node, all with the same tags) is then stored once, not once per node.
 * observed_at is stored as its difference from first_seen (modulo 2^64),
 * zigzag-encoded: a few bytes instead of eight.
 *
 * Version 2 (still loaded) has no refs table and writes each source's
 * refs in place, as u16 len + bytes, and observed_at as an i64. Version
 * 1 is version 2 without the generation (it loads as generation 1).
 * Sources are in name order, the table and each source's tags and
 * digests sorted: one logical state has exactly one encoding. Source
 * names travel as text, not as the in-memory strtab ids, which are not
 * stable across restarts.
 *
 * Loading parses and checks the whole record first (format, ranges, the
 * rules that tie state, heap membership and references together) without
 * touching the tracker -- tracker_record_validate is that pass alone --
 * then builds the entry's blob and places it; a refused record leaves
 * nothing behind.
 *
 * The second half of the file is the tracker's durability side: the dirty
 * set and releasing a partition's entries.
 */
#include "core/tracker_record.h"

#include <errno.h>
#include <stdlib.h>

#include "core/tracker_impl.h"
#include "util/errbuf.h"

#define RECORD_VERSION TRACKER_RECORD_VERSION
#define REC_FIXED_V1 (36 + TRACKER_KEY_LEN)
#define REC_FIXED_V2 (40 + TRACKER_KEY_LEN)

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

static void
wb_varint(struct wbuf *w, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			tmp[n] |= 0x80;
		n++;
	} while (v != 0);
	wb_put(w, tmp, n);
}

/* observed_at against first_seen, modulo 2^64, zigzag: small either way. */
static uint64_t
zigzag_delta(int64_t v, int64_t base)
{
	uint64_t d = (uint64_t)v - (uint64_t)base;
	return (d << 1) ^ (0 - (d >> 63));
}

static int64_t
unzigzag_delta(uint64_t z, int64_t base)
{
	uint64_t d = (z >> 1) ^ (0 - (z & 1));
	return (int64_t)((uint64_t)base + d);
}

static int
ref_cmp(const struct blob_ref *a, const struct blob_ref *b)
{
	int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
	return c != 0 ? c : (a->len < b->len ? -1 : a->len > b->len);
}

static int
ref_qcmp(const void *a, const void *b)
{
	return ref_cmp(a, b);
}

/* The refs table of a record: every ref of the sources, sorted and
 * distinct. Usually a handful (one per tag of the image), kept on the
 * stack; an entity with many sources of many tags gets the heap. */
#define TABLE_SMALL 64

struct ref_table {
	struct blob_ref small[TABLE_SMALL];
	struct blob_ref *v;
	size_t n, cap;
};

static void
table_add(struct ref_table *tb, const char *s, size_t len)
{
	struct blob_ref ref = {s, len};
	if (tb->n == tb->cap) {
		size_t cap = tb->cap * 2;
		struct blob_ref *v = xreallocarray(tb->v == tb->small ? NULL :
		    tb->v, cap, sizeof(*v));
		if (tb->v == tb->small)
			memcpy(v, tb->small, sizeof(tb->small));
		tb->v = v;
		tb->cap = cap;
	}
	tb->v[tb->n++] = ref;
}

/*
 * Inserts name into the sorted names[0..*n): false when it is there
 * already. (Source names of a record, at most TRACKER_MAX_SOURCES,
 * usually a handful; a small refs table.)
 */
static bool
name_insert(struct blob_ref *names, size_t *n, const struct blob_ref *name)
{
	size_t lo = 0, hi = *n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = ref_cmp(&names[mid], name);
		if (c == 0)
			return false;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&names[lo + 1], &names[lo], (*n - lo) * sizeof(*names));
	names[lo] = *name;
	(*n)++;
	return true;
}

/* Sorts the table and drops repeats. */
static void
table_seal(struct ref_table *tb)
{
	if (tb->n <= 16) {
		/* A few distinct tags, many repeats: into the sorted prefix
		 * one by one (slots past it are taken already). */
		size_t n = 0;
		for (size_t i = 0; i < tb->n; i++) {
			struct blob_ref x = tb->v[i];
			(void)name_insert(tb->v, &n, &x);
		}
		tb->n = n;
		return;
	}
	qsort(tb->v, tb->n, sizeof(*tb->v), ref_qcmp);
	size_t n = 1;
	for (size_t i = 1; i < tb->n; i++)
		if (ref_cmp(&tb->v[n - 1], &tb->v[i]) != 0)
			tb->v[n++] = tb->v[i];
	tb->n = n;
}

static size_t
table_index(const struct ref_table *tb, const char *s, size_t len)
{
	struct blob_ref x = {s, len};
	size_t lo = 0, hi = tb->n;
	while (lo < hi) { /* it is there */
		size_t mid = lo + (hi - lo) / 2;
		if (ref_cmp(&tb->v[mid], &x) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t
tracker_record_append(const tracker *t, uint32_t h, uint8_t **buf,
    size_t *bufcap, size_t *at)
{
	const struct entry *e = entry_at(t, h);
	const uint8_t *b = e->blob;
	struct wbuf w = {buf, bufcap, *at};
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
	wb_uint(&w, e->generation, 4);
	wb_uint(&w, (uint32_t)e->partition, 4);
	wb_uint(&w, (uint64_t)e->first_seen, 8);
	wb_uint(&w, (uint64_t)e->last_scan, 8);
	wb_uint(&w, (uint64_t)(in_heap ? dueheap_due(t->heap, h) : 0), 8);
	wb_uint(&w, namelen, 1);
	wb_put(&w, name, namelen);
	wb_uint(&w, errlen, 2);
	wb_put(&w, error, errlen);
	const struct blob_src *recs;
	size_t nsrc = blob_sources_sorted(t->blobs, b, &recs);
	struct ref_table tb;
	tb.v = tb.small;
	tb.n = 0;
	tb.cap = TABLE_SMALL;
	for (size_t i = 0; i < nsrc; i++) {
		const uint8_t *q = recs[i].refs;
		for (size_t k = 0; k < (size_t)recs[i].ntags +
		    recs[i].ndigests; k++) {
			const char *s;
			size_t len;
			q = blob_ref_next(q, &s, &len);
			table_add(&tb, s, len);
		}
	}
	if (tb.n > 0)
		table_seal(&tb);
	wb_varint(&w, tb.n);
	for (size_t k = 0; k < tb.n; k++) {
		wb_varint(&w, tb.v[k].len);
		wb_put(&w, tb.v[k].s, tb.v[k].len);
	}
	wb_uint(&w, nsrc, 2);
	for (size_t i = 0; i < nsrc; i++) {
		const struct blob_src *r = &recs[i];
		size_t nlen;
		const char *sname = strtab_get(t->sources, r->id, &nlen);
		wb_uint(&w, nlen, 1);
		wb_put(&w, sname, nlen);
		wb_varint(&w, zigzag_delta(r->observed, e->first_seen));
		wb_uint(&w, r->holding, 1);
		wb_uint(&w, r->ntags, 1);
		wb_uint(&w, r->ndigests, 1);
		const uint8_t *q = r->refs;
		for (size_t k = 0; k < (size_t)r->ntags + r->ndigests; k++) {
			const char *s;
			size_t len;
			q = blob_ref_next(q, &s, &len);
			wb_varint(&w, table_index(&tb, s, len));
		}
	}
	if (tb.v != tb.small)
		free(tb.v);
	size_t n = w.len - *at;
	*at = w.len;
	return n;
}

size_t
tracker_record_encode(const tracker *t, uint32_t h, uint8_t **buf,
    size_t *bufcap)
{
	size_t len = 0;
	return tracker_record_append(t, h, buf, bufcap, &len);
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

/* A varint of at most 10 bytes (what a u64 needs); an unended or
 * longer one sets bad. */
static uint64_t
rb_varint(struct rbuf *r)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		const uint8_t *p = rb_take(r, 1);
		if (p == NULL)
			return 0;
		v |= (uint64_t)(*p & 0x7f) << (7 * i);
		if ((*p & 0x80) == 0)
			return v;
	}
	r->bad = true;
	return 0;
}

static int
rec_fail(const struct rbuf *r, const char *what, char *err, size_t errlen)
{
	errbuf_set(err, errlen, "corrupt record: %s at byte %zu", what,
	    (size_t)(r->p - r->start));
	return -EINVAL;
}

/* The parts of a checked record. */
struct rec_head {
	struct tracker_key key;
	unsigned version, state, flags;
	uint16_t attempts;
	uint32_t generation;
	int32_t partition;
	int64_t first_seen, last_scan, due;
	const uint8_t *name, *error;
	size_t namelen, errlen, nsrc;
	const uint8_t *table; /* version 3: the refs table's first entry */
	size_t nrefs;
	const uint8_t *sources; /* the first source record */
	bool any_holding;
};

/* The fixed-size fields; NULL, or what is wrong. */
static const char *
read_fixed(struct rbuf *r, struct rec_head *h)
{
	size_t fixed = h->version == 1 ? REC_FIXED_V1 : REC_FIXED_V2;
	if ((size_t)(r->end - r->start) < fixed)
		return "truncated header";
	unsigned kind = (unsigned)rb_uint(r, 1);
	h->key.kind = (uint8_t)kind;
	memcpy(h->key.bytes, rb_take(r, TRACKER_KEY_LEN), TRACKER_KEY_LEN);
	h->state = (unsigned)rb_uint(r, 1);
	h->flags = (unsigned)rb_uint(r, 1);
	h->attempts = (uint16_t)rb_uint(r, 2);
	h->generation = h->version == 1 ? 1 : (uint32_t)rb_uint(r, 4);
	h->partition = (int32_t)(uint32_t)rb_uint(r, 4);
	h->first_seen = (int64_t)rb_uint(r, 8);
	h->last_scan = (int64_t)rb_uint(r, 8);
	h->due = (int64_t)rb_uint(r, 8);
	if (kind > ENTITY_HOST)
		return "unknown kind";
	if (h->state > ENTRY_CANCELLED || h->flags > 1)
		return "bad state or flags";
	if (h->generation == 0)
		return "generation 0";
	return NULL;
}

/* At most this many distinct refs: every source's own, all different. */
#define MAX_TABLE ((size_t)TRACKER_MAX_SOURCES * 2 * TRACKER_MAX_REFS)

/* Version 3's refs table: each ref in range, the whole strictly
 * ascending (sorted, distinct: the one encoding); NULL, or what is
 * wrong. */
static const char *
read_table(struct rbuf *r, struct rec_head *h)
{
	uint64_t n = rb_varint(r);
	if (r->bad)
		return "truncated";
	if (n > MAX_TABLE || n > (size_t)(r->end - r->p) / 2)
		return "refs table too large";
	h->nrefs = (size_t)n;
	h->table = r->p;
	struct blob_ref prev = {NULL, 0};
	for (size_t i = 0; i < h->nrefs; i++) {
		uint64_t len = rb_varint(r);
		if (r->bad || len == 0 || len > TRACKER_MAX_REF_LEN)
			return "bad reference";
		const uint8_t *p = rb_take(r, (size_t)len);
		if (p == NULL)
			return "bad reference";
		struct blob_ref cur = {(const char *)p, (size_t)len};
		if (i > 0 && ref_cmp(&prev, &cur) >= 0)
			return "refs table not sorted";
		prev = cur;
	}
	return NULL;
}

/* The refs table of a checked record as an array of h->nrefs entries:
 * small when it fits there (nsmall entries), else malloc'd. */
static struct blob_ref *
table_array(const struct rec_head *h, struct blob_ref *small,
    size_t nsmall)
{
	struct blob_ref *v = h->nrefs <= nsmall ? small :
	    xreallocarray(NULL, h->nrefs, sizeof(*v));
	struct rbuf r = {h->table, h->table, h->sources, false};
	for (size_t i = 0; i < h->nrefs; i++) {
		v[i].len = (size_t)rb_varint(&r);
		v[i].s = (const char *)rb_take(&r, v[i].len);
	}
	return v;
}

/* The name, the error and the source count; NULL, or what is wrong. */
static const char *
read_name_error(struct rbuf *r, struct rec_head *h)
{
	h->namelen = (size_t)rb_uint(r, 1);
	h->name = rb_take(r, h->namelen);
	h->errlen = (size_t)rb_uint(r, 2);
	h->error = rb_take(r, h->errlen);
	if (h->version >= 3) {
		const char *problem = read_table(r, h);
		if (problem != NULL)
			return problem;
	}
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

/* One source record: its name, holding flag, counts, and (refs != NULL)
 * its refs; NULL, or what is wrong. */
struct rec_src {
	const uint8_t *name;
	size_t len;
	struct blob_edit ed;
};

static const char *
read_source(struct rbuf *r, const struct rec_head *h,
    const struct blob_ref *table, struct rec_src *s, struct blob_ref *tags,
    struct blob_ref *digests)
{
	s->len = (size_t)rb_uint(r, 1);
	s->name = rb_take(r, s->len);
	if (h->version >= 3)
		s->ed.observed = unzigzag_delta(rb_varint(r), h->first_seen);
	else
		s->ed.observed = (int64_t)rb_uint(r, 8);
	unsigned holding = (unsigned)rb_uint(r, 1);
	s->ed.ntags = (size_t)rb_uint(r, 1);
	s->ed.ndigests = (size_t)rb_uint(r, 1);
	if (r->bad)
		return "truncated source";
	if (s->len == 0 || s->len > TRACKER_MAX_NAME || holding > 1 ||
	    s->ed.ntags > TRACKER_MAX_REFS || s->ed.ndigests > TRACKER_MAX_REFS)
		return "source field out of range";
	s->ed.holding = holding != 0;
	/* as for events: strtab keeps names NUL-terminated */
	for (size_t k = 0; k < s->len; k++)
		if (s->name[k] < 0x20 || s->name[k] == 0x7f)
			return "control character in a source name";
	struct blob_ref *refs[2] = {tags, digests};
	size_t counts[2] = {s->ed.ntags, s->ed.ndigests};
	for (int g = 0; g < 2; g++) {
		for (size_t k = 0; k < counts[g]; k++) {
			struct blob_ref ref = {NULL, 0};
			if (h->version >= 3) {
				uint64_t i = rb_varint(r);
				if (r->bad || i >= h->nrefs)
					return "bad reference index";
				if (table != NULL)
					ref = table[i];
			} else {
				size_t rl = (size_t)rb_uint(r, 2);
				const uint8_t *p = rb_take(r, rl);
				if (r->bad || rl == 0 ||
				    rl > TRACKER_MAX_REF_LEN)
					return "bad reference";
				ref = (struct blob_ref){(const char *)p, rl};
			}
			if (refs[g] != NULL)
				refs[g][k] = ref;
		}
	}
	s->ed.tags = tags;
	s->ed.digests = digests;
	return NULL;
}

/* Every source, for duplicates and holding; NULL, or what is wrong. */
static const char *
read_sources(struct rbuf *r, struct rec_head *h)
{
	struct blob_ref small[16];
	struct blob_ref *names = h->nsrc <= 16 ? small :
	    xcalloc(h->nsrc, sizeof(*names));
	size_t n = 0;
	const char *problem = NULL;

	h->any_holding = false;
	h->sources = r->p;
	for (size_t i = 0; i < h->nsrc && problem == NULL; i++) {
		struct rec_src s = {0};
		problem = read_source(r, h, NULL, &s, NULL, NULL);
		struct blob_ref name = {(const char *)s.name, s.len};
		if (problem == NULL && !name_insert(names, &n, &name))
			problem = "duplicate source";
		h->any_holding |= s.ed.holding;
	}
	if (names != small)
		free(names);
	return problem;
}

/* Heap membership and references must follow from the state. */
static const char *
check_state(const struct rec_head *h)
{
	if (h->state == ENTRY_CANCELLED && h->any_holding)
		return "cancelled entity still referenced";
	bool want_heap = h->state == ENTRY_QUEUED ||
	    (h->state != ENTRY_SCANNING && !h->any_holding);
	bool want_ref = h->state == ENTRY_QUEUED || h->state == ENTRY_SCANNING;
	if (h->state != ENTRY_SCANNING && (h->flags & 1) != want_heap)
		return "heap flag contradicts the state";
	if (want_ref && !h->any_holding)
		return "queued or scanning entity without references";
	return NULL;
}

/* The whole check, touching nothing: 0, -EPROTO or -EINVAL with err. */
static int
rec_parse(const uint8_t *rec, size_t len, struct rec_head *h, char *err,
    size_t errlen)
{
	struct rbuf r = {rec, rec, rec + len, false};

	memset(h, 0, sizeof(*h));
	if (len < 1)
		return rec_fail(&r, "empty", err, errlen);
	h->version = (unsigned)rb_uint(&r, 1);
	if (h->version > RECORD_VERSION) {
		errbuf_set(err, errlen, "record format version %u is newer "
		    "than this sbomd understands (%d)", h->version,
		    RECORD_VERSION);
		return -EPROTO;
	}
	if (h->version == 0)
		return rec_fail(&r, "unknown version", err, errlen);
	const char *problem = read_fixed(&r, h);
	if (problem == NULL)
		problem = read_name_error(&r, h);
	if (problem == NULL)
		problem = read_sources(&r, h);
	if (problem == NULL && r.p != r.end)
		problem = "trailing bytes";
	if (problem == NULL)
		problem = check_state(h);
	return problem != NULL ? rec_fail(&r, problem, err, errlen) : 0;
}

int
tracker_record_validate(const uint8_t *rec, size_t len,
    struct tracker_key *key, int32_t *partition, char *err, size_t errlen)
{
	struct rec_head h;
	int rc = rec_parse(rec, len, &h, err, errlen);
	if (rc != 0)
		return rc;
	if (key != NULL)
		*key = h.key;
	if (partition != NULL)
		*partition = h.partition;
	return 0;
}

/* The blob of a checked record, a name reference taken per source. */
static uint8_t *
build_blob(tracker *t, const struct rec_head *h, const uint8_t *end)
{
	uint8_t *b = blob_new(t->blobs, (const char *)h->name, h->namelen);
	if (h->errlen > 0) {
		struct blob_edit ed = {.err_set = true,
		    .err = (const char *)h->error, .errlen = h->errlen};
		blob_rebuild(t->blobs, &b, &ed);
	}
	struct blob_ref small[TABLE_SMALL];
	struct blob_ref *table = table_array(h, small, TABLE_SMALL);
	struct rbuf r = {h->sources, h->sources, end, false};
	for (size_t i = 0; i < h->nsrc; i++) {
		struct rec_src s = {.ed = {.new_src = true}};
		/* checked */
		read_source(&r, h, table, &s, t->tags, t->digests);
		s.ed.new_src = true;
		s.ed.id = strtab_intern(t->sources, (const char *)s.name,
		    s.len);
		blob_append_src(t->blobs, &b, &s.ed); /* no duplicates */
	}
	if (table != small)
		free(table);
	return b;
}

/* Puts a checked record with its blob b in memory: at a new handle, or
 * over the entry of the same key. */
static void
place(tracker *t, const struct rec_head *h, uint8_t *b, int64_t now,
    bool *requeued)
{
	uint32_t hd = tracker_find(t, &h->key);
	struct entry *e;
	if (hd != TRACKER_NONE) {
		e = entry_at(t, hd);
		dueheap_remove(t->heap, hd);
		if (blob_indexed(e->blob))
			srcidx_entry(t, hd, e->blob, true);
		blob_discard(t->blobs, e->blob);
		if (e->partition != h->partition) {
			deleted_push(t, e->partition, e->kind, e->key);
			mark_dirty(t, hd);
		}
		entry_set_state(t, e, ENTRY_QUEUED);
	} else {
		hd = entry_alloc(t);
		e = entry_at(t, hd);
		memcpy(e->key, h->key.bytes, TRACKER_KEY_LEN);
		e->kind = h->key.kind;
		idmap_insert(t->map, key_hash(e->kind, e->key), hd);
	}
	e->partition = h->partition;
	e->generation = h->generation;
	e->attempts = h->attempts;
	e->first_seen = h->first_seen;
	e->last_scan = h->last_scan;
	e->blob = b;
	if (blob_indexed(b))
		srcidx_entry(t, hd, b, false);
	if (h->state == ENTRY_SCANNING) {
		/* Interrupted (a crash, or another instance's): run it
		 * again, same attempt. */
		dueheap_push(t->heap, hd, now);
		if (requeued != NULL)
			*requeued = true;
		return;
	}
	entry_set_state(t, e, (enum entry_state)h->state);
	if (h->flags & 1)
		dueheap_push(t->heap, hd, h->due);
}

int
tracker_record_load(tracker *t, const uint8_t *rec, size_t len, int64_t now,
    bool *requeued, char *err, size_t errlen)
{
	struct rec_head h;

	if (requeued != NULL)
		*requeued = false;
	int rc = rec_parse(rec, len, &h, err, errlen);
	if (rc != 0)
		return rc;
	if (t->nfree == 0 && t->nhandles >= TRACKER_MAX_ENTRIES &&
	    tracker_find(t, &h.key) == TRACKER_NONE) {
		errbuf_set(err, errlen, "tracker is full (%u entities)",
		    TRACKER_MAX_ENTRIES);
		return -ENOSPC;
	}
	place(t, &h, build_blob(t, &h, rec + len), now, requeued);
	return 0;
}

/* ---- the dirty set ---- */

void
tracker_reserve(tracker *t, size_t n)
{
	idmap_reserve(t->map, t->count + n);
}

/* Whether the put of this visit writes (partition, key) again. */
static bool
superseded(const tracker *t, const struct tracker_del *d)
{
	uint32_t h = tracker_find(t, &d->key);
	return h != TRACKER_NONE && (entry_at(t, h)->flags & FLAG_DIRTY) &&
	    entry_at(t, h)->partition == d->partition;
}

int
tracker_foreach_dirty(const tracker *t, tracker_put_fn put, tracker_del_fn del,
    void *ctx)
{
	int rc;
	/* Deletions first: an entity forgotten and set again in one batch,
	 * or moved away and back, must end up stored. */
	for (size_t i = 0; i < t->ndeleted; i++) {
		const struct tracker_del *d = &t->deleted[i];
		if (superseded(t, d))
			continue;
		if ((rc = del(ctx, d->partition, &d->key)) != 0)
			return rc;
	}
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

/* ---- partitions ---- */

size_t
tracker_release_partition(tracker *t, int32_t partition)
{
	size_t n = 0;
	for (uint32_t h = 0; h < t->nhandles; h++) {
		if (entry_is_live(t, h) &&
		    entry_at(t, h)->partition == partition) {
			entry_drop(t, h);
			n++;
		}
	}
	return n;
}

size_t
tracker_touch_partition(tracker *t, int32_t partition)
{
	size_t n = 0;
	for (uint32_t h = 0; h < t->nhandles; h++)
		if (entry_is_live(t, h) &&
		    entry_at(t, h)->partition == partition) {
			mark_dirty(t, h);
			n++;
		}
	return n;
}

size_t
tracker_count_partition(const tracker *t, int32_t partition)
{
	size_t n = 0;
	for (uint32_t h = 0; h < t->nhandles; h++)
		n += entry_is_live(t, h) &&
		    entry_at(t, h)->partition == partition;
	return n;
}
