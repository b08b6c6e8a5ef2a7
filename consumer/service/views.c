/*
 * views: see views.h. The status page is plain HTML with a 5 s refresh,
 * no scripts; every string from outside (ids, refs, errors, topic names)
 * is escaped. Its tables have ids (states, retries, outcomes, lag) that
 * the browser test reads. The pending-retries table lists at most 50
 * rows (soonest first); `sbomd state list` shows them all.
 */
#include "service/views.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/duration.h"
#include "util/xmalloc.h"

#define STATUS_ROWS 50

void
recent_add(struct recent_outcomes *r, const struct recent_outcome *o)
{
	r->v[r->next] = *o;
	r->next = (r->next + 1) % RECENT_MAX;
	if (r->n < RECENT_MAX)
		r->n++;
}

uint32_t
view_find_entity(const tracker *t, const char *id)
{
	static const enum entity_kind kinds[] = { ENTITY_IMAGE, ENTITY_HOST };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct tracker_key key;
		if (tracker_key_from_id(kinds[i], id, &key, NULL, 0) != 0)
			continue;
		uint32_t h = tracker_find(t, &key);
		if (h != TRACKER_NONE)
			return h;
	}
	return TRACKER_NONE;
}

/* Whole seconds once it is a second or more: they read better. */
static int64_t
round_down_s(int64_t d)
{
	return d >= 1000 ? d - d % 1000 : d;
}

void
view_when(int64_t ms, int64_t now, char *buf, size_t len)
{
	char at[64], rel[32];
	if (ms < 0) {
		snprintf(buf, len, "-");
		return;
	}
	clock_format(ms, at, sizeof(at));
	duration_format(round_down_s(ms >= now ? ms - now : now - ms), rel,
	    sizeof(rel));
	if (ms >= now)
		snprintf(buf, len, "%s (in %s)", at, rel);
	else
		snprintf(buf, len, "%s (%s ago)", at, rel);
}

/* ---- one entity as JSON ------------------------------------------------- */

static json_t *
json_time(int64_t ms)
{
	if (ms < 0)
		return json_null();
	char b[64];
	clock_format(ms, b, sizeof(b));
	return json_string(b);
}

static json_t *
json_refs(const char *const *v, const size_t *lens, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_stringn(v[i], lens[i]));
	return a;
}

static void
source_json(void *ctx, const struct tracker_source_info *si)
{
	json_t *o = json_object();
	json_object_set_new(o, "source", json_string(si->source));
	json_object_set_new(o, "holding", json_boolean(si->holding));
	json_object_set_new(o, "observed_at", json_time(si->observed_at));
	json_object_set_new(o, "repo_tags", json_refs(si->tags, si->tag_lens,
	    si->ntags));
	json_object_set_new(o, "repo_digests", json_refs(si->digests,
	    si->digest_lens, si->ndigests));
	json_array_append_new(ctx, o);
}

json_t *
view_entity_json(const tracker *t, uint32_t h, int scanning)
{
	struct tracker_info in;
	char id[300];
	json_t *o = json_object();
	tracker_info_get(t, h, &in);
	tracker_id_string(t, h, id, sizeof(id));
	bool queued = in.state == ENTRY_QUEUED;
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "kind",
	    json_string(entity_kind_name((enum entity_kind)in.key.kind)));
	json_object_set_new(o, "state", json_string(entry_state_name(
	    in.state)));
	json_object_set_new(o, "attempts", json_integer(in.attempts));
	json_object_set_new(o, "next_attempt_at", json_time(queued ? in.due :
	    -1));
	json_object_set_new(o, "next_attempt_at_ms", queued ?
	    json_integer(in.due) : json_null());
	json_object_set_new(o, "forget_at", json_time(in.in_heap && !queued ?
	    in.due : -1));
	json_object_set_new(o, "first_seen", json_time(in.first_seen));
	json_object_set_new(o, "last_scan", json_time(in.last_scan));
	json_object_set_new(o, "last_error", in.last_error ?
	    json_string(in.last_error) : json_null());
	json_object_set_new(o, "partition", json_integer(in.partition));
	json_object_set_new(o, "referenced", json_boolean(in.referenced));
	if (scanning >= 0)
		json_object_set_new(o, "scanning", json_boolean(scanning));
	json_t *srcs = json_array();
	tracker_sources(t, h, source_json, srcs);
	json_object_set_new(o, "sources", srcs);
	return o;
}

