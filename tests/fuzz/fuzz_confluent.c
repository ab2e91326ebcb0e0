/*
 * The Schema Registry wire format (the "confluent" format): magic byte,
 * schema id, then Avro written with that id's schema, resolved against
 * ours. No registry is configured: the ids below are registered up front
 * with ews_decoder_schema_add, and any other id must be refused on the
 * spot, never fetched.
 *
 *   1  schemas/usage_event.avsc           ours: read directly
 *   2  usage_event_v2.avsc                 fields added: resolved
 *   3  usage_event_value_union.avsc        a union wider than ours: resolved,
 *                                          its extra branch fails per message
 *   4  usage_event_no_product.avsc         a field with a default removed
 *   5  schemas/campaign_event.avsc         ours
 *   6  campaign_event_v2.avsc              enum symbol added, float amount
 *   7  usage_event_narrow.avsc             required where ours is optional,
 *                                          float where ours is double
 *
 * Every id is registered for both streams, so a usage schema met on the
 * campaign stream exercises the incompatible path too.
 */
#include "fuzz_common.h"

static const char *const fuzz_schemas[] = {
        NULL,
        "schemas/usage_event.avsc",
        "tests/fuzz/schemas/usage_event_v2.avsc",
        "tests/fuzz/schemas/usage_event_value_union.avsc",
        "tests/fuzz/schemas/usage_event_no_product.avsc",
        "schemas/campaign_event.avsc",
        "tests/fuzz/schemas/campaign_event_v2.avsc",
        "tests/fuzz/schemas/usage_event_narrow.avsc",
};

static struct ews_decoder *fuzz_decoder;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct ews_decode_conf conf = fuzz_conf(EWS_FORMAT_CONFLUENT);
        char errstr[512], *json;
        size_t id, len;

        (void)argc;
        (void)argv;
        fuzz_decoder = fuzz_decoder_new(&conf);
        for (id = 1; id < sizeof(fuzz_schemas) / sizeof(fuzz_schemas[0]);
             id++) {
                json = fuzz_file_read(fuzz_schemas[id], &len);
                if (ews_decoder_schema_add(fuzz_decoder, (int32_t)id, json, len,
                                           errstr, sizeof(errstr))) {
                        fprintf(stderr, "fuzz: schema id %zu: %s\n", id,
                                errstr);
                        exit(2);
                }
                free(json);
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_decode(fuzz_decoder, data, size);
        return 0;
}
