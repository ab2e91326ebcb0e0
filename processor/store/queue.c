/* The queues of campaigns and accounts due for the leader's decision
 * (store.h: cq, aq:<shard>, and the aq an earlier version kept): which
 * shard and key an account's entry is in, and the ids due, read for a
 * turn. The entries are written by the commits (commit.c, with the
 * round's segment moves) and by scripts/cohort.lua. */
#include "store/leader.h"
#include "store/store_int.h"
#include "util/grow.h"
#include "util/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_queue_shard(const char *account_id)
{
        return (int)(ews_hash32(account_id) % STORE_QUEUE_SHARDS);
}

void store_queue_key(const struct ews_store *store, int shard, char *out,
                     size_t size)
{
        if (shard < 0)
                snprintf(out, size, "%saq", store->prefix);
        else
                snprintf(out, size, "%saq:%d", store->prefix, shard);
}

/* Shards read a round trip while a turn fills. */
#define QUEUE_DUE_CHUNK 64

/* The ids a turn takes from the account queue, borrowing the replies'
 * strings; the first `legacy` from the set an earlier version kept. */
struct queue_due_id {
        const char *id;
        long long day;
};
struct queue_due {
        struct queue_due_id *v;
        size_t cnt, cap, legacy;
        redisReply *replies[STORE_QUEUE_SHARDS + 1];
        size_t reply_cnt;
};

static int queue_due_cmp(const void *a, const void *b)
{
        const struct queue_due_id *x = a, *y = b;

        if (x->day != y->day)
                return x->day < y->day ? -1 : 1;
        return strcmp(x->id, y->id);
}

/* Takes the ids of reply (ZRANGEBYSCORE WITHSCORES), each once: an id the
 * earlier version's set gave too keeps the earlier day. The ids taken, or
 * -1 when out of memory. */
static int64_t queue_due_take(struct queue_due *d, const redisReply *reply)
{
        size_t j, k, n = 0;

        for (j = 0; j + 1 < reply->elements; j += 2) {
                const redisReply *id = reply->element[j];
                long long day;

                if (id->type != REDIS_REPLY_STRING || id->len >= EWS_ID_MAX ||
                    reply->element[j + 1]->type != REDIS_REPLY_STRING)
                        continue;
                day = strtoll(reply->element[j + 1]->str, NULL, 10);
                for (k = 0; k < d->legacy && strcmp(d->v[k].id, id->str); k++)
                        ;
                if (k < d->legacy) {
                        if (day < d->v[k].day)
                                d->v[k].day = day;
                        continue;
                }
                if (!ews_grow((void **)&d->v, &d->cap, d->cnt + 1,
                              sizeof(*d->v)))
                        return -1;
                d->v[d->cnt].id = id->str;
                d->v[d->cnt++].day = day;
                n++;
        }
        return (int64_t)n;
}

/* Sends the ZRANGEBYSCORE of each shard in [from, from + n) (mod the
 * shards; -1 alone: the earlier version's set), and reads the replies
 * into d->replies: 0, or -1 when the connection failed. */
static int queue_due_read(struct ews_store *store, struct queue_due *d,
                          int from, int n, int64_t upto_day, size_t limit)
{
        char key[sizeof(store->prefix) + 40];
        redisReply *reply;
        int i;

        for (i = 0; i < n; i++) {
                store_queue_key(store,
                                from < 0 ? -1 : (from + i) % STORE_QUEUE_SHARDS,
                                key, sizeof(key));
                if (redisAppendCommand(store->redis,
                                       "ZRANGEBYSCORE %s -inf %lld WITHSCORES "
                                       "LIMIT 0 %lld",
                                       key, (long long)upto_day,
                                       (long long)limit) != REDIS_OK)
                        return -1;
        }
        for (i = 0; i < n; i++) {
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        return -1;
                d->replies[d->reply_cnt++] = reply;
                if (reply->type != REDIS_REPLY_ARRAY)
                        return -1;
        }
        return 0;
}

/* The accounts due, at most max: those of the earlier version's set, then
 * the shards' from where the last turn stopped (store->queue_cursor), a
 * chunk of shards a round trip, until max are taken or every shard was
 * read. Fewer than max only when every shard was read: the leader then
 * counts as caught up. A shard that gave all it was asked for is read
 * again next turn (it may hold more); ids past max are left for a later
 * turn. Passed to cb by day, then id. */
static enum ews_store_result
queue_due_accounts(struct ews_store *store, int64_t upto_day, size_t max,
                   void (*cb)(void *opaque, const char *id), void *opaque,
                   char *errstr, size_t errstr_size)
{
        enum ews_store_result rc = EWS_STORE_OK;
        struct queue_due d = {0};
        size_t i, first, limit;
        int read = 0, n, k;
        int64_t took;

        if (queue_due_read(store, &d, -1, 1, upto_day, max))
                goto fail;
        if (queue_due_take(&d, d.replies[0]) < 0)
                goto oom;
        d.legacy = d.cnt;
        while (d.cnt < max && read < STORE_QUEUE_SHARDS) {
                n = STORE_QUEUE_SHARDS - read;
                if (n > QUEUE_DUE_CHUNK)
                        n = QUEUE_DUE_CHUNK;
                first = d.reply_cnt;
                limit = max - d.cnt;
                if (queue_due_read(store, &d, store->queue_cursor, n, upto_day,
                                   limit))
                        goto fail;
                for (k = 0; k < n && d.cnt < max; k++) {
                        if ((took = queue_due_take(
                                     &d, d.replies[first + (size_t)k])) < 0)
                                goto oom;
                        if ((size_t)took == limit)
                                break;
                        store->queue_cursor =
                                (store->queue_cursor + 1) % STORE_QUEUE_SHARDS;
                        read++;
                }
                if (k < n)
                        break;
        }
        if (d.cnt)
                qsort(d.v, d.cnt, sizeof(*d.v), queue_due_cmp);
        for (i = 0; i < d.cnt && i < max; i++)
                cb(opaque, d.v[i].id);
        goto done;
oom:
        snprintf(errstr, errstr_size, "cohort queue: out of memory");
        rc = EWS_STORE_ERROR;
        goto done;
fail:
        rc = store_fail(store, errstr, errstr_size, "cohort queue");
done:
        for (i = 0; i < d.reply_cnt; i++)
                freeReplyObject(d.replies[i]);
        free(d.v);
        return rc;
}

enum ews_store_result
ews_store_cohort_due(struct ews_store *store, char kind, int64_t upto_day,
                     size_t max, void (*cb)(void *opaque, const char *id),
                     void *opaque, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        char key[EWS_ID_MAX + 80];
        size_t i;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (kind == EWS_COHORT_ACCOUNT)
                return queue_due_accounts(store, upto_day, max, cb, opaque,
                                          errstr, errstr_size);
        /* hiredis 0.14 formats neither %c nor %zu */
        snprintf(key, sizeof(key), "%s%cq", store->prefix, kind);
        reply = redisCommand(store->redis,
                             "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %lld", key,
                             (long long)upto_day, (long long)max);
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size, "cohort queue");
        }
        for (i = 0; i < reply->elements; i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING &&
                    reply->element[i]->len < EWS_ID_MAX)
                        cb(opaque, reply->element[i]->str);
        freeReplyObject(reply);
        return EWS_STORE_OK;
}
