#include "out_kafka/out_kafka.h"
#include "out_kafka/out_file.h"
#include "util/log.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a record's framing and its headers' lengths, above key, value
 * and header bytes (librdkafka's own is at most 36 bytes a record and 10
 * a header): what a dead letter's value is cut to leaves this free. */
#define OUT_KAFKA_FRAMING_BYTES 256

struct ews_out_kafka {
        rd_kafka_t *rk;
        char topic_alerts[256];
        char topic_dlq[256];
        int64_t message_max_bytes; /* the producer's message.max.bytes */
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

/* Whether err refuses the record itself for good, as librdkafka's Produce
 * handling (rd_kafka_handle_Produce_error) and produce() see it: the
 * broker's answers it never retries, and a message over
 * message.max.bytes. Everything else is worth sending again. */
static bool out_kafka_refused(rd_kafka_resp_err_t err,
                              enum ews_outbox_refusal *refusal)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
                *refusal = EWS_REFUSED_TOO_LARGE;
                return true;
        case RD_KAFKA_RESP_ERR_INVALID_MSG: /* CORRUPT_MESSAGE */
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
                *refusal = EWS_REFUSED_INVALID;
                return true;
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
                *refusal = EWS_REFUSED_NOT_AUTHORIZED;
                return true;
        default:
                return false;
        }
}

static void out_kafka_error(struct ews_out_kafka_error *error,
                            rd_kafka_resp_err_t err)
{
        memset(error, 0, sizeof(*error));
        error->permanent = out_kafka_refused(err, &error->refusal);
        snprintf(error->code, sizeof(error->code), "%s",
                 rd_kafka_err2name(err));
        snprintf(error->text, sizeof(error->text), "%s", rd_kafka_err2str(err));
}

static void out_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
        struct ews_out_kafka *out = opaque;
        struct out_kafka_record *record = m->_private;
        struct ews_out_kafka_error error;

        (void)rk;
        if (m->err) {
                out->stats.failed++;
                out_kafka_error(&error, m->err);
                ews_err("out_kafka", "delivery to %s failed: %s (%s)",
                        rd_kafka_topic_name(m->rkt), error.text,
                        error.permanent ? "refused for good: parked"
                                        : "kept in the outbox, sent again");
        } else {
                out->stats.delivered++;
        }
        if (record) {
                if (out->delivered)
                        out->delivered(out->opaque, record->ref, record->id,
                                       m->err ? &error : NULL);
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

/* The producer's message.max.bytes, as set: what a dead letter is cut
 * to fit. */
static int out_kafka_max_bytes(struct ews_out_kafka *out,
                               const rd_kafka_conf_t *rk_conf, char *errstr,
                               size_t errstr_size)
{
        char value[32];
        size_t size = sizeof(value);

        if (rd_kafka_conf_get(rk_conf, "message.max.bytes", value, &size) !=
                    RD_KAFKA_CONF_OK ||
            (out->message_max_bytes = strtoll(value, NULL, 10)) <= 0) {
                snprintf(errstr, errstr_size,
                         "cannot read the producer's message.max.bytes");
                return -1;
        }
        return 0;
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
        if (out_kafka_max_bytes(out, rk_conf, errstr, errstr_size))
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
static rd_kafka_resp_err_t
out_kafka_produce(struct ews_out_kafka *out, const char *topic, const void *key,
                  size_t key_len, const void *value, size_t len,
                  rd_kafka_headers_t *headers, struct out_kafka_record *record)
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
                return err;
        }
        out->stats.produced++;
        return RD_KAFKA_RESP_ERR_NO_ERROR;
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

/* The bytes headers take, with room for their lengths. */
static size_t out_kafka_headers_bytes(const rd_kafka_headers_t *headers)
{
        const char *name;
        const void *value;
        size_t size, bytes = 0, i;

        for (i = 0; !rd_kafka_header_get_all(headers, i, &name, &value, &size);
             i++)
                bytes += strlen(name) + size + 10;
        return bytes;
}

/* How much of a dead letter's value fits message.max.bytes beside its key
 * and headers; a value cut to it gets the ews.truncated header. */
static size_t out_kafka_fit(const struct ews_out_kafka *out,
                            const struct ews_outbox_entry *entry,
                            rd_kafka_headers_t *headers)
{
        int64_t fixed = OUT_KAFKA_FRAMING_BYTES + (int64_t)entry->key_len +
                        (int64_t)out_kafka_headers_bytes(headers);
        /* the header that says so: its name, 20 digits, lengths */
        int64_t room = out->message_max_bytes - fixed -
                       (int64_t)(sizeof("ews.truncated") + 20 + 10);
        char original[32];

        if (fixed + (int64_t)entry->value_len <= out->message_max_bytes)
                return entry->value_len;
        if (room < 0)
                room = 0; /* the key alone is too large: refused, parked */
        snprintf(original, sizeof(original), "%zu", entry->value_len);
        rd_kafka_header_add(headers, "ews.truncated", -1, original, -1);
        return (size_t)room;
}

int ews_out_kafka_send(struct ews_out_kafka *out, struct ews_outbox_ref ref,
                       const char *id, const struct ews_outbox_entry *entry,
                       struct ews_out_kafka_error *error)
{
        size_t id_len = strlen(id), value_len = entry->value_len;
        struct out_kafka_record *record = malloc(sizeof(*record) + id_len + 1);
        bool dead = entry->kind == EWS_OUTBOX_DEAD;
        rd_kafka_headers_t *headers = NULL;
        rd_kafka_resp_err_t err;
        char topic[256];

        if (out->file) {
                free(record);
                if (out_file_send(out->file, ref, id, entry, error))
                        return -1;
                out->stats.produced++;
                return 0;
        }
        if (!record) {
                ews_err("out_kafka", "out of memory: %s stays in the outbox",
                        id);
                out_kafka_error(error, RD_KAFKA_RESP_ERR__FAIL);
                return -1;
        }
        record->ref = ref;
        memcpy(record->id, id, id_len + 1);
        /* A record names its topic (an alert of a routed rule), or goes
         * where its kind goes. */
        if (entry->topic_len >= sizeof(topic)) {
                free(record);
                out_kafka_error(error, RD_KAFKA_RESP_ERR__INVALID_ARG);
                error->permanent = true; /* never sendable: parked */
                error->refusal = EWS_REFUSED_INVALID;
                snprintf(error->text, sizeof(error->text),
                         "the record's topic name is too long");
                ews_err("out_kafka", "%s: %s", id, error->text);
                return -1;
        }
        if (entry->topic_len) /* a record without one may hold NULL */
                memcpy(topic, entry->topic, entry->topic_len);
        topic[entry->topic_len] = '\0';
        if (dead) {
                headers = out_kafka_headers(entry);
                value_len = out_kafka_fit(out, entry, headers);
        }
        err = out_kafka_produce(out,
                                entry->topic_len ? topic
                                : dead           ? out->topic_dlq
                                                 : out->topic_alerts,
                                entry->key, entry->key_len, entry->value,
                                value_len, headers, record);
        if (!err)
                return 0;
        out_kafka_error(error, err);
        return -1;
}

int ews_out_kafka_partition_count(struct ews_out_kafka *out, const char *topic,
                                  int timeout_ms)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        int cnt = -1;

        if (out->file)
                return 1; /* replay mode: the file takes every topic */
        rkt = rd_kafka_topic_new(out->rk, topic, NULL);

        if (rkt && !rd_kafka_metadata(out->rk, 0, rkt, &md, timeout_ms) &&
            md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt > 0)
                cnt = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return cnt;
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
