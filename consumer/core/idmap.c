/*
 * idmap: open addressing with linear probing over a power-of-two table of
 * 8-byte slots {hash, handle}. The load factor is kept at or below 3/4;
 * lookups compare the stored 32-bit hash first, so the owner's eq callback
 * (which touches the entry, a likely cache miss) runs about once per hit.
 *
 * Deletion shifts later members of the cluster back instead of leaving
 * tombstones, so millions of insert/delete cycles leave the table exactly
 * as if the survivors had been inserted fresh: lookups never degrade.
 *
 * Invariant: for every occupied slot i, no slot between home(hash) and i
 * (cyclically) is empty.
 *
 * Image keys are SHA-256 digests, already uniform: the caller passes their
 * first bytes as the hash. Single-threaded: the engine thread owns it.
 */
#include "core/idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

struct slot {
	uint32_t hash;
	uint32_t handle; /* IDMAP_NONE when empty */
};

struct idmap {
	struct slot *slots;
	size_t mask; /* capacity - 1 */
	size_t count;
	size_t grow_at; /* count that triggers doubling: 3/4 of capacity */
	idmap_eq_fn eq;
	void *ctx;
};

#define IDMAP_MIN_CAPACITY 64

static void
idmap_alloc(idmap *m, size_t capacity)
{
	m->slots = xmalloc(capacity * sizeof(*m->slots));
	mem_hint_huge(m->slots, capacity * sizeof(*m->slots));
	for (size_t i = 0; i < capacity; i++)
		m->slots[i].handle = IDMAP_NONE;
	m->mask = capacity - 1;
	m->grow_at = capacity / 4 * 3;
}

idmap *
idmap_new(idmap_eq_fn eq, void *ctx)
{
	idmap *m = xcalloc(1, sizeof(*m));
	m->eq = eq;
	m->ctx = ctx;
	idmap_alloc(m, IDMAP_MIN_CAPACITY);
	return m;
}

void
idmap_free(idmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static void
idmap_place(idmap *m, uint32_t hash, uint32_t handle)
{
	size_t i = hash & m->mask;
	while (m->slots[i].handle != IDMAP_NONE)
		i = (i + 1) & m->mask;
	m->slots[i].hash = hash;
	m->slots[i].handle = handle;
}

static void
idmap_resize(idmap *m, size_t capacity)
{
	struct slot *old = m->slots;
	size_t oldcap = m->mask + 1;

	idmap_alloc(m, capacity);
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].handle != IDMAP_NONE)
			idmap_place(m, old[i].hash, old[i].handle);
	free(old);
}

void
idmap_reserve(idmap *m, size_t n)
{
	size_t cap = m->mask + 1;
	while (cap / 4 * 3 < n)
		cap *= 2;
	if (cap != m->mask + 1)
		idmap_resize(m, cap);
}

uint32_t
idmap_find(const idmap *m, uint32_t hash, const void *key)
{
	size_t i = hash & m->mask;
	for (;;) {
		const struct slot *s = &m->slots[i];
		if (s->handle == IDMAP_NONE)
			return IDMAP_NONE;
		if (s->hash == hash && m->eq(m->ctx, s->handle, key))
			return s->handle;
		i = (i + 1) & m->mask;
	}
}

void
idmap_prefetch(const idmap *m, uint32_t hash)
{
	__builtin_prefetch(&m->slots[hash & m->mask]);
}

uint32_t
idmap_peek(const idmap *m, uint32_t hash)
{
	size_t i = hash & m->mask;
	for (;;) {
		const struct slot *s = &m->slots[i];
		if (s->handle == IDMAP_NONE || s->hash == hash)
			return s->handle;
		i = (i + 1) & m->mask;
	}
}

void
idmap_insert(idmap *m, uint32_t hash, uint32_t handle)
{
	if (m->count + 1 > m->grow_at)
		idmap_resize(m, (m->mask + 1) * 2);
	idmap_place(m, hash, handle);
	m->count++;
}

uint32_t
idmap_remove(idmap *m, uint32_t hash, const void *key)
{
	size_t i = hash & m->mask;
	for (;;) {
		struct slot *s = &m->slots[i];
		if (s->handle == IDMAP_NONE)
			return IDMAP_NONE;
		if (s->hash == hash && m->eq(m->ctx, s->handle, key))
			break;
		i = (i + 1) & m->mask;
	}
	uint32_t found = m->slots[i].handle;

	/* Backward shift: pull later cluster members into the hole when the
	 * hole lies between their home and their slot. */
	size_t hole = i;
	size_t j = i;
	for (;;) {
		j = (j + 1) & m->mask;
		struct slot *s = &m->slots[j];
		if (s->handle == IDMAP_NONE)
			break;
		size_t home = s->hash & m->mask;
		/* distance home->j versus hole->j, cyclically */
		if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
			m->slots[hole] = *s;
			hole = j;
		}
	}
	m->slots[hole].handle = IDMAP_NONE;
	m->count--;
	return found;
}

size_t
idmap_count(const idmap *m)
{
	return m->count;
}

size_t
idmap_capacity(const idmap *m)
{
	return m->mask + 1;
}

size_t
idmap_max_probe(const idmap *m)
{
	size_t worst = 0;
	for (size_t i = 0; i <= m->mask; i++) {
		if (m->slots[i].handle == IDMAP_NONE)
			continue;
		size_t d = (i - (m->slots[i].hash & m->mask)) & m->mask;
		if (d > worst)
			worst = d;
	}
	return worst;
}

int
idmap_check(const idmap *m, char *err, size_t errlen)
{
	size_t n = 0;
	for (size_t i = 0; i <= m->mask; i++) {
		const struct slot *s = &m->slots[i];
		if (s->handle == IDMAP_NONE)
			continue;
		n++;
		for (size_t k = s->hash & m->mask; k != i; k = (k + 1) & m->mask) {
			if (m->slots[k].handle == IDMAP_NONE) {
				errbuf_set(err, errlen,
				    "slot %zu (handle %u) unreachable: empty "
				    "slot %zu before it", i, s->handle, k);
				return -EINVAL;
			}
		}
	}
	if (n != m->count) {
		errbuf_set(err, errlen, "count %zu but %zu occupied slots",
		    m->count, n);
		return -EINVAL;
	}
	if (m->count > m->grow_at) {
		errbuf_set(err, errlen, "load %zu over limit %zu", m->count,
		    m->grow_at);
		return -EINVAL;
	}
	return 0;
}
