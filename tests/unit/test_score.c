/* Scoring with a pretended clock: every time is a constant below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter_score.h"

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR   3600000LL
#define DAY    (24 * HOUR)
#define H7D_MS (7.0 * DAY)

static struct ews_score_conf score_conf(void)
{
        static struct ews_config config;

        ews_config_defaults(&config);
        return config.score;
}

static struct ews_usage_event event_make(const char *type, int64_t t)
{
        struct ews_usage_event e;

        memset(&e, 0, sizeof(e));
        snprintf(e.event_id, sizeof(e.event_id), "e-%lld", (long long)t);
        snprintf(e.user_id, sizeof(e.user_id), "u-1");
        snprintf(e.event_type, sizeof(e.event_type), "%s", type);
        e.occurred_at_ms = t;
        return e;
}

static void test_decay_table(void **state)
{
        static const struct {
                double value;
                int64_t dt_ms;
                double half_life_ms;
                double want;
        } cases[] = {
                {10.0, 0, H7D_MS, 10.0},
                {10.0, 7 * DAY, H7D_MS, 5.0},
                {10.0, 14 * DAY, H7D_MS, 2.5},
                {8.0, 21 * DAY, H7D_MS, 1.0},
                {10.0, -7 * DAY, H7D_MS, 20.0}, /* a late event grows */
                {1.0, HOUR, (double)HOUR, 0.5},
                {-4.0, 7 * DAY, H7D_MS, -2.0}, /* negative signals decay too */
                {3.0, 3650 * DAY, H7D_MS, 0.0},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_float_equal(ews_score_decay(cases[i].value,
                                                   cases[i].dt_ms,
                                                   cases[i].half_life_ms),
                                   cases[i].want, 1e-12);
}

static void test_fold_in_order_and_late(void **state)
{
        double e = 0.0;
        int64_t ref = 0;

        (void)state;
        ews_score_fold(&e, &ref, 4.0, T0, H7D_MS);
        assert_float_equal(e, 4.0, 1e-12);
        assert_true(ref == T0);
        /* a week later: 4 decays to 2, plus 2 */
        ews_score_fold(&e, &ref, 2.0, T0 + 7 * DAY, H7D_MS);
        assert_float_equal(e, 4.0, 1e-12);
        assert_true(ref == T0 + 7 * DAY);
        /* a late event a week before t_ref adds half its points */
        ews_score_fold(&e, &ref, 6.0, T0, H7D_MS);
        assert_float_equal(e, 7.0, 1e-12);
        assert_true(ref == T0 + 7 * DAY);
        assert_float_equal(ews_score_value_at(e, ref, T0 + 14 * DAY, H7D_MS),
                           3.5, 1e-12);
}

