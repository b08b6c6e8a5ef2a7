/*
 * wirejson: JSON <-> wire structs with jansson (the contract is in
 * wirejson.h). Not on the hot path: `sbomd emit` and `sbomd tail` handle
 * one message per line of text; the engine never calls this.
 *
 * Strings in a wire struct are UTF-8 without NUL once they came through
 * the decoder, so json_stringn accepts them; a string jansson refuses
 * anyway becomes null rather than failing the whole object.
 */
#include "wire/wirejson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"


/* Member key, which must be a string: 0, or -EINVAL with err. */
static int
get_str(const json_t *obj, const char *key, struct wire_str *out, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v)) {
		errbuf_set(err, errlen, "\"%s\" %s", key, v == NULL ?
		    "is missing" : "must be a string");
		return -EINVAL;
	}
	out->ptr = json_string_value(v);
	out->len = json_string_length(v);
	return 0;
}

/* Member key, a symbol (a string): 0, or -EINVAL with err. */
static int
get_sym(const json_t *obj, const char *key, const char **out, char *err,
    size_t errlen)
{
	struct wire_str s;
	int rc = get_str(obj, key, &s, err, errlen);

	if (rc == 0)
		*out = s.ptr;
	return rc;
}

static int
unknown_sym(const char *key, const char *sym, char *err, size_t errlen)
{
	errbuf_set(err, errlen, "\"%s\": unknown symbol \"%.64s\"", key, sym);
	return -EINVAL;
}

static int
get_refs(const json_t *obj, const char *key, struct wire_str *arr,
    size_t *n, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key), *e;
	size_t i;

	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		errbuf_set(err, errlen, "\"%s\" must be an array of strings", key);
		return -EINVAL;
	}
	if (json_array_size(v) > WIRE_MAX_REFS) {
		errbuf_set(err, errlen, "\"%s\" has %zu items, the limit is %d",
		    key, json_array_size(v), WIRE_MAX_REFS);
		return -EINVAL;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			errbuf_set(err, errlen, "\"%s\"[%zu] must be a string", key,
			    i);
			return -EINVAL;
		}
		arr[i].ptr = json_string_value(e);
		arr[i].len = json_string_length(e);
	}
	*n = json_array_size(v);
	return 0;
}

int
wire_event_from_json(const json_t *obj, struct wire_event *ev,
    unsigned *present, char *err, size_t errlen)
{
	static const char *const known[] = { "event_id", "type", "kind", "id",
		"source", "repo_tags", "repo_digests", "observed_at" };
	const char *key;
	json_t *v;
	int rc;
	const char *sym;

	*present = 0;
	if (!json_is_object(obj)) {
		errbuf_set(err, errlen, "an event must be a JSON object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			errbuf_set(err, errlen, "unknown member \"%.64s\"", key);
			return -EINVAL;
		}
	}
	ev->event_id.ptr = "";
	ev->event_id.len = 0;
	if ((v = json_object_get(obj, "event_id")) != NULL) {
		if ((rc = get_str(obj, "event_id", &ev->event_id, err,
		    errlen)) != 0)
			return rc;
		*present |= WIRE_JSON_HAS_EVENT_ID;
	}
	if ((rc = get_sym(obj, "type", &sym, err, errlen)) != 0)
		return rc;
	if (event_type_parse(sym, &ev->type) != 0)
		return unknown_sym("type", sym, err, errlen);
	if ((rc = get_sym(obj, "kind", &sym, err, errlen)) != 0)
		return rc;
	if (entity_kind_parse(sym, &ev->kind) != 0)
		return unknown_sym("kind", sym, err, errlen);
	if ((rc = get_str(obj, "id", &ev->id, err, errlen)) != 0 ||
	    (rc = get_str(obj, "source", &ev->source, err, errlen)) != 0 ||
	    (rc = get_refs(obj, "repo_tags", ev->repo_tags, &ev->ntags, err,
	    errlen)) != 0 ||
	    (rc = get_refs(obj, "repo_digests", ev->repo_digests,
	    &ev->ndigests, err, errlen)) != 0)
		return rc;
	ev->observed_at = 0;
	if ((v = json_object_get(obj, "observed_at")) != NULL) {
		if (!json_is_integer(v)) {
			errbuf_set(err, errlen, "\"observed_at\" must be an integer "
			    "(ms since the epoch)");
			return -EINVAL;
		}
		ev->observed_at = (int64_t)json_integer_value(v);
		*present |= WIRE_JSON_HAS_OBSERVED_AT;
	}
	return 0;
}

