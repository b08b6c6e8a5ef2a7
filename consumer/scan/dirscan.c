/*
 * dirscan: the fileset of a plain directory tree (dir:ROOT, host scans).
 *
 * No walk of the whole tree: the wanted paths are a fixed list plus two
 * directories to list (var/lib/dpkg/status.d/ and usr/share/doc/, whose
 * entries give usr/share/doc/<pkg>/copyright), so a host with a million
 * files costs a few thousand system calls. The lists below mirror
 * fileset_wanted and every path is checked against it before it is put.
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

#include "util/xmalloc.h"

#define DIRSCAN_MAX_DEPTH 64
#define DIRSCAN_MAX_PATH 8192

/* Outcome of resolving a path: an fd (>= 0), a skip, or -errno. */
#define DIRSCAN_SKIP 1

/*
 * Resolves rel below rootfd; on success stores an open descriptor of the
 * regular file (want_dir false) or directory (true) in *out and returns
 * 0. DIRSCAN_SKIP when the path is missing, of another type, or leaves
 * root; -errno on a real error.
 */
static int
dirscan_resolve(int rootfd, const char *rel, bool want_dir, int *out)
{
	int stack[DIRSCAN_MAX_DEPTH + 1];
	size_t depth = 0; /* stack[0] is rootfd, not owned */
	char rest[DIRSCAN_MAX_PATH], tmp[DIRSCAN_MAX_PATH];
	char target[DIRSCAN_MAX_PATH];
	size_t pos = 0;
	int hops = 0, rc = DIRSCAN_SKIP;

	*out = -1;
	stack[0] = rootfd;
	if (strlen(rel) >= sizeof(rest))
		return DIRSCAN_SKIP;
	strcpy(rest, rel);

	for (;;) {
		while (rest[pos] == '/')
			pos++;
		if (rest[pos] == '\0') {
			if (!want_dir)
				goto out; /* the path names a directory */
			int fd = fcntl(stack[depth], F_DUPFD_CLOEXEC, 0);
			if (fd < 0) {
				rc = -errno;
				goto out;
			}
			*out = fd;
			rc = 0;
			goto out;
		}
		size_t b = pos;
		while (rest[pos] != '\0' && rest[pos] != '/')
			pos++;
		size_t clen = pos - b;
		char comp[256];
		if (clen >= sizeof(comp))
			goto out; /* longer than any name (NAME_MAX) */
		memcpy(comp, rest + b, clen);
		comp[clen] = '\0';
		size_t after = pos;
		while (rest[after] == '/')
			after++;
		bool last = rest[after] == '\0';

		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (depth == 0)
				goto out; /* climbs out of root */
			close(stack[depth--]);
			continue;
		}

		struct stat st;
		if (fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && errno != ENOTDIR)
				rc = -errno;
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++hops > DIRSCAN_MAX_HOPS)
				goto out;
			ssize_t n = readlinkat(stack[depth], comp, target,
			    sizeof(target) - 1);
			if (n <= 0 || (size_t)n >= sizeof(target) - 1)
				goto out;
			target[n] = '\0';
			int m = snprintf(tmp, sizeof(tmp), "%s/%s", target,
			    rest + pos);
			if (m < 0 || (size_t)m >= sizeof(tmp))
				goto out;
			memcpy(rest, tmp, (size_t)m + 1);
			pos = 0;
			if (target[0] == '/')
				while (depth > 0)
					close(stack[depth--]);
			continue;
		}
		if (last && !want_dir) {
			if (!S_ISREG(st.st_mode))
				goto out;
			int fd = openat(stack[depth], comp,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);
			if (fd < 0) {
				rc = errno == ENOENT ? DIRSCAN_SKIP : -errno;
				goto out;
			}
			if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
				close(fd);
				goto out;
			}
			*out = fd;
			rc = 0;
			goto out;
		}
		if (!S_ISDIR(st.st_mode) || depth == DIRSCAN_MAX_DEPTH)
			goto out;
		int fd = openat(stack[depth], comp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = errno == ENOENT || errno == ENOTDIR ||
				errno == ELOOP ? DIRSCAN_SKIP : -errno;
			goto out;
		}
		stack[++depth] = fd;
	}
out:
	while (depth > 0)
		close(stack[depth--]);
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

