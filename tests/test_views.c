/*
 * test_views: what operators see (consumer/service/views): one entity as
 * JSON, found by image ID or host name, from a real tracker; the status
 * page's tables, with every outside string escaped; the time format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/views.h"

#define T0 1800000000000LL /* 2027-01-15T08:00:00Z */
#define IMG "sha256:" \
	"1111111111111111111111111111111111111111111111111111111111111111"

static tracker *
new_tracker(void)
{
	struct tracker_config c;
	tracker_config_defaults(&c);
	return tracker_new(&c);
}

static void
set(tracker *t, enum entity_kind kind, const char *id, const char *source,
    const char *tag)
{
	const char *tags[1] = { tag };
	struct tracker_event ev = { .type = EVENT_SET, .kind = kind, .id = id,
		.source = source, .tags = tag ? tags : NULL,
		.ntags = tag ? 1 : 0, .observed_at = T0, .partition = 3 };
	struct tracker_outcome out;
	char err[256];
	enum apply_result r = tracker_apply(t, &ev, T0, &out, err,
	    sizeof(err));
	assert_true(r == APPLY_NEW || r == APPLY_UPDATED);
}

static void
test_entity_json(void **state)
{
	(void)state;
	tracker *t = new_tracker();
	set(t, ENTITY_IMAGE, IMG, "node-1", "reg/app:1");
	set(t, ENTITY_HOST, "node-9", "node-9", NULL);

	uint32_t h = view_find_entity(t, IMG);
	assert_int_not_equal(h, TRACKER_NONE);
	assert_int_equal(view_find_entity(t, "node-9") == TRACKER_NONE, 0);
	assert_int_equal(view_find_entity(t, "node-10"), TRACKER_NONE);
	assert_int_equal(view_find_entity(t, "sha256:12"), TRACKER_NONE);

	json_t *o = view_entity_json(t, h, 1);
	assert_string_equal(json_string_value(json_object_get(o, "id")), IMG);
	assert_string_equal(json_string_value(json_object_get(o, "kind")),
	    "CONTAINER_IMAGE");
	assert_string_equal(json_string_value(json_object_get(o, "state")),
	    "QUEUED");
	assert_int_equal(json_integer_value(json_object_get(o,
	    "next_attempt_at_ms")), T0);
	assert_true(json_is_true(json_object_get(o, "scanning")));
	assert_int_equal(json_integer_value(json_object_get(o, "partition")),
	    3);
	json_t *src = json_array_get(json_object_get(o, "sources"), 0);
	assert_string_equal(json_string_value(json_object_get(src, "source")),
	    "node-1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    src, "repo_tags"), 0)), "reg/app:1");
	json_decref(o);

	o = view_entity_json(t, view_find_entity(t, "node-9"), -1);
	assert_string_equal(json_string_value(json_object_get(o, "kind")),
	    "HOST");
	assert_null(json_object_get(o, "scanning"));
	json_decref(o);
	tracker_free(t);
}

static void
test_when(void **state)
{
	(void)state;
	char b[128];
	view_when(T0 + 5500, T0, b, sizeof(b));
	assert_string_equal(b, "2027-01-15T08:00:05.500Z (in 5s)");
	view_when(T0 - 180000, T0, b, sizeof(b));
	assert_string_equal(b, "2027-01-15T07:57:00.000Z (3m ago)");
	view_when(-1, T0, b, sizeof(b));
	assert_string_equal(b, "-");
}

static void
test_status_page_escapes(void **state)
{
	(void)state;
	tracker *t = new_tracker();
	set(t, ENTITY_IMAGE, IMG, "node-1", "reg/<script>:1");
	/* A failed attempt, so it is listed among the retries. */
	struct tracker_job job;
	assert_true(tracker_pop_due(t, T0, &job) == 1);
	struct tracker_result res = { .ok = false,
		.error_class = ERROR_RETRYABLE, .error = "not \"found\" & <b>" };
	struct tracker_outcome out;
	assert_int_equal(tracker_complete(t, job.handle, job.attempt, &res,
	    T0, &out), 0);
	assert_int_equal(out.status, OUTCOME_RETRY_SCHEDULED);

	struct snapshot snap;
	memset(&snap, 0, sizeof(snap));
	snap.by_state[ENTRY_QUEUED] = 1;
	snap.nlags = 1;
	snap.lags[0] = (struct part_lag){ 2, 17, 40, 57 };
	struct recent_outcomes recent;
	memset(&recent, 0, sizeof(recent));
	struct recent_outcome ro = { .status = OUTCOME_RETRY_SCHEDULED,
		.attempt = 1, .next = out.next_attempt_at, .at = T0 };
	snprintf(ro.id, sizeof(ro.id), "%s", IMG);
	snprintf(ro.error, sizeof(ro.error), "<i>x</i>");
	recent_add(&recent, &ro);
	struct view_status v = { t, &snap, &recent, "in<put", "out\"put", T0 };
	struct textbuf b = { 0 };
	view_status_html(&b, &v);
	char *html = textbuf_take(&b, NULL);

	assert_non_null(strstr(html, "in&lt;put"));
	assert_non_null(strstr(html, "out&quot;put"));
	assert_non_null(strstr(html, "reg/&lt;script&gt;:1"));
	assert_null(strstr(html, "<script>"));
	assert_non_null(strstr(html, "not &quot;found&quot; &amp; &lt;b&gt;"));
	assert_non_null(strstr(html, "&lt;i&gt;x&lt;/i&gt;"));
	assert_non_null(strstr(html, "Pending retries (1)"));
	assert_non_null(strstr(html, "<td class=\"num\">2</td><td class=\"num\">"
				     "17</td>"));
	assert_non_null(strstr(html, "RETRY_SCHEDULED"));
	free(html);
	tracker_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entity_json),
		cmocka_unit_test(test_when),
		cmocka_unit_test(test_status_page_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
