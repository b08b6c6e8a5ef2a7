/*
 * kclient: see kclient.h. The defaults are the service's opinions
 * (idempotence, zstd, manual offset store); a user property of the same
 * name overrides them, and librdkafka's own validation names anything it
 * refuses. A refused property is named, its value never shown: librdkafka's
 * reason may quote it ("Invalid value \"...\" for configuration property
 * ..."), so the value is cut out of the reason (util/redact).
 */
#include "kafka/kclient.h"

#include <errno.h>
#include <string.h>

#include "util/errbuf.h"
#include "util/redact.h"

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
