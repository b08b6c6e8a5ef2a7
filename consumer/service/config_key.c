/*
 * config_key: see config_key.h. The string checks used by the rows come
 * first, then the table, then lookups by name and by environment
 * variable and the suggestions for misspelt names.
 */
#include "service/config_key.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/tracker.h"
#include "service/config.h"
#include "util/errbuf.h"

#define KIB ((int64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)

/* ---- string checks ---- */

static int
check_nonempty(const char *s, char *err, size_t errlen)
{
	if (*s == '\0') {
		errbuf_set(err, errlen, "must not be empty");
		return -EINVAL;
	}
	return 0;
}

/* Kafka's rule: 1..249 of [A-Za-z0-9._-], not "." or "..". */
static int
check_topic(const char *s, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		errbuf_set(err, errlen,
		    "\"%s\" is not a valid topic name (1 to 249 characters, "
		    "not \".\" or \"..\")", s);
		return -EINVAL;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' &&
		    *p != '-') {
			errbuf_set(err, errlen,
			    "\"%s\" is not a valid topic name (only letters, "
			    "digits, '.', '_' and '-')", s);
			return -EINVAL;
		}
	}
	return 0;
}

static int
check_topic_or_empty(const char *s, char *err, size_t errlen)
{
	return *s == '\0' ? 0 : check_topic(s, err, errlen);
}

/* "os/arch" or "os/arch/variant", each part of [A-Za-z0-9._-]. */
/* "REGISTRY=http[s]://HOST[:PORT]" */
static int
check_mirror(const char *s, char *err, size_t errlen)
{
	const char *eq = strchr(s, '=');
	if (eq == NULL || eq == s || (strncmp(eq + 1, "https://", 8) != 0 &&
	    strncmp(eq + 1, "http://", 7) != 0)) {
		errbuf_set(err, errlen, "\"%s\": want REGISTRY=https://HOST"
		    "[:PORT]", s);
		return -EINVAL;
	}
	return 0;
}

static const char *const bool_names[] = { "false", "true", NULL };

static int
check_platform(const char *s, char *err, size_t errlen)
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
	errbuf_set(err, errlen,
	    "\"%s\" is not a platform: expected \"os/arch\" or "
	    "\"os/arch/variant\", e.g. \"linux/arm64/v8\"", s);
	return -EINVAL;
}

/* "" (off), "host:port", ":port" (any address) or "[v6]:port". */
static int
check_listen(const char *s, char *err, size_t errlen)
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
	errbuf_set(err, errlen,
	    "\"%s\" is not \"host:port\" (or \":port\", \"[v6addr]:port\", "
	    "\"\" to disable)", s);
	return -EINVAL;
}

