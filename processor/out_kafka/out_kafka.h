/*
 * Stage 6, out: alerts and dead letters to Kafka, from one idempotent
 * producer, each sent from its outbox record (outbox.h). The delivery
 * report comes back through the delivered callback with the record's
 * outbox and id, so the record can be deleted from the outbox; a record
 * whose delivery failed stays there and is sent again, unless Kafka
 * refused it for good (the error says so: it is then parked).
 *
 * librdkafka classifies errors as retriable only for rd_kafka_error_t
 * (rd_kafka_error_is_retriable), not for delivery reports: the errors its
 * Produce handling treats as permanent for the record itself (too large,
 * invalid or corrupt, authorization) are refused for good here; the rest
 * (time-outs, transport, leaders, an unknown topic, which librdkafka
 * waits for) are sent again. A dead letter larger than message.max.bytes
 * allows is sent with its value cut to fit and a header
 * ews.truncated=<original value bytes>.
 */
#ifndef EWS_OUT_KAFKA_H
#define EWS_OUT_KAFKA_H

#include "util/props.h"
#include "util/ews.h"
#include "util/metrics.h"
#include "util/outbox.h"

/* Why a record did not go out. */
struct ews_out_kafka_error {
        bool permanent;                  /* refused for good: as it is, it
                                          * never goes out */
        enum ews_outbox_refusal refusal; /* when permanent */
        char code[64];                   /* librdkafka's name of the error */
        char text[256];                  /* and its description */
};

/* Called from ews_out_kafka_poll() and flush, on the calling thread;
 * error NULL when delivered. */
typedef void (*ews_out_kafka_delivered_fn)(
        void *opaque, struct ews_outbox_ref ref, const char *id,
        const struct ews_out_kafka_error *error);

struct ews_out_kafka_conf {
        const char *bootstrap_servers;
        const char *topic_alerts;
        const char *topic_dlq;
        const struct ews_config_props *props; /* over the settings above */
};

struct ews_out_kafka_stats {
        int64_t produced;
        int64_t delivered;
        int64_t failed;
};

struct ews_out_kafka;

struct ews_out_kafka *ews_out_kafka_new(const struct ews_out_kafka_conf *conf,
                                        char *errstr, size_t errstr_size);

/* Where delivery reports go; until set, they only free their records. */
void ews_out_kafka_set_delivered(struct ews_out_kafka *out,
                                 ews_out_kafka_delivered_fn delivered,
                                 void *opaque);

/* Flushes for up to timeout_ms, then frees. */
void ews_out_kafka_destroy(struct ews_out_kafka *out, int timeout_ms);

/* Produces the record id of outbox ref: to the topic the record names, if
 * any (an alert of a routed rule), else an alert to the alert topic keyed
 * as the record says, a dead letter to the dead-letter topic with its
 * source in headers (its value cut to fit, see above). The payload is
 * copied. 0, or -1 when librdkafka refused it, with *error. */
int ews_out_kafka_send(struct ews_out_kafka *out, struct ews_outbox_ref ref,
                       const char *id, const struct ews_outbox_entry *entry,
                       struct ews_out_kafka_error *error);

/* The partition count of topic as the brokers tell the producer, or -1
 * when they did not (no broker, no such topic) within timeout_ms. */
int ews_out_kafka_partition_count(struct ews_out_kafka *out, const char *topic,
                                  int timeout_ms);

/* Serves delivery reports. */
void ews_out_kafka_poll(struct ews_out_kafka *out);
int ews_out_kafka_flush(struct ews_out_kafka *out, int timeout_ms);

struct ews_out_kafka_stats ews_out_kafka_stats(const struct ews_out_kafka *out);

/* Messages produced and not yet delivered. */
int64_t ews_out_kafka_queue_len(const struct ews_out_kafka *out);

/* Registers the producer's rows (its queue); they borrow out. 0, or -1
 * when out of memory. */
int ews_out_kafka_metrics_register(struct ews_out_kafka *out,
                                   struct ews_metrics *metrics);

#endif
