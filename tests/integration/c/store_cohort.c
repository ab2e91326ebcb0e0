/*
 * An account's users active at day ends, against a real Redis (host and
 * port as arguments; run by tests/integration/test_state.py): a run of
 * days is written as +n at its first day and -n after its last, and reads
 * back as every day's count, the same as days written one by one; the
 * leader's decision drops the days before its drop day and keeps the
 * counts of those after it. The leader reads and writes many cohorts at
 * once: each write has its own outcome, a lost script is loaded again,
 * and a stale lease fences them all.
 */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/leader.h"
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

/* The leader (owner "t") writes one decision, which applies. */
static void decide_one(struct ews_store *store,
                       struct ews_store_cohort_write *w)
{
        char errstr[512];
        int64_t token;

        assert_int_equal(ews_store_lease(store, "t", 10000, &token, errstr,
                                         sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_cohorts_commit(store, "t", token, w, 1,
                                                  errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(w->result, EWS_STORE_OK);
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
        static struct ews_store_cohort two[2] = {{.kind = 'a', .id = "acc-r"},
                                                 {.kind = 'a', .id = "acc-d"}};
        struct ews_store_cohort *r = &two[0], *d = &two[1];
        struct ews_store_cohort_write w = {
                .cohort = r, .drop_before_day = DAY0 + 4, .next_day = DAY0 + 4};
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
        assert_int_equal(
                ews_store_cohorts_get(store, two, 2, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        for (day = DAY0 - 1; day <= DAY0 + 11; day++)
                assert_int_equal(day_n(r, day), day_n(d, day));
        assert_int_equal(day_n(r, DAY0 + 4), 3);

        /* the leader decides up to DAY0 + 3: the days from DAY0 + 4 keep
         * their counts, the run's start now lies before them */
        r->account.last_day = DAY0 + 3;
        decide_one(store, &w);
        assert_int_equal(
                ews_store_cohorts_get(store, r, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_int_equal(day_n(r, DAY0 + 3), 0);
        for (day = DAY0 + 4; day <= DAY0 + 11; day++)
                assert_int_equal(day_n(r, day), day_n(d, day));
        assert_true(r->account.last_day == DAY0 + 3);
        assert_true(ews_store_lease_release(store, "t") == EWS_STORE_OK);
        printf("cohort: runs read as days\n");
        ews_store_destroy(store);
}

/* Three decisions written at once after the server lost the script: two
 * apply (one with an alert's record), one finds its account expired; then
 * a token that no longer holds the lease applies none. */
static void test_writes_at_once(void **state)
{
        struct ews_store *store = store_open();
        struct ews_cohort_delta deltas[] = {
                {.kind = 'a',
                 .id = "acc-1",
                 .day = DAY0,
                 .day_last = DAY0,
                 .n = 1},
                {.kind = 'a',
                 .id = "acc-2",
                 .day = DAY0,
                 .day_last = DAY0,
                 .n = 1},
        };
        static struct ews_store_cohort c[3] = {{.kind = 'a', .id = "acc-1"},
                                               {.kind = 'a', .id = "acc-2"},
                                               {.kind = 'a', .id = "acc-3"}};
        struct ews_outbox_record record = {
                .id = "rec-1", .data = (const unsigned char *)"x", .len = 1};
        struct ews_store_cohort_write w[3];
        redisContext *redis = redisConnect(store_test_host, store_test_port);
        char errstr[512];
        int64_t token;
        int i;

        (void)state;
        assert_true(redis && !redis->err);
        commit_deltas(store, deltas, 2);
        assert_int_equal(
                ews_store_cohorts_get(store, c, 3, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_int_equal(c[0].day_cnt, 1);
        assert_int_equal(c[2].day_cnt, 0);
        for (i = 0; i < 3; i++) {
                c[i].account.last_day = DAY0;
                w[i] = (struct ews_store_cohort_write){
                        .cohort = &c[i],
                        .drop_before_day = DAY0 + 1,
                        .next_day = DAY0 + 1,
                };
        }
        w[1].outbox = &record;
        w[1].outbox_cnt = 1;
        assert_int_equal(ews_store_lease(store, "t", 10000, &token, errstr,
                                         sizeof(errstr)),
                         EWS_STORE_OK);
        freeReplyObject(store_test_cmd(redis, "SCRIPT FLUSH"));
        assert_int_equal(ews_store_cohorts_commit(store, "t", token, w, 3,
                                                  errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(w[0].result, EWS_STORE_OK);
        assert_int_equal(w[1].result, EWS_STORE_OK);
        assert_int_equal(w[2].result, EWS_STORE_GONE);
        assert_int_equal(store_test_int(redis, "HEXISTS cohort:a:acc-%d s", 1),
                         1);
        assert_int_equal(store_test_int(redis, "HEXISTS cohort:a:acc-%d s", 2),
                         1);
        assert_int_equal(store_test_int(redis, "EXISTS cohort:a:acc-%d", 3), 0);
        assert_int_equal(store_test_int(redis, "HLEN cohort:o:%s", "leader"),
                         1);

        for (i = 0; i < 3; i++)
                c[i].account.last_day = DAY0 + 1;
        assert_int_equal(ews_store_cohorts_commit(store, "t", token + 1, w, 3,
                                                  errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        for (i = 0; i < 3; i++)
                assert_int_equal(w[i].result, EWS_STORE_FENCED);
        assert_int_equal(
                ews_store_cohorts_get(store, c, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_true(c[0].account.last_day == DAY0);
        printf("cohort: written at once\n");
        redisFree(redis);
        ews_store_destroy(store);
}

/* Reads c's state anew: decided, first day DAY0, open 5, and these. */
static void read_state(struct ews_store *store, struct ews_store_cohort *c,
                       int64_t last_day, double baseline)
{
        char errstr[512];

        memset(&c->account, 0, sizeof(c->account));
        c->decided = false;
        assert_int_equal(
                ews_store_cohorts_get(store, c, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_true(c->decided && c->account.first_day == DAY0 &&
                    c->account.last_day == last_day &&
                    c->account.open_ms == 5 && c->account.baseline == baseline);
}

/* An account's leader state is one field (s); the five an earlier version
 * kept it in (s:*) are read, and go at the next decision. */
static void test_state_in_one_field(void **state)
{
        struct ews_store *store = store_open();
        static struct ews_store_cohort c = {.kind = 'a', .id = "acc-9"};
        struct ews_store_cohort_write w = {.cohort = &c,
                                           .drop_before_day = DAY0 + 3,
                                           .next_day = DAY0 + 3};
        redisContext *redis = redisConnect(store_test_host, store_test_port);
        redisReply *reply;

        (void)state;
        assert_true(redis && !redis->err);
        freeReplyObject(store_test_cmd(
                redis,
                "HSET cohort:a:acc-9 s:first %d s:last %d s:open 5 "
                "s:res 0 s:base 1.5 d%d 1",
                DAY0, DAY0 + 1, DAY0 + 2));
        read_state(store, &c, DAY0 + 1, 1.5);
        c.account.last_day = DAY0 + 2;
        c.account.baseline = 0.1; /* no short decimal: all 17 digits */
        decide_one(store, &w);
        assert_int_equal(store_test_int(redis, "HLEN cohort:a:acc-9"), 1);
        reply = store_test_cmd(redis, "HGET cohort:a:acc-9 s");
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        assert_string_equal(reply->str, "20454 20456 5 0 0.10000000000000001");
        freeReplyObject(reply);
        read_state(store, &c, DAY0 + 2, 0.1);
        printf("cohort: state in one field\n");
        redisFree(redis);
        ews_store_destroy(store);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runs_of_days),
                cmocka_unit_test(test_writes_at_once),
                cmocka_unit_test(test_state_in_one_field)};

        return store_test_main(argc, argv, "cohort:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
