/*
 * outcomes: what the engine writes to the outbox. An outcome (SUCCEEDED,
 * RETRY_SCHEDULED, FAILED, CANCELLED) carries the entity's refs, all
 * holding sources merged (deduplicated, at most WIRE_MAX_REFS of each);
 * it is Avro-encoded in the configured output framing, staged in the
 * outbox (durable with the next group commit), counted, logged and kept
 * for the status page. A dead letter is the refused message itself, with
 * why and where it came from. Engine thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/engine_int.h"
#include "service/log.h"
#include "util/clock.h"
#include "util/xmalloc.h"

/* ---- refs ---------------------------------------------------------------- */

static void
refs_add(const char **v, size_t *lens, size_t *n, const char *s, size_t len,
    struct arena *a)
{
	for (size_t i = 0; i < *n; i++)
		if (lens[i] == len && memcmp(v[i], s, len) == 0)
			return;
	if (*n >= WIRE_MAX_REFS)
		return;
	v[*n] = arena_strndup(a, s, len);
	lens[(*n)++] = len;
}

struct refs_ctx {
	struct refs *r;
	struct arena *a;
};

static void
refs_collect(void *ctx, const struct tracker_source_info *si)
{
	struct refs_ctx *c = ctx;
	struct refs *r = c->r;
	if (!si->holding)
		return;
	for (size_t i = 0; i < si->ntags; i++)
		refs_add(r->tags, r->tag_lens, &r->ntags, si->tags[i],
		    si->tag_lens[i], c->a);
	for (size_t i = 0; i < si->ndigests; i++)
		refs_add(r->digests, r->digest_lens, &r->ndigests,
		    si->digests[i], si->digest_lens[i], c->a);
}

/* The entity's refs in e->refs, strings in e->scratch: valid until the
 * scratch arena is reset (after the outcome or job is made). */
struct refs *
outcomes_refs(engine *e, uint32_t handle)
{
	struct refs_ctx c = { &e->refs, &e->scratch };
	e->refs.ntags = e->refs.ndigests = 0;
	tracker_sources(e->t, handle, refs_collect, &c);
	return &e->refs;
}

/* ---- outcomes ------------------------------------------------------------ */

static void
fill_outcome(engine *e, struct wire_outcome *w, const char *id,
    const struct tracker_outcome *o, const struct scan_result *res,
    const char *etext, int64_t now)
{
	memset(w, 0, offsetof(struct wire_outcome, repo_tags));
	w->id = wire_str_c(id);
	w->kind = (enum entity_kind)o->key.kind;
	w->status = o->status;
	w->attempt = (int32_t)o->attempt;
	w->generation = (int64_t)o->generation;
	if (o->next_attempt_at >= 0) {
		w->has_next_attempt_at = 1;
		w->next_attempt_at = o->next_attempt_at;
	}
	if (etext != NULL) {
		w->has_error = 1;
		w->error = wire_str_c(etext);
	}
	if (o->error_class >= 0) {
		w->has_error_class = 1;
		w->error_class = (enum error_class)o->error_class;
	}
	w->scanner = wire_str_c(config_backend_name(e->cfg->scan.backend));
	if (res != NULL) {
		w->has_started_at = 1;
		w->started_at = res->started_at_ms;
		w->has_duration_ms = 1;
		w->duration_ms = res->duration_ms;
		if (o->status == OUTCOME_SUCCEEDED && res->sbom != NULL) {
			w->has_sbom = 1;
			w->sbom.format = wire_str_c("CycloneDX");
			w->sbom.spec_version = wire_str_c("1.5");
			w->sbom.component_count = (int32_t)(res->components >
				INT32_MAX ? INT32_MAX : res->components);
			w->sbom.content = (const uint8_t *)res->sbom;
			w->sbom.content_len = res->sbom_len;
		}
	}
	struct refs *r = outcomes_refs(e, o->handle);
	w->ntags = r->ntags;
	for (size_t i = 0; i < r->ntags; i++)
		w->repo_tags[i] = (struct wire_str){ r->tags[i],
			r->tag_lens[i] };
	w->ndigests = r->ndigests;
	for (size_t i = 0; i < r->ndigests; i++)
		w->repo_digests[i] = (struct wire_str){ r->digests[i],
			r->digest_lens[i] };
	w->emitted_at = now;
}

