/*
 * Raw Avro (the "avro" format): ews_decode_check's walk of the bytes, then
 * avro-c's generic reader and our field extraction.
 *
 * Selector bit FUZZ_SEL_ALT picks the decoder: clear, producers write with
 * our own schemas (a direct read); set, they write with the evolved
 * schemas of tests/fuzz/schemas (decode.*.writer.schema), which goes
 * through avro-c's schema resolution.
 *
 * A usage event written with our own schema is read straight from its
 * bytes (decode/fast.c), not by avro-c: each such input is decoded both
 * ways, and the two must agree, event for event, refusal for refusal.
 */
#include "fuzz_common.h"
#include "decode/decode_int.h"

/* Indexed by the selector's FUZZ_SEL_ALT bit. */
static struct ews_decoder *fuzz_decoders[2];
/* Our own schema, read by avro-c only. */
static struct ews_decoder *fuzz_generic;

static void fuzz_same_text(const char *a, const char *b, const char *what)
{
        if (strcmp(a, b))
                FUZZ_FAIL("fast and generic differ in %s: '%s', '%s'", what, a,
                          b);
}

/* The same usage input through the fast path and through avro-c. */
static void fuzz_usage_both(const uint8_t *data, size_t size)
{
        static struct ews_usage_event_buf fb, gb;
        struct ews_usage_event *f, *g;
        char ferr[256] = "", gerr[256] = "";
        enum ews_decode_err fe, ge;
        int i;

        memset(&fb, 0xa5, sizeof(fb));
        memset(&gb, 0xa5, sizeof(gb));
        f = ews_usage_event_init(&fb);
        g = ews_usage_event_init(&gb);
        fe = ews_decode_usage(fuzz_decoders[0], data, size, FUZZ_NOW_MS, f,
                              ferr, sizeof(ferr));
        ge = ews_decode_usage(fuzz_generic, data, size, FUZZ_NOW_MS, g, gerr,
                              sizeof(gerr));
        if (fe != ge)
                FUZZ_FAIL("fast says %s (%s), generic %s (%s)",
                          ews_decode_err_name(fe), ferr,
                          ews_decode_err_name(ge), gerr);
        if (fe) {
                fuzz_same_text(ferr, gerr, "the error");
                return;
        }
        fuzz_same_text(f->event_id, g->event_id, "event_id");
        fuzz_same_text(f->user_id, g->user_id, "user_id");
        fuzz_same_text(f->account_id, g->account_id, "account_id");
        fuzz_same_text(f->event_type, g->event_type, "event_type");
        fuzz_same_text(f->product, g->product, "product");
        fuzz_same_text(f->campaign_id, g->campaign_id, "campaign_id");
        if (f->has_value != g->has_value ||
            (f->has_value && memcmp(&f->value, &g->value, sizeof(f->value))) ||
            f->occurred_at_ms != g->occurred_at_ms ||
            f->attr_cnt != g->attr_cnt)
                FUZZ_FAIL("fast and generic differ in value, time or "
                          "attribute count");
        for (i = 0; i < f->attr_cnt; i++) {
                fuzz_same_text(f->attrs[i].key, g->attrs[i].key, "a key");
                fuzz_same_text(f->attrs[i].value, g->attrs[i].value, "a value");
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_AVRO);

        (void)argc;
        (void)argv;
        fuzz_decoders[0] = fuzz_decoder_new(&conf);
        if (!fuzz_decoders[0]->fast_usage)
                FUZZ_FAIL("schemas/usage_event.avsc is not read the fast way");
        fuzz_generic = fuzz_decoder_new(&conf);
        fuzz_generic->fast_usage = false;
        conf.writer_schema[EWS_SOURCE_USAGE] =
                "tests/fuzz/schemas/usage_event_v2.avsc";
        conf.writer_schema[EWS_SOURCE_CAMPAIGN] =
                "tests/fuzz/schemas/campaign_event_v2.avsc";
        fuzz_decoders[1] = fuzz_decoder_new(&conf);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size)
                fuzz_decode(fuzz_decoders[!!(data[0] & FUZZ_SEL_ALT)], data,
                            size);
        if (size && !(data[0] & (FUZZ_SEL_ALT | FUZZ_SEL_CAMPAIGN)))
                fuzz_usage_both(data + 1, size - 1);
        return 0;
}
