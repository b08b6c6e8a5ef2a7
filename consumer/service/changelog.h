/*
 * changelog: sbomd's state changelog on Kafka: a compacted topic
 * (state.changelog_topic, default "sbomd-state") with as many partitions
 * as kafka.input_topic. Partition P holds the state records of the
 * entities whose events arrive on input partition P: key = the entity's
 * key, value = its state record (opaque bytes here), NULL value (a
 * tombstone) = the entity was forgotten. Every record carries the header
 * "sbomd-instance" naming the instance that wrote it.
 *
 * This module knows the topic and its records only: preparing the topic
 * (check or create), producing one record on the engine's producer, and
 * reading a partition back from an offset up to its end.
 *
 * Threads: a reader belongs to one thread at a time. changelog_prepare
 * and changelog_produce may be called on any thread that may use the
 * client handle given (librdkafka handles are thread-safe).
 */
#ifndef SBOMD_SERVICE_CHANGELOG_H
#define SBOMD_SERVICE_CHANGELOG_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/kclient.h"

#define CHANGELOG_INSTANCE_HEADER "sbomd-instance"

/*
 * Checks changelog_topic against input_topic, creating it when missing
 * through the admin API on rk (any client handle; the engine's producer):
 * partitions = the input topic's, replication factor -1 (the broker's
 * default), cleanup.policy=compact; then waits until it is in the
 * metadata with a leader for every partition. Topics are looked up in
 * the all-topics metadata, which never auto-creates anything.
 *
 * 0 with *partitions = the input topic's partition count.
 * -ENOENT: the input topic does not exist.
 * -ECHRNG: the existing changelog's partition count differs (err names
 *          both topics and both counts).
 * -ETIMEDOUT: timeout_ms (which bounds the whole call) ran out, e.g.
 *          while the topic was being created.
 * -EOPNOTSUPP: the changelog is missing and the cluster cannot create it:
 *          its metadata names no broker as the controller (librdkafka's
 *          mock cluster, hence `sbomd dev-kafka`); err says how to make it.
 * -EACCES: not authorized; -EINVAL: the broker refused the topic (policy,
 *          replication factor); other negative errno: other failures.
 *
 * An existing changelog whose cleanup.policy is not exactly "compact" is
 * only warned about in the log (DescribeConfigs); when its config cannot
 * be read because the cluster cannot answer (no controller, as on the mock
 * cluster, or a broker without the API) that is logged at debug level,
 * other failures to read it at warning level.
 */
int changelog_prepare(rd_kafka_t *rk, const char *input_topic,
    const char *changelog_topic, int timeout_ms, int32_t *partitions,
    char *err, size_t errlen);

/*
 * Produces one changelog record on prod (the engine's producer), the
 * payload copied: key (klen > 0) to partition of topic, value NULL for a
 * tombstone (an empty non-NULL value is a record, not a tombstone),
 * header "sbomd-instance" = instance (required). msg_opaque comes back
 * in the delivery report. 0; -ENOBUFS when the producer's queue is full
 * (poll and retry); -EINVAL bad arguments; -EMSGSIZE too large; other
 * negative errno, with err naming the topic and partition.
 */
int changelog_produce(rd_kafka_t *prod, const char *topic, int32_t partition,
    const void *key, size_t klen, const void *value, size_t vlen,
    const char *instance, void *msg_opaque, char *err, size_t errlen);

typedef struct changelog_reader changelog_reader;

/*
 * A plain consumer of topic: no group, no offset commits, configured
 * from brokers and the user's consumer properties the way kafkaio does
 * (kclient_conf; what = "kafka.consumer_properties"), with these forced
 * over the user's: enable.partition.eof=true, enable.auto.commit=false,
 * enable.auto.offset.store=false, isolation.level=read_committed,
 * auto.offset.reset=earliest, allow.auto.create.topics=false.
 * 0, or -EINVAL with err naming a refused property.
 */
int changelog_reader_open(const char *brokers,
    const struct kclient_prop *props, size_t nprops, const char *topic,
    changelog_reader **out, char *err, size_t errlen);
void changelog_reader_close(changelog_reader *r);

/* One record as changelog_read hands it to its callback; the pointers
 * are valid during the callback only. */
struct changelog_record {
	int32_t partition;
	int64_t offset;
	const void *key;
	size_t klen;
	const void *value; /* NULL: a tombstone */
	size_t vlen;
	const char *instance; /* the sbomd-instance header, not NUL-
				 terminated; NULL when absent */
	size_t ilen;
};

/*
 * Reads partition p from offset `from` (>= 0; below the log start reads
 * from the log start) up to the partition's end as of the call's start,
 * or of the changelog_bounds call before it
 * (its high watermark; with read_committed, its last stable offset),
 * calling fn for each record in offset order. fn returns 0 to go on, or
 * a negative errno, which stops the read and is returned.
 *
 * *end is where the next read should start: the offset after the last
 * record fn accepted (`from` when none was; the offset of the record fn
 * refused when it refused one), and the end offset when the read
 * completed. Offsets may have gaps (compaction, transaction
 * markers); an empty partition (or from = the end) returns at once.
 *
 * 0 when the end was reached; -ETIMEDOUT when timeout_ms (the whole
 * call) ran out first; -EINTR when *stop (may be NULL) became non-zero;
 * -ENOENT when the topic or partition does not exist (deleted before or
 * while reading); -ERANGE when from is beyond the end (the topic was
 * recreated or truncated); other negative errno; err filled in each case
 * with the topic, partition and offset.
 */
int changelog_read(changelog_reader *r, int32_t p, int64_t from,
    int (*fn)(void *ctx, const struct changelog_record *rec), void *ctx,
    int64_t *end, volatile sig_atomic_t *stop, int timeout_ms, char *err,
    size_t errlen);

/*
 * Looks up the log start and end of the partitions parts[0..n) in one
 * request each (instead of two per partition in each read): the next
 * changelog_read of each of them reads up to that end, without asking
 * again, and a read or prefetch of a partition with nothing to read
 * ends at once. An assignment of 64 empty changelog partitions took
 * 128 round trips (0.8 s) before. Bounds of an earlier call not used
 * yet are forgotten (n = 0 only forgets them). The number of partitions
 * whose bounds
 * were found (those not found ask in their read), or a negative errno
 * with err when the request failed (then every read asks).
 */
int changelog_bounds(changelog_reader *r, const int32_t *parts, size_t n,
    int timeout_ms, char *err, size_t errlen);

/*
 * Starts fetching partition p from offset `from` in the background, so
 * that the changelog_read(r, p, from, ...) that follows finds records
 * waiting: a restore of several partitions fetches the next ones while
 * it writes one. A read of p from another offset, or closing the reader,
 * stops it. Each partition fetched holds up to the reader's
 * queued.max.messages.kbytes (16 MiB by default) of records; callers
 * keep a few ahead. 0, or a negative errno (the read then starts p
 * itself).
 */
int changelog_prefetch(changelog_reader *r, int32_t p, int64_t from);

#endif
