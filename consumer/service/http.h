/*
 * http: the operator's endpoints on http.listen (libmicrohttpd, its own
 * thread): /metrics, /healthz, /readyz, /api/v1/entities/{id}, /status.
 * Everything shown comes from a struct publish the engine fills; see
 * publish.h for who owns what.
 */
#ifndef SBOMD_SERVICE_HTTP_H
#define SBOMD_SERVICE_HTTP_H

#include <stddef.h>

#include "service/publish.h"

typedef struct http_server http_server;

/* How many connections and for how long (http.max_connections,
 * http.connection_timeout). */
struct http_limits {
	unsigned max_connections;
	unsigned timeout_s; /* >= 1 */
};

/* Listens on "host:port" (":port" = every address). NULL with err.
 * max_connections is lowered to what the process's open-file limit
 * allows (said in the log). */
http_server *http_start(const char *listen, const struct http_limits *lim,
    struct publish *pub, char *err, size_t errlen);
void http_stop(http_server *h);

/* The Prometheus text of a snapshot (malloc'd). For tests as well. */
char *http_metrics_text(const struct snapshot *s, size_t *len);

#endif
