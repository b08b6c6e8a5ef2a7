/*
 * config: loading the service configuration (libconfig file, SBOMD_
 * environment, cross-key checks), printing it, comparing it.
 *
 * Every key is one row of keys[] below: its dotted name, its type, where it
 * lives in struct sbomd_config, its bounds, its default and a one-line doc.
 * The file walk, the environment overrides, config_defaults, config_dump,
 * config_equal and config_free all iterate that table, so a key added there
 * is loaded, overridable, printed, compared and freed without touching any
 * other code. Rows of one group are contiguous; the group is the part of
 * the name before the dot and contains no '_' (so SBOMD_<GROUP>_<KEY> maps
 * back to one key without ambiguity).
 *
 * Defaults are written in the environment syntax and go through the same
 * parser as SBOMD_ values, so a default can never bypass a bound.
 *
 * The loader stops at the first problem. Every message says where the
 * value came from ("FILE:LINE: key: ...", "environment SBOMD_X: ...");
 * cross-key messages are prefixed with the origin of the first key they
 * mention that was set explicitly.
 *
 * libconfig 1.5 quirks: integers above 2^31-1 need an 'L' suffix (without
 * it they silently wrap; sizes are therefore best written as strings,
 * "64GiB"); separators between settings are optional.
 *
 * Called once at start-up, from one thread.
 */
#include "service/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/duration.h"
#include "util/xmalloc.h"

extern char **environ;

#define KIB ((int64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)

enum ktype {
	KT_STRING,	/* char * */
	KT_ENUM,	/* an enum; names[] are its values in order */
	KT_INT,		/* int32_t/uint32_t (size 4) or int64_t (size 8) */
	KT_FLOAT,	/* double; an integer in the file is accepted */
	KT_DURATION,	/* int64_t ms, from a duration string */
	KT_SIZE,	/* int64_t bytes, an integer or "64MiB" */
	KT_STRLIST,	/* struct config_strlist */
	KT_PROPS,	/* struct config_props */
	KT_INTLIST,	/* struct config_intlist */
};

/* Checks a string value (or list item, or property name): 0 or -EINVAL
 * with the reason in why. */
typedef int (*check_fn)(const char *s, char *why, size_t whylen);

struct key {
	const char *name;	/* "group.key" */
	enum ktype type;
	size_t off, size;	/* of the field in struct sbomd_config */
	int64_t min, max;	/* KT_INT, KT_INTLIST items, KT_DURATION, KT_SIZE */
	double fmin, fmax;	/* KT_FLOAT: [fmin, fmax], or [fmin, fmax) */
	bool fmax_open;
	const char *const *names; /* KT_ENUM, NULL-terminated */
	check_fn check;		/* KT_STRING, KT_STRLIST items, KT_PROPS names */
	const char *def;	/* default, in environment syntax */
	const char *doc;	/* one line, for config_dump */
};

/* ---- string checks ---- */

static int
check_nonempty(const char *s, char *why, size_t whylen)
{
	if (*s == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -EINVAL;
	}
	return 0;
}

/* Kafka's rule: 1..249 of [A-Za-z0-9._-], not "." or "..". */
static int
check_topic(const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s);

	if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		snprintf(why, whylen,
		    "\"%s\" is not a valid topic name (1 to 249 characters, "
		    "not \".\" or \"..\")", s);
		return -EINVAL;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' &&
		    *p != '-') {
			snprintf(why, whylen,
			    "\"%s\" is not a valid topic name (only letters, "
			    "digits, '.', '_' and '-')", s);
			return -EINVAL;
		}
	}
	return 0;
}

static int
check_topic_or_empty(const char *s, char *why, size_t whylen)
{
	return *s == '\0' ? 0 : check_topic(s, why, whylen);
}

/* "os/arch" or "os/arch/variant", each part of [A-Za-z0-9._-]. */
static int
check_platform(const char *s, char *why, size_t whylen)
{
	int parts = 1;
	size_t len = 0;

	for (const char *p = s;; p++) {
		if (*p == '/' || *p == '\0') {
			if (len == 0)
				goto bad;
			if (*p == '\0')
				break;
			parts++;
			len = 0;
		} else if (isalnum((unsigned char)*p) || *p == '.' ||
		    *p == '_' || *p == '-') {
			len++;
		} else {
			goto bad;
		}
	}
	if (parts == 2 || parts == 3)
		return 0;
bad:
	snprintf(why, whylen,
	    "\"%s\" is not a platform: expected \"os/arch\" or "
	    "\"os/arch/variant\", e.g. \"linux/arm64/v8\"", s);
	return -EINVAL;
}

/* "" (off), "host:port", ":port" (any address) or "[v6]:port". */
static int
check_listen(const char *s, char *why, size_t whylen)
{
	const char *colon = strrchr(s, ':');
	const char *host_end;
	char *end;

	if (*s == '\0')
		return 0;
	if (colon == NULL)
		goto bad;
	host_end = colon;
	if (s[0] == '[') {
		if (colon == s || colon[-1] != ']' || colon - s < 3)
			goto bad;
	} else if (memchr(s, ':', (size_t)(host_end - s)) != NULL) {
		goto bad; /* an IPv6 address needs brackets */
	}
	for (const char *p = s; p < host_end; p++)
		if (isspace((unsigned char)*p) || *p == '/')
			goto bad;
	if (colon[1] < '0' || colon[1] > '9' || strlen(colon + 1) > 5)
		goto bad;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port > 65535)
		goto bad;
	return 0;
bad:
	snprintf(why, whylen,
	    "\"%s\" is not \"host:port\" (or \":port\", \"[v6addr]:port\", "
	    "\"\" to disable)", s);
	return -EINVAL;
}

