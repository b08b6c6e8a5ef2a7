/*
 * duration: "250ms", "5m", "1h30m" and friends, as milliseconds.
 */
#ifndef SBOMD_UTIL_DURATION_H
#define SBOMD_UTIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* The largest duration accepted anywhere: 100 years. */
#define DURATION_MAX_MS ((int64_t)100 * 365 * 24 * 3600 * 1000)

/*
 * Parses one or more <number><unit> groups (units: ms, s, m, h, d; the
 * number may have a fraction, "1.5h") into *ms. A bare "0" is allowed.
 * Negative, empty or unit-less text returns -EINVAL, text larger than
 * DURATION_MAX_MS -ERANGE, each with a reason in err.
 */
int duration_parse(const char *s, int64_t *ms, char *err, size_t errlen);

/* Writes a short human form ("1h30m", "250ms", "0s") into buf. */
void duration_format(int64_t ms, char *buf, size_t buflen);

#endif
