/* The store's pure parts: the packed user value, the outbox record and the
 * user cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cache.h"
#include "store/codec.h"
#include "store/store.h"
#include "util/outbox.h"

static struct ews_user user_full(void)
{
        struct ews_user u;
        int i;

        memset(&u, 0, sizeof(u));
        strcpy(u.user_id, "u-1");
        strcpy(u.account_id, "a-1");
        strcpy(u.campaign_id, "c-1");
        u.stage = EWS_STAGE_SALES_READY;
        u.stage_at_ms = 1767225600123LL;
        u.engagement = 123.456789012345678;
        u.peak_engagement = 200.5;
        u.engagement_ref_ms = 1767225600999LL;
        u.last_activity_ms = 1767225600999LL;
        u.trial_started_ms = 1767000000000LL;
        u.activated_ms = 1767100000000LL;
        u.disengaged_since_ms = 0;
        u.events = 300;
        u.fit_matched = 0x5;
        u.fit = 13;
        for (i = 0; i < EWS_REASONS_MAX; i++) {
                snprintf(u.reasons[i].name, EWS_NAME_MAX, "type_%d", i);
                u.reasons[i].value = i * 1.5 - 3;
        }
        u.reason_cnt = EWS_REASONS_MAX;
        strcpy(u.interests[0].name, "crm");
        u.interests[0].value = 1e-300;
        u.interest_cnt = 1;
        for (i = 0; i < 8; i++)
                u.dedup[i] = 0xdeadbeefu + (uint32_t)i;
        u.dedup_cnt = 8;
        u.keep.timer_ms = 1767484800123LL;
        u.keep.day = 20454;
        u.keep.member = true;
        u.funnel = ews_funnel_reached(&u);
        return u;
}

static void test_codec_round_trip(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX];
        int32_t partition;
        int len;

        (void)state;
        len = ews_user_pack(&u, 7, NULL, buf, sizeof(buf));
        assert_true(len > 0);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, buf, (size_t)len), 0);
        assert_int_equal(partition, 7);
        assert_memory_equal(&u, &back, sizeof(u)); /* bit for bit */
        /* too small a buffer is refused, whatever the size */
        for (int size = 0; size < len; size += 7)
                assert_int_equal(ews_user_pack(&u, 7, NULL, buf, (size_t)size),
                                 -1);
}

/* A value as an earlier version wrote it (its ews_user_pack, of the user
 * legacy_user() makes): version 2 (ab9ddee). Version 3 is the same with
 * the activation progress after it (test below). */
static const unsigned char packed_v2[] = {
        0x02, 0x03, 0x07, 0xac, 0x02, 0xfb, 0xd0, 0xea, 0xb6, 0xb7, 0x33, 0xe7,
        0xd7, 0xea, 0xb6, 0xb7, 0x33, 0xe7, 0xd7, 0xea, 0xb6, 0xb7, 0x33, 0x80,
        0x8c, 0xa1, 0xcb, 0xb6, 0x33, 0x80, 0xce, 0xf8, 0xfa, 0xb6, 0x33, 0x00,
        0x80, 0xaf, 0xe4, 0x92, 0xb7, 0x33, 0x80, 0x90, 0xd0, 0xaa, 0xb7, 0x33,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x62, 0x40, 0x99, 0x4c,
        0xfb, 0x07, 0x3c, 0xdd, 0x5e, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
        0x69, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x40, 0x05, 0x00,
        0x00, 0x00, 0x03, 0x61, 0x2d, 0x31, 0x03, 0x63, 0x2d, 0x31, 0x03, 0x06,
        0x74, 0x79, 0x70, 0x65, 0x5f, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0xc0, 0x06, 0x74, 0x79, 0x70, 0x65, 0x5f, 0x31, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xf8, 0xbf, 0x06, 0x74, 0x79, 0x70, 0x65, 0x5f, 0x32,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x63, 0x72,
        0x6d, 0x59, 0xf3, 0xf8, 0xc2, 0x1f, 0x6e, 0xa5, 0x01, 0x02, 0xef, 0xbe,
        0xad, 0xde, 0xf0, 0xbe, 0xad, 0xde};
/* user_full() as version 2 held it: three reasons, two dedup hashes and
 * the rule state it kept then; none of the store's bookkeeping, and no
 * funnel. */