/* ---- the status page ---------------------------------------------------- */

struct pending_row {
	uint32_t h;
	int64_t due;
};

struct pending_scan {
	const tracker *t;
	struct pending_row *v;
	size_t n, cap;
};

/* Retries: queued entities that failed at least once. */
static void
pending_collect(void *ctx, uint32_t h)
{
	struct pending_scan *p = ctx;
	struct tracker_info in;
	if (tracker_info_get(p->t, h, &in) != 0 ||
	    in.state != ENTRY_QUEUED || in.attempts == 0)
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = xreallocarray(p->v, p->cap, sizeof(*p->v));
	}
	p->v[p->n++] = (struct pending_row){ h, in.due };
}

static int
pending_cmp(const void *a, const void *b)
{
	const struct pending_row *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->h < y->h ? -1 : x->h > y->h;
}

/* The first ref a holding source reported, for the retries table. */
static void
refs_first(void *ctx, const struct tracker_source_info *si)
{
	char *buf = ctx;
	if (buf[0] != '\0' || !si->holding)
		return;
	if (si->ntags > 0)
		snprintf(buf, 200, "%.*s", (int)si->tag_lens[0], si->tags[0]);
	else if (si->ndigests > 0)
		snprintf(buf, 200, "%.*s", (int)si->digest_lens[0],
		    si->digests[0]);
}

static void
page_head(struct textbuf *b, const struct view_status *v)
{
	const struct snapshot *s = v->snap;
	char now[64];
	clock_format(v->now, now, sizeof(now));
	textbuf_printf(b,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta http-equiv=\"refresh\" content=\"5\">"
	    "<title>sbomd status</title><style>"
	    "body{font-family:sans-serif;margin:1.5em;color:#222}"
	    "table{border-collapse:collapse;margin-bottom:1.5em}"
	    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;"
	    "font-size:90%%;max-width:36em;overflow-wrap:anywhere}"
	    "th{background:#eee}.num{text-align:right}"
	    "code{font-size:90%%}</style></head><body>\n"
	    "<h1>sbomd</h1><p>%s &middot; input <code>", now);
	textbuf_append_html(b, v->input_topic);
	textbuf_printf(b, "</code> &rarr; output <code>");
	textbuf_append_html(b, v->output_topic);
	textbuf_printf(b, "</code> &middot; <span id=\"readiness\">%s</span> "
			 "&middot; <span id=\"input\">%s</span> &middot; "
			 "refreshes every 5 s</p>\n",
	    s->recovered && s->assigned ? "ready" : "not ready",
	    s->paused ? "input paused" : "consuming");
}

static void
page_states(struct textbuf *b, const struct snapshot *s)
{
	textbuf_printf(b, "<h2>Entities</h2><table id=\"states\"><tr>");
	for (int i = 0; i < ENTRY_STATE_COUNT; i++)
		textbuf_printf(b, "<th>%s</th>",
		    entry_state_name((enum entry_state)i));
	textbuf_printf(b, "<th>outbox</th><th>workers busy</th></tr><tr>");
	for (int i = 0; i < ENTRY_STATE_COUNT; i++)
		textbuf_printf(b, "<td class=\"num\">%" PRIu64 "</td>",
		    s->by_state[i]);
	textbuf_printf(b, "<td class=\"num\">%" PRIu64 "</td><td class=\"num\">"
			 "%" PRIu64 " / %" PRIu64 "</td></tr></table>\n",
	    s->outbox, s->workers_busy, s->workers);
}

