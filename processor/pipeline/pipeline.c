#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool pipeline_io_claim(void *opaque, enum ews_source source,
                              int32_t partition, struct ews_fence *fence,
                              char *errstr, size_t errstr_size)
{
        struct ews_pipeline *p = opaque;

        return ews_store_fence_claim(p->store, source, partition, fence, errstr,
                                     errstr_size) == EWS_STORE_OK;
}

static bool pipeline_io_fence_read(void *opaque, enum ews_source source,
                                   int32_t partition, int64_t *next_offset,
                                   char *errstr, size_t errstr_size)
{
        struct ews_pipeline *p = opaque;

        return ews_store_fence_read(p->store, source, partition, next_offset,
                                    errstr, errstr_size) == EWS_STORE_OK;
}

static int pipeline_io_seek(void *opaque, enum ews_source source,
                            int32_t partition, int64_t offset)
{
        struct ews_pipeline *p = opaque;

        return ews_in_kafka_seek(p->in, source, partition, offset);
}

static int pipeline_io_pause(void *opaque, enum ews_source source,
                             int32_t partition, bool pause)
{
        struct ews_pipeline *p = opaque;

        return ews_in_kafka_pause(p->in, source, partition, pause);
}

static void pipeline_io_claimed(void *opaque, enum ews_source source,
                                int32_t partition)
{
        struct ews_pipeline *p = opaque;

        ews_delivery_resend(p->delivery,
                            (struct ews_outbox_ref){(int)source, partition});
}

/* The partitions' way to the store, the consumer and the outboxes. */
static struct ews_partitions *pipeline_partitions_new(struct ews_pipeline *p,
                                                      char *errstr,
                                                      size_t errstr_size)
{
        struct ews_partitions_io io = {
                pipeline_io_claim, pipeline_io_fence_read, pipeline_io_seek,
                pipeline_io_pause, pipeline_io_claimed,    p};
        struct ews_partitions *parts = ews_partitions_new(
                p->config, &io, &p->stats, errstr, errstr_size);

        if (parts)
                ews_partitions_reconnected(
                        parts, ews_store_stats(p->store).reconnects);
        return parts;
}

