/*
 * Stage 6, out: alerts and dead letters to Kafka, from one idempotent
 * producer. Payloads are copied; the caller keeps its buffers.
 */
#ifndef EWS_OUT_KAFKA_H
#define EWS_OUT_KAFKA_H

#include "config.h"
#include "ews.h"

struct ews_out_kafka_conf {
        const char *bootstrap_servers;
        const char *topic_alerts;
        const char *topic_dlq;
        const struct ews_config_props *props; /* over the settings above */
};

/* Where a dead letter came from and why it is one. */
struct ews_dead_letter {
        const char *source_topic;
        const struct ews_msg *msg;
        const char *reason; /* short, stable: a metric label */
        const char *detail; /* for people */
};

struct ews_out_kafka_stats {
        int64_t produced;
        int64_t delivered;
        int64_t failed;
        int64_t retried; /* produced again after a failed delivery */
};

struct ews_out_kafka;

struct ews_out_kafka *ews_out_kafka_new(const struct ews_out_kafka_conf *conf,
                                        char *errstr, size_t errstr_size);

/* Flushes for up to timeout_ms, then frees. */
void ews_out_kafka_destroy(struct ews_out_kafka *out, int timeout_ms);

int ews_out_kafka_alert(struct ews_out_kafka *out, const char *key,
                        const void *value, size_t len);
int ews_out_kafka_dead_letter(struct ews_out_kafka *out,
                              const struct ews_dead_letter *letter);

/* Serves delivery reports. */
void ews_out_kafka_poll(struct ews_out_kafka *out);
int ews_out_kafka_flush(struct ews_out_kafka *out, int timeout_ms);

struct ews_out_kafka_stats ews_out_kafka_stats(const struct ews_out_kafka *out);

/* Messages produced and not yet delivered, retries included. */
int64_t ews_out_kafka_queue_len(const struct ews_out_kafka *out);

#endif
