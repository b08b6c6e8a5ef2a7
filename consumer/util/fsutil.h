/*
 * fsutil: small file-system helpers shared by the store and the state
 * directory.
 */
#ifndef SBOMD_UTIL_FSUTIL_H
#define SBOMD_UTIL_FSUTIL_H

/* mkdir -p dir, mode 0700 for what it creates: 0 or a negative errno
 * (-ENAMETOOLONG for an empty or too long path). */
int fs_mkdir_p(const char *dir);

#endif
