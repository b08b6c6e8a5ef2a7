/*
 * test_slab: the size-class allocator hands out non-overlapping records of
 * the asked size, reuses released ones, counts what is in use, and sends
 * large records to malloc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/slab.h"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct rec {
	uint8_t *p;
	size_t n;
	uint8_t fill;
};

/* Random allocations and releases; every live record keeps its bytes. */
static void
test_random(void **state)
{
	(void)state;
	enum { LIVE = 3000, OPS = 300000 };
	struct rec *live = calloc(LIVE, sizeof(*live));
	slab *s = slab_new();
	size_t expect = 0;
	for (int op = 0; op < OPS; op++) {
		struct rec *r = &live[rng() % LIVE];
		if (r->p != NULL) {
			for (size_t i = 0; i < r->n; i++)
				if (r->p[i] != r->fill)
					fail_msg("record overwritten at op %d",
					    op);
			slab_release(s, r->p, r->n);
			if (r->n <= 1024)
				expect -= (r->n + 7) / 8 * 8;
			r->p = NULL;
			continue;
		}
		r->n = 1 + rng() % (rng() % 8 == 0 ? 3000 : 200);
		r->p = slab_alloc(s, r->n);
		assert_int_equal((uintptr_t)r->p % 8, 0);
		r->fill = (uint8_t)rng();
		memset(r->p, r->fill, r->n);
		if (r->n <= 1024)
			expect += (r->n + 7) / 8 * 8;
		assert_int_equal(slab_in_use(s), expect);
	}
	for (int i = 0; i < LIVE; i++)
		if (live[i].p != NULL && live[i].n > 1024)
			slab_release(s, live[i].p, live[i].n);
	slab_free(s);
	free(live);
}

/* A released record is what the next allocation of its class gets. */
static void
test_reuse(void **state)
{
	(void)state;
	slab *s = slab_new();
	void *a = slab_alloc(s, 50);
	void *b = slab_alloc(s, 50);
	assert_ptr_not_equal(a, b);
	slab_release(s, a, 50);
	assert_ptr_equal(slab_alloc(s, 56), a); /* same 56-byte class */
	void *c = slab_alloc(s, 57);		/* the next class */
	assert_ptr_not_equal(c, a);
	assert_ptr_not_equal(c, b);
	assert_int_equal(slab_in_use(s), 56 + 56 + 64);
	slab_free(s);
}

/* Many chunks' worth: memory grows in chunks and all of it is usable. */
static void
test_many_chunks(void **state)
{
	(void)state;
	slab *s = slab_new();
	enum { N = 200000 };
	uint32_t **p = malloc(N * sizeof(*p));
	for (uint32_t i = 0; i < N; i++) {
		p[i] = slab_alloc(s, 24);
		p[i][0] = i;
	}
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(p[i][0], i);
	assert_int_equal(slab_in_use(s), (size_t)N * 24);
	slab_free(s);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_many_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
