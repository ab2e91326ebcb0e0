/* Alerts as Avro (schemas/alert.avsc), written with the decoder's value. */
#include "decode/decode_int.h"

#include <stdio.h>

/* A failed set returns from the caller with the field named. */
#define ALERT_TRY(expr, field)                                                 \
        do {                                                                   \
                if ((expr)) {                                                  \
                        what = (field);                                        \
                        goto fail;                                             \
                }                                                              \
        } while (0)

static int alert_field(avro_value_t *record, const char *name,
                       avro_value_t *field)
{
        return avro_value_get_by_name(record, name, field, NULL);
}

static int alert_set_string(avro_value_t *record, const char *name,
                            const char *s)
{
        avro_value_t field;

        return alert_field(record, name, &field) ||
               avro_value_set_string(&field, s);
}

static int alert_set_enum(avro_value_t *record, const char *name, int symbol)
{
        avro_value_t field;

        return alert_field(record, name, &field) ||
               avro_value_set_enum(&field, symbol);
}

/* ["null", "string"]: an empty string is null. */
static int alert_set_optional_string(avro_value_t *record, const char *name,
                                     const char *s)
{
        avro_value_t field, branch;

        if (alert_field(record, name, &field))
                return -1;
        if (!s[0])
                return avro_value_set_branch(&field, 0, &branch) ||
                       avro_value_set_null(&branch);
        return avro_value_set_branch(&field, 1, &branch) ||
               avro_value_set_string(&branch, s);
}

static int alert_set_long(avro_value_t *record, const char *name, int64_t v)
{
        avro_value_t field;

        return alert_field(record, name, &field) ||
               avro_value_set_long(&field, v);
}

static int alert_set_values(avro_value_t *record, const struct ews_alert *alert)
{
        avro_value_t map, element;
        int i;

        if (alert_field(record, "values", &map))
                return -1;
        for (i = 0; i < alert->value_cnt; i++)
                if (avro_value_add(&map, alert->values[i].name, &element, NULL,
                                   NULL) ||
                    avro_value_set_double(&element, alert->values[i].value))
                        return -1;
        return 0;
}

static int alert_set_contributors(avro_value_t *record,
                                  const struct ews_alert *alert)
{
        avro_value_t array, element, field;
        int i;

        if (alert_field(record, "top_contributors", &array))
                return -1;
        for (i = 0; i < alert->contributor_cnt; i++) {
                if (avro_value_append(&array, &element, NULL) ||
                    alert_set_string(&element, "event_type",
                                     alert->contributors[i].event_type) ||
                    alert_field(&element, "score", &field) ||
                    avro_value_set_double(&field, alert->contributors[i].score))
                        return -1;
        }
        return 0;
}

int ews_decode_alert_encode(struct ews_decoder *decoder,
                            const struct ews_alert *alert, void *buf,
                            size_t size, char *errstr, size_t errstr_size)
{
        avro_value_t *record = &decoder->alert.value;
        avro_value_t field, branch;
        const char *what = NULL;

        avro_value_reset(record);
        ALERT_TRY(alert_set_string(record, "alert_id", alert->alert_id),
                  "alert_id");
        ALERT_TRY(alert_set_string(record, "episode_id", alert->episode_id),
                  "episode_id");
        ALERT_TRY(alert_field(record, "seq", &field) ||
                          avro_value_set_int(&field, alert->seq),
                  "seq");
        ALERT_TRY(alert_set_enum(record, "rule", (int)alert->rule), "rule");
        ALERT_TRY(alert_set_enum(record, "status", (int)alert->status),
                  "status");
        ALERT_TRY(alert_set_enum(record, "severity", (int)alert->severity),
                  "severity");
        ALERT_TRY(alert_set_enum(record, "subject_type",
                                 (int)alert->subject_type),
                  "subject_type");
        ALERT_TRY(alert_set_string(record, "subject_id", alert->subject_id),
                  "subject_id");
        ALERT_TRY(alert_set_optional_string(record, "account_id",
                                            alert->account_id),
                  "account_id");
        ALERT_TRY(alert_set_optional_string(record, "campaign_id",
                                            alert->campaign_id),
                  "campaign_id");
        ALERT_TRY(alert_set_long(record, "event_time", alert->event_time_ms),
                  "event_time");
        ALERT_TRY(alert_set_long(record, "emitted_at", alert->emitted_at_ms),
                  "emitted_at");
        ALERT_TRY(alert_set_string(record, "reason", alert->reason), "reason");
        ALERT_TRY(alert_set_values(record, alert), "values");
        ALERT_TRY(alert_set_contributors(record, alert), "top_contributors");
        ALERT_TRY(alert_field(record, "last_activity_at", &field),
                  "last_activity_at");
        if (alert->last_activity_ms)
                ALERT_TRY(avro_value_set_branch(&field, 1, &branch) ||
                                  avro_value_set_long(&branch,
                                                      alert->last_activity_ms),
                          "last_activity_at");
        else
                ALERT_TRY(avro_value_set_branch(&field, 0, &branch) ||
                                  avro_value_set_null(&branch),
                          "last_activity_at");

        avro_writer_memory_set_dest(decoder->avro_writer, buf, (int64_t)size);
        ALERT_TRY(avro_value_write(decoder->avro_writer, record),
                  "(buffer size)");
        return (int)avro_writer_tell(decoder->avro_writer);
fail:
        snprintf(errstr, errstr_size, "alert %s: %s: %s", alert->alert_id, what,
                 avro_strerror());
        return -1;
}

