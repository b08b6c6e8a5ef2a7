/*
 * test_tracker: the state machine of tracker.h, scenario by scenario, with
 * tracker_check() after every operation, and the bad inputs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/tracker.h"

#define MIN (60 * 1000LL)
#define T0 1700000000000LL

static const char *IMG_A =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *IMG_B =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static struct tracker_config
test_config(void)
{
	struct tracker_config c;
	tracker_config_defaults(&c);
	c.retry.base_ms = 5 * MIN;
	c.retry.max_ms = 60 * MIN;
	c.retry.multiplier = 2;
	c.retry.jitter = 0;
	c.retry.max_attempts = 0;
	c.retry.failed_rescan_after_ms = 0;
	c.rescan_after_ms = 0;
	c.forget_after_ms = 30 * MIN;
	return c;
}

static void
check(tracker *t)
{
	char err[256] = "";
	int rc = tracker_check(t, err, sizeof(err));
	if (rc != 0)
		fail_msg("tracker_check: %s", err);
}

static enum apply_result
ev(tracker *t, enum event_type type, enum entity_kind kind, const char *id,
    const char *source, const char *tag, int64_t observed, int64_t now,
    struct tracker_outcome *out)
{
	struct tracker_outcome scratch;
	const char *tags[1] = {tag};
	struct tracker_event e = {
		.type = type, .kind = kind, .id = id, .source = source,
		.tags = tags, .ntags = tag ? 1 : 0, .observed_at = observed,
	};
	char err[256];
	enum apply_result r = tracker_apply(t, &e, now, out ? out : &scratch,
	    err, sizeof(err));
	check(t);
	return r;
}

static enum apply_result
set_img(tracker *t, const char *id, const char *src, int64_t now)
{
	return ev(t, EVENT_SET, ENTITY_IMAGE, id, src, "repo/app:1", now, now,
	    NULL);
}

static struct tracker_info
info_of(tracker *t, enum entity_kind kind, const char *id)
{
	struct tracker_key k;
	struct tracker_info info;
	char err[128];
	assert_int_equal(tracker_key_from_id(kind, id, &k, err, sizeof(err)), 0);
	uint32_t h = tracker_find(t, &k);
	assert_int_not_equal(h, TRACKER_NONE);
	assert_int_equal(tracker_info_get(t, h, &info), 0);
	return info;
}

static bool
present(tracker *t, enum entity_kind kind, const char *id)
{
	struct tracker_key k;
	char err[128];
	assert_int_equal(tracker_key_from_id(kind, id, &k, err, sizeof(err)), 0);
	return tracker_find(t, &k) != TRACKER_NONE;
}

static struct tracker_job
pop(tracker *t, int64_t now)
{
	struct tracker_job job;
	assert_true(tracker_pop_due(t, now, &job));
	check(t);
	return job;
}

static struct tracker_outcome
complete(tracker *t, const struct tracker_job *job, bool ok,
    enum error_class cls, int64_t now)
{
	struct tracker_result r = {.ok = ok, .error_class = cls,
	    .error = ok ? NULL : "image not found in any store"};
	struct tracker_outcome out;
	assert_int_equal(tracker_complete(t, job->handle, job->attempt, &r, now,
	    &out), 0);
	check(t);
	return out;
}

/* The same image from many sources is queued once and scanned once. */
/* One SET or UNSET without the invariant check (for long loops). */
static enum apply_result
apply_quick(tracker *t, enum event_type type, const char *id,
    const char *source, const char *tag)
{
	struct tracker_outcome out;
	const char *tags[1] = {tag};
	struct tracker_event e = {
		.type = type, .kind = ENTITY_IMAGE, .id = id, .source = source,
		.tags = tags, .ntags = tag ? 1 : 0, .observed_at = T0,
	};
	char err[256];
	return tracker_apply(t, &e, T0, &out, err, sizeof(err));
}

/* The control-character check of sources and refs (eight bytes at a
 * time): every byte value at every position of a 1-20 byte name (two
 * whole words and every tail length), in a source and in a tag. Bytes
 * from 0x80 up (UTF-8) are accepted. */
