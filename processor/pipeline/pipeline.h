/*
 * The pipeline runs a batch through the stages, partition by partition:
 *
 *   in_kafka -> decode -> score -> rules -> store -> out_kafka
 *
 * Within a partition it works in offset order: advance the watermark, fire
 * the timers now due, then apply the event. A partition's results (state,
 * timers, watermark, next offset) go to the store in one fenced commit;
 * only after it succeeded are alerts published and the offset stored.
 */
#ifndef EWS_PIPELINE_H
#define EWS_PIPELINE_H

#include "ops/config.h"
#include "util/metrics.h"
#include "decode/decode.h"
#include "in_kafka/in_kafka.h"
#include "out_kafka/out_kafka.h"
#include "store/store.h"

struct ews_pipeline_stats {
        int64_t consumed[EWS_SOURCE_COUNT];
        int64_t decoded[EWS_SOURCE_COUNT];
        int64_t dead[EWS_SOURCE_COUNT][EWS_DECODE_ERR_COUNT];
        int64_t replayed;         /* below the fence: applied before, skipped */
        int64_t duplicates;       /* event ids a user had already counted */
        int64_t registry_retries; /* messages that waited for the registry */
        int64_t fences_lost;      /* missing where the group had committed */
        int64_t alerts[EWS_RULE_COUNT][2];      /* committed, by status */
        int64_t alerts_too_old[EWS_RULE_COUNT]; /* recorded, not sent */
        int64_t outbox_sent;    /* records produced from the outbox */
        int64_t outbox_resent;  /* of those, sent again */
        int64_t outbox_deleted; /* delivered and deleted */
        int64_t outbox_failed;  /* not accepted, or its delivery failed */
        int64_t outbox_pending; /* in owned outboxes, sent or not */
        /* refused by Kafka for good and parked, by why; parked in owned
         * outboxes now */
        int64_t outbox_parked[EWS_REFUSAL_COUNT];
        int64_t outbox_parked_records;
        int64_t idle_advances; /* watermarks moved by the idle clock */
        int64_t leader;        /* 1 while this instance leads */
        int64_t leader_decisions;
        int64_t users_expired; /* deleted by the leader's sweep */
        struct ews_histogram commit_seconds;
        struct ews_histogram batch_messages;
        int64_t commits;
        int64_t fenced;
        int64_t store_errors;
        int64_t batches;
        int64_t rounds_overlapped; /* finished after the next batch came */
};

struct ews_pipeline;

/* Borrows config, decoder, store and out; they must outlive it. */
struct ews_pipeline *ews_pipeline_new(const struct ews_config *config,
                                      struct ews_decoder *decoder,
                                      struct ews_store *store,
                                      struct ews_out_kafka *out, char *errstr,
                                      size_t errstr_size);
void ews_pipeline_destroy(struct ews_pipeline *pipeline);

/* The consumer, once it exists (it needs the callbacks first). */
void ews_pipeline_set_input(struct ews_pipeline *pipeline,
                            struct ews_in_kafka *in);
struct ews_in_kafka_cb ews_pipeline_callbacks(struct ews_pipeline *pipeline);

/* The input ends where the consumer finds its end (--exit-at-end): in
 * time.mode event a partition at its end has nothing more to come, so it
 * follows the others at once instead of after time.idle.timeout. */
void ews_pipeline_set_bounded(struct ews_pipeline *pipeline, bool bounded);

/* Runs one batch, msgs as the consumer last handed them out: they are
 * read while the batch is admitted, then released (ews_in_kafka_release),
 * and not touched again. now_ms is the wall clock, mono_ms a monotonic
 * one. When the consumer already holds more input, the batch's round is
 * left in flight (its transaction with Redis) and finished by the next
 * call once that has taken its batch in, or by any other call below, the
 * consumer's rebalance callbacks included; ews_pipeline_settle()
 * finishes it at once. */
void ews_pipeline_run(struct ews_pipeline *pipeline, const struct ews_msg *msgs,
                      int cnt, int64_t now_ms, int64_t mono_ms);

/* Periodic work: retries partitions that lost their fence or the store,
 * and resumes those that waited for the schema registry. */
void ews_pipeline_cron(struct ews_pipeline *pipeline, int64_t mono_ms);

/* Once a second: idle watermarks, the leader's rules, the outboxes
 * (delivered records deleted, undelivered ones sent again). */
void ews_pipeline_tick(struct ews_pipeline *pipeline, int64_t now_ms,
                       int64_t mono_ms);

/* True when this instance leads and its last tick decided every closed
 * day that was due: the end of a bounded run (--exit-at-end) waits for it,
 * as long as another instance holds the lease. */
bool ews_pipeline_leader_caught_up(const struct ews_pipeline *pipeline);
/* True when this instance leads and its last tick stopped at the leader's
 * bound with more due: the next tick goes on at once. */
bool ews_pipeline_leader_behind(const struct ews_pipeline *pipeline);

/* Deletes the records delivered so far (at shutdown, after the flush) and
 * gives up the leader's lease. */
void ews_pipeline_finish(struct ews_pipeline *pipeline);

/* Reads every owned fence again: true when none is behind what this
 * instance committed; those that are go back to their fence (a Redis
 * that lost its last writes while the input was idle). For the end of a
 * bounded run (--exit-at-end). */
bool ews_pipeline_fences_current(struct ews_pipeline *pipeline);

/* True while some assigned partition waits for the store or the
 * registry. */
bool ews_pipeline_recovering(struct ews_pipeline *pipeline);

/* Finishes the round in flight, if one is: its alerts go out, its
 * offsets are stored. */
void ews_pipeline_settle(struct ews_pipeline *pipeline);

const struct ews_pipeline_stats *
ews_pipeline_stats(const struct ews_pipeline *pipeline);

/* Registers the pipeline's rows (pipeline/metrics.c): its counters, by
 * topic, rule and reason, and its owned partitions. The rows borrow the
 * pipeline and config. 0, or -1 when out of memory. */
int ews_pipeline_metrics_register(const struct ews_pipeline *pipeline,
                                  const struct ews_config *config,
                                  struct ews_metrics *metrics);

/* The owned partitions, for metrics: fills up to max entries (lag is left
 * -1 for the caller), counts the paused ones. Returns the count. */
int ews_pipeline_partitions(const struct ews_pipeline *pipeline,
                            struct ews_partition_metrics *out, int max,
                            int64_t now_ms, int *paused);

/* The funnel's series (ews_funnel_users), read by the cron every 30 s
 * (funnel_metrics.c); called by ews_pipeline_metrics_register. */
int ews_pipeline_funnel_metrics_register(const struct ews_pipeline *pipeline,
                                         struct ews_metrics *m);

#endif
