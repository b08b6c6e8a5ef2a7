/*
 * blob: see blob.h. The format (native byte order, never persisted as
 * such; the store writes tracker records, see tracker_record.c):
 *
 *   u32 used | u32 cap | u16 nsrc | u16 nhold | u16 errlen | u8 namelen |
 *   name | error |
 *   nsrc x { u32 source_id | i64 observed_at | u8 holding | u8 ntags |
 *            u8 ndigests | (ntags + ndigests) x { len | bytes } }
 *
 * where len is one byte below 0x80, else two bytes big-endian | 0x8000
 * (refs are at most 512 bytes); used is the blob's size, cap the bytes
 * allocated for it (the slab is asked for cap, and given cap back), nhold
 * the records that hold the entity (so "is it referenced" is O(1)).
 * Records are in the order they were added. An image with one source and
 * one tag takes about 64 bytes, in the slab's 8-byte size classes.
 *
 * Growth: blob_append_src doubles cap when the record does not fit, so a
 * source is added in amortised O(1) and a blob is at most twice its size.
 * Every other change that resizes allocates the exact size again.
 *
 * The pool owns the slab the blobs come from and two scratch buffers
 * reused between calls: the blob being built and the decoded records.
 */
#include "core/blob.h"

#include <stdlib.h>
#include <string.h>

#include "core/slab.h"
#include "util/xmalloc.h"

#define BLOB_HDR 15
#define SRC_HDR 15

struct blob_pool {
	slab *slab;
	strtab *names;
	uint8_t *build; /* the blob being built */
	size_t buildcap;
	struct blob_src *recs; /* blob_sources' scratch */
	size_t recscap;
};

blob_pool *
blob_pool_new(strtab *names)
{
	blob_pool *p = xcalloc(1, sizeof(*p));
	p->slab = slab_new();
	p->names = names;
	return p;
}

void
blob_pool_free(blob_pool *p)
{
	if (p == NULL)
		return;
	slab_free(p->slab);
	free(p->build);
	free(p->recs);
	free(p);
}

/* ---- reading ---- */

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

static inline uint32_t
rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline void
wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

#define OFF_USED 0
#define OFF_CAP 4
#define OFF_NSRC 8
#define OFF_NHOLD 10
#define OFF_ERRLEN 12
#define OFF_NAMELEN 14

size_t
blob_used(const uint8_t *b)
{
	return rd32(b + OFF_USED);
}

size_t
blob_nsrc(const uint8_t *b)
{
	return rd16(b + OFF_NSRC);
}

size_t
blob_nhold(const uint8_t *b)
{
	return rd16(b + OFF_NHOLD);
}

const char *
blob_name(const uint8_t *b, size_t *namelen)
{
	*namelen = b[OFF_NAMELEN];
	return (const char *)b + BLOB_HDR;
}

const char *
blob_error(const uint8_t *b, size_t *errlen)
{
	*errlen = rd16(b + OFF_ERRLEN);
	return (const char *)b + BLOB_HDR + b[OFF_NAMELEN];
}

size_t
blob_src_first(const uint8_t *b)
{
	return BLOB_HDR + b[OFF_NAMELEN] + rd16(b + OFF_ERRLEN);
}

const uint8_t *
blob_ref_next(const uint8_t *p, const char **s, size_t *len)
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

size_t
blob_src_next(const uint8_t *b, size_t off, struct blob_src *r)
{
	const uint8_t *p = b + off;
	memcpy(&r->id, p, 4);
	memcpy(&r->observed, p + 4, 8);
	r->holding = p[12] != 0;
	r->ntags = p[13];
	r->ndigests = p[14];
	const uint8_t *q = p + SRC_HDR;
	r->refs = q;
	for (unsigned i = 0; i < (unsigned)r->ntags + r->ndigests; i++) {
		const char *s;
		size_t len;
		q = blob_ref_next(q, &s, &len);
	}
	r->off = off;
	r->size = (size_t)(q - p);
	return off + r->size;
}

void
blob_src_at(const uint8_t *b, size_t off, struct blob_src *r)
{
	(void)blob_src_next(b, off, r);
}

