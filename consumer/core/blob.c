/*
 * blob: see blob.h. The format (native byte order, never persisted as
 * such; the store writes tracker records, see tracker_record.c):
 *
 *   u16 nsrc | u16 errlen | u8 namelen | name | error |
 *   nsrc x { u32 source_id | i64 observed_at | u8 holding | u8 ntags |
 *            u8 ndigests | (ntags + ndigests) x { len | bytes } }
 *
 * where len is one byte below 0x80, else two bytes big-endian | 0x8000
 * (refs are at most 512 bytes). An image with one source and one tag
 * takes about 56 bytes, in the slab's 8-byte size classes.
 *
 * The pool owns the slab the blobs come from and two scratch buffers
 * reused between calls: the blob being built and the decoded records.
 */
#include "core/blob.h"

#include <stdlib.h>
#include <string.h>

#include "core/slab.h"
#include "util/xmalloc.h"

#define BLOB_HDR 5
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

size_t
blob_nsrc(const uint8_t *b)
{
	return rd16(b);
}

const char *
blob_name(const uint8_t *b, size_t *namelen)
{
	*namelen = b[4];
	return (const char *)b + BLOB_HDR;
}

const char *
blob_error(const uint8_t *b, size_t *errlen)
{
	*errlen = rd16(b + 2);
	return (const char *)b + BLOB_HDR + b[4];
}

size_t
blob_src_first(const uint8_t *b)
{
	return BLOB_HDR + b[4] + rd16(b + 2);
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

static size_t
blob_size(const uint8_t *b)
{
	size_t off = blob_src_first(b);
	struct blob_src r;
	for (size_t i = 0; i < blob_nsrc(b); i++)
		off = blob_src_next(b, off, &r);
	return off;
}

size_t
blob_sources(blob_pool *p, const uint8_t *b, const struct blob_src **out)
{
	size_t n = blob_nsrc(b);
	if (n > p->recscap) {
		p->recscap = n * 2;
		p->recs = xreallocarray(p->recs, p->recscap, sizeof(*p->recs));
	}
	size_t off = blob_src_first(b);
	for (size_t i = 0; i < n; i++)
		off = blob_src_next(b, off, &p->recs[i]);
	*out = p->recs;
	return n;
}

bool
blob_referenced(const uint8_t *b)
{
	size_t off = blob_src_first(b);
	struct blob_src r;
	for (size_t i = 0; i < blob_nsrc(b); i++) {
		off = blob_src_next(b, off, &r);
		if (r.holding)
			return true;
	}
	return false;
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

/* The built blob's first len bytes as a blob of its own. */
static uint8_t *
build_commit(blob_pool *p, size_t len)
{
	uint8_t *b = slab_alloc(p->slab, len);
	memcpy(b, p->build, len);
	return b;
}

void
blob_release(blob_pool *p, uint8_t *b)
{
	if (b != NULL)
		slab_release(p->slab, b, blob_size(b));
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
	wr16(p->build, 0);
	wr16(p->build + 2, 0);
	p->build[4] = (uint8_t)namelen;
	if (namelen > 0)
		memcpy(p->build + BLOB_HDR, name, namelen);
	return build_commit(p, BLOB_HDR + namelen);
}

/* The size of the new source record of ed. */
static size_t
src_encoded_size(const struct blob_edit *ed)
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

void
blob_rebuild(blob_pool *p, uint8_t **bp, const struct blob_edit *ed)
{
	const uint8_t *old = *bp;
	size_t namelen, errlen;
	const char *name = blob_name(old, &namelen);
	const char *err = blob_error(old, &errlen);
	if (ed->err_set) {
		err = ed->err;
		errlen = ed->errlen;
	}
	/* Decode first: the scratch array is reused by blob_sources. */
	const struct blob_src *recs;
	size_t nold = blob_sources(p, old, &recs);
	size_t need = BLOB_HDR + namelen + errlen +
	    (ed->new_src ? src_encoded_size(ed) : 0);
	for (size_t i = 0; i < nold; i++)
		need += recs[i].size;
	build_reserve(p, need);

	uint8_t *w = p->build;
	size_t nsrc = 0;
	w[4] = (uint8_t)namelen;
	wr16(w + 2, (uint16_t)errlen);
	memcpy(w + BLOB_HDR, name, namelen);
	if (errlen > 0)
		memmove(w + BLOB_HDR + namelen, err, errlen);
	w += BLOB_HDR + namelen + errlen;

	bool placed = !ed->new_src;
	for (size_t i = 0; i < nold; i++) {
		const struct blob_src *r = &recs[i];
		if ((ed->new_src || ed->drop_src) && r->id == ed->id)
			continue;
		if (!placed && src_name_cmp(p, ed->id, r->id) < 0) {
			w = src_encode(w, ed);
			placed = true;
			nsrc++;
		}
		memcpy(w, old + r->off, r->size);
		w += r->size;
		nsrc++;
	}
	if (!placed) {
		w = src_encode(w, ed);
		nsrc++;
	}
	wr16(p->build, (uint16_t)nsrc);
	size_t len = (size_t)(w - p->build);
	blob_release(p, *bp);
	*bp = build_commit(p, len);
}
