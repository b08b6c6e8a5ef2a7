/*
 * rpmheader: validates an rpm header blob once, then answers tag lookups
 * without further checks.
 *
 * Layout (rpm docs/manual/format.md, lib/header.c; all big-endian):
 *
 *   uint32 il, dl;                       intro, byte 0
 *   struct { uint32 tag, type;           index, byte 8, il entries
 *            int32 offset; uint32 count; }
 *   uint8 data[dl];                      byte 8 + 16*il
 *
 * The blob is exactly 8 + 16*il + dl bytes (rpm's hdrblobInit refuses
 * anything else). Types: NULL 0, CHAR 1, INT8 2, INT16 3, INT32 4,
 * INT64 5, STRING 6, BIN 7, STRING_ARRAY 8, I18NSTRING 9; numbers are
 * aligned to their size. A header read from a package starts with a
 * region entry (tag 61, 62 or 63, type BIN, count 16) whose offset points
 * at a 16-byte trailer in the data: the same tag and type, and as offset
 * minus the size of the region's index (-16 * entries in the region).
 *
 * What parse guarantees for every entry, so that getters may read
 * without checks: type <= 9; count >= 1 and offset < dl; fixed-size
 * values (count * size bytes) lie inside the data and are aligned; a
 * STRING has count 1; a string entry's first string is NUL-terminated
 * inside the data and a STRING_ARRAY/I18NSTRING has no more strings than
 * bytes left. Only the first string of an array is ever handed out.
 *
 * Cost: O(il + dl). The NUL check is O(1) per entry: a string starting
 * at o is terminated inside the data exactly when o <= the offset of the
 * data's last NUL, which is found once. So overlapping entries (which a
 * hostile blob can have by the thousand) cannot make parsing quadratic.
 * Lookups are linear in il; the rpm cataloger makes seven per header.
 * Any thread, one header per thread.
 */
#include "scan/catalog/rpmheader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

enum {
	RPM_NULL_TYPE = 0,
	RPM_CHAR_TYPE = 1,
	RPM_INT8_TYPE = 2,
	RPM_INT16_TYPE = 3,
	RPM_INT32_TYPE = 4,
	RPM_INT64_TYPE = 5,
	RPM_STRING_TYPE = 6,
	RPM_BIN_TYPE = 7,
	RPM_STRING_ARRAY_TYPE = 8,
	RPM_I18NSTRING_TYPE = 9,
	RPM_MAX_TYPE = 9
};

#define RPMHEADER_INTRO 8u
#define RPMHEADER_ENTRY 16u

struct rpmheader_entry {
	uint32_t tag, type, offset, count;
};

struct rpmheader {
	const unsigned char *data; /* dl bytes, inside the borrowed blob */
	size_t dl;
	struct rpmheader_entry *entries; /* il, validated, in blob order */
	size_t il;
};

/* Bytes per value of the fixed-size types; 0 for strings and NULL. */
static const unsigned rpmheader_type_size[RPM_MAX_TYPE + 1] = {
	0, 1, 1, 2, 4, 8, 0, 1, 0, 0
};

static uint32_t
rpmheader_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Fills err with what is wrong (v: the value found) at byte at of the
 * blob; -EINVAL. */
static int
rpmheader_bad(size_t at, const char *what, unsigned long long v, char *err,
    size_t errlen)
{
	errbuf_set(err, errlen, "rpm header: %s (%llu) at byte %zu", what, v,
	    at);
	return -EINVAL;
}

/* Checks the region entry e (index 0, at byte at) and its trailer. */
static int
rpmheader_check_region(const struct rpmheader *h,
    const struct rpmheader_entry *e, size_t at, char *err, size_t errlen)
{
	if (e->type != RPM_BIN_TYPE)
		return rpmheader_bad(at + 4,
		    "region entry type is not BIN", e->type, err, errlen);
	if (e->count != RPMHEADER_ENTRY)
		return rpmheader_bad(at + 12,
		    "region entry count is not 16", e->count, err, errlen);
	if ((uint64_t)e->offset + RPMHEADER_ENTRY > h->dl)
		return rpmheader_bad(at + 8,
		    "region trailer outside the data", e->offset, err, errlen);
	const unsigned char *t = h->data + e->offset;
	size_t tat = RPMHEADER_INTRO + RPMHEADER_ENTRY * h->il + e->offset;
	if (rpmheader_be32(t) != e->tag)
		return rpmheader_bad(tat,
		    "region trailer tag differs from the region's",
		    rpmheader_be32(t), err, errlen);
	if (rpmheader_be32(t + 4) != RPM_BIN_TYPE ||
	    rpmheader_be32(t + 12) != RPMHEADER_ENTRY)
		return rpmheader_bad(tat,
		    "region trailer is not BIN with count 16",
		    rpmheader_be32(t + 4), err, errlen);
	/* The trailer's offset is -16 * (entries in the region). */
	int64_t off = (int32_t)rpmheader_be32(t + 8);
	if (off >= 0 || (-off) % RPMHEADER_ENTRY != 0 ||
	    (uint64_t)(-off) / RPMHEADER_ENTRY > h->il)
		return rpmheader_bad(tat + 8,
		    "region trailer offset does not match the index",
		    (unsigned long long)off, err, errlen);
	return 0;
}

