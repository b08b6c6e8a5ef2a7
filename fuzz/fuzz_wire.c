/*
 * fuzz_wire: bytes -> the event and outcome decoders (framed, with any
 * Confluent id accepted, and as bare Avro bodies so that the fuzzer need
 * not guess the 10-byte single-object header). Outcomes of the schema
 * before `generation` decode too (generation 0) and re-encode with the
 * current one. Whatever decodes must re-encode and decode to the same
 * values, its strings must lie inside the input, and the JSON
 * conversions must not crash. The input is copied to a buffer of exactly
 * its size so ASan sees a read one byte past it. Seeds: both versions of
 * ScanOutcome (outcome_*.bin: before generation; outcome_gen_*.bin).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wire/wire.h"
#include "wire/wirejson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wire_event ev, ev2;
static struct wire_outcome oc, oc2;

static void
inside(struct wire_str s, const uint8_t *b, size_t n)
{
	if (s.len > 0 && ((const uint8_t *)s.ptr < b ||
	    (const uint8_t *)s.ptr + s.len > b + n))
		abort();
	if (!wire_utf8_valid(s.ptr, s.len))
		abort();
}

static bool
same(struct wire_str a, struct wire_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr,
	    a.len) == 0);
}

static void
check_event(const uint8_t *b, size_t n)
{
	char err[256];
	struct wire_buf out = { 0 };
	json_t *j;

	inside(ev.event_id, b, n);
	inside(ev.id, b, n);
	inside(ev.source, b, n);
	for (size_t i = 0; i < ev.ntags; i++)
		inside(ev.repo_tags[i], b, n);
	for (size_t i = 0; i < ev.ndigests; i++)
		inside(ev.repo_digests[i], b, n);
	if (wire_event_encode(&ev, NULL, &out, err, sizeof(err)) != 0)
		abort();
	if (wire_event_decode(out.data, out.len, NULL, &ev2, NULL, err,
	    sizeof(err)) != 0)
		abort();
	if (!same(ev.event_id, ev2.event_id) || ev.type != ev2.type ||
	    ev.kind != ev2.kind || !same(ev.id, ev2.id) ||
	    !same(ev.source, ev2.source) || ev.ntags != ev2.ntags ||
	    ev.ndigests != ev2.ndigests || ev.observed_at != ev2.observed_at)
		abort();
	for (size_t i = 0; i < ev.ntags; i++)
		if (!same(ev.repo_tags[i], ev2.repo_tags[i]))
			abort();
	for (size_t i = 0; i < ev.ndigests; i++)
		if (!same(ev.repo_digests[i], ev2.repo_digests[i]))
			abort();
	j = wire_event_to_json(&ev);
	if (j == NULL)
		abort();
	json_decref(j);
	wire_buf_free(&out);
}

static void
check_outcome(const uint8_t *b, size_t n)
{
	static const struct wire_config big = { 64u << 20, NULL, 0, true, NULL };
	char err[256];
	struct wire_buf out = { 0 };
	json_t *j;

	inside(oc.id, b, n);
	inside(oc.scanner, b, n);
	if (oc.has_error)
		inside(oc.error, b, n);
	if (oc.has_sbom && oc.sbom.content_len > 0 &&
	    (oc.sbom.content < b || oc.sbom.content + oc.sbom.content_len >
	    b + n))
		abort();
	if (wire_outcome_encode(&oc, NULL, &out, err, sizeof(err)) != 0)
		abort();
	if (wire_outcome_decode(out.data, out.len, &big, &oc2, NULL, err,
	    sizeof(err)) != 0)
		abort();
	if (!same(oc.id, oc2.id) || oc.status != oc2.status ||
	    oc.attempt != oc2.attempt || oc.has_sbom != oc2.has_sbom ||
	    oc.has_error != oc2.has_error || oc.emitted_at != oc2.emitted_at ||
	    oc.generation != oc2.generation || oc.ntags != oc2.ntags ||
	    (oc.has_sbom && oc.sbom.content_len != oc2.sbom.content_len))
		abort();
	j = wire_outcome_to_json(&oc, 0);
	if (j == NULL)
		abort();
	json_decref(j);
	wire_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t ids[] = { 1, 7 };
	struct wire_config cfg = { 0, ids, 2, false, NULL };
	char err[256];
	uint8_t *b = malloc(size ? size : 1);

	if (b == NULL)
		abort();
	if (size > 0)
		memcpy(b, data, size);
	if (wire_event_decode(b, size, &cfg, &ev, NULL, err, sizeof(err)) == 0)
		check_event(b, size);
	if (wire_outcome_decode(b, size, &cfg, &oc, NULL, err,
	    sizeof(err)) == 0)
		check_outcome(b, size);
	if (wire_event_decode_body(b, size, &ev, err, sizeof(err)) == 0)
		check_event(b, size);
	if (wire_outcome_decode_body(b, size, &oc, err, sizeof(err)) == 0)
		check_outcome(b, size);
	free(b);
	return 0;
}