/* A librdkafka property name, not one that sbomd sets itself. */
static int
check_prop_name(const char *name, const char *const *reserved,
    const char *const *owner, char *why, size_t whylen)
{
	for (const char *p = name; *p != '\0'; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
		    *p != '.' && *p != '_' && *p != '-') {
			snprintf(why, whylen,
			    "\"%s\" is not a librdkafka property name", name);
			return -EINVAL;
		}
	}
	for (size_t i = 0; reserved[i] != NULL; i++) {
		if (strcmp(name, reserved[i]) == 0) {
			snprintf(why, whylen, "\"%s\" is set by %s", name,
			    owner[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int
check_consumer_prop(const char *name, char *why, size_t whylen)
{
	static const char *const reserved[] = {"bootstrap.servers",
	    "group.id", "enable.auto.offset.store", NULL};
	static const char *const owner[] = {"kafka.brokers", "kafka.group_id",
	    "sbomd (offsets are stored only once durable)"};
	return check_prop_name(name, reserved, owner, why, whylen);
}

static int
check_producer_prop(const char *name, char *why, size_t whylen)
{
	static const char *const reserved[] = {"bootstrap.servers", NULL};
	static const char *const owner[] = {"kafka.brokers"};
	return check_prop_name(name, reserved, owner, why, whylen);
}

/* ---- the table ---- */

static const char *const framing_names[] = {"single-object", "confluent",
    NULL};
static const char *const backend_names[] = {"oci", "exec", "none", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error",
    NULL};
static const char *const format_names[] = {"json", "text", NULL};

#define FIELD(m) .off = offsetof(struct sbomd_config, m), \
	.size = sizeof(((struct sbomd_config *)0)->m)

static const struct key keys[] = {
	{.name = "kafka.brokers", .type = KT_STRING, FIELD(kafka.brokers),
	    .check = check_nonempty, .def = "127.0.0.1:9092",
	    .doc = "bootstrap servers"},
	{.name = "kafka.group_id", .type = KT_STRING, FIELD(kafka.group_id),
	    .check = check_nonempty, .def = "sbomd",
	    .doc = "consumer group"},
	{.name = "kafka.input_topic", .type = KT_STRING,
	    FIELD(kafka.input_topic), .check = check_topic,
	    .def = "workload-events", .doc = "workload events in"},
	{.name = "kafka.output_topic", .type = KT_STRING,
	    FIELD(kafka.output_topic), .check = check_topic,
	    .def = "scan-outcomes", .doc = "scan outcomes out"},
	{.name = "kafka.dead_letter_topic", .type = KT_STRING,
	    FIELD(kafka.dead_letter_topic), .check = check_topic_or_empty,
	    .def = "", .doc = "\"\" = count and skip undecodable input"},
	{.name = "kafka.output_framing", .type = KT_ENUM,
	    FIELD(kafka.output_framing), .names = framing_names,
	    .def = "single-object", .doc = "or \"confluent\""},
	{.name = "kafka.output_schema_id", .type = KT_INT,
	    FIELD(kafka.output_schema_id), .min = 0, .max = INT32_MAX,
	    .def = "0", .doc = "written with confluent framing (> 0 then)"},
	{.name = "kafka.consumer_properties", .type = KT_PROPS,
	    FIELD(kafka.consumer_properties), .check = check_consumer_prop,
	    .def = "", .doc = "\"name=value\" passed to librdkafka"},
	{.name = "kafka.producer_properties", .type = KT_PROPS,
	    FIELD(kafka.producer_properties), .check = check_producer_prop,
	    .def = "", .doc = "\"name=value\" passed to librdkafka"},
	{.name = "kafka.max_payload_bytes", .type = KT_SIZE,
	    FIELD(kafka.max_payload_bytes), .min = 1, .max = GIB,
	    .def = "1MiB", .doc = "larger input messages are not decoded"},
	{.name = "kafka.accepted_schema_ids", .type = KT_INTLIST,
	    FIELD(kafka.accepted_schema_ids), .min = 1, .max = INT32_MAX,
	    .def = "", .doc = "confluent ids accepted on input; [] = any"},

	{.name = "state.dir", .type = KT_STRING, FIELD(state.dir),
	    .check = check_nonempty, .def = "/var/lib/sbomd",
	    .doc = "the LMDB directory"},
	{.name = "state.max_map_size", .type = KT_SIZE,
	    FIELD(state.max_map_size), .min = MIB, .max = 1024 * TIB,
	    .def = "64GiB", .doc = "LMDB map size: the state's upper bound"},

	{.name = "retry.base_backoff", .type = KT_DURATION,
	    FIELD(retry.base_ms), .min = 1, .def = "5m",
	    .doc = "first retry delay"},
	{.name = "retry.max_backoff", .type = KT_DURATION, FIELD(retry.max_ms),
	    .min = 1, .def = "1h", .doc = "cap"},
	{.name = "retry.multiplier", .type = KT_FLOAT,
	    FIELD(retry.multiplier), .fmin = 1, .fmax = 1000, .def = "2",
	    .doc = "growth per attempt"},
	{.name = "retry.jitter", .type = KT_FLOAT, FIELD(retry.jitter),
	    .fmin = 0, .fmax = 1, .fmax_open = true, .def = "0.1",
	    .doc = "+- fraction of each delay"},
	{.name = "retry.max_attempts", .type = KT_INT,
	    FIELD(retry.max_attempts), .min = 0, .max = POLICY_MAX_ATTEMPTS,
	    .def = "0", .doc = "0 = no limit"},
	{.name = "retry.failed_rescan_after", .type = KT_DURATION,
	    FIELD(retry.failed_rescan_after_ms), .min = 0, .def = "24h",
	    .doc = "FAILED entities reported again; \"0\" = never"},

	{.name = "dedup.rescan_after", .type = KT_DURATION,
	    FIELD(dedup.rescan_after_ms), .min = 0, .def = "24h",
	    .doc = "DONE entities reported again; \"0\" = never"},
	{.name = "dedup.forget_after", .type = KT_DURATION,
	    FIELD(dedup.forget_after_ms), .min = 0, .def = "24h",
	    .doc = "unreferenced entities are forgotten after"},

	{.name = "engine.max_outbox", .type = KT_INT, FIELD(engine.max_outbox),
	    .min = 1, .max = 1000000000, .def = "10000",
	    .doc = "pause input above this many unsent outcomes"},
	{.name = "engine.max_pending", .type = KT_INT,
	    FIELD(engine.max_pending), .min = 1, .max = 1000000000,
	    .def = "1000000", .doc = "pause input above this many heap entries"},
	{.name = "engine.batch_max", .type = KT_INT, FIELD(engine.batch_max),
	    .min = 1, .max = 1000000, .def = "10000",
	    .doc = "events per poll batch (one transaction)"},
	{.name = "engine.shutdown_timeout", .type = KT_DURATION,
	    FIELD(engine.shutdown_timeout_ms), .min = 0, .def = "10s",
	    .doc = "drain budget on SIGTERM"},

	{.name = "scan.backend", .type = KT_ENUM, FIELD(scan.backend),
	    .names = backend_names, .def = "oci",
	    .doc = "or \"exec\"; \"none\": track only, scans wait"},
	{.name = "scan.workers", .type = KT_INT, FIELD(scan.workers), .min = 1,
	    .max = 256, .def = "2", .doc = "concurrent scans"},
	{.name = "scan.timeout", .type = KT_DURATION, FIELD(scan.timeout_ms),
	    .min = 1, .def = "5m", .doc = "per scan"},
	{.name = "scan.stores", .type = KT_STRLIST, FIELD(scan.stores),
	    .check = check_nonempty,
	    .def = "/var/lib/containerd/io.containerd.content.v1.content",
	    .doc = "OCI layouts, containerd stores, .tar archives"},
	{.name = "scan.platform", .type = KT_STRING, FIELD(scan.platform),
	    .check = check_platform, .def = "linux/amd64",
	    .doc = "picked from multi-platform indexes"},
	{.name = "scan.host_root", .type = KT_STRING, FIELD(scan.host_root),
	    .check = check_nonempty, .def = "/host",
	    .doc = "catalogued by HOST scans"},
	{.name = "scan.exec_argv", .type = KT_STRLIST, FIELD(scan.exec_argv),
	    .def = "", .doc = "exec backend: argv, {id} and {ref} filled in"},
	{.name = "scan.exec_retryable_exit_codes", .type = KT_INTLIST,
	    FIELD(scan.exec_retryable_exit_codes), .min = 1, .max = 255,
	    .def = "", .doc = "other non-zero exits are permanent"},
	{.name = "scan.max_sbom_bytes", .type = KT_SIZE,
	    FIELD(scan.max_sbom_bytes), .min = 1, .max = GIB, .def = "64MiB",
	    .doc = "larger SBOMs fail the scan"},

	{.name = "http.listen", .type = KT_STRING, FIELD(http.listen),
	    .check = check_listen, .def = "127.0.0.1:8080",
	    .doc = "metrics/health/status; \"\" disables"},

	{.name = "log.level", .type = KT_ENUM, FIELD(log.level),
	    .names = level_names, .def = "info",
	    .doc = "debug | info | warn | error"},
	{.name = "log.format", .type = KT_ENUM, FIELD(log.format),
	    .names = format_names, .def = "json", .doc = "json | text"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

_Static_assert(sizeof(enum config_framing) == sizeof(int32_t) &&
    sizeof(enum config_backend) == sizeof(int32_t) &&
    sizeof(enum config_log_level) == sizeof(int32_t) &&
    sizeof(enum config_log_format) == sizeof(int32_t),
    "enums are stored as 32-bit integers");

static void *
field_of(struct sbomd_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const void *
cfield_of(const struct sbomd_config *c, const struct key *k)
{
	return (const char *)c + k->off;
}

/* KT_INT and KT_ENUM fields are 4 or 8 bytes (signedness irrelevant: the
 * bounds keep values representable either way). */
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

/* Length of the group part of a key name. */
static size_t
group_len(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot != NULL ? (size_t)(dot - name) : strlen(name);
}

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static void
env_name_of(const struct key *k, char *buf, size_t buflen)
{
	size_t n = 0;

	if (buflen == 0)
		return;
	for (const char *p = "SBOMD_"; *p != '\0' && n + 1 < buflen; p++)
		buf[n++] = *p;
	for (const char *p = k->name; *p != '\0' && n + 1 < buflen; p++)
		buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	buf[n] = '\0';
}

/* ---- values ---- */

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
strlist_add(struct config_strlist *l, const char *s, size_t len)
{
	l->v = xreallocarray(l->v, l->n + 2, sizeof(*l->v));
	l->v[l->n++] = xstrndup(s, len);
	l->v[l->n] = NULL;
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

static void
intlist_free(struct config_intlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
value_free(void *field, const struct key *k)
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
	case KT_INTLIST:
		intlist_free(field);
		break;
	default:
		break;
	}
}

static int
put_int(const struct key *k, void *field, int64_t v, char *why,
    size_t whylen)
{
	if (v < k->min || v > k->max) {
		snprintf(why, whylen, "%lld is out of range [%lld, %lld]",
		    (long long)v, (long long)k->min, (long long)k->max);
		return -ERANGE;
	}
	int_put(field, k->size, v);
	return 0;
}

static int
put_float(const struct key *k, void *field, double v, char *why,
    size_t whylen)
{
	if (!(v >= k->fmin && (k->fmax_open ? v < k->fmax : v <= k->fmax))) {
		snprintf(why, whylen, "%g is out of range [%g, %g%c", v,
		    k->fmin, k->fmax, k->fmax_open ? ')' : ']');
		return -ERANGE;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

static int
put_string(const struct key *k, void *field, const char *s, char *why,
    size_t whylen)
{
	char **dst = field;

	if (k->check != NULL) {
		int rc = k->check(s, why, whylen);
		if (rc != 0)
			return rc;
	}
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

static int
put_enum(const struct key *k, void *field, const char *s, char *why,
    size_t whylen)
{
	size_t used;

	for (size_t i = 0; k->names[i] != NULL; i++) {
		if (strcmp(s, k->names[i]) == 0) {
			int_put(field, k->size, (int64_t)i);
			return 0;
		}
	}
	used = (size_t)snprintf(why, whylen, "\"%s\" is not one of", s);
	for (size_t i = 0; k->names[i] != NULL && used < whylen; i++)
		used += (size_t)snprintf(why + used, whylen - used, "%s \"%s\"",
		    i == 0 ? "" : ",", k->names[i]);
	return -EINVAL;
}

static int
put_duration(const struct key *k, void *field, const char *s, char *why,
    size_t whylen)
{
	int64_t ms;
	int rc = duration_parse(s, &ms, why, whylen);

	if (rc != 0)
		return rc;
	if (ms < k->min) {
		snprintf(why, whylen, "\"%s\": must be greater than 0", s);
		return -ERANGE;
	}
	memcpy(field, &ms, sizeof(ms));
	return 0;
}

static const struct {
	const char *name;
	int64_t bytes;
} size_units[] = {
	{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}, {"B", 1},
};

static void
size_format(int64_t v, char *buf, size_t buflen)
{
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]);
	    i++) {
		if (v != 0 && v % size_units[i].bytes == 0) {
			snprintf(buf, buflen, "%lld%s",
			    (long long)(v / size_units[i].bytes),
			    size_units[i].name);
			return;
		}
	}
	snprintf(buf, buflen, "%lldB", (long long)v);
}

static int
put_size(const struct key *k, void *field, int64_t v, char *why,
    size_t whylen)
{
	if (v < k->min || v > k->max) {
		char a[32], lo[32], hi[32];
		size_format(v, a, sizeof(a));
		size_format(k->min, lo, sizeof(lo));
		size_format(k->max, hi, sizeof(hi));
		snprintf(why, whylen, "%s is out of range [%s, %s]",
		    v < 0 ? "a negative size" : a, lo, hi);
		return -ERANGE;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

/* "<digits>[B|KiB|MiB|GiB|TiB]" */
static int
size_parse(const char *s, int64_t *v, char *why, size_t whylen)
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
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]);
	    i++) {
		if (strcmp(p, size_units[i].name) == 0) {
			if (n > INT64_MAX / size_units[i].bytes)
				goto big;
			*v = n * size_units[i].bytes;
			return 0;
		}
	}
bad:
	snprintf(why, whylen,
	    "bad size \"%s\": expected an integer with an optional unit (B, "
	    "KiB, MiB, GiB, TiB)", s);
	return -EINVAL;
big:
	snprintf(why, whylen, "size \"%s\" is too large", s);
	return -ERANGE;
}

/* Strict decimal integer: optional sign, digits, nothing else. */
static int
int_parse(const char *s, int64_t *v, char *why, size_t whylen)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || isspace((unsigned char)*s)) {
		snprintf(why, whylen, "expected an integer, got \"%s\"", s);
		return -EINVAL;
	}
	if (errno == ERANGE) {
		snprintf(why, whylen, "%s is out of range", s);
		return -ERANGE;
	}
	*v = n;
	return 0;
}

static int
float_parse(const char *s, double *v, char *why, size_t whylen)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || isspace((unsigned char)*s) ||
	    !isfinite(d)) {
		snprintf(why, whylen, "expected a number, got \"%s\"", s);
		return -EINVAL;
	}
	*v = d;
	return 0;
}

/* One "name=value" item into p (allocated only on success). */
static int
prop_parse(const struct key *k, const char *s, struct config_prop *p,
    char *why, size_t whylen)
{
	const char *eq = strchr(s, '=');
	char *name;
	int rc;

	if (eq == NULL || eq == s) {
		snprintf(why, whylen, "\"%s\" is not \"name=value\"", s);
		return -EINVAL;
	}
	name = xstrndup(s, (size_t)(eq - s));
	rc = k->check != NULL ? k->check(name, why, whylen) : 0;
	if (rc != 0) {
		free(name);
		return rc;
	}
	p->name = name;
	p->value = xstrdup(eq + 1);
	return 0;
}

static void
props_add(struct config_props *l, struct config_prop *p)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = *p;
}

