/*
 * test_wire: the Avro codec, framings, CRC-64-AVRO and Parsing Canonical
 * Form (consumer/wire).
 *
 * - PCF and fingerprints against the Avro project's own test vectors
 *   (share/test/data/schema-tests.txt), the exact PCF of our schemas, and
 *   the schema files of the source tree against the embedded copies;
 * - seeded random round trips of events and outcomes in both framings;
 * - the exact bytes of an event and an outcome;
 * - ScanOutcome's schema evolution: records of the version before
 *   `generation` still decode (generation 0), framed single-object with
 *   the old fingerprint, Confluent or bare, and avro-c writes them;
 * - every error path with its exact message: framing, ids, fingerprints,
 *   sizes, enums, unions, negative lengths, overlong varints, too many
 *   refs, trailing bytes, bad UTF-8; every truncation of valid messages;
 *   random and mutated bytes (no crash; ASan/UBSan builds check more);
 * - interop with avro-c's generic reader and writer both ways, which
 *   proves the bytes are real Avro;
 * - the JSON helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <avro.h>
#include <jansson.h>

#include "testutil.h"
#include "wire/fingerprint.h"
#include "wire/wire.h"
#include "wire/wirejson.h"
#include "wire/writers.h"

#define SO WIRE_SINGLE_OBJECT_HEADER

/* ---- helpers ---- */

static char *arena;
static size_t arena_used;
#define ARENA_SIZE (16u << 20)

static void
arena_reset(void)
{
	if (arena == NULL)
		arena = malloc(ARENA_SIZE);
	assert_non_null(arena);
	arena_used = 0;
}

static char *
arena_alloc(size_t n)
{
	assert_true(arena_used + n <= ARENA_SIZE);
	char *p = arena + arena_used;
	arena_used += n;
	return p;
}

/* Random valid UTF-8 (ASCII, 2-, 3- and 4-byte sequences), NUL after. */
static struct wire_str
rnd_str(size_t maxlen)
{
	static const char *const multi[] = { "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\xdf\xbf", "\xef\xbf\xbd" };
	size_t want = maxlen ? rng_below(maxlen + 1) : 0, n = 0;
	char *p = arena_alloc(want + 1);
	int ascii_only = rng_below(4) != 0;

	while (n < want) {
		if (ascii_only || rng_below(5) != 0) {
			p[n++] = (char)(0x20 + rng_below(0x5f));
			continue;
		}
		const char *m = multi[rng_below(5)];
		size_t l = strlen(m);
		if (n + l > want)
			break;
		memcpy(p + n, m, l);
		n += l;
	}
	p[n] = '\0';
	return (struct wire_str){ p, n };
}

static int64_t
rnd_long(void)
{
	switch (rng_below(6)) {
	case 0:
		return 0;
	case 1:
		return INT64_MIN;
	case 2:
		return INT64_MAX;
	case 3:
		return (int64_t)rng_below(200) - 100;
	case 4:
		return 1700000000000LL + (int64_t)rng_below(1000000000);
	default:
		return (int64_t)rng_next();
	}
}

static int32_t
rnd_int(void)
{
	switch (rng_below(4)) {
	case 0:
		return INT32_MIN;
	case 1:
		return INT32_MAX;
	case 2:
		return (int32_t)rng_below(10);
	default:
		return (int32_t)(uint32_t)rng_next();
	}
}

static size_t
rnd_count(void)
{
	switch (rng_below(8)) {
	case 0:
		return WIRE_MAX_REFS;
	case 1:
		return rng_below(WIRE_MAX_REFS + 1);
	default:
		return rng_below(4);
	}
}

static void
rnd_event(struct wire_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->event_id = rnd_str(40);
	ev->type = (enum event_type)rng_below(2);
	ev->kind = (enum entity_kind)rng_below(2);
	ev->id = rnd_str(rng_below(10) == 0 ? 2000 : 80);
	ev->source = rnd_str(30);
	ev->ntags = rnd_count();
	for (size_t i = 0; i < ev->ntags; i++)
		ev->repo_tags[i] = rnd_str(60);
	ev->ndigests = rnd_count();
	for (size_t i = 0; i < ev->ndigests; i++)
		ev->repo_digests[i] = rnd_str(90);
	ev->observed_at = rnd_long();
}

static void
rnd_outcome(struct wire_outcome *o, size_t maxcontent)
{
	memset(o, 0, sizeof(*o));
	o->id = rnd_str(80);
	o->kind = (enum entity_kind)rng_below(2);
	o->status = (enum outcome_status)rng_below(4);
	o->attempt = rnd_int();
	if ((o->has_next_attempt_at = (int)rng_below(2)))
		o->next_attempt_at = rnd_long();
	if ((o->has_error = (int)rng_below(2)))
		o->error = rnd_str(300);
	if ((o->has_error_class = (int)rng_below(2)))
		o->error_class = (enum error_class)rng_below(2);
	o->scanner = rnd_str(20);
	if ((o->has_started_at = (int)rng_below(2)))
		o->started_at = rnd_long();
	if ((o->has_duration_ms = (int)rng_below(2)))
		o->duration_ms = rnd_long();
	o->ntags = rnd_count();
	for (size_t i = 0; i < o->ntags; i++)
		o->repo_tags[i] = rnd_str(60);
	o->ndigests = rnd_count();
	for (size_t i = 0; i < o->ndigests; i++)
		o->repo_digests[i] = rnd_str(90);
	if ((o->has_sbom = (int)rng_below(2))) {
		size_t n = maxcontent ? rng_below(maxcontent + 1) : 0;
		uint8_t *c = (uint8_t *)arena_alloc(n + 1);
		for (size_t i = 0; i < n; i++)
			c[i] = (uint8_t)rng_next();
		o->sbom.format = rnd_str(12);
		o->sbom.spec_version = rnd_str(5);
		o->sbom.component_count = rnd_int();
		o->sbom.content = c;
		o->sbom.content_len = n;
	}
	o->emitted_at = rnd_long();
	o->generation = rnd_long();
}

static void
rnd_frame(struct wire_frame *fr)
{
	fr->framing = rng_below(2) ? WIRE_FRAMING_CONFLUENT :
	    WIRE_FRAMING_SINGLE_OBJECT;
	fr->schema_id = fr->framing == WIRE_FRAMING_CONFLUENT ?
	    (uint32_t)rng_below(3) + 1 : 0;
}

static void
wstr_eq(struct wire_str a, struct wire_str b, const char *what)
{
	if (a.len != b.len || (a.len > 0 && memcmp(a.ptr, b.ptr, a.len) != 0))
		fail_msg("%s differs: %zu bytes \"%.*s\" vs %zu bytes \"%.*s\"",
		    what, a.len, (int)(a.len > 60 ? 60 : a.len), a.ptr, b.len,
		    (int)(b.len > 60 ? 60 : b.len), b.ptr);
}

static void
event_eq(const struct wire_event *a, const struct wire_event *b)
{
	wstr_eq(a->event_id, b->event_id, "event_id");
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->kind, b->kind);
	wstr_eq(a->id, b->id, "id");
	wstr_eq(a->source, b->source, "source");
	assert_int_equal(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++)
		wstr_eq(a->repo_tags[i], b->repo_tags[i], "repo_tags[i]");
	assert_int_equal(a->ndigests, b->ndigests);
	for (size_t i = 0; i < a->ndigests; i++)
		wstr_eq(a->repo_digests[i], b->repo_digests[i],
		    "repo_digests[i]");
	assert_true(a->observed_at == b->observed_at);
}

static void
outcome_eq(const struct wire_outcome *a, const struct wire_outcome *b)
{
	wstr_eq(a->id, b->id, "id");
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->has_next_attempt_at, b->has_next_attempt_at);
	if (a->has_next_attempt_at)
		assert_true(a->next_attempt_at == b->next_attempt_at);
	assert_int_equal(a->has_error, b->has_error);
	if (a->has_error)
		wstr_eq(a->error, b->error, "error");
	assert_int_equal(a->has_error_class, b->has_error_class);
	if (a->has_error_class)
		assert_int_equal(a->error_class, b->error_class);
	wstr_eq(a->scanner, b->scanner, "scanner");
	assert_int_equal(a->has_started_at, b->has_started_at);
	if (a->has_started_at)
		assert_true(a->started_at == b->started_at);
	assert_int_equal(a->has_duration_ms, b->has_duration_ms);
	if (a->has_duration_ms)
		assert_true(a->duration_ms == b->duration_ms);
	assert_int_equal(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++)
		wstr_eq(a->repo_tags[i], b->repo_tags[i], "repo_tags[i]");
	assert_int_equal(a->ndigests, b->ndigests);
	for (size_t i = 0; i < a->ndigests; i++)
		wstr_eq(a->repo_digests[i], b->repo_digests[i],
		    "repo_digests[i]");
	assert_int_equal(a->has_sbom, b->has_sbom);
	if (a->has_sbom) {
		wstr_eq(a->sbom.format, b->sbom.format, "sbom.format");
		wstr_eq(a->sbom.spec_version, b->sbom.spec_version,
		    "sbom.spec_version");
		assert_int_equal(a->sbom.component_count,
		    b->sbom.component_count);
		assert_int_equal(a->sbom.content_len, b->sbom.content_len);
		if (a->sbom.content_len > 0)
			assert_memory_equal(a->sbom.content, b->sbom.content,
			    a->sbom.content_len);
	}
	assert_true(a->emitted_at == b->emitted_at);
	assert_true(a->generation == b->generation);
}

static struct wire_event ev_a, ev_b;
static struct wire_outcome oc_a, oc_b;
static const uint32_t ids[] = { 1, 2, 3 };
static const struct wire_config cfg123 = { 0, ids, 3, 0, NULL };

/* Decodes msg as an event and expects rc and the exact message. */
static void
expect_event_err(const void *msg, size_t len, const struct wire_config *cfg,
    int want_rc, const char *want_err)
{
	char err[256] = "";
	int rc = wire_event_decode(msg, len, cfg, &ev_b, NULL, err,
	    sizeof(err));
	if (rc != want_rc || strcmp(err, want_err) != 0)
		fail_msg("decode: rc %d \"%s\", want %d \"%s\"", rc, err,
		    want_rc, want_err);
}

static void
expect_outcome_err(const void *msg, size_t len, const struct wire_config *cfg,
    int want_rc, const char *want_err)
{
	char err[256] = "";
	int rc = wire_outcome_decode(msg, len, cfg, &oc_b, NULL, err,
	    sizeof(err));
	if (rc != want_rc || strcmp(err, want_err) != 0)
		fail_msg("decode: rc %d \"%s\", want %d \"%s\"", rc, err,
		    want_rc, want_err);
}

/* A single-object header for fp followed by body bytes. */
static size_t
framed(uint8_t *out, uint64_t fp, const uint8_t *body, size_t n)
{
	out[0] = 0xc3;
	out[1] = 0x01;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(fp >> (8 * i));
	memcpy(out + SO, body, n);
	return SO + n;
}

/* ---- PCF and fingerprints ---- */

struct vector {
	const char *input, *canonical;
	int has_fp;
	int64_t fp;
};

