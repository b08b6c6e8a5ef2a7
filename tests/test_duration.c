/*
 * test_duration: duration_parse / duration_format (consumer/util/duration).
 *
 * Valid forms give exact millisecond values; every invalid form is refused
 * with a negative errno and a message that quotes the input; formatting a
 * value and parsing the text back gives the same value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/duration.h"
#include "testutil.h"

#define S_MS ((int64_t)1000)
#define M_MS (60 * S_MS)
#define H_MS (60 * M_MS)
#define D_MS (24 * H_MS)

static int64_t
parse_ok(const char *s)
{
	char err[256] = "";
	int64_t ms = -12345;
	int rc = duration_parse(s, &ms, err, sizeof(err));
	if (rc != 0)
		fail_msg("duration_parse(\"%s\") = %d (%s), want 0", s, rc, err);
	return ms;
}

static void
test_valid_forms(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} cases[] = {
		{"250ms", 250},
		{"5m", 5 * M_MS},
		{"1h30m", H_MS + 30 * M_MS},
		{"1.5h", H_MS + 30 * M_MS},
		{"0", 0},
		{"2d", 2 * D_MS},
		{"0s", 0},
		{"0ms", 0},
		{"1ms", 1},
		{"1s", S_MS},
		{"90s", 90 * S_MS},
		{"1.25s", 1250},
		{"0.5s", 500},
		{"1d1h1m1s1ms", D_MS + H_MS + M_MS + S_MS + 1},
		{"5m30s", 5 * M_MS + 30 * S_MS},
		{"1h0m", H_MS},
		{"24h", D_MS},
		{"007s", 7 * S_MS},
		{"36500d", DURATION_MAX_MS}, /* exactly the limit */
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = parse_ok(cases[i].s);
		if (got != cases[i].ms)
			fail_msg("duration_parse(\"%s\") = %lld ms, want %lld",
			    cases[i].s, (long long)got, (long long)cases[i].ms);
	}
}

static void
expect_invalid(const char *s, int allow_erange)
{
	char err[256];
	int64_t ms = 777;

	memset(err, 0, sizeof(err));
	int rc = duration_parse(s, &ms, err, sizeof(err));
	if (rc == 0)
		fail_msg("duration_parse(\"%s\") accepted (%lld ms)", s,
		    (long long)ms);
	if (!(rc == -EINVAL || (allow_erange && rc == -ERANGE)))
		fail_msg("duration_parse(\"%s\") = %d, want -EINVAL%s", s, rc,
		    allow_erange ? " or -ERANGE" : "");
	if (err[0] == '\0')
		fail_msg("duration_parse(\"%s\") failed without a message", s);
	/* The message names the text the user wrote. */
	if (s != NULL && s[0] != '\0' && strstr(err, s) == NULL)
		fail_msg("error for \"%s\" does not quote it: %s", s, err);
}

static void
test_invalid_forms(void **state)
{
	static const char *const bad[] = {
		"-5m", "5", "5x", "m", "ms", "s", "-0", "+5m", " 5m", "5m ",
		"5 m", "1h-5m", "1h 30m", ".", "1.", "5M", "5H", "1.5",
		"5mx", "5msec", "1h30", "h1", "1e3s", "0x10s", "5m\n", "--5m",
		"00", "5mm", "1e400d",
	};
	(void)state;

	expect_invalid("", 0);
	expect_invalid(NULL, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_invalid(bad[i], 0);
}

static void
test_too_large(void **state)
{
	static const char *const huge[] = {
		"999999999999d",
		"36501d",
		"36500d1ms",
		"876001h",
		"99999999999999999999999999999999999999ms",
		"3153600000001ms",
		"36499d24h1ms",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
		expect_invalid(huge[i], 1);
	/* Just under the limit is fine. */
	assert_int_equal(parse_ok("36499d23h59m59s999ms"),
	    DURATION_MAX_MS - 1);
}

static void
format_is(int64_t ms, const char *want)
{
	char buf[64];

	memset(buf, 'X', sizeof(buf));
	duration_format(ms, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fail_msg("duration_format(%lld) = \"%s\", want \"%s\"",
		    (long long)ms, buf, want);
}

static void
test_format(void **state)
{
	(void)state;

	format_is(0, "0s");
	format_is(1, "1ms");
	format_is(250, "250ms");
	format_is(S_MS, "1s");
	format_is(5 * M_MS, "5m");
	format_is(H_MS + 30 * M_MS, "1h30m");
	format_is(2 * D_MS, "2d");
	format_is(D_MS + H_MS + M_MS + S_MS + 1, "1d1h1m1s1ms");
	format_is(D_MS + 1, "1d1ms");
	format_is(DURATION_MAX_MS, "36500d");
}

static void
test_format_small_buffer(void **state)
{
	char buf[8];
	(void)state;

	/* Never writes past buflen and always terminates. */
	for (size_t len = 1; len <= sizeof(buf); len++) {
		memset(buf, 'X', sizeof(buf));
		duration_format(D_MS + H_MS + M_MS + S_MS + 1, buf, len);
		assert_true(memchr(buf, '\0', len) != NULL);
		for (size_t k = len; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 'X');
	}
	memset(buf, 'X', sizeof(buf));
	duration_format(5 * M_MS, buf, 0);
	assert_int_equal(buf[0], 'X');
}

static void
test_round_trip(void **state)
{
	static const char *const texts[] = {
		"250ms", "5m", "1h30m", "1.5h", "0", "2d", "90s", "1.25s",
		"1d1h1m1s1ms", "36500d", "48h", "61m", "3600001ms",
	};
	char buf[64];
	(void)state;

	/* text -> ms -> canonical text -> the same ms */
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int64_t ms = parse_ok(texts[i]);
		duration_format(ms, buf, sizeof(buf));
		int64_t again = parse_ok(buf);
		if (again != ms)
			fail_msg("\"%s\" -> %lld -> \"%s\" -> %lld", texts[i],
			    (long long)ms, buf, (long long)again);
	}

	/* ms -> text -> ms over the whole accepted range, and small values */
	rng_seed(0x5EEDD0A7104ULL);
	for (int i = 0; i < 100000; i++) {
		int64_t ms;
		switch (i % 4) {
		case 0:
			ms = (int64_t)(rng_next() % (uint64_t)(DURATION_MAX_MS + 1));
			break;
		case 1:
			ms = (int64_t)(rng_next() % (uint64_t)(2 * D_MS));
			break;
		case 2:
			/* whole units: tests the omission of zero parts */
			ms = (int64_t)(rng_next() % 1000) *
			    (int64_t[]){S_MS, M_MS, H_MS, D_MS}[rng_next() % 4];
			break;
		default:
			ms = (int64_t)(rng_next() % 5000);
			break;
		}
		duration_format(ms, buf, sizeof(buf));
		int64_t again = parse_ok(buf);
		if (again != ms)
			fail_msg("%lld -> \"%s\" -> %lld", (long long)ms, buf,
			    (long long)again);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_forms),
		cmocka_unit_test(test_invalid_forms),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