static int
intlist_add(const struct key *k, struct config_intlist *l, int64_t v,
    char *why, size_t whylen)
{
	if (v < k->min || v > k->max) {
		snprintf(why, whylen, "%lld is out of range [%lld, %lld]",
		    (long long)v, (long long)k->min, (long long)k->max);
		return -ERANGE;
	}
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = (int32_t)v;
	return 0;
}

static int
strlist_item_ok(const struct key *k, const char *s, char *why,
    size_t whylen)
{
	return k->check != NULL ? k->check(s, why, whylen) : 0;
}

/* Swaps a freshly built list into the field, freeing the old one. */
static void
list_replace(const struct key *k, void *field, void *fresh, size_t size)
{
	value_free(field, k);
	memcpy(field, fresh, size);
}

/*
 * Sets a field from text (environment syntax, also used for defaults).
 * On failure the field is unchanged and why says what is wrong; for list
 * items why starts with the 1-based item number.
 */
static int
set_from_text(const struct key *k, void *field, const char *text, char *why,
    size_t whylen)
{
	int64_t i64;
	double d;
	int rc;

	switch (k->type) {
	case KT_STRING:
		return put_string(k, field, text, why, whylen);
	case KT_ENUM:
		return put_enum(k, field, text, why, whylen);
	case KT_INT:
		if ((rc = int_parse(text, &i64, why, whylen)) != 0)
			return rc;
		return put_int(k, field, i64, why, whylen);
	case KT_FLOAT:
		if ((rc = float_parse(text, &d, why, whylen)) != 0)
			return rc;
		return put_float(k, field, d, why, whylen);
	case KT_DURATION:
		return put_duration(k, field, text, why, whylen);
	case KT_SIZE:
		if ((rc = size_parse(text, &i64, why, whylen)) != 0)
			return rc;
		return put_size(k, field, i64, why, whylen);
	case KT_STRLIST:
	case KT_PROPS:
	case KT_INTLIST:
		break;
	}

	/* lists: comma-separated, items trimmed, "" = empty list */
	struct config_strlist items = {0};
	const char *p = text;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma != NULL ? comma : p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (k->type == KT_PROPS && items.n > 0 && a < b &&
		    memchr(a, '=', (size_t)(b - a)) == NULL) {
			/* "debug=cgrp,topic": a value with a comma */
			char *prev = items.v[items.n - 1];
			size_t plen = strlen(prev), alen = (size_t)(b - a);
			prev = xrealloc(prev, plen + alen + 2);
			prev[plen] = ',';
			memcpy(prev + plen + 1, a, alen);
			prev[plen + 1 + alen] = '\0';
			items.v[items.n - 1] = prev;
		} else {
			strlist_add(&items, a, (size_t)(b - a));
		}
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0') /* trailing comma: an empty last item */
			strlist_add(&items, "", 0);
	}

	rc = 0;
	if (k->type == KT_STRLIST) {
		for (size_t i = 0; i < items.n && rc == 0; i++) {
			if (items.v[i][0] == '\0') {
				snprintf(why, whylen, "item %zu is empty", i + 1);
				rc = -EINVAL;
			} else if ((rc = strlist_item_ok(k, items.v[i], why,
			    whylen)) != 0) {
				char inner[256];
				snprintf(inner, sizeof(inner), "%s", why);
				snprintf(why, whylen, "item %zu: %s", i + 1,
				    inner);
			}
		}
		if (rc == 0) {
			list_replace(k, field, &items, sizeof(items));
			return 0;
		}
	} else if (k->type == KT_PROPS) {
		struct config_props props = {0};
		for (size_t i = 0; i < items.n && rc == 0; i++) {
			struct config_prop prop;
			if ((rc = prop_parse(k, items.v[i], &prop, why,
			    whylen)) != 0) {
				char inner[256];
				snprintf(inner, sizeof(inner), "%s", why);
				snprintf(why, whylen, "item %zu: %s", i + 1,
				    inner);
			} else {
				props_add(&props, &prop);
			}
		}
		if (rc == 0)
			list_replace(k, field, &props, sizeof(props));
		else
			props_free(&props);
	} else {
		struct config_intlist ints = {0};
		for (size_t i = 0; i < items.n && rc == 0; i++) {
			char inner[256];
			if ((rc = int_parse(items.v[i], &i64, inner,
			    sizeof(inner))) == 0)
				rc = intlist_add(k, &ints, i64, inner,
				    sizeof(inner));
			if (rc != 0)
				snprintf(why, whylen, "item %zu: %s", i + 1,
				    inner);
		}
		if (rc == 0)
			list_replace(k, field, &ints, sizeof(ints));
		else
			intlist_free(&ints);
	}
	strlist_free(&items);
	return rc;
}

