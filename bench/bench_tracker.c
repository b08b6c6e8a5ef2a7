/*
 * bench_tracker: single-threaded throughput and memory of the tracker.
 *
 *   bench_tracker [N] [RUNS]      (defaults: 1000000 entries, 5 runs)
 *
 * Figures (each the median of RUNS runs, a fresh tracker per run):
 *   set_new      SET of N new image ids (one source, one tag each)
 *   set_dedup    SET of the same N events again, in shuffled order
 *                (known id, same source and refs: deduplicated)
 *   batch_new, batch_dedup
 *                the same through tracker_apply_batch, 1,000 events a
 *                batch (the engine applies a poll batch this way)
 *   pop_retry    with N queued: pop a due entry, fail it (retryable),
 *                which reschedules it with backoff (tracker API)
 *   heap_cycle   the due heap alone: pop the minimum and push it back later
 *   wide_4000    one image gaining 4,000 sources, one SET each (one tag):
 *                sources added per second, and the time of the last 100
 *                (adding a source must not cost a rebuild of the entity)
 *   bytes/entry  RSS growth after set_new, divided by N
 * Each event's strings are generated inside the timed loop into one small
 * buffer, as a decoder would hand them over (hot in cache): the figures
 * include that generation. Entities are visited in insertion order for
 * set_new and in a shuffled order for set_dedup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>
#include <unistd.h>

#include "core/dueheap.h"
#include "core/tracker.h"
#include "util/digest.h"

#include "benchutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static long
rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

#define BATCH 1000

struct batch {
	char ids[BATCH][DIGEST_STR_LEN];
	char tags[BATCH][48];
	const char *tagp[BATCH];
	struct tracker_event ev[BATCH];
	struct tracker_batch_item items[BATCH];
};

/* Applies entities idx[0..n) (n <= BATCH) as one batch. */
static void
apply_batch(tracker *t, struct batch *b, const size_t *idx, size_t n,
    int64_t now)
{
	for (size_t k = 0; k < n; k++) {
		make_event(idx[k], b->ids[k], b->tags[k]);
		b->tagp[k] = b->tags[k];
		b->ev[k] = (struct tracker_event){
			.type = EVENT_SET, .kind = ENTITY_IMAGE,
			.id = b->ids[k], .source = "node-0001.cluster.local",
			.tags = &b->tagp[k], .ntags = 1, .observed_at = T0,
		};
		b->items[k].ev = &b->ev[k];
	}
	tracker_apply_batch(t, b->items, n, now);
	for (size_t k = 0; k < n; k++) {
		if (b->items[k].result > APPLY_DEDUP) {
			fprintf(stderr, "unexpected: %s\n", b->items[k].err);
			exit(1);
		}
	}
	tracker_clear_dirty(t); /* as the store's commit would */
}

/* One image gaining nsrc sources (one tag each): the seconds it takes,
 * and in *tail those of the last 100. */
static double
wide_entity(const struct tracker_config *cfg, size_t nsrc, double *tail)
{
	tracker *t = tracker_new(cfg);
	char id[DIGEST_STR_LEN], tagbuf[48], src[48];
	make_event(7, id, tagbuf);
	const char *tag = tagbuf;
	struct tracker_outcome out;
	char err[128];
	double t0 = now_s(), tstart = 0;
	for (size_t i = 0; i < nsrc; i++) {
		snprintf(src, sizeof(src), "node-%06zu.cluster.local", i);
		struct tracker_event e = {
			.type = EVENT_SET, .kind = ENTITY_IMAGE, .id = id,
			.source = src, .tags = &tag, .ntags = 1,
			.observed_at = T0,
		};
		if (i == nsrc - 100)
			tstart = now_s();
		if (tracker_apply(t, &e, T0, &out, err, sizeof(err)) >
		    APPLY_DEDUP) {
			fprintf(stderr, "unexpected apply result: %s\n", err);
			exit(1);
		}
		if (i % BATCH == BATCH - 1)
			tracker_clear_dirty(t);
	}
	double t1 = now_s();
	*tail = t1 - tstart;
	tracker_free(t);
	return t1 - t0;
}

