/*
 * test_dueheap: the indexed 4-ary min-heap of due times
 * (consumer/core/dueheap).
 *
 * Order is (due, insertion sequence): among equal due times the handle
 * pushed (or updated) first comes out first. The naive reference below is
 * an array with a linear minimum scan and its own 64-bit sequence counter,
 * bumped on every push and every update, so it never wraps; the heap's
 * 32-bit counter is pushed to the edge with dueheap_set_next_seq to make it
 * renumber, and the two must still agree exactly.
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

#include "core/dueheap.h"
#include "util/xmalloc.h"
#include "testutil.h"

static void
check_or_fail(const dueheap *h, const char *when, size_t op)
{
	char err[256] = "";
	if (dueheap_check(h, err, sizeof(err)) != 0)
		fail_msg("dueheap_check after %s (op %zu): %s", when, op, err);
}

/* ---- the naive reference ---- */

struct ref {
	size_t nh;	 /* handles 0..nh-1 */
	bool *in;
	int64_t *due;
	uint64_t *seq;
	uint32_t *list;	 /* present handles, unordered */
	size_t *at;	 /* at[h]: index in list */
	size_t n;
	uint64_t next_seq;
};

static void
ref_init(struct ref *r, size_t nh)
{
	r->nh = nh;
	r->in = xcalloc(nh, sizeof(*r->in));
	r->due = xcalloc(nh, sizeof(*r->due));
	r->seq = xcalloc(nh, sizeof(*r->seq));
	r->list = xcalloc(nh, sizeof(*r->list));
	r->at = xcalloc(nh, sizeof(*r->at));
	r->n = 0;
	r->next_seq = 0;
}

static void
ref_fini(struct ref *r)
{
	free(r->in);
	free(r->due);
	free(r->seq);
	free(r->list);
	free(r->at);
}

static void
ref_push(struct ref *r, uint32_t h, int64_t due)
{
	assert_false(r->in[h]);
	r->in[h] = true;
	r->due[h] = due;
	r->seq[h] = r->next_seq++;
	r->at[h] = r->n;
	r->list[r->n++] = h;
}

static void
ref_update(struct ref *r, uint32_t h, int64_t due)
{
	assert_true(r->in[h]);
	r->due[h] = due;
	r->seq[h] = r->next_seq++;
}

static void
ref_remove(struct ref *r, uint32_t h)
{
	assert_true(r->in[h]);
	size_t i = r->at[h];
	uint32_t last = r->list[--r->n];
	r->list[i] = last;
	r->at[last] = i;
	r->in[h] = false;
}

static bool
ref_less(const struct ref *r, uint32_t a, uint32_t b)
{
	return r->due[a] < r->due[b] ||
	    (r->due[a] == r->due[b] && r->seq[a] < r->seq[b]);
}

/* The soonest handle by linear scan, or UINT32_MAX when empty. */
static uint32_t
ref_min(const struct ref *r)
{
	uint32_t best = UINT32_MAX;
	for (size_t i = 0; i < r->n; i++)
		if (best == UINT32_MAX || ref_less(r, r->list[i], best))
			best = r->list[i];
	return best;
}

/* Pops everything from h and compares it with the reference order. */
static void
drain_and_compare(dueheap *h, struct ref *r, const char *what)
{
	size_t k = 0;
	while (r->n > 0) {
		uint32_t want = ref_min(r);
		uint32_t got;
		int64_t due;
		if (!dueheap_pop(h, &got, &due))
			fail_msg("%s: heap empty at pop %zu, reference has %zu",
			    what, k, r->n);
		if (got != want || due != r->due[want])
			fail_msg("%s: pop %zu gave (%u, %lld), want (%u, %lld)",
			    what, k, got, (long long)due, want,
			    (long long)r->due[want]);
		ref_remove(r, want);
		check_or_fail(h, what, k);
		k++;
	}
	uint32_t hh;
	int64_t dd;
	assert_int_equal(dueheap_size(h), 0);
	assert_false(dueheap_pop(h, &hh, &dd));
}

