/*
 * The users' retention (host and port as arguments; run by
 * tests/integration/test_state.py): users kept as fields of their
 * buckets have no expiry of their own; the leader's sweep deletes those a
 * retention past their last write's day, and none written meanwhile.
 */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/codec.h"
#include "store/leader.h"
#include "store/scripts.h"
#include "store_test.h"
#include "util/hash.h"

#define DAY       86400000LL
#define D0        20454LL /* 2026-01-01 */
#define RETENTION DAY     /* store_open's */

static void test_expired_cases(void **state)
{
        static const struct {
                int32_t day;
                int64_t now_ms;
                bool expired;
        } cases[] = {
                {0, 100 * DAY, false}, /* no day known: never judged */
                {D0, D0 * DAY, false},
                {D0, (D0 + 2) * DAY + RETENTION - 1, false},
                {D0, (D0 + 2) * DAY + RETENTION, true},
                {D0, (D0 + 30) * DAY, true},
        };
        struct ews_user_keep keep;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(&keep, 0, sizeof(keep));
                keep.day = cases[i].day;
                assert_int_equal(ews_store_user_expired(&keep, RETENTION,
                                                        cases[i].now_ms),
                                 cases[i].expired);
        }
}

/* Commits the users, on the wall-clock day `day`, as partition 0's next
 * offset. */
static void commit_users(struct ews_store *store, struct ews_user *users,
                         size_t cnt, int64_t day, int64_t *offset)
{
        struct ews_store_user su[4];
        struct ews_commit commit;
        size_t i;

        assert_true(cnt <= 4);
        for (i = 0; i < cnt; i++) {
                su[i].user = &users[i];
                su[i].deadline_ms = 0;
        }
        memset(&commit, 0, sizeof(commit));
        commit.users = su;
        commit.user_cnt = cnt;
        commit.idle_ms = day * DAY + 3600000;
        store_test_commit_next(store, &commit, offset);
}

/* Sweeps every bucket once at now_ms: how many users went. */
static int64_t sweep_all(struct ews_store *store, int64_t now_ms)
{
        int64_t removed, total = 0;
        char errstr[512];
        int i;

        for (i = 0; i < 8192 / EWS_STORE_SWEEP_MAX; i++) {
                assert_int_equal(ews_store_users_sweep(
                                         store, now_ms, EWS_STORE_SWEEP_MAX,
                                         &removed, errstr, sizeof(errstr)),
                                 EWS_STORE_OK);
                total += removed;
        }
        return total;
}

static long long user_there(redisContext *c, const char *id)
{
        return store_test_int(c, "HEXISTS sweep:ub:%u %s",
                              (unsigned)(ews_hash32(id) % 8192), id);
}

static void test_sweep(void **state)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_store *store = store_open();
        struct ews_user users[2];
        const int64_t due = (D0 + 2) * DAY + RETENTION;
        int64_t offset = -1;
        int i;

        (void)state;
        assert_true(c && !c->err);
        memset(users, 0, sizeof(users));
        for (i = 0; i < 2; i++) {
                snprintf(users[i].user_id, sizeof(users[i].user_id), "u-%d", i);
                users[i].stage = EWS_STAGE_TRIAL;
                users[i].engagement = 1.0;
                users[i].engagement_ref_ms = D0 * DAY;
        }
        commit_users(store, users, 2, D0, &offset);
        /* kept, with no expiry of their own, until the retention is past */
        assert_int_equal(user_there(c, "u-0"), 1);
        assert_int_equal(store_test_int(c, "PTTL sweep:ub:%u",
                                        (unsigned)(ews_hash32("u-0") % 8192)),
                         -1);
        assert_int_equal(sweep_all(store, due - 1), 0);
        assert_int_equal(user_there(c, "u-0") + user_there(c, "u-1"), 2);
        /* u-1 written again a day later lives a day longer */
        commit_users(store, &users[1], 1, D0 + 1, &offset);
        assert_int_equal(sweep_all(store, due), 1);
        assert_int_equal(user_there(c, "u-0"), 0);
        assert_int_equal(user_there(c, "u-1"), 1);
        assert_int_equal(sweep_all(store, due + DAY), 1);
        assert_int_equal(user_there(c, "u-1"), 0);
        printf("sweep: expired users deleted\n");
        ews_store_destroy(store);
        redisFree(c);
}

/* scripts/sweep.lua on u-w with the value read: how many it deleted. */
static long long sweep_script(redisContext *c, unsigned bucket,
                              const redisReply *read)
{
        return store_test_int(c, "EVAL %s 1 sweep:ub:%u u-w %b",
                              store_script_sweep, bucket, read->str,
                              (size_t)read->len);
}

/* A user written between the sweep's read and its delete stays: the
 * script deletes a value only while it is the one read. */
static void test_sweep_spares_a_rewrite(void **state)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_store *store = store_open();
        struct ews_user user;
        int64_t offset = -1, removed;
        redisReply *old;
        unsigned bucket = ews_hash32("u-w") % 8192;
        char errstr[512];

        (void)state;
        assert_int_equal(store_test_wipe("sweep:"), 0); /* a fence anew */
        assert_true(c && !c->err);
        memset(&user, 0, sizeof(user));
        strcpy(user.user_id, "u-w");
        user.stage = EWS_STAGE_TRIAL;
        user.engagement = 1.0;
        commit_users(store, &user, 1, D0, &offset);
        old = store_test_cmd(c, "HGET sweep:ub:%u u-w", bucket);
        assert_int_equal(old->type, REDIS_REPLY_STRING);
        /* the owner writes it again */
        user.engagement = 2.0;
        commit_users(store, &user, 1, D0, &offset);
        /* the sweep's script with the value read before: nothing goes */
        assert_int_equal(sweep_script(c, bucket, old), 0);
        freeReplyObject(old);
        assert_int_equal(user_there(c, "u-w"), 1);
        /* a sweep of today deletes nothing written today */
        assert_int_equal(ews_store_users_sweep(store, D0 * DAY, 64, &removed,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(removed, 0);
        /* the value as it is now goes */
        old = store_test_cmd(c, "HGET sweep:ub:%u u-w", bucket);
        assert_int_equal(sweep_script(c, bucket, old), 1);
        freeReplyObject(old);
        assert_int_equal(user_there(c, "u-w"), 0);
        printf("sweep: a rewrite spared\n");
        ews_store_destroy(store);
        redisFree(c);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_expired_cases),
                cmocka_unit_test(test_sweep),
                cmocka_unit_test(test_sweep_spares_a_rewrite),
        };

        return store_test_main(argc, argv, "sweep:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
