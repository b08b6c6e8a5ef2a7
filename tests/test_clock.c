/*
 * test_clock: time at the engine/tracker boundary. A test clock (struct
 * clock_src) drives clock_watch and tracker_clock_now, the calls the
 * engine reads its time through:
 * - the wall clock jumps 1 h back: a retry due in 5 minutes still fires
 *   5 minutes after it was scheduled, not 1 h 5 min later;
 * - it jumps 1 h forward: forget timers are not all expired at once, each
 *   fires when its own delay has passed; scans due in 5 minutes are not
 *   handed out at the jump;
 * - differences under CLOCK_JUMP_MS are not jumps; the first reading is
 *   none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/tracker.h"
#include "util/clock.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0 1700000000000LL

static const char *IMG_A =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *IMG_B =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* The test's clocks: advance() moves both, jump() the wall one alone. */
struct fake {
	int64_t wall, mono;
};

static int64_t
fake_wall(void *arg)
{
	return ((struct fake *)arg)->wall;
}

static int64_t
fake_mono(void *arg)
{
	return ((struct fake *)arg)->mono;
}

static void
advance(struct fake *f, int64_t ms)
{
	f->wall += ms;
	f->mono += ms;
}

static tracker *
new_tracker(void)
{
	struct tracker_config c;
	tracker_config_defaults(&c);
	c.retry.base_ms = 5 * MIN;
	c.retry.max_ms = 60 * MIN;
	c.retry.jitter = 0;
	c.forget_after_ms = 30 * MIN;
	return tracker_new(&c);
}

static void
apply(tracker *t, enum event_type type, const char *id, int64_t now)
{
	const char *tags[1] = {"repo/app:1"};
	struct tracker_event e = {.type = type, .kind = ENTITY_IMAGE, .id = id,
	    .source = "node-1", .tags = tags, .ntags = type == EVENT_SET,
	    .observed_at = now};
	struct tracker_outcome out;
	char err[256];
	assert_true(tracker_apply(t, &e, now, &out, err, sizeof(err)) <=
	    APPLY_UPDATED);
}

static bool
present(tracker *t, const char *id)
{
	struct tracker_key k;
	char err[128];
	assert_int_equal(tracker_key_from_id(ENTITY_IMAGE, id, &k, err,
	    sizeof(err)), 0);
	return tracker_find(t, &k) != TRACKER_NONE;
}

/* Reads the clock as the engine does, once a minute from `from` to `to`
 * (fake minutes), handing out what is due: the minute the first job came
 * (-1 for none). */
static int64_t
run_until(tracker *t, struct clock_watch *w, struct fake *f, int from,
    int to)
{
	for (int m = from; m <= to; m++) {
		int64_t now = tracker_clock_now(t, w, NULL);
		struct tracker_job job;
		if (tracker_pop_due(t, now, &job))
			return m;
		advance(f, MIN);
	}
	return -1;
}

static void
test_jump_back_keeps_due_times(void **state)
{
	(void)state;
	struct fake f = {T0, 1000};
	struct clock_src src = {fake_wall, fake_mono, &f};
	struct clock_watch w;
	clock_watch_init(&w, &src);
	tracker *t = new_tracker();

	int64_t now = tracker_clock_now(t, &w, NULL);
	apply(t, EVENT_SET, IMG_A, now);
	struct tracker_job job;
	assert_true(tracker_pop_due(t, now, &job));
	struct tracker_result fail = {false, ERROR_RETRYABLE, "not pulled", 0};
	struct tracker_outcome out;
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &fail,
	    now, &out), 0);
	assert_int_equal(out.next_attempt_at, T0 + 5 * MIN); /* minute 5 */

	advance(&f, MIN);
	f.wall -= HOUR; /* minute 1: the wall clock goes back 1 h */
	int64_t jump;
	now = tracker_clock_now(t, &w, &jump);
	assert_int_equal(jump, -HOUR);
	assert_int_equal(now, T0 + MIN - HOUR);
	/* due at minute 5 of the monotonic clock, not 1 h later */
	assert_int_equal(run_until(t, &w, &f, 1, 80), 5);
	tracker_free(t);
}

