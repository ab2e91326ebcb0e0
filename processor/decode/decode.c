/* The decoder: its lifetime, the registry ids it has seen, and the
 * per-message paths from bytes (Avro, Confluent framing, JSON) to our
 * validated event structs. The schemas and the paths they make are in
 * schema.c. */
#include "decode/decode_int.h"

#include <avro.h>
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Timestamps before 2000 are producer bugs (seconds sent as millis). */
#define DECODE_MIN_TIME_MS 946684800000LL

static const char *decode_err_names[EWS_DECODE_ERR_COUNT] = {
        "ok",
        "empty",
        "truncated",
        "bad_length",
        "bad_index",
        "bad_value",
        "trailing_bytes",
        "avro",
        "missing_field",
        "id_too_long",
        "bad_timestamp",
        "future_timestamp",
        "bad_magic",
        "unknown_schema",
        "incompatible_schema",
        "bad_json",
        "retry",
};

static const char *decode_reader_files[EWS_SOURCE_COUNT] = {
        "usage_event.avsc", "campaign_event.avsc"};

const char *ews_decode_err_name(enum ews_decode_err err)
{
        return (unsigned)err < EWS_DECODE_ERR_COUNT ? decode_err_names[err]
                                                    : "unknown";
}

int ews_decode_format_parse(const char *name)
{
        if (!strcmp(name, "avro"))
                return EWS_FORMAT_AVRO;
        if (!strcmp(name, "confluent"))
                return EWS_FORMAT_CONFLUENT;
        if (!strcmp(name, "json"))
                return EWS_FORMAT_JSON;
        return -1;
}

struct ews_decoder *ews_decoder_new(const struct ews_decode_conf *conf,
                                    char *errstr, size_t errstr_size)
{
        struct ews_decoder *decoder = calloc(1, sizeof(*decoder));
        avro_schema_t writer;
        int s;

        if (!decoder) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        decoder->conf = *conf;
        decoder->limits.max_bytes = conf->max_bytes;
        decoder->limits.max_items = conf->max_items;
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                if (decode_schema_load(&decoder->reader[s], conf->schema_dir,
                                       decode_reader_files[s], errstr,
                                       errstr_size))
                        goto fail;
                if (conf->format[s] != EWS_FORMAT_AVRO)
                        continue;
                writer = avro_schema_incref(decoder->reader[s].schema);
                if (conf->writer_schema[s] && *conf->writer_schema[s]) {
                        avro_schema_decref(writer);
                        if (decode_schema_file(conf->writer_schema[s], &writer,
                                               errstr, errstr_size))
                                goto fail;
                }
                if (decode_path_init(&decoder->raw[s], writer,
                                     &decoder->reader[s], errstr, errstr_size))
                        goto fail;
        }
        if (decode_schema_load(&decoder->alert, conf->schema_dir, "alert.avsc",
                               errstr, errstr_size) ||
            !(decoder->alert_check = decode_check_new(decoder->alert.schema,
                                                      errstr, errstr_size)))
                goto fail;
        decoder->fast_usage =
                decode_fast_usable(decoder->reader[EWS_SOURCE_USAGE].schema);
        if (conf->registry_url && *conf->registry_url) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                decoder->registry = registry_new(
                        conf->registry_url, conf->registry_user,
                        conf->registry_password, conf->registry_timeout_ms,
                        errstr, errstr_size);
                if (!decoder->registry)
                        goto fail;
        }
        decoder->avro_reader = avro_reader_memory(NULL, 0);
        decoder->avro_writer = avro_writer_memory(NULL, 0);
        if (!decoder->avro_reader || !decoder->avro_writer) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        return decoder;
fail:
        ews_decoder_destroy(decoder);
        return NULL;
}

void ews_decoder_destroy(struct ews_decoder *decoder)
{
        size_t i;
        int s;

        if (!decoder)
                return;
        if (decoder->avro_reader)
                avro_reader_free(decoder->avro_reader);
        if (decoder->avro_writer)
                avro_writer_free(decoder->avro_writer);
        for (i = 0; i < decoder->registered_cnt; i++)
                decode_path_clear(&decoder->registered[i].path);
        free(decoder->registered);
        registry_destroy(decoder->registry);
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                decode_path_clear(&decoder->raw[s]);
                decode_schema_clear(&decoder->reader[s]);
        }
        decode_schema_clear(&decoder->alert);
        decode_check_destroy(decoder->alert_check);
        free(decoder);
}

