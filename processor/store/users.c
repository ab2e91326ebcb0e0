/* Where a user is kept: a field of one of STORE_USER_BUCKETS hashes
 * (ub:<bucket>), its packed value (codec.h) the field's value. An earlier
 * version kept each user as a string key of its own (u:<id>) with an
 * expiry: such a key is still read, after the bucket (which wins when
 * both hold the user), deleted by the user's first write of a day and
 * erased with it. Every read of one user goes through here, and every
 * read of whole buckets (the walks of scan.c, the sweep). */
#include "store/store_int.h"
#include "util/hash.h"

#include <stdio.h>

int store_user_bucket(const char *user_id)
{
        return (int)(ews_hash32(user_id) % STORE_USER_BUCKETS);
}

void store_user_key(const struct ews_store *store, int bucket, char *out,
                    size_t size)
{
        snprintf(out, size, "%sub:%d", store->prefix, bucket);
}

void store_user_old_key(const struct ews_store *store, const char *user_id,
                        char *out, size_t size)
{
        snprintf(out, size, "%su:%s", store->prefix, user_id);
}

int store_user_append(struct ews_store *store, const char *user_id)
{
        return redisAppendCommand(store->redis, "HGET %sub:%d %s",
                                  store->prefix, store_user_bucket(user_id),
                                  user_id) != REDIS_OK ||
                               redisAppendCommand(store->redis, "GET %su:%s",
                                                  store->prefix,
                                                  user_id) != REDIS_OK
                       ? -1
                       : 0;
}

redisReply *store_user_take(struct ews_store *store)
{
        redisReply *bucket = NULL, *key = NULL;

        if (redisGetReply(store->redis, (void **)&bucket) != REDIS_OK ||
            !bucket) {
                return NULL;
        }
        if (redisGetReply(store->redis, (void **)&key) != REDIS_OK || !key) {
                freeReplyObject(bucket);
                return NULL;
        }
        if (bucket->type == REDIS_REPLY_NIL && key->type != REDIS_REPLY_NIL) {
                freeReplyObject(bucket);
                return key;
        }
        freeReplyObject(key);
        return bucket;
}

redisReply *store_user_read(struct ews_store *store, const char *user_id)
{
        return store_user_append(store, user_id) ? NULL
                                                 : store_user_take(store);
}

int store_user_buckets_read(struct ews_store *store, int from, int n,
                            const char *cmd, redisReply **replies)
{
        int b, got;

        if (!store->redis)
                return -1;
        for (b = 0; b < n; b++)
                if (redisAppendCommand(
                            store->redis, "%s %sub:%d", cmd, store->prefix,
                            (from + b) % STORE_USER_BUCKETS) != REDIS_OK)
                        return -1;
        for (got = 0; got < n; got++)
                if (redisGetReply(store->redis, (void **)&replies[got]) !=
                            REDIS_OK ||
                    !replies[got])
                        break;
        if (got == n)
                return 0;
        while (got-- > 0) {
                freeReplyObject(replies[got]);
                replies[got] = NULL;
        }
        return -1;
}
