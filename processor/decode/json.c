/*
 * Our event structs from one JSON object per message, for trying EWS by
 * hand (kcat -P). Same field names as the schemas; optional fields may be
 * absent or null; occurred_at is milliseconds since the epoch or an
 * ISO-8601 UTC time ("2026-01-05T09:30:00Z", ".123" allowed); unknown
 * fields are ignored, as a reader schema would.
 */
#include "decode/decode_int.h"

#include <jansson.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ews_decode_err json_str(json_t *object, const char *name, char *dst,
                                    size_t size, char *errstr,
                                    size_t errstr_size)
{
        json_t *v = json_object_get(object, name);
        size_t n;

        dst[0] = '\0';
        if (!v || json_is_null(v))
                return EWS_DECODE_OK;
        if (!json_is_string(v)) {
                snprintf(errstr, errstr_size, "%s: not a string", name);
                return EWS_DECODE_BAD_VALUE;
        }
        n = json_string_length(v);
        if (n >= size) {
                snprintf(errstr, errstr_size, "%s: %zu bytes, at most %zu",
                         name, n, size - 1);
                return EWS_DECODE_ID_TOO_LONG;
        }
        if (memchr(json_string_value(v), '\0', n)) {
                snprintf(errstr, errstr_size, "%s: contains a NUL byte", name);
                return EWS_DECODE_BAD_VALUE;
        }
        memcpy(dst, json_string_value(v), n + 1);
        return EWS_DECODE_OK;
}

static enum ews_decode_err json_number(json_t *object, const char *name,
                                       bool *has, double *out, char *errstr,
                                       size_t errstr_size)
{
        json_t *v = json_object_get(object, name);

        *has = false;
        if (!v || json_is_null(v))
                return EWS_DECODE_OK;
        if (!json_is_number(v)) {
                snprintf(errstr, errstr_size, "%s: not a number", name);
                return EWS_DECODE_BAD_VALUE;
        }
        *has = true;
        *out = json_number_value(v);
        return EWS_DECODE_OK;
}

/* timegm() would turn February 31st into March 3rd: refuse what does not
 * come back the same. */
static bool json_time_real(const struct tm *tm)
{
        struct tm copy = *tm, back;
        time_t t = timegm(&copy);

        return gmtime_r(&t, &back) && back.tm_year == tm->tm_year &&
               back.tm_mon == tm->tm_mon && back.tm_mday == tm->tm_mday &&
               back.tm_hour == tm->tm_hour && back.tm_min == tm->tm_min &&
               back.tm_sec == tm->tm_sec;
}

/* Milliseconds, or "YYYY-MM-DDTHH:MM:SS[.mmm]Z"; 0 when absent. */
static enum ews_decode_err json_time(json_t *object, int64_t *out, char *errstr,
                                     size_t errstr_size)
{
        json_t *v = json_object_get(object, "occurred_at");
        const char *s, *rest;
        struct tm tm;
        int ms = 0, n = 0;

        *out = 0;
        if (!v || json_is_null(v))
                return EWS_DECODE_OK;
        if (json_is_integer(v)) {
                *out = (int64_t)json_integer_value(v);
                return EWS_DECODE_OK;
        }
        if (json_is_string(v)) {
                s = json_string_value(v);
                memset(&tm, 0, sizeof(tm));
                /* strptime skips spaces and takes signs: only digits here */
                rest = isdigit((unsigned char)s[0])
                               ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)
                               : NULL;
                if (rest && rest[0] == '.' && isdigit((unsigned char)rest[1]) &&
                    isdigit((unsigned char)rest[2]) &&
                    isdigit((unsigned char)rest[3]) &&
                    sscanf(rest, ".%3d%n", &ms, &n) == 1 && n == 4)
                        rest += n;
                if (rest && !strcmp(rest, "Z") && json_time_real(&tm)) {
                        *out = (int64_t)timegm(&tm) * 1000 + ms;
                        return EWS_DECODE_OK;
                }
        }
        snprintf(errstr, errstr_size,
                 "occurred_at: expected milliseconds or an ISO-8601 UTC "
                 "time");
        return EWS_DECODE_BAD_TIMESTAMP;
}

