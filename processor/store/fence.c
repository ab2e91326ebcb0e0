/* What a partition's owner reads and claims: its fence (epoch, offset,
 * watermark), its due timers, its users' state (through the cache) and the
 * partition count the store was built with. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
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

/* Hours of timers read at most for one partition and call: a watermark
 * that jumped further had no timers in between (they would have fired). */
#define FENCE_HOURS_MAX (24 * 400)

/* The commands reading partition's timers due by upto_ms: every hour
 * from from_ms's to upto_ms's, the last one up to upto_ms; and the one
 * key of an earlier version. The number of commands, -1 on error. */
static int fence_timers_append(struct ews_store *store, int32_t partition,
                               int64_t from_ms, int64_t upto_ms)
{
        struct store_argv *a = &store->argv;
        char timers[sizeof(store->prefix) + 300];
        int64_t hour, last;
        int n = 0;

        if (upto_ms <= 0 ||
            store_timer_prefix(store, partition, timers, sizeof(timers)))
                return -1;
        if (from_ms <= 0 || from_ms > upto_ms)
                from_ms = upto_ms;
        last = upto_ms / STORE_TIMER_BUCKET_MS;
        hour = from_ms / STORE_TIMER_BUCKET_MS;
        if (last - hour > FENCE_HOURS_MAX)
                hour = last - FENCE_HOURS_MAX;
        for (; hour <= last; hour++, n++) {
                store_argv_reset(a);
                if (store_argv_add(a, hour < last ? "ZRANGE" : "ZRANGEBYSCORE",
                                   hour < last ? 6 : 13) ||
                    store_argv_addf(a, "%s:%lld", timers, (long long)hour) ||
                    store_argv_add(a, hour < last ? "0" : "-inf",
                                   hour < last ? 1 : 4) ||
                    (hour < last
                             ? store_argv_add(a, "-1", 2)
                             : store_argv_i64(
                                       a, upto_ms % STORE_TIMER_BUCKET_MS)) ||
                    store_append(store, NULL, 0, "timers"))
                        return -1;
        }
        store_argv_reset(a);
        if (store_argv_add(a, "ZRANGEBYSCORE", 13) ||
            store_argv_add(a, timers, strlen(timers)) ||
            store_argv_add(a, "-inf", 4) || store_argv_i64(a, upto_ms) ||
            store_append(store, NULL, 0, "timers"))
                return -1;
        return n + 1;
}

enum ews_store_result ews_store_timers_due(
        struct ews_store *store, const int32_t *partitions,
        const int64_t *from_ms, const int64_t *upto_ms, size_t cnt,
        void (*cb)(void *opaque, int32_t partition, const char *user_id),
        void *opaque, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        int *cmds = NULL;
        size_t i, j;
        int k;

        if (!cnt)
                return EWS_STORE_OK;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (!(cmds = calloc(cnt, sizeof(*cmds)))) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        for (i = 0; i < cnt; i++)
                if (upto_ms[i] > 0 &&
                    (cmds[i] = fence_timers_append(store, partitions[i],
                                                   from_ms[i], upto_ms[i])) < 0)
                        goto fail;
        for (i = 0; i < cnt; i++) {
                for (k = 0; k < cmds[i]; k++) {
                        if (redisGetReply(store->redis, (void **)&reply) !=
                                    REDIS_OK ||
                            !reply)
                                goto fail;
                        if (reply->type != REDIS_REPLY_ARRAY) {
                                freeReplyObject(reply);
                                goto fail;
                        }
                        for (j = 0; j < reply->elements; j++)
                                if (reply->element[j]->type ==
                                            REDIS_REPLY_STRING &&
                                    reply->element[j]->len < EWS_ID_MAX)
                                        cb(opaque, partitions[i],
                                           reply->element[j]->str);
                        freeReplyObject(reply);
                }
        }
        free(cmds);
        return EWS_STORE_OK;
fail:
        free(cmds);
        return store_fail(store, errstr, errstr_size, "timers");
}

/* users[i] zeroed but for its id, then filled from a packed value (none:
 * a user not stored yet): as ews_user_unpack. */
static int fence_user_fill(struct ews_store *store, struct ews_user *user,
                           const unsigned char *packed, size_t len)
{
        char user_id[EWS_ID_MAX];
        int32_t partition;

        memcpy(user_id, user->user_id, sizeof(user_id));
        memset(user, 0, sizeof(*user));
        memcpy(user->user_id, user_id, sizeof(user_id));
        return packed ? ews_user_unpack(user, &partition, store->names, packed,
                                        len)
                      : 0;
}