static json_t *
jstr(struct wire_str s)
{
	json_t *j = json_stringn(s.len ? s.ptr : "", s.len);
	return j != NULL ? j : json_null();
}

static json_t *
jrefs(const struct wire_str *a, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++)
		json_array_append_new(arr, jstr(a[i]));
	return arr;
}

static json_t *
jopt_int(int has, int64_t v)
{
	return has ? json_integer((json_int_t)v) : json_null();
}

json_t *
wire_event_to_json(const struct wire_event *ev)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "event_id", jstr(ev->event_id));
	json_object_set_new(o, "type",
	    json_string(event_type_name(ev->type)));
	json_object_set_new(o, "kind", json_string(entity_kind_name(ev->kind)));
	json_object_set_new(o, "id", jstr(ev->id));
	json_object_set_new(o, "source", jstr(ev->source));
	json_object_set_new(o, "repo_tags", jrefs(ev->repo_tags, ev->ntags));
	json_object_set_new(o, "repo_digests",
	    jrefs(ev->repo_digests, ev->ndigests));
	json_object_set_new(o, "observed_at",
	    json_integer((json_int_t)ev->observed_at));
	return o;
}

static char *
base64(const uint8_t *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *q = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		    p[i + 2];
		*q++ = tab[v >> 18];
		*q++ = tab[(v >> 12) & 63];
		*q++ = tab[(v >> 6) & 63];
		*q++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		*q++ = tab[v >> 18];
		*q++ = tab[(v >> 12) & 63];
		*q++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*q++ = '=';
	}
	*q = '\0';
	return out;
}

json_t *
wire_outcome_to_json(const struct wire_outcome *o, unsigned flags)
{
	json_t *j = json_object(), *sb;

	if (j == NULL)
		return NULL;
	json_object_set_new(j, "id", jstr(o->id));
	json_object_set_new(j, "kind", json_string(entity_kind_name(o->kind)));
	json_object_set_new(j, "status",
	    json_string(outcome_status_name(o->status)));
	json_object_set_new(j, "attempt", json_integer(o->attempt));
	json_object_set_new(j, "next_attempt_at",
	    jopt_int(o->has_next_attempt_at, o->next_attempt_at));
	json_object_set_new(j, "error", o->has_error ? jstr(o->error) :
	    json_null());
	json_object_set_new(j, "error_class", o->has_error_class ?
	    json_string(error_class_name(o->error_class)) :
	    json_null());
	json_object_set_new(j, "scanner", jstr(o->scanner));
	json_object_set_new(j, "started_at",
	    jopt_int(o->has_started_at, o->started_at));
	json_object_set_new(j, "duration_ms",
	    jopt_int(o->has_duration_ms, o->duration_ms));
	json_object_set_new(j, "repo_tags", jrefs(o->repo_tags, o->ntags));
	json_object_set_new(j, "repo_digests",
	    jrefs(o->repo_digests, o->ndigests));
	if (!o->has_sbom) {
		json_object_set_new(j, "sbom", json_null());
	} else if ((sb = json_object()) != NULL) {
		json_object_set_new(sb, "format", jstr(o->sbom.format));
		json_object_set_new(sb, "spec_version",
		    jstr(o->sbom.spec_version));
		json_object_set_new(sb, "component_count",
		    json_integer(o->sbom.component_count));
		json_object_set_new(sb, "content_length",
		    json_integer((json_int_t)o->sbom.content_len));
		if (!(flags & WIRE_JSON_OMIT_CONTENT)) {
			json_t *doc = NULL;
			if (o->sbom.content_len > 0)
				doc = json_loadb((const char *)o->sbom.content,
				    o->sbom.content_len, 0, NULL);
			if (doc != NULL) {
				json_object_set_new(sb, "content", doc);
			} else {
				char *b = base64(o->sbom.content,
				    o->sbom.content_len);
				json_object_set_new(sb, "content_base64",
				    json_string(b));
				free(b);
			}
		}
		json_object_set_new(j, "sbom", sb);
	}
	json_object_set_new(j, "emitted_at",
	    json_integer((json_int_t)o->emitted_at));
	json_object_set_new(j, "generation",
	    json_integer((json_int_t)o->generation));
	return j;
}
