/*
 * testutil: what several test files share (include after <cmocka.h>): a
 * seeded xorshift64* generator, so every run of a randomized test does
 * exactly the same operations (a failure is reproducible from its seed),
 * and small assertions.
 */
#ifndef SBOMD_TESTS_TESTUTIL_H
#define SBOMD_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

static uint64_t rng_state = 1;

static inline void
rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static inline uint64_t
rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n) for tests; n > 0. */
static inline size_t
rng_below(size_t n)
{
	return (size_t)(rng_next() % n);
}

/* got equals want, both possibly NULL (include after <cmocka.h>). */
static inline void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

#endif
