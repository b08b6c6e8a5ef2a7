/*
 * fuzz_rpmheader: bytes -> rpmheader_parse, then every getter the rpm
 * cataloger uses. The input is copied to a buffer of exactly its size so
 * that ASan sees a read one byte past the blob. A parsed header's
 * strings must end inside the blob.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/catalog/rpmheader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t tags[] = { RPMTAG_NAME, RPMTAG_VERSION,
		RPMTAG_RELEASE, RPMTAG_LICENSE, RPMTAG_ARCH, RPMTAG_SOURCERPM,
		RPMTAG_HEADERIMMUTABLE, 1047 };
	char err[256];
	rpmheader *h = NULL;
	unsigned char *b = malloc(size ? size : 1);

	if (b == NULL)
		abort();
	if (size > 0)
		memcpy(b, data, size);
	if (rpmheader_parse(b, size, &h, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
			const char *s = rpmheader_string(h, tags[i]);
			if (s != NULL && strlen(s) >= size)
				abort();
		}
		uint32_t v;
		(void)rpmheader_int32(h, RPMTAG_EPOCH, &v);
		(void)rpmheader_count(h);
	}
	rpmheader_free(h);
	free(b);
	return 0;
}
