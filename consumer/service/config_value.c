/*
 * config_value: see config_value.h. Scalars first (integers, floats,
 * strings, enums, durations, sizes), then lists, then the environment
 * syntax that combines them, then freeing, equality and printing.
 *
 * KT_INT and KT_ENUM fields are 4 or 8 bytes (config_key.size); their
 * signedness does not matter, the bounds keep values representable
 * either way.
 */
#include "service/config_value.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"
#include "util/errbuf.h"
#include "util/redact.h"
#include "util/xmalloc.h"

#define KIB ((int64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)

_Static_assert(sizeof(enum config_framing) == sizeof(int32_t) &&
    sizeof(enum config_delivery) == sizeof(int32_t) &&
    sizeof(enum config_backend) == sizeof(int32_t) &&
    sizeof(enum config_log_level) == sizeof(int32_t) &&
    sizeof(enum config_log_format) == sizeof(int32_t),
    "enums are stored as 32-bit integers");

static int64_t
int_get(const void *field, size_t size)
{
	if (size == sizeof(int64_t)) {
		int64_t v;
		memcpy(&v, field, sizeof(v));
		return v;
	}
	int32_t v;
	memcpy(&v, field, sizeof(v));
	return v;
}

static void
int_put(void *field, size_t size, int64_t v)
{
	if (size == sizeof(int64_t)) {
		memcpy(field, &v, sizeof(v));
	} else {
		int32_t w = (int32_t)v;
		memcpy(field, &w, sizeof(w));
	}
}

/* ---- scalars ---- */

/* v within the key's [min, max]: 0, or -ERANGE with err. */
static int
check_range(const struct config_key *k, int64_t v, char *err, size_t errlen)
{
	if (v < k->min || v > k->max) {
		errbuf_set(err, errlen, "%lld is out of range [%lld, %lld]",
		    (long long)v, (long long)k->min, (long long)k->max);
		return -ERANGE;
	}
	return 0;
}

int
config_value_set_int(const struct config_key *k, void *field, int64_t v,
    char *err, size_t errlen)
{
	int rc = check_range(k, v, err, errlen);
	if (rc == 0)
		int_put(field, k->size, v);
	return rc;
}

