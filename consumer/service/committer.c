/*
 * committer: see committer.h. A mutex and a condition variable guard the
 * hand-over; the batch itself is read by the thread only between submit
 * and the end of its store_commit, and the engine reads what the commit
 * wrote into it (the outbox sequences) only after taking the result.
 */
#include "service/committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/xmalloc.h"

struct committer {
	store *st;
	int wake_fd;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct store_batch *batch; /* submitted, not yet committed */
	bool busy;	/* submitted, result not taken (engine only) */
	bool done;	/* committed (or failed): rc and err hold why */
	bool quit;
	int rc;
	char err[512];
};

static void *
run(void *arg)
{
	committer *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->batch == NULL && !c->quit)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->batch == NULL)
			break; /* quit, and nothing waits */
		const struct store_batch *b = c->batch;
		pthread_mutex_unlock(&c->mu);
		char err[sizeof(c->err)] = "";
		int rc = store_commit(c->st, b, err, sizeof(err));
		pthread_mutex_lock(&c->mu);
		c->rc = rc;
		memcpy(c->err, err, sizeof(err));
		c->batch = NULL;
		c->done = true;
		pthread_cond_broadcast(&c->cv);
		/* The engine sleeps in poll(2) on this (non-blocking) pipe; a
		 * full pipe has a wake-up pending already. */
		ssize_t w = write(c->wake_fd, "c", 1);
		(void)w;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int
committer_start(store *st, int wake_fd, committer **out)
{
	committer *c = xcalloc(1, sizeof(*c));
	c->st = st;
	c->wake_fd = wake_fd;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	int rc = pthread_create(&c->thread, NULL, run, c);
	if (rc != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return -rc;
	}
	*out = c;
	return 0;
}

void
committer_stop(committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->quit = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
committer_submit(committer *c, const struct store_batch *b)
{
	pthread_mutex_lock(&c->mu);
	c->batch = b;
	c->done = false;
	c->busy = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

bool
committer_busy(const committer *c)
{
	return c != NULL && c->busy;
}

int
committer_result(committer *c, bool wait, bool *done, char *err,
    size_t errlen)
{
	*done = false;
	if (!c->busy)
		return 0;
	pthread_mutex_lock(&c->mu);
	while (wait && !c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	int rc = 0;
	if (c->done) {
		rc = c->rc;
		if (rc != 0 && err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", c->err);
		c->done = false;
		c->busy = false;
		*done = true;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}
