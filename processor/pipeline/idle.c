/* Watermarks without events: a caught-up partition's advances with the
 * wall clock (time.mode auto), or every partition's is the wall clock
 * (time.mode wall). The advance is committed like a batch, with the timers
 * it fires. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <string.h>

#define TIME_IDLE_STEP_MS 1000 /* smaller advances wait for the next tick */

static int64_t time_idle_target(const struct ews_pipeline *p,
                                const struct pipeline_part *part)
{
        int64_t now_wm = p->now_ms - p->config->allowed_lateness_ms;

        if (p->time_mode == EWS_TIME_WALL || !part->watermark_ms)
                return now_wm; /* never had an event: now is all there is */
        return part->watermark_ms +
               (p->now_ms - (part->idle_ms ? part->idle_ms : p->now_ms));
}

void pipeline_idle(struct ews_pipeline *p)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        int64_t target;
        size_t due = 0, i;

        if (p->time_mode == EWS_TIME_EVENT || !p->in)
                return;
        while ((part = ews_partitions_next(p->parts, &it))) {
                /* A lagging, paused or just assigned partition is not
                 * idle: its events will move its watermark. */
                if (part->source != EWS_SOURCE_USAGE || !part->claimed ||
                    part->recovering || part->paused || part->failed ||
                    part->blocked ||
                    (p->time_mode == EWS_TIME_AUTO &&
                     !ews_in_kafka_partition_at_end(p->in, EWS_SOURCE_USAGE,
                                                    part->partition)))
                        continue;
                target = time_idle_target(p, part);
                if (target - part->watermark_ms < TIME_IDLE_STEP_MS)
                        continue;
                p->due_partitions[due] = part->partition;
                p->due_from[due] = part->watermark_ms;
                p->due_upto[due++] = target;
        }
        if (!due)
                return;
        batch_table_reset(&p->users);
        p->dead_cnt = 0;
        if (!pipeline_load_users(p, due))
                return;
        pipeline_round_begin(p);
        for (i = 0; i < due; i++) {
                part = ews_partitions_get(p->parts, EWS_SOURCE_USAGE,
                                          p->due_partitions[i]);

                part->batch_next = part->next_offset;
                part->batch_first = part->next_offset;
                p->stats.idle_advances++;
                pipeline_partition(p, NULL, 0, EWS_SOURCE_USAGE,
                                   p->due_partitions[i], p->due_upto[i]);
        }
        pipeline_round_finish(p);
}
