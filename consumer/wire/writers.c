/*
 * writers: see writers.h. The set is a small array (a handful of schema
 * versions; at most WRITERS_MAX_FILES files of at most
 * WRITERS_MAX_SCHEMA_BYTES each), searched linearly. Files are loaded in
 * name order so that messages about duplicates do not depend on the
 * directory's order.
 *
 * Per writer: its avro-c schema, the resolver interface
 * (avro_resolved_writer_new(writer, reader)) and one resolved value whose
 * destination is the set's single reader-schema value. A message is
 * walked by check_value (bounded; avro-c's own reader is not), read by
 * avro-c through the resolver into the reader value, and that value is
 * written into the set's buffer.
 */
#include "wire/writers.h"

#include <avro.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"
#include "wire/fingerprint.h"
#include "wire/schemas.h"

struct writer {
	char *file;		/* the name in the directory */
	uint64_t fp;
	int64_t id;		/* the Confluent id, -1 when the name has none */
	avro_schema_t schema;
	avro_value_iface_t *resolver;
	avro_value_t resolved;	/* destination: the set's reader value */
};

struct wire_writers {
	avro_schema_t reader;
	avro_value_iface_t *reader_class;
	avro_value_t reader_value;
	struct writer *v;
	size_t n;
	uint8_t *buf;		/* the last resolved record */
	size_t cap;
};

/* ---- the bounded walk over writer-schema bytes ---- */

struct walk {
	const uint8_t *p;
	size_t len, off;
	size_t items;		/* array and map items so far */
	char *err;
	size_t errlen;
};

static int
walk_fail(struct walk *w, const char *what)
{
	errbuf_set(w->err, w->errlen, "%s at byte %zu", what, w->off);
	return -EBADMSG;
}

static int
walk_long(struct walk *w, int64_t *out)
{
	uint64_t v = 0;

	for (unsigned i = 0;; i++) {
		if (w->off >= w->len)
			return walk_fail(w, "truncated varint");
		uint8_t b = w->p[w->off++];
		if (i == 9 && b > 1)
			return walk_fail(w, "overlong varint");
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			break;
	}
	*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return 0;
}

static int
walk_skip(struct walk *w, int64_t n, const char *what)
{
	if (n < 0 || (uint64_t)n > w->len - w->off)
		return walk_fail(w, what);
	w->off += (size_t)n;
	return 0;
}

static int walk_value(struct walk *w, avro_schema_t s, int depth);

/* Array items or map values, in blocks. */
static int
walk_blocks(struct walk *w, avro_schema_t items, bool map, int depth)
{
	int64_t count, size;
	int rc;

	for (;;) {
		if ((rc = walk_long(w, &count)) != 0)
			return rc;
		if (count == 0)
			return 0;
		if (count < 0) {
			if (count == INT64_MIN)
				return walk_fail(w, "bad block count");
			count = -count;
			if ((rc = walk_long(w, &size)) != 0)
				return rc;
		}
		if ((uint64_t)count > WRITERS_MAX_ITEMS - w->items)
			return walk_fail(w, "too many array or map items");
		w->items += (size_t)count;
		for (int64_t i = 0; i < count; i++) {
			int64_t n;
			if (map && ((rc = walk_long(w, &n)) != 0 ||
			    (rc = walk_skip(w, n, "map key past the end")) != 0))
				return rc;
			if ((rc = walk_value(w, items, depth + 1)) != 0)
				return rc;
		}
	}
}

