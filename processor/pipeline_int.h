/* Internal to the pipeline. */
#ifndef EWS_PIPELINE_INT_H
#define EWS_PIPELINE_INT_H

#include "pipeline.h"
#include "pipeline_batch.h"

struct pipeline_part {
        bool assigned;
        bool claimed;    /* the fence below was read under our epoch */
        bool recovering; /* waits for a new claim; its messages are skipped */
        bool paused;
        bool failed; /* its offset is gone from the broker: stays paused */
        /* The registry could not be asked: from blocked_offset on, the
         * partition waits (paused) until retry_at_ms, then tries again. */
        bool blocked;
        int64_t blocked_offset;
        int64_t retry_at_ms;
        int64_t backoff_ms;
        int64_t epoch;
        int64_t next_offset; /* -1: nothing stored yet */
        int64_t watermark_ms;
        /* Where to go back to when no fence offset exists yet: the first
         * message consumed but not committed. -1: none. */
        int64_t rewind;
        /* this batch */
        bool in_batch;
        int64_t batch_next;   /* next offset to accept */
        int64_t batch_first;  /* first accepted offset */
        int64_t batch_max_ms; /* largest event time */
};

enum item_kind {
        ITEM_SKIP,
        ITEM_DEAD,
        ITEM_USAGE,
        ITEM_CAMPAIGN
};

struct batch_item {
        enum item_kind kind;
        int event; /* index into the batch's events */
        int user;  /* index into the batch's users */
};

struct ews_pipeline {
        const struct ews_config *config;
        struct ews_decoder *decoder;
        struct ews_store *store;
        struct ews_out_kafka *out;
        struct ews_in_kafka *in;
        struct pipeline_part parts[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        struct ews_pipeline_stats stats;
        /* batch scratch, sized for config->batch_max */
        struct batch_item *items;
        struct ews_usage_event *usage;
        struct ews_campaign_event *campaign;
        struct batch_table users;     /* of struct batch_user */
        struct batch_table accounts;  /* of struct ews_account_delta */
        struct batch_table campaigns; /* of struct ews_campaign_delta */
        struct ews_user *load;        /* contiguous copy for the store's load */
        size_t load_cap;
        struct timer_heap heap;
        struct ews_store_user *commit_users;
        size_t commit_users_cap;
        struct ews_alert *alerts;
        size_t alert_cnt, alert_cap;
        int64_t now_ms;  /* wall clock of the batch */
        int64_t mono_ms; /* monotonic clock of the batch, for retries */
        /* the usage partitions whose due timers the batch reads */
        int32_t due_partitions[EWS_PARTITIONS_MAX];
        int64_t due_upto[EWS_PARTITIONS_MAX];
};

static inline struct batch_user *pipeline_user(const struct ews_pipeline *p,
                                               size_t i)
{
        return batch_table_at(&p->users, i);
}

bool pipeline_grow(void **v, size_t *cap, size_t need, size_t size);
int64_t pipeline_watermark(const struct ews_pipeline *p,
                           const struct pipeline_part *part, int64_t event_ms);

/* Between consume calls: claim anew and go back to the fence. */
void pipeline_recover(struct ews_pipeline *p, enum ews_source source,
                      int32_t partition, int64_t rewind_offset);

/* Runs one partition's share of the batch through score and rules, in
 * offset order, then commits it. */
void pipeline_partition(struct ews_pipeline *p, const struct ews_msg *msgs,
                        int cnt, enum ews_source source, int32_t partition);

#endif
