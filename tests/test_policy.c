/*
 * test_policy: the retry policy (consumer/core/policy).
 *
 * backoff(n) = min(max, base * multiplier^(n-1)), then +-jitter from a
 * hash of the seed. Without jitter the value is exact (checked against
 * saturating integer arithmetic, up to n = UINT32_MAX); with jitter it
 * stays in its band, averages out to the nominal value and is a pure
 * function of the seed. should_retry: images with retryable errors only,
 * while n < max_attempts (0 = no limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/policy.h"
#include "util/duration.h"
#include "testutil.h"

#define MIN_MS ((int64_t)60 * 1000)
#define HOUR_MS (60 * MIN_MS)

static void
test_defaults(void **state)
{
	struct retry_policy p;
	char err[256] = "";
	(void)state;

	memset(&p, 0x5a, sizeof(p));
	policy_defaults(&p);
	assert_true(p.base_ms == 5 * MIN_MS);
	assert_true(p.max_ms == HOUR_MS);
	assert_true(p.multiplier == 2.0);
	assert_true(p.jitter == 0.1);
	assert_int_equal(p.max_attempts, 0);
	assert_true(p.failed_rescan_after_ms == 24 * HOUR_MS);
	assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
}

static void
expect_invalid(const struct retry_policy *p, const char *key, const char *what)
{
	char err[256];

	memset(err, 0, sizeof(err));
	int rc = policy_validate(p, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("%s: policy_validate = %d, want -EINVAL", what, rc);
	if (strstr(err, key) == NULL)
		fail_msg("%s: error does not name %s: \"%s\"", what, key, err);
}

static void
expect_valid(const struct retry_policy *p, const char *what)
{
	char err[256] = "";
	int rc = policy_validate(p, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s: policy_validate = %d (%s), want 0", what, rc, err);
}

static void
test_validate(void **state)
{
	struct retry_policy d, p;
	(void)state;

	policy_defaults(&d);

	p = d; p.base_ms = 0;
	expect_invalid(&p, "retry.base_backoff", "base 0");
	p = d; p.base_ms = -1;
	expect_invalid(&p, "retry.base_backoff", "base -1");
	p = d; p.base_ms = INT64_MIN;
	expect_invalid(&p, "retry.base_backoff", "base INT64_MIN");

	p = d; p.max_ms = p.base_ms - 1;
	expect_invalid(&p, "retry.max_backoff", "max < base");
	p = d; p.max_ms = 0;
	expect_invalid(&p, "retry.max_backoff", "max 0");
	p = d; p.base_ms = 10 * HOUR_MS; /* above the default max */
	expect_invalid(&p, "retry.max_backoff", "base above default max");

	p = d; p.multiplier = 0.999;
	expect_invalid(&p, "retry.multiplier", "multiplier 0.999");
	p = d; p.multiplier = 0;
	expect_invalid(&p, "retry.multiplier", "multiplier 0");
	p = d; p.multiplier = -2;
	expect_invalid(&p, "retry.multiplier", "multiplier -2");
	p = d; p.multiplier = NAN;
	expect_invalid(&p, "retry.multiplier", "multiplier NaN");

	p = d; p.jitter = -0.01;
	expect_invalid(&p, "retry.jitter", "jitter -0.01");
	p = d; p.jitter = 1.0;
	expect_invalid(&p, "retry.jitter", "jitter 1");
	p = d; p.jitter = 1.5;
	expect_invalid(&p, "retry.jitter", "jitter 1.5");
	p = d; p.jitter = NAN;
	expect_invalid(&p, "retry.jitter", "jitter NaN");
	p = d; p.jitter = -INFINITY;
	expect_invalid(&p, "retry.jitter", "jitter -inf");

	p = d; p.max_attempts = POLICY_MAX_ATTEMPTS + 1;
	expect_invalid(&p, "retry.max_attempts", "max_attempts 65536");
	p = d; p.max_attempts = UINT32_MAX;
	expect_invalid(&p, "retry.max_attempts", "max_attempts UINT32_MAX");

	p = d; p.failed_rescan_after_ms = -1;
	expect_invalid(&p, "retry.failed_rescan_after", "failed_rescan -1");

	/* the boundaries themselves are fine */
	p = d; p.base_ms = 1;
	expect_valid(&p, "base 1");
	p = d; p.max_ms = p.base_ms;
	expect_valid(&p, "max == base");
	p = d; p.multiplier = 1.0;
	expect_valid(&p, "multiplier 1");
	p = d; p.jitter = 0;
	expect_valid(&p, "jitter 0");
	p = d; p.jitter = 0.999;
	expect_valid(&p, "jitter 0.999");
	p = d; p.max_attempts = POLICY_MAX_ATTEMPTS;
	expect_valid(&p, "max_attempts 65535");
	p = d; p.max_attempts = 1;
	expect_valid(&p, "max_attempts 1");
	p = d; p.failed_rescan_after_ms = 0;
	expect_valid(&p, "failed_rescan 0");
	p = d; p.max_ms = DURATION_MAX_MS;
	expect_valid(&p, "max 100 years");
}

