/* Reads of single subjects, for inspection: never on the hot path. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redisReply *read_command(struct ews_store *store, char *errstr,
                                size_t errstr_size, const char *fmt, ...)
{
        redisReply *reply;
        va_list ap;

        if (store_connect(store, errstr, errstr_size))
                return NULL;
        va_start(ap, fmt);
        reply = redisvCommand(store->redis, fmt, ap);
        va_end(ap);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                if (reply)
                        freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "read");
                return NULL;
        }
        return reply;
}

enum ews_store_result ews_store_user_get(struct ews_store *store,
                                         const char *user_id,
                                         struct ews_user *user,
                                         int32_t *partition, char *errstr,
                                         size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_NOT_FOUND;
        char key[512];
        redisReply *reply;
        int32_t unused;

        if (!partition)
                partition = &unused;

        snprintf(key, sizeof(key), "%su:%s", store->prefix, user_id);
        reply = read_command(store, errstr, errstr_size, "GET %s", key);
        if (!reply)
                return EWS_STORE_ERROR;
        memset(user, 0, sizeof(*user));
        snprintf(user->user_id, sizeof(user->user_id), "%s", user_id);
        if (reply->type == REDIS_REPLY_STRING)
                result = EWS_STORE_OK;
        if (result == EWS_STORE_OK &&
            ews_user_unpack(user, partition, (unsigned char *)reply->str,
                            reply->len)) {
                snprintf(errstr, errstr_size, "%s: not a packed user", key);
                result = EWS_STORE_ERROR;
        }
        freeReplyObject(reply);
        return result;
}

static double read_double(redisReply *r)
{
        return r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0.0;
}

static int64_t read_i64(redisReply *r)
{
        return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

enum ews_store_result ews_store_account_get(struct ews_store *store,
                                            const char *account_id,
                                            int64_t active_window_ms,
                                            struct ews_account *account,
                                            char *errstr, size_t errstr_size)
{
        char key[512], members[512];
        redisReply *reply;

        memset(account, 0, sizeof(*account));
        snprintf(account->account_id, sizeof(account->account_id), "%s",
                 account_id);
        snprintf(key, sizeof(key), "%sa:%s", store->prefix, account_id);
        reply = read_command(store, errstr, errstr_size, "HMGET %s e er", key);
        if (!reply)
                return EWS_STORE_ERROR;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[1]->type != REDIS_REPLY_STRING) {
                freeReplyObject(reply);
                return EWS_STORE_NOT_FOUND; /* no roll-up: no account */
        }
        account->engagement = read_double(reply->element[0]);
        account->engagement_ref_ms = (int64_t)read_double(reply->element[1]);
        freeReplyObject(reply);

        snprintf(members, sizeof(members), "%sam:%s", store->prefix,
                 account_id);
        reply = read_command(store, errstr, errstr_size, "ZCARD %s", members);
        if (!reply)
                return EWS_STORE_ERROR;
        account->users = reply->integer;
        freeReplyObject(reply);
        reply = read_command(
                store, errstr, errstr_size, "ZCOUNT %s %lld +inf", members,
                (long long)(account->engagement_ref_ms - active_window_ms));
        if (!reply)
                return EWS_STORE_ERROR;
        account->active_users = reply->integer;
        freeReplyObject(reply);
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_campaign_get(struct ews_store *store,
                                             const char *campaign_id,
                                             struct ews_campaign *campaign,
                                             char *errstr, size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_NOT_FOUND;
        char key[512];
        redisReply *reply, **f;

        memset(campaign, 0, sizeof(*campaign));
        snprintf(campaign->campaign_id, sizeof(campaign->campaign_id), "%s",
                 campaign_id);
        snprintf(key, sizeof(key), "%sc:%s", store->prefix, campaign_id);
        reply = read_command(store, errstr, errstr_size,
                             "HMGET %s name channel status target launched "
                             "spend signups activated",
                             key);
        if (!reply)
                return EWS_STORE_ERROR;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 8)
                goto out;
        f = reply->element;
        for (size_t i = 0; i < 8; i++)
                if (f[i]->type == REDIS_REPLY_STRING)
                        result = EWS_STORE_OK; /* any field: it exists */
        if (f[0]->type == REDIS_REPLY_STRING)
                snprintf(campaign->name, sizeof(campaign->name), "%s",
                         f[0]->str);
        if (f[1]->type == REDIS_REPLY_STRING)
                snprintf(campaign->channel, sizeof(campaign->channel), "%s",
                         f[1]->str);
        if (f[2]->type == REDIS_REPLY_STRING)
                snprintf(campaign->status, sizeof(campaign->status), "%s",
                         f[2]->str);
        campaign->has_target = f[3]->type == REDIS_REPLY_STRING;
        campaign->target_activation_rate = read_double(f[3]);
        campaign->launched_ms = read_i64(f[4]);
        campaign->spend = read_double(f[5]);
        campaign->signups = read_i64(f[6]);
        campaign->activated = read_i64(f[7]);
out:
        freeReplyObject(reply);
        return result;
}

/* scripts/erase.lua: removes the user's state and timer and its
 * membership of its account and its segment, and takes a new epoch for its
 * partition. */
enum ews_store_result ews_store_user_erase(struct ews_store *store,
                                           const char *user_id, char *errstr,
                                           size_t errstr_size)
{
        static struct ews_user user;
        enum ews_store_result result;
        char keys[5][512];
        int32_t partition;
        int segment;
        redisReply *reply;

        /* the partition and account name the keys to erase */
        result = ews_store_user_get(store, user_id, &user, &partition, errstr,
                                    errstr_size);
        if (result != EWS_STORE_OK)
                return result;
        snprintf(keys[0], sizeof(keys[0]), "%su:%s", store->prefix, user_id);
        snprintf(keys[1], sizeof(keys[1]), "%st:%s:%d", store->prefix,
                 store->topics[EWS_SOURCE_USAGE], (int)partition);
        snprintf(keys[2], sizeof(keys[2]), "%sp:%s:%d", store->prefix,
                 store->topics[EWS_SOURCE_USAGE], (int)partition);
        snprintf(keys[3], sizeof(keys[3]), "%sam:%s", store->prefix,
                 user.account_id);
        segment = ews_segment_of(&user);
        store_segment_key(store, segment < 0 ? 0 : segment, keys[4],
                          sizeof(keys[4]));
        reply = read_command(
                store, errstr, errstr_size, "EVAL %s 5 %s %s %s %s %s %s %s %s",
                store_script_erase, keys[0], keys[1], keys[2], keys[3], keys[4],
                user_id, user.account_id[0] ? "1" : "0",
                segment < 0 ? "0" : "1");
        if (!reply)
                return EWS_STORE_ERROR;
        /* 0: erased by another call since the read */
        result = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1
                         ? EWS_STORE_OK
                         : EWS_STORE_NOT_FOUND;
        freeReplyObject(reply);
        return result;
}
