/*
 * http: see http.h. libmicrohttpd runs the listening socket and the
 * requests on its internal polling thread; each handler either renders
 * the latest snapshot (copied under the publish mutex) or posts a request
 * to the engine and waits for its answer (up to HTTP_WAIT_MS; the engine
 * serves requests every loop iteration, at least every 100 ms).
 *
 *   /metrics                Prometheus text format 0.0.4
 *   /healthz                200 while the engine loop ran in the last 30 s
 *   /readyz                 200 once state is recovered, partitions are
 *                           assigned, none is being restored from the
 *                           changelog and the changelog can be written,
 *                           else 503 with the reason
 *   /api/v1/entities/{id}   one entity as JSON (the engine renders it)
 *   /status                 an HTML page for people (the engine renders it),
 *                           ?limit=N&after=CURSOR: one page of entities
 *                           (views.h); 400 with the reason for a bad one
 *
 * Connections: libmicrohttpd's epoll mode (MHD_USE_AUTO picks it on
 * Linux; no FD_SETSIZE ceiling) on a pool of HTTP_THREADS threads, so a
 * /status or entity request waiting for the engine (up to HTTP_WAIT_MS)
 * does not hold up /healthz. At most http.max_connections are open at
 * once (more are closed as they are accepted) and an idle one is closed
 * after http.connection_timeout: thousands of idle connections neither
 * exhaust the file descriptors nor stop the probes (each idle connection
 * costs a socket and up to HTTP_CONN_MEMORY bytes).
 */
#include "service/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "service/log.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/textbuf.h"
#include "util/xmalloc.h"

#define HTTP_WAIT_MS 3000
/* Liveness: the engine loop published a snapshot this recently. Longer
 * than the longest single call the engine makes while it waits for a
 * broker that is gone (an exactly-once transaction call returns after
 * about 10 s then), with room to spare. */
#define HEALTH_STALE_MS 30000
#define HTTP_THREADS 4
#define HTTP_CONN_MEMORY (16u * 1024) /* per connection: a GET's headers */
#define FD_RESERVE 256 /* descriptors kept for LMDB, Kafka, scans */

struct http_server {
	struct MHD_Daemon *d;
	struct publish *pub;
};

/* ---- /metrics ---- */

static void
hist_text(struct textbuf *b, const char *name, const char *help,
    const struct hist *h)
{
	textbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		cum += h->counts[i];
		textbuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    hist_bounds[i], cum);
	}
	cum += h->counts[HIST_BUCKETS];
	textbuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	textbuf_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, h->sum,
	    name, h->n);
}

