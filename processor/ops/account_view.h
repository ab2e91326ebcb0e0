/*
 * The account view, for ews-inspect and the HTTP API: accounts ordered by
 * engagement now (A decayed to a common time: with one half-life the order
 * of log2(A) + t_ref / H, the same at any time) or by active users, each
 * with its members, the most recently active first. It walks the accounts
 * (SCAN a:*, three reads each): its cost grows with the accounts stored,
 * on a read path, never on the commit's.
 */
#ifndef EWS_ACCOUNT_VIEW_H
#define EWS_ACCOUNT_VIEW_H

#include <jansson.h>
#include <stdbool.h>

#include "store/store.h"

#define EWS_ACCOUNT_VIEW_MAX 1000

struct ews_account_view_query {
        bool by_active; /* else by engagement */
        bool asc;       /* lowest first */
        size_t limit;   /* 1 to EWS_ACCOUNT_VIEW_MAX */
        size_t members; /* members listed per account */
        double half_life_ms;
        int64_t active_window_ms;
        int64_t now_ms; /* A as of; 0: the latest t_ref of those listed */
};

/* {"accounts": [...]}, or NULL with errstr (store error or no memory).
 * The caller owns the JSON. */
json_t *ews_account_view(struct ews_store *store,
                         const struct ews_account_view_query *q, char *errstr,
                         size_t errstr_size);

#endif
