/*
 * log: the service's log lines on stderr, one per event, as JSON objects
 * or "key=value" text (log.format), filtered by log.level.
 *
 *   log_kv(LOG_INFO, "outcome", "id", id, "status", "RETRY_SCHEDULED",
 *       (char *)NULL);
 *
 * Fields are name/value string pairs ending with NULL. Repeated warnings
 * and errors (same message and same "error" field) within a second are
 * counted instead of printed; the next such line printed says how many
 * were suppressed ("repeated": N).
 *
 * Threads: any thread may log; a mutex keeps lines whole.
 */
#ifndef SBOMD_SERVICE_LOG_H
#define SBOMD_SERVICE_LOG_H

#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_JSON = 0, LOG_TEXT = 1 };

void log_setup(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);

/* One line: msg and name/value pairs, ending with a NULL name. */
void log_kv(enum log_level level, const char *msg, ...)
    __attribute__((sentinel));

/* Lines suppressed by the rate limit so far (for metrics). */
uint64_t log_suppressed(void);

#endif