/* share/test/data/schema-tests.txt of apache/avro, all 34 cases. */
static const struct vector vectors[] = {
	{ "\"null\"", "\"null\"", 1, 7195948357588979594LL },
	{ "{\"type\":\"null\"}", "\"null\"", 0, 0 },
	{ "\"boolean\"", "\"boolean\"", 1, -6970731678124411036LL },
	{ "{\"type\":\"boolean\"}", "\"boolean\"", 0, 0 },
	{ "\"int\"", "\"int\"", 1, 8247732601305521295LL },
	{ "{\"type\":\"int\"}", "\"int\"", 0, 0 },
	{ "\"long\"", "\"long\"", 1, -3434872931120570953LL },
	{ "{\"type\":\"long\"}", "\"long\"", 0, 0 },
	{ "\"float\"", "\"float\"", 1, 5583340709985441680LL },
	{ "{\"type\":\"float\"}", "\"float\"", 0, 0 },
	{ "\"double\"", "\"double\"", 1, -8181574048448539266LL },
	{ "{\"type\":\"double\"}", "\"double\"", 0, 0 },
	{ "\"bytes\"", "\"bytes\"", 1, 5746618253357095269LL },
	{ "{\"type\":\"bytes\"}", "\"bytes\"", 0, 0 },
	{ "\"string\"", "\"string\"", 1, -8142146995180207161LL },
	{ "{\"type\":\"string\"}", "\"string\"", 0, 0 },
	{ "[  ]", "[]", 1, -1241056759729112623LL },
	{ "[ \"int\"  ]", "[\"int\"]", 1, -5232228896498058493LL },
	{ "[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 1,
	    5392556393470105090LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    -4824392279771201922LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
	    "\"namespace\":\"x.y\"}",
	    "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    5916914534497305771LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", "
	    "\"namespace\":\"x.y\"}",
	    "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    -4616218487480524110LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
	    "\"doc\":\"Useful info\"}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    -4824392279771201922LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
	    "\"aliases\":[\"foo\",\"bar\"]}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    -4824392279771201922LL },
	{ "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
	    "\"doc\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
	    -4824392279771201922LL },
	{ "{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], "
	    "\"type\":\"record\", \"name\":\"foo\"}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
	    "\"type\":\"boolean\"}]}", 1, 7843277075252814651LL },
	{ "{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], "
	    "\"name\":\"f1\", \"default\":\"true\"},\n"
	    "            {\"order\":\"descending\",\"name\":\"f2\","
	    "\"doc\":\"Hello\",\"type\":\"int\"}],\n"
	    "  \"type\":\"record\", \"name\":\"foo\"\n}",
	    "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
	    "\"type\":\"boolean\"},{\"name\":\"f2\",\"type\":\"int\"}]}", 1,
	    -4860222112080293046LL },
	{ "{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
	    "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", 1,
	    -6342190197741309591LL },
	{ "{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", "
	    "\"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
	    "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\","
	    "\"A2\"]}", 1, -4448647247586288245LL },
	{ "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
	    "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1,
	    1756455273707447556LL },
	{ "{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", "
	    "\"doc\":\"foo bar\", \"size\":32}",
	    "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", 1,
	    -3064184465700546786LL },
	{ "{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
	    "{\"type\":\"array\",\"items\":\"null\"}", 1,
	    -589620603366471059LL },
	{ "{ \"values\":\"string\", \"type\":\"map\"}",
	    "{\"type\":\"map\",\"values\":\"string\"}", 1,
	    -8732877298790414990LL },
	{ "  {\"name\":\"PigValue\",\"type\":\"record\",\n"
	    "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", "
	    "\"long\", \"PigValue\"]}]}",
	    "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":"
	    "\"value\",\"type\":[\"null\",\"int\",\"long\",\"PigValue\"]}]}", 1,
	    -1759257747318642341LL },
};

static void
test_crc64avro(void **state)
{
	(void)state;
	assert_true(fingerprint_crc64avro("", 0) == FINGERPRINT_EMPTY);
	assert_true(fingerprint_crc64avro("\"int\"", 5) ==
	    0x7275d51a3f395c8fULL);
	assert_true(fingerprint_crc64avro("\"string\"", 8) ==
	    0x8f014872634503c7ULL);
	assert_true(fingerprint_crc64avro("\"null\"", 6) ==
	    0x63dd24e7cc258f8aULL);
	/* one differing byte changes it */
	assert_true(fingerprint_crc64avro("\"inu\"", 5) !=
	    0x7275d51a3f395c8fULL);
}

static void
test_pcf_vectors(void **state)
{
	char err[256], *pcf;
	size_t n;
	uint64_t fp;
	(void)state;

	assert_int_equal(sizeof(vectors) / sizeof(vectors[0]), 34);
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		err[0] = '\0';
		int rc = fingerprint_pcf(v->input, strlen(v->input), &pcf, &n,
		    err, sizeof(err));
		if (rc != 0)
			fail_msg("vector %03zu: %s", i, err);
		if (strcmp(pcf, v->canonical) != 0 || n != strlen(pcf))
			fail_msg("vector %03zu: PCF %s, want %s", i, pcf,
			    v->canonical);
		free(pcf);
		assert_int_equal(fingerprint_schema(v->input, strlen(v->input),
		    &fp, err, sizeof(err)), 0);
		assert_true(fp == fingerprint_crc64avro(v->canonical,
		    strlen(v->canonical)));
		if (v->has_fp && fp != (uint64_t)v->fp)
			fail_msg("vector %03zu: fingerprint %016llx, want "
			    "%016llx", i, (unsigned long long)fp,
			    (unsigned long long)(uint64_t)v->fp);
	}
}

static const char event_pcf[] =
    "{\"name\":\"io.sbomd.v1.WorkloadEvent\",\"type\":\"record\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":{\"name\":\"io.sbomd.v1.EventType\","
    "\"type\":\"enum\",\"symbols\":[\"SET\",\"UNSET\"]}},"
    "{\"name\":\"kind\",\"type\":{\"name\":\"io.sbomd.v1.EntityKind\","
    "\"type\":\"enum\",\"symbols\":[\"CONTAINER_IMAGE\",\"HOST\"]}},"
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"source\",\"type\":\"string\"},"
    "{\"name\":\"repo_tags\",\"type\":{\"type\":\"array\",\"items\":"
    "\"string\"}},"
    "{\"name\":\"repo_digests\",\"type\":{\"type\":\"array\",\"items\":"
    "\"string\"}},"
    "{\"name\":\"observed_at\",\"type\":\"long\"}]}";

/* ScanOutcome's fields up to emitted_at: version 1 had only these. */
#define OUTCOME_V1_PCF_FIELDS \
    "{\"name\":\"io.sbomd.v1.ScanOutcome\",\"type\":\"record\",\"fields\":[" \
    "{\"name\":\"id\",\"type\":\"string\"}," \
    "{\"name\":\"kind\",\"type\":{\"name\":\"io.sbomd.v1.EntityKind\"," \
    "\"type\":\"enum\",\"symbols\":[\"CONTAINER_IMAGE\",\"HOST\"]}}," \
    "{\"name\":\"status\",\"type\":{\"name\":\"io.sbomd.v1.ScanStatus\"," \
    "\"type\":\"enum\",\"symbols\":[\"SUCCEEDED\",\"RETRY_SCHEDULED\"," \
    "\"FAILED\",\"CANCELLED\"]}}," \
    "{\"name\":\"attempt\",\"type\":\"int\"}," \
    "{\"name\":\"next_attempt_at\",\"type\":[\"null\",\"long\"]}," \
    "{\"name\":\"error\",\"type\":[\"null\",\"string\"]}," \
    "{\"name\":\"error_class\",\"type\":[\"null\",{\"name\":" \
    "\"io.sbomd.v1.ErrorClass\",\"type\":\"enum\",\"symbols\":[" \
    "\"RETRYABLE\",\"PERMANENT\"]}]}," \
    "{\"name\":\"scanner\",\"type\":\"string\"}," \
    "{\"name\":\"started_at\",\"type\":[\"null\",\"long\"]}," \
    "{\"name\":\"duration_ms\",\"type\":[\"null\",\"long\"]}," \
    "{\"name\":\"repo_tags\",\"type\":{\"type\":\"array\",\"items\":" \
    "\"string\"}}," \
    "{\"name\":\"repo_digests\",\"type\":{\"type\":\"array\",\"items\":" \
    "\"string\"}}," \
    "{\"name\":\"sbom\",\"type\":[\"null\",{\"name\":\"io.sbomd.v1.Sbom\"," \
    "\"type\":\"record\",\"fields\":[{\"name\":\"format\",\"type\":" \
    "\"string\"},{\"name\":\"spec_version\",\"type\":\"string\"}," \
    "{\"name\":\"component_count\",\"type\":\"int\"}," \
    "{\"name\":\"content\",\"type\":\"bytes\"}]}]}," \
    "{\"name\":\"emitted_at\",\"type\":\"long\"}"

static const char outcome_pcf[] = OUTCOME_V1_PCF_FIELDS
    ",{\"name\":\"generation\",\"type\":\"long\"}]}";
static const char outcome_v1_pcf[] = OUTCOME_V1_PCF_FIELDS "]}";

/*
 * The text of ScanOutcome as it was before `generation`: the current
 * schema without its last field (malloc'd). Proves WIRE_OUTCOME_V1_FP
 * and lets avro-c write old records.
 */
static char *
outcome_v1_schema(void)
{
	json_t *j = json_loads(wire_outcome_schema, 0, NULL);
	assert_non_null(j);
	json_t *fields = json_object_get(j, "fields");
	size_t n = json_array_size(fields);
	assert_true(n > 0);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(fields, n - 1), "name")), "generation");
	assert_int_equal(json_array_remove(fields, n - 1), 0);
	char *text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	json_decref(j);
	return text;
}

static void
test_pcf_our_schemas(void **state)
{
	char err[256], *pcf;
	size_t n;
	uint64_t fp;
	(void)state;

	assert_int_equal(fingerprint_pcf(wire_event_schema,
	    strlen(wire_event_schema), &pcf, &n, err, sizeof(err)), 0);
	assert_string_equal(pcf, event_pcf);
	free(pcf);
	assert_int_equal(fingerprint_schema(wire_event_schema,
	    strlen(wire_event_schema), &fp, err, sizeof(err)), 0);
	assert_true(fp == 0x5362d1e1b057ee1aULL);
	assert_true(fp == WIRE_EVENT_FP);

	assert_int_equal(fingerprint_pcf(wire_outcome_schema,
	    strlen(wire_outcome_schema), &pcf, &n, err, sizeof(err)), 0);
	assert_string_equal(pcf, outcome_pcf);
	free(pcf);
	assert_int_equal(fingerprint_schema(wire_outcome_schema,
	    strlen(wire_outcome_schema), &fp, err, sizeof(err)), 0);
	assert_true(fp == 0x8ca48d59ad71d2aaULL);
	assert_true(fp == WIRE_OUTCOME_FP);

	/* the version before generation: what older sbomd wrote */
	char *v1 = outcome_v1_schema();
	assert_int_equal(fingerprint_pcf(v1, strlen(v1), &pcf, &n, err,
	    sizeof(err)), 0);
	assert_string_equal(pcf, outcome_v1_pcf);
	free(pcf);
	assert_int_equal(fingerprint_schema(v1, strlen(v1), &fp, err,
	    sizeof(err)), 0);
	free(v1);
	assert_true(fp == 0x0fe8abc07ea8fa68ULL);
	assert_true(fp == WIRE_OUTCOME_V1_FP);
	assert_true(fingerprint_crc64avro(outcome_v1_pcf,
	    strlen(outcome_v1_pcf)) == WIRE_OUTCOME_V1_FP);

	/* namespace inheritance, references and redundant attributes */
	static const char nested[] =
	    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\","
	    "\"doc\":\"d\",\"fields\":["
	    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
	    "\"symbols\":[\"X\"],\"default\":\"X\"}},"
	    "{\"name\":\"e2\",\"type\":\"E\"},"
	    "{\"name\":\"e3\",\"type\":\"a.b.E\"},"
	    "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\","
	    "\"namespace\":\"c\",\"size\":4}},"
	    "{\"name\":\"s\",\"type\":{\"type\":\"record\",\"name\":\"d.S\","
	    "\"fields\":[{\"name\":\"g\",\"type\":{\"type\":\"enum\","
	    "\"name\":\"G\",\"symbols\":[\"Y\"]}}]}},"
	    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
	    "{\"type\":\"int\",\"logicalType\":\"date\"}}},"
	    "{\"name\":\"u\",\"type\":[\"null\",\"c.F\",\"d.G\","
	    "{\"type\":\"R\"}]}]}";
	assert_int_equal(fingerprint_pcf(nested, strlen(nested), &pcf, &n,
	    err, sizeof(err)), 0);
	assert_string_equal(pcf,
	    "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":["
	    "{\"name\":\"e\",\"type\":{\"name\":\"a.b.E\",\"type\":\"enum\","
	    "\"symbols\":[\"X\"]}},"
	    "{\"name\":\"e2\",\"type\":\"a.b.E\"},"
	    "{\"name\":\"e3\",\"type\":\"a.b.E\"},"
	    "{\"name\":\"f\",\"type\":{\"name\":\"c.F\",\"type\":\"fixed\","
	    "\"size\":4}},"
	    "{\"name\":\"s\",\"type\":{\"name\":\"d.S\",\"type\":\"record\","
	    "\"fields\":[{\"name\":\"g\",\"type\":{\"name\":\"d.G\","
	    "\"type\":\"enum\",\"symbols\":[\"Y\"]}}]}},"
	    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
	    "{\"name\":\"u\",\"type\":[\"null\",\"c.F\",\"d.G\",\"a.b.R\"]}]}");
	free(pcf);
	/* [STRINGS]: escapes decoded */
	static const char esc[] = "{\"type\":\"enum\",\"name\":"
	    "\"\\u0066oo\",\"symbols\":[\"\\u0041\"]}";
	assert_int_equal(fingerprint_pcf(esc, strlen(esc), &pcf, &n, err,
	    sizeof(err)), 0);
	assert_string_equal(pcf,
	    "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A\"]}");
	free(pcf);
}

static void
expect_pcf_err(const char *schema, const char *want)
{
	char err[256] = "", *pcf = (char *)1;
	int rc = fingerprint_pcf(schema, strlen(schema), &pcf, NULL, err,
	    sizeof(err));
	if (rc != -EINVAL || strstr(err, want) == NULL)
		fail_msg("pcf(%s): rc %d \"%s\", want -EINVAL \"%s\"", schema,
		    rc, err, want);
	assert_null(pcf);
}

static void
test_pcf_errors(void **state)
{
	(void)state;
	expect_pcf_err("{\"type\":", "schema is not JSON");
	expect_pcf_err("\"Foo\"", "undefined type \"Foo\"");
	expect_pcf_err("{\"type\":\"record\",\"name\":\"a.R\",\"fields\":["
	    "{\"name\":\"x\",\"type\":\"Q\"}]}", "undefined type \"a.Q\"");
	expect_pcf_err("[{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[]},"
	    "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[]}]",
	    "enum \"E\" is defined twice");
	expect_pcf_err("{\"type\":\"record\",\"name\":\"1x\",\"fields\":[]}",
	    "bad record name \"1x\"");
	expect_pcf_err("{\"type\":\"record\",\"name\":\"R\"}",
	    "record \"R\" without a \"fields\" array");
	expect_pcf_err("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
	    "{\"name\":\"x\"}]}", "field \"x\" has no \"type\"");
	expect_pcf_err("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[1]}",
	    "enum \"E\": bad symbol 0");
	expect_pcf_err("{\"type\":\"fixed\",\"name\":\"F\"}",
	    "fixed \"F\" without a valid \"size\"");
	expect_pcf_err("{\"type\":\"array\"}", "array without \"items\"");
	expect_pcf_err("{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}",
	    "redefines a primitive type");
	expect_pcf_err("42", "a schema must be a string");
	expect_pcf_err("{\"name\":\"x\"}", "without a string \"type\"");
}

/* The schema files of the source tree, if we can find them. */
static char *
read_schema_file(const char *name)
{
	char path[4200], exe[4096];
	const char *src = getenv("SBOMD_SOURCE_DIR");
	FILE *f = NULL;

	if (src != NULL && src[0] != '\0') {
		snprintf(path, sizeof(path), "%s/schemas/%s", src, name);
		f = fopen(path, "rb");
	}
	if (f == NULL) {
		/* <source>/<build>/tests/test_wire -> <source>/schemas */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash != NULL)
				*slash = '\0';
			snprintf(path, sizeof(path), "%s/../../schemas/%s", exe,
			    name);
			f = fopen(path, "rb");
		}
	}
	if (f == NULL)
		return NULL;
	char *buf = calloc(1, 1 << 16);
	assert_non_null(buf);
	size_t got = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[got] = '\0';
	return buf;
}

