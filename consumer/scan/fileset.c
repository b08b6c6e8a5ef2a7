/*
 * fileset: a sorted array of {path, bytes}, searched by binary search.
 *
 * Why an array: a fileset holds only the files the catalogers want (a
 * package database or two, an os-release, one copyright file per dpkg
 * package, kept as the few license names it gives), so a few thousand
 * entries at most; lookups, prefix scans
 * (fileset_foreach, fileset_remove_below) and ordered iteration are then
 * all a binary search plus a contiguous range, and the memmove that an
 * insertion costs is a few KiB. The layer walker inserts in roughly tar
 * order, which is mostly sorted, so most inserts append.
 *
 * Invariants: files[0..n) sorted by strcmp of path, no two equal paths;
 * every path is normalised (fileset_path_ok); bytes is the sum of the
 * lengths; n <= FILESET_MAX_FILES, bytes <= FILESET_MAX_BYTES, every
 * len <= FILESET_MAX_FILE. Each file's data is a private copy followed by
 * one NUL byte that is not counted in len (a convenience for debugging; the
 * catalogers rely on len only).
 *
 * A struct fileset_file returned by fileset_get or passed to a foreach
 * callback stays valid until the next put or remove on the same set; a
 * foreach callback must not modify the set it walks.
 * Single-threaded: one scan owns one fileset.
 */
#include "scan/fileset.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan/catalog/catalog.h"
#include "util/xmalloc.h"

/* The longest path stored (a path this long is not one a cataloger
 * wants). */
#define FILESET_MAX_PATH 4096

struct fileset {
	struct fileset_file *files; /* sorted by path, unique */
	size_t n, cap;
	size_t bytes; /* sum of files[i].len */
};

#ifdef SBOMD_DEBUG
/* Checks the invariants; O(n), so only while the set is small (the tests
 * that fill a set to its bound would otherwise be quadratic). */
static void
fileset_check(const fileset *fs)
{
	if (fs->n > 4096)
		return;
	size_t sum = 0;
	for (size_t i = 0; i < fs->n; i++) {
		assert(fs->files[i].path != NULL);
		assert(fs->files[i].len <= FILESET_MAX_FILE);
		assert(i == 0 ||
		    strcmp(fs->files[i - 1].path, fs->files[i].path) < 0);
		sum += fs->files[i].len;
	}
	assert(sum == fs->bytes);
	assert(fs->n <= FILESET_MAX_FILES && fs->bytes <= FILESET_MAX_BYTES);
}
#else
#define fileset_check(fs) ((void)(fs))
#endif

fileset *
fileset_new(void)
{
	return xcalloc(1, sizeof(fileset));
}

static void
fileset_file_free(struct fileset_file *f)
{
	free((char *)f->path);
	free((unsigned char *)f->data);
}

void
fileset_free(fileset *fs)
{
	if (fs == NULL)
		return;
	for (size_t i = 0; i < fs->n; i++)
		fileset_file_free(&fs->files[i]);
	free(fs->files);
	free(fs);
}

/*
 * Normalised: non-empty, relative, components separated by single '/',
 * no "." or ".." component, no trailing '/', no NUL before the end, and
 * at most FILESET_MAX_PATH bytes.
 */
static bool
fileset_path_ok(const char *path)
{
	size_t len = strnlen(path, FILESET_MAX_PATH + 1);
	if (len == 0 || len > FILESET_MAX_PATH)
		return false;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t clen = slash ? (size_t)(slash - p) : strlen(p);
		if (clen == 0)
			return false; /* leading '/', "//" or trailing '/' */
		if (clen == 1 && p[0] == '.')
			return false;
		if (clen == 2 && p[0] == '.' && p[1] == '.')
			return false;
		if (slash == NULL)
			return true;
		p = slash + 1;
	}
}

