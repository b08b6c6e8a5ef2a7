/*
 * digest: strict parsing of image IDs. Input comes straight from Kafka
 * messages, so every byte is checked and nothing is trusted to be
 * NUL-terminated within the expected length. Pure functions, any thread.
 */
#include "util/digest.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/errbuf.h"

/* Lowercase hex digit values by byte; -1 for every other byte. */
static const int8_t hexval_tab[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static inline int
hexval(unsigned char c)
{
	return hexval_tab[c];
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/*
 * Eight lowercase hex digits, the first in w's lowest byte (little-endian
 * load), as four bytes in memory order; *bad gets a bit set when any byte
 * is not [0-9a-f]. Each byte is first checked to be below 0x80, so that
 * adding up to 0x7f to it carries into no other byte.
 */
static inline uint32_t
hex8(uint64_t w, uint64_t *bad)
{
	uint64_t ge0 = w + (0x80 - '0') * ONES;	 /* high bit: c >= '0' */
	uint64_t gt9 = w + (0x80 - '9' - 1) * ONES; /* c > '9' */
	uint64_t gea = w + (0x80 - 'a') * ONES;	 /* c >= 'a' */
	uint64_t gtf = w + (0x80 - 'f' - 1) * ONES; /* c > 'f' */
	uint64_t digit = ge0 & ~gt9, letter = gea & ~gtf;
	*bad |= (w & HIGH) | (~(digit | letter) & HIGH);
	uint64_t v = (w & 0x0f * ONES) + ((letter >> 7) & ONES) * 9;
	v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffULL; /* pairs */
	v = (v | (v >> 8)) & 0x0000ffff0000ffffULL;
	v = (v | (v >> 16)) & 0xffffffffULL;
	return (uint32_t)v;
}

static int
digest_error(const char *s, char *err, size_t errlen)
{
	static const char prefix[] = "sha256:";
	const size_t plen = sizeof(prefix) - 1;

	if (s == NULL) {
		errbuf_set(err, errlen, "missing image id");
		return -EINVAL;
	}
	if (strncmp(s, prefix, plen) != 0) {
		errbuf_set(err, errlen,
		    "image id \"%.80s\" does not start with \"sha256:\"", s);
		return -EINVAL;
	}
	size_t n = strnlen(s + plen, 2 * DIGEST_LEN + 1);
	if (n != 2 * DIGEST_LEN) {
		errbuf_set(err, errlen,
		    "image id \"%.80s\" must have exactly 64 hex digits after "
		    "\"sha256:\"", s);
		return -EINVAL;
	}
	for (size_t i = plen; i < plen + 2 * DIGEST_LEN; i++) {
		if (hexval((unsigned char)s[i]) < 0) {
			errbuf_set(err, errlen,
			    "image id \"%.80s\" has a character that is not "
			    "lowercase hex at position %zu", s, i);
			return -EINVAL;
		}
	}
	errbuf_set(err, errlen, "image id \"%.80s\" is malformed", s);
	return -EINVAL;
}

int
digest_parse(const char *s, uint8_t out[DIGEST_LEN], char *err, size_t errlen)
{
	static const char prefix[] = "sha256:";

	if (s == NULL)
		return digest_error(s, err, errlen);
	for (size_t i = 0; i < 7; i++)
		if (s[i] != prefix[i])
			return digest_error(s, err, errlen);
	const unsigned char *p = (const unsigned char *)s + 7;
	if (strnlen((const char *)p, 2 * DIGEST_LEN + 1) != 2 * DIGEST_LEN)
		return digest_error(s, err, errlen);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Eight digits at a time (the digest is parsed for every event). */
	uint64_t bad = 0;
	for (size_t i = 0; i < DIGEST_LEN / 4; i++) {
		uint64_t w;
		memcpy(&w, p + 8 * i, 8);
		uint32_t v = hex8(w, &bad);
		memcpy(out + 4 * i, &v, 4);
	}
	if (bad != 0)
		return digest_error(s, err, errlen);
#else
	/* Branch-free over the 64 digits (random hex defeats the branch
	 * predictor): any bad byte makes the OR of all values negative. */
	int bad = 0;
	for (size_t i = 0; i < 2 * DIGEST_LEN; i++)
		bad |= hexval(p[i]);
	if (bad < 0)
		return digest_error(s, err, errlen);
	for (size_t i = 0; i < DIGEST_LEN; i++)
		out[i] = (uint8_t)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1]));
#endif
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
