/*
 * clock: the service's clocks in milliseconds, and one timestamp format.
 * Wall time (CLOCK_REALTIME) is what due times, observed_at and outcomes
 * carry, since they outlive the process; monotonic time measures
 * durations and deadlines.
 */
#ifndef SBOMD_UTIL_CLOCK_H
#define SBOMD_UTIL_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
/* CLOCK_REALTIME ms from now, for pthread_cond_timedwait's deadline. */
struct timespec clock_realtime_in(int ms);
/* Sleeps ms milliseconds (a signal may end it sooner). */
void clock_sleep_ms(int ms);

/* Where the service reads time: the system's clocks, or a test's. */
struct clock_src {
	int64_t (*wall_ms)(void *arg);
	int64_t (*mono_ms)(void *arg);
	void *arg;
};
extern const struct clock_src clock_system;

/*
 * A wall clock watched against the monotonic one. Each reading returns
 * the wall time and how far the wall clock jumped since the previous
 * reading: its advance minus the monotonic clock's, when that differs by
 * CLOCK_JUMP_MS or more (a step by NTP, an operator, a resumed VM;
 * smaller differences are slewing and scheduling noise, reported as 0).
 * The engine moves its due times by the jump (tracker_shift_due), so
 * scheduling follows the monotonic clock while every time it keeps or
 * writes is wall time.
 */
#define CLOCK_JUMP_MS 1000
struct clock_watch {
	struct clock_src src;
	int64_t wall, mono; /* at the last reading */
	bool started;
};
void clock_watch_init(struct clock_watch *w, const struct clock_src *src);
/* The wall time now; *jump (may be NULL) gets the jump, 0 for none. */
int64_t clock_watch_now(struct clock_watch *w, int64_t *jump);

/* "2026-11-28T07:31:50.156Z" (UTC, ms); "-" for a negative time. */
void clock_format(int64_t ms, char *buf, size_t len);

#endif