/* ---- tests ---- */

static void
test_basics(void **state)
{
	uint32_t hh;
	int64_t dd;
	(void)state;

	dueheap_free(NULL);
	dueheap *h = dueheap_new();
	assert_int_equal(dueheap_size(h), 0);
	assert_false(dueheap_peek(h, &hh, &dd));
	assert_false(dueheap_pop(h, &hh, &dd));
	assert_false(dueheap_contains(h, 0));
	assert_false(dueheap_contains(h, 123456));
	assert_false(dueheap_remove(h, 0));
	assert_false(dueheap_remove(h, 99));
	check_or_fail(h, "new", 0);

	dueheap_push(h, 3, 300);
	dueheap_push(h, 1, 100);
	dueheap_push(h, 2, 200);
	check_or_fail(h, "push", 3);
	assert_int_equal(dueheap_size(h), 3);
	assert_true(dueheap_contains(h, 1));
	assert_false(dueheap_contains(h, 4));
	assert_int_equal(dueheap_due(h, 2), 200);

	assert_true(dueheap_peek(h, &hh, &dd));
	assert_int_equal(hh, 1);
	assert_int_equal(dd, 100);
	assert_int_equal(dueheap_size(h), 3); /* peek does not remove */

	/* a handle far beyond the index so far: the index grows */
	dueheap_push(h, 1000000, 50);
	check_or_fail(h, "push big handle", 4);
	assert_true(dueheap_contains(h, 1000000));
	assert_false(dueheap_contains(h, 999999));
	assert_false(dueheap_remove(h, 999999));
	assert_false(dueheap_remove(h, 50000000));
	assert_true(dueheap_peek(h, &hh, &dd));
	assert_int_equal(hh, 1000000);

	/* negative and extreme due times order as signed values */
	dueheap_push(h, 7, -5);
	dueheap_push(h, 8, INT64_MIN);
	dueheap_push(h, 9, INT64_MAX);
	check_or_fail(h, "extremes", 7);

	assert_true(dueheap_remove(h, 2));
	assert_false(dueheap_remove(h, 2));
	assert_false(dueheap_contains(h, 2));
	check_or_fail(h, "remove", 2);

	static const struct {
		uint32_t h;
		int64_t due;
	} want[] = {
		{8, INT64_MIN}, {7, -5}, {1000000, 50}, {1, 100}, {3, 300},
		{9, INT64_MAX},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_true(dueheap_pop(h, &hh, &dd));
		assert_int_equal(hh, want[i].h);
		assert_true(dd == want[i].due);
		assert_false(dueheap_contains(h, hh));
		check_or_fail(h, "pop", i);
	}
	assert_int_equal(dueheap_size(h), 0);
	assert_false(dueheap_pop(h, &hh, &dd));

	/* a popped handle can be pushed again */
	dueheap_push(h, 1, 10);
	assert_true(dueheap_contains(h, 1));
	assert_int_equal(dueheap_due(h, 1), 10);
	dueheap_free(h);
}

static void
expect_pops(dueheap *h, const uint32_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t hh;
		int64_t dd;
		assert_true(dueheap_pop(h, &hh, &dd));
		if (hh != want[i])
			fail_msg("pop %zu gave handle %u, want %u", i, hh,
			    want[i]);
		check_or_fail(h, "pop", i);
	}
	assert_int_equal(dueheap_size(h), 0);
}

