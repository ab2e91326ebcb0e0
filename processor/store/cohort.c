/* The campaigns' and accounts' cohorts as the leader reads and writes
 * them (store/leader.h): their hashes read many at once, its decisions
 * written many at once, each by scripts/cohort.lua under the lease's
 * token. The queue of those due is queue.c's. */
#include "util/log.h"
#include "store/leader.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cohort_day_cmp(const void *a, const void *b)
{
        const struct ews_cohort_day *x = a, *y = b;

        return (x->day > y->day) - (x->day < y->day);
}

static struct ews_cohort_day *cohort_day(struct ews_store_cohort *c,
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

static double cohort_f64(const char *s)
{
        return strtod(s, NULL);
}

static int64_t cohort_i64(const char *s)
{
        return strtoll(s, NULL, 10);
}

/* An account's leader state as one field's value (s), where an earlier
 * version kept five (s:first, s:last, s:open, s:res, s:base): "<first day>
 * <last day> <open ms> <resolved ms> <baseline>", the baseline %.17g.
 * About 22 bytes of the account's listpack against about 65. */
static const char *cohort_account_state(const struct ews_account_rule_state *a,
                                        char *buf, size_t size)
{
        snprintf(buf, size, "%lld %lld %lld %lld %.17g",
                 (long long)a->first_day, (long long)a->last_day,
                 (long long)a->open_ms, (long long)a->resolved_ms, a->baseline);
        return buf;
}

/* The field s (cohort_account_state) into c: 0, or -1 when it does not
 * read as five numbers (then nothing is taken from it). */
static int cohort_account_parse(struct ews_store_cohort *c, const char *s)
{
        long long first, last, open, res;
        double base;
        int used = 0;

        if (sscanf(s, "%lld %lld %lld %lld %lg%n", &first, &last, &open, &res,
                   &base, &used) != 5 ||
            s[used])
                return -1;
        c->account.first_day = first;
        c->account.last_day = last;
        c->account.open_ms = open;
        c->account.resolved_ms = res;
        c->account.baseline = base;
        c->decided = true;
        return 0;
}

/* An account's runs of days as read: e<day> adds n to every day from it
 * on (n as a day's n). */
struct cohort_runs {
        int cnt;
        struct ews_cohort_day v[EWS_COHORT_DAYS_MAX];
};

static void cohort_field(struct ews_store_cohort *c, struct cohort_runs *runs,
                         const char *name, const char *value)
{
        struct ews_cohort_day *d;
        char *end;
        long long day;

        if (name[0] == 's' && name[1] == ':') {
                const char *f = name + 2;

                if (!strcmp(f, "n"))
                        c->campaign.n = cohort_i64(value);
                else if (!strcmp(f, "k"))
                        c->campaign.k = cohort_i64(value);
                else if (!strcmp(f, "open"))
                        c->campaign.open_ms = c->account.open_ms =
                                cohort_i64(value);
                else if (!strcmp(f, "res"))
                        c->campaign.resolved_ms = c->account.resolved_ms =
                                cohort_i64(value);
                else if (!strcmp(f, "first"))
                        c->account.first_day = cohort_i64(value);
                else if (!strcmp(f, "last"))
                        c->account.last_day = cohort_i64(value);
                else if (!strcmp(f, "base"))
                        c->account.baseline = cohort_f64(value);
                else if (!strcmp(f, "sg"))
                        c->campaign.signups = cohort_i64(value);
                else if (!strcmp(f, "sp"))
                        c->campaign.spend = cohort_f64(value);
                c->decided = true;
                c->has_sums |= !strcmp(f, "sg");
                return;
        }
        if (!strcmp(name, "s")) {
                (void)cohort_account_parse(c, value);
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
                        runs->v[runs->cnt++].n = cohort_i64(value);
                }
                return;
        }
        if (!(d = cohort_day(c, day)))
                return;
        /* added: an account's day may be in an earlier version's ab:
         * too */
        if (name[0] == 'k')
                d->k += cohort_i64(value);
        else if (name[0] == 's')
                d->signups += cohort_i64(value);
        else if (name[0] == 'p')
                d->spend += cohort_f64(value);
        else
                d->n += cohort_i64(value);
}

