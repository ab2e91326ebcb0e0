#include "filter_decode.h"
#include "filter_decode_int.h"

#include <avro.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

const char *ews_decode_err_name(enum ews_decode_err err)
{
        return (unsigned)err < EWS_DECODE_ERR_COUNT ? decode_err_names[err]
                                                    : "unknown";
}

static int decode_schema_load(struct decode_schema *ds, const char *dir,
                              const char *file, char *errstr,
                              size_t errstr_size)
{
        char path[2048], *json = NULL;
        FILE *fp = NULL;
        long size;
        int rc = -1;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fp = fopen(path, "rb");
        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto out;
        }
        if (fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET)) {
                snprintf(errstr, errstr_size, "%s: cannot size", path);
                goto out;
        }
        json = malloc((size_t)size + 1);
        if (!json || fread(json, 1, (size_t)size, fp) != (size_t)size) {
                snprintf(errstr, errstr_size, "%s: cannot read", path);
                goto out;
        }
        json[size] = '\0';
        if (avro_schema_from_json_length(json, (size_t)size, &ds->schema)) {
                snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
                goto out;
        }
        ds->iface = avro_generic_class_from_schema(ds->schema);
        if (!ds->iface || avro_generic_value_new(ds->iface, &ds->value)) {
                snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
                goto out;
        }
        ds->value_ok = 1;
        rc = 0;
out:
        free(json);
        if (fp)
                fclose(fp);
        return rc;
}

static void decode_schema_clear(struct decode_schema *ds)
{
        if (ds->value_ok)
                avro_value_decref(&ds->value);
        if (ds->iface)
                avro_value_iface_decref(ds->iface);
        if (ds->schema)
                avro_schema_decref(ds->schema);
}

struct ews_decoder *ews_decoder_new(const struct ews_decode_conf *conf,
                                    char *errstr, size_t errstr_size)
{
        struct ews_decoder *decoder = calloc(1, sizeof(*decoder));

        if (!decoder) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        decoder->conf = *conf;
        decoder->limits.max_bytes = conf->max_bytes;
        decoder->limits.max_items = conf->max_items;
        if (decode_schema_load(&decoder->usage, conf->schema_dir,
                               "usage_event.avsc", errstr, errstr_size) ||
            decode_schema_load(&decoder->campaign, conf->schema_dir,
                               "campaign_event.avsc", errstr, errstr_size) ||
            decode_schema_load(&decoder->alert, conf->schema_dir, "alert.avsc",
                               errstr, errstr_size))
                goto fail;
        decoder->reader = avro_reader_memory(NULL, 0);
        decoder->writer = avro_writer_memory(NULL, 0);
        if (!decoder->reader || !decoder->writer) {
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
        if (!decoder)
                return;
        if (decoder->reader)
                avro_reader_free(decoder->reader);
        if (decoder->writer)
                avro_writer_free(decoder->writer);
        decode_schema_clear(&decoder->usage);
        decode_schema_clear(&decoder->campaign);
        decode_schema_clear(&decoder->alert);
        free(decoder);
}

/* Checks then reads buf into ds->value, reusing its memory. */
static enum ews_decode_err decode_read(struct ews_decoder *decoder,
                                       struct decode_schema *ds,
                                       const void *buf, size_t len,
                                       char *errstr, size_t errstr_size)
{
        enum ews_decode_err err;

        err = ews_decode_check(ds->schema, buf, len, &decoder->limits, errstr,
                               errstr_size);
        if (err)
                return err;
        avro_value_reset(&ds->value);
        avro_reader_memory_set_source(decoder->reader, buf, (int64_t)len);
        if (avro_value_read(decoder->reader, &ds->value)) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return EWS_DECODE_AVRO;
        }
        return EWS_DECODE_OK;
}

struct decode_field {
        avro_value_t value;
        const char *name;
};

static int decode_field(avro_value_t *record, const char *name,
                        struct decode_field *field)
{
        field->name = name;
        return avro_value_get_by_name(record, name, &field->value, NULL);
}

/* A union of null and T: returns 0 with the branch in *branch, or 1 when
 * null. */
