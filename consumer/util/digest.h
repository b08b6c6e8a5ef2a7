/*
 * digest: image IDs ("sha256:" + 64 lowercase hex) as 32 raw bytes, and
 * SHA-256 itself (OpenSSL's libcrypto).
 */
#ifndef SBOMD_UTIL_DIGEST_H
#define SBOMD_UTIL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN 32
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STR_LEN 72

/*
 * Parses "sha256:<64 lowercase hex>" into out. Anything else (another
 * algorithm, upper case, wrong length, trailing bytes) returns -EINVAL and
 * says what is wrong in err. Returns 0 on success.
 */
int digest_parse(const char *s, uint8_t out[DIGEST_LEN], char *err,
    size_t errlen);

/* Formats 32 bytes as "sha256:<hex>" into out (DIGEST_STR_LEN bytes). */
void digest_format(const uint8_t d[DIGEST_LEN], char out[DIGEST_STR_LEN]);

/* SHA-256 of len bytes. */
void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_LEN]);

#endif