static void
test_schema_files(void **state)
{
	static const struct {
		const char *file, *embedded;
		uint64_t fp;
	} s[] = {
		{ "workload_event.avsc", wire_event_schema, WIRE_EVENT_FP },
		{ "scan_outcome.avsc", wire_outcome_schema, WIRE_OUTCOME_FP },
	};
	char err[256];
	(void)state;

	for (size_t i = 0; i < 2; i++) {
		char *text = read_schema_file(s[i].file);
		uint64_t fp;
		if (text == NULL) {
			print_message("SKIP: schemas/%s not found; set "
			    "SBOMD_SOURCE_DIR to the source tree\n", s[i].file);
			skip();
		}
		assert_int_equal(fingerprint_schema(text, strlen(text), &fp,
		    err, sizeof(err)), 0);
		if (fp != s[i].fp)
			fail_msg("schemas/%s has fingerprint %016llx, the "
			    "embedded schema %016llx: update consumer/wire",
			    s[i].file, (unsigned long long)fp,
			    (unsigned long long)s[i].fp);
		/* identical as JSON too (docs and defaults included) */
		json_t *a = json_loads(text, 0, NULL);
		json_t *b = json_loads(s[i].embedded, 0, NULL);
		assert_non_null(a);
		assert_non_null(b);
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
		free(text);
	}
}

/* ---- round trips ---- */

static void
test_event_roundtrip(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_frame fr, got;
	char err[256];
	(void)state;

	rng_seed(0x5eed0001);
	for (int i = 0; i < 4000; i++) {
		arena_reset();
		rnd_event(&ev_a);
		rnd_frame(&fr);
		if (wire_event_encode(&ev_a, &fr, &buf, err, sizeof(err)) != 0)
			fail_msg("case %d: encode: %s", i, err);
		memset(&ev_b, 0xa5, sizeof(ev_b));
		memset(&got, 0xa5, sizeof(got));
		if (wire_event_decode(buf.data, buf.len, &cfg123, &ev_b, &got,
		    err, sizeof(err)) != 0)
			fail_msg("case %d: decode: %s", i, err);
		event_eq(&ev_a, &ev_b);
		assert_int_equal(got.framing, fr.framing);
		assert_int_equal(got.schema_id, fr.schema_id);
		/* strings point into the message */
		assert_true((const uint8_t *)ev_b.id.ptr >= buf.data &&
		    (const uint8_t *)ev_b.id.ptr + ev_b.id.len <=
		    buf.data + buf.len);
		/* the unframed body decodes the same */
		size_t h = fr.framing == WIRE_FRAMING_CONFLUENT ?
		    WIRE_CONFLUENT_HEADER : SO;
		assert_int_equal(wire_event_decode_body(buf.data + h,
		    buf.len - h, &ev_b, err, sizeof(err)), 0);
		event_eq(&ev_a, &ev_b);
	}
	wire_buf_free(&buf);
}

static void
test_event_known_bytes(void **state)
{
	struct wire_buf buf = { 0 };
	char err[256];
	static const uint8_t want[] = { 0xc3, 0x01, 0x1a, 0xee, 0x57, 0xb0,
		0xe1, 0xd1, 0x62, 0x53,
		0x04, 'e', '1',		/* event_id */
		0x02,			/* UNSET */
		0x00,			/* CONTAINER_IMAGE */
		0x06, 'i', 'm', 'g',	/* id */
		0x02, 'n',		/* source */
		0x02, 0x02, 't', 0x00,	/* repo_tags: ["t"] */
		0x00,			/* repo_digests: [] */
		0x81, 0x01 };		/* observed_at: -65 */
	(void)state;

	memset(&ev_a, 0, sizeof(ev_a));
	ev_a.event_id = wire_str_c("e1");
	ev_a.type = EVENT_UNSET;
	ev_a.kind = ENTITY_IMAGE;
	ev_a.id = wire_str_c("img");
	ev_a.source = wire_str_c("n");
	ev_a.ntags = 1;
	ev_a.repo_tags[0] = wire_str_c("t");
	ev_a.observed_at = -65;
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(buf.len, sizeof(want));
	assert_memory_equal(buf.data, want, sizeof(want));

	struct wire_frame fr = { WIRE_FRAMING_CONFLUENT, 0x01020304 };
	assert_int_equal(wire_event_encode(&ev_a, &fr, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(buf.len, sizeof(want) - SO + 5);
	assert_memory_equal(buf.data, "\x00\x01\x02\x03\x04", 5);
	assert_memory_equal(buf.data + 5, want + SO, sizeof(want) - SO);
	wire_buf_free(&buf);
}

static void
test_outcome_roundtrip(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_frame fr, got;
	char err[256];
	(void)state;

	rng_seed(0x5eed0002);
	for (int i = 0; i < 2000; i++) {
		arena_reset();
		rnd_outcome(&oc_a, i % 50 == 0 ? 200000 : 3000);
		rnd_frame(&fr);
		if (wire_outcome_encode(&oc_a, &fr, &buf, err,
		    sizeof(err)) != 0)
			fail_msg("case %d: encode: %s", i, err);
		memset(&oc_b, 0x5a, sizeof(oc_b));
		if (wire_outcome_decode(buf.data, buf.len, &cfg123, &oc_b, &got,
		    err, sizeof(err)) != 0)
			fail_msg("case %d: decode: %s", i, err);
		outcome_eq(&oc_a, &oc_b);
		assert_int_equal(got.framing, fr.framing);
	}
	wire_buf_free(&buf);
}

static void
test_outcome_large_content(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_config cfg = { 0 };
	size_t n = 8u << 20;
	uint8_t *content = malloc(n);
	char err[256];
	(void)state;

	assert_non_null(content);
	for (size_t i = 0; i < n; i++)
		content[i] = (uint8_t)(i * 7 + (i >> 13));
	memset(&oc_a, 0, sizeof(oc_a));
	oc_a.id = wire_str_c("sha256:abc");
	oc_a.scanner = wire_str_c("oci");
	oc_a.has_sbom = 1;
	oc_a.sbom.format = wire_str_c("CycloneDX");
	oc_a.sbom.spec_version = wire_str_c("1.5");
	oc_a.sbom.component_count = 123;
	oc_a.sbom.content = content;
	oc_a.sbom.content_len = n;
	assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), 0);
	/* exactly sized: one allocation */
	assert_int_equal(buf.cap, buf.len);
	/* the default 1 MiB limit refuses it, a caller limit admits it */
	char want[128];
	snprintf(want, sizeof(want), "payload of %zu bytes exceeds the limit "
	    "of 1048576", buf.len - SO);
	expect_outcome_err(buf.data, buf.len, NULL, -EMSGSIZE, want);
	cfg.max_payload = 16u << 20;
	assert_int_equal(wire_outcome_decode(buf.data, buf.len, &cfg, &oc_b,
	    NULL, err, sizeof(err)), 0);
	outcome_eq(&oc_a, &oc_b);
	/* content points into the message: only emitted_at and generation
	 * (one byte each) follow it */
	assert_true(oc_b.sbom.content >= buf.data &&
	    oc_b.sbom.content + n == buf.data + buf.len - 2);

	/* a smaller message reuses the buffer without allocating */
	uint8_t *before = buf.data;
	oc_a.has_sbom = 0;
	assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), 0);
	assert_ptr_equal(buf.data, before);
	assert_true(buf.len < 64);
	wire_buf_free(&buf);
	assert_null(buf.data);
	free(content);
}

/* A small outcome with a two-byte generation, and its exact body. */
static const uint8_t outcome_body[] = {
	0x02, 'x',		/* id */
	0x02,			/* HOST */
	0x06,			/* CANCELLED */
	0x04,			/* attempt 2 */
	0x00, 0x00, 0x00,	/* next_attempt_at, error, error_class: null */
	0x06, 'o', 'c', 'i',	/* scanner */
	0x00, 0x00,		/* started_at, duration_ms: null */
	0x00, 0x00,		/* repo_tags, repo_digests: [] */
	0x00,			/* sbom: null */
	0x02,			/* emitted_at 1 */
	0xd8, 0x04 };		/* generation 300 */
#define OUTCOME_BODY_V1 (sizeof(outcome_body) - 2) /* without generation */

static void
small_outcome(struct wire_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->id = wire_str_c("x");
	o->kind = ENTITY_HOST;
	o->status = OUTCOME_CANCELLED;
	o->attempt = 2;
	o->scanner = wire_str_c("oci");
	o->emitted_at = 1;
	o->generation = 300;
}

static void
test_outcome_known_bytes(void **state)
{
	struct wire_buf buf = { 0 };
	char err[256];
	uint8_t want[SO + sizeof(outcome_body)];
	(void)state;

	/* the current fingerprint, little-endian */
	static const uint8_t hdr[] = { 0xc3, 0x01, 0xaa, 0xd2, 0x71, 0xad,
		0x59, 0x8d, 0xa4, 0x8c };
	memcpy(want, hdr, SO);
	memcpy(want + SO, outcome_body, sizeof(outcome_body));
	small_outcome(&oc_a);
	assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(buf.len, sizeof(want));
	assert_memory_equal(buf.data, want, sizeof(want));
	memset(&oc_b, 0x5a, sizeof(oc_b));
	assert_int_equal(wire_outcome_decode(buf.data, buf.len, NULL, &oc_b,
	    NULL, err, sizeof(err)), 0);
	outcome_eq(&oc_a, &oc_b);

	struct wire_frame fr = { WIRE_FRAMING_CONFLUENT, 7 };
	assert_int_equal(wire_outcome_encode(&oc_a, &fr, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(buf.len, 5 + sizeof(outcome_body));
	assert_memory_equal(buf.data, "\x00\x00\x00\x00\x07", 5);
	assert_memory_equal(buf.data + 5, outcome_body, sizeof(outcome_body));

	/* negative and extreme generations are plain longs */
	static const struct {
		int64_t g;
		const char *bytes;
		size_t n;
	} g[] = { { 0, "\x00", 1 }, { -1, "\x01", 1 }, { 1, "\x02", 1 },
		{ INT64_MAX, "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 },
		{ INT64_MIN, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 } };
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		oc_a.generation = g[i].g;
		assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
		    sizeof(err)), 0);
		assert_int_equal(buf.len, SO + OUTCOME_BODY_V1 + g[i].n);
		assert_memory_equal(buf.data + SO, outcome_body,
		    OUTCOME_BODY_V1);
		assert_memory_equal(buf.data + SO + OUTCOME_BODY_V1,
		    g[i].bytes, g[i].n);
		assert_int_equal(wire_outcome_decode(buf.data, buf.len, NULL,
		    &oc_b, NULL, err, sizeof(err)), 0);
		assert_true(oc_b.generation == g[i].g);
	}
	wire_buf_free(&buf);
}

/* What the decoder stores for a field the record does not have. */
static void
expect_v1(const struct wire_outcome *o)
{
	struct wire_outcome want;

	small_outcome(&want);
	want.generation = 0;
	outcome_eq(&want, o);
}

/*
 * Records of ScanOutcome before `generation` (an older sbomd, its outbox
 * replayed after an upgrade) decode with generation 0; the single-object
 * fingerprint says which version to expect, exactly.
 */
