/*
 * fingerprint: CRC-64-AVRO (the Rabin fingerprint of the Avro
 * specification) and the Parsing Canonical Form (PCF) of an Avro schema,
 * computed by our own code from the schema's JSON text.
 *
 * The single-object encoding puts the 64-bit fingerprint of the writer
 * schema's PCF in every message (little-endian); two schemas that differ
 * only in doc strings, defaults, logical types, aliases, namespaces
 * spelled differently or whitespace have the same PCF, hence the same
 * fingerprint.
 *
 * PCF rules implemented (Avro specification, "Parsing Canonical Form"):
 * [PRIMITIVES] {"type":"int"} -> "int" (annotations such as logicalType
 * dropped); [FULLNAMES] names of records, enums and fixed, and references
 * to them, become fullnames using the enclosing namespace, and namespace
 * attributes disappear; [STRIP] only type, name, fields, symbols, items,
 * values and size are kept; [ORDER] in that order: name, type, fields,
 * symbols, items, values, size; [STRINGS] escapes are decoded (jansson
 * does it, and names may only hold [A-Za-z0-9_.] so nothing needs
 * re-escaping); [INTEGERS] sizes printed without leading zeros;
 * [WHITESPACE] none outside strings.
 *
 * Both functions are pure and thread-safe. The schemas we handle are a
 * few KiB; canonicalisation is done once at start-up and by tests.
 */
#ifndef SBOMD_WIRE_FINGERPRINT_H
#define SBOMD_WIRE_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* CRC-64-AVRO of the empty input (the seed of the algorithm). */
#define FINGERPRINT_EMPTY 0xc15d213aa4d7a795ULL

/* CRC-64-AVRO of len bytes (table-driven). */
uint64_t fingerprint_crc64avro(const void *data, size_t len);

/*
 * Parsing Canonical Form of the schema JSON text json[0..len). On success
 * *out is a malloc'd NUL-terminated string (free() it) and *outlen its
 * length. Errors: -EINVAL with a message naming the offending part of the
 * schema (bad JSON, unknown type, bad name, missing attribute, redefined
 * or undefined named type).
 */
int fingerprint_pcf(const char *json, size_t len, char **out,
    size_t *outlen, char *err, size_t errlen);

/* CRC-64-AVRO of the PCF of the schema text; errors as fingerprint_pcf. */
int fingerprint_schema(const char *json, size_t len, uint64_t *fp,
    char *err, size_t errlen);

#endif