static int decode_optional(struct decode_field *field, avro_value_t *branch)
{
        if (avro_value_get_type(&field->value) != AVRO_UNION) {
                *branch = field->value;
                return 0;
        }
        if (avro_value_get_current_branch(&field->value, branch))
                return 1;
        return avro_value_get_type(branch) == AVRO_NULL;
}

static enum ews_decode_err decode_string(avro_value_t *value, const char *name,
                                         char *dst, size_t size, int required,
                                         char *errstr, size_t errstr_size)
{
        const char *s = NULL;
        size_t n = 0;

        if (avro_value_get_string(value, &s, &n)) {
                snprintf(errstr, errstr_size, "%s: not a string", name);
                return EWS_DECODE_BAD_VALUE;
        }
        n = n ? n - 1 : 0; /* avro-c counts the terminating NUL */
        if (n >= size) {
                snprintf(errstr, errstr_size, "%s: %zu bytes, at most %zu",
                         name, n, size - 1);
                return EWS_DECODE_ID_TOO_LONG;
        }
        if (n && memchr(s, '\0', n)) {
                snprintf(errstr, errstr_size, "%s: contains a NUL byte", name);
                return EWS_DECODE_BAD_VALUE;
        }
        memcpy(dst, s, n);
        dst[n] = '\0';
        if (required && !n) {
                snprintf(errstr, errstr_size, "%s: missing or empty", name);
                return EWS_DECODE_MISSING_FIELD;
        }
        return EWS_DECODE_OK;
}

static enum ews_decode_err decode_string_field(avro_value_t *record,
                                               const char *name, char *dst,
                                               size_t size, int required,
                                               char *errstr, size_t errstr_size)
{
        struct decode_field field;
        avro_value_t branch;

        dst[0] = '\0';
        if (decode_field(record, name, &field) ||
            decode_optional(&field, &branch)) {
                if (!required)
                        return EWS_DECODE_OK;
                snprintf(errstr, errstr_size, "%s: missing", name);
                return EWS_DECODE_MISSING_FIELD;
        }
        return decode_string(&branch, name, dst, size, required, errstr,
                             errstr_size);
}

static int decode_double_field(avro_value_t *record, const char *name,
                               double *out)
{
        struct decode_field field;
        avro_value_t branch;

        if (decode_field(record, name, &field) ||
            decode_optional(&field, &branch))
                return 0;
        return avro_value_get_double(&branch, out) == 0;
}

static enum ews_decode_err decode_time(struct ews_decoder *decoder,
                                       avro_value_t *record, int64_t now_ms,
                                       int64_t *out, char *errstr,
                                       size_t errstr_size)
{
        struct decode_field field;

        if (decode_field(record, "occurred_at", &field) ||
            avro_value_get_long(&field.value, out)) {
                snprintf(errstr, errstr_size, "occurred_at: missing");
                return EWS_DECODE_MISSING_FIELD;
        }
        if (*out < DECODE_MIN_TIME_MS) {
                snprintf(errstr, errstr_size,
                         "occurred_at: %lld is before 2000 (seconds, not "
                         "milliseconds?)",
                         (long long)*out);
                return EWS_DECODE_BAD_TIMESTAMP;
        }
        if (*out > now_ms + decoder->conf.max_future_ms) {
                snprintf(errstr, errstr_size,
                         "occurred_at: %lld is %llds in the future",
                         (long long)*out, (long long)((*out - now_ms) / 1000));
                return EWS_DECODE_FUTURE_TIMESTAMP;
        }
        return EWS_DECODE_OK;
}

static int decode_is_finite(double v)
{
        return v == v && v - v == 0.0;
}

