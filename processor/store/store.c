#include "util/log.h"
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 4000

static int argv_reserve(struct store_argv *a, size_t bytes)
{
        if (a->cnt == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 256;
                size_t *off = realloc(a->off, cap * sizeof(*off));
                size_t *len;
                const char **ptr;

                if (!off)
                        return -1;
                a->off = off;
                len = realloc(a->len, cap * sizeof(*len));
                if (!len)
                        return -1;
                a->len = len;
                ptr = realloc(a->ptr, cap * sizeof(*ptr));
                if (!ptr)
                        return -1;
                a->ptr = ptr;
                a->cap = cap;
        }
        if (a->used + bytes > a->size) {
                size_t size = a->size ? a->size : 4096;
                char *buf;

                while (a->used + bytes > size)
                        size *= 2;
                buf = realloc(a->buf, size);
                if (!buf)
                        return -1;
                a->buf = buf;
                a->size = size;
        }
        return 0;
}

int store_argv_add(struct store_argv *a, const char *s, size_t len)
{
        if (argv_reserve(a, len))
                return -1;
        memcpy(a->buf + a->used, s, len);
        a->off[a->cnt] = a->used;
        a->len[a->cnt++] = len;
        a->used += len;
        return 0;
}

int store_argv_addf(struct store_argv *a, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || argv_reserve(a, (size_t)n + 1))
                return -1;
        va_start(ap, fmt);
        vsnprintf(a->buf + a->used, (size_t)n + 1, fmt, ap);
        va_end(ap);
        a->off[a->cnt] = a->used;
        a->len[a->cnt++] = (size_t)n;
        a->used += (size_t)n;
        return 0;
}

void store_argv_reset(struct store_argv *a)
{
        a->cnt = 0;
        a->used = 0;
}

void store_argv_finish(struct store_argv *a)
{
        size_t i;

        for (i = 0; i < a->cnt; i++)
                a->ptr[i] = a->buf + a->off[i];
}

static void argv_free(struct store_argv *a)
{
        free(a->off);
        free(a->len);
        free(a->ptr);
        free(a->buf);
}

/* A hiredis context is dead after any error: drop it, the next call
 * connects anew. */
enum ews_store_result store_fail(struct ews_store *store, char *errstr,
                                 size_t errstr_size, const char *what)
{
        ews_user_cache_drop(store->cache, -1);
        if (store->redis) {
                snprintf(errstr, errstr_size, "redis %s: %s", what,
                         store->redis->err ? store->redis->errstr
                                           : "unexpected reply");
                redisFree(store->redis);
                store->redis = NULL;
        } else {
                snprintf(errstr, errstr_size, "redis %s: not connected", what);
        }
        return EWS_STORE_ERROR;
}

static int store_script_load(struct ews_store *store, const char *script,
                             char *sha, char *errstr, size_t errstr_size)
{
        redisReply *reply =
                redisCommand(store->redis, "SCRIPT LOAD %s", script);
        int rc = -1;

        if (!reply || reply->type != REDIS_REPLY_STRING || reply->len != 40) {
                snprintf(errstr, errstr_size, "redis SCRIPT LOAD: %s",
                         reply && reply->type == REDIS_REPLY_ERROR
                                 ? reply->str
                                 : store->redis->errstr);
                goto out;
        }
        memcpy(sha, reply->str, 41);
        rc = 0;
out:
        if (reply)
                freeReplyObject(reply);
        return rc;
}

/* hiredis 0.14 has no TLS: put Redis on a private network or behind a TLS
 * tunnel (stunnel, a service mesh), and use AUTH, with an ACL user. */
