/* The funnel's arithmetic and the segments' order (util/funnel.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <math.h>

#include "util/funnel.h"

#define H  (7.0 * 86400000.0)
#define T0 1767225600000LL

/* (E, t_ref) of users as a sorted set would hold them. */
static const struct {
        double e;
        int64_t ref_ms;
} users[] = {
        {100, T0},
        {50, T0 + 86400000LL * 7},
        {100.5, T0 - 3600000},
        {1e-9, T0 + 999},
        {3, T0 + 86400000LL * 30},
        {0, T0},
        {-2, T0},
        {-2, T0 + 86400000LL * 3},
        {-0.5, T0 - 86400000},
        {1e6, T0 - 86400000LL * 200},
        {75, T0 + 86400000LL * 2},
};
#define N (sizeof(users) / sizeof(users[0]))

static double decayed(size_t i, int64_t now)
{
        return users[i].e * exp2(-(double)(now - users[i].ref_ms) / H);
}

/* The key: the positive set above the other, each by its score. */
static int key_cmp(size_t a, size_t b)
{
        int pa = users[a].e > 0, pb = users[b].e > 0;
        double sa = ews_segment_score(users[a].e, users[a].ref_ms, H),
               sb = ews_segment_score(users[b].e, users[b].ref_ms, H);

        if (pa != pb)
                return pa - pb;
        return (sa > sb) - (sa < sb);
}

static void test_segment_order_is_the_decayed_order(void **state)
{
        /* now: before, at and long after every t_ref */
        static const int64_t nows[] = {T0 - 86400000LL * 300, T0,
                                       T0 + 86400000LL * 31,
                                       T0 + 86400000LL * 365 * 3};
        size_t a, b, k;

        (void)state;
        for (k = 0; k < sizeof(nows) / sizeof(nows[0]); k++)
                for (a = 0; a < N; a++)
                        for (b = 0; b < N; b++) {
                                double ea = decayed(a, nows[k]),
                                       eb = decayed(b, nows[k]);
                                int want = (ea > eb) - (ea < eb);

                                /* equal (to rounding) at one now is equal
                                 * at all: either order will do */
                                if (a != b &&
                                    fabs(ea - eb) <= 1e-12 * fabs(ea + eb))
                                        continue;
                                if (key_cmp(a, b) != want)
                                        fail_msg("now %lld: users %zu, %zu: "
                                                 "E %g vs %g, key order %d",
                                                 (long long)nows[k], a, b, ea,
                                                 eb, key_cmp(a, b));
                        }
}

static void test_segment_of_stage_and_sign(void **state)
{
        struct ews_user u = {0};

        (void)state;
        assert_int_equal(ews_segment_of(&u), -1); /* no trial: none */
        u.stage = EWS_STAGE_TRIAL;
        assert_int_equal(ews_segment_of(&u), 3); /* E = 0 */
        u.engagement = 4;
        assert_int_equal(ews_segment_of(&u), 2);
        u.stage = EWS_STAGE_LOST;
        assert_int_equal(ews_segment_of(&u), 10);
}

static void test_funnel_buckets_and_median(void **state)
{
        static const struct {
                int64_t ms;
                int bucket;
        } cases[] = {
                {-5, 0},        {0, 0},
                {59999, 0},     {60000, 1},
                {84852, 1},     {84853, 2},
                {120000, 3},    {3600000, 12},
                {86400000, 21}, {INT64_MAX / 2, EWS_FUNNEL_BUCKETS - 1},
        };
        int64_t hist[EWS_FUNNEL_BUCKETS] = {0};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (ews_funnel_bucket(cases[i].ms) != cases[i].bucket)
                        fail_msg("%lld ms: bucket %d, want %d",
                                 (long long)cases[i].ms,
                                 ews_funnel_bucket(cases[i].ms),
                                 cases[i].bucket);
        assert_int_equal(ews_funnel_median_ms(hist), -1);
        /* 3 under an hour's bucket, 4 at a day: the median is a day's */
        hist[ews_funnel_bucket(3600000)] = 3;
        hist[ews_funnel_bucket(86400000)] = 4;
        i = (size_t)ews_funnel_median_ms(hist);
        assert_true(i > 86400000 / 1.19 && i < 86400000 * 1.19);
        /* every bucket's middle falls in it */
        for (i = 0; i < EWS_FUNNEL_BUCKETS; i++)
                assert_int_equal(
                        ews_funnel_bucket(ews_funnel_bucket_ms((int)i)),
                        (int)i);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_segment_order_is_the_decayed_order),
                cmocka_unit_test(test_segment_of_stage_and_sign),
                cmocka_unit_test(test_funnel_buckets_and_median),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("funnel", tests, NULL, NULL);
}
