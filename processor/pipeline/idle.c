/* Watermarks without events. A partition read to its end (caught up)
 * moves on without them: in time.mode auto with the wall clock since its
 * last event, and in auto and event at least to the largest watermark of
 * the usage topic, since what it has not received yet will be late when
 * it comes; in time.mode wall every partition's watermark is the wall
 * clock. So a quiet or empty partition, of either input topic, does not
 * hold the leader's days back, while one that nobody has read to its end
 * does. In time.mode event a partition of live input is at its end between
 * any two events, and what it does then must not depend on when it was
 * read: it follows only once the input has ended (--exit-at-end), or once
 * it has had no new input for time.idle.timeout. The advance is committed
 * like a batch, with the timers it fires. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <string.h>

/* Smaller advances of the clock wait for the next tick; an advance to the
 * usage topic's largest watermark (time.mode event) is made whole, so a
 * backfill ends with the same timers fired however it was partitioned. */
#define TIME_IDLE_STEP_MS 1000

static int64_t time_idle_clock(const struct ews_pipeline *p,
                               const struct pipeline_part *part)
{
        int64_t now_wm = p->now_ms - p->config->allowed_lateness_ms;

        if (p->time_mode == EWS_TIME_WALL || !part->watermark_ms)
                return now_wm; /* never had an event: now is all there is */
        return part->watermark_ms +
               (p->now_ms - (part->idle_ms ? part->idle_ms : p->now_ms));
}

/* The largest stored watermark of the usage topic, read once a tick (*max
 * below 0: not yet); 0 when unknown. */
static int64_t time_usage_max(struct ews_pipeline *p, int64_t *max)
{
        int64_t min;
        char errstr[256];

        if (*max >= 0)
                return *max;
        if (ews_store_watermarks(p->store, EWS_SOURCE_USAGE, &min, max, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("pipeline", "watermarks: %s", errstr);
                *max = 0;
        }
        return *max;
}

/* Where the partition's watermark goes without events; at most where it
 * is when it does not move. */
static int64_t time_idle_target(struct ews_pipeline *p,
                                const struct pipeline_part *part,
                                int64_t *usage_max)
{
        int64_t target = p->time_mode == EWS_TIME_EVENT
                                 ? part->watermark_ms
                                 : time_idle_clock(p, part);
        int64_t furthest;

        if (p->time_mode == EWS_TIME_WALL)
                return target;
        furthest = time_usage_max(p, usage_max);
        return furthest > target ? furthest : target;
}

/* Event mode: a partition at its end has nothing more to come once the
 * input has ended, or once it has been quiet for time.idle.timeout; until
 * then its next event decides where its watermark goes. */
static bool time_idle_settled(const struct ews_pipeline *p,
                              struct pipeline_part *part)
{
        if (!part->quiet_ms)
                part->quiet_ms = p->mono_ms ? p->mono_ms : 1;
        return p->bounded ||
               p->mono_ms - part->quiet_ms >= p->config->idle_timeout_ms;
}

/* A lagging, paused or just assigned partition is not idle: its events
 * will move its watermark. */
static bool time_idle(const struct ews_pipeline *p, struct pipeline_part *part)
{
        if (!part->claimed || part->recovering || part->paused ||
            part->failed || part->blocked)
                return false;
        if (p->time_mode == EWS_TIME_WALL)
                return true;
        if (!ews_in_kafka_partition_at_end(p->in, part->source,
                                           part->partition)) {
                part->quiet_ms = 0;
                return false;
        }
        return p->time_mode == EWS_TIME_AUTO || time_idle_settled(p, part);
}

void pipeline_idle(struct ews_pipeline *p)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        int32_t campaign[EWS_PARTITIONS_MAX];
        int64_t campaign_upto[EWS_PARTITIONS_MAX];
        int64_t target, usage_max = -1;
        size_t due = 0, campaign_cnt = 0, i;

        if (!p->in)
                return;
        while ((part = ews_partitions_next(p->parts, &it))) {
                if (!time_idle(p, part))
                        continue;
                target = time_idle_target(p, part, &usage_max);
                if (target - part->watermark_ms <
                    (p->time_mode == EWS_TIME_EVENT ? 1 : TIME_IDLE_STEP_MS))
                        continue;
                if (part->source == EWS_SOURCE_USAGE) {
                        p->due_partitions[due] = part->partition;
                        p->due_from[due] = part->watermark_ms;
                        p->due_upto[due++] = target;
                } else {
                        campaign[campaign_cnt] = part->partition;
                        campaign_upto[campaign_cnt++] = target;
                }
        }
        if (!due && !campaign_cnt)
                return;
        batch_table_reset(&p->users);
        p->dead_cnt = 0;
        if (!pipeline_load_users(p, due))
                return;
        pipeline_round_begin(p);
        for (i = 0; i < due + campaign_cnt; i++) {
                enum ews_source source =
                        i < due ? EWS_SOURCE_USAGE : EWS_SOURCE_CAMPAIGN;
                int32_t partition =
                        i < due ? p->due_partitions[i] : campaign[i - due];

                part = ews_partitions_get(p->parts, source, partition);
                part->batch_next = part->next_offset;
                part->batch_first = part->next_offset;
                p->stats.idle_advances++;
                pipeline_partition(p, false, source, partition,
                                   i < due ? p->due_upto[i]
                                           : campaign_upto[i - due]);
        }
        pipeline_round_finish(p);
}
