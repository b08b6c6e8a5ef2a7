/*
 * xmalloc: the one place that decides what out-of-memory means (abort,
 * naming the size). Any thread may call these.
 */
#include "util/xmalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void
xmalloc_die(const char *what, size_t nmemb, size_t size)
{
	fprintf(stderr, "sbomd: %s: out of memory (%zu x %zu bytes)\n", what,
	    nmemb, size);
	abort();
}

void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		xmalloc_die("xmalloc", 1, size);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die("xcalloc overflow", nmemb, size);
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		xmalloc_die("xcalloc", nmemb, size);
	return p;
}

void *
xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		xmalloc_die("xrealloc", 1, size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		xmalloc_die("xreallocarray overflow", nmemb, size);
	return xrealloc(ptr, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *
xmap_huge(size_t len, bool hint)
{
	const size_t huge = 2u << 20;
	size_t span = len + huge;
	char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		xmalloc_die("xmap_huge", 1, len);
	char *p = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	size_t head = (size_t)(p - raw);
	if (head > 0)
		munmap(raw, head);
	if (span - head > len)
		munmap(p + len, span - head - len);
	if (hint)
		mem_hint_huge(p, len);
	return p;
}

void
xunmap_huge(void *p, size_t len)
{
	if (p != NULL)
		munmap(p, len);
}

void
mem_hint_huge(void *p, size_t len)
{
	const uintptr_t huge = 2u << 20;
	uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(huge - 1);
#ifdef MADV_HUGEPAGE
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
	(void)start;
	(void)end;
#endif
}
