/*
 * ingest: one input batch. Takes what the consumer queue holds (up to
 * engine.batch_max messages, serving rebalance and statistics callbacks
 * on the way), decodes each message into a tracker event whose strings
 * live in the batch arena, and applies the decoded ones to the tracker in
 * one tracker_apply_batch call (prefetching; same result as applying them
 * in order). Undecodable messages, and events the tracker refuses as
 * invalid, become dead letters; CANCELLED outcomes are emitted and the
 * scans they end are aborted. Every message's offset is noted, to be
 * stored after the next commit. Engine thread only.
 */
#include <errno.h>
#include <stdio.h>

#include "service/engine_int.h"
#include "service/log.h"
#include "util/errbuf.h"

/* Decodes m into tev (strings in the batch arena); 0, or a negative errno
 * with err filled. */
static int
decode(engine *e, const rd_kafka_message_t *m, struct tracker_event *tev,
    char *err, size_t errlen)
{
	struct wire_event *ev = e->ev;
	struct arena *a = &e->batch;
	if (m->payload == NULL || m->len == 0) {
		errbuf_set(err, errlen, "empty message");
		return -EINVAL;
	}
	int rc = wire_event_decode(m->payload, m->len, &e->wcfg, ev, NULL, err,
	    errlen);
	if (rc != 0)
		return rc;
	tev->type = ev->type;
	tev->kind = ev->kind;
	tev->id = arena_strndup(a, ev->id.ptr, ev->id.len);
	tev->source = arena_strndup(a, ev->source.ptr, ev->source.len);
	const char **tags = NULL, **digs = NULL;
	if (ev->ntags) {
		tags = arena_alloc(a, ev->ntags * sizeof(*tags));
		for (size_t i = 0; i < ev->ntags; i++)
			tags[i] = arena_strndup(a, ev->repo_tags[i].ptr,
			    ev->repo_tags[i].len);
	}
	if (ev->ndigests) {
		digs = arena_alloc(a, ev->ndigests * sizeof(*digs));
		for (size_t i = 0; i < ev->ndigests; i++)
			digs[i] = arena_strndup(a, ev->repo_digests[i].ptr,
			    ev->repo_digests[i].len);
	}
	tev->tags = tags;
	tev->ntags = ev->ntags;
	tev->digests = digs;
	tev->ndigests = ev->ndigests;
	tev->observed_at = ev->observed_at;
	tev->partition = m->partition;
	return 0;
}

/* What the metrics call each apply result. */
static const enum ev_result result_row[APPLY_RESULT_COUNT] = {
	[APPLY_NEW] = EVR_APPLIED,
	[APPLY_UPDATED] = EVR_APPLIED,
	[APPLY_DEDUP] = EVR_DEDUPLICATED,
	[APPLY_STALE] = EVR_STALE,
	[APPLY_UNKNOWN] = EVR_UNKNOWN_ENTITY,
	[APPLY_INVALID] = EVR_DEAD_LETTERED,
};

static void
apply(engine *e, size_t ni, int64_t now)
{
	tracker_apply_batch(e->t, e->items, ni, now);
	for (size_t i = 0; i < ni; i++) {
		struct tracker_batch_item *it = &e->items[i];
		e->snap->events[it->ev->type][result_row[it->result]]++;
		if (it->result == APPLY_INVALID) {
			outcomes_dead_letter(e, e->msgs[e->item_msg[i]],
			    it->err);
			continue;
		}
		if (it->out.status == OUTCOME_NONE)
			continue;
		if (it->out.abort_scan)
			scans_abort(e, it->out.handle);
		outcomes_emit(e, &it->out, NULL, now);
	}
}

size_t
ingest_batch(engine *e, int64_t now)
{
	size_t max = (size_t)e->cfg->engine.batch_max, n = 0, ni = 0;
	char err[512];

	ssize_t got = rd_kafka_consume_batch_queue(kio_input(e->k), 0, e->msgs,
	    max);
	size_t taken = got > 0 ? (size_t)got : 0;
	for (size_t k = 0; k < taken; k++) {
		rd_kafka_message_t *m = e->msgs[k];
		if (m->err) {
			if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
				char why[512];
				rd_kafka_fatal_error(kio_consumer(e->k), why,
				    sizeof(why));
				kio_consumer_failed(e->k, why);
			} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_kv(LOG_WARN, "consumer", "error",
				    rd_kafka_message_errstr(m), (char *)NULL);
			rd_kafka_message_destroy(m);
			continue;
		}
		e->msgs[n] = m;
		kio_note_offset(e->k, m);
		if (decode(e, m, &e->tev[ni], err, sizeof(err)) != 0) {
			e->snap->events[EVENTS_UNDECODABLE][EVR_DEAD_LETTERED]++;
			outcomes_dead_letter(e, m, err);
		} else {
			e->items[ni].ev = &e->tev[ni];
			e->item_msg[ni] = n;
			ni++;
		}
		n++;
	}
	if (ni > 0)
		apply(e, ni, now);
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(e->msgs[i]);
	arena_reset(&e->batch);
	return n;
}