static void
head(struct textbuf *b, const char *name, const char *type, const char *help)
{
	textbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_events(struct textbuf *b, const struct snapshot *s)
{
	static const char *const results[EVR_COUNT] = { "applied",
		"deduplicated", "stale", "unknown_entity", "dead_lettered" };
	head(b, "sbomd_events_consumed_total", "counter",
	    "Input messages by event type and what applying them did.");
	for (int t = 0; t < EVENT_ROWS; t++)
		for (int r = 0; r < EVR_COUNT; r++) {
			if (t == EVENTS_UNDECODABLE && r != EVR_DEAD_LETTERED)
				continue;
			textbuf_printf(b,
			    "sbomd_events_consumed_total{type=\"%s\","
			    "result=\"%s\"} %" PRIu64 "\n",
			    t == EVENTS_UNDECODABLE ? "undecodable" :
			    event_type_name((enum event_type)t), results[r],
			    s->events[t][r]);
		}
}

static void
metrics_scans(struct textbuf *b, const struct snapshot *s)
{
	head(b, "sbomd_scans_started_total", "counter", "Scans started.");
	textbuf_printf(b, "sbomd_scans_started_total %" PRIu64 "\n",
	    s->scans_started);
	head(b, "sbomd_scans_finished_total", "counter",
	    "Scans finished, by result and error class.");
	textbuf_printf(b,
	    "sbomd_scans_finished_total{result=\"success\",error_class=\"\"} "
	    "%" PRIu64 "\n"
	    "sbomd_scans_finished_total{result=\"failure\",error_class="
	    "\"RETRYABLE\"} %" PRIu64 "\n"
	    "sbomd_scans_finished_total{result=\"failure\",error_class="
	    "\"PERMANENT\"} %" PRIu64 "\n",
	    s->scans_finished[0], s->scans_finished[1], s->scans_finished[2]);
	hist_text(b, "sbomd_scan_duration_seconds",
	    "Duration of finished scans.", &s->scan_duration);
	head(b, "sbomd_workers_busy", "gauge", "Workers running a scan.");
	textbuf_printf(b, "sbomd_workers_busy %" PRIu64 "\n", s->workers_busy);
	head(b, "sbomd_workers", "gauge", "Scan workers (scan.workers).");
	textbuf_printf(b, "sbomd_workers %" PRIu64 "\n", s->workers);
}

static void
metrics_outcomes(struct textbuf *b, const struct snapshot *s)
{
	head(b, "sbomd_retries_scheduled_total", "counter",
	    "Failed scans rescheduled with backoff.");
	textbuf_printf(b, "sbomd_retries_scheduled_total %" PRIu64 "\n",
	    s->outcomes[OUTCOME_RETRY_SCHEDULED]);
	head(b, "sbomd_outcomes_total", "counter",
	    "Outcomes written to the outbox, by status.");
	for (int i = 0; i < OUTCOME_STATUS_COUNT; i++)
		textbuf_printf(b, "sbomd_outcomes_total{status=\"%s\"} %" PRIu64
			       "\n", outcome_status_name((enum outcome_status)i),
		    s->outcomes[i]);
	head(b, "sbomd_outcomes_delivered_total", "counter",
	    "Outbox messages acknowledged by Kafka.");
	textbuf_printf(b, "sbomd_outcomes_delivered_total %" PRIu64 "\n",
	    s->delivered);
	head(b, "sbomd_produce_errors_total", "counter",
	    "Failed produce calls and delivery reports (retried).");
	textbuf_printf(b, "sbomd_produce_errors_total %" PRIu64 "\n",
	    s->produce_errors);
	head(b, "sbomd_outbox_refused_total", "counter",
	    "Outcomes and dead letters Kafka refused for good (too large, "
	    "invalid): sent again without the SBOM or message (reduced), or "
	    "dropped.");
	textbuf_printf(b, "sbomd_outbox_refused_total{action=\"reduced\"} %"
	    PRIu64 "\n", s->outbox_reduced);
	textbuf_printf(b, "sbomd_outbox_refused_total{action=\"dropped\"} %"
	    PRIu64 "\n", s->outbox_dropped);
	head(b, "sbomd_outbox_messages", "gauge",
	    "Outcomes and dead letters not yet acknowledged by Kafka.");
	textbuf_printf(b, "sbomd_outbox_messages %" PRIu64 "\n", s->outbox);
	head(b, "sbomd_outbox_changelog_records", "gauge",
	    "Changelog records not yet acknowledged by Kafka.");
	textbuf_printf(b, "sbomd_outbox_changelog_records %" PRIu64 "\n",
	    s->outbox_changelog);
	head(b, "sbomd_outbox_changelog_bytes", "gauge",
	    "Bytes of those changelog records (bounded by "
	    "engine.max_changelog_bytes).");
	textbuf_printf(b, "sbomd_outbox_changelog_bytes %" PRIu64 "\n",
	    s->outbox_changelog_bytes);
}

static void
metrics_state(struct textbuf *b, const struct snapshot *s)
{
	head(b, "sbomd_entities", "gauge", "Tracked entities by state.");
	for (int i = 0; i < ENTRY_STATE_COUNT; i++)
		textbuf_printf(b, "sbomd_entities{state=\"%s\"} %" PRIu64 "\n",
		    entry_state_name((enum entry_state)i), s->by_state[i]);
	head(b, "sbomd_entities_limit", "gauge",
	    "state.max_entities: input is paused while the entities (all "
	    "states) reach it.");
	textbuf_printf(b, "sbomd_entities_limit %" PRIu64 "\n",
	    s->max_entities);
	head(b, "sbomd_input_paused_max_entities", "gauge",
	    "1 while the tracked entities are at state.max_entities.");
	textbuf_printf(b, "sbomd_input_paused_max_entities %d\n",
	    s->at_max_entities ? 1 : 0);
	head(b, "sbomd_events_clock_clamped_total", "counter",
	    "Events whose observed_at was more than dedup.max_clock_skew "
	    "ahead of now: applied as observed now.");
	textbuf_printf(b, "sbomd_events_clock_clamped_total %" PRIu64 "\n",
	    s->clock_clamped);
	head(b, "sbomd_clock_jumps_total", "counter",
	    "Jumps of the wall clock (1 s or more against the monotonic "
	    "clock); the due times moved with each.");
	textbuf_printf(b, "sbomd_clock_jumps_total %" PRIu64 "\n",
	    s->clock_jumps);
	head(b, "sbomd_sources_pruned_total", "counter",
	    "Source records of sources that UNSET an entity, dropped to make "
	    "room under dedup.max_sources / dedup.max_entity_bytes.");
	textbuf_printf(b, "sbomd_sources_pruned_total %" PRIu64 "\n",
	    s->sources_pruned);
	head(b, "sbomd_heap_entries", "gauge",
	    "Entries in the due heap (queued scans and forget timers).");
	textbuf_printf(b, "sbomd_heap_entries %" PRIu64 "\n", s->heap);
	head(b, "sbomd_next_due_seconds", "gauge",
	    "Seconds until the soonest heap entry is due (negative: "
	    "overdue; absent when the heap is empty).");
	if (s->next_due_ms != INT64_MIN)
		textbuf_printf(b, "sbomd_next_due_seconds %.3f\n",
		    (double)s->next_due_ms / 1000.0);
	head(b, "sbomd_oldest_pending_seconds", "gauge",
	    "How long the most overdue queued scan has waited past its due "
	    "time (the scan backlog; 0 when none is overdue).");
	textbuf_printf(b, "sbomd_oldest_pending_seconds %.3f\n",
	    (double)s->overdue_ms / 1000.0);
	hist_text(b, "sbomd_state_commit_duration_seconds",
	    "Duration of durable state commits (one per loop iteration with "
	    "changes).", &s->commit_duration);
	head(b, "sbomd_state_commits_total", "counter",
	    "Durable state commits.");
	textbuf_printf(b, "sbomd_state_commits_total %" PRIu64 "\n",
	    s->commits);
	head(b, "sbomd_state_commit_failures_total", "counter",
	    "State commits that failed (retried).");
	textbuf_printf(b, "sbomd_state_commit_failures_total %" PRIu64 "\n",
	    s->commit_failures);
}

/* Scale-out: ownership and the changelog (state.changelog_topic). */
static void
metrics_changelog(struct textbuf *b, const struct snapshot *s)
{
	head(b, "sbomd_partitions_owned", "gauge",
	    "Input partitions this instance works on (assigned and "
	    "restored).");
	textbuf_printf(b, "sbomd_partitions_owned %" PRIu64 "\n",
	    s->partitions_owned);
	head(b, "sbomd_restoring_partitions", "gauge",
	    "Partitions of the current assignment whose changelog is being "
	    "replayed or waits to be.");
	textbuf_printf(b, "sbomd_restoring_partitions %" PRIu64 "\n",
	    s->restoring);
	head(b, "sbomd_changelog_restored_total", "counter",
	    "Changelog records replayed into the state on assignment.");
	textbuf_printf(b, "sbomd_changelog_restored_total %" PRIu64 "\n",
	    s->restored_records);
	head(b, "sbomd_changelog_bad_records_total", "counter",
	    "Changelog records that did not decode: logged and skipped.");
	textbuf_printf(b, "sbomd_changelog_bad_records_total %" PRIu64 "\n",
	    s->bad_records);
	head(b, "sbomd_changelog_records_delivered_total", "counter",
	    "Changelog records acknowledged by the broker.");
	textbuf_printf(b,
	    "sbomd_changelog_records_delivered_total %" PRIu64 "\n",
	    s->changelog_delivered);
	head(b, "sbomd_entities_released_total", "counter",
	    "Entities released from memory with their revoked partition.");
	textbuf_printf(b, "sbomd_entities_released_total %" PRIu64 "\n",
	    s->released);
	if (s->exactly_once) {
		head(b, "sbomd_transactions_total", "counter",
		    "Kafka transactions (kafka.delivery = \"exactly-once\"): "
		    "committed, or aborted (the state was rewound to Kafka's "
		    "and the work is done again).");
		textbuf_printf(b, "sbomd_transactions_total{result="
		    "\"committed\"} %" PRIu64 "\n", s->txn_commits);
		textbuf_printf(b, "sbomd_transactions_total{result="
		    "\"aborted\"} %" PRIu64 "\n", s->txn_aborts);
	}
	head(b, "sbomd_changelog_checkpoint", "gauge",
	    "Per changelog partition: the offset its replay starts from "
	    "(owned=1 for the partitions this instance works on).");
	for (size_t i = 0; i < s->nckpts; i++)
		textbuf_printf(b,
		    "sbomd_changelog_checkpoint{partition=\"%d\",owned=\"%d\"} "
		    "%" PRId64 "\n", s->ckpts[i].partition,
		    s->ckpts[i].owned ? 1 : 0, s->ckpts[i].next);
}

static void
metrics_service(struct textbuf *b, const struct snapshot *s)
{
	head(b, "sbomd_input_paused", "gauge",
	    "1 while input is paused by backpressure or shutdown.");
	textbuf_printf(b, "sbomd_input_paused %d\n", s->paused ? 1 : 0);
	head(b, "sbomd_consumer_lag_messages", "gauge",
	    "Consumer lag per assigned input partition (librdkafka "
	    "statistics).");
	for (size_t i = 0; i < s->nlags; i++)
		if (s->lags[i].lag >= 0)
			textbuf_printf(b,
			    "sbomd_consumer_lag_messages{topic=\"%s\","
			    "partition=\"%d\"} %" PRId64 "\n",
			    s->topic, s->lags[i].partition, s->lags[i].lag);
	head(b, "sbomd_rebalances_total", "counter",
	    "Consumer group rebalances (assignments and revocations).");
	textbuf_printf(b, "sbomd_rebalances_total %" PRIu64 "\n",
	    s->rebalances);
	head(b, "sbomd_consumer_renewals_total", "counter",
	    "Group consumers replaced after a fatal error (a static member "
	    "fenced after a broker outage).");
	textbuf_printf(b, "sbomd_consumer_renewals_total %" PRIu64 "\n",
	    s->consumer_renewals);
	head(b, "sbomd_log_lines_suppressed_total", "counter",
	    "Repeated warnings and errors not printed (rate limit).");
	textbuf_printf(b, "sbomd_log_lines_suppressed_total %" PRIu64 "\n",
	    s->log_suppressed);
	head(b, "sbomd_ready", "gauge",
	    "1 when state is recovered, partitions are assigned and none is "
	    "being restored.");
	textbuf_printf(b, "sbomd_ready %d\n",
	    s->recovered && s->assigned && s->restoring == 0);
	metrics_changelog(b, s);
}

char *
http_metrics_text(const struct snapshot *s, size_t *len)
{
	struct textbuf b = { 0 };
	metrics_events(&b, s);
	metrics_scans(&b, s);
	metrics_outcomes(&b, s);
	metrics_state(&b, s);
	metrics_service(&b, s);
	return textbuf_take(&b, len);
}

/* ---- handlers ---- */

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *type, char *body,
    size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	char *b = xstrdup(text);
	return reply(c, status, "text/plain; charset=utf-8", b, strlen(b));
}

