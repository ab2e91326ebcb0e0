/*
 * State an earlier version left in Redis is read and moved on by the
 * store (host and port as arguments; run by
 * tests/integration/test_state.py): a user packed in version 2 with its
 * timer in its partition's one timer key and its value in a key of its
 * own (u:<id>), an account's members in am:<id> and its cohort days in
 * ab:<id>; the exports' walks give each user once, moved to its bucket
 * or not.
 */

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/codec.h"
#include "store/leader.h"
#include "store_test.h"
#include "util/hash.h"

#define T0   1767225600000LL /* 2026-01-01, an hour's start */
#define HOUR 3600000LL

static size_t put_varint(unsigned char *p, uint64_t v)
{
        size_t n = 0;

        while (v > 0x7f) {
                p[n++] = (unsigned char)((v & 0x7f) | 0x80);
                v >>= 7;
        }
        p[n++] = (unsigned char)v;
        return n;
}

static size_t put_f64(unsigned char *p, double d)
{
        uint64_t v;
        int i;

        memcpy(&v, &d, 8);
        for (i = 0; i < 8; i++)
                p[i] = (unsigned char)(v >> (8 * i));
        return 8;
}

/* The user as version 2 packed it (ab9ddee's codec.h): stage, partition
 * 0, events, ten times, rule_peak, E, peak, fit, the fit mask, account,
 * campaign, no reasons, interests or event ids. */
static void write_v2_user(redisContext *c, const struct ews_user *user)
{
        const int64_t times[10] = {user->stage_at_ms,
                                   user->engagement_ref_ms,
                                   user->last_activity_ms,
                                   user->trial_started_ms,
                                   user->activated_ms,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0};
        unsigned char buf[256], *p = buf;
        int i;

        *p++ = 2;
        *p++ = (unsigned char)user->stage;
        p += put_varint(p, 0);
        p += put_varint(p, (uint64_t)user->events);
        for (i = 0; i < 10; i++)
                p += put_varint(p, (uint64_t)times[i]);
        p += put_f64(p, 0); /* rule_peak */
        p += put_f64(p, user->engagement);
        p += put_f64(p, user->peak_engagement);
        p += put_f64(p, user->fit);
        memset(p, 0, 4); /* fit mask */
        p += 4;
        *p++ = (unsigned char)strlen(user->account_id);
        memcpy(p, user->account_id, strlen(user->account_id));
        p += strlen(user->account_id);
        *p++ = 0; /* campaign */
        *p++ = 0; /* reasons */
        *p++ = 0; /* interests */
        *p++ = 0; /* event ids */
        freeReplyObject(store_test_cmd(c, "SET upgrade:u:%s %b", user->user_id,
                                       buf, (size_t)(p - buf)));
}

static int found;

/* The ids the walks give, one string: "id id ...". */
static char walked[256];

static enum ews_store_result walk_user(void *opaque,
                                       const struct ews_user *user)
{
        (void)opaque;
        strcat(walked, user->user_id);
        strcat(walked, " ");
        return EWS_STORE_OK;
}

static enum ews_store_result walk_id(void *opaque, enum ews_subject kind,
                                     const char *id)
{
        (void)opaque;
        assert_int_equal(kind, EWS_SUBJECT_USER);
        strcat(walked, id);
        strcat(walked, " ");
        return EWS_STORE_OK;
}

/* Both walks give each user once, in its bucket or (not moved yet) under
 * its old key, and pass over a key that names no id. */
