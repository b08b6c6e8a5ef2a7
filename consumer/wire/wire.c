/*
 * wire: a bounded Avro binary codec for WorkloadEvent and ScanOutcome (the
 * contract is in wire.h; the framings are frame.c's).
 *
 * Why hand-written: the schemas are fixed and small, released avro-c
 * trusts decoded lengths (a 10-byte varint can ask for a 2^63-byte
 * string), and the engine decodes about a million events a second. The
 * decoder is one pass over the buffer with a cursor; it allocates
 * nothing and copies nothing: strings are (pointer, length) slices of the
 * message. tests/test_wire.c proves the bytes are real Avro by
 * round-tripping through avro-c's generic reader and writer.
 *
 * Avro binary, as far as these schemas use it: int and long are zig-zag
 * varints (at most 5 and 10 bytes; the last byte may only carry the
 * bits that fit); string and bytes are a long length then the bytes;
 * enum is an int index; union is a long branch index then the branch;
 * array is a sequence of blocks, each a long count (negative: |count|
 * items preceded by a long byte size), ended by a zero count; a record is
 * its fields in order, nothing else.
 *
 * Each schema is a table of its fields (type, place in the struct,
 * nullability) that one reader, one checker, one sizer and one writer
 * walk, so the two messages share all their code and a field is described
 * once. Its versions, newest first, are a fingerprint and a field count
 * each: a later version only appends fields, whose defaults must read as
 * zeros (0, null, [], ""), which is what the reader stores for the fields
 * an older record does not have.
 *
 * Invariant of the reader: r->off <= r->len at all times; every length is
 * compared with r->len - r->off before the cursor moves.
 */
#include "wire/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"
#include "wire/writers.h"

#define NO_ELEM SIZE_MAX

