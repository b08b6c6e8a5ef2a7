/*
 * vocab: the words every layer shares, defined once.
 *
 * An entity's kind, an event's type, an entry's state, an outcome's status
 * and a failure's class mean the same thing in the tracker (core/), on the
 * wire (wire/), in the scanners (scan/) and in the service; each is one
 * enum here with one name table. The numeric values of the four that
 * travel in Avro are the symbol indexes of the schemas (EntityKind,
 * EventType, ScanStatus, ErrorClass): the codec writes them as they are.
 * The entry state is stored in the state records (store.c): its values
 * are a format contract too.
 *
 * The *_name functions return a static string ("?" for a value out of
 * range); the *_parse functions return 0 and set *out, or -EINVAL.
 */
#ifndef SBOMD_UTIL_VOCAB_H
#define SBOMD_UTIL_VOCAB_H

/* Avro EntityKind. */
enum entity_kind { ENTITY_IMAGE = 0, ENTITY_HOST = 1 };
#define ENTITY_KIND_COUNT 2

/* Avro EventType. */
enum event_type { EVENT_SET = 0, EVENT_UNSET = 1 };
#define EVENT_TYPE_COUNT 2

/* Avro ScanStatus; OUTCOME_NONE is "no outcome" and never travels. */
enum outcome_status {
	OUTCOME_NONE = -1,
	OUTCOME_SUCCEEDED = 0,
	OUTCOME_RETRY_SCHEDULED = 1,
	OUTCOME_FAILED = 2,
	OUTCOME_CANCELLED = 3,
};
#define OUTCOME_STATUS_COUNT 4

/* Avro ErrorClass. */
enum error_class { ERROR_RETRYABLE = 0, ERROR_PERMANENT = 1 };
#define ERROR_CLASS_COUNT 2

/* A tracked entity's state (docs/architecture.md "The tracker"). */
enum entry_state {
	ENTRY_QUEUED = 0,
	ENTRY_SCANNING = 1,
	ENTRY_DONE = 2,
	ENTRY_FAILED = 3,
	ENTRY_CANCELLED = 4,
};
#define ENTRY_STATE_COUNT 5

const char *entity_kind_name(enum entity_kind k);  /* "CONTAINER_IMAGE" */
const char *event_type_name(enum event_type t);    /* "SET" */
const char *outcome_status_name(enum outcome_status s); /* "NONE" for -1 */
const char *error_class_name(enum error_class c);  /* "RETRYABLE" */
const char *entry_state_name(enum entry_state s);  /* "QUEUED" */

int entity_kind_parse(const char *s, enum entity_kind *out);
int event_type_parse(const char *s, enum event_type *out);
int outcome_status_parse(const char *s, enum outcome_status *out);
int error_class_parse(const char *s, enum error_class *out);

#endif
