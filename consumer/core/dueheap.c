/*
 * dueheap: a 4-ary min-heap of 16-byte nodes {due, handle, seq}.
 *
 * Four children of a node are one 64-byte cache line, so a sift-down
 * touches about log4(n) lines: 10 for a million queued entries. A separate
 * dense array pos[handle] (4 bytes per handle, HEAP_NONE when absent) gives
 * each handle's slot, which is what makes cancel and reschedule O(log n);
 * it is kept apart from the tracker's entries so that moving a node writes
 * to a small, cache-friendly array rather than to a random entry.
 *
 * Order: (due, seq). seq is a 32-bit insertion counter; when it is about
 * to wrap, every node is renumbered 0..n-1 in heap order (O(n log n), once
 * per four billion pushes), so comparisons stay plain unsigned ones.
 *
 * Invariant: node[i] <= node[child] for every child; pos[node[i].handle]
 * == i for every i; pos[x] == HEAP_NONE for handles not in the heap.
 *
 * Single-threaded: the engine thread owns it.
 */
#include "core/dueheap.h"

#include <errno.h>
#include <stdlib.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

#define HEAP_NONE UINT32_MAX
#define ARITY 4

struct node {
	int64_t due;
	uint32_t handle;
	uint32_t seq;
};

struct dueheap {
	struct node *nodes;
	size_t len, cap;
	uint32_t *pos; /* pos[handle]: slot in nodes, or HEAP_NONE */
	size_t poscap;
	uint32_t next_seq;
};

dueheap *
dueheap_new(void)
{
	return xcalloc(1, sizeof(dueheap));
}

void
dueheap_free(dueheap *h)
{
	if (h == NULL)
		return;
	free(h->nodes);
	free(h->pos);
	free(h);
}

