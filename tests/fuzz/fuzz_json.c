/*
 * One JSON object per message (the "json" format): jansson's parser, then
 * our field extraction and the ISO-8601 time parser.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct ews_decoder *decoder;

        if (!decoder) {
                struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_JSON);

                decoder = fuzz_decoder_new(&conf);
        }
        fuzz_decode(decoder, data, size);
        return 0;
}