static void
apply_set(tracker *t, size_t i, int64_t now)
{
	char id[DIGEST_STR_LEN], tagbuf[48];
	make_event(i, id, tagbuf);
	const char *tag = tagbuf;
	struct tracker_event e = {
		.type = EVENT_SET, .kind = ENTITY_IMAGE, .id = id,
		.source = "node-0001.cluster.local", .tags = &tag, .ntags = 1,
		.observed_at = T0,
	};
	struct tracker_outcome out;
	char err[128];
	if (tracker_apply(t, &e, now, &out, err, sizeof(err)) > APPLY_DEDUP) {
		fprintf(stderr, "unexpected apply result: %s\n", err);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	if (n == 0 || runs < 1 || runs > 50) {
		fprintf(stderr, "usage: bench_tracker [N] [RUNS]\n");
		return 2;
	}
	size_t *order = malloc(n * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng() % (i + 1);
		size_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}

	struct tracker_config cfg;
	tracker_config_defaults(&cfg);
	double *set_new = calloc((size_t)runs, sizeof(double));
	double *set_dedup = calloc((size_t)runs, sizeof(double));
	double *pop_retry = calloc((size_t)runs, sizeof(double));
	double *heap_cycle = calloc((size_t)runs, sizeof(double));
	double *batch_new = calloc((size_t)runs, sizeof(double));
	double *batch_dedup = calloc((size_t)runs, sizeof(double));
	size_t *seq = malloc(n * sizeof(*seq));
	for (size_t i = 0; i < n; i++)
		seq[i] = i;
	struct batch *bt = malloc(sizeof(*bt));
	double *bytes = calloc((size_t)runs, sizeof(double));
	double *wide = calloc((size_t)runs, sizeof(double));
	double *wide_tail = calloc((size_t)runs, sizeof(double));

	for (int r = 0; r < runs; r++) {
		malloc_trim(0);
		long rss0 = rss_bytes();
		tracker *t = tracker_new(&cfg);
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			apply_set(t, i, T0);
			if (i % BATCH == BATCH - 1)
				tracker_clear_dirty(t); /* as a commit would */
		}
		double t1 = now_s();
		set_new[r] = (double)n / (t1 - t0);
		malloc_trim(0); /* freed growth buffers back to the system */
		bytes[r] = (double)(rss_bytes() - rss0) / (double)n;

		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			apply_set(t, order[i], T0 + 1);
			if (i % BATCH == BATCH - 1)
				tracker_clear_dirty(t);
		}
		t1 = now_s();
		set_dedup[r] = (double)n / (t1 - t0);

		/* First round: every entry fails once (sets its error), so
		 * all N are queued with spread-out retry times. */
		struct tracker_job job;
		struct tracker_outcome out;
		struct tracker_result res = {.ok = false,
		    .error_class = ERROR_RETRYABLE,
		    .error = "image not found in any store"};
		int64_t now = T0 + 2;
		while (tracker_pop_due(t, now, &job))
			tracker_complete(t, job.handle, job.attempt, &res, now,
			    &out);
		now = T0 + 24LL * 3600 * 1000; /* everything is due */
		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			if (!tracker_pop_due(t, now, &job)) {
				fprintf(stderr, "heap ran dry at %zu\n", i);
				return 1;
			}
			tracker_complete(t, job.handle, job.attempt, &res, now,
			    &out);
			if (i % BATCH == BATCH - 1)
				tracker_clear_dirty(t);
		}
		t1 = now_s();
		pop_retry[r] = (double)n / (t1 - t0);
		if (tracker_heap_size(t) != n) {
			fprintf(stderr, "heap size %zu\n", tracker_heap_size(t));
			return 1;
		}
		tracker_free(t);

		t = tracker_new(&cfg);
		t0 = now_s();
		for (size_t i = 0; i < n; i += BATCH)
			apply_batch(t, bt, seq + i, n - i < BATCH ? n - i : BATCH,
			    T0);
		t1 = now_s();
		batch_new[r] = (double)n / (t1 - t0);
		t0 = now_s();
		for (size_t i = 0; i < n; i += BATCH)
			apply_batch(t, bt, order + i,
			    n - i < BATCH ? n - i : BATCH, T0 + 1);
		t1 = now_s();
		batch_dedup[r] = (double)n / (t1 - t0);
		tracker_free(t);

		dueheap *h = dueheap_new();
		for (size_t i = 0; i < n; i++)
			dueheap_push(h, (uint32_t)i,
			    (int64_t)(rng() % 3600000));
		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			uint32_t hd;
			int64_t due;
			dueheap_pop(h, &hd, &due);
			dueheap_push(h, hd, due + 300000 +
			    (int64_t)(rng() % 3600000));
		}
		t1 = now_s();
		heap_cycle[r] = (double)n / (t1 - t0);
		dueheap_free(h);

		wide[r] = wide_entity(&cfg, 4000, &wide_tail[r]);
	}
	printf("tracker benchmark: N=%zu, runs=%d (medians)\n", n, runs);
	printf("  set_new      %8.2f M ops/s\n", median(set_new, runs) / 1e6);
	printf("  set_dedup    %8.2f M ops/s\n", median(set_dedup, runs) / 1e6);
	printf("  batch_new    %8.2f M ops/s\n", median(batch_new, runs) / 1e6);
	printf("  batch_dedup  %8.2f M ops/s\n",
	    median(batch_dedup, runs) / 1e6);
	printf("  pop_retry    %8.2f M ops/s\n", median(pop_retry, runs) / 1e6);
	printf("  heap_cycle   %8.2f M ops/s\n", median(heap_cycle, runs) / 1e6);
	printf("  bytes/entry  %8.1f\n", median(bytes, runs));
	printf("  wide_4000    %8.2f k sources/s (%.1f ms in all, last 100 "
	    "%.1f us each)\n", 4000 / median(wide, runs) / 1e3,
	    median(wide, runs) * 1e3, median(wide_tail, runs) * 1e4);
	free(order);
	free(seq);
	free(bt);
	free(batch_new);
	free(batch_dedup);
	free(set_new);
	free(set_dedup);
	free(pop_retry);
	free(heap_cycle);
	free(bytes);
	free(wide);
	free(wide_tail);
	return 0;
}