/* ---- loading ---- */

struct origin {
	const char *file;	/* NULL: not set from a file */
	unsigned line;
	bool env;		/* set from its environment variable */
};

struct loader {
	struct sbomd_config *c;
	const char *path;
	char *incdir;		/* the directory of path: @include base */
	char **shown;		/* included files' names as shown (owned) */
	size_t nshown;
	struct origin origin[NKEYS];
	char *err;
	size_t errlen;
	char *none[1];		/* an empty environment */
};

static const char *
setting_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/*
 * The file a setting came from, as the user can find it: libconfig keeps
 * @include names as written, relative to the include directory.
 */
static const char *
setting_file(struct loader *ld, const config_setting_t *s)
{
	const char *f = config_setting_source_file(s);
	size_t n;
	char *p;

	if (f == NULL || strcmp(f, ld->path) == 0)
		return ld->path;
	if (f[0] == '/' || ld->incdir == NULL)
		return f;
	for (size_t i = 0; i < ld->nshown; i++) {
		const char *tail = ld->shown[i] + strlen(ld->incdir) + 1;
		if (strcmp(tail, f) == 0)
			return ld->shown[i];
	}
	n = strlen(ld->incdir) + strlen(f) + 2;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", ld->incdir, f);
	ld->shown = xreallocarray(ld->shown, ld->nshown + 1,
	    sizeof(*ld->shown));
	ld->shown[ld->nshown++] = p;
	return p;
}

