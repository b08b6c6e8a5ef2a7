/*
 * test_idmap: the tracker's digest-keyed hash map (consumer/core/idmap).
 *
 * The map stores 32-bit handles; the keys (32 random bytes, like the
 * SHA-256 image IDs of production) live here in keys[handle], and the eq
 * callback compares them. The hash of a key is its first four bytes, as the
 * tracker does for image IDs.
 *
 * - basics, growth, backward-shift deletion inside one cluster;
 * - a randomized run against a naive reference (array + linear scan) with
 *   idmap_check after every operation, once with uniform hashes and once
 *   with every home squeezed into the last slots of the table so that the
 *   single cluster wraps around the end;
 * - churn: 50,000 live keys, 5,000,000 delete + insert cycles; probe
 *   lengths and capacity must stay where a fresh table would be (no
 *   tombstone decay);
 * - idmap_reserve; full 32-bit hash collisions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"
#include "util/xmalloc.h"
#include "testutil.h"

#define KEY_LEN 32

/* The owner of the keys: what the tracker's entry slab is in production. */
struct owner {
	uint8_t (*keys)[KEY_LEN];
	bool *live; /* live[h]: h is in the map (eq must see no other) */
	size_t nkeys;
	uint64_t eq_calls;
};

static bool
owner_eq(void *ctx, uint32_t handle, const void *key)
{
	struct owner *o = ctx;

	o->eq_calls++;
	if (handle >= o->nkeys)
		fail_msg("eq called with handle %u, only %zu exist", handle,
		    o->nkeys);
	if (!o->live[handle])
		fail_msg("eq called with handle %u, which is not in the map",
		    handle);
	return memcmp(o->keys[handle], key, KEY_LEN) == 0;
}

static void
owner_init(struct owner *o, size_t nkeys)
{
	o->keys = xcalloc(nkeys, KEY_LEN);
	o->live = xcalloc(nkeys, sizeof(*o->live));
	o->nkeys = nkeys;
	o->eq_calls = 0;
}

static void
owner_fini(struct owner *o)
{
	free(o->keys);
	free(o->live);
}

static uint32_t
key_hash(const uint8_t *k)
{
	return (uint32_t)k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 |
	    (uint32_t)k[3] << 24;
}

static void
set_hash(uint8_t *k, uint32_t hash)
{
	k[0] = (uint8_t)hash;
	k[1] = (uint8_t)(hash >> 8);
	k[2] = (uint8_t)(hash >> 16);
	k[3] = (uint8_t)(hash >> 24);
}

static void
random_key(uint8_t *k)
{
	for (size_t i = 0; i < KEY_LEN; i += 8) {
		uint64_t r = rng_next();
		memcpy(k + i, &r, 8);
	}
}

static void
random_key_with_hash(uint8_t *k, uint32_t hash)
{
	random_key(k);
	set_hash(k, hash);
}

static void
check_or_fail(const idmap *m, const char *when, size_t op)
{
	char err[256] = "";
	if (idmap_check(m, err, sizeof(err)) != 0)
		fail_msg("idmap_check after %s (op %zu): %s", when, op, err);
}

static void
map_insert(idmap *m, struct owner *o, uint32_t h)
{
	o->live[h] = true;
	idmap_insert(m, key_hash(o->keys[h]), h);
}

static uint32_t
map_find(const idmap *m, const uint8_t *key)
{
	return idmap_find(m, key_hash(key), key);
}

static uint32_t
map_remove(idmap *m, struct owner *o, const uint8_t *key)
{
	uint32_t h = idmap_remove(m, key_hash(key), key);
	if (h != IDMAP_NONE) {
		assert_true(h < o->nkeys);
		o->live[h] = false;
	}
	return h;
}

