/* What a partition's owner reads and claims: its fence (epoch, offset,
 * watermark), its due timers, its users' state (through the cache) and the
 * partition count the store was built with. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <string.h>

enum ews_store_result ews_store_fence_claim(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition,
                                            struct ews_fence *fence,
                                            char *errstr, size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        enum ews_store_result result = EWS_STORE_ERROR;
        redisReply *reply = NULL;

        if (source == EWS_SOURCE_USAGE)
                ews_user_cache_drop(store->cache, partition);
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        store_argv_reset(a);
        if (store_argv_add(a, "EVALSHA", 7) || store_argv_add(a, "", 0) ||
            store_argv_add(a, "1", 1) ||
            store_add_partition_key(store, a, 'p', source, partition)) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        reply = store_evalsha(store, store_script_claim, store->sha_claim,
                              errstr, errstr_size);
        if (!reply || reply->type != REDIS_REPLY_ARRAY ||
            reply->elements != 4 ||
            reply->element[0]->type != REDIS_REPLY_INTEGER) {
                result = store_fail(store, errstr, errstr_size, "fence claim");
                goto out;
        }
        fence->epoch = reply->element[0]->integer;
        if (store_parse_i64(reply->element[1]->str, reply->element[1]->len,
                            &fence->next_offset))
                fence->next_offset = -1;
        if (store_parse_i64(reply->element[2]->str, reply->element[2]->len,
                            &fence->watermark_ms))
                fence->watermark_ms = 0;
        if (store_parse_i64(reply->element[3]->str, reply->element[3]->len,
                            &fence->idle_ms))
                fence->idle_ms = 0;
        /* redis.wait.replicas: the fence just read holds only once the
         * replicas have it (a commit whose WAIT fell short comes back
         * here, and must not be taken as done before they do). */
        result = ews_store_wait(store, errstr, errstr_size);
out:
        if (reply)
                freeReplyObject(reply);
        return result;
}

enum ews_store_result ews_store_fence_read(struct ews_store *store,
                                           enum ews_source source,
                                           int32_t partition,
                                           int64_t *next_offset, char *errstr,
                                           size_t errstr_size)
{
        redisReply *reply;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        reply = redisCommand(store->redis, "HGET %sp:%s:%d offset",
                             store->prefix, store->topics[source],
                             (int)partition);
        if (!reply || (reply->type != REDIS_REPLY_STRING &&
                       reply->type != REDIS_REPLY_NIL)) {
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size, "fence read");
        }
        if (reply->type == REDIS_REPLY_NIL ||
            store_parse_i64(reply->str, reply->len, next_offset))
                *next_offset = -1;
        freeReplyObject(reply);
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_timers_due(
        struct ews_store *store, const int32_t *partitions,
        const int64_t *upto_ms, size_t cnt,
        void (*cb)(void *opaque, int32_t partition, const char *user_id),
        void *opaque, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        size_t i, j;

        if (!cnt)
                return EWS_STORE_OK;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (i = 0; i < cnt; i++)
                if (redisAppendCommand(
                            store->redis, "ZRANGEBYSCORE %st:%s:%d -inf %lld",
                            store->prefix, store->topics[EWS_SOURCE_USAGE],
                            (int)partitions[i],
                            (long long)upto_ms[i]) != REDIS_OK)
                        return store_fail(store, errstr, errstr_size, "timers");
        for (i = 0; i < cnt; i++) {
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return store_fail(store, errstr, errstr_size, "timers");
                if (reply->type != REDIS_REPLY_ARRAY) {
                        freeReplyObject(reply);
                        return store_fail(store, errstr, errstr_size, "timers");
                }
                for (j = 0; j < reply->elements; j++)
                        if (reply->element[j]->type == REDIS_REPLY_STRING &&
                            reply->element[j]->len < EWS_ID_MAX)
                                cb(opaque, partitions[i],
                                   reply->element[j]->str);
                freeReplyObject(reply);
        }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_users_load(struct ews_store *store,
                                           struct ews_user *users, size_t cnt,
                                           char *errstr, size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        const unsigned char *cached;
        redisReply *reply;
        size_t i, len, misses = 0;
        char user_id[EWS_ID_MAX];
        int32_t partition;

        for (i = 0; i < cnt; i++) {
                memcpy(user_id, users[i].user_id, sizeof(user_id));
                cached = ews_user_cache_get(store->cache, user_id, &len);
                if (cached) {
                        memset(&users[i], 0, sizeof(users[i]));
                        memcpy(users[i].user_id, user_id, sizeof(user_id));
                        if (ews_user_unpack(&users[i], &partition, cached, len))
                                cached = NULL; /* read it from Redis */
                        else
                                continue;
                }
                if (!misses++ && store_connect(store, errstr, errstr_size))
                        return EWS_STORE_ERROR;
                store_argv_reset(a);
                if (store_argv_add(a, "GET", 3) ||
                    store_argv_addf(a, "%su:%s", store->prefix, user_id)) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_STORE_ERROR;
                }
                if (store_append(store, errstr, errstr_size, "user load"))
                        return EWS_STORE_ERROR;
                users[i].events = -1; /* marks a miss until its reply */
        }
        for (i = 0; i < cnt && misses; i++) {
                if (users[i].events != -1)
                        continue;
                misses--;
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                memcpy(user_id, users[i].user_id, sizeof(user_id));
                memset(&users[i], 0, sizeof(users[i]));
                memcpy(users[i].user_id, user_id, sizeof(user_id));
                if (reply->type == REDIS_REPLY_STRING &&
                    ews_user_unpack(&users[i], &partition,
                                    (unsigned char *)reply->str, reply->len)) {
                        /* Never guess at a user's state: stop here. */
                        snprintf(errstr, errstr_size,
                                 "user %s: stored value is not a packed "
                                 "user of version %d",
                                 user_id, EWS_USER_PACKED_VERSION);
                        freeReplyObject(reply);
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                }
                if (reply->type != REDIS_REPLY_STRING &&
                    reply->type != REDIS_REPLY_NIL) {
                        freeReplyObject(reply);
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                }
                freeReplyObject(reply);
        }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_partitions_check(struct ews_store *store,
                                                 enum ews_source source,
                                                 int partition_cnt,
                                                 int *stored_cnt, char *errstr,
                                                 size_t errstr_size)
{
        char key[512];
        redisReply *reply;
        int64_t stored;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        snprintf(key, sizeof(key), "%sm:%s", store->prefix,
                 store->topics[source]);
        reply = redisCommand(store->redis, "SET %s %d NX GET", key,
                             partition_cnt);
        if (!reply || (reply->type != REDIS_REPLY_STRING &&
                       reply->type != REDIS_REPLY_NIL)) {
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size,
                                  "partition count");
        }
        stored = partition_cnt;
        if (reply->type == REDIS_REPLY_STRING &&
            store_parse_i64(reply->str, reply->len, &stored))
                stored = -1;
        freeReplyObject(reply);
        *stored_cnt = (int)stored;
        if (stored != partition_cnt) {
                snprintf(errstr, errstr_size,
                         "topic %s has %d partitions but the store at %s was "
                         "built with %d: fences, timers and state are kept "
                         "per partition (see README, changing the partition "
                         "count)",
                         store->topics[source], partition_cnt, key,
                         (int)stored);
                return EWS_STORE_FENCED;
        }
        return EWS_STORE_OK;
}
