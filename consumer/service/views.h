/*
 * views: what operators see of the engine's state, rendered in one place
 * for every way they look at it: one entity as JSON (the HTTP entity API
 * and `sbomd state show --json`), the HTML status page (/status), the
 * ring of recent outcomes the page lists, and the time format both the
 * page and `sbomd state` print.
 *
 * Concurrency: the caller owns the tracker it passes (the engine thread,
 * or `sbomd state`'s private copy); nothing here keeps a pointer.
 */
#ifndef SBOMD_SERVICE_VIEWS_H
#define SBOMD_SERVICE_VIEWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tracker.h"
#include "service/publish.h"
#include "util/textbuf.h"

#define RECENT_MAX 20 /* outcomes shown on /status */

struct recent_outcome {
	char id[80];
	enum outcome_status status;
	uint32_t attempt;
	int64_t next; /* next attempt, -1 none */
	int64_t at;
	char error[200];
};

/* The newest RECENT_MAX outcomes, a ring. */
struct recent_outcomes {
	struct recent_outcome v[RECENT_MAX];
	size_t n, next;
};

void recent_add(struct recent_outcomes *r, const struct recent_outcome *o);

/* The entity an operator names: an image ID, else a host name;
 * TRACKER_NONE when neither is tracked. */
uint32_t view_find_entity(const tracker *t, const char *id);

/* One entity as a JSON object (caller decrefs). scanning: whether a scan
 * of it is running now, or -1 when unknown (omitted). */
json_t *view_entity_json(const tracker *t, uint32_t h, int scanning);

/* "2026-11-28T07:31:50.156Z (in 5s)" / "(... 3m ago)"; "-" for ms < 0. */
void view_when(int64_t ms, int64_t now, char *buf, size_t len);

/*
 * The status page lists the tracked entities a page at a time, in the
 * tracker's slot order (tracker_page), so that one request's work on the
 * engine thread is bounded: at most limit + 1 entities and
 * STATUS_SLOTS_MAX slots are visited; the counts come from counters.
 * ?limit=N sets the page size (default STATUS_LIMIT_DEFAULT, larger ones
 * are cut to STATUS_LIMIT_MAX); ?after=CURSOR goes on from a page's
 * "next page" link. A cursor is "SLOT:ID", the last slot the page covered
 * and the entity that was in it, or "SLOT" alone when that slot was
 * empty.
 */
#define STATUS_LIMIT_DEFAULT 100
#define STATUS_LIMIT_MAX 1000
#define STATUS_SLOTS_MAX 65536 /* slots examined per page, live or not */
#define STATUS_CURSOR_MAX 320  /* bytes of a cursor, ID included */

struct view_page {
	size_t limit;	/* 1..STATUS_LIMIT_MAX */
	bool clamped;	/* a larger limit was asked for */
	bool first;	/* no cursor: the first page */
	uint32_t from;	/* the first slot to examine */
};

/*
 * Reads /status's query (either string NULL when absent): 0, or -EINVAL
 * with the reason in err (the 400's body). A cursor whose entity is no
 * longer tracked still holds its place (the listing goes on after its
 * slot); one whose entity is tracked in another slot now, or whose slot
 * is past every slot, comes from another order (the service restarted)
 * and is refused.
 */
int view_page_open(const tracker *t, const char *limit, const char *after,
    struct view_page *p, char *err, size_t errlen);

struct view_status {
	const tracker *t;
	const struct snapshot *snap;
	const struct recent_outcomes *recent;
	const char *input_topic, *output_topic;
	int64_t now;
	const struct view_page *page; /* NULL: the first page, default limit */
};

/* The /status page. */
void view_status_html(struct textbuf *out, const struct view_status *v);

#endif
