/* What the leader reads and writes: the lease, the watermarks of all
 * partitions, the cohorts. */
#include "util/log.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int leader_day_cmp(const void *a, const void *b)
{
        const struct ews_cohort_day *x = a, *y = b;

        return (x->day > y->day) - (x->day < y->day);
}

static struct ews_cohort_day *leader_day(struct ews_store_cohort *c,
                                         int64_t day)
{
        int i;

        for (i = 0; i < c->day_cnt; i++)
                if (c->days[i].day == day)
                        return &c->days[i];
        if (c->day_cnt == EWS_COHORT_DAYS_MAX)
                return NULL;
        c->days[c->day_cnt].day = day;
        c->days[c->day_cnt].n = 0;
        c->days[c->day_cnt].k = 0;
        return &c->days[c->day_cnt++];
}

static double leader_f64(const char *s)
{
        return strtod(s, NULL);
}

static int64_t leader_i64(const char *s)
{
        return strtoll(s, NULL, 10);
}

/* An account's runs of days as read: e<day> adds n to every day from it
 * on (n as a day's n). */
struct leader_runs {
        int cnt;
        struct ews_cohort_day v[EWS_COHORT_DAYS_MAX];
};

static void leader_field(struct ews_store_cohort *c, struct leader_runs *runs,
                         const char *name, const char *value)
{
        struct ews_cohort_day *d;
        char *end;
        long long day;

        if (name[0] == 's' && name[1] == ':') {
                const char *f = name + 2;

                if (!strcmp(f, "n"))
                        c->campaign.n = leader_i64(value);
                else if (!strcmp(f, "k"))
                        c->campaign.k = leader_i64(value);
                else if (!strcmp(f, "open"))
                        c->campaign.open_ms = c->account.open_ms =
                                leader_i64(value);
                else if (!strcmp(f, "res"))
                        c->campaign.resolved_ms = c->account.resolved_ms =
                                leader_i64(value);
                else if (!strcmp(f, "first"))
                        c->account.first_day = leader_i64(value);
                else if (!strcmp(f, "last"))
                        c->account.last_day = leader_i64(value);
                else if (!strcmp(f, "base"))
                        c->account.baseline = leader_f64(value);
                else if (!strcmp(f, "sg"))
                        c->campaign.signups = leader_i64(value);
                else if (!strcmp(f, "sp"))
                        c->campaign.spend = leader_f64(value);
                c->decided = true;
                c->has_sums |= !strcmp(f, "sg");
                return;
        }
        if (!name[0] || !strchr("nkspde", name[0]))
                return;
        day = strtoll(name + 1, &end, 10);
        if (*end || end == name + 1)
                return;
        if (name[0] == 'e') {
                if (runs->cnt < EWS_COHORT_DAYS_MAX) {
                        runs->v[runs->cnt].day = day;
                        runs->v[runs->cnt++].n = leader_i64(value);
                }
                return;
        }
        if (!(d = leader_day(c, day)))
                return;
        /* added: an account's day may be in an earlier version's ab:
         * too */
        if (name[0] == 'k')
                d->k += leader_i64(value);
        else if (name[0] == 's')
                d->signups += leader_i64(value);
        else if (name[0] == 'p')
                d->spend += leader_f64(value);
        else
                d->n += leader_i64(value);
}

/* A campaign decided before signups and spend were counted by day: its
 * sums so far are the totals less what waits in undecided days. */
static void leader_sums_upgrade(struct ews_store_cohort *c)
{
        int i;

        if (!c->decided || c->has_sums)
                return;
        c->campaign.signups = c->info.signups;
        c->campaign.spend = c->info.spend;
        for (i = 0; i < c->day_cnt; i++) {
                c->campaign.signups -= c->days[i].signups;
                c->campaign.spend -= c->days[i].spend;
        }
}

/* The cohort's hash: cb:<id> of a campaign, a:<id> of an account (and
 * an earlier version's ab:<id>, read first). */
