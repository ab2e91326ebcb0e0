/* Rules with a pretended clock: watermark and wall clock are constants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

#define T0   1767225600000LL /* a day's start */
#define HOUR 3600000LL
#define DAY  (24 * HOUR)
#define NOW  1795000000000LL /* the wall clock, only stamped */

static const struct ews_rules_conf conf = {
        .half_life_ms = 7.0 * DAY,
        .dwell_ms = HOUR,
        .cooldown_ms = 6 * HOUR,
        .inactivity_ms = 72 * HOUR,
        .drop_share = 0.4,
        .drop_min_peak = 30,
        .exit_share = 0.5,
        .sales_ready_points = 100,
        .sales_ready_exit = 70,
        .maturity_ms = 3 * DAY,
        .min_sample = 20,
        .confidence_z = 1.645,
        .default_target = 0.3,
        .resolve_margin = 0.05,
        .active_window_ms = 7 * DAY,
        .trailing_days = 14,
        .at_risk_share = 0.5,
        .at_risk_resolve_share = 0.8,
        .at_risk_min_level = 3,
};

static struct ews_user user_make(enum ews_stage stage, int64_t last, double e)
{
        struct ews_user u;

        memset(&u, 0, sizeof(u));
        strcpy(u.user_id, "u-7");
        strcpy(u.account_id, "a-1");
        u.stage = stage;
        u.last_activity_ms = last;
        u.engagement = e;
        u.engagement_ref_ms = last;
        u.rule_peak = e;
        return u;
}

static void test_deadline_table(void **state)
{
        static const struct {
                enum ews_stage stage;
                int64_t last;
                double e;
                int64_t disengaged;
                int64_t want;
        } cases[] = {
                {EWS_STAGE_TRIAL, T0, 8, 0, T0 + 72 * HOUR},
                {EWS_STAGE_TRIAL, 0, 8, 0, 0},       /* never active */
                {EWS_STAGE_NONE, T0, 8, 0, 0},       /* no trial yet */
                {EWS_STAGE_CUSTOMER, T0, 8, 0, 0},   /* converted */
                {EWS_STAGE_LOST, T0, 8, 0, 0},       /* trial ended */
                {EWS_STAGE_TRIAL, T0, 8, T0 + 1, 0}, /* episode open */
                /* E 40 of peak 40: below 16 after 7 log2(2.5) days, later
                 * than the 72h of inactivity */
                {EWS_STAGE_TRIAL, T0, 40, 0, T0 + 72 * HOUR},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_user u =
                        user_make(cases[i].stage, cases[i].last, cases[i].e);

                u.disengaged_since_ms = cases[i].disengaged;
                assert_true(ews_rules_user_deadline(&conf, &u) ==
                            cases[i].want);
        }
}

static void test_inactivity_fires_once_at_deadline(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0, 8);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;

        (void)state;
        assert_int_equal(ews_rules_user_timer(&conf, &u, T0 + 72 * HOUR - 1,
                                              NOW, alerts, 4, &cohort),
                         0);
        assert_int_equal(ews_rules_user_timer(&conf, &u, T0 + 80 * HOUR, NOW,
                                              alerts, 4, &cohort),
                         1);
        assert_int_equal(alerts[0].rule, EWS_RULE_USER_DISENGAGED);
        assert_int_equal(alerts[0].status, EWS_ALERT_FIRING);
        /* event time is the deadline, not the watermark that passed it */
        assert_true(alerts[0].event_time_ms == T0 + 72 * HOUR);
        assert_string_equal(alerts[0].alert_id,
                            "USER_DISENGAGED:u-7:1767484800000:1");
        assert_true(u.disengaged_since_ms == T0 + 72 * HOUR);
        assert_int_equal(ews_rules_user_timer(&conf, &u, T0 + 200 * HOUR, NOW,
                                              alerts, 4, &cohort),
                         0);
}

