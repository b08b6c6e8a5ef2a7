/*
 * policy: the retry policy. What happens after a failed scan, and when.
 */
#ifndef SBOMD_CORE_POLICY_H
#define SBOMD_CORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/vocab.h"

/* The largest attempt count kept; counts saturate here. */
#define POLICY_MAX_ATTEMPTS 65535u

struct retry_policy {
	int64_t base_ms;	/* first backoff, > 0 */
	int64_t max_ms;		/* cap, >= base_ms */
	double multiplier;	/* >= 1 */
	double jitter;		/* fraction in [0, 1): +-jitter around the backoff */
	uint32_t max_attempts;	/* 0 = no limit, else <= POLICY_MAX_ATTEMPTS */
	int64_t failed_rescan_after_ms; /* 0 = a FAILED entity is never requeued */
};

/* The defaults (docs/architecture.md "The tracker"): 5 min, 1 h, x2,
 * 0.1, unlimited, 24 h. */
void policy_defaults(struct retry_policy *p);

/* 0, or -EINVAL naming the bad field ("retry.jitter ...") in err. */
int policy_validate(const struct retry_policy *p, char *err, size_t errlen);

/*
 * The delay before attempt n+1 after the n-th failed attempt (n >= 1):
 * min(max, base * multiplier^(n-1)), scaled by 1 + jitter * u, where u in
 * [-1, 1] is derived from seed (so the same seed gives the same delay: a
 * replay or a restart computes the same schedule). Never negative.
 */
int64_t policy_backoff(const struct retry_policy *p, uint32_t n, uint64_t seed);

/*
 * Whether a failure of attempt n (1-based) is retried: only RETRYABLE
 * errors of container images, and only while n < max_attempts (when set).
 */
bool policy_should_retry(const struct retry_policy *p, enum entity_kind kind,
    enum error_class cls, uint32_t n);

/* A well-mixed 64-bit hash step (splitmix64's finaliser). */
uint64_t policy_mix64(uint64_t x);

#endif