static void
test_jump_forward_expires_nothing_early(void **state)
{
	(void)state;
	struct fake f = {T0, 1000};
	struct clock_src src = {fake_wall, fake_mono, &f};
	struct clock_watch w;
	clock_watch_init(&w, &src);
	tracker *t = new_tracker();

	/* A unreferenced at minute 0 (forgotten at 30), B at 20 (at 50) */
	int64_t now = tracker_clock_now(t, &w, NULL);
	apply(t, EVENT_SET, IMG_A, now);
	struct tracker_job job;
	struct tracker_outcome out;
	struct tracker_result ok = {true, ERROR_RETRYABLE, NULL, 0};
	assert_true(tracker_pop_due(t, now, &job));
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &ok, now,
	    &out), 0);
	apply(t, EVENT_UNSET, IMG_A, now);
	advance(&f, 20 * MIN);
	now = tracker_clock_now(t, &w, NULL);
	apply(t, EVENT_SET, IMG_B, now);
	assert_true(tracker_pop_due(t, now, &job));
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &ok, now,
	    &out), 0);
	apply(t, EVENT_UNSET, IMG_B, now);

	advance(&f, 5 * MIN);
	f.wall += HOUR; /* minute 25: the wall clock goes 1 h forward */
	int64_t jump;
	now = tracker_clock_now(t, &w, &jump);
	assert_int_equal(jump, HOUR);
	assert_false(tracker_pop_due(t, now, &job));
	assert_true(present(t, IMG_A)); /* not expired by the jump */
	assert_true(present(t, IMG_B));
	advance(&f, 5 * MIN); /* minute 30: A's timer */
	now = tracker_clock_now(t, &w, NULL);
	assert_false(tracker_pop_due(t, now, &job));
	assert_false(present(t, IMG_A));
	assert_true(present(t, IMG_B));
	advance(&f, 19 * MIN); /* minute 49: B still there */
	now = tracker_clock_now(t, &w, NULL);
	assert_false(tracker_pop_due(t, now, &job));
	assert_true(present(t, IMG_B));
	advance(&f, MIN); /* minute 50 */
	now = tracker_clock_now(t, &w, NULL);
	assert_false(tracker_pop_due(t, now, &job));
	assert_false(present(t, IMG_B));
	tracker_free(t);
}

static void
test_jump_forward_does_not_advance_scans(void **state)
{
	(void)state;
	struct fake f = {T0, 1000};
	struct clock_src src = {fake_wall, fake_mono, &f};
	struct clock_watch w;
	clock_watch_init(&w, &src);
	tracker *t = new_tracker();
	int64_t now = tracker_clock_now(t, &w, NULL);
	apply(t, EVENT_SET, IMG_A, now);
	struct tracker_job job;
	struct tracker_outcome out;
	struct tracker_result fail = {false, ERROR_RETRYABLE, "not pulled", 0};
	assert_true(tracker_pop_due(t, now, &job));
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &fail,
	    now, &out), 0);
	advance(&f, MIN);
	f.wall += HOUR;
	assert_int_equal(run_until(t, &w, &f, 1, 10), 5);
	tracker_free(t);
}

static void
test_small_differences_are_not_jumps(void **state)
{
	(void)state;
	struct fake f = {T0, 1000};
	struct clock_src src = {fake_wall, fake_mono, &f};
	struct clock_watch w;
	clock_watch_init(&w, &src);
	int64_t jump = 1;
	assert_int_equal(clock_watch_now(&w, &jump), T0);
	assert_int_equal(jump, 0); /* the first reading */
	advance(&f, 500);
	f.wall += CLOCK_JUMP_MS - 1; /* slewing, scheduling noise */
	clock_watch_now(&w, &jump);
	assert_int_equal(jump, 0);
	f.wall -= CLOCK_JUMP_MS - 1;
	clock_watch_now(&w, &jump);
	assert_int_equal(jump, 0);
	f.wall -= CLOCK_JUMP_MS;
	assert_int_equal(clock_watch_now(&w, &jump), f.wall);
	assert_int_equal(jump, -CLOCK_JUMP_MS);
	/* the system clocks: no jump between two readings */
	clock_watch_init(&w, NULL);
	clock_watch_now(&w, NULL);
	clock_watch_now(&w, &jump);
	assert_int_equal(jump, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jump_back_keeps_due_times),
		cmocka_unit_test(test_jump_forward_expires_nothing_early),
		cmocka_unit_test(test_jump_forward_does_not_advance_scans),
		cmocka_unit_test(test_small_differences_are_not_jumps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
