/*
 * duration: parsing and printing of the duration strings used in the
 * configuration. Pure functions, any thread.
 */
#include "util/duration.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/errbuf.h"

static const struct {
	const char *name;
	int64_t ms;
} units[] = {
	{"ms", 1},
	{"s", 1000},
	{"m", 60 * 1000},
	{"h", 3600 * 1000},
	{"d", 24 * 3600 * 1000},
};

int
duration_parse(const char *s, int64_t *ms, char *err, size_t errlen)
{
	const char *p = s;
	double total = 0;

	if (s == NULL || *s == '\0') {
		errbuf_set(err, errlen, "empty duration");
		return -EINVAL;
	}
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	while (*p != '\0') {
		const char *start = p;
		double value = 0, scale = 0;
		int digits = 0;

		if (*p == '-') {
			errbuf_set(err, errlen, "negative duration \"%s\"", s);
			return -EINVAL;
		}
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (value < 1e15)
				value = value * 10 + (*p - '0');
			else
				value = INFINITY;
		}
		if (*p == '.') {
			p++;
			for (scale = 0.1; *p >= '0' && *p <= '9'; p++,
			    digits++, scale /= 10)
				value += (*p - '0') * scale;
		}
		if (digits == 0) {
			errbuf_set(err, errlen,
			    "bad duration \"%s\": expected a number at \"%s\"",
			    s, start);
			return -EINVAL;
		}
		size_t best = 0;
		int64_t unit = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].name);
			if (strncmp(p, units[i].name, n) == 0 && n > best) {
				best = n;
				unit = units[i].ms;
			}
		}
		if (best == 0) {
			errbuf_set(err, errlen,
			    "bad duration \"%s\": expected a unit (ms, s, m, h, d) "
			    "at \"%s\"", s, p);
			return -EINVAL;
		}
		p += best;
		total += value * (double)unit;
		if (!(total <= (double)DURATION_MAX_MS)) {
			errbuf_set(err, errlen,
			    "duration \"%s\" is too large (at most 100 years)", s);
			return -ERANGE;
		}
	}
	*ms = (int64_t)llround(total);
	return 0;
}

void
duration_format(int64_t ms, char *buf, size_t buflen)
{
	static const struct {
		const char *name;
		int64_t ms;
	} parts[] = {
		{"d", 24 * 3600 * 1000}, {"h", 3600 * 1000}, {"m", 60 * 1000},
		{"s", 1000}, {"ms", 1},
	};
	size_t used = 0;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	if (ms <= 0) {
		snprintf(buf, buflen, ms == 0 ? "0s" : "-%s", "?");
		return;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && ms > 0; i++) {
		int64_t n = ms / parts[i].ms;
		if (n == 0)
			continue;
		ms -= n * parts[i].ms;
		int w = snprintf(buf + used, buflen - used, "%lld%s",
		    (long long)n, parts[i].name);
		if (w < 0 || (size_t)w >= buflen - used)
			return;
		used += (size_t)w;
	}
}
