/* The leader: the lease, closed days, campaigns and accounts. */
#include "pipeline/leader.h"
#include "store/leader.h"
#include "util/grow.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEADER_ALERTS_MAX 64
/* Cohorts decided together: read in one round trip, written in another. */
#define LEADER_CHUNK 64

struct ews_leader {
        const struct ews_config *config;
        struct ews_store *store;
        struct ews_delivery *delivery;
        struct ews_pipeline_stats *stats;
        char owner[128];
        int64_t token;
        bool held;
        bool resend;    /* just took the lease: its outbox is sent again */
        bool caught_up; /* the last turn decided every closed day due */
        bool more;      /* the last turn stopped at its bound, more due */
        int64_t now_ms; /* wall clock of the turn */
        struct ews_store_cohort *cohorts; /* LEADER_CHUNK of them */
        struct ews_store_cohort_write writes[LEADER_CHUNK];
        size_t first[LEADER_CHUNK]; /* each write's first record */
        char (*due)[EWS_ID_MAX];
        size_t due_cnt, due_cap;
};

struct ews_leader *ews_leader_new(const struct ews_config *config,
                                  struct ews_store *store,
                                  struct ews_delivery *delivery,
                                  struct ews_pipeline_stats *stats,
                                  char *errstr, size_t errstr_size)
{
        struct ews_leader *leader = calloc(1, sizeof(*leader));
        char host[64] = "";
        struct timespec ts;

        if (!leader || !(leader->cohorts = calloc(LEADER_CHUNK,
                                                  sizeof(*leader->cohorts)))) {
                snprintf(errstr, errstr_size, "out of memory");
                free(leader);
                return NULL;
        }
        leader->config = config;
        leader->store = store;
        leader->delivery = delivery;
        leader->stats = stats;
        gethostname(host, sizeof(host) - 1);
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(leader->owner, sizeof(leader->owner), "%s:%d:%lld", host,
                 (int)getpid(), (long long)ts.tv_nsec);
        return leader;
}

void ews_leader_destroy(struct ews_leader *leader)
{
        if (!leader)
                return;
        free(leader->due);
        free(leader->cohorts);
        free(leader);
}

bool ews_leader_held(const struct ews_leader *leader)
{
        return leader->held;
}

bool ews_leader_caught_up(const struct ews_leader *leader)
{
        return leader->held && leader->caught_up;
}

bool ews_leader_behind(const struct ews_leader *leader)
{
        return leader->held && leader->more;
}

void ews_leader_outbox_cron(struct ews_leader *leader, bool look)
{
        if (!leader->held || !(leader->resend || look))
                return;
        leader->resend = false;
        ews_delivery_resend(leader->delivery,
                            (struct ews_outbox_ref){EWS_OUTBOX_LEADER, 0});
}

static void leader_due_cb(void *opaque, const char *id)
{
        struct ews_leader *leader = opaque;

        if (!ews_grow((void **)&leader->due, &leader->due_cap,
                      leader->due_cnt + 1, sizeof(*leader->due)))
                return;
        snprintf(leader->due[leader->due_cnt++], EWS_ID_MAX, "%s", id);
}

/* Decides cohort c up to closed_day (its state moves on) into w, its
 * alerts as records: false when out of memory. */