struct rd {
	const uint8_t *p;
	size_t len, off;
	size_t base;	   /* offset of p[0] in the framed message */
	const char *field; /* field being read, for messages */
	size_t elem;	   /* array item being read, or NO_ELEM */
	char *err;
	size_t errlen;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The current field's name, "repo_tags[3]" inside an array. */
static const char *
rd_name(const struct rd *r, char *buf, size_t n)
{
	if (r->elem == NO_ELEM)
		return r->field;
	snprintf(buf, n, "%s[%zu]", r->field, r->elem);
	return buf;
}

/* at: offset in the payload the message points to. */
static int
rd_fail(struct rd *r, size_t at, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
rd_fail(struct rd *r, size_t at, const char *what, const char *fmt, ...)
{
	char name[96], msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errbuf_set(r->err, r->errlen, "%s '%s' %s at byte %zu", what,
	    rd_name(r, name, sizeof(name)), msg, r->base + at);
	return -EBADMSG;
}

/*
 * A zig-zag varint of at most maxbytes bytes whose last byte is at most
 * lastmax (5/0x0f for int, 10/0x01 for long).
 */
static int
rd_varint(struct rd *r, const char *what, unsigned maxbytes,
    unsigned lastmax, int64_t *out)
{
	size_t start = r->off;
	uint64_t v = 0;
	unsigned shift = 0;

	/* one byte: small lengths, enum indexes, union branches */
	if (r->off < r->len && r->p[r->off] < 0x80) {
		v = r->p[r->off++];
		*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
		return 0;
	}
	for (unsigned i = 0;; i++) {
		uint8_t b;
		if (r->off >= r->len) {
			char name[96];
			errbuf_set(r->err, r->errlen, "truncated: %s '%s' at byte "
			    "%zu", what, rd_name(r, name, sizeof(name)),
			    r->base + start);
			return -EBADMSG;
		}
		b = r->p[r->off++];
		if (i == maxbytes - 1 && b > lastmax)
			return rd_fail(r, start, what, "%s",
			    "is an overlong varint");
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			break;
		shift += 7;
	}
	*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return 0;
}

static int
rd_long(struct rd *r, int64_t *out)
{
	return rd_varint(r, "long", 10, 0x01, out);
}

static int
rd_int(struct rd *r, int32_t *out)
{
	int64_t v;
	int rc = rd_varint(r, "int", 5, 0x0f, &v);

	if (rc == 0)
		*out = (int32_t)v; /* in range: 32 bits of zig-zag */
	return rc;
}

/* A length-prefixed run of bytes of at most max bytes. */
static int
rd_span(struct rd *r, const char *what, size_t max, const uint8_t **p,
    size_t *n)
{
	size_t start = r->off, left;
	int64_t v;
	int rc;

	if ((rc = rd_varint(r, what, 10, 0x01, &v)) != 0)
		return rc;
	if (v < 0)
		return rd_fail(r, start, what, "has negative length %lld",
		    (long long)v);
	if ((uint64_t)v > max)
		return rd_fail(r, start, what, "of %lld bytes exceeds the "
		    "limit of %zu", (long long)v, max);
	left = r->len - r->off;
	if ((uint64_t)v > left) {
		char name[96];
		errbuf_set(r->err, r->errlen, "truncated: %s '%s' needs %lld "
		    "bytes, %zu left at byte %zu", what,
		    rd_name(r, name, sizeof(name)), (long long)v, left,
		    r->base + r->off);
		return -EBADMSG;
	}
	*p = r->p + r->off;
	*n = (size_t)v;
	r->off += (size_t)v;
	return 0;
}

bool
wire_utf8_valid(const char *str, size_t len)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t n;

		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		if (c == 0)
			return false;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07u;
		} else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

void
wire_utf8_sanitize(char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = 1;
		uint8_t c = (uint8_t)s[i];
		if (c >= 0xc0)
			n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (n > len - i || !wire_utf8_valid(s + i, n)) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}

static int
rd_str(struct rd *r, size_t max, struct wire_str *out)
{
	const uint8_t *p;
	size_t n, start = r->off;
	int rc;

	if ((rc = rd_span(r, "string", max, &p, &n)) != 0)
		return rc;
	/* fast path: printable ASCII, the usual ids, tags and digests */
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] >= 0x7f) {
			if (!wire_utf8_valid((const char *)p, n))
				return rd_fail(r, start, "string", "%s",
				    "is not valid UTF-8 without NUL");
			break;
		}
	}
	out->ptr = (const char *)p;
	out->len = n;
	return 0;
}

static int
rd_enum(struct rd *r, int nsym, int *out)
{
	size_t start = r->off;
	int32_t v;
	int rc;

	if ((rc = rd_int(r, &v)) != 0)
		return rc;
	if (v < 0 || v >= nsym)
		return rd_fail(r, start, "enum", "index %d out of range (%d "
		    "symbols)", (int)v, nsym);
	*out = (int)v;
	return 0;
}

/* A ["null", X] union: *present = branch index. */
static int
rd_nullable(struct rd *r, int *present)
{
	size_t start = r->off;
	int64_t v;
	int rc;

	if ((rc = rd_long(r, &v)) != 0)
		return rc;
	if (v != 0 && v != 1)
		return rd_fail(r, start, "union", "branch %lld out of range "
		    "(2 branches)", (long long)v);
	*present = (int)v;
	return 0;
}

static int
rd_strarray(struct rd *r, struct wire_str *arr, size_t *count)
{
	size_t n = 0;
	int rc;

	r->elem = NO_ELEM;
	for (;;) {
		size_t start = r->off;
		int64_t blk, bytes;

		if ((rc = rd_long(r, &blk)) != 0)
			return rc;
		if (blk == 0)
			break;
		if (blk < 0) {
			if (blk == INT64_MIN)
				return rd_fail(r, start, "array", "%s",
				    "has a bad block count");
			blk = -blk;
			if ((rc = rd_long(r, &bytes)) != 0)
				return rc;
			if (bytes < 0 || (uint64_t)bytes > r->len - r->off)
				return rd_fail(r, start, "array",
				    "block of %lld bytes does not fit",
				    (long long)bytes);
		}
		if ((uint64_t)blk > WIRE_MAX_REFS - n)
			return rd_fail(r, start, "array", "has more than %d "
			    "items", WIRE_MAX_REFS);
		for (int64_t i = 0; i < blk; i++) {
			r->elem = n;
			if ((rc = rd_str(r, WIRE_MAX_STRING, &arr[n])) != 0)
				return rc;
			n++;
		}
		r->elem = NO_ELEM;
	}
	*count = n;
	return 0;
}

