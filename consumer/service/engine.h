/*
 * engine: `sbomd run`'s loop. Wires Kafka (input and output topics),
 * the wire codec, the tracker, the durable store and the scan pool
 * together as DESIGN.md's data flow describes; see engine.c.
 */
#ifndef SBOMD_SERVICE_ENGINE_H
#define SBOMD_SERVICE_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "service/config.h"

/* Counters since start; read by the engine thread's own publishers. */
struct engine_stats {
	uint64_t events;	     /* messages consumed */
	uint64_t applied[8];	     /* by enum apply_result */
	uint64_t dead_lettered;	     /* undecodable or invalid events */
	uint64_t scans_started;
	uint64_t scans_finished[2];  /* [0] ok, [1] failed */
	uint64_t outcomes[4];	     /* by enum outcome_status */
	uint64_t delivered;	     /* outbox items in Kafka */
	uint64_t produce_errors;
	uint64_t commits;
	uint64_t commit_failures;
	uint64_t rebalances;
	uint64_t paused;	     /* times input was paused */
};

/*
 * Runs the service until *stop becomes non-zero (SIGTERM/SIGINT), then
 * drains and returns 0; or returns a negative errno with err filled when
 * it cannot start (state directory, Kafka configuration) or must stop
 * (a fatal producer error, a commit that keeps failing at shutdown).
 */
int engine_run(const struct sbomd_config *cfg, volatile sig_atomic_t *stop,
    char *err, size_t errlen);

#endif