static int store_auth(struct ews_store *store, char *errstr, size_t errstr_size)
{
        const char *user = store->conf.username,
                   *password = store->conf.password;
        redisReply *reply;
        int rc = -1;

        if (!password || !*password)
                return 0;
        reply = user && *user ? redisCommand(store->redis, "AUTH %s %s", user,
                                             password)
                              : redisCommand(store->redis, "AUTH %s", password);
        if (reply && reply->type == REDIS_REPLY_STATUS)
                rc = 0;
        else
                snprintf(errstr, errstr_size, "redis AUTH: %s",
                         reply && reply->type == REDIS_REPLY_ERROR
                                 ? reply->str
                                 : store->redis->errstr);
        if (reply)
                freeReplyObject(reply);
        return rc;
}

/* An evicted fence would silently let a replay count twice. */
static int store_check_policy(struct ews_store *store, char *errstr,
                              size_t errstr_size)
{
        redisReply *reply = redisCommand(store->redis, "INFO memory");
        const char *policy;
        int rc = -1;

        if (!reply || reply->type != REDIS_REPLY_STRING) {
                snprintf(errstr, errstr_size, "redis INFO memory: %s",
                         reply && reply->type == REDIS_REPLY_ERROR
                                 ? reply->str
                                 : store->redis->errstr);
                goto out;
        }
        policy = strstr(reply->str, "maxmemory_policy:");
        if (!policy) {
                snprintf(errstr, errstr_size,
                         "redis INFO memory has no maxmemory_policy");
                goto out;
        }
        policy += strlen("maxmemory_policy:");
        if (strncmp(policy, "noeviction", 10) ||
            (policy[10] != '\r' && policy[10] != '\n')) {
                snprintf(errstr, errstr_size,
                         "redis maxmemory-policy is %.*s; EWS needs "
                         "noeviction (an evicted fence or timer is a silent "
                         "loss): CONFIG SET maxmemory-policy noeviction",
                         (int)strcspn(policy, "\r\n"), policy);
                goto out;
        }
        rc = 0;
out:
        if (reply)
                freeReplyObject(reply);
        return rc;
}

static int64_t store_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_connect(struct ews_store *store, char *errstr, size_t errstr_size)
{
        struct timeval tv = {(time_t)(store->conf.timeout_ms / 1000),
                             (suseconds_t)(store->conf.timeout_ms % 1000) *
                                     1000};
        int64_t now;

        if (store->redis)
                return 0;
        now = store_mono_ms();
        if (now < store->retry_at_ms) {
                snprintf(errstr, errstr_size, "%s (next attempt in %lld ms)",
                         store->connect_error,
                         (long long)(store->retry_at_ms - now));
                return -1;
        }
        store->redis =
                redisConnectWithTimeout(store->host, store->conf.port, tv);
        if (!store->redis || store->redis->err) {
                snprintf(errstr, errstr_size, "redis %s:%d: %s", store->host,
                         store->conf.port,
                         store->redis ? store->redis->errstr : "out of memory");
                goto fail;
        }
        /* Timeouts and keepalive are per connection, and redisReconnect
         * would not re-apply them: every connection is made here. */
        if (redisSetTimeout(store->redis, tv) != REDIS_OK ||
            redisEnableKeepAlive(store->redis) != REDIS_OK) {
                snprintf(errstr, errstr_size, "redis: %s",
                         store->redis->errstr);
                goto fail;
        }
        if (store_auth(store, errstr, errstr_size) ||
            store_check_policy(store, errstr, errstr_size) ||
            store_script_load(store, store_script_claim, store->sha_claim,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_commit, store->sha_commit,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_lease, store->sha_lease,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_cohort, store->sha_cohort,
                              errstr, errstr_size))
                goto fail;
        if (store->connected_once)
                store->stats.reconnects++;
        store->connected_once = true;
        store->backoff_ms = 0;
        store->retry_at_ms = 0;
        return 0;
fail:
        if (store->redis)
                redisFree(store->redis);
        store->redis = NULL;
        snprintf(store->connect_error, sizeof(store->connect_error), "%s",
                 errstr);
        store->backoff_ms = store->backoff_ms ? store->backoff_ms * 2
                                              : STORE_BACKOFF_MIN_MS;
        if (store->backoff_ms > STORE_BACKOFF_MAX_MS)
                store->backoff_ms = STORE_BACKOFF_MAX_MS;
        store->retry_at_ms = now + store->backoff_ms;
        return -1;
}

