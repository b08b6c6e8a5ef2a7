/*
 * test_reference: reference_valid against the distribution reference
 * grammar, a table of references docker accepts and of strings it
 * refuses (options, uppercase paths, bad tags and digests, empty parts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "scan/reference.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"debian",
		"debian:12",
		"debian:latest",
		"library/debian",
		"docker.io/library/debian:12.5-slim",
		"a",
		"a/b/c/d",
		"a.b_c__d-e--f",
		"app:_tag",
		"app:V1.2_RC-3",
		"localhost/app",
		"localhost:5000/app:1",
		"Registry.Example.COM/app",
		"my-registry.io:443/team/app@sha256:" HEX64,
		"app:1@sha256:" HEX64,
		"app@sha512+b64.x_y-z:" HEX64,
		"[::1]:5000/app",
		"[fe80::1]/app:1",
		"192.168.1.10:5000/app",
		"sha256:" HEX64, /* an image ID: name "sha256", that tag */
		"app@sha256:0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!reference_valid(ok[i]))
			fail_msg("refused: %s", ok[i]);
}

static void
test_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"-rf",
		"--output=/tmp/x",
		"UPPER/Case@xyz",
		"UPPER",
		"App",
		"library/Debian",
		"/debian",
		"debian/",
		"a//b",
		"a..b",
		"a._b",
		"a___b",
		"-a",
		"a-",
		"a_",
		".a",
		"debian:",
		"debian:-x",
		"debian:.x",
		"debian:a/b",
		"debian:a b",
		"debian@",
		"debian@sha256",
		"debian@sha256:",
		"debian@sha256:abc",
		"debian@sha256:0123456789abcdef0123456789abcde", /* 31 */
		"debian@sha256:" HEX64 "g",
		"debian@:" HEX64,
		"debian@1sha:" HEX64,
		"debian@sha256::" HEX64,
		"debian@sha256:" HEX64 "@sha256:" HEX64,
		"-registry.io/app",
		"registry-.io/app",
		"registry.io:/app",
		"registry.io:50a0/app",
		"[::1/app",
		"[]/app",
		"[::g]/app",
		"a b",
		"a\nb",
		"../../etc/passwd",
		"app:1:2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (reference_valid(bad[i]))
			fail_msg("accepted: \"%s\"", bad[i]);
}

static void
test_lengths(void **state)
{
	(void)state;
	char s[600];
	/* a name of exactly 255 bytes, then one more */
	memset(s, 'a', 255);
	s[255] = '\0';
	assert_true(reference_valid(s));
	s[255] = 'a';
	s[256] = '\0';
	assert_false(reference_valid(s));
	/* a tag of 128 bytes, then 129 */
	snprintf(s, sizeof(s), "app:");
	memset(s + 4, 't', 128);
	s[132] = '\0';
	assert_true(reference_valid(s));
	s[132] = 't';
	s[133] = '\0';
	assert_false(reference_valid(s));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
