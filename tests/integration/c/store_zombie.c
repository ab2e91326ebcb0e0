/*
 * The store's fence against a real Redis (host and port as arguments; run
 * by tests/integration/test_state.py): an owner that lost its partition is
 * a zombie, and its commit must change nothing.
 */

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/views.h"
#include "store_test.h"

static enum ews_store_result commit_user_in(struct ews_store *store,
                                            int32_t partition, int64_t epoch,
                                            int64_t expected, int64_t next,
                                            double engagement, char *errstr,
                                            size_t errstr_size)
{
        struct ews_user user;
        struct ews_store_user su = {&user, 0};
        struct ews_commit commit;
        struct ews_funnel_delta funnel;
        struct ews_segment_move move = {"u-z", -1, 2, 0};

        /* the funnel's share goes with the commit, or not at all */
        memset(&funnel, 0, sizeof(funnel));
        strcpy(funnel.campaign_id, "c-z");
        funnel.count[EWS_FUNNEL_SIGNUP] = 1;
        funnel.to_activated[3] = 1;
        move.score = engagement;
        memset(&user, 0, sizeof(user));
        snprintf(user.user_id, sizeof(user.user_id), "u-z%d", (int)partition);
        move.user_id = user.user_id;
        user.stage = EWS_STAGE_TRIAL;
        user.engagement = engagement;
        user.engagement_ref_ms = 1767225600000LL;
        memset(&commit, 0, sizeof(commit));
        commit.source = EWS_SOURCE_USAGE;
        commit.partition = partition;
        commit.epoch = epoch;
        commit.expected_offset = expected;
        commit.next_offset = next;
        commit.users = &su;
        commit.user_cnt = 1;
        commit.funnel = &funnel;
        commit.funnel_cnt = 1;
        commit.segments = &move;
        commit.segment_cnt = 1;
        return ews_store_commit(store, &commit, errstr, errstr_size);
}

static enum ews_store_result commit_user(struct ews_store *store, int64_t epoch,
                                         int64_t expected, int64_t next,
                                         double engagement)
{
        char errstr[512];

        return commit_user_in(store, 0, epoch, expected, next, engagement,
                              errstr, sizeof(errstr));
}

static void test_zombie(void **state)
{
        struct ews_store *a = store_open(), *b = store_open(), *c;
        struct ews_fence fa, fb, fc;
        struct ews_user user;
        char errstr[512];

        (void)state;
        assert_int_equal(ews_store_fence_claim(a, EWS_SOURCE_USAGE, 0, &fa,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_true(fa.next_offset == -1);
        assert_int_equal(commit_user(a, fa.epoch, -1, 10, 1.0), EWS_STORE_OK);

        /* the partition moves to b: a new epoch, from a's offset */
        assert_int_equal(ews_store_fence_claim(b, EWS_SOURCE_USAGE, 0, &fb,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_true(fb.epoch == fa.epoch + 1);
        assert_true(fb.next_offset == 10);
        assert_int_equal(commit_user(b, fb.epoch, 10, 20, 2.0), EWS_STORE_OK);

        /* a wakes up and commits what it had: fenced off, no change */
        assert_int_equal(commit_user(a, fa.epoch, 10, 30, 99.0),
                         EWS_STORE_FENCED);
        /* b replaying its own batch: the offset no longer matches */
        assert_int_equal(commit_user(b, fb.epoch, 10, 20, 3.0),
                         EWS_STORE_FENCED);

        c = store_open();
        assert_int_equal(ews_store_user_get(c, "u-z0", &user, NULL, errstr,
                                            sizeof(errstr)),
                         EWS_STORE_OK);
        assert_float_equal(user.engagement, 2.0, 0);
        /* the funnel counted the two applied commits alone */
        {
                struct ews_funnel f;
                struct ews_segment_query q = {
                        EWS_STAGE_TRIAL, false, NULL, NULL, NULL, NULL};
                struct ews_user seg[4];
                size_t n;
                char next[EWS_SEGMENT_CURSOR_MAX];

                assert_int_equal(ews_store_funnel_get(c, "c-z", &f, errstr,
                                                      sizeof(errstr)),
                                 EWS_STORE_OK);
                assert_int_equal(f.count[EWS_FUNNEL_SIGNUP], 2);
                assert_int_equal(f.to_activated[3], 2);
                assert_int_equal(ews_store_segment(c, &q, seg, 4, &n, next,
                                                   errstr, sizeof(errstr)),
                                 EWS_STORE_OK);
                assert_int_equal(n, 1);
                assert_string_equal(seg[0].user_id, "u-z0");
                assert_string_equal(next, "");
        }
        assert_int_equal(ews_store_fence_claim(c, EWS_SOURCE_USAGE, 0, &fc,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_true(fc.next_offset == 20);
        printf("zombie: rejected\n");
        ews_store_destroy(a);
        ews_store_destroy(b);
        ews_store_destroy(c);
        ews_store_destroy(NULL);
}

/* A fence touched between the round's read of it and its MULTI/EXEC
 * (another client writing it, here without changing it): Redis refuses
 * the whole transaction, nothing of the commit is applied. */
static void test_fence_moved_during_commit(void **state)
{
        struct ews_store *store = store_open();
        struct ews_fence fence;
        struct ews_user user;
        double last_ok = 0;
        char errstr[512];
        int attempt, moved = 0;
        bool failed = false;
        int64_t offset;
        pid_t child;

        (void)state;
        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE, 1,
                                               &fence, errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        offset = fence.next_offset;
        child = fork();
        assert_true(child >= 0);
        if (!child) {
                redisContext *c =
                        redisConnect(store_test_host, store_test_port);

                for (;;) /* touches the fence, changes nothing in it */
                        freeReplyObject(redisCommand(
                                c, "HINCRBY zombie:p:usage:1 epoch 0"));
        }
        for (attempt = 1; attempt <= 5000 && !moved && !failed; attempt++) {
                switch (commit_user_in(store, 1, fence.epoch, offset,
                                       offset + 1 + (offset < 0), attempt,
                                       errstr, sizeof(errstr))) {
                case EWS_STORE_OK:
                        last_ok = attempt;
                        offset = offset + 1 + (offset < 0);
                        break;
                case EWS_STORE_FENCED:
                        moved = attempt;
                        failed = !strstr(errstr, "during the commit");
                        break;
                default:
                        failed = true;
                }
        }
        kill(child, SIGKILL); /* before any assertion can leave */
        waitpid(child, NULL, 0);
        if (failed)
                fail_msg("commit: %s", errstr);
        assert_true(moved > 0);
        /* what the refused commit wrote is not there: the last applied is */
        if (last_ok > 0) {
                assert_int_equal(ews_store_user_get(store, "u-z1", &user, NULL,
                                                    errstr, sizeof(errstr)),
                                 EWS_STORE_OK);
                assert_true(user.engagement == last_ok);
        }
        assert_int_equal(ews_store_fence_read(store, EWS_SOURCE_USAGE, 1,
                                              &offset, errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_true(offset == (last_ok > 0 ? (int64_t)last_ok : -1));
        printf("moved: refused after %d commits\n", moved);
        ews_store_destroy(store);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zombie),
                cmocka_unit_test(test_fence_moved_during_commit)};

        return store_test_main(argc, argv, "zombie:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
