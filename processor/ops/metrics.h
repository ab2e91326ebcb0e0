/*
 * What the processor tells Prometheus: a snapshot of counters and gauges,
 * built by the main loop once a second and rendered in the text format
 * (base units, _total on counters) by the HTTP thread.
 */
#ifndef EWS_METRICS_H
#define EWS_METRICS_H

#include <stdio.h>

#include "util/ews.h"
#include "decode/decode.h"

#define EWS_HIST_MAX 16

struct ews_histogram {
        int bound_cnt;
        double bounds[EWS_HIST_MAX];       /* upper bounds, ascending */
        uint64_t counts[EWS_HIST_MAX + 1]; /* per bucket, the last is +Inf */
        double sum;
        uint64_t count;
};

void ews_histogram_init(struct ews_histogram *h, const double *bounds,
                        int bound_cnt);
void ews_histogram_observe(struct ews_histogram *h, double value);

#define EWS_METRICS_PARTITIONS_MAX 512

struct ews_partition_metrics {
        enum ews_source source;
        int32_t partition;
        int64_t lag;              /* messages; -1 unknown */
        double watermark_delay_s; /* wall clock minus watermark; <0 unknown */
};

struct ews_metrics {
        char topics[EWS_SOURCE_COUNT][256];
        int64_t consumed[EWS_SOURCE_COUNT];
        int64_t decoded[EWS_SOURCE_COUNT];
        int64_t dead[EWS_SOURCE_COUNT][EWS_DECODE_ERR_COUNT];
        int64_t commits, fenced, redis_errors, redis_reconnects;
        int64_t duplicates, replayed, registry_retries;
        int64_t alerts[EWS_RULE_COUNT][2];
        int64_t alerts_too_old[EWS_RULE_COUNT];
        int64_t outbox_sent, outbox_resent, outbox_deleted, outbox_failed;
        int64_t outbox_records;
        int64_t idle_advances;
        bool leader;
        int64_t leader_decisions;
        struct ews_histogram commit_seconds;
        struct ews_histogram batch_messages;
        int64_t producer_queue;
        int64_t cache_hits, cache_misses;
        int partitions_assigned, partitions_paused;
        bool ready;
        int partition_cnt;
        struct ews_partition_metrics partitions[EWS_METRICS_PARTITIONS_MAX];
};

/* Writes m in the Prometheus text format, with the process's own CPU and
 * memory read from /proc. */
void ews_metrics_render(const struct ews_metrics *m, FILE *fp);

#endif
