/*
 * A segment's pages against a real Redis (host and port as arguments; run
 * by tests/integration/test_funnel.py): a segment kept in its shards is
 * paged in Redis' order over all of them, ties at one score (users of
 * E = 0) past a round's read of a shard included; the one set an earlier
 * version kept is read beside the shards until it empties, its entries
 * that no longer stand taken out. A round writes its commits' moves
 * together, for the commits whose fence holds.
 */

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/views.h"
#include "store_test.h"
#include "util/funnel.h"
#include "util/hash.h"

#define PREFIX "ews-test-segments:"
#define REF    1767225600000LL
#define HL     3600000.0 /* store_open's half-life */
#define USERS  48
#define SHARDS 1024 /* store.h's key layout: a user's shard */

static int shard_of(const char *id)
{
        return (int)(ews_hash32(id) % SHARDS);
}

/* The trial stage's set of E > 0: its shard's, or the old one (-1). */
static void trial_key(int shard, char *out, size_t size)
{
        if (shard < 0)
                snprintf(out, size, PREFIX "sg:trial");
        else
                snprintf(out, size, PREFIX "sg:trial:%d", shard);
}

static struct ews_user users[USERS];
static int user_cnt;

/* A user of the trial stage with E: a plain id, or one in shard `shard`
 * when shard >= 0 (ids tried in turn until one hashes there). */
static struct ews_user *add_user(double e, int shard)
{
        static int seq;
        struct ews_user *u = &users[user_cnt++];

        memset(u, 0, sizeof(*u));
        do
                snprintf(u->user_id, sizeof(u->user_id), "u-%04d", seq++);
        while (shard >= 0 && shard_of(u->user_id) != shard);
        u->stage = EWS_STAGE_TRIAL;
        u->engagement = e;
        u->engagement_ref_ms = REF;
        return u;
}

/* Commits users [from, to), each into its segment. */
static void commit_users(struct ews_store *store, int from, int to,
                         int64_t *offset)
{
        struct ews_store_user su[USERS];
        struct ews_segment_move moves[USERS];
        struct ews_commit commit;
        int i;

        memset(&commit, 0, sizeof(commit));
        for (i = from; i < to; i++) {
                su[i - from] = (struct ews_store_user){&users[i], 0};
                moves[i - from] = (struct ews_segment_move){
                        users[i].user_id, -1, ews_segment_of(&users[i]),
                        ews_segment_score(users[i].engagement,
                                          users[i].engagement_ref_ms, HL)};
        }
        commit.users = su;
        commit.user_cnt = (size_t)(to - from);
        commit.segments = moves;
        commit.segment_cnt = (size_t)(to - from);
        store_test_commit_next(store, &commit, offset);
}

/* Redis' order of a segment's entries: by score, then by id. */
static int order_cmp(const struct ews_user *a, const struct ews_user *b)
{
        double x = ews_segment_score(a->engagement, a->engagement_ref_ms, HL),
               y = ews_segment_score(b->engagement, b->engagement_ref_ms, HL);
        int sa = ews_segment_of(a), sb = ews_segment_of(b);

        /* ascending: the set of E <= 0 (odd) first */
        if (sa != sb)
                return sa % 2 ? -1 : 1;
        if (x != y)
                return x < y ? -1 : 1;
        return strcmp(a->user_id, b->user_id);
}

/* Every page of the trial segment, `limit` at a time: the ids in order. */
static int page_all(struct ews_store *store, bool desc, size_t limit,
                    char (*ids)[EWS_ID_MAX])
{
        struct ews_segment_query q = {
                EWS_STAGE_TRIAL, desc, NULL, NULL, NULL, NULL};
        static struct ews_user page[USERS];
        char next[EWS_SEGMENT_CURSOR_MAX], cursor[EWS_SEGMENT_CURSOR_MAX];
        char errstr[512];
        size_t n, i;
        int cnt = 0, pages = 0;

        do {
                assert_int_equal(ews_store_segment(store, &q, page, limit, &n,
                                                   next, errstr,
                                                   sizeof(errstr)),
                                 EWS_STORE_OK);
                for (i = 0; i < n && cnt < USERS; i++)
                        snprintf(ids[cnt++], EWS_ID_MAX, "%s", page[i].user_id);
                snprintf(cursor, sizeof(cursor), "%s", next);
                q.cursor = cursor;
                assert_true(++pages < 100);
        } while (next[0]);
        return cnt;
}