int
config_value_set_float(const struct config_key *k, void *field, double v,
    char *err, size_t errlen)
{
	if (!(v >= k->fmin && (k->fmax_open ? v < k->fmax : v <= k->fmax))) {
		errbuf_set(err, errlen, "%g is out of range [%g, %g%c", v,
		    k->fmin, k->fmax, k->fmax_open ? ')' : ']');
		return -ERANGE;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

static int
set_str(const struct config_key *k, void *field, const char *s, char *err,
    size_t errlen)
{
	char **dst = field;

	if (k->check != NULL) {
		int rc = k->check(s, err, errlen);
		if (rc != 0)
			return rc;
	}
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

static int
set_enum(const struct config_key *k, void *field, const char *s, char *err,
    size_t errlen)
{
	char list[256];
	size_t used = 0;

	for (size_t i = 0; k->names[i] != NULL; i++) {
		if (strcmp(s, k->names[i]) == 0) {
			int_put(field, k->size, (int64_t)i);
			return 0;
		}
	}
	list[0] = '\0';
	for (size_t i = 0; k->names[i] != NULL && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
		    "%s \"%s\"", i == 0 ? "" : ",", k->names[i]);
	errbuf_set(err, errlen, "\"%s\" is not one of%s", s, list);
	return -EINVAL;
}

static int
set_duration(const struct config_key *k, void *field, const char *s,
    char *err, size_t errlen)
{
	int64_t ms;
	int rc = duration_parse(s, &ms, err, errlen);

	if (rc != 0)
		return rc;
	if (ms < k->min) {
		errbuf_set(err, errlen, "\"%s\": must be greater than 0", s);
		return -ERANGE;
	}
	memcpy(field, &ms, sizeof(ms));
	return 0;
}

int
config_value_set_string(const struct config_key *k, void *field,
    const char *s, char *err, size_t errlen)
{
	switch (k->type) {
	case KT_STRING:
		return set_str(k, field, s, err, errlen);
	case KT_ENUM:
	case KT_BOOL:
		return set_enum(k, field, s, err, errlen);
	case KT_DURATION:
		return set_duration(k, field, s, err, errlen);
	default:
		errbuf_set(err, errlen, "not a string key");
		return -EINVAL;
	}
}

static const struct {
	const char *name;
	int64_t bytes;
} size_units[] = {
	{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}, {"B", 1},
};

#define NUNITS (sizeof(size_units) / sizeof(size_units[0]))

/* The shortest exact form: "64GiB", "1536B". */
static void
size_format(int64_t v, char *buf, size_t buflen)
{
	for (size_t i = 0; i < NUNITS; i++) {
		if (v != 0 && v % size_units[i].bytes == 0) {
			snprintf(buf, buflen, "%lld%s",
			    (long long)(v / size_units[i].bytes),
			    size_units[i].name);
			return;
		}
	}
	snprintf(buf, buflen, "%lldB", (long long)v);
}

int
config_value_set_size(const struct config_key *k, void *field, int64_t v,
    char *err, size_t errlen)
{
	if (v < k->min || v > k->max) {
		char a[32], lo[32], hi[32];
		size_format(v, a, sizeof(a));
		size_format(k->min, lo, sizeof(lo));
		size_format(k->max, hi, sizeof(hi));
		errbuf_set(err, errlen, "%s is out of range [%s, %s]",
		    v < 0 ? "a negative size" : a, lo, hi);
		return -ERANGE;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

int
config_value_parse_size(const char *s, int64_t *v, char *err, size_t errlen)
{
	const char *p = s;
	int64_t n = 0;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - 9) / 10)
			goto big;
		n = n * 10 + (*p - '0');
	}
	if (*p == '\0') {
		*v = n;
		return 0;
	}
	for (size_t i = 0; i < NUNITS; i++) {
		if (strcmp(p, size_units[i].name) == 0) {
			if (n > INT64_MAX / size_units[i].bytes)
				goto big;
			*v = n * size_units[i].bytes;
			return 0;
		}
	}
bad:
	errbuf_set(err, errlen,
	    "bad size \"%s\": expected an integer with an optional unit (B, "
	    "KiB, MiB, GiB, TiB)", s);
	return -EINVAL;
big:
	errbuf_set(err, errlen, "size \"%s\" is too large", s);
	return -ERANGE;
}

/* Strict decimal integer: optional sign, digits, nothing else. */
static int
int_parse(const char *s, int64_t *v, char *err, size_t errlen)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || isspace((unsigned char)*s)) {
		errbuf_set(err, errlen, "expected an integer, got \"%s\"", s);
		return -EINVAL;
	}
	if (errno == ERANGE) {
		errbuf_set(err, errlen, "%s is out of range", s);
		return -ERANGE;
	}
	*v = n;
	return 0;
}

static int
float_parse(const char *s, double *v, char *err, size_t errlen)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || isspace((unsigned char)*s) ||
	    !isfinite(d)) {
		errbuf_set(err, errlen, "expected a number, got \"%s\"", s);
		return -EINVAL;
	}
	*v = d;
	return 0;
}

/* ---- lists ---- */

static void
strlist_add(struct config_strlist *l, const char *s, size_t len)
{
	l->v = xreallocarray(l->v, l->n + 2, sizeof(*l->v));
	l->v[l->n++] = xstrndup(s, len);
	l->v[l->n] = NULL;
}

