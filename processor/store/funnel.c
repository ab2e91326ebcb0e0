/* The funnel's and the segments' writes of a commit, kept apart from the
 * rest of it: native Redis commands appended to the commit's body, so they
 * go in its transaction, after its fence check. A commit fenced off writes
 * none of them, so a stage entered counts once however often a batch is
 * replayed. */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

_Static_assert(EWS_FUNNEL_BUCKETS <= 100, "a bucket's field has two digits");

/* key's field <f1><f2> up by n, when n is not 0: the field as "a3" from
 * "a" and 3, without printf (a funnel has 2 x EWS_FUNNEL_BUCKETS). */
static int funnel_incr(struct store_counters *c, const char *key,
                       const char *f1, int f2, int64_t n)
{
        char field[16];
        size_t l = strlen(f1);

        if (!n)
                return 0;
        if (f2 < 0 || l + 3 > sizeof(field))
                return store_counters_add(c, key, f1, n);
        memcpy(field, f1, l);
        if (f2 >= 10)
                field[l++] = (char)('0' + f2 / 10 % 10);
        field[l++] = (char)('0' + f2 % 10);
        field[l] = '\0';
        return store_counters_add(c, key, field, n);
}

/* One delta into one funnel hash. */
static int funnel_delta(struct store_counters *c, const char *key,
                        const struct ews_funnel_delta *d)
{
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                if (funnel_incr(c, key, ews_funnel_name(i), -1, d->count[i]))
                        return -1;
        for (i = 0; i < EWS_FUNNEL_BUCKETS; i++)
                if (funnel_incr(c, key, "a", i, d->to_activated[i]) ||
                    funnel_incr(c, key, "s", i, d->to_sales_ready[i]))
                        return -1;
        return 0;
}

void store_segment_key(const struct ews_store *store, int segment, char *out,
                       size_t size)
{
        snprintf(out, size, "%ssg%s:%s", store->prefix, segment % 2 ? "0" : "",
                 ews_stage_name((enum ews_stage)(segment / 2)));
}

/* The campaign's funnel, and its first counted time in the index. */
static int funnel_campaign(struct ews_store *store, struct store_resp *r,
                           struct store_counters *c,
                           const struct ews_funnel_delta *d)
{
        char key[EWS_ID_MAX + 80];

        snprintf(key, sizeof(key), "%sf:%s", store->prefix, d->campaign_id);
        return funnel_delta(c, key, d) || store_resp_cmd(r, 5) ||
               store_resp_str(r, "ZADD") ||
               store_resp_cat(r, store->prefix, "fi", "") ||
               store_resp_str(r, "NX") || store_resp_i64(r, d->at_ms) ||
               store_resp_str(r, d->campaign_id);
}

/* The user out of the segment it was in, into the one it is in now. */
static int funnel_segment(struct store_zops *z,
                          const struct ews_segment_move *m)
{
        return (m->from >= 0 && m->from != m->to &&
                store_zops_add(z, STORE_Z_SEGMENT, false, m->from, 0,
                               m->user_id)) ||
               (m->to >= 0 && store_zops_add(z, STORE_Z_SEGMENT, true, m->to,
                                             m->score, m->user_id));
}

/* What the campaigns' deltas add up to, into sum. */
static void funnel_sum(struct ews_funnel_delta *sum,
                       const struct ews_funnel_delta *d)
{
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                sum->count[i] += d->count[i];
        for (i = 0; i < EWS_FUNNEL_BUCKETS; i++) {
                sum->to_activated[i] += d->to_activated[i];
                sum->to_sales_ready[i] += d->to_sales_ready[i];
        }
}

int store_funnel_cmds(struct ews_store *store, struct store_resp *r,
                      struct store_counters *c, struct store_zops *z,
                      const struct ews_commit *commit)
{
        struct ews_funnel_delta sum;
        char total[80];
        size_t i;

        /* the total once a commit, all its campaigns added up */
        memset(&sum, 0, sizeof(sum));
        for (i = 0; i < commit->funnel_cnt; i++) {
                const struct ews_funnel_delta *d = &commit->funnel[i];

                funnel_sum(&sum, d);
                if (d->campaign_id[0] && funnel_campaign(store, r, c, d))
                        return -1;
        }
        snprintf(total, sizeof(total), "%sft", store->prefix);
        if (funnel_delta(c, total, &sum))
                return -1;
        for (i = 0; i < commit->segment_cnt; i++)
                if (funnel_segment(z, &commit->segments[i]))
                        return -1;
        return 0;
}