/* An id the registry did not know is asked again after this long: it may
 * have been registered since, or a replica may have lagged. */
#define DECODE_UNKNOWN_TTL_MS 60000
/* Ids remembered at the most; hostile ids must not grow memory forever. */
#define DECODE_REGISTERED_MAX 4096
#define DECODE_FREE_ID        INT32_MIN

static int64_t decode_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A free slot, or when the table is full one that only remembers a
 * refusal (those are cheap to learn again). */
static struct decode_registered *
decode_registered_reuse(struct ews_decoder *decoder)
{
        size_t i;

        for (i = 0; i < decoder->registered_cnt; i++)
                if (decoder->registered[i].id == DECODE_FREE_ID)
                        return &decoder->registered[i];
        if (decoder->registered_cnt < DECODE_REGISTERED_MAX)
                return NULL;
        for (i = 0; i < decoder->registered_cnt; i++)
                if (decoder->registered[i].status)
                        return &decoder->registered[i];
        return NULL;
}

static struct decode_registered *
decode_registered_add(struct ews_decoder *decoder, int32_t id,
                      enum ews_source source)
{
        struct decode_registered *r = decode_registered_reuse(decoder);

        if (r) {
                decode_path_clear(&r->path);
                goto init;
        }

        if (decoder->registered_cnt == decoder->registered_cap) {
                size_t cap = decoder->registered_cap
                                     ? 2 * decoder->registered_cap
                                     : 16;
                r = realloc(decoder->registered, cap * sizeof(*r));
                if (!r)
                        return NULL;
                decoder->registered = r;
                decoder->registered_cap = cap;
        }
        r = &decoder->registered[decoder->registered_cnt++];
init:
        memset(r, 0, sizeof(*r));
        r->id = id;
        r->source = source;
        r->checked_ms = decode_now_ms();
        return r;
}

/* Records what a schema id is for a source: a path, or why not. */
static struct decode_registered *
decode_register(struct ews_decoder *decoder, int32_t id, enum ews_source source,
                const char *json, size_t len, enum ews_decode_err status,
                const char *reason)
{
        struct decode_registered *r =
                decode_registered_add(decoder, id, source);
        avro_schema_t writer = NULL;
        char what[64];

        if (!r)
                return NULL;
        r->status = status;
        snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
        if (status)
                return r;
        snprintf(what, sizeof(what), "schema id %d", (int)id);
        if (decode_schema_parse(json, len, &writer, what, r->reason,
                                sizeof(r->reason)) ||
            decode_path_init(&r->path, writer, &decoder->reader[source],
                             r->reason, sizeof(r->reason))) {
                decode_path_clear(&r->path); /* releases writer */
                r->status = EWS_DECODE_INCOMPATIBLE_SCHEMA;
        }
        return r;
}

int ews_decoder_schema_add(struct ews_decoder *decoder, int32_t id,
                           const char *json, size_t len, char *errstr,
                           size_t errstr_size)
{
        struct decode_registered *r;
        int s;

        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                r = decode_register(decoder, id, (enum ews_source)s, json, len,
                                    EWS_DECODE_OK, NULL);
                if (!r) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
        }
        return 0;
}

/* The path for a registry id: known, or fetched once. An unknown or
 * incompatible id is remembered too, so that a stream of them costs one
 * request; an outage is not, so that it is asked again. */
static enum ews_decode_err decode_lookup(struct ews_decoder *decoder,
                                         enum ews_source source, int32_t id,
                                         struct decode_path **path,
                                         char *errstr, size_t errstr_size)
{
        struct decode_registered *r = NULL;
        enum registry_status status;
        char *json = NULL;
        size_t i;

        for (i = 0; i < decoder->registered_cnt; i++)
                if (decoder->registered[i].id == id &&
                    decoder->registered[i].source == source)
                        r = &decoder->registered[i];
        if (r && r->status == EWS_DECODE_UNKNOWN_SCHEMA && decoder->registry &&
            decode_now_ms() - r->checked_ms > DECODE_UNKNOWN_TTL_MS) {
                decode_path_clear(&r->path);
                r->id = DECODE_FREE_ID;
                r = NULL;
        }
        if (!r) {
                if (!decoder->registry) {
                        snprintf(errstr, errstr_size,
                                 "schema id %d: no registry configured",
                                 (int)id);
                        return EWS_DECODE_UNKNOWN_SCHEMA;
                }
                status = registry_fetch(decoder->registry, id, &json, errstr,
                                        errstr_size);
                if (status == REGISTRY_UNAVAILABLE)
                        return EWS_DECODE_RETRY;
                r = decode_register(
                        decoder, id, source, json, json ? strlen(json) : 0,
                        status == REGISTRY_OK ? EWS_DECODE_OK
                                              : EWS_DECODE_UNKNOWN_SCHEMA,
                        errstr);
                free(json);
                if (!r) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_DECODE_RETRY;
                }
        }
        if (r->status) {
                snprintf(errstr, errstr_size, "schema id %d: %s", (int)id,
                         r->reason);
                return r->status;
        }
        *path = &r->path;
        return EWS_DECODE_OK;
}