static void
test_ties(void **state)
{
	(void)state;
	dueheap *h = dueheap_new();

	/* equal due times come out in push order, whatever the handles */
	dueheap_push(h, 10, 100);
	dueheap_push(h, 5, 100);
	dueheap_push(h, 7, 100);
	dueheap_push(h, 3, 50);
	dueheap_push(h, 1, 100);
	dueheap_push(h, 8, 100);
	expect_pops(h, (const uint32_t[]){3, 10, 5, 7, 1, 8}, 6);

	/* many equal ones, so that ties cross several heap levels */
	for (uint32_t i = 0; i < 500; i++)
		dueheap_push(h, (i * 7919u) % 500u, 42);
	for (uint32_t i = 0; i < 500; i++) {
		uint32_t hh;
		int64_t dd;
		assert_true(dueheap_pop(h, &hh, &dd));
		assert_int_equal(hh, (i * 7919u) % 500u);
	}

	/* update with the same due time moves a handle behind its peers */
	dueheap_push(h, 1, 100);
	dueheap_push(h, 2, 100);
	dueheap_push(h, 3, 100);
	dueheap_update(h, 1, 100);
	check_or_fail(h, "update same due", 1);
	expect_pops(h, (const uint32_t[]){2, 3, 1}, 3);

	dueheap_push(h, 1, 100);
	dueheap_push(h, 2, 100);
	dueheap_push(h, 3, 100);
	dueheap_update(h, 3, 99);  /* earlier: first */
	dueheap_update(h, 1, 101); /* later: last */
	dueheap_update(h, 1, 100); /* back, but now after 2 */
	assert_int_equal(dueheap_due(h, 1), 100);
	assert_int_equal(dueheap_due(h, 3), 99);
	check_or_fail(h, "updates", 3);
	expect_pops(h, (const uint32_t[]){3, 2, 1}, 3);

	/* remove and push again: a new sequence, so behind its peers */
	dueheap_push(h, 1, 100);
	dueheap_push(h, 2, 100);
	assert_true(dueheap_remove(h, 1));
	dueheap_push(h, 1, 100);
	dueheap_push(h, 3, 100);
	expect_pops(h, (const uint32_t[]){2, 1, 3}, 3);

	dueheap_free(h);
}

static int64_t
random_due(int mode)
{
	switch (mode) {
	case 0: /* narrow: lots of ties */
		return 1000 + (int64_t)rng_below(16);
	case 1: /* wide, both signs */
		return (int64_t)(rng_next() % 2000000000001ULL) - 1000000000000;
	default:
		switch (rng_below(6)) {
		case 0: return INT64_MIN;
		case 1: return INT64_MAX;
		case 2: return 0;
		default: return (int64_t)rng_below(8);
		}
	}
}

static void
compare_all(const dueheap *h, const struct ref *r, size_t op)
{
	for (uint32_t x = 0; x < r->nh; x++) {
		if (dueheap_contains(h, x) != r->in[x])
			fail_msg("op %zu: contains(%u) = %d, reference %d", op,
			    x, dueheap_contains(h, x), r->in[x]);
		if (r->in[x] && dueheap_due(h, x) != r->due[x])
			fail_msg("op %zu: due(%u) = %lld, reference %lld", op,
			    x, (long long)dueheap_due(h, x),
			    (long long)r->due[x]);
	}
}

