/*
 * state_cmd: `sbomd state list|show|stats`, the durable state as an
 * operator asks about it. Opens state.dir read-only (LMDB readers do not
 * block the running service's writer), loads it into a private tracker
 * exactly as a restart would, and prints from that snapshot.
 *
 *   list   pending entities (QUEUED and SCANNING), soonest due first:
 *          id, state, attempts, due time, last error; --all adds the rest
 *   show   one entity, every field and every source's refs
 *   stats  counts by state, how many are overdue, the most common errors
 */
#include "service/run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tracker.h"
#include "service/config.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/digest.h"
#include "util/duration.h"
#include "util/xmalloc.h"

static void
state_usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd state [-c FILE] [--dir DIR] list [--all] [--limit N]\n"
	    "       sbomd state [-c FILE] [--dir DIR] show ID\n"
	    "       sbomd state [-c FILE] [--dir DIR] stats\n"
	    "\n"
	    "Reads the durable state (state.dir of the configuration, or --dir)\n"
	    "read-only; safe while `sbomd run` is running.\n"
	    "\n"
	    "  list   pending entities, soonest due first: id, state, attempts,\n"
	    "         due (and how far off), last error; --all lists every\n"
	    "         entity, --limit N at most N lines (default 100)\n"
	    "  show   one entity by image ID (sha256:...) or host name\n"
	    "  stats  counts by state, overdue entries, the most common errors\n"
	    "\n"
	    "exit status: 0, 1 state unreadable, 2 usage error, 3 no such entity\n");
}

static void
fmt_when(int64_t ms, int64_t now, char *buf, size_t len)
{
	if (ms < 0) {
		snprintf(buf, len, "-");
		return;
	}
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char rel[32];
	int64_t d = ms >= now ? ms - now : now - ms;
	if (d >= 1000)
		d -= d % 1000; /* whole seconds read better */
	duration_format(d, rel, sizeof(rel));
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ (%s%s)",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ms >= now ? "in " : "", rel);
	if (ms < now)
		snprintf(buf + strlen(buf) - 1, len - strlen(buf) + 1,
		    " ago)");
}

struct row {
	uint32_t handle;
	int64_t due;
	int state;
};

struct collect {
	const tracker *t;
	struct row *v;
	size_t n, cap;
	bool all;
};

static void
collect_one(void *ctx, uint32_t h)
{
	struct collect *c = ctx;
	struct tracker_info in;
	if (tracker_info_get(c->t, h, &in) != 0)
		return;
	bool pending = in.state == ENTRY_QUEUED || in.state == ENTRY_SCANNING;
	if (!pending && !c->all)
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
	}
	c->v[c->n++] = (struct row){ h, pending ? in.due : INT64_MAX,
		(int)in.state };
}

static int
row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->handle < y->handle ? -1 : x->handle > y->handle;
}

static void
print_source(void *ctx, const struct tracker_source_info *s)
{
	int64_t now = *(int64_t *)ctx;
	char when[80];
	fmt_when(s->observed_at, now, when, sizeof(when));
	printf("  source %s: %s, observed %s\n", s->source,
	    s->holding ? "holding" : "released", when);
	for (size_t i = 0; i < s->ntags; i++)
		printf("    tag    %.*s\n", (int)s->tag_lens[i], s->tags[i]);
	for (size_t i = 0; i < s->ndigests; i++)
		printf("    digest %.*s\n", (int)s->digest_lens[i],
		    s->digests[i]);
}

struct errcount {
	char *text;
	size_t n;
};

static int
err_cmp(const void *a, const void *b)
{
	const struct errcount *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->text, y->text);
}

