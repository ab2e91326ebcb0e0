/*
 * The packed users' names dictionary against a real Redis (host and port
 * as arguments; run by tests/integration/test_state.py): a name a commit
 * packs in full gets an id before the next load, the next commit packs
 * the id, and another instance that read the dictionary before the id
 * was given reads the user all the same.
 */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_test.h"
#include "util/hash.h"

/* The length of user_id's packed value in its bucket. */
static size_t value_len(redisContext *c, const char *user_id)
{
        redisReply *reply =
                redisCommand(c, "HSTRLEN names:ub:%u %s",
                             (unsigned)(ews_hash32(user_id) % 8192), user_id);
        size_t len;

        assert_non_null(reply);
        assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
        len = (size_t)reply->integer;
        freeReplyObject(reply);
        return len;
}

static void commit(struct ews_store *store, struct ews_user *user,
                   int64_t *offset)
{
        struct ews_store_user su = {user, 0};
        struct ews_commit commit;

        memset(&commit, 0, sizeof(commit));
        commit.users = &su;
        commit.user_cnt = 1;
        store_test_commit_next(store, &commit, offset);
}

static void test_names(void **state)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_store *a = store_open(), *b = store_open();
        struct ews_user user, *load = &user;
        int64_t offset = -1;
        char errstr[512];
        size_t full, by_id;

        (void)state;
        assert_true(c && !c->err);
        memset(&user, 0, sizeof(user));
        strcpy(user.user_id, "u-n");
        user.stage = EWS_STAGE_TRIAL;
        user.engagement_ref_ms = 1767225600000LL;
        strcpy(user.reasons[0].name, "a_rather_long_event_type_name");
        user.reasons[0].value = 1.0;
        user.reason_cnt = 1;
        commit(a, &user, &offset);
        full = value_len(c, "u-n");
        /* the next load gives the name its id; the commit after it packs
         * the id */
        assert_int_equal(
                store_test_users_load(a, &load, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        commit(a, &user, &offset);
        by_id = value_len(c, "u-n");
        assert_true(by_id + 20 < full);
        /* b read the dictionary before the id was given: it reads again */
        memset(&user, 0, sizeof(user));
        strcpy(user.user_id, "u-n");
        assert_int_equal(
                store_test_users_load(b, &load, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_string_equal(user.reasons[0].name,
                            "a_rather_long_event_type_name");
        printf("names: %zu bytes in full, %zu by id\n", full, by_id);
        ews_store_destroy(a);
        ews_store_destroy(b);
        redisFree(c);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_names)};

        return store_test_main(argc, argv, "names:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
