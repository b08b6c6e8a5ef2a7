/*
 * test_strtab: interning with reference counts; freed ids are reused; the
 * last-lookup cache never answers for a freed or reused id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strtab.h"

static void
test_intern_refs(void **state)
{
	(void)state;
	strtab *st = strtab_new();
	uint32_t a = strtab_intern(st, "node-1", 6);
	uint32_t b = strtab_intern(st, "node-2", 6);
	assert_int_not_equal(a, b);
	assert_int_equal(strtab_intern(st, "node-1", 6), a);
	assert_int_equal(strtab_refs(st, a), 2);
	assert_int_equal(strtab_count(st), 2);
	size_t len;
	assert_string_equal(strtab_get(st, a, &len), "node-1");
	assert_int_equal(len, 6);
	/* a prefix is another string */
	assert_int_equal(strtab_lookup(st, "node-", 5), STRTAB_NONE);
	strtab_unref(st, a);
	assert_int_equal(strtab_lookup(st, "node-1", 6), a);
	strtab_unref(st, a);
	assert_int_equal(strtab_lookup(st, "node-1", 6), STRTAB_NONE);
	assert_int_equal(strtab_count(st), 1);
	/* the freed id is reused, and the cache does not confuse the two */
	uint32_t c = strtab_intern(st, "node-3", 6);
	assert_int_equal(c, a);
	assert_int_equal(strtab_lookup(st, "node-1", 6), STRTAB_NONE);
	assert_int_equal(strtab_lookup(st, "node-3", 6), c);
	assert_int_equal(strtab_lookup(st, "node-2", 6), b);
	strtab_free(st);
}

/* Random interning against a naive table of names and counts. */
static void
test_random(void **state)
{
	(void)state;
	enum { NAMES = 300, OPS = 200000 };
	uint32_t refs[NAMES] = {0}, ids[NAMES];
	char name[NAMES][32];
	for (int i = 0; i < NAMES; i++)
		snprintf(name[i], sizeof(name[i]), "node-%d.cluster", i * 7);
	strtab *st = strtab_new();
	uint64_t x = 12345;
	size_t live = 0;
	for (int op = 0; op < OPS; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int i = (int)(x % NAMES);
		size_t n = strlen(name[i]);
		if ((x >> 20) % 2 == 0 || refs[i] == 0) {
			uint32_t id = strtab_intern(st, name[i], n);
			if (refs[i] == 0)
				live++;
			else
				assert_int_equal(id, ids[i]);
			ids[i] = id;
			refs[i]++;
		} else {
			strtab_unref(st, ids[i]);
			if (--refs[i] == 0)
				live--;
		}
		uint32_t got = strtab_lookup(st, name[i], n);
		assert_int_equal(got, refs[i] ? ids[i] : STRTAB_NONE);
		if (refs[i])
			assert_int_equal(strtab_refs(st, ids[i]), refs[i]);
		assert_int_equal(strtab_count(st), live);
	}
	strtab_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intern_refs),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
