/* Bulk reads, for exports: every partition's fence, and the ids of every
 * stored subject, streamed with SCAN (never KEYS). Never on the hot path. */
#include "store/codec.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One field of an HMGET reply: 0 and *out when it holds an integer. */
static int scan_field_i64(const redisReply *r, int64_t *out)
{
        return r->type == REDIS_REPLY_STRING
                       ? store_parse_i64(r->str, r->len, out)
                       : -1;
}

/* The partition count recorded for topic s (m:<topic>) into *count, 0
 * when none is recorded (or it does not read as one); -1 when Redis failed
 * (the connection is dropped, errstr says why). */
int store_partition_count(struct ews_store *store, int s, int64_t *count,
                          char *errstr, size_t errstr_size)
{
        redisReply *reply;

        reply = redisCommand(store->redis, "GET %sm:%s", store->prefix,
                             store->topics[s]);
        if (!reply || (reply->type != REDIS_REPLY_STRING &&
                       reply->type != REDIS_REPLY_NIL)) {
                if (reply)
                        freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "partition count");
                return -1;
        }
        if (reply->type == REDIS_REPLY_NIL ||
            store_parse_i64(reply->str, reply->len, count) || *count < 0)
                *count = 0;
        freeReplyObject(reply);
        return 0;
}

enum ews_store_result ews_store_fences_read(
        struct ews_store *store,
        enum ews_store_result (*cb)(void *opaque, const char *topic,
                                    int32_t partition,
                                    const struct ews_fence *fence,
                                    unsigned have),
        void *opaque, char *errstr, size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_OK;
        redisReply *reply;
        int64_t count[EWS_SOURCE_COUNT];
        struct ews_fence fence;
        unsigned have;
        int s, k;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                if (store_partition_count(store, s, &count[s], errstr,
                                          errstr_size))
                        return EWS_STORE_ERROR;
        /* one pipelined round trip for all the fences */
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (k = 0; k < count[s]; k++)
                        if (redisAppendCommand(
                                    store->redis,
                                    "HMGET %sp:%s:%d epoch offset watermark "
                                    "idle",
                                    store->prefix, store->topics[s],
                                    k) != REDIS_OK)
                                return store_fail(store, errstr, errstr_size,
                                                  "fences");
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                for (k = 0; k < count[s]; k++) {
                        if (redisGetReply(store->redis, (void **)&reply) !=
                                    REDIS_OK ||
                            !reply)
                                return store_fail(store, errstr, errstr_size,
                                                  "fences");
                        if (reply->type != REDIS_REPLY_ARRAY ||
                            reply->elements != 4) {
                                freeReplyObject(reply);
                                return store_fail(store, errstr, errstr_size,
                                                  "fences");
                        }
                        memset(&fence, 0, sizeof(fence));
                        fence.next_offset = -1;
                        have = 0;
                        if (!scan_field_i64(reply->element[0], &fence.epoch))
                                have |= EWS_FENCE_HAS_EPOCH;
                        if (!scan_field_i64(reply->element[1],
                                            &fence.next_offset))
                                have |= EWS_FENCE_HAS_OFFSET;
                        else
                                fence.next_offset = -1;
                        if (!scan_field_i64(reply->element[2],
                                            &fence.watermark_ms))
                                have |= EWS_FENCE_HAS_WATERMARK;
                        if (!scan_field_i64(reply->element[3], &fence.idle_ms))
                                have |= EWS_FENCE_HAS_IDLE;
                        freeReplyObject(reply);
                        /* the replies still to come are read (and dropped)
                         * even when the callback stops the walk */
                        if (have && result == EWS_STORE_OK)
                                result = cb(opaque, store->topics[s],
                                            (int32_t)k, &fence, have);
                }
        }
        return result;
}

/* The prefix with the glob's special characters escaped, for MATCH. */
static void scan_glob_escape(const char *s, char *out, size_t size)
{
        size_t n = 0;

        for (; *s && n + 3 < size; s++) {
                if (strchr("*?[]\\", *s))
                        out[n++] = '\\';
                out[n++] = *s;
        }
        out[n] = '\0';
}

