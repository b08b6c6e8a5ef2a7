/*
 * fingerprint: CRC-64-AVRO and the schema Parsing Canonical Form.
 *
 * CRC-64-AVRO is a reflected CRC with the polynomial whose reflected
 * form is FINGERPRINT_EMPTY, seeded with that same value (Avro spec,
 * "Schema Fingerprints"). The 256-entry table is built once, on first
 * use, under pthread_once, so the function may be called from any
 * thread.
 *
 * The PCF writer walks the jansson tree of the schema once, emitting
 * straight into a growing string. Named types are recorded (by fullname)
 * before their bodies are walked, so recursive references such as
 * {"name":"PigValue", ... "type":["null","PigValue"]} resolve, and a
 * second definition of the same fullname is refused. The namespace
 * passed down is the namespace of the most tightly enclosing named type
 * ("" is the null namespace).
 */
#include "wire/fingerprint.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/errbuf.h"
#include "util/textbuf.h"
#include "util/xmalloc.h"

static uint64_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint64_t fp = i;
		for (int j = 0; j < 8; j++)
			fp = (fp >> 1) ^ (FINGERPRINT_EMPTY & (0 - (fp & 1)));
		crc_table[i] = fp;
	}
}

uint64_t
fingerprint_crc64avro(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t fp = FINGERPRINT_EMPTY;

	pthread_once(&crc_once, crc_init);
	for (size_t i = 0; i < len; i++)
		fp = (fp >> 8) ^ crc_table[(fp ^ p[i]) & 0xff];
	return fp;
}

struct pcf {
	struct textbuf out; /* the form written so far */
	char **names; /* fullnames of the named types defined so far */
	size_t nnames, capnames;
	char *err;
	size_t errlen;
};

static const char *const primitives[] = { "null", "boolean", "int", "long",
	"float", "double", "bytes", "string" };

static bool
is_primitive(const char *s)
{
	for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
		if (strcmp(s, primitives[i]) == 0)
			return true;
	return false;
}

