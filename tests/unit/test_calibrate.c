/* ews-calibrate's pure parts: the exact AUC and precision at the top, and
 * the features and outcomes a replay of the events gives. Times are
 * constants below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "score/score.h"
#include "tools/ews_calibrate.h"

#define T0   1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR 3600000LL
#define DAY  (24 * HOUR)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static double auc_of(const double *score, const bool *pos, size_t n)
{
        double auc;

        assert_int_equal(cal_auc(score, pos, n, &auc), 0);
        return auc;
}

static void test_auc_known_cases(void **state)
{
        static const struct {
                double score[6];
                bool pos[6];
                size_t n;
                double want;
        } cases[] = {
                {{1, 2, 3, 4}, {0, 0, 1, 1}, 4, 1.0}, /* perfect */
                {{4, 3, 2, 1}, {0, 0, 1, 1}, 4, 0.0}, /* inverted */
                {{0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}, 4, 0.75},
                {{5, 5, 5, 5}, {0, 1, 0, 1}, 4, 0.5},   /* all tied */
                {{1, 2, 2, 3}, {0, 0, 1, 1}, 4, 0.875}, /* a tie across */
                {{2, 2, 1, 1, 3}, {1, 0, 1, 0, 1}, 5, 4.0 / 6},
                {{7, 7, 7, 1, 1, 9}, {1, 1, 0, 0, 1, 0}, 6, 3.5 / 9},
        };
        size_t i;

        (void)state;
        for (i = 0; i < N(cases); i++)
                assert_true(
                        fabs(auc_of(cases[i].score, cases[i].pos, cases[i].n) -
                             cases[i].want) < 1e-12);
}

static void test_auc_one_class_is_undefined(void **state)
{
        double score[] = {1, 2, 3};
        bool none[] = {0, 0, 0}, all[] = {1, 1, 1};

        (void)state;
        assert_true(isnan(auc_of(score, none, 3)));
        assert_true(isnan(auc_of(score, all, 3)));
        assert_true(isnan(auc_of(score, none, 0)));
}

/* The rank formula against counting every pair, with many ties. */
static void test_auc_equals_pair_count(void **state)
{
        static double score[300];
        static bool pos[300];
        double wins = 0, pairs = 0;
        unsigned seed = 7;
        size_t i, j, n = N(score);

        (void)state;
        for (i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                score[i] = (double)((seed >> 16) % 12); /* ties galore */
                pos[i] = ((seed >> 8) % 3) == 0 || score[i] > 9;
        }
        for (i = 0; i < n; i++)
                for (j = 0; j < n; j++)
                        if (pos[i] && !pos[j]) {
                                pairs++;
                                wins += score[i] > score[j]    ? 1
                                        : score[i] == score[j] ? 0.5
                                                               : 0;
                        }
        assert_true(pairs > 0);
        assert_true(fabs(auc_of(score, pos, n) - wins / pairs) < 1e-12);
}