__attribute__((format(printf, 4, 5))) static int
fail_at(struct loader *ld, const config_setting_t *s, const char *what,
    const char *fmt, ...)
{
	size_t used;
	va_list ap;
	int w;

	w = snprintf(ld->err, ld->errlen, "%s:%u: ", setting_file(ld, s),
	    config_setting_source_line(s));
	used = w < 0 ? 0 : (size_t)w;
	if (what != NULL && used < ld->errlen) {
		w = snprintf(ld->err + used, ld->errlen - used, "%s: ", what);
		used += w < 0 ? 0 : (size_t)w;
	}
	if (used < ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err + used, ld->errlen - used, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Levenshtein distance, capped for long strings. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[64], prev;

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

static bool
close_enough(size_t d, const char *query)
{
	return d <= 2 + strlen(query) / 8;
}

/*
 * The key most like name ("group.key", or a bare key): one with the same
 * key part in another group, else the nearest by edit distance.
 */
static const char *
suggest_key(const char *name)
{
	const char *dot = strchr(name, '.');
	const char *tail = dot != NULL ? dot + 1 : name;
	const char *best = NULL;
	size_t bestd = SIZE_MAX;

	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name + group_len(keys[i].name) + 1,
		    tail) == 0)
			return keys[i].name;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *cand = dot != NULL ? keys[i].name :
		    keys[i].name + group_len(keys[i].name) + 1;
		size_t d = edit_distance(name, cand);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	return best != NULL && close_enough(bestd, name) ? best : NULL;
}

static bool
group_known(const char *g)
{
	size_t n = strlen(g);
	for (size_t i = 0; i < NKEYS; i++)
		if (group_len(keys[i].name) == n &&
		    strncmp(keys[i].name, g, n) == 0)
			return true;
	return false;
}

static const char *
suggest_group(const char *g, char *buf, size_t buflen)
{
	size_t bestd = SIZE_MAX;

	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		char cand[32];
		size_t n = group_len(keys[i].name);
		if (n >= sizeof(cand))
			continue;
		memcpy(cand, keys[i].name, n);
		cand[n] = '\0';
		size_t d = edit_distance(g, cand);
		if (d < bestd) {
			bestd = d;
			snprintf(buf, buflen, "%s", cand);
		}
	}
	return buf[0] != '\0' && close_enough(bestd, g) ? buf : NULL;
}