static json_t *json_parse(const void *buf, size_t len, char *errstr,
                          size_t errstr_size)
{
        json_error_t error;
        json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);

        if (!root) {
                snprintf(errstr, errstr_size, "JSON at %d: %s", error.position,
                         error.text);
                return NULL;
        }
        if (!json_is_object(root)) {
                snprintf(errstr, errstr_size, "JSON: not an object");
                json_decref(root);
                return NULL;
        }
        return root;
}

static void json_attrs(json_t *object, struct ews_usage_event *event)
{
        json_t *attrs = json_object_get(object, "attributes"), *v;
        const char *key;

        event->attr_cnt = 0;
        if (!json_is_object(attrs))
                return;
        /* As in Avro: entries that do not fit a slot cannot match a rule. */
        json_object_foreach(attrs, key, v)
        {
                struct ews_attr *attr = &event->attrs[event->attr_cnt];

                if (event->attr_cnt == EWS_ATTR_MAX)
                        break;
                if (!json_is_string(v) || strlen(key) >= sizeof(attr->key) ||
                    json_string_length(v) >= sizeof(attr->value))
                        continue;
                memcpy(attr->key, key, strlen(key) + 1);
                memcpy(attr->value, json_string_value(v),
                       json_string_length(v) + 1);
                event->attr_cnt++;
        }
}

enum ews_decode_err decode_usage_json(const void *buf, size_t len,
                                      struct ews_usage_event *event,
                                      char *errstr, size_t errstr_size)
{
        enum ews_decode_err err;
        json_t *root = json_parse(buf, len, errstr, errstr_size);

        if (!root)
                return EWS_DECODE_BAD_JSON;
        if (!(err = json_str(root, "event_id", event->event_id,
                             sizeof(event->event_id), errstr, errstr_size)) &&
            !(err = json_str(root, "user_id", event->user_id,
                             sizeof(event->user_id), errstr, errstr_size)) &&
            !(err = json_str(root, "account_id", event->account_id,
                             sizeof(event->account_id), errstr, errstr_size)) &&
            !(err = json_str(root, "event_type", event->event_type,
                             sizeof(event->event_type), errstr, errstr_size)) &&
            !(err = json_str(root, "product", event->product,
                             sizeof(event->product), errstr, errstr_size)) &&
            !(err = json_str(root, "campaign_id", event->campaign_id,
                             sizeof(event->campaign_id), errstr,
                             errstr_size)) &&
            !(err = json_number(root, "value", &event->has_value, &event->value,
                                errstr, errstr_size)) &&
            !(err = json_time(root, &event->occurred_at_ms, errstr,
                              errstr_size)))
                json_attrs(root, event);
        json_decref(root);
        return err;
}

enum ews_decode_err decode_campaign_json(const void *buf, size_t len,
                                         struct ews_campaign_event *event,
                                         char *errstr, size_t errstr_size)
{
        static const char *types[] = {"LAUNCHED", "SPEND", "PAUSED", "ENDED"};
        enum ews_decode_err err;
        json_t *root = json_parse(buf, len, errstr, errstr_size);
        char type[16];
        int i;

        if (!root)
                return EWS_DECODE_BAD_JSON;
        if (!(err = json_str(root, "event_id", event->event_id,
                             sizeof(event->event_id), errstr, errstr_size)) &&
            !(err = json_str(root, "campaign_id", event->campaign_id,
                             sizeof(event->campaign_id), errstr,
                             errstr_size)) &&
            !(err = json_str(root, "name", event->name, sizeof(event->name),
                             errstr, errstr_size)) &&
            !(err = json_str(root, "channel", event->channel,
                             sizeof(event->channel), errstr, errstr_size)) &&
            !(err = json_number(
                      root, "target_activation_rate", &event->has_target,
                      &event->target_activation_rate, errstr, errstr_size)) &&
            !(err = json_number(root, "amount", &event->has_amount,
                                &event->amount, errstr, errstr_size)) &&
            !(err = json_time(root, &event->occurred_at_ms, errstr,
                              errstr_size)) &&
            !(err = json_str(root, "type", type, sizeof(type), errstr,
                             errstr_size))) {
                for (i = 0; i < 4 && strcmp(type, types[i]); i++)
                        ;
                if (i == 4) {
                        snprintf(errstr, errstr_size,
                                 "type: missing or not one of LAUNCHED, "
                                 "SPEND, PAUSED, ENDED");
                        err = EWS_DECODE_MISSING_FIELD;
                }
                event->type = (enum ews_campaign_type)(i & 3);
        }
        json_decref(root);
        return err;
}
