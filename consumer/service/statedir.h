/*
 * statedir: what the state directory is besides the LMDB store: the
 * process that owns it, and the identity of the instance it belongs to.
 *
 *   DIR/sbomd.lock    an exclusive flock(2) held for the life of `sbomd
 *                     run`, with the holder's pid as its text: one state
 *                     directory belongs to one process
 *   DIR/instance-id   "sbomd-" + 16 hex digits, made once: the default
 *                     group.instance.id (static membership), so that a
 *                     restarted instance gets its partitions back at once
 *
 * Threads: called once by `sbomd run` before the engine starts.
 */
#ifndef SBOMD_SERVICE_STATEDIR_H
#define SBOMD_SERVICE_STATEDIR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Creates dir when missing and takes its lock: 0 with *fd the lock's
 * descriptor (close-on-exec; statedir_unlock releases it); -EBUSY when
 * another process holds it, err naming that process's pid; else a
 * negative errno with err naming the path.
 */
int statedir_lock(const char *dir, int *fd, char *err, size_t errlen);
void statedir_unlock(int fd);

/* Whether a process holds dir's lock now (*pid: its pid, 0 unknown); a
 * look only, the lock is not taken. */
bool statedir_holder(const char *dir, long *pid);

/*
 * The instance id kept in dir (made and kept on first use) in buf: 0, or
 * a negative errno with err naming the file. buflen >= 32.
 */
int statedir_instance_id(const char *dir, char *buf, size_t buflen,
    char *err, size_t errlen);

#endif