static void
test_outcome_v1(void **state)
{
	uint8_t m[64];
	char err[256];
	struct wire_frame got;
	size_t n;
	(void)state;

	/* single object, the old fingerprint, the old fields */
	n = framed(m, WIRE_OUTCOME_V1_FP, outcome_body, OUTCOME_BODY_V1);
	memset(&oc_b, 0x5a, sizeof(oc_b));
	if (wire_outcome_decode(m, n, NULL, &oc_b, &got, err,
	    sizeof(err)) != 0)
		fail_msg("v1 single-object: %s", err);
	expect_v1(&oc_b);
	assert_int_equal(got.framing, WIRE_FRAMING_SINGLE_OBJECT);
	/* the old fingerprint with a generation: not what v1 wrote */
	n = framed(m, WIRE_OUTCOME_V1_FP, outcome_body, sizeof(outcome_body));
	expect_outcome_err(m, n, NULL, -EBADMSG,
	    "2 trailing bytes after the ScanOutcome record at byte 28");
	/* the new fingerprint without one: truncated */
	n = framed(m, WIRE_OUTCOME_FP, outcome_body, OUTCOME_BODY_V1);
	expect_outcome_err(m, n, NULL, -EBADMSG,
	    "truncated: long 'generation' at byte 28");
	/* an unknown fingerprint names the current one */
	n = framed(m, WIRE_OUTCOME_V1_FP ^ 1, outcome_body, OUTCOME_BODY_V1);
	expect_outcome_err(m, n, NULL, -EPROTO,
	    "single-object fingerprint 0x0fe8abc07ea8fa69 is not "
	    "ScanOutcome's 0x8ca48d59ad71d2aa");

	/* Confluent: either version */
	memcpy(m, "\x00\x00\x00\x00\x02", 5);
	memcpy(m + 5, outcome_body, sizeof(outcome_body));
	memset(&oc_b, 0x5a, sizeof(oc_b));
	assert_int_equal(wire_outcome_decode(m, 5 + OUTCOME_BODY_V1, &cfg123,
	    &oc_b, &got, err, sizeof(err)), 0);
	expect_v1(&oc_b);
	assert_int_equal(got.framing, WIRE_FRAMING_CONFLUENT);
	assert_int_equal(wire_outcome_decode(m, 5 + sizeof(outcome_body),
	    &cfg123, &oc_b, NULL, err, sizeof(err)), 0);
	assert_true(oc_b.generation == 300);
	/* one byte into generation is still truncated */
	expect_outcome_err(m, 5 + OUTCOME_BODY_V1 + 1, &cfg123, -EBADMSG,
	    "truncated: long 'generation' at byte 23");

	/* bare bodies: either version */
	memset(&oc_b, 0x5a, sizeof(oc_b));
	assert_int_equal(wire_outcome_decode_body(outcome_body,
	    OUTCOME_BODY_V1, &oc_b, err, sizeof(err)), 0);
	expect_v1(&oc_b);
	assert_int_equal(wire_outcome_decode_body(outcome_body,
	    sizeof(outcome_body), &oc_b, err, sizeof(err)), 0);
	assert_true(oc_b.generation == 300);
	/* but not a record that stops earlier */
	assert_int_equal(wire_outcome_decode_body(outcome_body,
	    OUTCOME_BODY_V1 - 1, &oc_b, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "truncated: long 'emitted_at' at byte 17");

	/* a v1 record's sbom content is still where it was */
	static const uint8_t with_sbom[] = { 0x02, 'x', 0x00, 0x00, 0x02,
		0x00, 0x00, 0x00, 0x02, 'o', 0x00, 0x00, 0x00, 0x00,
		0x02, 0x02, 'f', 0x02, 'v', 0x02, 0x06, 'a', 'b', 'c',
		0x04 };
	n = framed(m, WIRE_OUTCOME_V1_FP, with_sbom, sizeof(with_sbom));
	assert_int_equal(wire_outcome_decode(m, n, NULL, &oc_b, NULL, err,
	    sizeof(err)), 0);
	assert_int_equal(oc_b.has_sbom, 1);
	assert_int_equal(oc_b.sbom.content_len, 3);
	assert_memory_equal(oc_b.sbom.content, "abc", 3);
	assert_true(oc_b.emitted_at == 2);
	assert_true(oc_b.generation == 0);
}

/* ---- errors ---- */

static void
test_framing_errors(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_config cfg = { 0 };
	char err[256];
	uint8_t msg[64];
	(void)state;

	memset(&ev_a, 0, sizeof(ev_a));
	ev_a.id = wire_str_c("x");
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);

	expect_event_err("", 0, NULL, -EPROTO, "empty message");
	expect_event_err("{\"id\":1}", 8, NULL, -EPROTO,
	    "unknown framing (first byte 0x7b)");
	expect_event_err("\xc3\x02zzzzzzzzzz", 12, NULL, -EPROTO,
	    "unknown framing (first bytes 0xc3 0x02, single-object needs "
	    "0xc3 0x01)");
	expect_event_err("\xc3", 1, NULL, -EPROTO, "truncated: single-object "
	    "header needs 10 bytes, message has 1");
	expect_event_err("\xc3\x01\x01\x02", 4, NULL, -EPROTO, "truncated: "
	    "single-object header needs 10 bytes, message has 4");
	expect_event_err("\x00\x00\x01", 3, NULL, -EPROTO, "truncated: "
	    "confluent header needs 5 bytes, message has 3");
	/* an event where an outcome is expected, and the reverse */
	expect_outcome_err(buf.data, buf.len, NULL, -EPROTO,
	    "single-object fingerprint 0x5362d1e1b057ee1a is not "
	    "ScanOutcome's 0x8ca48d59ad71d2aa");
	memcpy(msg, buf.data, buf.len);
	msg[2] ^= 0x01;
	expect_event_err(msg, buf.len, NULL, -EPROTO,
	    "single-object fingerprint 0x5362d1e1b057ee1b is not "
	    "WorkloadEvent's 0x5362d1e1b057ee1a");

	/* confluent ids */
	struct wire_frame fr = { WIRE_FRAMING_CONFLUENT, 42 };
	assert_int_equal(wire_event_encode(&ev_a, &fr, &buf, err,
	    sizeof(err)), 0);
	expect_event_err(buf.data, buf.len, &cfg123, -EPROTO,
	    "unknown confluent schema id 42 (accepted: 1, 2, 3)");
	expect_event_err(buf.data, buf.len, NULL, -EPROTO,
	    "unknown confluent schema id 42 (accepted: none configured)");
	cfg.any_schema_id = 1;
	struct wire_frame got;
	assert_int_equal(wire_event_decode(buf.data, buf.len, &cfg, &ev_b,
	    &got, err, sizeof(err)), 0);
	assert_int_equal(got.schema_id, 42);
	uint32_t one = 42;
	struct wire_config c42 = { 0, &one, 1, 0, NULL };
	assert_int_equal(wire_event_decode(buf.data, buf.len, &c42, &ev_b,
	    NULL, err, sizeof(err)), 0);
	fr.schema_id = 0xfffffffe;
	assert_int_equal(wire_event_encode(&ev_a, &fr, &buf, err,
	    sizeof(err)), 0);
	expect_event_err(buf.data, buf.len, &cfg123, -EPROTO,
	    "unknown confluent schema id 4294967294 (accepted: 1, 2, 3)");

	/* payload size: checked before decoding, exact boundary */
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);
	cfg.max_payload = buf.len - SO;
	assert_int_equal(wire_event_decode(buf.data, buf.len, &cfg, &ev_b,
	    NULL, err, sizeof(err)), 0);
	cfg.max_payload = buf.len - SO - 1;
	snprintf((char *)msg, sizeof(msg), "payload of %zu bytes exceeds the "
	    "limit of %zu", buf.len - SO, buf.len - SO - 1);
	expect_event_err(buf.data, buf.len, &cfg, -EMSGSIZE, (char *)msg);
	/* default limit: 1 MiB + 1 byte of garbage is refused unread */
	size_t big = SO + WIRE_DEFAULT_MAX_PAYLOAD + 1;
	uint8_t *b = calloc(1, big);
	assert_non_null(b);
	memcpy(b, buf.data, SO);
	expect_event_err(b, big, NULL, -EMSGSIZE, "payload of 1048577 bytes "
	    "exceeds the limit of 1048576");
	free(b);
	/* errlen 0 and NULL err are fine */
	assert_int_equal(wire_event_decode("x", 1, NULL, &ev_b, NULL, NULL, 0),
	    -EPROTO);
	wire_buf_free(&buf);
}

static void
test_body_errors(void **state)
{
	uint8_t m[70000];
	size_t n;
	(void)state;

	/* enum out of range, both directions */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x00\x04", 2);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "enum 'type' index 2 out of range (2 symbols) at byte 11");
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x00\x00\x01", 3);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "enum 'kind' index -1 out of range (2 symbols) at byte 12");
	/* an int enum index needing more than 32 bits */
	n = framed(m, WIRE_EVENT_FP,
	    (const uint8_t *)"\x00\x80\x80\x80\x80\x10", 6);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "int 'type' is an overlong varint at byte 11");
	/* negative string length */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x01", 1);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "string 'event_id' has negative length -1 at byte 10");
	/* a length of 2^62: refused by the limit, nothing allocated */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)
	    "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10);
	expect_event_err(m, n, NULL, -EBADMSG, "string 'event_id' of "
	    "4611686018427387904 bytes exceeds the limit of 65536 at byte 10");
	/* varint longer than 10 bytes */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)
	    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "string 'event_id' is an overlong varint at byte 10");
	/* string over 64 KiB (with the bytes present) */
	memcpy(m + SO, "\x82\x80\x08", 3); /* 65537 */
	memset(m + SO + 3, 'a', 65537);
	n = framed(m, WIRE_EVENT_FP, m + SO, 3 + 65537);
	expect_event_err(m, n, NULL, -EBADMSG, "string 'event_id' of 65537 "
	    "bytes exceeds the limit of 65536 at byte 10");
	/* truncated string, the message of the brief */
	static const uint8_t t[] = { 0x04, 'e', '1', 0x00, 0x00, 0x06, 'i',
		'm', 'g', 0x50, 'a', 'b', 'c' };
	n = framed(m, WIRE_EVENT_FP, t, sizeof(t));
	expect_event_err(m, n, NULL, -EBADMSG,
	    "truncated: string 'source' needs 40 bytes, 3 left at byte 20");
	/* truncated varint */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x00\x00\x00\x00\x00"
	    "\x00\x00\xff", 8);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "truncated: long 'observed_at' at byte 17");
	/* bad UTF-8, NUL */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x04\xc3\x28", 3);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "string 'event_id' is not valid UTF-8 without NUL at byte 10");
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x00\x00\x00\x04" "a\0",
	    6);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "string 'id' is not valid UTF-8 without NUL at byte 13");
	/* bad UTF-8 in an array item names the item */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)
	    "\x00\x00\x00\x00\x00\x04\x02" "a\x02\xff", 10);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "string 'repo_tags[1]' is not valid UTF-8 without NUL at byte 18");
	/* trailing bytes */
	n = framed(m, WIRE_EVENT_FP, (const uint8_t *)"\x00\x00\x00\x00\x00"
	    "\x00\x00\x02zz", 10);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "2 trailing bytes after the WorkloadEvent record at byte 18");

	/* arrays: 257 items in one block, and in two blocks */
	uint8_t *p = m + SO;
	memcpy(p, "\x00\x00\x00\x00\x00", 5);
	p += 5;
	*p++ = 0x82; /* 257 */
	*p++ = 0x04;
	for (int i = 0; i < 257; i++)
		*p++ = 0;
	n = (size_t)(p - m);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "array 'repo_tags' has more than 256 items at byte 15");
	p = m + SO + 5;
	*p++ = 0x80; /* 256 */
	*p++ = 0x04;
	for (int i = 0; i < 256; i++)
		*p++ = 0;
	*p++ = 0x02; /* one more */
	*p++ = 0;
	n = (size_t)(p - m);
	expect_event_err(m, n, NULL, -EBADMSG,
	    "array 'repo_tags' has more than 256 items at byte 273");
	/* INT64_MIN block count */
	p = m + SO + 5;
	memcpy(p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
	n = SO + 15;
	expect_event_err(m, n, NULL, -EBADMSG,
	    "array 'repo_tags' has a bad block count at byte 15");
	/* negative block count with a byte size that does not fit */
	p = m + SO + 5;
	memcpy(p, "\x03\x20\x00", 3); /* count -2, 16 bytes */
	n = SO + 8;
	expect_event_err(m, n, NULL, -EBADMSG,
	    "array 'repo_tags' block of 16 bytes does not fit at byte 15");

	/* valid Avro that our encoder never writes: negative block counts,
	 * several blocks, non-minimal varints */
	static const uint8_t odd[] = { 0x00, 0x02, 0x82, 0x00,
		0x02, 'i', 0x00,
		0x03, 0x08, 0x02, 'a', 0x02, 'b', /* block: -2 items, 4 bytes */
		0x02, 0x02, 'c', 0x00,		  /* block: 1 item, end */
		0x00,
		0x80, 0x80, 0x00 };		  /* observed_at 0, 3 bytes */
	char err[256];
	n = framed(m, WIRE_EVENT_FP, odd, sizeof(odd));
	assert_int_equal(wire_event_decode(m, n, NULL, &ev_b, NULL, err,
	    sizeof(err)), 0);
	assert_int_equal(ev_b.type, EVENT_UNSET);
	assert_int_equal(ev_b.kind, ENTITY_HOST);
	assert_int_equal(ev_b.ntags, 3);
	wstr_eq(ev_b.repo_tags[2], wire_str_c("c"), "tag 2");
	assert_int_equal(ev_b.ndigests, 0);
	assert_true(ev_b.observed_at == 0);

	/* outcome: union branch out of range, bad error_class */
	static const uint8_t o1[] = { 0x02, 'x', 0x00, 0x00, 0x02, 0x00,
		0x04 };
	n = framed(m, WIRE_OUTCOME_FP, o1, sizeof(o1));
	expect_outcome_err(m, n, NULL, -EBADMSG,
	    "union 'error' branch 2 out of range (2 branches) at byte 16");
	static const uint8_t o2[] = { 0x02, 'x', 0x00, 0x00, 0x02, 0x00,
		0x00, 0x02, 0x04 };
	n = framed(m, WIRE_OUTCOME_FP, o2, sizeof(o2));
	expect_outcome_err(m, n, NULL, -EBADMSG,
	    "enum 'error_class' index 2 out of range (2 symbols) at byte 18");
	static const uint8_t o3[] = { 0x02, 'x', 0x00, 0x08 };
	n = framed(m, WIRE_OUTCOME_FP, o3, sizeof(o3));
	expect_outcome_err(m, n, NULL, -EBADMSG,
	    "enum 'status' index 4 out of range (4 symbols) at byte 13");
	/* sbom content longer than what is left */
	static const uint8_t o4[] = { 0x02, 'x', 0x00, 0x00, 0x02, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
		0x00, 0x10, 'a', 'b' };
	n = framed(m, WIRE_OUTCOME_FP, o4, sizeof(o4));
	expect_outcome_err(m, n, NULL, -EBADMSG, "truncated: bytes "
	    "'sbom.content' needs 8 bytes, 2 left at byte 28");
}

