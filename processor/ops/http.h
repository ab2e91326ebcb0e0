/*
 * The operations endpoint (libmicrohttpd):
 *   GET /metrics   Prometheus text format: the metrics table (util/metrics.h)
 *                  as the main loop last rendered it
 *   GET /healthz   200 while the process is alive
 *   GET /readyz    200 when ready: joined the group, Redis and a broker
 *                  reachable, no owned partition paused; 503 otherwise.
 *                  Owning no partition is fine: a standby is ready.
 *   GET /v1/users/{id}, /v1/accounts/{id}, /v1/campaigns/{id}
 *                  the state as JSON, as ews-inspect prints it
 *   DELETE /v1/users/{id}  erasure of the user's personal data
 * /v1 asks for "Authorization: Bearer <http.token>" when a token is set
 * (a 401 says WWW-Authenticate: Bearer). On an http.bind that is not
 * loopback (127.0.0.0/8) /v1 needs a token: without one it answers 403.
 * An id in a /v1 path is decoded here: a NUL, a control character or
 * invalid UTF-8 in it is a 400. Every erasure is logged (info) with the
 * client's address and the id.
 * A few threads poll the connections (epoll), a connection per address
 * and in all are bounded and idle ones dropped, so that slow clients
 * cannot take /healthz down; /v1 (blocking on Redis, at most its timeout)
 * may hold only some of the threads: see http.c. The threads read a
 * snapshot the main loop publishes, never the pipeline, and /v1 has its
 * own store connection.
 */
#ifndef EWS_HTTP_SERVER_H
#define EWS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

/* What the queries (http_query.c) need of the configuration. */
struct ews_http_query_conf {
        double half_life_ms;
        int64_t account_active_window_ms;
        bool segments; /* state.segments: the segment sets are kept */
};

struct ews_http_conf {
        const char *bind; /* an IPv4 address; 127.0.0.1 by default */
        int port;
        const char *token; /* "" or NULL: /v1 is open */
        struct ews_store_conf store;
        struct ews_http_query_conf query; /* the funnel, segments, accounts */
        /* what /readyz says from the first request until told otherwise
         * (ews_http_publish_why); NULL: "not ready" */
        const char *why;
};

struct ews_http;

/* Listens at once. NULL with errstr when the address cannot be bound. */
struct ews_http *ews_http_new(const struct ews_http_conf *conf, char *errstr,
                              size_t errstr_size);
void ews_http_destroy(struct ews_http *http);

/* Copies the rendered metrics (len bytes) and readiness as what /metrics
 * and /readyz say from now on. */
void ews_http_publish(struct ews_http *http, const char *metrics, size_t len,
                      bool ready);
/* What /readyz answers with its 503: what the start waits for
 * ("waiting for brokers", ...); NULL or "" for "not ready". */
void ews_http_publish_why(struct ews_http *http, const char *why);

#endif
