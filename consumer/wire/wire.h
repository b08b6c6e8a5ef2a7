/*
 * wire: the Avro messages of sbomd, WorkloadEvent in and ScanOutcome out
 * (schemas/workload_event.avsc, schemas/scan_outcome.avsc), with their
 * framings. A hand-written binary codec for these two fixed schemas: no
 * avro-c types here, and no allocation while decoding.
 *
 * Framing (frame.h): Confluent or Avro single object, detected per
 * message by its first byte.
 *
 * Decoding is for hostile bytes. Before anything else the payload size
 * is checked against wire_config.max_payload (default 1 MiB); then every
 * length is checked against the bytes left, strings are at most
 * WIRE_MAX_STRING bytes of valid UTF-8 without NUL, arrays at most
 * WIRE_MAX_REFS items, enum and union indexes must be in range, and bytes
 * after the record are an error. Every error fills err with a short
 * message that names the field and the byte offset in the message, e.g.
 * "truncated: string 'source' needs 40 bytes, 3 left at byte 57".
 *
 * Schema evolution: ScanOutcome's last field, generation (long, default
 * 0), was appended later. The decoder also reads records of the schema
 * before it (WIRE_OUTCOME_V1_FP), with generation 0. Single-object
 * messages say which version wrote them, and the record must then have
 * exactly that version's fields. A Confluent schema id does not say it
 * (it is the registry's number), nor does a bare body: there a record
 * that ends where generation would start is read as the older version,
 * so such a record cut exactly there is not an error. The encoder writes
 * the current schema only.
 *
 * Lifetime: a decoded struct's strings (struct wire_str, NOT
 * NUL-terminated) and the sbom content point INTO the message buffer
 * passed to the decoder; they are valid while that buffer is. Nothing is
 * allocated, nothing needs freeing. The structs are large (two arrays of
 * WIRE_MAX_REFS refs, ~8 KiB): keep one and reuse it; the decoder writes
 * only the fields and the first ntags/ndigests array slots.
 *
 * Encoding takes the same structs (strings pointing anywhere), validates
 * them with the decoder's rules (-EINVAL, message names the field), so
 * that we never write what we would refuse to read, computes the exact
 * size and writes into a struct wire_buf with at most one allocation
 * (none when the buffer is already big enough): a multi-MiB SBOM content
 * is copied once.
 *
 * Return codes: 0; -EMSGSIZE payload over the limit; -EPROTO framing
 * (unknown first byte, unknown schema id, wrong fingerprint, message
 * shorter than its header); -EBADMSG malformed payload; -EINVAL invalid
 * struct given to an encoder or a bad argument.
 *
 * Thread-safety: all functions are reentrant; structs and buffers belong
 * to the caller. Throughput target: well above 1 M events/s per core.
 */
#ifndef SBOMD_WIRE_WIRE_H
#define SBOMD_WIRE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/vocab.h"
#include "wire/frame.h"
#include "wire/schemas.h"

#define WIRE_MAX_STRING (64u * 1024) /* any string field */
#define WIRE_MAX_REFS 256	     /* repo_tags, repo_digests */

/* A string that is not NUL-terminated. */
struct wire_str {
	const char *ptr;
	size_t len;
};

/* The enums (event type, entity kind, outcome status, error class) are
 * util/vocab.h's: their values are the schemas' symbol indexes. */

struct wire_event {
	struct wire_str event_id;
	enum event_type type;
	enum entity_kind kind;
	struct wire_str id;
	struct wire_str source;
	size_t ntags, ndigests; /* <= WIRE_MAX_REFS */
	int64_t observed_at;	/* ms since the epoch */
	struct wire_str repo_tags[WIRE_MAX_REFS];
	struct wire_str repo_digests[WIRE_MAX_REFS];
};

struct wire_sbom {
	struct wire_str format;
	struct wire_str spec_version;
	int32_t component_count;
	const uint8_t *content; /* CycloneDX JSON, may be MiBs */
	size_t content_len;
};

/* Optional (union with null) fields have a has_ flag; 0 = null. */
struct wire_outcome {
	struct wire_str id;
	enum entity_kind kind;
	enum outcome_status status;
	int32_t attempt;
	int has_next_attempt_at;
	int64_t next_attempt_at;
	int has_error;
	struct wire_str error;
	int has_error_class;
	enum error_class error_class;
	struct wire_str scanner;
	int has_started_at;
	int64_t started_at;
	int has_duration_ms;
	int64_t duration_ms;
	int has_sbom;
	struct wire_sbom sbom;
	int64_t emitted_at;
	/* The entity's scan generation: 1 for a new entity, +1 for each new
	 * scan cycle; (id, generation, attempt, status) identifies an
	 * outcome. 0: written before the field existed. Kept before the
	 * arrays: outcomes.c zeroes the struct up to repo_tags. */
	int64_t generation;
	size_t ntags, ndigests; /* <= WIRE_MAX_REFS */
	struct wire_str repo_tags[WIRE_MAX_REFS];
	struct wire_str repo_digests[WIRE_MAX_REFS];
};

/* An output buffer, reused across encodes. Zeroed is empty. */
struct wire_buf {
	uint8_t *data; /* malloc'd; the caller may take it (then zero buf) */
	size_t len;    /* the encoded message */
	size_t cap;
};

void wire_buf_free(struct wire_buf *b);

/* A wire_str of a C string (NULL gives the empty string). */
struct wire_str wire_str_c(const char *s);

/*
 * Decodes a framed WorkloadEvent into *ev (strings point into msg; see
 * the lifetime rule above). cfg NULL means the zeroed config. frame may
 * be NULL. On error *ev is unspecified.
 */
int wire_event_decode(const void *msg, size_t len,
    const struct wire_config *cfg, struct wire_event *ev,
    struct wire_frame *frame, char *err, size_t errlen);

/* Encodes *ev framed as *frame (NULL: single object) into out. */
int wire_event_encode(const struct wire_event *ev,
    const struct wire_frame *frame, struct wire_buf *out, char *err,
    size_t errlen);

/* The same for ScanOutcome. max_payload bounds the SBOM content too. */
int wire_outcome_decode(const void *msg, size_t len,
    const struct wire_config *cfg, struct wire_outcome *o,
    struct wire_frame *frame, char *err, size_t errlen);
int wire_outcome_encode(const struct wire_outcome *o,
    const struct wire_frame *frame, struct wire_buf *out, char *err,
    size_t errlen);

/* Unframed Avro binary bodies (no header, no payload limit beyond len). */
int wire_event_decode_body(const void *body, size_t len,
    struct wire_event *ev, char *err, size_t errlen);
int wire_outcome_decode_body(const void *body, size_t len,
    struct wire_outcome *o, char *err, size_t errlen);

/*
 * Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF) without NUL: what string fields must hold.
 */
bool wire_utf8_valid(const char *s, size_t len);

/*
 * Makes s[0..len) a valid string field in place, same length: bytes that
 * are not part of valid UTF-8, and NULs, become '?'. For text from
 * outside (scanner stderr) before it goes into an outcome.
 */
void wire_utf8_sanitize(char *s, size_t len);

#endif
