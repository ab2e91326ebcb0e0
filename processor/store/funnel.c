/* The funnel's and the segments' writes of a commit, kept apart from the
 * rest of it: its counts go to the round's counters, its segment moves to
 * the commit's sorted-set writes, its first times into its body; all of
 * them in the round's transaction, and only for a commit whose fence
 * holds, so a stage entered counts once however often a batch is
 * replayed. */
#include "store/store_int.h"
#include "util/hash.h"

#include <stdio.h>
#include <string.h>

/* One delta into the funnel hash k1 k2 k3 (store_counters_add): each
 * count that is not 0 into its field. */
static int funnel_delta(struct store_counters *c, const char *k1,
                        const char *k2, const char *k3,
                        const struct ews_funnel_delta *d)
{
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                if (d->count[i] &&
                    store_counters_add(c, k1, k2, k3, ews_funnel_name(i), -1,
                                       d->count[i]))
                        return -1;
        for (i = 0; i < EWS_FUNNEL_BUCKETS; i++)
                if ((d->to_activated[i] &&
                     store_counters_add(c, k1, k2, k3, "a", i,
                                        d->to_activated[i])) ||
                    (d->to_sales_ready[i] &&
                     store_counters_add(c, k1, k2, k3, "s", i,
                                        d->to_sales_ready[i])))
                        return -1;
        return 0;
}

int store_segment_shard(const char *user_id)
{
        return (int)(ews_hash32(user_id) % STORE_SEGMENT_SHARDS);
}

void store_segment_key(const struct ews_store *store, int segment, int shard,
                       char *out, size_t size)
{
        int n = snprintf(out, size, "%ssg%s:%s", store->prefix,
                         segment % 2 ? "0" : "",
                         ews_stage_name((enum ews_stage)(segment / 2)));

        if (shard >= 0 && n >= 0 && (size_t)n < size)
                snprintf(out + n, size - (size_t)n, ":%d", shard);
}

/* The campaign's funnel and the total's, and the campaign's first
 * counted time in the index. */
static int funnel_campaign(struct ews_store *store, struct store_resp *r,
                           struct store_counters *c,
                           const struct ews_funnel_delta *d)
{
        return funnel_delta(c, store->prefix, "ft", "", d) ||
               (d->campaign_id[0] &&
                (funnel_delta(c, store->prefix, "f:", d->campaign_id, d) ||
                 store_resp_cmd(r, 5) || store_resp_str(r, "ZADD") ||
                 store_resp_cat(r, store->prefix, "fi", "") ||
                 store_resp_str(r, "NX") || store_resp_i64(r, d->at_ms) ||
                 store_resp_str(r, d->campaign_id)));
}

/* The user out of the segment it was in, into the one it is in now: in
 * each, the shard of its id. */
static int funnel_segment(struct store_zops *z,
                          const struct ews_segment_move *m)
{
        int64_t shard = store_segment_shard(m->user_id);

        return (m->from >= 0 && m->from != m->to &&
                store_zops_add_copy(z, STORE_Z_SEGMENT, false,
                                    m->from * STORE_SEGMENT_SHARDS + shard, 0,
                                    m->user_id)) ||
               (m->to >= 0 &&
                store_zops_add_copy(z, STORE_Z_SEGMENT, true,
                                    m->to * STORE_SEGMENT_SHARDS + shard,
                                    m->score, m->user_id));
}

int store_funnel_cmds(struct ews_store *store, struct store_resp *r,
                      struct store_counters *c, struct store_zops *z,
                      const struct ews_commit *commit)
{
        size_t i;

        for (i = 0; i < commit->funnel_cnt; i++)
                if (funnel_campaign(store, r, c, &commit->funnel[i]))
                        return -1;
        for (i = 0; i < commit->segment_cnt; i++)
                if (funnel_segment(z, &commit->segments[i]))
                        return -1;
        return 0;
}