static void
test_basics(void **state)
{
	struct owner o;
	uint8_t absent[KEY_LEN];
	(void)state;

	idmap_free(NULL);
	rng_seed(1);
	owner_init(&o, 16);
	idmap *m = idmap_new(owner_eq, &o);

	random_key(absent);
	assert_int_equal(idmap_count(m), 0);
	assert_int_equal(map_find(m, absent), IDMAP_NONE);
	assert_int_equal(map_remove(m, &o, absent), IDMAP_NONE);
	assert_int_equal(idmap_max_probe(m), 0);
	check_or_fail(m, "new", 0);

	for (uint32_t h = 0; h < 3; h++) {
		random_key(o.keys[h]);
		map_insert(m, &o, h);
		check_or_fail(m, "insert", h);
	}
	assert_int_equal(idmap_count(m), 3);
	for (uint32_t h = 0; h < 3; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);
	assert_int_equal(map_find(m, absent), IDMAP_NONE);

	assert_int_equal(map_remove(m, &o, o.keys[1]), 1);
	check_or_fail(m, "remove", 1);
	assert_int_equal(idmap_count(m), 2);
	assert_int_equal(map_find(m, o.keys[1]), IDMAP_NONE);
	assert_int_equal(map_remove(m, &o, o.keys[1]), IDMAP_NONE);
	assert_int_equal(map_find(m, o.keys[0]), 0);
	assert_int_equal(map_find(m, o.keys[2]), 2);

	/* Reinsert under the same handle: found again. */
	map_insert(m, &o, 1);
	assert_int_equal(map_find(m, o.keys[1]), 1);
	assert_int_equal(idmap_count(m), 3);

	/* Handle 0 is an ordinary value, like any other. */
	for (uint32_t h = 0; h < 3; h++)
		assert_int_equal(map_remove(m, &o, o.keys[h]), h);
	assert_int_equal(idmap_count(m), 0);
	check_or_fail(m, "emptied", 0);
	idmap_free(m);
	owner_fini(&o);
}

/*
 * One cluster, deterministic: with the initial table (at least 64 slots,
 * a power of two), keys whose hashes share the low bits land in adjacent
 * slots. Removing the first must pull the others back, and removing from
 * the middle must keep the later ones reachable.
 */
static void
test_cluster_shift(void **state)
{
	struct owner o;
	(void)state;

	rng_seed(2);
	owner_init(&o, 8);
	idmap *m = idmap_new(owner_eq, &o);
	size_t mask = idmap_capacity(m) - 1;
	assert_true(idmap_capacity(m) >= 8);
	assert_int_equal(idmap_capacity(m) & mask, 0);

	/* homes: 5, 5, 5, 6, 7 (distinct full hashes, same low bits) */
	const uint32_t hashes[] = {5, 5 + 0x10000, 5 + 0x20000, 6, 7};
	for (uint32_t h = 0; h < 5; h++) {
		random_key_with_hash(o.keys[h], hashes[h]);
		map_insert(m, &o, h);
		check_or_fail(m, "cluster insert", h);
	}
	/* 5 keys in slots 5..9: the last one (home 7) sits at 9 */
	assert_int_equal(idmap_max_probe(m), 2);

	assert_int_equal(map_remove(m, &o, o.keys[0]), 0);
	check_or_fail(m, "cluster remove head", 0);
	for (uint32_t h = 1; h < 5; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);
	/* slots 5..8 now hold homes 5, 5, 6, 7: the longest probe is 1 */
	assert_int_equal(idmap_max_probe(m), 1);

	assert_int_equal(map_remove(m, &o, o.keys[2]), 2);
	check_or_fail(m, "cluster remove middle", 2);
	assert_int_equal(map_find(m, o.keys[1]), 1);
	assert_int_equal(map_find(m, o.keys[3]), 3);
	assert_int_equal(map_find(m, o.keys[4]), 4);
	assert_int_equal(map_find(m, o.keys[2]), IDMAP_NONE);
	assert_int_equal(idmap_max_probe(m), 0);
	assert_int_equal(idmap_count(m), 3);

	idmap_free(m);
	owner_fini(&o);
}

static void
test_growth(void **state)
{
	enum { N = 20000 };
	struct owner o;
	(void)state;

	rng_seed(3);
	owner_init(&o, N);
	idmap *m = idmap_new(owner_eq, &o);
	size_t prevcap = idmap_capacity(m);
	for (uint32_t h = 0; h < N; h++) {
		random_key(o.keys[h]);
		map_insert(m, &o, h);
		size_t cap = idmap_capacity(m);
		assert_int_equal(cap & (cap - 1), 0);
		assert_true(cap >= prevcap);
		/* load factor at most 3/4 */
		assert_true(idmap_count(m) * 4 <= cap * 3);
		prevcap = cap;
	}
	check_or_fail(m, "growth", N);
	assert_int_equal(idmap_count(m), N);
	/* and no more than it needs: 3/4 of half the table would have done */
	assert_true(idmap_capacity(m) / 2 / 4 * 3 < N);
	for (uint32_t h = 0; h < N; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);
	idmap_free(m);
	owner_fini(&o);
}

