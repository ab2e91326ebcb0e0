/* What a partition's owner reads and claims: its fence (epoch, offset,
 * watermark), its due timers, its users' state (through the cache) and the
 * partition count the store was built with. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

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

int ews_store_user_fill(const struct ews_store *store, struct ews_user *user,
                        const unsigned char *value, size_t len)
{
        char user_id[EWS_ID_MAX];
        int32_t partition;

        memcpy(user_id, user->user_id, sizeof(user_id));
        memset(user, 0, sizeof(*user));
        memcpy(user->user_id, user_id, sizeof(user_id));
        return value && ews_user_unpack(user, &partition, store->names, value,
                                        len)
                       ? -1
                       : 0;
}

/* What a user of the read waits for. */
enum fence_wait {
        FENCE_NONE,
        FENCE_REPLY, /* its read's reply */
        FENCE_NAMES  /* the names dictionary, then its value again */
};

/* The reply to the read of user i, checked, given to got and freed:
 * FENCE_NONE; FENCE_NAMES when it names an id not read yet; -1 when it
 * is no packed user (errstr says so) or got could not keep it. */
static int fence_user_reply(struct ews_store *store, const char *user_id,
                            size_t i, redisReply *reply, ews_store_value_cb got,
                            void *opaque, char *errstr, size_t errstr_size)
{
        const unsigned char *value = (const unsigned char *)reply->str;
        struct ews_user scratch;
        int32_t partition;
        int rc = -1;

        if (reply->type == REDIS_REPLY_NIL) {
                rc = got(opaque, i, NULL, 0) ? FENCE_NONE : -1;
        } else if (reply->type != REDIS_REPLY_STRING) {
                snprintf(errstr, errstr_size, "user %s: not a string value",
                         user_id);
        } else if ((rc = ews_user_unpack(&scratch, &partition, store->names,
                                         value, reply->len)) ==
                   EWS_USER_UNKNOWN_NAME) {
                rc = FENCE_NAMES;
        } else if (rc) {
                /* Never guess at a user's state: stop here. */
                snprintf(errstr, errstr_size,
                         "user %s: stored value is not a packed user of "
                         "version %d or before (HDEL %sub:%d %s, or DEL "
                         "%su:%s of an earlier version, removes it)",
                         user_id, EWS_USER_PACKED_VERSION, store->prefix,
                         store_user_bucket(user_id), user_id, store->prefix,
                         user_id);
                rc = -1;
        } else {
                rc = got(opaque, i, value, reply->len) ? FENCE_NONE : -1;
        }
        if (rc < 0 && !errstr[0])
                snprintf(errstr, errstr_size, "out of memory");
        freeReplyObject(reply);
        return rc;
}

/* Sends the read of each user marked wait, then takes the replies in
 * order; those naming ids not read yet are marked FENCE_NAMES. */
static enum ews_store_result
fence_users_get(struct ews_store *store, const char *const *ids,
                unsigned char *wait, size_t cnt, ews_store_value_cb got,
                void *opaque, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        size_t i;
        int rc;

        for (i = 0; i < cnt; i++) {
                if (wait[i] == FENCE_NONE)
                        continue;
                if (store_user_append(store, ids[i])) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                }
        }
        errstr[0] = '\0';
        for (i = 0; i < cnt; i++) {
                if (wait[i] == FENCE_NONE)
                        continue;
                if (!(reply = store_user_take(store)))
                        return store_fail(store, errstr, errstr_size,
                                          "user load");
                rc = fence_user_reply(store, ids[i], i, reply, got, opaque,
                                      errstr, errstr_size);
                if (rc < 0) {
                        /* the replies still due go with the connection */
                        char why[256];

                        snprintf(why, sizeof(why), "%s", errstr);
                        store_fail(store, errstr, errstr_size, "user load");
                        snprintf(errstr, errstr_size, "user load: %s", why);
                        return EWS_STORE_ERROR;
                }
                wait[i] = (unsigned char)rc;
        }
        return EWS_STORE_OK;
}

/* Gives got the cached users and marks the others FENCE_REPLY: how many
 * those are, or -1 when got could not keep a value. */
static ssize_t fence_users_cached(struct ews_store *store,
                                  const char *const *ids, unsigned char *wait,
                                  size_t cnt, ews_store_value_cb got,
                                  void *opaque)
{
        const unsigned char *cached;
        size_t i, len;
        ssize_t misses = 0;

        for (i = 0; i < cnt; i++) {
                cached = ews_user_cache_get(store->cache, ids[i], &len);
                if (cached && !got(opaque, i, cached, len))
                        return -1;
                if (!cached) {
                        wait[i] = FENCE_REPLY;
                        misses++;
                }
        }
        return misses;
}

/* Values naming ids another instance added since the dictionary was read
 * (rare): the dictionary read again, then those values again. */
static enum ews_store_result
fence_users_again(struct ews_store *store, const char *const *ids,
                  unsigned char *wait, size_t cnt, ews_store_value_cb got,
                  void *opaque, char *errstr, size_t errstr_size)
{
        size_t i;

        if (!memchr(wait, FENCE_NAMES, cnt))
                return EWS_STORE_OK;
        if (store_names_load(store, errstr, errstr_size))
                return store_fail(store, errstr, errstr_size, "names");
        if (fence_users_get(store, ids, wait, cnt, got, opaque, errstr,
                            errstr_size))
                return EWS_STORE_ERROR;
        for (i = 0; i < cnt; i++)
                if (wait[i] == FENCE_NAMES) {
                        snprintf(errstr, errstr_size,
                                 "user load: user %s: stored value names "
                                 "what the names dictionary does not hold",
                                 ids[i]);
                        return EWS_STORE_ERROR;
                }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_users_read(struct ews_store *store,
                                           const char *const *ids, size_t cnt,
                                           ews_store_value_cb got, void *opaque,
                                           char *errstr, size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_ERROR;
        unsigned char *wait;
        ssize_t misses;

        if (store->names_pending_cnt &&
            (store_connect(store, errstr, errstr_size) ||
             store_names_assign(store, errstr, errstr_size)))
                return EWS_STORE_ERROR;
        if (!(wait = calloc(cnt ? cnt : 1, 1))) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        misses = fence_users_cached(store, ids, wait, cnt, got, opaque);
        if (misses < 0)
                snprintf(errstr, errstr_size, "out of memory");
        else if (!misses || (!store_connect(store, errstr, errstr_size) &&
                             !fence_users_get(store, ids, wait, cnt, got,
                                              opaque, errstr, errstr_size)))
                result = fence_users_again(store, ids, wait, cnt, got, opaque,
                                           errstr, errstr_size);
        free(wait);
        return result;
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
