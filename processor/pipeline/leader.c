/*
 * The leader: one instance, holder of a Redis lease, decides campaigns and
 * accounts. Their inputs are cohort days that usage commits fill; a day is
 * closed, and decided, once every usage partition's stored watermark has
 * passed its end, so the decisions do not depend on how partitions
 * interleave or which instance leads.
 */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <string.h>

#define LEADER_IDS_MAX    500 /* ids decided per kind and tick */
#define LEADER_ALERTS_MAX 64

static void leader_due_cb(void *opaque, const char *id)
{
        struct pipeline_leader *leader = opaque;

        if (!ews_grow((void **)&leader->due, &leader->due_cap,
                      leader->due_cnt + 1, sizeof(*leader->due)))
                return;
        snprintf(leader->due[leader->due_cnt++], EWS_ID_MAX, "%s", id);
}

/* Decides one cohort up to closed_day; false when the lease is gone. */
static bool leader_decide(struct ews_pipeline *p, char kind, const char *id,
                          int64_t closed_day)
{
        struct pipeline_leader *leader = &p->leader;
        struct ews_store_cohort *c = &leader->cohort;
        struct ews_alert alerts[LEADER_ALERTS_MAX];
        struct ews_outbox_ref ref = {EWS_OUTBOX_LEADER, 0};
        const struct ews_outbox_record *records;
        size_t record_cnt;
        enum ews_store_result result;
        int64_t drop;
        char errstr[512];
        int n, i, closed = 0;

        if (ews_store_cohort_get(p->store, kind, id, c, errstr,
                                 sizeof(errstr))) {
                ews_warn("leader", "%s: %s", id, errstr);
                leader->caught_up = false;
                return true;
        }
        if (kind == EWS_COHORT_CAMPAIGN) {
                struct ews_campaign_rule_info info = {
                        id,
                        c->info.name,
                        c->info.has_target,
                        c->info.target_activation_rate,
                        c->info.spend,
                        c->info.signups};

                while (closed < c->day_cnt && c->days[closed].day <= closed_day)
                        closed++;
                n = ews_rules_campaign_days(&p->config->rules, &c->campaign,
                                            &info, c->days, closed, p->now_ms,
                                            alerts, LEADER_ALERTS_MAX);
                drop = closed_day + 1;
        } else {
                n = ews_rules_account_days(
                        &p->config->rules, &c->account, id, c->days, c->day_cnt,
                        closed_day, p->now_ms, alerts, LEADER_ALERTS_MAX);
                drop = closed_day + 1 - p->config->rules.trailing_days;
        }
        ews_delivery_records_reset(p->delivery);
        for (i = 0; i < n; i++)
                if (!ews_delivery_alert_too_old(p->delivery, &alerts[i],
                                                p->now_ms) &&
                    !ews_delivery_record_alert(p->delivery, &alerts[i])) {
                        ews_err("leader", "out of memory");
                        leader->caught_up = false;
                        return true;
                }
        ews_delivery_records_finish(p->delivery);
        records = ews_delivery_records(p->delivery, &record_cnt);
        result = ews_store_cohort_commit(p->store, leader->owner, leader->token,
                                         c, drop, closed_day + 1, records,
                                         record_cnt, errstr, sizeof(errstr));
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
        p->stats.leader_decisions++;
        for (i = 0; i < n; i++) {
                p->stats.alerts[alerts[i].rule][alerts[i].status]++;
                ews_info("alert", "%s %s %s: %s", ews_rule_name(alerts[i].rule),
                         ews_alert_status_name(alerts[i].status),
                         alerts[i].subject_id, alerts[i].reason);
        }
        ews_delivery_records_send(p->delivery, ref);
        return true;
}

static bool leader_kind(struct ews_pipeline *p, char kind, int64_t closed_day)
{
        struct pipeline_leader *leader = &p->leader;
        char errstr[512];
        size_t i;

        leader->due_cnt = 0;
        if (ews_store_cohort_due(p->store, kind, closed_day, LEADER_IDS_MAX,
                                 leader_due_cb, leader, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("leader", "%s", errstr);
                leader->caught_up = false;
                return true;
        }
        for (i = 0; i < leader->due_cnt; i++)
                if (!leader_decide(p, kind, leader->due[i], closed_day))
                        return false;
        if (leader->due_cnt == LEADER_IDS_MAX)
                leader->caught_up = false; /* more are due: next tick */
        return true;
}

void pipeline_leader_cron(struct ews_pipeline *p)
{
        struct pipeline_leader *leader = &p->leader;
        int64_t token = 0, min_ms, closed_day;
        char errstr[512];
        int rc;

        leader->caught_up = false;
        rc = ews_store_lease(p->store, leader->owner,
                             p->config->leader_lease_ms, &token, errstr,
                             sizeof(errstr));
        if (rc < 0)
                ews_warn("leader", "lease: %s", errstr);
        if (rc != 1) {
                if (leader->held)
                        ews_warn("leader", "no longer the leader");
                leader->held = false;
                p->stats.leader = 0;
                return;
        }
        if (!leader->held || token != leader->token) {
                ews_info("leader", "leading as %s (token %lld)", leader->owner,
                         (long long)token);
                leader->resend = true;
        }
        leader->held = true;
        leader->token = token;
        p->stats.leader = 1;
        if (ews_store_min_watermark(p->store, EWS_SOURCE_USAGE, &min_ms, errstr,
                                    sizeof(errstr))) {
                ews_warn("leader", "watermarks: %s", errstr);
                return;
        }
        leader->caught_up = true;
        if (min_ms <= 0)
                return; /* some partition has not begun */
        /* the last day every partition has passed */
        closed_day = min_ms / EWS_DAY_MS - 1;
        if (!leader_kind(p, EWS_COHORT_CAMPAIGN, closed_day) ||
            !leader_kind(p, EWS_COHORT_ACCOUNT, closed_day))
                leader->caught_up = false;
}

void pipeline_leader_release(struct ews_pipeline *p)
{
        if (!p->leader.held)
                return;
        ews_store_lease_release(p->store, p->leader.owner);
        p->leader.held = false;
}
