#include "pipeline/pipeline.h"

#include <stdio.h>
#include <time.h>

/* The pipeline's rows of the metrics table: what it counts per batch,
 * commit, alert and outbox record, and its owned partitions. */

#define ADD(name, help, type, labels, field)                                   \
        rc |= ews_metrics_add_i64(m, name, help, type, labels, &s->field)

static void pipeline_metrics_partitions(const struct ews_pipeline *p,
                                        struct ews_partition_metrics *parts,
                                        int *cnt, int *paused)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        *cnt = ews_pipeline_partitions(
                p, parts, EWS_PARTITIONS_MAX,
                (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, paused);
}

static void pipeline_metrics_assigned(void *opaque, struct ews_metrics_out *out)
{
        const struct ews_pipeline *pipeline = opaque;
        struct ews_partition_metrics parts[EWS_PARTITIONS_MAX];
        int cnt, paused;

        pipeline_metrics_partitions(pipeline, parts, &cnt, &paused);
        ews_metrics_series(out, "", cnt);
}

static void pipeline_metrics_paused(void *opaque, struct ews_metrics_out *out)
{
        const struct ews_pipeline *pipeline = opaque;
        struct ews_partition_metrics parts[EWS_PARTITIONS_MAX];
        int cnt, paused;

        pipeline_metrics_partitions(pipeline, parts, &cnt, &paused);
        ews_metrics_series(out, "", paused);
}

static void pipeline_metrics_delay(void *opaque, struct ews_metrics_out *out)
{
        const struct ews_pipeline *pipeline = opaque;
        struct ews_partition_metrics parts[EWS_PARTITIONS_MAX];
        char labels[320];
        int cnt, paused, i;

        pipeline_metrics_partitions(pipeline, parts, &cnt, &paused);
        for (i = 0; i < cnt; i++) {
                if (parts[i].watermark_delay_s < 0)
                        continue;
                snprintf(labels, sizeof(labels),
                         "topic=\"%s\",partition=\"%d\"", parts[i].topic,
                         (int)parts[i].partition);
                ews_metrics_series(out, labels, parts[i].watermark_delay_s);
        }
}

static int pipeline_metrics_topics(struct ews_metrics *m,
                                   const struct ews_pipeline_stats *s,
                                   const struct ews_config *config)
{
        char labels[512];
        int rc = 0, i, e;

        for (i = 0; i < EWS_SOURCE_COUNT; i++) {
                snprintf(labels, sizeof(labels), "topic=\"%s\"",
                         config->topics[i]);
                ADD("ews_events_consumed_total",
                    "Messages consumed from the input topics.",
                    EWS_METRIC_COUNTER, labels, consumed[i]);
                ADD("ews_events_decoded_total",
                    "Messages decoded and validated.", EWS_METRIC_COUNTER,
                    labels, decoded[i]);
        }
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                for (e = 1; e < EWS_DECODE_ERR_COUNT; e++) {
                        if (e == EWS_DECODE_RETRY)
                                continue;
                        snprintf(labels, sizeof(labels),
                                 "topic=\"%s\",reason=\"%s\"",
                                 config->topics[i], ews_decode_err_name(e));
                        ADD("ews_dead_letters_total",
                            "Messages sent to the dead-letter topic, by "
                            "reason.",
                            EWS_METRIC_COUNTER, labels, dead[i][e]);
                }
        return rc;
}

static int pipeline_metrics_alerts(struct ews_metrics *m,
                                   const struct ews_pipeline_stats *s)
{
        char labels[128];
        int rc = 0, r, i;

        for (r = 0; r < EWS_RULE_COUNT; r++)
                for (i = 0; i < 2; i++) {
                        snprintf(labels, sizeof(labels),
                                 "rule=\"%s\",status=\"%s\"", ews_rule_name(r),
                                 i ? "RESOLVED" : "FIRING");
                        ADD("ews_alerts_total",
                            "Alerts published: committed to the outbox to "
                            "be sent, by rule and status (held-back ones "
                            "are in ews_alerts_suppressed_total).",
                            EWS_METRIC_COUNTER, labels, alerts[r][i]);
                }
        for (r = 0; r < EWS_RULE_COUNT; r++) {
                snprintf(labels, sizeof(labels), "rule=\"%s\"",
                         ews_rule_name(r));
                ADD("ews_alerts_suppressed_total",
                    "Alerts held back, not published: older than "
                    "time.max.alert.age (not in ews_alerts_total).",
                    EWS_METRIC_COUNTER, labels, alerts_too_old[r]);
        }
        return rc;
}

