/*
 * Decoding against bytes written by a small Avro encoder of the test's own,
 * so that the decoder is checked against the specification, not against
 * itself. Run from the repository root (schemas/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"

#define T0  1767225600000LL
#define NOW (T0 + 3600000LL)

struct enc {
        unsigned char buf[8192];
        size_t len;
};

static void enc_long(struct enc *e, int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

        while (z > 0x7f) {
                e->buf[e->len++] = (unsigned char)((z & 0x7f) | 0x80);
                z >>= 7;
        }
        e->buf[e->len++] = (unsigned char)z;
}

static void enc_str(struct enc *e, const char *s)
{
        enc_long(e, (int64_t)strlen(s));
        memcpy(e->buf + e->len, s, strlen(s));
        e->len += strlen(s);
}

static void enc_opt_str(struct enc *e, const char *s)
{
        enc_long(e, s ? 1 : 0);
        if (s)
                enc_str(e, s);
}

static void enc_double(struct enc *e, double d)
{
        memcpy(e->buf + e->len, &d, 8); /* little-endian, as Avro */
        e->len += 8;
}

struct usage_spec {
        const char *event_id, *user_id, *account_id, *event_type, *product;
        const char *campaign_id;
        int has_value;
        double value;
        int64_t occurred_at;
        const char *attr_key, *attr_value;
};

static struct usage_spec usage_valid(void)
{
        struct usage_spec s = {"e-1", "u-1",        "a-1",    "video_play",
                               "crm", "c-1",        1,        0.5,
                               T0,    "page_class", "pricing"};
        return s;
}

static void enc_usage(struct enc *e, const struct usage_spec *s)
{
        e->len = 0;
        enc_str(e, s->event_id);
        enc_str(e, s->user_id);
        enc_opt_str(e, s->account_id);
        enc_str(e, s->event_type);
        enc_opt_str(e, s->product);
        enc_long(e, s->has_value ? 1 : 0);
        if (s->has_value)
                enc_double(e, s->value);
        enc_opt_str(e, s->campaign_id);
        enc_long(e, s->occurred_at);
        if (s->attr_key) {
                enc_long(e, 1);
                enc_str(e, s->attr_key);
                enc_str(e, s->attr_value);
        }
        enc_long(e, 0);
}

static struct ews_decoder *decoder;

static struct ews_decoder *decoder_make(enum ews_decode_format format,
                                        const char *writer_schema)
{
        struct ews_decode_conf conf = {
                .schema_dir = "schemas",
                .format = {format, format},
                .writer_schema = {writer_schema, NULL},
                .max_future_ms = 24 * 3600000LL,
                .max_bytes = 1 << 20,
                .max_items = 10000,
        };
        char errstr[256];
        struct ews_decoder *d = ews_decoder_new(&conf, errstr, sizeof(errstr));

        if (!d)
                fail_msg("decoder: %s", errstr);
        return d;
}

static int setup(void **state)
{
        (void)state;
        decoder = decoder_make(EWS_FORMAT_AVRO, NULL);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        ews_decoder_destroy(decoder);
        ews_decoder_destroy(NULL); /* safe */
        return 0;
}

