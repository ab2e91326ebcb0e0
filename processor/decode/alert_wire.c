/* Alerts in the Schema Registry's wire format: schemas/alert.avsc
 * registered under each alert topic's subject (<topic>-value), and each
 * alert framed with its topic's id, so that Kafka Connect sinks and ksqlDB
 * read them with stock converters. */
#include "decode/decode_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_SCHEMA_MAX (64 * 1024)

/* alert.avsc as written, its docs included: what consumers see. */
static char *alert_wire_schema(const struct ews_decoder *decoder, char *errstr,
                               size_t errstr_size)
{
        char path[1200], *text = malloc(ALERT_SCHEMA_MAX);
        size_t len = 0;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/alert.avsc", decoder->conf.schema_dir);
        fp = fopen(path, "rb");
        if (text && fp)
                len = fread(text, 1, ALERT_SCHEMA_MAX - 1, fp);
        if (!text || !fp || ferror(fp) || !len || len == ALERT_SCHEMA_MAX - 1) {
                snprintf(errstr, errstr_size, "%s: %s", path,
                         !fp ? strerror(errno) : "cannot be read whole");
                free(text);
                text = NULL;
        } else {
                text[len] = '\0';
        }
        if (fp)
                fclose(fp);
        return text;
}

enum ews_decode_err ews_decode_alert_register(struct ews_decoder *decoder,
                                              const char *topic, char *errstr,
                                              size_t errstr_size)
{
        struct decode_alert_topic *t = NULL;
        enum registry_status status;
        char subject[300], *schema;
        int32_t id = 0;
        int i;

        for (i = 0; i < decoder->alert_topic_cnt; i++)
                if (!strcmp(decoder->alert_topics[i].topic, topic))
                        return EWS_DECODE_OK;
        if (!decoder->registry ||
            decoder->alert_topic_cnt == DECODE_ALERT_TOPICS_MAX ||
            strlen(topic) >= sizeof(t->topic)) {
                snprintf(errstr, errstr_size, "%s",
                         decoder->registry ? "too many alert topics"
                                           : "no registry configured");
                return EWS_DECODE_INCOMPATIBLE_SCHEMA;
        }
        if (!(schema = alert_wire_schema(decoder, errstr, errstr_size)))
                return EWS_DECODE_INCOMPATIBLE_SCHEMA;
        snprintf(subject, sizeof(subject), "%s-value", topic);
        status = registry_register(decoder->registry, subject, schema, &id,
                                   errstr, errstr_size);
        free(schema);
        if (status == REGISTRY_REFUSED)
                return EWS_DECODE_INCOMPATIBLE_SCHEMA;
        if (status != REGISTRY_OK)
                return EWS_DECODE_RETRY;
        t = &decoder->alert_topics[decoder->alert_topic_cnt++];
        snprintf(t->topic, sizeof(t->topic), "%s", topic);
        t->id = id;
        return EWS_DECODE_OK;
}

int ews_decode_alert_encode_for(struct ews_decoder *decoder, const char *topic,
                                const struct ews_alert *alert, void *buf,
                                size_t size, char *errstr, size_t errstr_size)
{
        unsigned char *out = buf;
        int i, len;

        for (i = 0; i < decoder->alert_topic_cnt; i++)
                if (!strcmp(decoder->alert_topics[i].topic, topic))
                        break;
        if (i == decoder->alert_topic_cnt)
                return ews_decode_alert_encode(decoder, alert, buf, size,
                                               errstr, errstr_size);
        if (size < 5) {
                snprintf(errstr, errstr_size, "alert: buffer too small");
                return -1;
        }
        len = ews_decode_alert_encode(decoder, alert, out + 5, size - 5, errstr,
                                      errstr_size);
        if (len < 0)
                return -1;
        out[0] = 0; /* the wire format's magic byte */
        for (int b = 0; b < 4; b++)
                out[1 + b] =
                        (unsigned char)((uint32_t)decoder->alert_topics[i].id >>
                                        (24 - 8 * b));
        return len + 5;
}
