/*
 * schemas: sbomd's two Avro contracts, WorkloadEvent in and ScanOutcome
 * out, as the JSON text of schemas/workload_event.avsc and
 * schemas/scan_outcome.avsc, and the CRC-64-AVRO fingerprint of each
 * one's Parsing Canonical Form (what single-object framing carries).
 */
#ifndef SBOMD_WIRE_SCHEMAS_H
#define SBOMD_WIRE_SCHEMAS_H

/* CRC-64-AVRO of the Parsing Canonical Form of each schema. */
#define WIRE_EVENT_FP 0x5362d1e1b057ee1aULL
#define WIRE_OUTCOME_FP 0x0fe8abc07ea8fa68ULL

/* The schemas, byte for byte as in schemas/ (NUL-terminated JSON text). */
extern const char wire_event_schema[];
extern const char wire_outcome_schema[];

#endif