static void test_precision_top(void **state)
{
        static const struct {
                double score[10];
                bool pos[10];
                size_t n;
                double share, want;
                size_t top;
        } cases[] = {
                {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                 {0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                 10,
                 0.1,
                 1.0,
                 1},
                {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                 {0, 0, 0, 0, 0, 0, 0, 0, 1, 0},
                 10,
                 0.1,
                 0.0,
                 1},
                /* three tied at the top, one positive: a third of one */
                {{9, 9, 9, 1, 1, 1, 1, 1, 1, 1},
                 {1, 0, 0, 1, 1, 1, 1, 1, 1, 1},
                 10,
                 0.1,
                 1.0 / 3,
                 1},
                /* top 2 of 4: the higher one, and half of a tied pair */
                {{5, 3, 3, 0}, {1, 1, 0, 0}, 4, 0.5, 0.75, 2},
                /* top 2 of 10, inside four tied with one positive */
                {{9, 9, 9, 9, 1, 1, 1, 1, 1, 1},
                 {0, 1, 0, 0, 1, 1, 1, 1, 1, 1},
                 10,
                 0.2,
                 0.25,
                 2},
                /* ceil: 0.1 of 5 is 1 */
                {{1, 2, 3, 4, 5}, {0, 0, 0, 0, 1}, 5, 0.1, 1.0, 1},
        };
        double p;
        size_t i, top;

        (void)state;
        for (i = 0; i < N(cases); i++) {
                assert_int_equal(cal_precision_top(cases[i].score, cases[i].pos,
                                                   cases[i].n, cases[i].share,
                                                   &p, &top),
                                 0);
                assert_int_equal(top, cases[i].top);
                assert_true(fabs(p - cases[i].want) < 1e-12);
        }
}

static void test_precision_top_count_is_exact(void **state)
{
        double score[30];
        bool pos[30] = {0};
        double p;
        size_t i, top;

        (void)state;
        for (i = 0; i < 30; i++)
                score[i] = (double)i;
        /* 0.1 * 30 is 3.0000000000000004 in doubles: still 3 */
        assert_int_equal(cal_precision_top(score, pos, 30, 0.1, &p, &top), 0);
        assert_int_equal(top, 3);
        assert_int_equal(cal_precision_top(score, pos, 0, 0.1, &p, &top), 0);
        assert_true(isnan(p));
        assert_int_equal(top, 0);
}

/* A history built from events as decode would hand them on. */
static struct ews_config config;
static struct cal_history history;
static struct cal_dataset ds;

static void add(const char *user, const char *id, const char *type, int64_t t,
                const char *key, const char *value, double v)
{
        struct ews_usage_event_buf buf;
        struct ews_usage_event *e = ews_usage_event_init(&buf);
        char errstr[256];

        memset(&buf, 0, sizeof(buf));
        e->attrs = buf.attrs;
        snprintf(e->user_id, sizeof(e->user_id), "%s", user);
        snprintf(e->event_id, sizeof(e->event_id), "%s", id);
        snprintf(e->event_type, sizeof(e->event_type), "%s", type);
        e->occurred_at_ms = t;
        if (key) {
                snprintf(buf.attrs[0].key, sizeof(buf.attrs[0].key), "%s", key);
                snprintf(buf.attrs[0].value, sizeof(buf.attrs[0].value), "%s",
                         value);
                /* an attribute scoring does not read is not kept */
                snprintf(buf.attrs[1].key, sizeof(buf.attrs[1].key), "noise");
                e->attr_cnt = 2;
        }
        e->has_value = !isnan(v);
        e->value = v;
        assert_int_equal(cal_history_add(&history, &config.score, e, errstr,
                                         sizeof(errstr)),
                         0);
}

static const struct cal_row *row_of(const char *user)
{
        size_t i;

        for (i = 0; i < ds.row_cnt; i++)
                if (!strcmp(cal_history_user(&history, ds.rows[i].user), user))
                        return &ds.rows[i];
        return NULL;
}

static double x_of(const struct cal_row *row, const char *type)
{
        size_t col;

        for (col = 0; col < (size_t)ds.type_cnt; col++)
                if (!strcmp(cal_history_type(&history, (uint32_t)col), type))
                        return ds.x[(size_t)(row - ds.rows) * ds.col_cnt + col];
        return 0;
}

static double decay(double v, int64_t dt)
{
        return v * exp2(-(double)dt / (7.0 * DAY));
}

static int features_setup(void **state)
{
        struct cal_opts opts = {.cutoff_ms = DAY,
                                .conversion_ms = 7 * DAY,
                                .end_ms = T0 + 12 * DAY};
        char errstr[256];

        (void)state;
        memset(&history, 0, sizeof(history));
        ews_config_defaults(&config);
        /* u-3's later events first: the replay goes by event time */
        add("u-3", "3c", "converted", T0 + 5 * DAY, NULL, NULL, NAN);
        add("u-3", "3s", "trial_started", T0, NULL, NULL, NAN);
        add("u-3", "3l", "login", T0 + HOUR, NULL, NULL, NAN);
        for (int i = 0; i < 5; i++) {
                char id[8];

                snprintf(id, sizeof(id), "3i%d", i);
                add("u-3", id, "invite_sent", T0 + 2 * DAY + i * HOUR, NULL,
                    NULL, NAN);
        }
        /* u-1: not activated; a duplicate, a page that does not score */
        add("u-1", "1s", "trial_started", T0, "company_size", "200", NAN);
        add("u-1", "1c", "identify", T0 + 1, "country", "US", NAN);
        add("u-1", "1l", "login", T0 + HOUR, NULL, NULL, NAN);
        add("u-1", "1l", "login", T0 + HOUR, NULL, NULL, NAN);
        add("u-1", "1p", "page_view", T0 + 2 * HOUR, "page_class", "pricing",
            NAN);
        add("u-1", "1d", "page_view", T0 + 3 * HOUR, "page_class", "docs", NAN);
        add("u-1", "1v", "video_play", T0 + 4 * HOUR, NULL, NULL, 0.5);
        add("u-1", "1f", "feature_used", T0 + 2 * DAY, NULL, NULL, NAN);
        /* u-2: activated before the cut-off: decided */
        add("u-2", "2s", "trial_started", T0, NULL, NULL, NAN);
        for (int i = 0; i < 10; i++) {
                char id[8];

                snprintf(id, sizeof(id), "2f%d", i);
                add("u-2", id, "feature_used", T0 + HOUR + i * 60000, NULL,
                    NULL, NAN);
        }
        add("u-2", "2i", "invite_sent", T0 + 2 * HOUR, NULL, NULL, NAN);
        /* u-4: no trial start; u-5: signed up too late to know */
        add("u-4", "4l", "login", T0, NULL, NULL, NAN);
        add("u-5", "5s", "trial_started", T0 + 10 * DAY, NULL, NULL, NAN);
        assert_int_equal(cal_history_sort(&history), 0);
        return cal_dataset_build(&history, &config, &opts, &ds, errstr,
                                 sizeof(errstr));
}

static int features_teardown(void **state)
{
        (void)state;
        cal_dataset_free(&ds);
        cal_history_free(&history);
        return 0;
}

static void test_features_at_cutoff(void **state)
{
        const struct cal_row *u1 = row_of("u-1");
        int64_t cut = T0 + DAY;
        double e = 0;
        size_t col;

        (void)state;
        assert_non_null(u1);
        /* decayed one-point sums: the duplicate once, the docs page not,
         * the video by its share, nothing after the cut-off */
        assert_true(fabs(x_of(u1, "trial_started") - decay(1, cut - T0)) <
                    1e-12);
        assert_true(fabs(x_of(u1, "login") - decay(1, cut - T0 - HOUR)) <
                    1e-12);
        assert_true(fabs(x_of(u1, "page_view") -
                         decay(1, cut - T0 - 2 * HOUR)) < 1e-12);
        assert_true(fabs(x_of(u1, "video_play") -
                         decay(0.5, cut - T0 - 4 * HOUR)) < 1e-12);
        assert_true(x_of(u1, "feature_used") == 0);
        /* the configured points on them give the processor's E */
        for (col = 0; col < (size_t)ds.type_cnt; col++)
                e += cal_configured_points(
                             &config,
                             cal_history_type(&history, (uint32_t)col)) *
                     ds.x[(size_t)(u1 - ds.rows) * ds.col_cnt + col];
        assert_true(fabs(e - u1->engagement) < 1e-9);
        assert_true(fabs(u1->engagement -
                         (decay(5, DAY) + decay(1, 23 * HOUR) +
                          decay(4, 22 * HOUR) + decay(3, 20 * HOUR))) < 1e-9);
        /* fit: company size 200 (rule 1, 10) and country US (rule 4, 3) */
        assert_true(fabs(u1->fit - 13) < 1e-12);
        assert_true(ds.x[(size_t)(u1 - ds.rows) * ds.col_cnt + ds.type_cnt] ==
                    1);
        assert_true(
                ds.x[(size_t)(u1 - ds.rows) * ds.col_cnt + ds.type_cnt + 1] ==
                0);
        assert_true(
                ds.x[(size_t)(u1 - ds.rows) * ds.col_cnt + ds.type_cnt + 3] ==
                1);
}

static void test_outcome_labels(void **state)
{
        static const struct {
                const char *user;
                enum cal_label activation, conversion;
        } cases[] = {
                {"u-1", CAL_NEGATIVE, CAL_NEGATIVE},
                {"u-2", CAL_DECIDED, CAL_NEGATIVE},
                {"u-3", CAL_POSITIVE, CAL_POSITIVE},
                {"u-5", CAL_CENSORED, CAL_CENSORED},
        };
        size_t i;

        (void)state;
        assert_int_equal(ds.row_cnt, 4);
        assert_int_equal(ds.no_start, 1);
        for (i = 0; i < N(cases); i++) {
                const struct cal_row *row = row_of(cases[i].user);

                assert_non_null(row);
                assert_int_equal(row->label[CAL_ACTIVATION],
                                 cases[i].activation);
                assert_int_equal(row->label[CAL_CONVERSION],
                                 cases[i].conversion);
        }
        /* users and types are numbered by name, whatever the read order */
        for (i = 1; i < history.users.cnt; i++)
                assert_true(strcmp(cal_history_user(&history, (uint32_t)i - 1),
                                   cal_history_user(&history, (uint32_t)i)) <
                            0);
        for (i = 1; i < history.types.cnt; i++)
                assert_true(strcmp(cal_history_type(&history, (uint32_t)i - 1),
                                   cal_history_type(&history, (uint32_t)i)) <
                            0);
        /* the features of u-3 stop at the cut-off: its invites are later */
        assert_true(x_of(row_of("u-3"), "invite_sent") == 0);
}

static void test_stage_types_are_not_features(void **state)
{
        size_t col;

        (void)state;
        for (col = 0; col < ds.col_cnt; col++) {
                const char *type =
                        col < (size_t)ds.type_cnt
                                ? cal_history_type(&history, (uint32_t)col)
                                : "";

                assert_int_equal(cal_column_usable(&history, &ds, col),
                                 strcmp(type, "converted") != 0);
        }
}

static void test_history_keeps_the_range(void **state)
{
        char errstr[128];
        struct ews_usage_event_buf buf;
        struct ews_usage_event *e = ews_usage_event_init(&buf);
        int64_t times[] = {T0 - 1, T0, T0 + DAY - 1, T0 + DAY};
        size_t i;

        (void)state;
        memset(&history, 0, sizeof(history));
        ews_config_defaults(&config);
        history.from_ms = T0;
        history.to_ms = T0 + DAY;
        memset(&buf, 0, sizeof(buf));
        e->attrs = buf.attrs;
        snprintf(e->user_id, sizeof(e->user_id), "u");
        snprintf(e->event_type, sizeof(e->event_type), "login");
        for (i = 0; i < N(times); i++) {
                snprintf(e->event_id, sizeof(e->event_id), "e%zu", i);
                e->occurred_at_ms = times[i];
                assert_int_equal(cal_history_add(&history, &config.score, e,
                                                 errstr, sizeof(errstr)),
                                 0);
        }
        assert_int_equal(history.read_cnt, 4);
        assert_int_equal(history.kept_cnt, 2);
        assert_true(history.first_ms == T0 && history.last_ms == T0 + DAY - 1);
        cal_history_free(&history);
}

static void test_score_scale_table(void **state)
{
        static const struct {
                const char *type, *page;
                bool has_value;
                double value, want;
        } cases[] = {
                {"login", NULL, false, 0, 1},
                {"not_configured", NULL, false, 0, 1},
                {"page_view", "pricing", false, 0, 1},
                {"page_view", "docs", false, 0, 0},
                {"page_view", NULL, false, 0, 0},
                {"video_play", NULL, true, 0.25, 0.25},
                {"video_play", NULL, true, 3, 1},
                {"video_play", NULL, true, -1, 0},
                {"video_play", NULL, false, 0, 1},
        };
        struct ews_usage_event_buf buf;
        struct ews_usage_event *e;
        size_t i;

        (void)state;
        ews_config_defaults(&config);
        for (i = 0; i < N(cases); i++) {
                memset(&buf, 0, sizeof(buf));
                e = ews_usage_event_init(&buf);
                snprintf(e->event_type, sizeof(e->event_type), "%s",
                         cases[i].type);
                if (cases[i].page) {
                        snprintf(buf.attrs[0].key, sizeof(buf.attrs[0].key),
                                 "page_class");
                        snprintf(buf.attrs[0].value, sizeof(buf.attrs[0].value),
                                 "%s", cases[i].page);
                        e->attr_cnt = 1;
                }
                e->has_value = cases[i].has_value;
                e->value = cases[i].value;
                assert_true(ews_score_scale(&config.score, e) == cases[i].want);
                /* the points are the type's times the scale */
                assert_true(ews_score_points(&config.score, e) ==
                            cal_configured_points(&config, cases[i].type) *
                                    cases[i].want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auc_known_cases),
                cmocka_unit_test(test_auc_one_class_is_undefined),
                cmocka_unit_test(test_auc_equals_pair_count),
                cmocka_unit_test(test_precision_top),
                cmocka_unit_test(test_precision_top_count_is_exact),
                cmocka_unit_test_setup_teardown(test_features_at_cutoff,
                                                features_setup,
                                                features_teardown),
                cmocka_unit_test_setup_teardown(
                        test_outcome_labels, features_setup, features_teardown),
                cmocka_unit_test_setup_teardown(
                        test_stage_types_are_not_features, features_setup,
                        features_teardown),
                cmocka_unit_test(test_history_keeps_the_range),
                cmocka_unit_test(test_score_scale_table),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("calibrate", tests, NULL, NULL);
}