static void test_usage_valid(void **state)
{
        struct usage_spec s = usage_valid();
        struct ews_usage_event_buf ev_buf;
        struct ews_usage_event ev = *ews_usage_event_init(&ev_buf);
        struct enc e;
        char errstr[256];

        (void)state;
        enc_usage(&e, &s);
        assert_int_equal(ews_decode_usage(decoder, e.buf, e.len, NOW, &ev,
                                          errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.event_id, "e-1");
        assert_string_equal(ev.user_id, "u-1");
        assert_string_equal(ev.account_id, "a-1");
        assert_string_equal(ev.event_type, "video_play");
        assert_string_equal(ev.product, "crm");
        assert_string_equal(ev.campaign_id, "c-1");
        assert_true(ev.has_value);
        assert_float_equal(ev.value, 0.5, 0);
        assert_true(ev.occurred_at_ms == T0);
        assert_int_equal(ev.attr_cnt, 1);
        assert_string_equal(ev.attrs[0].key, "page_class");
        assert_string_equal(ev.attrs[0].value, "pricing");

        /* the same decoder value, reused: optional fields now null */
        s.account_id = s.product = s.campaign_id = NULL;
        s.has_value = 0;
        s.attr_key = NULL;
        enc_usage(&e, &s);
        assert_int_equal(ews_decode_usage(decoder, e.buf, e.len, NOW, &ev,
                                          errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.account_id, "");
        assert_string_equal(ev.product, "");
        assert_false(ev.has_value);
        assert_int_equal(ev.attr_cnt, 0);

        /* two-, three- and four-byte UTF-8 in ids is fine */
        s = usage_valid();
        s.user_id = "u-\xc3\xbc-\xe2\x82\xac-\xf0\x9f\x98\x80";
        enc_usage(&e, &s);
        assert_int_equal(ews_decode_usage(decoder, e.buf, e.len, NOW, &ev,
                                          errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.user_id, s.user_id);
}

static void test_campaign_valid(void **state)
{
        struct ews_campaign_event ev;
        struct enc e = {{0}, 0};
        char errstr[256];

        (void)state;
        enc_str(&e, "ce-1");
        enc_str(&e, "c-9");
        enc_long(&e, 0); /* LAUNCHED */
        enc_opt_str(&e, "Spring webinar");
        enc_opt_str(&e, "webinar");
        enc_long(&e, 1);
        enc_double(&e, 0.35);
        enc_long(&e, 0); /* amount: null */
        enc_long(&e, T0);
        assert_int_equal(ews_decode_campaign(decoder, e.buf, e.len, NOW, &ev,
                                             errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.campaign_id, "c-9");
        assert_int_equal(ev.type, EWS_CAMPAIGN_LAUNCHED);
        assert_string_equal(ev.name, "Spring webinar");
        assert_true(ev.has_target);
        assert_float_equal(ev.target_activation_rate, 0.35, 0);
        assert_false(ev.has_amount);
}

/* Every kind of malformed input is rejected with its own reason. */
static void test_usage_malformed(void **state)
{
        char long_id[300];
        struct enc e;
        struct ews_usage_event_buf ev_buf;
        struct ews_usage_event ev = *ews_usage_event_init(&ev_buf);
        char errstr[256];
        size_t i;
        enum {
                CUT_TAIL,
                NEG_LEN,
                HUGE_LEN,
                BAD_UNION,
                TRAILING,
                EMPTY_USER,
                LONG_ID,
                FUTURE,
                SECONDS,
                NUL_IN_ID,
                NAN_VALUE,
                LONG_VARINT,
                HUGE_MAP,
                NEG_BLOCK_SIZE,
                EMPTY_MSG,
                NOT_UTF8,
                OVERLONG_UTF8,
                SURROGATE_UTF8,
                KEY_NOT_UTF8,
                KIND_CNT
        };
        static const enum ews_decode_err want[KIND_CNT] = {
                EWS_DECODE_TRUNCATED,      EWS_DECODE_BAD_LENGTH,
                EWS_DECODE_BAD_LENGTH,     EWS_DECODE_BAD_INDEX,
                EWS_DECODE_TRAILING_BYTES, EWS_DECODE_MISSING_FIELD,
                EWS_DECODE_ID_TOO_LONG,    EWS_DECODE_FUTURE_TIMESTAMP,
                EWS_DECODE_BAD_TIMESTAMP,  EWS_DECODE_BAD_VALUE,
                EWS_DECODE_BAD_VALUE,      EWS_DECODE_BAD_VALUE,
                EWS_DECODE_BAD_LENGTH,     EWS_DECODE_BAD_LENGTH,
                EWS_DECODE_EMPTY,          EWS_DECODE_BAD_VALUE,
                EWS_DECODE_BAD_VALUE,      EWS_DECODE_BAD_VALUE,
                EWS_DECODE_BAD_VALUE,
        };

        (void)state;
        memset(long_id, 'x', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = '\0';
        for (i = 0; i < KIND_CNT; i++) {
                struct usage_spec s = usage_valid();

                switch (i) {
                case EMPTY_USER:
                        s.user_id = "";
                        break;
                case LONG_ID:
                        s.event_id = long_id;
                        break;
                case FUTURE:
                        s.occurred_at = NOW + 48 * 3600000LL;
                        break;
                case SECONDS:
                        s.occurred_at = T0 / 1000;
                        break;
                case NUL_IN_ID:
                        s.user_id = "u-1"; /* patched below */
                        break;
                case NAN_VALUE:
                        s.value = NAN;
                        break;
                case NOT_UTF8:
                        s.user_id = "u-\xff";
                        break;
                case OVERLONG_UTF8: /* '/' in two bytes */
                        s.account_id = "a-\xc0\xaf";
                        break;
                case SURROGATE_UTF8:
                        s.campaign_id = "c-\xed\xa0\x80";
                        break;
                case KEY_NOT_UTF8:
                        s.attr_key = "page\xe2\x82";
                        break;
                }
                enc_usage(&e, &s);
                switch (i) {
                case CUT_TAIL:
                        e.len -= 5;
                        break;
                case NEG_LEN: /* event_id length -1 */
                        e.len = 0;
                        enc_long(&e, -1);
                        break;
                case HUGE_LEN: /* 2^40 bytes announced */
                        e.len = 0;
                        enc_long(&e, 1LL << 40);
                        break;
                case BAD_UNION: /* account_id branch 7 */
                        e.buf[4 + 4] = 14;
                        break;
                case TRAILING:
                        e.buf[e.len++] = 0;
                        break;
                case NUL_IN_ID: /* "u-1" becomes "u\0001" */
                        e.buf[4 + 2] = 0;
                        break;
                case LONG_VARINT:
                        e.len = 0;
                        memset(e.buf, 0xff, 12);
                        e.len = 12;
                        break;
                case HUGE_MAP: /* attributes claim a million entries */
                        e.len -= 1 + 1 + 10 + 1 + 7 + 1;
                        enc_long(&e, 1000000);
                        break;
                case NEG_BLOCK_SIZE: /* block of -1 items, -5 bytes */
                        e.len -= 1 + 1 + 10 + 1 + 7 + 1;
                        enc_long(&e, -1);
                        enc_long(&e, -5);
                        break;
                case EMPTY_MSG:
                        e.len = 0;
                        break;
                }
                errstr[0] = '\0';
                if (ews_decode_usage(decoder, e.buf, e.len, NOW, &ev, errstr,
                                     sizeof(errstr)) != want[i])
                        fail_msg("case %zu: want %s, got '%s'", i,
                                 ews_decode_err_name(want[i]), errstr);
                assert_true(errstr[0] != '\0');
        }
        /* the decoder is still good after all of that */
        {
                struct usage_spec s = usage_valid();
                enc_usage(&e, &s);
                assert_int_equal(ews_decode_usage(decoder, e.buf, e.len, NOW,
                                                  &ev, errstr, sizeof(errstr)),
                                 EWS_DECODE_OK);
        }
}

static void test_campaign_bad_enum(void **state)
{
        struct ews_campaign_event ev;
        struct enc e = {{0}, 0};
        char errstr[256];

        (void)state;
        enc_str(&e, "ce-1");
        enc_str(&e, "c-9");
        enc_long(&e, 9); /* no such type */
        enc_long(&e, 0);
        enc_long(&e, 0);
        enc_long(&e, 0);
        enc_long(&e, 0);
        enc_long(&e, T0);
        assert_int_equal(ews_decode_campaign(decoder, e.buf, e.len, NOW, &ev,
                                             errstr, sizeof(errstr)),
                         EWS_DECODE_BAD_INDEX);
}

static void test_alert_encode(void **state)
{
        struct ews_alert alert;
        unsigned char buf[4096];
        char errstr[256];
        int len;

        (void)state;
        memset(&alert, 0, sizeof(alert));
        strcpy(alert.alert_id, "USER_DISENGAGED:u-1:1:1");
        strcpy(alert.episode_id, "USER_DISENGAGED:u-1:1");
        strcpy(alert.subject_id, "u-1");
        strcpy(alert.reason, "quiet");
        alert.seq = 1;
        strcpy(alert.values[0].name, "engagement");
        alert.values[0].value = 2.5;
        alert.value_cnt = 1;
        len = ews_decode_alert_encode(decoder, &alert, buf, sizeof(buf), errstr,
                                      sizeof(errstr));
        assert_true(len > 0);
        /* starts with alert_id as an Avro string: length 23 -> zigzag 46 */
        assert_int_equal(buf[0], 46);
        assert_memory_equal(buf + 1, "USER_DISENGAGED:u-1:1:1", 23);
        /* too small a buffer is an error, not an overflow */
        assert_int_equal(ews_decode_alert_encode(decoder, &alert, buf, 10,
                                                 errstr, sizeof(errstr)),
                         -1);
}

static char *file_read(const char *path, size_t *len)
{
        static char buf[16384];
        FILE *fp = fopen(path, "rb");

        assert_non_null(fp);
        *len = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[*len] = '\0';
        return buf;
}

/* The registry's wire format: byte 0, a big-endian id, then Avro. */
static void enc_confluent(struct enc *e, int32_t id, const struct enc *body)
{
        e->buf[0] = 0;
        e->buf[1] = (unsigned char)(id >> 24);
        e->buf[2] = (unsigned char)(id >> 16);
        e->buf[3] = (unsigned char)(id >> 8);
        e->buf[4] = (unsigned char)id;
        memcpy(e->buf + 5, body->buf, body->len);
        e->len = body->len + 5;
}

/* Writers evolve: ours reads what they wrote, or says it cannot. */
static void test_confluent_evolution(void **state)
{
        struct ews_decoder *d = decoder_make(EWS_FORMAT_CONFLUENT, NULL);
        static const char *files[] = {
                "schemas/usage_event.avsc",
                "tests/schemas/usage_event_v2_added.avsc",
                "tests/schemas/usage_event_v2_removed.avsc",
                "tests/schemas/usage_event_incompatible.avsc"};
        struct usage_spec s = usage_valid();
        struct ews_usage_event_buf ev_buf;
        struct ews_usage_event ev = *ews_usage_event_init(&ev_buf);
        struct enc body, e;
        char errstr[256], *json;
        size_t len;
        int i;

        (void)state;
        for (i = 0; i < 4; i++) {
                json = file_read(files[i], &len);
                assert_int_equal(ews_decoder_schema_add(d, i + 1, json, len,
                                                        errstr, sizeof(errstr)),
                                 0);
        }
        /* id 1, our own schema */
        enc_usage(&body, &s);
        enc_confluent(&e, 1, &body);
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.product, "crm");

        /* id 2: session_id added after product */
        body.len = 0;
        enc_str(&body, "e-2");
        enc_str(&body, "u-2");
        enc_opt_str(&body, "a-2");
        enc_str(&body, "login");
        enc_opt_str(&body, "sess-9"); /* session_id */
        enc_opt_str(&body, "crm");
        enc_long(&body, 0);
        enc_opt_str(&body, NULL);
        enc_long(&body, T0);
        enc_long(&body, 0);
        enc_confluent(&e, 2, &body);
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.user_id, "u-2");
        assert_string_equal(ev.product, "crm");
        assert_true(ev.occurred_at_ms == T0);

        /* id 3: product removed: ours defaults it */
        body.len = 0;
        enc_str(&body, "e-3");
        enc_str(&body, "u-3");
        enc_opt_str(&body, NULL);
        enc_str(&body, "login");
        enc_long(&body, 0);
        enc_opt_str(&body, "c-3");
        enc_long(&body, T0);
        enc_long(&body, 0);
        enc_confluent(&e, 3, &body);
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.product, "");
        assert_string_equal(ev.campaign_id, "c-3");

        /* id 4: incompatible; id 9: unknown (no registry); bad magic */
        enc_confluent(&e, 4, &body);
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_INCOMPATIBLE_SCHEMA);
        assert_non_null(strstr(errstr, "schema id 4"));
        enc_confluent(&e, 9, &body);
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_UNKNOWN_SCHEMA);
        e.buf[0] = 1;
        assert_int_equal(ews_decode_usage(d, e.buf, e.len, NOW, &ev, errstr,
                                          sizeof(errstr)),
                         EWS_DECODE_BAD_MAGIC);
        assert_int_equal(
                ews_decode_usage(d, e.buf, 3, NOW, &ev, errstr, sizeof(errstr)),
                EWS_DECODE_BAD_MAGIC);
        ews_decoder_destroy(d);
}

