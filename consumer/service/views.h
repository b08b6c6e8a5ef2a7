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

struct view_status {
	const tracker *t;
	const struct snapshot *snap;
	const struct recent_outcomes *recent;
	const char *input_topic, *output_topic;
	int64_t now;
};

/* The /status page. */
void view_status_html(struct textbuf *out, const struct view_status *v);

#endif