static void
page_retries(struct textbuf *b, const struct view_status *v)
{
	struct pending_scan ps = { v->t, NULL, 0, 0 };
	tracker_foreach(v->t, pending_collect, &ps);
	if (ps.n > 1)
		qsort(ps.v, ps.n, sizeof(*ps.v), pending_cmp);
	textbuf_printf(b, "<h2>Pending retries (%zu), soonest first</h2>\n"
			 "<table id=\"retries\"><tr><th>id</th><th>refs</th>"
			 "<th>attempt</th><th>next attempt</th>"
			 "<th>last error</th></tr>\n", ps.n);
	for (size_t i = 0; i < ps.n && i < STATUS_ROWS; i++) {
		struct tracker_info in;
		char id[300], ref[200] = "", when[128];
		tracker_info_get(v->t, ps.v[i].h, &in);
		tracker_id_string(v->t, ps.v[i].h, id, sizeof(id));
		tracker_sources(v->t, ps.v[i].h, refs_first, ref);
		view_when(in.due, v->now, when, sizeof(when));
		textbuf_printf(b, "<tr><td><code>");
		textbuf_append_html(b, id);
		textbuf_printf(b, "</code></td><td>");
		textbuf_append_html(b, ref);
		textbuf_printf(b, "</td><td class=\"num\">%u</td><td>%s</td>"
				 "<td>", in.attempts + 1, when);
		textbuf_append_html(b, in.last_error ? in.last_error : "");
		textbuf_printf(b, "</td></tr>\n");
	}
	if (ps.n > STATUS_ROWS)
		textbuf_printf(b, "<tr><td colspan=\"5\">&hellip; %zu more "
				 "(sbomd state list)</td></tr>\n",
		    ps.n - STATUS_ROWS);
	textbuf_printf(b, "</table>\n");
	free(ps.v);
}

static void
page_outcomes(struct textbuf *b, const struct recent_outcomes *r)
{
	textbuf_printf(b, "<h2>Recent outcomes</h2><table id=\"outcomes\">"
			 "<tr><th>time</th><th>id</th><th>status</th>"
			 "<th>attempt</th><th>next attempt</th><th>error</th>"
			 "</tr>\n");
	for (size_t k = 0; k < r->n; k++) {
		const struct recent_outcome *o = &r->v[(r->next + RECENT_MAX -
		    1 - k) % RECENT_MAX];
		char at[64], next[64];
		clock_format(o->at, at, sizeof(at));
		clock_format(o->next, next, sizeof(next));
		textbuf_printf(b, "<tr><td>%s</td><td><code>", at);
		textbuf_append_html(b, o->id);
		textbuf_printf(b, "</code></td><td>%s</td><td class=\"num\">%u"
				 "</td><td>%s</td><td>",
		    outcome_status_name(o->status), o->attempt, next);
		textbuf_append_html(b, o->error);
		textbuf_printf(b, "</td></tr>\n");
	}
	textbuf_printf(b, "</table>\n");
}

static void
fmt_i64(char *buf, size_t len, int64_t v)
{
	if (v >= 0)
		snprintf(buf, len, "%" PRId64, v);
	else
		snprintf(buf, len, "-");
}

static void
page_lag(struct textbuf *b, const struct snapshot *s)
{
	textbuf_printf(b, "<h2>Consumer lag</h2><table id=\"lag\">"
			 "<tr><th>partition</th><th>lag</th><th>committed"
			 "</th><th>high watermark</th></tr>\n");
	for (size_t i = 0; i < s->nlags; i++) {
		const struct part_lag *l = &s->lags[i];
		char lag[24], com[24], hi[24];
		fmt_i64(lag, sizeof(lag), l->lag);
		fmt_i64(com, sizeof(com), l->committed);
		fmt_i64(hi, sizeof(hi), l->high);
		textbuf_printf(b, "<tr><td class=\"num\">%d</td><td class="
				 "\"num\">%s</td><td class=\"num\">%s</td>"
				 "<td class=\"num\">%s</td></tr>\n",
		    l->partition, lag, com, hi);
	}
	textbuf_printf(b, "</table>\n");
}

void
view_status_html(struct textbuf *b, const struct view_status *v)
{
	page_head(b, v);
	page_states(b, v->snap);
	page_retries(b, v);
	page_outcomes(b, v->recent);
	page_lag(b, v->snap);
	textbuf_printf(b, "<p><a href=\"/metrics\">metrics</a> &middot; "
			 "<a href=\"/healthz\">healthz</a> &middot; "
			 "<a href=\"/readyz\">readyz</a></p></body></html>\n");
}
