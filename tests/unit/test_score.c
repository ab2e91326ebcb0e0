/* Scoring with a pretended clock: every time is a constant below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/config.h"
#include "score/score.h"

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

/* The attributes of the events the tests make: one event's at a time. */
static struct ews_attr event_attrs[EWS_ATTR_MAX];

static struct ews_usage_event event_make(const char *type, int64_t t)
{
        struct ews_usage_event e;

        memset(&e, 0, sizeof(e));
        memset(event_attrs, 0, sizeof(event_attrs));
        e.attrs = event_attrs;
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
        struct ews_score_result r;

        (void)state;
        memset(&user, 0, sizeof(user));
        e = event_make("login", T0 - HOUR); /* seen before the trial */
        assert_true(ews_score_apply(&conf, &user, &e).activity);
        assert_int_equal(user.stage, EWS_STAGE_NONE);

        e = event_make("trial_started", T0);
        strcpy(e.campaign_id, "c-1");
        strcpy(e.account_id, "a-1");
        r = ews_score_apply(&conf, &user, &e);
        assert_true(r.joined_account);
        assert_int_equal(r.stage_before, EWS_STAGE_NONE);
        assert_int_equal(user.stage, EWS_STAGE_TRIAL);
        assert_true(user.stage_at_ms == T0);
        assert_true(user.trial_started_ms == T0);
        assert_string_equal(user.campaign_id, "c-1");
        assert_string_equal(user.account_id, "a-1");

        e = event_make("feature_used", T0 + DAY);
        strcpy(e.account_id, "a-2"); /* the first account named sticks */
        r = ews_score_apply(&conf, &user, &e);
        assert_false(r.joined_account);
        assert_string_equal(user.account_id, "a-1");
        assert_true(user.last_activity_ms == T0 + DAY);

        e = event_make("login", T0 + HOUR); /* late: last activity stays */
        ews_score_apply(&conf, &user, &e);
        assert_true(user.last_activity_ms == T0 + DAY);

        e = event_make("converted", T0 + 2 * DAY); /* not activity */
        assert_false(ews_score_apply(&conf, &user, &e).activity);
        assert_int_equal(user.stage, EWS_STAGE_CUSTOMER);
        assert_true(user.stage_at_ms == T0 + 2 * DAY);
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
        assert_false(ews_stage_in_trial(user.stage));
}

/* Activation counts only within the window after trial start; sales
 * readiness whenever E reaches its threshold. */
static void test_lifecycle_table(void **state)
{
        static const struct {
                int invites;          /* 8 points each, one an hour */
                int64_t start_offset; /* of the invites, after trial start */
                enum ews_stage want;
                bool activated;
        } cases[] = {
                {1, HOUR, EWS_STAGE_TRIAL, false},       /* 5 + 8 < 40 */
                {5, HOUR, EWS_STAGE_ACTIVATED, true},    /* 45 >= 40 */
                {5, 4 * DAY, EWS_STAGE_TRIAL, false},    /* too late */
                {13, HOUR, EWS_STAGE_SALES_READY, true}, /* 109 >= 100 */
                {13, 5 * DAY, EWS_STAGE_SALES_READY, false},
        };
        struct ews_score_conf conf = score_conf();
        size_t i;
        int k;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_user user;
                struct ews_usage_event e = event_make("trial_started", T0);

                memset(&user, 0, sizeof(user));
                ews_score_apply(&conf, &user, &e);
                for (k = 0; k < cases[i].invites; k++) {
                        e = event_make("invite_sent",
                                       T0 + cases[i].start_offset + k * 60000);
                        ews_score_apply(&conf, &user, &e);
                }
                assert_int_equal(user.stage, cases[i].want);
                assert_true((user.activated_ms != 0) == cases[i].activated);
        }
}

static void test_fit_table(void **state)
{
        static const struct {
                const char *key, *value;
                double want;
        } cases[] = {
                {"company_size", "200", 10},
                {"company_size", "20", 0},
                {"company_size", "lots", 0},
                {"industry", "SaaS", 5},
                {"role", "vp", 8},
                {"country", "DE", 3},
                {"email_domain", "gmail.com", -10},
                {"email_domain", "acme.io", 0},
                {"unrelated", "x", 0},
        };
        struct ews_score_conf conf = score_conf();
        struct ews_usage_event e;
        struct ews_user user;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(&user, 0, sizeof(user));
                e = event_make("trial_started", T0);
                e.attr_cnt = 1;
                strcpy(e.attrs[0].key, cases[i].key);
                strcpy(e.attrs[0].value, cases[i].value);
                ews_score_apply(&conf, &user, &e);
                assert_float_equal(user.fit, cases[i].want, 0);
        }
        /* the latest value of an attribute decides its rule */
        memset(&user, 0, sizeof(user));
        e = event_make("trial_started", T0);
        e.attr_cnt = 2;
        strcpy(e.attrs[0].key, "company_size");
        strcpy(e.attrs[0].value, "200");
        strcpy(e.attrs[1].key, "role");
        strcpy(e.attrs[1].value, "director");
        ews_score_apply(&conf, &user, &e);
        assert_float_equal(user.fit, 18, 0);
        e = event_make("identify", T0 + HOUR);
        e.attr_cnt = 1;
        strcpy(e.attrs[0].key, "company_size");
        strcpy(e.attrs[0].value, "8");
        ews_score_apply(&conf, &user, &e);
        assert_float_equal(user.fit, 8, 0);
}

/* Reasons and interests are E split by event type and by product: they
 * decay alike, so they always add up to E. */