/* ---- randomized run against a naive reference ---- */

enum hash_mode { HASH_UNIFORM, HASH_TAIL_CLUSTER };

struct reference {
	uint32_t *handles; /* live handles, unordered */
	size_t n;
};

static uint32_t
ref_find(const struct reference *r, const struct owner *o, const uint8_t *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(o->keys[r->handles[i]], key, KEY_LEN) == 0)
			return r->handles[i];
	return IDMAP_NONE;
}

static void
ref_remove_at(struct reference *r, size_t i)
{
	r->handles[i] = r->handles[--r->n];
}

static uint32_t
mode_hash(enum hash_mode mode, uint32_t h)
{
	if (mode == HASH_TAIL_CLUSTER) {
		/* low 10 bits in 0x3f0..0x3ff: for every table of up to 1024
		 * slots the home is one of its last 16 slots */
		return (h & ~(uint32_t)0x3ff) | 0x3f0 | (h & 0xf);
	}
	return h;
}

static void
make_key(uint8_t *k, enum hash_mode mode, const struct reference *r,
    const struct owner *o)
{
	random_key(k);
	if (r->n > 0 && rng_below(8) == 0) {
		/* the same 32-bit hash as a live key, different bytes */
		uint32_t other = r->handles[rng_below(r->n)];
		set_hash(k, key_hash(o->keys[other]));
	} else {
		set_hash(k, mode_hash(mode, key_hash(k)));
	}
}

#define REMOVED_RING 64