static bool leader_decide(struct ews_leader *leader, struct ews_store_cohort *c,
                          int64_t closed_day, struct ews_store_cohort_write *w)
{
        struct ews_alert alerts[LEADER_ALERTS_MAX];
        size_t first = ews_delivery_records_mark(leader->delivery);
        int n, i, closed = 0;

        if (c->kind == EWS_COHORT_CAMPAIGN) {
                struct ews_campaign_rule_info info = {
                        c->id, c->info.name, c->info.has_target,
                        c->info.target_activation_rate};

                while (closed < c->day_cnt && c->days[closed].day <= closed_day)
                        closed++;
                n = ews_rules_campaign_days(
                        &leader->config->rules, &c->campaign, &info, c->days,
                        closed, leader->now_ms, alerts, LEADER_ALERTS_MAX);
                w->drop_before_day = closed_day + 1;
        } else {
                n = ews_rules_account_days(&leader->config->rules, &c->account,
                                           c->id, c->days, c->day_cnt,
                                           closed_day, leader->now_ms, alerts,
                                           LEADER_ALERTS_MAX);
                w->drop_before_day =
                        closed_day + 1 - leader->config->rules.trailing_days;
        }
        for (i = 0; i < n; i++)
                if (!ews_delivery_alert_too_old(leader->delivery, &alerts[i],
                                                leader->now_ms) &&
                    !ews_delivery_record_alert(leader->delivery, &alerts[i]))
                        return false;
        w->cohort = c;
        w->next_day = closed_day + 1;
        w->outbox_cnt = ews_delivery_records_mark(leader->delivery) - first;
        return true;
}

/* Writes the chunk's n decisions and sends the alerts of those applied;
 * false when the lease is gone. */