static void
test_random_vs_reference(void **state)
{
	enum { NH = 2048, MAX_SIZE = 1000 };
	const size_t ops = 320000;
	struct ref r;
	size_t target = MAX_SIZE / 2;
	int mode = 0;
	size_t counts[7] = {0};
	size_t peak = 0, wraps = 0;
	(void)state;

	rng_seed(0xD0E4EA9);
	ref_init(&r, NH);
	dueheap *h = dueheap_new();

	for (size_t op = 0; op < ops; op++) {
		if (op % 8000 == 0) {
			mode = (int)rng_below(3);
			switch (rng_below(4)) {
			case 0: target = 0; break;
			case 1: target = MAX_SIZE; break;
			default: target = rng_below(MAX_SIZE + 1); break;
			}
		}
		/* Bring the 32-bit sequence to the edge now and then; the heap
		 * must renumber within the next few hundred pushes/updates
		 * without changing the order. Every sequence in use is far
		 * below this by then. */
		if (op % 37000 == 36999) {
			dueheap_set_next_seq(h, UINT32_MAX - (uint32_t)rng_below(300));
			wraps++;
		}

		unsigned push_w = r.n < target ? 40 : 10;
		unsigned pop_w = r.n < target ? 5 : 25;
		unsigned x = (unsigned)rng_below(push_w + pop_w + 55);
		int kind;
		if (x < push_w)
			kind = 0; /* push */
		else if (x < push_w + pop_w)
			kind = 1; /* pop */
		else if (x < push_w + pop_w + 10)
			kind = 2; /* peek */
		else if (x < push_w + pop_w + 35)
			kind = 3; /* update */
		else if (x < push_w + pop_w + 45)
			kind = 4; /* remove present */
		else if (x < push_w + pop_w + 50)
			kind = 5; /* remove absent */
		else
			kind = 6; /* contains / due */
		if (kind == 0 && r.n >= MAX_SIZE)
			kind = 1;
		counts[kind]++;

		switch (kind) {
		case 0: {
			uint32_t hd;
			do
				hd = (uint32_t)rng_below(NH);
			while (r.in[hd]);
			int64_t due = random_due(mode);
			dueheap_push(h, hd, due);
			ref_push(&r, hd, due);
			assert_true(dueheap_contains(h, hd));
			break;
		}
		case 1:
		case 2: {
			uint32_t want = ref_min(&r), got = 0;
			int64_t due = 0;
			bool found = kind == 1 ? dueheap_pop(h, &got, &due) :
			    dueheap_peek(h, &got, &due);
			if (want == UINT32_MAX) {
				if (found)
					fail_msg("op %zu: %s on empty heap "
					    "gave (%u, %lld)", op, kind == 1 ?
					    "pop" : "peek", got, (long long)due);
				break;
			}
			if (!found || got != want || due != r.due[want])
				fail_msg("op %zu: %s gave %d (%u, %lld), "
				    "want (%u, %lld)", op,
				    kind == 1 ? "pop" : "peek", found, got,
				    (long long)due, want,
				    (long long)r.due[want]);
			if (kind == 1) {
				ref_remove(&r, want);
				assert_false(dueheap_contains(h, want));
			}
			break;
		}
		case 3:
		case 4: {
			if (r.n == 0)
				break;
			uint32_t hd = r.list[rng_below(r.n)];
			if (kind == 3) {
				int64_t due;
				switch (rng_below(3)) {
				case 0: due = r.due[hd]; break; /* same */
				case 1: due = random_due(mode); break;
				default: due = random_due((int)rng_below(3));
				}
				dueheap_update(h, hd, due);
				ref_update(&r, hd, due);
				assert_true(dueheap_due(h, hd) == due);
			} else {
				assert_true(dueheap_remove(h, hd));
				ref_remove(&r, hd);
				assert_false(dueheap_contains(h, hd));
			}
			break;
		}
		case 5: {
			uint32_t hd = (uint32_t)rng_below(NH + 100);
			if (hd < NH && r.in[hd])
				break;
			assert_false(dueheap_remove(h, hd));
			break;
		}
		case 6: {
			uint32_t hd = (uint32_t)rng_below(NH);
			assert_int_equal(dueheap_contains(h, hd), r.in[hd]);
			if (r.in[hd])
				assert_true(dueheap_due(h, hd) == r.due[hd]);
			break;
		}
		}

		check_or_fail(h, "random op", op);
		if (dueheap_size(h) != r.n)
			fail_msg("op %zu: size %zu, reference %zu", op,
			    dueheap_size(h), r.n);
		if (r.n > peak)
			peak = r.n;
		if (op % 1000 == 999)
			compare_all(h, &r, op);
	}
	assert_int_equal(peak, MAX_SIZE);
	assert_true(wraps >= 8);
	for (int k = 0; k < 7; k++)
		assert_true(counts[k] > ops / 40);

	drain_and_compare(h, &r, "final drain");
	ref_fini(&r);
	dueheap_free(h);
}

