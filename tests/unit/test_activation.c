/* Activation: the definition by score and by behaviour, with the clock
 * passed in (every time is a constant below). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/config.h"
#include "score/score.h"

#define T0   1767225600000LL /* 2026-01-01T00:00:00Z, the trial's start */
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

static struct ews_attr event_attrs[EWS_ATTR_MAX];

static struct ews_usage_event event_make(const char *type, const char *product,
                                         int64_t t, int seq)
{
        struct ews_usage_event e;

        memset(&e, 0, sizeof(e));
        e.attrs = event_attrs;
        snprintf(e.event_id, sizeof(e.event_id), "e-%d", seq);
        snprintf(e.user_id, sizeof(e.user_id), "u-1");
        snprintf(e.event_type, sizeof(e.event_type), "%s", type);
        snprintf(e.product, sizeof(e.product), "%s", product);
        e.occurred_at_ms = t;
        return e;
}

static struct ews_activation_cond cond(enum ews_activation_kind kind,
                                       const char *name, int count,
                                       int64_t within_ms)
{
        struct ews_activation_cond c;

        memset(&c, 0, sizeof(c));
        c.kind = kind;
        snprintf(c.name, sizeof(c.name), "%s", name);
        c.count = count;
        c.within_ms = within_ms;
        return c;
}

/* The default model with these conditions (up to three). */
static struct ews_score_conf conf_with(double points, int match,
                                       const struct ews_activation_cond *c,
                                       int cnt)
{
        static struct ews_config config;

        ews_config_defaults(&config);
        config.score.activation_points = points;
        config.score.activation_window_ms = 7 * DAY;
        config.score.activation_match = match;
        config.score.activation_cnt = cnt;
        memcpy(config.score.activation, c, (size_t)cnt * sizeof(*c));
        return config.score;
}

/* The pure check: a user's progress, a definition, the time it is judged
 * at. */
static void test_reached_table(void **state)
{
        static const struct {
                const char *what;
                double points;
                int match, conds;
                uint32_t met;    /* the user's progress */
                double e;        /* its engagement */
                int64_t started; /* its trial's start */
                int64_t at;      /* judged at */
                bool want;
        } cases[] = {
                /* the score alone, as it always was */
                {"score met", 40, 0, 0, 0, 40, T0, T0 + DAY, true},
                {"score short", 40, 0, 0, 0, 39.9, T0, T0 + DAY, false},
                {"score late", 40, 0, 0, 0, 80, T0, T0 + 8 * DAY, false},
                {"no trial", 40, 0, 0, 0, 80, 0, T0, false},
                {"before start", 40, 0, 0, 0, 40, T0, T0 - HOUR, true},
                /* all of: score (bit 0) and two conditions (bits 1, 2) */
                {"all met", 40, 0, 2, 0x7, 10, T0, T0 + DAY, true},
                {"all, one short", 40, 0, 2, 0x3, 90, T0, T0 + DAY, false},
                {"all, score short", 40, 0, 2, 0x6, 90, T0, T0 + DAY, false},
                {"all, late", 40, 0, 2, 0x7, 90, T0, T0 + 7 * DAY + 1, false},
                {"behaviour only", 0, 0, 2, 0x6, 1, T0, T0 + DAY, true},
                {"behaviour only, short", 0, 0, 2, 0x2, 99, T0, T0 + DAY,
                 false},
                /* any of */
                {"any, one", 0, 1, 2, 0x4, 0, T0, T0 + DAY, true},
                {"any, score", 40, 1, 2, 0x1, 50, T0, T0 + DAY, true},
                {"any, none", 40, 1, 2, 0x0, 99, T0, T0 + DAY, false},
                /* a bit of a condition no longer defined does not count */
                {"stale bit", 0, 1, 1, 0x4, 0, T0, T0 + DAY, false},
        };
        struct ews_activation_cond c[2] = {
                cond(EWS_ACTIVATION_EVENT, "invite_sent", 1, 0),
                cond(EWS_ACTIVATION_PRODUCTS, "", 2, 0)};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_score_conf conf = conf_with(
                        cases[i].points, cases[i].match, c, cases[i].conds);
                struct ews_user u;

                memset(&u, 0, sizeof(u));
                u.activation_met = cases[i].met;
                u.engagement = cases[i].e;
                u.trial_started_ms = cases[i].started;
                if (ews_activation_reached(&conf, &u, cases[i].at) !=
                    cases[i].want)
                        fail_msg("case %s: want %d", cases[i].what,
                                 cases[i].want);
        }
}

/* Events through the score stage: what they count, when the trial
 * activates. */