/* The length of a long in Avro binary. */
static size_t
long_len(int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 1;

	for (; z >= 0x80; z >>= 7)
		n++;
	return n;
}

/*
 * Every proper prefix of a valid message is an error, never a crash. One
 * exception, by design: a Confluent outcome cut exactly before generation
 * is a whole record of the version before it (the schema id does not say
 * which version wrote it), and reads with generation 0.
 */
static void
test_truncation(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_frame fr;
	char err[256];
	int v1_prefixes = 0;
	(void)state;

	rng_seed(0x5eed0003);
	for (int i = 0; i < 200; i++) {
		size_t v1_len = SIZE_MAX;

		arena_reset();
		rnd_frame(&fr);
		if (i % 2 == 0) {
			rnd_event(&ev_a);
			if (ev_a.ntags > 8)
				ev_a.ntags = 8;
			assert_int_equal(wire_event_encode(&ev_a, &fr, &buf,
			    err, sizeof(err)), 0);
		} else {
			rnd_outcome(&oc_a, 300);
			if (oc_a.ntags > 8)
				oc_a.ntags = 8;
			assert_int_equal(wire_outcome_encode(&oc_a, &fr, &buf,
			    err, sizeof(err)), 0);
			if (fr.framing == WIRE_FRAMING_CONFLUENT)
				v1_len = buf.len - long_len(oc_a.generation);
		}
		for (size_t len = 0; len < buf.len; len++) {
			/* an exact-size copy so ASan sees over-reads */
			uint8_t *cp = malloc(len ? len : 1);
			assert_non_null(cp);
			memcpy(cp, buf.data, len);
			err[0] = '\0';
			int rc = i % 2 == 0 ?
			    wire_event_decode(cp, len, &cfg123, &ev_b, NULL,
			    err, sizeof(err)) :
			    wire_outcome_decode(cp, len, &cfg123, &oc_b, NULL,
			    err, sizeof(err));
			if (len == v1_len) {
				if (rc != 0)
					fail_msg("case %d: v1 prefix %zu of %zu: "
					    "rc %d \"%s\"", i, len, buf.len, rc,
					    err);
				int64_t g = oc_a.generation;
				oc_a.generation = 0;
				outcome_eq(&oc_a, &oc_b);
				oc_a.generation = g;
				v1_prefixes++;
				free(cp);
				continue;
			}
			if (rc >= 0 || err[0] == '\0')
				fail_msg("case %d: prefix %zu of %zu: rc %d "
				    "\"%s\"", i, len, buf.len, rc, err);
			free(cp);
		}
	}
	assert_true(v1_prefixes > 20);
	wire_buf_free(&buf);
}

static void
check_result(int rc, const char *err, const uint8_t *msg, size_t len,
    const struct wire_str *strs, size_t nstrs)
{
	if (rc < 0) {
		assert_true(rc == -EBADMSG || rc == -EPROTO ||
		    rc == -EMSGSIZE);
		assert_true(err[0] != '\0');
		return;
	}
	assert_int_equal(rc, 0);
	for (size_t i = 0; i < nstrs; i++) {
		assert_true(strs[i].len == 0 ||
		    ((const uint8_t *)strs[i].ptr >= msg &&
		    (const uint8_t *)strs[i].ptr + strs[i].len <= msg + len));
		assert_true(wire_utf8_valid(strs[i].ptr, strs[i].len));
	}
}

/* Random bytes and mutated valid messages. */
static void
test_hostile_bytes(void **state)
{
	struct wire_buf buf = { 0 };
	struct wire_frame fr;
	char err[256];
	int ok = 0;
	(void)state;

	rng_seed(0x5eed0004);
	for (int i = 0; i < 30000; i++) {
		size_t len;
		uint8_t *m;
		int outcome = (int)rng_below(2);

		arena_reset();
		if (i % 3 == 0) {
			/* random bytes after a valid header */
			size_t extra = rng_below(120);
			m = malloc(SO + extra);
			assert_non_null(m);
			len = framed(m, outcome ? WIRE_OUTCOME_FP :
			    WIRE_EVENT_FP, m, 0);
			for (size_t k = 0; k < extra; k++)
				m[len + k] = (uint8_t)(rng_below(4) ?
				    rng_below(8) : rng_next());
			len += extra;
		} else {
			rnd_frame(&fr);
			if (outcome) {
				rnd_outcome(&oc_a, 100);
				oc_a.ntags %= 5;
				oc_a.ndigests %= 5;
				assert_int_equal(wire_outcome_encode(&oc_a, &fr,
				    &buf, err, sizeof(err)), 0);
			} else {
				rnd_event(&ev_a);
				ev_a.ntags %= 5;
				ev_a.ndigests %= 5;
				assert_int_equal(wire_event_encode(&ev_a, &fr,
				    &buf, err, sizeof(err)), 0);
			}
			len = buf.len;
			m = malloc(len);
			assert_non_null(m);
			memcpy(m, buf.data, len);
			size_t flips = 1 + rng_below(4);
			for (size_t k = 0; k < flips; k++) {
				size_t at = rng_below(len - 5) + 5;
				if (rng_below(2))
					m[at] ^= (uint8_t)(1u << rng_below(8));
				else
					m[at] = (uint8_t)rng_next();
			}
		}
		err[0] = '\0';
		if (outcome) {
			int rc = wire_outcome_decode(m, len, &cfg123, &oc_b,
			    NULL, err, sizeof(err));
			struct wire_str s[4] = { oc_b.id, oc_b.scanner,
				oc_b.error, oc_b.sbom.format };
			check_result(rc, err, m, len, s, rc == 0 ? 4 : 0);
			ok += rc == 0;
		} else {
			int rc = wire_event_decode(m, len, &cfg123, &ev_b,
			    NULL, err, sizeof(err));
			struct wire_str s[3] = { ev_b.event_id, ev_b.id,
				ev_b.source };
			check_result(rc, err, m, len, s, rc == 0 ? 3 : 0);
			if (rc == 0)
				check_result(0, err, m, len, ev_b.repo_tags,
				    ev_b.ntags);
			ok += rc == 0;
		}
		free(m);
	}
	/* mutations of lengths and strings often still decode: both kinds
	 * of outcome were exercised */
	assert_true(ok > 100);
	assert_true(ok < 29000);
	wire_buf_free(&buf);
}

static void
expect_encode_err(int rc, const char *err, const char *want)
{
	if (rc != -EINVAL || strcmp(err, want) != 0)
		fail_msg("encode: rc %d \"%s\", want -EINVAL \"%s\"", rc, err,
		    want);
}

static void
test_encode_invalid(void **state)
{
	struct wire_buf buf = { 0 };
	char err[256], *big;
	(void)state;

	memset(&ev_a, 0, sizeof(ev_a));
	ev_a.type = (enum event_type)2;
	expect_encode_err(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'type': enum value 2 out of range "
	    "(2 symbols)");
	ev_a.type = EVENT_SET;
	ev_a.ntags = WIRE_MAX_REFS + 1;
	expect_encode_err(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'repo_tags': 257 items exceed the limit "
	    "of 256");
	ev_a.ntags = 2;
	ev_a.repo_tags[0] = wire_str_c("ok");
	ev_a.repo_tags[1] = (struct wire_str){ "a\xffz", 3 };
	expect_encode_err(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'repo_tags[1]': not valid UTF-8 "
	    "without NUL");
	ev_a.ntags = 0;
	big = malloc(WIRE_MAX_STRING + 1);
	assert_non_null(big);
	memset(big, 'a', WIRE_MAX_STRING + 1);
	ev_a.source = (struct wire_str){ big, WIRE_MAX_STRING + 1 };
	expect_encode_err(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'source': string of 65537 bytes exceeds "
	    "the limit of 65536");
	/* exactly at the limit is fine and decodes */
	ev_a.source.len = WIRE_MAX_STRING;
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(wire_event_decode(buf.data, buf.len, NULL, &ev_b,
	    NULL, err, sizeof(err)), 0);
	assert_int_equal(ev_b.source.len, WIRE_MAX_STRING);
	free(big);
	struct wire_frame bad = { (enum wire_framing)7, 0 };
	ev_a.source = wire_str_c("");
	expect_encode_err(wire_event_encode(&ev_a, &bad, &buf, err,
	    sizeof(err)), err, "unknown output framing 7");

	memset(&oc_a, 0, sizeof(oc_a));
	oc_a.status = (enum outcome_status)4;
	expect_encode_err(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'status': enum value 4 out of range "
	    "(4 symbols)");
	oc_a.status = OUTCOME_FAILED;
	oc_a.has_error_class = 1;
	oc_a.error_class = (enum error_class)-1;
	expect_encode_err(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'error_class': enum value -1 out of "
	    "range (2 symbols)");
	/* an absent optional is not checked */
	oc_a.has_error_class = 0;
	oc_a.error = (struct wire_str){ "\0", 1 };
	assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), 0);
	oc_a.has_error = 1;
	expect_encode_err(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'error': not valid UTF-8 without NUL");
	oc_a.has_error = 0;
	oc_a.has_sbom = 1;
	oc_a.sbom.content_len = 3;
	expect_encode_err(wire_outcome_encode(&oc_a, NULL, &buf, err,
	    sizeof(err)), err, "field 'sbom.content': NULL bytes of length 3");
	wire_buf_free(&buf);
}

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} c[] = {
		{ "", 0, 1 },
		{ "plain ascii", 11, 1 },
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, 1 },
		{ "\xf4\x8f\xbf\xbf", 4, 1 },	/* U+10FFFF */
		{ "a\0b", 3, 0 },		/* NUL */
		{ "\xc0\xaf", 2, 0 },		/* overlong '/' */
		{ "\xe0\x80\xaf", 3, 0 },	/* overlong */
		{ "\xed\xa0\x80", 3, 0 },	/* surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },	/* > U+10FFFF */
		{ "\xc3", 1, 0 },		/* cut */
		{ "\xe2\x82", 2, 0 },		/* cut */
		{ "\x80", 1, 0 },		/* lone continuation */
		{ "\xff", 1, 0 },
	};
	char s[32];
	(void)state;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (wire_utf8_valid(c[i].s, c[i].n) != c[i].ok)
			fail_msg("utf8 case %zu: want %d", i, c[i].ok);
	memcpy(s, "a\xc3\xa9\0\xff\xe2\x82z\xf0\x9f\x98\x80", 12);
	wire_utf8_sanitize(s, 12);
	assert_memory_equal(s, "a\xc3\xa9??" "?" "?z\xf0\x9f\x98\x80", 12);
	assert_true(wire_utf8_valid(s, 12));
}

static void
test_names(void **state)
{
	enum wire_framing f;
	(void)state;

	assert_int_equal(wire_framing_parse("confluent", &f), 0);
	assert_int_equal(f, WIRE_FRAMING_CONFLUENT);
	assert_int_equal(wire_framing_parse("single-object", &f), 0);
	assert_int_equal(f, WIRE_FRAMING_SINGLE_OBJECT);
	assert_int_equal(wire_framing_parse("avro", &f), -EINVAL);
}

