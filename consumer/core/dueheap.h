/*
 * dueheap: an indexed min-heap of (due time, handle), ordered by due time
 * and then by insertion sequence. It knows every handle's position, so
 * cancel and reschedule are O(log n) by handle.
 *
 * Nothing here fails: memory comes from xmalloc (which aborts), so the
 * functions without a result cannot fail, and the boolean ones answer a
 * question. Only dueheap_check reports an error.
 */
#ifndef SBOMD_CORE_DUEHEAP_H
#define SBOMD_CORE_DUEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dueheap dueheap;

dueheap *dueheap_new(void);
void dueheap_free(dueheap *h);

/* Adds handle (not yet present) due at due. O(log n). */
void dueheap_push(dueheap *h, uint32_t handle, int64_t due);
/*
 * Moves a present handle to a new due time; it then sorts after every
 * other handle with the same due time, as if pushed anew. O(log n).
 */
void dueheap_update(dueheap *h, uint32_t handle, int64_t due);
/* Removes handle if present; returns whether it was. O(log n). */
bool dueheap_remove(dueheap *h, uint32_t handle);

/* Whether handle is in the heap. */
bool dueheap_contains(const dueheap *h, uint32_t handle);
/* The due time of a present handle. */
int64_t dueheap_due(const dueheap *h, uint32_t handle);

/* The soonest handle and its due time: true, or false when empty. */
bool dueheap_peek(const dueheap *h, uint32_t *handle, int64_t *due);
/* Removes the soonest and returns it as dueheap_peek does. */
bool dueheap_pop(dueheap *h, uint32_t *handle, int64_t *due);

size_t dueheap_size(const dueheap *h);

/*
 * Bulk loading for recovery: append without ordering, then build the heap
 * once in O(n). Appended handles sort by due time, then append order.
 */
void dueheap_append(dueheap *h, uint32_t handle, int64_t due);
void dueheap_build(dueheap *h);

/* Adds delta to every due time (the order stays): O(n). */
void dueheap_shift(dueheap *h, int64_t delta);

/* Renumbers insertion sequences from 0, keeping the order (see .c). */
void dueheap_renumber(dueheap *h);
/* For tests: sets the next insertion sequence number. */
void dueheap_set_next_seq(dueheap *h, uint32_t seq);

/* Checks the heap property and the position index: 0, or -EINVAL with
 * what is wrong in err. */
int dueheap_check(const dueheap *h, char *err, size_t errlen);

#endif
