/*
 * vocab: the shared enums' name tables (vocab.h). The tables are indexed
 * by the enum value; their lengths are checked against the *_COUNT
 * constants at compile time.
 */
#include "util/vocab.h"

#include <errno.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const kind_names[] = { "CONTAINER_IMAGE", "HOST" };
static const char *const event_names[] = { "SET", "UNSET" };
static const char *const status_names[] = { "SUCCEEDED", "RETRY_SCHEDULED",
	"FAILED", "CANCELLED" };
static const char *const class_names[] = { "RETRYABLE", "PERMANENT" };
static const char *const state_names[] = { "QUEUED", "SCANNING", "DONE",
	"FAILED", "CANCELLED" };

_Static_assert(NELEM(kind_names) == ENTITY_KIND_COUNT, "kind names");
_Static_assert(NELEM(event_names) == EVENT_TYPE_COUNT, "event names");
_Static_assert(NELEM(status_names) == OUTCOME_STATUS_COUNT, "status names");
_Static_assert(NELEM(class_names) == ERROR_CLASS_COUNT, "class names");
_Static_assert(NELEM(state_names) == ENTRY_STATE_COUNT, "state names");

static const char *
name_of(const char *const *v, size_t n, int i)
{
	return i >= 0 && (size_t)i < n ? v[i] : "?";
}

static int
parse_in(const char *const *v, size_t n, const char *s, int *out)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(v[i], s) == 0) {
			*out = (int)i;
			return 0;
		}
	return -EINVAL;
}

const char *
entity_kind_name(enum entity_kind k)
{
	return name_of(kind_names, NELEM(kind_names), (int)k);
}

const char *
event_type_name(enum event_type t)
{
	return name_of(event_names, NELEM(event_names), (int)t);
}

const char *
outcome_status_name(enum outcome_status s)
{
	if (s == OUTCOME_NONE)
		return "NONE";
	return name_of(status_names, NELEM(status_names), (int)s);
}

const char *
error_class_name(enum error_class c)
{
	return name_of(class_names, NELEM(class_names), (int)c);
}

const char *
entry_state_name(enum entry_state s)
{
	return name_of(state_names, NELEM(state_names), (int)s);
}

int
entity_kind_parse(const char *s, enum entity_kind *out)
{
	int v, rc = parse_in(kind_names, NELEM(kind_names), s, &v);
	if (rc == 0)
		*out = (enum entity_kind)v;
	return rc;
}

int
event_type_parse(const char *s, enum event_type *out)
{
	int v, rc = parse_in(event_names, NELEM(event_names), s, &v);
	if (rc == 0)
		*out = (enum event_type)v;
	return rc;
}

int
outcome_status_parse(const char *s, enum outcome_status *out)
{
	int v, rc = parse_in(status_names, NELEM(status_names), s, &v);
	if (rc == 0)
		*out = (enum outcome_status)v;
	return rc;
}

int
error_class_parse(const char *s, enum error_class *out)
{
	int v, rc = parse_in(class_names, NELEM(class_names), s, &v);
	if (rc == 0)
		*out = (enum error_class)v;
	return rc;
}