static struct ews_user legacy_user(void)
{
        struct ews_user u = user_full();

        memset(&u.reasons[3], 0, sizeof(u.reasons) - 3 * sizeof(u.reasons[0]));
        u.reason_cnt = 3;
        memset(&u.dedup[2], 0, sizeof(u.dedup) - 2 * sizeof(u.dedup[0]));
        u.dedup_cnt = 2;
        u.disengaged_resolved_ms = 1767150000000LL;
        u.sales_ready_since_ms = 1767200000000LL;
        u.rule_peak = 150.25;
        memset(&u.keep, 0, sizeof(u.keep));
        u.funnel = 0;
        return u;
}

/* Earlier versions read as they were written, without the store's
 * bookkeeping (their timer not known, so that the next commit files it
 * anew): version 2, and version 3 with its activation progress. */
static void test_codec_reads_earlier_versions(void **state)
{
        static const unsigned char progress[] = {
                0x07,                   /* met */
                0x02, 0x01, 0xac, 0x02, /* two counts: 1 and 300 */
                0x02, 0x01, 0x00, 0x00, 0x00, 0x0d, 0xf0, 0xfe, 0xca};
        struct ews_user want = legacy_user(), back;
        unsigned char v3[sizeof(packed_v2) + sizeof(progress)];
        int32_t partition;

        (void)state;
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(ews_user_unpack(&back, &partition, NULL, packed_v2,
                                         sizeof(packed_v2)),
                         0);
        assert_int_equal(partition, 7);
        want.keep.timer_ms = -1;
        /* from before the funnel: what the user had reached reads as
         * counted, so the funnel counts from the upgrade on */
        want.funnel = ews_funnel_reached(&want);
        assert_int_equal(want.funnel, 0x7); /* signup, activated, ready */
        assert_memory_equal(&want, &back, sizeof(want));

        memcpy(v3, packed_v2, sizeof(packed_v2));
        memcpy(v3 + sizeof(packed_v2), progress, sizeof(progress));
        v3[0] = 3;
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, v3, sizeof(v3)), 0);
        want.activation_met = 7;
        want.activation_cnt = 2;
        want.activation_counts[0] = 1;
        want.activation_counts[1] = 300;
        want.activation_product_cnt = 2;
        want.activation_products[0] = 1;
        want.activation_products[1] = 0xcafef00du;
        assert_memory_equal(&want, &back, sizeof(want));
}

/* legacy_user() with the bookkeeping and funnel version 4 kept, as
 * version 4 packed it (579daf1's codec): its scores four f64s. */
static const unsigned char packed_v4[] = {
        0x04, 0x03, 0x07, 0xac, 0x02, 0xe7, 0xd7, 0xea, 0xb6, 0xb7, 0x33, 0xd8,
        0x0d, 0x01, 0xce, 0x97, 0x93, 0xd7, 0x01, 0xce, 0x93, 0xe4, 0x77, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x62, 0x40,
        0x99, 0x4c, 0xfb, 0x07, 0x3c, 0xdd, 0x5e, 0x40, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x69, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x40,
        0x05, 0x03, 0x61, 0x2d, 0x31, 0x03, 0x63, 0x2d, 0x31, 0x02, 0x00, 0x06,
        0x74, 0x79, 0x70, 0x65, 0x5f, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0xc0, 0x00, 0x06, 0x74, 0x79, 0x70, 0x65, 0x5f, 0x31, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xf8, 0xbf, 0x01, 0x00, 0x03, 0x63, 0x72, 0x6d,
        0x59, 0xf3, 0xf8, 0xc2, 0x1f, 0x6e, 0xa5, 0x01, 0x02, 0xef, 0xbe, 0xad,
        0xde, 0xf0, 0xbe, 0xad, 0xde, 0x02, 0xa8, 0xc2, 0x98, 0xf7, 0x01, 0xe6,
        0x9f, 0x01, 0x01, 0x00, 0x00, 0x00, 0x07};

