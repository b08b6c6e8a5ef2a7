/*
 * os-release cataloger: the OS of an image or host.
 *
 * Reads etc/os-release, or usr/lib/os-release when the former is absent
 * (os-release(5): the file in /etc wins), and keeps ID, VERSION_ID,
 * PRETTY_NAME and NAME. Each of those present in the file replaces what
 * os held (the caller passes a zeroed os_info); absent keys leave NULL.
 *
 * Syntax, as os-release(5) and the shell define it: one KEY=VALUE per
 * line, KEY matching [A-Za-z_][A-Za-z0-9_]*; blank lines and lines whose
 * first non-blank is '#' are ignored. VALUE is shell-quoted: "double
 * quotes" where a backslash escapes $ " \ ` (any other backslash is kept),
 * 'single quotes' with no escapes, or unquoted with backslash escaping
 * the next character; quoted and unquoted parts may be adjacent. An
 * unquoted blank ends the value (what follows is ignored). A line without
 * '=', a bad key or an unterminated quote is -EINVAL naming the file and
 * line; a NUL byte is malformed too.
 *
 * Input is bounded by the fileset; one pass, one allocation per kept
 * value. Single-threaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/catalog/catalog.h"
#include "scan/catalog/lines.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

static bool
osr_key_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    (!first && c >= '0' && c <= '9');
}

/*
 * Unquotes the value [p, p+len) into a new string; NULL when a quote is
 * not closed.
 */
static char *
osr_unquote(const char *p, size_t len)
{
	char *o = xmalloc(len + 1);
	size_t n = 0, i = 0;
	while (i < len) {
		char c = p[i++];
		if (c == ' ' || c == '\t')
			break;
		if (c == '\\') {
			if (i < len)
				o[n++] = p[i++];
		} else if (c == '\'') {
			const char *q = memchr(p + i, '\'', len - i);
			if (q == NULL)
				goto bad;
			size_t k = (size_t)(q - (p + i));
			memcpy(o + n, p + i, k);
			n += k;
			i += k + 1;
		} else if (c == '"') {
			for (;;) {
				if (i >= len)
					goto bad;
				c = p[i++];
				if (c == '"')
					break;
				if (c == '\\' && i < len &&
				    strchr("$\"\\`", p[i]) != NULL)
					c = p[i++];
				o[n++] = c;
			}
		} else {
			o[n++] = c;
		}
	}
	o[n] = '\0';
	return o;
bad:
	free(o);
	return NULL;
}

static int
osr_parse(const struct fileset_file *f, struct os_info *os, char *err,
    size_t errlen)
{
	struct lines lr;
	const char *d;
	size_t len;
	int lrc;
	lines_init(&lr, f);
	while ((lrc = lines_next(&lr, &d, &len, err, errlen)) == 0) {
		size_t line = lr.line;
		const char *p = d, *e = d + len;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (p == e || *p == '#')
			continue;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		bool keyok = eq != NULL && eq > p;
		for (const char *k = p; keyok && k < eq; k++)
			keyok = osr_key_char(*k, k == p);
		if (!keyok) {
			errbuf_set(err, errlen, "%s:%zu: not a KEY=VALUE line",
			    f->path, line);
			return -EINVAL;
		}
		size_t klen = (size_t)(eq - p);
		char **dst = NULL;
		if (klen == 2 && memcmp(p, "ID", 2) == 0)
			dst = &os->id;
		else if (klen == 10 && memcmp(p, "VERSION_ID", 10) == 0)
			dst = &os->version_id;
		else if (klen == 11 && memcmp(p, "PRETTY_NAME", 11) == 0)
			dst = &os->pretty_name;
		else if (klen == 4 && memcmp(p, "NAME", 4) == 0)
			dst = &os->name;
		/* Every value is checked, kept or not. */
		char *v = osr_unquote(eq + 1, (size_t)(e - eq - 1));
		if (v == NULL) {
			errbuf_set(err, errlen, "%s:%zu: unterminated quote",
			    f->path, line);
			return -EINVAL;
		}
		if (dst != NULL) {
			free(*dst);
			*dst = v;
		} else {
			free(v);
		}
	}
	return lrc == -ENOENT ? 0 : lrc;
}

/*
 * Debian's os-release says VERSION_ID="12"; etc/debian_version has the
 * point release ("12.5"), which is what package URLs carry as distro
 * (debian-12.5) in Trivy's output and the purl examples. Used only when it
 * is a plain dotted number that starts with VERSION_ID (testing and sid
 * images say "trixie/sid" there).
 */
static void
debian_point_release(const fileset *fs, struct os_info *os)
{
	const struct fileset_file *f = fileset_get(fs, "etc/debian_version");
	if (os->id == NULL || strcmp(os->id, "debian") != 0 || f == NULL ||
	    os->version_id == NULL)
		return;
	size_t n = 0;
	while (n < f->len && n < 32 &&
	    ((f->data[n] >= '0' && f->data[n] <= '9') || f->data[n] == '.'))
		n++;
	size_t vlen = strlen(os->version_id);
	if (n == 0 || n > 31 || (n < f->len && f->data[n] != '\n') ||
	    n <= vlen || memcmp(f->data, os->version_id, vlen) != 0 ||
	    f->data[vlen] != '.')
		return;
	free(os->version_id);
	os->version_id = xstrndup((const char *)f->data, n);
}

int
catalog_os(const fileset *fs, struct os_info *os, char *err, size_t errlen)
{
	const struct fileset_file *f = fileset_get(fs, "etc/os-release");
	if (f == NULL)
		f = fileset_get(fs, "usr/lib/os-release");
	if (f == NULL)
		return 0;
	int rc = osr_parse(f, os, err, errlen);
	if (rc == 0)
		debian_point_release(fs, os);
	return rc;
}
