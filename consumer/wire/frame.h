/*
 * frame: the two framings of sbomd's Avro messages, detected per message
 * by its first byte:
 *
 *   0x00 | schema id (4 bytes, big-endian) | payload        Confluent
 *   0xC3 0x01 | CRC-64-AVRO of the PCF (8 bytes, LE) | payload
 *                                                  Avro single object
 *
 * A Confluent id must be in the configured set; a single-object
 * fingerprint must be one the caller accepts: the schema's
 * (WIRE_EVENT_FP / WIRE_OUTCOME_FP) or an earlier version's
 * (WIRE_OUTCOME_V1_FP).
 * Before a payload is decoded its size is checked against
 * wire_config.max_payload (default 1 MiB).
 *
 * Pure functions, any thread.
 */
#ifndef SBOMD_WIRE_FRAME_H
#define SBOMD_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_DEFAULT_MAX_PAYLOAD (1u << 20) /* 1 MiB */

#define WIRE_CONFLUENT_HEADER 5
#define WIRE_SINGLE_OBJECT_HEADER 10

enum wire_framing {
	WIRE_FRAMING_SINGLE_OBJECT = 0, /* the default for output */
	WIRE_FRAMING_CONFLUENT = 1,
};

/* How a message is (to be) framed. */
struct wire_frame {
	enum wire_framing framing;
	uint32_t schema_id; /* Confluent only */
};

/* What the decoders accept. Zeroed is valid: 1 MiB, single-object only. */
struct wire_config {
	size_t max_payload;	    /* bytes after the header; 0 = default */
	const uint32_t *schema_ids; /* accepted Confluent ids (caller's) */
	size_t nschema_ids;
	bool any_schema_id;	    /* accept every Confluent id */
	/* Writer schemas of WorkloadEvent (wire/writers.h), found by
	 * single-object fingerprint or Confluent id; NULL = none. Their
	 * records are resolved to the reader schema, and a decoded event's
	 * strings then point into the set's buffer (valid until the next
	 * decode with it): one decoding thread per set. */
	struct wire_writers *writers;
};

/*
 * Splits msg into its header and payload: checks the framing, the
 * Confluent schema id against cfg (NULL: the zeroed config) or the
 * single-object fingerprint against fps[0..nfps) (nfps >= 1; fps[0] is
 * the current schema's, WIRE_EVENT_FP or WIRE_OUTCOME_FP, the one error
 * messages name; the others are earlier versions of it), and the payload
 * size against cfg->max_payload. Returns 0 with *payload_off the header
 * length, *frame (frame may be NULL) saying how the message was framed
 * and *fp_index (may be NULL) the index in fps of the fingerprint found,
 * -1 for Confluent (whose id does not say which version wrote it);
 * -EPROTO for a framing error (unknown first byte, unknown schema id,
 * wrong fingerprint, a message shorter than its header) or -EMSGSIZE for
 * a payload over the limit, with a message in err.
 */
int wire_frame_parse(const void *msg, size_t len, const struct wire_config *cfg,
    const uint64_t *fps, size_t nfps, struct wire_frame *frame,
    size_t *payload_off, int *fp_index, char *err, size_t errlen);

/* 0 for a known framing, else -EINVAL with a message in err. */
int wire_frame_check(const struct wire_frame *fr, char *err, size_t errlen);

/* The header length of a (checked) framing. */
size_t wire_frame_header_len(const struct wire_frame *fr);

/* Writes the header of fr (fp: the schema's fingerprint) at p, which has
 * room for wire_frame_header_len(fr) bytes; returns the end. */
uint8_t *wire_frame_write(uint8_t *p, const struct wire_frame *fr,
    uint64_t fp);

/* "single-object" / "confluent" -> *out: 0, or -EINVAL for other text. */
int wire_framing_parse(const char *s, enum wire_framing *out);

#endif