static void
test_control_characters(void **state)
{
	(void)state;
	struct tracker_config cfg = test_config();
	tracker *t = tracker_new(&cfg);
	char name[21];
	for (size_t len = 1; len <= 20; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 1; c < 256; c++) {
				memset(name, 'a', len);
				name[len] = '\0';
				name[pos] = (char)c;
				bool bad = c < 0x20 || c == 0x7f;
				enum apply_result r = apply_quick(t, EVENT_SET,
				    IMG_A, name, "repo/app:1");
				if ((r == APPLY_INVALID) != bad)
					fail_msg("source byte 0x%02x at %zu of "
					    "%zu: %d", c, pos, len, (int)r);
				/* (an unheld record can be pruned) */
				if (!bad)
					apply_quick(t, EVENT_UNSET, IMG_A, name,
					    NULL);
				r = apply_quick(t, EVENT_SET, IMG_B, "n1", name);
				if ((r == APPLY_INVALID) != bad)
					fail_msg("tag byte 0x%02x at %zu of "
					    "%zu: %d", c, pos, len, (int)r);
			}
		}
	}
	check(t);
	tracker_free(t);
}

static void
test_dedup(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	assert_int_equal(set_img(t, IMG_A, "node-1", T0), APPLY_NEW);
	for (int i = 0; i < 50; i++) {
		char src[32];
		snprintf(src, sizeof(src), "node-%d", i + 2);
		assert_int_equal(set_img(t, IMG_A, src, T0 + i), APPLY_UPDATED);
		assert_int_equal(set_img(t, IMG_A, src, T0 + i), APPLY_DEDUP);
	}
	assert_int_equal(tracker_count(t), 1);
	assert_int_equal(tracker_heap_size(t), 1);
	struct tracker_job job = pop(t, T0 + 100);
	assert_int_equal(job.attempt, 1);
	struct tracker_job none;
	assert_false(tracker_pop_due(t, T0 + 1000 * MIN, &none));
	struct tracker_outcome o = complete(t, &job, true, ERROR_RETRYABLE,
	    T0 + 200);
	assert_int_equal(o.status, OUTCOME_SUCCEEDED);
	assert_int_equal(o.attempt, 1);
	/* More SETs of a DONE image: no rescan (rescan_after = 0). */
	assert_int_equal(set_img(t, IMG_A, "node-99", T0 + 300),
	    APPLY_UPDATED);
	assert_false(tracker_pop_due(t, T0 + 1000 * MIN, &none));
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).state, ENTRY_DONE);
	tracker_free(t);
}

/* Retries back off exponentially up to the cap; success stops them. */
static void
test_backoff_schedule(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	int64_t now = T0;
	set_img(t, IMG_A, "node-1", now);
	int64_t expect[] = {5, 10, 20, 40, 60, 60};
	for (size_t i = 0; i < 6; i++) {
		struct tracker_job job = pop(t, now);
		assert_int_equal(job.attempt, i + 1);
		struct tracker_outcome o = complete(t, &job, false,
		    ERROR_RETRYABLE, now);
		assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
		assert_int_equal(o.attempt, i + 1);
		assert_int_equal(o.next_attempt_at, now + expect[i] * MIN);
		assert_string_equal(o.error, "image not found in any store");
		assert_int_equal(o.error_class, ERROR_RETRYABLE);
		struct tracker_job none;
		assert_false(tracker_pop_due(t, o.next_attempt_at - 1,
		    &none));
		now = o.next_attempt_at;
	}
	struct tracker_job job = pop(t, now);
	assert_int_equal(job.attempt, 7);
	struct tracker_outcome o = complete(t, &job, true, 0, now);
	assert_int_equal(o.status, OUTCOME_SUCCEEDED);
	struct tracker_info info = info_of(t, ENTITY_IMAGE, IMG_A);
	assert_int_equal(info.attempts, 0);
	assert_null(info.last_error);
	assert_false(info.in_heap);
	tracker_free(t);
}

/* A registry's Retry-After (not_before) is a lower bound of the next
 * attempt: later than the backoff, it wins; earlier, the backoff does. */
static void
test_not_before_raises_the_backoff(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	int64_t now = T0;
	set_img(t, IMG_A, "node-1", now);
	struct tracker_job job = pop(t, now);
	struct tracker_result r = {.ok = false,
	    .error_class = ERROR_RETRYABLE, .error = "HTTP 429",
	    .not_before = now + 30 * MIN};
	struct tracker_outcome o;
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &r, now,
	    &o), 0);
	check(t);
	assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
	assert_int_equal(o.next_attempt_at, now + 30 * MIN);
	struct tracker_job none;
	assert_false(tracker_pop_due(t, now + 30 * MIN - 1, &none));
	now += 30 * MIN;
	job = pop(t, now);
	r.not_before = now + 1 * MIN; /* the 10 min backoff is later */
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &r, now,
	    &o), 0);
	check(t);
	assert_int_equal(o.next_attempt_at, now + 10 * MIN);
	tracker_free(t);
}

