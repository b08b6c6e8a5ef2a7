/*
 * strv: see strv.h. Arrays are short (a few strings: refs, stores,
 * arguments), copied once when a job or backend is made. Any thread.
 */
#include "scan/strv.h"

#include <stdlib.h>

#include "util/xmalloc.h"

char **
strv_copy(const char *const *v, size_t n)
{
	if (n == 0)
		return NULL;
	char **c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i] != NULL ? v[i] : "");
	return c;
}

void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}