/* Checks bytes against the path's writer schema, then reads them into a
 * record of our fields, *record. */
static enum ews_decode_err
decode_read(struct ews_decoder *decoder, enum ews_source source,
            struct decode_path *path, const void *buf, size_t len,
            avro_value_t **record, char *errstr, size_t errstr_size)
{
        enum ews_decode_err err;
        int rc;

        err = ews_decode_check(path->check, buf, len, &decoder->limits, errstr,
                               errstr_size);
        if (err)
                return err;
        *record = path->resolver ? &path->dest : &decoder->reader[source].value;
        avro_value_reset(*record);
        avro_reader_memory_set_source(decoder->avro_reader, buf, (int64_t)len);
        rc = path->resolver
                     ? avro_value_read(decoder->avro_reader, &path->resolved)
                     : avro_value_read(decoder->avro_reader, *record);
        if (rc) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return EWS_DECODE_AVRO;
        }
        return EWS_DECODE_OK;
}

/* The path of a message of either Avro format, and its Avro bytes (the
 * registry's framing taken off). */
static enum ews_decode_err decode_frame(struct ews_decoder *decoder,
                                        enum ews_source source,
                                        const unsigned char **buf, size_t *len,
                                        struct decode_path **path, char *errstr,
                                        size_t errstr_size)
{
        enum ews_decode_err err;
        int32_t id;

        *path = &decoder->raw[source];
        if (!*len) {
                snprintf(errstr, errstr_size, "empty message");
                return EWS_DECODE_EMPTY;
        }
        if (decoder->conf.format[source] == EWS_FORMAT_CONFLUENT) {
                const unsigned char *b = *buf;

                if (*len < 5 || b[0] != 0) {
                        snprintf(errstr, errstr_size,
                                 "not the registry wire format (magic byte "
                                 "%d, %zu bytes)",
                                 b[0], *len);
                        return EWS_DECODE_BAD_MAGIC;
                }
                id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 |
                               (uint32_t)b[3] << 8 | (uint32_t)b[4]);
                if ((err = decode_lookup(decoder, source, id, path, errstr,
                                         errstr_size)))
                        return err;
                *buf += 5;
                *len -= 5;
        }
        return EWS_DECODE_OK;
}

/* A record of our fields from either Avro format, into *record. */
static enum ews_decode_err decode_avro(struct ews_decoder *decoder,
                                       enum ews_source source,
                                       const unsigned char *buf, size_t len,
                                       avro_value_t **record, char *errstr,
                                       size_t errstr_size)
{
        struct decode_path *path;
        enum ews_decode_err err;

        if ((err = decode_frame(decoder, source, &buf, &len, &path, errstr,
                                errstr_size)))
                return err;
        return decode_read(decoder, source, path, buf, len, record, errstr,
                           errstr_size);
}

/* A usage event from either Avro format: bytes of our own schema
 * straight (fast.c), others through avro-c. */
static enum ews_decode_err decode_usage_avro(struct ews_decoder *decoder,
                                             const unsigned char *buf,
                                             size_t len,
                                             struct ews_usage_event *event,
                                             char *errstr, size_t errstr_size)
{
        enum ews_source s = EWS_SOURCE_USAGE;
        struct decode_path *path;
        enum ews_decode_err err;
        avro_value_t *record;

        if ((err = decode_frame(decoder, s, &buf, &len, &path, errstr,
                                errstr_size)))
                return err;
        if (decoder->fast_usage && !path->resolver &&
            decode_usage_fast(buf, len, &decoder->limits, event))
                return EWS_DECODE_OK;
        if ((err = decode_read(decoder, s, path, buf, len, &record, errstr,
                               errstr_size)))
                return err;
        return decode_usage_fields(record, event, errstr, errstr_size);
}

