/* The leader's lease, and the watermarks of all partitions that say which
 * days have closed (store/leader.h, store.h). The cohorts it decides are
 * cohort.c's. */
#include "util/log.h"
#include "store/leader.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scripts/lease.lua in mode "hold" or "release": EWS_STORE_OK when owner
 * holds the lease (*token its token), EWS_STORE_HELD when not. */
static enum ews_store_result leader_lease_call(struct ews_store *store,
                                               const char *owner,
                                               int64_t ttl_ms, const char *mode,
                                               int64_t *token, char *errstr,
                                               size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_ERROR;
        struct store_argv *a = &store->argv;
        redisReply *reply;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        store_argv_reset(a);
        if (store_argv_add(a, "EVALSHA", 7) || store_argv_add(a, "", 0) ||
            store_argv_add(a, "2", 1) ||
            store_argv_addf(a, "%sleader", store->prefix) ||
            store_argv_addf(a, "%sleader:token", store->prefix) ||
            store_argv_add(a, owner, strlen(owner)) ||
            store_argv_addf(a, "%lld", (long long)ttl_ms) ||
            store_argv_add(a, mode, strlen(mode))) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        reply = store_evalsha(store, store_script_lease, store->sha_lease,
                              errstr, errstr_size);
        if (!reply || reply->type != REDIS_REPLY_ARRAY ||
            reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_INTEGER ||
            reply->element[1]->type != REDIS_REPLY_STRING) {
                store_fail(store, errstr, errstr_size, "lease");
                goto out;
        }
        result =
                reply->element[0]->integer == 1 ? EWS_STORE_OK : EWS_STORE_HELD;
        if (result == EWS_STORE_OK &&
            store_parse_i64(reply->element[1]->str, reply->element[1]->len,
                            token)) {
                snprintf(errstr, errstr_size, "lease: not a token");
                result = EWS_STORE_ERROR;
        }
out:
        if (reply)
                freeReplyObject(reply);
        return result;
}

enum ews_store_result ews_store_lease(struct ews_store *store,
                                      const char *owner, int64_t ttl_ms,
                                      int64_t *token, char *errstr,
                                      size_t errstr_size)
{
        return leader_lease_call(store, owner, ttl_ms, "hold", token, errstr,
                                 errstr_size);
}

enum ews_store_result ews_store_lease_release(struct ews_store *store,
                                              const char *owner)
{
        char errstr[256];
        int64_t unused;

        /* the script answers "not held" when it let go, as when it was not
         * owner's: either way owner no longer holds it */
        if (leader_lease_call(store, owner, 1, "release", &unused, errstr,
                              sizeof(errstr)) == EWS_STORE_ERROR) {
                ews_warn("store", "lease release: %s", errstr);
                return EWS_STORE_ERROR;
        }
        return EWS_STORE_OK;
}

/* The topic's partition count as recorded in m:<topic>; 0 when none. */
static int store_recorded_count(struct ews_store *store, enum ews_source source,
                                int64_t *cnt, char *errstr, size_t errstr_size)
{
        redisReply *reply = redisCommand(store->redis, "GET %sm:%s",
                                         store->prefix, store->topics[source]);

        *cnt = 0;
        if (!reply || (reply->type != REDIS_REPLY_STRING &&
                       reply->type != REDIS_REPLY_NIL)) {
                if (reply)
                        freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "watermarks");
                return -1;
        }
        if (reply->type == REDIS_REPLY_NIL ||
            store_parse_i64(reply->str, reply->len, cnt))
                *cnt = 0;
        freeReplyObject(reply);
        return 0;
}

enum ews_store_result ews_store_watermarks(struct ews_store *store,
                                           enum ews_source source,
                                           int64_t *min_ms, int64_t *max_ms,
                                           char *errstr, size_t errstr_size)
{
        redisReply *reply;
        int64_t cnt = 0, w, i, min = 0, max = 0;
        int rc = 0;

        *min_ms = *max_ms = 0;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (!(cnt = store->partition_cnt[source]) &&
            store_recorded_count(store, source, &cnt, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (cnt <= 0 || cnt > EWS_PARTITIONS_MAX)
                return EWS_STORE_OK; /* no partition count: none begun */
        for (i = 0; i < cnt; i++)
                if (redisAppendCommand(store->redis, "HGET %sp:%s:%d watermark",
                                       store->prefix, store->topics[source],
                                       (int)i) != REDIS_OK)
                        return store_fail(store, errstr, errstr_size,
                                          "watermarks");
        for (i = 0; i < cnt; i++) {
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return store_fail(store, errstr, errstr_size,
                                          "watermarks");
                if (reply->type != REDIS_REPLY_STRING ||
                    store_parse_i64(reply->str, reply->len, &w) || w <= 0) {
                        rc = 1; /* a partition without one holds all back */
                } else {
                        if (!min || w < min)
                                min = w;
                        if (w > max)
                                max = w;
                }
                freeReplyObject(reply);
        }
        *min_ms = rc ? 0 : min;
        *max_ms = max;
        return EWS_STORE_OK;
}