static uint64_t rng_next(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* The same events in any arrival order give the same E at the same time. */
static void test_fold_order_independent(void **state)
{
        enum {
                N = 60,
                PERMUTATIONS = 1000
        };
        struct {
                int64_t t;
                double w;
        } ev[N], tmp;
        double e, want = 0.0, got;
        int64_t ref, at = T0 + 40 * DAY;
        uint64_t seed = 42;
        int i, j, k;

        (void)state;
        for (i = 0; i < N; i++) {
                ev[i].t = T0 + (int64_t)(rng_next(&seed) % (30 * DAY));
                ev[i].w = (double)(rng_next(&seed) % 2000) / 100.0 - 5.0;
                want += ev[i].w * exp2(-(double)(at - ev[i].t) / H7D_MS);
        }
        for (k = 0; k < PERMUTATIONS; k++) {
                for (i = N - 1; i > 0; i--) {
                        j = (int)(rng_next(&seed) % (uint64_t)(i + 1));
                        tmp = ev[i];
                        ev[i] = ev[j];
                        ev[j] = tmp;
                }
                e = 0.0;
                ref = 0;
                for (i = 0; i < N; i++)
                        ews_score_fold(&e, &ref, ev[i].w, ev[i].t, H7D_MS);
                got = ews_score_value_at(e, ref, at, H7D_MS);
                assert_true(fabs(got - want) <= 1e-9 * fabs(want) + 1e-12);
        }
}

static void test_points_table(void **state)
{
        struct ews_score_conf conf = score_conf();
        static const struct {
                const char *type;
                const char *page_class; /* NULL: none */
                int has_value;
                double value;
                double want;
        } cases[] = {
                {"login", NULL, 0, 0, 1.0},
                {"invite_sent", NULL, 0, 0, 8.0},
                {"unknown_type", NULL, 0, 0, 0.0},
                {"unsubscribed", NULL, 0, 0, -10.0},
                {"video_play", NULL, 1, 0.5, 3.0}, /* half watched */
                {"video_play", NULL, 1, 1.0, 6.0},
                {"video_play", NULL, 1, 7.0, 6.0}, /* a share: clamped */
                {"video_play", NULL, 1, -1.0, 0.0},
                {"video_play", NULL, 1, NAN, 0.0},
                {"video_play", NULL, 0, 0, 6.0}, /* no value: as played */
                {"page_view", "pricing", 0, 0, 4.0},
                {"page_view", "blog", 0, 0, 0.0}, /* not a buying signal */
                {"page_view", NULL, 0, 0, 0.0},
                {"login", NULL, 1, 0.1, 1.0}, /* value scales only some */
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_usage_event e = event_make(cases[i].type, T0);

                e.has_value = cases[i].has_value;
                e.value = cases[i].value;
                if (cases[i].page_class) {
                        e.attr_cnt = 1;
                        strcpy(e.attrs[0].key, "page_class");
                        strcpy(e.attrs[0].value, cases[i].page_class);
                }
                assert_float_equal(ews_score_points(&conf, &e), cases[i].want,
                                   1e-12);
        }
}

static void test_apply_stage_and_attribution(void **state)
{
        struct ews_score_conf conf = score_conf();
        struct ews_user user;
        struct ews_usage_event e;

        (void)state;
        memset(&user, 0, sizeof(user));
        e = event_make("login", T0 - HOUR); /* seen before the trial */
        assert_true(ews_score_apply(&conf, &user, &e));
        assert_int_equal(user.stage, EWS_STAGE_NONE);

        e = event_make("trial_started", T0);
        strcpy(e.campaign_id, "c-1");
        strcpy(e.account_id, "a-1");
        ews_score_apply(&conf, &user, &e);
        assert_int_equal(user.stage, EWS_STAGE_TRIAL);
        assert_true(user.trial_started_ms == T0);
        assert_string_equal(user.campaign_id, "c-1");
        assert_string_equal(user.account_id, "a-1");

        e = event_make("feature_used", T0 + DAY);
        strcpy(e.account_id, "a-2"); /* the first account named sticks */
        ews_score_apply(&conf, &user, &e);
        assert_string_equal(user.account_id, "a-1");
        assert_true(user.last_activity_ms == T0 + DAY);

        e = event_make("login", T0 + HOUR); /* late: last activity stays */
        ews_score_apply(&conf, &user, &e);
        assert_true(user.last_activity_ms == T0 + DAY);

        e = event_make("converted", T0 + 2 * DAY); /* not activity */
        assert_false(ews_score_apply(&conf, &user, &e));
        assert_int_equal(user.stage, EWS_STAGE_CUSTOMER);
        assert_true(user.last_activity_ms == T0 + DAY);

        e = event_make("trial_ended", T0 + 3 * DAY); /* a customer stays one */
        ews_score_apply(&conf, &user, &e);
        assert_int_equal(user.stage, EWS_STAGE_CUSTOMER);
        assert_true(user.events == 6);
}

static void test_trial_ended_is_lost(void **state)
{
        struct ews_score_conf conf = score_conf();
        struct ews_user user;
        struct ews_usage_event e;

        (void)state;
        memset(&user, 0, sizeof(user));
        e = event_make("trial_started", T0);
        ews_score_apply(&conf, &user, &e);
        e = event_make("trial_ended", T0 + 14 * DAY);
        ews_score_apply(&conf, &user, &e);
        assert_int_equal(user.stage, EWS_STAGE_LOST);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decay_table),
                cmocka_unit_test(test_fold_in_order_and_late),
                cmocka_unit_test(test_fold_order_independent),
                cmocka_unit_test(test_points_table),
                cmocka_unit_test(test_apply_stage_and_attribution),
                cmocka_unit_test(test_trial_ended_is_lost),
        };
        return cmocka_run_group_tests_name("score", tests, NULL, NULL);
}
