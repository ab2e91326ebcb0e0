#include "rules/rules_int.h"
#include "score/score.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void rules_alert_value(struct ews_alert *alert, const char *name, double value)
{
        if (alert->value_cnt < EWS_ALERT_VALUES_MAX) {
                snprintf(alert->values[alert->value_cnt].name,
                         sizeof(alert->values[0].name), "%s", name);
                alert->values[alert->value_cnt].value = value;
                alert->value_cnt++;
        }
}

void rules_alert_init(struct ews_alert *alert, enum ews_rule rule,
                      enum ews_alert_status status, enum ews_severity severity,
                      enum ews_subject subject_type, const char *subject_id,
                      int64_t start_ms, int64_t event_ms, int64_t now_ms)
{
        memset(alert, 0, sizeof(*alert));
        alert->rule = rule;
        alert->status = status;
        alert->seq = status == EWS_ALERT_FIRING ? 1 : 2;
        alert->severity = severity;
        alert->subject_type = subject_type;
        snprintf(alert->subject_id, sizeof(alert->subject_id), "%s",
                 subject_id);
        snprintf(alert->episode_id, sizeof(alert->episode_id), "%s:%s:%lld",
                 ews_rule_name(rule), subject_id, (long long)start_ms);
        snprintf(alert->alert_id, sizeof(alert->alert_id), "%s:%d",
                 alert->episode_id, alert->seq);
        alert->event_time_ms = event_ms;
        alert->emitted_at_ms = now_ms;
}

void rules_reason(struct ews_alert *alert, const char *fmt, ...)
{
        size_t len, start;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(alert->reason, sizeof(alert->reason), fmt, ap);
        va_end(ap);
        /* A cut may fall inside a name's multi-byte character: drop the
         * partial character, the alert must stay UTF-8. */
        len = strlen(alert->reason);
        start = len;
        while (start > 0 &&
               ((unsigned char)alert->reason[start - 1] & 0xc0) == 0x80)
                start--;
        if (start > 0 && (unsigned char)alert->reason[start - 1] >= 0xc0) {
                unsigned char lead = (unsigned char)alert->reason[start - 1];
                size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

                if (len - (start - 1) < need)
                        alert->reason[start - 1] = '\0';
        }
}

void rules_format_time(char *buf, size_t size, int64_t ms)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%MZ", &tm);
}

static double rules_e(const struct ews_rules_conf *conf,
                      const struct ews_user *user, int64_t t_ms)
{
        return ews_score_value_at(user->engagement, user->engagement_ref_ms,
                                  t_ms, conf->half_life_ms);
}

/* The first time E, left to decay, is strictly below level. */
static int64_t rules_e_below(const struct ews_rules_conf *conf,
                             const struct ews_user *user, double level)
{
        double e = user->engagement;

        if (level <= 0)
                return 0;
        if (e < level)
                return user->engagement_ref_ms;
        return user->engagement_ref_ms +
               (int64_t)ceil(conf->half_life_ms * log2(e / level)) + 1;
}

static bool rules_drop_armed(const struct ews_rules_conf *conf,
                             const struct ews_user *user)
{
        return conf->drop_share > 0 && user->rule_peak >= conf->drop_min_peak;
}

/* Came back within the dwell: resolvable when the dwell ends, if E holds. */
static bool rules_resolvable_at_dwell(const struct ews_rules_conf *conf,
                                      const struct ews_user *user, int64_t *at)
{
        int64_t t = user->disengaged_since_ms + conf->dwell_ms;

        *at = t;
        return user->last_activity_ms > user->disengaged_since_ms &&
               user->last_activity_ms < t &&
               rules_e(conf, user, t) >= conf->exit_share * user->rule_peak;
}

static void rules_min(int64_t *best, int64_t t)
{
        if (t > 0 && (!*best || t < *best))
                *best = t;
}

