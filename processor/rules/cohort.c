/* The leader's rules: campaigns and accounts, decided day by closed day. */
#include "rules/rules_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

double ews_rules_wilson(int64_t k, int64_t n, double z, int sign)
{
        double p, z2, centre, spread;

        if (n <= 0)
                return sign > 0 ? 1.0 : 0.0;
        p = (double)k / (double)n;
        z2 = z * z;
        centre = p + z2 / (2.0 * (double)n);
        spread = z * sqrt(p * (1.0 - p) / (double)n +
                          z2 / (4.0 * (double)n * (double)n));
        return (centre + sign * spread) / (1.0 + z2 / (double)n);
}

static void campaign_alert(const struct ews_rules_conf *conf,
                           const struct ews_campaign_rule_state *state,
                           const struct ews_campaign_rule_info *info,
                           enum ews_alert_status status, int64_t start_ms,
                           int64_t t, double target, double upper,
                           int64_t now_ms, struct ews_alert *alert)
{
        double rate = (double)state->k / (double)state->n;
        enum ews_severity severity = status == EWS_ALERT_RESOLVED ? EWS_SEV_INFO
                                     : upper < target / 2 ? EWS_SEV_CRITICAL
                                                          : EWS_SEV_WARNING;
        char cost[96] = "";

        rules_alert_init(alert, EWS_RULE_CAMPAIGN_UNDERPERFORMING, status,
                         severity, EWS_SUBJECT_CAMPAIGN, info->campaign_id,
                         start_ms, t, now_ms);
        snprintf(alert->campaign_id, sizeof(alert->campaign_id), "%s",
                 info->campaign_id);
        rules_alert_value(alert, "mature_signups", (double)state->n);
        rules_alert_value(alert, "activated", (double)state->k);
        rules_alert_value(alert, "activation_rate", rate);
        rules_alert_value(alert, "upper_bound", upper);
        rules_alert_value(alert, "target", target);
        rules_alert_value(alert, "signups", (double)info->signups);
        if (info->spend > 0) {
                rules_alert_value(alert, "spend", info->spend);
                if (state->k > 0) {
                        rules_alert_value(alert, "cost_per_activated",
                                          info->spend / (double)state->k);
                        snprintf(cost, sizeof(cost),
                                 "; %.0f spent, %.0f per activated trial",
                                 info->spend, info->spend / (double)state->k);
                } else {
                        snprintf(cost, sizeof(cost),
                                 "; %.0f spent, no activated trial",
                                 info->spend);
                }
        }
        rules_reason(
                alert,
                "campaign %s%s%s%s: %lld of %lld mature trials activated "
                "(%.1f%%, at most %.1f%% at %.0f%% confidence) %s a target "
                "of %.0f%%%s",
                info->campaign_id, info->name && info->name[0] ? " (" : "",
                info->name ? info->name : "",
                info->name && info->name[0] ? ")" : "", (long long)state->k,
                (long long)state->n, rate * 100, upper * 100,
                100 * ews_rules_campaign_confidence(conf),
                status == EWS_ALERT_FIRING ? "against" : "back above",
                target * 100, cost);
}

int ews_rules_campaign_days(const struct ews_rules_conf *conf,
                            struct ews_campaign_rule_state *state,
                            const struct ews_campaign_rule_info *info,
                            const struct ews_cohort_day *days, int cnt,
                            int64_t now_ms, struct ews_alert *alerts, int max)
{
        double target = info->has_target ? info->target : conf->default_target;
        int i, out = 0;

        for (i = 0; i < cnt; i++) {
                int64_t t = (days[i].day + 1) * EWS_DAY_MS;
                double upper;

                state->n += days[i].n;
                state->k += days[i].k;
                if (state->n < conf->min_sample || state->n <= 0)
                        continue;
                upper = ews_rules_campaign_upper(conf, state->k, state->n);
                if (!state->open_ms) {
                        if (upper >= target ||
                            (state->resolved_ms &&
                             t < state->resolved_ms + conf->cooldown_ms))
                                continue;
                        state->open_ms = t;
                        if (out < max)
                                campaign_alert(conf, state, info,
                                               EWS_ALERT_FIRING, t, t, target,
                                               upper, now_ms, &alerts[out++]);
                } else if (upper > target + conf->resolve_margin &&
                           t >= state->open_ms + conf->dwell_ms) {
                        if (out < max)
                                campaign_alert(conf, state, info,
                                               EWS_ALERT_RESOLVED,
                                               state->open_ms, t, target, upper,
                                               now_ms, &alerts[out++]);
                        state->open_ms = 0;
                        state->resolved_ms = t;
                }
        }
        return out;
}

