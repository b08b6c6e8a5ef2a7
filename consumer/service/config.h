/*
 * config: the service configuration. A libconfig file (config/sbomd.cfg is
 * the documented example), then environment overrides SBOMD_<GROUP>_<KEY>,
 * then cross-key checks. Every key is described once, in config_key.c's
 * table; loading, overrides, defaults, the dump and equality come from it.
 *
 * Errors name where the bad value came from:
 *   "FILE:LINE: scan.workers: expected an integer, got a string"
 *   "FILE:LINE: unknown key 'scan.worker' (did you mean 'scan.workers'?)"
 *   "environment SBOMD_SCAN_WORKERS: expected an integer, got \"four\""
 *
 * Environment values: scalars as in the file but unquoted; durations and
 * sizes as strings ("5m", "4GiB"); lists comma-separated ("a,b", "" is the
 * empty list). In property lists an item without '=' continues the value
 * before it, so SBOMD_KAFKA_CONSUMER_PROPERTIES="debug=cgrp,topic,x=y"
 * is [ "debug=cgrp,topic", "x=y" ]. Variables starting with SBOMD_ must
 * name a key, except SBOMD_BIN, SBOMD_SOURCE_DIR and SBOMD_TEST_*.
 *
 * Not thread-safe while loading; a loaded config is read-only afterwards.
 */
#ifndef SBOMD_SERVICE_CONFIG_H
#define SBOMD_SERVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/policy.h"
#include "core/tracker.h"

enum config_framing {
	CONFIG_FRAMING_SINGLE_OBJECT = 0,	/* "single-object" */
	CONFIG_FRAMING_CONFLUENT = 1,		/* "confluent" */
};

enum config_delivery {
	CONFIG_DELIVERY_AT_LEAST_ONCE = 0, /* "at-least-once" */
	CONFIG_DELIVERY_EXACTLY_ONCE = 1,  /* "exactly-once": transactions */
};

enum config_backend {
	CONFIG_BACKEND_OCI = 0,		/* "oci" */
	CONFIG_BACKEND_EXEC = 1,	/* "exec" */
	CONFIG_BACKEND_NONE = 2,	/* "none": events are tracked, entities
					 * wait QUEUED, nothing is scanned */
};

enum config_log_level {
	CONFIG_LOG_DEBUG = 0,
	CONFIG_LOG_INFO = 1,
	CONFIG_LOG_WARN = 2,
	CONFIG_LOG_ERROR = 3,
};

enum config_log_format {
	CONFIG_LOG_JSON = 0,
	CONFIG_LOG_TEXT = 1,
};

/* v[0..n) owned; v[n] == NULL whenever v != NULL (an argv for exec). */
struct config_strlist {
	char **v;
	size_t n;
};

struct config_intlist {
	int32_t *v;
	size_t n;
};

/* One "name=value" of a librdkafka property list, split at the first '='. */
struct config_prop {
	char *name;	/* non-empty: [a-z0-9._-] */
	char *value;	/* may be empty */
};

struct config_props {
	struct config_prop *v;
	size_t n;
};