/* Sets a key from its setting in the file. */
static int
set_from_setting(struct loader *ld, const struct key *k,
    const config_setting_t *s)
{
	void *field = field_of(ld->c, k);
	int type = config_setting_type(s);
	char why[512];
	const char *str;
	int rc;

	switch (k->type) {
	case KT_STRING:
	case KT_ENUM:
	case KT_DURATION:
		if (type == CONFIG_TYPE_STRING) {
			str = config_setting_get_string(s);
			if (k->type == KT_STRING)
				rc = put_string(k, field, str, why, sizeof(why));
			else if (k->type == KT_ENUM)
				rc = put_enum(k, field, str, why, sizeof(why));
			else
				rc = put_duration(k, field, str, why,
				    sizeof(why));
			break;
		}
		if (k->type == KT_DURATION && (type == CONFIG_TYPE_INT ||
		    type == CONFIG_TYPE_INT64) &&
		    config_setting_get_int64(s) == 0) {
			rc = put_duration(k, field, "0", why, sizeof(why));
			break;
		}
		if (k->type == KT_DURATION)
			return fail_at(ld, s, k->name,
			    "expected a duration string such as \"5m\", got %s",
			    setting_type_name(type));
		return fail_at(ld, s, k->name, "expected a string, got %s",
		    setting_type_name(type));
	case KT_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return fail_at(ld, s, k->name,
			    "expected an integer, got %s",
			    setting_type_name(type));
		rc = put_int(k, field, config_setting_get_int64(s), why,
		    sizeof(why));
		break;
	case KT_FLOAT:
		if (type == CONFIG_TYPE_FLOAT)
			rc = put_float(k, field, config_setting_get_float(s),
			    why, sizeof(why));
		else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
			rc = put_float(k, field,
			    (double)config_setting_get_int64(s), why,
			    sizeof(why));
		else
			return fail_at(ld, s, k->name,
			    "expected a number, got %s",
			    setting_type_name(type));
		break;
	case KT_SIZE: {
		int64_t v = 0;
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
			v = config_setting_get_int64(s);
		} else if (type == CONFIG_TYPE_STRING) {
			rc = size_parse(config_setting_get_string(s), &v, why,
			    sizeof(why));
			if (rc != 0)
				break;
		} else {
			return fail_at(ld, s, k->name,
			    "expected a size (an integer or a string such as "
			    "\"64MiB\"), got %s", setting_type_name(type));
		}
		rc = put_size(k, field, v, why, sizeof(why));
		break;
	}
	case KT_STRLIST:
	case KT_PROPS:
	case KT_INTLIST: {
		struct config_strlist strs = {0};
		struct config_props props = {0};
		struct config_intlist ints = {0};
		int want = k->type == KT_INTLIST ? CONFIG_TYPE_INT :
		    CONFIG_TYPE_STRING;
		char what[96];
		int n;

		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
			return fail_at(ld, s, k->name,
			    "expected a list, got %s", setting_type_name(type));
		n = config_setting_length(s);
		rc = 0;
		for (int i = 0; i < n && rc == 0; i++) {
			const config_setting_t *e =
			    config_setting_get_elem(s, (unsigned)i);
			int et = config_setting_type(e);
			snprintf(what, sizeof(what), "%s[%d]", k->name, i);
			if (et != want && !(want == CONFIG_TYPE_INT &&
			    et == CONFIG_TYPE_INT64)) {
				rc = fail_at(ld, e, what, "expected %s, got %s",
				    setting_type_name(want),
				    setting_type_name(et));
				break;
			}
			if (k->type == KT_INTLIST) {
				rc = intlist_add(k, &ints,
				    config_setting_get_int64(e), why,
				    sizeof(why));
			} else if (k->type == KT_PROPS) {
				struct config_prop prop;
				rc = prop_parse(k, config_setting_get_string(e),
				    &prop, why, sizeof(why));
				if (rc == 0)
					props_add(&props, &prop);
			} else {
				str = config_setting_get_string(e);
				rc = strlist_item_ok(k, str, why, sizeof(why));
				if (rc == 0)
					strlist_add(&strs, str, strlen(str));
			}
			if (rc != 0)
				rc = fail_at(ld, e, what, "%s", why);
		}
		if (rc == 0 && k->type == KT_STRLIST)
			list_replace(k, field, &strs, sizeof(strs));
		else if (rc == 0 && k->type == KT_PROPS)
			list_replace(k, field, &props, sizeof(props));
		else if (rc == 0)
			list_replace(k, field, &ints, sizeof(ints));
		else {
			strlist_free(&strs);
			props_free(&props);
			intlist_free(&ints);
		}
		return rc;
	}
	default:
		return -EINVAL;
	}
	if (rc != 0)
		return fail_at(ld, s, k->name, "%s", why);
	return 0;
}

static int
load_group(struct loader *ld, const config_setting_t *g)
{
	const char *gname = config_setting_name(g);
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g,
		    (unsigned)i);
		char full[256];
		const struct key *k;
		int rc;

		snprintf(full, sizeof(full), "%s.%s", gname,
		    config_setting_name(s));
		k = key_find(full);
		if (k == NULL) {
			const char *sug = suggest_key(full);
			if (sug != NULL)
				return fail_at(ld, s, NULL,
				    "unknown key '%s' (did you mean '%s'?)",
				    full, sug);
			return fail_at(ld, s, NULL, "unknown key '%s'", full);
		}
		if ((rc = set_from_setting(ld, k, s)) != 0)
			return rc;
		ld->origin[k - keys].file = setting_file(ld, s);
		ld->origin[k - keys].line = config_setting_source_line(s);
		ld->origin[k - keys].env = false;
	}
	return 0;
}

static int
load_root(struct loader *ld, const config_setting_t *root)
{
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root,
		    (unsigned)i);
		const char *name = config_setting_name(s);
		char buf[32];
		int rc;

		if (!group_known(name)) {
			const char *sug = suggest_key(name);
			if (sug != NULL &&
			    strcmp(sug + group_len(sug) + 1, name) == 0)
				return fail_at(ld, s, NULL,
				    "unknown group '%s' (did you mean '%s'? "
				    "keys belong inside their group)", name,
				    sug);
			sug = suggest_group(name, buf, sizeof(buf));
			if (sug != NULL)
				return fail_at(ld, s, NULL,
				    "unknown group '%s' (did you mean '%s'?)",
				    name, sug);
			return fail_at(ld, s, NULL, "unknown group '%s'", name);
		}
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			return fail_at(ld, s, name, "expected a group, got %s",
			    setting_type_name(config_setting_type(s)));
		if ((rc = load_group(ld, s)) != 0)
			return rc;
	}
	return 0;
}