/* A librdkafka property name, not one that sbomd sets itself. */
static int
check_prop_name(const char *name, const char *const *reserved,
    const char *const *owner, char *err, size_t errlen)
{
	for (const char *p = name; *p != '\0'; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
		    *p != '.' && *p != '_' && *p != '-') {
			errbuf_set(err, errlen,
			    "\"%s\" is not a librdkafka property name", name);
			return -EINVAL;
		}
	}
	for (size_t i = 0; reserved[i] != NULL; i++) {
		if (strcmp(name, reserved[i]) == 0) {
			errbuf_set(err, errlen, "\"%s\" is set by %s", name,
			    owner[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int
check_consumer_prop(const char *name, char *err, size_t errlen)
{
	static const char *const reserved[] = {"bootstrap.servers",
	    "group.id", "enable.auto.offset.store", "group.instance.id",
	    NULL};
	static const char *const owner[] = {"kafka.brokers", "kafka.group_id",
	    "sbomd (offsets are stored only once durable)",
	    "kafka.group_instance_id"};
	return check_prop_name(name, reserved, owner, err, errlen);
}

static int
check_producer_prop(const char *name, char *err, size_t errlen)
{
	static const char *const reserved[] = {"bootstrap.servers",
	    "transactional.id", NULL};
	static const char *const owner[] = {"kafka.brokers",
	    "kafka.delivery (one id per instance)"};
	return check_prop_name(name, reserved, owner, err, errlen);
}

/* ---- the table ---- */

static const char *const framing_names[] = {"single-object", "confluent",
    NULL};
static const char *const delivery_names[] = {"at-least-once",
    "exactly-once", NULL};
static const char *const backend_names[] = {"oci", "exec", "none", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error",
    NULL};
static const char *const format_names[] = {"json", "text", NULL};

#define FIELD(m) .off = offsetof(struct sbomd_config, m), \
	.size = sizeof(((struct sbomd_config *)0)->m)

const struct config_key config_keys[] = {
	{.name = "kafka.brokers", .type = KT_STRING, FIELD(kafka.brokers),
	    .check = check_nonempty, .def = "127.0.0.1:9092",
	    .doc = "bootstrap servers"},
	{.name = "kafka.group_id", .type = KT_STRING, FIELD(kafka.group_id),
	    .check = check_nonempty, .def = "sbomd",
	    .doc = "consumer group"},
	{.name = "kafka.group_instance_id", .type = KT_STRING,
	    FIELD(kafka.group_instance_id), .def = "",
	    .doc = "static membership; \"\" = the id kept in state.dir"},
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
	{.name = "kafka.delivery", .type = KT_ENUM, FIELD(kafka.delivery),
	    .names = delivery_names, .def = "at-least-once",
	    .doc = "or \"exactly-once\" (Kafka transactions)"},
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
	{.name = "kafka.writer_schemas_dir", .type = KT_STRING,
	    FIELD(kafka.writer_schemas_dir), .def = "",
	    .doc = "newer writer schemas, *.avsc (ID.avsc); \"\" = none"},

	{.name = "state.dir", .type = KT_STRING, FIELD(state.dir),
	    .check = check_nonempty, .def = "/var/lib/sbomd",
	    .doc = "the LMDB directory"},
	{.name = "state.changelog_topic", .type = KT_STRING,
	    FIELD(state.changelog_topic), .check = check_topic_or_empty,
	    .def = "sbomd-state",
	    .doc = "compacted changelog; \"\" = a lone instance"},
	{.name = "state.max_map_size", .type = KT_SIZE,
	    FIELD(state.max_map_size), .min = MIB, .max = 1024 * TIB,
	    .def = "64GiB", .doc = "LMDB map size: the state's upper bound"},
	{.name = "state.max_entities", .type = KT_INT,
	    FIELD(state.max_entities), .min = 1, .max = TRACKER_MAX_ENTRIES,
	    .def = "5000000",
	    .doc = "pause input at this many entities, in any state"},

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
	{.name = "dedup.max_sources", .type = KT_INT,
	    FIELD(dedup.max_sources), .min = 1, .max = TRACKER_MAX_SOURCES,
	    .def = "4096", .doc = "source records per entity; past it UNSET "
	    "ones are dropped, else the event is dead-lettered"},
	{.name = "dedup.max_entity_bytes", .type = KT_SIZE,
	    FIELD(dedup.max_entity_bytes), .min = TRACKER_MIN_ENTITY_BYTES,
	    .max = TRACKER_MAX_ENTITY_BYTES, .def = "1MiB",
	    .doc = "tags, digests and source records per entity"},
	{.name = "dedup.max_clock_skew", .type = KT_DURATION,
	    FIELD(dedup.max_clock_skew_ms), .min = 0, .def = "10m",
	    .doc = "observed_at further ahead of now is taken as now"},

	{.name = "engine.max_outbox", .type = KT_INT, FIELD(engine.max_outbox),
	    .min = 1, .max = 1000000000, .def = "10000",
	    .doc = "pause input above this many unsent outcomes"},
	{.name = "engine.max_changelog_bytes", .type = KT_SIZE,
	    FIELD(engine.max_changelog_bytes), .min = 1, .max = TIB,
	    .def = "64MiB",
	    .doc = "pause input above this many bytes of unsent changelog"},
	{.name = "engine.max_pending", .type = KT_INT,
	    FIELD(engine.max_pending), .min = 1, .max = 1000000000,
	    .def = "1000000", .doc = "pause input above this many heap entries"},
	{.name = "engine.batch_max", .type = KT_INT, FIELD(engine.batch_max),
	    .min = 1, .max = 1000000, .def = "10000",
	    .doc = "events per poll batch"},
	{.name = "engine.commit_interval", .type = KT_DURATION,
	    FIELD(engine.commit_interval_ms), .min = 0, .max = 10000,
	    .def = "1s",
	    .doc = "while behind, commits start at most this often"},
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
	{.name = "scan.registry", .type = KT_BOOL, FIELD(scan.registry),
	    .names = bool_names, .def = "false",
	    .doc = "pull images in no store from their registry"},
	{.name = "scan.registry_auth_file", .type = KT_STRING,
	    FIELD(scan.registry_auth_file), .def = "",
	    .doc = "Docker config.json; \"\": $DOCKER_CONFIG/config.json"},
	{.name = "scan.registry_ca_file", .type = KT_STRING,
	    FIELD(scan.registry_ca_file), .def = "",
	    .doc = "PEM CAs trusted besides the system's"},
	{.name = "scan.registry_insecure_hosts", .type = KT_STRLIST,
	    FIELD(scan.registry_insecure_hosts), .check = check_nonempty,
	    .def = "", .doc = "host[:port] spoken to in plain HTTP"},
	{.name = "scan.registry_mirrors", .type = KT_STRLIST,
	    FIELD(scan.registry_mirrors), .check = check_mirror, .def = "",
	    .doc = "\"REGISTRY=https://MIRROR\", tried first"},
	{.name = "scan.registry_timeout", .type = KT_DURATION,
	    FIELD(scan.registry_timeout_ms), .min = 1, .def = "30s",
	    .doc = "connect, or no byte received, for this long"},
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
	{.name = "scan.max_packages", .type = KT_INT,
	    FIELD(scan.max_packages), .min = 1, .max = 100000000,
	    .def = "100000", .doc = "more packages fail the scan (oci)"},
	{.name = "scan.layer_cache_dir", .type = KT_STRING,
	    FIELD(scan.layer_cache_dir), .def = "layer-cache",
	    .doc = "per-layer catalog cache; relative: in state.dir; \"\": off"},
	{.name = "scan.layer_cache_max_bytes", .type = KT_SIZE,
	    FIELD(scan.layer_cache_max_bytes), .min = MIB, .max = 1024 * TIB,
	    .def = "1GiB", .doc = "its bound: least recently used layers go"},

	{.name = "http.listen", .type = KT_STRING, FIELD(http.listen),
	    .check = check_listen, .def = "127.0.0.1:8080",
	    .doc = "metrics/health/status; \"\" disables"},
	{.name = "http.max_connections", .type = KT_INT,
	    FIELD(http.max_connections), .min = 16, .max = 1000000,
	    .def = "4096", .doc = "open at once; more are closed at accept"},
	{.name = "http.connection_timeout", .type = KT_DURATION,
	    FIELD(http.connection_timeout_ms), .min = 1000, .max = 3600000,
	    .def = "10s", .doc = "an idle connection is closed after this"},

	{.name = "log.level", .type = KT_ENUM, FIELD(log.level),
	    .names = level_names, .def = "info",
	    .doc = "debug | info | warn | error"},
	{.name = "log.format", .type = KT_ENUM, FIELD(log.format),
	    .names = format_names, .def = "json", .doc = "json | text"},
};

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

/* ---- lookups ---- */

size_t
config_key_group_len(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot != NULL ? (size_t)(dot - name) : strlen(name);
}

const struct config_key *
config_key_find(const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

void
config_key_env_name(const struct config_key *k, char *buf, size_t buflen)
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

const struct config_key *
config_key_by_env(const char *var, size_t len)
{
	char name[128];

	for (size_t i = 0; i < config_nkeys; i++) {
		config_key_env_name(&config_keys[i], name, sizeof(name));
		if (strlen(name) == len && strncmp(var, name, len) == 0)
			return &config_keys[i];
	}
	return NULL;
}

bool
config_key_group_known(const char *g)
{
	size_t n = strlen(g);
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_key_group_len(config_keys[i].name) == n &&
		    strncmp(config_keys[i].name, g, n) == 0)
			return true;
	return false;
}

/* ---- suggestions ---- */

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

/* The part of key name k that a query is compared with. */
typedef const char *(*key_form_fn)(const struct config_key *k, char *buf,
    size_t buflen);

static const char *
form_name(const struct config_key *k, char *buf, size_t buflen)
{
	(void)buf;
	(void)buflen;
	return k->name;
}

static const char *
form_tail(const struct config_key *k, char *buf, size_t buflen)
{
	(void)buf;
	(void)buflen;
	return k->name + config_key_group_len(k->name) + 1;
}

static const char *
form_group(const struct config_key *k, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%.*s", (int)config_key_group_len(k->name),
	    k->name);
	return buf;
}

static const char *
form_env(const struct config_key *k, char *buf, size_t buflen)
{
	config_key_env_name(k, buf, buflen);
	return buf;
}

/* The key whose form is nearest to query, or NULL if none is close. */
static const struct config_key *
nearest(const char *query, key_form_fn form)
{
	const struct config_key *best = NULL;
	size_t bestd = SIZE_MAX;
	char buf[128];

	for (size_t i = 0; i < config_nkeys; i++) {
		size_t d = edit_distance(query, form(&config_keys[i], buf,
		    sizeof(buf)));
		if (d < bestd) {
			bestd = d;
			best = &config_keys[i];
		}
	}
	return best != NULL && close_enough(bestd, query) ? best : NULL;
}

const char *
config_key_suggest(const char *name)
{
	const char *dot = strchr(name, '.');
	const char *tail = dot != NULL ? dot + 1 : name;

	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(form_tail(&config_keys[i], NULL, 0), tail) == 0)
			return config_keys[i].name;
	const struct config_key *k = nearest(name, dot != NULL ? form_name :
	    form_tail);
	return k != NULL ? k->name : NULL;
}

const char *
config_key_suggest_group(const char *g, char *buf, size_t buflen)
{
	const struct config_key *k = nearest(g, form_group);
	return k != NULL ? form_group(k, buf, buflen) : NULL;
}

const char *
config_key_suggest_env(const char *var, size_t len, char *buf,
    size_t buflen)
{
	char given[128];

	snprintf(given, sizeof(given), "%.*s", (int)len, var);
	const struct config_key *k = nearest(given, form_env);
	return k != NULL ? form_env(k, buf, buflen) : NULL;
}