struct ews_pipeline *ews_pipeline_new(const struct ews_config *config,
                                      struct ews_decoder *decoder,
                                      struct ews_store *store,
                                      struct ews_out_kafka *out, char *errstr,
                                      size_t errstr_size)
{
        struct ews_pipeline *p = calloc(1, sizeof(*p));
        size_t n = (size_t)config->batch_max;

        if (!p)
                goto nomem;
        p->config = config;
        p->decoder = decoder;
        p->store = store;
        p->out = out;
        p->items = calloc(n, sizeof(*p->items));
        p->usage = calloc(n, sizeof(*p->usage));
        {
                static const double commit_bounds[] = {
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
                /* up to kafka.batch.max's largest: a full batch of the
                 * default (64000) apart from one of 32000 */
                static const double batch_bounds[] = {
                        1,    10,   50,    100,   250,   500,   1000,
                        2000, 5000, 10000, 20000, 50000, 100000};

                ews_histogram_init(&p->stats.commit_seconds, commit_bounds, 12);
                ews_histogram_init(&p->stats.batch_messages, batch_bounds,
                                   sizeof(batch_bounds) /
                                           sizeof(batch_bounds[0]));
        }
        batch_table_init(&p->users, sizeof(struct batch_user));
        batch_table_init(&p->campaigns, sizeof(struct ews_campaign_delta));
        batch_table_init(&p->cohorts, sizeof(struct batch_cohort));
        batch_table_init(&p->funnel, sizeof(struct ews_funnel_delta));
        p->time_mode = config->time_mode;
        if (!p->items || !p->usage)
                goto nomem;
        p->delivery = ews_delivery_new(config, decoder, store, out,
                                       p->time_mode == EWS_TIME_EVENT,
                                       &p->stats, errstr, errstr_size);
        if (!p->delivery)
                goto fail;
        p->leader = ews_leader_new(config, store, p->delivery, &p->stats,
                                   errstr, errstr_size);
        if (!p->leader)
                goto fail;
        p->parts = pipeline_partitions_new(p, errstr, errstr_size);
        if (!p->parts)
                goto fail;
        return p;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
fail:
        ews_pipeline_destroy(p);
        return NULL;
}

void ews_pipeline_destroy(struct ews_pipeline *p)
{
        if (!p)
                return;
        free(p->items);
        free(p->usage);
        free(p->attr_arena);
        free(p->text);
        free(p->campaign);
        free(p->load);
        free(p->values);
        free(p->part_state);
        free(p->part_users);
        free(p->commit_users);
        free(p->alerts);
        free(p->pending);
        free(p->dead);
        free(p->dead_bytes);
        free(p->commit_cohorts);
        ews_delivery_destroy(p->delivery);
        ews_leader_destroy(p->leader);
        ews_partitions_destroy(p->parts);
        batch_table_free(&p->cohorts);
        batch_table_free(&p->funnel);
        free(p->commit_segments);
        free(p->gauges);
        batch_table_free(&p->users);
        batch_table_free(&p->campaigns);
        timer_heap_free(&p->heap);
        free(p);
}

void ews_pipeline_set_input(struct ews_pipeline *p, struct ews_in_kafka *in)
{
        p->in = in;
}

void ews_pipeline_set_bounded(struct ews_pipeline *p, bool bounded)
{
        p->bounded = bounded;
}

const struct ews_pipeline_stats *
ews_pipeline_stats(const struct ews_pipeline *p)
{
        return &p->stats;
}

static void pipeline_assigned(void *opaque, enum ews_source source,
                              int32_t partition, int64_t committed,
                              int64_t *offset)
{
        struct ews_pipeline *p = opaque;

        pipeline_settle(p, true);
        ews_partitions_assigned(p->parts, source, partition, committed, offset);
}

static void pipeline_revoked(void *opaque, enum ews_source source,
                             int32_t partition)
{
        struct ews_pipeline *p = opaque;

        pipeline_settle(p, true);
        ews_partitions_revoked(p->parts, source, partition);
        /* Its next owner writes these users now. */
        if (source == EWS_SOURCE_USAGE)
                ews_store_cache_drop(p->store, partition);
}

static void pipeline_failed(void *opaque, enum ews_source source,
                            int32_t partition, const char *reason)
{
        struct ews_pipeline *p = opaque;

        (void)reason;
        pipeline_settle(p, true);
        ews_partitions_failed(p->parts, source, partition);
}

struct ews_in_kafka_cb ews_pipeline_callbacks(struct ews_pipeline *p)
{
        struct ews_in_kafka_cb cb = {pipeline_assigned, pipeline_revoked,
                                     pipeline_failed, p};
        return cb;
}

/* Whether outbox ref is this instance's to send now. */
static bool pipeline_outbox_owned(void *opaque, struct ews_outbox_ref ref)
{
        struct ews_pipeline *p = opaque;
        const struct pipeline_part *part;

        if (ref.source == EWS_OUTBOX_LEADER)
                return ews_leader_held(p->leader);
        if (ref.source < 0 || ref.source >= EWS_SOURCE_COUNT ||
            ref.partition < 0 || ref.partition >= EWS_PARTITIONS_MAX)
                return false;
        part = ews_partitions_get(p->parts, (enum ews_source)ref.source,
                                  ref.partition);
        return part->assigned && part->claimed && !part->recovering;
}

/* The records every outbox this instance owns holds, sent or not. */
static void pipeline_outbox_measure(struct ews_pipeline *p)
{
        struct ews_outbox_key keys[EWS_SOURCE_COUNT * EWS_PARTITIONS_MAX + 1];
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        size_t cnt = 0;

        while ((part = ews_partitions_next(p->parts, &it)))
                if (part->claimed)
                        keys[cnt++] = (struct ews_outbox_key){
                                {part->source, part->partition}, NULL};
        if (ews_leader_held(p->leader))
                keys[cnt++] =
                        (struct ews_outbox_key){{EWS_OUTBOX_LEADER, 0}, NULL};
        ews_delivery_measure(p->delivery, keys, cnt);
}

/* Deletes delivered records; resends outboxes due (every resend interval
 * while nothing is in flight, or after one of their records failed);
 * measures what the owned outboxes hold. */
static void pipeline_outbox_cron(struct ews_pipeline *p, bool periodic)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        bool quiet;

        ews_delivery_poll(p->delivery);
        if (periodic)
                ews_delivery_retry_failed(p->delivery, pipeline_outbox_owned,
                                          p);
        /* In flight means its report is still to come: a look at a whole
         * outbox now would send it twice, so a full look waits for a
         * moment with nothing in flight. */
        quiet = ews_delivery_quiet(p->delivery);
        while (periodic && quiet && (part = ews_partitions_next(p->parts, &it)))
                if (part->claimed && !part->recovering)
                        ews_delivery_resend(
                                p->delivery,
                                (struct ews_outbox_ref){part->source,
                                                        part->partition});
        ews_leader_outbox_cron(p->leader, periodic && quiet);
        pipeline_outbox_measure(p);
}

void ews_pipeline_tick(struct ews_pipeline *p, int64_t now_ms, int64_t mono_ms)
{
        pipeline_settle(p, false);
        p->now_ms = now_ms;
        p->mono_ms = mono_ms;
        pipeline_idle(p);
        ews_leader_cron(p->leader, now_ms);
        pipeline_outbox_cron(p, mono_ms >= p->resend_at_ms);
        if (mono_ms >= p->resend_at_ms)
                p->resend_at_ms = mono_ms + p->config->outbox_resend_ms;
}

bool ews_pipeline_leader_caught_up(const struct ews_pipeline *p)
{
        return ews_leader_caught_up(p->leader);
}

bool ews_pipeline_leader_behind(const struct ews_pipeline *p)
{
        return ews_leader_behind(p->leader);
}

void ews_pipeline_settle(struct ews_pipeline *p)
{
        pipeline_settle(p, false);
}