/* A SET of an image that is already queued keeps its backoff schedule. */
static void
test_set_keeps_schedule(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	set_img(t, IMG_A, "node-1", T0);
	struct tracker_job job = pop(t, T0);
	struct tracker_outcome o = complete(t, &job, false, ERROR_RETRYABLE,
	    T0);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "node-2",
	    "other:tag", T0 + 1, T0 + 1, NULL), APPLY_UPDATED);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).due, o.next_attempt_at);
	/* and while scanning, a SET does not queue it a second time */
	job = pop(t, o.next_attempt_at);
	set_img(t, IMG_A, "node-3", o.next_attempt_at);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).state, ENTRY_SCANNING);
	assert_int_equal(tracker_heap_size(t), 0);
	tracker_free(t);
}

/* Permanent errors and hosts are not retried; max_attempts is a limit. */
static void
test_no_retry_cases(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.retry.max_attempts = 3;
	tracker *t = tracker_new(&c);
	set_img(t, IMG_A, "node-1", T0);
	struct tracker_job job = pop(t, T0);
	struct tracker_outcome o = complete(t, &job, false, ERROR_PERMANENT,
	    T0);
	assert_int_equal(o.status, OUTCOME_FAILED);
	assert_int_equal(o.error_class, ERROR_PERMANENT);
	assert_int_equal(o.next_attempt_at, -1);

	ev(t, EVENT_SET, ENTITY_HOST, "node-7", "node-7", NULL, T0, T0, NULL);
	job = pop(t, T0);
	assert_int_equal(job.key.kind, ENTITY_HOST);
	o = complete(t, &job, false, ERROR_RETRYABLE, T0);
	assert_int_equal(o.status, OUTCOME_FAILED);
	assert_int_equal(info_of(t, ENTITY_HOST, "node-7").state, ENTRY_FAILED);

	set_img(t, IMG_B, "node-1", T0);
	int64_t now = T0;
	for (uint32_t n = 1; n <= 3; n++) {
		job = pop(t, now);
		assert_int_equal(job.attempt, n);
		o = complete(t, &job, false, ERROR_RETRYABLE, now);
		if (n < 3) {
			assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
			now = o.next_attempt_at;
		}
	}
	assert_int_equal(o.status, OUTCOME_FAILED);
	assert_int_equal(o.attempt, 3);
	struct tracker_job none;
	assert_false(tracker_pop_due(t, now + 1000 * MIN, &none));
	tracker_free(t);
}

/* UNSET of one source: retries go on; of the last: CANCELLED. */
static void
test_unset_cancels(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	struct tracker_outcome out;
	set_img(t, IMG_A, "node-1", T0);
	set_img(t, IMG_A, "node-2", T0);
	struct tracker_job job = pop(t, T0);
	struct tracker_outcome o = complete(t, &job, false, ERROR_RETRYABLE,
	    T0);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-1", NULL,
	    T0 + 1, T0 + 1, &out), APPLY_UPDATED);
	assert_int_equal(out.status, OUTCOME_NONE);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).state, ENTRY_QUEUED);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-2", NULL,
	    T0 + 2, T0 + 2, &out), APPLY_UPDATED);
	assert_int_equal(out.status, OUTCOME_CANCELLED);
	assert_int_equal(out.attempt, 1);
	assert_false(out.abort_scan);
	struct tracker_info info = info_of(t, ENTITY_IMAGE, IMG_A);
	assert_int_equal(info.state, ENTRY_CANCELLED);
	assert_false(info.referenced);
	/* its retry is gone: nothing pops when it would have been due */
	struct tracker_job none;
	assert_false(tracker_pop_due(t, o.next_attempt_at, &none));
	/* forgotten after forget_after */
	assert_true(present(t, ENTITY_IMAGE, IMG_A));
	assert_false(tracker_pop_due(t, T0 + 2 + 30 * MIN, &none));
	assert_false(present(t, ENTITY_IMAGE, IMG_A));
	check(t);

	/* UNSET while scanning: abort the scan, CANCELLED, late result ignored */
	set_img(t, IMG_B, "node-1", T0);
	job = pop(t, T0);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_B, "node-1", NULL,
	    T0 + 5, T0 + 5, &out), APPLY_UPDATED);
	assert_int_equal(out.status, OUTCOME_CANCELLED);
	assert_true(out.abort_scan);
	assert_int_equal(out.attempt, 1);
	struct tracker_result r = {.ok = true};
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &r, T0 + 6,
	    &out), -ESTALE);
	/* referenced again: scanned anew */
	assert_int_equal(set_img(t, IMG_B, "node-4", T0 + 7), APPLY_UPDATED);
	job = pop(t, T0 + 7);
	assert_int_equal(job.attempt, 1);
	tracker_free(t);
}

