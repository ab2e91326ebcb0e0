/* Replay mode's pieces that need no process: out_kafka's file sink (what
 * goes in comes back byte for byte, and is reported delivered), and the
 * --end-offsets list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/config.h"
#include "ops/setup.h"
#include "out_kafka/out_kafka.h"

struct reports {
        int delivered, failed;
        char last_id[64];
};

static void on_report(void *opaque, struct ews_outbox_ref ref, const char *id,
                      const struct ews_out_kafka_error *error)
{
        struct reports *r = opaque;

        (void)ref;
        if (!error)
                r->delivered++;
        else
                r->failed++;
        snprintf(r->last_id, sizeof(r->last_id), "%s", id);
}

/* Values of every length mod 3, every byte value, a key with a quote. */
static unsigned char bytes[256];
static const struct ews_outbox_entry entries[] = {
        {.kind = EWS_OUTBOX_ALERT,
         .key = "u-\"1\"",
         .key_len = 6,
         .value = bytes,
         .value_len = 256},
        {.kind = EWS_OUTBOX_ALERT,
         .key = "",
         .key_len = 0,
         .value = bytes,
         .value_len = 0},
        {.kind = EWS_OUTBOX_ALERT,
         .key = "k",
         .key_len = 1,
         .value = bytes + 7,
         .value_len = 1,
         .topic = "ews-sales-ready",
         .topic_len = 15},
        {.kind = EWS_OUTBOX_DEAD,
         .key = "\xff\x00z",
         .key_len = 3,
         .value = bytes + 1,
         .value_len = 2,
         .reason = "truncated",
         .reason_len = 9,
         .detail = "cut at 3\n\"",
         .detail_len = 10,
         .source_topic = "product-usage",
         .source_topic_len = 13,
         .partition = 3,
         .offset = 123456789012LL,
         .timestamp_ms = 1767225600123LL},
};
static const char *const ids[] = {"SALES_READY:u-1:1:1", "x:2", "x:3",
                                  "d:product-usage:3:123456789012"};

struct read_back {
        int n;
};

static int check_record(void *opaque, const char *id,
                        const struct ews_outbox_entry *e)
{
        struct read_back *rb = opaque;
        const struct ews_outbox_entry *want = &entries[rb->n];

        assert_true(rb->n < 4);
        assert_string_equal(id, ids[rb->n]);
        assert_int_equal(e->kind, want->kind);
        assert_int_equal(e->key_len, want->key_len);
        assert_memory_equal(e->key, want->key, want->key_len);
        assert_int_equal(e->value_len, want->value_len);
        assert_int_equal(e->topic_len, want->topic_len);
        assert_memory_equal(e->topic, want->topic ? want->topic : "",
                            want->topic_len);
        if (want->value_len)
                assert_memory_equal(e->value, want->value, want->value_len);
        if (want->kind == EWS_OUTBOX_DEAD) {
                assert_int_equal(e->reason_len, want->reason_len);
                assert_memory_equal(e->reason, want->reason, want->reason_len);
                assert_int_equal(e->detail_len, want->detail_len);
                assert_memory_equal(e->detail, want->detail, want->detail_len);
                assert_int_equal(e->source_topic_len, want->source_topic_len);
                assert_int_equal(e->partition, want->partition);
                assert_int_equal(e->offset, want->offset);
                assert_int_equal(e->timestamp_ms, want->timestamp_ms);
        }
        rb->n++;
        return 0;
}

static void test_file_sink_round_trip(void **state)
{
        char path[] = "/tmp/ews-test-replay-XXXXXX", errstr[256];
        struct ews_config_props props = {0};
        struct ews_out_kafka_conf conf = {.bootstrap_servers = "",
                                          .topic_alerts = "a",
                                          .topic_dlq = "d",
                                          .props = &props,
                                          .file = path};
        struct ews_out_kafka_error error;
        struct reports reports = {0};
        struct read_back rb = {0};
        struct ews_out_kafka *out;
        int fd = mkstemp(path), i;
        FILE *fp;

        (void)state;
        assert_true(fd >= 0);
        close(fd);
        for (i = 0; i < 256; i++)
                bytes[i] = (unsigned char)i;
        out = ews_out_kafka_new(&conf, errstr, sizeof(errstr));
        assert_non_null(out);
        ews_out_kafka_set_delivered(out, on_report, &reports);
        for (i = 0; i < 4; i++)
                assert_int_equal(
                        ews_out_kafka_send(out, (struct ews_outbox_ref){0, i},
                                           ids[i], &entries[i], &error),
                        0);
        /* written, reported at the next poll */
        assert_int_equal(ews_out_kafka_queue_len(out), 4);
        assert_int_equal(reports.delivered, 0);
        ews_out_kafka_poll(out);
        assert_int_equal(reports.delivered, 4);
        assert_int_equal(reports.failed, 0);
        assert_string_equal(reports.last_id, ids[3]);
        assert_int_equal(ews_out_kafka_queue_len(out), 0);
        assert_int_equal(ews_out_kafka_flush(out, 100), 0);
        assert_int_equal(ews_out_kafka_stats(out).produced, 4);
        assert_int_equal(ews_out_kafka_stats(out).delivered, 4);
        ews_out_kafka_destroy(out, 100);

        assert_int_equal(ews_out_file_read(path, check_record, &rb, errstr,
                                           sizeof(errstr)),
                         0);
        assert_int_equal(rb.n, 4);

        /* a line that is not a record is named by file and line */
        fp = fopen(path, "a");
        assert_non_null(fp);
        fputs("\n{\"id\":\"x\",\"kind\":\"alert\",\"key\":\"a\","
              "\"value\":\"\"}\n",
              fp);
        fclose(fp);
        rb.n = 0;
        assert_int_equal(ews_out_file_read(path, check_record, &rb, errstr,
                                           sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, ":6: not a record"));
        unlink(path);
}

static void test_end_offsets_list(void **state)
{
        static struct ews_config c;
        static int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        static const char *const bad[] = {
                "product-usage:0",
                "product-usage=5",
                "other:0=5",
                "product-usage:x=5",
                "product-usage:0=-1",
                "product-usage:1024=5",
                "product-usage:0=5,",
                "product-usage:0=5,,x:1=2",
                "campaign-events:0=5 ",
        };
        char errstr[256];
        size_t i;

        (void)state;
        ews_config_defaults(&c);
        assert_int_equal(
                ews_setup_end_offsets(&c,
                                      "product-usage:0=5,product-usage:3=0,"
                                      "campaign-events:1=12",
                                      end, errstr, sizeof(errstr)),
                0);
        assert_int_equal(end[EWS_SOURCE_USAGE][0], 5);
        assert_int_equal(end[EWS_SOURCE_USAGE][1], -1);
        assert_int_equal(end[EWS_SOURCE_USAGE][3], 0);
        assert_int_equal(end[EWS_SOURCE_CAMPAIGN][0], -1);
        assert_int_equal(end[EWS_SOURCE_CAMPAIGN][1], 12);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                assert_int_equal(ews_setup_end_offsets(&c, bad[i], end, errstr,
                                                       sizeof(errstr)),
                                 -1);
                assert_non_null(strstr(errstr, "--end-offsets"));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_sink_round_trip),
                cmocka_unit_test(test_end_offsets_list),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
