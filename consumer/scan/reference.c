/*
 * reference: the distribution reference grammar (see reference.h) as a
 * few hand-written matchers over [begin, end) slices, no regex library.
 *
 * Splitting: the digest is what follows the first '@'; the tag is what
 * follows the last ':' of the rest when no '/' comes after that ':' (so
 * "localhost:5000/app" has no tag); the name is the rest. The grammar's
 * optional domain is resolved as the regex resolves it: a name matches
 * when all its components are path components, or when there are at
 * least two and the first is a domain and the others are path
 * components (so "UPPER/app" is a domain and a path, "UPPER" alone is
 * nothing). Linear in the length; pure, any thread.
 */
#include "scan/reference.h"

#include <stddef.h>
#include <string.h>

static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)* */
static bool
path_component(const char *b, const char *e)
{
	const char *p = b;
	for (;;) {
		const char *run = p;
		while (p < e && is_lower_alnum(*p))
			p++;
		if (p == run)
			return false;
		if (p == e)
			return true;
		if (*p == '.') {
			p++;
		} else if (*p == '_') {
			p++;
			if (p < e && *p == '_')
				p++;
		} else if (*p == '-') {
			while (p < e && *p == '-')
				p++;
		} else {
			return false;
		}
	}
}

/* [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9] */
static bool
domain_component(const char *b, const char *e)
{
	if (b == e || !is_alnum(b[0]) || !is_alnum(e[-1]))
		return false;
	for (const char *p = b; p < e; p++)
		if (!is_alnum(*p) && *p != '-')
			return false;
	return true;
}

/* host [":" port], host a dotted name or "[" IPv6 "]" */
static bool
domain(const char *b, const char *e)
{
	const char *hend = e;
	if (b < e && *b == '[') {
		const char *close = memchr(b, ']', (size_t)(e - b));
		if (close == NULL || close == b + 1)
			return false;
		for (const char *p = b + 1; p < close; p++)
			if (!is_hex(*p) && *p != ':')
				return false;
		hend = close + 1;
	} else {
		const char *colon = memchr(b, ':', (size_t)(e - b));
		if (colon != NULL)
			hend = colon;
		for (const char *p = b;;) {
			const char *dot = memchr(p, '.', (size_t)(hend - p));
			const char *ce = dot != NULL ? dot : hend;
			if (!domain_component(p, ce))
				return false;
			if (dot == NULL)
				break;
			p = dot + 1;
		}
	}
	if (hend == e)
		return true;
	if (*hend != ':' || hend + 1 == e)
		return false;
	for (const char *p = hend + 1; p < e; p++)
		if (!is_digit(*p))
			return false;
	return true;
}

/* path-component ("/" path-component)* */
static bool
path(const char *b, const char *e)
{
	for (const char *p = b;;) {
		const char *slash = memchr(p, '/', (size_t)(e - p));
		const char *ce = slash != NULL ? slash : e;
		if (!path_component(p, ce))
			return false;
		if (slash == NULL)
			return true;
		p = slash + 1;
	}
}

static bool
name(const char *b, const char *e)
{
	if (b == e || (size_t)(e - b) > REFERENCE_NAME_MAX)
		return false;
	if (path(b, e))
		return true;
	const char *slash = memchr(b, '/', (size_t)(e - b));
	return slash != NULL && domain(b, slash) && path(slash + 1, e);
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool
tag(const char *b, const char *e)
{
	if (b == e || e - b > 128 || !(is_alnum(*b) || *b == '_'))
		return false;
	for (const char *p = b + 1; p < e; p++)
		if (!is_alnum(*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

/* algorithm ":" hex{32,} */
static bool
digest(const char *b, const char *e)
{
	const char *colon = memchr(b, ':', (size_t)(e - b));
	if (colon == NULL || e - (colon + 1) < 32)
		return false;
	for (const char *p = colon + 1; p < e; p++)
		if (!is_hex(*p))
			return false;
	/* [A-Za-z][A-Za-z0-9]* ([+._-] [A-Za-z][A-Za-z0-9]*)* */
	for (const char *p = b;;) {
		if (p == colon || !((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z')))
			return false;
		while (p < colon && is_alnum(*p))
			p++;
		if (p == colon)
			return true;
		if (*p != '+' && *p != '.' && *p != '_' && *p != '-')
			return false;
		p++;
	}
}

bool
reference_valid(const char *s)
{
	const char *end = s + strlen(s), *at = strchr(s, '@');
	const char *rest_end = at != NULL ? at : end;

	if (at != NULL && !digest(at + 1, end))
		return false;
	const char *colon = NULL;
	for (const char *p = s; p < rest_end; p++)
		if (*p == ':')
			colon = p;
		else if (*p == '/')
			colon = NULL;
	if (colon != NULL) {
		if (!tag(colon + 1, rest_end))
			return false;
		rest_end = colon;
	}
	return name(s, rest_end);
}
