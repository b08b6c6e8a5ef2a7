/*
 * kafkaio: the service's two librdkafka clients and their plumbing: the
 * consumer (group membership, rebalances, stored and committed offsets,
 * pause/resume, lag statistics) and the producer (delivery reports
 * forwarded to the outbox), both configured from the sbomd configuration
 * with our defaults under the user's properties.
 *
 * Offsets: the engine notes each applied message (kio_note_offset); after
 * the batch is durable it calls kio_store_offsets, which stores offset + 1
 * per partition; auto-commit sends stored offsets to the group every
 * second. Partitions revoked meanwhile refuse the store: their new owner
 * reads from the last committed offset (at-least-once).
 *
 * Concurrency: engine thread only. librdkafka calls our callbacks on the
 * thread that polls: the engine thread (rd_kafka_poll on the producer,
 * rd_kafka_consume_batch_queue on the consumer), except the log callback,
 * which any librdkafka thread may call and which only logs.
 */
#ifndef SBOMD_SERVICE_KAFKAIO_H
#define SBOMD_SERVICE_KAFKAIO_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/config.h"
#include "service/publish.h"

typedef struct kio kio;

struct kio_hooks {
	/* A producer delivery report. */
	void (*delivered)(void *ctx, const rd_kafka_message_t *m);
	/* Rebalances, on the engine thread inside the consumer poll:
	 * partitions newly assigned (already assigned when called: their
	 * input is fetched once the hook returns), and partitions about to
	 * be revoked (still assigned: offsets stored in the hook are
	 * committed before they go). Either may be NULL. */
	void (*assigned)(void *ctx, const rd_kafka_topic_partition_list_t *p);
	void (*revoking)(void *ctx, const rd_kafka_topic_partition_list_t *p,
	    bool lost);	/* lost: the group session expired; nothing can
			 * be committed for them any more */
	void *ctx;
};

/*
 * Creates both clients; the consumer joins the group at kio_subscribe.
 * librdkafka writes a byte to wake_fd whenever either client has
 * something for us.
 * counters: the rebalance, lag and produce counters are kept there.
 * 0, or a negative errno with err filled (a refused property names it).
 */
int kio_open(const struct sbomd_config *cfg, int wake_fd,
    struct snapshot *counters, const struct kio_hooks *hooks, kio **out,
    char *err, size_t errlen);
/* Leaves the group and destroys both clients; undelivered messages are
 * purged (the outbox keeps them). Leaving the group is given up at
 * deadline_ms (clock_mono_ms), e.g. with the broker gone: the group then
 * notices after the session timeout. */
void kio_close(kio *k, int64_t deadline_ms);
/* Subscribes to kafka.input_topic: the consumer joins the group. Called
 * once the start can no longer be refused (a start that fails after it
 * would make the group rebalance for nothing). 0, or -EINVAL with err. */
int kio_subscribe(kio *k, char *err, size_t errlen);

rd_kafka_t *kio_producer(kio *k);
/* The group consumer (replaced by kio_consumer_renew). */
rd_kafka_t *kio_consumer(kio *k);
/* The producer's handle of state.changelog_topic (NULL: none), made on
 * the first call: call it only after the changelog topic is prepared
 * (changelog_prepare). Valid while the producer is (kio_txn_renew makes
 * a new one). */
rd_kafka_topic_t *kio_changelog_topic(kio *k);
/* At-least-once with a changelog: the changelog records' own producer
 * (linger 100 ms, lz4), which kio_changelog_topic's handle belongs to;
 * else NULL (they go through kio_producer). */
rd_kafka_t *kio_changelog_producer(kio *k);
rd_kafka_queue_t *kio_input(kio *k);
/* The input behind its end: the assigned partitions' high watermarks (as
 * the last fetches saw them) less the consumer's positions; computed at
 * most every 50 ms (no wait, no broker request). */
int64_t kio_input_lag(kio *k);

/* Serves the producer's delivery reports and errors (no wait). */
void kio_poll_producer(kio *k, int timeout_ms);

/* Remembers that m was applied (its offset + 1 is stored later). */
void kio_note_offset(kio *k, const rd_kafka_message_t *m);
/* Whether noted offsets wait for kio_store_offsets. */
bool kio_offsets_pending(const kio *k);
/* Stores the noted offsets; call only once their effects are durable. */
void kio_store_offsets(kio *k);
/* With a changelog, offsets wait for the broker too: kio_seal_offsets
 * ties the noted offsets to tag (the newest outbox sequence committed
 * with them), kio_release_offsets stores every sealed set whose tag is
 * below acked_below (the lowest unacknowledged sequence), in order. */