static void test_segment_pages(void **state)
{
        struct ews_store *store = store_open();
        redisContext *c = redisConnect(store_test_host, store_test_port);
        static char ids[USERS][EWS_ID_MAX];
        static struct ews_user got[USERS], want[USERS];
        struct ews_segment_query bad = {
                EWS_STAGE_TRIAL, false, "7", NULL, NULL, NULL};
        struct ews_user *old, *stale;
        char key[256], score[40], next[EWS_SEGMENT_CURSOR_MAX], errstr[512];
        int64_t offset = -1;
        long long units;
        int i, j, n;
        size_t cnt;
        redisReply *reply;

        (void)state;
        assert_non_null(c);
        /* 20 with E > 0 (two of them equal), 14 with E = 0 of which 12
         * in one shard (+inf each: a tie longer than a round's read of a
         * shard), 3 with E < 0 */
        for (i = 0; i < 20; i++)
                add_user(i == 7 ? 5.0 : 1.0 + i * 0.5, -1);
        for (i = 0; i < 12; i++)
                add_user(0, shard_of(users[0].user_id));
        add_user(0, -1);
        add_user(0, -1);
        for (i = 0; i < 3; i++)
                add_user(-1.0 - i, -1);
        commit_users(store, 0, user_cnt, &offset);
        /* the earlier version's set: a user only there, one written since
         * (its entry there is stale), one whose user expired */
        stale = &users[3];
        /* old's entry as a commit writes it, moved to the old set as
         * the earlier version wrote it */
        old = add_user(3.25, -1);
        commit_users(store, user_cnt - 1, user_cnt, &offset);
        trial_key(shard_of(old->user_id), key, sizeof(key));
        reply = store_test_cmd(c, "ZSCORE %s %s", key, old->user_id);
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        /* in billionths there; the score itself, to nine places, in
         * the old set */
        units = strtoll(reply->str, NULL, 10);
        assert_true(units > 0);
        snprintf(score, sizeof(score), "%lld.%09lld", units / 1000000000,
                 units % 1000000000);
        freeReplyObject(reply);
        freeReplyObject(store_test_cmd(c, "ZREM %s %s", key, old->user_id));
        trial_key(-1, key, sizeof(key));
        freeReplyObject(store_test_cmd(c, "ZADD %s %s %s 1.5 %s 2.5 u-gone",
                                       key, score, old->user_id,
                                       stale->user_id));

        memcpy(want, users, sizeof(users));
        qsort(want, (size_t)user_cnt, sizeof(*want),
              (int (*)(const void *, const void *))order_cmp);
        for (j = 0; j < 2; j++) {
                n = page_all(store, j == 1, j ? 5 : 3, ids);
                assert_int_equal(n, user_cnt);
                for (i = 0; i < n; i++)
                        assert_string_equal(
                                ids[i], want[j ? user_cnt - 1 - i : i].user_id);
        }
        /* the old set keeps only what still stands */
        reply = store_test_cmd(c, "ZRANGE %s 0 -1", key);
        assert_int_equal(reply->elements, 1);
        assert_string_equal(reply->element[0]->str, old->user_id);
        freeReplyObject(reply);
        /* a shard is a small set in Redis' compact encoding */
        trial_key(shard_of(users[0].user_id), key, sizeof(key));
        reply = store_test_cmd(c, "OBJECT ENCODING %s", key);
        assert_string_equal(reply->str, "listpack");
        freeReplyObject(reply);
        /* a cursor of another kind (an earlier version's rank) */
        assert_int_equal(ews_store_segment(store, &bad, got, 4, &cnt, next,
                                           errstr, sizeof(errstr)),
                         EWS_STORE_REJECTED);
        printf("segments: paged over shards\n");
        redisFree(c);
        ews_store_destroy(store);
}

/* The shards (sg: and sg0: of each stage) holding member: how many. */
static int shards_holding(redisContext *c, const char *member)
{
        static const char *stages[] = {"trial", "activated", "sales_ready"};
        char key[256];
        redisReply *reply;
        int s, z, n = 0;

        for (s = 0; s < 3; s++)
                for (z = 0; z < 2; z++) {
                        snprintf(key, sizeof(key), PREFIX "sg%s:%s:%d",
                                 z ? "0" : "", stages[s], shard_of(member));
                        reply = store_test_cmd(c, "ZSCORE %s %s", key, member);
                        n += reply->type == REDIS_REPLY_STRING;
                        freeReplyObject(reply);
                }
        return n;
}