/* min(max, base * mult^(n-1)) in saturating integer arithmetic. */
static int64_t
nominal(int64_t base, int64_t max, int64_t mult, uint64_t n)
{
	int64_t v = base;
	for (uint64_t k = 1; k < n; k++) {
		if (v >= max || (mult > 1 && v > max / mult))
			return max;
		if (mult == 1)
			break; /* stays at base */
		v *= mult;
	}
	return v < max ? v : max;
}

static void
backoff_exact(int64_t base, int64_t max, int64_t mult, uint32_t n_hi)
{
	struct retry_policy p;

	policy_defaults(&p);
	p.base_ms = base;
	p.max_ms = max;
	p.multiplier = (double)mult;
	p.jitter = 0;
	expect_valid(&p, "backoff policy");

	for (uint32_t n = 1; n <= n_hi; n++) {
		int64_t want = nominal(base, max, mult, n);
		for (uint64_t seed = 0; seed < 3; seed++) {
			int64_t got = policy_backoff(&p, n, seed * 0x9e3779b9);
			if (got != want)
				fail_msg("base %lld max %lld x%lld: backoff(%u) = "
				    "%lld, want %lld", (long long)base,
				    (long long)max, (long long)mult, n,
				    (long long)got, (long long)want);
		}
	}
	/* far past the cap: no overflow, no wrap, exactly max (or base for
	 * a multiplier of 1) */
	static const uint32_t big[] = {100, 1000, 65535, 65536, 1u << 31,
	    UINT32_MAX - 1, UINT32_MAX};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		int64_t want = mult == 1 ? (base < max ? base : max) : max;
		int64_t got = policy_backoff(&p, big[i], 7);
		if (got != want)
			fail_msg("base %lld max %lld x%lld: backoff(%u) = %lld, "
			    "want %lld", (long long)base, (long long)max,
			    (long long)mult, big[i], (long long)got,
			    (long long)want);
	}
}

static void
test_backoff_no_jitter(void **state)
{
	(void)state;

	/* the defaults: 5m, 10m, 20m, 40m, then 1h */
	backoff_exact(5 * MIN_MS, HOUR_MS, 2, 40);
	struct retry_policy p;
	policy_defaults(&p);
	p.jitter = 0;
	assert_true(policy_backoff(&p, 1, 0) == 5 * MIN_MS);
	assert_true(policy_backoff(&p, 2, 0) == 10 * MIN_MS);
	assert_true(policy_backoff(&p, 3, 0) == 20 * MIN_MS);
	assert_true(policy_backoff(&p, 4, 0) == 40 * MIN_MS);
	assert_true(policy_backoff(&p, 5, 0) == HOUR_MS);
	assert_true(policy_backoff(&p, 40, 0) == HOUR_MS);
	assert_true(policy_backoff(&p, UINT32_MAX, 0) == HOUR_MS);

	/* uncapped up to n = 42: every power of two is exact */
	backoff_exact(1, DURATION_MAX_MS, 2, 60);
	backoff_exact(7, (int64_t)1000000000000, 3, 40);
	backoff_exact(1000, 1000, 2, 40);	/* max == base */
	backoff_exact(250, 10 * MIN_MS, 1, 40); /* multiplier 1: constant */
	backoff_exact(1, DURATION_MAX_MS, 1000, 40);

	/* a fractional multiplier: 1024 * 1.5^k = 3^k * 2^(10-k), exact */
	policy_defaults(&p);
	p.base_ms = 1024;
	p.max_ms = DURATION_MAX_MS;
	p.multiplier = 1.5;
	p.jitter = 0;
	int64_t want = 1024;
	for (uint32_t n = 1; n <= 11; n++) {
		assert_true(policy_backoff(&p, n, 0) == want);
		want = want / 2 * 3;
	}
	assert_true(policy_backoff(&p, UINT32_MAX, 0) == DURATION_MAX_MS);
}

