/*
 * state_cmd: `sbomd state list|show|stats`, the durable state as an
 * operator asks about it. Opens state.dir read-only (LMDB readers do not
 * block the running service's writer), loads it into a private tracker
 * exactly as a restart would, and prints from that snapshot.
 *
 *   list   pending entities (QUEUED and SCANNING), soonest due first:
 *          id, state, attempts, due time, last error; --all adds the rest
 *   show   one entity, every field and every source's refs; --json prints
 *          the same JSON as the HTTP entity API (views.c)
 *   stats  counts by state, how many are overdue, the most common errors
 */
#include "service/state_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tracker.h"
#include "service/config.h"
#include "service/statedir.h"
#include "service/views.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/xmalloc.h"

static void
state_usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd state [-c FILE] [--dir DIR] list [--all] [--limit N]\n"
	    "       sbomd state [-c FILE] [--dir DIR] show [--json] ID\n"
	    "       sbomd state [-c FILE] [--dir DIR] stats\n"
	    "\n"
	    "Reads the durable state (state.dir of the configuration, or --dir)\n"
	    "read-only; safe while `sbomd run` is running.\n"
	    "\n"
	    "  list   pending entities, soonest due first: id, state, attempts,\n"
	    "         due (and how far off), last error; --all lists every\n"
	    "         entity, --limit N at most N lines (default 100)\n"
	    "  show   one entity by image ID (sha256:...) or host name; --json\n"
	    "         prints it as the HTTP API does\n"
	    "  stats  counts by state, overdue entries, the most common errors\n"
	    "\n"
	    "exit status: 0, 1 state unreadable, 2 usage error, 3 no such entity\n");
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
	char when[128];
	view_when(s->observed_at, now, when, sizeof(when));
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

struct state_args {
	const char *cfgpath, *dir, *verb, *arg;
	bool all, json, help;
	long limit;
};

/* 0 (a->help set for --help), or -EINVAL after the usage was printed. */
static int
parse_args(int argc, char **argv, struct state_args *a)
{
	*a = (struct state_args){ .limit = 100 };
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
			a->help = true;
			return 0;
		} else if ((strcmp(s, "-c") == 0 ||
			       strcmp(s, "--config") == 0) && has_value) {
			a->cfgpath = argv[++i];
		} else if (strcmp(s, "--dir") == 0 && has_value) {
			a->dir = argv[++i];
		} else if (strcmp(s, "--all") == 0) {
			a->all = true;
		} else if (strcmp(s, "--json") == 0) {
			a->json = true;
		} else if (strcmp(s, "--limit") == 0 && has_value) {
			a->limit = strtol(argv[++i], NULL, 10);
		} else if (s[0] == '-') {
			fprintf(stderr, "sbomd state: unknown argument \"%s\"\n",
			    s);
			state_usage(stderr);
			return -EINVAL;
		} else if (a->verb == NULL) {
			a->verb = s;
		} else if (a->arg == NULL) {
			a->arg = s;
		} else {
			state_usage(stderr);
			return -EINVAL;
		}
	}
	bool show = a->verb != NULL && strcmp(a->verb, "show") == 0;
	if (a->verb == NULL || (!show && strcmp(a->verb, "list") != 0 &&
				   strcmp(a->verb, "stats") != 0) ||
	    show != (a->arg != NULL)) {
		state_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int
show(const tracker *t, const struct state_args *a, int64_t now)
{
	uint32_t h = view_find_entity(t, a->arg);
	if (h == TRACKER_NONE) {
		fprintf(stderr, "sbomd state: %s: no such entity in %s\n",
		    a->arg, a->dir);
		return 3;
	}
	if (a->json) {
		json_t *o = view_entity_json(t, h, -1);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		putchar('\n');
		json_decref(o);
		return 0;
	}
	struct tracker_info in;
	char id[300], when[128];
	tracker_info_get(t, h, &in);
	tracker_id_string(t, h, id, sizeof(id));
	printf("id          %s\n", id);
	printf("kind        %s\n",
	    entity_kind_name((enum entity_kind)in.key.kind));
	printf("state       %s\n", entry_state_name(in.state));
	printf("attempts    %u\n", in.attempts);
	view_when(in.in_heap ? in.due : -1, now, when, sizeof(when));
	printf("%s  %s\n", in.state == ENTRY_QUEUED ? "next due  " :
						      "forget at ", when);
	view_when(in.first_seen, now, when, sizeof(when));
	printf("first seen  %s\n", when);
	view_when(in.last_scan, now, when, sizeof(when));
	printf("last scan   %s\n", when);
	printf("last error  %s\n", in.last_error ? in.last_error : "-");
	printf("partition   %d\n", in.partition);
	printf("referenced  %s\n", in.referenced ? "yes" : "no");
	tracker_sources(t, h, print_source, &now);
	return 0;
}

static void
list(const tracker *t, const struct collect *c, long limit, int64_t now)
{
	printf("%-71s %-9s %8s  %-40s %s\n", "ID", "STATE", "ATTEMPTS", "DUE",
	    "LAST ERROR");
	for (size_t i = 0; i < c->n && (limit <= 0 || (long)i < limit); i++) {
		struct tracker_info in;
		char id[300], when[128];
		tracker_info_get(t, c->v[i].handle, &in);
		tracker_id_string(t, c->v[i].handle, id, sizeof(id));
		view_when(in.state == ENTRY_QUEUED ? in.due : -1, now, when,
		    sizeof(when));
		printf("%-71s %-9s %8u  %-40s %s\n", id,
		    entry_state_name(in.state), in.attempts, when,
		    in.last_error ? in.last_error : "-");
	}
	if (limit > 0 && c->n > (size_t)limit)
		printf("... %zu more (--limit)\n", c->n - (size_t)limit);
}

/* Counts one more occurrence of text in errs[0..*n). */
static void
count_error(struct errcount **errs, size_t *n, const char *text)
{
	for (size_t j = 0; j < *n; j++)
		if (strcmp((*errs)[j].text, text) == 0) {
			(*errs)[j].n++;
			return;
		}
	*errs = xreallocarray(*errs, *n + 1, sizeof(**errs));
	(*errs)[(*n)++] = (struct errcount){ xstrdup(text), 1 };
}

/* Scale-out: who holds the directory, and per partition its entities and
 * changelog checkpoint. */
static void
ownership(store *st, const tracker *t, const char *dir)
{
	long pid;
	char id[64];
	FILE *f;
	char path[4200];
	snprintf(path, sizeof(path), "%s/instance-id", dir);
	id[0] = '\0';
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(id, sizeof(id), f) == NULL)
			id[0] = '\0';
		id[strcspn(id, "\n")] = '\0';
		fclose(f);
	}
	printf("instance    %s\n", id[0] ? id : "(none yet)");
	if (statedir_holder(dir, &pid))
		printf("held by     sbomd run, pid %ld\n", pid);
	else
		printf("held by     nobody (no sbomd run on this directory)\n");
	int32_t *parts = NULL;
	size_t np = 0;
	if (store_partitions(st, &parts, &np) != 0)
		np = 0;
	printf("partitions  %zu with entities (checkpoint: where a replay of "
	    "the changelog starts)\n", np);
	for (size_t i = 0; i < np; i++) {
		char name[48];
		uint8_t v[8];
		size_t len;
		snprintf(name, sizeof(name), "changelog/%d/next", parts[i]);
		printf("  %-6d %8zu entities", parts[i],
		    tracker_count_partition(t, parts[i]));
		if (store_meta_get(st, name, v, sizeof(v), &len) == 0 &&
		    len == 8) {
			uint64_t next = 0;
			for (int b = 0; b < 8; b++)
				next = next << 8 | v[b];
			printf("  checkpoint %llu\n", (unsigned long long)next);
		} else {
			printf("  no checkpoint\n");
		}
	}
	free(parts);
}