static void test_codec_reads_version_4(void **state)
{
        struct ews_user want = legacy_user(), back;
        int32_t partition;

        (void)state;
        want.disengaged_resolved_ms = want.sales_ready_since_ms = 0;
        want.reason_cnt = 2;
        memset(&want.reasons[2], 0, sizeof(want.reasons[2]));
        want.keep.timer_ms = 1767484800123LL;
        want.keep.day = 20454;
        want.keep.member = true;
        want.funnel = ews_funnel_reached(&want);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(ews_user_unpack(&back, &partition, NULL, packed_v4,
                                         sizeof(packed_v4)),
                         0);
        assert_int_equal(partition, 7);
        assert_memory_equal(&want, &back, sizeof(want));
}

/* E, the peaks and fit read back bit for bit whichever of them version 5
 * writes short; the bytes a case saves against four f64s. */
static void test_codec_scores_short_and_lossless(void **state)
{
        static const struct {
                double e, peak, rule_peak, fit;
                int saved;
        } cases[] = {
                {12.5, 12.5, 12.5, 30, 22},        /* the usual: all short */
                {12.5, 40.25, 40.25, 30, 14},      /* decayed below its peak */
                {12.5, 40.25, 33.0, 30, 6},        /* alerted at another peak */
                {12.5, 12.5, 12.5, 2.5, 15},       /* a fraction of fit */
                {12.5, 12.5, 12.5, -0.0, 15},      /* -0 is no whole number */
                {0.0, -0.0, -0.0, 0, 14},          /* nor the same bits as 0 */
                {NAN, NAN, NAN, -7, 22},           /* NaN's bits are its own */
                {1, 1, 1, 9007199254740992.0, 15}, /* past a varint's reach */
                {1, 1, 1, -9007199254740991.0, 15}, /* the last within */
        };
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX];
        int32_t partition;
        int base, len;
        size_t i;

        (void)state;
        u.engagement = u.peak_engagement = u.rule_peak = u.fit = 1.5;
        u.peak_engagement = 2.5;
        u.rule_peak = 3.5;
        base = ews_user_pack(&u, 7, NULL, buf, sizeof(buf)) - 1; /* flags */
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                u.engagement = cases[i].e;
                u.peak_engagement = cases[i].peak;
                u.rule_peak = cases[i].rule_peak;
                u.fit = cases[i].fit;
                len = ews_user_pack(&u, 7, NULL, buf, sizeof(buf));
                assert_int_equal(base - len, cases[i].saved);
                memset(&back, 0, sizeof(back));
                strcpy(back.user_id, "u-1");
                assert_int_equal(ews_user_unpack(&back, &partition, NULL, buf,
                                                 (size_t)len),
                                 0);
                assert_memory_equal(&u, &back, sizeof(u));
        }
}

/* Names the dictionary holds are packed as ids: a value reads back only
 * with a dictionary that holds them, and the same with any that does. */
static void test_codec_names_by_id(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char inline_buf[EWS_USER_PACKED_MAX], buf[EWS_USER_PACKED_MAX];
        struct ews_names *names = ews_names_new(), *other = ews_names_new();
        int32_t partition;
        int inline_len, len, i;

        (void)state;
        assert_non_null(names);
        assert_non_null(other);
        inline_len = ews_user_pack(&u, 7, NULL, inline_buf, sizeof(inline_buf));
        for (i = 0; i < u.reason_cnt; i++)
                assert_int_equal(ews_names_put(names, (uint32_t)(100 + i),
                                               u.reasons[i].name),
                                 0);
        assert_int_equal(ews_names_put(names, 7, "crm"), 0);
        /* an id for life: not another name, nor the name another id */
        assert_int_equal(ews_names_put(names, 7, "crm"), 0);
        assert_int_equal(ews_names_put(names, 7, "hr"), -1);
        assert_int_equal(ews_names_put(names, 8, "crm"), -1);
        assert_int_equal(ews_names_id(names, "crm"), 7);
        assert_string_equal(ews_names_name(names, 100), "type_0");
        assert_null(ews_names_name(names, 99));

        len = ews_user_pack(&u, 7, names, buf, sizeof(buf));
        assert_true(len > 0 && len + 60 < inline_len);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(
                ews_user_unpack(&back, &partition, names, buf, (size_t)len), 0);
        assert_memory_equal(&u, &back, sizeof(u));
        /* without those ids: not known yet, read the dictionary again */
        assert_int_equal(ews_names_put(other, 7, "crm"), 0);
        assert_int_equal(
                ews_user_unpack(&back, &partition, other, buf, (size_t)len),
                EWS_USER_UNKNOWN_NAME);
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, buf, (size_t)len),
                EWS_USER_UNKNOWN_NAME);
        /* inline names read with any dictionary */
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(ews_user_unpack(&back, &partition, other, inline_buf,
                                         (size_t)inline_len),
                         0);
        assert_memory_equal(&u, &back, sizeof(u));
        ews_names_destroy(names);
        ews_names_destroy(other);
        ews_names_destroy(NULL);
}