static void
test_backoff_jitter(void **state)
{
	enum { SEEDS = 100000 };
	struct retry_policy p;
	(void)state;

	policy_defaults(&p);
	assert_true(p.jitter == 0.1);

	for (int pass = 0; pass < 2; pass++) {
		double sum = 0, lo = 2, hi = 0;
		size_t below = 0;
		rng_seed(0x7177E4);
		for (uint64_t i = 0; i < SEEDS; i++) {
			/* pass 0: sequential seeds (what a counter gives);
			 * pass 1: random 64-bit seeds */
			uint64_t seed = pass == 0 ? i : rng_next();
			uint32_t n = (uint32_t)(i % 7) + 1; /* 5m .. capped 1h */
			int64_t nom = nominal(p.base_ms, p.max_ms, 2, n);
			int64_t got = policy_backoff(&p, n, seed);
			/* within [0.9, 1.1] x nominal, allowing 1 ms rounding */
			if (got * 10 < nom * 9 - 10 || got * 10 > nom * 11 + 10)
				fail_msg("backoff(%u, seed %llu) = %lld, outside "
				    "[0.9, 1.1] x %lld", n,
				    (unsigned long long)seed, (long long)got,
				    (long long)nom);
			/* the same seed gives the same value */
			assert_true(policy_backoff(&p, n, seed) == got);
			double ratio = (double)got / (double)nom;
			sum += ratio;
			if (ratio < lo)
				lo = ratio;
			if (ratio > hi)
				hi = ratio;
			if (ratio < 1.0)
				below++;
		}
		double mean = sum / SEEDS;
		/* uniform on [0.9, 1.1]: sd 0.0577, so the mean of 1e5 is
		 * within 0.0006 of 1 at 3 sigma */
		if (fabs(mean - 1.0) > 0.002)
			fail_msg("pass %d: mean ratio %.5f, want ~1.0", pass, mean);
		/* the band is used in full, on both sides */
		if (lo > 0.902 || hi < 1.098)
			fail_msg("pass %d: ratios span only [%.4f, %.4f]", pass,
			    lo, hi);
		if (below < SEEDS * 45 / 100 || below > SEEDS * 55 / 100)
			fail_msg("pass %d: %zu of %d below nominal", pass, below,
			    SEEDS);
	}

	/* different seeds give different delays: no constant jitter */
	int64_t first = policy_backoff(&p, 1, 0);
	size_t differ = 0;
	for (uint64_t s = 1; s < 1000; s++)
		if (policy_backoff(&p, 1, s) != first)
			differ++;
	assert_true(differ > 990);

	/* jitter applies to the capped value too, and never overflows */
	p.max_ms = DURATION_MAX_MS;
	p.jitter = 0.999;
	for (uint64_t s = 0; s < 10000; s++) {
		int64_t got = policy_backoff(&p, UINT32_MAX, s);
		assert_true(got >= 0);
		assert_true((double)got <= (double)DURATION_MAX_MS * 1.999 + 1);
	}
}

static void
test_mix64(void **state)
{
	(void)state;
	/* splitmix64's first two outputs from state 0: the jitter of a
	 * persisted schedule must not change between versions */
	assert_true(policy_mix64(0) == 0xe220a8397b1dcdafULL);
	assert_true(policy_mix64(0x9e3779b97f4a7c15ULL) ==
	    0x6e789e6aa1b965f4ULL);
	assert_true(policy_mix64(1) == 0x910a2dec89025cc1ULL);
}

static void
test_should_retry(void **state)
{
	struct retry_policy p;
	static const uint32_t ns[] = {1, 2, 3, 4, 5, 100, 65534, 65535, 65536,
	    UINT32_MAX};
	(void)state;

	policy_defaults(&p);
	for (uint32_t max = 0; max <= 5; max++) {
		p.max_attempts = max;
		for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
			uint32_t n = ns[i];
			/* hosts never, whatever the error */
			assert_false(policy_should_retry(&p, ENTITY_HOST,
			    ERROR_RETRYABLE, n));
			assert_false(policy_should_retry(&p, ENTITY_HOST,
			    ERROR_PERMANENT, n));
			/* permanent errors never */
			assert_false(policy_should_retry(&p, ENTITY_IMAGE,
			    ERROR_PERMANENT, n));
			/* retryable: while n < max, always when max is 0 */
			bool want = max == 0 || n < max;
			bool got = policy_should_retry(&p, ENTITY_IMAGE,
			    ERROR_RETRYABLE, n);
			if (got != want)
				fail_msg("max_attempts %u, attempt %u: retry %d, "
				    "want %d", max, n, got, want);
		}
	}

	/* max_attempts 1: the first failure is final */
	p.max_attempts = 1;
	assert_false(policy_should_retry(&p, ENTITY_IMAGE, ERROR_RETRYABLE, 1));

	/* the largest limit */
	p.max_attempts = POLICY_MAX_ATTEMPTS;
	assert_true(policy_should_retry(&p, ENTITY_IMAGE, ERROR_RETRYABLE,
	    POLICY_MAX_ATTEMPTS - 1));
	assert_false(policy_should_retry(&p, ENTITY_IMAGE, ERROR_RETRYABLE,
	    POLICY_MAX_ATTEMPTS));

	/* unlimited */
	p.max_attempts = 0;
	assert_true(policy_should_retry(&p, ENTITY_IMAGE, ERROR_RETRYABLE,
	    UINT32_MAX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_backoff_no_jitter),
		cmocka_unit_test(test_backoff_jitter),
		cmocka_unit_test(test_mix64),
		cmocka_unit_test(test_should_retry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
