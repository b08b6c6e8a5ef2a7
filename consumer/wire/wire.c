/*
 * wire: a bounded Avro binary codec for WorkloadEvent and ScanOutcome,
 * and the two framings (the contract is in wire.h).
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
 * Invariant of the reader: r->off <= r->len at all times; every length is
 * compared with r->len - r->off before the cursor moves.
 */
#include "wire/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

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

int
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
			return 0;
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
			return 0;
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
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

#define FIELD(name) (r->field = (name))

static int
event_body(struct rd *r, struct wire_event *ev)
{
	int rc, v;

	FIELD("event_id");
	if ((rc = rd_str(r, WIRE_MAX_STRING, &ev->event_id)) != 0)
		return rc;
	FIELD("type");
	if ((rc = rd_enum(r, 2, &v)) != 0)
		return rc;
	ev->type = (enum event_type)v;
	FIELD("kind");
	if ((rc = rd_enum(r, 2, &v)) != 0)
		return rc;
	ev->kind = (enum entity_kind)v;
	FIELD("id");
	if ((rc = rd_str(r, WIRE_MAX_STRING, &ev->id)) != 0)
		return rc;
	FIELD("source");
	if ((rc = rd_str(r, WIRE_MAX_STRING, &ev->source)) != 0)
		return rc;
	FIELD("repo_tags");
	if ((rc = rd_strarray(r, ev->repo_tags, &ev->ntags)) != 0)
		return rc;
	FIELD("repo_digests");
	if ((rc = rd_strarray(r, ev->repo_digests, &ev->ndigests)) != 0)
		return rc;
	FIELD("observed_at");
	if ((rc = rd_long(r, &ev->observed_at)) != 0)
		return rc;
	return rd_end(r, "WorkloadEvent");
}

static int
nullable_long(struct rd *r, int *has, int64_t *v)
{
	int rc;

	if ((rc = rd_nullable(r, has)) != 0)
		return rc;
	*v = 0;
	return *has ? rd_long(r, v) : 0;
}

