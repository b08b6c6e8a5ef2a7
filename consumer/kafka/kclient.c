/*
 * kclient: see kclient.h. The defaults are the service's opinions
 * (idempotence, zstd, manual offset store); a user property of the same
 * name overrides them, and librdkafka's own validation names anything it
 * refuses. A refused property is named, its value never shown: librdkafka's
 * reason may quote it ("Invalid value \"...\" for configuration property
 * ..."), so the value is cut out of the reason (util/redact).
 *
 * Concurrency (kclient_destroy_by): the destroy runs on a thread of its
 * own; a job's mutex guards done and abandoned, and whoever sees the
 * other side finished frees the job: the caller once the destroy is done,
 * or the destroying thread when the caller gave up waiting.
 */
#include "kafka/kclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/errbuf.h"
#include "util/redact.h"
#include "util/xmalloc.h"

/* One property into conf: 0, or -EINVAL with librdkafka's reason in err,
 * the property named and its value redacted. */
static int
conf_set(rd_kafka_conf_t *conf, const struct kclient_prop *p,
    const char *what, char *err, size_t errlen)
{
	char reason[512], shown[512];
	if (rd_kafka_conf_set(conf, p->name, p->value, reason,
	    sizeof(reason)) != RD_KAFKA_CONF_OK) {
		redact_value(reason, p->value, shown, sizeof(shown));
		errbuf_set(err, errlen, "%s: property \"%s\" refused (value "
		    "not shown): %s", what, p->name, shown);
		return -EINVAL;
	}
	return 0;
}

rd_kafka_conf_t *
kclient_conf(const char *brokers, const struct kclient_prop *defaults,
    size_t ndefaults, const struct kclient_prop *props, size_t nprops,
    const char *what, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct kclient_prop b = { "bootstrap.servers", brokers };

	if (conf_set(conf, &b, "kafka.brokers", err, errlen) != 0)
		goto fail;
	for (size_t i = 0; i < ndefaults; i++)
		if (!kclient_has(props, nprops, defaults[i].name) &&
		    conf_set(conf, &defaults[i], "built-in default", err,
			errlen) != 0)
			goto fail;
	for (size_t i = 0; i < nprops; i++)
		if (conf_set(conf, &props[i], what, err, errlen) != 0)
			goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

bool
kclient_has(const struct kclient_prop *props, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(props[i].name, name) == 0)
			return true;
	return false;
}

struct destroy_job {
	rd_kafka_t *rk;
	int flags;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;	/* the destroy returned */
	bool abandoned; /* the caller stopped waiting: the thread frees */
};

static void
destroy_job_free(struct destroy_job *j)
{
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static void *
destroy_thread(void *arg)
{
	struct destroy_job *j = arg;
	rd_kafka_destroy_flags(j->rk, j->flags);
	pthread_mutex_lock(&j->mu);
	j->done = true;
	bool mine = j->abandoned;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (mine)
		destroy_job_free(j);
	return NULL;
}

bool
kclient_destroy_by(rd_kafka_t *rk, int flags, int64_t deadline_ms)
{
	struct destroy_job *j = xcalloc(1, sizeof(*j));
	j->rk = rk;
	j->flags = flags;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_t ta;
	pthread_t t;
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &ta, destroy_thread, j);
	pthread_attr_destroy(&ta);
	if (rc != 0) {
		/* No thread to spare: destroy here, unbounded. */
		rd_kafka_destroy_flags(rk, flags);
		destroy_job_free(j);
		return true;
	}
	struct timespec dl = { (time_t)(deadline_ms / 1000),
		(long)(deadline_ms % 1000) * 1000000L };
	pthread_mutex_lock(&j->mu);
	while (!j->done && clock_mono_ms() < deadline_ms)
		if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT)
			break;
	bool done = j->done;
	if (!done)
		j->abandoned = true;
	pthread_mutex_unlock(&j->mu);
	if (done)
		destroy_job_free(j);
	return done;
}
