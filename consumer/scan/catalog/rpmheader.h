/*
 * rpmheader: a validating reader of one rpm header blob, the value the
 * SQLite rpmdb (rpm >= 4.16) keeps per package in Packages.blob.
 *
 * A blob is the on-disk header without its 8-byte magic: il and dl
 * (big-endian uint32: index entries, data bytes), il 16-byte index
 * entries (tag, type, offset, count, big-endian), then dl bytes of data.
 * rpmheader_parse checks all of it before anything is read: every entry
 * lies inside the data, every string is NUL-terminated inside it, counts
 * fit, the region entry is well formed. The getters then cannot read
 * outside the blob.
 *
 * An rpmheader borrows the blob: the blob must outlive it.
 */
#ifndef SBOMD_SCAN_CATALOG_RPMHEADER_H
#define SBOMD_SCAN_CATALOG_RPMHEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags sbomd reads (rpm's lib/rpmtag.h). */
#define RPMTAG_HEADERIMAGE 61
#define RPMTAG_HEADERSIGNATURES 62
#define RPMTAG_HEADERIMMUTABLE 63
#define RPMTAG_NAME 1000
#define RPMTAG_VERSION 1001
#define RPMTAG_RELEASE 1002
#define RPMTAG_EPOCH 1003
#define RPMTAG_LICENSE 1014
#define RPMTAG_ARCH 1022
#define RPMTAG_SOURCERPM 1044

/* Bounds, as rpm's own (lib/header.c hdrchkTags / hdrchkData). */
#define RPMHEADER_MAX_ENTRIES 0xffffu
#define RPMHEADER_MAX_DATA (256u << 20)

typedef struct rpmheader rpmheader;

/*
 * Validates blob[0..len) and returns a reader in *out. 0, or -EINVAL
 * with err saying what is wrong and at which byte offset of the blob.
 */
int rpmheader_parse(const void *blob, size_t len, rpmheader **out,
    char *err, size_t errlen);
void rpmheader_free(rpmheader *h);

/* Number of index entries (il). */
size_t rpmheader_count(const rpmheader *h);

/*
 * The first string of tag (types STRING, STRING_ARRAY, I18NSTRING), a
 * pointer into the blob; NULL when the tag is absent or not a string.
 */
const char *rpmheader_string(const rpmheader *h, uint32_t tag);

/*
 * The first value of an INT32 tag in *v; false when the tag is absent or
 * of another type.
 */
bool rpmheader_int32(const rpmheader *h, uint32_t tag, uint32_t *v);

#endif