static void test_events_table(void **state)
{
        static const struct {
                const char *type, *product;
                int64_t at;
        } events[] = {
                {"trial_started", "", T0},
                {"feature_used", "reports", T0 + HOUR},
                {"feature_used", "reports", T0 + 2 * HOUR},
                {"feature_used", "crm", T0 + DAY},
                {"feature_used", "crm", T0 + 4 * DAY}, /* past 3d */
                {"invite_sent", "", T0 + 5 * DAY},
                {"feature_used", "billing", T0 + 8 * DAY}, /* past 7d */
        };
        static const struct {
                const char *what;
                double points;
                struct ews_activation_cond c;
                int64_t activated; /* 0: never */
        } cases[] = {
                {"score alone", 40, {EWS_ACTIVATION_EVENT, "", 0, 0}, 0},
                {"one invite",
                 0,
                 {EWS_ACTIVATION_EVENT, "invite_sent", 1, 0},
                 T0 + 5 * DAY},
                {"two products",
                 0,
                 {EWS_ACTIVATION_PRODUCTS, "", 2, 0},
                 T0 + DAY},
                {"three products: the third too late",
                 0,
                 {EWS_ACTIVATION_PRODUCTS, "", 3, 0},
                 0},
                {"4 feature uses",
                 0,
                 {EWS_ACTIVATION_EVENT, "feature_used", 4, 0},
                 T0 + 4 * DAY},
                {"4 feature uses in 3d",
                 0,
                 {EWS_ACTIVATION_EVENT, "feature_used", 4, 3 * DAY},
                 0},
                {"3 feature uses in 3d",
                 0,
                 {EWS_ACTIVATION_EVENT, "feature_used", 3, 3 * DAY},
                 T0 + DAY},
                {"product reports twice",
                 0,
                 {EWS_ACTIVATION_PRODUCT, "reports", 2, 0},
                 T0 + 2 * HOUR},
                {"and the score",
                 40,
                 {EWS_ACTIVATION_PRODUCT, "reports", 2, 0},
                 0},
        };
        size_t i, k;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ews_score_conf conf =
                        conf_with(cases[i].points, EWS_ACTIVATION_ALL,
                                  &cases[i].c, cases[i].c.count ? 1 : 0);
                struct ews_user u;

                memset(&u, 0, sizeof(u));
                for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
                        struct ews_usage_event e =
                                event_make(events[k].type, events[k].product,
                                           events[k].at, (int)k);

                        ews_score_apply(&conf, &u, &e);
                }
                if (u.activated_ms != cases[i].activated)
                        fail_msg("case %s: activated at %lld, want %lld",
                                 cases[i].what, (long long)u.activated_ms,
                                 (long long)cases[i].activated);
                /* met and activated agree */
                if (cases[i].c.count &&
                    (ews_activation_met(&conf, &u) ==
                     ews_activation_used(&conf)) != (cases[i].activated != 0))
                        fail_msg("case %s: met 0x%x", cases[i].what,
                                 ews_activation_met(&conf, &u));
        }
}

/* A behaviour met after the score made the user sales-ready still
 * activates it; the stage stays sales-ready. */
static void test_behaviour_after_sales_ready(void **state)
{
        struct ews_activation_cond c =
                cond(EWS_ACTIVATION_EVENT, "invite_sent", 1, 0);
        struct ews_score_conf conf = conf_with(0, EWS_ACTIVATION_ALL, &c, 1);
        struct ews_usage_event e;
        struct ews_user u;
        int k;

        (void)state;
        memset(&u, 0, sizeof(u));
        e = event_make("trial_started", "", T0, 0);
        ews_score_apply(&conf, &u, &e);
        for (k = 1; k <= 40; k++) { /* 120 points of feature uses */
                e = event_make("feature_used", "", T0 + k * 60000, k);
                ews_score_apply(&conf, &u, &e);
        }
        assert_int_equal(u.stage, EWS_STAGE_SALES_READY);
        assert_true(u.activated_ms == 0);
        e = event_make("invite_sent", "", T0 + DAY, 99);
        ews_score_apply(&conf, &u, &e);
        assert_true(u.activated_ms == T0 + DAY);
        assert_int_equal(u.stage, EWS_STAGE_SALES_READY);
}

static void test_text_table(void **state)
{
        struct ews_activation_cond c[3] = {
                cond(EWS_ACTIVATION_EVENT, "invite_sent", 1, 0),
                cond(EWS_ACTIVATION_PRODUCTS, "", 2, 0),
                cond(EWS_ACTIVATION_EVENT, "feature_used", 5, 3 * DAY)};
        struct ews_activation_cond p =
                cond(EWS_ACTIVATION_PRODUCT, "crm", 3, 36 * HOUR);
        static const char *const want[] = {
                "engagement >= 40 within 7d",
                "all of engagement >= 40, invite_sent >= 1, 2 products, "
                "feature_used >= 5 in 3d within 7d",
                "any of invite_sent >= 1, 2 products, feature_used >= 5 in "
                "3d within 7d",
                "all of product crm >= 3 in 36h within 7d",
        };
        struct ews_score_conf confs[4];
        char text[224];
        size_t i;

        (void)state;
        confs[0] = conf_with(40, EWS_ACTIVATION_ALL, c, 0);
        confs[1] = conf_with(40, EWS_ACTIVATION_ALL, c, 3);
        confs[2] = conf_with(0, EWS_ACTIVATION_ANY, c, 3);
        confs[3] = conf_with(0, EWS_ACTIVATION_ALL, &p, 1);
        for (i = 0; i < 4; i++) {
                ews_activation_text(&confs[i], text, sizeof(text));
                assert_string_equal(text, want[i]);
        }
}

