/*
 * tracker_record: a tracker entry as a self-contained, versioned byte
 * record (what the store keeps under the entry's slot, see tracker.h on
 * slots), and recovery: loading the records back into an empty tracker.
 *
 * One logical state has exactly one encoding (sources in name order, tags
 * and digests sorted), so equal entries give equal bytes. Records come
 * from disk and may be corrupt: loading checks every length, range and
 * cross-field rule before it changes the tracker, and a refused record
 * leaves the tracker as it was.
 *
 * Threads: as the tracker (the engine thread, or the recovering one).
 */
#ifndef SBOMD_CORE_TRACKER_RECORD_H
#define SBOMD_CORE_TRACKER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"

/*
 * Encodes live entry handle (key included) into *buf, growing it (and
 * *bufcap) as needed; returns the record's size, bounded by the tracker's
 * limits. Cannot fail.
 */
size_t tracker_record_encode(const tracker *t, uint32_t handle, uint8_t **buf,
    size_t *bufcap);

/* The entity key inside a record, for messages: 0, or -EINVAL when the
 * record is too short to hold one or names an unknown kind. */
int tracker_record_key(const uint8_t *rec, size_t len, struct tracker_key *key);

/*
 * Loads one record at slot during recovery (before
 * tracker_record_load_finish). A record that was SCANNING comes back
 * QUEUED due at now with its attempts unchanged, and *requeued (may be
 * NULL) is set; otherwise it is cleared. Returns 0; -EPROTO for a record
 * of a newer format; -EINVAL for a corrupt record, a slot out of range or
 * in use, or a key loaded already. Errors say what and at which byte in
 * err, and change nothing.
 */
int tracker_record_load(tracker *t, uint32_t slot, const uint8_t *rec,
    size_t len, int64_t now, bool *requeued, char *err, size_t errlen);

/* Ends recovery: frees every unused slot below the highest (lowest
 * reused first), builds the heap once (O(n)), clears the dirty set. */
void tracker_record_load_finish(tracker *t);

#endif