/* ---- avro-c interop ---- */

struct avro_ctx {
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t val;
};

static void
avro_ctx_init(struct avro_ctx *c, const char *json)
{
	if (avro_schema_from_json_length(json, strlen(json), &c->schema) != 0)
		fail_msg("avro-c schema: %s", avro_strerror());
	c->iface = avro_generic_class_from_schema(c->schema);
	assert_non_null(c->iface);
	assert_int_equal(avro_generic_value_new(c->iface, &c->val), 0);
}

static void
avro_ctx_free(struct avro_ctx *c)
{
	avro_value_decref(&c->val);
	avro_value_iface_decref(c->iface);
	avro_schema_decref(c->schema);
}

static avro_value_t
field(avro_value_t *rec, const char *name)
{
	avro_value_t f;
	if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
		fail_msg("avro-c: no field %s: %s", name, avro_strerror());
	return f;
}

static void
av_str_eq(avro_value_t *v, struct wire_str s, const char *what)
{
	const char *p;
	size_t n;
	assert_int_equal(avro_value_get_string(v, &p, &n), 0);
	/* avro-c counts the NUL */
	wstr_eq((struct wire_str){ p, n - 1 }, s, what);
}

static void
av_strarray_eq(avro_value_t *v, const struct wire_str *a, size_t n,
    const char *what)
{
	size_t got;
	assert_int_equal(avro_value_get_size(v, &got), 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		avro_value_t e;
		assert_int_equal(avro_value_get_by_index(v, i, &e, NULL), 0);
		av_str_eq(&e, a[i], what);
	}
}

static void
av_enum_eq(avro_value_t *v, int want)
{
	int got;
	assert_int_equal(avro_value_get_enum(v, &got), 0);
	assert_int_equal(got, want);
}

static void
av_long_eq(avro_value_t *v, int64_t want)
{
	int64_t got;
	assert_int_equal(avro_value_get_long(v, &got), 0);
	assert_true(got == want);
}

static void
av_opt_long_eq(avro_value_t *u, int has, int64_t want)
{
	int disc;
	avro_value_t b;
	assert_int_equal(avro_value_get_discriminant(u, &disc), 0);
	assert_int_equal(disc, has ? 1 : 0);
	if (has) {
		assert_int_equal(avro_value_get_current_branch(u, &b), 0);
		av_long_eq(&b, want);
	}
}

/* avro-c reads our bytes: the whole payload, nothing left over. */
static void
avro_read_all(struct avro_ctx *c, const uint8_t *p, size_t n)
{
	char extra;
	avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)n);
	assert_int_equal(avro_value_reset(&c->val), 0);
	if (avro_value_read(r, &c->val) != 0)
		fail_msg("avro-c read: %s", avro_strerror());
	assert_int_not_equal(avro_read(r, &extra, 1), 0);
	avro_reader_free(r);
}

static void
av_set_str(avro_value_t *v, struct wire_str s)
{
	/* rnd_str leaves a NUL after each string, avro-c wants it counted */
	assert_int_equal(s.ptr[s.len], '\0');
	assert_int_equal(avro_value_set_string_len(v, s.ptr, s.len + 1), 0);
}

static void
av_set_strarray(avro_value_t *v, const struct wire_str *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		avro_value_t e;
		assert_int_equal(avro_value_append(v, &e, NULL), 0);
		av_set_str(&e, a[i]);
	}
}

static void
av_set_opt_long(avro_value_t *u, int has, int64_t v)
{
	avro_value_t b;
	assert_int_equal(avro_value_set_branch(u, has ? 1 : 0, &b), 0);
	if (has)
		assert_int_equal(avro_value_set_long(&b, v), 0);
	else
		assert_int_equal(avro_value_set_null(&b), 0);
}

/* avro-c writes c->val into a framed message; returns its length. */
static size_t
avro_write_framed(struct avro_ctx *c, uint64_t fp, uint8_t **out)
{
	size_t sz;
	assert_int_equal(avro_value_sizeof(&c->val, &sz), 0);
	uint8_t *m = malloc(sz + SO);
	assert_non_null(m);
	framed(m, fp, m, 0);
	avro_writer_t w = avro_writer_memory((const char *)m + SO,
	    (int64_t)sz);
	if (avro_value_write(w, &c->val) != 0)
		fail_msg("avro-c write: %s", avro_strerror());
	assert_int_equal(avro_writer_tell(w), (int64_t)sz);
	avro_writer_free(w);
	*out = m;
	return sz + SO;
}

static void
test_avro_interop_event(void **state)
{
	struct avro_ctx c;
	struct wire_buf buf = { 0 };
	char err[256];
	(void)state;

	avro_ctx_init(&c, wire_event_schema);
	rng_seed(0x5eed0005);
	for (int i = 0; i < 500; i++) {
		arena_reset();
		rnd_event(&ev_a);
		/* ours -> avro-c */
		assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
		    sizeof(err)), 0);
		avro_read_all(&c, buf.data + SO, buf.len - SO);
		avro_value_t f;
		f = field(&c.val, "event_id");
		av_str_eq(&f, ev_a.event_id, "event_id");
		f = field(&c.val, "type");
		av_enum_eq(&f, (int)ev_a.type);
		f = field(&c.val, "kind");
		av_enum_eq(&f, (int)ev_a.kind);
		f = field(&c.val, "id");
		av_str_eq(&f, ev_a.id, "id");
		f = field(&c.val, "source");
		av_str_eq(&f, ev_a.source, "source");
		f = field(&c.val, "repo_tags");
		av_strarray_eq(&f, ev_a.repo_tags, ev_a.ntags, "repo_tags");
		f = field(&c.val, "repo_digests");
		av_strarray_eq(&f, ev_a.repo_digests, ev_a.ndigests,
		    "repo_digests");
		f = field(&c.val, "observed_at");
		av_long_eq(&f, ev_a.observed_at);

		/* avro-c -> ours */
		arena_reset();
		rnd_event(&ev_a);
		assert_int_equal(avro_value_reset(&c.val), 0);
		f = field(&c.val, "event_id");
		av_set_str(&f, ev_a.event_id);
		f = field(&c.val, "type");
		assert_int_equal(avro_value_set_enum(&f, (int)ev_a.type), 0);
		f = field(&c.val, "kind");
		assert_int_equal(avro_value_set_enum(&f, (int)ev_a.kind), 0);
		f = field(&c.val, "id");
		av_set_str(&f, ev_a.id);
		f = field(&c.val, "source");
		av_set_str(&f, ev_a.source);
		f = field(&c.val, "repo_tags");
		av_set_strarray(&f, ev_a.repo_tags, ev_a.ntags);
		f = field(&c.val, "repo_digests");
		av_set_strarray(&f, ev_a.repo_digests, ev_a.ndigests);
		f = field(&c.val, "observed_at");
		assert_int_equal(avro_value_set_long(&f, ev_a.observed_at), 0);
		uint8_t *m;
		size_t n = avro_write_framed(&c, WIRE_EVENT_FP, &m);
		if (wire_event_decode(m, n, NULL, &ev_b, NULL, err,
		    sizeof(err)) != 0)
			fail_msg("case %d: decoding avro-c bytes: %s", i, err);
		event_eq(&ev_a, &ev_b);
		/* and our encoding is byte-identical to avro-c's */
		assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
		    sizeof(err)), 0);
		assert_int_equal(buf.len, n);
		assert_memory_equal(buf.data, m, n);
		free(m);
	}
	avro_ctx_free(&c);
	wire_buf_free(&buf);
}

/* Sets avro-c record rec to *o (a ScanOutcome of the current schema, or
 * of the one before generation). */
static void
av_set_outcome(avro_value_t *rec, const struct wire_outcome *o,
    bool with_generation)
{
	avro_value_t f, b, s;

	assert_int_equal(avro_value_reset(rec), 0);
	f = field(rec, "id");
	av_set_str(&f, o->id);
	f = field(rec, "kind");
	assert_int_equal(avro_value_set_enum(&f, (int)o->kind), 0);
	f = field(rec, "status");
	assert_int_equal(avro_value_set_enum(&f, (int)o->status), 0);
	f = field(rec, "attempt");
	assert_int_equal(avro_value_set_int(&f, o->attempt), 0);
	f = field(rec, "next_attempt_at");
	av_set_opt_long(&f, o->has_next_attempt_at, o->next_attempt_at);
	f = field(rec, "error");
	assert_int_equal(avro_value_set_branch(&f, o->has_error, &b), 0);
	if (o->has_error)
		av_set_str(&b, o->error);
	else
		assert_int_equal(avro_value_set_null(&b), 0);
	f = field(rec, "error_class");
	assert_int_equal(avro_value_set_branch(&f, o->has_error_class, &b),
	    0);
	if (o->has_error_class)
		assert_int_equal(avro_value_set_enum(&b, (int)o->error_class),
		    0);
	else
		assert_int_equal(avro_value_set_null(&b), 0);
	f = field(rec, "scanner");
	av_set_str(&f, o->scanner);
	f = field(rec, "started_at");
	av_set_opt_long(&f, o->has_started_at, o->started_at);
	f = field(rec, "duration_ms");
	av_set_opt_long(&f, o->has_duration_ms, o->duration_ms);
	f = field(rec, "repo_tags");
	av_set_strarray(&f, o->repo_tags, o->ntags);
	f = field(rec, "repo_digests");
	av_set_strarray(&f, o->repo_digests, o->ndigests);
	f = field(rec, "sbom");
	assert_int_equal(avro_value_set_branch(&f, o->has_sbom, &b), 0);
	if (o->has_sbom) {
		s = field(&b, "format");
		av_set_str(&s, o->sbom.format);
		s = field(&b, "spec_version");
		av_set_str(&s, o->sbom.spec_version);
		s = field(&b, "component_count");
		assert_int_equal(avro_value_set_int(&s,
		    o->sbom.component_count), 0);
		s = field(&b, "content");
		assert_int_equal(avro_value_set_bytes(&s,
		    (void *)o->sbom.content, o->sbom.content_len), 0);
	} else {
		assert_int_equal(avro_value_set_null(&b), 0);
	}
	f = field(rec, "emitted_at");
	assert_int_equal(avro_value_set_long(&f, o->emitted_at), 0);
	if (with_generation) {
		f = field(rec, "generation");
		assert_int_equal(avro_value_set_long(&f, o->generation), 0);
	}
}

static void
test_avro_interop_outcome(void **state)
{
	struct avro_ctx c;
	struct wire_buf buf = { 0 };
	struct wire_config cfg = { 8u << 20, NULL, 0, 0, NULL };
	char err[256];
	(void)state;

	avro_ctx_init(&c, wire_outcome_schema);
	rng_seed(0x5eed0006);
	for (int i = 0; i < 300; i++) {
		avro_value_t f, b, s;
		int disc;

		arena_reset();
		rnd_outcome(&oc_a, i % 30 == 0 ? 1000000 : 2000);
		/* ours -> avro-c */
		assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
		    sizeof(err)), 0);
		avro_read_all(&c, buf.data + SO, buf.len - SO);
		f = field(&c.val, "id");
		av_str_eq(&f, oc_a.id, "id");
		f = field(&c.val, "kind");
		av_enum_eq(&f, (int)oc_a.kind);
		f = field(&c.val, "status");
		av_enum_eq(&f, (int)oc_a.status);
		f = field(&c.val, "attempt");
		int32_t at;
		assert_int_equal(avro_value_get_int(&f, &at), 0);
		assert_int_equal(at, oc_a.attempt);
		f = field(&c.val, "next_attempt_at");
		av_opt_long_eq(&f, oc_a.has_next_attempt_at,
		    oc_a.next_attempt_at);
		f = field(&c.val, "error");
		assert_int_equal(avro_value_get_discriminant(&f, &disc), 0);
		assert_int_equal(disc, oc_a.has_error);
		if (disc) {
			assert_int_equal(avro_value_get_current_branch(&f, &b),
			    0);
			av_str_eq(&b, oc_a.error, "error");
		}
		f = field(&c.val, "error_class");
		assert_int_equal(avro_value_get_discriminant(&f, &disc), 0);
		assert_int_equal(disc, oc_a.has_error_class);
		if (disc) {
			assert_int_equal(avro_value_get_current_branch(&f, &b),
			    0);
			av_enum_eq(&b, (int)oc_a.error_class);
		}
		f = field(&c.val, "scanner");
		av_str_eq(&f, oc_a.scanner, "scanner");
		f = field(&c.val, "started_at");
		av_opt_long_eq(&f, oc_a.has_started_at, oc_a.started_at);
		f = field(&c.val, "duration_ms");
		av_opt_long_eq(&f, oc_a.has_duration_ms, oc_a.duration_ms);
		f = field(&c.val, "repo_tags");
		av_strarray_eq(&f, oc_a.repo_tags, oc_a.ntags, "repo_tags");
		f = field(&c.val, "repo_digests");
		av_strarray_eq(&f, oc_a.repo_digests, oc_a.ndigests,
		    "repo_digests");
		f = field(&c.val, "sbom");
		assert_int_equal(avro_value_get_discriminant(&f, &disc), 0);
		assert_int_equal(disc, oc_a.has_sbom);
		if (disc) {
			const void *cp;
			size_t cn;
			int32_t cc;
			assert_int_equal(avro_value_get_current_branch(&f, &b),
			    0);
			s = field(&b, "format");
			av_str_eq(&s, oc_a.sbom.format, "format");
			s = field(&b, "spec_version");
			av_str_eq(&s, oc_a.sbom.spec_version, "spec_version");
			s = field(&b, "component_count");
			assert_int_equal(avro_value_get_int(&s, &cc), 0);
			assert_int_equal(cc, oc_a.sbom.component_count);
			s = field(&b, "content");
			assert_int_equal(avro_value_get_bytes(&s, &cp, &cn), 0);
			assert_int_equal(cn, oc_a.sbom.content_len);
			if (cn > 0)
				assert_memory_equal(cp, oc_a.sbom.content, cn);
		}
		f = field(&c.val, "emitted_at");
		av_long_eq(&f, oc_a.emitted_at);
		f = field(&c.val, "generation");
		av_long_eq(&f, oc_a.generation);

		/* avro-c -> ours */
		arena_reset();
		rnd_outcome(&oc_a, i % 30 == 1 ? 1000000 : 2000);
		av_set_outcome(&c.val, &oc_a, true);
		uint8_t *m;
		size_t n = avro_write_framed(&c, WIRE_OUTCOME_FP, &m);
		if (wire_outcome_decode(m, n, &cfg, &oc_b, NULL, err,
		    sizeof(err)) != 0)
			fail_msg("case %d: decoding avro-c bytes: %s", i, err);
		outcome_eq(&oc_a, &oc_b);
		assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
		    sizeof(err)), 0);
		assert_int_equal(buf.len, n);
		assert_memory_equal(buf.data, m, n);
		free(m);
	}
	avro_ctx_free(&c);
	wire_buf_free(&buf);
}