static void test_codec_rejects_malformed(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX], bad[EWS_USER_PACKED_MAX];
        int32_t partition;
        int len, cut;

        (void)state;
        len = ews_user_pack(&u, 7, NULL, buf, sizeof(buf));
        for (cut = 0; cut < len; cut++) /* every truncation */
                assert_int_equal(ews_user_unpack(&back, &partition, NULL, buf,
                                                 (size_t)cut),
                                 -1);
        memcpy(bad, buf, (size_t)len);
        bad[len] = 0; /* trailing byte */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, bad, (size_t)len + 1),
                -1);
        memcpy(bad, buf, (size_t)len);
        bad[0] = 99; /* unknown version */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, bad, (size_t)len), -1);
        memcpy(bad, buf, (size_t)len);
        bad[1] = EWS_STAGE_COUNT; /* unknown stage */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, bad, (size_t)len), -1);
        memcpy(bad, buf, (size_t)len);
        assert_int_equal(bad[28], 0x04); /* the score flags: fit whole */
        bad[28] |= 0x08;                 /* a flag no version knows */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, bad, (size_t)len), -1);
        memcpy(bad, buf, (size_t)len);
        bad[len - 5] = 2; /* a member flag neither 0 nor 1 (before the
                             three bytes of no activation progress and
                             the funnel's) */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, bad, (size_t)len), -1);
}

/* Timers are filed by the hour: a deadline moving later within its hour
 * keeps its entry (found early, never late) while the watermark w is
 * before the entry; anything else moves it. */
static void test_timer_moves_by_the_hour(void **state)
{
        const int64_t h = 3600000, t = 1767225600000LL; /* an hour's start */
        const int64_t w = t + 1;

        (void)state;
        assert_false(ews_store_timer_moves(0, 0, w));
        assert_false(ews_store_timer_moves(t + 5, t + 5, w));
        assert_false(ews_store_timer_moves(t + 5, t + h - 1, w));    /* later */
        assert_false(ews_store_timer_moves(t + 5, t + h - 1, 0));    /* none */
        assert_true(ews_store_timer_moves(t + 5, t + h - 1, t + 5)); /* due */
        assert_true(ews_store_timer_moves(t + 5, t + h - 1, t + 9)); /* past */
        assert_true(ews_store_timer_moves(t + 5, t + 4, w)); /* earlier */
        assert_true(ews_store_timer_moves(t + 5, t + h, w)); /* next hour */
        assert_true(ews_store_timer_moves(t + 5, 0, w));     /* none now */
        assert_true(ews_store_timer_moves(0, t, w));         /* new */
        assert_true(ews_store_timer_moves(-1, t, w)); /* filed elsewhere */
        assert_true(ews_store_timer_moves(-1, 0, w)); /* there: removed */
}

/* Activation progress at the end of the value: three bytes without any,
 * and every byte of it checked. */