/* A user who keeps logging in but whose E stopped rising. */
static void test_score_drop_fires_before_inactivity(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_ACTIVATED, T0, 100);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;
        int64_t drop, t;

        (void)state;
        /* a login every day keeps inactivity away */
        for (t = T0 + DAY; t < T0 + 20 * DAY; t += DAY) {
                u.engagement =
                        u.engagement * exp2(-(double)DAY / conf.half_life_ms);
                u.engagement_ref_ms = t;
                u.last_activity_ms = t;
                ews_rules_user_event(&conf, &u, true, t, NOW, alerts, 4);
                drop = ews_rules_user_deadline(&conf, &u);
                if (drop <= t + DAY)
                        break;
        }
        assert_true(drop < u.last_activity_ms + 72 * HOUR);
        assert_int_equal(
                ews_rules_user_timer(&conf, &u, drop, NOW, alerts, 4, &cohort),
                1);
        assert_true(alerts[0].values[6].value == 1.0); /* score_drop */
        assert_true(strstr(alerts[0].reason, "below 40% of its peak 100.0"));
}

static void test_resolve_needs_activity_exit_level_and_dwell(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0, 50);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;
        int64_t start = T0 + 72 * HOUR;

        (void)state;
        assert_int_equal(
                ews_rules_user_timer(&conf, &u, start, NOW, alerts, 4, &cohort),
                1);
        /* back within the dwell: resolved when the dwell ends */
        u.last_activity_ms = start + 10 * 60000;
        u.engagement = 60;
        u.engagement_ref_ms = u.last_activity_ms;
        assert_int_equal(ews_rules_user_event(&conf, &u, true,
                                              u.last_activity_ms, NOW, alerts,
                                              4),
                         0);
        assert_true(ews_rules_user_deadline(&conf, &u) == start + HOUR);
        assert_int_equal(ews_rules_user_timer(&conf, &u, start + 2 * HOUR, NOW,
                                              alerts, 4, &cohort),
                         1);
        assert_int_equal(alerts[0].status, EWS_ALERT_RESOLVED);
        assert_int_equal(alerts[0].seq, 2);
        assert_true(alerts[0].event_time_ms == start + HOUR);
        assert_string_equal(alerts[0].episode_id,
                            "USER_DISENGAGED:u-7:1767484800000");
        /* the cooldown keeps a new episode away */
        assert_true(ews_rules_user_deadline(&conf, &u) >=
                    start + HOUR + conf.cooldown_ms);
}

static void test_low_score_activity_does_not_resolve(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0, 50);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;

        (void)state;
        ews_rules_user_timer(&conf, &u, T0 + 80 * HOUR, NOW, alerts, 4,
                             &cohort);
        u.engagement = 20; /* below half of its peak 50 */
        u.engagement_ref_ms = u.last_activity_ms = T0 + 90 * HOUR;
        assert_int_equal(ews_rules_user_event(&conf, &u, true, T0 + 90 * HOUR,
                                              NOW, alerts, 4),
                         0);
        assert_true(u.disengaged_since_ms != 0);
}

static void test_conversion_ends_episode(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0, 8);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;

        (void)state;
        ews_rules_user_timer(&conf, &u, T0 + 72 * HOUR, NOW, alerts, 4,
                             &cohort);
        u.stage = EWS_STAGE_CUSTOMER;
        assert_int_equal(ews_rules_user_event(&conf, &u, false, T0 + 80 * HOUR,
                                              NOW, alerts, 4),
                         1);
        assert_int_equal(alerts[0].status, EWS_ALERT_RESOLVED);
        assert_true(ews_rules_user_deadline(&conf, &u) == 0);
}

static void test_sales_ready_hysteresis(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_SALES_READY, T0, 105);
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;
        int64_t exit_at;

        (void)state;
        assert_int_equal(
                ews_rules_user_event(&conf, &u, true, T0, NOW, alerts, 4), 1);
        assert_int_equal(alerts[0].rule, EWS_RULE_SALES_READY);
        /* no second FIRING while open */
        assert_int_equal(
                ews_rules_user_event(&conf, &u, true, T0, NOW, alerts, 4), 0);
        u.last_activity_ms = 0; /* keeps the inactivity rule out of it */
        /* E falls below 70 after 7 * log2(105 / 70) days */
        exit_at = T0 + (int64_t)ceil(conf.half_life_ms * log2(105.0 / 70)) + 1;
        assert_true(ews_rules_user_deadline(&conf, &u) == exit_at);
        assert_int_equal(ews_rules_user_timer(&conf, &u, exit_at, NOW, alerts,
                                              4, &cohort),
                         1);
        assert_int_equal(alerts[0].rule, EWS_RULE_SALES_READY);
        assert_int_equal(alerts[0].status, EWS_ALERT_RESOLVED);
        assert_true(alerts[0].values[0].value < 70);
}

