/*
 * engine: `sbomd run`'s loop. Wires Kafka (input and output topics),
 * the wire codec, the tracker, the durable store and the scan pool
 * together as docs/architecture.md "Data flow and threads" describes;
 * see engine.c. Its counters and gauges are publish.h's snapshot.
 */
#ifndef SBOMD_SERVICE_ENGINE_H
#define SBOMD_SERVICE_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "service/config.h"

/*
 * Runs the service until *stop becomes non-zero (SIGTERM/SIGINT), then
 * drains and returns 0; or returns a negative errno with err filled when
 * it cannot start (state directory, Kafka configuration) or must stop
 * (a fatal producer error, a commit that keeps failing at shutdown).
 */
struct store_options;
/* The options the service opens state.dir with (tests check that its
 * commits are durable with the same options). */
void engine_store_options(const struct sbomd_config *cfg,
    struct store_options *so);

int engine_run(const struct sbomd_config *cfg, volatile sig_atomic_t *stop,
    char *err, size_t errlen);

#endif