static int
walk_value(struct walk *w, avro_schema_t s, int depth)
{
	int64_t n;
	int rc;

	if (depth > WRITERS_MAX_DEPTH)
		return walk_fail(w, "nested too deep");
	switch (avro_typeof(s)) {
	case AVRO_NULL:
		return 0;
	case AVRO_BOOLEAN:
		if (w->off >= w->len || w->p[w->off] > 1)
			return walk_fail(w, "bad boolean");
		w->off++;
		return 0;
	case AVRO_INT32:
	case AVRO_INT64:
		if ((rc = walk_long(w, &n)) != 0)
			return rc;
		if (avro_typeof(s) == AVRO_INT32 && (n < INT32_MIN ||
		    n > INT32_MAX))
			return walk_fail(w, "int out of range");
		return 0;
	case AVRO_FLOAT:
		return walk_skip(w, 4, "truncated float");
	case AVRO_DOUBLE:
		return walk_skip(w, 8, "truncated double");
	case AVRO_STRING:
	case AVRO_BYTES:
		if ((rc = walk_long(w, &n)) != 0)
			return rc;
		return walk_skip(w, n, "string or bytes past the end");
	case AVRO_FIXED:
		return walk_skip(w, avro_schema_fixed_size(s),
		    "truncated fixed");
	case AVRO_ENUM:
		if ((rc = walk_long(w, &n)) != 0)
			return rc;
		if (n < 0 || n >= avro_schema_enum_number_of_symbols(s))
			return walk_fail(w, "enum index out of range");
		return 0;
	case AVRO_ARRAY:
		return walk_blocks(w, avro_schema_array_items(s), false, depth);
	case AVRO_MAP:
		return walk_blocks(w, avro_schema_map_values(s), true, depth);
	case AVRO_UNION:
		if ((rc = walk_long(w, &n)) != 0)
			return rc;
		if (n < 0 || (uint64_t)n >= avro_schema_union_size(s))
			return walk_fail(w, "union branch out of range");
		return walk_value(w, avro_schema_union_branch(s, (int)n),
		    depth + 1);
	case AVRO_RECORD:
		for (size_t i = 0; i < avro_schema_record_size(s); i++)
			if ((rc = walk_value(w,
			    avro_schema_record_field_get_by_index(s, (int)i),
			    depth + 1)) != 0)
				return rc;
		return 0;
	case AVRO_LINK:
		return walk_value(w, avro_schema_link_target(s), depth + 1);
	default:
		return walk_fail(w, "unsupported type");
	}
}

/* ---- loading ---- */

static int
read_file(const char *path, char **text, size_t *len, char *err,
    size_t errlen)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	int rc = 0;

	*text = NULL;
	if (f == NULL) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		errbuf_set(err, errlen, "%s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > WRITERS_MAX_SCHEMA_BYTES) {
		errbuf_set(err, errlen, "%s: %lld bytes, more than the %u a "
		    "schema may have", path, (long long)st.st_size,
		    WRITERS_MAX_SCHEMA_BYTES);
		rc = -EFBIG;
		goto out;
	}
	*text = xmalloc((size_t)st.st_size + 1);
	*len = fread(*text, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		errbuf_set(err, errlen, "%s: read error", path);
		rc = -EIO;
		goto out;
	}
	(*text)[*len] = '\0';
out:
	fclose(f);
	if (rc != 0) {
		free(*text);
		*text = NULL;
	}
	return rc;
}

/* "7.avsc" -> 7; -1 for names that are not a decimal id. */
static int64_t
name_id(const char *name)
{
	int64_t id = 0;
	const char *p = name;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		id = id * 10 + (*p - '0');
		if (id > UINT32_MAX)
			return -1;
	}
	return strcmp(p, ".avsc") == 0 ? id : -1;
}

static bool
is_avsc(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".avsc") == 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
load_one(wire_writers *w, const char *dir, const char *name, char *err,
    size_t errlen)
{
	char path[4096], why[256];
	char *text = NULL;
	size_t len = 0;
	struct writer wr = { .id = name_id(name) };
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((rc = read_file(path, &text, &len, err, errlen)) != 0)
		return rc;
	if ((rc = fingerprint_schema(text, len, &wr.fp, why,
	    sizeof(why))) != 0) {
		errbuf_set(err, errlen, "%s: not an Avro schema: %s", path,
		    why);
		goto fail;
	}
	if (avro_schema_from_json_length(text, len, &wr.schema) != 0) {
		errbuf_set(err, errlen, "%s: not an Avro schema: %s", path,
		    avro_strerror());
		rc = -EINVAL;
		goto fail;
	}
	wr.resolver = avro_resolved_writer_new(wr.schema, w->reader);
	if (wr.resolver == NULL) {
		errbuf_set(err, errlen, "%s: cannot be resolved against "
		    "WorkloadEvent (schemas/workload_event.avsc): %s", path,
		    avro_strerror());
		rc = -EINVAL;
		goto fail;
	}
	if (avro_resolved_writer_new_value(wr.resolver, &wr.resolved) != 0) {
		errbuf_set(err, errlen, "%s: %s", path, avro_strerror());
		rc = -EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (wr.id >= 0 && w->v[i].id == wr.id) {
			errbuf_set(err, errlen, "%s: the same Confluent id as "
			    "%s/%s", path, dir, w->v[i].file);
			avro_value_decref(&wr.resolved);
			rc = -EEXIST;
			goto fail;
		}
	}
	avro_resolved_writer_set_dest(&wr.resolved, &w->reader_value);
	wr.file = xstrdup(name);
	w->v = xreallocarray(w->v, w->n + 1, sizeof(*w->v));
	w->v[w->n++] = wr;
	free(text);
	return 0;
fail:
	if (wr.resolver != NULL)
		avro_value_iface_decref(wr.resolver);
	if (wr.schema != NULL)
		avro_schema_decref(wr.schema);
	free(text);
	return rc != 0 ? rc : -EINVAL;
}

