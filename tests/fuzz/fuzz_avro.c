/*
 * Raw Avro (the "avro" format): ews_decode_check's walk of the bytes, then
 * avro-c's generic reader and our field extraction.
 *
 * Selector bit FUZZ_SEL_ALT picks the decoder: clear, producers write with
 * our own schemas (a direct read); set, they write with the evolved
 * schemas of tests/fuzz/schemas (decode.*.writer.schema), which goes
 * through avro-c's schema resolution.
 */
#include "fuzz_common.h"

/* Indexed by the selector's FUZZ_SEL_ALT bit. */
static struct ews_decoder *fuzz_decoders[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_AVRO);

        (void)argc;
        (void)argv;
        fuzz_decoders[0] = fuzz_decoder_new(&conf);
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
        return 0;
}