/*
 * avro-c writes ScanOutcome with the schema before generation, framed
 * single-object with the old fingerprint and Confluent: we read both with
 * generation 0, and our encoding of the same values is avro-c's plus one
 * zero byte (generation 0).
 */
static void
test_avro_interop_outcome_v1(void **state)
{
	struct avro_ctx c;
	struct wire_buf buf = { 0 };
	struct wire_config cfg = { 8u << 20, NULL, 0, 1, NULL };
	char err[256], *v1 = outcome_v1_schema();
	(void)state;

	avro_ctx_init(&c, v1);
	rng_seed(0x5eed0007);
	for (int i = 0; i < 200; i++) {
		arena_reset();
		rnd_outcome(&oc_a, i % 40 == 0 ? 1000000 : 2000);
		av_set_outcome(&c.val, &oc_a, false);
		oc_a.generation = 0;
		uint8_t *m;
		size_t n = avro_write_framed(&c, WIRE_OUTCOME_V1_FP, &m);
		memset(&oc_b, 0x5a, sizeof(oc_b));
		if (wire_outcome_decode(m, n, &cfg, &oc_b, NULL, err,
		    sizeof(err)) != 0)
			fail_msg("case %d: decoding avro-c v1 bytes: %s", i,
			    err);
		outcome_eq(&oc_a, &oc_b);
		/* Confluent: the same body after a 5-byte header */
		uint8_t *cm = malloc(n - SO + 5);
		assert_non_null(cm);
		memcpy(cm, "\x00\x00\x00\x00\x09", 5);
		memcpy(cm + 5, m + SO, n - SO);
		memset(&oc_b, 0x5a, sizeof(oc_b));
		if (wire_outcome_decode(cm, n - SO + 5, &cfg, &oc_b, NULL, err,
		    sizeof(err)) != 0)
			fail_msg("case %d: decoding avro-c v1 confluent: %s",
			    i, err);
		outcome_eq(&oc_a, &oc_b);
		free(cm);
		/* we write the current schema: the old body, then 0 */
		assert_int_equal(wire_outcome_encode(&oc_a, NULL, &buf, err,
		    sizeof(err)), 0);
		assert_int_equal(buf.len, n + 1);
		assert_memory_equal(buf.data + SO, m + SO, n - SO);
		assert_int_equal(buf.data[n], 0x00);
		free(m);
	}
	avro_ctx_free(&c);
	free(v1);
	wire_buf_free(&buf);
}

/* ---- JSON ---- */

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	json_decref(j);
	return s;
}

static void
expect_json_err(const char *text, const char *want)
{
	json_t *j = json_loads(text, 0, NULL);
	char err[256] = "";
	unsigned present;
	assert_non_null(j);
	int rc = wire_event_from_json(j, &ev_a, &present, err, sizeof(err));
	if (rc != -EINVAL || strcmp(err, want) != 0)
		fail_msg("from_json(%s): rc %d \"%s\", want \"%s\"", text, rc,
		    err, want);
	json_decref(j);
}

static void
test_json_event(void **state)
{
	struct wire_buf buf = { 0 };
	char err[256], *s;
	unsigned present;
	(void)state;

	const char *text = "{\"event_id\":\"e-1\",\"type\":\"SET\",\"kind\":"
	    "\"CONTAINER_IMAGE\",\"id\":\"sha256:ab\",\"source\":\"node-7\","
	    "\"repo_tags\":[\"nginx:1\",\"nginx:latest\"],\"repo_digests\":"
	    "[\"nginx@sha256:cd\"],\"observed_at\":1700000000123}";
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	assert_int_equal(wire_event_from_json(j, &ev_a, &present, err,
	    sizeof(err)), 0);
	assert_int_equal(present, WIRE_JSON_HAS_EVENT_ID |
	    WIRE_JSON_HAS_OBSERVED_AT);
	wstr_eq(ev_a.id, wire_str_c("sha256:ab"), "id");
	assert_int_equal(ev_a.ntags, 2);
	wstr_eq(ev_a.repo_tags[1], wire_str_c("nginx:latest"), "tag");
	assert_true(ev_a.observed_at == 1700000000123LL);
	/* through the wire and back to the same JSON */
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);
	json_decref(j);
	assert_int_equal(wire_event_decode(buf.data, buf.len, NULL, &ev_b,
	    NULL, err, sizeof(err)), 0);
	s = dump(wire_event_to_json(&ev_b));
	assert_string_equal(s, "{\"event_id\":\"e-1\",\"id\":\"sha256:ab\","
	    "\"kind\":\"CONTAINER_IMAGE\",\"observed_at\":1700000000123,"
	    "\"repo_digests\":[\"nginx@sha256:cd\"],\"repo_tags\":[\"nginx:1\","
	    "\"nginx:latest\"],\"source\":\"node-7\",\"type\":\"SET\"}");
	free(s);

	/* optional members absent */
	j = json_loads("{\"type\":\"UNSET\",\"kind\":\"HOST\",\"id\":\"h\","
	    "\"source\":\"s\"}", 0, NULL);
	assert_non_null(j);
	memset(&ev_a, 0xa5, sizeof(ev_a));
	assert_int_equal(wire_event_from_json(j, &ev_a, &present, err,
	    sizeof(err)), 0);
	assert_int_equal(present, 0);
	assert_int_equal(ev_a.event_id.len, 0);
	assert_int_equal(ev_a.ntags, 0);
	assert_int_equal(ev_a.ndigests, 0);
	assert_true(ev_a.observed_at == 0);
	assert_int_equal(ev_a.type, EVENT_UNSET);
	assert_int_equal(ev_a.kind, ENTITY_HOST);
	json_decref(j);

	expect_json_err("[]", "an event must be a JSON object");
	expect_json_err("{\"type\":\"SET\",\"kind\":\"HOST\",\"id\":\"h\","
	    "\"source\":\"s\",\"repo_tag\":[]}", "unknown member \"repo_tag\"");
	expect_json_err("{\"type\":\"set\",\"kind\":\"HOST\",\"id\":\"h\","
	    "\"source\":\"s\"}", "\"type\": unknown symbol \"set\"");
	expect_json_err("{\"type\":\"SET\",\"kind\":\"HOST\",\"source\":\"s\"}",
	    "\"id\" is missing");
	expect_json_err("{\"type\":\"SET\",\"kind\":\"HOST\",\"id\":7,"
	    "\"source\":\"s\"}", "\"id\" must be a string");
	expect_json_err("{\"type\":\"SET\",\"kind\":\"HOST\",\"id\":\"h\","
	    "\"source\":\"s\",\"repo_tags\":[\"a\",1]}",
	    "\"repo_tags\"[1] must be a string");
	expect_json_err("{\"type\":\"SET\",\"kind\":\"HOST\",\"id\":\"h\","
	    "\"source\":\"s\",\"observed_at\":\"now\"}",
	    "\"observed_at\" must be an integer (ms since the epoch)");
	wire_buf_free(&buf);
}

static void
test_json_outcome(void **state)
{
	char *s;
	(void)state;

	memset(&oc_a, 0, sizeof(oc_a));
	oc_a.id = wire_str_c("sha256:ab");
	oc_a.kind = ENTITY_IMAGE;
	oc_a.status = OUTCOME_RETRY_SCHEDULED;
	oc_a.attempt = 2;
	oc_a.has_next_attempt_at = 1;
	oc_a.next_attempt_at = 1700000600000LL;
	oc_a.has_error = 1;
	oc_a.error = wire_str_c("not found");
	oc_a.has_error_class = 1;
	oc_a.error_class = ERROR_RETRYABLE;
	oc_a.scanner = wire_str_c("oci");
	oc_a.emitted_at = 5;
	oc_a.generation = 4000000000LL;
	s = dump(wire_outcome_to_json(&oc_a, 0));
	assert_string_equal(s, "{\"attempt\":2,\"duration_ms\":null,"
	    "\"emitted_at\":5,\"error\":\"not found\",\"error_class\":"
	    "\"RETRYABLE\",\"generation\":4000000000,\"id\":\"sha256:ab\","
	    "\"kind\":\"CONTAINER_IMAGE\","
	    "\"next_attempt_at\":1700000600000,\"repo_digests\":[],"
	    "\"repo_tags\":[],\"sbom\":null,\"scanner\":\"oci\","
	    "\"started_at\":null,\"status\":\"RETRY_SCHEDULED\"}");
	free(s);
	/* in the schema's order, last (what `sbomd tail` prints) */
	json_t *j = wire_outcome_to_json(&oc_a, 0);
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	json_decref(j);
	assert_non_null(strstr(s, "\"emitted_at\":5,\"generation\":4000000000}"));
	free(s);
	/* an outcome of the version before generation prints 0 */
	uint8_t m[64];
	char err[256];
	size_t n = framed(m, WIRE_OUTCOME_V1_FP, outcome_body,
	    OUTCOME_BODY_V1);
	assert_int_equal(wire_outcome_decode(m, n, NULL, &oc_b, NULL, err,
	    sizeof(err)), 0);
	s = dump(wire_outcome_to_json(&oc_b, 0));
	assert_non_null(strstr(s, "\"generation\":0,"));
	free(s);

	memset(&oc_a, 0, sizeof(oc_a));
	oc_a.status = OUTCOME_SUCCEEDED;
	oc_a.has_sbom = 1;
	oc_a.sbom.format = wire_str_c("CycloneDX");
	oc_a.sbom.spec_version = wire_str_c("1.5");
	oc_a.sbom.component_count = 1;
	oc_a.sbom.content = (const uint8_t *)"{\"bomFormat\":\"CycloneDX\"}";
	oc_a.sbom.content_len = 25;
	s = dump(wire_outcome_to_json(&oc_a, 0));
	assert_non_null(strstr(s, "\"sbom\":{\"component_count\":1,"
	    "\"content\":{\"bomFormat\":\"CycloneDX\"},\"content_length\":25,"
	    "\"format\":\"CycloneDX\",\"spec_version\":\"1.5\"}"));
	free(s);
	s = dump(wire_outcome_to_json(&oc_a, WIRE_JSON_OMIT_CONTENT));
	assert_non_null(strstr(s, "\"sbom\":{\"component_count\":1,"
	    "\"content_length\":25,\"format\":\"CycloneDX\","
	    "\"spec_version\":\"1.5\"}"));
	free(s);
	/* not JSON: base64, all three padding cases */
	static const struct {
		const char *in, *b64;
	} b[] = { { "\xff\x00\x01", "/wAB" }, { "\xff\x00\x01\x02",
		"/wABAg==" }, { "\xff\x00\x01\x02\x03", "/wABAgM=" },
		{ "", "" } };
	for (size_t i = 0; i < 4; i++) {
		char want[64];
		oc_a.sbom.content = (const uint8_t *)b[i].in;
		oc_a.sbom.content_len = i == 3 ? 0 : 3 + i;
		s = dump(wire_outcome_to_json(&oc_a, 0));
		snprintf(want, sizeof(want), "\"content_base64\":\"%s\"",
		    b[i].b64);
		if (strstr(s, want) == NULL)
			fail_msg("base64 case %zu: %s", i, s);
		free(s);
	}
}

/* ---- writer schemas (kafka.writer_schemas_dir) ---- */