/* Older events for the same (id, source) are ignored, even after UNSET. */
static void
test_stale(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "n1", "a:1", 100,
	    T0, NULL), APPLY_NEW);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "n1", "a:2", 99,
	    T0, NULL), APPLY_STALE);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "n1", NULL, 200,
	    T0, NULL), APPLY_UPDATED);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "n1", "a:1", 150,
	    T0, NULL), APPLY_STALE);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "n2", NULL, 300,
	    T0, NULL), APPLY_UNKNOWN);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_B, "n1", NULL, 300,
	    T0, NULL), APPLY_UNKNOWN);
	assert_false(present(t, ENTITY_IMAGE, IMG_B));
	tracker_free(t);
}

/* rescan_after and failed_rescan_after. */
static void
test_rescans(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.rescan_after_ms = 60 * MIN;
	c.retry.failed_rescan_after_ms = 120 * MIN;
	tracker *t = tracker_new(&c);
	set_img(t, IMG_A, "n1", T0);
	struct tracker_job job = pop(t, T0);
	complete(t, &job, true, 0, T0);
	assert_int_equal(set_img(t, IMG_A, "n1", T0 + 59 * MIN), APPLY_DEDUP);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).state, ENTRY_DONE);
	assert_int_equal(set_img(t, IMG_A, "n1", T0 + 60 * MIN), APPLY_UPDATED);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).state, ENTRY_QUEUED);

	set_img(t, IMG_B, "n1", T0);
	job = pop(t, T0 + 60 * MIN);
	if (job.key.bytes[0] != 0xbb) {
		complete(t, &job, true, 0, T0 + 60 * MIN);
		job = pop(t, T0 + 60 * MIN);
	}
	complete(t, &job, false, ERROR_PERMANENT, T0 + 60 * MIN);
	assert_int_equal(set_img(t, IMG_B, "n1", T0 + 179 * MIN), APPLY_DEDUP);
	assert_int_equal(set_img(t, IMG_B, "n1", T0 + 180 * MIN), APPLY_UPDATED);
	struct tracker_info info = info_of(t, ENTITY_IMAGE, IMG_B);
	assert_int_equal(info.state, ENTRY_QUEUED);
	assert_int_equal(info.attempts, 0);
	tracker_free(t);
}

/* Ties in due time pop in the order the entities were queued. */
static void
test_fifo_ties(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	char ids[20][80];
	for (int i = 0; i < 20; i++) {
		snprintf(ids[i], sizeof(ids[i]), "sha256:%02x%062d", 255 - i, 0);
		set_img(t, ids[i], "n1", T0);
	}
	for (int i = 0; i < 20; i++) {
		struct tracker_job job = pop(t, T0);
		assert_int_equal(job.key.bytes[0], 255 - i);
	}
	tracker_free(t);
}

/* Requeue (shutdown): back to QUEUED due now, same attempt. */
static void
test_requeue(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	set_img(t, IMG_A, "n1", T0);
	struct tracker_job job = pop(t, T0);
	complete(t, &job, false, ERROR_RETRYABLE, T0);
	job = pop(t, T0 + 5 * MIN);
	assert_int_equal(job.attempt, 2);
	assert_int_equal(tracker_requeue(t, job.handle, T0 + 6 * MIN), 0);
	check(t);
	assert_int_equal(tracker_requeue(t, job.handle, T0 + 6 * MIN), -ESTALE);
	struct tracker_job again = pop(t, T0 + 6 * MIN);
	assert_int_equal(again.attempt, 2);
	tracker_free(t);
}

/* Attempt counts saturate instead of wrapping. */
static void
test_attempt_overflow(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.retry.base_ms = 1;
	c.retry.max_ms = 1;
	tracker *t = tracker_new(&c);
	set_img(t, IMG_A, "n1", T0);
	int64_t now = T0;
	struct tracker_job job;
	for (uint32_t n = 1; n <= POLICY_MAX_ATTEMPTS + 5; n++) {
		assert_true(tracker_pop_due(t, now, &job));
		assert_int_equal(job.attempt,
		    n < POLICY_MAX_ATTEMPTS ? n : POLICY_MAX_ATTEMPTS);
		struct tracker_result r = {.ok = false,
		    .error_class = ERROR_RETRYABLE, .error = "x"};
		struct tracker_outcome o;
		assert_int_equal(tracker_complete(t, job.handle, job.attempt, &r,
		    now, &o), 0);
		assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
		now = o.next_attempt_at;
	}
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).attempts,
	    POLICY_MAX_ATTEMPTS);
	check(t);
	tracker_free(t);
}