/* The index of the first path >= key (n when none). */
static size_t
fileset_lower(const fileset *fs, const char *key)
{
	size_t lo = 0, hi = fs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(fs->files[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
fileset_has_prefix(const char *s, const char *prefix, size_t plen)
{
	return strncmp(s, prefix, plen) == 0;
}

/* One name component: non-empty, no '/', not "." or "..". */
static bool
fileset_component(const char *s, size_t len)
{
	if (len == 0 || memchr(s, '/', len) != NULL)
		return false;
	return !(len == 1 && s[0] == '.') &&
	    !(len == 2 && s[0] == '.' && s[1] == '.');
}

const char *const fileset_wanted_paths[] = {
	"etc/os-release",
	"usr/lib/os-release",
	"etc/debian_version", /* Debian's point release */
	"var/lib/dpkg/status",
	"lib/apk/db/installed",
	"var/lib/rpm/rpmdb.sqlite",
	"usr/lib/sysimage/rpm/rpmdb.sqlite",
	"var/lib/rpm/Packages",	   /* Berkeley DB: reported unsupported */
	"var/lib/rpm/Packages.db", /* ndb: reported unsupported */
	NULL,
};

/* Whether path is usr/share/doc/<package>/copyright. */
static bool
fileset_copyright(const char *path)
{
	static const char doc[] = "usr/share/doc/";
	static const char copyright[] = "/copyright";
	if (strncmp(path, doc, sizeof(doc) - 1) != 0)
		return false;
	const char *pkg = path + sizeof(doc) - 1;
	size_t len = strlen(pkg), clen = sizeof(copyright) - 1;
	if (len <= clen || strcmp(pkg + len - clen, copyright) != 0)
		return false;
	return fileset_component(pkg, len - clen);
}

bool
fileset_wanted(const char *path)
{
	if (!fileset_path_ok(path))
		return false;
	for (size_t i = 0; fileset_wanted_paths[i] != NULL; i++)
		if (strcmp(path, fileset_wanted_paths[i]) == 0)
			return true;

	static const char statusd[] = "var/lib/dpkg/status.d/";
	if (strncmp(path, statusd, sizeof(statusd) - 1) == 0) {
		const char *rest = path + sizeof(statusd) - 1;
		return fileset_component(rest, strlen(rest));
	}

	return fileset_copyright(path);
}

/* Whether s is dir itself or lies below it ("" holds everything). */
static bool
fileset_under(const char *s, const char *dir, size_t dlen)
{
	return dlen == 0 || (strncmp(s, dir, dlen) == 0 &&
	    (s[dlen] == '\0' || s[dlen] == '/'));
}

bool
fileset_wanted_below(const char *dir)
{
	size_t dlen = strlen(dir);
	if (dlen == 0)
		return true;
	/* A fixed path below dir: dir is one of its proper ancestors. */
	for (size_t i = 0; fileset_wanted_paths[i] != NULL; i++) {
		const char *w = fileset_wanted_paths[i];
		if (strlen(w) > dlen && fileset_under(w, dir, dlen))
			return true;
	}
	/* var/lib/dpkg/status.d/<name>: dir is status.d or above it. */
	if (fileset_under("var/lib/dpkg/status.d", dir, dlen))
		return true;
	/* usr/share/doc/<pkg>/copyright: dir is usr/share/doc or above it,
	 * or one package's directory. */
	if (fileset_under("usr/share/doc", dir, dlen))
		return true;
	static const char doc[] = "usr/share/doc/";
	if (strncmp(dir, doc, sizeof(doc) - 1) == 0) {
		const char *pkg = dir + sizeof(doc) - 1;
		return fileset_component(pkg, strlen(pkg));
	}
	return false;
}

/* Stores copy (len bytes and a NUL, ours: freed on failure) under path. */
static int
fileset_store(fileset *fs, const char *path, unsigned char *copy, size_t len)
{
	size_t i = fileset_lower(fs, path);
	bool replace = i < fs->n && strcmp(fs->files[i].path, path) == 0;
	size_t old = replace ? fs->files[i].len : 0;
	if (fs->bytes - old > FILESET_MAX_BYTES - len ||
	    (!replace && fs->n >= FILESET_MAX_FILES)) {
		free(copy);
		return -EFBIG;
	}
	if (replace) {
		free((unsigned char *)fs->files[i].data);
	} else {
		if (fs->n == fs->cap) {
			fs->cap = fs->cap ? fs->cap * 2 : 16;
			fs->files = xreallocarray(fs->files, fs->cap,
			    sizeof(fs->files[0]));
		}
		memmove(&fs->files[i + 1], &fs->files[i],
		    (fs->n - i) * sizeof(fs->files[0]));
		fs->files[i].path = xstrdup(path);
		fs->n++;
	}
	fs->files[i].data = copy;
	fs->files[i].len = len;
	fs->bytes = fs->bytes - old + len;
	fileset_check(fs);
	return 0;
}

int
fileset_put_kept(fileset *fs, const char *path, const void *data,
    size_t len)
{
	if (!fileset_path_ok(path))
		return -EINVAL;
	if (len > FILESET_MAX_FILE)
		return -EFBIG;
	unsigned char *copy = xmalloc(len + 1);
	if (len > 0)
		memcpy(copy, data, len);
	copy[len] = '\0';
	return fileset_store(fs, path, copy, len);
}

int
fileset_put(fileset *fs, const char *path, const void *data, size_t len)
{
	if (!fileset_copyright(path))
		return fileset_put_kept(fs, path, data, len);
	if (!fileset_path_ok(path))
		return -EINVAL;
	if (len > FILESET_MAX_FILE)
		return -EFBIG;
	unsigned char *kept;
	size_t klen;
	catalog_dpkg_copyright(data, len, &kept, &klen);
	return fileset_store(fs, path, kept, klen);
}

/* Drops files [lo, hi). */
static void
fileset_drop(fileset *fs, size_t lo, size_t hi)
{
	if (lo >= hi)
		return;
	for (size_t i = lo; i < hi; i++) {
		fs->bytes -= fs->files[i].len;
		fileset_file_free(&fs->files[i]);
	}
	memmove(&fs->files[lo], &fs->files[hi],
	    (fs->n - hi) * sizeof(fs->files[0]));
	fs->n -= hi - lo;
	fileset_check(fs);
}

void
fileset_remove(fileset *fs, const char *path)
{
	size_t i = fileset_lower(fs, path);
	if (i < fs->n && strcmp(fs->files[i].path, path) == 0)
		fileset_drop(fs, i, i + 1);
}

void
fileset_remove_below(fileset *fs, const char *dir)
{
	size_t dlen = strnlen(dir, FILESET_MAX_PATH + 1);
	while (dlen > 0 && dir[dlen - 1] == '/')
		dlen--;
	if (dlen == 0) { /* the root directory: everything is below it */
		fileset_drop(fs, 0, fs->n);
		return;
	}
	if (dlen > FILESET_MAX_PATH)
		return; /* no stored path is that long */
	char prefix[FILESET_MAX_PATH + 2];
	memcpy(prefix, dir, dlen);
	prefix[dlen] = '/';
	prefix[dlen + 1] = '\0';
	/* All paths with a given prefix form one contiguous run in strcmp
	 * order, starting at the lower bound of the prefix. */
	size_t lo = fileset_lower(fs, prefix), hi = lo;
	while (hi < fs->n && fileset_has_prefix(fs->files[hi].path, prefix,
	    dlen + 1))
		hi++;
	fileset_drop(fs, lo, hi);
}

const struct fileset_file *
fileset_get(const fileset *fs, const char *path)
{
	size_t i = fileset_lower(fs, path);
	if (i < fs->n && strcmp(fs->files[i].path, path) == 0)
		return &fs->files[i];
	return NULL;
}

void
fileset_foreach(const fileset *fs, const char *prefix,
    void (*fn)(void *ctx, const struct fileset_file *f), void *ctx)
{
	size_t plen = strlen(prefix);
	for (size_t i = fileset_lower(fs, prefix);
	    i < fs->n && fileset_has_prefix(fs->files[i].path, prefix, plen);
	    i++)
		fn(ctx, &fs->files[i]);
}

size_t
fileset_count(const fileset *fs)
{
	return fs->n;
}