int
wire_writers_load(const char *dir, wire_writers **out, char *err,
    size_t errlen)
{
	wire_writers *w = xcalloc(1, sizeof(*w));
	char **names = NULL;
	size_t nnames = 0;
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0;

	*out = NULL;
	if (avro_schema_from_json_length(wire_event_schema,
	    strlen(wire_event_schema), &w->reader) != 0 ||
	    (w->reader_class = avro_generic_class_from_schema(w->reader)) ==
	    NULL || avro_generic_value_new(w->reader_class,
	    &w->reader_value) != 0) {
		errbuf_set(err, errlen, "WorkloadEvent: %s", avro_strerror());
		rc = -EINVAL;
		goto out;
	}
	if ((d = opendir(dir)) == NULL) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_avsc(de->d_name))
			continue;
		if (nnames == WRITERS_MAX_FILES) {
			errbuf_set(err, errlen, "%s: more than %d schema files",
			    dir, WRITERS_MAX_FILES);
			rc = -EFBIG;
			goto out;
		}
		names = xreallocarray(names, nnames + 1, sizeof(*names));
		names[nnames++] = xstrdup(de->d_name);
	}
	if (nnames > 0)
		qsort(names, nnames, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nnames && rc == 0; i++)
		rc = load_one(w, dir, names[i], err, errlen);
out:
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (rc != 0) {
		wire_writers_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void
wire_writers_free(wire_writers *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++) {
		avro_value_decref(&w->v[i].resolved);
		avro_value_iface_decref(w->v[i].resolver);
		avro_schema_decref(w->v[i].schema);
		free(w->v[i].file);
	}
	free(w->v);
	if (w->reader_class != NULL) {
		if (w->reader_value.self != NULL)
			avro_value_decref(&w->reader_value);
		avro_value_iface_decref(w->reader_class);
	}
	if (w->reader != NULL)
		avro_schema_decref(w->reader);
	free(w->buf);
	free(w);
}

size_t
wire_writers_count(const wire_writers *w)
{
	return w != NULL ? w->n : 0;
}

int
wire_writers_find_fp(const wire_writers *w, uint64_t fp)
{
	for (size_t i = 0; w != NULL && i < w->n; i++)
		if (w->v[i].fp == fp)
			return (int)i;
	return -1;
}

int
wire_writers_find_id(const wire_writers *w, uint32_t id)
{
	for (size_t i = 0; w != NULL && i < w->n; i++)
		if (w->v[i].id == (int64_t)id)
			return (int)i;
	return -1;
}

const char *
wire_writers_file(const wire_writers *w, int i)
{
	return w->v[i].file;
}

uint64_t
wire_writers_fp(const wire_writers *w, int i)
{
	return w->v[i].fp;
}

/* ---- resolving one message ---- */

int
wire_writers_resolve(wire_writers *w, int i, const void *p, size_t len,
    const uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	struct writer *wr = &w->v[i];
	struct walk wk = { p, len, 0, 0, NULL, 0 };
	char why[160];
	avro_reader_t r = NULL;
	avro_writer_t aw = NULL;
	size_t size = 0;
	int rc = -EBADMSG;

	wk.err = why;
	wk.errlen = sizeof(why);
	if (walk_value(&wk, wr->schema, 0) != 0) {
		errbuf_set(err, errlen, "writer schema %s: %s", wr->file, why);
		return -EBADMSG;
	}
	if (wk.off != len) {
		errbuf_set(err, errlen, "writer schema %s: %zu trailing bytes "
		    "after the record", wr->file, len - wk.off);
		return -EBADMSG;
	}
	avro_value_reset(&w->reader_value);
	r = avro_reader_memory((const char *)p, (int64_t)len);
	if (r == NULL || avro_value_read(r, &wr->resolved) != 0 ||
	    avro_value_sizeof(&w->reader_value, &size) != 0) {
		errbuf_set(err, errlen, "writer schema %s: %s", wr->file,
		    avro_strerror());
		goto out;
	}
	if (size > w->cap) {
		w->buf = xrealloc(w->buf, size);
		w->cap = size;
	}
	aw = avro_writer_memory((const char *)w->buf, (int64_t)size);
	if (aw == NULL || avro_value_write(aw, &w->reader_value) != 0) {
		errbuf_set(err, errlen, "writer schema %s: re-encoding: %s",
		    wr->file, avro_strerror());
		goto out;
	}
	*out = w->buf;
	*outlen = size;
	rc = 0;
out:
	if (r != NULL)
		avro_reader_free(r);
	if (aw != NULL)
		avro_writer_free(aw);
	return rc;
}
