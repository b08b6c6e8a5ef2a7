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
 * All integers big-endian; key, error and topic at most 65535 bytes.
 */
enum outbox_kind { OUTBOX_OUTCOME = 'O', OUTBOX_DEAD_LETTER = 'D' };

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
	int32_t partition;
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
};

outbox *outbox_new(const struct outbox_topics *topics,
    struct snapshot *counters);
void outbox_free(outbox *ob);

/* A record read back from the store at start-up (not yet delivered). */
void outbox_load(outbox *ob, uint64_t seq, const void *rec, size_t len);
/* A new record, owned by the outbox from now on; waits for the commit. */
void outbox_stage(outbox *ob, uint8_t *rec, size_t len);

/* Whether staged records or delivered-record deletions wait for a
 * commit. */
bool outbox_changes(const outbox *ob);
/* Fills b's outbox fields with what waits (valid until the next call). */
void outbox_batch(outbox *ob, struct store_batch *b);
/* The batch of outbox_batch was committed: staged records join the queue
 * with the sequences the store gave them. */
void outbox_committed(outbox *ob);

/* Hands every queued record that librdkafka does not hold to it; stops at
 * the first refusal (queue full), to go on next time. */
void outbox_produce(outbox *ob, rd_kafka_t *prod);
/* A delivery report (from the producer's dr_msg_cb). */
void outbox_delivered(outbox *ob, const rd_kafka_message_t *m);

/* Records not yet acknowledged by Kafka (committed or staged). */
size_t outbox_live(const outbox *ob);

#endif
