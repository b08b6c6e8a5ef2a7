/*
 * bench_store: durable group commits and recovery of the LMDB state.
 *
 *   bench_store DIR [N] [BATCH] [RUNS]   (defaults: 1000000, 1000, 3)
 *
 * Per run, in a fresh directory under DIR:
 *   commit    N new image entries applied BATCH at a time, each batch
 *             committed in one durable (fdatasync) transaction; the rate
 *             counts entries per second of commit time, and of total time
 *   recover   close, reopen and rebuild a ready tracker (map and heap)
 *             from the N entries, page cache warm; and once more after
 *             dropping the page cache when running as root (cold)
 * Prints medians over RUNS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/tracker.h"
#include "store/store.h"
#include "util/digest.h"

#include "benchutil.h"

static void
apply_set(tracker *t, size_t i)
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
	if (tracker_apply(t, &e, T0, &out, err, sizeof(err)) != APPLY_NEW) {
		fprintf(stderr, "apply: %s\n", err);
		exit(1);
	}
}

static void
drop_caches(void)
{
	sync();
	FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f != NULL) {
		fputs("3\n", f);
		fclose(f);
	}
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_store DIR [N] [BATCH] [RUNS]\n");
		return 2;
	}
	const char *base = argv[1];
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	size_t batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
	int runs = argc > 4 ? atoi(argv[4]) : 3;
	if (n == 0 || batch == 0 || runs < 1 || runs > 20)
		return 2;
	int can_drop = geteuid() == 0;
	double *commit_rate = calloc((size_t)runs, sizeof(double));
	double *total_rate = calloc((size_t)runs, sizeof(double));
	double *recover_s = calloc((size_t)runs, sizeof(double));
	double *cold_s = calloc((size_t)runs, sizeof(double));
	struct tracker_config cfg;
	tracker_config_defaults(&cfg);
	char err[512];
	struct store_dirty dirty = {0};

	for (int r = 0; r < runs; r++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/run-%d-%ld", base, r,
		    (long)getpid());
		store *s;
		if (store_open(dir, NULL, &s, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		tracker *t = tracker_new(&cfg);
		double in_commit = 0, start = now_s();
		for (size_t i = 0; i < n; i += batch) {
			for (size_t k = i; k < i + batch && k < n; k++)
				apply_set(t, k);
			double c0 = now_s();
			struct store_batch sb = {0};
			sb.nentries = store_collect_dirty(t, &dirty);
			sb.entries = dirty.entries;
			if (store_commit(s, &sb, err, sizeof(err)) != 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			tracker_clear_dirty(t);
			in_commit += now_s() - c0;
		}
		double total = now_s() - start;
		commit_rate[r] = (double)n / in_commit;
		total_rate[r] = (double)n / total;
		store_close(s);
		tracker_free(t);

		for (int cold = 0; cold <= can_drop; cold++) {
			if (cold)
				drop_caches();
			double t0 = now_s();
			struct store_recovery rec;
			t = tracker_new(&cfg);
			if (store_open(dir, NULL, &s, err, sizeof(err)) != 0 ||
			    store_recover(s, t, T0, &rec, err,
				sizeof(err)) != 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			double took = now_s() - t0;
			if (rec.entries != n || tracker_heap_size(t) != n) {
				fprintf(stderr, "recovered %zu of %zu\n",
				    rec.entries, n);
				return 1;
			}
			(cold ? cold_s : recover_s)[r] = took;
			store_close(s);
			tracker_free(t);
		}
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	printf("store benchmark: N=%zu, batch=%zu, runs=%d (medians)\n", n,
	    batch, runs);
	printf("  commit         %8.0f k entries/s of commit time\n",
	    median(commit_rate, runs) / 1e3);
	printf("  apply+commit   %8.0f k entries/s overall\n",
	    median(total_rate, runs) / 1e3);
	printf("  recover warm   %8.3f s\n", median(recover_s, runs));
	if (can_drop)
		printf("  recover cold   %8.3f s (page cache dropped)\n",
		    median(cold_s, runs));
	free(commit_rate);
	free(total_rate);
	free(recover_s);
	free(cold_s);
	store_dirty_free(&dirty);
	return 0;
}