static void
recs_reserve(blob_pool *p, size_t n)
{
	if (n > p->recscap) {
		p->recscap = n * 2;
		p->recs = xreallocarray(p->recs, p->recscap, sizeof(*p->recs));
	}
}

size_t
blob_sources(blob_pool *p, const uint8_t *b, const struct blob_src **out)
{
	size_t n = blob_nsrc(b);
	recs_reserve(p, n);
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < n; i++)
		off = blob_src_next(b, off, &p->recs[i]);
	*out = p->recs;
	return n;
}

/* Source order: by name bytes, then by length. */
static int
src_name_cmp(const blob_pool *p, uint32_t a, uint32_t b)
{
	size_t la, lb;
	const char *sa = strtab_get(p->names, a, &la);
	const char *sb = strtab_get(p->names, b, &lb);
	int c = memcmp(sa, sb, la < lb ? la : lb);
	return c != 0 ? c : (la < lb ? -1 : la > lb ? 1 : 0);
}

/* Sorts p->recs[lo..hi) by name (insertion sort below 16, else merge
 * through tmp): qsort has no context argument for the strtab. */
static void
sort_by_name(blob_pool *p, struct blob_src *v, struct blob_src *tmp,
    size_t n)
{
	if (n < 16) {
		for (size_t i = 1; i < n; i++) {
			struct blob_src x = v[i];
			size_t k = i;
			while (k > 0 && src_name_cmp(p, v[k - 1].id, x.id) > 0) {
				v[k] = v[k - 1];
				k--;
			}
			v[k] = x;
		}
		return;
	}
	size_t h = n / 2;
	sort_by_name(p, v, tmp, h);
	sort_by_name(p, v + h, tmp, n - h);
	size_t i = 0, k = h, o = 0;
	while (i < h && k < n)
		tmp[o++] = src_name_cmp(p, v[k].id, v[i].id) < 0 ? v[k++] :
		    v[i++];
	while (i < h)
		tmp[o++] = v[i++];
	while (k < n)
		tmp[o++] = v[k++];
	memcpy(v, tmp, n * sizeof(*v));
}

size_t
blob_sources_sorted(blob_pool *p, const uint8_t *b,
    const struct blob_src **out)
{
	size_t n = blob_nsrc(b);
	recs_reserve(p, 2 * n);
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < n; i++)
		off = blob_src_next(b, off, &p->recs[i]);
	sort_by_name(p, p->recs, p->recs + n, n);
	*out = p->recs;
	return n;
}

bool
blob_referenced(const uint8_t *b)
{
	return blob_nhold(b) > 0;
}

bool
blob_find_src(const uint8_t *b, uint32_t id, struct blob_src *r)
{
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		off = blob_src_next(b, off, r);
		if (r->id == id)
			return true;
	}
	return false;
}

void
blob_set_observed(uint8_t *b, const struct blob_src *r, int64_t observed)
{
	memcpy(b + r->off + 4, &observed, 8);
}

bool
blob_refs_equal(const struct blob_src *r, size_t ntags,
    const struct blob_ref *tags, size_t ndigests,
    const struct blob_ref *digests)
{
	if (r->ntags != ntags || r->ndigests != ndigests)
		return false;
	const uint8_t *q = r->refs;
	for (size_t i = 0; i < ntags + ndigests; i++) {
		const struct blob_ref *want = i < ntags ? &tags[i] :
		    &digests[i - ntags];
		const char *s;
		size_t len;
		q = blob_ref_next(q, &s, &len);
		if (len != want->len || memcmp(s, want->s, len) != 0)
			return false;
	}
	return true;
}

/* ---- building ---- */

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

static void
build_reserve(blob_pool *p, size_t n)
{
	if (n <= p->buildcap)
		return;
	size_t cap = p->buildcap ? p->buildcap : 256;
	while (cap < n)
		cap *= 2;
	p->build = xrealloc(p->build, cap);
	p->buildcap = cap;
}

/* A blob of capacity cap (8-byte multiple, >= len) holding data[0..len),
 * its used and cap fields set. */
