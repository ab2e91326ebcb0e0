#include "out_kafka.h"
#include "log.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An alert or a dead letter whose delivery failed, to be produced again. */
struct out_kafka_retry {
        bool dlq; /* else an alert */
        void *key, *value;
        size_t key_len, len;
        rd_kafka_headers_t *headers;
};

struct ews_out_kafka {
        rd_kafka_t *rk;
        char topic_alerts[256];
        char topic_dlq[256];
        struct ews_out_kafka_stats stats;
        struct out_kafka_retry *retry;
        size_t retry_cnt, retry_cap;
};

static int out_kafka_produce(struct ews_out_kafka *out, const char *topic,
                             const void *key, size_t key_len, const void *value,
                             size_t len, rd_kafka_headers_t *headers);

static void *out_kafka_dup(const void *p, size_t len)
{
        void *copy = malloc(len ? len : 1);

        if (copy && len)
                memcpy(copy, p, len);
        return copy;
}

/* Delivery reports run inside poll: keep the letter, produce it later. */
static void out_kafka_keep(struct ews_out_kafka *out,
                           const rd_kafka_message_t *m)
{
        struct out_kafka_retry *r;
        rd_kafka_headers_t *headers = NULL;

        if (out->retry_cnt == out->retry_cap) {
                size_t cap = out->retry_cap ? out->retry_cap * 2 : 64;
                r = realloc(out->retry, cap * sizeof(*r));
                if (!r)
                        goto lost;
                out->retry = r;
                out->retry_cap = cap;
        }
        r = &out->retry[out->retry_cnt];
        r->dlq = !strcmp(rd_kafka_topic_name(m->rkt), out->topic_dlq);
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR)
                r->headers = rd_kafka_headers_copy(headers);
        else
                r->headers = NULL;
        r->key = out_kafka_dup(m->key, m->key_len);
        r->key_len = m->key_len;
        r->value = out_kafka_dup(m->payload, m->len);
        r->len = m->len;
        if (!r->key || !r->value) {
                free(r->key);
                free(r->value);
                if (r->headers)
                        rd_kafka_headers_destroy(r->headers);
                goto lost;
        }
        out->retry_cnt++;
        return;
lost:
        ews_err("out_kafka", "out of memory: a dead letter is lost");
}

static void out_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
        struct ews_out_kafka *out = opaque;

        (void)rk;
        if (m->err) {
                out->stats.failed++;
                ews_err("out_kafka", "delivery to %s failed: %s",
                        rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
                /* An alert's state is committed and bad input must never
                 * vanish: send it again (consumers dedupe by alert_id). */
                out_kafka_keep(out, m);
        } else {
                out->stats.delivered++;
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
        if (out->rk) {
                if (timeout_ms > 0 && ews_out_kafka_flush(out, timeout_ms))
                        ews_err("out_kafka",
                                "%d message(s) not delivered at exit",
                                rd_kafka_outq_len(out->rk));
                rd_kafka_destroy(out->rk);
        }
        for (size_t i = 0; i < out->retry_cnt; i++) {
                free(out->retry[i].key);
                free(out->retry[i].value);
                if (out->retry[i].headers)
                        rd_kafka_headers_destroy(out->retry[i].headers);
        }
        if (out->retry_cnt)
                ews_err("out_kafka", "%zu dead letter(s) not delivered at exit",
                        out->retry_cnt);
        free(out->retry);
        free(out);
}

/* A full local queue is back pressure, not an error: serve delivery
 * reports until there is room. */
static int out_kafka_produce(struct ews_out_kafka *out, const char *topic,
                             const void *key, size_t key_len, const void *value,
                             size_t len, rd_kafka_headers_t *headers)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                        out->rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_KEY(key, key_len),
                        RD_KAFKA_V_VALUE((void *)value, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(out->rk, 100);
        }
        if (err) {
                ews_err("out_kafka", "produce to %s: %s", topic,
                        rd_kafka_err2str(err));
                if (headers)
                        rd_kafka_headers_destroy(headers);
                return -1;
        }
        out->stats.produced++;
        return 0;
}

int ews_out_kafka_alert(struct ews_out_kafka *out, const char *key,
                        const void *value, size_t len)
{
        return out_kafka_produce(out, out->topic_alerts, key, strlen(key),
                                 value, len, NULL);
}

int ews_out_kafka_dead_letter(struct ews_out_kafka *out,
                              const struct ews_dead_letter *letter)
{
        rd_kafka_headers_t *headers = rd_kafka_headers_new(6);
        char partition[16], offset[32], timestamp[32];

        snprintf(partition, sizeof(partition), "%" PRId32,
                 letter->msg->partition);
        snprintf(offset, sizeof(offset), "%" PRId64, letter->msg->offset);
        snprintf(timestamp, sizeof(timestamp), "%" PRId64,
                 letter->msg->timestamp_ms);
        rd_kafka_header_add(headers, "ews.error.reason", -1, letter->reason,
                            -1);
        rd_kafka_header_add(headers, "ews.error.detail", -1, letter->detail,
                            -1);
        rd_kafka_header_add(headers, "ews.source.topic", -1,
                            letter->source_topic, -1);
        rd_kafka_header_add(headers, "ews.source.partition", -1, partition, -1);
        rd_kafka_header_add(headers, "ews.source.offset", -1, offset, -1);
        rd_kafka_header_add(headers, "ews.source.timestamp", -1, timestamp, -1);
        return out_kafka_produce(out, out->topic_dlq, letter->msg->key,
                                 letter->msg->key_len, letter->msg->value,
                                 letter->msg->value_len, headers);
}

void ews_out_kafka_poll(struct ews_out_kafka *out)
{
        struct out_kafka_retry *list;
        size_t i, cnt;

        rd_kafka_poll(out->rk, 0);
        if (!out->retry_cnt)
                return;
        /* Producing serves delivery reports, which may keep new failures:
         * they go to a fresh list, never into the one walked here. */
        list = out->retry;
        cnt = out->retry_cnt;
        out->retry = NULL;
        out->retry_cnt = out->retry_cap = 0;
        for (i = 0; i < cnt; i++) {
                struct out_kafka_retry *r = &list[i];

                out->stats.retried++;
                if (out_kafka_produce(
                            out, r->dlq ? out->topic_dlq : out->topic_alerts,
                            r->key, r->key_len, r->value, r->len, r->headers))
                        ews_err("out_kafka", "not produced again");
                free(r->key);
                free(r->value);
        }
        free(list);
}

/* Alerts and dead letters that failed are produced again within the same time.
 */
int ews_out_kafka_flush(struct ews_out_kafka *out, int timeout_ms)
{
        struct timespec start, now;
        int left = timeout_ms;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (rd_kafka_flush(out->rk, left))
                        return -1;
                if (!out->retry_cnt)
                        return 0;
                ews_out_kafka_poll(out);
                clock_gettime(CLOCK_MONOTONIC, &now);
                left = timeout_ms -
                       (int)((now.tv_sec - start.tv_sec) * 1000 +
                             (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left <= 0)
                        return -1;
        }
}

struct ews_out_kafka_stats ews_out_kafka_stats(const struct ews_out_kafka *out)
{
        return out->stats;
}

int64_t ews_out_kafka_queue_len(const struct ews_out_kafka *out)
{
        return (int64_t)rd_kafka_outq_len(out->rk) + (int64_t)out->retry_cnt;
}