void ews_pipeline_finish(struct ews_pipeline *p)
{
        pipeline_settle(p, false);
        pipeline_outbox_cron(p, false);
        ews_leader_release(p->leader);
}

bool ews_pipeline_fences_current(struct ews_pipeline *p)
{
        pipeline_settle(p, false);
        return ews_partitions_fences_current(p->parts);
}

/* After a reconnect Redis may have lost its last writes (a restart that
 * replayed an AOF short of its last second, a failover to a replica
 * behind): every owned partition goes back to its fence, if there is
 * nothing new to consume too. */
void ews_pipeline_cron(struct ews_pipeline *p, int64_t mono_ms)
{
        pipeline_settle(p, false);
        p->mono_ms = mono_ms;
        ews_partitions_reconnected(p->parts,
                                   ews_store_stats(p->store).reconnects);
        ews_partitions_cron(p->parts, mono_ms);
        pipeline_funnel_metrics_cron(p, mono_ms);
}

bool ews_pipeline_recovering(struct ews_pipeline *p)
{
        pipeline_settle(p, false);
        return ews_partitions_recovering(p->parts);
}

/* Loads every user the batch needs: those of its events and those whose
 * timers are due by the partitions' new watermarks. */
static bool pipeline_load(struct ews_pipeline *p)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        size_t due = 0;

        while ((part = ews_partitions_next(p->parts, &it))) {
                if (part->source != EWS_SOURCE_USAGE || !part->in_batch ||
                    !part->batch_max_ms)
                        continue;
                p->due_partitions[due] = part->partition;
                p->due_from[due] = part->watermark_ms;
                p->due_upto[due++] = pipeline_watermark(p, part->watermark_ms,
                                                        part->batch_max_ms);
        }
        return pipeline_load_users(p, due);
}

/* A partition's share of the batch taken in while the round before was
 * in flight, where that round did not end where the share takes up (its
 * commit there failed: the partition went back to its fence, or waits to)
 * is not applied: the partition reads it again from its fence. */
static void pipeline_drop_stale(struct ews_pipeline *p)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;

        while ((part = ews_partitions_next(p->parts, &it)))
                if (part->in_batch && part->batch_from != part->next_offset)
                        part->in_batch = false;
}

void ews_pipeline_run(struct ews_pipeline *p, const struct ews_msg *msgs,
                      int cnt, int64_t now_ms, int64_t mono_ms)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        bool loaded;

        p->now_ms = now_ms;
        p->mono_ms = mono_ms;
        p->stats.batches++;
        ews_histogram_observe(&p->stats.batch_messages, cnt);
        batch_table_reset(&p->users);
        p->dead_cnt = 0;
        p->dead_bytes_used = 0;
        pipeline_admit(p, msgs, cnt);
        /* What the batch needs of its messages is now its own: librdkafka's
         * copies go at once rather than after the round (64000 of them
         * are some 25 MB; the consumer's queue refills meanwhile). */
        if (p->in)
                ews_in_kafka_release(p->in);
        /* The round before was with Redis while this batch came in. */
        p->stats.rounds_overlapped += p->inflight;
        pipeline_settle(p, false);
        pipeline_drop_stale(p);

        loaded = pipeline_load(p);
        pipeline_round_begin(p);
        while ((part = ews_partitions_next(p->parts, &it))) {
                if (!part->in_batch)
                        continue;
                if (!loaded)
                        ews_partitions_recover(p->parts, part->source,
                                               part->partition,
                                               part->batch_first);
                else if (!part->recovering &&
                         part->batch_next != part->next_offset)
                        pipeline_partition(
                                p, true, part->source, part->partition,
                                pipeline_watermark(p, part->watermark_ms, 0));
        }
        /* With the next batch already waiting, it is taken in while Redis
         * runs this round; else the round is finished now. */
        pipeline_round_flush(p);
        if (!p->config->batch_overlap || !p->in ||
            ews_in_kafka_ready(p->in) <= 0)
                pipeline_settle(p, false);
        it = (struct ews_partitions_iter)EWS_PARTITIONS_ITER_INIT;
        while ((part = ews_partitions_next(p->parts, &it))) {
                if (part->in_batch && part->blocked && !part->paused)
                        ews_partitions_block(p->parts, part->source,
                                             part->partition, p->mono_ms);
                if (part->in_batch)
                        part->quiet_ms = 0;
                part->in_batch = false;
        }
}

int ews_pipeline_partitions(const struct ews_pipeline *p,
                            struct ews_partition_metrics *out, int max,
                            int64_t now_ms, int *paused)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        const struct pipeline_part *part;
        int cnt = 0;

        *paused = 0;
        while ((part = ews_partitions_next(p->parts, &it))) {
                *paused += part->paused || part->recovering || part->failed;
                if (cnt == max)
                        continue;
                out[cnt].topic = p->config->topics[part->source];
                out[cnt].source = part->source;
                out[cnt].partition = part->partition;
                out[cnt].lag = -1;
                out[cnt].watermark_delay_s =
                        part->watermark_ms
                                ? (double)(now_ms - part->watermark_ms) / 1000.0
                                : -1.0;
                cnt++;
        }
        return cnt;
}
