/*
 * writers: writer schemas of WorkloadEvent other than the reader's own,
 * loaded from a directory (kafka.writer_schemas_dir), so that producers
 * can move to a newer compatible schema (a field added with a default,
 * ...) before sbomd does.
 *
 * Every "*.avsc" file of the directory is one writer schema. It is found
 * by the CRC-64-AVRO fingerprint of its Parsing Canonical Form (what a
 * single-object message carries; fingerprint.h) and, when the file is
 * named "ID.avsc" (decimal, e.g. "7.avsc"), also by that Confluent
 * schema id. Each is resolved against the reader schema (wire_event_schema)
 * with avro-c's schema resolution at load time; a directory that cannot
 * be read, or a file that cannot be read, parsed or resolved, or two files
 * claiming the same Confluent id ("7.avsc", "07.avsc"), fail the load with
 * the file named. Several files may hold the same schema (a registry can
 * give one schema several ids); a fingerprint then finds the first.
 *
 * A message of a writer schema is first walked over the writer schema by
 * our own bounded reader (every length against the bytes left, at most
 * WRITERS_MAX_ITEMS array/map items, nesting at most WRITERS_MAX_DEPTH,
 * nothing after the record), since avro-c trusts decoded lengths; only
 * then does avro-c read it through the resolver into a reader-schema
 * value, which is written back as reader-schema Avro bytes for wire.c's
 * decoder (wire_config.writers).
 *
 * Threads: loading and freeing at start-up; wire_writers_resolve reuses
 * one value and one output buffer per set, so one thread decodes with a
 * set at a time (the engine thread).
 */
#ifndef SBOMD_WIRE_WRITERS_H
#define SBOMD_WIRE_WRITERS_H

#include <stddef.h>
#include <stdint.h>

#define WRITERS_MAX_FILES 1024
#define WRITERS_MAX_SCHEMA_BYTES (1u << 20)
#define WRITERS_MAX_ITEMS 65536
#define WRITERS_MAX_DEPTH 32

typedef struct wire_writers wire_writers;

/*
 * Loads every "*.avsc" of dir (an empty directory is an empty set).
 * 0 with *out set, or a negative errno with err naming the directory or
 * the file (-ENOENT/-EACCES/... unreadable, -EINVAL unparsable or not
 * resolvable, -EEXIST a Confluent id given twice).
 */
int wire_writers_load(const char *dir, wire_writers **out, char *err,
    size_t errlen);
void wire_writers_free(wire_writers *w);

size_t wire_writers_count(const wire_writers *w);

/* The writer of fingerprint fp / of Confluent id id: its index, or -1. */
int wire_writers_find_fp(const wire_writers *w, uint64_t fp);
int wire_writers_find_id(const wire_writers *w, uint32_t id);

/* The file name of writer i ("7.avsc"), its fingerprint. */
const char *wire_writers_file(const wire_writers *w, int i);
uint64_t wire_writers_fp(const wire_writers *w, int i);

/*
 * The Avro body p[0..len) written with writer i, as reader-schema Avro
 * bytes: *out points into a buffer of w, valid until the next call.
 * 0, or -EBADMSG with err (the writer's file and what is wrong).
 */
int wire_writers_resolve(wire_writers *w, int i, const void *p, size_t len,
    const uint8_t **out, size_t *outlen, char *err, size_t errlen);

#endif
