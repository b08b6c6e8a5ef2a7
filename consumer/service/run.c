/*
 * run: `sbomd run [-c FILE] [--print-config]`. Loads the configuration
 * (file, then SBOMD_* environment; any error exits 2 naming the key and
 * line before Kafka or the state directory is touched), sets up logging
 * and signals, and hands over to the engine.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP set a flag the engine loop checks
 * (it then drains, within engine.shutdown_timeout, and exits 0); SIGHUP
 * does not reload the configuration: a terminal or supervisor that hangs
 * up gets the same clean shutdown. SIGPIPE is ignored.
 *
 * The shutdown watchdog: a thread that, once the flag is raised, gives the
 * engine engine.shutdown_timeout plus WATCHDOG_MARGIN_MS to return, and
 * past that ends the process (exit status 1) after logging why. The engine
 * keeps its own budget; the watchdog is for the calls it cannot cut short
 * (a Kafka transaction call with the broker gone returns after its own
 * timeout, whatever we give it). Nothing is lost by it: the state is made
 * for kill -9 (LMDB, the outbox, offsets committed only after the state).
 */
#include "service/run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "service/config.h"
#include "service/engine.h"
#include "service/log.h"
#include "service/statedir.h"
#include "util/clock.h"
#include "util/xmalloc.h"
#include "wire/writers.h"

static volatile sig_atomic_t run_stop;

#define WATCHDOG_MARGIN_MS 2000

struct watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;	     /* engine_run returned (under mu) */
	int64_t budget_ms;   /* engine.shutdown_timeout + the margin */
};

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	int64_t deadline = 0;
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		int64_t now = clock_mono_ms();
		if (deadline == 0 && run_stop)
			deadline = now + w->budget_ms;
		if (deadline != 0 && now >= deadline) {
			pthread_mutex_unlock(&w->mu);
			char ms[24];
			snprintf(ms, sizeof(ms), "%lld",
			    (long long)w->budget_ms);
			log_kv(LOG_ERROR, "shutdown took longer than "
			    "engine.shutdown_timeout; exiting now (the state "
			    "is durable: what was not published is sent after "
			    "the restart)", "waited_ms", ms, (char *)NULL);
			_exit(1);
		}
		/* The flag is set from a signal handler: looked at every
		 * 100 ms. */
		struct timespec ts = clock_realtime_in(100);
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int
engine_run_watched(const struct sbomd_config *cfg, char *err, size_t errlen)
{
	struct watchdog w = { .done = false,
	    .budget_ms = cfg->engine.shutdown_timeout_ms + WATCHDOG_MARGIN_MS };
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	bool watched = pthread_create(&w.thread, NULL, watchdog_main, &w) == 0;
	int rc = engine_run(cfg, &run_stop, err, errlen);
	if (watched) {
		pthread_mutex_lock(&w.mu);
		w.done = true;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(w.thread, NULL);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

static void
on_signal(int sig)
{
	(void)sig;
	run_stop = 1;
}

/* The open-file limit's soft value raised to its hard one: the HTTP
 * server may hold http.max_connections sockets besides LMDB's, Kafka's
 * and the scans' descriptors. A failure only leaves the limit as it was
 * (http_start then lowers http.max_connections to fit). */
static void
raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
		char from[24], to[24];
		snprintf(from, sizeof(from), "%llu", (unsigned long long)was);
		snprintf(to, sizeof(to), "%llu",
		    (unsigned long long)rl.rlim_cur);
		log_kv(LOG_DEBUG, "open-file limit raised", "from", from, "to",
		    to, (char *)NULL);
	}
}