static bool
env_allowed(const char *name, size_t len)
{
	static const char *const allow[] = {"SBOMD_BIN", "SBOMD_SOURCE_DIR"};

	if (len >= 11 && strncmp(name, "SBOMD_TEST_", 11) == 0)
		return true;
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if (strlen(allow[i]) == len && strncmp(name, allow[i], len) == 0)
			return true;
	return false;
}

static int
load_env(struct loader *ld, char *const *envp)
{
	for (size_t e = 0; envp[e] != NULL; e++) {
		const char *var = envp[e];
		const char *eq = strchr(var, '=');
		size_t len = eq != NULL ? (size_t)(eq - var) : strlen(var);
		const struct key *k = NULL;
		char name[128], why[512];
		int rc;

		if (strncmp(var, "SBOMD_", 6) != 0 || env_allowed(var, len))
			continue;
		for (size_t i = 0; i < NKEYS && k == NULL; i++) {
			env_name_of(&keys[i], name, sizeof(name));
			if (strlen(name) == len && strncmp(var, name, len) == 0)
				k = &keys[i];
		}
		if (k == NULL) {
			const char *best = NULL;
			size_t bestd = SIZE_MAX;
			char given[128], sug[128];
			snprintf(given, sizeof(given), "%.*s", (int)len, var);
			for (size_t i = 0; i < NKEYS; i++) {
				env_name_of(&keys[i], name, sizeof(name));
				size_t d = edit_distance(given, name);
				if (d < bestd) {
					bestd = d;
					best = keys[i].name;
				}
			}
			if (best != NULL && close_enough(bestd, given)) {
				env_name_of(key_find(best), sug, sizeof(sug));
				snprintf(ld->err, ld->errlen,
				    "environment %s: no such configuration key "
				    "(did you mean %s?)", given, sug);
			} else {
				snprintf(ld->err, ld->errlen,
				    "environment %s: no such configuration key",
				    given);
			}
			return -EINVAL;
		}
		rc = set_from_text(k, field_of(ld->c, k), eq != NULL ?
		    eq + 1 : "", why, sizeof(why));
		if (rc != 0) {
			snprintf(ld->err, ld->errlen, "environment %.*s: %s",
			    (int)len, var, why);
			return -EINVAL;
		}
		ld->origin[k - keys].env = true;
	}
	return 0;
}

/*
 * A cross-key problem: msg names keys; the message is prefixed with the
 * origin of the first named key (by position in msg) that was set
 * explicitly, else with "configuration".
 */
static int
fail_cross(struct loader *ld, const char *msg)
{
	const struct origin *o = NULL;
	const char *first = NULL;
	const struct key *k = NULL;
	char env[128];

	for (size_t i = 0; i < NKEYS; i++) {
		const struct origin *oi = &ld->origin[i];
		size_t n = strlen(keys[i].name);
		const char *at = msg;

		if (oi->file == NULL && !oi->env)
			continue;
		while ((at = strstr(at, keys[i].name)) != NULL) {
			char next = at[n];
			if (!isalnum((unsigned char)next) && next != '_')
				break;
			at += n;
		}
		if (at != NULL && (first == NULL || at < first)) {
			first = at;
			o = oi;
			k = &keys[i];
		}
	}
	if (o == NULL)
		snprintf(ld->err, ld->errlen, "configuration: %s", msg);
	else if (o->env) {
		env_name_of(k, env, sizeof(env));
		snprintf(ld->err, ld->errlen, "environment %s: %s", env, msg);
	} else
		snprintf(ld->err, ld->errlen, "%s:%u: %s", o->file, o->line,
		    msg);
	return -EINVAL;
}

static int
check_cross(struct loader *ld)
{
	const struct sbomd_config *c = ld->c;
	struct tracker_config tc;
	char msg[512];

	config_to_tracker(c, &tc);
	if (tracker_config_validate(&tc, msg, sizeof(msg)) != 0)
		return fail_cross(ld, msg);
	if (c->kafka.output_framing == CONFIG_FRAMING_CONFLUENT &&
	    c->kafka.output_schema_id == 0)
		return fail_cross(ld, "kafka.output_schema_id must be > 0 when "
		    "kafka.output_framing is \"confluent\"");
	if (strcmp(c->kafka.output_topic, c->kafka.input_topic) == 0)
		return fail_cross(ld, "kafka.output_topic must differ from "
		    "kafka.input_topic");
	if (strcmp(c->kafka.dead_letter_topic, c->kafka.input_topic) == 0 ||
	    strcmp(c->kafka.dead_letter_topic, c->kafka.output_topic) == 0)
		return fail_cross(ld, "kafka.dead_letter_topic must differ "
		    "from kafka.input_topic and kafka.output_topic");
	if (c->scan.backend == CONFIG_BACKEND_EXEC) {
		if (c->scan.exec_argv.n == 0)
			return fail_cross(ld, "scan.exec_argv must not be empty "
			    "when scan.backend is \"exec\"");
		if (c->scan.exec_argv.v[0][0] == '\0')
			return fail_cross(ld, "scan.exec_argv: the program "
			    "(first item) must not be empty");
	}
	if (c->scan.backend == CONFIG_BACKEND_OCI && c->scan.stores.n == 0)
		return fail_cross(ld, "scan.stores must not be empty when "
		    "scan.backend is \"oci\"");
	return 0;
}

