/*
 * bench_replay: the "into LMDB and memory" half of a changelog restore
 * (service/ownership.c restore), without a broker, and what other ways of
 * writing the same records would cost.
 *
 *   bench_replay DIR [N] [PARTITIONS] [RUNS]   (defaults: 1000000, 12, 3)
 *
 * Records: N image entities (one source, one tag: benchutil's events),
 * entity i on partition mix(i) % PARTITIONS, encoded once with
 * tracker_record_encode, kept per partition in "changelog order" (the
 * order they were made: random key order, as a changelog of image digests
 * is). As replay_one does, every record is checked with
 * tracker_record_validate before it is staged. Partitions are restored
 * one after another into one fresh tracker, in a fresh store per strategy
 * and run:
 *
 *   sbomd        what cc37644 does: batches of 4096 records, each one
 *                durable store_commit (fdatasync) with the partition's
 *                checkpoint; then store_load_partition (read the range
 *                back from LMDB, validate and load every record again)
 *   sorted       the same, each batch sorted by key before it is written
 *   batch64k     as sbomd, with batches of 65536 records
 *   nosync       batches of 4096 in a store opened no_sync; one
 *                fdatasync of data.mdb per partition (what mdb_env_sync
 *                does for a store without MDB_WRITEMAP) before its load
 *   sorted64k    batches of 65536 sorted by key, no_sync, one fdatasync
 *                per partition
 *   direct       sorted64k, and the partition loaded into the tracker from
 *                the records in memory (tracker_record_load) instead of
 *                read back from LMDB
 *   whole        the whole partition sorted by key in one durable commit
 *                (one fdatasync per partition), then store_load_partition
 *
 * Per strategy: median seconds and entries/s over RUNS, the write and the
 * load part, bytes handed to write(2) (/proc/self/io wchar) and the size
 * of data.mdb. Every run checks that the tracker holds N entities and
 * that the store reloads N.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tracker.h"
#include "core/tracker_record.h"
#include "store/store.h"
#include "util/digest.h"

#include "benchutil.h"

#define REPLAY_BATCH 4096

struct rec {
	struct tracker_key key;
	uint8_t *bytes;
	size_t len;
};

struct part {
	struct rec *recs;
	size_t n, cap;
};

enum strategy { S_SBOMD, S_SORTED, S_BATCH64K, S_NOSYNC, S_SORTED64K,
	S_DIRECT, S_WHOLE, S_COUNT };
static const char *const names[S_COUNT] = { "sbomd", "sorted", "batch64k",
	"nosync", "sorted64k", "direct", "whole" };

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "bench_replay: %s: %s\n", what, err);
	exit(1);
}

struct maker {
	tracker *t;
	struct part *parts;
	uint8_t *buf;
	size_t cap;
};

static int
add_record(void *ctx, uint32_t handle)
{
	struct maker *mk = ctx;
	struct tracker_info in;
	tracker_info_get(mk->t, handle, &in);
	size_t len = tracker_record_encode(mk->t, handle, &mk->buf, &mk->cap);
	struct part *pp = &mk->parts[in.partition];
	if (pp->n == pp->cap) {
		pp->cap = pp->cap ? pp->cap * 2 : 1024;
		pp->recs = realloc(pp->recs, pp->cap * sizeof(*pp->recs));
	}
	struct rec *r = &pp->recs[pp->n++];
	r->key = in.key;
	r->bytes = malloc(len);
	memcpy(r->bytes, mk->buf, len);
	r->len = len;
	return 0;
}

static int
no_del(void *ctx, int32_t partition, const struct tracker_key *key)
{
	(void)ctx;
	(void)partition;
	(void)key;
	return 0;
}

/* N records spread over np partitions, each partition's in the order
 * the entities were made (their handles): random key order. */