int64_t ews_rules_user_deadline(const struct ews_rules_conf *conf,
                                const struct ews_user *user)
{
        int64_t best = 0, t;

        if (user->campaign_id[0] && user->trial_started_ms && !user->matured_ms)
                rules_min(&best, user->trial_started_ms + conf->maturity_ms);
        if (ews_stage_in_trial(user->stage)) {
                if (user->disengaged_since_ms) {
                        if (rules_resolvable_at_dwell(conf, user, &t))
                                rules_min(&best, t);
                } else if (user->last_activity_ms) {
                        t = user->last_activity_ms + conf->inactivity_ms;
                        if (rules_drop_armed(conf, user)) {
                                int64_t drop = rules_e_below(
                                        conf, user,
                                        conf->drop_share * user->rule_peak);
                                if (drop < t)
                                        t = drop;
                        }
                        if (user->disengaged_resolved_ms &&
                            t < user->disengaged_resolved_ms +
                                            conf->cooldown_ms)
                                t = user->disengaged_resolved_ms +
                                    conf->cooldown_ms;
                        rules_min(&best, t);
                }
        }
        if (user->sales_ready_since_ms) {
                t = rules_e_below(conf, user, conf->sales_ready_exit);
                if (t < user->sales_ready_since_ms + conf->dwell_ms)
                        t = user->sales_ready_since_ms + conf->dwell_ms;
                rules_min(&best, t);
        }
        return best;
}

/* The event types that made most of E, as of t_ms. */
static void rules_contributors(const struct ews_rules_conf *conf,
                               const struct ews_user *user, int64_t t_ms,
                               struct ews_alert *alert)
{
        /* components share E's reference time and decay with it */
        double factor = ews_score_value_at(1.0, user->engagement_ref_ms, t_ms,
                                           conf->half_life_ms);
        bool used[EWS_REASONS_MAX] = {false};
        int i, n, best;

        for (n = 0; n < EWS_CONTRIB_MAX; n++) {
                best = -1;
                for (i = 0; i < user->reason_cnt; i++)
                        if (!used[i] && user->reasons[i].value > 0 &&
                            (best < 0 || user->reasons[i].value >
                                                 user->reasons[best].value))
                                best = i;
                if (best < 0)
                        break;
                used[best] = true;
                memcpy(alert->contributors[n].event_type,
                       user->reasons[best].name, EWS_NAME_MAX);
                alert->contributors[n].score =
                        user->reasons[best].value * factor;
        }
        alert->contributor_cnt = n;
}

static struct ews_alert *
rules_user_alert(const struct ews_rules_conf *conf, const struct ews_user *user,
                 enum ews_rule rule, enum ews_alert_status status,
                 int64_t start_ms, int64_t event_ms, int64_t now_ms,
                 struct ews_alert *alerts, int *cnt, int max)
{
        struct ews_alert *alert;
        enum ews_severity severity = EWS_SEV_INFO;

        if (*cnt >= max)
                return NULL;
        alert = &alerts[(*cnt)++];
        if (rule == EWS_RULE_USER_DISENGAGED && status == EWS_ALERT_FIRING)
                severity = EWS_SEV_WARNING;
        rules_alert_init(alert, rule, status, severity, EWS_SUBJECT_USER,
                         user->user_id, start_ms, event_ms, now_ms);
        memcpy(alert->account_id, user->account_id, sizeof(alert->account_id));
        memcpy(alert->campaign_id, user->campaign_id,
               sizeof(alert->campaign_id));
        alert->last_activity_ms = user->last_activity_ms;
        rules_contributors(conf, user, event_ms, alert);
        return alert;
}

static void rules_disengaged_fire(const struct ews_rules_conf *conf,
                                  struct ews_user *user, int64_t t,
                                  bool dropped, int64_t now_ms,
                                  struct ews_alert *alerts, int *cnt, int max)
{
        double e = rules_e(conf, user, t);
        struct ews_alert *alert;
        char since[32];

