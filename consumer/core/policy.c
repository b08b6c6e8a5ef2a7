/*
 * policy: the retry policy as pure functions: backoff(n) and the retry
 * decision. Jitter comes from a hash of a caller-given seed instead of a
 * random generator, so the tracker stays deterministic for tests and for
 * replays. Any thread.
 */
#include "core/policy.h"

#include <errno.h>
#include <math.h>

#include "util/duration.h"
#include "util/errbuf.h"

void
policy_defaults(struct retry_policy *p)
{
	p->base_ms = 5 * 60 * 1000;
	p->max_ms = 60 * 60 * 1000;
	p->multiplier = 2.0;
	p->jitter = 0.1;
	p->max_attempts = 0;
	p->failed_rescan_after_ms = 24 * 3600 * 1000;
}

int
policy_validate(const struct retry_policy *p, char *err, size_t errlen)
{
	if (p->base_ms <= 0 || p->base_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen,
		    "retry.base_backoff must be > 0 and at most 100 years");
		return -EINVAL;
	}
	if (p->max_ms < p->base_ms || p->max_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen,
		    "retry.max_backoff must be >= retry.base_backoff and at "
		    "most 100 years");
		return -EINVAL;
	}
	if (!(p->multiplier >= 1.0 && p->multiplier <= 1000.0)) {
		errbuf_set(err, errlen,
		    "retry.multiplier must be between 1 and 1000");
		return -EINVAL;
	}
	if (!(p->jitter >= 0.0 && p->jitter < 1.0)) {
		errbuf_set(err, errlen,
		    "retry.jitter must be a fraction in [0, 1)");
		return -EINVAL;
	}
	if (p->max_attempts > POLICY_MAX_ATTEMPTS) {
		errbuf_set(err, errlen, "retry.max_attempts must be <= %u",
		    POLICY_MAX_ATTEMPTS);
		return -EINVAL;
	}
	if (p->failed_rescan_after_ms < 0 ||
	    p->failed_rescan_after_ms > DURATION_MAX_MS) {
		errbuf_set(err, errlen,
		    "retry.failed_rescan_after must be >= 0 and at most 100 "
		    "years");
		return -EINVAL;
	}
	return 0;
}

uint64_t
policy_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t
policy_backoff(const struct retry_policy *p, uint32_t n, uint64_t seed)
{
	double d = (double)p->base_ms;
	if (n > 1)
		d *= pow(p->multiplier, (double)(n - 1));
	if (!(d <= (double)p->max_ms))
		d = (double)p->max_ms;
	if (p->jitter > 0) {
		/* u uniform in [-1, 1], from the top 53 bits of the hash */
		double u = (double)(policy_mix64(seed) >> 11) * 0x1.0p-53;
		d *= 1.0 + p->jitter * (2.0 * u - 1.0);
	}
	if (d < 0)
		d = 0;
	return (int64_t)llround(d);
}

bool
policy_should_retry(const struct retry_policy *p, enum entity_kind kind,
    enum error_class cls, uint32_t n)
{
	if (kind != ENTITY_IMAGE || cls != ERROR_RETRYABLE)
		return false;
	return p->max_attempts == 0 || n < p->max_attempts;
}
