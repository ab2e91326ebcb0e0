/* The store's connection to Redis: connect (AUTH, the eviction policy,
 * the scripts), fail and back off, send; the store's lifetime and
 * statistics. */
#include "util/log.h"
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 4000

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

int store_script_load(struct ews_store *store, const char *script, char *sha,
                      char *errstr, size_t errstr_size)
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
int store_auth(redisContext *c, const char *user, const char *password,
               const char *who, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        int rc = -1;

        if (!password || !*password)
                return 0;
        reply = user && *user ? redisCommand(c, "AUTH %s %s", user, password)
                              : redisCommand(c, "AUTH %s", password);
        if (reply && reply->type == REDIS_REPLY_STATUS)
                rc = 0;
        else
                snprintf(errstr, errstr_size, "%s AUTH: %s", who,
                         reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                   : c->errstr);
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

/* Users' buckets (users.c) stay listpacks only while a packed user fits
 * hash-max-listpack-value (64 by default): said once a process when the
 * server's is lower than EWS_STORE_LISTPACK_VALUE. Not checked where
 * CONFIG is not allowed (managed servers). */
#define EWS_STORE_LISTPACK_VALUE 1024
static void store_check_listpack(struct ews_store *store)
{
        static bool said;
        redisReply *reply;
        long long value;

        if (said)
                return;
        reply = redisCommand(store->redis,
                             "CONFIG GET hash-max-listpack-value");
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[1]->type == REDIS_REPLY_STRING &&
            (value = strtoll(reply->element[1]->str, NULL, 10)) <
                    EWS_STORE_LISTPACK_VALUE) {
                ews_warn("store",
                         "redis hash-max-listpack-value is %lld: the users' "
                         "buckets become hash tables, about 90 bytes a user "
                         "more; set it to %d",
                         value, EWS_STORE_LISTPACK_VALUE);
                said = true;
        }
        if (reply)
                freeReplyObject(reply);
}

static int64_t store_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timeval store_timeval(const struct ews_store *store)
{
        return (struct timeval){(time_t)(store->conf.timeout_ms / 1000),
                                (suseconds_t)(store->conf.timeout_ms % 1000) *
                                        1000};
}

int store_open(struct ews_store *store, char *errstr, size_t errstr_size)
{
        struct timeval tv = store_timeval(store);

        store->redis = redisConnectWithTimeout(store->host, store->port, tv);
        if (!store->redis || store->redis->err) {
                snprintf(errstr, errstr_size, "redis %s:%d: %s", store->host,
                         store->port,
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
        if (store_auth(store->redis, store->conf.username, store->conf.password,
                       "redis", errstr, errstr_size))
                goto fail;
        return 0;
fail:
        if (store->redis)
                redisFree(store->redis);
        store->redis = NULL;
        return -1;
}

int store_connect(struct ews_store *store, char *errstr, size_t errstr_size)
{
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
        if (store->sentinel_cnt
                    ? store_sentinel_connect(store, errstr, errstr_size)
                    : store_open(store, errstr, errstr_size))
                goto fail;
        store_check_listpack(store);
        if (store_check_policy(store, errstr, errstr_size) ||
            store_script_load(store, store_script_claim, store->sha_claim,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_lease, store->sha_lease,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_cohort, store->sha_cohort,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_names, store->sha_names,
                              errstr, errstr_size) ||
            store_script_load(store, store_script_sweep, store->sha_sweep,
                              errstr, errstr_size) ||
            store_names_reload(store, errstr, errstr_size))
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
        snprintf(store->host, sizeof(store->host), "%s",
                 conf->host ? conf->host : "");
        store->port = conf->port;
        snprintf(store->prefix, sizeof(store->prefix), "%s", conf->prefix);
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                snprintf(store->topics[i], sizeof(store->topics[i]), "%s",
                         conf->topics[i]);
        store->cache = ews_user_cache_new(conf->cache_users);
        store->names = ews_names_new();
        if (!store->cache || !store->names) {
                snprintf(errstr, errstr_size, "out of memory");
                ews_store_destroy(store);
                return NULL;
        }
        if (store_sentinels_init(store, errstr, errstr_size) ||
            store_connect(store, errstr, errstr_size)) {
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
        store_argv_free(&store->argv);
        store_round_free(&store->round);
        store_resp_free(&store->cohort_cmds);
        ews_user_cache_destroy(store->cache);
        ews_names_destroy(store->names);
        free(store);
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

bool store_not_primary(const char *err)
{
        return !strncmp(err, "READONLY", 8) || !strncmp(err, "LOADING", 7) ||
               !strncmp(err, "MASTERDOWN", 10);
}

/* EVALSHA of argv, loading the script again once when the server lost it
 * (restart, failover). Returns the reply or NULL on a connection error,
 * a server that is no primary included (the connection dropped). */
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
        if (reply && reply->type == REDIS_REPLY_ERROR &&
            store_not_primary(reply->str)) {
                ews_warn("store", "script not applied: %s", reply->str);
                freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "script");
                return NULL;
        }
        return reply;
}

enum ews_store_result ews_store_wait(struct ews_store *store, char *errstr,
                                     size_t errstr_size)
{
        int want = store->conf.wait_replicas;
        redisReply *reply;
        char what[256];
        long long got;

        if (want <= 0)
                return EWS_STORE_OK;
        if (!store->redis) {
                snprintf(errstr, errstr_size,
                         "redis WAIT: connection lost since the writes");
                return EWS_STORE_ERROR;
        }
        /* Just fell short: the claims of every recovering partition
         * would each wait the whole timeout again. */
        if (store_mono_ms() < store->wait_retry_at_ms) {
                snprintf(errstr, errstr_size,
                         "redis WAIT: fewer than %d replicas acknowledged a "
                         "moment ago",
                         want);
                return EWS_STORE_ERROR;
        }
        reply = redisCommand(store->redis, "WAIT %d %lld", want,
                             (long long)store->conf.wait_timeout_ms);
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                /* e.g. a primary demoted to a replica under us: the next
                 * connect asks the sentinels anew */
                snprintf(what, sizeof(what), "WAIT%s%.200s",
                         reply && reply->type == REDIS_REPLY_ERROR ? " " : "",
                         reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                   : "");
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size, what);
        }
        got = reply->integer;
        freeReplyObject(reply);
        if (got >= want)
                return EWS_STORE_OK;
        store->stats.wait_shortfalls++;
        store->wait_retry_at_ms = store_mono_ms() + store->conf.wait_timeout_ms;
        snprintf(errstr, errstr_size,
                 "redis WAIT: %lld of %d replicas acknowledged within %lld ms: "
                 "a failover could lose these writes",
                 got, want, (long long)store->conf.wait_timeout_ms);
        return EWS_STORE_ERROR;
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
