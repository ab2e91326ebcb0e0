/* The users' retention. A user in its bucket (users.c) has no expiry of
 * its own, so the leader sweeps the buckets, a few a turn from where its
 * last turn stopped, and deletes each user whose last write's wall-clock
 * day (its keep's day) is past the retention: with scripts/sweep.lua,
 * only if its value is still the one read. An earlier version's key of a
 * user (u:<id>) keeps its own expiry. */
#include "store/codec.h"
#include "store/leader.h"
#include "store/scripts.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ews_store_user_expired(const struct ews_user_keep *keep,
                            int64_t retention_ms, int64_t now_ms)
{
        /* as the key's expiry did: a retention and a day from the write's
         * day, at the latest moment it could have been set */
        return keep->day > 0 &&
               now_ms >= ((int64_t)keep->day + 2) * EWS_DAY_MS + retention_ms;
}

/* The expired users of one bucket's HGETALL reply as sweep.lua's
 * arguments in store->argv: how many, or -1 when out of memory. */
static int sweep_collect(struct ews_store *store, int bucket,
                         const redisReply *fields, struct ews_user *user,
                         int64_t now_ms)
{
        char key[sizeof(store->prefix) + 16];
        int32_t partition;
        int cnt = 0;
        size_t i;

        store_argv_reset(&store->argv);
        store_user_key(store, bucket, key, sizeof(key));
        if (store_argv_add(&store->argv, "EVALSHA", 7) ||
            store_argv_add(&store->argv, "", 0) ||
            store_argv_add(&store->argv, "1", 1) ||
            store_argv_add(&store->argv, key, strlen(key)))
                return -1;
        for (i = 0; i + 1 < fields->elements; i += 2) {
                const redisReply *id = fields->element[i],
                                 *v = fields->element[i + 1];

                /* a value that does not unpack is never judged stale */
                if (store_unpack(store, user, &partition,
                                 (const unsigned char *)v->str, v->len) ||
                    !ews_store_user_expired(&user->keep,
                                            store->conf.retention_ms, now_ms))
                        continue;
                if (store_argv_add(&store->argv, id->str, id->len) ||
                    store_argv_add(&store->argv, v->str, v->len))
                        return -1;
                cnt++;
        }
        return cnt;
}

/* Deletes the expired users of one bucket: 0, or -1 (errstr). */
static int sweep_bucket(struct ews_store *store, int bucket,
                        const redisReply *fields, struct ews_user *user,
                        int64_t now_ms, int64_t *removed, char *errstr,
                        size_t errstr_size)
{
        redisReply *reply;
        int cnt;

        if (fields->type != REDIS_REPLY_ARRAY)
                return 0; /* not a hash: not the processor's */
        cnt = sweep_collect(store, bucket, fields, user, now_ms);
        if (cnt < 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        if (!cnt)
                return 0;
        reply = store_evalsha(store, store_script_sweep, store->sha_sweep,
                              errstr, errstr_size);
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                if (reply)
                        freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "sweep");
                return -1;
        }
        *removed += reply->integer;
        freeReplyObject(reply);
        return 0;
}

enum ews_store_result ews_store_users_sweep(struct ews_store *store,
                                            int64_t now_ms, int buckets,
                                            int64_t *removed, char *errstr,
                                            size_t errstr_size)
{
        redisReply *replies[EWS_STORE_SWEEP_MAX] = {0};
        enum ews_store_result result = EWS_STORE_OK;
        struct ews_user *user = malloc(sizeof(*user));
        int b, from = store->sweep_cursor;

        *removed = 0;
        if (buckets > EWS_STORE_SWEEP_MAX)
                buckets = EWS_STORE_SWEEP_MAX;
        if (!user) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        if (store_connect(store, errstr, errstr_size)) {
                result = EWS_STORE_ERROR;
                goto out;
        }
        if (store_user_buckets_read(store, from, buckets, "HGETALL", replies)) {
                result = store_fail(store, errstr, errstr_size, "sweep");
                goto out;
        }
        /* past these buckets even when one fails: a bucket that always
         * fails (logged each time) holds up no other; the next pass comes
         * back to it */
        store->sweep_cursor = (from + buckets) % STORE_USER_BUCKETS;
        for (b = 0; b < buckets && result == EWS_STORE_OK; b++)
                if (sweep_bucket(store, (from + b) % STORE_USER_BUCKETS,
                                 replies[b], user, now_ms, removed, errstr,
                                 errstr_size))
                        result = EWS_STORE_ERROR;
out:
        for (b = 0; b < buckets; b++)
                if (replies[b])
                        freeReplyObject(replies[b]);
        free(user);
        return result;
}
