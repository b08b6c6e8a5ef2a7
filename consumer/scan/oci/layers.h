/*
 * layers: applies image layers, in order, to a fileset without unpacking
 * anything to disk. A layer is a tar stream, plain, gzip or zstd (gzip is
 * recognised by its magic and inflated with ISA-L; libarchive tells zstd
 * and plain tar apart). Whiteouts (".wh.NAME") remove NAME from
 * lower layers, opaque markers (".wh..wh..opq") everything below their
 * directory; only files the catalogers want are kept.
 *
 * Hostile input is expected: every layer is bounded in compressed and
 * decompressed bytes and in entries, paths that climb out of the image
 * ("..", absolute after normalising) are refused, links are never
 * followed, and a decompression bomb stops at the bound with a reason.
 */
#ifndef SBOMD_SCAN_LAYERS_H
#define SBOMD_SCAN_LAYERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan/fileset.h"

struct layer_limits {
	uint64_t max_compressed;   /* bytes read from the blob */
	uint64_t max_uncompressed; /* bytes of tar stream after decompression */
	uint64_t max_entries;	   /* tar entries */
	/* NULL, or a flag another thread sets to stop the walk: checked
	 * before every entry, a non-zero value fails it with -ECANCELED. */
	const atomic_int *cancel;
};

/* Defaults: 8 GiB compressed, 32 GiB uncompressed, 2 M entries. */
void layer_limits_default(struct layer_limits *l);

/*
 * Reads more of a layer: up to len bytes into buf; returns the count,
 * 0 at the end, or a negative errno.
 */
typedef ssize_t (*layer_read_fn)(void *ctx, void *buf, size_t len);

/*
 * Applies one layer read through fn to fs. name names the layer in
 * messages (its digest or file). 0, or -EINVAL (corrupt or hostile: the
 * message says what and where), -EFBIG (a bound was passed), -ENOTSUP (a
 * compression this libarchive cannot read in-process), -EIO, -ECANCELED
 * (lim->cancel was set).
 */
int layer_apply(fileset *fs, layer_read_fn fn, void *ctx, const char *name,
    const struct layer_limits *lim, char *err, size_t errlen);

/* The same for a layer stored in a file. */
int layer_apply_file(fileset *fs, const char *path,
    const struct layer_limits *lim, char *err, size_t errlen);

#endif
