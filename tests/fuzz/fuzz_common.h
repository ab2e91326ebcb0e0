/*
 * What the fuzz targets share: how a decoder is set up, how an input is
 * split, and what a decode must never do besides crash.
 *
 * An input is a selector byte and a message. The selector's low bit picks
 * the stream (0: usage, 1: campaign), so that one target covers both
 * readers and a mutation can carry a finding from one to the other; the
 * next bit is the target's to use. The message is passed on in place: it
 * ends where libFuzzer's buffer ends, so an overread is an ASan report.
 *
 * Paths are relative to the repository root, where `make fuzz` and
 * `make test` run the targets.
 */
#ifndef EWS_FUZZ_COMMON_H
#define EWS_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"

/* libFuzzer's entry points, also called by tests/fuzz/replay.c. The
 * decoders are made in LLVMFuzzerInitialize, before the first input: a
 * setup that fails there stops the run, where in an input it would be
 * reported as a crash of that input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* avro-c's generic values keep pointers at unaligned offsets (see
 * build.sh); LeakSanitizer follows those only when told to, and would
 * call what they point to leaked. Read by the sanitizer runtime before
 * LSAN_OPTIONS, so that a target run by hand behaves as under make. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
        return "use_unaligned=1";
}

#define FUZZ_T0_MS     1767225600000LL /* 2026-01-01T00:00:00Z */
#define FUZZ_NOW_MS    (FUZZ_T0_MS + 3600000LL)
#define FUZZ_FUTURE_MS (24 * 3600000LL)
#define FUZZ_MIN_MS    946684800000LL /* 2000: the decoder's lower bound */

#define FUZZ_SEL_CAMPAIGN 0x01
#define FUZZ_SEL_ALT      0x02

/* The defaults of processor/ops/config_keys.c (decode.max.*), and no registry:
 * an id the target did not register must be answered without the network. */
static inline struct ews_decode_conf fuzz_conf(enum ews_decode_format format)
{
        struct ews_decode_conf conf;

        memset(&conf, 0, sizeof(conf));
        conf.schema_dir = "schemas";
        conf.format[EWS_SOURCE_USAGE] = format;
        conf.format[EWS_SOURCE_CAMPAIGN] = format;
        conf.max_future_ms = FUZZ_FUTURE_MS;
        conf.max_bytes = 65536;
        conf.max_items = 1000;
        return conf;
}

/* The decoders a target made, destroyed at exit: valgrind (`make
 * valgrind` replays the corpus under it) does not follow avro-c's
 * unaligned pointers either, and would report what a live decoder holds
 * as lost. */
#define FUZZ_DECODERS_MAX 4
static struct ews_decoder *fuzz_decoders_made[FUZZ_DECODERS_MAX];
static int fuzz_decoders_made_cnt;

static inline void fuzz_decoders_destroy(void)
{
        while (fuzz_decoders_made_cnt > 0)
                ews_decoder_destroy(
                        fuzz_decoders_made[--fuzz_decoders_made_cnt]);
}

/* A decoder that cannot be made is a broken setup, not a finding. The
 * decoder is destroyed at exit. */
static inline struct ews_decoder *
fuzz_decoder_new(const struct ews_decode_conf *conf)
{
        char errstr[512];
        struct ews_decoder *decoder;

        if (fuzz_decoders_made_cnt == FUZZ_DECODERS_MAX) {
                fprintf(stderr, "fuzz: more than %d decoders\n",
                        FUZZ_DECODERS_MAX);
                exit(2);
        }
        decoder = ews_decoder_new(conf, errstr, sizeof(errstr));
        if (!decoder) {
                fprintf(stderr,
                        "fuzz: decoder: %s (run from the repository "
                        "root)\n",
                        errstr);
                exit(2);
        }
        if (!fuzz_decoders_made_cnt)
                atexit(fuzz_decoders_destroy);
        fuzz_decoders_made[fuzz_decoders_made_cnt++] = decoder;
        return decoder;
}

