/*
 * srcidx: see srcidx.h. Linear probing over a power-of-two array of
 * 12-byte slots {handle, sid, off}, handle == SRCIDX_NONE marking an
 * empty slot; load at most 1/2 (the table doubles past it); deletion
 * shifts the following run back (no tombstones), so lookups never slow
 * down after many deletions. It holds the sources of wide entities only
 * (more than SRCIDX_MIN sources): a few thousand keys in a usual
 * cluster, up to dedup.max_sources per entity.
 */
#include "core/srcidx.h"

#include <stdlib.h>

#include "util/xmalloc.h"

struct slot {
	uint32_t handle; /* SRCIDX_NONE: empty */
	uint32_t sid;
	uint32_t off;
};

struct srcidx {
	struct slot *slots;
	size_t mask; /* capacity - 1 */
	size_t count;
};

static size_t
slot_of(const srcidx *x, uint32_t handle, uint32_t sid)
{
	uint64_t k = ((uint64_t)handle << 32 | sid) * 0x9e3779b97f4a7c15ULL;
	return (size_t)(k >> 32) & x->mask;
}

static void
slots_init(struct slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i].handle = SRCIDX_NONE;
}

srcidx *
srcidx_new(void)
{
	srcidx *x = xcalloc(1, sizeof(*x));
	x->mask = 63;
	x->slots = xcalloc(x->mask + 1, sizeof(*x->slots));
	slots_init(x->slots, x->mask + 1);
	return x;
}

void
srcidx_free(srcidx *x)
{
	if (x == NULL)
		return;
	free(x->slots);
	free(x);
}

uint32_t
srcidx_get(const srcidx *x, uint32_t handle, uint32_t sid)
{
	for (size_t i = slot_of(x, handle, sid);; i = (i + 1) & x->mask) {
		const struct slot *s = &x->slots[i];
		if (s->handle == SRCIDX_NONE)
			return SRCIDX_NONE;
		if (s->handle == handle && s->sid == sid)
			return s->off;
	}
}

static void
grow(srcidx *x)
{
	struct slot *old = x->slots;
	size_t n = x->mask + 1;
	x->mask = 2 * n - 1;
	x->slots = xcalloc(2 * n, sizeof(*x->slots));
	slots_init(x->slots, 2 * n);
	for (size_t k = 0; k < n; k++) {
		if (old[k].handle == SRCIDX_NONE)
			continue;
		size_t i = slot_of(x, old[k].handle, old[k].sid);
		while (x->slots[i].handle != SRCIDX_NONE)
			i = (i + 1) & x->mask;
		x->slots[i] = old[k];
	}
	free(old);
}

void
srcidx_put(srcidx *x, uint32_t handle, uint32_t sid, uint32_t off)
{
	if (2 * (x->count + 1) > x->mask + 1)
		grow(x);
	for (size_t i = slot_of(x, handle, sid);; i = (i + 1) & x->mask) {
		struct slot *s = &x->slots[i];
		if (s->handle == SRCIDX_NONE) {
			*s = (struct slot){handle, sid, off};
			x->count++;
			return;
		}
		if (s->handle == handle && s->sid == sid) {
			s->off = off;
			return;
		}
	}
}

void
srcidx_del(srcidx *x, uint32_t handle, uint32_t sid)
{
	size_t i = slot_of(x, handle, sid);
	for (;; i = (i + 1) & x->mask) {
		struct slot *s = &x->slots[i];
		if (s->handle == SRCIDX_NONE)
			return;
		if (s->handle == handle && s->sid == sid)
			break;
	}
	/* Backward shift: move each later slot of the run into the hole
	 * when its home is not between the hole and itself. */
	size_t hole = i;
	for (size_t j = (i + 1) & x->mask;; j = (j + 1) & x->mask) {
		struct slot *s = &x->slots[j];
		if (s->handle == SRCIDX_NONE)
			break;
		size_t home = slot_of(x, s->handle, s->sid);
		if (((j - home) & x->mask) >= ((j - hole) & x->mask)) {
			x->slots[hole] = *s;
			hole = j;
		}
	}
	x->slots[hole].handle = SRCIDX_NONE;
	x->count--;
}

size_t
srcidx_count(const srcidx *x)
{
	return x->count;
}