static int pipeline_metrics_commits(struct ews_metrics *m,
                                    const struct ews_pipeline_stats *s)
{
        int rc = 0;

        ADD("ews_commits_total", "Fenced Redis commits applied.",
            EWS_METRIC_COUNTER, "", commits);
        ADD("ews_fenced_commits_total",
            "Commits rejected by a fence (a zombie or a replay).",
            EWS_METRIC_COUNTER, "", fenced);
        ADD("ews_rounds_overlapped_total",
            "Rounds of commits Redis ran while the next batch was taken in "
            "(kafka.batch.overlap).",
            EWS_METRIC_COUNTER, "", rounds_overlapped);
        ADD("ews_fences_lost_total",
            "Fences found missing where the group had committed (Redis "
            "lost its last writes): replayed from the first offset.",
            EWS_METRIC_COUNTER, "", fences_lost);
        ADD("ews_redis_errors_total", "Redis calls that failed.",
            EWS_METRIC_COUNTER, "", store_errors);
        ADD("ews_duplicate_events_total",
            "Events whose event_id the user had counted.", EWS_METRIC_COUNTER,
            "", duplicates);
        ADD("ews_replayed_events_total",
            "Messages below a partition's fence, skipped.", EWS_METRIC_COUNTER,
            "", replayed);
        ADD("ews_registry_retries_total",
            "Messages that waited for the schema registry.", EWS_METRIC_COUNTER,
            "", registry_retries);
        rc |= ews_metrics_add_histogram(m, "ews_redis_commit_duration_seconds",
                                        "Time of one partition's fenced "
                                        "commit.",
                                        "", &s->commit_seconds);
        rc |= ews_metrics_add_histogram(m, "ews_batch_messages",
                                        "Messages per consumed batch.", "",
                                        &s->batch_messages);
        return rc;
}

static int pipeline_metrics_outbox(struct ews_metrics *m,
                                   const struct ews_pipeline_stats *s)
{
        char labels[64];
        int rc = 0, r;

        ADD("ews_outbox_records",
            "Alerts and dead letters committed to the owned outboxes and "
            "not yet confirmed delivered.",
            EWS_METRIC_GAUGE, "", outbox_pending);
        ADD("ews_outbox_sent_total",
            "Outbox records handed to the producer, resends included.",
            EWS_METRIC_COUNTER, "", outbox_sent);
        ADD("ews_outbox_resent_total",
            "Outbox records sent again (after a failure, a restart or a "
            "rebalance).",
            EWS_METRIC_COUNTER, "", outbox_resent);
        ADD("ews_outbox_delivered_total",
            "Outbox records delivered and deleted.", EWS_METRIC_COUNTER, "",
            outbox_deleted);
        ADD("ews_outbox_failures_total",
            "Outbox records refused by the producer or not delivered; they "
            "stay and are sent again, unless refused for good (parked).",
            EWS_METRIC_COUNTER, "", outbox_failed);
        ADD("ews_outbox_parked_records",
            "Records of the owned outboxes Kafka refused for good, parked: "
            "not sent again until retried with ews-inspect outbox.",
            EWS_METRIC_GAUGE, "", outbox_parked_records);
        for (r = 0; r < EWS_REFUSAL_COUNT; r++) {
                snprintf(labels, sizeof(labels), "reason=\"%s\"",
                         ews_outbox_refusal_name(r));
                ADD("ews_outbox_parked_total",
                    "Outbox records Kafka refused for good and parked, by "
                    "reason.",
                    EWS_METRIC_COUNTER, labels, outbox_parked[r]);
        }
        ADD("ews_idle_watermark_advances_total",
            "Watermarks moved by the idle clock.", EWS_METRIC_COUNTER, "",
            idle_advances);
        ADD("ews_leader", "1 while this instance holds the leader's lease.",
            EWS_METRIC_GAUGE, "", leader);
        ADD("ews_leader_decisions_total",
            "Campaign and account cohorts decided by this instance as "
            "leader.",
            EWS_METRIC_COUNTER, "", leader_decisions);
        ADD("ews_users_expired_total",
            "Users deleted by this instance's sweep as leader, a retention "
            "past their last event.",
            EWS_METRIC_COUNTER, "", users_expired);
        return rc;
}

int ews_pipeline_metrics_register(const struct ews_pipeline *pipeline,
                                  const struct ews_config *config,
                                  struct ews_metrics *m)
{
        const struct ews_pipeline_stats *s = ews_pipeline_stats(pipeline);
        void *opaque = (void *)pipeline;
        int rc = pipeline_metrics_topics(m, s, config) |
                 pipeline_metrics_commits(m, s) |
                 pipeline_metrics_alerts(m, s) | pipeline_metrics_outbox(m, s);
        rc |= ews_metrics_add_fn(m, "ews_partitions_assigned",
                                 "Input partitions this instance owns.",
                                 EWS_METRIC_GAUGE, pipeline_metrics_assigned,
                                 opaque);
        rc |= ews_metrics_add_fn(m, "ews_partitions_paused",
                                 "Owned partitions paused (store, registry, "
                                 "lost offset).",
                                 EWS_METRIC_GAUGE, pipeline_metrics_paused,
                                 opaque);
        rc |= ews_metrics_add_fn(m, "ews_watermark_delay_seconds",
                                 "Wall clock minus the partition's "
                                 "event-time watermark.",
                                 EWS_METRIC_GAUGE, pipeline_metrics_delay,
                                 opaque);
        rc |= ews_pipeline_funnel_metrics_register(pipeline, m);
        return rc ? -1 : 0;
}