static void test_codec_activation_progress(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX];
        int32_t partition;
        int len2, len, cut;

        (void)state;
        len2 = ews_user_pack(&u, 7, NULL, buf, sizeof(buf));
        assert_int_equal(buf[0], EWS_USER_PACKED_VERSION);
        u.activation_met = 0x1ff; /* the score and all eight conditions */
        u.activation_cnt = 3;
        u.activation_counts[0] = 1;
        u.activation_counts[1] = 300; /* two bytes */
        u.activation_counts[2] = 65535;
        u.activation_product_cnt = 2;
        u.activation_products[0] = 0xcafef00du;
        u.activation_products[1] = 7;
        len = ews_user_pack(&u, 7, NULL, buf, sizeof(buf));
        assert_int_equal(buf[0], EWS_USER_PACKED_VERSION);
        /* met 2 bytes, 1 + 1 + 2 + 3 for the counts, 1 + 8 for products,
         * where there were three */
        assert_int_equal(len - len2, 18 - 3);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, buf, (size_t)len), 0);
        assert_memory_equal(&u, &back, sizeof(u));
        /* the funnel's byte, the last */
        u.funnel = 0x3;
        assert_int_equal(ews_user_pack(&u, 7, NULL, buf, sizeof(buf)), len);
        assert_int_equal(buf[len - 1], 0x3);
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, buf, (size_t)len), 0);
        assert_int_equal(back.funnel, 0x3);
        for (cut = 0; cut < len; cut++) /* not even without the progress */
                assert_int_equal(ews_user_unpack(&back, &partition, NULL, buf,
                                                 (size_t)cut),
                                 -1);
        buf[len2 - 4 + 2] = EWS_ACTIVATION_MAX + 1; /* too many counts */
        assert_int_equal(
                ews_user_unpack(&back, &partition, NULL, buf, (size_t)len), -1);
}

static void test_cache_bound_and_drop(void **state)
{
        struct ews_user_cache *cache = ews_user_cache_new(3);
        const unsigned char *v;
        char id[16];
        size_t len;
        int i, found = 0;

        (void)state;
        assert_non_null(cache);
        ews_user_cache_put(cache, "u-1", 0, (const unsigned char *)"aa", 2);
        ews_user_cache_put(cache, "u-2", 1, (const unsigned char *)"bbb", 3);
        v = ews_user_cache_get(cache, "u-2", &len);
        assert_non_null(v);
        assert_int_equal(len, 3);
        assert_memory_equal(v, "bbb", 3);
        /* an update replaces the value in place */
        ews_user_cache_put(cache, "u-2", 1, (const unsigned char *)"cccc", 4);
        v = ews_user_cache_get(cache, "u-2", &len);
        assert_int_equal(len, 4);
        assert_memory_equal(v, "cccc", 4);
        /* never more than the bound */
        for (i = 3; i < 50; i++) {
                snprintf(id, sizeof(id), "u-%d", i);
                ews_user_cache_put(cache, id, i % 2, (const unsigned char *)id,
                                   strlen(id));
        }
        assert_int_equal(ews_user_cache_stats(cache).entries, 3);
        assert_true(ews_user_cache_stats(cache).evictions == 46);
        for (i = 1; i < 50; i++) {
                snprintf(id, sizeof(id), "u-%d", i);
                if ((v = ews_user_cache_get(cache, id, &len))) {
                        found++;
                        assert_memory_equal(v, id, strlen(id));
                }
        }
        assert_int_equal(found, 3);
        /* a partition's entries go, the others stay */
        ews_user_cache_drop(cache, 1);
        assert_null(ews_user_cache_get(cache, "u-49", &len));
        assert_non_null(ews_user_cache_get(cache, "u-48", &len));
        ews_user_cache_drop(cache, -1);
        assert_int_equal(ews_user_cache_stats(cache).entries, 0);
        ews_user_cache_destroy(cache);
        ews_user_cache_destroy(NULL);
}