        user->disengaged_since_ms = t;
        alert = rules_user_alert(conf, user, EWS_RULE_USER_DISENGAGED,
                                 EWS_ALERT_FIRING, t, t, now_ms, alerts, cnt,
                                 max);
        if (!alert)
                return;
        rules_alert_value(alert, "engagement", e);
        rules_alert_value(alert, "peak", user->rule_peak);
        rules_alert_value(alert, "drop_level",
                          conf->drop_share * user->rule_peak);
        rules_alert_value(alert, "exit_level",
                          conf->exit_share * user->rule_peak);
        rules_alert_value(alert, "inactive_seconds",
                          (double)(t - user->last_activity_ms) / 1000.0);
        rules_alert_value(alert, "threshold_seconds",
                          (double)conf->inactivity_ms / 1000.0);
        rules_alert_value(alert, "score_drop", dropped ? 1 : 0);
        rules_format_time(since, sizeof(since), user->last_activity_ms);
        if (dropped)
                rules_reason(
                        alert,
                        "trial user's engagement fell to %.1f, below %.0f%% "
                        "of its peak %.1f (last active %s)",
                        e, conf->drop_share * 100, user->rule_peak, since);
        else
                rules_reason(alert, "trial user inactive for %lldh since %s",
                             (long long)(conf->inactivity_ms / 3600000), since);
}

static void rules_disengaged_resolve(const struct ews_rules_conf *conf,
                                     struct ews_user *user, int64_t t,
                                     int64_t now_ms, struct ews_alert *alerts,
                                     int *cnt, int max)
{
        int64_t start = user->disengaged_since_ms;
        double e = rules_e(conf, user, t);
        struct ews_alert *alert;

        user->disengaged_since_ms = 0;
        user->disengaged_resolved_ms = t;
        alert = rules_user_alert(conf, user, EWS_RULE_USER_DISENGAGED,
                                 EWS_ALERT_RESOLVED, start, t, now_ms, alerts,
                                 cnt, max);
        if (alert) {
                rules_alert_value(alert, "engagement", e);
                rules_alert_value(alert, "exit_level",
                                  conf->exit_share * user->rule_peak);
                rules_alert_value(alert, "episode_seconds",
                                  (double)(t - start) / 1000.0);
                rules_reason(alert,
                             "trial user active again (%s, engagement %.1f)",
                             ews_stage_name(user->stage), e);
        }
        /* The peak that counts from here is the one the user rebuilds. */
        user->rule_peak = e;
}

static void rules_sales_ready(const struct ews_rules_conf *conf,
                              struct ews_user *user,
                              enum ews_alert_status status, int64_t t,
                              int64_t now_ms, struct ews_alert *alerts,
                              int *cnt, int max)
{
        int64_t start =
                status == EWS_ALERT_FIRING ? t : user->sales_ready_since_ms;
        double e = rules_e(conf, user, t);
        struct ews_alert *alert;

        if (status == EWS_ALERT_FIRING) {
                user->sales_ready_since_ms = t;
        } else {
                user->sales_ready_since_ms = 0;
                user->sales_ready_resolved_ms = t;
        }
        alert = rules_user_alert(conf, user, EWS_RULE_SALES_READY, status,
                                 start, t, now_ms, alerts, cnt, max);
        if (!alert)
                return;
        rules_alert_value(alert, "engagement", e);
        rules_alert_value(alert, "threshold", conf->sales_ready_points);
        rules_alert_value(alert, "exit_threshold", conf->sales_ready_exit);
        rules_alert_value(alert, "fit", user->fit);
        if (status == EWS_ALERT_FIRING) {
                rules_reason(
                        alert,
                        "engagement %.1f reached the sales-ready threshold "
                        "%.0f (fit %.0f, %s)",
                        e, conf->sales_ready_points, user->fit,
                        ews_stage_name(user->stage));
        } else {
                rules_alert_value(alert, "episode_seconds",
                                  (double)(t - start) / 1000.0);
                rules_reason(alert,
                             "engagement fell to %.1f, below the sales-ready "
                             "exit %.0f",
                             e, conf->sales_ready_exit);
        }
}

/* Everything due at t, in a fixed order: maturity, disengagement, the
 * sales-ready exit. */