static int
rd_end(struct rd *r, const char *record)
{
	if (r->off != r->len) {
		errbuf_set(r->err, r->errlen, "%zu trailing bytes after the %s "
		    "record at byte %zu", r->len - r->off, record,
		    r->base + r->off);
		return -EBADMSG;
	}
	return 0;
}

static void
rd_init(struct rd *r, const void *p, size_t len, size_t base, char *err,
    size_t errlen)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->base = base;
	r->field = "";
	r->elem = NO_ELEM;
	r->err = err;
	r->errlen = errlen;
}

/* ---- the two schemas, field by field ---- */

enum ftype {
	F_STRING,	/* struct wire_str */
	F_ENUM,		/* an enum of nsym symbols, int-sized */
	F_INT,		/* int32_t */
	F_LONG,		/* int64_t */
	F_REFS,		/* struct wire_str[WIRE_MAX_REFS]; size_t count
			 * at aux */
	F_BYTES,	/* const uint8_t *; size_t length at aux */
	F_RECORD,	/* a nested record: the aux fields that follow */
};

struct field {
	const char *name;	/* for messages: "sbom.format" */
	enum ftype type;
	size_t off;		/* of the value in the struct */
	size_t aux;		/* see enum ftype */
	int nsym;		/* F_ENUM */
	bool nullable;		/* ["null", X]: an int has_ flag at has */
	size_t has;
};

struct schema {
	const char *name; /* the record, for messages */
	const struct field *fields;
	size_t nfields;
	/* Versions, newest first: fps[v] is version v's fingerprint and
	 * vfields[v] how many of fields it has (vfields[0] == nfields;
	 * only top-level field boundaries). */
	const uint64_t *fps;
	const size_t *vfields;
	size_t nversions;
};

_Static_assert(sizeof(enum event_type) == sizeof(int) &&
    sizeof(enum entity_kind) == sizeof(int) &&
    sizeof(enum outcome_status) == sizeof(int) &&
    sizeof(enum error_class) == sizeof(int), "enums are int-sized");

#define EV(m) offsetof(struct wire_event, m)
#define OC(m) offsetof(struct wire_outcome, m)

static const struct field event_fields[] = {
	{.name = "event_id", .type = F_STRING, .off = EV(event_id)},
	{.name = "type", .type = F_ENUM, .off = EV(type),
	    .nsym = EVENT_TYPE_COUNT},
	{.name = "kind", .type = F_ENUM, .off = EV(kind),
	    .nsym = ENTITY_KIND_COUNT},
	{.name = "id", .type = F_STRING, .off = EV(id)},
	{.name = "source", .type = F_STRING, .off = EV(source)},
	{.name = "repo_tags", .type = F_REFS, .off = EV(repo_tags),
	    .aux = EV(ntags)},
	{.name = "repo_digests", .type = F_REFS, .off = EV(repo_digests),
	    .aux = EV(ndigests)},
	{.name = "observed_at", .type = F_LONG, .off = EV(observed_at)},
};

