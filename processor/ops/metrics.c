#include "ops/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ews_histogram_init(struct ews_histogram *h, const double *bounds,
                        int bound_cnt)
{
        memset(h, 0, sizeof(*h));
        h->bound_cnt = bound_cnt < EWS_HIST_MAX ? bound_cnt : EWS_HIST_MAX;
        memcpy(h->bounds, bounds, (size_t)h->bound_cnt * sizeof(*bounds));
}

void ews_histogram_observe(struct ews_histogram *h, double value)
{
        int i = 0;

        while (i < h->bound_cnt && value > h->bounds[i])
                i++;
        h->counts[i]++;
        h->sum += value;
        h->count++;
}

static void metrics_help(FILE *fp, const char *name, const char *type,
                         const char *help)
{
        fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_histogram(FILE *fp, const char *name, const char *help,
                              const struct ews_histogram *h)
{
        uint64_t cumulative = 0;
        int i;

        metrics_help(fp, name, "histogram", help);
        for (i = 0; i < h->bound_cnt; i++) {
                cumulative += h->counts[i];
                fprintf(fp, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                        (unsigned long long)cumulative);
        }
        cumulative += h->counts[h->bound_cnt];
        fprintf(fp, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                (unsigned long long)cumulative);
        fprintf(fp, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name,
                (unsigned long long)h->count);
}

static void metrics_counter(FILE *fp, const char *name, const char *help,
                            int64_t value)
{
        metrics_help(fp, name, "counter", help);
        fprintf(fp, "%s %lld\n", name, (long long)value);
}

static void metrics_gauge(FILE *fp, const char *name, const char *help,
                          double value)
{
        metrics_help(fp, name, "gauge", help);
        fprintf(fp, "%s %.17g\n", name, value);
}

/* utime + stime (fields 14, 15 of /proc/self/stat) and resident pages. */
static void metrics_process(FILE *fp)
{
        long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        unsigned long long utime = 0, stime = 0, size = 0, resident = 0;
        char buf[1024], *p;
        FILE *stat = fopen("/proc/self/stat", "r");
        int field;

        if (stat) {
                if (fgets(buf, sizeof(buf), stat) && (p = strrchr(buf, ')'))) {
                        /* after "pid (comm)", field 3 on */
                        for (field = 3; p && field < 14; field++)
                                p = strchr(p + 1, ' ');
                        if (p)
                                sscanf(p + 1, "%llu %llu", &utime, &stime);
                }
                fclose(stat);
        }
        stat = fopen("/proc/self/statm", "r");
        if (stat) {
                if (fscanf(stat, "%llu %llu", &size, &resident) != 2)
                        resident = 0;
                fclose(stat);
        }
        metrics_help(fp, "process_cpu_seconds_total", "counter",
                     "User and system CPU time spent in seconds.");
        fprintf(fp, "process_cpu_seconds_total %.2f\n",
                ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0);
        metrics_gauge(fp, "process_resident_memory_bytes",
                      "Resident memory size in bytes.",
                      (double)resident * (double)page);
}

void ews_metrics_render(const struct ews_metrics *m, FILE *fp)
{
        int s, e, r, i;

        metrics_help(fp, "ews_events_consumed_total", "counter",
                     "Messages consumed from the input topics.");
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                fprintf(fp, "ews_events_consumed_total{topic=\"%s\"} %lld\n",
                        m->topics[s], (long long)m->consumed[s]);
        metrics_help(fp, "ews_events_decoded_total", "counter",
                     "Messages decoded and validated.");
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                fprintf(fp, "ews_events_decoded_total{topic=\"%s\"} %lld\n",
                        m->topics[s], (long long)m->decoded[s]);
        metrics_help(fp, "ews_dead_letters_total", "counter",
                     "Messages sent to the dead-letter topic, by reason.");
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (e = 1; e < EWS_DECODE_ERR_COUNT; e++)
                        if (e != EWS_DECODE_RETRY)
                                fprintf(fp,
                                        "ews_dead_letters_total{topic=\"%s\","
                                        "reason=\"%s\"} %lld\n",
                                        m->topics[s], ews_decode_err_name(e),
                                        (long long)m->dead[s][e]);
        metrics_counter(fp, "ews_commits_total",
                        "Fenced Redis commits applied.", m->commits);
        metrics_counter(fp, "ews_fenced_commits_total",
                        "Commits rejected by a fence (a zombie or a replay).",
                        m->fenced);
        metrics_counter(fp, "ews_redis_errors_total",
                        "Redis calls that failed.", m->redis_errors);
        metrics_counter(fp, "ews_redis_reconnects_total",
                        "Connections made to Redis after the first.",
                        m->redis_reconnects);
        metrics_counter(fp, "ews_duplicate_events_total",
                        "Events whose event_id the user had counted.",
                        m->duplicates);
        metrics_counter(fp, "ews_replayed_events_total",
                        "Messages below a partition's fence, skipped.",
                        m->replayed);
        metrics_counter(fp, "ews_registry_retries_total",
                        "Messages that waited for the schema registry.",
                        m->registry_retries);
        metrics_histogram(fp, "ews_redis_commit_duration_seconds",
                          "Time of one partition's fenced commit.",
                          &m->commit_seconds);
        metrics_histogram(fp, "ews_batch_messages",
                          "Messages per consumed batch.", &m->batch_messages);
        metrics_help(fp, "ews_alerts_total", "counter",
                     "Alerts published, by rule and status.");
        for (r = 0; r < EWS_RULE_COUNT; r++)
                for (i = 0; i < 2; i++)
                        fprintf(fp,
                                "ews_alerts_total{rule=\"%s\",status=\"%s\"} "
                                "%lld\n",
                                ews_rule_name(r), i ? "RESOLVED" : "FIRING",
                                (long long)m->alerts[r][i]);
        metrics_help(fp, "ews_alerts_suppressed_total", "counter",
                     "Alerts recorded, not published: older than "
                     "time.max.alert.age.");
        for (r = 0; r < EWS_RULE_COUNT; r++)
                fprintf(fp, "ews_alerts_suppressed_total{rule=\"%s\"} %lld\n",
                        ews_rule_name(r), (long long)m->alerts_too_old[r]);
        metrics_gauge(fp, "ews_outbox_records",
                      "Alerts and dead letters committed to the owned "
                      "outboxes and not yet confirmed delivered.",
                      (double)m->outbox_records);
        metrics_counter(fp, "ews_outbox_sent_total",
                        "Outbox records handed to the producer, resends "
                        "included.",
                        m->outbox_sent);
        metrics_counter(fp, "ews_outbox_resent_total",
                        "Outbox records sent again (after a failure, a "
                        "restart or a rebalance).",
                        m->outbox_resent);
        metrics_counter(fp, "ews_outbox_delivered_total",
                        "Outbox records delivered and deleted.",
                        m->outbox_deleted);
        metrics_counter(fp, "ews_outbox_failures_total",
                        "Outbox records refused by the producer or not "
                        "delivered; they stay and are sent again.",
                        m->outbox_failed);
        metrics_gauge(fp, "ews_producer_queue_messages",
                      "Messages in the producer's queue, not yet "
                      "acknowledged by Kafka.",
                      (double)m->producer_queue);
        metrics_counter(fp, "ews_idle_watermark_advances_total",
                        "Watermarks moved by the idle clock.",
                        m->idle_advances);
        metrics_gauge(fp, "ews_leader",
                      "1 while this instance holds the leader's lease.",
                      m->leader ? 1 : 0);
        metrics_counter(fp, "ews_leader_decisions_total",
                        "Campaign and account cohorts decided by this "
                        "instance as leader.",
                        m->leader_decisions);
        metrics_counter(fp, "ews_user_cache_hits_total",
                        "User reads served by the in-process cache.",
                        m->cache_hits);
        metrics_counter(fp, "ews_user_cache_misses_total",
                        "User reads that went to Redis.", m->cache_misses);
        metrics_gauge(fp, "ews_partitions_assigned",
                      "Input partitions this instance owns.",
                      m->partitions_assigned);
        metrics_gauge(fp, "ews_partitions_paused",
                      "Owned partitions paused (store, registry, lost "
                      "offset).",
                      m->partitions_paused);
        metrics_gauge(fp, "ews_ready", "1 when ready (as /readyz).",
                      m->ready ? 1 : 0);
        metrics_help(fp, "ews_consumer_lag_messages", "gauge",
                     "Messages behind the partition's high watermark.");
        for (i = 0; i < m->partition_cnt; i++)
                if (m->partitions[i].lag >= 0)
                        fprintf(fp,
                                "ews_consumer_lag_messages{topic=\"%s\","
                                "partition=\"%d\"} %lld\n",
                                m->topics[m->partitions[i].source],
                                (int)m->partitions[i].partition,
                                (long long)m->partitions[i].lag);
        metrics_help(fp, "ews_watermark_delay_seconds", "gauge",
                     "Wall clock minus the partition's event-time "
                     "watermark.");
        for (i = 0; i < m->partition_cnt; i++)
                if (m->partitions[i].watermark_delay_s >= 0)
                        fprintf(fp,
                                "ews_watermark_delay_seconds{topic=\"%s\","
                                "partition=\"%d\"} %.3f\n",
                                m->topics[m->partitions[i].source],
                                (int)m->partitions[i].partition,
                                m->partitions[i].watermark_delay_s);
        metrics_process(fp);
}
