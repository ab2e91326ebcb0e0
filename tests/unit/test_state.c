/* The store's pure parts: the packed user value, the outbox record and the
 * user cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cache.h"
#include "store/codec.h"
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
        len = ews_user_pack(&u, 7, buf, sizeof(buf));
        assert_true(len > 0);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(ews_user_unpack(&back, &partition, buf, (size_t)len),
                         0);
        assert_int_equal(partition, 7);
        assert_memory_equal(&u, &back, sizeof(u)); /* bit for bit */
        /* too small a buffer is refused, whatever the size */
        for (int size = 0; size < len; size += 7)
                assert_int_equal(ews_user_pack(&u, 7, buf, (size_t)size), -1);
}

static void test_codec_rejects_malformed(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX], bad[EWS_USER_PACKED_MAX];
        int32_t partition;
        int len, cut;

        (void)state;
        len = ews_user_pack(&u, 7, buf, sizeof(buf));
        for (cut = 0; cut < len; cut++) /* every truncation */
                assert_int_equal(
                        ews_user_unpack(&back, &partition, buf, (size_t)cut),
                        -1);
        memcpy(bad, buf, (size_t)len);
        bad[len] = 0; /* trailing byte */
        assert_int_equal(
                ews_user_unpack(&back, &partition, bad, (size_t)len + 1), -1);
        memcpy(bad, buf, (size_t)len);
        bad[0] = 99; /* unknown version */
        assert_int_equal(ews_user_unpack(&back, &partition, bad, (size_t)len),
                         -1);
        memcpy(bad, buf, (size_t)len);
        bad[1] = EWS_STAGE_COUNT; /* unknown stage */
        assert_int_equal(ews_user_unpack(&back, &partition, bad, (size_t)len),
                         -1);
}

/* Activation progress makes a version 3 value; without it the value is
 * the version 2 that earlier releases wrote and read. */
static void test_codec_activation_progress(void **state)
{
        struct ews_user u = user_full(), back;
        unsigned char buf[EWS_USER_PACKED_MAX];
        int32_t partition;
        int len2, len, cut;

        (void)state;
        u.funnel = 0; /* as before the funnel */
        len2 = ews_user_pack(&u, 7, buf, sizeof(buf));
        assert_int_equal(buf[0], 2);
        u.activation_met = 0x1ff; /* the score and all eight conditions */
        u.activation_cnt = 3;
        u.activation_counts[0] = 1;
        u.activation_counts[1] = 300; /* two bytes */
        u.activation_counts[2] = 65535;
        u.activation_product_cnt = 2;
        u.activation_products[0] = 0xcafef00du;
        u.activation_products[1] = 7;
        len = ews_user_pack(&u, 7, buf, sizeof(buf));
        assert_int_equal(buf[0], 3);
        /* met 2 bytes, 1 + 1 + 2 + 3 for the counts, 1 + 8 for products */
        assert_int_equal(len - len2, 18);
        memset(&back, 0, sizeof(back));
        strcpy(back.user_id, "u-1");
        assert_int_equal(ews_user_unpack(&back, &partition, buf, (size_t)len),
                         0);
        /* a value from before the funnel reads as having counted what the
         * user had reached: the funnel counts from the upgrade on */
        assert_int_equal(back.funnel, 0x7); /* signup, activated, sales-ready */
        u.funnel = back.funnel;
        assert_memory_equal(&u, &back, sizeof(u));
        /* the funnel's byte: version 4, one byte more */
        u.funnel = 0x3;
        assert_int_equal(ews_user_pack(&u, 7, buf, sizeof(buf)), len + 1);
        assert_int_equal(buf[0], 4);
        assert_int_equal(
                ews_user_unpack(&back, &partition, buf, (size_t)len + 1), 0);
        assert_int_equal(back.funnel, 0x3);
        for (cut = 0; cut < len; cut++) /* not even without the progress */
                assert_int_equal(
                        ews_user_unpack(&back, &partition, buf, (size_t)cut),
                        -1);
        buf[len2 + 2] = EWS_ACTIVATION_MAX + 1; /* too many counts */
        assert_int_equal(ews_user_unpack(&back, &partition, buf, (size_t)len),
                         -1);
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
                cmocka_unit_test(test_codec_rejects_malformed),
                cmocka_unit_test(test_codec_activation_progress),
                cmocka_unit_test(test_outbox_round_trip_and_refusals),
                cmocka_unit_test(test_outbox_topic),
                cmocka_unit_test(test_cache_bound_and_drop),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