/* A GET reply that is no value at all (an error, a wrong type). */
#define FENCE_NOT_A_VALUE (-3)

/* The user filled from a GET reply of its value (nil: not stored yet),
 * and the reply freed. As ews_user_unpack, or FENCE_NOT_A_VALUE. */
static int fence_user_reply(struct ews_store *store, struct ews_user *user,
                            redisReply *reply)
{
        int rc = FENCE_NOT_A_VALUE;

        if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL)
                rc = fence_user_fill(store, user,
                                     reply->type == REDIS_REPLY_STRING
                                             ? (unsigned char *)reply->str
                                             : NULL,
                                     reply->len);
        freeReplyObject(reply);
        return rc;
}

/* A stored value that is no packed user (or, names, names ids the
 * dictionary does not hold): the connection goes, with any replies still
 * due on it, and the error names the user. */
static enum ews_store_result fence_refuse(struct ews_store *store,
                                          const char *user_id, bool names,
                                          char *errstr, size_t errstr_size)
{
        store_fail(store, errstr, errstr_size, "user load");
        snprintf(errstr, errstr_size,
                 "redis user load: user %s: stored value is not a packed "
                 "user of version %d or before%s",
                 user_id, EWS_USER_PACKED_VERSION,
                 names ? ", or names what the names dictionary does not hold"
                       : "");
        return EWS_STORE_ERROR;
}

/* The users whose values named ids not read yet (events -2): read the
 * dictionary again, then each of them again, one at a time (rare: names
 * another instance added since). */
static enum ews_store_result fence_users_again(struct ews_store *store,
                                               struct ews_user *const *users,
                                               size_t cnt, char *errstr,
                                               size_t errstr_size)
{
        redisReply *reply;
        size_t i;
        int rc;

        if (store_names_load(store, errstr, errstr_size))
                return store_fail(store, errstr, errstr_size, "names");
        for (i = 0; i < cnt; i++) {
                if (users[i]->events != -2)
                        continue;
                reply = redisCommand(store->redis, "GET %su:%s", store->prefix,
                                     users[i]->user_id);
                rc = reply ? fence_user_reply(store, users[i], reply)
                           : FENCE_NOT_A_VALUE;
                if (rc == FENCE_NOT_A_VALUE)
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                if (rc)
                        return fence_refuse(store, users[i]->user_id, true,
                                            errstr, errstr_size);
        }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_users_load(struct ews_store *store,
                                           struct ews_user *const *users,
                                           size_t cnt, char *errstr,
                                           size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        const unsigned char *cached;
        redisReply *reply;
        size_t i, len, misses = 0, again = 0;
        int rc;

        if (store->names_pending_cnt &&
            (store_connect(store, errstr, errstr_size) ||
             store_names_assign(store, errstr, errstr_size)))
                return EWS_STORE_ERROR;
        for (i = 0; i < cnt; i++) {
                cached = ews_user_cache_get(store->cache, users[i]->user_id,
                                            &len);
                if (cached && !fence_user_fill(store, users[i], cached, len))
                        continue; /* else read it from Redis */
                if (!misses && store_connect(store, errstr, errstr_size))
                        return EWS_STORE_ERROR;
                store_argv_reset(a);
                if (store_argv_add(a, "GET", 3) ||
                    store_argv_cat(a, store->prefix, "u:", users[i]->user_id)) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_STORE_ERROR;
                }
                if (store_append(store, errstr, errstr_size, "user load"))
                        return EWS_STORE_ERROR;
                misses++;
                users[i]->events = -1; /* marks a miss until its reply */
        }
        for (i = 0; i < cnt && misses; i++) {
                if (users[i]->events != -1)
                        continue;
                misses--;
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                rc = fence_user_reply(store, users[i], reply);
                if (rc == FENCE_NOT_A_VALUE)
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                if (rc == EWS_USER_UNKNOWN_NAME) {
                        users[i]->events = -2; /* once the replies are in */
                        again++;
                } else if (rc) {
                        /* Never guess at a user's state: stop here. */
                        return fence_refuse(store, users[i]->user_id, false,
                                            errstr, errstr_size);
                }
        }
        return again ? fence_users_again(store, users, cnt, errstr, errstr_size)
                     : EWS_STORE_OK;
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
        if (stored == partition_cnt)
                store->partition_cnt[source] = partition_cnt;
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
