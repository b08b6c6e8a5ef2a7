/*
 * test_vocab: the shared enums' names (consumer/util/vocab), and that
 * their values are the symbol indexes of the Avro schemas in schemas/:
 * the codec writes the enum values as they are, so a reordered schema or
 * enum must fail here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/vocab.h"

static void
test_names_and_parse(void **state)
{
	(void)state;
	assert_string_equal(event_type_name(EVENT_UNSET), "UNSET");
	assert_string_equal(entity_kind_name(ENTITY_HOST), "HOST");
	assert_string_equal(entity_kind_name(ENTITY_IMAGE), "CONTAINER_IMAGE");
	assert_string_equal(outcome_status_name(OUTCOME_RETRY_SCHEDULED),
	    "RETRY_SCHEDULED");
	assert_string_equal(outcome_status_name(OUTCOME_NONE), "NONE");
	assert_string_equal(error_class_name(ERROR_PERMANENT), "PERMANENT");
	assert_string_equal(entry_state_name(ENTRY_CANCELLED), "CANCELLED");
	assert_string_equal(outcome_status_name((enum outcome_status)4), "?");
	assert_string_equal(entity_kind_name((enum entity_kind)-1), "?");
	assert_string_equal(entry_state_name((enum entry_state)5), "?");

	enum outcome_status st;
	enum event_type ty;
	enum entity_kind k;
	enum error_class c;
	assert_int_equal(outcome_status_parse("CANCELLED", &st), 0);
	assert_int_equal(st, OUTCOME_CANCELLED);
	assert_int_equal(event_type_parse("SET", &ty), 0);
	assert_int_equal(ty, EVENT_SET);
	assert_int_equal(entity_kind_parse("host", &k), -EINVAL);
	assert_int_equal(entity_kind_parse(NULL, &k), -EINVAL);
	assert_int_equal(error_class_parse("RETRYABLE", &c), 0);
	assert_int_equal(c, ERROR_RETRYABLE);
	assert_int_equal(outcome_status_parse("NONE", &st), -EINVAL);
}

/* The symbols of the enum type called name, anywhere inside j. */
static json_t *
find_enum(json_t *j, const char *name)
{
	if (json_is_object(j)) {
		const char *t = json_string_value(json_object_get(j, "type"));
		const char *n = json_string_value(json_object_get(j, "name"));
		if (t && n && strcmp(t, "enum") == 0 && strcmp(n, name) == 0)
			return json_object_get(j, "symbols");
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v) {
			json_t *r = find_enum(v, name);
			if (r)
				return r;
		}
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) {
			json_t *r = find_enum(v, name);
			if (r)
				return r;
		}
	}
	return NULL;
}

static json_t *
load_schema(const char *file)
{
	const char *dir = getenv("SBOMD_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/schemas/%s", dir ? dir : ".", file);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (j == NULL)
		fail_msg("%s: %s", path, je.text);
	return j;
}

static void
expect_symbols(json_t *schema, const char *enum_name, int count,
    const char *(*name)(int))
{
	json_t *syms = find_enum(schema, enum_name);
	assert_non_null(syms);
	assert_int_equal(json_array_size(syms), count);
	for (int i = 0; i < count; i++)
		assert_string_equal(json_string_value(json_array_get(syms,
		    (size_t)i)), name(i));
}

static const char *kind_at(int i) { return entity_kind_name((enum entity_kind)i); }
static const char *type_at(int i) { return event_type_name((enum event_type)i); }
static const char *status_at(int i) { return outcome_status_name((enum outcome_status)i); }
static const char *class_at(int i) { return error_class_name((enum error_class)i); }

static void
test_values_are_schema_indexes(void **state)
{
	(void)state;
	json_t *ev = load_schema("workload_event.avsc");
	json_t *out = load_schema("scan_outcome.avsc");
	expect_symbols(ev, "EventType", EVENT_TYPE_COUNT, type_at);
	expect_symbols(ev, "EntityKind", ENTITY_KIND_COUNT, kind_at);
	expect_symbols(out, "EntityKind", ENTITY_KIND_COUNT, kind_at);
	expect_symbols(out, "ScanStatus", OUTCOME_STATUS_COUNT, status_at);
	expect_symbols(out, "ErrorClass", ERROR_CLASS_COUNT, class_at);
	json_decref(ev);
	json_decref(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_parse),
		cmocka_unit_test(test_values_are_schema_indexes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