static int leader_cohort_key(const struct ews_store *store, char kind,
                             const char *id, bool legacy, char *key,
                             size_t size)
{
        int n = kind == EWS_COHORT_CAMPAIGN
                        ? snprintf(key, size, "%scb:%s", store->prefix, id)
                : legacy ? snprintf(key, size, "%sab:%s", store->prefix, id)
                         : snprintf(key, size, "%sa:%s", store->prefix, id);

        return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The reply of an HGETALL sent for the cohort, into it. */
static enum ews_store_result
leader_cohort_read(struct ews_store *store, struct ews_store_cohort *cohort,
                   struct leader_runs *runs, char *errstr, size_t errstr_size)
{
        redisReply *reply = NULL;
        size_t i;

        if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
            !reply || reply->type != REDIS_REPLY_ARRAY) {
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size, "cohort");
        }
        for (i = 0; i + 1 < reply->elements; i += 2)
                if (reply->element[i]->type == REDIS_REPLY_STRING &&
                    reply->element[i + 1]->type == REDIS_REPLY_STRING)
                        leader_field(cohort, runs, reply->element[i]->str,
                                     reply->element[i + 1]->str);
        freeReplyObject(reply);
        return EWS_STORE_OK;
}

/* The runs' sums into the days they cover: each day from the first run
 * on has the sum of the runs up to it (a run is +n at its first day and
 * -n after its last, so the sum is 0 again after the last). */
static void leader_runs_apply(struct ews_store_cohort *c,
                              struct leader_runs *runs)
{
        struct ews_cohort_day *d;
        int64_t sum = 0, day;
        int i;

        qsort(runs->v, (size_t)runs->cnt, sizeof(runs->v[0]), leader_day_cmp);
        for (i = 0; i < runs->cnt; i++) {
                sum += runs->v[i].n;
                if (i + 1 == runs->cnt || !sum)
                        continue;
                for (day = runs->v[i].day; day < runs->v[i + 1].day; day++)
                        if ((d = leader_day(c, day)))
                                d->n += sum;
        }
}

enum ews_store_result ews_store_cohort_get(struct ews_store *store, char kind,
                                           const char *id,
                                           struct ews_store_cohort *cohort,
                                           char *errstr, size_t errstr_size)
{
        static struct leader_runs runs;
        char key[EWS_ID_MAX + 80];
        int legacy;

        memset(cohort, 0, sizeof(*cohort));
        runs.cnt = 0;
        cohort->kind = kind;
        snprintf(cohort->id, sizeof(cohort->id), "%s", id);
        cohort->account.first_day = cohort->account.last_day = -1;
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        /* an account's earlier ab:<id> too, first: one round trip */
        for (legacy = kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--) {
                const char *argv[2] = {"HGETALL", key};
                size_t lens[2] = {7, 0};

                if (leader_cohort_key(store, kind, id, legacy, key,
                                      sizeof(key)))
                        return store_fail(store, errstr, errstr_size, "cohort");
                lens[1] = strlen(key);
                if (redisAppendCommandArgv(store->redis, 2, argv, lens) !=
                    REDIS_OK)
                        return store_fail(store, errstr, errstr_size, "cohort");
        }
        for (legacy = kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--)
                if (leader_cohort_read(store, cohort, &runs, errstr,
                                       errstr_size))
                        return EWS_STORE_ERROR;
        leader_runs_apply(cohort, &runs);
        qsort(cohort->days, (size_t)cohort->day_cnt, sizeof(cohort->days[0]),
              leader_day_cmp);
        if (kind != EWS_COHORT_CAMPAIGN)
                return EWS_STORE_OK;
        /* a campaign without c:<id> is decided with its fields zeroed */
        if (ews_store_campaign_get(store, id, &cohort->info, errstr,
                                   errstr_size) == EWS_STORE_ERROR)
                return EWS_STORE_ERROR;
        leader_sums_upgrade(cohort);
        return EWS_STORE_OK;
}

/* Members last written on or before this wall-clock day have expired with
 * their keys (a retention and at most a day more after that day). */
static int64_t leader_stale_day(const struct ews_store *store)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ((int64_t)ts.tv_sec * 1000 - store->conf.retention_ms) /
                       86400000LL -
               2;
}