static void
stats(const tracker *t, const struct collect *c, size_t outbox, int64_t now)
{
	size_t overdue = 0, queued = 0, nerrs = 0;
	struct errcount *errs = NULL;
	for (size_t i = 0; i < c->n; i++) {
		struct tracker_info in;
		tracker_info_get(t, c->v[i].handle, &in);
		if (in.state == ENTRY_QUEUED) {
			queued++;
			if (in.due <= now)
				overdue++;
		}
		if (in.last_error != NULL && (in.state == ENTRY_QUEUED ||
						 in.state == ENTRY_FAILED))
			count_error(&errs, &nerrs, in.last_error);
	}
	printf("entities    %zu\n", tracker_count(t));
	for (int s = 0; s < ENTRY_STATE_COUNT; s++)
		printf("  %-9s %zu\n", entry_state_name((enum entry_state)s),
		    tracker_count_state(t, (enum entry_state)s));
	printf("overdue     %zu of %zu queued (due now or earlier)\n",
	    overdue, queued);
	printf("outbox      %zu records not yet in Kafka (outcomes, dead "
	    "letters, changelog records)\n", outbox);
	if (nerrs > 1)
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

int
state_main(int argc, char **argv)
{
	struct state_args a;
	if (parse_args(argc, argv, &a) != 0)
		return 2;
	if (a.help) {
		state_usage(stdout);
		return 0;
	}
	int rc;

	struct sbomd_config cfg;
	char err[1024];
	if (config_load(&cfg, a.cfgpath, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd state: configuration: %s\n", err);
		return 2;
	}
	if (a.dir == NULL)
		a.dir = cfg.state.dir;
	struct tracker_config tc;
	config_to_tracker(&cfg, &tc);
	tracker *t = tracker_new(&tc);
	store *st = NULL;
	struct store_options so = { .read_only = 1 };
	int64_t now = clock_wall_ms();
	struct store_recovery rec;
	rc = 1;
	if (store_open(a.dir, &so, &st, err, sizeof(err)) != 0 ||
	    store_recover(st, t, now, &rec, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd state: %s\n", err);
		goto out;
	}
	if (strcmp(a.verb, "show") == 0) {
		rc = show(t, &a, now);
		goto out;
	}
	struct collect c = { t, NULL, 0, 0,
		a.all || strcmp(a.verb, "stats") == 0 };
	tracker_foreach(t, collect_one, &c);
	if (c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), row_cmp);
	if (strcmp(a.verb, "list") == 0)
		list(t, &c, a.limit, now);
	else {
		stats(t, &c, rec.outbox, now);
		ownership(st, t, a.dir);
	}
	free(c.v);
	rc = 0;
out:
	store_close(st);
	tracker_free(t);
	config_free(&cfg);
	return rc;
}
