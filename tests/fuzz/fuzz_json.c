/*
 * One JSON object per message (the "json" format): jansson's parser, then
 * our field extraction and the ISO-8601 time parser.
 */
#include "fuzz_common.h"

static struct ews_decoder *fuzz_decoder;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_JSON);

        (void)argc;
        (void)argv;
        fuzz_decoder = fuzz_decoder_new(&conf);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_decode(fuzz_decoder, data, size);
        return 0;
}