static const struct field outcome_fields[] = {
	{.name = "id", .type = F_STRING, .off = OC(id)},
	{.name = "kind", .type = F_ENUM, .off = OC(kind),
	    .nsym = ENTITY_KIND_COUNT},
	{.name = "status", .type = F_ENUM, .off = OC(status),
	    .nsym = OUTCOME_STATUS_COUNT},
	{.name = "attempt", .type = F_INT, .off = OC(attempt)},
	{.name = "next_attempt_at", .type = F_LONG, .off = OC(next_attempt_at),
	    .nullable = true, .has = OC(has_next_attempt_at)},
	{.name = "error", .type = F_STRING, .off = OC(error),
	    .nullable = true, .has = OC(has_error)},
	{.name = "error_class", .type = F_ENUM, .off = OC(error_class),
	    .nsym = ERROR_CLASS_COUNT, .nullable = true,
	    .has = OC(has_error_class)},
	{.name = "scanner", .type = F_STRING, .off = OC(scanner)},
	{.name = "started_at", .type = F_LONG, .off = OC(started_at),
	    .nullable = true, .has = OC(has_started_at)},
	{.name = "duration_ms", .type = F_LONG, .off = OC(duration_ms),
	    .nullable = true, .has = OC(has_duration_ms)},
	{.name = "repo_tags", .type = F_REFS, .off = OC(repo_tags),
	    .aux = OC(ntags)},
	{.name = "repo_digests", .type = F_REFS, .off = OC(repo_digests),
	    .aux = OC(ndigests)},
	{.name = "sbom", .type = F_RECORD, .aux = 4, .nullable = true,
	    .has = OC(has_sbom)},
	{.name = "sbom.format", .type = F_STRING, .off = OC(sbom.format)},
	{.name = "sbom.spec_version", .type = F_STRING,
	    .off = OC(sbom.spec_version)},
	{.name = "sbom.component_count", .type = F_INT,
	    .off = OC(sbom.component_count)},
	/* bounded by the payload limit checked before decoding */
	{.name = "sbom.content", .type = F_BYTES, .off = OC(sbom.content),
	    .aux = OC(sbom.content_len)},
	{.name = "emitted_at", .type = F_LONG, .off = OC(emitted_at)},
	/* appended later (default 0); not in WIRE_OUTCOME_V1_FP */
	{.name = "generation", .type = F_LONG, .off = OC(generation)},
};

static const uint64_t event_fps[] = { WIRE_EVENT_FP };
static const size_t event_vfields[] = { NELEM(event_fields) };
static const uint64_t outcome_fps[] = { WIRE_OUTCOME_FP, WIRE_OUTCOME_V1_FP };
static const size_t outcome_vfields[] = { NELEM(outcome_fields),
    NELEM(outcome_fields) - 1 };

_Static_assert(NELEM(event_fps) == NELEM(event_vfields) &&
    NELEM(outcome_fps) == NELEM(outcome_vfields), "one count per version");

static const struct schema event_schema = {"WorkloadEvent", event_fields,
    NELEM(event_fields), event_fps, event_vfields, NELEM(event_fps)};
static const struct schema outcome_schema = {"ScanOutcome", outcome_fields,
    NELEM(outcome_fields), outcome_fps, outcome_vfields, NELEM(outcome_fps)};

/* Whether nullable field f is present (non-nullable fields always are). */
static bool
field_has(const struct field *f, const char *base)
{
	int has = 1;
	if (f->nullable)
		memcpy(&has, base + f->has, sizeof(has));
	return has != 0;
}

/* How many fields after f belong to it and go with it. */
static size_t
field_span(const struct field *f)
{
	return f->type == F_RECORD ? f->aux : 0;
}

/* ---- decoding ---- */

/* A null field (and what it contains) reads as zeros. */
static void
zero_field(const struct field *f, char *base)
{
	static const size_t size[] = {
		[F_STRING] = sizeof(struct wire_str), [F_ENUM] = sizeof(int),
		[F_INT] = sizeof(int32_t), [F_LONG] = sizeof(int64_t),
		[F_REFS] = 0, [F_BYTES] = sizeof(const uint8_t *),
		[F_RECORD] = 0,
	};
	memset(base + f->off, 0, size[f->type]);
	if (f->type == F_REFS || f->type == F_BYTES)
		memset(base + f->aux, 0, sizeof(size_t));
}