/* Posts a request to the engine and waits for its answer. */
static enum MHD_Result
ask_engine(http_server *h, struct MHD_Connection *c, struct pub_req *q,
    const char *type)
{
	struct publish *p = h->pub;
	pthread_mutex_lock(&p->mu);
	q->next = p->reqs;
	p->reqs = q;
	pthread_mutex_unlock(&p->mu);
	if (p->wake_fd >= 0)
		(void)!write(p->wake_fd, "h", 1);

	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += HTTP_WAIT_MS / 1000;
	pthread_mutex_lock(&p->mu);
	while (!q->done) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
			break;
	}
	if (!q->done) {
		q->abandoned = true; /* the engine frees it */
		pthread_mutex_unlock(&p->mu);
		return reply_text(c, 503, "the engine did not answer in time\n");
	}
	pthread_mutex_unlock(&p->mu);
	enum MHD_Result r = reply(c, (unsigned)q->status, q->plain ?
	    "text/plain; charset=utf-8" : type, q->body, q->len);
	free(q);
	return r;
}

/* /status?limit=N&after=CURSOR: the engine reads them (views.h). */
static enum MHD_Result
ask_status(http_server *h, struct MHD_Connection *c)
{
	const char *limit = MHD_lookup_connection_value(c,
	    MHD_GET_ARGUMENT_KIND, "limit");
	const char *after = MHD_lookup_connection_value(c,
	    MHD_GET_ARGUMENT_KIND, "after");
	struct pub_req *q = xcalloc(1, sizeof(*q));
	if ((limit && strlen(limit) >= sizeof(q->limit)) ||
	    (after && strlen(after) >= sizeof(q->after))) {
		free(q);
		return reply_text(c, 400, limit && strlen(limit) >=
		    sizeof(q->limit) ? "limit: too long for a number of "
		    "entities\n" : "after: too long for a cursor (want SLOT "
		    "or SLOT:ID, as in a page's next link)\n");
	}
	q->kind = PUB_REQ_STATUS;
	q->has_limit = limit != NULL;
	q->has_after = after != NULL;
	snprintf(q->limit, sizeof(q->limit), "%s", limit ? limit : "");
	snprintf(q->after, sizeof(q->after), "%s", after ? after : "");
	return ask_engine(h, c, q, "text/html; charset=utf-8");
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	http_server *h = cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply_text(c, 405, "only GET\n");

	struct snapshot s;
	pthread_mutex_lock(&h->pub->mu);
	s = h->pub->snap;
	pthread_mutex_unlock(&h->pub->mu);

	if (strcmp(url, "/metrics") == 0) {
		size_t len;
		char *text = http_metrics_text(&s, &len);
		return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
		    text, len);
	}
	if (strcmp(url, "/healthz") == 0) {
		int64_t age = clock_mono_ms() - s.taken_mono_ms;
		if (s.taken_mono_ms == 0 || age > HEALTH_STALE_MS)
			return reply_text(c, 503, "engine loop stalled\n");
		return reply_text(c, 200, "ok\n");
	}
	if (strcmp(url, "/readyz") == 0) {
		if (!s.recovered)
			return reply_text(c, 503, "recovering state\n");
		if (!s.assigned)
			return reply_text(c, 503, "no partitions assigned\n");
		if (s.commit_error[0] != '\0') {
			char msg[360];
			snprintf(msg, sizeof(msg), "state commit failing, "
			    "retried every second: %s\n", s.commit_error);
			return reply_text(c, 503, msg);
		}
		if (s.restoring > 0)
			return reply_text(c, 503, "restoring partitions from "
			    "the changelog\n");
		if (s.changelog_error[0] != '\0') {
			char msg[320];
			snprintf(msg, sizeof(msg), "changelog unavailable: %s\n",
			    s.changelog_error);
			return reply_text(c, 503, msg);
		}
		return reply_text(c, 200, "ready\n");
	}
	if (strncmp(url, "/api/v1/entities/", 17) == 0 && url[17] != '\0') {
		struct pub_req *q = xcalloc(1, sizeof(*q));
		q->kind = PUB_REQ_ENTITY;
		snprintf(q->id, sizeof(q->id), "%s", url + 17);
		return ask_engine(h, c, q, "application/json");
	}
	if (strcmp(url, "/status") == 0 || strcmp(url, "/") == 0)
		return ask_status(h, c);
	return reply_text(c, 404,
	    "not found; try /status, /metrics, /healthz, /readyz, "
	    "/api/v1/entities/{id}\n");
}