static int64_t account_active(const struct ews_cohort_day *history, int cnt,
                              int64_t day)
{
        int lo = 0, hi = cnt - 1, mid;

        while (lo <= hi) {
                mid = (lo + hi) / 2;
                if (history[mid].day == day)
                        return history[mid].n;
                if (history[mid].day < day)
                        lo = mid + 1;
                else
                        hi = mid - 1;
        }
        return 0;
}

static void account_alert(const struct ews_rules_conf *conf,
                          const struct ews_account_rule_state *state,
                          const char *account_id, enum ews_alert_status status,
                          int64_t t, int64_t active, double level,
                          int64_t now_ms, struct ews_alert *alert)
{
        rules_alert_init(alert, EWS_RULE_ACCOUNT_AT_RISK, status,
                         status == EWS_ALERT_RESOLVED ? EWS_SEV_INFO
                         : active == 0                ? EWS_SEV_CRITICAL
                                                      : EWS_SEV_WARNING,
                         EWS_SUBJECT_ACCOUNT, account_id,
                         status == EWS_ALERT_FIRING ? t : state->open_ms, t,
                         now_ms);
        snprintf(alert->account_id, sizeof(alert->account_id), "%s",
                 account_id);
        rules_alert_value(alert, "active_users", (double)active);
        rules_alert_value(alert, "trailing_level", level);
        rules_alert_value(alert, "baseline", state->baseline);
        rules_alert_value(alert, "share", conf->at_risk_share);
        rules_alert_value(alert, "window_days",
                          (double)conf->active_window_ms / EWS_DAY_MS);
        rules_reason(alert,
                     status == EWS_ALERT_FIRING
                             ? "account %s: %lld users active in the last %.0f "
                               "days, below %.0f%% of its trailing level %.1f"
                             : "account %s: %lld users active in the last %.0f "
                               "days, back to %.0f%% of its level %.1f",
                     account_id, (long long)active,
                     (double)conf->active_window_ms / EWS_DAY_MS,
                     100 * (status == EWS_ALERT_FIRING
                                    ? conf->at_risk_share
                                    : conf->at_risk_resolve_share),
                     status == EWS_ALERT_FIRING ? level : state->baseline);
}

int ews_rules_account_days(const struct ews_rules_conf *conf,
                           struct ews_account_rule_state *state,
                           const char *account_id,
                           const struct ews_cohort_day *history, int cnt,
                           int64_t upto_day, int64_t now_ms,
                           struct ews_alert *alerts, int max)
{
        int64_t day = state->last_day >= 0 ? state->last_day + 1
                      : cnt > 0            ? history[0].day
                                           : upto_day + 1;
        int64_t trailing = conf->trailing_days > 0 ? conf->trailing_days : 1;
        int out = 0;

        for (; day <= upto_day; day++) {
                int64_t active = account_active(history, cnt, day);
                int64_t t = (day + 1) * EWS_DAY_MS, d;
                double level = 0;

                state->last_day = day;
                if (state->first_day < 0) {
                        if (!active)
                                continue;
                        state->first_day = day;
                }
                for (d = day - trailing; d < day; d++)
                        level += (double)account_active(history, cnt, d);
                level /= (double)trailing;
                if (!state->open_ms) {
                        if (day - state->first_day < trailing ||
                            level < conf->at_risk_min_level ||
                            (double)active >= conf->at_risk_share * level ||
                            (state->resolved_ms &&
                             t < state->resolved_ms + conf->cooldown_ms))
                                continue;
                        state->open_ms = t;
                        state->baseline = level;
                        if (out < max)
                                account_alert(conf, state, account_id,
                                              EWS_ALERT_FIRING, t, active,
                                              level, now_ms, &alerts[out++]);
                } else if ((double)active >= conf->at_risk_resolve_share *
                                                     state->baseline &&
                           t >= state->open_ms + conf->dwell_ms) {
                        if (out < max)
                                account_alert(conf, state, account_id,
                                              EWS_ALERT_RESOLVED, t, active,
                                              level, now_ms, &alerts[out++]);
                        state->open_ms = 0;
                        state->resolved_ms = t;
                }
        }
        return out;
}