static int
rd_value(struct rd *r, const struct field *f, char *base)
{
	void *at = base + f->off;
	const uint8_t *p;
	int v = 0, rc;

	switch (f->type) {
	case F_STRING:
		return rd_str(r, WIRE_MAX_STRING, at);
	case F_ENUM:
		if ((rc = rd_enum(r, f->nsym, &v)) == 0)
			memcpy(at, &v, sizeof(v));
		return rc;
	case F_INT:
		return rd_int(r, at);
	case F_LONG:
		return rd_long(r, at);
	case F_REFS:
		return rd_strarray(r, at, (size_t *)(base + f->aux));
	case F_BYTES:
		if ((rc = rd_span(r, "bytes", SIZE_MAX, &p,
		    (size_t *)(base + f->aux))) == 0)
			memcpy(at, &p, sizeof(p));
		return rc;
	case F_RECORD:
		break;
	}
	return 0;
}

/* Fields [from, nfields) of s, which the writer's version did not have,
 * take their defaults: zeros, and null for a union. */
static void
rd_defaults(const struct schema *s, size_t from, char *base)
{
	static const int null = 0;

	for (size_t i = from; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		if (f->nullable)
			memcpy(base + f->has, &null, sizeof(null));
		zero_field(f, base);
	}
}

/* Whether an older version of s ends before field i. */
static bool
version_ends_at(const struct schema *s, size_t i)
{
	for (size_t v = 1; v < s->nversions; v++)
		if (s->vfields[v] == i)
			return true;
	return false;
}

/*
 * Reads a record of version v of s (an index in s->fps), or, with v < 0
 * (the framing does not say), of whichever version ends where the bytes
 * do.
 */
static int
rd_record(struct rd *r, const struct schema *s, int v, void *out)
{
	size_t i, n = v >= 0 ? s->vfields[v] : s->nfields;
	char *base = out;
	int rc, has = 1;

	for (i = 0; i < n; i++) {
		const struct field *f = &s->fields[i];
		if (v < 0 && r->off == r->len && version_ends_at(s, i))
			break;
		r->field = f->name;
		if (f->nullable) {
			if ((rc = rd_nullable(r, &has)) != 0)
				return rc;
			memcpy(base + f->has, &has, sizeof(has));
			if (!has) {
				for (size_t k = 0; k <= field_span(f); k++)
					zero_field(&f[k], base);
				i += field_span(f);
				continue;
			}
		}
		if ((rc = rd_value(r, f, base)) != 0)
			return rc;
	}
	rd_defaults(s, i, base);
	return rd_end(r, s->name);
}

/* The payload p[0..len), which starts at byte base of the message, written
 * with version v of s (-1: unknown). */
static int
decode_payload(const struct schema *s, int v, const void *p, size_t len,
    size_t base, void *out, char *err, size_t errlen)
{
	struct rd r;

	rd_init(&r, p, len, base, err, errlen);
	return rd_record(&r, s, v, out);
}

/*
 * The writer schema of cfg->writers that msg's header names (a
 * single-object fingerprint that is none of s's versions, or a Confluent
 * id with a file of its own), or -1. *fr and *off describe the header.
 */
static int
foreign_writer(const struct schema *s, const uint8_t *p, size_t len,
    const struct wire_config *cfg, struct wire_frame *fr, size_t *off)
{
	if (cfg == NULL || cfg->writers == NULL)
		return -1;
	if (len >= WIRE_SINGLE_OBJECT_HEADER && p[0] == 0xc3 && p[1] == 0x01) {
		uint64_t fp = 0;
		for (int i = 7; i >= 0; i--)
			fp = fp << 8 | p[2 + i];
		for (size_t v = 0; v < s->nversions; v++)
			if (s->fps[v] == fp)
				return -1;
		*fr = (struct wire_frame){ WIRE_FRAMING_SINGLE_OBJECT, 0 };
		*off = WIRE_SINGLE_OBJECT_HEADER;
		return wire_writers_find_fp(cfg->writers, fp);
	}
	if (len >= WIRE_CONFLUENT_HEADER && p[0] == 0x00) {
		uint32_t id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 8 | (uint32_t)p[4];
		*fr = (struct wire_frame){ WIRE_FRAMING_CONFLUENT, id };
		*off = WIRE_CONFLUENT_HEADER;
		return wire_writers_find_id(cfg->writers, id);
	}
	return -1;
}

