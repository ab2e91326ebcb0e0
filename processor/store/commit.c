/* A partition's commit as native Redis commands: every value it writes is
 * known here, so Redis runs no script and does no arithmetic. Only what
 * changed is written: a user's field in its bucket always (its value
 * changed), its timer when its deadline moved, its account membership and
 * the account's expiry once a wall-clock day (and then the delete of an
 * earlier version's key of the user). The fence's own write is added
 * when the round is applied (round.c), once the fence has been read. */
#include "store/codec.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMIT_DAY_MS 86400000LL

struct commit_ctx {
        struct ews_store *store;
        struct store_resp *r;
        struct store_round *round;
        const struct ews_commit *commit;
        int64_t day;       /* the wall-clock day of the commit, 0: unknown */
        int64_t expire_ms; /* an account's expiry */
        char timers[sizeof(((struct ews_store *)0)->prefix) + 300];
        struct store_zops *segs; /* the round's */
};

int store_timer_prefix(const struct ews_store *store, int32_t partition,
                       char *buf, size_t size)
{
        int n = snprintf(buf, size, "%st:%s:%d", store->prefix,
                         store->topics[EWS_SOURCE_USAGE], (int)partition);

        return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool ews_store_timer_moves(int64_t filed_ms, int64_t deadline_ms,
                           int64_t watermark_ms)
{
        return deadline_ms != filed_ms &&
               !(filed_ms > watermark_ms && deadline_ms > filed_ms &&
                 deadline_ms / STORE_TIMER_BUCKET_MS ==
                         filed_ms / STORE_TIMER_BUCKET_MS);
}

/* The key <prefix><cls><id> as one argument. */
static int commit_key(struct commit_ctx *x, const char *cls, const char *id)
{
        return store_resp_cat(x->r, x->store->prefix, cls, id);
}

static int commit_partition_key(struct commit_ctx *x, char kind)
{
        char key[sizeof(x->store->prefix) + 300];

        snprintf(key, sizeof(key), "%s%c:%s:%d", x->store->prefix, kind,
                 x->store->topics[x->commit->source],
                 (int)x->commit->partition);
        return store_resp_str(x->r, key);
}

/* The account to expire again at the end of the commit. */
static int commit_touch_account(struct commit_ctx *x, const char *account_id)
{
        return store_idset_add(&x->round->accounts, 'a', account_id, 0, NULL)
                       ? 0
                       : -1;
}

/* The key of the timers' hour numbered key, -1 (an entry written by an
 * earlier version) its partition's one key: a commit's own sorted-set
 * writes are its timers' (the segments' and queues' are the round's). */
static int commit_zkey(void *ctx, struct store_resp *r, enum store_zkind kind,
                       int64_t key)
{
        struct commit_ctx *x = ctx;

        (void)kind;
        return key < 0 ? store_resp_str(r, x->timers)
                       : store_resp_cat_i64(r, x->timers, ":", key);
}

static int64_t commit_hour(int64_t ms)
{
        return ms < 0 ? -1 : ms / STORE_TIMER_BUCKET_MS;
}

/* The user's timer entry, when it moves (ews_store_timer_moves): out of
 * the hour it was filed in, into its deadline's. */
static int commit_timer(struct commit_ctx *x, const struct ews_store_user *su,
                        struct ews_user_keep *keep)
{
        const char *id = su->user->user_id;
        int64_t filed = keep->timer_ms, deadline = su->deadline_ms;

        if (!ews_store_timer_moves(filed, deadline, x->commit->watermark_ms))
                return 0;
        if (filed &&
            (filed < 0 || deadline <= 0 ||
             commit_hour(filed) != commit_hour(deadline)) &&
            store_zops_add(&x->round->zops, STORE_Z_TIMER, false,
                           commit_hour(filed), 0, id))
                return -1;
        if (deadline > 0 &&
            store_zops_add(&x->round->zops, STORE_Z_TIMER, true,
                           commit_hour(deadline),
                           (double)(deadline % STORE_TIMER_BUCKET_MS), id))
                return -1;
        keep->timer_ms = deadline > 0 ? deadline : 0;
        return 0;
}

static int commit_user(struct commit_ctx *x, const struct ews_store_user *su)
{
        const struct ews_user *u = su->user;
        struct ews_user_keep keep = u->keep;
        bool refresh = !keep.day || keep.day != x->day;
        int len;

        if (commit_timer(x, su, &keep))
                return -1;
        /* Membership: written on joining, then once a day, when the
         * leader may have dropped it as stale (cohort.lua). */
        if (u->account_id[0] && (refresh || !keep.member)) {
                if (store_resp_cmd(x->r, 4) || store_resp_str(x->r, "HSET") ||
                    commit_key(x, "a:", u->account_id) ||
                    store_resp_cat(x->r, "m:", u->user_id, "") ||
                    store_resp_i64(x->r, x->day) ||
                    commit_touch_account(x, u->account_id))
                        return -1;
                keep.member = true;
        }
        keep.day = (int32_t)x->day;
        /* names the dictionary lacks go inline, and get ids for the
         * next time */
        store_names_note(x->store, u);
        len = ews_user_pack_keep(u, &keep, x->commit->partition,
                                 x->store->names, x->store->packed,
                                 sizeof(x->store->packed));
        if (len < 0 || store_resp_cmd(x->r, 4) ||
            store_resp_str(x->r, "HSET") ||
            store_resp_cat_i64(x->r, x->store->prefix,
                               "ub:", store_user_bucket(u->user_id)) ||
            store_resp_str(x->r, u->user_id) ||
            store_resp_arg(x->r, x->store->packed, (size_t)len))
                return -1;
        /* an earlier version's key of the user, once a day: the bucket
         * holds the user from now on */
        if (refresh &&
            (store_resp_cmd(x->r, 2) || store_resp_str(x->r, "DEL") ||
             commit_key(x, "u:", u->user_id)))
                return -1;
        /* The users as committed are the truth of this partition: cached
         * now; a commit that does not apply drops them with its reply. */
        ews_user_cache_put(x->store->cache, u->user_id, x->commit->partition,
                           x->store->packed, (size_t)len);
        return 0;
}

static int commit_hset(struct commit_ctx *x, const char *key_cls,
                       const char *id, const char *field, const char *value)
{
        return store_resp_cmd(x->r, 4) || store_resp_str(x->r, "HSET") ||
               commit_key(x, key_cls, id) || store_resp_str(x->r, field) ||
               store_resp_str(x->r, value);
}

/* <prefix><key_cls><id>'s field, with num in decimal after it unless
 * num < 0, up by by: noted for the round, which sums it with the other
 * commits' (counters.c). */
static int commit_hincrby(struct commit_ctx *x, const char *key_cls,
                          const char *id, const char *field, int64_t num,
                          int64_t by)
{
        return store_counters_add(&x->round->counters, x->store->prefix,
                                  key_cls, id, field, num, by);
}

static int commit_campaign(struct commit_ctx *x,
                           const struct ews_campaign_delta *c)
{
        const char *id = c->campaign_id;
        char num[32];

        if ((c->name[0] && commit_hset(x, "c:", id, "name", c->name)) ||
            (c->channel[0] &&
             commit_hset(x, "c:", id, "channel", c->channel)) ||
            (c->status[0] && commit_hset(x, "c:", id, "status", c->status)))
                return -1;
        if (c->has_target) {
                snprintf(num, sizeof(num), "%.17g", c->target_activation_rate);
                if (commit_hset(x, "c:", id, "target", num))
                        return -1;
        }
        if (c->launched_ms) {
                snprintf(num, sizeof(num), "%lld", (long long)c->launched_ms);
                if (commit_hset(x, "c:", id, "launched", num))
                        return -1;
        }
        if (c->spend_add != 0) {
                snprintf(num, sizeof(num), "%.17g", c->spend_add);
                if (store_resp_cmd(x->r, 4) ||
                    store_resp_str(x->r, "HINCRBYFLOAT") ||
                    commit_key(x, "c:", id) || store_resp_str(x->r, "spend") ||
                    store_resp_str(x->r, num))
                        return -1;
        }
        return (c->signups_add &&
                commit_hincrby(x, "c:", id, "signups", -1, c->signups_add)) ||
                               (c->activated_add &&
                                commit_hincrby(x, "c:", id, "activated", -1,
                                               c->activated_add))
                       ? -1
                       : 0;
}

static int commit_spend(struct commit_ctx *x, const struct ews_cohort_delta *h)
{
        char num[32];

        snprintf(num, sizeof(num), "%.17g", h->spend);
        return store_resp_cmd(x->r, 4) ||
               store_resp_str(x->r, "HINCRBYFLOAT") ||
               commit_key(x, "cb:", h->id) ||
               store_resp_cat_i64(x->r, "p", "", h->day) ||
               store_resp_str(x->r, num);
}

/* Adds to a campaign's (cb:) or an account's (a:) undecided day, and
 * notes the id's first day for its queue. */
static int commit_cohort(struct commit_ctx *x, const struct ews_cohort_delta *h)
{
        struct store_idset_slot *q;
        int64_t day;
        bool added;

        if (h->kind == EWS_COHORT_CAMPAIGN) {
                /* trials started and spend by their own day, for the
                 * leader's figures */
                if ((h->n &&
                     commit_hincrby(x, "cb:", h->id, "n", h->day, h->n)) ||
                    (h->k &&
                     commit_hincrby(x, "cb:", h->id, "k", h->day, h->k)) ||
                    (h->signups && commit_hincrby(x, "cb:", h->id, "s", h->day,
                                                  h->signups)) ||
                    (h->spend != 0 && commit_spend(x, h)))
                        return -1;
        } else if (h->day_last - h->day < 2) {
                /* a day or two: added to each */
                for (day = h->day; day <= h->day_last; day++)
                        if (commit_hincrby(x, "a:", h->id, "d", day, h->n))
                                return -1;
        } else if (commit_hincrby(x, "a:", h->id, "e", h->day, h->n) ||
                   commit_hincrby(x, "a:", h->id, "e", h->day_last + 1,
                                  -h->n)) {
                /* a longer run: from its first day on, less after its last */
                return -1;
        }
        if (h->kind != EWS_COHORT_CAMPAIGN && commit_touch_account(x, h->id))
                return -1;
        q = store_idset_add(&x->round->queues, h->kind, h->id, h->day, &added);
        if (!q)
                return -1;
        if (h->day < q->value)
                q->value = h->day;
        return 0;
}

/* The campaigns' queue (ZADD LT: never later than queued), one command;
 * the accounts to the round's writes, into their shards' (written once a
 * round, with the segments: STORE_Z_QUEUE). */
static int commit_queue(struct commit_ctx *x)
{
        const struct store_idset *q = &x->round->queues;
        size_t i, n = 0;

        for (i = 0; i < q->cnt; i++) {
                const struct store_idset_slot *s = &q->slots[q->order[i]];

                if (s->kind == EWS_COHORT_CAMPAIGN)
                        n++;
                else if (store_zops_add_copy(x->segs, STORE_Z_QUEUE, true,
                                             store_queue_shard(s->id),
                                             (double)s->value, s->id))
                        return -1;
        }
        if (!n)
                return 0;
        if (store_resp_cmd(x->r, (int)(3 + 2 * n)) ||
            store_resp_str(x->r, "ZADD") ||
            store_resp_cat(x->r, x->store->prefix, "cq", "") ||
            store_resp_str(x->r, "LT"))
                return -1;
        for (i = 0; i < q->cnt; i++) {
                const struct store_idset_slot *s = &q->slots[q->order[i]];

                if (s->kind == EWS_COHORT_CAMPAIGN &&
                    (store_resp_i64(x->r, s->value) ||
                     store_resp_str(x->r, s->id)))
                        return -1;
        }
        return 0;
}

/* The queues and the accounts' expiries, once per id of the commit, after
 * its writes. */
static int commit_queues(struct commit_ctx *x)
{
        const struct store_idset *a = &x->round->accounts;
        size_t i;

        if (commit_queue(x))
                return -1;
        for (i = 0; i < a->cnt; i++)
                if (store_resp_cmd(x->r, 3) ||
                    store_resp_str(x->r, "PEXPIRE") ||
                    commit_key(x, "a:", a->slots[a->order[i]].id) ||
                    store_resp_i64(x->r, x->expire_ms))
                        return -1;
        return 0;
}

static int commit_outbox(struct commit_ctx *x)
{
        const struct ews_commit *c = x->commit;
        size_t i;

        if (!c->outbox_cnt)
                return 0;
        if (store_resp_cmd(x->r, 2 + 2 * (int)c->outbox_cnt) ||
            store_resp_str(x->r, "HSET") || commit_partition_key(x, 'o'))
                return -1;
        for (i = 0; i < c->outbox_cnt; i++)
                if (store_resp_str(x->r, c->outbox[i].id) ||
                    store_resp_arg(x->r, c->outbox[i].data, c->outbox[i].len))
                        return -1;
        return 0;
}

static int commit_body(struct commit_ctx *x)
{
        const struct ews_commit *c = x->commit;
        size_t i;

        for (i = 0; i < c->user_cnt; i++)
                if (commit_user(x, &c->users[i]))
                        return -1;
        for (i = 0; i < c->campaign_cnt; i++)
                if (commit_campaign(x, &c->campaigns[i]))
                        return -1;
        for (i = 0; i < c->cohort_cnt; i++)
                if (commit_cohort(x, &c->cohorts[i]))
                        return -1;
        return commit_queues(x) || commit_outbox(x) ||
                               store_funnel_cmds(x->store, x->r,
                                                 &x->round->counters, x->segs,
                                                 c) ||
                               store_zops_write(&x->round->zops, x->r,
                                                commit_zkey, x)
                       ? -1
                       : 0;
}

int store_commit_build(struct ews_store *store, struct store_round *round,
                       const struct ews_commit *commit)
{
        struct commit_ctx x = {
                store,
                &round->body,
                round,
                commit,
                commit->idle_ms > 0 ? commit->idle_ms / COMMIT_DAY_MS : 0,
                store->conf.retention_ms + COMMIT_DAY_MS,
                "",
                &round->segs};
        size_t start = round->body.len, cmds = round->body.cmds;
        size_t counted = round->counters.cnt, used = round->counters.used;
        size_t segs = round->segs.cnt, segs_used = round->segs.used;
        struct store_part *part;

        if (store_timer_prefix(store, commit->partition, x.timers,
                               sizeof(x.timers)))
                return -1;

        store_idset_reset(&round->accounts);
        store_idset_reset(&round->queues);
        store_zops_reset(&round->zops);
        if (round->cnt == round->cap) {
                size_t cap = round->cap ? round->cap * 2 : 64;
                struct store_part *parts =
                        realloc(round->parts, cap * sizeof(*parts));

                if (!parts)
                        return -1;
                round->parts = parts;
                round->cap = cap;
        }
        if (commit_body(&x)) {
                round->body.len = start; /* none of it goes */
                round->body.cmds = cmds;
                round->counters.cnt = counted;
                round->counters.used = used;
                round->segs.cnt = segs;
                round->segs.used = segs_used;
                if (commit->source == EWS_SOURCE_USAGE)
                        ews_user_cache_drop(store->cache, commit->partition);
                return -1;
        }
        part = &round->parts[round->cnt++];
        memset(part, 0, sizeof(*part));
        part->source = commit->source;
        part->partition = commit->partition;
        part->epoch = commit->epoch;
        part->expected_offset = commit->expected_offset;
        part->next_offset = commit->next_offset;
        part->watermark_ms = commit->watermark_ms;
        part->idle_ms = commit->idle_ms;
        part->body_start = start;
        part->body_end = round->body.len;
        part->body_cmds = round->body.cmds - cmds;
        part->counters_start = counted;
        part->counters_end = round->counters.cnt;
        part->segs_start = segs;
        part->segs_end = round->segs.cnt;
        return 0;
}