static void
run_random(uint64_t seed, size_t ops, size_t max_live, enum hash_mode mode)
{
	struct owner o;
	struct reference ref;
	size_t nhandles = max_live * 2;
	uint32_t *freeh = xcalloc(nhandles, sizeof(*freeh));
	size_t nfree = nhandles;
	uint8_t removed[REMOVED_RING][KEY_LEN];
	size_t nremoved = 0;
	uint8_t key[KEY_LEN];
	size_t target = max_live / 2;
	size_t peak = 0;
	size_t counts[6] = {0};

	rng_seed(seed);
	owner_init(&o, nhandles);
	ref.handles = xcalloc(max_live, sizeof(*ref.handles));
	ref.n = 0;
	for (size_t i = 0; i < nhandles; i++)
		freeh[i] = (uint32_t)i;
	idmap *m = idmap_new(owner_eq, &o);

	for (size_t op = 0; op < ops; op++) {
		/* Drift the target size so the map grows, shrinks, empties. */
		if (op % 10000 == 0) {
			switch (rng_below(4)) {
			case 0: target = 0; break;
			case 1: target = max_live; break;
			default: target = rng_below(max_live + 1); break;
			}
		}
		unsigned ins_w = ref.n < target ? 45 : 20;
		unsigned del_w = ref.n < target ? 10 : 35;
		unsigned r = (unsigned)rng_below(ins_w + del_w + 45);
		int kind;
		if (r < ins_w)
			kind = 0; /* insert */
		else if (r < ins_w + del_w)
			kind = 1; /* remove present */
		else if (r < ins_w + del_w + 10)
			kind = 2; /* remove absent */
		else if (r < ins_w + del_w + 30)
			kind = 3; /* find present */
		else
			kind = 4; /* find absent */
		if (kind == 0 && ref.n == max_live)
			kind = 1;
		if ((kind == 1 || kind == 3) && ref.n == 0)
			kind = 0;
		counts[kind]++;

		switch (kind) {
		case 0: {
			size_t fi = rng_below(nfree);
			uint32_t h = freeh[fi];
			freeh[fi] = freeh[--nfree];
			make_key(o.keys[h], mode, &ref, &o);
			assert_int_equal(ref_find(&ref, &o, o.keys[h]),
			    IDMAP_NONE);
			/* a new key is not found before it is inserted */
			assert_int_equal(map_find(m, o.keys[h]), IDMAP_NONE);
			map_insert(m, &o, h);
			ref.handles[ref.n++] = h;
			assert_int_equal(map_find(m, o.keys[h]), h);
			break;
		}
		case 1: {
			size_t i = rng_below(ref.n);
			uint32_t h = ref.handles[i];
			memcpy(key, o.keys[h], KEY_LEN);
			uint32_t got = map_remove(m, &o, key);
			if (got != h)
				fail_msg("op %zu: remove returned %u, want %u",
				    op, got, h);
			ref_remove_at(&ref, i);
			freeh[nfree++] = h;
			memcpy(removed[nremoved++ % REMOVED_RING], key, KEY_LEN);
			assert_int_equal(map_find(m, key), IDMAP_NONE);
			break;
		}
		case 2:
		case 4: {
			/* absent: a removed key, a fresh one, or a fresh one
			 * sharing the full hash of a live key */
			if (nremoved > 0 && rng_below(2) == 0)
				memcpy(key, removed[rng_below(nremoved <
				    REMOVED_RING ? nremoved : REMOVED_RING)],
				    KEY_LEN);
			else
				make_key(key, mode, &ref, &o);
			if (ref_find(&ref, &o, key) != IDMAP_NONE)
				break; /* a removed key that came back: skip */
			if (kind == 2) {
				size_t before = idmap_count(m);
				assert_int_equal(map_remove(m, &o, key),
				    IDMAP_NONE);
				assert_int_equal(idmap_count(m), before);
			} else {
				assert_int_equal(map_find(m, key), IDMAP_NONE);
			}
			break;
		}
		case 3: {
			uint32_t h = ref.handles[rng_below(ref.n)];
			uint32_t want = ref_find(&ref, &o, o.keys[h]);
			assert_int_equal(want, h);
			uint32_t got = map_find(m, o.keys[h]);
			if (got != want)
				fail_msg("op %zu: find returned %u, want %u",
				    op, got, want);
			break;
		}
		}

		check_or_fail(m, "random op", op);
		if (idmap_count(m) != ref.n)
			fail_msg("op %zu: count %zu, reference %zu", op,
			    idmap_count(m), ref.n);
		if (ref.n > peak)
			peak = ref.n;
		if (op % 1024 == 1023) {
			for (size_t i = 0; i < ref.n; i++) {
				uint32_t h = ref.handles[i];
				if (map_find(m, o.keys[h]) != h)
					fail_msg("op %zu: live handle %u lost",
					    op, h);
			}
		}
	}
	/* the run did what it was meant to do */
	assert_true(peak == max_live);
	for (int k = 0; k < 5; k++)
		assert_true(counts[k] > ops / 20);

	/* drain through the map; the reference must follow */
	while (ref.n > 0) {
		uint32_t h = ref.handles[ref.n - 1];
		assert_int_equal(map_remove(m, &o, o.keys[h]), h);
		ref.n--;
	}
	assert_int_equal(idmap_count(m), 0);
	check_or_fail(m, "drain", ops);

	idmap_free(m);
	owner_fini(&o);
	free(ref.handles);
	free(freeh);
}

static void
test_random_uniform(void **state)
{
	(void)state;
	/* up to 1,500 live: a 2,048-slot table keeps the per-op check cheap */
	run_random(0xA11CE5EED, 220000, 1500, HASH_UNIFORM);
}

static void
test_random_wrapping_cluster(void **state)
{
	(void)state;
	/* every key in one long cluster: keep it small, check is O(n^2) */
	run_random(0xB0B5EED, 60000, 150, HASH_TAIL_CLUSTER);
}

/* ---- churn: no decay after millions of delete/insert cycles ---- */