static int leader_state_args(struct store_argv *a,
                             const struct ews_store_cohort *c)
{
        if (c->kind == EWS_COHORT_CAMPAIGN)
                return store_argv_add(a, "s:n", 3) ||
                       store_argv_i64(a, c->campaign.n) ||
                       store_argv_add(a, "s:k", 3) ||
                       store_argv_i64(a, c->campaign.k) ||
                       store_argv_add(a, "s:open", 6) ||
                       store_argv_i64(a, c->campaign.open_ms) ||
                       store_argv_add(a, "s:res", 5) ||
                       store_argv_i64(a, c->campaign.resolved_ms) ||
                       store_argv_add(a, "s:sg", 4) ||
                       store_argv_i64(a, c->campaign.signups) ||
                       store_argv_add(a, "s:sp", 4) ||
                       store_argv_addf(a, "%.17g", c->campaign.spend);
        return store_argv_add(a, "s:first", 7) ||
               store_argv_i64(a, c->account.first_day) ||
               store_argv_add(a, "s:last", 6) ||
               store_argv_i64(a, c->account.last_day) ||
               store_argv_add(a, "s:open", 6) ||
               store_argv_i64(a, c->account.open_ms) ||
               store_argv_add(a, "s:res", 5) ||
               store_argv_i64(a, c->account.resolved_ms) ||
               store_argv_add(a, "s:base", 6) ||
               store_argv_addf(a, "%.17g", c->account.baseline);
}

enum ews_store_result
ews_store_cohort_commit(struct ews_store *store, const char *owner,
                        int64_t token, const struct ews_store_cohort *cohort,
                        int64_t drop_before_day, int64_t next_day,
                        const struct ews_outbox_record *outbox, size_t cnt,
                        char *errstr, size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        enum ews_store_result result = EWS_STORE_ERROR;
        char key[EWS_ID_MAX + 80], legacy[EWS_ID_MAX + 80];
        redisReply *reply;
        size_t i;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        store_argv_reset(a);
        if (leader_cohort_key(store, cohort->kind, cohort->id, false, key,
                              sizeof(key)) ||
            leader_cohort_key(store, cohort->kind, cohort->id,
                              cohort->kind == EWS_COHORT_ACCOUNT, legacy,
                              sizeof(legacy)) ||
            store_argv_add(a, "EVALSHA", 7) || store_argv_add(a, "", 0) ||
            store_argv_add(a, "5", 1) ||
            store_argv_cat(a, store->prefix, "leader", "") ||
            store_argv_add(a, key, strlen(key)) ||
            store_argv_cat(a, store->prefix,
                           cohort->kind == EWS_COHORT_CAMPAIGN ? "cq" : "aq",
                           "") ||
            store_argv_cat(a, store->prefix, "o:leader", "") ||
            store_argv_add(a, legacy, strlen(legacy)) ||
            store_argv_addf(a, "%s %lld", owner, (long long)token) ||
            store_argv_add(a, cohort->id, strlen(cohort->id)) ||
            store_argv_i64(a, drop_before_day) || store_argv_i64(a, next_day) ||
            store_argv_add(a, cohort->kind == EWS_COHORT_CAMPAIGN ? "6" : "5",
                           1) ||
            store_argv_i64(a, (int64_t)cnt) ||
            store_argv_i64(a, cohort->kind == EWS_COHORT_ACCOUNT
                                      ? leader_stale_day(store)
                                      : 0) ||
            leader_state_args(a, cohort))
                goto nomem;
        for (i = 0; i < cnt; i++)
                if (store_argv_add(a, outbox[i].id, strlen(outbox[i].id)) ||
                    store_argv_add(a, (const char *)outbox[i].data,
                                   outbox[i].len))
                        goto nomem;
        reply = store_evalsha(store, store_script_cohort, store->sha_cohort,
                              errstr, errstr_size);
        if (reply && reply->type == REDIS_REPLY_ERROR) {
                snprintf(errstr, errstr_size, "cohort commit rejected: %s",
                         reply->str);
                result = EWS_STORE_REJECTED;
        } else if (!reply || reply->type != REDIS_REPLY_ARRAY ||
                   reply->elements < 1 ||
                   reply->element[0]->type != REDIS_REPLY_INTEGER) {
                result =
                        store_fail(store, errstr, errstr_size, "cohort commit");
        } else if (reply->element[0]->integer == 1) {
                result = EWS_STORE_OK;
        } else if (reply->element[0]->integer == 2) {
                result = EWS_STORE_GONE;
        } else {
                snprintf(errstr, errstr_size, "the lease is gone");
                result = EWS_STORE_FENCED;
        }
        if (reply)
                freeReplyObject(reply);
        return result;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
        return EWS_STORE_ERROR;
}