static void rules_user_at(const struct ews_rules_conf *conf,
                          struct ews_user *user, int64_t t, int64_t now_ms,
                          struct ews_alert *alerts, int *cnt, int max,
                          struct ews_rules_cohort *cohort)
{
        int64_t at;

        if (user->campaign_id[0] && user->trial_started_ms &&
            !user->matured_ms &&
            user->trial_started_ms + conf->maturity_ms <= t) {
                user->matured_ms = t;
                cohort->matured = true;
                cohort->matured_ms = user->trial_started_ms + conf->maturity_ms;
                cohort->activated =
                        user->activated_ms &&
                        user->activated_ms <=
                                user->trial_started_ms + conf->maturity_ms;
        }
        if (ews_stage_in_trial(user->stage)) {
                if (user->disengaged_since_ms) {
                        if (rules_resolvable_at_dwell(conf, user, &at) &&
                            at <= t)
                                rules_disengaged_resolve(conf, user, at, now_ms,
                                                         alerts, cnt, max);
                } else if (user->last_activity_ms &&
                           (!user->disengaged_resolved_ms ||
                            t >= user->disengaged_resolved_ms +
                                            conf->cooldown_ms)) {
                        bool dropped =
                                rules_drop_armed(conf, user) &&
                                rules_e(conf, user, t) <
                                        conf->drop_share * user->rule_peak;

                        if (dropped ||
                            user->last_activity_ms + conf->inactivity_ms <= t)
                                rules_disengaged_fire(conf, user, t, dropped,
                                                      now_ms, alerts, cnt, max);
                }
        }
        if (user->sales_ready_since_ms &&
            t >= user->sales_ready_since_ms + conf->dwell_ms &&
            rules_e(conf, user, t) < conf->sales_ready_exit)
                rules_sales_ready(conf, user, EWS_ALERT_RESOLVED, t, now_ms,
                                  alerts, cnt, max);
}

int ews_rules_user_timer(const struct ews_rules_conf *conf,
                         struct ews_user *user, int64_t watermark_ms,
                         int64_t now_ms, struct ews_alert *alerts, int max,
                         struct ews_rules_cohort *cohort)
{
        int64_t t, last = 0;
        int cnt = 0, guard;

        memset(cohort, 0, sizeof(*cohort));
        /* Each round moves the deadline on; the guard only bounds a
         * deadline that rounding kept in place. */
        for (guard = 0; guard < 8; guard++) {
                t = ews_rules_user_deadline(conf, user);
                if (!t || t > watermark_ms || t == last)
                        break;
                rules_user_at(conf, user, t, now_ms, alerts, &cnt, max, cohort);
                last = t;
        }
        return cnt;
}

int ews_rules_user_event(const struct ews_rules_conf *conf,
                         struct ews_user *user, bool activity, int64_t event_ms,
                         int64_t now_ms, struct ews_alert *alerts, int max)
{
        double e = rules_e(conf, user, event_ms);
        int64_t start = user->disengaged_since_ms;
        int cnt = 0;

        if (start) {
                /* A customer or a lost trial ends the episode: it is no
                 * longer a trial user to win back. */
                if (!ews_stage_in_trial(user->stage))
                        rules_disengaged_resolve(
                                conf, user, event_ms > start ? event_ms : start,
                                now_ms, alerts, &cnt, max);
                else if (activity && event_ms >= start + conf->dwell_ms &&
                         e >= conf->exit_share * user->rule_peak)
                        rules_disengaged_resolve(conf, user, event_ms, now_ms,
                                                 alerts, &cnt, max);
        } else if (ews_stage_in_trial(user->stage) && e > user->rule_peak) {
                user->rule_peak = e;
        }
        if (!user->sales_ready_since_ms && ews_stage_in_trial(user->stage) &&
            e >= conf->sales_ready_points &&
            (!user->sales_ready_resolved_ms ||
             event_ms >= user->sales_ready_resolved_ms + conf->cooldown_ms))
                rules_sales_ready(conf, user, EWS_ALERT_FIRING, event_ms,
                                  now_ms, alerts, &cnt, max);
        return cnt;
}
