/*
 * catalog: the OS packages of an image or host, read from its fileset.
 * One cataloger per package database: dpkg (status and distroless
 * status.d, licenses from DEP-5 copyright files), apk (installed), rpm
 * (SQLite rpmdb header blobs); and the OS from os-release. Each lives
 * in its own file of scan/catalog/; what they produce is pkglist.h's.
 */
#ifndef SBOMD_SCAN_CATALOG_H
#define SBOMD_SCAN_CATALOG_H

#include <stddef.h>

#include "scan/catalog/pkglist.h"
#include "scan/fileset.h"

/*
 * Each cataloger appends what it finds. 0 also when its database is
 * absent; a malformed database is an error (-EINVAL) naming the file and
 * the line or offset; an unsupported format (rpm Berkeley DB / ndb) is
 * -ENOTSUP with a message saying so.
 */
int catalog_os(const fileset *fs, struct os_info *os, char *err,
    size_t errlen);
int catalog_dpkg(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);
/*
 * What the dpkg cataloger reads of a copyright file (data, len bytes):
 * the licenses it names, as scanning it gives them to a package (see
 * dpkg.c), each followed by '\n', in *out (xmalloc'd, *outlen + 1 bytes
 * with a NUL after the list; the caller frees it; *outlen 0 when it names
 * none). A pure function of the file, so the
 * fileset keeps this instead of the file (fileset_put) and the layer
 * cache keeps it with the layer: a few bytes instead of some KiB.
 */
void catalog_dpkg_copyright(const void *data, size_t len,
    unsigned char **out, size_t *outlen);
int catalog_apk(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);
/*
 * rpm: the SQLite rpmdb (usr/lib/sysimage/rpm/rpmdb.sqlite, else
 * var/lib/rpm/rpmdb.sqlite), one package per header blob: version,
 * release and epoch (NULL when none) apart, licenses [LICENSE], source
 * from SOURCERPM. A Berkeley DB (Packages) or ndb (Packages.db) database
 * without a SQLite one is -ENOTSUP; a bad header is -EINVAL naming the
 * file and the package row.
 */
int catalog_rpm(const fileset *fs, struct pkglist *out, char *err,
    size_t errlen);

#endif
