/* The leader: the lease, closed days, campaigns and accounts. */
#include "pipeline/leader.h"
#include "util/grow.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEADER_ALERTS_MAX 64

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
        struct ews_store_cohort cohort;
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

        if (!leader) {
                snprintf(errstr, errstr_size, "out of memory");
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

/* Decides one cohort up to closed_day; false when the lease is gone. */
static bool leader_decide(struct ews_leader *leader, char kind, const char *id,
                          int64_t closed_day)
{
        struct ews_store_cohort *c = &leader->cohort;
        struct ews_alert alerts[LEADER_ALERTS_MAX];
        struct ews_outbox_ref ref = {EWS_OUTBOX_LEADER, 0};
        const struct ews_outbox_record *records;
        size_t record_cnt;
        enum ews_store_result result;
        int64_t drop;
        char errstr[512];
        int n, i, closed = 0;

        if (ews_store_cohort_get(leader->store, kind, id, c, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s: %s", id, errstr);
                leader->caught_up = false;
                return true;
        }
        if (kind == EWS_COHORT_CAMPAIGN) {
                struct ews_campaign_rule_info info = {
                        id, c->info.name, c->info.has_target,
                        c->info.target_activation_rate};

                while (closed < c->day_cnt && c->days[closed].day <= closed_day)
                        closed++;
                n = ews_rules_campaign_days(
                        &leader->config->rules, &c->campaign, &info, c->days,
                        closed, leader->now_ms, alerts, LEADER_ALERTS_MAX);
                drop = closed_day + 1;
        } else {
                n = ews_rules_account_days(&leader->config->rules, &c->account,
                                           id, c->days, c->day_cnt, closed_day,
                                           leader->now_ms, alerts,
                                           LEADER_ALERTS_MAX);
                drop = closed_day + 1 - leader->config->rules.trailing_days;
        }
        ews_delivery_records_reset(leader->delivery);
        for (i = 0; i < n; i++)
                if (!ews_delivery_alert_too_old(leader->delivery, &alerts[i],
                                                leader->now_ms) &&
                    !ews_delivery_record_alert(leader->delivery, &alerts[i])) {
                        ews_err("leader", "out of memory");
                        leader->caught_up = false;
                        return true;
                }
        records = ews_delivery_records_view(leader->delivery, 0, &record_cnt);
        result = ews_store_cohort_commit(
                leader->store, leader->owner, leader->token, c, drop,
                closed_day + 1, records, record_cnt, errstr, sizeof(errstr));
        if (result == EWS_STORE_GONE) {
                ews_info("leader", "%s: expired with its subject", id);
                return true;
        }
        if (result == EWS_STORE_FENCED) {
                ews_warn("leader", "lost the lease: %s", errstr);
                leader->held = false;
                return false;
        }
        if (result != EWS_STORE_OK) {
                ews_warn("leader", "%s: %s", id, errstr);
                leader->caught_up = false;
                return true;
        }
        leader->stats->leader_decisions++;
        /* counts and logs the alerts it publishes */
        ews_delivery_records_send(leader->delivery, ref, 0, record_cnt);
        return true;
}

static bool leader_kind(struct ews_leader *leader, char kind,
                        int64_t closed_day)
{
        int64_t decided = leader->stats->leader_decisions;
        char errstr[512];
        size_t i;

        leader->due_cnt = 0;
        if (ews_store_cohort_due(leader->store, kind, closed_day,
                                 (size_t)leader->config->leader_turn_ids,
                                 leader_due_cb, leader, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s", errstr);
                leader->caught_up = false;
                return true;
        }
        for (i = 0; i < leader->due_cnt; i++)
                if (!leader_decide(leader, kind, leader->due[i], closed_day))
                        return false;
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
