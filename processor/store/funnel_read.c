/* Reads of the funnel and the segments, for the API and ews-inspect:
 * never on the hot path. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_CHUNK 256

static redisReply *funnel_command(struct ews_store *store, char *errstr,
                                  size_t errstr_size, int argc,
                                  const char **argv)
{
        redisReply *reply;

        if (store_connect(store, errstr, errstr_size))
                return NULL;
        reply = redisCommandArgv(store->redis, argc, argv, NULL);
        return store_read_reply(store, reply, errstr, errstr_size);
}

static void funnel_field(struct ews_funnel *f, const char *name,
                         const char *value)
{
        int64_t v = strtoll(value, NULL, 10);
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                if (!strcmp(name, ews_funnel_name(i)))
                        f->count[i] = v;
        i = atoi(name + 1);
        if (i < 0 || i >= EWS_FUNNEL_BUCKETS || name[1] < '0' || name[1] > '9')
                return;
        if (name[0] == 'a')
                f->to_activated[i] = v;
        else if (name[0] == 's')
                f->to_sales_ready[i] = v;
}

/* The spend of every campaign with a funnel (fi). */
static enum ews_store_result funnel_total_spend(struct ews_store *store,
                                                struct ews_funnel *f,
                                                char *errstr,
                                                size_t errstr_size)
{
        char key[80];
        const char *argv[4] = {"ZRANGE", key, "0", "-1"};
        redisReply *reply;
        struct ews_campaign c;
        enum ews_store_result r = EWS_STORE_OK;
        size_t i;

        snprintf(key, sizeof(key), "%sfi", store->prefix);
        if (!(reply = funnel_command(store, errstr, errstr_size, 4, argv)))
                return EWS_STORE_ERROR;
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements &&
                    r == EWS_STORE_OK;
             i++) {
                if (reply->element[i]->len >= EWS_ID_MAX)
                        continue;
                r = ews_store_campaign_get(store, reply->element[i]->str, &c,
                                           errstr, errstr_size);
                if (r == EWS_STORE_OK)
                        f->spend += c.spend;
                if (r == EWS_STORE_NOT_FOUND)
                        r = EWS_STORE_OK;
        }
        freeReplyObject(reply);
        return r;
}

enum ews_store_result ews_store_funnel_get(struct ews_store *store,
                                           const char *campaign_id,
                                           struct ews_funnel *f, char *errstr,
                                           size_t errstr_size)
{
        char key[EWS_ID_MAX + 80];
        const char *argv[2] = {"HGETALL", key};
        redisReply *reply;
        struct ews_campaign c;
        size_t i;

        memset(f, 0, sizeof(*f));
        snprintf(f->campaign_id, sizeof(f->campaign_id), "%s", campaign_id);
        if (campaign_id[0])
                snprintf(key, sizeof(key), "%sf:%s", store->prefix,
                         campaign_id);
        else
                snprintf(key, sizeof(key), "%sft", store->prefix);
        if (!(reply = funnel_command(store, errstr, errstr_size, 2, argv)))
                return EWS_STORE_ERROR;
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
             i += 2)
                funnel_field(f, reply->element[i]->str,
                             reply->element[i + 1]->str);
        i = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
        freeReplyObject(reply);
        if (!campaign_id[0]) /* the total: zero before any count */
                return funnel_total_spend(store, f, errstr, errstr_size);
        if (ews_store_campaign_get(store, campaign_id, &c, errstr,
                                   errstr_size) == EWS_STORE_ERROR)
                return EWS_STORE_ERROR;
        snprintf(f->name, sizeof(f->name), "%s", c.name);
        f->spend = c.spend;
        return i || c.name[0] || c.spend ? EWS_STORE_OK : EWS_STORE_NOT_FOUND;
}

enum ews_store_result ews_store_funnel_campaigns(struct ews_store *store,
                                                 char (*ids)[EWS_ID_MAX],
                                                 size_t max, size_t *cnt,
                                                 char *errstr,
                                                 size_t errstr_size)
{
        char key[80], stop[24];
        const char *argv[4] = {"ZREVRANGE", key, "0", stop};
        redisReply *reply;
        size_t i;

        *cnt = 0;
        snprintf(key, sizeof(key), "%sfi", store->prefix);
        snprintf(stop, sizeof(stop), "%lld", (long long)max - 1);
        if (!max)
                return EWS_STORE_OK;
        if (!(reply = funnel_command(store, errstr, errstr_size, 4, argv)))
                return EWS_STORE_ERROR;
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements &&
                    *cnt < max;
             i++)
                if (reply->element[i]->len < EWS_ID_MAX)
                        snprintf(ids[(*cnt)++], EWS_ID_MAX, "%s",
                                 reply->element[i]->str);
        freeReplyObject(reply);
        return EWS_STORE_OK;
}

static bool segment_match(const struct ews_segment_query *q,
                          const struct ews_user *u)
{
        int i;

        if (q->campaign_id && q->campaign_id[0] &&
            strcmp(q->campaign_id, u->campaign_id))
                return false;
        if (q->account_id && q->account_id[0] &&
            strcmp(q->account_id, u->account_id))
                return false;
        if (!q->product || !q->product[0])
                return true;
        for (i = 0; i < u->interest_cnt; i++)
                if (!strcmp(q->product, u->interests[i].name))
                        return true;
        return false;
}

/* The entries of users that expired, out of the segment: each only if its
 * user is still gone, atomically, as a commit may have brought it back
 * since the read. Best effort: a failure leaves them for the next read. */
