/*
 * statedir: see statedir.h. The lock is flock(2) on a file of its own, not
 * LMDB's lock file: LMDB's readers (`sbomd state`) must still be able to
 * open the store while the service runs.
 */
#define _GNU_SOURCE
#include "service/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/fsutil.h"

#define LOCK_NAME "sbomd.lock"
#define ID_NAME "instance-id"
#define ID_PREFIX "sbomd-"

/* The pid written in the lock file, or 0 when it cannot be read. */
static long
holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long pid = 0;
	return sscanf(buf, "%ld", &pid) == 1 ? pid : 0;
}

int
statedir_lock(const char *dir, int *fd, char *err, size_t errlen)
{
	char path[4096];
	int rc = fs_mkdir_p(dir);
	if (rc != 0) {
		errbuf_set(err, errlen, "state.dir %s: cannot create: %s", dir,
		    strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, LOCK_NAME);
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (rc == -EBUSY) {
			long pid = holder_pid(f);
			if (pid > 0)
				errbuf_set(err, errlen, "state.dir %s is in "
				    "use by another sbomd run (pid %ld; %s)",
				    dir, pid, path);
			else
				errbuf_set(err, errlen, "state.dir %s is in "
				    "use by another sbomd run (%s)", dir, path);
		} else {
			errbuf_set(err, errlen, "%s: flock: %s", path,
			    strerror(-rc));
		}
		close(f);
		return rc;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

bool
statedir_holder(const char *dir, long *pid)
{
	char path[4096];
	*pid = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, LOCK_NAME);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	/* A shared lock is refused while the holder has its exclusive one. */
	bool held = flock(f, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	if (held)
		*pid = holder_pid(f);
	close(f); /* drops the shared lock, if it was taken */
	return held;
}

void
statedir_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* Whether s is an id this module made: the prefix and 16 hex digits. */
static int
valid_id(const char *s)
{
	size_t pre = strlen(ID_PREFIX);
	if (strncmp(s, ID_PREFIX, pre) != 0 || strlen(s) != pre + 16)
		return 0;
	return strspn(s + pre, "0123456789abcdef") == 16;
}

int
statedir_instance_id(const char *dir, char *buf, size_t buflen, char *err,
    size_t errlen)
{
	char path[4096], tmp[4120];
	snprintf(path, sizeof(path), "%s/%s", dir, ID_NAME);
	FILE *f = fopen(path, "re");
	if (f != NULL) {
		char line[64] = "";
		if (fgets(line, sizeof(line), f) != NULL)
			line[strcspn(line, "\n")] = '\0';
		fclose(f);
		if (valid_id(line) && strlen(line) < buflen) {
			snprintf(buf, buflen, "%s", line);
			return 0;
		}
		errbuf_set(err, errlen, "%s: not an instance id (\"%s\" and "
		    "16 hex digits expected); remove the file to make a new "
		    "one", path, ID_PREFIX);
		return -EINVAL;
	}
	if (errno != ENOENT) {
		int rc = -errno;
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	unsigned char r[8];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		int rc = -errno;
		errbuf_set(err, errlen, "getrandom: %s", strerror(errno));
		return rc;
	}
	char id[40];
	int n = snprintf(id, sizeof(id), ID_PREFIX);
	for (size_t i = 0; i < sizeof(r); i++)
		n += snprintf(id + n, sizeof(id) - (size_t)n, "%02x", r[i]);
	/* Written whole or not at all: a temporary file renamed over. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *w = fopen(tmp, "we");
	int rc = 0;
	if (w == NULL || fprintf(w, "%s\n", id) < 0 || fflush(w) != 0 ||
	    fsync(fileno(w)) != 0)
		rc = -errno;
	if (w != NULL && fclose(w) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
		unlink(tmp);
		return rc;
	}
	if (strlen(id) >= buflen) {
		errbuf_set(err, errlen, "instance id buffer too small");
		return -ENOBUFS;
	}
	snprintf(buf, buflen, "%s", id);
	return 0;
}
