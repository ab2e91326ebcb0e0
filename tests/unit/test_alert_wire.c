/*
 * Alerts in the Schema Registry's wire format (decode/alert_wire.c): read
 * back as the plain ones, plain Avro for a topic never registered, and no
 * registration without a registry. The registration itself is checked
 * against a registry in tests/integration/test_alerts_confluent.py. Run
 * from the repository root (schemas/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"

static struct ews_decoder *decoder;

static int setup(void **state)
{
        struct ews_decode_conf conf = {
                .schema_dir = "schemas",
                .max_future_ms = 24 * 3600000LL,
                .max_bytes = 1 << 20,
                .max_items = 10000,
        };
        char errstr[256];

        (void)state;
        decoder = ews_decoder_new(&conf, errstr, sizeof(errstr));
        if (!decoder)
                fail_msg("decoder: %s", errstr);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        ews_decoder_destroy(decoder);
        return 0;
}

static void alert_make(struct ews_alert *alert)
{
        memset(alert, 0, sizeof(*alert));
        strcpy(alert->alert_id, "SALES_READY:u-2:5:1");
        strcpy(alert->episode_id, "SALES_READY:u-2:5");
        strcpy(alert->subject_id, "u-2");
        strcpy(alert->reason, "ready");
        alert->rule = EWS_RULE_SALES_READY;
        alert->seq = 1;
}

/* Byte 0, a big-endian id, then the Avro an alert is anyway: it reads as
 * the plain alert does. */
static void test_alert_wire_read(void **state)
{
        struct ews_alert alert, back;
        unsigned char plain[4096], framed[4096 + 5];
        char errstr[256];
        int len;

        (void)state;
        alert_make(&alert);
        len = ews_decode_alert_encode(decoder, &alert, plain, sizeof(plain),
                                      errstr, sizeof(errstr));
        assert_true(len > 0);
        memcpy(framed, "\0\0\0\0\x07", 5);
        memcpy(framed + 5, plain, (size_t)len);
        assert_int_equal(ews_decode_alert(decoder, framed, (size_t)len + 5,
                                          &back, errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(back.alert_id, alert.alert_id);
        assert_int_equal(back.rule, EWS_RULE_SALES_READY);
        /* the plain one still reads */
        assert_int_equal(ews_decode_alert(decoder, plain, (size_t)len, &back,
                                          errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        /* a frame with nothing after it is not an alert */
        assert_int_not_equal(ews_decode_alert(decoder, framed, 5, &back, errstr,
                                              sizeof(errstr)),
                             EWS_DECODE_OK);
}

/* Not registered (alerts.format avro): plain Avro. Registering needs a
 * registry. */
static void test_alert_wire_unregistered(void **state)
{
        struct ews_alert alert;
        unsigned char plain[4096], out[4096];
        char errstr[256];
        int len;

        (void)state;
        alert_make(&alert);
        len = ews_decode_alert_encode(decoder, &alert, plain, sizeof(plain),
                                      errstr, sizeof(errstr));
        assert_int_equal(ews_decode_alert_encode_for(decoder, "ews-alerts",
                                                     &alert, out, sizeof(out),
                                                     errstr, sizeof(errstr)),
                         len);
        assert_memory_equal(out, plain, (size_t)len);
        assert_int_equal(ews_decode_alert_register(decoder, "ews-alerts",
                                                   errstr, sizeof(errstr)),
                         EWS_DECODE_INCOMPATIBLE_SCHEMA);
        assert_string_equal(errstr, "no registry configured");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alert_wire_read),
                cmocka_unit_test(test_alert_wire_unregistered),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("alert_wire", tests, setup,
                                           teardown);
}
