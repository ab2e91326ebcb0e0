/* Alerts as Avro (schemas/alert.avsc), written with the decoder's value. */
#include "filter_decode_int.h"

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
