/*
 * dpkg cataloger: the installed Debian packages of a fileset.
 *
 * Sources, in this order: var/lib/dpkg/status, then every file directly
 * in var/lib/dpkg/status.d/ in path order (distroless images: one file per
 * package, no Status field), skipping status.d/<x>.md5sums, which are file
 * lists, not control data. The same (name, version, arch) found in several
 * files is reported once.
 *
 * Format (deb822, as dpkg writes it): stanzas separated by blank lines
 * (empty or only spaces/tabs); "Field: value" lines; continuation lines
 * start with a space or tab and belong to the field above (multi-line
 * fields such as Description or Conffiles). Only the first line of the
 * fields we read matters: Package, Status, Version, Architecture, Source
 * ("name" or "name (version)"). A package is installed when its Status is
 * "<want> <flag> installed" with want "install" or "hold" (dpkg-query's
 * "ii" and "hi"; "deinstall"/"purge" are left out as Trivy leaves them
 * out), or when it has no Status field at all (distroless status.d).
 * Malformed input is -EINVAL naming the file and line: a line that is not
 * a field or continuation, a continuation with no field above, a NUL
 * byte, a stanza without Package, an installed stanza without Version,
 * a name or version with blanks, a Source with an unclosed "(".
 *
 * Licenses, the way Trivy's dpkg-license analyzer finds them, kept simple:
 * in usr/share/doc/<name>/copyright, every line that starts with
 * "License:" gives its first line of value, cut before any "(" and without
 * a leading "The main library is licensed under " or trailing " license",
 * split on ",", " or ", " and " (also with "_" for the blanks, optionally
 * after a ","); and every "/usr/share/common-licenses/NAME" reference
 * gives NAME. Names are kept as written (Trivy further maps some aliases
 * to SPDX ids; we do not), in first-seen order, deduplicated, at most
 * PKG_MAX_LICENSES per package and PKG_MAX_LICENSE_LEN bytes each, so a
 * hostile copyright file costs linear time. The scan depends on the file
 * alone, so it happens when the file is put in the fileset
 * (catalog_dpkg_copyright: the fileset keeps the list of names, not the
 * file, and so does the layer cache); the cataloger only takes the list.
 *
 * Input is bounded by the fileset (FILESET_MAX_FILE per file); parsing is
 * one pass per file with no allocation proportional to anything but the
 * packages found, which out's bound (pkglist_limit) holds: at most twice
 * that many are kept before duplicates are removed, and past that they
 * are only counted (so the count of a failed scan may include some
 * twice). The cancel flag of out is
 * looked at every PKGLIST_POLL_EVERY lines and packages. Single-threaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/catalog/catalog.h"
#include "scan/catalog/lines.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

#define DPKG_STATUS "var/lib/dpkg/status"
#define DPKG_STATUSD "var/lib/dpkg/status.d/"

struct slice {
	const char *p;
	size_t len;
};

enum dpkg_field {
	F_PACKAGE,
	F_STATUS,
	F_VERSION,
	F_ARCH,
	F_SOURCE,
	F_COUNT,
	F_OTHER = F_COUNT, /* a field we do not read */
	F_NONE		   /* not inside a field: continuation is malformed */
};

static const char *const dpkg_field_names[F_COUNT] = {
	"Package", "Status", "Version", "Architecture", "Source",
};

struct stanza {
	size_t line; /* first line, 0 while no stanza is open */
	bool have[F_COUNT];
	struct slice val[F_COUNT]; /* first line of the value, trimmed */
};

static bool
dpkg_blank(char c)
{
	return c == ' ' || c == '\t';
}

static struct slice
dpkg_trim(const char *p, size_t len)
{
	while (len > 0 && (dpkg_blank(*p) || *p == '\r')) {
		p++;
		len--;
	}
	while (len > 0 && (dpkg_blank(p[len - 1]) || p[len - 1] == '\r'))
		len--;
	return (struct slice){p, len};
}

