/*
 * clock: see clock.h. Thread-safe (gmtime_r).
 */
#include "util/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t
ms_of(clockid_t id, int64_t div)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * (1000000000 / div) + ts.tv_nsec / div;
}

int64_t
clock_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME, 1000000);
}

int64_t
clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC, 1000000);
}

int64_t
clock_mono_us(void)
{
	return ms_of(CLOCK_MONOTONIC, 1000);
}

struct timespec
clock_realtime_in(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void
clock_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t
sys_wall(void *arg)
{
	(void)arg;
	return clock_wall_ms();
}

static int64_t
sys_mono(void *arg)
{
	(void)arg;
	return clock_mono_ms();
}

const struct clock_src clock_system = { sys_wall, sys_mono, NULL };

void
clock_watch_init(struct clock_watch *w, const struct clock_src *src)
{
	w->src = src != NULL ? *src : clock_system;
	w->started = false;
	w->wall = w->mono = 0;
}

int64_t
clock_watch_now(struct clock_watch *w, int64_t *jump)
{
	int64_t wall = w->src.wall_ms(w->src.arg);
	int64_t mono = w->src.mono_ms(w->src.arg);
	int64_t d = 0;
	if (w->started) {
		d = (wall - w->wall) - (mono - w->mono);
		if (d > -CLOCK_JUMP_MS && d < CLOCK_JUMP_MS)
			d = 0;
	}
	w->wall = wall;
	w->mono = mono;
	w->started = true;
	if (jump != NULL)
		*jump = d;
	return wall;
}

void
clock_format(int64_t ms, char *buf, size_t len)
{
	if (ms < 0) {
		snprintf(buf, len, "-");
		return;
	}
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
