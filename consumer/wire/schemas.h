/*
 * schemas: sbomd's two Avro contracts, WorkloadEvent in and ScanOutcome
 * out, as the JSON text of schemas/workload_event.avsc and
 * schemas/scan_outcome.avsc, and the CRC-64-AVRO fingerprint of each
 * one's Parsing Canonical Form (what single-object framing carries).
 *
 * Evolving a schema: append fields with a default, never reorder or
 * remove; update the text here byte for byte, the fingerprint, and keep
 * the previous fingerprint among the accepted ones (wire.c) so that the
 * decoder still reads what older writers wrote.
 */
#ifndef SBOMD_WIRE_SCHEMAS_H
#define SBOMD_WIRE_SCHEMAS_H

/* CRC-64-AVRO of the Parsing Canonical Form of each schema. */
#define WIRE_EVENT_FP 0x5362d1e1b057ee1aULL
#define WIRE_OUTCOME_FP 0x8ca48d59ad71d2aaULL

/*
 * ScanOutcome as it was before the field `generation` was appended: the
 * same record without its last field. The decoder still accepts it (the
 * outbox of an older sbomd, topics written before the change) and reads
 * generation as its default, 0. tests/test_wire.c derives this
 * fingerprint from the current schema.
 */
#define WIRE_OUTCOME_V1_FP 0x0fe8abc07ea8fa68ULL

/* The schemas, byte for byte as in schemas/ (NUL-terminated JSON text). */
extern const char wire_event_schema[];
extern const char wire_outcome_schema[];

#endif