int
state_main(int argc, char **argv)
{
	const char *cfgpath = NULL, *dir = NULL, *verb = NULL, *arg = NULL;
	bool all = false;
	long limit = 100;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			state_usage(stdout);
			return 0;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) &&
		    i + 1 < argc) {
			cfgpath = argv[++i];
		} else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(a, "--all") == 0) {
			all = true;
		} else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
			limit = strtol(argv[++i], NULL, 10);
		} else if (a[0] == '-') {
			fprintf(stderr, "sbomd state: unknown argument \"%s\"\n",
			    a);
			state_usage(stderr);
			return 2;
		} else if (verb == NULL) {
			verb = a;
		} else if (arg == NULL) {
			arg = a;
		} else {
			state_usage(stderr);
			return 2;
		}
	}
	if (verb == NULL || (strcmp(verb, "list") != 0 &&
				strcmp(verb, "show") != 0 &&
				strcmp(verb, "stats") != 0) ||
	    (strcmp(verb, "show") == 0) != (arg != NULL)) {
		state_usage(stderr);
		return 2;
	}

	struct sbomd_config cfg;
	char err[1024];
	if (config_load(&cfg, cfgpath, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd state: configuration: %s\n", err);
		return 2;
	}
	if (dir == NULL)
		dir = cfg.state.dir;
	struct tracker_config tc;
	config_to_tracker(&cfg, &tc);
	tracker *t = tracker_new(&tc);
	store *st = NULL;
	struct store_options so = { .read_only = 1 };
	int rc = 1;
	int64_t now = clock_wall_ms();
	struct store_recovery rec;
	if (store_open(dir, &so, &st, err, sizeof(err)) != 0 ||
	    store_recover(st, t, now, &rec, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd state: %s\n", err);
		goto out;
	}

	if (strcmp(verb, "show") == 0) {
		struct tracker_key key;
		uint32_t h = TRACKER_NONE;
		if (tracker_key_from_id(ENTITY_IMAGE, arg, &key, NULL, 0) == 0)
			h = tracker_find(t, &key);
		if (h == TRACKER_NONE &&
		    tracker_key_from_id(ENTITY_HOST, arg, &key, NULL, 0) == 0)
			h = tracker_find(t, &key);
		if (h == TRACKER_NONE) {
			fprintf(stderr, "sbomd state: %s: no such entity in "
			    "%s\n", arg, dir);
			rc = 3;
			goto out;
		}
		struct tracker_info in;
		tracker_info_get(t, h, &in);
		char id[300], when[80];
		tracker_id_string(t, h, id, sizeof(id));
		printf("id          %s\n", id);
		printf("kind        %s\n", in.key.kind == ENTITY_HOST ?
			"HOST" : "CONTAINER_IMAGE");
		printf("state       %s\n", entry_state_name(in.state));
		printf("attempts    %u\n", in.attempts);
		fmt_when(in.in_heap ? in.due : -1, now, when, sizeof(when));
		printf("%s  %s\n", in.state == ENTRY_QUEUED ? "next due  " :
			"forget at ", when);
		fmt_when(in.first_seen, now, when, sizeof(when));
		printf("first seen  %s\n", when);
		fmt_when(in.last_scan, now, when, sizeof(when));
		printf("last scan   %s\n", when);
		printf("last error  %s\n", in.last_error ? in.last_error : "-");
		printf("partition   %d\n", in.partition);
		printf("referenced  %s\n", in.referenced ? "yes" : "no");
		tracker_sources(t, h, print_source, &now);
		rc = 0;
		goto out;
	}

	struct collect c = { t, NULL, 0, 0, all || strcmp(verb, "stats") == 0 };
	tracker_foreach(t, collect_one, &c);
	qsort(c.v, c.n, sizeof(*c.v), row_cmp);

	if (strcmp(verb, "list") == 0) {
		printf("%-71s %-9s %8s  %-36s %s\n", "ID", "STATE", "ATTEMPTS",
		    "DUE", "LAST ERROR");
		for (size_t i = 0; i < c.n && (limit <= 0 || (long)i < limit);
		     i++) {
			struct tracker_info in;
			tracker_info_get(t, c.v[i].handle, &in);
			char id[300], when[80];
			tracker_id_string(t, c.v[i].handle, id, sizeof(id));
			bool pending = in.state == ENTRY_QUEUED;
			fmt_when(pending ? in.due : -1, now, when,
			    sizeof(when));
			printf("%-71s %-9s %8u  %-36s %s\n", id,
			    entry_state_name(in.state), in.attempts, when,
			    in.last_error ? in.last_error : "-");
		}
		if (limit > 0 && c.n > (size_t)limit)
			printf("... %zu more (--limit)\n", c.n - (size_t)limit);
	} else {
		size_t overdue = 0, queued = 0;
		struct errcount *errs = NULL;
		size_t nerrs = 0;
		for (size_t i = 0; i < c.n; i++) {
			struct tracker_info in;
			tracker_info_get(t, c.v[i].handle, &in);
			if (in.state == ENTRY_QUEUED) {
				queued++;
				if (in.due <= now)
					overdue++;
			}
			if (in.last_error == NULL ||
			    (in.state != ENTRY_QUEUED && in.state != ENTRY_FAILED))
				continue;
			size_t j;
			for (j = 0; j < nerrs; j++)
				if (strcmp(errs[j].text, in.last_error) == 0)
					break;
			if (j == nerrs) {
				errs = xreallocarray(errs, nerrs + 1,
				    sizeof(*errs));
				errs[nerrs++] = (struct errcount){
					xstrdup(in.last_error), 0 };
			}
			errs[j].n++;
		}
		printf("entities    %zu\n", tracker_count(t));
		for (int s = ENTRY_QUEUED; s <= ENTRY_CANCELLED; s++)
			printf("  %-9s %zu\n",
			    entry_state_name((enum entry_state)s),
			    tracker_count_state(t, (enum entry_state)s));
		printf("overdue     %zu of %zu queued (due now or earlier)\n",
		    overdue, queued);
		printf("outbox      %zu outcomes not yet in Kafka\n",
		    rec.outbox);
		qsort(errs, nerrs, sizeof(*errs), err_cmp);
		printf("errors of retrying and failed entities:\n");
		for (size_t j = 0; j < nerrs; j++) {
			if (j < 10)
				printf("  %6zu  %s\n", errs[j].n, errs[j].text);
			free(errs[j].text);
		}
		if (nerrs == 0)
			printf("  none\n");
		free(errs);
	}
	free(c.v);
	rc = 0;
out:
	store_close(st);
	tracker_free(t);
	config_free(&cfg);
	return rc;
}
