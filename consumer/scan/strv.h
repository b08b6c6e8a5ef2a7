/*
 * strv: arrays of strings that the scan modules copy from their callers
 * (a job's repo tags and digests, the oci backend's stores, the exec
 * backend's argv) and free again.
 */
#ifndef SBOMD_SCAN_STRV_H
#define SBOMD_SCAN_STRV_H

#include <stddef.h>

/* Copies of v[0..n) ("" for a NULL entry), or NULL when n is 0. */
char **strv_copy(const char *const *v, size_t n);
/* Frees v[0..n) and v; NULL is fine. */
void strv_free(char **v, size_t n);

#endif