static void
test_churn(void **state)
{
	enum { LIVE = 50000, SAMPLE = 10000 };
	const size_t cycles = 5000000;
	const size_t probe_bound = 64;
	struct owner o;
	uint8_t (*gone)[KEY_LEN] = xcalloc(SAMPLE, KEY_LEN);
	size_t ngone = 0;
	(void)state;

	rng_seed(0xC4012);
	/* LIVE + 1 handles: one spare for insert-before-delete cycles */
	owner_init(&o, LIVE + 1);
	idmap *m = idmap_new(owner_eq, &o);
	for (uint32_t h = 0; h < LIVE; h++) {
		random_key(o.keys[h]);
		map_insert(m, &o, h);
	}
	uint32_t spare = LIVE;
	check_or_fail(m, "fill", 0);
	const size_t cap0 = idmap_capacity(m);
	const size_t probe0 = idmap_max_probe(m);
	assert_true(probe0 <= probe_bound);

	for (size_t c = 0; c < cycles; c++) {
		uint32_t victim;
		/* pick a live handle: all but the spare */
		do
			victim = (uint32_t)rng_below(LIVE + 1);
		while (victim == spare);

		if (c & 1) {
			/* delete, then insert a new key under the same handle */
			if (c % 500 == 1 && ngone < SAMPLE)
				memcpy(gone[ngone++], o.keys[victim], KEY_LEN);
			if (map_remove(m, &o, o.keys[victim]) != victim)
				fail_msg("cycle %zu: handle %u not removed", c,
				    victim);
			random_key(o.keys[victim]);
			map_insert(m, &o, victim);
		} else {
			/* insert first (count LIVE + 1), then delete */
			random_key(o.keys[spare]);
			map_insert(m, &o, spare);
			if (map_remove(m, &o, o.keys[victim]) != victim)
				fail_msg("cycle %zu: handle %u not removed", c,
				    victim);
			spare = victim;
		}
		if (c % 1000000 == 999999) {
			check_or_fail(m, "churn", c);
			assert_true(idmap_max_probe(m) <= probe_bound);
			assert_true(idmap_capacity(m) <= 2 * cap0);
		}
	}

	check_or_fail(m, "churn end", cycles);
	assert_int_equal(idmap_count(m), LIVE);
	size_t probe = idmap_max_probe(m);
	if (probe > probe_bound)
		fail_msg("max probe %zu after churn (%zu after fill)", probe,
		    probe0);
	if (idmap_capacity(m) > 2 * cap0)
		fail_msg("capacity %zu after churn, %zu after fill",
		    idmap_capacity(m), cap0);

	/* every live key is found, with about one eq call each (the stored
	 * hash filters the rest) */
	o.eq_calls = 0;
	for (uint32_t h = 0; h <= LIVE; h++) {
		if (h == spare)
			continue;
		if (map_find(m, o.keys[h]) != h)
			fail_msg("handle %u lost after churn", h);
	}
	assert_true(o.eq_calls >= LIVE);
	assert_true(o.eq_calls <= LIVE + LIVE / 100);

	/* deleted keys stay deleted */
	assert_true(ngone > 1000);
	for (size_t i = 0; i < ngone; i++)
		assert_int_equal(map_find(m, gone[i]), IDMAP_NONE);

	idmap_free(m);
	owner_fini(&o);
	free(gone);
}

/* ---- idmap_reserve ---- */

static void
test_reserve(void **state)
{
	enum { N = 10000 };
	struct owner o;
	(void)state;

	rng_seed(4);
	owner_init(&o, 3 * N);
	idmap *m = idmap_new(owner_eq, &o);
	size_t cap = idmap_capacity(m);

	idmap_reserve(m, 0);
	assert_int_equal(idmap_capacity(m), cap);
	idmap_reserve(m, 1);
	assert_int_equal(idmap_capacity(m), cap);

	idmap_reserve(m, N);
	cap = idmap_capacity(m);
	assert_int_equal(cap & (cap - 1), 0);
	assert_true(cap / 4 * 3 >= N);
	assert_true(cap / 2 / 4 * 3 < N); /* not more than needed */
	check_or_fail(m, "reserve empty", 0);
	for (uint32_t h = 0; h < N; h++) {
		random_key(o.keys[h]);
		map_insert(m, &o, h);
		if (idmap_capacity(m) != cap)
			fail_msg("grew at insert %u after reserve(%d)", h, N);
	}
	check_or_fail(m, "filled reserve", N);

	/* smaller reservations change nothing */
	idmap_reserve(m, N / 2);
	idmap_reserve(m, N);
	assert_int_equal(idmap_capacity(m), cap);

	/* reserving with members present rehashes them all */
	idmap_reserve(m, 3 * N);
	size_t cap2 = idmap_capacity(m);
	assert_true(cap2 > cap);
	assert_true(cap2 / 4 * 3 >= 3 * N);
	check_or_fail(m, "reserve with members", N);
	assert_int_equal(idmap_count(m), N);
	for (uint32_t h = 0; h < N; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);
	for (uint32_t h = N; h < 3 * N; h++) {
		random_key(o.keys[h]);
		map_insert(m, &o, h);
	}
	assert_int_equal(idmap_capacity(m), cap2);
	check_or_fail(m, "filled second reserve", 3 * N);
	for (uint32_t h = 0; h < 3 * N; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);

	idmap_free(m);
	owner_fini(&o);
}

