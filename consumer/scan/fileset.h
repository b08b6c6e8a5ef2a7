/*
 * fileset: the files of an image (or host) that the catalogers read, as
 * the image's filesystem presents them after all layers: path -> bytes.
 *
 * Paths are relative, normalised, without a leading "/" or "./"
 * ("var/lib/dpkg/status"). Only wanted files are kept (fileset_wanted),
 * each bounded in size, so a fileset stays small whatever the image. A
 * file is kept as the catalogers read it: the bytes, but for copyright
 * files, of which only the licenses they name are kept (fileset_put).
 * The layer walker fills one layer after another: a file in an upper
 * layer replaces the lower one, a whiteout removes it, an opaque
 * directory removes everything below it from lower layers.
 *
 * Single-threaded: one scan owns one fileset.
 */
#ifndef SBOMD_SCAN_FILESET_H
#define SBOMD_SCAN_FILESET_H

#include <stdbool.h>
#include <stddef.h>

/* The largest file a cataloger reads (a dpkg status of a big image is a
 * few MiB; an rpmdb.sqlite some tens). */
#define FILESET_MAX_FILE (64u << 20)
/* The most files and bytes one fileset holds. */
#define FILESET_MAX_FILES 100000
#define FILESET_MAX_BYTES (512u << 20)

typedef struct fileset fileset;

struct fileset_file {
	const char *path;
	const unsigned char *data;
	size_t len;
};

fileset *fileset_new(void);
void fileset_free(fileset *fs);

/* Whether a cataloger reads this path (so the walker keeps it): one of
 * fileset_wanted_paths, a file directly in var/lib/dpkg/status.d/, or
 * usr/share/doc/<package>/copyright. */
bool fileset_wanted(const char *path);
/* Whether some path fileset_wanted accepts could lie strictly below the
 * directory dir ("" is the root): a removal of everything below dir can
 * touch a fileset only then. */
bool fileset_wanted_below(const char *dir);
/* Changing what is wanted changes what a layer contributes: bump
 * LAYER_CACHE_FORMAT (scan/oci/layercache.h) with it. */
/* The paths fileset_wanted names one by one; NULL-terminated. */
extern const char *const fileset_wanted_paths[];

/*
 * Stores the file at path, whose content in the image is data, replacing
 * any earlier file: what the catalogers read of it, a copy of data, but
 * for a copyright file (usr/share/doc/<package>/copyright), of which the
 * set keeps only the licenses it names (catalog_dpkg_copyright). -EFBIG
 * when the file (len) or the set (what is kept) would pass its bound
 * (nothing is stored), -EINVAL for a path that is not normalised.
 */
int fileset_put(fileset *fs, const char *path, const void *data, size_t len);
/*
 * Stores a copy of an entry of another fileset (f->data as
 * fileset_get gives it, already what the set keeps: a layer's files
 * merged into the image's, a cached layer's files), with fileset_put's
 * bounds and errors.
 */
int fileset_put_kept(fileset *fs, const char *path, const void *data,
    size_t len);
/* Removes path (a whiteout). */
void fileset_remove(fileset *fs, const char *path);
/* Removes everything strictly below directory dir (an opaque dir). */
void fileset_remove_below(fileset *fs, const char *dir);

/* The file at path, or NULL. */
const struct fileset_file *fileset_get(const fileset *fs, const char *path);
/* Calls fn for every file whose path starts with prefix, in path order. */
void fileset_foreach(const fileset *fs, const char *prefix,
    void (*fn)(void *ctx, const struct fileset_file *f), void *ctx);
size_t fileset_count(const fileset *fs);

#endif