static const char *conf_write(const char *text)
{
        static char path[64];
        FILE *fp;

        snprintf(path, sizeof(path), "/tmp/ews-test-activation-%d.yaml",
                 (int)getpid());
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        return path;
}

/* The YAML shape, and what it refuses, with file:line and key. */
static void test_config_table(void **state)
{
        static const struct {
                const char *text;
                const char *want; /* NULL: loads */
        } cases[] = {
                {"scoring:\n  activation:\n    points: 0\n    window: 7d\n"
                 "    conditions:\n      - {event: invite_sent}\n"
                 "      - {products: 2}\n"
                 "      - {event: feature_used, count: 5, within: 3d}\n",
                 NULL},
                {"scoring:\n  activation.match: any\n"
                 "  activation.conditions: [{product: crm, count: 2}]\n",
                 NULL},
                {"scoring:\n  activation.conditions:\n    - {count: 2}\n",
                 "3: scoring.activation.conditions[0]: a condition needs "
                 "exactly one of event, product or products"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {event: a, product: b}\n",
                 "3: scoring.activation.conditions[0]: a condition needs"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {event: a, count: 0}\n",
                 "3: scoring.activation.conditions[0].count: expected an "
                 "integer from 1 to 65535"},
                {"scoring:\n  activation.conditions:\n    - {products: 9}\n",
                 "3: scoring.activation.conditions[0].products: expected a "
                 "number of distinct products from 1 to 8"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {products: 2, count: 3}\n",
                 "3: scoring.activation.conditions[0]: products is the "
                 "count"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {products: 2}\n    - {products: 3}\n",
                 "4: scoring.activation.conditions[1]: at most one products"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {event: a, within: soon}\n",
                 "3: scoring.activation.conditions[0].within: expected a "
                 "duration"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {event: a, typo: 1}\n",
                 "3: scoring.activation.conditions[0].typo: unknown key"},
                {"scoring:\n  activation.conditions:\n"
                 "    - {event: a, event: b}\n",
                 "3: scoring.activation.conditions[0].event: duplicate key"},
                {"scoring:\n  activation.conditions:\n    - invite_sent\n",
                 "3: scoring.activation.conditions[0]: each condition is a "
                 "mapping"},
                {"scoring:\n  activation.window: 3d\n"
                 "  activation.conditions:\n"
                 "    - {event: a}\n    - {event: b, within: 4d}\n",
                 "5: scoring.activation.conditions[1].within: must not "
                 "exceed scoring.activation.window"},
                {"scoring:\n  activation.match: some\n",
                 "2: scoring.activation.match: expected all or any"},
                {"scoring:\n  activation.match: any\n",
                 "scoring.activation.match: any needs "
                 "scoring.activation.conditions"},
                {"scoring:\n  activation.conditions: {event: a}\n",
                 "2: scoring.activation.conditions: expected a value, not a "
                 "section"},
        };
        static struct ews_config config;
        char errstr[512];
        const char *path;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc;

                path = conf_write(cases[i].text);
                ews_config_defaults(&config);
                rc = ews_config_load(&config, path, errstr, sizeof(errstr));
                unlink(path);
                if (!cases[i].want) {
                        if (rc)
                                fail_msg("case %zu: %s", i, errstr);
                        continue;
                }
                if (!rc || strncmp(errstr, path, strlen(path)) ||
                    !strstr(errstr, cases[i].want))
                        fail_msg("case %zu: got '%s', want '%s'", i,
                                 rc ? errstr : "(loaded)", cases[i].want);
        }
        /* the first case, read back */
        path = conf_write(cases[0].text);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        unlink(path);
        assert_int_equal(config.score.activation_cnt, 3);
        assert_int_equal(config.score.activation[1].kind,
                         EWS_ACTIVATION_PRODUCTS);
        assert_int_equal(config.score.activation[2].count, 5);
        assert_true(config.score.activation[2].within_ms == 3 * DAY);
        assert_string_equal(config.rules.activation,
                            "all of invite_sent >= 1, 2 products, "
                            "feature_used >= 5 in 3d within 7d");
        /* the environment cannot set the list */
        setenv("EWS_SCORING_ACTIVATION_CONDITIONS", "x", 1);
        assert_int_equal(ews_config_load(&config, NULL, errstr, sizeof(errstr)),
                         -1);
        unsetenv("EWS_SCORING_ACTIVATION_CONDITIONS");
        assert_non_null(strstr(errstr, "cannot be set from the environment"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reached_table),
                cmocka_unit_test(test_events_table),
                cmocka_unit_test(test_behaviour_after_sales_ready),
                cmocka_unit_test(test_text_table),
                cmocka_unit_test(test_config_table),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("activation", tests, NULL, NULL);
}
