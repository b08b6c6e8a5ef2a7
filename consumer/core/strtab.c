/*
 * strtab: an array of {string, refs} indexed by id, a free list of ids,
 * and an idmap from FNV-1a hash to id. Sizes: one string per node of the
 * cluster, so thousands, not millions. Single-threaded (engine thread).
 */
#include "core/strtab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"
#include "util/xmalloc.h"

struct str {
	char *s; /* NULL when the id is free */
	uint32_t len;
	uint32_t refs;
	uint32_t hash;
	uint32_t next_free;
};

struct strtab {
	struct str *strs;
	size_t len, cap;
	uint32_t free_head; /* STRTAB_NONE when empty */
	uint32_t last;	    /* the id last looked up: events come in runs
			     * from one source; may be stale (checked) */
	size_t count;
	idmap *map;
};

struct probe {
	const char *s;
	size_t len;
};

static bool
strtab_eq(void *ctx, uint32_t id, const void *key)
{
	const strtab *st = ctx;
	const struct probe *p = key;
	const struct str *e = &st->strs[id];
	return e->len == p->len && memcmp(e->s, p->s, p->len) == 0;
}

static uint32_t
strtab_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

strtab *
strtab_new(void)
{
	strtab *st = xcalloc(1, sizeof(*st));
	st->free_head = STRTAB_NONE;
	st->last = STRTAB_NONE;
	st->map = idmap_new(strtab_eq, st);
	return st;
}

void
strtab_free(strtab *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->len; i++)
		free(st->strs[i].s);
	free(st->strs);
	idmap_free(st->map);
	free(st);
}

uint32_t
strtab_lookup(strtab *st, const char *s, size_t len)
{
	if (st->last < st->len) {
		const struct str *e = &st->strs[st->last];
		if (e->s != NULL && e->len == len && memcmp(e->s, s, len) == 0)
			return st->last;
	}
	struct probe p = {s, len};
	uint32_t id = idmap_find(st->map, strtab_hash(s, len), &p);
	if (id == IDMAP_NONE)
		return STRTAB_NONE;
	st->last = id;
	return id;
}

uint32_t
strtab_intern(strtab *st, const char *s, size_t len)
{
	uint32_t id = strtab_lookup(st, s, len);
	if (id != STRTAB_NONE) {
		st->strs[id].refs++;
		return id;
	}
	uint32_t hash = strtab_hash(s, len);
	if (st->free_head != STRTAB_NONE) {
		id = st->free_head;
		st->free_head = st->strs[id].next_free;
	} else {
		if (st->len == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 64;
			st->strs = xreallocarray(st->strs, st->cap,
			    sizeof(*st->strs));
		}
		id = (uint32_t)st->len++;
	}
	struct str *e = &st->strs[id];
	e->s = xstrndup(s, len);
	e->len = (uint32_t)len;
	e->refs = 1;
	e->hash = hash;
	e->next_free = STRTAB_NONE;
	idmap_insert(st->map, hash, id);
	st->count++;
	return id;
}

void
strtab_ref(strtab *st, uint32_t id)
{
	st->strs[id].refs++;
}

void
strtab_unref(strtab *st, uint32_t id)
{
	struct str *e = &st->strs[id];
	if (--e->refs > 0)
		return;
	struct probe p = {e->s, e->len};
	idmap_remove(st->map, e->hash, &p);
	free(e->s);
	e->s = NULL;
	e->next_free = st->free_head;
	st->free_head = id;
	st->count--;
}

const char *
strtab_get(const strtab *st, uint32_t id, size_t *len)
{
	if (len != NULL)
		*len = st->strs[id].len;
	return st->strs[id].s;
}

size_t
strtab_count(const strtab *st)
{
	return st->count;
}

uint32_t
strtab_refs(const strtab *st, uint32_t id)
{
	return id < st->len && st->strs[id].s != NULL ? st->strs[id].refs : 0;
}
