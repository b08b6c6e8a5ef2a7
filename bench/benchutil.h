/*
 * benchutil: what the benchmarks share: a monotonic clock, medians, and
 * the synthetic image events (entity i's id and tag, generated into the
 * caller's buffers).
 */
#ifndef SBOMD_BENCH_BENCHUTIL_H
#define SBOMD_BENCH_BENCHUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/policy.h"
#include "util/digest.h"

static const int64_t T0 = 1700000000000LL;

static inline double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of v[0..n) (reorders v). */
static inline double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Entity i's image id and a 34-byte tag, "registry.local/team/app-NNNNNN:1.0". */
static inline void
make_event(size_t i, char id[DIGEST_STR_LEN], char tag[48])
{
	uint8_t d[DIGEST_LEN];
	for (int k = 0; k < DIGEST_LEN; k += 8) {
		uint64_t r = policy_mix64((uint64_t)i * 4 + (uint64_t)k / 8);
		memcpy(d + k, &r, 8);
	}
	digest_format(d, id);
	static const char prefix[] = "registry.local/team/app-";
	memcpy(tag, prefix, sizeof(prefix) - 1);
	char *p = tag + sizeof(prefix) - 1;
	for (int k = 5; k >= 0; k--, i /= 10)
		p[k] = (char)('0' + i % 10);
	memcpy(p + 6, ":1.0", 5);
}

#endif
