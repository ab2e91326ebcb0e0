/* The store's grouping of a commit's sorted-set writes (store/zset.c): the
 * commands it writes, byte for byte, for a table of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Keys named as the case reads best: T<hour> and S<segment>. */
static int zkey(void *ctx, struct store_resp *r, enum store_zkind kind,
                int64_t key)
{
        char buf[32];

        (void)ctx;
        snprintf(buf, sizeof(buf), "%c%lld", kind == STORE_Z_TIMER ? 'T' : 'S',
                 (long long)key);
        return store_resp_str(r, buf);
}

struct zop_in {
        enum store_zkind kind;
        bool add;
        int64_t key;
        double score;
        const char *member;
};

/* The commands as "VERB key [score] member ...;" from the protocol. */
static void resp_words(const struct store_resp *r, char *out, size_t size)
{
        const char *p = r->buf, *end = r->buf + r->len;
        size_t used = 0;

        out[0] = '\0';
        while (p < end) {
                long argc = strtol(p + 1, NULL, 10), i;

                p = strstr(p, "\r\n") + 2;
                for (i = 0; i < argc; i++) {
                        long len = strtol(p + 1, NULL, 10);

                        p = strstr(p, "\r\n") + 2;
                        used += (size_t)snprintf(out + used, size - used,
                                                 "%s%.*s", i ? " " : "",
                                                 (int)len, p);
                        p += len + 2;
                }
                used += (size_t)snprintf(out + used, size - used, ";");
        }
}

static void check(const struct zop_in *in, size_t n, const char *want,
                  size_t cmds)
{
        struct store_zops z = {0};
        struct store_resp r = {0};
        char got[1024];
        size_t i;

        for (i = 0; i < n; i++)
                assert_int_equal(store_zops_add(&z, in[i].kind, in[i].add,
                                                in[i].key, in[i].score,
                                                in[i].member),
                                 0);
        assert_int_equal(store_zops_write(&z, &r, zkey, NULL), 0);
        resp_words(&r, got, sizeof(got));
        assert_string_equal(got, want);
        assert_int_equal(r.cmds, cmds);
        assert_int_equal(z.cnt, 0); /* emptied for the next commit */
        store_resp_free(&r);
        store_zops_free(&z);
}

static void test_nothing_writes_nothing(void **state)
{
        (void)state;
        check(NULL, 0, "", 0);
}

static void test_members_of_a_key_go_in_one_command(void **state)
{
        static const struct zop_in in[] = {
                {STORE_Z_SEGMENT, true, 3, 1.5, "u-1"},
                {STORE_Z_TIMER, true, 490000, 60000, "u-1"},
                {STORE_Z_SEGMENT, true, 3, -2.25, "u-2"},
                {STORE_Z_TIMER, true, 490000, 120000, "u-2"},
                {STORE_Z_SEGMENT, true, 5, INFINITY, "u-3"},
        };

        (void)state;
        check(in, 5,
              "ZADD T490000 60000 u-1 120000 u-2;"
              "ZADD S3 -2250000000 u-2 1500000000 u-1;"
              "ZADD S5 +inf u-3;",
              3);
}

/* Removals of a kind before its additions, keys in order, members by
 * score, ties (and removals) in the order added: the same commit gives the
 * same bytes. */
static void test_removals_first_keys_in_order(void **state)
{
        static const struct zop_in in[] = {
                {STORE_Z_TIMER, false, 490001, 0, "u-9"},
                {STORE_Z_TIMER, true, 490002, 7, "u-9"},
                {STORE_Z_TIMER, true, 490002, 7, "u-5"},
                {STORE_Z_TIMER, true, 490002, 3, "u-4"},
                {STORE_Z_TIMER, false, -1, 0, "u-8"},
                {STORE_Z_TIMER, true, 490001, 8, "u-8"},
                {STORE_Z_SEGMENT, false, 1, 0, "u-7"},
                {STORE_Z_SEGMENT, true, 0, -INFINITY, "u-7"},
                {STORE_Z_TIMER, false, 490001, 0, "u-6"},
        };

        (void)state;
        check(in, 9,
              "ZREM T-1 u-8;ZREM T490001 u-9 u-6;"
              "ZADD T490001 8 u-8;ZADD T490002 3 u-4 7 u-9 7 u-5;"
              "ZREM S1 u-7;ZADD S0 -inf u-7;",
              6);
}

/* A segment's score in billionths, rounded, a whole number (+-inf as
 * such); a timer's whole. */
static void test_scores_in_units(void **state)
{
        static const struct zop_in in[] = {
                {STORE_Z_SEGMENT, true, 2, 0.1, "u-1"},
                {STORE_Z_SEGMENT, true, 2, -2.25, "u-2"},
                {STORE_Z_SEGMENT, true, 2, 2901.99999999999, "u-3"},
                {STORE_Z_SEGMENT, true, 2, -0.0000000004, "u-4"},
                {STORE_Z_SEGMENT, true, 2, 9e6, "u-5"},
                {STORE_Z_SEGMENT, true, 2, -8999999.5, "u-6"},
                {STORE_Z_TIMER, true, 1, 3599999, "u-7"},
        };

        (void)state;
        check(in, 7,
              "ZADD T1 3599999 u-7;"
              "ZADD S2 -8999999500000000 u-6 -2250000000 u-2 "
              "0 u-4 100000000 u-1 2902000000000 u-3 "
              "9000000000000000 u-5;",
              2);
}

/* More members than the first allocation holds. */
static void test_many_members(void **state)
{
        struct store_zops z = {0};
        struct store_resp r = {0};
        static char ids[1000][8];
        size_t i;

        (void)state;
        for (i = 0; i < 1000; i++) {
                snprintf(ids[i], sizeof(ids[i]), "u%zu", i);
                assert_int_equal(store_zops_add(&z, STORE_Z_SEGMENT, true,
                                                (int64_t)(i % 2), (double)i,
                                                ids[i]),
                                 0);
        }
        assert_int_equal(store_zops_write(&z, &r, zkey, NULL), 0);
        assert_int_equal(r.cmds, 2);
        assert_memory_equal(r.buf, "*1002\r\n$4\r\nZADD\r\n$2\r\nS0\r\n", 25);
        store_resp_free(&r);
        store_zops_free(&z);
        store_zops_free(&z); /* freed twice: safe */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_writes_nothing),
                cmocka_unit_test(test_members_of_a_key_go_in_one_command),
                cmocka_unit_test(test_removals_first_keys_in_order),
                cmocka_unit_test(test_scores_in_units),
                cmocka_unit_test(test_many_members),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