/* Invalid input is rejected with a reason and changes nothing. */
static void
test_invalid_input(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	static const char *bad_ids[] = {
		"", "sha256:", "sha256:abc", "SHA256:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"sha512:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"nginx:latest",
	};
	struct tracker_outcome out;
	char err[256];
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		struct tracker_event e = {.type = EVENT_SET,
		    .kind = ENTITY_IMAGE, .id = bad_ids[i], .source = "n1"};
		err[0] = '\0';
		assert_int_equal(tracker_apply(t, &e, T0, &out, err,
		    sizeof(err)), APPLY_INVALID);
		assert_true(strlen(err) > 10);
	}
	struct tracker_event e = {.type = EVENT_SET, .kind = ENTITY_IMAGE,
	    .id = NULL, .source = "n1"};
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.id = IMG_A;
	e.source = NULL;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.source = "";
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.source = "bad\nsource";
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	char longname[400];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	e.source = longname;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.source = "n1";
	const char *tags[TRACKER_MAX_REFS + 1];
	for (int i = 0; i <= TRACKER_MAX_REFS; i++)
		tags[i] = "t:1";
	e.tags = tags;
	e.ntags = TRACKER_MAX_REFS + 1;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	assert_non_null(strstr(err, "repo_tags"));
	char longtag[TRACKER_MAX_REF_LEN + 2];
	memset(longtag, 'a', sizeof(longtag) - 1);
	longtag[sizeof(longtag) - 1] = '\0';
	tags[0] = longtag;
	e.ntags = 1;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	tags[0] = "";
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.ntags = 0;
	e.kind = ENTITY_HOST;
	e.id = "has space";
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.kind = (enum entity_kind)7;
	e.id = IMG_A;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	e.kind = ENTITY_IMAGE;
	e.type = (enum event_type)9;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	assert_int_equal(tracker_count(t), 0);
	check(t);
	/* Long tags (two-byte length prefix) round trip. */
	e.type = EVENT_SET;
	longtag[TRACKER_MAX_REF_LEN] = '\0';
	tags[0] = longtag;
	e.ntags = 1;
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_NEW);
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_DEDUP);
	check(t);
	tracker_free(t);
}

/* Bad durations in the configuration are named. */
static void
test_config_validation(void **state)
{
	(void)state;
	char err[256];
	struct tracker_config c = test_config();
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)), 0);
	c.retry.base_ms = 0;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "retry.base_backoff"));
	c = test_config();
	c.retry.base_ms = -5;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	c = test_config();
	c.retry.max_ms = INT64_MAX;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "retry.max_backoff"));
	c = test_config();
	c.forget_after_ms = -1;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "dedup.forget_after"));
	c = test_config();
	c.rescan_after_ms = INT64_MAX;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "dedup.rescan_after"));
	c = test_config();
	c.max_sources = TRACKER_MAX_SOURCES + 1; /* more than a record holds */
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "dedup.max_sources"));
	c.max_sources = 0;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	c = test_config();
	c.max_entity_bytes = 1000;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "dedup.max_entity_bytes"));
	c = test_config();
	c.max_clock_skew_ms = -1;
	assert_int_equal(tracker_config_validate(&c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "dedup.max_clock_skew"));
}

static size_t
nsources(tracker *t, const char *id)
{
	return info_of(t, ENTITY_IMAGE, id).nsources;
}

/* dedup.max_sources: at the bound, records of sources that UNSET the
 * image make room, the oldest observed_at first, max_sources / 16 at a
 * time; when every source holds it the SET is refused and nothing
 * changes. */