/* The kind of a key after the prefix and its id; -1 for other keys. */
static int scan_kind(const char *rest, const char **id)
{
        if (rest[0] && rest[1] == ':' && rest[2]) {
                *id = rest + 2;
                switch (rest[0]) { /* users are walked (scan_users_walk) */
                case 'a':
                        return EWS_SUBJECT_ACCOUNT;
                case 'c':
                        return EWS_SUBJECT_CAMPAIGN;
                }
        }
        return -1;
}

/* One SCAN step of match from cursor, which it advances: the reply, its
 * keys in element[1] (the caller frees it); NULL when not connected or
 * the connection was dropped (errstr). */
static redisReply *scan_step(struct ews_store *store, const char *match,
                             long long count, char *cursor, size_t cursor_size,
                             char *errstr, size_t errstr_size)
{
        redisReply *reply;

        if (store_connect(store, errstr, errstr_size))
                return NULL;
        reply = redisCommand(store->redis, "SCAN %s MATCH %s COUNT %lld",
                             cursor, match, count);
        if (!reply || reply->type != REDIS_REPLY_ARRAY ||
            reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[0]->len >= cursor_size ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
                if (reply)
                        freeReplyObject(reply);
                store_fail(store, errstr, errstr_size, "scan");
                return NULL;
        }
        memcpy(cursor, reply->element[0]->str, reply->element[0]->len + 1);
        return reply;
}

/* Every stored user, each given to each with its id (not terminated)
 * and, when values, its value's reply (a string): the buckets
 * (store/users.c), 64 a round trip, then an earlier version's keys of
 * users not in a bucket yet. As SCAN, a user stored throughout comes at
 * least once; one written or removed meanwhile may or may not. each may
 * call the store: no reply is pending while it runs. A result other than
 * EWS_STORE_OK from each stops the walk and is kept in result. */
struct scan_walk {
        enum ews_store_result (*each)(void *opaque, const char *id, size_t len,
                                      const redisReply *value);
        void *opaque;
        enum ews_store_result result;
};

/* Buckets read a round trip by a walk. */
#define SCAN_BUCKETS_CHUNK 64

/* The fields of buckets [from, from + n), with HKEYS or HGETALL, each
 * given to each; a bucket of another type is passed over. -1 when the
 * connection failed. */
