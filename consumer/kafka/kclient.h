/*
 * kclient: librdkafka configuration and small helpers shared by
 * `sbomd run`, `emit`, `tail` and the benchmarks. Knows Kafka only: no
 * tracker, no scanners, no Avro.
 */
#ifndef SBOMD_KAFKA_KCLIENT_H
#define SBOMD_KAFKA_KCLIENT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kclient_prop {
	const char *name;
	const char *value;
};

/*
 * A librdkafka configuration: bootstrap.servers = brokers, then our
 * defaults, then the user's properties (which win), each set with
 * rd_kafka_conf_set. what names the user's list in messages
 * ("kafka.consumer_properties"). NULL with err filled ("kafka.
 * consumer_properties: fetch.max.bytez: No such configuration property")
 * when a property is refused.
 */
rd_kafka_conf_t *kclient_conf(const char *brokers,
    const struct kclient_prop *defaults, size_t ndefaults,
    const struct kclient_prop *props, size_t nprops, const char *what,
    char *err, size_t errlen);

/* Whether the user's list sets name. */
bool kclient_has(const struct kclient_prop *props, size_t n, const char *name);

/*
 * rd_kafka_destroy_flags(rk, flags), waited for until deadline_ms
 * (monotonic, clock_mono_ms): true when it finished by then. librdkafka
 * bounds its destroy by its own timeouts, not the caller's: an offset
 * commit deferred while the group coordinator is unreachable (a revoke's,
 * the auto-commit timer's) holds a consumer's destroy for up to
 * session.timeout.ms, with RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE too.
 * Past the deadline the destroy goes on in a detached thread and false is
 * returned. rk is the callee's either way; what rk's callbacks use (its
 * opaque) must then stay valid until the process exits, and the process
 * may exit with that thread still running.
 */
bool kclient_destroy_by(rd_kafka_t *rk, int flags, int64_t deadline_ms);

#endif
