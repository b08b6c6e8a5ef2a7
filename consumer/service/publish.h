/*
 * publish: what the engine thread shows the HTTP thread. The engine owns
 * every piece of state; it copies counters and gauges into a snapshot
 * (under a mutex, at most a few times a second) and answers on-demand
 * questions (one entity, the status page's lists) posted as requests that
 * it serves in its own loop. The HTTP thread never reads engine state.
 *
 * Concurrency: mu guards snap, the request list and every request's
 * done/abandoned/body fields. A request belongs to the HTTP thread until
 * queued; after that, whoever sees the other side finished frees it: the
 * HTTP thread after `done`, or the engine after `abandoned` (a timed-out
 * HTTP wait). See publish.c.
 */
#ifndef SBOMD_SERVICE_PUBLISH_H
#define SBOMD_SERVICE_PUBLISH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/vocab.h"

#define HIST_BUCKETS 14
/* Upper bounds, seconds, of the duration histograms' buckets (+Inf last). */
extern const double hist_bounds[HIST_BUCKETS];

struct hist {
	uint64_t counts[HIST_BUCKETS + 1]; /* per bucket, the last is +Inf */
	double sum;
	uint64_t n;
};

void hist_observe(struct hist *h, double seconds);

/* Event results as the metrics name them. */
enum ev_result {
	EVR_APPLIED = 0,      /* new or changed */
	EVR_DEDUPLICATED,
	EVR_STALE,
	EVR_UNKNOWN_ENTITY,   /* UNSET of an entity never seen */
	EVR_DEAD_LETTERED,
	EVR_COUNT
};
/* Rows of the events counter: the event types (util/vocab.h), then the
 * messages that did not decode. */
#define EVENTS_UNDECODABLE EVENT_TYPE_COUNT
#define EVENT_ROWS (EVENT_TYPE_COUNT + 1)

#define PUB_MAX_PARTITIONS 256

struct part_lag {
	int32_t partition;
	int64_t lag;	   /* -1 unknown */
	int64_t committed; /* -1 none */
	int64_t high;	   /* high watermark, -1 unknown */
};

struct snapshot {
	int64_t taken_mono_ms; /* the engine loop was alive then */
	bool recovered;
	bool assigned;	       /* partitions assigned */
	bool paused;
	uint64_t events[EVENT_ROWS][EVR_COUNT];
	uint64_t scans_started;
	uint64_t scans_finished[3]; /* success, retryable, permanent */
	uint64_t outcomes[OUTCOME_STATUS_COUNT]; /* written, by status */
	uint64_t delivered;	      /* outcomes and dead letters in Kafka */
	uint64_t changelog_delivered; /* changelog records in Kafka */
	uint64_t produce_errors;
	uint64_t outbox_reduced; /* refused for good, sent without the SBOM
				  * (dead letters: without the message) */
	uint64_t outbox_dropped; /* refused for good even so: dropped */
	uint64_t rebalances;
	uint64_t consumer_renewals; /* consumers replaced after a fatal error */
	uint64_t commits, commit_failures;
	uint64_t log_suppressed;
	struct hist scan_duration;
	struct hist commit_duration;
	uint64_t by_state[ENTRY_STATE_COUNT];
	uint64_t heap;
	uint64_t max_entities;	 /* state.max_entities */
	bool at_max_entities;	 /* input paused for it */
	uint64_t clock_clamped;	 /* events with observed_at clamped to now */
	uint64_t sources_pruned; /* UNSET source records dropped for room */
	uint64_t clock_jumps;	 /* wall clock jumps the due times followed */
	int64_t next_due_ms;	 /* -1 none, else ms from now (may be < 0) */
	int64_t overdue_ms;	 /* how late the soonest due entry is, >= 0 */
	uint64_t outbox;	/* outcomes and dead letters unsent */
	uint64_t outbox_changelog; /* changelog records unsent */
	uint64_t outbox_changelog_bytes; /* and their bytes */
	uint64_t workers_busy;
	uint64_t workers;
	uint64_t in_pool;
	size_t nlags;
	struct part_lag lags[PUB_MAX_PARTITIONS];
	/* scale-out (state.changelog_topic) */
	bool changelog;		    /* a changelog is configured */
	uint64_t partitions_owned;  /* input partitions assigned and restored */
	uint64_t restoring;	    /* partitions being restored, or waiting
				       to be in the current assignment */
	uint64_t restored_records;  /* changelog records replayed */
	uint64_t bad_records;	    /* changelog records that did not decode */
	uint64_t released;	    /* entities released on revoke */
	/* the changelog cannot be written (deleted or recreated while
	 * running): its records wait in the outbox; "" = fine */
	char changelog_error[256];
	/* the last state commit failed and is retried (e.g. a full disk);
	 * "" = commits go through */
	char commit_error[256];
	/* kafka.delivery = "exactly-once" */
	bool exactly_once;
	uint64_t txn_commits;	    /* transactions committed */
	uint64_t txn_aborts;	    /* aborted: state rewound */
	size_t nckpts;
	struct { int32_t partition; int64_t next; bool owned; }
	    ckpts[PUB_MAX_PARTITIONS]; /* per partition: checkpoint */
	char topic[256];
};

enum pub_req_kind { PUB_REQ_ENTITY = 0, PUB_REQ_STATUS = 1 };

struct pub_req {
	enum pub_req_kind kind;
	char id[300];
	/* PUB_REQ_STATUS: the query's limit and after (views.h), present or
	 * not; longer ones are refused before they get here */
	char limit[24], after[328];
	bool has_limit, has_after;
	struct pub_req *next;
	bool done, abandoned;
	int status;  /* HTTP status */
	bool plain;  /* the body is text/plain (an error), not the usual type */
	char *body;  /* malloc'd, by the engine */
	size_t len;
};

struct publish {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct snapshot snap;
	struct pub_req *reqs; /* queued, newest first */
	int wake_fd;	      /* written to wake the engine */
};

/* Engine side. */
void publish_init(struct publish *p);
void publish_fini(struct publish *p);
/* Makes s the snapshot the HTTP thread sees. */
void publish_put(struct publish *p, const struct snapshot *s);
/* Takes the queued requests (a list through ->next); answer each, then
 * hand it back with publish_answered. */
struct pub_req *publish_take_requests(struct publish *p);
/* q's body and status are set: wakes its HTTP request, or frees q when
 * that request gave up waiting. */
void publish_answered(struct publish *p, struct pub_req *q);
/* Frees requests still queued (shutdown, after the HTTP thread ended). */
void publish_drop_requests(struct publish *p);

#endif