struct ews_store *ews_store_new(const struct ews_store_conf *conf, char *errstr,
                                size_t errstr_size)
{
        struct ews_store *store = calloc(1, sizeof(*store));
        int i;

        if (!store) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        store->conf = *conf;
        snprintf(store->host, sizeof(store->host), "%s", conf->host);
        snprintf(store->prefix, sizeof(store->prefix), "%s", conf->prefix);
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                snprintf(store->topics[i], sizeof(store->topics[i]), "%s",
                         conf->topics[i]);
        store->cache = ews_user_cache_new(conf->cache_users);
        if (!store->cache) {
                snprintf(errstr, errstr_size, "out of memory");
                ews_store_destroy(store);
                return NULL;
        }
        if (store_connect(store, errstr, errstr_size)) {
                ews_store_destroy(store);
                return NULL;
        }
        return store;
}

void ews_store_destroy(struct ews_store *store)
{
        if (!store)
                return;
        if (store->redis)
                redisFree(store->redis);
        argv_free(&store->argv);
        ews_user_cache_destroy(store->cache);
        free(store);
}

int store_parse_i64(const char *s, size_t len, int64_t *out)
{
        char buf[32], *end;

        if (!len || len >= sizeof(buf))
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        *out = strtoll(buf, &end, 10);
        return (errno || *end) ? -1 : 0;
}

int store_append(struct ews_store *store, char *errstr, size_t errstr_size,
                 const char *what)
{
        store_argv_finish(&store->argv);
        if (redisAppendCommandArgv(store->redis, (int)store->argv.cnt,
                                   store->argv.ptr,
                                   store->argv.len) == REDIS_OK)
                return 0;
        store_fail(store, errstr, errstr_size, what);
        return -1;
}

int store_add_partition_key(struct ews_store *store, struct store_argv *a,
                            char kind, enum ews_source source,
                            int32_t partition)
{
        return store_argv_addf(a, "%s%c:%s:%d", store->prefix, kind,
                               store->topics[source], (int)partition);
}

/* EVALSHA of argv, loading the script again once when the server lost it
 * (restart, failover). Returns the reply or NULL on a connection error. */
redisReply *store_evalsha(struct ews_store *store, const char *script,
                          char *sha, char *errstr, size_t errstr_size)
{
        redisReply *reply;

        store_argv_finish(&store->argv);
        store->argv.ptr[1] = sha;
        store->argv.len[1] = 40;
        reply = redisCommandArgv(store->redis, (int)store->argv.cnt,
                                 store->argv.ptr, store->argv.len);
        if (reply && reply->type == REDIS_REPLY_ERROR &&
            !strncmp(reply->str, "NOSCRIPT", 8)) {
                freeReplyObject(reply);
                if (store_script_load(store, script, sha, errstr, errstr_size))
                        return NULL;
                store->argv.ptr[1] = sha;
                reply = redisCommandArgv(store->redis, (int)store->argv.cnt,
                                         store->argv.ptr, store->argv.len);
        }
        return reply;
}

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
        result = EWS_STORE_OK;
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

void ews_store_cache_drop(struct ews_store *store, int32_t partition)
{
        ews_user_cache_drop(store->cache, partition);
}

struct ews_store_stats ews_store_stats(const struct ews_store *store)
{
        struct ews_user_cache_stats cache = ews_user_cache_stats(store->cache);
        struct ews_store_stats stats = store->stats;

        stats.cache_hits = cache.hits;
        stats.cache_misses = cache.misses;
        return stats;
}

bool ews_store_connected(const struct ews_store *store)
{
        return store->redis != NULL;
}