static void check_walks(struct ews_store *store, redisContext *c,
                        const struct ews_user *user)
{
        char errstr[512];

        strcpy(walked, "");
        write_v2_user(c, user);
        freeReplyObject(store_test_cmd(c, "SET upgrade:u: x"));
        assert_int_equal(ews_store_users_scan(store, walk_user, NULL, errstr,
                                              sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(ews_store_subjects_scan(store, EWS_SUBJECTS_USERS, 0,
                                                 walk_id, NULL, errstr,
                                                 sizeof(errstr)),
                         EWS_STORE_OK);
        assert_string_equal(walked, "u-old u-new u-old u-new ");
}

static void due_cb(void *opaque, int32_t partition, const char *user_id)
{
        (void)opaque;
        assert_int_equal(partition, 0);
        if (!strcmp(user_id, "u-old"))
                found++;
}

static void test_upgrade(void **state)
{
        redisContext *c = redisConnect(store_test_host, store_test_port);
        struct ews_store *store = store_open();
        struct ews_user user, loaded, *load = &loaded;
        struct ews_store_user su = {&loaded, T0 + 5 * HOUR};
        struct ews_store_cohort cohort;
        struct ews_account account;
        struct ews_commit commit;
        struct ews_fence fence;
        int32_t partition = 0;
        int64_t from = T0, upto = T0 + 2 * HOUR;
        redisReply *reply;
        char errstr[512];

        (void)state;
        assert_true(c && !c->err);
        memset(&user, 0, sizeof(user));
        strcpy(user.user_id, "u-old");
        strcpy(user.account_id, "acc-1");
        user.stage = EWS_STAGE_TRIAL;
        user.engagement = 5.0;
        user.engagement_ref_ms = T0;
        user.last_activity_ms = T0;
        write_v2_user(c, &user);
        freeReplyObject(store_test_cmd(c, "ZADD upgrade:t:usage:0 %lld u-old",
                                       (long long)(T0 + HOUR)));
        freeReplyObject(store_test_cmd(c, "ZADD upgrade:am:acc-1 %lld u-old",
                                       (long long)T0));
        freeReplyObject(store_test_cmd(
                c, "HSET upgrade:ab:acc-1 d20454 1 s:first 20450"));

        /* the old timer key is still read */
        assert_int_equal(ews_store_timers_due(store, &partition, &from, &upto,
                                              1, due_cb, NULL, errstr,
                                              sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(found, 1);
        /* the old value, its timer not known to be filed by the hour */
        memset(&loaded, 0, sizeof(loaded));
        strcpy(loaded.user_id, "u-old");
        assert_int_equal(
                store_test_users_load(store, &load, 1, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_true(loaded.engagement == 5.0);
        assert_true(loaded.keep.timer_ms == -1);
        assert_true(
                ews_store_timer_moves(loaded.keep.timer_ms, su.deadline_ms, 0));
        /* the old member set counts */
        assert_int_equal(ews_store_account_get(store, "acc-1", 86400000,
                                               &account, errstr,
                                               sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(account.users, 1);
        assert_true(account.engagement == 5.0);

        /* a commit moves the timer into its hour and the user into the
         * current format, and makes it a member of the new kind */
        assert_int_equal(ews_store_fence_claim(store, EWS_SOURCE_USAGE, 0,
                                               &fence, errstr, sizeof(errstr)),
                         EWS_STORE_OK);
        memset(&commit, 0, sizeof(commit));
        commit.source = EWS_SOURCE_USAGE;
        commit.partition = 0;
        commit.epoch = fence.epoch;
        commit.expected_offset = fence.next_offset;
        commit.next_offset = 1;
        commit.watermark_ms = upto;
        commit.idle_ms = T0;
        commit.users = &su;
        commit.user_cnt = 1;
        assert_int_equal(
                ews_store_commit(store, &commit, errstr, sizeof(errstr)),
                EWS_STORE_OK);
        assert_int_equal(store_test_int(c, "EXISTS upgrade:t:usage:0"), 0);
        reply = store_test_cmd(c, "ZSCORE upgrade:t:usage:0:%lld u-old",
                               (long long)((T0 + 5 * HOUR) / HOUR));
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        assert_string_equal(reply->str, "0"); /* at the hour's start */
        freeReplyObject(reply);
        /* into its bucket, the old key deleted: the bucket has it now */
        reply = store_test_cmd(c, "HGET upgrade:ub:%u u-old",
                               (unsigned)(ews_hash32("u-old") % 8192));
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        assert_int_equal((unsigned char)reply->str[0], EWS_USER_PACKED_VERSION);
        freeReplyObject(reply);
        assert_int_equal(store_test_int(c, "EXISTS upgrade:u:u-old"), 0);
        assert_int_equal(store_test_int(c, "HEXISTS upgrade:a:acc-1 m:u-old"),
                         1);
        assert_true(store_test_int(c, "PTTL upgrade:a:acc-1") > 0);

        /* the leader reads the old cohort's days and state with the new */
        freeReplyObject(store_test_cmd(c, "HINCRBY upgrade:a:acc-1 d20454 2"));
        cohort.kind = EWS_COHORT_ACCOUNT;
        snprintf(cohort.id, sizeof(cohort.id), "acc-1");
        assert_int_equal(ews_store_cohorts_get(store, &cohort, 1, errstr,
                                               sizeof(errstr)),
                         EWS_STORE_OK);
        assert_int_equal(cohort.day_cnt, 1);
        assert_true(cohort.days[0].day == 20454 && cohort.days[0].n == 3);
        assert_true(cohort.account.first_day == 20450);
        /* a user not moved yet beside the one that was */
        strcpy(user.user_id, "u-new");
        check_walks(store, c, &user);
        printf("upgrade: read and moved on\n");
        ews_store_destroy(store);
        redisFree(c);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_upgrade)};

        return store_test_main(argc, argv, "upgrade:", tests,
                               sizeof(tests) / sizeof(tests[0]));
}
