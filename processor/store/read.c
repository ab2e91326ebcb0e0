/* Reads of single subjects, for inspection: never on the hot path. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/views.h"
#include "store/scripts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

redisReply *store_read_reply(struct ews_store *store, redisReply *reply,
                             char *errstr, size_t errstr_size)
{
        if (reply && reply->type != REDIS_REPLY_ERROR)
                return reply;
        if (reply)
                freeReplyObject(reply);
        store_fail(store, errstr, errstr_size, "read");
        return NULL;
}

static redisReply *read_command(struct ews_store *store, char *errstr,
                                size_t errstr_size, const char *fmt, ...)
{
        redisReply *reply;
        va_list ap;

        if (store_connect(store, errstr, errstr_size))
                return NULL;
        va_start(ap, fmt);
        reply = redisvCommand(store->redis, fmt, ap);
        va_end(ap);
        return store_read_reply(store, reply, errstr, errstr_size);
}

/* user_id's value (users.c): its reply, a string or a nil (the caller
 * frees it), or NULL when not connected or the read failed (errstr). */
static redisReply *read_user(struct ews_store *store, const char *user_id,
                             char *errstr, size_t errstr_size)
{
        if (store_connect(store, errstr, errstr_size))
                return NULL;
        return store_read_reply(store, store_user_read(store, user_id), errstr,
                                errstr_size);
}

enum ews_store_result ews_store_user_get(struct ews_store *store,
                                         const char *user_id,
                                         struct ews_user *user,
                                         int32_t *partition, char *errstr,
                                         size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_NOT_FOUND;
        redisReply *reply;
        int32_t unused;

        if (!partition)
                partition = &unused;
        reply = read_user(store, user_id, errstr, errstr_size);
        if (!reply)
                return EWS_STORE_ERROR;
        memset(user, 0, sizeof(*user));
        snprintf(user->user_id, sizeof(user->user_id), "%s", user_id);
        if (reply->type == REDIS_REPLY_STRING)
                result = EWS_STORE_OK;
        if (result == EWS_STORE_OK &&
            store_unpack(store, user, partition, (unsigned char *)reply->str,
                         reply->len)) {
                snprintf(errstr, errstr_size, "user %s: not a packed user",
                         user_id);
                result = EWS_STORE_ERROR;
        }
        freeReplyObject(reply);
        return result;
}

static double read_double(redisReply *r)
{
        return r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0.0;
}

static int64_t read_i64(redisReply *r)
{
        return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

/* The members of an account: the m:<id> fields of a:<id>, and those of a
 * member set (am:<id>) an earlier version kept, sorted, each once. */
struct read_members {
        char **ids;
        size_t cnt, cap;
};

static int read_member_add(struct read_members *m, const char *id, size_t len)
{
        char *copy;

        if (len >= EWS_ID_MAX)
                return 0; /* not an id the processor wrote */
        if (m->cnt == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                char **ids = realloc(m->ids, cap * sizeof(*ids));

                if (!ids)
                        return -1;
                m->ids = ids;
                m->cap = cap;
        }
        if (!(copy = strndup(id, len)))
                return -1;
        m->ids[m->cnt++] = copy;
        return 0;
}

static int read_member_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_members_free(struct read_members *m)
{
        size_t i;

        for (i = 0; i < m->cnt; i++)
                free(m->ids[i]);
        free(m->ids);
}

/* Adds a member's E, decayed to the later of the two times, into the sum:
 * the same fold as a user's E. */
static void read_fold(double *e, int64_t *ref, double add, int64_t at,
                      double half_life_ms)
{
        if (!*ref) {
                *e += add;
                *ref = at;
        } else if (at >= *ref) {
                *e = *e * exp2(-(double)(at - *ref) / half_life_ms) + add;
                *ref = at;
        } else {
                *e += add * exp2(-(double)(*ref - at) / half_life_ms);
        }
}

/* HGETALL a:<id> and the old member set: the members, and the erased
 * members' share into *e, *ref. */
static enum ews_store_result read_account_keys(struct ews_store *store,
                                               const char *account_id,
                                               struct read_members *m,
                                               double *e, int64_t *ref,
                                               char *errstr, size_t errstr_size)
{
        redisReply *reply;
        size_t i;

        reply = read_command(store, errstr, errstr_size, "HGETALL %sa:%s",
                             store->prefix, account_id);
        if (!reply)
                return EWS_STORE_ERROR;
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
             i += 2) {
                const redisReply *f = reply->element[i],
                                 *v = reply->element[i + 1];

                if (f->type != REDIS_REPLY_STRING ||
                    v->type != REDIS_REPLY_STRING)
                        continue;
                if (f->len > 2 && !memcmp(f->str, "m:", 2)) {
                        if (read_member_add(m, f->str + 2, f->len - 2))
                                goto nomem;
                } else if (!strcmp(f->str, "xe")) {
                        *e = strtod(v->str, NULL);
                } else if (!strcmp(f->str, "xr")) {
                        *ref = strtoll(v->str, NULL, 10);
                }
        }
        freeReplyObject(reply);
        reply = read_command(store, errstr, errstr_size, "ZRANGE %sam:%s 0 -1",
                             store->prefix, account_id);
        if (!reply)
                return EWS_STORE_ERROR;
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
             i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING &&
                    read_member_add(m, reply->element[i]->str,
                                    reply->element[i]->len))
                        goto nomem;
        freeReplyObject(reply);
        return EWS_STORE_OK;