static void test_outbox_round_trip_and_refusals(void **state)
{
        struct ews_outbox_entry dead = {.kind = EWS_OUTBOX_DEAD,
                                        .key = "u-1",
                                        .key_len = 3,
                                        .value = "\xff\x00\x01",
                                        .value_len = 3,
                                        .reason = "bad_length",
                                        .reason_len = 10,
                                        .detail = "negative length",
                                        .detail_len = 15,
                                        .source_topic = "product-usage",
                                        .source_topic_len = 13,
                                        .partition = 7,
                                        .offset = 123456789012LL,
                                        .timestamp_ms = 1767225600123LL};
        struct ews_outbox_entry back;
        unsigned char buf[256], bad[256];
        size_t size = ews_outbox_size(&dead), cut;
        int64_t len;

        (void)state;
        assert_int_equal(ews_outbox_pack(&dead, buf, size - 1), -1);
        len = ews_outbox_pack(&dead, buf, sizeof(buf));
        assert_int_equal(len, (int64_t)size);
        assert_int_equal(ews_outbox_unpack(&back, buf, (size_t)len), 0);
        assert_int_equal(back.kind, EWS_OUTBOX_DEAD);
        assert_memory_equal(back.value, "\xff\x00\x01", 3);
        assert_int_equal(back.detail_len, 15);
        assert_memory_equal(back.source_topic, "product-usage", 13);
        assert_int_equal(back.partition, 7);
        assert_int_equal(back.offset, 123456789012LL);
        assert_int_equal(back.timestamp_ms, 1767225600123LL);

        for (cut = 0; cut < size; cut++)
                assert_int_equal(ews_outbox_unpack(&back, buf, cut), -1);
        memcpy(bad, buf, size);
        bad[size] = 0; /* trailing byte */
        assert_int_equal(ews_outbox_unpack(&back, bad, size + 1), -1);
        bad[1] = 3; /* no such kind */
        assert_int_equal(ews_outbox_unpack(&back, bad, size), -1);
        memcpy(bad, buf, size);
        bad[0] = 3; /* a later version */
        assert_int_equal(ews_outbox_unpack(&back, bad, size), -1);
        memcpy(bad, buf, size);
        bad[0] = 2; /* version 2 without its topic */
        assert_int_equal(ews_outbox_unpack(&back, bad, size), -1);
        memcpy(bad, buf, size);
        memset(bad + 2, 0xff, 4); /* a key longer than the record */
        assert_int_equal(ews_outbox_unpack(&back, bad, size), -1);
        memcpy(bad, buf, size);
        bad[size - 24 + 5] = 1; /* a partition past int32 */
        assert_int_equal(ews_outbox_unpack(&back, bad, size), -1);
}

/* An alert of a routed rule keeps its topic (version 2); a record of
 * version 1, as written before topics were kept, still reads, with none. */
static void test_outbox_topic(void **state)
{
        struct ews_outbox_entry alert = {.kind = EWS_OUTBOX_ALERT,
                                         .key = "u-1",
                                         .key_len = 3,
                                         .value = "avro",
                                         .value_len = 4,
                                         .topic = "sales-alerts",
                                         .topic_len = 12};
        struct ews_outbox_entry back;
        unsigned char buf[256], old[256];
        size_t size = ews_outbox_size(&alert), cut, old_len;
        int64_t len;
        FILE *fp;

        (void)state;
        len = ews_outbox_pack(&alert, buf, sizeof(buf));
        assert_int_equal(len, (int64_t)size);
        assert_int_equal(buf[0], 2);
        assert_int_equal(ews_outbox_unpack(&back, buf, size), 0);
        assert_int_equal(back.topic_len, 12);
        assert_memory_equal(back.topic, "sales-alerts", 12);
        assert_memory_equal(back.value, "avro", 4);
        for (cut = 0; cut < size; cut++)
                assert_int_equal(ews_outbox_unpack(&back, buf, cut), -1);
        /* without a topic: version 1, as before */
        alert.topic_len = 0;
        assert_int_equal(ews_outbox_pack(&alert, buf, sizeof(buf)),
                         (int64_t)size - 16);
        assert_int_equal(buf[0], 1);
        /* an alert record of version 1 written by an earlier release (the
         * fuzz seed, after its selector byte) */
        fp = fopen("tests/fuzz/corpus/fuzz_stored/outbox-alert", "rb");
        assert_non_null(fp);
        old_len = fread(old, 1, sizeof(old), fp);
        fclose(fp);
        assert_true(old_len > 1 && old[1] == 1);
        assert_int_equal(ews_outbox_unpack(&back, old + 1, old_len - 1), 0);
        assert_int_equal(back.kind, EWS_OUTBOX_ALERT);
        assert_int_equal(back.topic_len, 0);
        assert_memory_equal(back.key, "u-1", 3);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_codec_round_trip),
                cmocka_unit_test(test_codec_reads_earlier_versions),
                cmocka_unit_test(test_codec_reads_version_4),
                cmocka_unit_test(test_codec_scores_short_and_lossless),
                cmocka_unit_test(test_codec_names_by_id),
                cmocka_unit_test(test_codec_rejects_malformed),
                cmocka_unit_test(test_codec_activation_progress),
                cmocka_unit_test(test_outbox_round_trip_and_refusals),
                cmocka_unit_test(test_outbox_topic),
                cmocka_unit_test(test_cache_bound_and_drop),
                cmocka_unit_test(test_timer_moves_by_the_hour),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
