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

/* Resets a cohort but for its kind and id. */
static void leader_cohort_reset(struct ews_store_cohort *c)
{
        char id[EWS_ID_MAX];
        char kind = c->kind;

        memcpy(id, c->id, sizeof(id));
        memset(c, 0, sizeof(*c));
        c->kind = kind;
        memcpy(c->id, id, sizeof(id));
        c->account.first_day = c->account.last_day = -1;
}

/* Pipelines the reads of c: the HGETALL of its hash (an account's earlier
 * ab:<id> first), a campaign's c:<id>. 0, or -1. */
static int leader_cohort_send(struct ews_store *store,
                              const struct ews_store_cohort *c)
{
        char key[EWS_ID_MAX + 80];
        int legacy;

        for (legacy = c->kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--) {
                const char *argv[2] = {"HGETALL", key};
                size_t lens[2] = {7, 0};

                if (leader_cohort_key(store, c->kind, c->id, legacy, key,
                                      sizeof(key)))
                        return -1;
                lens[1] = strlen(key);
                if (redisAppendCommandArgv(store->redis, 2, argv, lens) !=
                    REDIS_OK)
                        return -1;
        }
        return c->kind == EWS_COHORT_CAMPAIGN
                       ? store_campaign_append(store, c->id)
                       : 0;
}

/* The replies of leader_cohort_send, into c. */
static enum ews_store_result leader_cohort_recv(struct ews_store *store,
                                                struct ews_store_cohort *c,
                                                char *errstr,
                                                size_t errstr_size)
{
        static struct leader_runs runs;
        redisReply *reply = NULL;
        int legacy;

        runs.cnt = 0;
        for (legacy = c->kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--)
                if (leader_cohort_read(store, c, &runs, errstr, errstr_size))
                        return EWS_STORE_ERROR;
        leader_runs_apply(c, &runs);
        qsort(c->days, (size_t)c->day_cnt, sizeof(c->days[0]), leader_day_cmp);
        if (c->kind != EWS_COHORT_CAMPAIGN)
                return EWS_STORE_OK;
        if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK)
                reply = NULL;
        if (!(reply = store_read_reply(store, reply, errstr, errstr_size)))
                return EWS_STORE_ERROR;
        /* a campaign without c:<id> is decided with its fields zeroed */
        (void)store_campaign_parse(reply, c->id, &c->info);
        freeReplyObject(reply);
        leader_sums_upgrade(c);
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_cohorts_get(struct ews_store *store,
                                            struct ews_store_cohort *cohorts,
                                            size_t cnt, char *errstr,
                                            size_t errstr_size)
{
        size_t i;

        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        for (i = 0; i < cnt; i++) {
                leader_cohort_reset(&cohorts[i]);
                if (leader_cohort_send(store, &cohorts[i]))
                        return store_fail(store, errstr, errstr_size, "cohort");
        }
        for (i = 0; i < cnt; i++)
                if (leader_cohort_recv(store, &cohorts[i], errstr, errstr_size))
                        return EWS_STORE_ERROR;
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

static int leader_state_args(struct store_resp *r,
                             const struct ews_store_cohort *c)
{
        char spend[32];

        if (c->kind == EWS_COHORT_CAMPAIGN) {
                snprintf(spend, sizeof(spend), "%.17g", c->campaign.spend);
                return store_resp_str(r, "s:n") ||
                       store_resp_i64(r, c->campaign.n) ||
                       store_resp_str(r, "s:k") ||
                       store_resp_i64(r, c->campaign.k) ||
                       store_resp_str(r, "s:open") ||
                       store_resp_i64(r, c->campaign.open_ms) ||
                       store_resp_str(r, "s:res") ||
                       store_resp_i64(r, c->campaign.resolved_ms) ||
                       store_resp_str(r, "s:sg") ||
                       store_resp_i64(r, c->campaign.signups) ||
                       store_resp_str(r, "s:sp") || store_resp_str(r, spend);
        }
        snprintf(spend, sizeof(spend), "%.17g", c->account.baseline);
        return store_resp_str(r, "s:first") ||
               store_resp_i64(r, c->account.first_day) ||
               store_resp_str(r, "s:last") ||
               store_resp_i64(r, c->account.last_day) ||
               store_resp_str(r, "s:open") ||
               store_resp_i64(r, c->account.open_ms) ||
               store_resp_str(r, "s:res") ||
               store_resp_i64(r, c->account.resolved_ms) ||
               store_resp_str(r, "s:base") || store_resp_str(r, spend);
}

/* The EVALSHA of scripts/cohort.lua for w, into r: 0, or -1 when out of
 * memory. */
static int leader_write_cmd(struct ews_store *store, struct store_resp *r,
                            const char *lease,
                            const struct ews_store_cohort_write *w)
{
        const struct ews_store_cohort *c = w->cohort;
        bool campaign = c->kind == EWS_COHORT_CAMPAIGN;
        char key[EWS_ID_MAX + 80], legacy[EWS_ID_MAX + 80];
        size_t i;

        if (leader_cohort_key(store, c->kind, c->id, false, key, sizeof(key)) ||
            leader_cohort_key(store, c->kind, c->id, !campaign, legacy,
                              sizeof(legacy)))
                return -1;
        if (store_resp_cmd(r, 15 + (campaign ? 12 : 10) +
                                      2 * (int)w->outbox_cnt) ||
            store_resp_str(r, "EVALSHA") ||
            store_resp_arg(r, store->sha_cohort, 40) ||
            store_resp_str(r, "5") ||
            store_resp_cat(r, store->prefix, "leader", "") ||
            store_resp_str(r, key) ||
            store_resp_cat(r, store->prefix, campaign ? "cq" : "aq", "") ||
            store_resp_cat(r, store->prefix, "o:leader", "") ||
            store_resp_str(r, legacy) || store_resp_str(r, lease) ||
            store_resp_str(r, c->id) || store_resp_i64(r, w->drop_before_day) ||
            store_resp_i64(r, w->next_day) ||
            store_resp_str(r, campaign ? "6" : "5") ||
            store_resp_i64(r, (int64_t)w->outbox_cnt) ||
            store_resp_i64(r, campaign ? 0 : leader_stale_day(store)) ||
            leader_state_args(r, c))
                return -1;
        for (i = 0; i < w->outbox_cnt; i++)
                if (store_resp_str(r, w->outbox[i].id) ||
                    store_resp_arg(r, w->outbox[i].data, w->outbox[i].len))
                        return -1;
        return 0;
}

/* Sends the writes whose result is still pending (EWS_STORE_NOT_FOUND
 * here: not applied) and reads their replies; *noscript set when the
 * server had lost the script (those stay pending). 0, or -1 with errstr
 * when the connection failed. */
static int leader_writes_send(struct ews_store *store, const char *lease,
                              struct ews_store_cohort_write *writes, size_t cnt,
                              bool *noscript, char *errstr, size_t errstr_size)
{
        struct store_resp *r = &store->cohort_cmds;
        redisReply *reply;
        size_t i;

        *noscript = false;
        store_resp_reset(r);
        for (i = 0; i < cnt; i++)
                if (writes[i].result == EWS_STORE_NOT_FOUND &&
                    leader_write_cmd(store, r, lease, &writes[i])) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
        if (r->len && redisAppendFormattedCommand(store->redis, r->buf,
                                                  r->len) != REDIS_OK)
                goto fail;
        for (i = 0; i < cnt; i++) {
                struct ews_store_cohort_write *w = &writes[i];

                if (w->result != EWS_STORE_NOT_FOUND)
                        continue;
                if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK ||
                    !reply)
                        goto fail;
                if (reply->type == REDIS_REPLY_ERROR &&
                    !strncmp(reply->str, "NOSCRIPT", 8)) {
                        *noscript = true;
                } else if (reply->type == REDIS_REPLY_ERROR &&
                           store_not_primary(reply->str)) {
                        ews_warn("store", "script not applied: %s", reply->str);
                        freeReplyObject(reply);
                        goto fail;
                } else if (reply->type == REDIS_REPLY_ERROR) {
                        ews_warn("store", "%s: cohort commit rejected: %s",
                                 w->cohort->id, reply->str);
                        w->result = EWS_STORE_REJECTED;
                } else if (reply->type != REDIS_REPLY_ARRAY ||
                           reply->elements < 1 ||
                           reply->element[0]->type != REDIS_REPLY_INTEGER) {
                        freeReplyObject(reply);
                        goto fail;
                } else {
                        long long v = reply->element[0]->integer;

                        w->result = v == 1   ? EWS_STORE_OK
                                    : v == 2 ? EWS_STORE_GONE
                                             : EWS_STORE_FENCED;
                }
                freeReplyObject(reply);
        }
        return 0;
fail:
        store_fail(store, errstr, errstr_size, "cohort commit");
        return -1;
}

