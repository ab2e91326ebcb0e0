/* Rules with a pretended clock: watermark and wall clock are constants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "filter_rules.h"

#define T0   1767225600000LL
#define HOUR 3600000LL
#define NOW  1795000000000LL /* the wall clock, only stamped */

static const struct ews_rules_conf conf = {72 * HOUR, 7.0 * 24 * HOUR};

static struct ews_user user_make(enum ews_stage stage, int64_t last)
{
        struct ews_user u;

        memset(&u, 0, sizeof(u));
        strcpy(u.user_id, "u-7");
        strcpy(u.account_id, "a-1");
        strcpy(u.campaign_id, "c-2");
        u.stage = stage;
        u.last_activity_ms = last;
        u.engagement = 8.0;
        u.engagement_ref_ms = last;
        return u;
}

static void test_deadline_table(void **state)
{
        static const struct {
                enum ews_stage stage;
                int64_t last;
                int64_t disengaged;
                int64_t want;
        } cases[] = {
                {EWS_STAGE_TRIAL, T0, 0, T0 + 72 * HOUR},
                {EWS_STAGE_TRIAL, 0, 0, 0},       /* never active */
                {EWS_STAGE_NONE, T0, 0, 0},       /* no trial yet */
                {EWS_STAGE_CUSTOMER, T0, 0, 0},   /* converted */
                {EWS_STAGE_LOST, T0, 0, 0},       /* trial ended */
                {EWS_STAGE_TRIAL, T0, T0 + 1, 0}, /* episode open */
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_user u = user_make(cases[i].stage, cases[i].last);

                u.disengaged_since_ms = cases[i].disengaged;
                assert_true(ews_rules_user_deadline(&conf, &u) ==
                            cases[i].want);
        }
}

static void test_timer_fires_once_at_deadline(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0);
        struct ews_alert alert;

        (void)state;
        assert_false(ews_rules_user_timer(&conf, &u, T0 + 72 * HOUR - 1, NOW,
                                          &alert));
        assert_true(
                ews_rules_user_timer(&conf, &u, T0 + 80 * HOUR, NOW, &alert));
        assert_int_equal(alert.rule, EWS_RULE_USER_DISENGAGED);
        assert_int_equal(alert.status, EWS_ALERT_FIRING);
        assert_int_equal(alert.seq, 1);
        assert_string_equal(alert.subject_id, "u-7");
        assert_string_equal(alert.account_id, "a-1");
        assert_string_equal(alert.campaign_id, "c-2");
        /* event time is the deadline, not the watermark that found it */
        assert_true(alert.event_time_ms == T0 + 72 * HOUR);
        assert_true(alert.emitted_at_ms == NOW);
        assert_true(alert.last_activity_ms == T0);
        assert_string_equal(alert.episode_id,
                            "USER_DISENGAGED:u-7:1767484800000");
        assert_string_equal(alert.alert_id,
                            "USER_DISENGAGED:u-7:1767484800000:1");
        /* E decayed over the 72h of quiet: 8 * 2^(-3/7) */
        assert_string_equal(alert.values[0].name, "engagement");
        assert_float_equal(alert.values[0].value, 5.94398, 1e-4);
        assert_true(u.disengaged_since_ms == T0 + 72 * HOUR);
        /* one episode per quiet spell */
        assert_false(
                ews_rules_user_timer(&conf, &u, T0 + 500 * HOUR, NOW, &alert));
}

static void test_customers_and_lost_are_not_alerted(void **state)
{
        enum ews_stage stages[] = {EWS_STAGE_CUSTOMER, EWS_STAGE_LOST,
                                   EWS_STAGE_NONE};
        struct ews_alert alert;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
                struct ews_user u = user_make(stages[i], T0);
                assert_false(ews_rules_user_timer(&conf, &u, T0 + 1000 * HOUR,
                                                  NOW, &alert));
        }
}

static void test_resolve_on_activity(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0);
        struct ews_alert fired, resolved;

        (void)state;
        assert_true(
                ews_rules_user_timer(&conf, &u, T0 + 72 * HOUR, NOW, &fired));
        /* not activity, still a trial: stays open */
        assert_false(ews_rules_user_event(&conf, &u, false, T0 + 90 * HOUR, NOW,
                                          &resolved));
        /* a late event from before the episode does not end it */
        assert_false(ews_rules_user_event(&conf, &u, true, T0 + HOUR, NOW,
                                          &resolved));
        u.last_activity_ms = T0 + 100 * HOUR;
        assert_true(ews_rules_user_event(&conf, &u, true, T0 + 100 * HOUR, NOW,
                                         &resolved));
        assert_int_equal(resolved.status, EWS_ALERT_RESOLVED);
        assert_int_equal(resolved.seq, 2);
        assert_string_equal(resolved.episode_id, fired.episode_id);
        assert_true(resolved.event_time_ms == T0 + 100 * HOUR);
        assert_true(u.disengaged_since_ms == 0);
        /* the next quiet spell is a new episode with its own id */
        assert_true(
                ews_rules_user_timer(&conf, &u, T0 + 200 * HOUR, NOW, &fired));
        assert_string_equal(fired.episode_id,
                            "USER_DISENGAGED:u-7:1767844800000");
}

static void test_conversion_ends_episode(void **state)
{
        struct ews_user u = user_make(EWS_STAGE_TRIAL, T0);
        struct ews_alert alert;

        (void)state;
        assert_true(
                ews_rules_user_timer(&conf, &u, T0 + 72 * HOUR, NOW, &alert));
        u.stage = EWS_STAGE_CUSTOMER;
        assert_true(ews_rules_user_event(&conf, &u, false, T0 + 80 * HOUR, NOW,
                                         &alert));
        assert_int_equal(alert.status, EWS_ALERT_RESOLVED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deadline_table),
                cmocka_unit_test(test_timer_fires_once_at_deadline),
                cmocka_unit_test(test_customers_and_lost_are_not_alerted),
                cmocka_unit_test(test_resolve_on_activity),
                cmocka_unit_test(test_conversion_ends_episode),
        };
        return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