struct sbomd_config {
	struct {
		char *brokers;		/* non-empty */
		char *group_id;		/* non-empty */
		char *group_instance_id; /* "" = the one kept in state.dir */
		char *input_topic;	/* a valid topic name */
		char *output_topic;	/* a valid topic name, != input */
		char *dead_letter_topic; /* "" = count and skip; != in/out */
		enum config_framing output_framing;
		enum config_delivery delivery;
		int32_t output_schema_id; /* >= 0; > 0 when confluent */
		struct config_props consumer_properties;
		struct config_props producer_properties;
		int64_t max_payload_bytes; /* largest input message decoded */
		/* Confluent ids accepted on input; empty = any id */
		struct config_intlist accepted_schema_ids;
		/* writer schemas of WorkloadEvent (wire/writers.h); "" =
		 * none */
		char *writer_schemas_dir;
	} kafka;
	struct {
		char *dir;		/* non-empty */
		char *changelog_topic;	/* "" = none (a lone instance) */
		int64_t max_map_size;	/* bytes: the LMDB map size */
		int64_t max_entities;	/* pause input at this many entities */
	} state;
	/* retry.*: base_backoff, max_backoff, multiplier, jitter,
	 * max_attempts, failed_rescan_after (policy_validate holds) */
	struct retry_policy retry;
	struct {
		int64_t rescan_after_ms; /* 0 = never */
		int64_t forget_after_ms;
		int64_t max_sources;	 /* per entity (tracker.h "Limits") */
		int64_t max_entity_bytes;
		int64_t max_clock_skew_ms; /* observed_at ahead of now */
	} dedup;
	struct {
		int64_t max_outbox;	/* pause input above this many outcomes */
		int64_t max_changelog_bytes; /* ... or bytes of changelog
					      * records */
		int64_t max_pending;	/* pause input above this heap size */
		int64_t batch_max;	/* events per poll batch */
		int64_t shutdown_timeout_ms; /* drain budget on SIGTERM */
		int64_t commit_interval_ms; /* behind: commits start at most
					     * this often */
	} engine;
	struct {
		enum config_backend backend;
		int32_t workers;	/* 1..256 */
		int64_t timeout_ms;	/* > 0 */
		struct config_strlist stores;
		char *platform;		/* "os/arch[/variant]" */
		char *host_root;	/* non-empty */
		int32_t registry;	/* 0/1: pull what no store holds */
		char *registry_auth_file; /* "": the default place */
		char *registry_ca_file;	/* "": the system's CAs only */
		struct config_strlist registry_insecure_hosts;
		struct config_strlist registry_mirrors; /* REGISTRY=URL */
		int64_t registry_timeout_ms;
		struct config_strlist exec_argv; /* non-empty for exec */
		struct config_intlist exec_retryable_exit_codes; /* 1..255 */
		int64_t max_sbom_bytes;	/* bound on one SBOM (both backends) */
		int64_t max_packages;	/* bound on one scan's packages (oci) */
		/* the per-layer catalog cache (oci): "" = off; relative:
		 * inside state.dir */
		char *layer_cache_dir;
		int64_t layer_cache_max_bytes; /* its bound, >= 1 MiB */
	} scan;
	struct {
		char *listen;		/* "host:port", ":port" or "" = off */
		int64_t max_connections; /* open at once; more are closed */
		int64_t connection_timeout_ms; /* idle connections closed */
	} http;
	struct {
		enum config_log_level level;
		enum config_log_format format;
	} log;
};

/*
 * Fills c with the defaults (those of config/sbomd.cfg). Allocates: release
 * with config_free. Any previous content of c is overwritten, not freed.
 */
void config_defaults(struct sbomd_config *c);

/*
 * Defaults, then the file at path (NULL: none), then the SBOMD_ variables
 * of envp (NULL: environ; pass an empty array for none), then cross-key
 * checks. 0 with *c filled (release with config_free), or a negative errno
 * (-ENOENT/-EACCES... for an unreadable file, -EINVAL otherwise) with the
 * first problem in err and *c zeroed.
 */
int config_load(struct sbomd_config *c, const char *path, char *const *envp,
    char *err, size_t errlen);

/* Frees what c owns and zeroes it; safe on a zeroed or freed config. */
void config_free(struct sbomd_config *c);

/*
 * Prints the configuration in libconfig syntax, every key, one group per
 * block, each key with a one-line comment; config_load reads it back to an
 * equal configuration, except that the values of secret librdkafka
 * properties (util/redact.h: sasl.password, ...) are printed as
 * "[redacted]". For "sbomd run --print-config".
 */
void config_dump(const struct sbomd_config *c, FILE *f);

/*
 * A property list as "name=value,name=value" for the log, secret values
 * (util/redact.h) shown as "[redacted]"; "" when empty. The caller frees.
 */
char *config_props_text(const struct config_props *p);

/* Whether every key has the same value in a and b. */
bool config_equal(const struct sbomd_config *a, const struct sbomd_config *b);

/* The tracker's part (retry policy, dedup timers); the jitter seed is
 * tracker_config_defaults'. */
void config_to_tracker(const struct sbomd_config *c, struct tracker_config *t);

/* Every key as "group.key", in table order, NULL-terminated. */
const char *const *config_key_names(void);

/* The environment variable of a key ("scan.workers" ->
 * "SBOMD_SCAN_WORKERS"); -ENOENT for an unknown key. */
int config_env_name(const char *key, char *buf, size_t buflen);

/* Names of the enum values, as written in the file. */
const char *config_framing_name(enum config_framing f);
const char *config_delivery_name(enum config_delivery d);
const char *config_backend_name(enum config_backend b);
const char *config_log_level_name(enum config_log_level l);
const char *config_log_format_name(enum config_log_format f);

#endif