static bool
dpkg_eq(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* A name or version: non-empty, printable, no blanks, no '/' in names. */
static bool
dpkg_token_ok(struct slice s, bool name)
{
	return pkg_token_ok(s.p, s.len, !name);
}

static char *
dpkg_dup(struct slice s)
{
	return xstrndup(s.p, s.len);
}

/* Whether a Status value says installed (see the comment at the top). */
static bool
dpkg_installed(struct slice st)
{
	struct slice w[3];
	size_t nw = 0, i = 0;
	while (i < st.len && nw < 3) {
		while (i < st.len && dpkg_blank(st.p[i]))
			i++;
		size_t b = i;
		while (i < st.len && !dpkg_blank(st.p[i]))
			i++;
		if (i > b)
			w[nw++] = (struct slice){st.p + b, i - b};
	}
	if (nw != 3)
		return false;
	return (dpkg_eq(w[0], "install") || dpkg_eq(w[0], "hold")) &&
	    dpkg_eq(w[2], "installed");
}

/* Ends the open stanza: appends its package when installed. */
static int
dpkg_stanza_end(struct stanza *s, const char *file, struct pkglist *out,
    char *err, size_t errlen)
{
	if (!s->have[F_PACKAGE] || s->val[F_PACKAGE].len == 0) {
		errbuf_set(err, errlen,
		    "%s:%zu: stanza without a Package field", file, s->line);
		return -EINVAL;
	}
	if (!dpkg_token_ok(s->val[F_PACKAGE], true)) {
		errbuf_set(err, errlen, "%s:%zu: malformed Package name", file,
		    s->line);
		return -EINVAL;
	}
	if (s->have[F_STATUS] && !dpkg_installed(s->val[F_STATUS]))
		return 0;
	if (!s->have[F_VERSION] || !dpkg_token_ok(s->val[F_VERSION], false)) {
		errbuf_set(err, errlen,
		    "%s:%zu: installed package %.*s without a valid Version",
		    file, s->line, (int)s->val[F_PACKAGE].len,
		    s->val[F_PACKAGE].p);
		return -EINVAL;
	}

	struct slice src = {NULL, 0}, srcver = {NULL, 0};
	if (s->have[F_SOURCE] && s->val[F_SOURCE].len > 0) {
		struct slice v = s->val[F_SOURCE];
		size_t i = 0;
		while (i < v.len && !dpkg_blank(v.p[i]) && v.p[i] != '(')
			i++;
		src = (struct slice){v.p, i};
		struct slice rest = dpkg_trim(v.p + i, v.len - i);
		if (rest.len > 0) {
			if (rest.p[0] != '(' || rest.p[rest.len - 1] != ')') {
				errbuf_set(err, errlen,
				    "%s:%zu: malformed Source field", file,
				    s->line);
				return -EINVAL;
			}
			srcver = dpkg_trim(rest.p + 1, rest.len - 2);
		}
		if (!dpkg_token_ok(src, true) ||
		    (srcver.p != NULL && !dpkg_token_ok(srcver, false))) {
			errbuf_set(err, errlen,
			    "%s:%zu: malformed Source field", file, s->line);
			return -EINVAL;
		}
	}

	struct pkg *p = pkglist_add(out);
	p->type = PKG_DEB;
	p->name = dpkg_dup(s->val[F_PACKAGE]);
	p->version = dpkg_dup(s->val[F_VERSION]);
	if (s->have[F_ARCH] && dpkg_token_ok(s->val[F_ARCH], true))
		p->arch = dpkg_dup(s->val[F_ARCH]);
	if (src.p != NULL && !dpkg_eq(src, p->name))
		p->source_name = dpkg_dup(src);
	if (srcver.p != NULL && !dpkg_eq(srcver, p->version))
		p->source_version = dpkg_dup(srcver);
	return 0;
}

/* A "Field: value" line (d, len bytes; line lr->line) of stanza s; *cur
 * becomes the field it starts. */
static int
dpkg_field(struct stanza *s, enum dpkg_field *cur, const struct lines *lr,
    const char *d, size_t len, char *err, size_t errlen)
{
	const char *colon = memchr(d, ':', len);
	size_t i = 0;

	while (colon != NULL && d + i < colon && (unsigned char)d[i] > ' ')
		i++;
	if (colon == NULL || i == 0 || d + i != colon) {
		errbuf_set(err, errlen, "%s:%zu: not a \"Field: value\" line",
		    lr->path, lr->line);
		return -EINVAL;
	}
	if (s->line == 0)
		s->line = lr->line;
	*cur = F_OTHER;
	for (int k = 0; k < F_COUNT; k++) {
		const char *nm = dpkg_field_names[k];
		if (strlen(nm) == i && strncasecmp(d, nm, i) == 0) {
			*cur = (enum dpkg_field)k;
			break;
		}
	}
	if (*cur < F_COUNT && !s->have[*cur]) {
		s->have[*cur] = true;
		s->val[*cur] = dpkg_trim(colon + 1,
		    (size_t)(d + len - colon - 1));
	}
	return 0;
}

/* Parses one status-format file, appending installed packages to out. */
static int
dpkg_parse(const struct fileset_file *f, struct pkglist *out, char *err,
    size_t errlen)
{
	enum dpkg_field cur = F_NONE;
	struct stanza s = {0};
	struct lines lr;
	const char *d;
	size_t len;
	int rc;

	for (lines_init(&lr, f), lr.cancel = out->cancel;
	    (rc = lines_next(&lr, &d, &len, err, errlen)) == 0;) {
		if (dpkg_trim(d, len).len == 0) { /* blank: ends the stanza */
			if (s.line != 0)
				rc = dpkg_stanza_end(&s, f->path, out, err,
				    errlen);
			memset(&s, 0, sizeof(s));
			cur = F_NONE;
		} else if (!dpkg_blank(d[0])) {
			rc = dpkg_field(&s, &cur, &lr, d, len, err, errlen);
		} else if (cur == F_NONE) { /* a continuation, of nothing */
			errbuf_set(err, errlen,
			    "%s:%zu: continuation line outside a field",
			    f->path, lr.line);
			rc = -EINVAL;
		}
		if (rc != 0)
			return rc;
	}
	if (rc != -ENOENT)
		return rc;
	if (s.line != 0)
		return dpkg_stanza_end(&s, f->path, out, err, errlen);
	return 0;
}

struct dpkg_walk {
	struct pkglist *out;
	char *err;
	size_t errlen;
	int rc; /* the first error; later files are skipped */
};

static void
dpkg_statusd_one(void *ctx, const struct fileset_file *f)
{
	struct dpkg_walk *w = ctx;
	static const char md5[] = ".md5sums";
	size_t n = strlen(f->path), m = sizeof(md5) - 1;
	if (w->rc < 0 || strchr(f->path + sizeof(DPKG_STATUSD) - 1, '/'))
		return;
	if (n >= m && strcmp(f->path + n - m, md5) == 0)
		return;
	w->rc = dpkg_parse(f, w->out, w->err, w->errlen);
}

/* Adds license name s (already cut and trimmed) to p unless present. */
static void
dpkg_license_add(struct pkg *p, const char *s, size_t len)
{
	while (len > 0 && (dpkg_blank(*s) || *s == '_')) {
		s++;
		len--;
	}
	while (len > 0 && (dpkg_blank(s[len - 1]) || s[len - 1] == '_'))
		len--;
	pkg_add_license(p, s, len);
}

/*
 * The length of a separator at s (Trivy's "(,?[_ ]+(?:or|and)[_ ]+)|
 * (,[ ]*)"), 0 when there is none.
 */
static size_t
dpkg_license_sep(const char *s, size_t len)
{
	size_t i = 0;
	if (i < len && s[i] == ',')
		i++;
	size_t b = i;
	while (i < len && (s[i] == ' ' || s[i] == '_'))
		i++;
	if (i > b) {
		size_t w = 0;
		if (len - i >= 2 && memcmp(s + i, "or", 2) == 0)
			w = 2;
		else if (len - i >= 3 && memcmp(s + i, "and", 3) == 0)
			w = 3;
		size_t j = i + w, k = j;
		while (k < len && (s[k] == ' ' || s[k] == '_'))
			k++;
		if (w > 0 && k > j)
			return k;
	}
	if (len > 0 && s[0] == ',') {
		i = 1;
		while (i < len && s[i] == ' ')
			i++;
		return i;
	}
	return 0;
}

/* One "License:" value: normalise it like Trivy and split it. */
static void
dpkg_license_field(struct pkg *p, const char *s, size_t len)
{
	static const char pre[] = "The main library is licensed under ";
	static const char suf[] = " license";
	const char *paren = memchr(s, '(', len);
	if (paren != NULL)
		len = (size_t)(paren - s);
	struct slice v = dpkg_trim(s, len);
	if (v.len >= sizeof(pre) - 1 && memcmp(v.p, pre, sizeof(pre) - 1) == 0)
		v = dpkg_trim(v.p + sizeof(pre) - 1, v.len - (sizeof(pre) - 1));
	if (v.len >= sizeof(suf) - 1 &&
	    memcmp(v.p + v.len - (sizeof(suf) - 1), suf, sizeof(suf) - 1) == 0)
		v = dpkg_trim(v.p, v.len - (sizeof(suf) - 1));

	size_t start = 0, i = 0;
	while (i < v.len) {
		size_t sep = dpkg_license_sep(v.p + i, v.len - i);
		if (sep > 0) {
			dpkg_license_add(p, v.p + start, i - start);
			i += sep;
			start = i;
		} else {
			i++;
		}
	}
	dpkg_license_add(p, v.p + start, v.len - start);
}

static bool
dpkg_license_char(char c, bool last)
{
	if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z') || c == '+')
		return true;
	return !last && (c == '_' || c == '.' || c == '-');
}

/* Adds to p (no licenses yet) the licenses copyright file d names. */
static void
dpkg_copyright_scan(struct pkg *p, const char *d, size_t dlen)
{
	static const char cl[] = "/usr/share/common-licenses/";
	const char *end = d + dlen;
	while (d < end) {
		const char *eol = memchr(d, '\n', (size_t)(end - d));
		if (eol == NULL)
			eol = end;
		size_t len = (size_t)(eol - d);
		if (len >= 8 && memcmp(d, "License:", 8) == 0) {
			dpkg_license_field(p, d + 8, len - 8);
		} else {
			/* memmem is a GNU extension; lines are short. */
			for (size_t i = 0; i + sizeof(cl) - 1 <= len; i++) {
				if (memcmp(d + i, cl, sizeof(cl) - 1) != 0)
					continue;
				const char *nm = d + i + sizeof(cl) - 1;
				size_t k = 0, lastok = 0;
				while (nm + k < eol &&
				    dpkg_license_char(nm[k], false)) {
					if (dpkg_license_char(nm[k], true))
						lastok = k + 1;
					k++;
				}
				/* The regex wants at least two characters. */
				if (lastok >= 2)
					dpkg_license_add(p, nm, lastok);
				break;
			}
		}
		d = eol < end ? eol + 1 : end;
	}
}

void
catalog_dpkg_copyright(const void *data, size_t len, unsigned char **out,
    size_t *outlen)
{
	struct pkg p;
	memset(&p, 0, sizeof(p));
	dpkg_copyright_scan(&p, data, len);
	size_t n = 0;
	for (size_t i = 0; i < p.nlicenses; i++)
		n += strlen(p.licenses[i]) + 1;
	unsigned char *b = xmalloc(n + 1), *o = b;
	for (size_t i = 0; i < p.nlicenses; i++) {
		size_t l = strlen(p.licenses[i]);
		memcpy(o, p.licenses[i], l);
		o[l] = '\n';
		o += l + 1;
		free(p.licenses[i]);
	}
	free(p.licenses);
	*o = '\0';
	*out = b;
	*outlen = n;
}

/*
 * Gives p the licenses of usr/share/doc/<name>/copyright, if present: the
 * fileset holds catalog_dpkg_copyright's list for it, taken as it is
 * (it is what scanning the file gives a package without licenses).
 */
static void
dpkg_licenses(const fileset *fs, struct pkg *p)
{
	char path[4200];
	int n = snprintf(path, sizeof(path), "usr/share/doc/%s/copyright",
	    p->name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	const struct fileset_file *f = fileset_get(fs, path);
	if (f == NULL || f->len == 0)
		return;
	const char *d = (const char *)f->data, *end = d + f->len;
	size_t count = 0;
	for (const char *q = d; q < end; q++)
		count += *q == '\n';
	/* A list that did not come from catalog_dpkg_copyright (or one
	 * without its last newline) is not one: nothing. */
	if (end[-1] != '\n' || count > PKG_MAX_LICENSES || p->nlicenses != 0)
		return;
	p->licenses = xreallocarray(NULL, count + 1, sizeof(char *));
	while (d < end) {
		const char *eol = memchr(d, '\n', (size_t)(end - d));
		p->licenses[p->nlicenses++] = xstrndup(d, (size_t)(eol - d));
		d = eol + 1;
	}
	p->licenses[p->nlicenses] = NULL;
}

static bool
dpkg_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int
catalog_dpkg(const fileset *fs, struct pkglist *out, char *err, size_t errlen)
{
	struct pkglist found;
	int rc = 0;
	pkglist_init(&found);
	/* Before duplicates are removed: room for each package twice (in
	 * status and in status.d), so that a list within out's bound is
	 * never cut here. */
	pkglist_limit(&found, out->max > SIZE_MAX / 2 ? SIZE_MAX :
	    out->max * 2, out->cancel);

	const struct fileset_file *st = fileset_get(fs, DPKG_STATUS);
	if (st != NULL && (rc = dpkg_parse(st, &found, err, errlen)) < 0)
		goto out;
	struct dpkg_walk w = {&found, err, errlen, 0};
	fileset_foreach(fs, DPKG_STATUSD, dpkg_statusd_one, &w);
	if ((rc = w.rc) < 0)
		goto out;

	/*
	 * Duplicates across status and status.d are kept once: sort, move
	 * each first-of-its-kind package into out (zeroing it in found, so
	 * that pkglist_free releases only the duplicates left behind).
	 */
	pkglist_sort(&found);
	/* The last package moved (in out, or out's scratch past its
	 * bound); valid until the next pkglist_add. */
	const struct pkg *last = NULL;
	for (size_t i = 0; i < found.n; i++) {
		struct pkg *p = &found.pkgs[i];
		if (i % PKGLIST_POLL_EVERY == 0 && pkglist_cancelled(out)) {
			errbuf_set(err, errlen, "%s: cancelled", DPKG_STATUS);
			rc = -ECANCELED;
			goto out;
		}
		if (last != NULL && dpkg_str_eq(p->name, last->name) &&
		    dpkg_str_eq(p->version, last->version) &&
		    dpkg_str_eq(p->arch, last->arch))
			continue;
		dpkg_licenses(fs, p);
		struct pkg *dst = pkglist_add(out);
		*dst = *p;
		memset(p, 0, sizeof(*p));
		last = dst;
	}
	/* Those found past found's own bound (twice out's) were counted
	 * only, without removing duplicates: the scan fails on the count
	 * anyway, which then may count a package twice. */
	out->total += found.total - found.n;
out:
	pkglist_free(&found);
	return rc;
}
