/*
 * demo: `sbomd demo [DIR]` plays the scenario sbomd exists for through
 * the real scheduling engine (tracker) and the real durable state (LMDB in
 * DIR), with a simulated clock and a stand-in scanner whose image store is
 * a list of "pulled" images. It prints every outcome as the service will
 * publish it, then restarts from DIR to show that the retry schedule
 * survived. Single-threaded.
 */
#include "service/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tracker.h"
#include "store/store.h"
#include "util/digest.h"
#include "util/duration.h"

#define SEC 1000LL

static const char *NGINX =
    "sha256:4b7ce07a0b1a5e8ab1ee2ab7b0fd5c8bd2d2cda8e5cd3c3b6b1e8b0f2a3c4d5e";
static const char *APP =
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char *OLD =
    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

struct demo {
	tracker *t;
	store *s;
	int64_t now;
	int64_t start;
	bool app_pulled;
	int scans;
};

static void
print_outcome(struct demo *d, const struct tracker_outcome *o)
{
	char id[300], next[64] = "";
	if (o->status == OUTCOME_NONE)
		return;
	tracker_id_string(d->t, o->handle, id, sizeof(id));
	if (o->next_attempt_at >= 0) {
		char dur[32];
		duration_format(o->next_attempt_at - d->now, dur, sizeof(dur));
		snprintf(next, sizeof(next), " next attempt in %s", dur);
	}
	printf("  t=%4llds  %-16s %.19s... attempt %u%s%s%s\n",
	    (long long)((d->now - d->start) / SEC),
	    tracker_status_name(o->status), id, o->attempt, next,
	    o->error ? "  error: " : "", o->error ? o->error : "");
}

static void
event(struct demo *d, enum event_type type, enum entity_kind kind,
    const char *id, const char *source, const char *tag)
{
	const char *tags[1] = {tag};
	struct tracker_event ev = {.type = type, .kind = kind, .id = id,
	    .source = source, .tags = tags, .ntags = tag ? 1 : 0,
	    .observed_at = d->now};
	struct tracker_outcome out;
	char err[256];
	enum apply_result r = tracker_apply(d->t, &ev, d->now, &out, err,
	    sizeof(err));
	printf("  t=%4llds  event %-5s %-9s %.19s... from %-7s -> %s\n",
	    (long long)((d->now - d->start) / SEC),
	    type == EVENT_SET ? "SET" : "UNSET",
	    kind == ENTITY_HOST ? "host" : "image", id, source,
	    tracker_apply_name(r));
	print_outcome(d, &out);
}

/* The stand-in scanner: images are "present" once pulled; hosts fail. */
static void
scan(struct demo *d, const struct tracker_job *job)
{
	char id[300];
	tracker_id_string(d->t, job->handle, id, sizeof(id));
	struct tracker_result r = {.ok = true};
	if (job->key.kind == ENTITY_HOST) {
		r = (struct tracker_result){.ok = false,
		    .error_class = ERROR_RETRYABLE,
		    .error = "host root /host is not mounted"};
	} else if (strcmp(id, APP) == 0 && !d->app_pulled) {
		r = (struct tracker_result){.ok = false,
		    .error_class = ERROR_RETRYABLE,
		    .error = "image not found in any store"};
	} else if (strcmp(id, OLD) == 0) {
		r = (struct tracker_result){.ok = false,
		    .error_class = ERROR_RETRYABLE,
		    .error = "registry unreachable"};
	}
	d->scans++;
	struct tracker_outcome out;
	tracker_complete(d->t, job->handle, job->attempt, &r, d->now, &out);
	print_outcome(d, &out);
}

