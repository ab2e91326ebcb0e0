/*
 * The /v1 queries beyond a single subject's state, answered for http.c:
 *   GET /v1/campaigns/{id}/funnel  a campaign's funnel (ews_json_funnel)
 *   GET /v1/funnel?sort=STAGE[&order=asc|desc][&limit=N]
 *                  the funnels of the campaigns (the most recently first
 *                  counted, up to limit, 100 by default) and the total,
 *                  sorted by the rate of the stage given (signed_up: by
 *                  the count), highest first unless order=asc
 *   GET /v1/segments?stage=S[&order=asc|desc][&limit=N][&cursor=C]
 *                   [&campaign=ID][&account=ID][&product=P]
 *                  a page of the stage's users by engagement now, lowest
 *                  first by default; next_cursor asks for the next page
 *                  (null at the end)
 *   GET /v1/accounts?order_by=engagement|active_users[&order=asc|desc]
 *                   [&limit=N][&members=M]
 *                  accounts by engagement now or by active users, highest
 *                  first by default, each with up to M members (10), the
 *                  most recently active first (ops/account_view.h)
 */
#ifndef EWS_HTTP_QUERY_H
#define EWS_HTTP_QUERY_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "ops/account_view.h"
#include "ops/http.h"
#include "store/store.h"

/* Whether path (decoded) is one of these. */
bool ews_http_query_path(const char *path);

/* The JSON answer to path with the connection's query arguments, *status
 * 200; or NULL with *status (400, 404, 405, 503) and why, a line of text
 * for the client. The caller owns the JSON. Borrows conf. */
json_t *ews_http_query(struct ews_store *store,
                       const struct ews_http_query_conf *conf,
                       struct MHD_Connection *connection, const char *method,
                       const char *path, unsigned *status, char *why,
                       size_t why_size);

#endif