nomem:
        freeReplyObject(reply);
        snprintf(errstr, errstr_size, "out of memory");
        return EWS_STORE_ERROR;
}

/* The members' states, one pipelined round trip: their E summed into
 * the account, their last activity into last[i] (-1: not a member now). */
static enum ews_store_result
read_account_members(struct ews_store *store, const struct read_members *m,
                     struct ews_account *account, int64_t *last, bool *found,
                     char *errstr, size_t errstr_size)
{
        static struct ews_user user;
        redisReply *reply;
        int32_t partition;
        int64_t at;
        size_t i;

        /* the names as they are now: the members' values may name any */
        if (store_names_load(store, errstr, errstr_size))
                goto fail;
        for (i = 0; i < m->cnt; i++)
                if (store_user_append(store, m->ids[i]))
                        goto fail;
        for (i = 0; i < m->cnt; i++) {
                if (!(reply = store_user_take(store)))
                        goto fail;
                memset(&user, 0, sizeof(user));
                last[i] = -1;
                /* a member that expired, or belongs elsewhere, counts not */
                if (reply->type == REDIS_REPLY_STRING &&
                    !ews_user_unpack(&user, &partition, store->names,
                                     (const unsigned char *)reply->str,
                                     reply->len) &&
                    !strcmp(user.account_id, account->account_id)) {
                        at = user.engagement_ref_ms ? user.engagement_ref_ms
                                                    : user.last_activity_ms;
                        read_fold(&account->engagement,
                                  &account->engagement_ref_ms, user.engagement,
                                  at, store->conf.half_life_ms);
                        /* users: members ever active, as before */
                        last[i] = user.last_activity_ms;
                        account->users += user.last_activity_ms > 0;
                        *found = true;
                }
                freeReplyObject(reply);
        }
        return EWS_STORE_OK;
fail:
        return store_fail(store, errstr, errstr_size, "account members");
}

/* The account's keys read, its members listed once each (sorted by id)
 * with their last activity in *last (the caller frees both). */
static enum ews_store_result
read_account(struct ews_store *store, const char *account_id,
             struct ews_account *account, struct read_members *m,
             int64_t **last, bool *found, char *errstr, size_t errstr_size)
{
        enum ews_store_result result;
        size_t i, n = 0;

        memset(account, 0, sizeof(*account));
        snprintf(account->account_id, sizeof(account->account_id), "%s",
                 account_id);
        *found = false;
        result = read_account_keys(store, account_id, m, &account->engagement,
                                   &account->engagement_ref_ms, errstr,
                                   errstr_size);
        if (result != EWS_STORE_OK)
                return result;
        if (m->cnt) /* an account of erased members alone has no list */
                qsort(m->ids, m->cnt, sizeof(*m->ids), read_member_cmp);
        for (i = 0; i < m->cnt; i++) {
                if (n && !strcmp(m->ids[n - 1], m->ids[i])) {
                        free(m->ids[i]);
                        continue;
                }
                m->ids[n++] = m->ids[i];
        }
        m->cnt = n;
        if (!(*last = calloc(m->cnt + 1, sizeof(**last)))) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        return m->cnt ? read_account_members(store, m, account, *last, found,
                                             errstr, errstr_size)
                      : EWS_STORE_OK;
}