/* Raw Avro from producers on a newer schema, named in the configuration. */
static void test_avro_writer_schema(void **state)
{
        struct ews_decoder *d = decoder_make(
                EWS_FORMAT_AVRO, "tests/schemas/usage_event_v2_removed.avsc");
        struct ews_usage_event_buf ev_buf;
        struct ews_usage_event ev = *ews_usage_event_init(&ev_buf);
        struct enc body = {{0}, 0};
        char errstr[256];

        (void)state;
        enc_str(&body, "e-3");
        enc_str(&body, "u-3");
        enc_opt_str(&body, NULL);
        enc_str(&body, "login");
        enc_long(&body, 0);
        enc_opt_str(&body, NULL);
        enc_long(&body, T0);
        enc_long(&body, 0);
        assert_int_equal(ews_decode_usage(d, body.buf, body.len, NOW, &ev,
                                          errstr, sizeof(errstr)),
                         EWS_DECODE_OK);
        assert_string_equal(ev.user_id, "u-3");
        ews_decoder_destroy(d);
}

static void test_json(void **state)
{
        static const struct {
                const char *json;
                enum ews_decode_err want;
        } cases[] = {
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"login\",\"occurred_at\":1767225600000}",
                 EWS_DECODE_OK},
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"video_play\",\"value\":0.5,\"product\":null,"
                 "\"occurred_at\":\"2026-01-01T00:00:00.250Z\","
                 "\"attributes\":{\"page_class\":\"pricing\"},"
                 "\"future_field\":[1,2]}",
                 EWS_DECODE_OK},
                {"{\"event_id\":\"e\",\"event_type\":\"login\","
                 "\"occurred_at\":1767225600000}",
                 EWS_DECODE_MISSING_FIELD},
                {"{\"event_id\":\"e\",\"user_id\":7,\"event_type\":\"x\","
                 "\"occurred_at\":1767225600000}",
                 EWS_DECODE_BAD_VALUE},
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"x\",\"occurred_at\":\"yesterday\"}",
                 EWS_DECODE_BAD_TIMESTAMP},
                {"{\"event_id\":", EWS_DECODE_BAD_JSON},
                {"[1,2]", EWS_DECODE_BAD_JSON},
                {"{\"a\":1,\"a\":2}", EWS_DECODE_BAD_JSON},
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"x\",\"occurred_at\":\"2026-01-01T00:00:00.-12Z\"}",
                 EWS_DECODE_BAD_TIMESTAMP},
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"x\",\"occurred_at\":\" 2026-01-01T00:00:00Z\"}",
                 EWS_DECODE_BAD_TIMESTAMP},
                {"{\"event_id\":\"e\",\"user_id\":\"u\",\"event_type\":"
                 "\"x\",\"occurred_at\":\"2026-02-31T00:00:00Z\"}",
                 EWS_DECODE_BAD_TIMESTAMP},
        };
        struct ews_decoder *d = decoder_make(EWS_FORMAT_JSON, NULL);
        struct ews_usage_event_buf ev_buf;
        struct ews_usage_event ev = *ews_usage_event_init(&ev_buf);
        char errstr[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                enum ews_decode_err got = ews_decode_usage(
                        d, cases[i].json, strlen(cases[i].json), NOW, &ev,
                        errstr, sizeof(errstr));
                if (got != cases[i].want)
                        fail_msg("case %zu: want %s, got %s (%s)", i,
                                 ews_decode_err_name(cases[i].want),
                                 ews_decode_err_name(got), errstr);
        }
        ews_decode_usage(d, cases[1].json, strlen(cases[1].json), NOW, &ev,
                         errstr, sizeof(errstr));
        assert_true(ev.occurred_at_ms == 1767225600250LL);
        assert_float_equal(ev.value, 0.5, 0);
        assert_int_equal(ev.attr_cnt, 1);
        ews_decoder_destroy(d);
}