static void test_maturity_counts_activation_within_window(void **state)
{
        static const struct {
                int64_t activated;
                bool want;
        } cases[] = {{0, false}, {T0 + DAY, true}, {T0 + 3 * DAY, true}};
        struct ews_alert alerts[4];
        struct ews_rules_cohort cohort;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_user u = user_make(EWS_STAGE_TRIAL, T0, 8);

                strcpy(u.campaign_id, "c-2");
                u.trial_started_ms = T0;
                u.activated_ms = cases[i].activated;
                assert_true(ews_rules_user_deadline(&conf, &u) == T0 + 3 * DAY);
                /* fired a day late (a quiet partition): still matured at
                 * the trial's own time */
                ews_rules_user_timer(&conf, &u, T0 + 4 * DAY, NOW, alerts, 4,
                                     &cohort);
                assert_true(cohort.matured);
                assert_int_equal(cohort.activated, cases[i].want);
                assert_true(cohort.matured_ms == T0 + 3 * DAY);
                assert_true(u.matured_ms == T0 + 3 * DAY);
        }
}

static void test_wilson_bounds(void **state)
{
        (void)state;
        /* k = 4 of n = 40 at z 1.645: the interval [0.0457, 0.2050] */
        assert_true(fabs(ews_rules_wilson(4, 40, 1.645, 1) - 0.2050) < 0.001);
        assert_true(fabs(ews_rules_wilson(4, 40, 1.645, -1) - 0.0457) < 0.001);
        assert_true(ews_rules_wilson(0, 0, 1.645, 1) == 1.0);
}

static void test_campaign_fires_and_resolves_by_closed_day(void **state)
{
        struct ews_campaign_rule_state st = {.n = 0};
        struct ews_campaign_rule_info info = {"c-9", "Spring", true, 0.4};
        /* day, matured, activated, trials started, spend */
        struct ews_cohort_day days[] = {
                {20454, 10, 1, 40, 600},  /* n below the minimum sample */
                {20455, 15, 2, 20, 400},  /* 3 of 25: fires */
                {20456, 5, 1, 0, 0},      /* still open */
                {20457, 100, 80, 90, 50}, /* 84 of 130: back above */
        };
        struct ews_rules_conf defined = conf;
        struct ews_alert alerts[8];
        int n;

        (void)state;
        strcpy(defined.activation, "engagement >= 40 within 3d");
        n = ews_rules_campaign_days(&defined, &st, &info, days, 2, NOW, alerts,
                                    8);
        assert_int_equal(n, 1);
        assert_int_equal(alerts[0].status, EWS_ALERT_FIRING);
        assert_true(alerts[0].event_time_ms == 20456LL * DAY);
        assert_string_equal(alerts[0].alert_id,
                            "CAMPAIGN_UNDERPERFORMING:c-9:1767398400000:1");
        assert_true(strstr(alerts[0].reason, "3 of 25 mature trials"));
        /* the figures as of the day decided, not of whatever came since */
        assert_true(
                strstr(alerts[0].reason, "; 1000 spent, 333 per activated"));
        /* every campaign alert says what "activated" means */
        assert_true(strstr(alerts[0].reason,
                           "; activated means engagement >= 40 within 3d"));
        n = ews_rules_campaign_days(&defined, &st, &info, days + 2, 2, NOW,
                                    alerts, 8);
        assert_int_equal(n, 1);
        assert_int_equal(alerts[0].status, EWS_ALERT_RESOLVED);
        assert_string_equal(alerts[0].episode_id,
                            "CAMPAIGN_UNDERPERFORMING:c-9:1767398400000");
        assert_true(strstr(alerts[0].reason, "back above") &&
                    strstr(alerts[0].reason, "activated means engagement"));
        assert_true(st.n == 130 && st.k == 84);
        assert_true(st.signups == 150 && st.spend == 1050);
}

/* A reason cut to its buffer inside a multi-byte character drops that
 * character: the alert stays UTF-8. */
