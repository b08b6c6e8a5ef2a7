/*
 * dirscan: the fileset of a plain directory tree (dir:ROOT, host scans).
 *
 * No walk of the whole tree: the wanted paths are fileset_wanted_paths
 * plus two directories to list (var/lib/dpkg/status.d/ and
 * usr/share/doc/, whose entries give usr/share/doc/<pkg>/copyright), so a
 * host with a million files costs a few thousand system calls. Every path
 * is checked against fileset_wanted before it is put.
 *
 * Path resolution never lets the kernel follow a link: it walks one
 * component at a time from a descriptor of root with fstatat
 * (AT_SYMLINK_NOFOLLOW) and openat (O_NOFOLLOW), keeping a stack of
 * directory descriptors. A symbolic link is read with readlinkat and its
 * target spliced in front of the rest of the path; an absolute target
 * restarts at root (root is "/"), ".." pops the stack, and ".." at root
 * means the link climbs out of the tree: the path is skipped. At most
 * DIRSCAN_MAX_HOPS links per path, DIRSCAN_MAX_DEPTH directories deep and
 * DIRSCAN_MAX_PATH bytes of pending path; past any of them the path is
 * skipped (as a loop would be). Only regular files are read, opened with
 * O_NONBLOCK so a FIFO swapped in after the check cannot block us, and
 * re-checked with fstat on the open descriptor.
 *
 * Size bound: a file larger than FILESET_MAX_FILE (by fstat or by what
 * read returns) is an -EFBIG error naming it rather than a silent skip,
 * because a package database left out would make the SBOM wrong without
 * saying so. Single-threaded; the caller owns fs.
 */
#include "scan/dirscan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

#define DIRSCAN_MAX_DEPTH 64
#define DIRSCAN_MAX_PATH 8192
/* Longer than any name (NAME_MAX). */
#define DIRSCAN_MAX_NAME 256

/* A path being resolved below the root (see the top). */
struct dirscan_walk {
	int stack[DIRSCAN_MAX_DEPTH + 1]; /* stack[0]: the root, not owned */
	size_t depth;
	char rest[DIRSCAN_MAX_PATH]; /* the path; what is left starts at pos */
	size_t pos;
	int hops; /* links followed */
};

static void
walk_pop_to(struct dirscan_walk *w, size_t depth)
{
	while (w->depth > depth)
		close(w->stack[w->depth--]);
}

/*
 * The next component of the path into comp; *last when none follows it.
 * 0; -ENOENT at the end of the path; -ENAMETOOLONG for a component longer
 * than any name.
 */
static int
walk_next(struct dirscan_walk *w, char comp[DIRSCAN_MAX_NAME], bool *last)
{
	while (w->rest[w->pos] == '/')
		w->pos++;
	if (w->rest[w->pos] == '\0')
		return -ENOENT;
	size_t b = w->pos;
	while (w->rest[w->pos] != '\0' && w->rest[w->pos] != '/')
		w->pos++;
	size_t clen = w->pos - b, after = w->pos;
	if (clen >= DIRSCAN_MAX_NAME)
		return -ENAMETOOLONG;
	memcpy(comp, w->rest + b, clen);
	comp[clen] = '\0';
	while (w->rest[after] == '/')
		after++;
	*last = w->rest[after] == '\0';
	return 0;
}

/*
 * Splices the target of the link comp (in the current directory) in
 * front of the rest of the path; an absolute target restarts at the root.
 * -ENOENT (skip the path) past DIRSCAN_MAX_HOPS or DIRSCAN_MAX_PATH.
 */
static int
walk_link(struct dirscan_walk *w, const char *comp)
{
	char target[DIRSCAN_MAX_PATH], tmp[DIRSCAN_MAX_PATH];

	if (++w->hops > DIRSCAN_MAX_HOPS)
		return -ENOENT;
	ssize_t n = readlinkat(w->stack[w->depth], comp, target,
	    sizeof(target) - 1);
	if (n <= 0 || (size_t)n >= sizeof(target) - 1)
		return -ENOENT;
	target[n] = '\0';
	int m = snprintf(tmp, sizeof(tmp), "%s/%s", target, w->rest + w->pos);
	if (m < 0 || (size_t)m >= sizeof(tmp))
		return -ENOENT;
	memcpy(w->rest, tmp, (size_t)m + 1);
	w->pos = 0;
	if (target[0] == '/')
		walk_pop_to(w, 0);
	return 0;
}