static void
test_max_sources(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.max_sources = 32; /* room is made 2 at a time */
	tracker *t = tracker_new(&c);
	char src[32], err[256];
	for (int i = 0; i < 32; i++) {
		snprintf(src, sizeof(src), "node-%02d", i);
		assert_true(set_img(t, IMG_A, src, T0 + i) <= APPLY_UPDATED);
	}
	/* every source holds it: refused, with the key named */
	struct tracker_outcome out;
	const char *tags[1] = {"repo/app:1"};
	struct tracker_event e = {.type = EVENT_SET, .kind = ENTITY_IMAGE,
	    .id = IMG_A, .source = "node-new", .tags = tags, .ntags = 1,
	    .observed_at = T0 + 100};
	assert_int_equal(tracker_apply(t, &e, T0 + 100, &out, err,
	    sizeof(err)), APPLY_INVALID);
	assert_non_null(strstr(err, "dedup.max_sources"));
	assert_non_null(strstr(err, IMG_A));
	assert_int_equal(nsources(t, IMG_A), 32);
	check(t);
	/* known sources still update */
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "node-05",
	    "repo/app:2", T0 + 101, T0 + 101, NULL), APPLY_UPDATED);

	/* 3 UNSET it, node-07 earliest, then node-03, then node-20 */
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-20",
	    NULL, T0 + 203, T0 + 203, NULL), APPLY_UPDATED);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-07",
	    NULL, T0 + 201, T0 + 201, NULL), APPLY_UPDATED);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-03",
	    NULL, T0 + 202, T0 + 202, NULL), APPLY_UPDATED);
	assert_int_equal(set_img(t, IMG_A, "node-new", T0 + 300),
	    APPLY_UPDATED);
	assert_int_equal(nsources(t, IMG_A), 31);
	/* node-07 and node-03 went; node-20 is still remembered */
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-07",
	    NULL, T0 + 301, T0 + 301, NULL), APPLY_UNKNOWN);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-03",
	    NULL, T0 + 301, T0 + 301, NULL), APPLY_UNKNOWN);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "node-20",
	    "repo/app:1", T0 + 1, T0 + 301, NULL), APPLY_STALE);
	struct tracker_stats st;
	tracker_stats(t, &st);
	assert_int_equal(st.sources_pruned, 2);
	/* another new source fits (31 + 1), the next prunes node-20 */
	assert_int_equal(set_img(t, IMG_A, "node-new2", T0 + 400),
	    APPLY_UPDATED);
	assert_int_equal(set_img(t, IMG_A, "node-new3", T0 + 401),
	    APPLY_UPDATED);
	assert_int_equal(nsources(t, IMG_A), 32);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-20",
	    NULL, T0 + 1, T0 + 402, NULL), APPLY_UNKNOWN);
	tracker_free(t);
}

/* dedup.max_entity_bytes: the tags and digests of all sources of an
 * entity are bounded; one event over it alone is refused. */
static void
test_max_entity_bytes(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.max_entity_bytes = TRACKER_MIN_ENTITY_BYTES; /* 64 KiB */
	tracker *t = tracker_new(&c);
	static char refs[TRACKER_MAX_REFS][TRACKER_MAX_REF_LEN + 1];
	const char *tags[TRACKER_MAX_REFS];
	for (int i = 0; i < TRACKER_MAX_REFS; i++) {
		memset(refs[i], 'r', TRACKER_MAX_REF_LEN);
		snprintf(refs[i], 8, "%03d", i);
		refs[i][3] = '/';
		tags[i] = refs[i];
	}
	char err[256], src[32];
	struct tracker_outcome out;
	/* 64 tags of 512 bytes and as many digests: 64 KiB in one event */
	struct tracker_event e = {.type = EVENT_SET, .kind = ENTITY_IMAGE,
	    .id = IMG_A, .source = "node-a", .tags = tags,
	    .ntags = TRACKER_MAX_REFS, .digests = tags,
	    .ndigests = TRACKER_MAX_REFS, .observed_at = T0};
	assert_int_equal(tracker_apply(t, &e, T0, &out, err, sizeof(err)),
	    APPLY_INVALID);
	assert_non_null(strstr(err, "dedup.max_entity_bytes"));
	assert_false(present(t, ENTITY_IMAGE, IMG_A));
	/* 16 KiB a source: the fourth does not fit while all hold it */
	e.ndigests = 0;
	e.ntags = 32;
	for (int i = 0; i < 4; i++) {
		snprintf(src, sizeof(src), "node-%d", i);
		e.source = src;
		e.observed_at = T0 + i;
		enum apply_result r = tracker_apply(t, &e, T0 + i, &out, err,
		    sizeof(err));
		assert_int_equal(r, i < 3 ? (i ? APPLY_UPDATED : APPLY_NEW) :
		    APPLY_INVALID);
		check(t);
	}
	assert_non_null(strstr(err, "dedup.max_entity_bytes"));
	assert_int_equal(nsources(t, IMG_A), 3);
	/* once node-1 UNSETs it, its tags go and make room */
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-1",
	    NULL, T0 + 10, T0 + 10, NULL), APPLY_UPDATED);
	assert_int_equal(tracker_apply(t, &e, T0 + 11, &out, err,
	    sizeof(err)), APPLY_UPDATED);
	check(t);
	assert_int_equal(nsources(t, IMG_A), 4);
	tracker_free(t);
}

