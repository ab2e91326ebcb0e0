#include "filter_rules.h"
#include "filter_score.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ews_rules_user_deadline(const struct ews_rules_conf *conf,
                                const struct ews_user *user)
{
        if (!ews_stage_in_trial(user->stage) || !user->last_activity_ms ||
            user->disengaged_since_ms)
                return 0;
        return user->last_activity_ms + conf->inactivity_ms;
}

static void rules_alert_value(struct ews_alert *alert, const char *name,
                              double value)
{
        if (alert->value_cnt < EWS_ALERT_VALUES_MAX) {
                snprintf(alert->values[alert->value_cnt].name,
                         sizeof(alert->values[0].name), "%s", name);
                alert->values[alert->value_cnt].value = value;
                alert->value_cnt++;
        }
}

/* Ids are functions of rule, subject and episode start only, so a replay
 * of the same input names its alerts the same way. */
static void rules_alert_user(struct ews_alert *alert,
                             const struct ews_user *user,
                             enum ews_alert_status status, int64_t start_ms,
                             int64_t event_ms, int64_t now_ms)
{
        memset(alert, 0, sizeof(*alert));
        alert->rule = EWS_RULE_USER_DISENGAGED;
        alert->status = status;
        alert->seq = status == EWS_ALERT_FIRING ? 1 : 2;
        alert->severity =
                status == EWS_ALERT_FIRING ? EWS_SEV_WARNING : EWS_SEV_INFO;
        alert->subject_type = EWS_SUBJECT_USER;
        snprintf(alert->episode_id, sizeof(alert->episode_id), "%s:%s:%lld",
                 ews_rule_name(alert->rule), user->user_id,
                 (long long)start_ms);
        snprintf(alert->alert_id, sizeof(alert->alert_id), "%s:%d",
                 alert->episode_id, alert->seq);
        memcpy(alert->subject_id, user->user_id, sizeof(alert->subject_id));
        memcpy(alert->account_id, user->account_id, sizeof(alert->account_id));
        memcpy(alert->campaign_id, user->campaign_id,
               sizeof(alert->campaign_id));
        alert->event_time_ms = event_ms;
        alert->emitted_at_ms = now_ms;
        alert->last_activity_ms = user->last_activity_ms;
}

static void rules_format_time(char *buf, size_t size, int64_t ms)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%MZ", &tm);
}

bool ews_rules_user_timer(const struct ews_rules_conf *conf,
                          struct ews_user *user, int64_t watermark_ms,
                          int64_t now_ms, struct ews_alert *alert)
{
        int64_t deadline = ews_rules_user_deadline(conf, user);
        char since[32];

        if (!deadline || deadline > watermark_ms)
                return false;

        user->disengaged_since_ms = deadline;
        rules_alert_user(alert, user, EWS_ALERT_FIRING, deadline, deadline,
                         now_ms);
        rules_alert_value(alert, "engagement",
                          ews_score_value_at(user->engagement,
                                             user->engagement_ref_ms, deadline,
                                             conf->half_life_ms));
        rules_alert_value(alert, "inactive_seconds",
                          (double)(deadline - user->last_activity_ms) / 1000.0);
        rules_alert_value(alert, "threshold_seconds",
                          (double)conf->inactivity_ms / 1000.0);
        rules_format_time(since, sizeof(since), user->last_activity_ms);
        snprintf(alert->reason, sizeof(alert->reason),
                 "trial user inactive for %lldh since %s",
                 (long long)(conf->inactivity_ms / 3600000), since);
        return true;
}

bool ews_rules_user_event(const struct ews_rules_conf *conf,
                          struct ews_user *user, bool activity,
                          int64_t event_ms, int64_t now_ms,
                          struct ews_alert *alert)
{
        int64_t start_ms = user->disengaged_since_ms;
        int64_t quiet_ms;

        /* A customer or a lost trial ends the episode as well: it is no
         * longer a trial user to win back. */
        if (!start_ms || event_ms < start_ms ||
            (!activity && ews_stage_in_trial(user->stage)))
                return false;

        user->disengaged_since_ms = 0;
        quiet_ms = event_ms - start_ms;
        rules_alert_user(alert, user, EWS_ALERT_RESOLVED, start_ms, event_ms,
                         now_ms);
        rules_alert_value(alert, "engagement",
                          ews_score_value_at(user->engagement,
                                             user->engagement_ref_ms, event_ms,
                                             conf->half_life_ms));
        rules_alert_value(alert, "episode_seconds", (double)quiet_ms / 1000.0);
        snprintf(alert->reason, sizeof(alert->reason),
                 "trial user active again (%s)", ews_stage_name(user->stage));
        return true;
}