/* Reads the file at rel (if it resolves) into fs under rel. */
static int
dirscan_file(struct dirscan *ds, const char *rel)
{
	fileset *fs = ds->fs;
	int rootfd = ds->rootfd;
	const char *root = ds->root, *sep = ds->sep;
	char *err = ds->err;
	size_t errlen = ds->errlen;
	int fd = -1, rc;
	unsigned char *buf = NULL;

	if (!fileset_wanted(rel))
		return 0;
	rc = dirscan_resolve(rootfd, rel, false, &fd);
	if (rc == DIRSCAN_SKIP)
		return 0;
	if (rc < 0) {
		snprintf(err, errlen, "%s%s%s: %s", root, sep, rel, strerror(-rc));
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s%s%s: %s", root, sep, rel, strerror(-rc));
		goto out;
	}
	if ((unsigned long long)st.st_size > FILESET_MAX_FILE) {
		rc = -EFBIG;
		goto toobig;
	}
	/* The size may change under us: read until EOF, but never more
	 * than one byte past the bound. */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	buf = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > FILESET_MAX_FILE) {
				rc = -EFBIG;
				goto toobig;
			}
			cap = cap * 2 > (size_t)FILESET_MAX_FILE + 1 ?
			    (size_t)FILESET_MAX_FILE + 1 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s%s%s: %s", root, sep, rel,
			    strerror(-rc));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > FILESET_MAX_FILE) {
		rc = -EFBIG;
		goto toobig;
	}
	rc = fileset_put(fs, rel, buf, len);
	if (rc == -EFBIG)
		snprintf(err, errlen, "%s%s%s: the fileset is full (%u files, "
		    "%u bytes at most)", root, sep, rel, (unsigned)FILESET_MAX_FILES,
		    (unsigned)FILESET_MAX_BYTES);
	else if (rc < 0)
		snprintf(err, errlen, "%s%s%s: %s", root, sep, rel, strerror(-rc));
	goto out;
toobig:
	snprintf(err, errlen, "%s%s%s: larger than %u bytes, the most sbomd "
	    "reads of one file", root, sep, rel, (unsigned)FILESET_MAX_FILE);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* For every entry NAME of directory dir, loads dir/NAME/suffix. */
static int
dirscan_listed(struct dirscan *ds, const char *dir, const char *suffix)
{
	int rootfd = ds->rootfd;
	const char *root = ds->root, *sep = ds->sep;
	char *err = ds->err;
	size_t errlen = ds->errlen;
	int fd = -1, rc;
	DIR *dp = NULL;

	rc = dirscan_resolve(rootfd, dir, true, &fd);
	if (rc == DIRSCAN_SKIP)
		return 0;
	if (rc < 0) {
		snprintf(err, errlen, "%s%s%s: %s", root, sep, dir, strerror(-rc));
		return rc;
	}
	dp = fdopendir(fd);
	if (dp == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s%s%s: %s", root, sep, dir, strerror(-rc));
		goto out;
	}
	fd = -1; /* owned by dp now */
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dp);
		if (de == NULL) {
			rc = -errno;
			if (rc < 0)
				snprintf(err, errlen, "%s%s%s: %s", root, sep, dir,
				    strerror(-rc));
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
out:
	if (dp != NULL)
		closedir(dp);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
dirscan_load(fileset *fs, const char *root, char *err, size_t errlen)
{
	static const char *const fixed[] = {
		"etc/os-release",
		"usr/lib/os-release",
		"etc/debian_version",
		"var/lib/dpkg/status",
		"lib/apk/db/installed",
		"var/lib/rpm/rpmdb.sqlite",
		"usr/lib/sysimage/rpm/rpmdb.sqlite",
		"var/lib/rpm/Packages",
		"var/lib/rpm/Packages.db",
	};
	int rc = 0;
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", root, strerror(-rc));
		return rc;
	}
	size_t rlen = strlen(root);
	struct dirscan ds = {fs, rootfd, root,
	    rlen > 0 && root[rlen - 1] == '/' ? "" : "/", err, errlen};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if ((rc = dirscan_file(&ds, fixed[i])) < 0)
			goto out;
	rc = dirscan_listed(&ds, "var/lib/dpkg/status.d", "");
	if (rc < 0)
		goto out;
	rc = dirscan_listed(&ds, "usr/share/doc", "/copyright");
out:
	close(rootfd);
	return rc;
}