static void segment_sweep(struct ews_store *store, const char *key,
                          const redisReply *ids, const redisReply *vals,
                          char (*keys)[EWS_ID_MAX + 80])
{
        static const char script[] =
                "for i = 1, #ARGV do if redis.call('EXISTS', KEYS[i]) == 0 "
                "then redis.call('ZREM', KEYS[#KEYS], ARGV[i]) end end";
        const char **argv = calloc(2 * ids->elements + 4, sizeof(*argv));
        char cnt[24], errstr[256];
        redisReply *reply;
        size_t i, n = 0, k = 3;

        if (!argv)
                return;
        for (i = 0; i < ids->elements && i < vals->elements; i++)
                if (vals->element[i]->type != REDIS_REPLY_STRING)
                        argv[k++] = keys[i], n++;
        if (n) {
                argv[k++] = key;
                for (i = 0; i < ids->elements && i < vals->elements; i++)
                        if (vals->element[i]->type != REDIS_REPLY_STRING)
                                argv[k++] = ids->element[i]->str;
                snprintf(cnt, sizeof(cnt), "%zu", n + 1);
                argv[0] = "EVAL";
                argv[1] = script;
                argv[2] = cnt;
                reply = funnel_command(store, errstr, sizeof(errstr), (int)k,
                                       argv);
                if (reply)
                        freeReplyObject(reply);
        }
        free(argv);
}

/* One chunk of a segment's set from rank `from`: the users that match
 * into out. Returns the members read (0: the set's end), -1 on error. */
static long segment_chunk(struct ews_store *store,
                          const struct ews_segment_query *q, int segment,
                          int64_t from, struct ews_user *out, size_t max,
                          size_t *cnt, int64_t *stopped, char *errstr,
                          size_t errstr_size)
{
        char key[80], start[24], stop[24];
        const char *argv[4] = {q->desc ? "ZREVRANGE" : "ZRANGE", key, start,
                               stop};
        const char **mget = NULL;
        char(*keys)[EWS_ID_MAX + 80] = NULL;
        redisReply *ids, *vals = NULL;
        long n = -1;
        int64_t gone = 0;
        int32_t partition;
        size_t i;

        store_segment_key(store, segment, key, sizeof(key));
        snprintf(start, sizeof(start), "%lld", (long long)from);
        snprintf(stop, sizeof(stop), "%lld",
                 (long long)(from + SEGMENT_CHUNK - 1));
        if (!(ids = funnel_command(store, errstr, errstr_size, 4, argv)))
                return -1;
        if (ids->type != REDIS_REPLY_ARRAY || !ids->elements) {
                n = 0;
                goto out;
        }
        mget = calloc(ids->elements + 1, sizeof(*mget));
        keys = calloc(ids->elements, sizeof(*keys));
        if (!mget || !keys) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        mget[0] = "MGET";
        for (i = 0; i < ids->elements; i++) {
                snprintf(keys[i], sizeof(keys[i]), "%su:%s", store->prefix,
                         ids->element[i]->str);
                mget[i + 1] = keys[i];
        }
        if (!(vals = funnel_command(store, errstr, errstr_size,
                                    (int)ids->elements + 1, mget)))
                goto out;
        segment_sweep(store, key, ids, vals, keys);
        for (i = 0; i < ids->elements && *cnt < max; i++) {
                struct ews_user *u = &out[*cnt];

                /* an expired user's entry is passed over (and gone:
                 * the ranks after it moved up by one) */
                if (i >= vals->elements ||
                    vals->element[i]->type != REDIS_REPLY_STRING) {
                        gone++;
                        continue;
                }
                memset(u, 0, sizeof(*u));
                snprintf(u->user_id, sizeof(u->user_id), "%s",
                         ids->element[i]->str);
                if (store_unpack(store, u, &partition,
                                 (unsigned char *)vals->element[i]->str,
                                 vals->element[i]->len) ||
                    ews_segment_of(u) != segment || !segment_match(q, u))
                        continue;
                (*cnt)++;
        }
        *stopped = from + (int64_t)i - gone;
        n = (long)ids->elements;
out:
        if (vals)
                freeReplyObject(vals);
        freeReplyObject(ids);
        free(mget);
        free(keys);
        return n;
}

enum ews_store_result ews_store_segment(struct ews_store *store,
                                        const struct ews_segment_query *q,
                                        struct ews_user *out, size_t max,
                                        size_t *cnt, int64_t *next,
                                        char *errstr, size_t errstr_size)
{
        /* ascending: E <= 0 first, then E > 0; descending the other way.
         * The cursor is the rank in that order: even, the first set; odd
         * is never used, so one number says set and rank: set * 2^40 +
         * rank. */
        int first = 2 * (int)q->stage + (q->desc ? 0 : 1);
        int64_t cursor = q->cursor, stopped = 0;
        int part = (int)(cursor >> 40);
        int64_t rank = cursor & (((int64_t)1 << 40) - 1);
        long n;

        *cnt = 0;
        *next = -1;
        for (; part < 2; part++, rank = 0) {
                int segment = part ? (first ^ 1) : first;

                do {
                        n = segment_chunk(store, q, segment, rank, out, max,
                                          cnt, &stopped, errstr, errstr_size);
                        if (n < 0)
                                return EWS_STORE_ERROR;
                        rank = stopped;
                        if (*cnt == max) {
                                *next = ((int64_t)part << 40) | rank;
                                return EWS_STORE_OK;
                        }
                } while (n == SEGMENT_CHUNK);
        }
        return EWS_STORE_OK;
}