static void decode_attrs(avro_value_t *record, struct ews_usage_event *event)
{
        struct decode_field field;
        size_t n, i;

        event->attr_cnt = 0;
        if (decode_field(record, "attributes", &field) ||
            avro_value_get_size(&field.value, &n))
                return;
        /* Attributes feed fit rules and page classes only; an entry that
         * does not fit a slot cannot match a rule and is passed over. */
        for (i = 0; i < n && event->attr_cnt < EWS_ATTR_MAX; i++) {
                struct ews_attr *attr = &event->attrs[event->attr_cnt];
                const char *key = NULL, *s = NULL;
                avro_value_t value;
                size_t len = 0;

                if (avro_value_get_by_index(&field.value, i, &value, &key) ||
                    avro_value_get_string(&value, &s, &len) || !key ||
                    strlen(key) >= sizeof(attr->key) || !len ||
                    len > sizeof(attr->value))
                        continue;
                memcpy(attr->key, key, strlen(key) + 1);
                memcpy(attr->value, s, len - 1);
                attr->value[len - 1] = '\0';
                event->attr_cnt++;
        }
}

enum ews_decode_err ews_decode_usage(struct ews_decoder *decoder,
                                     const void *buf, size_t len,
                                     int64_t now_ms,
                                     struct ews_usage_event *event,
                                     char *errstr, size_t errstr_size)
{
        avro_value_t *record = &decoder->usage.value;
        enum ews_decode_err err;

        if ((err = decode_read(decoder, &decoder->usage, buf, len, errstr,
                               errstr_size)))
                return err;
        if ((err = decode_string_field(record, "event_id", event->event_id,
                                       sizeof(event->event_id), 1, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(record, "user_id", event->user_id,
                                       sizeof(event->user_id), 1, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(record, "account_id", event->account_id,
                                       sizeof(event->account_id), 0, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(record, "event_type", event->event_type,
                                       sizeof(event->event_type), 1, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(record, "product", event->product,
                                       sizeof(event->product), 0, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(
                     record, "campaign_id", event->campaign_id,
                     sizeof(event->campaign_id), 0, errstr, errstr_size)) ||
            (err = decode_time(decoder, record, now_ms, &event->occurred_at_ms,
                               errstr, errstr_size)))
                return err;
        event->has_value = decode_double_field(record, "value", &event->value);
        if (event->has_value && !decode_is_finite(event->value)) {
                snprintf(errstr, errstr_size, "value: not a finite number");
                return EWS_DECODE_BAD_VALUE;
        }
        decode_attrs(record, event);
        return EWS_DECODE_OK;
}

enum ews_decode_err ews_decode_campaign(struct ews_decoder *decoder,
                                        const void *buf, size_t len,
                                        int64_t now_ms,
                                        struct ews_campaign_event *event,
                                        char *errstr, size_t errstr_size)
{
        avro_value_t *record = &decoder->campaign.value;
        struct decode_field field;
        enum ews_decode_err err;
        int symbol;

        if ((err = decode_read(decoder, &decoder->campaign, buf, len, errstr,
                               errstr_size)))
                return err;
        if ((err = decode_string_field(record, "event_id", event->event_id,
                                       sizeof(event->event_id), 1, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(
                     record, "campaign_id", event->campaign_id,
                     sizeof(event->campaign_id), 1, errstr, errstr_size)) ||
            (err = decode_string_field(record, "name", event->name,
                                       sizeof(event->name), 0, errstr,
                                       errstr_size)) ||
            (err = decode_string_field(record, "channel", event->channel,
                                       sizeof(event->channel), 0, errstr,
                                       errstr_size)) ||
            (err = decode_time(decoder, record, now_ms, &event->occurred_at_ms,
                               errstr, errstr_size)))
                return err;
        if (decode_field(record, "type", &field) ||
            avro_value_get_enum(&field.value, &symbol)) {
                snprintf(errstr, errstr_size, "type: missing");
                return EWS_DECODE_MISSING_FIELD;
        }
        event->type = (enum ews_campaign_type)symbol;
        event->has_target =
                decode_double_field(record, "target_activation_rate",
                                    &event->target_activation_rate);
        event->has_amount =
                decode_double_field(record, "amount", &event->amount);
        if ((event->has_target && !(event->target_activation_rate >= 0.0 &&
                                    event->target_activation_rate <= 1.0)) ||
            (event->has_amount && !decode_is_finite(event->amount))) {
                snprintf(errstr, errstr_size,
                         "target_activation_rate outside 0..1 or amount not "
                         "finite");
                return EWS_DECODE_BAD_VALUE;
        }
        return EWS_DECODE_OK;
}