static int scan_walk_buckets(struct ews_store *store, int from, int n,
                             bool values, struct scan_walk *w)
{
        redisReply *replies[SCAN_BUCKETS_CHUNK] = {0};
        size_t step = values ? 2 : 1, i;
        int b;

        if (store_user_buckets_read(store, from, n,
                                    values ? "HGETALL" : "HKEYS", replies))
                return -1;
        for (b = 0; b < n && w->result == EWS_STORE_OK; b++) {
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
                freeReplyObject(replies[b]);
        return 0;
}

/* One SCAN page of an earlier version's keys (u:<id>): those whose user
 * has no field in its bucket yet given to each (with the value when
 * asked), the HEXISTS and GET of each pipelined. -1 when the connection
 * failed. */
static int scan_walk_old_page(struct ews_store *store, const redisReply *keys,
                              bool values, struct scan_walk *w)
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

/* The walk (struct scan_walk): EWS_STORE_OK, the result each stopped it
 * with, or EWS_STORE_ERROR (the connection dropped, errstr). */
static enum ews_store_result scan_users_walk(struct ews_store *store,
                                             bool values, struct scan_walk *w,
                                             char *errstr, size_t errstr_size)
{
        char prefix[2 * sizeof(store->prefix) + 1], match[sizeof(prefix) + 8];
        char cursor[32] = "0";
        redisReply *reply;
        int from, n, rc = 0;

        w->result = EWS_STORE_OK;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (from = 0;
             rc == 0 && from < STORE_USER_BUCKETS && w->result == EWS_STORE_OK;
             from += n) {
                n = STORE_USER_BUCKETS - from < SCAN_BUCKETS_CHUNK
                            ? STORE_USER_BUCKETS - from
                            : SCAN_BUCKETS_CHUNK;
                rc = scan_walk_buckets(store, from, n, values, w);
        }
        scan_glob_escape(store->prefix, prefix, sizeof(prefix));
        snprintf(match, sizeof(match), "%su:*", prefix);
        while (rc == 0 && w->result == EWS_STORE_OK) {
                if (!(reply = scan_step(store, match, 1000, cursor,
                                        sizeof(cursor), errstr, errstr_size)))
                        return EWS_STORE_ERROR;
                rc = scan_walk_old_page(store, reply->element[1], values, w);
                freeReplyObject(reply);
                if (!strcmp(cursor, "0"))
                        break;
        }
        return rc ? store_fail(store, errstr, errstr_size, "users") : w->result;
}

/* A user's id from the walk, to the subjects' callback. */
struct scan_ids {
        enum ews_store_result (*cb)(void *opaque, enum ews_subject kind,
                                    const char *id);
        void *opaque;
        char id[EWS_ID_MAX];
};

static enum ews_store_result scan_user_id(void *opaque, const char *id,
                                          size_t len, const redisReply *value)
{
        struct scan_ids *x = opaque;

        (void)value;
        if (len >= sizeof(x->id))
                return EWS_STORE_OK; /* not an id the processor wrote */
        memcpy(x->id, id, len);
        x->id[len] = '\0';
        return x->cb(x->opaque, EWS_SUBJECT_USER, x->id);
}

enum ews_store_result ews_store_subjects_scan(
        struct ews_store *store, unsigned kinds, size_t count,
        enum ews_store_result (*cb)(void *opaque, enum ews_subject kind,
                                    const char *id),
        void *opaque, char *errstr, size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_OK;
        char prefix[2 * sizeof(store->prefix) + 1], match[sizeof(prefix) + 8];
        char cursor[32] = "0", id_buf[EWS_ID_MAX];
        size_t plen = strlen(store->prefix), i;
        redisReply *reply, *keys;
        const char *id;
        int kind;

        if (kinds & EWS_SUBJECTS_USERS) {
                struct scan_ids x = {cb, opaque, ""};
                struct scan_walk w = {scan_user_id, &x, EWS_STORE_OK};

                result = scan_users_walk(store, false, &w, errstr, errstr_size);
                kinds &= ~EWS_SUBJECTS_USERS;
                if (result != EWS_STORE_OK || !kinds)
                        return result;
        }
        scan_glob_escape(store->prefix, prefix, sizeof(prefix));
        if (kinds == EWS_SUBJECTS_ACCOUNTS)
                snprintf(match, sizeof(match), "%sa:*", prefix);
        else if (kinds == EWS_SUBJECTS_CAMPAIGNS)
                snprintf(match, sizeof(match), "%sc:*", prefix);
        else
                snprintf(match, sizeof(match), "%s*", prefix);
        if (!count)
                count = 1000;
        do {
                if (!(reply = scan_step(store, match, (long long)count, cursor,
                                        sizeof(cursor), errstr, errstr_size)))
                        return EWS_STORE_ERROR;
                keys = reply->element[1];
                for (i = 0; i < keys->elements && result == EWS_STORE_OK; i++) {
                        const redisReply *key = keys->element[i];

                        if (key->type != REDIS_REPLY_STRING ||
                            key->len <= plen ||
                            memcmp(key->str, store->prefix, plen))
                                continue;
                        kind = scan_kind(key->str + plen, &id);
                        if (kind < 0 || !(kinds & (1u << kind)))
                                continue;
                        if (strlen(id) >= sizeof(id_buf) ||
                            strlen(id) != key->len - plen - 2)
                                continue; /* not an id the processor wrote */
                        memcpy(id_buf, id, strlen(id) + 1);
                        result = cb(opaque, (enum ews_subject)kind, id_buf);
                }
                freeReplyObject(reply);
        } while (result == EWS_STORE_OK && strcmp(cursor, "0"));
        return result;
}

/* One SCAN step of match from cursor: the keys found are unlinked, and
 * counted into *found. 0, or -1 (connection dropped, errstr). */
static int scan_drop_step(struct ews_store *store, const char *match,
                          char *cursor, size_t cursor_size, int64_t *found,
                          char *errstr, size_t errstr_size)
{
        redisReply *reply, *keys, *unlinked;
        size_t i;

        if (!(reply = scan_step(store, match, 1000, cursor, cursor_size, errstr,
                                errstr_size)))
                return -1;
        keys = reply->element[1];
        store_argv_reset(&store->argv);
        if (store_argv_add(&store->argv, "UNLINK", 6))
                goto oom;
        for (i = 0; i < keys->elements; i++)
                if (keys->element[i]->type == REDIS_REPLY_STRING &&
                    store_argv_add(&store->argv, keys->element[i]->str,
                                   keys->element[i]->len))
                        goto oom;
        freeReplyObject(reply);
        if (store->argv.cnt == 1)
                return 0;
        store_argv_finish(&store->argv);
        unlinked = redisCommandArgv(store->redis, (int)store->argv.cnt,
                                    store->argv.ptr, store->argv.len);
        if (!unlinked || unlinked->type != REDIS_REPLY_INTEGER) {
                if (unlinked)
                        freeReplyObject(unlinked);
                store_fail(store, errstr, errstr_size, "unlink");
                return -1;
        }
        *found += unlinked->integer;
        freeReplyObject(unlinked);
        return 0;
oom:
        freeReplyObject(reply);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

enum ews_store_result ews_store_drop_all(struct ews_store *store,
                                         int64_t *deleted, char *errstr,
                                         size_t errstr_size)
{
        char prefix[2 * sizeof(store->prefix) + 1], match[sizeof(prefix) + 2];
        char cursor[32];
        int64_t found;

        *deleted = 0;
        if (!store->prefix[0]) {
                snprintf(errstr, errstr_size,
                         "refusing to delete every key: no prefix");
                return EWS_STORE_ERROR;
        }
        scan_glob_escape(store->prefix, prefix, sizeof(prefix));
        snprintf(match, sizeof(match), "%s*", prefix);
        do {
                found = 0;
                snprintf(cursor, sizeof(cursor), "0");
                do {
                        if (scan_drop_step(store, match, cursor, sizeof(cursor),
                                           &found, errstr, errstr_size))
                                return EWS_STORE_ERROR;
                } while (strcmp(cursor, "0"));
                *deleted += found;
        } while (found);
        return EWS_STORE_OK;
}

/* A user of the walk, unpacked, to the users' callback. */
struct scan_users {
        struct ews_store *store;
        enum ews_store_result (*cb)(void *opaque, const struct ews_user *user);
        void *opaque;
        struct ews_user *user;
};

static enum ews_store_result scan_user(void *opaque, const char *id, size_t len,
                                       const redisReply *value)
{
        struct scan_users *x = opaque;
        int32_t partition;

        /* not a value the processor wrote: passed over */
        if (len >= EWS_ID_MAX ||
            store_unpack(x->store, x->user, &partition,
                         (const unsigned char *)value->str, value->len))
                return EWS_STORE_OK;
        memcpy(x->user->user_id, id, len);
        x->user->user_id[len] = '\0';
        return x->cb(x->opaque, x->user);
}

enum ews_store_result ews_store_users_scan(
        struct ews_store *store,
        enum ews_store_result (*cb)(void *opaque, const struct ews_user *user),
        void *opaque, char *errstr, size_t errstr_size)
{
        struct scan_users x = {store, cb, opaque, malloc(sizeof(*x.user))};
        struct scan_walk w = {scan_user, &x, EWS_STORE_OK};
        enum ews_store_result result;

        if (!x.user) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        result = scan_users_walk(store, true, &w, errstr, errstr_size);
        free(x.user);
        return result;
}
