/*
 * apk cataloger: the packages of an Alpine image, from
 * lib/apk/db/installed.
 *
 * Format: one "X:value" line per field, a blank line between packages.
 * We read P (name), V (version), A (arch), o (origin: the source package)
 * and L (license); the other letters (F, R, Z, M, a, ...) are skipped. A
 * line that is not "X:..." with one letter or digit before the colon, a
 * package without P or V, or a NUL byte is -EINVAL naming the file and
 * line; names and versions with blanks are malformed too.
 *
 * Licenses as Trivy's apk analyzer splits them, simplified: the L value
 * is split on blanks, "(" and ")" are stripped from each word, "AND"/"OR"
 * (either case) and empty words are dropped, the rest deduplicated in
 * order (at most PKG_MAX_LICENSES, each at most PKG_MAX_LICENSE_LEN
 * bytes). Trivy's gluing of a bare "2.0" to the word before, and its
 * SPDX alias mapping, are not done.
 *
 * On an error, the packages before the bad one may already be in out
 * (the caller frees out either way). Input is bounded by the fileset;
 * one pass. Single-threaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/catalog/catalog.h"
#include "scan/catalog/lines.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

#define APK_INSTALLED "lib/apk/db/installed"

struct apk_slice {
	const char *p;
	size_t len;
	bool set;
};

struct apk_entry {
	size_t line; /* first line; 0 while none is open */
	struct apk_slice name, version, arch, origin, license;
};

/* A name, version, arch or origin: printable, no blanks, no '/'. */
static bool
apk_token_ok(struct apk_slice s)
{
	return pkg_token_ok(s.p, s.len, false);
}

static char *
apk_dup(struct apk_slice s)
{
	return xstrndup(s.p, s.len);
}

static void
apk_license_add(struct pkg *p, const char *s, size_t len)
{
	if ((len == 3 && strncasecmp(s, "and", 3) == 0) ||
	    (len == 2 && strncasecmp(s, "or", 2) == 0))
		return;
	pkg_add_license(p, s, len);
}

static void
apk_licenses(struct pkg *p, struct apk_slice l)
{
	size_t i = 0;
	while (i < l.len) {
		while (i < l.len && (l.p[i] == ' ' || l.p[i] == '\t'))
			i++;
		size_t b = i;
		while (i < l.len && l.p[i] != ' ' && l.p[i] != '\t')
			i++;
		size_t e = i;
		while (b < e && (l.p[b] == '(' || l.p[b] == ')'))
			b++;
		while (e > b && (l.p[e - 1] == '(' || l.p[e - 1] == ')'))
			e--;
		apk_license_add(p, l.p + b, e - b);
	}
}

static int
apk_entry_end(const struct apk_entry *e, const char *file,
    struct pkglist *out, char *err, size_t errlen)
{
	if (!e->name.set || !apk_token_ok(e->name)) {
		errbuf_set(err, errlen,
		    "%s:%zu: package without a valid P: name", file, e->line);
		return -EINVAL;
	}
	if (!e->version.set || !apk_token_ok(e->version)) {
		errbuf_set(err, errlen,
		    "%s:%zu: package %.*s without a valid V: version", file,
		    e->line, (int)e->name.len, e->name.p);
		return -EINVAL;
	}
	struct pkg *p = pkglist_add(out);
	p->type = PKG_APK;
	p->name = apk_dup(e->name);
	p->version = apk_dup(e->version);
	if (e->arch.set && apk_token_ok(e->arch))
		p->arch = apk_dup(e->arch);
	if (e->origin.set && apk_token_ok(e->origin) &&
	    !(e->origin.len == e->name.len &&
		memcmp(e->origin.p, e->name.p, e->name.len) == 0))
		p->source_name = apk_dup(e->origin);
	if (e->license.set)
		apk_licenses(p, e->license);
	return 0;
}

/* One "X:value" line (d, len bytes; line lr->line) of entry e. */
static int
apk_field(struct apk_entry *e, const struct lines *lr, const char *d,
    size_t len, char *err, size_t errlen)
{
	unsigned char k = (unsigned char)d[0];
	bool alnum = (k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z') ||
	    (k >= '0' && k <= '9');
	struct apk_slice *dst = NULL;

	if (len < 2 || !alnum || d[1] != ':') {
		errbuf_set(err, errlen, "%s:%zu: not an \"X:value\" line",
		    lr->path, lr->line);
		return -EINVAL;
	}
	if (e->line == 0)
		e->line = lr->line;
	switch (k) {
	case 'P': dst = &e->name; break;
	case 'V': dst = &e->version; break;
	case 'A': dst = &e->arch; break;
	case 'o': dst = &e->origin; break;
	case 'L': dst = &e->license; break;
	default: break;
	}
	if (dst != NULL && !dst->set)
		*dst = (struct apk_slice){d + 2, len - 2, true};
	return 0;
}

int
catalog_apk(const fileset *fs, struct pkglist *out, char *err, size_t errlen)
{
	const struct fileset_file *f = fileset_get(fs, APK_INSTALLED);
	struct apk_entry e = {0};
	struct lines lr;
	const char *d;
	size_t len;
	int rc;

	if (f == NULL)
		return 0;
	for (lines_init(&lr, f), lr.cancel = out->cancel;
	    (rc = lines_next(&lr, &d, &len, err, errlen)) == 0;) {
		if (len > 0 && d[len - 1] == '\r')
			len--;
		if (len > 0)
			rc = apk_field(&e, &lr, d, len, err, errlen);
		else if (e.line != 0) { /* a blank line ends the entry */
			rc = apk_entry_end(&e, f->path, out, err, errlen);
			memset(&e, 0, sizeof(e));
		}
		if (rc != 0)
			return rc;
	}
	if (rc != -ENOENT)
		return rc;
	if (e.line != 0)
		return apk_entry_end(&e, f->path, out, err, errlen);
	return 0;
}
