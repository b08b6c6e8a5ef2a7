/*
 * views: see views.h. The status page is plain HTML with a 5 s refresh,
 * no scripts; every string from outside (ids, refs, errors, topic names)
 * is escaped. Its tables have ids (states, entities, retries, outcomes,
 * lag) that the browser test reads. The page lists one page of entities
 * (views.h: at most STATUS_LIMIT_MAX, in slot order, with a "next page"
 * link); its pending-retries table holds the retries among them, soonest
 * first. The counts by state come from the tracker's counters, so one
 * request costs the same with ten entities or ten million: at most
 * limit + 1 entries and STATUS_SLOTS_MAX slots read (about 5 MB, a
 * millisecond or so), on the engine thread. `sbomd state list` shows
 * every entity at once.
 */
#include "service/views.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/duration.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

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

/* A decimal in [0, max]: 0, or -EINVAL. */
static int
parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int
view_page_open(const tracker *t, const char *limit, const char *after,
    struct view_page *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->limit = STATUS_LIMIT_DEFAULT;
	p->first = true;
	if (limit != NULL) {
		size_t len = strlen(limit);
		uint64_t v = 0;
		if (len == 0 || strspn(limit, "0123456789") != len) {
			errbuf_set(err, errlen, "limit \"%.40s\": want a whole "
			    "number of entities, 1 to %d", limit,
			    STATUS_LIMIT_MAX);
			return -EINVAL;
		}
		/* Any number larger than the largest page is cut to it. */
		if (parse_uint(limit, len, STATUS_LIMIT_MAX, &v) != 0) {
			p->limit = STATUS_LIMIT_MAX;
			p->clamped = true;
		} else if (v == 0) {
			errbuf_set(err, errlen, "limit 0: want 1 to %d "
			    "entities a page", STATUS_LIMIT_MAX);
			return -EINVAL;
		} else {
			p->limit = (size_t)v;
		}
	}
	if (after == NULL)
		return 0;
	p->first = false;
	const char *colon = strchr(after, ':');
	size_t slen = colon ? (size_t)(colon - after) : strlen(after);
	uint64_t slot;
	if (strlen(after) > STATUS_CURSOR_MAX ||
	    parse_uint(after, slen, UINT32_MAX, &slot) != 0 ||
	    (colon != NULL && colon[1] == '\0')) {
		errbuf_set(err, errlen, "after \"%.80s\": not a cursor (want "
		    "SLOT or SLOT:ID, as in a page's next link)", after);
		return -EINVAL;
	}
	if (slot >= tracker_slots(t)) {
		errbuf_set(err, errlen, "after \"%.80s\": slot %" PRIu64 " is "
		    "past the %" PRIu32 " slots in use (a cursor from before "
		    "a restart?); start again at /status", after, slot,
		    tracker_slots(t));
		return -EINVAL;
	}
	if (colon != NULL) {
		const char *id = colon + 1;
		struct tracker_key k1, k2;
		if (tracker_key_from_id(ENTITY_IMAGE, id, &k1, NULL, 0) != 0 &&
		    tracker_key_from_id(ENTITY_HOST, id, &k2, NULL, 0) != 0) {
			errbuf_set(err, errlen, "after \"%.80s\": \"%.80s\" is "
			    "neither an image ID nor a host name", after, id);
			return -EINVAL;
		}
		uint32_t h = view_find_entity(t, id);
		if (h != TRACKER_NONE && h != (uint32_t)slot) {
			errbuf_set(err, errlen, "after \"%.80s\": %.80s is in "
			    "slot %" PRIu32 " now, the order this cursor comes "
			    "from is gone (a restart?); start again at /status",
			    after, id, h);
			return -EINVAL;
		}
	}
	p->from = (uint32_t)slot + 1;
	return 0;
}

struct pending_row {
	uint32_t h;
	int64_t due;
};

static int
pending_cmp(const void *a, const void *b)
{
	const struct pending_row *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->h < y->h ? -1 : x->h > y->h;
}

/* The first ref a holding source reported. */
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

/* s percent-encoded for a query string, then escaped for an attribute. */
static void
append_query_value(struct textbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~:", c) != NULL) {
			textbuf_append(b, (const char *)&c, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			textbuf_append(b, e, 3);
		}
	}
}