static void
strlist_free(struct config_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
props_free(struct config_props *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* One "name=value" item, its name checked, appended to l. */
static int
props_add(const struct config_key *k, struct config_props *l, const char *s,
    char *err, size_t errlen)
{
	const char *eq = strchr(s, '=');
	int rc;

	if (eq == NULL || eq == s) {
		errbuf_set(err, errlen, "\"%s\" is not \"name=value\"", s);
		return -EINVAL;
	}
	char *name = xstrndup(s, (size_t)(eq - s));
	if (k->check != NULL && (rc = k->check(name, err, errlen)) != 0) {
		free(name);
		return rc;
	}
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n].name = name;
	l->v[l->n++].value = xstrdup(eq + 1);
	return 0;
}

int
config_list_add_string(const struct config_key *k, struct config_list *l,
    const char *s, char *err, size_t errlen)
{
	int rc;

	if (k->type == KT_PROPS)
		return props_add(k, &l->props, s, err, errlen);
	if (k->check != NULL && (rc = k->check(s, err, errlen)) != 0)
		return rc;
	strlist_add(&l->strs, s, strlen(s));
	return 0;
}

int
config_list_add_int(const struct config_key *k, struct config_list *l,
    int64_t v, char *err, size_t errlen)
{
	int rc = check_range(k, v, err, errlen);
	if (rc != 0)
		return rc;
	l->ints.v = xreallocarray(l->ints.v, l->ints.n + 1,
	    sizeof(*l->ints.v));
	l->ints.v[l->ints.n++] = (int32_t)v;
	return 0;
}

void
config_list_commit(const struct config_key *k, struct config_list *l,
    void *field)
{
	config_value_free(k, field);
	if (k->type == KT_STRLIST)
		memcpy(field, &l->strs, sizeof(l->strs));
	else if (k->type == KT_PROPS)
		memcpy(field, &l->props, sizeof(l->props));
	else
		memcpy(field, &l->ints, sizeof(l->ints));
	memset(l, 0, sizeof(*l)); /* the field owns it now */
}

void
config_list_free(struct config_list *l)
{
	strlist_free(&l->strs);
	props_free(&l->props);
	free(l->ints.v);
	memset(l, 0, sizeof(*l));
}

/* ---- the environment syntax ---- */

/*
 * Splits a list's text at commas into trimmed items; "" is the empty list.
 * In property lists an item without '=' continues the value before it
 * ("debug=cgrp,topic").
 */
static void
split_items(const char *text, bool props, struct config_strlist *items)
{
	const char *p = text;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma != NULL ? comma : p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (props && items->n > 0 && a < b &&
		    memchr(a, '=', (size_t)(b - a)) == NULL) {
			char *prev = items->v[items->n - 1];
			size_t plen = strlen(prev), alen = (size_t)(b - a);
			prev = xrealloc(prev, plen + alen + 2);
			prev[plen] = ',';
			memcpy(prev + plen + 1, a, alen);
			prev[plen + 1 + alen] = '\0';
			items->v[items->n - 1] = prev;
		} else {
			strlist_add(items, a, (size_t)(b - a));
		}
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0') /* trailing comma: an empty last item */
			strlist_add(items, "", 0);
	}
}

/* One list item given as text. */
static int
list_add_text(const struct config_key *k, struct config_list *l,
    const char *item, char *err, size_t errlen)
{
	int64_t v;
	int rc;

	if (k->type != KT_INTLIST)
		return config_list_add_string(k, l, item, err, errlen);
	if ((rc = int_parse(item, &v, err, errlen)) != 0)
		return rc;
	return config_list_add_int(k, l, v, err, errlen);
}

static int
set_list_text(const struct config_key *k, void *field, const char *text,
    char *err, size_t errlen)
{
	struct config_strlist items = {0};
	struct config_list l = {0};
	char reason[256];
	int rc = 0;

	split_items(text, k->type == KT_PROPS, &items);
	for (size_t i = 0; i < items.n && rc == 0; i++) {
		if (k->type == KT_STRLIST && items.v[i][0] == '\0') {
			errbuf_set(err, errlen, "item %zu is empty", i + 1);
			rc = -EINVAL;
		} else if ((rc = list_add_text(k, &l, items.v[i], reason,
		    sizeof(reason))) != 0) {
			errbuf_set(err, errlen, "item %zu: %s", i + 1, reason);
		}
	}
	if (rc == 0)
		config_list_commit(k, &l, field);
	config_list_free(&l);
	strlist_free(&items);
	return rc;
}

int
config_value_set_text(const struct config_key *k, void *field,
    const char *text, char *err, size_t errlen)
{
	int64_t i64;
	double d;
	int rc;

	switch (k->type) {
	case KT_STRING:
	case KT_ENUM:
	case KT_BOOL:
	case KT_DURATION:
		return config_value_set_string(k, field, text, err, errlen);
	case KT_INT:
		if ((rc = int_parse(text, &i64, err, errlen)) != 0)
			return rc;
		return config_value_set_int(k, field, i64, err, errlen);
	case KT_FLOAT:
		if ((rc = float_parse(text, &d, err, errlen)) != 0)
			return rc;
		return config_value_set_float(k, field, d, err, errlen);
	case KT_SIZE:
		if ((rc = config_value_parse_size(text, &i64, err,
		    errlen)) != 0)
			return rc;
		return config_value_set_size(k, field, i64, err, errlen);
	case KT_STRLIST:
	case KT_PROPS:
	case KT_INTLIST:
		break;
	}
	return set_list_text(k, field, text, err, errlen);
}

