/*
 * fuzz_dpkg: bytes -> var/lib/dpkg/status -> catalog_dpkg. A form feed
 * splits the input: what follows it is the DEP-5 copyright file of the
 * package "fuzz" (usr/share/doc/fuzz/copyright), so the license reader
 * is reached too. Any return code is fine; crashes, leaks and UB are not.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "scan/catalog/catalog.h"
#include "scan/fileset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct pkglist l;
	fileset *fs = fileset_new();
	const uint8_t *ff = size > 0 ? memchr(data, '\f', size) : NULL;
	size_t slen = ff != NULL ? (size_t)(ff - data) : size;

	(void)fileset_put(fs, "var/lib/dpkg/status", data, slen);
	if (ff != NULL)
		(void)fileset_put(fs, "usr/share/doc/fuzz/copyright", ff + 1,
		    size - slen - 1);
	pkglist_init(&l);
	(void)catalog_dpkg(fs, &l, err, sizeof(err));
	pkglist_free(&l);
	fileset_free(fs);
	return 0;
}
