/*
 * dirscan: fills a fileset from a plain directory tree, as `sbomd scan
 * dir:ROOT` and host scans see it: ROOT is treated as "/" of the system
 * scanned.
 */
#ifndef SBOMD_SCAN_DIRSCAN_H
#define SBOMD_SCAN_DIRSCAN_H

#include <stddef.h>

#include "scan/fileset.h"

/*
 * Puts into fs every file under root that fileset_wanted names. Symbolic
 * links are resolved relative to root, as if root were "/" (at most
 * DIRSCAN_MAX_HOPS links per path); a link that would climb out of root,
 * or a chain of too many, is skipped, as are missing files and anything
 * that is not a regular file. 0 on success; -EFBIG when a wanted file is
 * larger than FILESET_MAX_FILE or the fileset is full (err names the
 * file: a package database is never dropped silently); another negative
 * errno when root or a wanted file cannot be read (err names it).
 */
#define DIRSCAN_MAX_HOPS 40
int dirscan_load(fileset *fs, const char *root, char *err, size_t errlen);

#endif