/* A campaign decided before signups and spend were counted by day: its
 * sums so far are the totals less what waits in undecided days. */
static void cohort_sums_upgrade(struct ews_store_cohort *c)
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
static int cohort_key(const struct ews_store *store, char kind, const char *id,
                      bool legacy, char *key, size_t size)
{
        int n = kind == EWS_COHORT_CAMPAIGN
                        ? snprintf(key, size, "%scb:%s", store->prefix, id)
                : legacy ? snprintf(key, size, "%sab:%s", store->prefix, id)
                         : snprintf(key, size, "%sa:%s", store->prefix, id);

        return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The reply of an HGETALL sent for the cohort, into it. */
static enum ews_store_result cohort_read(struct ews_store *store,
                                         struct ews_store_cohort *cohort,
                                         struct cohort_runs *runs, char *errstr,
                                         size_t errstr_size)
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
                        cohort_field(cohort, runs, reply->element[i]->str,
                                     reply->element[i + 1]->str);
        freeReplyObject(reply);
        return EWS_STORE_OK;
}

/* The runs' sums into the days they cover: each day from the first run
 * on has the sum of the runs up to it (a run is +n at its first day and
 * -n after its last, so the sum is 0 again after the last). */
static void cohort_runs_apply(struct ews_store_cohort *c,
                              struct cohort_runs *runs)
{
        struct ews_cohort_day *d;
        int64_t sum = 0, day;
        int i;

        qsort(runs->v, (size_t)runs->cnt, sizeof(runs->v[0]), cohort_day_cmp);
        for (i = 0; i < runs->cnt; i++) {
                sum += runs->v[i].n;
                if (i + 1 == runs->cnt || !sum)
                        continue;
                for (day = runs->v[i].day; day < runs->v[i + 1].day; day++)
                        if ((d = cohort_day(c, day)))
                                d->n += sum;
        }
}

/* Resets a cohort but for its kind and id. */
static void cohort_reset(struct ews_store_cohort *c)
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
static int cohort_send(struct ews_store *store,
                       const struct ews_store_cohort *c)
{
        char key[EWS_ID_MAX + 80];
        int legacy;

        for (legacy = c->kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--) {
                const char *argv[2] = {"HGETALL", key};
                size_t lens[2] = {7, 0};

                if (cohort_key(store, c->kind, c->id, legacy, key, sizeof(key)))
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

/* The replies of cohort_send, into c. */
static enum ews_store_result cohort_recv(struct ews_store *store,
                                         struct ews_store_cohort *c,
                                         char *errstr, size_t errstr_size)
{
        static struct cohort_runs runs;
        redisReply *reply = NULL;
        int legacy;

        runs.cnt = 0;
        for (legacy = c->kind == EWS_COHORT_ACCOUNT; legacy >= 0; legacy--)
                if (cohort_read(store, c, &runs, errstr, errstr_size))
                        return EWS_STORE_ERROR;
        cohort_runs_apply(c, &runs);
        qsort(c->days, (size_t)c->day_cnt, sizeof(c->days[0]), cohort_day_cmp);
        if (c->kind != EWS_COHORT_CAMPAIGN)
                return EWS_STORE_OK;
        if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK)
                reply = NULL;
        if (!(reply = store_read_reply(store, reply, errstr, errstr_size)))
                return EWS_STORE_ERROR;
        /* a campaign without c:<id> is decided with its fields zeroed */
        (void)store_campaign_parse(reply, c->id, &c->info);
        freeReplyObject(reply);
        cohort_sums_upgrade(c);
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
                cohort_reset(&cohorts[i]);
                if (cohort_send(store, &cohorts[i]))
                        return store_fail(store, errstr, errstr_size, "cohort");
        }
        for (i = 0; i < cnt; i++)
                if (cohort_recv(store, &cohorts[i], errstr, errstr_size))
                        return EWS_STORE_ERROR;
        return EWS_STORE_OK;
}