/* A message of writer schema wi of cfg->writers: bounded, resolved to the
 * reader schema, then decoded as the current version. */
static int
decode_foreign(const struct schema *s, int wi, const uint8_t *p, size_t len,
    const struct wire_config *cfg, void *out, struct wire_frame *frame,
    const struct wire_frame *fr, size_t off, char *err, size_t errlen)
{
	size_t max = cfg->max_payload ? cfg->max_payload :
	    WIRE_DEFAULT_MAX_PAYLOAD;
	const uint8_t *body;
	size_t blen;
	char why[256];
	int rc;

	if (len - off > max) {
		errbuf_set(err, errlen, "payload of %zu bytes exceeds the "
		    "limit of %zu", len - off, max);
		return -EMSGSIZE;
	}
	if ((rc = wire_writers_resolve(cfg->writers, wi, p + off, len - off,
	    &body, &blen, err, errlen)) != 0)
		return rc;
	if (frame != NULL)
		*frame = *fr;
	if ((rc = decode_payload(s, 0, body, blen, 0, out, why,
	    sizeof(why))) != 0)
		errbuf_set(err, errlen, "writer schema %s, resolved: %s",
		    wire_writers_file(cfg->writers, wi), why);
	return rc;
}

static int
decode(const struct schema *s, const void *msg, size_t len,
    const struct wire_config *cfg, void *out, struct wire_frame *frame,
    char *err, size_t errlen)
{
	struct wire_frame fr;
	size_t off;
	int v, wi = -1;

	if (s == &event_schema &&
	    (wi = foreign_writer(s, msg, len, cfg, &fr, &off)) >= 0)
		return decode_foreign(s, wi, msg, len, cfg, out, frame, &fr,
		    off, err, errlen);
	int rc = wire_frame_parse(msg, len, cfg, s->fps, s->nversions, frame,
	    &off, &v, err, errlen);

	if (rc == -EPROTO && s == &event_schema && cfg != NULL &&
	    cfg->writers != NULL && err != NULL && errlen > 0) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (and no writer schema in "
		    "kafka.writer_schemas_dir has it)");
	}
	if (rc != 0)
		return rc;
	return decode_payload(s, v, (const uint8_t *)msg + off, len - off, off,
	    out, err, errlen);
}

int
wire_event_decode(const void *msg, size_t len, const struct wire_config *cfg,
    struct wire_event *ev, struct wire_frame *frame, char *err, size_t errlen)
{
	return decode(&event_schema, msg, len, cfg, ev, frame, err, errlen);
}

int
wire_event_decode_body(const void *body, size_t len, struct wire_event *ev,
    char *err, size_t errlen)
{
	return decode_payload(&event_schema, -1, body, len, 0, ev, err,
	    errlen);
}

int
wire_outcome_decode(const void *msg, size_t len, const struct wire_config *cfg,
    struct wire_outcome *o, struct wire_frame *frame, char *err,
    size_t errlen)
{
	return decode(&outcome_schema, msg, len, cfg, o, frame, err, errlen);
}

int
wire_outcome_decode_body(const void *body, size_t len, struct wire_outcome *o,
    char *err, size_t errlen)
{
	return decode_payload(&outcome_schema, -1, body, len, 0, o, err,
	    errlen);
}

/* ---- encoding ---- */

static uint64_t
zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t
sz_long(int64_t v)
{
	uint64_t z = zigzag(v);
	size_t n = 1;

	while (z >= 0x80) {
		z >>= 7;
		n++;
	}
	return n;
}