static void
log_outcome(const char *id, const struct tracker_outcome *o,
    const struct scan_result *res, const char *etext)
{
	enum log_level level = o->status == OUTCOME_FAILED ? LOG_WARN :
							     LOG_INFO;
	if (!log_enabled(level))
		return;
	char att[16], next[64], dur[24];
	snprintf(att, sizeof(att), "%u", o->attempt);
	clock_format(o->next_attempt_at, next, sizeof(next));
	snprintf(dur, sizeof(dur), "%" PRId64, res ? res->duration_ms : 0);
	log_kv(level, "outcome", "id", id, "status",
	    outcome_status_name(o->status), "attempt", att, "next_attempt_at",
	    next, "duration_ms", dur, "error_class", o->error_class < 0 ? "" :
	    error_class_name((enum error_class)o->error_class), "error",
	    etext ? etext : "", (char *)NULL);
}

/* Encodes the outcome into a new outbox record (pending commit) and logs
 * it. res: the scan's result, or NULL (CANCELLED). */
void
outcomes_emit(engine *e, const struct tracker_outcome *o,
    const struct scan_result *res, int64_t now)
{
	struct wire_outcome *w = e->wo;
	char id[300], err[256];
	char *etext = NULL;

	tracker_id_string(e->t, o->handle, id, sizeof(id));
	if (o->error != NULL) {
		/* The tracker's copy, made valid UTF-8 for the string field. */
		etext = xstrdup(o->error);
		wire_utf8_sanitize(etext, strlen(etext));
	}
	fill_outcome(e, w, id, o, res, etext, now);
	if (wire_outcome_encode(w, &e->oframe, &e->wbuf, err, sizeof(err)) !=
	    0) {
		/* Never expected: our own values. Publish without the refs
		 * and SBOM rather than lose the outcome. */
		log_kv(LOG_ERROR, "cannot encode outcome", "id", id, "error",
		    err, (char *)NULL);
		w->ntags = w->ndigests = 0;
		w->has_sbom = 0;
		if (wire_outcome_encode(w, &e->oframe, &e->wbuf, err,
			sizeof(err)) != 0)
			goto out;
	}
	struct outbox_msg m = { .kind = OUTBOX_OUTCOME,
		.key = (const uint8_t *)id, .klen = strlen(id),
		.value = e->wbuf.data, .vlen = e->wbuf.len };
	size_t len;
	uint8_t *rec = outbox_record(&m, &len);
	outbox_stage(e->ob, rec, len);
	e->snap->outcomes[o->status]++;

	struct recent_outcome rc = { .status = o->status,
		.attempt = o->attempt, .next = o->next_attempt_at, .at = now };
	snprintf(rc.id, sizeof(rc.id), "%.79s", id);
	snprintf(rc.error, sizeof(rc.error), "%s", etext ? etext : "");
	recent_add(&e->recent, &rc);
	log_outcome(id, o, res, etext);
out:
	free(etext);
	arena_reset(&e->scratch);
}

/* A dead letter: the original message with why it was refused. Counted
 * and logged always; staged only when a dead-letter topic is set. */
void
outcomes_dead_letter(engine *e, const rd_kafka_message_t *m, const char *why)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	char part[16], off[24];
	snprintf(part, sizeof(part), "%" PRId32, m->partition);
	snprintf(off, sizeof(off), "%" PRId64, m->offset);
	log_kv(LOG_WARN, "dead letter", "topic", topic, "partition", part,
	    "offset", off, "error", why, (char *)NULL);
	if (e->cfg->kafka.dead_letter_topic[0] == '\0')
		return;
	struct outbox_msg d = { .kind = OUTBOX_DEAD_LETTER,
		.key = m->key, .klen = m->key_len > 65535 ? 0 : m->key_len,
		.value = m->payload, .vlen = m->len,
		.error = why, .elen = strlen(why),
		.topic = topic, .tlen = strlen(topic),
		.partition = m->partition, .offset = m->offset };
	size_t len;
	uint8_t *rec = outbox_record(&d, &len);
	outbox_stage(e->ob, rec, len);
}