static int
rpmheader_check_entry(const struct rpmheader *h,
    const struct rpmheader_entry *e, size_t at, size_t lastnul,
    int have_nul, char *err, size_t errlen)
{
	if (e->type > RPM_MAX_TYPE)
		return rpmheader_bad(at + 4, "unknown type",
		    e->type, err, errlen);
	if (e->count == 0)
		return rpmheader_bad(at + 12, "count is 0", 0, err, errlen);
	if (e->offset >= h->dl)
		return rpmheader_bad(at + 8,
		    "offset outside the data", e->offset, err, errlen);
	size_t left = h->dl - e->offset;
	unsigned size = rpmheader_type_size[e->type];
	switch (e->type) {
	case RPM_STRING_TYPE:
	case RPM_STRING_ARRAY_TYPE:
	case RPM_I18NSTRING_TYPE:
		if (e->type == RPM_STRING_TYPE && e->count != 1)
			return rpmheader_bad(at + 12,
			    "STRING with count other than 1", e->count, err,
			    errlen);
		if (e->count > left)
			return rpmheader_bad(at + 12,
			    "more strings than data bytes", e->count, err,
			    errlen);
		if (!have_nul || e->offset > lastnul)
			return rpmheader_bad(at + 8,
			    "string not NUL-terminated inside the data",
			    e->offset, err, errlen);
		return 0;
	case RPM_NULL_TYPE:
		return 0;
	default:
		if ((uint64_t)e->count * size > left)
			return rpmheader_bad(at + 12,
			    "values run past the data", e->count, err, errlen);
		if (e->offset % size != 0)
			return rpmheader_bad(at + 8,
			    "misaligned offset", e->offset, err, errlen);
		return 0;
	}
}

int
rpmheader_parse(const void *blob, size_t len, rpmheader **out, char *err,
    size_t errlen)
{
	const unsigned char *b = blob;
	struct rpmheader *h = NULL;
	int rc;

	*out = NULL;
	if (len < RPMHEADER_INTRO)
		return rpmheader_bad(0,
		    "blob shorter than its 8-byte intro", len, err, errlen);
	uint32_t il = rpmheader_be32(b), dl = rpmheader_be32(b + 4);
	if (il == 0 || il > RPMHEADER_MAX_ENTRIES)
		return rpmheader_bad(0, "bad index length il",
		    il, err, errlen);
	if (dl > RPMHEADER_MAX_DATA)
		return rpmheader_bad(4, "bad data length dl",
		    dl, err, errlen);
	uint64_t want = RPMHEADER_INTRO + (uint64_t)il * RPMHEADER_ENTRY + dl;
	if (want != len)
		return rpmheader_bad(0,
		    "il and dl disagree with the blob size, which they give as",
		    (unsigned long long)want, err, errlen);

	/* il is now bounded by len / 16: the allocation is too. */
	h = xcalloc(1, sizeof(*h));
	h->il = il;
	h->dl = dl;
	h->data = b + RPMHEADER_INTRO + (size_t)il * RPMHEADER_ENTRY;
	h->entries = xcalloc(il, sizeof(*h->entries));

	const unsigned char *nul = NULL;
	for (size_t i = dl; i > 0; i--)
		if (h->data[i - 1] == '\0') {
			nul = h->data + i - 1;
			break;
		}
	size_t lastnul = nul != NULL ? (size_t)(nul - h->data) : 0;

	for (size_t i = 0; i < il; i++) {
		const unsigned char *p = b + RPMHEADER_INTRO +
		    i * RPMHEADER_ENTRY;
		size_t at = (size_t)(p - b);
		struct rpmheader_entry *e = &h->entries[i];
		e->tag = rpmheader_be32(p);
		e->type = rpmheader_be32(p + 4);
		e->offset = rpmheader_be32(p + 8);
		e->count = rpmheader_be32(p + 12);
		if (i == 0 && e->tag >= RPMTAG_HEADERIMAGE &&
		    e->tag <= RPMTAG_HEADERIMMUTABLE)
			rc = rpmheader_check_region(h, e, at, err, errlen);
		else
			rc = rpmheader_check_entry(h, e, at, lastnul,
			    nul != NULL, err, errlen);
		if (rc != 0)
			goto fail;
	}
	*out = h;
	return 0;

fail:
	rpmheader_free(h);
	return rc;
}

void
rpmheader_free(rpmheader *h)
{
	if (h == NULL)
		return;
	free(h->entries);
	free(h);
}

size_t
rpmheader_count(const rpmheader *h)
{
	return h->il;
}

/* The first entry with tag, skipping a leading region entry; or NULL. */
static const struct rpmheader_entry *
rpmheader_find(const rpmheader *h, uint32_t tag)
{
	for (size_t i = 0; i < h->il; i++)
		if (h->entries[i].tag == tag)
			return &h->entries[i];
	return NULL;
}

const char *
rpmheader_string(const rpmheader *h, uint32_t tag)
{
	const struct rpmheader_entry *e = rpmheader_find(h, tag);
	if (e == NULL || (e->type != RPM_STRING_TYPE &&
	    e->type != RPM_STRING_ARRAY_TYPE &&
	    e->type != RPM_I18NSTRING_TYPE))
		return NULL;
	/* parse checked the NUL: the string ends inside the data. */
	return (const char *)h->data + e->offset;
}

bool
rpmheader_int32(const rpmheader *h, uint32_t tag, uint32_t *v)
{
	const struct rpmheader_entry *e = rpmheader_find(h, tag);
	if (e == NULL || e->type != RPM_INT32_TYPE)
		return false;
	*v = rpmheader_be32(h->data + e->offset);
	return true;
}
