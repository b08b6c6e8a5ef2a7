/*
 * fuzz_apk: bytes -> lib/apk/db/installed -> catalog_apk. Any return
 * code is fine; crashes, leaks and UB are not.
 */
#include <stddef.h>
#include <stdint.h>

#include "scan/catalog/catalog.h"
#include "scan/fileset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct pkglist l;
	fileset *fs = fileset_new();

	(void)fileset_put(fs, "lib/apk/db/installed", data, size);
	pkglist_init(&l);
	(void)catalog_apk(fs, &l, err, sizeof(err));
	pkglist_free(&l);
	fileset_free(fs);
	return 0;
}
