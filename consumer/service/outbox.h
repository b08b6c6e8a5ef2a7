/*
 * outbox: the durable outbox of `sbomd run`, in one place: its record
 * format, the in-memory queue of records not yet in Kafka, producing them
 * and taking their delivery reports.
 *
 * Life of a record: outbox_stage (made by the engine with an outcome or a
 * dead letter) -> outbox_batch/outbox_committed (written to the store in
 * the engine's group commit, given a sequence) -> outbox_produce (handed
 * to librdkafka) -> outbox_delivered (acknowledged; its deletion goes
 * into the next commit). A record is deleted only after Kafka has it, so
 * a crash at any point re-sends it (at-least-once).
 *
 * Concurrency: engine thread only (delivery reports arrive there, from
 * rd_kafka_poll on the producer).
 */
#ifndef SBOMD_SERVICE_OUTBOX_H
#define SBOMD_SERVICE_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/publish.h"
#include "store/store.h"

/*
 * Records (the store's outbox values), first byte the kind:
 *   'O' u16 keylen | key | value                 an outcome
 *   'D' u16 keylen | key | u16 errlen | error | u16 topiclen | topic |
 *       u32 partition | u64 offset | value       a dead letter
 *   'C' u32 partition | u16 keylen | key | value a changelog record for
 *       that partition of state.changelog_topic; an empty value is a
 *       tombstone (the entity was forgotten). The store holds a
 *       reference to the entry in its place (outbox_stage_entry), read
 *       back as the entry is then: a compacted changelog needs only the
 *       newest state of each key.
 * All integers big-endian; key, error and topic at most 65535 bytes.
 */
enum outbox_kind {
	OUTBOX_OUTCOME = 'O',
	OUTBOX_DEAD_LETTER = 'D',
	OUTBOX_CHANGELOG = 'C'
};

/* A record's fields, pointing into the record. */
struct outbox_msg {
	enum outbox_kind kind;
	const uint8_t *key;
	size_t klen;
	const uint8_t *value;
	size_t vlen;
	/* dead letters: why, and where the message came from */
	const char *error;
	size_t elen;
	const char *topic;
	size_t tlen;
	int32_t partition; /* and changelog records: where they go */
	int64_t offset;
};

/* A new record (malloc'd, *len bytes) of m; longer key, error or topic
 * strings are cut to 65535 bytes. */
uint8_t *outbox_record(const struct outbox_msg *m, size_t *len);
/* Reads rec into m; -EINVAL when it is not a well-formed record. */
int outbox_record_parse(const uint8_t *rec, size_t len, struct outbox_msg *m);

typedef struct outbox outbox;

struct outbox_topics {
	const char *outcomes;	  /* kafka.output_topic */
	const char *dead_letters; /* kafka.dead_letter_topic */
	const char *changelog;	  /* state.changelog_topic, "" = none */
	const char *instance;	  /* the sbomd-instance header of changelog
				   * records */
	/* Whether changelog records of partition p may go to Kafka now (p
	 * is ours and restored); NULL = always. */
	bool (*may_produce)(void *ctx, int32_t p);
	void *ctx;
};

outbox *outbox_new(const struct outbox_topics *topics,
    struct snapshot *counters);
void outbox_free(outbox *ob);

/* A record read back from the store at start-up (not yet delivered). */
void outbox_load(outbox *ob, uint64_t seq, const void *rec, size_t len);
/* A new record, owned by the outbox from now on; waits for the commit. */
void outbox_stage(outbox *ob, uint8_t *rec, size_t len);
/* The same for a changelog record of the entry (partition, key) that the
 * same commit writes: the store keeps a reference to the entry
 * (STORE_ENTRY_REF) instead of the record, which is that entry's record
 * (or a tombstone when the commit deletes it). */
void outbox_stage_entry(outbox *ob, uint8_t *rec, size_t len,
    int32_t partition, const struct tracker_key *key);

/* Takes back the n newest staged records (a commit that failed stages
 * them again when it is retried); the next outbox_batch holds every
 * staged record again (n = 0: only that, after a batch given up). */
void outbox_unstage(outbox *ob, size_t n);

/* Whether staged records or delivered-record deletions wait for a
 * commit. */
bool outbox_changes(const outbox *ob);
/* Fills b's outbox fields with what waits (valid until the next call):
 * the records staged and the deletions known now; what is staged or
 * delivered later, while b commits (in the background), is not in it
 * and does not change it. */
