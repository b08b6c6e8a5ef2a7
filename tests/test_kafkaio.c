/*
 * test_kafkaio: the service's Kafka clients (consumer/service/kafkaio)
 * against librdkafka's mock cluster, started in-process, one fresh
 * cluster per test: closing a consumer while it joins; the consumer's
 * local queue bounds, and a user's property winning over them.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "service/config.h"
#include "service/kafkaio.h"
#include "service/publish.h"
#include "util/clock.h"

struct fixture {
	rd_kafka_t *owner; /* owns the mock cluster's thread */
	rd_kafka_mock_cluster_t *mc;
	struct sbomd_config cfg;
	struct snapshot *counters;
	int wake[2];
};

static void
set_str(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
}

static int
setup(void **state)
{
	char errstr[256];
	struct fixture *f = calloc(1, sizeof(*f));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", errstr,
	    sizeof(errstr)), RD_KAFKA_CONF_OK);
	f->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr));
	assert_non_null(f->owner);
	f->mc = rd_kafka_mock_cluster_new(f->owner, 1);
	assert_non_null(f->mc);
	assert_int_equal(rd_kafka_mock_topic_create(f->mc, "in", 4, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(f->mc, "out", 4, 1), 0);
	config_defaults(&f->cfg);
	set_str(&f->cfg.kafka.brokers, rd_kafka_mock_cluster_bootstraps(f->mc));
	set_str(&f->cfg.kafka.group_id, "test-kafkaio");
	set_str(&f->cfg.kafka.group_instance_id, "test-kafkaio-member");
	set_str(&f->cfg.kafka.input_topic, "in");
	set_str(&f->cfg.kafka.output_topic, "out");
	set_str(&f->cfg.state.changelog_topic, "");
	f->counters = calloc(1, sizeof(*f->counters));
	assert_int_equal(pipe2(f->wake, O_NONBLOCK | O_CLOEXEC), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	config_free(&f->cfg);
	free(f->counters);
	close(f->wake[0]);
	close(f->wake[1]);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->owner);
	free(f);
	return 0;
}

/* The fixture's clients, not subscribed yet (no hooks). */
static kio *
open_kio(struct fixture *f)
{
	char err[512] = "";
	kio *k = NULL;
	struct kio_hooks hooks = { 0 };
	int rc = kio_open(&f->cfg, f->wake[1], f->counters, &hooks, &k, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("kio_open: %d %s", rc, err);
	return k;
}

/*
 * Closed while it joins the group: after the coordinator's JoinGroup
 * answer (the assignor is chosen) and before its SyncGroup answer (the
 * assignment). librdkafka before 2.3.0 aborts destroying a
 * cooperative-sticky consumer then (its assignor state is still NULL);
 * a SIGTERM during a start's first join, or a start refused after the
 * consumer subscribed, did that. 1.5 s a round trip holds the window
 * open long enough to close inside it.
 */
static void
test_close_while_joining(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	kio *k = open_kio(f);
	int rc = kio_subscribe(k, err, sizeof(err));
	if (rc != 0)
		fail_msg("kio_subscribe: %d %s", rc, err);
	assert_int_equal(rd_kafka_mock_broker_set_rtt(f->mc, 1, 1500), 0);
	int64_t deadline = clock_mono_ms() + 30000;
	const char *proto = NULL;
	while (clock_mono_ms() < deadline) {
		proto = rd_kafka_rebalance_protocol(kio_consumer(k));
		if (proto != NULL && strcmp(proto, "NONE") != 0)
			break;
		usleep(20 * 1000);
	}
	assert_non_null(proto);
	assert_string_equal(proto, "COOPERATIVE");
	/* The assignment has not been served to us. */
	assert_int_equal(f->counters->rebalances, 0);
	kio_close(k, clock_mono_ms() + 5000);
}

/* The consumer's value of property name. */
static void
assert_consumer_prop(kio *k, const char *name, const char *want)
{
	char buf[64];
	size_t len = sizeof(buf);
	const rd_kafka_conf_t *conf = rd_kafka_conf(kio_consumer(k));
	assert_int_equal(rd_kafka_conf_get(conf, name, buf, &len),
	    RD_KAFKA_CONF_OK);
	if (strcmp(buf, want) != 0)
		fail_msg("consumer %s = %s, expected %s", name, buf, want);
}

/*
 * The consumer's local queue is bounded by bytes, 256 MiB, and not by a
 * count of messages (librdkafka's 100,000 were about 0.3 s of the
 * engine's intake, after which every partition's fetching stopped for up
 * to a second); kafka.consumer_properties still wins over both.
 */
static void
test_consumer_queue_bounds(void **state)
{
	struct fixture *f = *state;
	kio *k = open_kio(f);
	assert_consumer_prop(k, "queued.max.messages.kbytes", "262144");
	assert_consumer_prop(k, "queued.min.messages", "1000000");
	kio_close(k, clock_mono_ms() + 5000);

	struct config_prop user = { strdup("queued.max.messages.kbytes"),
		strdup("65536") };
	f->cfg.kafka.consumer_properties.v = &user;
	f->cfg.kafka.consumer_properties.n = 1;
	k = open_kio(f);
	f->cfg.kafka.consumer_properties.v = NULL;
	f->cfg.kafka.consumer_properties.n = 0;
	free(user.name);
	free(user.value);
	assert_consumer_prop(k, "queued.max.messages.kbytes", "65536");
	kio_close(k, clock_mono_ms() + 5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_close_while_joining,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_consumer_queue_bounds,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
