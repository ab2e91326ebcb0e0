/*
 * A round's counters against a real Redis (host and port as arguments;
 * run by tests/integration/test_state.py): the increments of two
 * partitions' commits in one round add up on a key both count into, a
 * commit fenced off adds nothing, an id holding the byte the round keeps
 * between key and field counts into its own key, and a counter key of
 * another type (written by hand) stops only the commit that counts into
 * it.
 */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_test.h"

static long long hget(redisContext *c, const char *key, const char *field)
{
        redisReply *reply = redisCommand(c, "HGET %s %s", key, field);
        long long v;

        assert_non_null(reply);
        v = reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;
        freeReplyObject(reply);
        return v;
}

static void cmd(redisContext *c, const char *text)
{
        redisReply *reply = redisCommand(c, text);

        assert_non_null(reply);
        assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
        freeReplyObject(reply);
}

/* Partition p's commit of signups to two campaigns: its own and "both". */
struct part_commit {
        struct ews_campaign_delta campaigns[2];
        struct ews_commit commit;
        struct ews_fence fence;
};

static void part_commit_init(struct ews_store *store, struct part_commit *pc,
                             int32_t partition, const char *own,
                             int64_t epoch_add)
{
        char errstr[512];

        memset(pc, 0, sizeof(*pc));
        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE,
                                               partition, &pc->fence, errstr,
                                               sizeof(errstr)),
                         EWS_STORE_OK);
        strcpy(pc->campaigns[0].campaign_id, own);
        pc->campaigns[0].signups_add = 1;
        strcpy(pc->campaigns[1].campaign_id, "both");
        pc->campaigns[1].signups_add = 1;
        pc->commit.source = EWS_SOURCE_USAGE;
        pc->commit.partition = partition;
        pc->commit.epoch = pc->fence.epoch + epoch_add;
        pc->commit.expected_offset = pc->fence.next_offset;
        pc->commit.next_offset =
                pc->fence.next_offset < 0 ? 1 : pc->fence.next_offset + 1;
        pc->commit.campaigns = pc->campaigns;
        pc->commit.campaign_cnt = 2;
}

/* Partitions 0 and 1 in one round, counting into own0 and own1 (1 as a
 * zombie when epoch_add is nonzero): their results. */
static void round_of(struct ews_store *store, const char *own0,
                     const char *own1, int64_t epoch_add,
                     enum ews_store_result *r0, enum ews_store_result *r1)
{
        struct part_commit a, b;
        char errstr[512];

        part_commit_init(store, &a, 0, own0, 0);
        part_commit_init(store, &b, 1, own1, epoch_add);
        assert_int_equal(
                ews_store_commit_send(store, &a.commit, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_int_equal(
                ews_store_commit_send(store, &b.commit, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        *r0 = ews_store_commit_recv(store, EWS_SOURCE_USAGE, 0, errstr,
                                    sizeof(errstr));
        *r1 = ews_store_commit_recv(store, EWS_SOURCE_USAGE, 1, errstr,
                                    sizeof(errstr));
}

static void round_of_two(struct ews_store *store, int64_t epoch_add,
                         enum ews_store_result *r0, enum ews_store_result *r1)
{
        round_of(store, "c-0", "c-1", epoch_add, r0, r1);
}

/* Partition 1 counting into own, partition 0 into c-0. */
static void round_of_two_ids(struct ews_store *store, const char *own,
                             enum ews_store_result *r0,
                             enum ews_store_result *r1)
{
        round_of(store, "c-0", own, 0, r0, r1);
}

static void test_counters(void **state)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_store *store = store_open();
        enum ews_store_result r0, r1;

        (void)state;
        assert_true(c && !c->err);
        /* both hold: one HINCRBY on "both" carries the two */
        round_of_two(store, 0, &r0, &r1);
        assert_int_equal(r0, EWS_STORE_OK);
        assert_int_equal(r1, EWS_STORE_OK);
        assert_int_equal(hget(c, "counters:c:both", "signups"), 2);
        assert_int_equal(hget(c, "counters:c:c-0", "signups"), 1);
        assert_int_equal(hget(c, "counters:c:c-1", "signups"), 1);
        /* partition 1 fenced off: its increments are not in the sums */
        round_of_two(store, -1, &r0, &r1);
        assert_int_equal(r0, EWS_STORE_OK);
        assert_int_equal(r1, EWS_STORE_FENCED);
        assert_int_equal(hget(c, "counters:c:both", "signups"), 3);
        assert_int_equal(hget(c, "counters:c:c-0", "signups"), 2);
        assert_int_equal(hget(c, "counters:c:c-1", "signups"), 1);
        /* an id with the byte that separates key and field inside */
        round_of_two_ids(store, "c\x1fx", &r0, &r1);
        assert_int_equal(r0, EWS_STORE_OK);
        assert_int_equal(r1, EWS_STORE_OK);
        assert_int_equal(hget(c, "counters:c:c\x1fx", "signups"), 1);
        assert_int_equal(hget(c, "counters:c:both", "signups"), 5);
        /* c-1's key made a string by hand: partition 1 stops, 0 goes on */
        cmd(c, "SET counters:c:c-1 not-a-hash");
        round_of_two(store, 0, &r0, &r1);
        assert_int_equal(r0, EWS_STORE_OK);
        assert_int_equal(r1, EWS_STORE_REJECTED);
        assert_int_equal(hget(c, "counters:c:c-0", "signups"), 4);
        printf("counters: summed, fenced off, rejected alone\n");
        ews_store_destroy(store);
        redisFree(c);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_counters)};

        return store_test_main(argc, argv, "counters:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
