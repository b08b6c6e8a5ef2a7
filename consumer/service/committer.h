/*
 * committer: the engine's group commit in the background. One thread
 * runs store_commit on a batch the engine hands over, while the engine
 * decodes and applies the next input; it writes a byte to the engine's
 * wake fd when the commit has ended (durably, or with an error).
 *
 * The engine owns everything the batch points to and keeps it unchanged
 * until it took the result; it does not touch the store meanwhile (every
 * path of its that reads or writes the store takes the result first).
 * One batch at a time.
 */
#ifndef SBOMD_SERVICE_COMMITTER_H
#define SBOMD_SERVICE_COMMITTER_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

typedef struct committer committer;

/* The thread, started: 0, or a negative errno. */
int committer_start(store *st, int wake_fd, committer **out);
/* Waits for a batch being committed, then ends the thread. NULL is
 * fine. */
void committer_stop(committer *c);

/* Commits b (0 or store_commit's error, see committer_result). */
void committer_submit(committer *c, const struct store_batch *b);
/* Whether a submitted batch's result has not been taken yet. */
bool committer_busy(const committer *c);
/* The result of the submitted batch: store_commit's return value (err
 * set when it failed), *done set; with wait false and the commit still
 * running, *done is false and nothing is taken. */
int committer_result(committer *c, bool wait, bool *done, char *err,
    size_t errlen);

#endif