http_server *
http_start(const char *listen, const struct http_limits *lim,
    struct publish *pub, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (colon == NULL || colon[1] == '\0') {
		errbuf_set(err, errlen, "http.listen \"%s\": want host:port",
		    listen);
		return NULL;
	}
	size_t hl = (size_t)(colon - listen);
	if (hl >= sizeof(host))
		hl = sizeof(host) - 1;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (*end != '\0' || port < 0 || port > 65535) {
		errbuf_set(err, errlen, "http.listen \"%s\": bad port", listen);
		return NULL;
	}
	if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errbuf_set(err, errlen, "http.listen \"%s\": %s is not an IPv4 "
		    "address", listen, host);
		return NULL;
	}
	unsigned limit = lim->max_connections;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)limit + 2 * FD_RESERVE) {
		unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ?
		    (unsigned)(rl.rlim_cur - FD_RESERVE) : FD_RESERVE / 2;
		if (fit < limit) {
			char want[24], got[24], nofile[24];
			snprintf(want, sizeof(want), "%u", limit);
			snprintf(got, sizeof(got), "%u", fit);
			snprintf(nofile, sizeof(nofile), "%llu",
			    (unsigned long long)rl.rlim_cur);
			log_kv(LOG_WARN, "http.max_connections lowered to fit "
			    "the open-file limit", "configured", want, "used",
			    got, "nofile", nofile, (char *)NULL);
			limit = fit;
		}
	}
	http_server *h = xcalloc(1, sizeof(*h));
	h->pub = pub;
	h->d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_ERROR_LOG,
	    (uint16_t)port, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, lim->timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		errbuf_set(err, errlen, "http.listen \"%s\": cannot listen "
		    "(address in use?)", listen);
		free(h);
		return NULL;
	}
	return h;
}

void
http_stop(http_server *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
