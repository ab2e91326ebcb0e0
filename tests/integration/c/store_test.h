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

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A command (hiredis' format: %b takes a pointer and a length) on a
 * connection of the test's own: its reply (the caller frees it), or the
 * test fails. */
static inline redisReply *store_test_cmd(redisContext *c, const char *fmt, ...)
{
        redisReply *reply;
        va_list ap;

        va_start(ap, fmt);
        reply = redisvCommand(c, fmt, ap);
        va_end(ap);
        if (!reply)
                fail_msg("redis: %s", c->errstr);
        return reply;
}

/* A command whose reply is an integer: the integer, or the test fails. */
static inline long long store_test_int(redisContext *c, const char *fmt, ...)
{
        redisReply *reply;
        long long v;
        va_list ap;

        va_start(ap, fmt);
        reply = redisvCommand(c, fmt, ap);
        va_end(ap);
        if (!reply || reply->type != REDIS_REPLY_INTEGER)
                fail_msg("redis: not an integer");
        v = reply->integer;
        freeReplyObject(reply);
        return v;
}

/* Deletes the keys under prefix, left by an earlier run on the same
 * Redis: 0, or -1. */
static int store_test_wipe(const char *prefix)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        redisReply *reply = NULL;
        char cursor[32] = "0";
        size_t i;
        int rc = -1;

        do {
                if (!c || c->err ||
                    !(reply = redisCommand(c, "SCAN %s MATCH %s* COUNT 1000",
                                           cursor, prefix)) ||
                    reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
                        goto out;
                snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
                for (i = 0; i < reply->element[1]->elements; i++)
                        freeReplyObject(redisCommand(
                                c, "DEL %s",
                                reply->element[1]->element[i]->str));
                freeReplyObject(reply);
                reply = NULL;
        } while (strcmp(cursor, "0"));
        rc = 0;
out:
        if (reply)
                freeReplyObject(reply);
        if (c)
                redisFree(c);
        return rc;
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
        if (store_test_wipe(prefix)) {
                fprintf(stderr, "%s:%d: cannot clear %s*\n", argv[1],
                        store_test_port, prefix);
                return 2;
        }
        return _cmocka_run_group_tests("store", tests, cnt, NULL, NULL);
}

#endif