/* Opens the regular file comp of the current directory. */
static int
walk_open_file(struct dirscan_walk *w, const char *comp, int *out)
{
	struct stat st;
	int fd = openat(w->stack[w->depth], comp, O_RDONLY | O_NOFOLLOW |
		O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*out = fd;
	return 0;
}

/* Enters the directory comp of the current directory. */
static int
walk_enter(struct dirscan_walk *w, const char *comp)
{
	if (w->depth == DIRSCAN_MAX_DEPTH)
		return -ENOENT;
	int fd = openat(w->stack[w->depth], comp,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	w->stack[++w->depth] = fd;
	return 0;
}

/*
 * Resolves rel below rootfd: 0 with an open descriptor of the regular
 * file (want_dir false) or directory (true) in *out; -ENOENT when the
 * path is missing, of another type or leaves the root (it is skipped);
 * another negative errno on a real error.
 */
static int
dirscan_resolve(int rootfd, const char *rel, bool want_dir, int *out)
{
	struct dirscan_walk w = { .depth = 0 };
	char comp[DIRSCAN_MAX_NAME];
	struct stat st;
	bool last;
	int rc;

	*out = -1;
	w.stack[0] = rootfd;
	if (strlen(rel) >= sizeof(w.rest))
		return -ENOENT;
	strcpy(w.rest, rel);
	for (;;) {
		if ((rc = walk_next(&w, comp, &last)) == -ENOENT) {
			/* The path names a directory. */
			if (want_dir) {
				*out = fcntl(w.stack[w.depth], F_DUPFD_CLOEXEC,
				    0);
				rc = *out >= 0 ? 0 : -errno;
			}
			break;
		}
		if (rc != 0) {
			rc = -ENOENT;
			break;
		}
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (w.depth == 0) {
				rc = -ENOENT; /* climbs out of the root */
				break;
			}
			walk_pop_to(&w, w.depth - 1);
			continue;
		}
		if (fstatat(w.stack[w.depth], comp, &st,
			AT_SYMLINK_NOFOLLOW) < 0) {
			rc = errno == ENOTDIR ? -ENOENT : -errno;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			rc = walk_link(&w, comp);
		} else if (last && !want_dir) {
			rc = S_ISREG(st.st_mode) ?
			    walk_open_file(&w, comp, out) : -ENOENT;
			break;
		} else {
			rc = S_ISDIR(st.st_mode) ? walk_enter(&w, comp) :
						   -ENOENT;
		}
		if (rc != 0)
			break;
	}
	walk_pop_to(&w, 0);
	return rc;
}

/* One scan: where messages name files from. */
struct dirscan {
	fileset *fs;
	int rootfd;
	const char *root; /* as the caller gave it */
	const char *sep;  /* "/" unless root already ends with one */
	char *err;
	size_t errlen;
};

/* Fills err with "ROOT/REL: strerror(-rc)"; returns rc. */
static int
dirscan_fail(const struct dirscan *ds, const char *rel, int rc)
{
	errbuf_set(ds->err, ds->errlen, "%s%s%s: %s", ds->root, ds->sep, rel,
	    strerror(-rc));
	return rc;
}

/* Reads all of fd (st_size bytes when it was opened; the size may change
 * under us): read until EOF, but never more than one byte past the
 * bound. -EFBIG past FILESET_MAX_FILE, -errno when a read fails. */
static int
dirscan_read(int fd, off_t st_size, unsigned char **out, size_t *outlen)
{
	size_t cap, len = 0;
	unsigned char *buf;

	if ((unsigned long long)st_size > FILESET_MAX_FILE)
		return -EFBIG;
	cap = (size_t)st_size + 1;
	buf = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > FILESET_MAX_FILE)
				break;
			cap = cap * 2 > (size_t)FILESET_MAX_FILE + 1 ?
			    (size_t)FILESET_MAX_FILE + 1 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > FILESET_MAX_FILE) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* Reads the file at rel (if it resolves) into fs under rel. */
static int
dirscan_file(struct dirscan *ds, const char *rel)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd = -1, rc;

	if (!fileset_wanted(rel))
		return 0;
	if ((rc = dirscan_resolve(ds->rootfd, rel, false, &fd)) != 0)
		return rc == -ENOENT ? 0 : dirscan_fail(ds, rel, rc);
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else
		rc = dirscan_read(fd, st.st_size, &buf, &len);
	close(fd);
	if (rc == -EFBIG) {
		errbuf_set(ds->err, ds->errlen, "%s%s%s: larger than %u bytes, "
		    "the most sbomd reads of one file", ds->root, ds->sep, rel,
		    (unsigned)FILESET_MAX_FILE);
		return rc;
	}
	if (rc != 0)
		return dirscan_fail(ds, rel, rc);
	rc = fileset_put(ds->fs, rel, buf, len);
	free(buf);
	if (rc == -EFBIG)
		errbuf_set(ds->err, ds->errlen, "%s%s%s: the fileset is full "
		    "(%u files, %u bytes at most)", ds->root, ds->sep, rel,
		    (unsigned)FILESET_MAX_FILES, (unsigned)FILESET_MAX_BYTES);
	else if (rc != 0)
		dirscan_fail(ds, rel, rc);
	return rc;
}

/* For every entry NAME of directory dir, loads dir/NAME/suffix. */
static int
dirscan_listed(struct dirscan *ds, const char *dir, const char *suffix)
{
	int fd = -1, rc;
	DIR *dp;

	if ((rc = dirscan_resolve(ds->rootfd, dir, true, &fd)) != 0)
		return rc == -ENOENT ? 0 : dirscan_fail(ds, dir, rc);
	if ((dp = fdopendir(fd)) == NULL) {
		rc = dirscan_fail(ds, dir, -errno);
		close(fd);
		return rc;
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dp);
		if (de == NULL) {
			if ((rc = -errno) < 0)
				dirscan_fail(ds, dir, rc);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char rel[DIRSCAN_MAX_PATH];
		int n = snprintf(rel, sizeof(rel), "%s/%s%s", dir, de->d_name,
		    suffix);
		if (n < 0 || (size_t)n >= sizeof(rel))
			continue;
		if ((rc = dirscan_file(ds, rel)) < 0)
			break;
	}
	closedir(dp);
	return rc;
}

int
dirscan_load(fileset *fs, const char *root, char *err, size_t errlen)
{
	int rc = 0;
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", root, strerror(-rc));
		return rc;
	}
	size_t rlen = strlen(root);
	struct dirscan ds = {fs, rootfd, root,
	    rlen > 0 && root[rlen - 1] == '/' ? "" : "/", err, errlen};
	for (size_t i = 0; fileset_wanted_paths[i] != NULL; i++)
		if ((rc = dirscan_file(&ds, fileset_wanted_paths[i])) < 0)
			goto out;
	rc = dirscan_listed(&ds, "var/lib/dpkg/status.d", "");
	if (rc < 0)
		goto out;
	rc = dirscan_listed(&ds, "usr/share/doc", "/copyright");
out:
	close(rootfd);
	return rc;
}
