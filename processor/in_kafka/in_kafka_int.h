/* Internal to the consumer: its state, shared by in_kafka.c (the client,
 * batches, seek and pause) and rebalance.c (the assignment). */
#ifndef EWS_IN_KAFKA_INT_H
#define EWS_IN_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "in_kafka/in_kafka.h"

struct ews_in_kafka {
        rd_kafka_t *rk;
        rd_kafka_queue_t *queue;
        struct ews_in_kafka_cb cb;
        char topics[EWS_SOURCE_COUNT][256];
        int64_t start_offset; /* where no position is stored */
        rd_kafka_message_t **batch;
        int batch_cnt, batch_cap;
        int assigned_cnt;
        unsigned rebalances; /* rebalance callbacks served so far */
        int eof_cnt;
        /* per source and partition: 1 assigned, 2 assigned and at end */
        unsigned char state[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        /* where a partition ends (conf->end_offsets), -1: the broker's */
        int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        /* per source and partition, what this consumer has handed out or
         * been told: the next offset (or the logical one it was assigned
         * at) and whether it is paused; a restart assigns them again */
        int64_t next[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        bool paused[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        /* from librdkafka's statistics: messages behind, -1 unknown */
        int64_t lag[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        bool joined;            /* a rebalance has reached us */
        bool brokers_down;      /* all brokers down, until one answers again */
        bool answered;          /* a broker has answered since the start */
        bool fetch_wake;        /* conf->fetch_wake */
        int64_t queue_min;      /* queued.min.messages as librdkafka has it */
        int64_t fetch_wakes;    /* ews_consumer_fetch_wakes_total */
        int64_t fetch_woken_ms; /* monotonic, of the last wake */
};

#define IN_ASSIGNED 1
#define IN_AT_END   2

/* The source of topic, -1 when not one of ours. */
int in_kafka_source(const struct ews_in_kafka *in, const char *topic);
void in_kafka_set_state(struct ews_in_kafka *in, int source, int32_t partition,
                        unsigned char state);
/* NULL protocol (a member dropped from its group) counts as eager. */
bool in_kafka_cooperative(rd_kafka_t *rk);
/* EWS_OFFSET_BEGINNING as librdkafka's logical offset. */
int64_t in_kafka_offset(int64_t offset);
/* Starts fetching a partition again at offset where librdkafka stopped
 * it (a fenced offset the broker lacked: a seek cannot move it). 0, or -1
 * when it could not (rebalance.c). */
int in_kafka_restart(struct ews_in_kafka *in, enum ews_source source,
                     int32_t partition, int64_t offset);
/* fetch.c, the fetcher's wake (in_kafka.h): with in->fetch_wake, sets the
 * queue's depth (queued.min.messages) to queue_min, 10000 at least, before
 * the properties (which may set it): 0, or -1 with errstr. */
int in_kafka_fetch_conf(struct ews_in_kafka *in, rd_kafka_conf_t *rk_conf,
                        int queue_min, char *errstr, size_t errstr_size);
/* Notes the depth as set, once the properties are applied. */
void in_kafka_fetch_conf_done(struct ews_in_kafka *in,
                              const rd_kafka_conf_t *rk_conf);
/* After a consume took n messages: wakes the fetcher when it may have
 * stopped. */
void in_kafka_fetch_taken(struct ews_in_kafka *in, ssize_t n);
/* The rebalance callback, served inside consume (rebalance.c). */
void in_kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque);

#endif