static inline bool
node_less(const struct node *a, const struct node *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
pos_reserve(dueheap *h, uint32_t handle)
{
	if (handle < h->poscap)
		return;
	size_t ncap = h->poscap ? h->poscap : 1024;
	while (ncap <= handle)
		ncap *= 2;
	h->pos = xreallocarray(h->pos, ncap, sizeof(*h->pos));
	mem_hint_huge(h->pos, ncap * sizeof(*h->pos));
	for (size_t i = h->poscap; i < ncap; i++)
		h->pos[i] = HEAP_NONE;
	h->poscap = ncap;
}

/* Puts node n at slot i and indexes it there. */
static inline void
node_put(dueheap *h, size_t i, struct node n)
{
	h->nodes[i] = n;
	h->pos[n.handle] = (uint32_t)i;
}

static uint32_t
next_seq(dueheap *h)
{
	if (h->next_seq == UINT32_MAX)
		dueheap_renumber(h);
	return h->next_seq++;
}

static void
sift_up(dueheap *h, size_t i)
{
	struct node n = h->nodes[i];
	while (i > 0) {
		size_t parent = (i - 1) / ARITY;
		if (!node_less(&n, &h->nodes[parent]))
			break;
		node_put(h, i, h->nodes[parent]);
		i = parent;
	}
	node_put(h, i, n);
}

static void
sift_down(dueheap *h, size_t i)
{
	struct node n = h->nodes[i];
	size_t len = h->len;
	for (;;) {
		size_t first = i * ARITY + 1;
		if (first >= len)
			break;
		size_t last = first + ARITY < len ? first + ARITY : len;
		/* Start loading the next level (the children's children,
		 * four cache lines) while this one is compared: a sift
		 * through a large heap then waits for memory about once,
		 * not once per level. */
		size_t grand = first * ARITY + 1;
		if (grand < len)
			for (size_t g = 0; g < ARITY * ARITY; g += ARITY)
				__builtin_prefetch(&h->nodes[grand + g]);
		size_t best = first;
		for (size_t c = first + 1; c < last; c++)
			if (node_less(&h->nodes[c], &h->nodes[best]))
				best = c;
		if (!node_less(&h->nodes[best], &n))
			break;
		node_put(h, i, h->nodes[best]);
		i = best;
	}
	node_put(h, i, n);
}

static void
nodes_reserve(dueheap *h)
{
	if (h->len < h->cap)
		return;
	h->cap = h->cap ? h->cap * 2 : 1024;
	h->nodes = xreallocarray(h->nodes, h->cap, sizeof(*h->nodes));
	mem_hint_huge(h->nodes, h->cap * sizeof(*h->nodes));
}

void
dueheap_append(dueheap *h, uint32_t handle, int64_t due)
{
	pos_reserve(h, handle);
	nodes_reserve(h);
	uint32_t seq = next_seq(h); /* may renumber: before the new node */
	node_put(h, h->len++, (struct node){due, handle, seq});
}

void
dueheap_build(dueheap *h)
{
	if (h->len < 2)
		return;
	for (size_t i = (h->len - 2) / ARITY + 1; i-- > 0;)
		sift_down(h, i);
}

void
dueheap_push(dueheap *h, uint32_t handle, int64_t due)
{
	dueheap_append(h, handle, due);
	sift_up(h, h->len - 1);
}

static void
fix(dueheap *h, size_t i)
{
	if (i > 0 && node_less(&h->nodes[i], &h->nodes[(i - 1) / ARITY]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

void
dueheap_update(dueheap *h, uint32_t handle, int64_t due)
{
	uint32_t seq = next_seq(h);
	size_t i = h->pos[handle]; /* after a possible renumbering */
	h->nodes[i].due = due;
	h->nodes[i].seq = seq;
	fix(h, i);
}

static void
remove_at(dueheap *h, size_t i)
{
	h->pos[h->nodes[i].handle] = HEAP_NONE;
	h->len--;
	if (i == h->len)
		return;
	node_put(h, i, h->nodes[h->len]);
	fix(h, i);
}

bool
dueheap_remove(dueheap *h, uint32_t handle)
{
	if (!dueheap_contains(h, handle))
		return false;
	remove_at(h, h->pos[handle]);
	return true;
}

bool
dueheap_contains(const dueheap *h, uint32_t handle)
{
	return handle < h->poscap && h->pos[handle] != HEAP_NONE;
}

int64_t
dueheap_due(const dueheap *h, uint32_t handle)
{
	return h->nodes[h->pos[handle]].due;
}

bool
dueheap_peek(const dueheap *h, uint32_t *handle, int64_t *due)
{
	if (h->len == 0)
		return false;
	*handle = h->nodes[0].handle;
	*due = h->nodes[0].due;
	return true;
}

bool
dueheap_pop(dueheap *h, uint32_t *handle, int64_t *due)
{
	if (!dueheap_peek(h, handle, due))
		return false;
	remove_at(h, 0);
	return true;
}

size_t
dueheap_size(const dueheap *h)
{
	return h->len;
}

static int
cmp_nodes(const void *a, const void *b)
{
	const struct node *x = a, *y = b;
	return node_less(x, y) ? -1 : node_less(y, x) ? 1 : 0;
}

void
dueheap_renumber(dueheap *h)
{
	/* A sorted array is a valid heap. (nodes is NULL in a heap that
	 * never held a node, and qsort's pointer must be valid even for 0.) */
	if (h->len > 1)
		qsort(h->nodes, h->len, sizeof(*h->nodes), cmp_nodes);
	for (size_t i = 0; i < h->len; i++) {
		h->nodes[i].seq = (uint32_t)i;
		h->pos[h->nodes[i].handle] = (uint32_t)i;
	}
	h->next_seq = (uint32_t)h->len;
}

void
dueheap_set_next_seq(dueheap *h, uint32_t seq)
{
	h->next_seq = seq;
}

int
dueheap_check(const dueheap *h, char *err, size_t errlen)
{
	size_t present = 0;
	for (size_t i = 0; i < h->len; i++) {
		const struct node *n = &h->nodes[i];
		if (i > 0 && node_less(n, &h->nodes[(i - 1) / ARITY])) {
			errbuf_set(err, errlen,
			    "node %zu sorts before its parent", i);
			return -EINVAL;
		}
		if (n->handle >= h->poscap || h->pos[n->handle] != i) {
			errbuf_set(err, errlen,
			    "node %zu (handle %u) not indexed at its slot", i,
			    n->handle);
			return -EINVAL;
		}
		if (n->seq >= h->next_seq) {
			errbuf_set(err, errlen, "node %zu has a future seq", i);
			return -EINVAL;
		}
	}
	for (size_t k = 0; k < h->poscap; k++)
		if (h->pos[k] != HEAP_NONE)
			present++;
	if (present != h->len) {
		errbuf_set(err, errlen, "%zu indexed handles, %zu nodes",
		    present, h->len);
		return -EINVAL;
	}
	return 0;
}

void
dueheap_shift(dueheap *h, int64_t delta)
{
	for (size_t i = 0; i < h->len; i++)
		h->nodes[i].due += delta;
}
