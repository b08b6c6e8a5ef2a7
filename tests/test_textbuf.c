/*
 * test_textbuf: the growing text buffer (consumer/util/textbuf) and the
 * bump arena (consumer/util/arena), both basement utilities.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/textbuf.h"

static void
test_textbuf(void **state)
{
	(void)state;
	struct textbuf b = { 0 };
	size_t len;
	char *s = textbuf_take(&b, &len); /* empty: "" not NULL */
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);

	for (int i = 0; i < 1000; i++)
		textbuf_printf(&b, "%d,", i);
	textbuf_append(&b, "end", 3);
	textbuf_append_html(&b, "<a href=\"x\">&'</a>");
	s = textbuf_take(&b, &len);
	assert_int_equal(len, strlen(s));
	assert_int_equal(strncmp(s, "0,1,2,", 6), 0);
	assert_non_null(strstr(s, "998,999,end&lt;a href=&quot;x&quot;&gt;"
				  "&amp;&#39;&lt;/a&gt;"));
	assert_null(b.data);
	free(s);

	/* One long line: more than the doubling from the first block. */
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	textbuf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, sizeof(big) + 1);
	assert_int_equal(b.data[b.len], '\0');
	textbuf_free(&b);
}

static void
test_arena(void **state)
{
	(void)state;
	struct arena a = { 0 };
	char *p[100];
	for (int i = 0; i < 100; i++) {
		p[i] = arena_alloc(&a, 30000); /* several blocks */
		assert_int_equal((uintptr_t)p[i] % 8, 0);
		memset(p[i], i, 30000);
	}
	for (int i = 0; i < 100; i++)
		assert_int_equal((unsigned char)p[i][29999], i);
	char *s = arena_strndup(&a, "abcdef", 3);
	assert_string_equal(s, "abc");
	char *huge = arena_alloc(&a, 3u << 20); /* larger than a block */
	memset(huge, 1, 3u << 20);
	arena_reset(&a);
	s = arena_strndup(&a, NULL, 0);
	assert_string_equal(s, "");
	arena_free(&a);
	assert_null(a.head);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_textbuf),
		cmocka_unit_test(test_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
