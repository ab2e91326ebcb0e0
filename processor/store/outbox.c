/* The outboxes: a partition's (written by its fenced commit) and the
 * leader's (written by the cohort commit), each a hash of id to packed
 * record, which delivery (pipeline/delivery.c) scans, reads, counts and
 * deletes once delivered; and beside each, its parked records (what Kafka
 * refused for good) and why, which ews-inspect lists, retries and drops. */
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys of an outbox: kind "o" (pending records), "op" (parked) or
 * "opi" (why they were parked). */
#define OUTBOX_PENDING "o"
#define OUTBOX_PARKED  "op"
#define OUTBOX_INFO    "opi"

static int outbox_key_of(struct ews_store *store, struct store_argv *a,
                         struct ews_outbox_ref ref, const char *kind)
{
        if (ref.source == EWS_OUTBOX_LEADER)
                return store_argv_addf(a, "%s%s:leader", store->prefix, kind);
        if (ref.source < 0 || ref.source >= EWS_SOURCE_COUNT)
                return -1;
        return store_argv_addf(a, "%s%s:%s:%d", store->prefix, kind,
                               store->topics[ref.source], (int)ref.partition);
}

static int outbox_key(struct ews_store *store, struct store_argv *a,
                      struct ews_outbox_ref ref)
{
        return outbox_key_of(store, a, ref, OUTBOX_PENDING);
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
                                         const char *cmd, const char *kind,
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
                    outbox_key_of(store, a, keys[i].ref, kind) ||
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
        return outbox_each(store, "HDEL", OUTBOX_PENDING, keys, cnt, NULL,
                           errstr, errstr_size);
}

enum ews_store_result
ews_store_outbox_get(struct ews_store *store, const struct ews_outbox_key *keys,
                     size_t cnt,
                     void (*cb)(void *opaque, size_t i,
                                const unsigned char *data, size_t len),
                     void *opaque, char *errstr, size_t errstr_size)
{
        struct outbox_replies replies = {NULL, cb, opaque};

        return outbox_each(store, "HGET", OUTBOX_PENDING, keys, cnt, &replies,
                           errstr, errstr_size);
}

enum ews_store_result ews_store_outbox_len(struct ews_store *store,
                                           const struct ews_outbox_key *keys,
                                           size_t cnt, int64_t *total,
                                           char *errstr, size_t errstr_size)
{
        struct outbox_replies replies = {total, NULL, NULL};

        *total = 0;
        return outbox_each(store, "HLEN", OUTBOX_PENDING, keys, cnt, &replies,
                           errstr, errstr_size);
}

enum ews_store_result ews_store_parked_len(struct ews_store *store,
                                           const struct ews_outbox_key *keys,
                                           size_t cnt, int64_t *total,
                                           char *errstr, size_t errstr_size)
{
        struct outbox_replies replies = {total, NULL, NULL};

        *total = 0;
        return outbox_each(store, "HLEN", OUTBOX_PARKED, keys, cnt, &replies,
                           errstr, errstr_size);
}

/* EVAL of script over the outbox's three keys and the arguments already in
 * argv after them: its integer reply is 1 (done) or 0 (nothing to do). */
static enum ews_store_result outbox_eval(struct ews_store *store,
                                         const char *what, char *errstr,
                                         size_t errstr_size)
{
        redisReply *reply;
        enum ews_store_result result;

        store_argv_finish(&store->argv);
        reply = redisCommandArgv(store->redis, (int)store->argv.cnt,
                                 store->argv.ptr, store->argv.len);
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                if (reply && reply->type == REDIS_REPLY_ERROR)
                        snprintf(errstr, errstr_size, "redis %s: %s", what,
                                 reply->str);
                if (reply)
                        freeReplyObject(reply);
                return reply ? EWS_STORE_ERROR
                             : store_fail(store, errstr, errstr_size, what);
        }
        result = reply->integer == 1 ? EWS_STORE_OK : EWS_STORE_NOT_FOUND;
        freeReplyObject(reply);
        return result;
}

/* EVAL script 3 <outbox> <parked> <info>: the start of a call. */
static int outbox_eval_start(struct ews_store *store, const char *script,
                             struct ews_outbox_ref ref)
{
        struct store_argv *a = &store->argv;

        store_argv_reset(a);
        return store_argv_add(a, "EVAL", 4) ||
               store_argv_add(a, script, strlen(script)) ||
               store_argv_add(a, "3", 1) ||
               outbox_key_of(store, a, ref, OUTBOX_PENDING) ||
               outbox_key_of(store, a, ref, OUTBOX_PARKED) ||
               outbox_key_of(store, a, ref, OUTBOX_INFO);
}

enum ews_store_result ews_store_outbox_park(struct ews_store *store,
                                            struct ews_outbox_ref ref,
                                            const char *id, int64_t now_ms,
                                            const char *code, const char *error,
                                            char *errstr, size_t errstr_size)
{
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (outbox_eval_start(store, store_script_park, ref) ||
            store_argv_add(&store->argv, id, strlen(id)) ||
            store_argv_addf(&store->argv, "%lld %s %s", (long long)now_ms, code,
                            error)) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        return outbox_eval(store, "outbox park", errstr, errstr_size);
}