void kio_seal_offsets(kio *k, uint64_t tag);
void kio_release_offsets(kio *k, uint64_t acked_below);
/* A tag no kio_release_offsets releases: the offsets of a commit still
 * running in the background, given their tag by kio_retag_offsets when
 * it has ended. */
#define KIO_TAG_PENDING UINT64_MAX
void kio_retag_offsets(kio *k, uint64_t from, uint64_t to);
/* Forgets the sealed offsets of partition p (revoked before the broker
 * acknowledged what they depend on: the next owner reads again). */
void kio_forget_offsets(kio *k, int32_t p);
/* Commits the stored offsets, waiting for the answer until deadline_ms
 * (clock_mono_ms) at the latest (shutdown). */
void kio_commit(kio *k, int64_t deadline_ms);

/* While the store refuses commits: keeps the group membership and the
 * delivery reports alive, and hands back (seeks to) any input message
 * fetched meanwhile, so that nothing unapplied is skipped. */
void kio_hold_input(kio *k);

/* Pauses or resumes the assigned partitions (and those assigned later). */
void kio_set_paused(kio *k, bool paused);
bool kio_assigned(const kio *k);

/*
 * Exactly-once (kafka.delivery = "exactly-once"): one transactional
 * producer; every message is produced inside a transaction, and the input
 * offsets go with it (the consumer commits nothing itself).
 *   kio_txn_begin   0, or a negative errno with err;
 *   kio_txn_commit  sends the positions of the assignment (with the group
 *                   metadata: a zombie is fenced) and commits, retrying
 *                   what is retriable (w->tick between tries) until
 *                   w->stop is set. 0 committed;
 *                   -ECANCELED or -EINTR: aborted (what it held must be
 *                   undone: see kio_rewind); -EIO: fatal (kio_fatal).
 *                   -ENOTRECOVERABLE: the producer failed for good
 *                   (kio_txn_broken): renew it, then rewind.
 *   kio_txn_renew   a new producer with the same transactional id (its
 *                   initialisation fences the old one and aborts its
 *                   transaction), retried until w->stop.
 *   kio_rewind      seeks every assigned partition not in skip back to
 *                   its committed offset and forgets noted offsets.
 */
struct kio_txn_wait {
	volatile sig_atomic_t *stop; /* set: give up (abort) */
	void (*tick)(void *ctx);     /* called between retries */
	void *ctx;
};
bool kio_exactly_once(const kio *k);
int kio_txn_begin(kio *k, char *err, size_t errlen);
int kio_txn_commit(kio *k, const struct kio_txn_wait *w, char *err,
    size_t errlen);
/* Aborts the open transaction (errors are logged). */
void kio_txn_abort(kio *k);
bool kio_txn_broken(const kio *k);
int kio_txn_renew(kio *k, const struct kio_txn_wait *w, char *err,
    size_t errlen);
void kio_rewind(kio *k, const rd_kafka_topic_partition_list_t *skip);
/* The current assignment (NULL: none). */
const rd_kafka_topic_partition_list_t *kio_assignment(const kio *k);

/*
 * The group consumer's fatal errors (a static member fenced: after a long
 * broker outage librdkafka can rejoin under a new member id while a request
 * of the old one is still out, and the coordinator fences that one).
 * kio_consumer_failed notes it (from a consumer error message or the error
 * callback); the engine then calls kio_consumer_renew between batches: the
 * assignment is handed to the revoking hook as lost, the consumer closed
 * and a new one subscribed with the same configuration. Fenced again within
 * a minute of a replacement is fatal (kio_fatal): another live process
 * uses the same group.instance.id.
 */
void kio_consumer_failed(kio *k, const char *why);
bool kio_consumer_broken(const kio *k);
int kio_consumer_renew(kio *k, char *err, size_t errlen);

/* Shutdown: every transaction call (send offsets, commit, abort, a new
 * producer's init) is given at most what is left until deadline_ms
 * (monotonic), so a shutdown with the broker gone keeps its budget. */
void kio_set_deadline(kio *k, int64_t deadline_ms);
/* The deadline set (0: none); a transaction call that finds the stop flag
 * raised sets it to engine.shutdown_timeout from then. */
int64_t kio_deadline(const kio *k);

/* Whether librdkafka raised a fatal error; err gets its text. */
bool kio_fatal(const kio *k, char *err, size_t errlen);

#endif