static bool leader_write(struct ews_leader *leader, size_t n)
{
        struct ews_outbox_ref ref = {EWS_OUTBOX_LEADER, 0};
        const struct ews_outbox_record *records;
        bool held = true;
        char errstr[512];
        size_t i, total;

        records = ews_delivery_records_view(leader->delivery, 0, &total);
        for (i = 0; i < n; i++)
                leader->writes[i].outbox =
                        total ? records + leader->first[i] : NULL;
        if (ews_store_cohorts_commit(leader->store, leader->owner,
                                     leader->token, leader->writes, n, errstr,
                                     sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s", errstr);
                leader->caught_up = false;
        }
        for (i = 0; i < n; i++) {
                const struct ews_store_cohort_write *w = &leader->writes[i];

                if (w->result == EWS_STORE_OK) {
                        leader->stats->leader_decisions++;
                        /* counts and logs the alerts it publishes */
                        ews_delivery_records_send(leader->delivery, ref,
                                                  leader->first[i],
                                                  w->outbox_cnt);
                } else if (w->result == EWS_STORE_GONE) {
                        ews_info("leader", "%s: expired with its subject",
                                 w->cohort->id);
                } else if (w->result == EWS_STORE_FENCED) {
                        held = false;
                } else {
                        leader->caught_up = false;
                }
        }
        if (!held) {
                ews_warn("leader", "lost the lease");
                leader->held = false;
        }
        return held;
}

/* Decides cnt due cohorts of kind (at most LEADER_CHUNK): reads them at
 * once, decides, writes them at once. False when the lease is gone. */
static bool leader_chunk(struct ews_leader *leader, char kind,
                         const char (*ids)[EWS_ID_MAX], size_t cnt,
                         int64_t closed_day)
{
        char errstr[512];
        size_t i, n = 0;

        for (i = 0; i < cnt; i++) {
                leader->cohorts[i].kind = kind;
                memcpy(leader->cohorts[i].id, ids[i], EWS_ID_MAX);
        }
        if (ews_store_cohorts_get(leader->store, leader->cohorts, cnt, errstr,
                                  sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s", errstr);
                leader->caught_up = false;
                return true;
        }
        ews_delivery_records_reset(leader->delivery);
        for (i = 0; i < cnt; i++) {
                leader->first[n] = ews_delivery_records_mark(leader->delivery);
                if (leader_decide(leader, &leader->cohorts[i], closed_day,
                                  &leader->writes[n])) {
                        n++;
                        continue;
                }
                ews_err("leader", "%s: out of memory", leader->cohorts[i].id);
                leader->caught_up = false;
        }
        return leader_write(leader, n);
}

static bool leader_kind(struct ews_leader *leader, char kind,
                        int64_t closed_day)
{
        int64_t decided = leader->stats->leader_decisions;
        char errstr[512];
        size_t i, cnt;

        leader->due_cnt = 0;
        if (ews_store_cohort_due(leader->store, kind, closed_day,
                                 (size_t)leader->config->leader_turn_ids,
                                 leader_due_cb, leader, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s", errstr);
                leader->caught_up = false;
                return true;
        }
        for (i = 0; i < leader->due_cnt; i += cnt) {
                cnt = leader->due_cnt - i;
                if (cnt > LEADER_CHUNK)
                        cnt = LEADER_CHUNK;
                if (!leader_chunk(leader, kind, leader->due + i, cnt,
                                  closed_day))
                        return false;
        }
        if (leader->due_cnt == (size_t)leader->config->leader_turn_ids) {
                leader->caught_up = false; /* more are due: next tick */
                /* at once, if this one got on: ids that keep failing
                 * wait for the periodic turn */
                if (leader->stats->leader_decisions > decided)
                        leader->more = true;
        }
        return true;
}

/* The smallest watermark over the partitions of both input topics: usage
 * events fill the cohorts, campaign events give their targets and spend.
 * 0 while a partition has none (nobody has read it yet). */
static bool leader_min_watermark(struct ews_leader *leader, int64_t *min_ms)
{
        int64_t min, max;
        char errstr[512];
        int s;

        *min_ms = 0;
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                if (ews_store_watermarks(leader->store, (enum ews_source)s,
                                         &min, &max, errstr,
                                         sizeof(errstr)) != EWS_STORE_OK) {
                        ews_warn("leader", "watermarks: %s", errstr);
                        return false;
                }
                if (!min) {
                        *min_ms = 0;
                        return true;
                }
                if (!*min_ms || min < *min_ms)
                        *min_ms = min;
        }
        return true;
}

/* The users' buckets swept a turn (store/sweep.c): with a turn a second,
 * all 8,192 in under nine minutes. */
#define LEADER_SWEEP_BUCKETS 16

/* Users past the retention deleted from the next few buckets. */
static void leader_sweep(struct ews_leader *leader)
{
        int64_t removed = 0;
        char errstr[512];

        if (ews_store_users_sweep(leader->store, leader->now_ms,
                                  LEADER_SWEEP_BUCKETS, &removed, errstr,
                                  sizeof(errstr)) != EWS_STORE_OK)
                ews_warn("leader", "sweep: %s", errstr);
        leader->stats->users_expired += removed;
}

void ews_leader_cron(struct ews_leader *leader, int64_t now_ms)
{
        int64_t token = 0, min_ms, closed_day;
        enum ews_store_result result;
        char errstr[512];

        leader->now_ms = now_ms;
        leader->caught_up = false;
        leader->more = false;
        result = ews_store_lease(leader->store, leader->owner,
                                 leader->config->leader_lease_ms, &token,
                                 errstr, sizeof(errstr));
        if (result == EWS_STORE_ERROR)
                ews_warn("leader", "lease: %s", errstr);
        if (result != EWS_STORE_OK) {
                if (leader->held)
                        ews_warn("leader", "no longer the leader");
                leader->held = false;
                leader->stats->leader = 0;
                return;
        }
        if (!leader->held || token != leader->token) {
                ews_info("leader", "leading as %s (token %lld)", leader->owner,
                         (long long)token);
                leader->resend = true;
        }
        leader->held = true;
        leader->token = token;
        leader->stats->leader = 1;
        leader_sweep(leader);
        if (!leader_min_watermark(leader, &min_ms))
                return;
        leader->caught_up = true;
        if (min_ms <= 0)
                return; /* some partition has not begun */
        /* the last day every partition has passed */
        closed_day = min_ms / EWS_DAY_MS - 1;
        if (!leader_kind(leader, EWS_COHORT_CAMPAIGN, closed_day) ||
            !leader_kind(leader, EWS_COHORT_ACCOUNT, closed_day))
                leader->caught_up = false;
}

void ews_leader_release(struct ews_leader *leader)
{
        if (!leader->held)
                return;
        /* the store logs a failure; the lease then lapses with its TTL */
        (void)ews_store_lease_release(leader->store, leader->owner);
        leader->held = false;
}
