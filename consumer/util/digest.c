/*
 * digest: strict parsing of image IDs. Input comes straight from Kafka
 * messages, so every byte is checked and nothing is trusted to be
 * NUL-terminated within the expected length. Pure functions, any thread.
 */
#include "util/digest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

/* The value of a lowercase hex digit, or -1. */
static inline int
hexval(unsigned char c)
{
	if ((unsigned)(c - '0') < 10)
		return c - '0';
	if ((unsigned)(c - 'a') < 6)
		return c - 'a' + 10;
	return -1;
}

static int
digest_error(const char *s, char *err, size_t errlen)
{
	static const char prefix[] = "sha256:";
	const size_t plen = sizeof(prefix) - 1;

	if (s == NULL) {
		snprintf(err, errlen, "missing image id");
		return -EINVAL;
	}
	if (strncmp(s, prefix, plen) != 0) {
		snprintf(err, errlen,
		    "image id \"%.80s\" does not start with \"sha256:\"", s);
		return -EINVAL;
	}
	size_t n = strnlen(s + plen, 2 * DIGEST_LEN + 1);
	if (n != 2 * DIGEST_LEN) {
		snprintf(err, errlen,
		    "image id \"%.80s\" must have exactly 64 hex digits after "
		    "\"sha256:\"", s);
		return -EINVAL;
	}
	for (size_t i = plen; i < plen + 2 * DIGEST_LEN; i++) {
		if (hexval((unsigned char)s[i]) < 0) {
			snprintf(err, errlen,
			    "image id \"%.80s\" has a character that is not "
			    "lowercase hex at position %zu", s, i);
			return -EINVAL;
		}
	}
	snprintf(err, errlen, "image id \"%.80s\" is malformed", s);
	return -EINVAL;
}

int
digest_parse(const char *s, uint8_t out[DIGEST_LEN], char *err, size_t errlen)
{
	/* Fast path: one pass that stops at the first bad byte (a NUL
	 * included, so nothing is read past the end of a short string). */
	static const char prefix[] = "sha256:";

	if (s == NULL)
		return digest_error(s, err, errlen);
	for (size_t i = 0; i < 7; i++)
		if (s[i] != prefix[i])
			return digest_error(s, err, errlen);
	const unsigned char *p = (const unsigned char *)s + 7;
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = hexval(p[2 * i]);
		if (hi < 0)
			return digest_error(s, err, errlen);
		int lo = hexval(p[2 * i + 1]);
		if (lo < 0)
			return digest_error(s, err, errlen);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (p[2 * DIGEST_LEN] != '\0')
		return digest_error(s, err, errlen);
	return 0;
}

void
digest_format(const uint8_t d[DIGEST_LEN], char out[DIGEST_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		out[7 + 2 * i] = hex[d[i] >> 4];
		out[7 + 2 * i + 1] = hex[d[i] & 15];
	}
	out[7 + 2 * DIGEST_LEN] = '\0';
}

void
digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_LEN])
{
	unsigned int outlen = DIGEST_LEN;

	if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) != 1)
		memset(out, 0, DIGEST_LEN);
}