/* A commit of one user's move on partition, sent into the round. */
static enum ews_store_result send_move(struct ews_store *store,
                                       int32_t partition, int64_t epoch,
                                       int64_t expected, struct ews_user *u,
                                       int from, int to)
{
        struct ews_store_user su = {u, 0};
        struct ews_segment_move m = {
                u->user_id, from, to,
                ews_segment_score(u->engagement, u->engagement_ref_ms, HL)};
        struct ews_commit commit;
        char errstr[512];

        memset(&commit, 0, sizeof(commit));
        commit.source = EWS_SOURCE_USAGE;
        commit.partition = partition;
        commit.epoch = epoch;
        commit.expected_offset = expected;
        commit.next_offset = expected < 0 ? 1 : expected + 1;
        commit.users = &su;
        commit.user_cnt = 1;
        commit.segments = &m;
        commit.segment_cnt = 1;
        return ews_store_commit_send(store, &commit, errstr, sizeof(errstr));
}

static enum ews_store_result recv_move(struct ews_store *store,
                                       int32_t partition)
{
        char errstr[512];

        return ews_store_commit_recv(store, EWS_SOURCE_USAGE, partition, errstr,
                                     sizeof(errstr));
}

/* A round's moves are written once for all its commits whose fence
 * holds: a fenced commit's move is not (a stale epoch; a partition's
 * second commit in the round, which expects an offset not yet stored). */
static void test_round_moves(void **state)
{
        struct ews_store *store = store_open();
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_fence f1, f2;
        static struct ews_user a, b, a2;
        char errstr[512];
        int trial = 2 * EWS_STAGE_TRIAL, act = 2 * EWS_STAGE_ACTIVATED;

        (void)state;
        assert_non_null(c);
        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE, 1, &f1,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE, 2, &f2,
                                               errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        memset(&a, 0, sizeof(a));
        snprintf(a.user_id, sizeof(a.user_id), "u-round-a");
        a.stage = EWS_STAGE_TRIAL;
        a.engagement = 2;
        a.engagement_ref_ms = REF;
        b = a;
        snprintf(b.user_id, sizeof(b.user_id), "u-round-b");
        a2 = a;
        snprintf(a2.user_id, sizeof(a2.user_id), "u-round-a2");
        assert_int_equal(
                send_move(store, 1, f1.epoch, f1.next_offset, &a, -1, trial),
                EWS_STORE_OK);
        assert_int_equal(send_move(store, 2, f2.epoch - 1, f2.next_offset, &b,
                                   -1, trial),
                         EWS_STORE_OK);
        assert_int_equal(send_move(store, 1, f1.epoch, 1, &a2, -1, trial),
                         EWS_STORE_OK);
        assert_int_equal(recv_move(store, 1), EWS_STORE_OK);
        assert_int_equal(recv_move(store, 2), EWS_STORE_FENCED);
        assert_int_equal(recv_move(store, 1), EWS_STORE_FENCED);
        assert_int_equal(shards_holding(c, "u-round-a"), 1);
        assert_int_equal(shards_holding(c, "u-round-b"), 0);
        assert_int_equal(shards_holding(c, "u-round-a2"), 0);
        /* the next round moves a: out of trial, into activated */
        a.stage = EWS_STAGE_ACTIVATED;
        assert_int_equal(send_move(store, 1, f1.epoch, 1, &a, trial, act),
                         EWS_STORE_OK);
        assert_int_equal(recv_move(store, 1), EWS_STORE_OK);
        assert_int_equal(shards_holding(c, "u-round-a"), 1);
        assert_int_equal(store_test_int(c, "EXISTS " PREFIX "sg:activated:%d",
                                        shard_of("u-round-a")),
                         1);
        printf("segments: a round's moves\n");
        redisFree(c);
        ews_store_destroy(store);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_segment_pages),
                cmocka_unit_test(test_round_moves),
        };

        return store_test_main(argc, argv, PREFIX, tests,
                               sizeof(tests) / sizeof(tests[0]));
}
