/* The outboxes: a partition's (written by its fenced commit) and the
 * leader's (written by the cohort commit), each a hash of id to packed
 * record, which delivery (pipeline/delivery.c) scans, reads, counts and
 * deletes once delivered. */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

static int outbox_key(struct ews_store *store, struct store_argv *a,
                      struct ews_outbox_ref ref)
{
        if (ref.source == EWS_OUTBOX_LEADER)
                return store_argv_addf(a, "%so:leader", store->prefix);
        return store_add_partition_key(
                store, a, 'o', (enum ews_source)ref.source, ref.partition);
}

enum ews_store_result ews_store_outbox_scan(
        struct ews_store *store, struct ews_outbox_ref ref, size_t max,
        void (*cb)(void *opaque, const char *id, const unsigned char *data,
                   size_t len),
        void *opaque, int64_t *left, char *errstr, size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        redisReply *reply = NULL, *items;
        char cursor[32] = "0";
        size_t seen = 0, i;

        *left = 0;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        do {
                store_argv_reset(a);
                if (store_argv_add(a, "HSCAN", 5) ||
                    outbox_key(store, a, ref) ||
                    store_argv_add(a, cursor, strlen(cursor)) ||
                    store_argv_add(a, "COUNT", 5) ||
                    store_argv_add(a, "200", 3)) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_STORE_ERROR;
                }
                store_argv_finish(a);
                reply = redisCommandArgv(store->redis, (int)a->cnt, a->ptr,
                                         a->len);
                if (!reply || reply->type != REDIS_REPLY_ARRAY ||
                    reply->elements != 2 ||
                    reply->element[0]->type != REDIS_REPLY_STRING ||
                    reply->element[1]->type != REDIS_REPLY_ARRAY) {
                        if (reply)
                                freeReplyObject(reply);
                        return store_fail(store, errstr, errstr_size,
                                          "outbox scan");
                }
                snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
                items = reply->element[1];
                for (i = 0; i + 1 < items->elements; i += 2) {
                        if (seen++ >= max)
                                continue;
                        cb(opaque, items->element[i]->str,
                           (const unsigned char *)items->element[i + 1]->str,
                           items->element[i + 1]->len);
                }
                freeReplyObject(reply);
        } while (strcmp(cursor, "0") && seen < max);
        *left = (int64_t)seen;
        return EWS_STORE_OK;
}

/* What to do with the i-th reply of a pipelined run. */
struct outbox_replies {
        int64_t *sum; /* adds up the integer replies */
        /* gets the string replies (a missing field is nil: skipped) */
        void (*cb)(void *opaque, size_t i, const unsigned char *data,
                   size_t len);
        void *opaque;
};

/* One command per key (its outbox, and its id when there is one),
 * pipelined: one round trip. */
static enum ews_store_result outbox_each(struct ews_store *store,
                                         const char *cmd,
                                         const struct ews_outbox_key *keys,
                                         size_t cnt,
                                         const struct outbox_replies *replies,
                                         char *errstr, size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        redisReply *reply;
        size_t i;

        if (!cnt)
                return EWS_STORE_OK;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (i = 0; i < cnt; i++) {
                store_argv_reset(a);
                if (store_argv_add(a, cmd, strlen(cmd)) ||
                    outbox_key(store, a, keys[i].ref) ||
                    (keys[i].id &&
                     store_argv_add(a, keys[i].id, strlen(keys[i].id)))) {
                        /* commands already queued would answer the next
                         * call: drop the connection with them */
                        store_fail(store, errstr, errstr_size, cmd);
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_STORE_ERROR;
                }
                if (store_append(store, errstr, errstr_size, cmd))
                        return EWS_STORE_ERROR;
        }
        for (i = 0; i < cnt; i++) {
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return store_fail(store, errstr, errstr_size, cmd);
                if (replies && replies->sum &&
                    reply->type == REDIS_REPLY_INTEGER)
                        *replies->sum += reply->integer;
                if (replies && replies->cb && reply->type == REDIS_REPLY_STRING)
                        replies->cb(replies->opaque, i,
                                    (const unsigned char *)reply->str,
                                    reply->len);
                freeReplyObject(reply);
        }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_outbox_delete(struct ews_store *store,
                                              const struct ews_outbox_key *keys,
                                              size_t cnt, char *errstr,
                                              size_t errstr_size)
{
        return outbox_each(store, "HDEL", keys, cnt, NULL, errstr, errstr_size);
}

enum ews_store_result
ews_store_outbox_get(struct ews_store *store, const struct ews_outbox_key *keys,
                     size_t cnt,
                     void (*cb)(void *opaque, size_t i,
                                const unsigned char *data, size_t len),
                     void *opaque, char *errstr, size_t errstr_size)
{
        struct outbox_replies replies = {NULL, cb, opaque};

        return outbox_each(store, "HGET", keys, cnt, &replies, errstr,
                           errstr_size);
}

enum ews_store_result ews_store_outbox_len(struct ews_store *store,
                                           const struct ews_outbox_key *keys,
                                           size_t cnt, int64_t *total,
                                           char *errstr, size_t errstr_size)
{
        struct outbox_replies replies = {total, NULL, NULL};

        *total = 0;
        return outbox_each(store, "HLEN", keys, cnt, &replies, errstr,
                           errstr_size);
}