/* An observed_at far ahead of now is clamped to now: it cannot lock its
 * source out of later events (and is counted). */
static void
test_clock_skew_clamped(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	int64_t year = 365LL * 24 * 60 * MIN;
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "node-a",
	    "repo/app:1", T0 + year, T0, NULL), APPLY_NEW);
	/* a minute later, the source's real clock: not stale */
	struct tracker_outcome out;
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-a",
	    NULL, T0 + MIN, T0 + MIN, &out), APPLY_UPDATED);
	assert_int_equal(out.status, OUTCOME_CANCELLED);
	/* within the allowed skew (10 minutes by default) it is kept */
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, IMG_A, "node-a",
	    "repo/app:1", T0 + 9 * MIN, T0 + 2 * MIN, NULL), APPLY_UPDATED);
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "node-a",
	    NULL, T0 + 3 * MIN, T0 + 3 * MIN, NULL), APPLY_STALE);
	struct tracker_stats st;
	tracker_stats(t, &st);
	assert_int_equal(st.clock_clamped, 1);
	tracker_free(t);
}

/* Hosts and images share the key space without colliding. */
static void
test_host_keys(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	struct tracker_key hk;
	char err[128], id[300];
	assert_int_equal(tracker_key_from_id(ENTITY_HOST, "node-7", &hk, err,
	    sizeof(err)), 0);
	/* an image whose digest equals the host's hash is still another key */
	char img[80] = "sha256:";
	for (int i = 0; i < 32; i++)
		snprintf(img + 7 + 2 * i, 3, "%02x", hk.bytes[i]);
	ev(t, EVENT_SET, ENTITY_HOST, "node-7", "node-7", NULL, T0, T0, NULL);
	assert_int_equal(ev(t, EVENT_SET, ENTITY_IMAGE, img, "node-7", NULL, T0,
	    T0, NULL), APPLY_NEW);
	assert_int_equal(tracker_count(t), 2);
	tracker_id_string(t, tracker_find(t, &hk), id, sizeof(id));
	assert_string_equal(id, "node-7");
	tracker_free(t);
}

/*
 * Generations: 1 when new; the same through retries (attempts go on);
 * +1 when DONE is rescanned, FAILED rescanned, CANCELLED set again; every
 * job and outcome carries the generation, so (id, generation, attempt,
 * status) never repeats.
 */
static void
test_generations(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	c.rescan_after_ms = 60 * MIN;
	c.retry.failed_rescan_after_ms = 60 * MIN;
	c.retry.max_attempts = 2;
	tracker *t = tracker_new(&c);
	int64_t now = T0;
	set_img(t, IMG_A, "n1", now);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 1);
	struct tracker_job job = pop(t, now);
	assert_int_equal(job.generation, 1);
	struct tracker_outcome o = complete(t, &job, false, ERROR_RETRYABLE,
	    now);
	assert_int_equal(o.status, OUTCOME_RETRY_SCHEDULED);
	assert_int_equal(o.generation, 1);
	now += 10 * MIN;
	job = pop(t, now); /* the retry: same generation, attempt 2 */
	assert_int_equal(job.generation, 1);
	assert_int_equal(job.attempt, 2);
	o = complete(t, &job, false, ERROR_RETRYABLE, now);
	assert_int_equal(o.status, OUTCOME_FAILED);
	assert_int_equal(o.generation, 1);
	/* a SET too early changes nothing */
	set_img(t, IMG_A, "n1", now + 59 * MIN);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 1);
	/* FAILED rescanned: generation 2, attempt 1 again */
	now += 60 * MIN;
	set_img(t, IMG_A, "n1", now);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 2);
	job = pop(t, now);
	assert_int_equal(job.generation, 2);
	assert_int_equal(job.attempt, 1);
	o = complete(t, &job, true, 0, now);
	assert_int_equal(o.status, OUTCOME_SUCCEEDED);
	assert_int_equal(o.generation, 2);
	/* DONE rescanned: 3 */
	now += 60 * MIN;
	set_img(t, IMG_A, "n1", now);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 3);
	/* cancelled while QUEUED: the outcome says 3; set again: 4 */
	assert_int_equal(ev(t, EVENT_UNSET, ENTITY_IMAGE, IMG_A, "n1", NULL,
	    now, now, &o), APPLY_UPDATED);
	assert_int_equal(o.status, OUTCOME_CANCELLED);
	assert_int_equal(o.generation, 3);
	set_img(t, IMG_A, "n1", now + 1);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 4);
	/* a SET of a QUEUED entity: no new cycle */
	set_img(t, IMG_A, "n2", now + 2);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).generation, 4);
	tracker_free(t);
}

