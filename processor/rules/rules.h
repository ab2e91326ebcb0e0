/*
 * Stage 4, rules: decides alerts and timers from the state the score stage
 * left.
 *
 * Pure functions; the clock is passed in: event time decides (a deadline,
 * an event's time, a closed cohort day), now_ms is the wall clock and only
 * stamped on alerts as emitted_at. What the rules decide is committed to
 * the store together with the scores, so a decision and its state never
 * part.
 *
 * Episodes go FIRING -> RESOLVED. Their ids are functions of rule, subject
 * and the episode's start in event time, so a replay names them the same.
 * A FIRING episode stays open for at least dwell_ms; a subject whose
 * episode resolved does not fire the same rule again within cooldown_ms.
 */
#ifndef EWS_FILTER_RULES_H
#define EWS_FILTER_RULES_H

#include "util/ews.h"

#define EWS_DAY_MS 86400000LL

/* How CAMPAIGN_UNDERPERFORMING decides that a rate is below its target. */
enum ews_campaign_decision {
        EWS_DECISION_WILSON, /* one-sided Wilson bound at confidence_z, daily */
        EWS_DECISION_ANYTIME /* anytime-valid bound at alpha (sequential.h) */
};

struct ews_rules_conf {
        double half_life_ms; /* the scoring model's */
        int64_t dwell_ms;
        int64_t cooldown_ms;
        /* USER_DISENGAGED: inactivity, or E below drop_share of the peak
         * since the last episode (when that peak reached drop_min_peak);
         * resolved by activity with E back above exit_share of it. */
        int64_t inactivity_ms;
        double drop_share;
        double drop_min_peak;
        double exit_share;
        /* SALES_READY: E reached sales_ready_points; re-armed below
         * sales_ready_exit. */
        double sales_ready_points;
        double sales_ready_exit;
        /* CAMPAIGN_UNDERPERFORMING: a signup matures maturity_ms after its
         * trial started; activated if it got there by then. */
        int64_t maturity_ms;
        int min_sample;
        enum ews_campaign_decision decision;
        double confidence_z; /* wilson, one-sided: 1.645 for 95% */
        double alpha; /* anytime: P(ever flagged | rate >= target) at most */
        double default_target;
        double resolve_margin;
        /* ACCOUNT_AT_RISK: users active within active_window_ms, against
         * the mean of the trailing_days days before. */
        int64_t active_window_ms;
        int trailing_days;
        double at_risk_share;
        double at_risk_resolve_share;
        double at_risk_min_level;
};

/* What a user's timer did besides alerting: the signup matured into its
 * campaign's cohort. */
struct ews_rules_cohort {
        bool matured;
        bool activated;
};

/* The next event time at which the user's rules need a look without an
 * event (inactivity, score drop, dwell, sales-ready exit, maturity); 0 when
 * none. */
int64_t ews_rules_user_deadline(const struct ews_rules_conf *conf,
                                const struct ews_user *user);

/* Runs the user's rules due by watermark_ms, earliest first. Returns the
 * alerts written to alerts (at most max, 3 suffice); sets cohort when the
 * signup matured. */
int ews_rules_user_timer(const struct ews_rules_conf *conf,
                         struct ews_user *user, int64_t watermark_ms,
                         int64_t now_ms, struct ews_alert *alerts, int max,
                         struct ews_rules_cohort *cohort);

/* Called after an event was applied to user. Returns the alerts written
 * (at most max; 2 suffice). */
int ews_rules_user_event(const struct ews_rules_conf *conf,
                         struct ews_user *user, bool activity, int64_t event_ms,
                         int64_t now_ms, struct ews_alert *alerts, int max);

/* One closed day of a cohort: the signups that matured that day (n) and
 * the activated ones among them (k); for an account, n is its users active
 * at the day's end. */
struct ews_cohort_day {
        int64_t day; /* days since the epoch, UTC */
        int64_t n, k;
};

/* A campaign's decided state, kept by the leader. */
struct ews_campaign_rule_state {
        int64_t n, k;
        int64_t open_ms; /* open episode's start, 0: none */
        int64_t resolved_ms;
};

struct ews_campaign_rule_info {
        const char *campaign_id;
        const char *name;
        bool has_target;
        double target;
        double spend;
        int64_t signups;
};

/* One-sided upper (sign +1) or lower (-1) Wilson bound of k/n. */
double ews_rules_wilson(int64_t k, int64_t n, double z, int sign);

/* The upper bound of the activation rate k / n that the campaign rule
 * compares with the target, as conf->decision says: Wilson's at
 * confidence_z, or the anytime bound at alpha (sequential.h). */
double ews_rules_campaign_upper(const struct ews_rules_conf *conf, int64_t k,
                                int64_t n);
/* The confidence that bound is stated at (0.95 for z 1.645, alpha 0.05). */
double ews_rules_campaign_confidence(const struct ews_rules_conf *conf);

/* Folds the closed days (ascending) into state, deciding after each.
 * Returns the alerts written (at most max). */
int ews_rules_campaign_days(const struct ews_rules_conf *conf,
                            struct ews_campaign_rule_state *state,
                            const struct ews_campaign_rule_info *info,
                            const struct ews_cohort_day *days, int cnt,
                            int64_t now_ms, struct ews_alert *alerts, int max);

struct ews_account_rule_state {
        int64_t first_day; /* first day with active users, -1: none yet */
        int64_t last_day;  /* last day decided, -1: none yet */
        int64_t open_ms;
        int64_t resolved_ms;
        double baseline; /* trailing level when the episode fired */
};

/* Decides days last_day + 1 .. upto_day from history: the account's
 * active-user counts by day (ascending, missing days are 0), covering at
 * least trailing_days before last_day + 1. Returns the alerts written. */
int ews_rules_account_days(const struct ews_rules_conf *conf,
                           struct ews_account_rule_state *state,
                           const char *account_id,
                           const struct ews_cohort_day *history, int cnt,
                           int64_t upto_day, int64_t now_ms,
                           struct ews_alert *alerts, int max);

#endif
