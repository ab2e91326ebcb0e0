#include "out_kafka/out_kafka.h"
#include "out_kafka/out_file.h"
#include "util/log.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ews_out_kafka {
        rd_kafka_t *rk;
        char topic_alerts[256];
        char topic_dlq[256];
        struct ews_out_kafka_stats stats;
        ews_out_kafka_delivered_fn delivered;
        void *opaque;
        struct out_file *file; /* replay mode: no rk */
};

/* What a delivery report needs to find the record again. */
struct out_kafka_record {
        struct ews_outbox_ref ref;
        char id[];
};

static void out_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
        struct ews_out_kafka *out = opaque;
        struct out_kafka_record *record = m->_private;

        (void)rk;
        if (m->err) {
                out->stats.failed++;
                ews_err("out_kafka",
                        "delivery to %s failed: %s (kept in the outbox, sent "
                        "again)",
                        rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        } else {
                out->stats.delivered++;
        }
        if (record) {
                if (out->delivered)
                        out->delivered(out->opaque, record->ref, record->id,
                                       !m->err);
                free(record);
        }
}

static void out_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf)
{
        (void)rk;
        ews_log(ews_log_level_from_syslog(level), "rdkafka", "%s: %s", fac,
                buf);
}

struct ews_out_kafka *ews_out_kafka_new(const struct ews_out_kafka_conf *conf,
                                        char *errstr, size_t errstr_size)
{
        struct ews_out_kafka *out = calloc(1, sizeof(*out));
        rd_kafka_conf_t *rk_conf = rd_kafka_conf_new();
        int i;

        if (!out || !rk_conf) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        snprintf(out->topic_alerts, sizeof(out->topic_alerts), "%s",
                 conf->topic_alerts);
        snprintf(out->topic_dlq, sizeof(out->topic_dlq), "%s", conf->topic_dlq);
        if (conf->file) {
                if (!(out->file =
                              out_file_new(conf->file, errstr, errstr_size)))
                        goto fail;
                rd_kafka_conf_destroy(rk_conf);
                return out;
        }
        if (rd_kafka_conf_set(rk_conf, "bootstrap.servers",
                              conf->bootstrap_servers, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(rk_conf, "enable.idempotence", "true", errstr,
                              errstr_size) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(rk_conf, "linger.ms", "5", errstr, errstr_size) !=
                    RD_KAFKA_CONF_OK)
                goto fail;
        for (i = 0; i < conf->props->cnt; i++)
                if (rd_kafka_conf_set(rk_conf, conf->props->prop[i].key,
                                      conf->props->prop[i].value, errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        goto fail;
        rd_kafka_conf_set_dr_msg_cb(rk_conf, out_kafka_dr);
        rd_kafka_conf_set_log_cb(rk_conf, out_kafka_log);
        rd_kafka_conf_set_opaque(rk_conf, out);
        out->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rk_conf, errstr, errstr_size);
        if (!out->rk)
                goto fail;
        return out; /* rd_kafka_new() took rk_conf */
fail:
        if (rk_conf)
                rd_kafka_conf_destroy(rk_conf);
        ews_out_kafka_destroy(out, 0);
        return NULL;
}

void ews_out_kafka_destroy(struct ews_out_kafka *out, int timeout_ms)
{
        if (!out)
                return;
        out_file_destroy(out->file);
        if (out->rk) {
                if (timeout_ms > 0 && ews_out_kafka_flush(out, timeout_ms))
                        ews_warn("out_kafka",
                                 "%d message(s) not delivered at exit: they "
                                 "stay in the outbox",
                                 rd_kafka_outq_len(out->rk));
                /* The owner of the callback may be gone: purged reports
                 * only free their records. */
                out->delivered = NULL;
                rd_kafka_purge(out->rk, RD_KAFKA_PURGE_F_QUEUE |
                                                RD_KAFKA_PURGE_F_INFLIGHT |
                                                RD_KAFKA_PURGE_F_NON_BLOCKING);
                rd_kafka_poll(out->rk, 0);
                rd_kafka_destroy(out->rk);
        }
        free(out);
}

/* A full local queue is back pressure, not an error: serve delivery
 * reports until there is room. Takes ownership of headers and record. */
static int out_kafka_produce(struct ews_out_kafka *out, const char *topic,
                             const void *key, size_t key_len, const void *value,
                             size_t len, rd_kafka_headers_t *headers,
                             struct out_kafka_record *record)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                        out->rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_KEY(key, key_len),
                        RD_KAFKA_V_VALUE((void *)value, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(record),
                        RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(out->rk, 100);
        }
        if (err) {
                ews_err("out_kafka", "produce to %s: %s", topic,
                        rd_kafka_err2str(err));
                if (headers)
                        rd_kafka_headers_destroy(headers);
                free(record);
                return -1;
        }
        out->stats.produced++;
        return 0;
}

static rd_kafka_headers_t *out_kafka_headers(const struct ews_outbox_entry *e)
{
        rd_kafka_headers_t *headers = rd_kafka_headers_new(6);
        char partition[16], offset[32], timestamp[32];

        snprintf(partition, sizeof(partition), "%" PRId32, e->partition);
        snprintf(offset, sizeof(offset), "%" PRId64, e->offset);
        snprintf(timestamp, sizeof(timestamp), "%" PRId64, e->timestamp_ms);
        rd_kafka_header_add(headers, "ews.error.reason", -1, e->reason,
                            (ssize_t)e->reason_len);
        rd_kafka_header_add(headers, "ews.error.detail", -1, e->detail,
                            (ssize_t)e->detail_len);
        rd_kafka_header_add(headers, "ews.source.topic", -1, e->source_topic,
                            (ssize_t)e->source_topic_len);
        rd_kafka_header_add(headers, "ews.source.partition", -1, partition, -1);
        rd_kafka_header_add(headers, "ews.source.offset", -1, offset, -1);
        rd_kafka_header_add(headers, "ews.source.timestamp", -1, timestamp, -1);
        return headers;
}

int ews_out_kafka_send(struct ews_out_kafka *out, struct ews_outbox_ref ref,
                       const char *id, const struct ews_outbox_entry *entry)
{
        size_t id_len = strlen(id);
        struct out_kafka_record *record = malloc(sizeof(*record) + id_len + 1);
        bool dead = entry->kind == EWS_OUTBOX_DEAD;

        if (out->file) {
                free(record);
                if (out_file_send(out->file, ref, id, entry))
                        return -1;
                out->stats.produced++;
                return 0;
        }
        if (!record) {
                ews_err("out_kafka", "out of memory: %s stays in the outbox",
                        id);
                return -1;
        }
        record->ref = ref;
        memcpy(record->id, id, id_len + 1);
        return out_kafka_produce(
                out, dead ? out->topic_dlq : out->topic_alerts, entry->key,
                entry->key_len, entry->value, entry->value_len,
                dead ? out_kafka_headers(entry) : NULL, record);
}

void ews_out_kafka_set_delivered(struct ews_out_kafka *out,
                                 ews_out_kafka_delivered_fn delivered,
                                 void *opaque)
{
        out->delivered = delivered;
        out->opaque = opaque;
}

void ews_out_kafka_poll(struct ews_out_kafka *out)
{
        if (out->file)
                out_file_poll(out->file, out->delivered, out->opaque,
                              &out->stats);
        else
                rd_kafka_poll(out->rk, 0);
}

int ews_out_kafka_flush(struct ews_out_kafka *out, int timeout_ms)
{
        if (out->file)
                return out_file_poll(out->file, out->delivered, out->opaque,
                                     &out->stats);
        return rd_kafka_flush(out->rk, timeout_ms) ? -1 : 0;
}

struct ews_out_kafka_stats ews_out_kafka_stats(const struct ews_out_kafka *out)
{
        return out->stats;
}

int64_t ews_out_kafka_queue_len(const struct ews_out_kafka *out)
{
        if (out->file)
                return out_file_pending(out->file);
        return (int64_t)rd_kafka_outq_len(out->rk);
}

static void out_kafka_metrics_queue(void *opaque, struct ews_metrics_out *out)
{
        ews_metrics_series(out, "", (double)ews_out_kafka_queue_len(opaque));
}

int ews_out_kafka_metrics_register(struct ews_out_kafka *out,
                                   struct ews_metrics *metrics)
{
        return ews_metrics_add_fn(metrics, "ews_producer_queue_messages",
                                  "Messages in the producer's queue, not yet "
                                  "acknowledged by Kafka.",
                                  EWS_METRIC_GAUGE, out_kafka_metrics_queue,
                                  out);
}