/* Fills a (pushing) and b (append + build) with the same sequence. */
static void
build_case(size_t n, int mode, uint64_t seed)
{
	struct ref r;
	size_t nh = n * 3 + 8;

	rng_seed(seed);
	ref_init(&r, nh);
	dueheap *a = dueheap_new();
	dueheap *b = dueheap_new();
	for (size_t i = 0; i < n; i++) {
		uint32_t hd;
		do
			hd = (uint32_t)rng_below(nh);
		while (r.in[hd]);
		int64_t due = random_due(mode);
		dueheap_push(a, hd, due);
		dueheap_append(b, hd, due);
		ref_push(&r, hd, due);
	}
	dueheap_build(b);
	check_or_fail(a, "pushes", n);
	check_or_fail(b, "append + build", n);
	assert_int_equal(dueheap_size(b), n);

	/* keep using the built heap: pushes and updates after the build */
	for (size_t i = 0; i < n / 4 + 1; i++) {
		uint32_t hd;
		do
			hd = (uint32_t)rng_below(nh);
		while (r.in[hd]);
		int64_t due = random_due(mode);
		dueheap_push(a, hd, due);
		dueheap_push(b, hd, due);
		ref_push(&r, hd, due);
		uint32_t u = r.list[rng_below(r.n)];
		due = random_due(mode);
		dueheap_update(a, u, due);
		dueheap_update(b, u, due);
		ref_update(&r, u, due);
	}
	check_or_fail(b, "after build", n);

	/* both pop the exact same sequence, the reference's */
	while (r.n > 0) {
		uint32_t want = ref_min(&r), ha, hb;
		int64_t da, db;
		assert_true(dueheap_pop(a, &ha, &da));
		assert_true(dueheap_pop(b, &hb, &db));
		if (ha != want || hb != want || da != r.due[want] ||
		    db != r.due[want])
			fail_msg("n=%zu: pushed heap gave %u, built heap %u, "
			    "want %u", n, ha, hb, want);
		ref_remove(&r, want);
	}
	assert_int_equal(dueheap_size(a), 0);
	assert_int_equal(dueheap_size(b), 0);
	dueheap_free(a);
	dueheap_free(b);
	ref_fini(&r);
}

static void
test_append_build(void **state)
{
	(void)state;

	/* empty and tiny heaps: every boundary of the build loop */
	for (size_t n = 0; n <= 90; n++)
		for (int mode = 0; mode < 3; mode++)
			build_case(n, mode, 0xB1D + n * 3 + (size_t)mode);
	build_case(1000, 0, 11);
	build_case(5000, 1, 12);
	build_case(5000, 2, 13);

	/* append order breaks ties: handles appended in reverse */
	dueheap *h = dueheap_new();
	for (uint32_t i = 0; i < 100; i++)
		dueheap_append(h, 99 - i, 7);
	dueheap_build(h);
	check_or_fail(h, "reverse append", 100);
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t hh;
		int64_t dd;
		assert_true(dueheap_pop(h, &hh, &dd));
		assert_int_equal(hh, 99 - i);
	}
	dueheap_free(h);
}

/*
 * The 32-bit sequence wraps: start it `before` steps short of UINT32_MAX,
 * then push (even steps) and update (odd steps, or random) `steps` times
 * with due times in a tiny range, so nearly every comparison is a tie
 * broken by the sequence. The order must stay (due, insertion order).
 */