static inline char *fuzz_file_read(const char *path, size_t *len)
{
        FILE *fp = fopen(path, "rb");
        char *buf = NULL;
        long size;

        if (!fp || fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET) || !(buf = malloc((size_t)size + 1)) ||
            fread(buf, 1, (size_t)size, fp) != (size_t)size) {
                fprintf(stderr, "fuzz: cannot read %s\n", path);
                exit(2);
        }
        fclose(fp);
        buf[size] = '\0';
        *len = (size_t)size;
        return buf;
}

#define FUZZ_FAIL(...)                                                         \
        do {                                                                   \
                fprintf(stderr, "fuzz: " __VA_ARGS__);                         \
                fputc('\n', stderr);                                           \
                abort();                                                       \
        } while (0)

/* A fixed-size string field must come back terminated inside its buffer,
 * whether the message had it or not. */
#define FUZZ_TERMINATED(field)                                                 \
        do {                                                                   \
                if (!memchr((field), '\0', sizeof(field)))                     \
                        FUZZ_FAIL("%s not terminated", #field);                \
        } while (0)

/* RFC 3629's well-formed byte sequences (its table 3-7), written apart
 * from the decoder's own check: what is accepted goes into JSON. */
static inline int fuzz_utf8(const char *str)
{
        const unsigned char *s = (const unsigned char *)str;

        while (*s) {
                unsigned char b = *s, lo = 0x80, hi = 0xbf;
                int n, i;

                if (b < 0x80) {
                        s++;
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf)
                        n = 1;
                else if (b >= 0xe0 && b <= 0xef)
                        n = 2, lo = b == 0xe0 ? 0xa0 : 0x80,
                        hi = b == 0xed ? 0x9f : 0xbf;
                else if (b >= 0xf0 && b <= 0xf4)
                        n = 3, lo = b == 0xf0 ? 0x90 : 0x80,
                        hi = b == 0xf4 ? 0x8f : 0xbf;
                else
                        return 0;
                if (s[1] < lo || s[1] > hi)
                        return 0;
                for (i = 2; i <= n; i++)
                        if (s[i] < 0x80 || s[i] > 0xbf)
                                return 0;
                s += n + 1;
        }
        return 1;
}

#define FUZZ_TEXT(field)                                                       \
        do {                                                                   \
                FUZZ_TERMINATED(field);                                        \
                if (!fuzz_utf8(field))                                         \
                        FUZZ_FAIL("%s not UTF-8", #field);                     \
        } while (0)

/* The promises the stages after decode rely on, checked on every input
 * the decoder accepts. */
static inline void fuzz_check_time(int64_t t)
{
        if (t < FUZZ_MIN_MS || t > FUZZ_NOW_MS + FUZZ_FUTURE_MS)
                FUZZ_FAIL("occurred_at %lld accepted", (long long)t);
}

static inline void fuzz_check_usage(const struct ews_usage_event *ev)
{
        int i;

        FUZZ_TEXT(ev->event_id);
        FUZZ_TEXT(ev->user_id);
        FUZZ_TEXT(ev->account_id);
        FUZZ_TEXT(ev->event_type);
        FUZZ_TEXT(ev->product);
        FUZZ_TEXT(ev->campaign_id);
        if (!ev->event_id[0] || !ev->user_id[0] || !ev->event_type[0])
                FUZZ_FAIL("usage event accepted without a required id");
        fuzz_check_time(ev->occurred_at_ms);
        if (ev->has_value && !isfinite(ev->value))
                FUZZ_FAIL("usage value %g accepted", ev->value);
        if (ev->attr_cnt < 0 || ev->attr_cnt > EWS_ATTR_MAX)
                FUZZ_FAIL("attr_cnt %d", ev->attr_cnt);
        for (i = 0; i < ev->attr_cnt; i++) {
                FUZZ_TEXT(ev->attrs[i].key);
                FUZZ_TEXT(ev->attrs[i].value);
        }
}

static inline void fuzz_check_campaign(const struct ews_campaign_event *ev)
{
        FUZZ_TEXT(ev->event_id);
        FUZZ_TEXT(ev->campaign_id);
        FUZZ_TEXT(ev->name);
        FUZZ_TEXT(ev->channel);
        if (!ev->event_id[0] || !ev->campaign_id[0])
                FUZZ_FAIL("campaign event accepted without a required id");
        if ((unsigned)ev->type > EWS_CAMPAIGN_ENDED)
                FUZZ_FAIL("campaign type %d", (int)ev->type);
        fuzz_check_time(ev->occurred_at_ms);
        if (ev->has_target && !(ev->target_activation_rate >= 0.0 &&
                                ev->target_activation_rate <= 1.0))
                FUZZ_FAIL("target_activation_rate %g accepted",
                          ev->target_activation_rate);
        if (ev->has_amount && !isfinite(ev->amount))
                FUZZ_FAIL("amount %g accepted", ev->amount);
}

/* A rejection must name a known reason and say why: both go into the
 * dead letter's headers. Without a registry nothing is worth a retry: a
 * retried message would stop its partition for good. */
static inline void fuzz_check_err(enum ews_decode_err err, const char *errstr,
                                  size_t errstr_size)
{
        if ((unsigned)err >= EWS_DECODE_ERR_COUNT ||
            !strcmp(ews_decode_err_name(err), "unknown"))
                FUZZ_FAIL("unknown error %d", (int)err);
        if (!memchr(errstr, '\0', errstr_size) || !errstr[0])
                FUZZ_FAIL("%s without a message", ews_decode_err_name(err));
        if (err == EWS_DECODE_RETRY)
                FUZZ_FAIL("retry without a registry: %s", errstr);
}

/* EWS_FUZZ_VERBOSE=1 prints each input's outcome, to see what the seeds
 * reach: EWS_FUZZ_VERBOSE=1 build/tests/replay_fuzz_avro DIR */
static inline int fuzz_verbose(void)
{
        static int verbose = -1;

        if (verbose < 0)
                verbose = getenv("EWS_FUZZ_VERBOSE") != NULL;
        return verbose;
}

/* Decodes one input with decoder, by its selector byte. The event is
 * filled with garbage first so that a field the decoder forgets to set
 * is seen, not inherited from the previous input. */
static inline void fuzz_decode(struct ews_decoder *decoder, const uint8_t *data,
                               size_t size)
{
        char errstr[256];
        enum ews_decode_err err;

        if (!size)
                return;
        errstr[0] = '\0';
        if (data[0] & FUZZ_SEL_CAMPAIGN) {
                struct ews_campaign_event ev;

                memset(&ev, 0xa5, sizeof(ev));
                err = ews_decode_campaign(decoder, data + 1, size - 1,
                                          FUZZ_NOW_MS, &ev, errstr,
                                          sizeof(errstr));
                if (!err)
                        fuzz_check_campaign(&ev);
        } else {
                struct ews_usage_event_buf buf;
                struct ews_usage_event *ev;

                memset(&buf, 0xa5, sizeof(buf));
                ev = ews_usage_event_init(&buf);
                err = ews_decode_usage(decoder, data + 1, size - 1, FUZZ_NOW_MS,
                                       ev, errstr, sizeof(errstr));
                if (!err)
                        fuzz_check_usage(ev);
        }
        if (err)
                fuzz_check_err(err, errstr, sizeof(errstr));
        if (fuzz_verbose())
                fprintf(stderr, "  %s %s%s%s\n",
                        data[0] & FUZZ_SEL_CAMPAIGN ? "campaign" : "usage",
                        ews_decode_err_name(err), err ? ": " : "",
                        err ? errstr : "");
}

#endif