enum ews_store_result
ews_store_cohorts_commit(struct ews_store *store, const char *owner,
                         int64_t token, struct ews_store_cohort_write *writes,
                         size_t cnt, char *errstr, size_t errstr_size)
{
        enum ews_store_result result = EWS_STORE_ERROR;
        char lease[300];
        bool noscript;
        size_t i;

        for (i = 0; i < cnt; i++)
                writes[i].result = EWS_STORE_NOT_FOUND; /* pending */
        snprintf(lease, sizeof(lease), "%s %lld", owner, (long long)token);
        if (store_connect(store, errstr, errstr_size) ||
            leader_writes_send(store, lease, writes, cnt, &noscript, errstr,
                               errstr_size))
                goto out;
        /* a restart or a failover lost the script: load it, send those
         * again (the script did nothing for them) */
        if (noscript &&
            (store_script_load(store, store_script_cohort, store->sha_cohort,
                               errstr, errstr_size) ||
             leader_writes_send(store, lease, writes, cnt, &noscript, errstr,
                                errstr_size)))
                goto out;
        result = EWS_STORE_OK;
out:
        for (i = 0; i < cnt; i++)
                if (writes[i].result == EWS_STORE_NOT_FOUND)
                        writes[i].result = EWS_STORE_ERROR;
        return result;
}