static size_t
sz_str(struct wire_str s)
{
	return sz_long((int64_t)s.len) + s.len;
}

static size_t
sz_strarray(const struct wire_str *a, size_t n)
{
	size_t t = 1; /* the closing zero count */

	if (n > 0)
		t += sz_long((int64_t)n);
	for (size_t i = 0; i < n; i++)
		t += sz_str(a[i]);
	return t;
}

static uint8_t *
w_long(uint8_t *p, int64_t v)
{
	uint64_t z = zigzag(v);

	while (z >= 0x80) {
		*p++ = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	*p++ = (uint8_t)z;
	return p;
}

static uint8_t *
w_bytes(uint8_t *p, const void *b, size_t n)
{
	p = w_long(p, (int64_t)n);
	if (n > 0)
		memcpy(p, b, n);
	return p + n;
}

static uint8_t *
w_strarray(uint8_t *p, const struct wire_str *a, size_t n)
{
	if (n > 0) {
		p = w_long(p, (int64_t)n);
		for (size_t i = 0; i < n; i++)
			p = w_bytes(p, a[i].ptr, a[i].len);
	}
	*p++ = 0;
	return p;
}

static int
check_str(struct wire_str s, const char *field, size_t idx, char *err,
    size_t errlen)
{
	char name[96];

	if (idx == NO_ELEM)
		snprintf(name, sizeof(name), "%s", field);
	else
		snprintf(name, sizeof(name), "%s[%zu]", field, idx);
	if (s.len > 0 && s.ptr == NULL) {
		errbuf_set(err, errlen, "field '%s': NULL string of length %zu",
		    name, s.len);
		return -EINVAL;
	}
	if (s.len > WIRE_MAX_STRING) {
		errbuf_set(err, errlen, "field '%s': string of %zu bytes exceeds "
		    "the limit of %u", name, s.len, WIRE_MAX_STRING);
		return -EINVAL;
	}
	if (!wire_utf8_valid(s.ptr, s.len)) {
		errbuf_set(err, errlen, "field '%s': not valid UTF-8 without NUL",
		    name);
		return -EINVAL;
	}
	return 0;
}

/* Whether field f of base holds what the decoder would accept. */
static int
check_value(const struct field *f, const char *base, char *err,
    size_t errlen)
{
	const void *at = base + f->off;
	size_t n;
	int v, rc;

	switch (f->type) {
	case F_STRING:
		return check_str(*(const struct wire_str *)at, f->name, NO_ELEM,
		    err, errlen);
	case F_ENUM:
		memcpy(&v, at, sizeof(v));
		if (v < 0 || v >= f->nsym) {
			errbuf_set(err, errlen, "field '%s': enum value %d out "
			    "of range (%d symbols)", f->name, v, f->nsym);
			return -EINVAL;
		}
		return 0;
	case F_REFS:
		memcpy(&n, base + f->aux, sizeof(n));
		if (n > WIRE_MAX_REFS) {
			errbuf_set(err, errlen, "field '%s': %zu items exceed "
			    "the limit of %d", f->name, n, WIRE_MAX_REFS);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if ((rc = check_str(((const struct wire_str *)at)[i],
			    f->name, i, err, errlen)) != 0)
				return rc;
		return 0;
	case F_BYTES:
		memcpy(&n, base + f->aux, sizeof(n));
		if (n > 0 && *(const uint8_t *const *)at == NULL) {
			errbuf_set(err, errlen, "field '%s': NULL bytes of "
			    "length %zu", f->name, n);
			return -EINVAL;
		}
		return 0;
	case F_INT:
	case F_LONG:
	case F_RECORD:
		break;
	}
	return 0;
}

/* The encoded size of field f (its union branch included); f present. */
static size_t
sz_value(const struct field *f, const char *base)
{
	const void *at = base + f->off;
	size_t n = f->nullable ? 1 : 0;
	int32_t i32;
	int64_t i64;
	int v;

	switch (f->type) {
	case F_STRING:
		return n + sz_str(*(const struct wire_str *)at);
	case F_ENUM:
		memcpy(&v, at, sizeof(v));
		return n + sz_long(v);
	case F_INT:
		memcpy(&i32, at, sizeof(i32));
		return n + sz_long(i32);
	case F_LONG:
		memcpy(&i64, at, sizeof(i64));
		return n + sz_long(i64);
	case F_REFS:
		return n + sz_strarray(at, *(const size_t *)(base + f->aux));
	case F_BYTES:
		return n + sz_long((int64_t)*(const size_t *)(base + f->aux)) +
		    *(const size_t *)(base + f->aux);
	case F_RECORD:
		break;
	}
	return n;
}

static uint8_t *
w_value(uint8_t *p, const struct field *f, const char *base)
{
	const void *at = base + f->off;
	const struct wire_str *s = at;
	int32_t i32;
	int64_t i64;
	int v;

	if (f->nullable)
		*p++ = 2; /* zig-zag of the branch index 1 */
	switch (f->type) {
	case F_STRING:
		return w_bytes(p, s->ptr, s->len);
	case F_ENUM:
		memcpy(&v, at, sizeof(v));
		return w_long(p, v);
	case F_INT:
		memcpy(&i32, at, sizeof(i32));
		return w_long(p, i32);
	case F_LONG:
		memcpy(&i64, at, sizeof(i64));
		return w_long(p, i64);
	case F_REFS:
		return w_strarray(p, s, *(const size_t *)(base + f->aux));
	case F_BYTES:
		return w_bytes(p, *(const uint8_t *const *)at,
		    *(const size_t *)(base + f->aux));
	case F_RECORD:
		break;
	}
	return p;
}

/* Room for exactly need bytes; the old content is not kept. */
static uint8_t *
buf_reserve(struct wire_buf *b, size_t need)
{
	if (b->data == NULL || b->cap < need) {
		free(b->data);
		b->data = xmalloc(need ? need : 1);
		b->cap = need ? need : 1;
	}
	b->len = need;
	return b->data;
}

/*
 * Validates *in with the decoder's rules, computes the exact size, writes
 * the framed message into out. Null fields are one byte (branch 0).
 */
static int
encode(const struct schema *s, const void *in, const struct wire_frame *frame,
    struct wire_buf *out, char *err, size_t errlen)
{
	static const struct wire_frame so = { WIRE_FRAMING_SINGLE_OBJECT, 0 };
	const char *base = in;
	size_t need;
	int rc;

	if (frame == NULL)
		frame = &so;
	if ((rc = wire_frame_check(frame, err, errlen)) != 0)
		return rc;
	need = wire_frame_header_len(frame);
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		if (!field_has(f, base)) {
			need++;
			i += field_span(f);
			continue;
		}
		if ((rc = check_value(f, base, err, errlen)) != 0)
			return rc;
		need += sz_value(f, base);
	}
	uint8_t *start = buf_reserve(out, need);
	uint8_t *p = wire_frame_write(start, frame, s->fps[0]);
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		if (!field_has(f, base)) {
			*p++ = 0;
			i += field_span(f);
			continue;
		}
		p = w_value(p, f, base);
	}
	if ((size_t)(p - start) != need)
		abort(); /* size computation and writer disagree */
	return 0;
}

int
wire_event_encode(const struct wire_event *ev, const struct wire_frame *frame,
    struct wire_buf *out, char *err, size_t errlen)
{
	return encode(&event_schema, ev, frame, out, err, errlen);
}

int
wire_outcome_encode(const struct wire_outcome *o,
    const struct wire_frame *frame, struct wire_buf *out, char *err,
    size_t errlen)
{
	return encode(&outcome_schema, o, frame, out, err, errlen);
}

void
wire_buf_free(struct wire_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

struct wire_str
wire_str_c(const char *s)
{
	struct wire_str w = { s ? s : "", s ? strlen(s) : 0 };
	return w;
}