static void alert_get_string(avro_value_t *record, const char *name, char *dst,
                             size_t size)
{
        avro_value_t field, branch;
        const char *s = NULL;
        size_t n = 0;

        dst[0] = '\0';
        if (alert_field(record, name, &field))
                return;
        if (avro_value_get_type(&field) == AVRO_UNION) {
                if (avro_value_get_current_branch(&field, &branch) ||
                    avro_value_get_type(&branch) == AVRO_NULL)
                        return;
                field = branch;
        }
        if (!avro_value_get_string(&field, &s, &n) && n)
                snprintf(dst, size, "%.*s", (int)(n - 1), s);
}

static int alert_get_enum(avro_value_t *record, const char *name, int max)
{
        avro_value_t field;
        int symbol = -1;

        if (alert_field(record, name, &field) ||
            avro_value_get_enum(&field, &symbol) || symbol < 0 || symbol >= max)
                return -1;
        return symbol;
}

static int64_t alert_get_long(avro_value_t *record, const char *name)
{
        avro_value_t field, branch;
        int64_t v = 0;

        if (alert_field(record, name, &field))
                return 0;
        if (avro_value_get_type(&field) == AVRO_UNION) {
                if (avro_value_get_current_branch(&field, &branch) ||
                    avro_value_get_type(&branch) == AVRO_NULL)
                        return 0;
                field = branch;
        }
        return avro_value_get_long(&field, &v) ? 0 : v;
}

static void alert_get_lists(avro_value_t *record, struct ews_alert *alert)
{
        avro_value_t map, array, element, field;
        const char *key;
        size_t n, i;
        int32_t seq = 0;

        if (!alert_field(record, "seq", &field) &&
            !avro_value_get_int(&field, &seq))
                alert->seq = seq;
        if (!alert_field(record, "values", &map) &&
            !avro_value_get_size(&map, &n))
                for (i = 0; i < n && alert->value_cnt < EWS_ALERT_VALUES_MAX;
                     i++) {
                        struct ews_alert_value *v =
                                &alert->values[alert->value_cnt];
                        if (avro_value_get_by_index(&map, i, &element, &key) ||
                            avro_value_get_double(&element, &v->value))
                                continue;
                        snprintf(v->name, sizeof(v->name), "%s", key);
                        alert->value_cnt++;
                }
        if (!alert_field(record, "top_contributors", &array) &&
            !avro_value_get_size(&array, &n))
                for (i = 0; i < n && alert->contributor_cnt < EWS_CONTRIB_MAX;
                     i++) {
                        struct ews_contributor *c =
                                &alert->contributors[alert->contributor_cnt];
                        if (avro_value_get_by_index(&array, i, &element,
                                                    NULL) ||
                            alert_field(&element, "score", &field) ||
                            avro_value_get_double(&field, &c->score))
                                continue;
                        alert_get_string(&element, "event_type", c->event_type,
                                         sizeof(c->event_type));
                        alert->contributor_cnt++;
                }
}

enum ews_decode_err ews_decode_alert(struct ews_decoder *decoder,
                                     const void *buf, size_t len,
                                     struct ews_alert *alert, char *errstr,
                                     size_t errstr_size)
{
        avro_value_t *record = &decoder->alert.value;
        enum ews_decode_err err;
        int rule, status, severity, subject;

        /* The wire format: no alert of ours starts with 0 (an empty
         * alert_id); the 5-byte frame goes, our schema reads the rest. */
        if (len >= 5 && ((const unsigned char *)buf)[0] == 0) {
                buf = (const unsigned char *)buf + 5;
                len -= 5;
        }
        err = ews_decode_check(decoder->alert_check, buf, len, &decoder->limits,
                               errstr, errstr_size);
        if (err)
                return err;
        avro_value_reset(record);
        avro_reader_memory_set_source(decoder->avro_reader, buf, (int64_t)len);
        if (avro_value_read(decoder->avro_reader, record)) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return EWS_DECODE_AVRO;
        }
        memset(alert, 0, sizeof(*alert));
        rule = alert_get_enum(record, "rule", EWS_RULE_COUNT);
        status = alert_get_enum(record, "status", 2);
        severity = alert_get_enum(record, "severity", 3);
        subject = alert_get_enum(record, "subject_type", 3);
        if (rule < 0 || status < 0 || severity < 0 || subject < 0) {
                snprintf(errstr, errstr_size, "alert: an unknown symbol");
                return EWS_DECODE_BAD_INDEX;
        }
        alert->rule = (enum ews_rule)rule;
        alert->status = (enum ews_alert_status)status;
        alert->severity = (enum ews_severity)severity;
        alert->subject_type = (enum ews_subject)subject;
        alert_get_string(record, "alert_id", alert->alert_id,
                         sizeof(alert->alert_id));
        alert_get_string(record, "episode_id", alert->episode_id,
                         sizeof(alert->episode_id));
        alert_get_string(record, "subject_id", alert->subject_id,
                         sizeof(alert->subject_id));
        alert_get_string(record, "account_id", alert->account_id,
                         sizeof(alert->account_id));
        alert_get_string(record, "campaign_id", alert->campaign_id,
                         sizeof(alert->campaign_id));
        alert_get_string(record, "reason", alert->reason,
                         sizeof(alert->reason));
        alert->event_time_ms = alert_get_long(record, "event_time");
        alert->emitted_at_ms = alert_get_long(record, "emitted_at");
        alert->last_activity_ms = alert_get_long(record, "last_activity_at");
        alert_get_lists(record, alert);
        return EWS_DECODE_OK;
}
