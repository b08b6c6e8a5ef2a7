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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan/fileset.h"
#include "util/digest.h"

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

/*
 * A layer's effect on the layers below it, independent of them (what the
 * per-layer cache keeps, scan/oci/layercache.h): the removals it makes
 * (exact paths, and everything below a directory: whiteouts, opaque
 * directories, entries that replace a lower path) and its own wanted
 * files. Only removals that can touch a wanted file are kept (a fileset
 * never holds another), so a delta is small whatever the layer.
 * Applying a delta to the fileset of the lower layers is the same as
 * applying the layer: every removal, then every file.
 */
typedef struct layer_delta layer_delta;

/* What reading the layer cost, checked against the limits again when a
 * cached delta is used instead. */
struct layer_stats {
	uint64_t compressed;   /* blob bytes read */
	uint64_t uncompressed; /* tar stream bytes */
	uint64_t entries;      /* tar entries */
};

/* The most removals one delta holds (past it: -EFBIG). */
#define LAYER_MAX_REMOVALS 100000

layer_delta *layer_delta_new(void);
void layer_delta_free(layer_delta *d);
/* Records a removal: path exactly (below false), or everything strictly
 * below directory path (below true; "" is the root). -EFBIG past
 * LAYER_MAX_REMOVALS. */
int layer_delta_remove(layer_delta *d, const char *path, bool below);
size_t layer_delta_nremovals(const layer_delta *d);
/* Removal i (< layer_delta_nremovals), its kind in *below. */
const char *layer_delta_removal(const layer_delta *d, size_t i, bool *below);
/* The layer's own wanted files (a put adds one). */
fileset *layer_delta_files(layer_delta *d);
const fileset *layer_delta_files_const(const layer_delta *d);
struct layer_stats *layer_delta_stats(layer_delta *d);
const struct layer_stats *layer_delta_stats_const(const layer_delta *d);
/* Whether a delta read with these stats fits lim (a cached delta that
 * does not is read again, and fails as the layer itself would). */
bool layer_stats_fit(const struct layer_stats *st,
    const struct layer_limits *lim);
/*
 * Applies d to fs (the lower layers): every removal, then every file.
 * -EFBIG when the files pass the fileset bound (err names the layer,
 * name).
 */
int layer_delta_apply(fileset *fs, const layer_delta *d, const char *name,
    char *err, size_t errlen);

enum layer_compression {
	LAYER_COMP_PLAIN, /* a plain tar: the blob is the tar stream */
	LAYER_COMP_GZIP,  /* inflated by the gzip stage */
	LAYER_COMP_OTHER, /* zstd, or gzip read by libarchive itself */
};

/* In and out of layer_read. */
struct layer_read_info {
	bool want_diff; /* in: hash the inflated stream of a gzip layer */
	enum layer_compression comp; /* out */
	/* out: with want_diff and comp GZIP, after a walk that worked: the
	 * SHA-256 of the whole inflated stream (the layer's diffID), when
	 * it could be read to its end. */
	bool diff_known;
	uint8_t diff[DIGEST_LEN];
};

/*
 * Reads one layer through fn into d (empty): layer_apply's walk, with
 * its errors, without touching any fileset of the image. info may be
 * NULL.
 */
int layer_read(layer_delta *d, layer_read_fn fn, void *ctx, const char *name,
    const struct layer_limits *lim, struct layer_read_info *info, char *err,
    size_t errlen);

/* The same for a layer stored in a file. */
int layer_apply_file(fileset *fs, const char *path,
    const struct layer_limits *lim, char *err, size_t errlen);

#endif
