/* Our event structs from a value of our reader schema. Absent optional
 * fields come out empty; whether that is acceptable is validation's call. */
#include "decode/decode_int.h"

#include <stdio.h>
#include <string.h>

/* The branch of an optional (["null", T]) or the value itself; 1 when
 * absent or null. */
static int fields_get(avro_value_t *record, const char *name,
                      avro_value_t *value)
{
        avro_value_t field;

        if (avro_value_get_by_name(record, name, &field, NULL))
                return 1;
        if (avro_value_get_type(&field) != AVRO_UNION) {
                *value = field;
                return 0;
        }
        if (avro_value_get_current_branch(&field, value))
                return 1;
        return avro_value_get_type(value) == AVRO_NULL;
}

static enum ews_decode_err fields_string(avro_value_t *record, const char *name,
                                         char *dst, size_t size, char *errstr,
                                         size_t errstr_size)
{
        avro_value_t value;
        const char *s = NULL;
        size_t n = 0;

        dst[0] = '\0';
        if (fields_get(record, name, &value))
                return EWS_DECODE_OK;
        if (avro_value_get_string(&value, &s, &n)) {
                snprintf(errstr, errstr_size, "%s: not a string", name);
                return EWS_DECODE_BAD_VALUE;
        }
        n = n ? n - 1 : 0; /* avro-c counts the terminating NUL */
        return decode_string_field(name, s, n, dst, size, errstr, errstr_size);
}

enum ews_decode_err decode_string_field(const char *name, const char *s,
                                        size_t n, char *dst, size_t size,
                                        char *errstr, size_t errstr_size)
{
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
        return EWS_DECODE_OK;
}

static bool fields_double(avro_value_t *record, const char *name, double *out)
{
        avro_value_t value;

        return !fields_get(record, name, &value) &&
               !avro_value_get_double(&value, out);
}

static void fields_long(avro_value_t *record, const char *name, int64_t *out)
{
        avro_value_t value;

        if (fields_get(record, name, &value) ||
            avro_value_get_long(&value, out))
                *out = 0;
}

static void fields_attrs(avro_value_t *record, struct ews_usage_event *event)
{
        avro_value_t map;
        size_t n, i;

        event->attr_cnt = 0;
        if (fields_get(record, "attributes", &map) ||
            avro_value_get_size(&map, &n))
                return;
        /* Attributes feed fit rules and page classes only; an entry that
         * does not fit a slot cannot match a rule and is passed over. */
        for (i = 0; i < n && event->attr_cnt < EWS_ATTR_MAX; i++) {
                struct ews_attr *attr = &event->attrs[event->attr_cnt];
                const char *key = NULL, *s = NULL;
                avro_value_t value;
                size_t len = 0;

                if (avro_value_get_by_index(&map, i, &value, &key) ||
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

enum ews_decode_err decode_usage_fields(avro_value_t *record,
                                        struct ews_usage_event *event,
                                        char *errstr, size_t errstr_size)
{
        enum ews_decode_err err;

        if ((err = fields_string(record, "event_id", event->event_id,
                                 sizeof(event->event_id), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "user_id", event->user_id,
                                 sizeof(event->user_id), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "account_id", event->account_id,
                                 sizeof(event->account_id), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "event_type", event->event_type,
                                 sizeof(event->event_type), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "product", event->product,
                                 sizeof(event->product), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "campaign_id", event->campaign_id,
                                 sizeof(event->campaign_id), errstr,
                                 errstr_size)))
                return err;
        event->has_value = fields_double(record, "value", &event->value);
        fields_long(record, "occurred_at", &event->occurred_at_ms);
        fields_attrs(record, event);
        return EWS_DECODE_OK;
}

enum ews_decode_err decode_campaign_fields(avro_value_t *record,
                                           struct ews_campaign_event *event,
                                           char *errstr, size_t errstr_size)
{
        enum ews_decode_err err;
        avro_value_t value;
        int symbol;

        if ((err = fields_string(record, "event_id", event->event_id,
                                 sizeof(event->event_id), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "campaign_id", event->campaign_id,
                                 sizeof(event->campaign_id), errstr,
                                 errstr_size)) ||
            (err = fields_string(record, "name", event->name,
                                 sizeof(event->name), errstr, errstr_size)) ||
            (err = fields_string(record, "channel", event->channel,
                                 sizeof(event->channel), errstr, errstr_size)))
                return err;
        if (fields_get(record, "type", &value) ||
            avro_value_get_enum(&value, &symbol) || symbol < 0 ||
            symbol > EWS_CAMPAIGN_ENDED) {
                snprintf(errstr, errstr_size, "type: missing or unknown");
                return EWS_DECODE_MISSING_FIELD;
        }
        event->type = (enum ews_campaign_type)symbol;
        event->has_target = fields_double(record, "target_activation_rate",
                                          &event->target_activation_rate);
        event->has_amount = fields_double(record, "amount", &event->amount);
        fields_long(record, "occurred_at", &event->occurred_at_ms);
        return EWS_DECODE_OK;
}