static uint8_t *
alloc_copy(blob_pool *p, const uint8_t *data, size_t len, size_t cap)
{
	cap = (cap + 7) & ~(size_t)7;
	uint8_t *b = slab_alloc(p->slab, cap);
	memcpy(b, data, len);
	wr32(b + OFF_USED, (uint32_t)len);
	wr32(b + OFF_CAP, (uint32_t)cap);
	return b;
}

void
blob_release(blob_pool *p, uint8_t *b)
{
	if (b != NULL)
		slab_release(p->slab, b, rd32(b + OFF_CAP));
}

void
blob_discard(blob_pool *p, uint8_t *b)
{
	if (b == NULL)
		return;
	size_t off = blob_src_first(b);
	struct blob_src r;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		off = blob_src_next(b, off, &r);
		strtab_unref(p->names, r.id);
	}
	blob_release(p, b);
}

uint8_t *
blob_new(blob_pool *p, const char *name, size_t namelen)
{
	build_reserve(p, BLOB_HDR + namelen);
	memset(p->build, 0, BLOB_HDR);
	p->build[OFF_NAMELEN] = (uint8_t)namelen;
	if (namelen > 0)
		memcpy(p->build + BLOB_HDR, name, namelen);
	return alloc_copy(p, p->build, BLOB_HDR + namelen, BLOB_HDR + namelen);
}

size_t
blob_src_size(const struct blob_edit *ed)
{
	size_t n = SRC_HDR;
	for (size_t i = 0; i < ed->ntags; i++)
		n += ref_len_size(ed->tags[i].len) + ed->tags[i].len;
	for (size_t i = 0; i < ed->ndigests; i++)
		n += ref_len_size(ed->digests[i].len) + ed->digests[i].len;
	return n;
}

/* Writes the new source record of ed at p; returns the end. */
static uint8_t *
src_encode(uint8_t *p, const struct blob_edit *ed)
{
	memcpy(p, &ed->id, 4);
	memcpy(p + 4, &ed->observed, 8);
	p[12] = ed->holding;
	p[13] = (uint8_t)ed->ntags;
	p[14] = (uint8_t)ed->ndigests;
	p += SRC_HDR;
	for (size_t i = 0; i < ed->ntags; i++)
		p = put_ref(p, ed->tags[i].s, ed->tags[i].len);
	for (size_t i = 0; i < ed->ndigests; i++)
		p = put_ref(p, ed->digests[i].s, ed->digests[i].len);
	return p;
}

static void
nhold_add(uint8_t *b, int d)
{
	wr16(b + OFF_NHOLD, (uint16_t)(rd16(b + OFF_NHOLD) + d));
}

size_t
blob_append_src(blob_pool *p, uint8_t **bp, const struct blob_edit *ed)
{
	uint8_t *b = *bp;
	size_t used = blob_used(b), need = used + blob_src_size(ed);
	size_t cap = rd32(b + OFF_CAP);
	if (need > cap) {
		size_t ncap = cap * 2 > need ? cap * 2 : need;
		uint8_t *nb = alloc_copy(p, b, used, ncap);
		blob_release(p, b);
		*bp = b = nb;
	}
	src_encode(b + used, ed);
	wr32(b + OFF_USED, (uint32_t)need);
	wr16(b + OFF_NSRC, (uint16_t)(blob_nsrc(b) + 1));
	if (ed->holding)
		nhold_add(b, 1);
	return used;
}