enum ews_store_result ews_store_parked_release(struct ews_store *store,
                                               struct ews_outbox_ref ref,
                                               const char *id, bool retry,
                                               char *errstr, size_t errstr_size)
{
        const char *mode = retry ? "retry" : "drop";

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (outbox_eval_start(store, store_script_unpark, ref) ||
            store_argv_add(&store->argv, mode, strlen(mode)) ||
            store_argv_add(&store->argv, id, strlen(id))) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        return outbox_eval(store, "parked release", errstr, errstr_size);
}

enum ews_store_result ews_store_outbox_refs(struct ews_store *store,
                                            struct ews_outbox_ref *refs,
                                            size_t *cnt, char *errstr,
                                            size_t errstr_size)
{
        int64_t n;
        int s, k;

        *cnt = 0;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        refs[(*cnt)++] = (struct ews_outbox_ref){EWS_OUTBOX_LEADER, 0};
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                if (store_partition_count(store, s, &n, errstr, errstr_size))
                        return EWS_STORE_ERROR;
                for (k = 0; k < n && k < EWS_PARTITIONS_MAX; k++)
                        refs[(*cnt)++] = (struct ews_outbox_ref){s, k};
        }
        return EWS_STORE_OK;
}

/* "<parked ms> <error code> <error text>" into rec, pointing into buf. */
static void outbox_info_parse(const redisReply *info, char *buf, size_t size,
                              struct ews_outbox_listed *rec)
{
        char *code, *error;

        rec->code = rec->error = "";
        if (info->type != REDIS_REPLY_STRING)
                return;
        snprintf(buf, size, "%s", info->str);
        rec->parked_ms = strtoll(buf, &code, 10);
        if (*code != ' ')
                return;
        *code++ = '\0';
        rec->code = code;
        error = strchr(code, ' ');
        if (!error)
                return;
        *error++ = '\0';
        rec->error = error;
}

/* HMGET of the parked records' info, for the ids of an HSCAN page. */
static redisReply *outbox_info_get(struct ews_store *store,
                                   struct ews_outbox_ref ref,
                                   const redisReply *items)
{
        struct store_argv *a = &store->argv;
        redisReply *info;
        size_t i;

        store_argv_reset(a);
        if (store_argv_add(a, "HMGET", 5) ||
            outbox_key_of(store, a, ref, OUTBOX_INFO))
                return NULL;
        for (i = 0; i + 1 < items->elements; i += 2)
                if (store_argv_add(a, items->element[i]->str,
                                   items->element[i]->len))
                        return NULL;
        store_argv_finish(a);
        info = redisCommandArgv(store->redis, (int)a->cnt, a->ptr, a->len);
        if (info && (info->type != REDIS_REPLY_ARRAY ||
                     info->elements != items->elements / 2)) {
                freeReplyObject(info);
                return NULL;
        }
        return info;
}

/* One HSCAN page of an outbox's records (or parked records); NULL on
 * error. */
static redisReply *outbox_page(struct ews_store *store,
                               struct ews_outbox_ref ref, const char *kind,
                               const char *cursor)
{
        struct store_argv *a = &store->argv;
        redisReply *reply;

        store_argv_reset(a);
        if (store_argv_add(a, "HSCAN", 5) ||
            outbox_key_of(store, a, ref, kind) ||
            store_argv_add(a, cursor, strlen(cursor)) ||
            store_argv_add(a, "COUNT", 5) || store_argv_add(a, "100", 3))
                return NULL;
        store_argv_finish(a);
        reply = redisCommandArgv(store->redis, (int)a->cnt, a->ptr, a->len);
        if (reply &&
            (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
             reply->element[0]->type != REDIS_REPLY_STRING ||
             reply->element[1]->type != REDIS_REPLY_ARRAY)) {
                freeReplyObject(reply);
                return NULL;
        }
        return reply;
}

enum ews_store_result ews_store_outbox_list(
        struct ews_store *store, struct ews_outbox_ref ref, bool parked,
        void (*cb)(void *opaque, const struct ews_outbox_listed *record),
        void *opaque, char *errstr, size_t errstr_size)
{
        redisReply *reply, *items, *info = NULL;
        struct ews_outbox_listed rec;
        char cursor[32] = "0", buf[512];
        size_t i;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        do {
                reply = outbox_page(store, ref,
                                    parked ? OUTBOX_PARKED : OUTBOX_PENDING,
                                    cursor);
                if (!reply)
                        return store_fail(store, errstr, errstr_size,
                                          "outbox list");
                snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
                items = reply->element[1];
                if (parked && items->elements &&
                    !(info = outbox_info_get(store, ref, items))) {
                        freeReplyObject(reply);
                        return store_fail(store, errstr, errstr_size,
                                          "outbox list");
                }
                for (i = 0; i + 1 < items->elements; i += 2) {
                        memset(&rec, 0, sizeof(rec));
                        rec.ref = ref;
                        rec.id = items->element[i]->str;
                        rec.data = (const unsigned char *)items->element[i + 1]
                                           ->str;
                        rec.len = items->element[i + 1]->len;
                        rec.parked = parked;
                        if (info)
                                outbox_info_parse(info->element[i / 2], buf,
                                                  sizeof(buf), &rec);
                        cb(opaque, &rec);
                }
                if (info)
                        freeReplyObject(info);
                info = NULL;
                freeReplyObject(reply);
        } while (strcmp(cursor, "0"));
        return EWS_STORE_OK;
}