static struct part *
make_records(size_t n, int np)
{
	struct tracker_config cfg;
	tracker_config_defaults(&cfg);
	struct maker mk = { tracker_new(&cfg), calloc((size_t)np,
		sizeof(struct part)), NULL, 0 };
	char err[256];
	for (size_t i = 0; i < n; i++) {
		char id[DIGEST_STR_LEN], tagbuf[48];
		make_event(i, id, tagbuf);
		const char *tag = tagbuf;
		int32_t p = (int32_t)(policy_mix64(i ^ 0x5bd1e995u) % (uint64_t)np);
		struct tracker_event e = {
			.type = EVENT_SET, .kind = ENTITY_IMAGE, .id = id,
			.source = "node-0", .tags = &tag, .ntags = 1,
			.observed_at = T0, .partition = p,
		};
		struct tracker_outcome out;
		if (tracker_apply(mk.t, &e, T0, &out, err, sizeof(err)) !=
		    APPLY_NEW)
			die("apply", err);
	}
	tracker_foreach_dirty(mk.t, add_record, no_del, &mk);
	free(mk.buf);
	tracker_free(mk.t);
	return mk.parts;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct store_entry *x = a, *y = b;
	if (x->key.kind != y->key.kind)
		return x->key.kind < y->key.kind ? -1 : 1;
	return memcmp(x->key.bytes, y->key.bytes, TRACKER_KEY_LEN);
}

static long long
wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long v = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return v;
}

static void
put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

struct result {
	double total, write, load;
	long long wchar;
	long long mdb_bytes;
};