/* The page of entities: hs[0..n) in slot order. */
static void
page_entities(struct textbuf *b, const struct view_status *v,
    const uint32_t *hs, size_t n)
{
	textbuf_printf(b, "<table id=\"entities\"><tr><th>id</th><th>state"
			 "</th><th>refs</th><th>failed attempts</th>"
			 "<th>due</th><th>last error</th></tr>\n");
	for (size_t i = 0; i < n; i++) {
		struct tracker_info in;
		char id[300], ref[200] = "", when[128];
		if (tracker_info_get(v->t, hs[i], &in) != 0)
			continue;
		tracker_id_string(v->t, hs[i], id, sizeof(id));
		tracker_sources(v->t, hs[i], refs_first, ref);
		view_when(in.in_heap ? in.due : -1, v->now, when, sizeof(when));
		textbuf_printf(b, "<tr><td><code>");
		textbuf_append_html(b, id);
		textbuf_printf(b, "</code></td><td>%s</td><td>",
		    entry_state_name(in.state));
		textbuf_append_html(b, ref);
		textbuf_printf(b, "</td><td class=\"num\">%u</td><td>%s</td>"
				 "<td>", in.attempts, when);
		textbuf_append_html(b, in.last_error ? in.last_error : "");
		textbuf_printf(b, "</td></tr>\n");
	}
	textbuf_printf(b, "</table>\n");
}

/* Where the page is in the listing, and the link to the next one. */
static void
page_nav(struct textbuf *b, const struct view_status *v,
    const struct view_page *p, size_t n, bool more, uint32_t last)
{
	textbuf_printf(b, "<p id=\"page\">%zu of %zu entities on this page "
			 "(at most %zu%s, in slot order)",
	    n, tracker_count(v->t), p->limit, p->clamped ? ", the largest "
	    "page" : "");
	if (!p->first)
		textbuf_printf(b, " &middot; <a id=\"first\" href=\"/status?"
				 "limit=%zu\">first page</a>", p->limit);
	if (more) {
		textbuf_printf(b, " &middot; <a id=\"next\" href=\"/status?"
				 "limit=%zu&amp;after=%" PRIu32, p->limit,
		    last);
		struct tracker_info in;
		if (tracker_info_get(v->t, last, &in) == 0) {
			char id[300];
			tracker_id_string(v->t, last, id, sizeof(id));
			textbuf_printf(b, ":");
			append_query_value(b, id);
		}
		textbuf_printf(b, "\">next page</a>");
	}
	textbuf_printf(b, "</p>\n");
}

/* Retries among the page's entities: queued after a failed attempt,
 * soonest first. */
static void
page_retries(struct textbuf *b, const struct view_status *v,
    const uint32_t *hs, size_t n)
{
	struct pending_row *rows = xcalloc(n ? n : 1, sizeof(*rows));
	size_t nr = 0;
	for (size_t i = 0; i < n; i++) {
		struct tracker_info in;
		if (tracker_info_get(v->t, hs[i], &in) == 0 &&
		    in.state == ENTRY_QUEUED && in.attempts > 0)
			rows[nr++] = (struct pending_row){ hs[i], in.due };
	}
	if (nr > 1)
		qsort(rows, nr, sizeof(*rows), pending_cmp);
	textbuf_printf(b, "<h2>Pending retries on this page (%zu), soonest "
			 "first</h2>\n"
			 "<table id=\"retries\"><tr><th>id</th><th>refs</th>"
			 "<th>attempt</th><th>next attempt</th>"
			 "<th>last error</th></tr>\n", nr);
	for (size_t i = 0; i < nr; i++) {
		struct tracker_info in;
		char id[300], ref[200] = "", when[128];
		tracker_info_get(v->t, rows[i].h, &in);
		tracker_id_string(v->t, rows[i].h, id, sizeof(id));
		tracker_sources(v->t, rows[i].h, refs_first, ref);
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
	textbuf_printf(b, "</table>\n");
	free(rows);
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
	struct view_page first = { STATUS_LIMIT_DEFAULT, false, true, 0 };
	const struct view_page *p = v->page ? v->page : &first;
	/* One more than the page shows: whether a next page has any. */
	uint32_t *hs = xcalloc(p->limit + 1, sizeof(*hs));
	uint32_t next;
	size_t n = tracker_page(v->t, p->from, STATUS_SLOTS_MAX, hs,
	    p->limit + 1, &next);
	/* Past the limit, or the slot budget ran out before the end. */
	bool more = n > p->limit || next < tracker_slots(v->t);
	uint32_t last = n > p->limit ? hs[p->limit - 1] : next - 1;
	if (n > p->limit)
		n = p->limit;
	page_head(b, v);
	page_states(b, v->snap);
	page_nav(b, v, p, n, more, last);
	page_entities(b, v, hs, n);
	page_retries(b, v, hs, n);
	page_outcomes(b, v->recent);
	page_lag(b, v->snap);
	free(hs);
	textbuf_printf(b, "<p><a href=\"/metrics\">metrics</a> &middot; "
			 "<a href=\"/healthz\">healthz</a> &middot; "
			 "<a href=\"/readyz\">readyz</a></p></body></html>\n");
}
