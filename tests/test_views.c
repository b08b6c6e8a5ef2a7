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
	struct view_status v = { t, &snap, &recent, "in<put", "out\"put", T0,
		NULL };
	struct textbuf b = { 0 };
	view_status_html(&b, &v);
	char *html = textbuf_take(&b, NULL);

	assert_non_null(strstr(html, "in&lt;put"));
	assert_non_null(strstr(html, "out&quot;put"));
	assert_non_null(strstr(html, "reg/&lt;script&gt;:1"));
	assert_null(strstr(html, "<script>"));
	assert_non_null(strstr(html, "not &quot;found&quot; &amp; &lt;b&gt;"));
	assert_non_null(strstr(html, "&lt;i&gt;x&lt;/i&gt;"));
	assert_non_null(strstr(html, "Pending retries on this page (1)"));
	assert_non_null(strstr(html, "<td class=\"num\">2</td><td class=\"num\">"
				     "17</td>"));
	assert_non_null(strstr(html, "RETRY_SCHEDULED"));
	free(html);
	tracker_free(t);
}

/* ---- the status page a page at a time ---- */

/* Image n's ID: spread (the map hashes its first bytes), n at the end. */
static void
img_id(unsigned n, char *buf, size_t len)
{
	snprintf(buf, len, "sha256:%08x%056x", n * 2654435761u, n);
}

static void
set_image(tracker *t, unsigned n, int32_t partition)
{
	char id[80];
	img_id(n, id, sizeof(id));
	struct tracker_event ev = { .type = EVENT_SET, .kind = ENTITY_IMAGE,
		.id = id, .source = "node-1", .observed_at = T0,
		.partition = partition };
	struct tracker_outcome out;
	char err[256];
	assert_int_equal(tracker_apply(t, &ev, T0, &out, err, sizeof(err)),
	    APPLY_NEW);
}

/* The page after `after` (NULL: the first) as HTML; NULL when the query
 * is refused (why in err). */
static char *
status_page(tracker *t, const char *limit, const char *after, char *err,
    size_t errlen)
{
	struct view_page page;
	if (view_page_open(t, limit, after, &page, err, errlen) != 0)
		return NULL;
	struct snapshot snap;
	memset(&snap, 0, sizeof(snap));
	struct recent_outcomes recent;
	memset(&recent, 0, sizeof(recent));
	struct view_status v = { t, &snap, &recent, "in", "out", T0, &page };
	struct textbuf b = { 0 };
	view_status_html(&b, &v);
	return textbuf_take(&b, NULL);
}

/* The ids of the entities table's rows, added to seen[] (counts by the
 * image number); returns the number of rows. */
static size_t
page_rows(const char *html, unsigned *seen, size_t nseen)
{
	const char *p = strstr(html, "<table id=\"entities\">");
	assert_non_null(p);
	const char *end = strstr(p, "</table>");
	size_t rows = 0;
	while ((p = strstr(p, "<tr><td><code>sha256:")) != NULL && p < end) {
		p += strlen("<tr><td><code>sha256:");
		unsigned n = (unsigned)strtoul(p + 8, NULL, 16);
		assert_true(n < nseen);
		seen[n]++;
		rows++;
	}
	return rows;
}

