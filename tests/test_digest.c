/*
 * test_digest: image ID parsing and formatting, and SHA-256
 * (consumer/util/digest).
 *
 * Image IDs arrive in Kafka messages, so the parser is strict: exactly
 * "sha256:" + 64 lowercase hex digits and nothing after. Every near miss
 * below must be refused with -EINVAL and a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/digest.h"
#include "testutil.h"

static const char abc_hex[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char empty_hex[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* Reference hex encoder, independent of digest_format. */
static void
to_hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
expect_reject(const char *s, const char *why)
{
	char err[256];
	uint8_t out[DIGEST_LEN];

	memset(err, 0, sizeof(err));
	int rc = digest_parse(s, out, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("digest_parse(%s: \"%s\") = %d, want -EINVAL", why,
		    s ? s : "(null)", rc);
	if (err[0] == '\0')
		fail_msg("digest_parse(%s) refused without a message", why);
	/* The message quotes the input (its first 40 bytes at least). */
	if (s != NULL && s[0] != '\0') {
		char head[41];
		snprintf(head, sizeof(head), "%s", s);
		if (strstr(err, head) == NULL)
			fail_msg("error for %s does not quote the input: %s",
			    why, err);
	}
}

static void
test_parse_known(void **state)
{
	char id[DIGEST_STR_LEN + 8], out[DIGEST_STR_LEN];
	uint8_t d[DIGEST_LEN];
	char err[256] = "";
	(void)state;

	snprintf(id, sizeof(id), "sha256:%s", abc_hex);
	assert_int_equal(digest_parse(id, d, err, sizeof(err)), 0);
	assert_int_equal(d[0], 0xba);
	assert_int_equal(d[1], 0x78);
	assert_int_equal(d[15], 0x23);
	assert_int_equal(d[16], 0xb0);
	assert_int_equal(d[31], 0xad);

	memset(out, 'X', sizeof(out));
	digest_format(d, out);
	assert_string_equal(out, id);
	assert_int_equal(strlen(out), DIGEST_STR_LEN - 1);

	/* all-zero and all-ones edge values */
	snprintf(id, sizeof(id), "sha256:%064d", 0);
	assert_int_equal(digest_parse(id, d, err, sizeof(err)), 0);
	for (size_t i = 0; i < DIGEST_LEN; i++)
		assert_int_equal(d[i], 0);
	memset(id, 'f', sizeof(id));
	memcpy(id, "sha256:", 7);
	id[7 + 64] = '\0';
	assert_int_equal(digest_parse(id, d, err, sizeof(err)), 0);
	for (size_t i = 0; i < DIGEST_LEN; i++)
		assert_int_equal(d[i], 0xff);
}

static void
test_round_trip(void **state)
{
	uint8_t d[DIGEST_LEN], back[DIGEST_LEN];
	char s[DIGEST_STR_LEN], want[DIGEST_STR_LEN];
	char err[256];
	(void)state;

	rng_seed(0xD16E57);
	for (int n = 0; n < 20000; n++) {
		for (size_t i = 0; i < DIGEST_LEN; i++)
			d[i] = (uint8_t)(rng_next() >> 56);
		memcpy(want, "sha256:", 7);
		to_hex(d, DIGEST_LEN, want + 7);

		memset(s, 'X', sizeof(s));
		digest_format(d, s);
		assert_string_equal(s, want);

		memset(back, 0x5a, sizeof(back));
		err[0] = '\0';
		if (digest_parse(s, back, err, sizeof(err)) != 0)
			fail_msg("digest_parse(\"%s\"): %s", s, err);
		assert_memory_equal(back, d, DIGEST_LEN);
	}
}

static void
test_rejects(void **state)
{
	char s[256];
	char hex64[65];
	(void)state;

	snprintf(hex64, sizeof(hex64), "%s", abc_hex);

	expect_reject(NULL, "NULL");
	expect_reject("", "empty");
	expect_reject("sha256:", "prefix only");
	expect_reject("sha256", "no colon");
	expect_reject(abc_hex, "bare hex without prefix");

	/* upper case anywhere: digits, prefix */
	for (size_t pos = 0; pos < 64; pos += 9) {
		snprintf(s, sizeof(s), "sha256:%s", hex64);
		s[7 + pos] = 'A';
		expect_reject(s, "one uppercase hex digit");
	}
	snprintf(s, sizeof(s), "sha256:%s", hex64);
	for (char *p = s + 7; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	expect_reject(s, "all uppercase hex");
	snprintf(s, sizeof(s), "SHA256:%s", hex64);
	expect_reject(s, "uppercase algorithm");

	/* other algorithms */
	snprintf(s, sizeof(s), "sha512:%s%s", hex64, hex64);
	expect_reject(s, "sha512 with 128 hex");
	snprintf(s, sizeof(s), "sha512:%s", hex64);
	expect_reject(s, "sha512 with 64 hex");
	snprintf(s, sizeof(s), "sha384:%s", hex64);
	expect_reject(s, "sha384");
	snprintf(s, sizeof(s), "md5:%s", hex64);
	expect_reject(s, "md5");
	snprintf(s, sizeof(s), " sha256:%s", hex64);
	expect_reject(s, "leading space");

	/* wrong lengths */
	snprintf(s, sizeof(s), "sha256:%.63s", hex64);
	expect_reject(s, "63 hex digits");
	snprintf(s, sizeof(s), "sha256:%s0", hex64);
	expect_reject(s, "65 hex digits");
	snprintf(s, sizeof(s), "sha256:%s%s", hex64, hex64);
	expect_reject(s, "128 hex digits");
	snprintf(s, sizeof(s), "sha256:%.1s", hex64);
	expect_reject(s, "1 hex digit");

	/* trailing bytes */
	static const char *const tails[] = {"\n", " ", "\t", ":", "g", "Z",
	    "\x01", "\xff", "@sha256:abc"};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		snprintf(s, sizeof(s), "sha256:%s%s", hex64, tails[i]);
		expect_reject(s, "trailing bytes");
	}

	/* non-hex characters at the first, a middle and the last digit */
	static const char nonhex[] = "gGzZ:- ./x\x7f\x80\xff";
	static const size_t positions[] = {0, 1, 31, 32, 62, 63};
	for (size_t c = 0; c < sizeof(nonhex) - 1; c++) {
		for (size_t k = 0; k < sizeof(positions) / sizeof(positions[0]);
		    k++) {
			snprintf(s, sizeof(s), "sha256:%s", hex64);
			s[7 + positions[k]] = nonhex[c];
			expect_reject(s, "non-hex character");
		}
	}
}

static void
test_every_byte_value(void **state)
{
	char s[DIGEST_STR_LEN];
	uint8_t d[DIGEST_LEN];
	char err[128];
	(void)state;

	/* Each of the 256 byte values in a middle digit: only 0-9a-f pass. */
	for (int c = 1; c < 256; c++) {
		snprintf(s, sizeof(s), "sha256:%s", abc_hex);
		s[7 + 40] = (char)c;
		int want_ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		int rc = digest_parse(s, d, err, sizeof(err));
		if (want_ok) {
			assert_int_equal(rc, 0);
			int v = c <= '9' ? c - '0' : c - 'a' + 10;
			/* digit 40 is the high nibble of byte 20 */
			assert_int_equal(d[20] >> 4, v);
		} else if (rc != -EINVAL) {
			fail_msg("byte 0x%02x accepted as a hex digit", c);
		}
	}
}

/* Every byte value at every one of the 64 positions (the digits are
 * decoded eight at a time: each lane of the word is checked), the whole
 * digest compared with a digit-by-digit decoding. */
static void
test_every_byte_every_position(void **state)
{
	char s[DIGEST_STR_LEN];
	uint8_t d[DIGEST_LEN], want[DIGEST_LEN];
	char err[128];
	(void)state;

	for (int pos = 0; pos < 2 * DIGEST_LEN; pos++) {
		for (int c = 1; c < 256; c++) {
			snprintf(s, sizeof(s), "sha256:%s", abc_hex);
			s[7 + pos] = (char)c;
			int ok = (c >= '0' && c <= '9') ||
			    (c >= 'a' && c <= 'f');
			int rc = digest_parse(s, d, err, sizeof(err));
			if (!ok) {
				if (rc != -EINVAL)
					fail_msg("byte 0x%02x at %d accepted",
					    c, pos);
				continue;
			}
			assert_int_equal(rc, 0);
			for (int i = 0; i < DIGEST_LEN; i++) {
				int hi = s[7 + 2 * i], lo = s[8 + 2 * i];
				hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
				lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
				want[i] = (uint8_t)(hi << 4 | lo);
			}
			assert_memory_equal(d, want, DIGEST_LEN);
		}
	}
}

/*
 * Every prefix of a valid ID, each in a heap block of exactly its size, so
 * that AddressSanitizer catches a read past the terminating NUL.
 */
static void
test_truncated_no_overread(void **state)
{
	char full[DIGEST_STR_LEN + 1];
	uint8_t d[DIGEST_LEN];
	char err[256];
	(void)state;

	snprintf(full, sizeof(full), "sha256:%s0", abc_hex); /* 65 digits */
	for (size_t len = 0; len <= strlen(full); len++) {
		char *s = malloc(len + 1);
		assert_non_null(s);
		memcpy(s, full, len);
		s[len] = '\0';
		int rc = digest_parse(s, d, err, sizeof(err));
		if (len == DIGEST_STR_LEN - 1)
			assert_int_equal(rc, 0);
		else if (rc != -EINVAL)
			fail_msg("a %zu-byte prefix gave %d, want -EINVAL", len,
			    rc);
		free(s);
	}
}

static void
test_sha256_vectors(void **state)
{
	uint8_t d[DIGEST_LEN];
	char hex[2 * DIGEST_LEN + 1];
	char id[DIGEST_STR_LEN];
	(void)state;

	digest_sha256("abc", 3, d);
	to_hex(d, DIGEST_LEN, hex);
	assert_string_equal(hex, abc_hex);

	digest_format(d, id);
	assert_string_equal(id + 7, abc_hex);

	digest_sha256("", 0, d);
	to_hex(d, DIGEST_LEN, hex);
	assert_string_equal(hex, empty_hex);

	/* FIPS 180-2 two-block message */
	static const char two[] =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	digest_sha256(two, sizeof(two) - 1, d);
	to_hex(d, DIGEST_LEN, hex);
	assert_string_equal(hex,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	/* embedded NUL bytes are hashed, not treated as terminators */
	uint8_t a[DIGEST_LEN], b[DIGEST_LEN];
	digest_sha256("host\0node-7", 11, a);
	digest_sha256("host", 4, b);
	assert_memory_not_equal(a, b, DIGEST_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_known),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_every_byte_value),
		cmocka_unit_test(test_every_byte_every_position),
		cmocka_unit_test(test_truncated_no_overread),
		cmocka_unit_test(test_sha256_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
