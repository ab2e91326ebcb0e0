/*
 * What EWS reads back from Redis: a user's packed state (bit 0 of the
 * selector clear) or an outbox record (set). Both are ours, but a value
 * that a bug, a restore or a hand edit damaged must be refused, never read
 * past or trusted: a refused user is a store error, a refused record stays
 * in the outbox. What is accepted must pack back to what was read.
 */
#include "fuzz_common.h"
#include "store/codec.h"
#include "util/outbox.h"

/* A names dictionary of a few ids, as the store keeps one: values name
 * them by id, and what packs back names them by id again. */
static struct ews_names *fuzz_names;

static void fuzz_user(const unsigned char *data, size_t size)
{
        static struct ews_user user, again;
        unsigned char buf[EWS_USER_PACKED_MAX];
        int32_t partition, partition2;
        int len;

        memset(&user, 0, sizeof(user));
        if (ews_user_unpack(&user, &partition, fuzz_names, data, size))
                return;
        FUZZ_TERMINATED(user.account_id);
        FUZZ_TERMINATED(user.campaign_id);
        if (user.reason_cnt < 0 || user.reason_cnt > EWS_REASONS_MAX ||
            user.interest_cnt < 0 || user.interest_cnt > EWS_INTERESTS_MAX ||
            user.dedup_cnt < 0 || user.dedup_cnt > EWS_DEDUP_MAX ||
            user.activation_cnt < 0 ||
            user.activation_cnt > EWS_ACTIVATION_MAX ||
            user.activation_product_cnt < 0 ||
            user.activation_product_cnt > EWS_ACTIVATION_MAX || partition < 0)
                FUZZ_FAIL("counts out of range accepted");
        len = ews_user_pack(&user, partition, fuzz_names, buf, sizeof(buf));
        if (len < 0)
                FUZZ_FAIL("an accepted user does not pack");
        memset(&again, 0, sizeof(again));
        if (ews_user_unpack(&again, &partition2, fuzz_names, buf, (size_t)len))
                FUZZ_FAIL("a packed user is refused");
        if (partition2 != partition || memcmp(&user, &again, sizeof(user)))
                FUZZ_FAIL("a user does not read back as it was packed");
}

static void fuzz_outbox(const unsigned char *data, size_t size)
{
        struct ews_outbox_entry entry;
        unsigned char *buf;
        int64_t len;

        if (ews_outbox_unpack(&entry, data, size))
                return;
        if (ews_outbox_size(&entry) != size)
                FUZZ_FAIL("an outbox record's size is not its length");
        if (!(buf = malloc(size)))
                abort();
        len = ews_outbox_pack(&entry, buf, size);
        if (len != (int64_t)size || memcmp(buf, data, size))
                FUZZ_FAIL("an outbox record does not pack back the same");
        free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static const char *const names[] = {"login", "trial_started",
                                            "feature_used", "crm", "analytics"};
        size_t i;

        (void)argc;
        (void)argv;
        fuzz_names = ews_names_new();
        for (i = 0; fuzz_names && i < sizeof(names) / sizeof(names[0]); i++)
                if (ews_names_put(fuzz_names, (uint32_t)i, names[i]))
                        FUZZ_FAIL("names dictionary");
        if (!fuzz_names)
                FUZZ_FAIL("out of memory");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!size)
                return 0;
        if (data[0] & 1)
                fuzz_outbox(data + 1, size - 1);
        else
                fuzz_user(data + 1, size - 1);
        return 0;
}
