/*
 * What the store reads back for the funnel, the segments and the account
 * view (funnel_read.c, read.c): the questions around the alerts, asked of
 * what the commits wrote. Kept apart from store.h, the store's write path
 * and subjects, so that each reader sees the part it asks.
 */
#ifndef EWS_OUT_STORE_VIEWS_H
#define EWS_OUT_STORE_VIEWS_H

#include "store/store.h"

/* A campaign's funnel as stored ("": the total over all users, with the
 * spend of every campaign that has a funnel), with the campaign's name and
 * spend. EWS_STORE_NOT_FOUND for a campaign with
 * neither. */
struct ews_funnel {
        char campaign_id[EWS_ID_MAX];
        char name[EWS_ATTR_VALUE_MAX];
        int64_t count[EWS_FUNNEL_COUNT];
        int64_t to_activated[EWS_FUNNEL_BUCKETS];
        int64_t to_sales_ready[EWS_FUNNEL_BUCKETS];
        double spend;
};
enum ews_store_result ews_store_funnel_get(struct ews_store *store,
                                           const char *campaign_id,
                                           struct ews_funnel *f, char *errstr,
                                           size_t errstr_size);
/* The ids of the campaigns with a funnel, most recently first counted
 * first: up to max into ids, their number in *cnt. */
enum ews_store_result ews_store_funnel_campaigns(struct ews_store *store,
                                                 char (*ids)[EWS_ID_MAX],
                                                 size_t max, size_t *cnt,
                                                 char *errstr,
                                                 size_t errstr_size);

/* A page of a segment: the users of stage by engagement now, lowest first
 * (or highest with desc), after cursor (NULL or "": from the start) and
 * matching the filters that are set (NULL or "": any). A cursor is a
 * page's next, as text. */
#define EWS_SEGMENT_CURSOR_MAX (EWS_ID_MAX + 40)
struct ews_segment_query {
        enum ews_stage stage;
        bool desc;
        const char *cursor;
        const char *campaign_id, *account_id, *product;
};
/* Up to max users into out (*cnt of them); next (EWS_SEGMENT_CURSOR_MAX
 * bytes) the cursor of the next page, "" at the end. EWS_STORE_REJECTED
 * when q->cursor is not a cursor. */
enum ews_store_result ews_store_segment(struct ews_store *store,
                                        const struct ews_segment_query *q,
                                        struct ews_user *out, size_t max,
                                        size_t *cnt, char *next, char *errstr,
                                        size_t errstr_size);

/* A cursor's parts: the set (0 or 1), the score as Redis wrote it and as
 * a double, the member. 0, or -1 when text is not a cursor. */
int ews_store_segment_cursor_parse(const char *text, int *part, double *score,
                                   char *score_text, size_t score_text_size,
                                   char *member, size_t member_size);

/* An account's members, the most recently active first: up to max ids
 * into ids, their number in *cnt. */
enum ews_store_result
ews_store_account_members(struct ews_store *store, const char *account_id,
                          char (*ids)[EWS_ID_MAX], size_t max, size_t *cnt,
                          char *errstr, size_t errstr_size);

#endif