static int
load_file(struct loader *ld, config_t *cfg, const char *path)
{
	struct stat st;
	char *dir, *slash;
	int rc;

	if (stat(path, &st) != 0) {
		rc = -errno;
		snprintf(ld->err, ld->errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(ld->err, ld->errlen, "%s: %s", path, strerror(EISDIR));
		return -EISDIR;
	}
	/* @include "x" is relative to the main file's directory */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		slash[slash == dir ? 1 : 0] = '\0';
		config_set_include_dir(cfg, dir);
		ld->incdir = dir;
	} else {
		free(dir);
	}
	if (!config_read_file(cfg, path)) {
		const char *f = config_error_file(cfg);
		if (f != NULL && strcmp(f, path) != 0 && f[0] != '/' &&
		    ld->incdir != NULL) {
			snprintf(ld->err, ld->errlen, "%s/%s:%d: %s", ld->incdir,
			    f, config_error_line(cfg), config_error_text(cfg));
			return config_error_type(cfg) == CONFIG_ERR_FILE_IO ?
			    -EIO : -EINVAL;
		}
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
			snprintf(ld->err, ld->errlen, "%s: %s",
			    f != NULL ? f : path, config_error_text(cfg));
			return -EIO;
		}
		snprintf(ld->err, ld->errlen, "%s:%d: %s", f != NULL ? f : path,
		    config_error_line(cfg), config_error_text(cfg));
		return -EINVAL;
	}
	return load_root(ld, config_root_setting(cfg));
}

int
config_load(struct sbomd_config *c, const char *path, char *const *envp,
    char *err, size_t errlen)
{
	struct sbomd_config tmp;
	struct loader *ld = xcalloc(1, sizeof(*ld));
	config_t cfg;
	int rc = 0;

	config_defaults(&tmp);
	config_init(&cfg);
	ld->c = &tmp;
	ld->path = path;
	ld->err = err;
	ld->errlen = errlen;
	if (path != NULL && (rc = load_file(ld, &cfg, path)) != 0)
		goto out;
	if (envp == NULL)
		envp = environ != NULL ? environ : (char *const *)ld->none;
	if ((rc = load_env(ld, envp)) != 0)
		goto out;
	rc = check_cross(ld); /* origins point into cfg: before destroy */
out:
	config_destroy(&cfg);
	for (size_t i = 0; i < ld->nshown; i++)
		free(ld->shown[i]);
	free(ld->shown);
	free(ld->incdir);
	free(ld);
	if (rc != 0) {
		config_free(&tmp);
		memset(c, 0, sizeof(*c));
		return rc;
	}
	*c = tmp;
	return 0;
}

/* ---- defaults, free, equal ---- */

void
config_defaults(struct sbomd_config *c)
{
	char why[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		if (set_from_text(&keys[i], field_of(c, &keys[i]), keys[i].def,
		    why, sizeof(why)) != 0) {
			fprintf(stderr, "config: bad default of %s: %s\n",
			    keys[i].name, why);
			abort();
		}
	}
}

void
config_free(struct sbomd_config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		value_free(field_of(c, &keys[i]), &keys[i]);
	memset(c, 0, sizeof(*c));
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
value_equal(const struct key *k, const void *a, const void *b)
{
	switch (k->type) {
	case KT_STRING:
		return str_eq(*(char *const *)a, *(char *const *)b);
	case KT_ENUM:
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

bool
config_equal(const struct sbomd_config *a, const struct sbomd_config *b)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!value_equal(&keys[i], cfield_of(a, &keys[i]),
		    cfield_of(b, &keys[i])))
			return false;
	return true;
}

void
config_to_tracker(const struct sbomd_config *c, struct tracker_config *t)
{
	tracker_config_defaults(t);
	t->retry = c->retry;
	t->rescan_after_ms = c->dedup.rescan_after_ms;
	t->forget_after_ms = c->dedup.forget_after_ms;
}

/* ---- dump ---- */

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

static void
dump_value(FILE *f, const struct key *k, const void *field)
{
	char buf[64];

	switch (k->type) {
	case KT_STRING:
		dump_string(f, *(char *const *)field);
		break;
	case KT_ENUM:
		dump_string(f, k->names[int_get(field, k->size)]);
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
			size_t n = strlen(l->v[i].name) +
			    strlen(l->v[i].value) + 2;
			char *item = xmalloc(n);
			snprintf(item, n, "%s=%s", l->v[i].name, l->v[i].value);
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

void
config_dump(const struct sbomd_config *c, FILE *f)
{
	fputs("# sbomd effective configuration (libconfig syntax)\n", f);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		size_t gl = group_len(k->name);
		bool first = i == 0 || gl != group_len(keys[i - 1].name) ||
		    strncmp(k->name, keys[i - 1].name, gl) != 0;
		bool last = i + 1 == NKEYS || gl != group_len(keys[i + 1].name)
		    || strncmp(k->name, keys[i + 1].name, gl) != 0;
		char *line = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);

		if (m == NULL) {
			fprintf(stderr, "config: out of memory\n");
			abort();
		}
		if (first)
			fprintf(f, "\n%.*s = {\n", (int)gl, k->name);
		fprintf(m, "  %s = ", k->name + gl + 1);
		dump_value(m, k, cfield_of(c, k));
		fputc(';', m);
		fclose(m);
		/* comments at column 36, as in config/sbomd.cfg */
		fprintf(f, "%s%*s# %s\n", line, len < 35 ? (int)(35 - len) : 1,
		    "", k->doc);
		free(line);
		if (last)
			fputs("};\n", f);
	}
}

/* ---- names ---- */

static const char *key_names[NKEYS + 1];
static pthread_once_t key_names_once = PTHREAD_ONCE_INIT;

static void
key_names_init(void)
{
	for (size_t i = 0; i < NKEYS; i++)
		key_names[i] = keys[i].name;
	key_names[NKEYS] = NULL;
}

const char *const *
config_key_names(void)
{
	pthread_once(&key_names_once, key_names_init);
	return key_names;
}

int
config_env_name(const char *key, char *buf, size_t buflen)
{
	const struct key *k = key_find(key);

	if (k == NULL)
		return -ENOENT;
	env_name_of(k, buf, buflen);
	return 0;
}

const char *
config_framing_name(enum config_framing v)
{
	return (unsigned)v < 2 ? framing_names[v] : "?";
}

const char *
config_backend_name(enum config_backend v)
{
	return (unsigned)v < 3 ? backend_names[v] : "?";
}

const char *
config_log_level_name(enum config_log_level v)
{
	return (unsigned)v < 4 ? level_names[v] : "?";
}

const char *
config_log_format_name(enum config_log_format v)
{
	return (unsigned)v < 2 ? format_names[v] : "?";
}