static int
commit(struct demo *d)
{
	char err[512];
	if (store_commit(d->s, d->t, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd demo: %s\n", err);
		return -1;
	}
	return 0;
}

/* Runs due scans until the clock reaches until. */
static int
run_until(struct demo *d, int64_t until)
{
	for (;;) {
		struct tracker_job job;
		while (tracker_pop_due(d->t, d->now, &job) == 1)
			scan(d, &job);
		if (commit(d) != 0)
			return -1;
		int64_t due;
		if (tracker_next_due(d->t, &due) != 0 || due > until) {
			d->now = until;
			return 0;
		}
		d->now = due > d->now ? due : d->now;
	}
}

static int
open_state(struct demo *d, const char *dir)
{
	struct tracker_config cfg;
	struct store_recovery rec;
	char err[512];
	tracker_config_defaults(&cfg);
	cfg.retry.base_ms = 5 * SEC; /* shortened for the demo */
	cfg.retry.max_ms = 60 * SEC;
	cfg.retry.jitter = 0.1;
	d->t = tracker_new(&cfg);
	if (store_open(dir, NULL, &d->s, err, sizeof(err)) != 0 ||
	    store_recover(d->s, d->t, d->now, &rec, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd demo: %s\n", err);
		return -1;
	}
	printf("  state %s: %zu entities recovered (%zu requeued) in %.3f s\n",
	    dir, rec.entries, rec.requeued, rec.seconds);
	return 0;
}

int
demo_main(int argc, char **argv)
{
	char tmpl[] = "/tmp/sbomd-demo.XXXXXX";
	const char *dir = argc > 1 ? argv[1] : NULL;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf("usage: sbomd demo [STATE_DIR]\n"
		    "Plays the motivating scenario through the scheduling "
		    "engine and durable state, with a simulated clock.\n");
		return 0;
	}
	if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
		perror("sbomd demo: mkdtemp");
		return 1;
	}
	struct demo d = {.now = 1767225600000LL};
	d.start = d.now;
	if (open_state(&d, dir) != 0)
		return 1;

	printf("\n1. one image reported by three nodes is scanned once\n");
	event(&d, EVENT_SET, ENTITY_IMAGE, NGINX, "node-1", "nginx:1.27");
	event(&d, EVENT_SET, ENTITY_IMAGE, NGINX, "node-2", "nginx:1.27");
	event(&d, EVENT_SET, ENTITY_IMAGE, NGINX, "node-3", "nginx:1.27");
	event(&d, EVENT_SET, ENTITY_IMAGE, NGINX, "node-1", "nginx:1.27");
	if (run_until(&d, d.now + SEC) != 0)
		return 1;

	printf("\n2. an image not pulled yet is retried with backoff, then "
	       "pulled\n");
	event(&d, EVENT_SET, ENTITY_IMAGE, APP, "node-1", "shop/app:2.3");
	if (run_until(&d, d.now + 40 * SEC) != 0)
		return 1;

	printf("\n   restart: close and reopen the state (as after kill -9)\n");
	store_close(d.s);
	tracker_free(d.t);
	if (open_state(&d, dir) != 0)
		return 1;
	int64_t due = -1;
	tracker_next_due(d.t, &due);
	printf("  the retry is still due at t=%llds, not now\n",
	    (long long)((due - d.start) / SEC));
	d.app_pulled = true;
	printf("  (the image is pulled into the store)\n");
	if (run_until(&d, d.now + 120 * SEC) != 0)
		return 1;

	printf("\n3. an image whose every reference goes while retrying is "
	       "cancelled\n");
	event(&d, EVENT_SET, ENTITY_IMAGE, OLD, "node-2", "legacy:0.9");
	if (run_until(&d, d.now + 8 * SEC) != 0)
		return 1;
	event(&d, EVENT_UNSET, ENTITY_IMAGE, OLD, "node-2", NULL);
	if (run_until(&d, d.now + 200 * SEC) != 0)
		return 1;

	printf("\n4. a host is scanned; its failure is not retried\n");
	event(&d, EVENT_SET, ENTITY_HOST, "node-7", "node-7", NULL);
	if (run_until(&d, d.now + 300 * SEC) != 0)
		return 1;

	printf("\n%d scans in %llds of simulated time; pending now: %zu\n",
	    d.scans, (long long)((d.now - d.start) / SEC),
	    tracker_count_state(d.t, ENTRY_QUEUED));
	store_close(d.s);
	tracker_free(d.t);
	if (argc <= 1) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "sbomd demo: could not remove %s\n",
			    dir);
	}
	return 0;
}