/* ---- free, equal, print ---- */

void
config_value_free(const struct config_key *k, void *field)
{
	switch (k->type) {
	case KT_STRING: {
		char **s = field;
		free(*s);
		*s = NULL;
		break;
	}
	case KT_STRLIST:
		strlist_free(field);
		break;
	case KT_PROPS:
		props_free(field);
		break;
	case KT_INTLIST: {
		struct config_intlist *l = field;
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	default:
		break;
	}
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool
config_value_equal(const struct config_key *k, const void *a,
    const void *b)
{
	switch (k->type) {
	case KT_STRING:
		return str_eq(*(char *const *)a, *(char *const *)b);
	case KT_ENUM:
	case KT_BOOL:
	case KT_INT:
		return int_get(a, k->size) == int_get(b, k->size);
	case KT_FLOAT: {
		double x, y;
		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return x == y;
	}
	case KT_DURATION:
	case KT_SIZE:
		return int_get(a, 8) == int_get(b, 8);
	case KT_STRLIST: {
		const struct config_strlist *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!str_eq(x->v[i], y->v[i]))
				return false;
		return true;
	}
	case KT_PROPS: {
		const struct config_props *x = a, *y = b;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!str_eq(x->v[i].name, y->v[i].name) ||
			    !str_eq(x->v[i].value, y->v[i].value))
				return false;
		return true;
	}
	case KT_INTLIST: {
		const struct config_intlist *x = a, *y = b;
		return x->n == y->n && (x->n == 0 ||
		    memcmp(x->v, y->v, x->n * sizeof(*x->v)) == 0);
	}
	}
	return false;
}

static void
dump_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* The shortest text that reads back as v, with a '.' so libconfig reads a
 * float. */
static void
dump_float(FILE *f, double v)
{
	char buf[64];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (strpbrk(buf, ".eEn") == NULL)
		strcat(buf, ".0");
	fputs(buf, f);
}

static void
dump_int(FILE *f, int64_t v)
{
	fprintf(f, "%lld%s", (long long)v,
	    v > INT32_MAX || v < INT32_MIN ? "L" : "");
}

void
config_value_print(FILE *f, const struct config_key *k, const void *field)
{
	char buf[64];

	switch (k->type) {
	case KT_STRING:
		dump_string(f, *(char *const *)field);
		break;
	case KT_ENUM:
		dump_string(f, k->names[int_get(field, k->size)]);
		break;
	case KT_BOOL:
		fputs(int_get(field, k->size) ? "true" : "false", f);
		break;
	case KT_INT:
		dump_int(f, int_get(field, k->size));
		break;
	case KT_FLOAT: {
		double d;
		memcpy(&d, field, sizeof(d));
		dump_float(f, d);
		break;
	}
	case KT_DURATION:
		duration_format(int_get(field, 8), buf, sizeof(buf));
		dump_string(f, buf);
		break;
	case KT_SIZE:
		size_format(int_get(field, 8), buf, sizeof(buf));
		dump_string(f, buf);
		break;
	case KT_STRLIST: {
		const struct config_strlist *l = field;
		fputc('[', f);
		for (size_t i = 0; i < l->n; i++) {
			fputs(i == 0 ? " " : ", ", f);
			dump_string(f, l->v[i]);
		}
		fputs(l->n > 0 ? " ]" : "]", f);
		break;
	}
	case KT_PROPS: {
		const struct config_props *l = field;
		fputc('[', f);
		for (size_t i = 0; i < l->n; i++) {
			/* secrets are not printed (util/redact.h) */
			const char *v = redact_is_secret(l->v[i].name) ?
			    REDACTED : l->v[i].value;
			size_t n = strlen(l->v[i].name) + strlen(v) + 2;
			char *item = xmalloc(n);
			snprintf(item, n, "%s=%s", l->v[i].name, v);
			fputs(i == 0 ? " " : ", ", f);
			dump_string(f, item);
			free(item);
		}
		fputs(l->n > 0 ? " ]" : "]", f);
		break;
	}
	case KT_INTLIST: {
		const struct config_intlist *l = field;
		fputc('[', f);
		for (size_t i = 0; i < l->n; i++)
			fprintf(f, "%s%d", i == 0 ? " " : ", ", (int)l->v[i]);
		fputs(l->n > 0 ? " ]" : "]", f);
		break;
	}
	}
}
