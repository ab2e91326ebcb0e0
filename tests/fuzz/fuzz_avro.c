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

static struct ews_decoder *fuzz_avro_decoder(int evolved)
{
        static struct ews_decoder *decoders[2];

        if (!decoders[evolved]) {
                struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_AVRO);

                if (evolved) {
                        conf.writer_schema[EWS_SOURCE_USAGE] =
                                "tests/fuzz/schemas/usage_event_v2.avsc";
                        conf.writer_schema[EWS_SOURCE_CAMPAIGN] =
                                "tests/fuzz/schemas/campaign_event_v2.avsc";
                }
                decoders[evolved] = fuzz_decoder_new(&conf);
        }
        return decoders[evolved];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size)
                fuzz_decode(fuzz_avro_decoder(!!(data[0] & FUZZ_SEL_ALT)), data,
                            size);
        return 0;
}