static void
run_usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd run [-c FILE] [--print-config]\n"
	    "\n"
	    "Runs the service: consumes workload events from kafka.input_topic,\n"
	    "deduplicates them, scans images and hosts on a worker pool with\n"
	    "retries, and publishes every outcome to kafka.output_topic.\n"
	    "\n"
	    "  -c, --config FILE  libconfig file (see config/sbomd.cfg); without\n"
	    "                     it the built-in defaults apply\n"
	    "  --print-config     print the effective configuration and exit\n"
	    "\n"
	    "Every key can be set from the environment as SBOMD_<GROUP>_<KEY>,\n"
	    "e.g. SBOMD_KAFKA_BROKERS=127.0.0.1:9092 SBOMD_SCAN_WORKERS=4.\n"
	    "\n"
	    "exit status: 0 after a clean shutdown (SIGTERM/SIGINT/SIGHUP), 1 when\n"
	    "the "
	    "service cannot start or must stop (state.dir held by another\n"
	    "process), 2 on a usage or configuration error (also: a changelog\n"
	    "topic whose partitions differ from the input topic's)\n");
}

/* Parses -c FILE / --config FILE / --config=FILE, --print-config and
 * --help (*help set); 0, or -EINVAL after printing what is wrong. */
static int
parse_args(int argc, char **argv, const char **path, bool *print,
    bool *help)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*help = true;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sbomd %s: %s needs a file\n",
				    argv[0], a);
				return -EINVAL;
			}
			*path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			*path = a + 9;
		} else if (strcmp(a, "--print-config") == 0) {
			*print = true;
		} else {
			fprintf(stderr, "sbomd %s: unknown argument \"%s\"\n",
			    argv[0], a);
			return -EINVAL;
		}
	}
	return 0;
}

/* Locks state.dir for this process and fills in the default
 * kafka.group_instance_id from it: 0, or a negative errno with err set. */
static int
take_state_dir(struct sbomd_config *cfg, int *lock, char *err, size_t errlen)
{
	int rc = statedir_lock(cfg->state.dir, lock, err, errlen);
	if (rc != 0 || cfg->kafka.group_instance_id[0] != '\0')
		return rc;
	char id[64];
	if ((rc = statedir_instance_id(cfg->state.dir, id, sizeof(id), err,
		 errlen)) != 0)
		return rc;
	free(cfg->kafka.group_instance_id);
	cfg->kafka.group_instance_id = xstrdup(id);
	return 0;
}

int
run_main(int argc, char **argv)
{
	const char *path = NULL;
	bool print = false, help = false;
	if (parse_args(argc, argv, &path, &print, &help) != 0) {
		run_usage(stderr);
		return 2;
	}
	if (help) {
		run_usage(stdout);
		return 0;
	}
	struct sbomd_config cfg;
	char err[1024];
	if (config_load(&cfg, path, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "sbomd run: configuration: %s\n", err);
		return 2;
	}
	if (print) {
		config_dump(&cfg, stdout);
		config_free(&cfg);
		return 0;
	}
	/* Writer schemas are configuration: a bad one exits 2 before the
	 * state directory or Kafka is touched (the engine loads them again). */
	if (cfg.kafka.writer_schemas_dir[0] != '\0') {
		wire_writers *w = NULL;
		if (wire_writers_load(cfg.kafka.writer_schemas_dir, &w, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "sbomd run: configuration: "
			    "kafka.writer_schemas_dir: %s\n", err);
			config_free(&cfg);
			return 2;
		}
		wire_writers_free(w);
	}
	log_setup((enum log_level)cfg.log.level,
	    cfg.log.format == CONFIG_LOG_TEXT ? LOG_TEXT : LOG_JSON);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	int lock = -1;
	int rc = take_state_dir(&cfg, &lock, err, sizeof(err));
	if (rc == 0)
		rc = engine_run_watched(&cfg, err, sizeof(err));
	statedir_unlock(lock);
	if (rc != 0)
		log_kv(LOG_ERROR, "stopped", "error", err, (char *)NULL);
	else
		log_kv(LOG_INFO, "stopped", (char *)NULL);
	config_free(&cfg);
	/* The topics do not fit the configuration (the changelog's
	 * partitions): a configuration error. */
	if (rc == -ECHRNG)
		return 2;
	return rc == 0 ? 0 : 1;
}