/* -EINVAL with the message in c's err. */
__attribute__((format(printf, 2, 3))) static int
pcf_fail(struct pcf *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vset(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void
put(struct pcf *c, const char *s, size_t n)
{
	textbuf_append(&c->out, s, n);
}

static void
puts_(struct pcf *c, const char *s)
{
	textbuf_append(&c->out, s, strlen(s));
}

/* A quoted string; callers only pass validated names. */
static void
putq(struct pcf *c, const char *s)
{
	put(c, "\"", 1);
	puts_(c, s);
	put(c, "\"", 1);
}

/* [A-Za-z_][A-Za-z0-9_]* */
static bool
valid_simple(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alpha = (ch >= 'A' && ch <= 'Z') ||
		    (ch >= 'a' && ch <= 'z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (!alpha && !(digit && i > 0))
			return false;
	}
	return true;
}

/* Dot-separated simple names; "" allowed when empty_ok. */
static bool
valid_dotted(const char *s, bool empty_ok)
{
	if (*s == '\0')
		return empty_ok;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (!valid_simple(s, n))
			return false;
		if (dot == NULL)
			return true;
		s = dot + 1;
	}
}

static char *
make_fullname(const char *name, const char *ns)
{
	size_t nl, sl;
	char *f;

	if (strchr(name, '.') != NULL || ns[0] == '\0')
		return xstrdup(name);
	nl = strlen(name);
	sl = strlen(ns);
	f = xmalloc(sl + 1 + nl + 1);
	memcpy(f, ns, sl);
	f[sl] = '.';
	memcpy(f + sl + 1, name, nl + 1);
	return f;
}

static bool
name_defined(const struct pcf *c, const char *full)
{
	for (size_t i = 0; i < c->nnames; i++)
		if (strcmp(c->names[i], full) == 0)
			return true;
	return false;
}

static int canon(struct pcf *c, json_t *s, const char *ns);

/*
 * Defines the named type of object s: validates name/namespace, records
 * the fullname, emits {"name":"<full>","type":"<type>" and, when inner is
 * not NULL, stores in *inner the namespace for what is nested (malloc'd).
 * 0, or -EINVAL with the message in c's err.
 */
static int
define_named(struct pcf *c, json_t *s, const char *type, const char *ns,
    char **inner)
{
	json_t *jn = json_object_get(s, "name");
	json_t *jns = json_object_get(s, "namespace");
	const char *name, *space = ns;
	char *full, *dot;

	if (!json_is_string(jn))
		return pcf_fail(c, "%s without a string \"name\"", type);
	name = json_string_value(jn);
	if (!valid_dotted(name, false))
		return pcf_fail(c, "bad %s name \"%s\"", type, name);
	if (jns != NULL && !json_is_null(jns)) {
		if (!json_is_string(jns) ||
		    !valid_dotted(json_string_value(jns), true))
			return pcf_fail(c, "bad namespace of %s \"%s\"", type,
			    name);
		space = json_string_value(jns);
	}
	full = make_fullname(name, space);
	dot = strrchr(full, '.');
	if (is_primitive(dot ? dot + 1 : full)) {
		free(full);
		return pcf_fail(c, "%s \"%s\" redefines a primitive type", type,
		    name);
	}
	if (name_defined(c, full)) {
		int rc = pcf_fail(c, "%s \"%s\" is defined twice", type, full);
		free(full);
		return rc;
	}
	if (c->nnames == c->capnames) {
		c->capnames = c->capnames ? 2 * c->capnames : 8;
		c->names = xreallocarray(c->names, c->capnames,
		    sizeof(*c->names));
	}
	c->names[c->nnames++] = full;
	puts_(c, "{\"name\":");
	putq(c, full);
	puts_(c, ",\"type\":");
	putq(c, type);
	if (inner != NULL)
		*inner = dot ? xstrndup(full, (size_t)(dot - full)) :
		    xstrdup("");
	return 0;
}

static int
canon_record(struct pcf *c, json_t *s, const char *ns)
{
	json_t *fields = json_object_get(s, "fields");
	char *inner = NULL;
	size_t i;
	json_t *f;
	int rc;

	if ((rc = define_named(c, s, "record", ns, &inner)) != 0)
		return rc;
	if (!json_is_array(fields)) {
		rc = pcf_fail(c, "record \"%s\" without a \"fields\" array",
		    c->names[c->nnames - 1]);
		goto out;
	}
	puts_(c, ",\"fields\":[");
	json_array_foreach(fields, i, f) {
		json_t *fn = json_object_get(f, "name");
		json_t *ft = json_object_get(f, "type");
		if (!json_is_string(fn) ||
		    !valid_simple(json_string_value(fn),
		    json_string_length(fn))) {
			rc = pcf_fail(c, "field %zu of record \"%s\" has no "
			    "valid \"name\"", i, c->names[c->nnames - 1]);
			goto out;
		}
		if (ft == NULL) {
			rc = pcf_fail(c, "field \"%s\" has no \"type\"",
			    json_string_value(fn));
			goto out;
		}
		if (i > 0)
			put(c, ",", 1);
		puts_(c, "{\"name\":");
		putq(c, json_string_value(fn));
		puts_(c, ",\"type\":");
		if ((rc = canon(c, ft, inner)) != 0)
			goto out;
		put(c, "}", 1);
	}
	puts_(c, "]}");
out:
	free(inner);
	return rc;
}

static int
canon_enum(struct pcf *c, json_t *s, const char *ns)
{
	size_t i;
	json_t *y, *syms;
	int rc = define_named(c, s, "enum", ns, NULL);

	if (rc != 0)
		return rc;
	if (!json_is_array(syms = json_object_get(s, "symbols")))
		return pcf_fail(c, "enum \"%s\" without a \"symbols\" array",
		    c->names[c->nnames - 1]);
	puts_(c, ",\"symbols\":[");
	json_array_foreach(syms, i, y) {
		if (!json_is_string(y) || !valid_simple(json_string_value(y),
		    json_string_length(y)))
			return pcf_fail(c, "enum \"%s\": bad symbol %zu",
			    c->names[c->nnames - 1], i);
		if (i > 0)
			put(c, ",", 1);
		putq(c, json_string_value(y));
	}
	puts_(c, "]}");
	return 0;
}

static int
canon_fixed(struct pcf *c, json_t *s, const char *ns)
{
	json_t *size = json_object_get(s, "size");
	char num[32];
	int rc = define_named(c, s, "fixed", ns, NULL);

	if (rc != 0)
		return rc;
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return pcf_fail(c, "fixed \"%s\" without a valid \"size\"",
		    c->names[c->nnames - 1]);
	snprintf(num, sizeof(num), "%lld",
	    (long long)json_integer_value(size));
	puts_(c, ",\"size\":");
	puts_(c, num);
	put(c, "}", 1);
	return 0;
}

static int
canon_ref(struct pcf *c, const char *ref, const char *ns)
{
	char *full;
	int rc = 0;

	if (is_primitive(ref)) {
		putq(c, ref);
		return 0;
	}
	if (!valid_dotted(ref, 0))
		return pcf_fail(c, "bad type name \"%s\"", ref);
	full = make_fullname(ref, ns);
	/* A dotless name outside the namespace: Avro looks it up as is. */
	if (!name_defined(c, full) && strchr(ref, '.') == NULL &&
	    name_defined(c, ref)) {
		free(full);
		full = xstrdup(ref);
	}
	if (name_defined(c, full))
		putq(c, full);
	else
		rc = pcf_fail(c, "undefined type \"%s\"", full);
	free(full);
	return rc;
}

static int
canon(struct pcf *c, json_t *s, const char *ns)
{
	const char *type;
	size_t i;
	json_t *e;
	int rc;

	if (json_is_string(s))
		return canon_ref(c, json_string_value(s), ns);
	if (json_is_array(s)) {
		put(c, "[", 1);
		json_array_foreach(s, i, e) {
			if (i > 0)
				put(c, ",", 1);
			if ((rc = canon(c, e, ns)) != 0)
				return rc;
		}
		put(c, "]", 1);
		return 0;
	}
	if (!json_is_object(s))
		return pcf_fail(c, "a schema must be a string, an array or an "
		    "object");
	if (!json_is_string(json_object_get(s, "type")))
		return pcf_fail(c, "schema object without a string \"type\"");
	type = json_string_value(json_object_get(s, "type"));
	if (is_primitive(type)) {
		putq(c, type);
		return 0;
	}
	if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0)
		return canon_record(c, s, ns);
	if (strcmp(type, "enum") == 0)
		return canon_enum(c, s, ns);
	if (strcmp(type, "fixed") == 0)
		return canon_fixed(c, s, ns);
	if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
		bool arr = type[0] == 'a';
		json_t *sub = json_object_get(s, arr ? "items" : "values");
		if (sub == NULL)
			return pcf_fail(c, "%s without \"%s\"", type,
			    arr ? "items" : "values");
		puts_(c, arr ? "{\"type\":\"array\",\"items\":" :
		    "{\"type\":\"map\",\"values\":");
		if ((rc = canon(c, sub, ns)) != 0)
			return rc;
		put(c, "}", 1);
		return 0;
	}
	/* {"type":"SomeNamedType"} is a reference in object form. */
	return canon_ref(c, type, ns);
}

int
fingerprint_pcf(const char *json, size_t len, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	struct pcf c = { .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root;
	int rc;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
	if (root == NULL)
		return pcf_fail(&c, "schema is not JSON: %s at line %d column "
		    "%d", jerr.text, jerr.line, jerr.column);
	rc = canon(&c, root, "");
	json_decref(root);
	for (size_t i = 0; i < c.nnames; i++)
		free(c.names[i]);
	free(c.names);
	if (rc != 0) {
		textbuf_free(&c.out);
		return rc;
	}
	*out = textbuf_take(&c.out, outlen);
	return 0;
}

int
fingerprint_schema(const char *json, size_t len, uint64_t *fp, char *err,
    size_t errlen)
{
	char *pcf;
	size_t n;
	int rc;

	if ((rc = fingerprint_pcf(json, len, &pcf, &n, err, errlen)) != 0)
		return rc;
	*fp = fingerprint_crc64avro(pcf, n);
	free(pcf);
	return 0;
}