/* ---- full 32-bit hash collisions ---- */

static void
test_collisions(void **state)
{
	enum { A = 400, B = 200, C = 200, U = 200, N = A + B + C + U };
	struct owner o;
	uint32_t order[N];
	uint8_t absent[KEY_LEN];
	(void)state;

	rng_seed(5);
	owner_init(&o, N);
	idmap *m = idmap_new(owner_eq, &o);

	/*
	 * A: one hash. B: another hash with the same low 16 bits, so the same
	 * home in any table up to 65536 slots, but never equal to A's.
	 * C: hash 0xffffffff, home = the last slot, so the cluster wraps.
	 * U: uniform.
	 */
	for (uint32_t h = 0; h < N; h++) {
		uint32_t hash;
		if (h < A)
			hash = 0xdeadbeefu;
		else if (h < A + B)
			hash = 0x1234beefu;
		else if (h < A + B + C)
			hash = 0xffffffffu;
		else
			hash = (uint32_t)rng_next();
		random_key_with_hash(o.keys[h], hash);
		order[h] = h;
	}
	for (uint32_t i = N - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rng_below(i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t i = 0; i < N; i++) {
		map_insert(m, &o, order[i]);
		if (i % 16 == 0)
			check_or_fail(m, "collision insert", i);
	}
	check_or_fail(m, "collision inserts", N);
	assert_int_equal(idmap_count(m), N);
	/* A keys share one home: the last of them is at least A-1 away */
	assert_true(idmap_max_probe(m) >= A - 1);
	for (uint32_t h = 0; h < N; h++)
		assert_int_equal(map_find(m, o.keys[h]), h);

	/* absent keys with each colliding hash */
	random_key_with_hash(absent, 0xdeadbeefu);
	assert_int_equal(map_find(m, absent), IDMAP_NONE);
	assert_int_equal(map_remove(m, &o, absent), IDMAP_NONE);
	random_key_with_hash(absent, 0xffffffffu);
	assert_int_equal(map_find(m, absent), IDMAP_NONE);
	random_key_with_hash(absent, 0x1234beefu);
	assert_int_equal(map_find(m, absent), IDMAP_NONE);
	/* a key differing from an A key only in its last byte */
	memcpy(absent, o.keys[7], KEY_LEN);
	absent[KEY_LEN - 1] ^= 1;
	assert_int_equal(map_find(m, absent), IDMAP_NONE);
	assert_int_equal(idmap_count(m), N);

	/* remove everything in another random order */
	for (uint32_t i = N - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rng_below(i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t i = 0; i < N; i++) {
		uint32_t h = order[i];
		if (map_remove(m, &o, o.keys[h]) != h)
			fail_msg("colliding handle %u not removed", h);
		check_or_fail(m, "collision remove", i);
		assert_int_equal(map_find(m, o.keys[h]), IDMAP_NONE);
		if (i % 50 == 0 || i > N - 20) {
			for (uint32_t k = i + 1; k < N; k++)
				if (map_find(m, o.keys[order[k]]) != order[k])
					fail_msg("handle %u lost after %u "
					    "removals", order[k], i + 1);
		}
	}
	assert_int_equal(idmap_count(m), 0);
	assert_int_equal(idmap_max_probe(m), 0);

	idmap_free(m);
	owner_fini(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basics),
		cmocka_unit_test(test_cluster_shift),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_random_wrapping_cluster),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_collisions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
