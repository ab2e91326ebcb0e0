/*
 * An account's users active at day ends, against a real Redis (host and
 * port as arguments; run by tests/integration/test_state.py): a run of
 * days is written as +n at its first day and -n after its last, and reads
 * back as every day's count, the same as days written one by one; the
 * leader's decision drops the days before its drop day and keeps the
 * counts of those after it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_test.h"

#define DAY0 20454 /* 2026-01-01 */

/* One commit on partition 0 adding the deltas. */
static void commit_deltas(struct ews_store *store,
                          const struct ews_cohort_delta *deltas, size_t cnt)
{
        static int64_t offset = -1;
        struct ews_commit commit;

        memset(&commit, 0, sizeof(commit));
        commit.watermark_ms = (int64_t)DAY0 * 86400000;
        commit.idle_ms = commit.watermark_ms;
        commit.cohorts = deltas;
        commit.cohort_cnt = cnt;
        store_test_commit_next(store, &commit, &offset);
}

static int64_t day_n(const struct ews_store_cohort *c, int64_t day)
{
        int i;

        for (i = 0; i < c->day_cnt; i++)
                if (c->days[i].day == day)
                        return c->days[i].n;
        return 0;
}

static void test_runs_of_days(void **state)
{
        struct ews_store *store = store_open();
        /* acc-r: a run of 7 days, one of 3 from its middle, a single day;
         * acc-d: the same, day by day */
        struct ews_cohort_delta runs[] = {
                {.kind = 'a',
                 .id = "acc-r",
                 .day = DAY0,
                 .day_last = DAY0 + 6,
                 .n = 2},
                {.kind = 'a',
                 .id = "acc-r",
                 .day = DAY0 + 3,
                 .day_last = DAY0 + 5,
                 .n = 1},
                {.kind = 'a',
                 .id = "acc-r",
                 .day = DAY0 + 9,
                 .day_last = DAY0 + 9,
                 .n = 1},
        };
        struct ews_cohort_delta days[11];
        struct ews_store_cohort r, d;
        char errstr[512];
        int64_t day;
        size_t n = 0;

        (void)state;
        for (day = DAY0; day <= DAY0 + 9; day++) {
                int64_t want = (day <= DAY0 + 6 ? 2 : 0) +
                               (day >= DAY0 + 3 && day <= DAY0 + 5) +
                               (day == DAY0 + 9);

                if (want)
                        days[n++] = (struct ews_cohort_delta){.kind = 'a',
                                                              .id = "acc-d",
                                                              .day = day,
                                                              .day_last = day,
                                                              .n = want};
        }
        commit_deltas(store, runs, 3);
        commit_deltas(store, days, n);
        assert_int_equal(ews_store_cohort_get(store, EWS_COHORT_ACCOUNT,
                                              "acc-r", &r, errstr,
                                              sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_cohort_get(store, EWS_COHORT_ACCOUNT,
                                              "acc-d", &d, errstr,
                                              sizeof(errstr)),
                         EWS_STORE_OK);
        for (day = DAY0 - 1; day <= DAY0 + 11; day++)
                assert_int_equal(day_n(&r, day), day_n(&d, day));
        assert_int_equal(day_n(&r, DAY0 + 4), 3);

        /* the leader decides up to DAY0 + 3: the days from DAY0 + 4 keep
         * their counts, the run's start now lies before them */
        r.account.last_day = DAY0 + 3;
        assert_int_equal(ews_store_lease(store, "t", 10000, &day, errstr,
                                         sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_cohort_commit(store, "t", day, &r, DAY0 + 4,
                                                 DAY0 + 4, NULL, 0, errstr,
                                                 sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_cohort_get(store, EWS_COHORT_ACCOUNT,
                                              "acc-r", &r, errstr,
                                              sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(day_n(&r, DAY0 + 3), 0);
        for (day = DAY0 + 4; day <= DAY0 + 11; day++)
                assert_int_equal(day_n(&r, day), day_n(&d, day));
        assert_true(r.account.last_day == DAY0 + 3);
        printf("cohort: runs read as days\n");
        ews_store_destroy(store);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_runs_of_days)};

        return store_test_main(argc, argv, "cohort:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