enum ews_store_result ews_store_account_get(struct ews_store *store,
                                            const char *account_id,
                                            int64_t active_window_ms,
                                            struct ews_account *account,
                                            char *errstr, size_t errstr_size)
{
        struct read_members m = {0};
        enum ews_store_result result;
        int64_t *last = NULL;
        bool found;
        size_t i;

        result = read_account(store, account_id, account, &m, &last, &found,
                              errstr, errstr_size);
        for (i = 0; result == EWS_STORE_OK && i < m.cnt; i++)
                if (last[i] > 0 &&
                    last[i] >= account->engagement_ref_ms - active_window_ms)
                        account->active_users++;
        read_members_free(&m);
        free(last);
        if (result == EWS_STORE_OK && !found && !account->engagement_ref_ms)
                result = EWS_STORE_NOT_FOUND; /* no member, none erased */
        return result;
}

/* Members by last activity, the latest first; by id among equals. */
struct read_recent {
        int64_t last;
        const char *id;
};

static int read_recent_cmp(const void *pa, const void *pb)
{
        const struct read_recent *a = pa, *b = pb;

        if (a->last != b->last)
                return a->last > b->last ? -1 : 1;
        return strcmp(a->id, b->id);
}

enum ews_store_result
ews_store_account_members(struct ews_store *store, const char *account_id,
                          char (*ids)[EWS_ID_MAX], size_t max, size_t *cnt,
                          char *errstr, size_t errstr_size)
{
        static struct ews_account account;
        struct read_members m = {0};
        struct read_recent *recent = NULL;
        enum ews_store_result result;
        int64_t *last = NULL;
        size_t i, n = 0;
        bool found;

        *cnt = 0;
        result = read_account(store, account_id, &account, &m, &last, &found,
                              errstr, errstr_size);
        if (result == EWS_STORE_OK &&
            !(recent = calloc(m.cnt + 1, sizeof(*recent)))) {
                snprintf(errstr, errstr_size, "out of memory");
                result = EWS_STORE_ERROR;
        }
        for (i = 0; result == EWS_STORE_OK && i < m.cnt; i++)
                if (last[i] >= 0)
                        recent[n++] = (struct read_recent){last[i], m.ids[i]};
        if (result == EWS_STORE_OK)
                qsort(recent, n, sizeof(*recent), read_recent_cmp);
        for (i = 0; result == EWS_STORE_OK && i < n && i < max; i++)
                snprintf(ids[(*cnt)++], EWS_ID_MAX, "%s", recent[i].id);
        free(recent);
        read_members_free(&m);
        free(last);
        return result;
}

int store_campaign_append(struct ews_store *store, const char *campaign_id)
{
        return redisAppendCommand(store->redis,
                                  "HMGET %sc:%s name channel status target "
                                  "launched spend signups activated",
                                  store->prefix, campaign_id) == REDIS_OK
                       ? 0
                       : -1;
}

enum ews_store_result store_campaign_parse(const redisReply *reply,
                                           const char *campaign_id,
                                           struct ews_campaign *campaign)
{
        enum ews_store_result result = EWS_STORE_NOT_FOUND;
        redisReply **f;

        memset(campaign, 0, sizeof(*campaign));
        snprintf(campaign->campaign_id, sizeof(campaign->campaign_id), "%s",
                 campaign_id);
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 8)
                return result;
        f = reply->element;
        for (size_t i = 0; i < 8; i++)
                if (f[i]->type == REDIS_REPLY_STRING)
                        result = EWS_STORE_OK; /* any field: it exists */
        if (f[0]->type == REDIS_REPLY_STRING)
                snprintf(campaign->name, sizeof(campaign->name), "%s",
                         f[0]->str);
        if (f[1]->type == REDIS_REPLY_STRING)
                snprintf(campaign->channel, sizeof(campaign->channel), "%s",
                         f[1]->str);
        if (f[2]->type == REDIS_REPLY_STRING)
                snprintf(campaign->status, sizeof(campaign->status), "%s",
                         f[2]->str);
        campaign->has_target = f[3]->type == REDIS_REPLY_STRING;
        campaign->target_activation_rate = read_double(f[3]);
        campaign->launched_ms = read_i64(f[4]);
        campaign->spend = read_double(f[5]);
        campaign->signups = read_i64(f[6]);
        campaign->activated = read_i64(f[7]);
        return result;
}

