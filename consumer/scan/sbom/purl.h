/*
 * purl: package URLs for the OS packages the catalogers find, and the
 * percent-encoding every purl part uses (see purl.c for the form).
 */
#ifndef SBOMD_SCAN_PURL_H
#define SBOMD_SCAN_PURL_H

#include <stdbool.h>
#include <stddef.h>

#include "scan/catalog/pkglist.h"
#include "util/textbuf.h"

/*
 * The package URL of p ("pkg:deb/debian/adduser@3.134?arch=all&distro=
 * debian-12.15"), percent-encoded as the purl spec requires; os (may be
 * NULL) gives the namespace and distro qualifier. 0 with *out malloc'd,
 * or -EINVAL (*out NULL) for a package without a name or of no known
 * type.
 */
int purl_format(const struct pkg *p, const struct os_info *os, char **out);

/* Appends s[0..n) to b with everything but ASCII alphanumerics and
 * ".-_~" percent-encoded; ASCII letters lowercased when lower is set. */
void purl_encode(struct textbuf *b, const char *s, size_t n, bool lower);

#endif
