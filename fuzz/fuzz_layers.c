/*
 * fuzz_layers: bytes -> layer_apply (plain, gzip or zstd tar; libarchive
 * decides) on an empty fileset, with small bounds so that a bomb stops
 * quickly, then the catalogers over whatever the layer left. Any return
 * code is fine; crashes, leaks and UB are not.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "scan/catalog/catalog.h"
#include "scan/fileset.h"
#include "scan/oci/layers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t len, off;
};

static ssize_t
mem_read(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;
	size_t n = m->len - m->off;
	if (n > len)
		n = len;
	/* short reads, as a pipe gives */
	if (n > 4096)
		n = 4096;
	memcpy(buf, m->p + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct mem m = { data, size, 0 };
	struct layer_limits lim = {
		.max_compressed = 1u << 20,
		.max_uncompressed = 8u << 20,
		.max_entries = 1000,
	};
	fileset *fs = fileset_new();
	struct pkglist l;
	struct os_info os;

	if (layer_apply(fs, mem_read, &m, "fuzz", &lim, err,
	    sizeof(err)) == 0) {
		pkglist_init(&l);
		(void)catalog_dpkg(fs, &l, err, sizeof(err));
		(void)catalog_apk(fs, &l, err, sizeof(err));
		pkglist_free(&l);
		memset(&os, 0, sizeof(os));
		(void)catalog_os(fs, &os, err, sizeof(err));
		os_info_free(&os);
	}
	fileset_free(fs);
	return 0;
}
