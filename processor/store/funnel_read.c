/* Reads of the funnel, for the API and ews-inspect:
 * never on the hot path. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
