/*
 * txn: the engine's commit in exactly-once mode (kafka.delivery =
 * "exactly-once"; docs/architecture.md "Exactly-once").
 *
 * The Kafka transaction is the commit. One commit:
 *
 *   1. the tracker's dirty entries are encoded and staged as changelog
 *      records (ownership.c), next to the outcomes and dead letters made
 *      since the last commit;
 *   2. one transaction: every record produced, the positions of the
 *      assignment sent as the group's offsets (send_offsets_to_transaction
 *      with the consumer group metadata), committed;
 *   3. then LMDB: the same entries and the changelog checkpoints the
 *      delivery reports gave, in one write transaction.
 *
 * A crash between 2 and 3 leaves LMDB behind the changelog; the
 * partition's restore replays our own records from the checkpoint too (in
 * this mode every record past it is applied). Outcomes, changelog and
 * offsets are never out of step, so a read_committed consumer of the
 * outcome topic sees each outcome once, whoever owns the partition next.
 *
 * An aborted transaction (an abortable error, or the group generation
 * moved on: a zombie is fenced) leaves memory ahead of what Kafka has:
 * every partition is then rewound (own_rewind): its entities dropped and
 * restored from LMDB and the changelog, its input read again from the
 * committed offset. The scans of the aborted work run again with the same
 * attempt numbers, so nothing is missing and nothing doubles.
 *
 * Engine thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/engine_int.h"
#include "service/log.h"
#include "util/clock.h"
#include "util/errbuf.h"

#define REPORT_WAIT_MS 10000

/* While the broker is away the commit is retried: /healthz and /metrics
 * go on showing a live engine that waits. */
static void
tick(void *ctx)
{
	engine_publish(ctx);
}

/* Produces everything the outbox holds inside one transaction and commits
 * it: 0, -ECANCELED/-EINTR aborted (a producer that failed for good is
 * replaced first), -EIO fatal. */
static int
run_transaction(engine *e, char *err, size_t errlen)
{
	kio *k = e->k;
	struct kio_txn_wait w = { e->stop, tick, e };
	int rc = kio_txn_begin(k, err, errlen);
	if (rc == 0) {
		outbox_txn(e->ob, true);
		int prc;
		while ((prc = outbox_produce(e->ob, kio_producer(k),
			    kio_changelog_topic(k))) == -EAGAIN) {
			/* librdkafka's queue is full: let it drain */
			kio_poll_producer(k, 10);
			if (kio_fatal(k, err, errlen) || kio_txn_broken(k))
				break;
		}
		outbox_txn(e->ob, false);
		if (prc == -EIO) {
			/* A record was refused (its topic is gone): the
			 * transaction cannot hold the whole batch. */
			kio_txn_abort(k);
			snprintf(e->own.fatal, sizeof(e->own.fatal),
			    "exactly-once: a record of the batch was refused "
			    "(%s); stopping with the state of the last "
			    "transaction", e->snap->changelog_error[0] ?
			    e->snap->changelog_error : "see the log");
			return -EIO;
		}
		rc = kio_txn_commit(k, &w, err, errlen);
	} else if (rc == -EAGAIN) {
		rc = -ECANCELED;
	}
	if (kio_txn_broken(k)) {
		/* A new producer; its initialisation aborts what the old
		 * one had open. */
		char why[512];
		int rrc = kio_txn_renew(k, &w, why, sizeof(why));
		if (rrc != 0) {
			errbuf_set(err, errlen, "%s", why);
			return rrc;
		}
		return -ECANCELED;
	}
	/* The delivery reports (served by the commit's flush, and here):
	 * records retired, changelog checkpoints noted. */
	int64_t deadline = clock_mono_ms() + REPORT_WAIT_MS;
	do
		kio_poll_producer(k, rc == 0 && outbox_awaiting_reports(e->ob) ?
		    10 : 0);
	while (rc == 0 && outbox_awaiting_reports(e->ob) &&
	    clock_mono_ms() < deadline);
	return rc;
}

int
txn_commit(engine *e, char *err, size_t errlen)
{
	struct txn_state *x = &e->txn;
	if (!x->kafka_done) {
		if (tracker_dirty_count(e->t) == 0 &&
		    !kio_offsets_pending(e->k) &&
		    outbox_unsent(e->ob) == 0 && !outbox_changes(e->ob))
			return 0;
		x->nentries = store_collect_dirty(e->t, &e->dirty);
		own_stage_changes(e, e->dirty.entries, x->nentries);
		outbox_take_staged(e->ob);
		if (outbox_unsent(e->ob) > 0 || kio_offsets_pending(e->k)) {
			int rc = run_transaction(e, err, errlen);
			if (rc == -ECANCELED || (rc == -EINTR && !*e->stop)) {
				e->snap->txn_aborts++;
				log_kv(LOG_WARN, "transaction aborted; "
				    "rewinding to what Kafka has", "error", err,
				    (char *)NULL);
				own_rewind(e, NULL);
				return 0;
			}
			if (rc != 0)
				return rc;
			e->snap->txn_commits++;
		}
		x->kafka_done = true;
	}
	/* LMDB follows: the entries Kafka has now, their checkpoints, the
	 * deletion of delivered records an earlier at-least-once run had
	 * stored. Retried alone while the store refuses. */
	struct store_batch b = { 0 };
	b.entries = e->dirty.entries;
	b.nentries = x->nentries;
	outbox_batch(e->ob, &b);
	own_commit_meta(e, &b);
	int rc = store_commit(e->st, &b, err, errlen);
	if (rc != 0)
		return rc;
	tracker_clear_dirty(e->t);
	outbox_committed(e->ob);
	own_committed(e);
	x->kafka_done = false;
	x->nentries = 0;
	return 0;
}