static void test_long_names_are_cut_on_a_character(void **state)
{
        struct ews_rules_conf euro = conf;
        char id[128], name[128];
        struct ews_campaign_rule_info info = {id, name, true, 0.4};
        struct ews_cohort_day days[] = {{20455, 25, 3, 0, 0}};
        struct ews_alert alerts[2];
        const unsigned char *p;
        size_t i, len, cut;

        (void)state;
        for (i = 0; i + 3 < sizeof(name); i += 3)
                memcpy(name + i, "\xe2\x82\xac", 3); /* the euro sign */
        name[i] = '\0';
        /* an activation definition in euro signs (event types are UTF-8)
         * runs past the buffer */
        for (i = 0; i + 3 < sizeof(euro.activation); i += 3)
                memcpy(euro.activation + i, "\xe2\x82\xac", 3);
        euro.activation[i] = '\0';
        /* ids of three lengths put the cut at each byte of a euro sign */
        for (cut = 0; cut < 3; cut++) {
                struct ews_campaign_rule_state st = {.n = 0};

                memset(id, 'c', 124 + cut);
                id[124 + cut] = '\0';
                assert_int_equal(ews_rules_campaign_days(&euro, &st, &info,
                                                         days, 1, NOW, alerts,
                                                         2),
                                 1);
                len = strlen(alerts[0].reason);
                assert_true(len >= sizeof(alerts[0].reason) - 3 &&
                            len < sizeof(alerts[0].reason));
                /* ends on a whole euro sign */
                p = (const unsigned char *)alerts[0].reason + len - 3;
                assert_memory_equal(p, "\xe2\x82\xac", 3);
        }
}

static void test_healthy_campaign_never_fires(void **state)
{
        struct ews_campaign_rule_state st = {.n = 0};
        struct ews_campaign_rule_info info = {"c-1", "", false, 0};
        struct ews_cohort_day days[30];
        struct ews_alert alerts[8];
        int i;

        (void)state;
        memset(days, 0, sizeof(days));
        /* 40% against the default target of 30%, day by day */
        for (i = 0; i < 30; i++) {
                days[i].day = 20000 + i;
                days[i].n = 5;
                days[i].k = 2;
        }
        assert_int_equal(ews_rules_campaign_days(&conf, &st, &info, days, 30,
                                                 NOW, alerts, 8),
                         0);
}

static void test_account_at_risk(void **state)
{
        struct ews_account_rule_state st = {-1, -1, 0, 0, 0};
        struct ews_cohort_day hist[40];
        struct ews_alert alerts[8];
        int i, n;

        (void)state;
        memset(hist, 0, sizeof(hist));
        /* 6 active users for 20 days, then 2, then 6 again */
        for (i = 0; i < 40; i++) {
                hist[i].day = 100 + i;
                hist[i].n = i >= 20 && i < 25 ? 2 : 6;
                hist[i].k = 0;
        }
        n = ews_rules_account_days(&conf, &st, "a-1", hist, 40, 139, NOW,
                                   alerts, 8);
        assert_int_equal(n, 2);
        assert_int_equal(alerts[0].rule, EWS_RULE_ACCOUNT_AT_RISK);
        assert_true(alerts[0].event_time_ms == (100 + 21) * DAY);
        assert_int_equal(alerts[1].status, EWS_ALERT_RESOLVED);
        assert_true(alerts[1].event_time_ms == (100 + 26) * DAY);
        assert_true(st.last_day == 139);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deadline_table),
                cmocka_unit_test(test_inactivity_fires_once_at_deadline),
                cmocka_unit_test(test_score_drop_fires_before_inactivity),
                cmocka_unit_test(
                        test_resolve_needs_activity_exit_level_and_dwell),
                cmocka_unit_test(test_low_score_activity_does_not_resolve),
                cmocka_unit_test(test_conversion_ends_episode),
                cmocka_unit_test(test_sales_ready_hysteresis),
                cmocka_unit_test(test_maturity_counts_activation_within_window),
                cmocka_unit_test(test_wilson_bounds),
                cmocka_unit_test(
                        test_campaign_fires_and_resolves_by_closed_day),
                cmocka_unit_test(test_long_names_are_cut_on_a_character),
                cmocka_unit_test(test_healthy_campaign_never_fires),
                cmocka_unit_test(test_account_at_risk),
        };

        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