static int
outcome_body(struct rd *r, struct wire_outcome *o)
{
	const uint8_t *p;
	int rc, v;

	FIELD("id");
	if ((rc = rd_str(r, WIRE_MAX_STRING, &o->id)) != 0)
		return rc;
	FIELD("kind");
	if ((rc = rd_enum(r, 2, &v)) != 0)
		return rc;
	o->kind = (enum entity_kind)v;
	FIELD("status");
	if ((rc = rd_enum(r, 4, &v)) != 0)
		return rc;
	o->status = (enum outcome_status)v;
	FIELD("attempt");
	if ((rc = rd_int(r, &o->attempt)) != 0)
		return rc;
	FIELD("next_attempt_at");
	if ((rc = nullable_long(r, &o->has_next_attempt_at,
	    &o->next_attempt_at)) != 0)
		return rc;
	FIELD("error");
	if ((rc = rd_nullable(r, &o->has_error)) != 0)
		return rc;
	o->error.ptr = NULL;
	o->error.len = 0;
	if (o->has_error && (rc = rd_str(r, WIRE_MAX_STRING, &o->error)) != 0)
		return rc;
	FIELD("error_class");
	if ((rc = rd_nullable(r, &o->has_error_class)) != 0)
		return rc;
	o->error_class = ERROR_RETRYABLE;
	if (o->has_error_class) {
		if ((rc = rd_enum(r, 2, &v)) != 0)
			return rc;
		o->error_class = (enum error_class)v;
	}
	FIELD("scanner");
	if ((rc = rd_str(r, WIRE_MAX_STRING, &o->scanner)) != 0)
		return rc;
	FIELD("started_at");
	if ((rc = nullable_long(r, &o->has_started_at, &o->started_at)) != 0)
		return rc;
	FIELD("duration_ms");
	if ((rc = nullable_long(r, &o->has_duration_ms,
	    &o->duration_ms)) != 0)
		return rc;
	FIELD("repo_tags");
	if ((rc = rd_strarray(r, o->repo_tags, &o->ntags)) != 0)
		return rc;
	FIELD("repo_digests");
	if ((rc = rd_strarray(r, o->repo_digests, &o->ndigests)) != 0)
		return rc;
	FIELD("sbom");
	if ((rc = rd_nullable(r, &o->has_sbom)) != 0)
		return rc;
	memset(&o->sbom, 0, sizeof(o->sbom));
	if (o->has_sbom) {
		FIELD("sbom.format");
		if ((rc = rd_str(r, WIRE_MAX_STRING, &o->sbom.format)) != 0)
			return rc;
		FIELD("sbom.spec_version");
		if ((rc = rd_str(r, WIRE_MAX_STRING,
		    &o->sbom.spec_version)) != 0)
			return rc;
		FIELD("sbom.component_count");
		if ((rc = rd_int(r, &o->sbom.component_count)) != 0)
			return rc;
		FIELD("sbom.content");
		/* bounded by the payload limit checked before decoding */
		if ((rc = rd_span(r, "bytes", SIZE_MAX, &p,
		    &o->sbom.content_len)) != 0)
			return rc;
		o->sbom.content = p;
	}
	FIELD("emitted_at");
	if ((rc = rd_long(r, &o->emitted_at)) != 0)
		return rc;
	return rd_end(r, "ScanOutcome");
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

int
wire_event_decode_body(const void *body, size_t len, struct wire_event *ev,
    char *err, size_t errlen)
{
	struct rd r;

	rd_init(&r, body, len, 0, err, errlen);
	return event_body(&r, ev);
}

int
wire_outcome_decode_body(const void *body, size_t len, struct wire_outcome *o,
    char *err, size_t errlen)
{
	struct rd r;

	rd_init(&r, body, len, 0, err, errlen);
	return outcome_body(&r, o);
}

static const char *
schema_name(uint64_t fp)
{
	if (fp == WIRE_EVENT_FP)
		return "WorkloadEvent";
	if (fp == WIRE_OUTCOME_FP)
		return "ScanOutcome";
	return "the expected schema";
}

int
wire_frame_parse(const void *msg, size_t len, const struct wire_config *cfg,
    uint64_t fp, struct wire_frame *frame, size_t *payload_off, char *err,
    size_t errlen)
{
	static const struct wire_config defcfg;
	const uint8_t *p = msg;
	struct wire_frame fr = { WIRE_FRAMING_SINGLE_OBJECT, 0 };
	size_t off, max;

	if (cfg == NULL)
		cfg = &defcfg;
	max = cfg->max_payload ? cfg->max_payload : WIRE_DEFAULT_MAX_PAYLOAD;
	if (len == 0) {
		errbuf_set(err, errlen, "empty message");
		return -EPROTO;
	}
	if (p[0] == 0x00) {
		uint32_t id;
		size_t i;
		if (len < WIRE_CONFLUENT_HEADER) {
			errbuf_set(err, errlen, "truncated: confluent header needs "
			    "%d bytes, message has %zu",
			    WIRE_CONFLUENT_HEADER, len);
			return -EPROTO;
		}
		id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 8 | (uint32_t)p[4];
		for (i = 0; i < cfg->nschema_ids; i++)
			if (cfg->schema_ids[i] == id)
				break;
		if (!cfg->any_schema_id && i == cfg->nschema_ids) {
			char list[128];
			size_t n = 0;
			list[0] = '\0';
			for (i = 0; i < cfg->nschema_ids && n < 100; i++)
				n += (size_t)snprintf(list + n,
				    sizeof(list) - n, "%s%u", i ? ", " : "",
				    cfg->schema_ids[i]);
			if (i < cfg->nschema_ids)
				snprintf(list + n, sizeof(list) - n, ", ...");
			errbuf_set(err, errlen, "unknown confluent schema id %u "
			    "(accepted: %s)", id,
			    cfg->nschema_ids ? list : "none configured");
			return -EPROTO;
		}
		fr.framing = WIRE_FRAMING_CONFLUENT;
		fr.schema_id = id;
		off = WIRE_CONFLUENT_HEADER;
	} else if (p[0] == 0xc3) {
		uint64_t got = 0;
		if (len >= 2 && p[1] != 0x01) {
			errbuf_set(err, errlen, "unknown framing (first bytes 0xc3 "
			    "0x%02x, single-object needs 0xc3 0x01)", p[1]);
			return -EPROTO;
		}
		if (len < WIRE_SINGLE_OBJECT_HEADER) {
			errbuf_set(err, errlen, "truncated: single-object header "
			    "needs %d bytes, message has %zu",
			    WIRE_SINGLE_OBJECT_HEADER, len);
			return -EPROTO;
		}
		for (int i = 7; i >= 0; i--)
			got = got << 8 | p[2 + i];
		if (got != fp) {
			errbuf_set(err, errlen, "single-object fingerprint "
			    "0x%016llx is not %s's 0x%016llx",
			    (unsigned long long)got, schema_name(fp),
			    (unsigned long long)fp);
			return -EPROTO;
		}
		off = WIRE_SINGLE_OBJECT_HEADER;
	} else {
		errbuf_set(err, errlen, "unknown framing (first byte 0x%02x)",
		    p[0]);
		return -EPROTO;
	}
	if (len - off > max) {
		errbuf_set(err, errlen, "payload of %zu bytes exceeds the limit of "
		    "%zu", len - off, max);
		return -EMSGSIZE;
	}
	if (frame != NULL)
		*frame = fr;
	*payload_off = off;
	return 0;
}

int
wire_event_decode(const void *msg, size_t len, const struct wire_config *cfg,
    struct wire_event *ev, struct wire_frame *frame, char *err, size_t errlen)
{
	struct rd r;
	size_t off;
	int rc;

	if ((rc = wire_frame_parse(msg, len, cfg, WIRE_EVENT_FP, frame, &off,
	    err, errlen)) != 0)
		return rc;
	rd_init(&r, (const uint8_t *)msg + off, len - off, off, err, errlen);
	return event_body(&r, ev);
}

int
wire_outcome_decode(const void *msg, size_t len, const struct wire_config *cfg,
    struct wire_outcome *o, struct wire_frame *frame, char *err,
    size_t errlen)
{
	struct rd r;
	size_t off;
	int rc;

	if ((rc = wire_frame_parse(msg, len, cfg, WIRE_OUTCOME_FP, frame, &off,
	    err, errlen)) != 0)
		return rc;
	rd_init(&r, (const uint8_t *)msg + off, len - off, off, err, errlen);
	return outcome_body(&r, o);
}

/* Encoding. */

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
w_str(uint8_t *p, struct wire_str s)
{
	return w_bytes(p, s.ptr, s.len);
}

static uint8_t *
w_strarray(uint8_t *p, const struct wire_str *a, size_t n)
{
	if (n > 0) {
		p = w_long(p, (int64_t)n);
		for (size_t i = 0; i < n; i++)
			p = w_str(p, a[i]);
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

static int
check_strarray(const struct wire_str *a, size_t n, const char *field,
    char *err, size_t errlen)
{
	int rc;

	if (n > WIRE_MAX_REFS) {
		errbuf_set(err, errlen, "field '%s': %zu items exceed the limit of "
		    "%d", field, n, WIRE_MAX_REFS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = check_str(a[i], field, i, err, errlen)) != 0)
			return rc;
	return 0;
}

static int
check_enum(int v, int nsym, const char *field, char *err, size_t errlen)
{
	if (v < 0 || v >= nsym) {
		errbuf_set(err, errlen, "field '%s': enum value %d out of range "
		    "(%d symbols)", field, v, nsym);
		return -EINVAL;
	}
	return 0;
}

static size_t
header_len(const struct wire_frame *fr)
{
	return fr->framing == WIRE_FRAMING_CONFLUENT ? WIRE_CONFLUENT_HEADER :
	    WIRE_SINGLE_OBJECT_HEADER;
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

static uint8_t *
w_header(uint8_t *p, const struct wire_frame *fr, uint64_t fp)
{
	if (fr->framing == WIRE_FRAMING_CONFLUENT) {
		*p++ = 0x00;
		*p++ = (uint8_t)(fr->schema_id >> 24);
		*p++ = (uint8_t)(fr->schema_id >> 16);
		*p++ = (uint8_t)(fr->schema_id >> 8);
		*p++ = (uint8_t)fr->schema_id;
		return p;
	}
	*p++ = 0xc3;
	*p++ = 0x01;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(fp >> (8 * i));
	return p;
}

static int
check_frame(const struct wire_frame *fr, char *err, size_t errlen)
{
	if (fr->framing != WIRE_FRAMING_SINGLE_OBJECT &&
	    fr->framing != WIRE_FRAMING_CONFLUENT) {
		errbuf_set(err, errlen, "unknown output framing %d",
		    (int)fr->framing);
		return -EINVAL;
	}
	return 0;
}

int
wire_event_encode(const struct wire_event *ev, const struct wire_frame *frame,
    struct wire_buf *out, char *err, size_t errlen)
{
	static const struct wire_frame so = { WIRE_FRAMING_SINGLE_OBJECT, 0 };
	uint8_t *p, *start;
	size_t need;
	int rc;

	if (frame == NULL)
		frame = &so;
	if ((rc = check_frame(frame, err, errlen)) != 0 ||
	    (rc = check_str(ev->event_id, "event_id", NO_ELEM, err,
	    errlen)) != 0 ||
	    (rc = check_enum((int)ev->type, 2, "type", err, errlen)) != 0 ||
	    (rc = check_enum((int)ev->kind, 2, "kind", err, errlen)) != 0 ||
	    (rc = check_str(ev->id, "id", NO_ELEM, err, errlen)) != 0 ||
	    (rc = check_str(ev->source, "source", NO_ELEM, err, errlen)) != 0 ||
	    (rc = check_strarray(ev->repo_tags, ev->ntags, "repo_tags", err,
	    errlen)) != 0 ||
	    (rc = check_strarray(ev->repo_digests, ev->ndigests,
	    "repo_digests", err, errlen)) != 0)
		return rc;
	need = header_len(frame) + sz_str(ev->event_id) + 2 + sz_str(ev->id) +
	    sz_str(ev->source) + sz_strarray(ev->repo_tags, ev->ntags) +
	    sz_strarray(ev->repo_digests, ev->ndigests) +
	    sz_long(ev->observed_at);
	start = p = buf_reserve(out, need);
	p = w_header(p, frame, WIRE_EVENT_FP);
	p = w_str(p, ev->event_id);
	p = w_long(p, (int64_t)ev->type);
	p = w_long(p, (int64_t)ev->kind);
	p = w_str(p, ev->id);
	p = w_str(p, ev->source);
	p = w_strarray(p, ev->repo_tags, ev->ntags);
	p = w_strarray(p, ev->repo_digests, ev->ndigests);
	p = w_long(p, ev->observed_at);
	if ((size_t)(p - start) != need)
		abort(); /* size computation and writer disagree */
	return 0;
}

static size_t
sz_nullable_long(int has, int64_t v)
{
	return 1 + (has ? sz_long(v) : 0);
}

static uint8_t *
w_nullable_long(uint8_t *p, int has, int64_t v)
{
	*p++ = has ? 2 : 0; /* zig-zag of the branch index */
	return has ? w_long(p, v) : p;
}

int
wire_outcome_encode(const struct wire_outcome *o,
    const struct wire_frame *frame, struct wire_buf *out, char *err,
    size_t errlen)
{
	static const struct wire_frame so = { WIRE_FRAMING_SINGLE_OBJECT, 0 };
	uint8_t *p, *start;
	size_t need;
	int rc;

	if (frame == NULL)
		frame = &so;
	if ((rc = check_frame(frame, err, errlen)) != 0 ||
	    (rc = check_str(o->id, "id", NO_ELEM, err, errlen)) != 0 ||
	    (rc = check_enum((int)o->kind, 2, "kind", err, errlen)) != 0 ||
	    (rc = check_enum((int)o->status, 4, "status", err, errlen)) != 0 ||
	    (o->has_error && (rc = check_str(o->error, "error", NO_ELEM, err,
	    errlen)) != 0) ||
	    (o->has_error_class && (rc = check_enum((int)o->error_class, 2,
	    "error_class", err, errlen)) != 0) ||
	    (rc = check_str(o->scanner, "scanner", NO_ELEM, err,
	    errlen)) != 0 ||
	    (rc = check_strarray(o->repo_tags, o->ntags, "repo_tags", err,
	    errlen)) != 0 ||
	    (rc = check_strarray(o->repo_digests, o->ndigests,
	    "repo_digests", err, errlen)) != 0)
		return rc;
	if (o->has_sbom) {
		if ((rc = check_str(o->sbom.format, "sbom.format", NO_ELEM,
		    err, errlen)) != 0 ||
		    (rc = check_str(o->sbom.spec_version, "sbom.spec_version",
		    NO_ELEM, err, errlen)) != 0)
			return rc;
		if (o->sbom.content_len > 0 && o->sbom.content == NULL) {
			errbuf_set(err, errlen, "field 'sbom.content': NULL bytes "
			    "of length %zu", o->sbom.content_len);
			return -EINVAL;
		}
	}
	need = header_len(frame) + sz_str(o->id) + 2 + sz_long(o->attempt) +
	    sz_nullable_long(o->has_next_attempt_at, o->next_attempt_at) +
	    1 + (o->has_error ? sz_str(o->error) : 0) +
	    1 + (o->has_error_class ? 1 : 0) + sz_str(o->scanner) +
	    sz_nullable_long(o->has_started_at, o->started_at) +
	    sz_nullable_long(o->has_duration_ms, o->duration_ms) +
	    sz_strarray(o->repo_tags, o->ntags) +
	    sz_strarray(o->repo_digests, o->ndigests) + 1 +
	    sz_long(o->emitted_at);
	if (o->has_sbom)
		need += sz_str(o->sbom.format) + sz_str(o->sbom.spec_version) +
		    sz_long(o->sbom.component_count) +
		    sz_long((int64_t)o->sbom.content_len) +
		    o->sbom.content_len;
	start = p = buf_reserve(out, need);
	p = w_header(p, frame, WIRE_OUTCOME_FP);
	p = w_str(p, o->id);
	p = w_long(p, (int64_t)o->kind);
	p = w_long(p, (int64_t)o->status);
	p = w_long(p, o->attempt);
	p = w_nullable_long(p, o->has_next_attempt_at, o->next_attempt_at);
	*p++ = o->has_error ? 2 : 0;
	if (o->has_error)
		p = w_str(p, o->error);
	*p++ = o->has_error_class ? 2 : 0;
	if (o->has_error_class)
		p = w_long(p, (int64_t)o->error_class);
	p = w_str(p, o->scanner);
	p = w_nullable_long(p, o->has_started_at, o->started_at);
	p = w_nullable_long(p, o->has_duration_ms, o->duration_ms);
	p = w_strarray(p, o->repo_tags, o->ntags);
	p = w_strarray(p, o->repo_digests, o->ndigests);
	*p++ = o->has_sbom ? 2 : 0;
	if (o->has_sbom) {
		p = w_str(p, o->sbom.format);
		p = w_str(p, o->sbom.spec_version);
		p = w_long(p, o->sbom.component_count);
		p = w_bytes(p, o->sbom.content, o->sbom.content_len);
	}
	p = w_long(p, o->emitted_at);
	if ((size_t)(p - start) != need)
		abort(); /* size computation and writer disagree */
	return 0;
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

int
wire_framing_parse(const char *s, enum wire_framing *out)
{
	if (s != NULL && strcmp(s, "single-object") == 0)
		*out = WIRE_FRAMING_SINGLE_OBJECT;
	else if (s != NULL && strcmp(s, "confluent") == 0)
		*out = WIRE_FRAMING_CONFLUENT;
	else
		return -EINVAL;
	return 0;
}
