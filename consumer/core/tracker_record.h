/*
 * tracker_record: a tracker entry as a self-contained, versioned byte
 * record (what the store keeps under the entry's (partition, key), and
 * what a changelog carries), loading records into a tracker, and the
 * tracker's durability side: its dirty set and partition-scoped memory
 * (declared in tracker.h).
 *
 * One logical state has exactly one encoding (sources in name order, tags
 * and digests sorted), so equal entries give equal bytes. Records come
 * from disk or from Kafka and may be corrupt: loading checks every length,
 * range and cross-field rule before it changes the tracker, and a refused
 * record leaves the tracker as it was.
 *
 * Threads: as the tracker (the engine thread, or the loading one).
 */
#ifndef SBOMD_CORE_TRACKER_RECORD_H
#define SBOMD_CORE_TRACKER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"

/* The record format written; versions 1 and 2 still load. */
#define TRACKER_RECORD_VERSION 3

/*
 * Encodes live entry handle (key included) into *buf, growing it (and
 * *bufcap) as needed; returns the record's size, bounded by the tracker's
 * limits. Cannot fail.
 */
size_t tracker_record_encode(const tracker *t, uint32_t handle, uint8_t **buf,
    size_t *bufcap);
/* The same, appended at *buf + *len: *len grows by the size returned. */
size_t tracker_record_append(const tracker *t, uint32_t handle, uint8_t **buf,
    size_t *bufcap, size_t *len);

/* The entity key inside a record, for messages: 0, or -EINVAL when the
 * record is too short to hold one or names an unknown kind. */
int tracker_record_key(const uint8_t *rec, size_t len, struct tracker_key *key);

/*
 * Checks a record without loading it (a changelog record from Kafka may
 * be anything): 0 with its entity key and partition, or what
 * tracker_record_load would refuse it with (-EPROTO for a newer format,
 * -EINVAL for a corrupt record), err saying what and at which byte. A
 * record that passes loads into any tracker with room for it.
 */
int tracker_record_validate(const uint8_t *rec, size_t len,
    struct tracker_key *key, int32_t *partition, char *err, size_t errlen);

/*
 * Loads one record into a running tracker: a new entry (a new handle, in
 * the map, pushed into the heap), or, when the record's key is in memory
 * already, a replacement of that entry (same handle; what a replay of a
 * partition's changelog over the loaded state needs). A record that was
 * SCANNING comes back QUEUED due at now with its attempts unchanged, and
 * *requeued (may be NULL) is set; otherwise it is cleared. Loading marks
 * nothing dirty -- the record is where the caller read it from -- except
 * that a replaced entry of another partition moves: its old (partition,
 * key) is deleted and it is dirty under the record's partition.
 * Returns 0; -EPROTO for a record of a newer format; -EINVAL for a corrupt
 * record; -ENOSPC when the tracker holds TRACKER_MAX_ENTRIES. Errors say
 * what and at which byte in err, and change nothing.
 */
int tracker_record_load(tracker *t, const uint8_t *rec, size_t len,
    int64_t now, bool *requeued, char *err, size_t errlen);

#endif
