/*
 * clock: the service's clocks in milliseconds, and one timestamp format.
 * Wall time (CLOCK_REALTIME) is what due times, observed_at and outcomes
 * carry, since they outlive the process; monotonic time measures
 * durations and deadlines.
 */
#ifndef SBOMD_UTIL_CLOCK_H
#define SBOMD_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);

/* "2026-11-28T07:31:50.156Z" (UTC, ms); "-" for a negative time. */
void clock_format(int64_t ms, char *buf, size_t len);

#endif