void
blob_rebuild(blob_pool *p, uint8_t **bp, const struct blob_edit *ed)
{
	uint8_t *old = *bp;
	struct blob_src cur;
	bool found = ed->new_src && blob_find_src(old, ed->id, &cur);
	if (!ed->err_set && ed->new_src && !found) {
		blob_append_src(p, bp, ed);
		return;
	}
	if (!ed->err_set && ed->new_src && blob_src_size(ed) == cur.size) {
		/* the same size: rewritten in place */
		int d = (int)ed->holding - (int)cur.holding;
		src_encode(old + cur.off, ed);
		nhold_add(old, d);
		return;
	}
	size_t namelen, errlen;
	const char *name = blob_name(old, &namelen);
	const char *err = blob_error(old, &errlen);
	if (ed->err_set) {
		err = ed->err;
		errlen = ed->errlen;
	}
	size_t first = blob_src_first(old), used = blob_used(old);
	size_t need = BLOB_HDR + namelen + errlen + (used - first) +
	    (ed->new_src ? blob_src_size(ed) : 0);
	build_reserve(p, need);

	uint8_t *w = p->build;
	memset(w, 0, BLOB_HDR);
	w[OFF_NAMELEN] = (uint8_t)namelen;
	wr16(w + OFF_ERRLEN, (uint16_t)errlen);
	memcpy(w + BLOB_HDR, name, namelen);
	if (errlen > 0)
		memmove(w + BLOB_HDR + namelen, err, errlen);
	w += BLOB_HDR + namelen + errlen;
	size_t nsrc = blob_nsrc(old), nhold = blob_nhold(old);
	if (!found) {
		memcpy(w, old + first, used - first);
		w += used - first;
		if (ed->new_src) {
			w = src_encode(w, ed);
			nsrc++;
			nhold += ed->holding;
		}
	} else {
		/* the records before it, its new one (or none), those after */
		memcpy(w, old + first, cur.off - first);
		w += cur.off - first;
		nhold -= cur.holding;
		w = src_encode(w, ed);
		nhold += ed->holding;
		size_t after = cur.off + cur.size;
		memcpy(w, old + after, used - after);
		w += used - after;
	}
	wr16(p->build + OFF_NSRC, (uint16_t)nsrc);
	wr16(p->build + OFF_NHOLD, (uint16_t)nhold);
	size_t len = (size_t)(w - p->build);
	blob_release(p, old);
	*bp = alloc_copy(p, p->build, len, len);
}

/* Order of prune candidates: observed_at, then id. */
static int
prune_cmp(const void *a, const void *b)
{
	const struct blob_src *x = a, *y = b;
	if (x->observed != y->observed)
		return x->observed < y->observed ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int
off_cmp(const void *a, const void *b)
{
	const struct blob_src *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

size_t
blob_unheld_bytes(const uint8_t *b, uint32_t keep)
{
	size_t off = blob_src_first(b), n = 0;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		struct blob_src r;
		off = blob_src_next(b, off, &r);
		if (!r.holding && r.id != keep)
			n += r.size;
	}
	return n;
}

size_t
blob_prune(blob_pool *p, uint8_t **bp, size_t k, size_t bytes,
    uint32_t keep)
{
	uint8_t *old = *bp;
	size_t n = blob_nsrc(old), nc = 0;
	recs_reserve(p, n);
	size_t off = blob_src_first(old);
	for (size_t i = 0; i < n; i++) {
		struct blob_src r;
		off = blob_src_next(old, off, &r);
		if (!r.holding && r.id != keep)
			p->recs[nc++] = r;
	}
	qsort(p->recs, nc, sizeof(*p->recs), prune_cmp);
	size_t freed = 0, want = k;
	for (k = 0; k < nc && (k < want || freed < bytes); k++)
		freed += p->recs[k].size;
	if (k == 0)
		return 0;
	qsort(p->recs, k, sizeof(*p->recs), off_cmp); /* the k to drop */
	size_t used = blob_used(old), first = blob_src_first(old);
	build_reserve(p, used);
	memcpy(p->build, old, first);
	uint8_t *w = p->build + first;
	size_t from = first;
	for (size_t i = 0; i < k; i++) {
		const struct blob_src *r = &p->recs[i];
		memcpy(w, old + from, r->off - from);
		w += r->off - from;
		from = r->off + r->size;
		strtab_unref(p->names, r->id);
	}
	memcpy(w, old + from, used - from);
	w += used - from;
	wr16(p->build + OFF_NSRC, (uint16_t)(n - k));
	size_t len = (size_t)(w - p->build);
	blob_release(p, old);
	*bp = alloc_copy(p, p->build, len, len);
	return k;
}