static struct result
run(const char *dir, enum strategy st, const struct part *parts, int np,
    size_t n)
{
	struct store_options opt = { 0 };
	opt.no_sync = st == S_NOSYNC || st == S_SORTED64K || st == S_DIRECT;
	size_t batch = st == S_SBOMD || st == S_SORTED || st == S_NOSYNC ?
	    REPLAY_BATCH : st == S_WHOLE ? SIZE_MAX : 65536;
	bool sorted = st == S_SORTED || st == S_SORTED64K || st == S_DIRECT ||
	    st == S_WHOLE;
	char err[512];
	store *s;
	if (store_open(dir, &opt, &s, err, sizeof(err)) != 0)
		die("open", err);
	char path[4200];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	struct tracker_config cfg;
	tracker_config_defaults(&cfg);
	tracker *t = tracker_new(&cfg);
	size_t most = 65536;
	for (int p = 0; p < np; p++)
		if (parts[p].n > most)
			most = parts[p].n;
	struct store_entry *ents = malloc(most * sizeof(*ents));
	struct result res = { 0 };
	long long w0 = wchar();
	double t0 = now_s();
	for (int p = 0; p < np; p++) {
		const struct part *pp = &parts[p];
		double w_start = now_s();
		size_t k = 0;
		for (size_t i = 0; i < pp->n; i++) {
			const struct rec *r = &pp->recs[i];
			struct tracker_key key;
			int32_t rp;
			if (tracker_record_validate(r->bytes, r->len, &key, &rp,
				err, sizeof(err)) != 0 || rp != p)
				die("validate", err);
			ents[k++] = (struct store_entry){ p, r->key, r->bytes,
				r->len };
			if (k == batch || i + 1 == pp->n) {
				if (sorted)
					qsort(ents, k, sizeof(*ents), cmp_entry);
				char name[48];
				uint8_t v[8];
				snprintf(name, sizeof(name),
				    "changelog/%d/next", p);
				put_be64(v, i + 1);
				struct store_meta m = { name, v, 8 };
				struct store_batch b = { .entries = ents,
					.nentries = k, .meta = &m, .nmeta = 1 };
				if (store_commit(s, &b, err, sizeof(err)) != 0)
					die("commit", err);
				k = 0;
			}
		}
		if (opt.no_sync) {
			int fd = open(path, O_RDONLY);
			if (fd < 0 || fdatasync(fd) != 0)
				die("fdatasync", strerror(errno));
			close(fd);
		}
		double l_start = now_s();
		res.write += l_start - w_start;
		if (st == S_DIRECT) {
			for (size_t i = 0; i < pp->n; i++)
				if (tracker_record_load(t, pp->recs[i].bytes,
					pp->recs[i].len, T0, NULL, err,
					sizeof(err)) != 0)
					die("load", err);
		} else {
			struct store_recovery rec;
			if (store_load_partition(s, p, t, T0, &rec, err,
				sizeof(err)) != 0)
				die("load partition", err);
		}
		res.load += now_s() - l_start;
	}
	res.total = now_s() - t0;
	res.wchar = wchar() - w0;
	if (tracker_count(t) != n) {
		fprintf(stderr, "bench_replay: %s: tracker holds %zu of %zu\n",
		    names[st], tracker_count(t), n);
		exit(1);
	}
	tracker_free(t);
	/* Everything is on disk and reloads. */
	t = tracker_new(&cfg);
	struct store_recovery rec;
	if (store_recover(s, t, T0, &rec, err, sizeof(err)) != 0)
		die("recover", err);
	if (rec.entries != n) {
		fprintf(stderr, "bench_replay: %s: store reloads %zu of %zu\n",
		    names[st], rec.entries, n);
		exit(1);
	}
	tracker_free(t);
	store_close(s);
	struct stat sb;
	res.mdb_bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
	free(ents);
	return res;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_replay DIR [N] [PARTITIONS] "
		    "[RUNS]\n");
		return 2;
	}
	const char *base = argv[1];
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	int np = argc > 3 ? atoi(argv[3]) : 12;
	int runs = argc > 4 ? atoi(argv[4]) : 3;
	if (n == 0 || np < 1 || np > 1024 || runs < 1 || runs > 20)
		return 2;
	double t0 = now_s();
	struct part *parts = make_records(n, np);
	size_t bytes = 0;
	for (int p = 0; p < np; p++)
		for (size_t i = 0; i < parts[p].n; i++)
			bytes += parts[p].recs[i].len;
	printf("replay benchmark: N=%zu (%.1f MiB of records, %.0f bytes "
	    "each), %d partitions, runs=%d (medians; made in %.1f s)\n", n,
	    (double)bytes / (1 << 20), (double)bytes / (double)n, np, runs,
	    now_s() - t0);
	printf("  %-10s %10s %8s %8s %8s %12s %10s\n", "strategy",
	    "entries/s", "total s", "write s", "load s", "write(2) MiB",
	    "data MiB");
	double tot[S_COUNT][20], wr[S_COUNT][20], ld[S_COUNT][20];
	long long wc[S_COUNT] = { 0 }, mb[S_COUNT] = { 0 };
	/* Strategies interleaved within each run: the machine's load moves. */
	for (int r = 0; r < runs; r++)
		for (int st = 0; st < S_COUNT; st++) {
			char dir[4096], cmd[4200];
			snprintf(dir, sizeof(dir), "%s/replay-%s-%d-%ld", base,
			    names[st], r, (long)getpid());
			struct result res = run(dir, (enum strategy)st, parts,
			    np, n);
			tot[st][r] = res.total;
			wr[st][r] = res.write;
			ld[st][r] = res.load;
			wc[st] = res.wchar;
			mb[st] = res.mdb_bytes;
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n", dir);
		}
	for (int st = 0; st < S_COUNT; st++) {
		double mt = median(tot[st], runs);
		printf("  %-10s %10.0f %8.2f %8.2f %8.2f %12.0f %10.0f\n",
		    names[st], (double)n / mt, mt, median(wr[st], runs),
		    median(ld[st], runs), (double)wc[st] / (1 << 20),
		    (double)mb[st] / (1 << 20));
	}
	for (int p = 0; p < np; p++) {
		for (size_t i = 0; i < parts[p].n; i++)
			free(parts[p].recs[i].bytes);
		free(parts[p].recs);
	}
	free(parts);
	return 0;
}