static void
wrap_case(uint32_t before, size_t steps, int random_kinds, uint64_t seed)
{
	enum { NH = 512 };
	struct ref r;

	rng_seed(seed);
	ref_init(&r, NH);
	dueheap *h = dueheap_new();

	/* some residents with low sequence numbers first */
	for (uint32_t i = 0; i < 30; i++) {
		int64_t due = (int64_t)rng_below(4);
		dueheap_push(h, i, due);
		ref_push(&r, i, due);
	}
	dueheap_set_next_seq(h, UINT32_MAX - before);
	check_or_fail(h, "set_next_seq", 0);

	for (size_t s = 0; s < steps; s++) {
		bool push = random_kinds ? rng_below(2) == 0 : s % 2 == 0;
		int64_t due = (int64_t)rng_below(4);
		if (push && r.n < NH) {
			uint32_t hd;
			do
				hd = (uint32_t)rng_below(NH);
			while (r.in[hd]);
			dueheap_push(h, hd, due);
			ref_push(&r, hd, due);
		} else {
			uint32_t hd = r.list[rng_below(r.n)];
			dueheap_update(h, hd, due);
			ref_update(&r, hd, due);
		}
		check_or_fail(h, "wrap step", s);
		assert_int_equal(dueheap_size(h), r.n);
		uint32_t hh;
		int64_t dd;
		assert_true(dueheap_peek(h, &hh, &dd));
		if (hh != ref_min(&r))
			fail_msg("step %zu: peek %u, want %u", s, hh,
			    ref_min(&r));
	}
	compare_all(h, &r, steps);
	/* a push after the wrap still sorts after older equal ones */
	uint32_t late;
	for (late = 0; r.in[late]; late++)
		;
	dueheap_push(h, late, 0);
	ref_push(&r, late, 0);
	drain_and_compare(h, &r, "wrap drain");

	ref_fini(&r);
	dueheap_free(h);
}

static void
test_seq_wraparound(void **state)
{
	(void)state;

	/* the wrap lands on a push, then on an update */
	wrap_case(50, 200, 0, 21);
	wrap_case(51, 200, 0, 22);
	/* right at the edge, and random mixes */
	wrap_case(0, 200, 0, 23);
	wrap_case(1, 200, 1, 24);
	for (uint64_t s = 0; s < 20; s++)
		wrap_case((uint32_t)(s * 7), 200, 1, 100 + s);

	/* wrapping during a bulk load (append), then build */
	struct ref r;
	rng_seed(31);
	ref_init(&r, 256);
	dueheap *h = dueheap_new();
	dueheap_set_next_seq(h, UINT32_MAX - 10);
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t hd = (i * 37u) % 256u;
		int64_t due = (int64_t)rng_below(3);
		dueheap_append(h, hd, due);
		ref_push(&r, hd, due);
	}
	dueheap_build(h);
	check_or_fail(h, "append across wrap", 100);
	drain_and_compare(h, &r, "append wrap drain");
	ref_fini(&r);
	dueheap_free(h);
}

static void
test_renumber(void **state)
{
	struct ref r;
	(void)state;

	rng_seed(41);
	ref_init(&r, 300);
	dueheap *h = dueheap_new();
	dueheap_renumber(h); /* empty: harmless */
	check_or_fail(h, "renumber empty", 0);
	for (uint32_t i = 0; i < 200; i++) {
		int64_t due = (int64_t)rng_below(5);
		dueheap_push(h, i, due);
		ref_push(&r, i, due);
		if (i % 3 == 0) {
			uint32_t u = r.list[rng_below(r.n)];
			dueheap_update(h, u, due);
			ref_update(&r, u, due);
		}
	}
	dueheap_renumber(h);
	check_or_fail(h, "renumber", 200);
	compare_all(h, &r, 200);
	/* pushes after renumbering sort after everything equal before */
	for (uint32_t i = 200; i < 300; i++) {
		int64_t due = (int64_t)rng_below(5);
		dueheap_push(h, i, due);
		ref_push(&r, i, due);
	}
	check_or_fail(h, "push after renumber", 300);
	drain_and_compare(h, &r, "renumber drain");
	ref_fini(&r);
	dueheap_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basics),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_random_vs_reference),
		cmocka_unit_test(test_append_build),
		cmocka_unit_test(test_seq_wraparound),
		cmocka_unit_test(test_renumber),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