/* avro-c resolves enums by position: a writer with our symbols in another
 * order would turn SPEND into LAUNCHED, so it is refused. */
static void test_enum_order(void **state)
{
        struct ews_decoder *d = decoder_make(EWS_FORMAT_CONFLUENT, NULL);
        struct ews_campaign_event ev;
        struct enc body = {{0}, 0}, e;
        char errstr[256], *json;
        size_t len;

        (void)state;
        json = file_read("tests/schemas/campaign_event_reordered.avsc", &len);
        assert_int_equal(
                ews_decoder_schema_add(d, 5, json, len, errstr, sizeof(errstr)),
                0);
        enc_str(&body, "ce-1");
        enc_str(&body, "c-9");
        enc_long(&body, 0); /* SPEND in the writer's order */
        enc_long(&body, 0);
        enc_long(&body, 0);
        enc_long(&body, 0);
        enc_long(&body, 1);
        enc_double(&body, 250.0);
        enc_long(&body, T0);
        enc_confluent(&e, 5, &body);
        assert_int_equal(ews_decode_campaign(d, e.buf, e.len, NOW, &ev, errstr,
                                             sizeof(errstr)),
                         EWS_DECODE_INCOMPATIBLE_SCHEMA);
        assert_non_null(strstr(errstr, "enum symbols"));
        ews_decoder_destroy(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_usage_valid),
                cmocka_unit_test(test_campaign_valid),
                cmocka_unit_test(test_usage_malformed),
                cmocka_unit_test(test_campaign_bad_enum),
                cmocka_unit_test(test_alert_encode),
                cmocka_unit_test(test_confluent_evolution),
                cmocka_unit_test(test_avro_writer_schema),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_enum_order),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("decode", tests, setup, teardown);
}
