/* Where a user is kept: a field of one of STORE_USER_BUCKETS hashes
 * (ub:<bucket>), its packed value (codec.h) the field's value. An earlier
 * version kept each user as a string key of its own (u:<id>) with an
 * expiry: such a key is still read, after the bucket (which wins when
 * both hold the user), deleted by the user's first write of a day and
 * erased with it. Every read of a user goes through here. */
#include "store/store_int.h"
#include "util/hash.h"

#include <stdio.h>
#include <string.h>

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

/* Buckets read a round trip by a walk. */
#define USERS_WALK_CHUNK 64

/* The fields of buckets [from, from + n), with HKEYS or HGETALL, one
 * pipelined round trip, each given to each; an error reply or a hash
 * of another type is skipped. -1 when the connection failed. */
static int users_walk_buckets(struct ews_store *store, int from, int n,
                              bool values, struct store_users_walk *w)
{
        redisReply *replies[USERS_WALK_CHUNK] = {0};
        size_t step = values ? 2 : 1, i;
        int b, rc = 0;

        if (!store->redis) /* each dropped it */
                return -1;
        for (b = 0; b < n; b++)
                if (redisAppendCommand(store->redis, "%s %sub:%d",
                                       values ? "HGETALL" : "HKEYS",
                                       store->prefix, from + b) != REDIS_OK)
                        return -1;
        for (b = 0; b < n; b++)
                if (redisGetReply(store->redis, (void **)&replies[b]) !=
                            REDIS_OK ||
                    !replies[b])
                        rc = -1;
        for (b = 0; rc == 0 && b < n && w->result == EWS_STORE_OK; b++) {
                const redisReply *r = replies[b];

                if (r->type != REDIS_REPLY_ARRAY)
                        continue;
                for (i = 0;
                     i + step <= r->elements && w->result == EWS_STORE_OK;
                     i += step)
                        w->result = w->each(w->opaque, r->element[i]->str,
                                            r->element[i]->len,
                                            values ? r->element[i + 1] : NULL);
        }
        for (b = 0; b < n; b++)
                if (replies[b])
                        freeReplyObject(replies[b]);
        return rc;
}

/* One SCAN page of an earlier version's keys (u:<id>): those whose user
 * has no field in its bucket yet given to each (with the value when
 * asked), the HEXISTS and GET of each pipelined. -1 when the connection
 * failed. */
static int users_walk_old_page(struct ews_store *store, const redisReply *keys,
                               bool values, struct store_users_walk *w)
{
        size_t plen = strlen(store->prefix) + 2, i, n = 0, got;
        redisReply **r = calloc(2 * keys->elements + 1, sizeof(*r));
        size_t *idx = calloc(keys->elements + 1, sizeof(*idx));
        int rc = 0;

        if (!r || !idx || !store->redis)
                rc = -1;
        for (i = 0; rc == 0 && i < keys->elements; i++) {
                const redisReply *k = keys->element[i];

                /* not a key the processor wrote: passed over */
                if (k->type != REDIS_REPLY_STRING || k->len <= plen ||
                    strlen(k->str + plen) != k->len - plen)
                        continue;
                if (redisAppendCommand(store->redis, "HEXISTS %sub:%d %s",
                                       store->prefix,
                                       store_user_bucket(k->str + plen),
                                       k->str + plen) != REDIS_OK ||
                    redisAppendCommand(store->redis, "GET %b", k->str,
                                       k->len) != REDIS_OK)
                        rc = -1;
                else
                        idx[n++] = i;
        }
        for (got = 0; rc == 0 && got < 2 * n; got++)
                if (redisGetReply(store->redis, (void **)&r[got]) != REDIS_OK ||
                    !r[got])
                        rc = -1;
        for (i = 0; rc == 0 && i < n && w->result == EWS_STORE_OK; i++) {
                const redisReply *k = keys->element[idx[i]];

                if (r[2 * i]->type == REDIS_REPLY_INTEGER &&
                    !r[2 * i]->integer &&
                    r[2 * i + 1]->type == REDIS_REPLY_STRING)
                        w->result =
                                w->each(w->opaque, k->str + plen, k->len - plen,
                                        values ? r[2 * i + 1] : NULL);
        }
        for (i = 0; r && i < 2 * n; i++)
                if (r[i])
                        freeReplyObject(r[i]);
        free(r);
        free(idx);
        return rc;
}

/* The earlier version's keys, SCAN ... MATCH <prefix>u:*. */
static int users_walk_old(struct ews_store *store, bool values,
                          struct store_users_walk *w)
{
        char match[2 * sizeof(store->prefix) + 8], cursor[32] = "0";
        redisReply *reply;
        size_t n = 0;
        const char *s;
        int rc = 0;

        for (s = store->prefix; *s && n + 3 < sizeof(match) - 4; s++) {
                if (strchr("*?[]\\", *s))
                        match[n++] = '\\';
                match[n++] = *s;
        }
        memcpy(match + n, "u:*", 4);
        do {
                if (!store->redis)
                        return -1;
                reply = redisCommand(store->redis,
                                     "SCAN %s MATCH %s COUNT 1000", cursor,
                                     match);
                if (!reply || reply->type != REDIS_REPLY_ARRAY ||
                    reply->elements != 2 ||
                    reply->element[0]->type != REDIS_REPLY_STRING ||
                    reply->element[0]->len >= sizeof(cursor) ||
                    reply->element[1]->type != REDIS_REPLY_ARRAY) {
                        if (reply)
                                freeReplyObject(reply);
                        return -1;
                }
                memcpy(cursor, reply->element[0]->str,
                       reply->element[0]->len + 1);
                rc = users_walk_old_page(store, reply->element[1], values, w);
                freeReplyObject(reply);
        } while (rc == 0 && w->result == EWS_STORE_OK && strcmp(cursor, "0"));
        return rc;
}

enum ews_store_result store_users_walk(struct ews_store *store, bool values,
                                       struct store_users_walk *w, char *errstr,
                                       size_t errstr_size)
{
        int from, n;

        w->result = EWS_STORE_OK;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (from = 0; from < STORE_USER_BUCKETS && w->result == EWS_STORE_OK;
             from += n) {
                n = STORE_USER_BUCKETS - from < USERS_WALK_CHUNK
                            ? STORE_USER_BUCKETS - from
                            : USERS_WALK_CHUNK;
                if (users_walk_buckets(store, from, n, values, w))
                        return store_fail(store, errstr, errstr_size, "users");
        }
        if (w->result == EWS_STORE_OK && users_walk_old(store, values, w))
                return store_fail(store, errstr, errstr_size, "users");
        return w->result;
}