enum ews_store_result ews_store_campaign_get(struct ews_store *store,
                                             const char *campaign_id,
                                             struct ews_campaign *campaign,
                                             char *errstr, size_t errstr_size)
{
        enum ews_store_result result;
        redisReply *reply = NULL;

        memset(campaign, 0, sizeof(*campaign));
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (store_campaign_append(store, campaign_id) ||
            redisGetReply(store->redis, (void **)&reply) != REDIS_OK)
                return store_fail(store, errstr, errstr_size, "read");
        if (!(reply = store_read_reply(store, reply, errstr, errstr_size)))
                return EWS_STORE_ERROR;
        result = store_campaign_parse(reply, campaign_id, campaign);
        freeReplyObject(reply);
        return result;
}

/* One attempt of scripts/erase.lua on the value read: 1 erased, 0 gone,
 * -1 changed since it was read, -2 on error. */
static int read_erase_once(struct ews_store *store, const char *user_id,
                           char *errstr, size_t errstr_size)
{
        static struct ews_user user;
        char keys[7][512], e[32], ref[24], expire[24], hl[32];
        redisReply *value, *reply;
        int32_t partition;
        int rc, segment;

        store_user_key(store, store_user_bucket(user_id), keys[0],
                       sizeof(keys[0]));
        store_user_old_key(store, user_id, keys[6], sizeof(keys[6]));
        value = read_user(store, user_id, errstr, errstr_size);
        if (!value)
                return -2;
        memset(&user, 0, sizeof(user));
        if (value->type != REDIS_REPLY_STRING) {
                freeReplyObject(value);
                return 0;
        }
        if (store_unpack(store, &user, &partition, (unsigned char *)value->str,
                         value->len)) {
                snprintf(errstr, errstr_size, "user %s: not a packed user",
                         user_id);
                freeReplyObject(value);
                return -2;
        }
        /* the partition and account name the keys to erase */
        /* its timer's hour, or an earlier version's key of them all */
        if (store_timer_prefix(store, partition, keys[1], sizeof(keys[1]) - 24))
                snprintf(keys[1], sizeof(keys[1]), "?");
        if (user.keep.timer_ms > 0)
                snprintf(keys[1] + strlen(keys[1]), 24, ":%lld",
                         (long long)(user.keep.timer_ms /
                                     STORE_TIMER_BUCKET_MS));
        snprintf(keys[2], sizeof(keys[2]), "%sp:%s:%d", store->prefix,
                 store->topics[EWS_SOURCE_USAGE], (int)partition);
        snprintf(keys[3], sizeof(keys[3]), "%sa:%s", store->prefix,
                 user.account_id);
        snprintf(e, sizeof(e), "%.17g", user.engagement);
        snprintf(ref, sizeof(ref), "%lld", (long long)user.engagement_ref_ms);
        snprintf(hl, sizeof(hl), "%.17g", store->conf.half_life_ms);
        snprintf(expire, sizeof(expire), "%lld",
                 (long long)(store->conf.retention_ms + 86400000LL));
        segment = ews_segment_of(&user);
        store_segment_key(store, segment < 0 ? 0 : segment,
                          store_segment_shard(user_id), keys[4],
                          sizeof(keys[4]));
        store_segment_key(store, segment < 0 ? 0 : segment, -1, keys[5],
                          sizeof(keys[5]));
        reply = read_command(store, errstr, errstr_size,
                             "EVAL %s 7 %s %s %s %s %s %s %s %s %s %b %s %s %s "
                             "%s %s",
                             store_script_erase, keys[0], keys[1], keys[2],
                             keys[3], keys[4], keys[5], keys[6], user_id,
                             user.account_id[0] ? "1" : "0", value->str,
                             (size_t)value->len, e, ref, hl, expire,
                             segment < 0 ? "0" : "1");
        freeReplyObject(value);
        if (!reply)
                return -2;
        rc = reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -2;
        if (rc == -2)
                snprintf(errstr, errstr_size, "erase: unexpected reply");
        freeReplyObject(reply);
        return rc;
}

/* scripts/erase.lua: removes the user's state and timer and its
 * membership of its account and its segment, and takes a new epoch for its
 * partition; read again when the owner wrote the user meanwhile. */
enum ews_store_result ews_store_user_erase(struct ews_store *store,
                                           const char *user_id, char *errstr,
                                           size_t errstr_size)
{
        int attempt, rc = -1;

        for (attempt = 0; attempt < 10 && rc == -1; attempt++)
                rc = read_erase_once(store, user_id, errstr, errstr_size);
        if (rc == -1)
                snprintf(errstr, errstr_size,
                         "erase: the user changed under every attempt");
        return rc == 1   ? EWS_STORE_OK
               : rc == 0 ? EWS_STORE_NOT_FOUND
                         : EWS_STORE_ERROR;
}
