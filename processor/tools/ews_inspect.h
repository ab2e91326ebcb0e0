/*
 * ews-inspect's commands beyond a subject's state, each in its own file:
 * `outbox` (ews_inspect_outbox.c) lists what the outboxes hold, pending
 * and parked, and retries or drops parked records by hand.
 */
#ifndef EWS_TOOLS_INSPECT_H
#define EWS_TOOLS_INSPECT_H

#include "ops/config.h"
#include "store/store.h"

#include <stdbool.h>

/* ews-inspect outbox [retry|drop ID|--all] */
struct inspect_outbox_cmd {
        enum {
                INSPECT_OUTBOX_LIST,
                INSPECT_OUTBOX_RETRY,
                INSPECT_OUTBOX_DROP
        } action;
        const char *id; /* NULL: --all */
};

/* Parses the cnt words after `outbox` (all: --all was given) into cmd:
 * NULL, or what was wrong, with *arg the word it is about (or NULL). */
const char *inspect_outbox_parse(int cnt, char **words, bool all,
                                 struct inspect_outbox_cmd *cmd,
                                 const char **arg);

/* Runs cmd against store, whose topics config names (both borrowed): JSON
 * lines on stdout, each dropped record logged on stderr. 0 done, 1
 * nothing parked under the id asked, or the store failed. */
int inspect_outbox_run(struct ews_store *store, const struct ews_config *config,
                       const struct inspect_outbox_cmd *cmd);

/* ews-inspect funnel [CAMPAIGN]: the funnel as a table (all campaigns, most
 * recent first, and the total); ews-inspect segment STAGE ...: a page of
 * the segment as JSON, E as of now_ms (0: the page's latest t_ref)
 * (ews_inspect_funnel.c). 0, 1 store failed, 2 usage. */
int inspect_funnel_run(struct ews_store *store, int cnt, char **words);
int inspect_segment_run(struct ews_store *store, double half_life_ms,
                        int64_t now_ms, int cnt, char **words);

/* ews-inspect accounts ...: the account view as JSON (ops/account_view.h),
 * A as of now_ms (0: the latest t_ref of those listed). */
int inspect_accounts_run(struct ews_store *store, double half_life_ms,
                         int64_t active_window_ms, int64_t now_ms, int cnt,
                         char **words);

#endif