/* An event on another partition moves the entry: the old (partition,
 * key) is deleted, the entry dirty; a stale one does not move it. */
struct del_seen {
	int32_t partition[8];
	size_t ndel, nput;
};

static int
seen_put(void *ctx, uint32_t h)
{
	(void)h;
	((struct del_seen *)ctx)->nput++;
	return 0;
}

static int
seen_del(void *ctx, int32_t partition, const struct tracker_key *key)
{
	struct del_seen *d = ctx;
	(void)key;
	if (d->ndel < 8)
		d->partition[d->ndel] = partition;
	d->ndel++;
	return 0;
}

static void
test_partition_move(void **state)
{
	(void)state;
	struct tracker_config c = test_config();
	tracker *t = tracker_new(&c);
	struct tracker_outcome o;
	const char *tags[1] = {"a:1"};
	char err[128];
	struct tracker_event e = {.type = EVENT_SET, .kind = ENTITY_IMAGE,
	    .id = IMG_A, .source = "n1", .tags = tags, .ntags = 1,
	    .observed_at = T0, .partition = 4};
	assert_int_equal(tracker_apply(t, &e, T0, &o, err, sizeof(err)),
	    APPLY_NEW);
	tracker_clear_dirty(t);
	e.partition = 9;
	e.observed_at = T0 + 1;
	assert_int_equal(tracker_apply(t, &e, T0 + 1, &o, err, sizeof(err)),
	    APPLY_DEDUP);
	check(t);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).partition, 9);
	struct del_seen d = {0};
	assert_int_equal(tracker_foreach_dirty(t, seen_put, seen_del, &d), 0);
	assert_int_equal(d.ndel, 1);
	assert_int_equal(d.partition[0], 4);
	assert_int_equal(d.nput, 1);
	tracker_clear_dirty(t);
	/* stale: no move */
	e.partition = 2;
	e.observed_at = T0;
	assert_int_equal(tracker_apply(t, &e, T0 + 2, &o, err, sizeof(err)),
	    APPLY_STALE);
	assert_int_equal(info_of(t, ENTITY_IMAGE, IMG_A).partition, 9);
	assert_int_equal(tracker_dirty_count(t), 0);
	/* away and back within one batch: nothing deleted where it ends */
	e.observed_at = T0 + 3;
	e.partition = 2;
	tracker_apply(t, &e, T0 + 3, &o, err, sizeof(err));
	e.partition = 9;
	tracker_apply(t, &e, T0 + 3, &o, err, sizeof(err));
	memset(&d, 0, sizeof(d));
	assert_int_equal(tracker_foreach_dirty(t, seen_put, seen_del, &d), 0);
	assert_int_equal(d.ndel, 1); /* (9, key) is superseded by the put */
	assert_int_equal(d.partition[0], 2);
	assert_int_equal(d.nput, 1);
	/* released: gone from memory, nothing dirty added */
	tracker_clear_dirty(t);
	set_img(t, IMG_B, "n1", T0 + 4); /* partition 0 */
	tracker_clear_dirty(t);
	assert_int_equal(tracker_count_partition(t, 9), 1);
	assert_int_equal(tracker_release_partition(t, 9), 1);
	check(t);
	assert_false(present(t, ENTITY_IMAGE, IMG_A));
	assert_true(present(t, ENTITY_IMAGE, IMG_B));
	assert_int_equal(tracker_dirty_count(t), 0);
	assert_int_equal(tracker_heap_size(t), 1);
	tracker_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_not_before_raises_the_backoff),
		cmocka_unit_test(test_set_keeps_schedule),
		cmocka_unit_test(test_no_retry_cases),
		cmocka_unit_test(test_unset_cancels),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_rescans),
		cmocka_unit_test(test_fifo_ties),
		cmocka_unit_test(test_requeue),
		cmocka_unit_test(test_attempt_overflow),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_config_validation),
		cmocka_unit_test(test_max_sources),
		cmocka_unit_test(test_max_entity_bytes),
		cmocka_unit_test(test_clock_skew_clamped),
		cmocka_unit_test(test_host_keys),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_partition_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