/* The next link's cursor (in buf), or NULL when there is none. */
static const char *
next_cursor(const char *html, char *buf, size_t len)
{
	const char *p = strstr(html, "<a id=\"next\" href=\"/status?limit=");
	if (p == NULL)
		return NULL;
	p = strstr(p, "&amp;after=");
	assert_non_null(p);
	p += strlen("&amp;after=");
	size_t n = strcspn(p, "\"");
	assert_true(n < len);
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static void
test_status_pages_visit_each_entity_once(void **state)
{
	(void)state;
	enum { N = 2500, LIMIT = 300 };
	tracker *t = new_tracker();
	for (unsigned i = 0; i < N; i++)
		set_image(t, i, (int32_t)(i % 4));
	unsigned *seen = calloc(N, sizeof(*seen));
	char cur[400], err[512], lim[16];
	const char *after = NULL;
	size_t pages = 0, total = 0;
	snprintf(lim, sizeof(lim), "%d", LIMIT);
	do {
		char *html = status_page(t, lim, after, err, sizeof(err));
		assert_non_null(html);
		size_t rows = page_rows(html, seen, N);
		assert_true(rows <= LIMIT);
		assert_non_null(strstr(html, pages < 4 ?
		    "of 2500 entities on this page" :
		    "of 1875 entities on this page"));
		total += rows;
		pages++;
		after = next_cursor(html, cur, sizeof(cur));
		/* Half-way, a partition goes (a revoke): the listing goes on
		 * from the cursor, whose entity may be among the released. */
		if (pages == 4) {
			for (unsigned i = 0; i < N; i++)
				if (i % 4 == 1 && seen[i] == 0)
					seen[i] = 1; /* gone before its page */
			tracker_release_partition(t, 1);
		}
		free(html);
	} while (after != NULL);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	assert_true(pages >= N / LIMIT - 1 && pages <= N / LIMIT + 1);
	(void)total;
	free(seen);
	tracker_free(t);
}

static void
test_status_page_limits_and_cursors(void **state)
{
	(void)state;
	tracker *t = new_tracker();
	for (unsigned i = 0; i < 2500; i++)
		set_image(t, i, 0);
	unsigned *seen = calloc(2500, sizeof(*seen));
	char err[512], cur[400];

	/* The default page, and the largest. */
	char *html = status_page(t, NULL, NULL, err, sizeof(err));
	assert_int_equal(page_rows(html, seen, 2500), STATUS_LIMIT_DEFAULT);
	free(html);
	html = status_page(t, "5000", NULL, err, sizeof(err));
	assert_int_equal(page_rows(html, seen, 2500), STATUS_LIMIT_MAX);
	assert_non_null(strstr(html, "at most 1000, the largest page"));
	assert_non_null(next_cursor(html, cur, sizeof(cur)));
	free(html);
	html = status_page(t, "99999999999999999999999", NULL, err,
	    sizeof(err));
	assert_int_equal(page_rows(html, seen, 2500), STATUS_LIMIT_MAX);
	free(html);

	/* Refused, with the reason. */
	assert_null(status_page(t, "ten", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "limit \"ten\": want a whole number"));
	assert_null(status_page(t, "0", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "limit 0"));
	assert_null(status_page(t, "", NULL, err, sizeof(err)));
	assert_null(status_page(t, "-5", NULL, err, sizeof(err)));
	assert_null(status_page(t, NULL, "x", err, sizeof(err)));
	assert_non_null(strstr(err, "not a cursor"));
	assert_null(status_page(t, NULL, "12:", err, sizeof(err)));
	assert_null(status_page(t, NULL, "4294967296", err, sizeof(err)));
	assert_null(status_page(t, NULL, "3:no such/id!", err, sizeof(err)));
	assert_non_null(strstr(err, "neither an image ID nor a host name"));
	assert_null(status_page(t, NULL, "2500", err, sizeof(err)));
	assert_non_null(strstr(err, "past the 2500 slots in use"));
	/* Slot 3 holds image 3: image 7 is elsewhere, another order. */
	char bad[120], id[80];
	img_id(7, id, sizeof(id));
	snprintf(bad, sizeof(bad), "3:%s", id);
	assert_null(status_page(t, NULL, bad, err, sizeof(err)));
	assert_non_null(strstr(err, "the order this cursor comes from is "
	    "gone"));
	/* An entity no longer tracked keeps its place; so does a bare slot. */
	img_id(99999, id, sizeof(id));
	snprintf(bad, sizeof(bad), "3:%s", id);
	html = status_page(t, "2", bad, err, sizeof(err));
	assert_non_null(html);
	memset(seen, 0, 2500 * sizeof(*seen));
	assert_int_equal(page_rows(html, seen, 2500), 2);
	assert_int_equal(seen[4] + seen[5], 2);
	free(html);
	html = status_page(t, "2", "3", err, sizeof(err));
	assert_non_null(html);
	assert_int_equal(page_rows(html, seen, 2500), 2);
	assert_int_equal(seen[4] + seen[5], 4);
	free(html);
	/* The last page has no next link. */
	img_id(2489, id, sizeof(id));
	snprintf(bad, sizeof(bad), "2489:%s", id);
	html = status_page(t, "10", bad, err, sizeof(err));
	assert_non_null(html);
	assert_int_equal(page_rows(html, seen, 2500), 10);
	assert_null(next_cursor(html, cur, sizeof(cur)));
	free(html);
	free(seen);
	tracker_free(t);
}

/* Slots freed by the thousand before the live ones: a page examines
 * STATUS_SLOTS_MAX of them at most and links on from where it stopped. */
static void
test_status_page_bounded_over_empty_slots(void **state)
{
	(void)state;
	enum { GONE = STATUS_SLOTS_MAX + 5000, LIVE = 50 };
	tracker *t = new_tracker();
	for (unsigned i = 0; i < GONE; i++)
		set_image(t, i, 1);
	for (unsigned i = GONE; i < GONE + LIVE; i++)
		set_image(t, i, 2);
	assert_int_equal(tracker_release_partition(t, 1), GONE);
	unsigned *seen = calloc(GONE + LIVE, sizeof(*seen));
	char err[512], cur[400];
	char *html = status_page(t, "20", NULL, err, sizeof(err));
	assert_int_equal(page_rows(html, seen, GONE + LIVE), 0);
	const char *after = next_cursor(html, cur, sizeof(cur));
	assert_non_null(after);
	char want[24];
	snprintf(want, sizeof(want), "%u", STATUS_SLOTS_MAX - 1);
	assert_string_equal(after, want); /* an empty slot: no ID */
	free(html);
	size_t pages = 1;
	while (after != NULL) {
		html = status_page(t, "20", after, err, sizeof(err));
		assert_non_null(html);
		assert_true(page_rows(html, seen, GONE + LIVE) <= 20);
		after = next_cursor(html, cur, sizeof(cur));
		free(html);
		pages++;
	}
	assert_int_equal(pages, 4); /* nothing, 20, 20, 10 */
	for (unsigned i = GONE; i < GONE + LIVE; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
	tracker_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entity_json),
		cmocka_unit_test(test_when),
		cmocka_unit_test(test_status_page_escapes),
		cmocka_unit_test(test_status_pages_visit_each_entity_once),
		cmocka_unit_test(test_status_page_limits_and_cursors),
		cmocka_unit_test(test_status_page_bounded_over_empty_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