void outbox_batch(outbox *ob, struct store_batch *b);
/* The batch of outbox_batch was committed: its staged records join the
 * queue with the sequences the store gave them; later ones wait for the
 * next batch. */
void outbox_committed(outbox *ob);

/* Hands every queued record that librdkafka does not hold to it: 0 when
 * it took them all; -EAGAIN when its queue is full (stopped there, to go
 * on next time); -EIO when it refused some (e.g. their topic is gone: they
 * are tried again next time, the others went on). A record refused for
 * good (too large) is reduced or dropped at once, not counted as
 * refused (see outbox.c). A transactional outbox
 * produces only inside a transaction (-EAGAIN outside). changelog: the
 * producer's handle of the changelog topic (kio_changelog_topic), or NULL
 * to produce changelog records by the topic's name. */
int outbox_produce(outbox *ob, rd_kafka_t *prod, rd_kafka_topic_t *changelog);
/* The producer of changelog records when they have their own
 * (kio_changelog_producer; NULL: prod of outbox_produce). changelog, the
 * topic handle given to outbox_produce, must then be of it. */
void outbox_set_changelog_producer(outbox *ob, rd_kafka_t *cprod);
/* A delivery report (from the producer's dr_msg_cb). A record refused
 * for good (too large, invalid) is replaced by its smaller form (an
 * outcome without its SBOM, a dead letter without the message) or
 * dropped; see outbox.c. */
void outbox_delivered(outbox *ob, const rd_kafka_message_t *m);
/* Whether a record was replaced after its delivery report and waits for
 * outbox_produce (which does not wait for a commit then). */
bool outbox_resend_due(const outbox *ob);
/* Records held back (changelog records of partitions not ours until
 * now) may go: outbox_resend_due is true until the next outbox_produce,
 * so they do not wait for a commit. */
void outbox_produce_soon(outbox *ob);

/* Records not yet acknowledged by Kafka (committed or staged), of those
 * the changelog records, and their bytes (records as stored: key and
 * value plus a few bytes of framing). */
size_t outbox_live(const outbox *ob);
/* Of those, the ones that may go to Kafka now: all but the changelog
 * records held while their partition is not ours (a lost one). */
size_t outbox_sendable(const outbox *ob);
size_t outbox_live_changelog(const outbox *ob);
size_t outbox_live_changelog_bytes(const outbox *ob);

/* The sequence the store gave the newest committed record (0: none). */
uint64_t outbox_last_seq(const outbox *ob);
/* The lowest sequence not yet acknowledged (and not dropped), or
 * UINT64_MAX when every committed record is: everything committed below
 * it is in Kafka. */
uint64_t outbox_unacked_min(const outbox *ob);
/* Whether a committed record of that changelog partition waits for its
 * acknowledgement. */
bool outbox_changelog_pending(const outbox *ob, int32_t p);
/*
 * Drops the changelog records of partition p that are not in Kafka yet
 * (the partition is no longer ours, or they are stale): they are deleted
 * with the next commit as if delivered, without advancing a checkpoint.
 * Returns how many. A record librdkafka holds already may still arrive.
 */
size_t outbox_drop_changelog(outbox *ob, int32_t p);

/*
 * Changelog checkpoints: for each partition whose changelog records were
 * acknowledged since the last call, fn(ctx, p, next) with next = the
 * offset after the newest of them. Call when building a commit: the
 * deletions of those records go into the same one.
 */
void outbox_checkpoints(outbox *ob,
    void (*fn)(void *ctx, int32_t p, int64_t next), void *ctx);

/*
 * Exactly-once (kafka.delivery): the Kafka transaction is the commit.
 * New records never go to the store: outbox_take_staged queues the staged
 * ones at once, and they are produced between outbox_txn(ob, true) and
 * outbox_txn(ob, false). Records read back from the store (an earlier
 * at-least-once run) go out the same way and are deleted from the store
 * once delivered. outbox_reset forgets everything (an aborted
 * transaction: what it held is made again); read the store's records
 * back with outbox_load afterwards.
 */
void outbox_set_transactional(outbox *ob);
void outbox_txn(outbox *ob, bool open);
void outbox_take_staged(outbox *ob);
/* Queued records that may be produced now and are not (yet). */
size_t outbox_unsent(const outbox *ob);
/* Whether a produced record's delivery report is still to come. */
bool outbox_awaiting_reports(const outbox *ob);
void outbox_reset(outbox *ob);

#endif
