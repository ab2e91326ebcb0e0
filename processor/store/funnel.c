/* The funnel's and the segments' writes of a commit, kept apart from the
 * rest of it: built here as a list of plain Redis writes (four strings
 * each: command, key, two arguments) that the commit runs in the same
 * atomic, fenced call, after its fence check. A commit fenced off writes
 * none of them, so a stage entered counts once however often a batch is
 * replayed. */
#include "store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int funnel_op(struct store_argv *a, const char *cmd, const char *key,
                     const char *arg1, size_t len1, const char *arg2,
                     size_t len2)
{
        return store_argv_add(a, cmd, strlen(cmd)) ||
               store_argv_add(a, key, strlen(key)) ||
               store_argv_add(a, arg1, len1) || store_argv_add(a, arg2, len2);
}

static int funnel_incr(struct store_argv *a, const char *key, const char *field,
                       int64_t n)
{
        char num[24];
        int len = snprintf(num, sizeof(num), "%lld", (long long)n);

        return n ? funnel_op(a, "HINCRBY", key, field, strlen(field), num,
                             (size_t)len)
                 : 0;
}

/* One delta into one funnel hash. */
static int funnel_delta(struct store_argv *a, const char *key,
                        const struct ews_funnel_delta *d)
{
        char field[8];
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                if (funnel_incr(a, key, ews_funnel_name(i), d->count[i]))
                        return -1;
        for (i = 0; i < EWS_FUNNEL_BUCKETS; i++) {
                snprintf(field, sizeof(field), "a%d", i);
                if (funnel_incr(a, key, field, d->to_activated[i]))
                        return -1;
                snprintf(field, sizeof(field), "s%d", i);
                if (funnel_incr(a, key, field, d->to_sales_ready[i]))
                        return -1;
        }
        return 0;
}

void store_segment_key(const struct ews_store *store, int segment, char *out,
                       size_t size)
{
        snprintf(out, size, "%ssg%s:%s", store->prefix, segment % 2 ? "0" : "",
                 ews_stage_name((enum ews_stage)(segment / 2)));
}

int store_funnel_ops(struct ews_store *store, const struct ews_commit *commit)
{
        struct store_argv *a = &store->ops;
        char key[EWS_ID_MAX + 80], total[80], num[32];
        size_t i;
        int len;

        store_argv_reset(a);
        snprintf(total, sizeof(total), "%sft", store->prefix);
        for (i = 0; i < commit->funnel_cnt; i++) {
                const struct ews_funnel_delta *d = &commit->funnel[i];
                const char *id = d->campaign_id;

                if (funnel_delta(a, total, d))
                        return -1;
                if (!id[0])
                        continue;
                snprintf(key, sizeof(key), "%sf:%s", store->prefix, id);
                len = snprintf(num, sizeof(num), "%lld", (long long)d->at_ms);
                snprintf(total, sizeof(total), "%sfi", store->prefix);
                if (funnel_delta(a, key, d) ||
                    funnel_op(a, "ZADDNX", total, num, (size_t)len, id,
                              strlen(id)))
                        return -1;
                snprintf(total, sizeof(total), "%sft", store->prefix);
        }
        for (i = 0; i < commit->segment_cnt; i++) {
                const struct ews_segment_move *m = &commit->segments[i];

                if (m->from >= 0 && m->from != m->to) {
                        store_segment_key(store, m->from, key, sizeof(key));
                        if (funnel_op(a, "ZREM", key, m->user_id,
                                      strlen(m->user_id), "", 0))
                                return -1;
                }
                if (m->to < 0)
                        continue;
                store_segment_key(store, m->to, key, sizeof(key));
                len = isinf(m->score)
                              ? snprintf(num, sizeof(num), "%s",
                                         m->score > 0 ? "+inf" : "-inf")
                              : snprintf(num, sizeof(num), "%.17g", m->score);
                if (funnel_op(a, "ZADD", key, num, (size_t)len, m->user_id,
                              strlen(m->user_id)))
                        return -1;
        }
        return 0;
}