static bool decode_finite(double v)
{
        return v == v && v - v == 0.0;
}

static enum ews_decode_err decode_time_valid(const struct ews_decoder *decoder,
                                             int64_t t, int64_t now_ms,
                                             char *errstr, size_t errstr_size)
{
        if (t < DECODE_MIN_TIME_MS) {
                snprintf(errstr, errstr_size,
                         "occurred_at: %lld is before 2000 (seconds, not "
                         "milliseconds?)",
                         (long long)t);
                return EWS_DECODE_BAD_TIMESTAMP;
        }
        if (t > now_ms + decoder->conf.max_future_ms) {
                snprintf(errstr, errstr_size,
                         "occurred_at: %lld is %llds in the future",
                         (long long)t, (long long)((t - now_ms) / 1000));
                return EWS_DECODE_FUTURE_TIMESTAMP;
        }
        return EWS_DECODE_OK;
}

static enum ews_decode_err decode_required(const char *value, const char *name,
                                           char *errstr, size_t errstr_size)
{
        if (value[0])
                return EWS_DECODE_OK;
        snprintf(errstr, errstr_size, "%s: missing or empty", name);
        return EWS_DECODE_MISSING_FIELD;
}

enum ews_decode_err ews_decode_usage(struct ews_decoder *decoder,
                                     const void *buf, size_t len,
                                     int64_t now_ms,
                                     struct ews_usage_event *event,
                                     char *errstr, size_t errstr_size)
{
        enum ews_source s = EWS_SOURCE_USAGE;
        enum ews_decode_err err;

        if (decoder->conf.format[s] == EWS_FORMAT_JSON) {
                err = len ? decode_usage_json(buf, len, event, errstr,
                                              errstr_size)
                          : EWS_DECODE_EMPTY;
                if (err == EWS_DECODE_EMPTY)
                        snprintf(errstr, errstr_size, "empty message");
        } else {
                err = decode_usage_avro(decoder, buf, len, event, errstr,
                                        errstr_size);
        }
        if (err ||
            (err = decode_required(event->event_id, "event_id", errstr,
                                   errstr_size)) ||
            (err = decode_required(event->user_id, "user_id", errstr,
                                   errstr_size)) ||
            (err = decode_required(event->event_type, "event_type", errstr,
                                   errstr_size)) ||
            (err = decode_time_valid(decoder, event->occurred_at_ms, now_ms,
                                     errstr, errstr_size)))
                return err;
        if (event->has_value && !decode_finite(event->value)) {
                snprintf(errstr, errstr_size, "value: not a finite number");
                return EWS_DECODE_BAD_VALUE;
        }
        return EWS_DECODE_OK;
}

enum ews_decode_err ews_decode_campaign(struct ews_decoder *decoder,
                                        const void *buf, size_t len,
                                        int64_t now_ms,
                                        struct ews_campaign_event *event,
                                        char *errstr, size_t errstr_size)
{
        enum ews_source s = EWS_SOURCE_CAMPAIGN;
        enum ews_decode_err err;
        avro_value_t *record;

        if (decoder->conf.format[s] == EWS_FORMAT_JSON) {
                err = len ? decode_campaign_json(buf, len, event, errstr,
                                                 errstr_size)
                          : EWS_DECODE_EMPTY;
                if (err == EWS_DECODE_EMPTY)
                        snprintf(errstr, errstr_size, "empty message");
        } else if (!(err = decode_avro(decoder, s, buf, len, &record, errstr,
                                       errstr_size))) {
                err = decode_campaign_fields(record, event, errstr,
                                             errstr_size);
        }
        if (err ||
            (err = decode_required(event->event_id, "event_id", errstr,
                                   errstr_size)) ||
            (err = decode_required(event->campaign_id, "campaign_id", errstr,
                                   errstr_size)) ||
            (err = decode_time_valid(decoder, event->occurred_at_ms, now_ms,
                                     errstr, errstr_size)))
                return err;
        /* A bounded amount keeps every sum of them finite in the store. */
        if ((event->has_target && !(event->target_activation_rate >= 0.0 &&
                                    event->target_activation_rate <= 1.0)) ||
            (event->has_amount &&
             !(event->amount >= -1e12 && event->amount <= 1e12))) {
                snprintf(errstr, errstr_size,
                         "target_activation_rate outside 0..1 or amount "
                         "outside +-1e12");
                return EWS_DECODE_BAD_VALUE;
        }
        return EWS_DECODE_OK;
}