/* WorkloadEvent as a newer producer writes it: a field added in the
 * middle and one at the end, both with defaults. */
static const char event_v2_schema[] =
    "{\"type\": \"record\", \"name\": \"WorkloadEvent\", "
    "\"namespace\": \"io.sbomd.v1\", \"fields\": ["
    "{\"name\": \"event_id\", \"type\": \"string\"},"
    "{\"name\": \"type\", \"type\": {\"type\": \"enum\", \"name\": "
    "\"EventType\", \"symbols\": [\"SET\", \"UNSET\"]}},"
    "{\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": "
    "\"EntityKind\", \"symbols\": [\"CONTAINER_IMAGE\", \"HOST\"]}},"
    "{\"name\": \"id\", \"type\": \"string\"},"
    "{\"name\": \"source\", \"type\": \"string\"},"
    "{\"name\": \"cluster\", \"type\": \"string\", \"default\": \"\"},"
    "{\"name\": \"repo_tags\", \"type\": {\"type\": \"array\", \"items\": "
    "\"string\"}, \"default\": []},"
    "{\"name\": \"repo_digests\", \"type\": {\"type\": \"array\", "
    "\"items\": \"string\"}, \"default\": []},"
    "{\"name\": \"observed_at\", \"type\": \"long\"},"
    "{\"name\": \"labels\", \"type\": {\"type\": \"map\", \"values\": "
    "\"string\"}, \"default\": {}}]}";

static char wdir[PATH_MAX];

/* A fresh directory holding the given files (name, text pairs, NULL
 * ended); its path in wdir. */
static const char *
writer_dir(const char *name, ...)
{
	va_list ap;
	char cmd[PATH_MAX + 16];
	const char *base = getenv("TMPDIR");

	if (wdir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", wdir);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(wdir, sizeof(wdir), "%s/test_wire.XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	assert_non_null(mkdtemp(wdir));
	va_start(ap, name);
	for (const char *n = name; n != NULL; n = va_arg(ap, const char *)) {
		const char *text = va_arg(ap, const char *);
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%s", wdir, n);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		assert_true(fputs(text, f) >= 0);
		assert_int_equal(fclose(f), 0);
	}
	va_end(ap);
	return wdir;
}

/* A v2 event written by avro-c (cluster "eu-1", labels {team: x}),
 * single-object framed with the v2 fingerprint. */
static size_t
v2_event(uint8_t **out, uint64_t *fp)
{
	struct avro_ctx c;
	avro_value_t f, e;
	char err[256];

	assert_int_equal(fingerprint_schema(event_v2_schema,
	    strlen(event_v2_schema), fp, err, sizeof(err)), 0);
	avro_ctx_init(&c, event_v2_schema);
	f = field(&c.val, "event_id");
	assert_int_equal(avro_value_set_string(&f, "ev-2"), 0);
	f = field(&c.val, "type");
	assert_int_equal(avro_value_set_enum(&f, EVENT_SET), 0);
	f = field(&c.val, "kind");
	assert_int_equal(avro_value_set_enum(&f, ENTITY_IMAGE), 0);
	f = field(&c.val, "id");
	assert_int_equal(avro_value_set_string(&f, "sha256:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	    0);
	f = field(&c.val, "source");
	assert_int_equal(avro_value_set_string(&f, "node-2"), 0);
	f = field(&c.val, "cluster");
	assert_int_equal(avro_value_set_string(&f, "eu-1"), 0);
	f = field(&c.val, "repo_tags");
	assert_int_equal(avro_value_append(&f, &e, NULL), 0);
	assert_int_equal(avro_value_set_string(&e, "app:2"), 0);
	f = field(&c.val, "observed_at");
	assert_int_equal(avro_value_set_long(&f, 1700000000123), 0);
	f = field(&c.val, "labels");
	assert_int_equal(avro_value_add(&f, "team", &e, NULL, NULL), 0);
	assert_int_equal(avro_value_set_string(&e, "x"), 0);
	size_t n = avro_write_framed(&c, *fp, out);
	avro_ctx_free(&c);
	return n;
}

static void
expect_v2_fields(const struct wire_event *ev)
{
	assert_int_equal(ev->type, EVENT_SET);
	assert_int_equal(ev->kind, ENTITY_IMAGE);
	assert_int_equal(ev->event_id.len, 4);
	assert_memory_equal(ev->event_id.ptr, "ev-2", 4);
	assert_int_equal(ev->source.len, 6);
	assert_memory_equal(ev->source.ptr, "node-2", 6);
	assert_int_equal(ev->ntags, 1);
	assert_memory_equal(ev->repo_tags[0].ptr, "app:2", 5);
	assert_int_equal(ev->ndigests, 0);
	assert_int_equal(ev->observed_at, 1700000000123);
}

/* A v2 event (newer writer schema, fields added with defaults) is
 * dead-lettered without the writer's schema ("trailing bytes" with a
 * Confluent id, "fingerprint" single-object) and decodes with it, in
 * both framings; unknown fingerprints and ids still fail and say so. */
static void
test_writer_schemas_decode_v2(void **state)
{
	(void)state;
	uint8_t *so, *cf;
	uint64_t fp;
	size_t n = v2_event(&so, &fp);
	char err[512];
	struct wire_frame got;
	struct wire_config cfg = { .any_schema_id = true };
	wire_writers *w = NULL;

	/* Confluent: the same body after 00 00 00 00 07 */
	cf = malloc(n - SO + 5);
	assert_non_null(cf);
	memcpy(cf, "\x00\x00\x00\x00\x07", 5);
	memcpy(cf + 5, so + SO, n - SO);
	size_t ncf = n - SO + 5;

	/* without the writer schema */
	assert_int_equal(wire_event_decode(so, n, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "fingerprint"));
	assert_int_equal(wire_event_decode(cf, ncf, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EBADMSG);

	/* with it: 7.avsc is found by fingerprint and by id */
	writer_dir("7.avsc", event_v2_schema, "README", "not a schema", NULL);
	if (wire_writers_load(wdir, &w, err, sizeof(err)) != 0)
		fail_msg("wire_writers_load: %s", err);
	assert_int_equal(wire_writers_count(w), 1);
	assert_int_equal(wire_writers_find_fp(w, fp), 0);
	assert_int_equal(wire_writers_find_id(w, 7), 0);
	assert_int_equal(wire_writers_find_id(w, 9), -1);
	cfg.writers = w;
	if (wire_event_decode(so, n, &cfg, &ev_a, &got, err, sizeof(err)) != 0)
		fail_msg("single-object v2: %s", err);
	assert_int_equal(got.framing, WIRE_FRAMING_SINGLE_OBJECT);
	expect_v2_fields(&ev_a);
	memset(&ev_a, 0, sizeof(ev_a));
	if (wire_event_decode(cf, ncf, &cfg, &ev_a, &got, err, sizeof(err)) != 0)
		fail_msg("confluent v2: %s", err);
	assert_int_equal(got.framing, WIRE_FRAMING_CONFLUENT);
	assert_int_equal(got.schema_id, 7);
	expect_v2_fields(&ev_a);

	/* the reader's own schema still decodes directly */
	struct wire_buf buf = { 0 };
	assert_int_equal(wire_event_encode(&ev_a, NULL, &buf, err,
	    sizeof(err)), 0);
	assert_int_equal(wire_event_decode(buf.data, buf.len, &cfg, &ev_b,
	    NULL, err, sizeof(err)), 0);
	assert_int_equal(ev_b.observed_at, 1700000000123);
	wire_buf_free(&buf);

	/* an unknown id: Confluent id 9 with any_schema_id off */
	cfg.any_schema_id = false;
	cf[4] = 9;
	assert_int_equal(wire_event_decode(cf, ncf, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "unknown confluent schema id 9"));
	assert_non_null(strstr(err, "kafka.writer_schemas_dir"));
	cf[4] = 7;
	/* an unknown fingerprint */
	so[5] ^= 0xff;
	assert_int_equal(wire_event_decode(so, n, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "fingerprint"));
	assert_non_null(strstr(err, "kafka.writer_schemas_dir"));
	so[5] ^= 0xff;

	/* hostile v2 bodies: cut anywhere, a huge string length, trailing
	 * bytes, an array of 2^62 empty items; all -EBADMSG, no crash */
	for (size_t cut = 5; cut < ncf; cut++)
		assert_int_equal(wire_event_decode(cf, cut, &cfg, &ev_a, NULL,
		    err, sizeof(err)), -EBADMSG);
	uint8_t huge[5 + 12] = { 0, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0x01 };
	assert_int_equal(wire_event_decode(huge, 15, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "7.avsc"));
	uint8_t *longer = malloc(ncf + 1);
	assert_non_null(longer);
	memcpy(longer, cf, ncf);
	longer[ncf] = 0;
	assert_int_equal(wire_event_decode(longer, ncf + 1, &cfg, &ev_a, NULL,
	    err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "trailing"));
	free(longer);
	cfg.max_payload = 10;
	assert_int_equal(wire_event_decode(cf, ncf, &cfg, &ev_a, NULL, err,
	    sizeof(err)), -EMSGSIZE);

	wire_writers_free(w);
	free(so);
	free(cf);
}

/* Load errors name the directory or the file. */
static void
test_writer_schemas_load_errors(void **state)
{
	(void)state;
	char err[512], path[PATH_MAX + 64];
	wire_writers *w = (wire_writers *)&w;

	assert_int_equal(wire_writers_load("/nonexistent/writers", &w, err,
	    sizeof(err)), -ENOENT);
	assert_null(w);
	assert_non_null(strstr(err, "/nonexistent/writers"));

	writer_dir("3.avsc", "{\"type\": \"record\", \"name\": ", NULL);
	assert_int_equal(wire_writers_load(wdir, &w, err, sizeof(err)),
	    -EINVAL);
	snprintf(path, sizeof(path), "%s/3.avsc", wdir);
	if (strstr(err, path) == NULL)
		fail_msg("message does not name %s: %s", path, err);

	/* id changed from string to int: not resolvable */
	writer_dir("bad.avsc",
	    "{\"type\": \"record\", \"name\": \"WorkloadEvent\", "
	    "\"namespace\": \"io.sbomd.v1\", \"fields\": ["
	    "{\"name\": \"event_id\", \"type\": \"string\"},"
	    "{\"name\": \"type\", \"type\": {\"type\": \"enum\", \"name\": "
	    "\"EventType\", \"symbols\": [\"SET\", \"UNSET\"]}},"
	    "{\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": "
	    "\"EntityKind\", \"symbols\": [\"CONTAINER_IMAGE\", \"HOST\"]}},"
	    "{\"name\": \"id\", \"type\": \"int\"},"
	    "{\"name\": \"source\", \"type\": \"string\"},"
	    "{\"name\": \"observed_at\", \"type\": \"long\"}]}", NULL);
	assert_int_equal(wire_writers_load(wdir, &w, err, sizeof(err)),
	    -EINVAL);
	snprintf(path, sizeof(path), "%s/bad.avsc", wdir);
	if (strstr(err, path) == NULL || strstr(err, "resolved") == NULL)
		fail_msg("message: %s", err);

	writer_dir("7.avsc", event_v2_schema, "07.avsc", event_v2_schema,
	    NULL);
	assert_int_equal(wire_writers_load(wdir, &w, err, sizeof(err)),
	    -EEXIST);
	assert_non_null(strstr(err, "7.avsc"));

	/* an empty directory is an empty set; the reader's own schema and
	 * the same schema under two ids load */
	writer_dir("v1.avsc", wire_event_schema, "7.avsc", event_v2_schema,
	    "8.avsc", event_v2_schema, NULL);
	if (wire_writers_load(wdir, &w, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(wire_writers_count(w), 3);
	assert_int_equal(wire_writers_find_id(w, 8), 1);
	wire_writers_free(w);
	writer_dir(NULL);
	if (wire_writers_load(wdir, &w, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(wire_writers_count(w), 0);
	wire_writers_free(w);
	snprintf(path, sizeof(path), "rm -rf '%s'", wdir);
	assert_int_equal(system(path), 0);
	wdir[0] = '\0';
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc64avro),
		cmocka_unit_test(test_pcf_vectors),
		cmocka_unit_test(test_pcf_our_schemas),
		cmocka_unit_test(test_pcf_errors),
		cmocka_unit_test(test_schema_files),
		cmocka_unit_test(test_event_roundtrip),
		cmocka_unit_test(test_event_known_bytes),
		cmocka_unit_test(test_outcome_roundtrip),
		cmocka_unit_test(test_outcome_large_content),
		cmocka_unit_test(test_outcome_known_bytes),
		cmocka_unit_test(test_outcome_v1),
		cmocka_unit_test(test_framing_errors),
		cmocka_unit_test(test_body_errors),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_avro_interop_event),
		cmocka_unit_test(test_avro_interop_outcome),
		cmocka_unit_test(test_avro_interop_outcome_v1),
		cmocka_unit_test(test_writer_schemas_decode_v2),
		cmocka_unit_test(test_writer_schemas_load_errors),
		cmocka_unit_test(test_json_event),
		cmocka_unit_test(test_json_outcome),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(arena);
	return rc;
}
