/*
 * What the C tests against a real Redis share: the Redis is given as the
 * program's arguments (HOST PORT; tests/integration/test_state.py starts
 * it), and each test's store keeps its keys under a prefix of its own.
 * Included by one test program each, before its tests.
 */
#ifndef EWS_TESTS_STORE_TEST_H
#define EWS_TESTS_STORE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

static const char *store_test_host;
static int store_test_port;
static const char *store_test_prefix;

/* A store on the given Redis under the program's prefix; fails the test
 * when it cannot be made. The caller destroys it. */
static struct ews_store *store_open(void)
{
        struct ews_store_conf conf = {
                .host = store_test_host,
                .port = store_test_port,
                .timeout_ms = 2000,
                .prefix = store_test_prefix,
                .topics = {"usage", "campaign"},
                .retention_ms = 86400000,
                .half_life_ms = 3600000.0,
                .cache_users = 100,
        };
        char errstr[512];
        struct ews_store *store = ews_store_new(&conf, errstr, sizeof(errstr));

        if (!store)
                fail_msg("store: %s", errstr);
        return store;
}

/* Claims partition 0 of the usage topic and commits *commit there as the
 * next offset after *offset (-1: none yet), which it moves on; the
 * source, epoch and offsets are set here, the rest is the caller's. */
static inline void store_test_commit_next(struct ews_store *store,
                                          struct ews_commit *commit,
                                          int64_t *offset)
{
        struct ews_fence fence;
        char errstr[512];

        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE, 0,
                                               &fence, errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        commit->source = EWS_SOURCE_USAGE;
        commit->partition = 0;
        commit->epoch = fence.epoch;
        commit->expected_offset = *offset;
        commit->next_offset = *offset = *offset < 0 ? 1 : *offset + 1;
        assert_int_equal(
                ews_store_commit(store, commit, errstr, sizeof(errstr)),
                EWS_STORE_OK);
}

struct store_test_load {
        const struct ews_store *store;
        struct ews_user *const *users;
};

static bool store_test_got(void *opaque, size_t i, const unsigned char *value,
                           size_t len)
{
        const struct store_test_load *load = opaque;

        return !ews_store_user_fill(load->store, load->users[i], value, len);
}

/* Loads *users[i] by its user_id, in place, as the pipeline reads a user
 * (ews_store_users_read, then ews_store_user_fill): a user not stored yet
 * comes back zeroed but for its id. At most 8 users. */
static inline enum ews_store_result
store_test_users_load(struct ews_store *store, struct ews_user *const *users,
                      size_t cnt, char *errstr, size_t errstr_size)
{
        struct store_test_load load = {store, users};
        const char *ids[8];
        size_t i;

        assert_true(cnt <= 8);
        for (i = 0; i < cnt; i++)
                ids[i] = users[i]->user_id;
        return ews_store_users_read(store, ids, cnt, store_test_got, &load,
                                    errstr, errstr_size);
}

/* Runs cnt tests against the Redis argv names, their keys under prefix:
 * cmocka's result, or 2 on bad usage. */
static int store_test_main(int argc, char **argv, const char *prefix,
                           const struct CMUnitTest *tests, size_t cnt)
{
        if (argc != 3) {
                fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
                return 2;
        }
        store_test_host = argv[1];
        store_test_port = atoi(argv[2]);
        store_test_prefix = prefix;
        return _cmocka_run_group_tests("store", tests, cnt, NULL, NULL);
}

#endif
