/*
 * pkglist: the growable array of packages the catalogers append to, the
 * helpers that release packages and os_info, and the checks of package
 * fields that several catalogers and writers share.
 *
 * Every string in a struct pkg is owned by it (NULL or a heap copy);
 * licenses is NULL or a heap array of nlicenses heap strings followed by
 * a NULL. A package returned by pkglist_add is zeroed and stays valid
 * until the next pkglist_add (the array may move). Lists hold one image's
 * packages: hundreds to a few thousand, and at most the bound of
 * pkglist_limit (scan.max_packages): past it packages go to one scratch
 * package that each pkglist_add empties, and are only counted, so a
 * hostile database of millions of tiny entries costs its parsing time,
 * not memory. Single-threaded, but for the cancel flag, which another
 * thread sets.
 */
#include "scan/catalog/pkglist.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

static void pkg_free(struct pkg *p);

void
pkglist_init(struct pkglist *l)
{
	memset(l, 0, sizeof(*l));
}

void
pkglist_limit(struct pkglist *l, size_t max, const atomic_int *cancel)
{
	l->max = max;
	l->cancel = cancel;
}

bool
pkglist_over(const struct pkglist *l)
{
	return l->max > 0 && l->total > l->max;
}

bool
pkglist_cancelled(const struct pkglist *l)
{
	return l->cancel != NULL && atomic_load(l->cancel) != 0;
}

static void
pkg_free(struct pkg *p)
{
	free(p->name);
	free(p->version);
	free(p->arch);
	free(p->source_name);
	free(p->source_version);
	free(p->epoch);
	free(p->release);
	for (size_t i = 0; i < p->nlicenses; i++)
		free(p->licenses[i]);
	free(p->licenses);
	memset(p, 0, sizeof(*p));
}

void
pkglist_free(struct pkglist *l)
{
	for (size_t i = 0; i < l->n; i++)
		pkg_free(&l->pkgs[i]);
	pkg_free(&l->spill);
	free(l->pkgs);
	pkglist_init(l);
}

struct pkg *
pkglist_add(struct pkglist *l)
{
	l->total++;
	if (l->max > 0 && l->n >= l->max) {
		pkg_free(&l->spill);
		return &l->spill;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->pkgs = xreallocarray(l->pkgs, l->cap, sizeof(l->pkgs[0]));
	}
	struct pkg *p = &l->pkgs[l->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

/* NULL sorts before any string. */
static int
pkg_strcmp(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int
pkg_cmp(const void *va, const void *vb)
{
	const struct pkg *a = va, *b = vb;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	int c = pkg_strcmp(a->name, b->name);
	if (c == 0)
		c = pkg_strcmp(a->version, b->version);
	if (c == 0)
		c = pkg_strcmp(a->arch, b->arch);
	return c;
}

void
pkglist_sort(struct pkglist *l)
{
	if (l->n > 1)
		qsort(l->pkgs, l->n, sizeof(l->pkgs[0]), pkg_cmp);
}

bool
pkg_token_ok(const char *s, size_t len, bool slash)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f || (!slash && c == '/'))
			return false;
	}
	return true;
}

bool
pkg_needs_release(const char *version, const char *rel)
{
	size_t vl = strlen(version), rl;

	if (rel == NULL || rel[0] == '\0')
		return false;
	rl = strlen(rel);
	return !(vl > rl + 1 && version[vl - rl - 1] == '-' &&
	    strcmp(version + vl - rl, rel) == 0);
}

void
os_info_free(struct os_info *os)
{
	free(os->id);
	free(os->version_id);
	free(os->pretty_name);
	free(os->name);
	memset(os, 0, sizeof(*os));
}

void
pkg_add_license(struct pkg *p, const char *s, size_t len)
{
	if (len == 0 || len > PKG_MAX_LICENSE_LEN ||
	    p->nlicenses >= PKG_MAX_LICENSES)
		return;
	for (size_t i = 0; i < p->nlicenses; i++)
		if (strlen(p->licenses[i]) == len &&
		    memcmp(p->licenses[i], s, len) == 0)
			return;
	p->licenses = xreallocarray(p->licenses, p->nlicenses + 2,
	    sizeof(char *));
	p->licenses[p->nlicenses++] = xstrndup(s, len);
	p->licenses[p->nlicenses] = NULL;
}
