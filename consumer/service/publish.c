/*
 * publish: see publish.h. The duration histograms' buckets, the snapshot
 * hand-over and the request queue between the HTTP thread and the engine.
 * Every function here takes the mutex for a copy or a list splice only:
 * the engine never waits on the HTTP thread.
 */
#include "service/publish.h"

#include <stdlib.h>

const double hist_bounds[HIST_BUCKETS] = { 0.001, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };

void
hist_observe(struct hist *h, double s)
{
	size_t i = 0;
	while (i < HIST_BUCKETS && s > hist_bounds[i])
		i++;
	h->counts[i]++;
	h->sum += s;
	h->n++;
}

void
publish_init(struct publish *p)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->reqs = NULL;
	p->wake_fd = -1;
}

void
publish_fini(struct publish *p)
{
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

void
publish_put(struct publish *p, const struct snapshot *s)
{
	pthread_mutex_lock(&p->mu);
	p->snap = *s;
	pthread_mutex_unlock(&p->mu);
}

struct pub_req *
publish_take_requests(struct publish *p)
{
	pthread_mutex_lock(&p->mu);
	struct pub_req *q = p->reqs;
	p->reqs = NULL;
	pthread_mutex_unlock(&p->mu);
	return q;
}

void
publish_answered(struct publish *p, struct pub_req *q)
{
	pthread_mutex_lock(&p->mu);
	bool gone = q->abandoned;
	q->done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (gone) {
		free(q->body);
		free(q);
	}
}

void
publish_drop_requests(struct publish *p)
{
	struct pub_req *q = publish_take_requests(p);
	while (q != NULL) {
		struct pub_req *n = q->next;
		free(q->body);
		free(q);
		q = n;
	}
}