static void test_reasons_and_interests(void **state)
{
        struct ews_score_conf conf = score_conf();
        struct ews_usage_event e;
        struct ews_user user;
        double sum = 0.0;
        int i;

        (void)state;
        memset(&user, 0, sizeof(user));
        e = event_make("trial_started", T0);
        ews_score_apply(&conf, &user, &e);
        e = event_make("feature_used", T0 + DAY);
        strcpy(e.product, "crm");
        ews_score_apply(&conf, &user, &e);
        e = event_make("video_play", T0 + 7 * DAY);
        strcpy(e.product, "analytics");
        e.has_value = true;
        e.value = 0.5;
        ews_score_apply(&conf, &user, &e);
        e = event_make("feature_used", T0 + 2 * DAY); /* late */
        strcpy(e.product, "crm");
        ews_score_apply(&conf, &user, &e);

        assert_int_equal(user.reason_cnt, 3);
        for (i = 0; i < user.reason_cnt; i++)
                sum += user.reasons[i].value;
        assert_float_equal(sum, user.engagement, 1e-12);
        /* trial_started 5 a week back: 2.5; video 3 now; features 3 at
         * 6 and 5 days back */
        assert_string_equal(user.reasons[1].name, "feature_used");
        assert_float_equal(user.reasons[1].value,
                           3 * exp2(-6.0 / 7) + 3 * exp2(-5.0 / 7), 1e-12);
        assert_int_equal(user.interest_cnt, 2);
        assert_string_equal(user.interests[0].name, "crm");
        assert_float_equal(user.interests[0].value, user.reasons[1].value,
                           1e-12);
        assert_float_equal(user.interests[1].value, 3.0, 1e-12);
        assert_float_equal(user.peak_engagement, user.engagement, 1e-12);
}

static void test_duplicates_count_once(void **state)
{
        struct ews_score_conf conf = score_conf();
        struct ews_usage_event e;
        struct ews_user user;
        int i;

        (void)state;
        memset(&user, 0, sizeof(user));
        e = event_make("invite_sent", T0);
        assert_false(ews_score_apply(&conf, &user, &e).duplicate);
        assert_true(ews_score_apply(&conf, &user, &e).duplicate);
        assert_float_equal(user.engagement, 8.0, 0);
        assert_true(user.events == 1);
        /* the window is the last dedup_events ids */
        for (i = 1; i <= conf.dedup_events; i++) {
                e = event_make("login", T0 + i);
                ews_score_apply(&conf, &user, &e);
        }
        assert_int_equal(user.dedup_cnt, conf.dedup_events);
        e = event_make("invite_sent", T0);
        assert_false(ews_score_apply(&conf, &user, &e).duplicate);
}

/* 1000 arrival orders of the same events, late ones and redeliveries
 * among them, give the same state within 1e-9 relative. */
static void test_apply_order_independent(void **state)
{
        enum {
                N = 24,
                DUPS = 6,
                PERMUTATIONS = 1000
        }; /* within the window */
        struct ews_score_conf conf = score_conf();
        struct ews_usage_event ev[N + DUPS], tmp;
        static const char *types[] = {"login", "feature_used", "video_play",
                                      "invite_sent", "unsubscribed"};
        double want_e = 0.0, want_crm = 0.0;
        int64_t at = T0 + 40 * DAY;
        uint64_t seed = 7;
        int i, j, k;

        (void)state;
        conf.dedup_events = 32; /* wider than the redeliveries' distance */
        for (i = 0; i < N; i++) {
                ev[i] = event_make(
                        types[rng_next(&seed) % 5],
                        T0 + (int64_t)(rng_next(&seed) % (30 * DAY)));
                snprintf(ev[i].event_id, sizeof(ev[i].event_id), "e-%d", i);
                if (i % 2)
                        strcpy(ev[i].product, "crm");
        }
        for (i = 0; i < DUPS; i++)
                ev[N + i] = ev[i * 3];
        for (i = 0; i < N; i++) {
                double v = ews_score_points(&conf, &ev[i]) *
                           exp2(-(double)(at - ev[i].occurred_at_ms) /
                                conf.half_life_ms);
                want_e += v;
                if (ev[i].product[0])
                        want_crm += v;
        }
        for (k = 0; k < PERMUTATIONS; k++) {
                struct ews_user user;
                double crm = 0.0;

                for (i = N + DUPS - 1; i > 0; i--) {
                        j = (int)(rng_next(&seed) % (uint64_t)(i + 1));
                        tmp = ev[i];
                        ev[i] = ev[j];
                        ev[j] = tmp;
                }
                memset(&user, 0, sizeof(user));
                for (i = 0; i < N + DUPS; i++)
                        ews_score_apply(&conf, &user, &ev[i]);
                assert_true(user.events == N);
                assert_true(fabs(ews_score_value_at(user.engagement,
                                                    user.engagement_ref_ms, at,
                                                    conf.half_life_ms) -
                                 want_e) <= 1e-9 * fabs(want_e));
                for (i = 0; i < user.interest_cnt; i++)
                        crm += user.interests[i].value;
                crm = ews_score_value_at(crm, user.engagement_ref_ms, at,
                                         conf.half_life_ms);
                assert_true(fabs(crm - want_crm) <= 1e-9 * fabs(want_crm));
        }
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
                cmocka_unit_test(test_lifecycle_table),
                cmocka_unit_test(test_fit_table),
                cmocka_unit_test(test_reasons_and_interests),
                cmocka_unit_test(test_duplicates_count_once),
                cmocka_unit_test(test_apply_order_independent),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("score", tests, NULL, NULL);
}