/* Members last written on or before this wall-clock day have expired (a
 * retention and a day after that day's end: ews_store_user_expired). */
static int64_t cohort_stale_day(const struct ews_store *store)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ((int64_t)ts.tv_sec * 1000 - store->conf.retention_ms) /
                       86400000LL -
               2;
}

static int cohort_state_args(struct store_resp *r,
                             const struct ews_store_cohort *c)
{
        char spend[32], state[128];

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
        return store_resp_str(r, "s") ||
               store_resp_str(r, cohort_account_state(&c->account, state,
                                                      sizeof(state)));
}

/* The EVALSHA of scripts/cohort.lua for w, into r: 0, or -1 when out of
 * memory. */
static int cohort_write_cmd(struct ews_store *store, struct store_resp *r,
                            const char *lease,
                            const struct ews_store_cohort_write *w)
{
        const struct ews_store_cohort *c = w->cohort;
        bool campaign = c->kind == EWS_COHORT_CAMPAIGN;
        /* the state's fields, as cohort_state_args writes them */
        int fields = campaign ? 6 : 1;
        char key[EWS_ID_MAX + 80], legacy[EWS_ID_MAX + 80];
        char queue[sizeof(store->prefix) + 40], old_queue[sizeof(queue)];
        size_t i;

        if (cohort_key(store, c->kind, c->id, false, key, sizeof(key)) ||
            cohort_key(store, c->kind, c->id, !campaign, legacy,
                       sizeof(legacy)))
                return -1;
        if (campaign)
                snprintf(queue, sizeof(queue), "%scq", store->prefix);
        else
                store_queue_key(store, store_queue_shard(c->id), queue,
                                sizeof(queue));
        if (campaign)
                memcpy(old_queue, queue, sizeof(queue));
        else
                store_queue_key(store, -1, old_queue, sizeof(old_queue));
        if (store_resp_cmd(r, 16 + 2 * fields + 2 * (int)w->outbox_cnt) ||
            store_resp_str(r, "EVALSHA") ||
            store_resp_arg(r, store->sha_cohort, 40) ||
            store_resp_str(r, "6") ||
            store_resp_cat(r, store->prefix, "leader", "") ||
            store_resp_str(r, key) || store_resp_str(r, queue) ||
            store_resp_cat(r, store->prefix, "o:leader", "") ||
            store_resp_str(r, legacy) || store_resp_str(r, old_queue) ||
            store_resp_str(r, lease) || store_resp_str(r, c->id) ||
            store_resp_i64(r, w->drop_before_day) ||
            store_resp_i64(r, w->next_day) || store_resp_i64(r, fields) ||
            store_resp_i64(r, (int64_t)w->outbox_cnt) ||
            store_resp_i64(r, campaign ? 0 : cohort_stale_day(store)) ||
            cohort_state_args(r, c))
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
static int cohort_writes_send(struct ews_store *store, const char *lease,
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
                    cohort_write_cmd(store, r, lease, &writes[i])) {
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
            cohort_writes_send(store, lease, writes, cnt, &noscript, errstr,
                               errstr_size))
                goto out;
        /* a restart or a failover lost the script: load it, send those
         * again (the script did nothing for them) */
        if (noscript &&
            (store_script_load(store, store_script_cohort, store->sha_cohort,
                               errstr, errstr_size) ||
             cohort_writes_send(store, lease, writes, cnt, &noscript, errstr,
                                errstr_size)))
                goto out;
        result = EWS_STORE_OK;
out:
        for (i = 0; i < cnt; i++)
                if (writes[i].result == EWS_STORE_NOT_FOUND)
                        writes[i].result = EWS_STORE_ERROR;
        return result;
}
