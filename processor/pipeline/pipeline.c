#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        p->campaign = calloc(n, sizeof(*p->campaign));
        {
                static const double commit_bounds[] = {
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
                static const double batch_bounds[] = {
                        1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000};

                ews_histogram_init(&p->stats.commit_seconds, commit_bounds, 12);
                ews_histogram_init(&p->stats.batch_messages, batch_bounds, 10);
        }
        batch_table_init(&p->users, sizeof(struct batch_user));
        batch_table_init(&p->accounts, sizeof(struct ews_account_delta));
        batch_table_init(&p->campaigns, sizeof(struct ews_campaign_delta));
        batch_table_init(&p->cohorts, sizeof(struct batch_cohort));
        p->store_reconnects = ews_store_stats(store).reconnects;
        p->time_mode = !strcmp(config->time_mode, "event")  ? TIME_EVENT
                       : !strcmp(config->time_mode, "wall") ? TIME_WALL
                                                            : TIME_AUTO;
        if (!p->items || !p->usage || !p->campaign)
                goto nomem;
        p->delivery = ews_delivery_new(config, decoder, store, out,
                                       p->time_mode == TIME_EVENT, &p->stats,
                                       errstr, errstr_size);
        if (!p->delivery)
                goto fail;
        p->leader = ews_leader_new(config, store, p->delivery, &p->stats,
                                   errstr, errstr_size);
        if (!p->leader)
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
        free(p->campaign);
        free(p->load);
        free(p->commit_users);
        free(p->alerts);
        free(p->dead);
        free(p->commit_cohorts);
        ews_delivery_destroy(p->delivery);
        ews_leader_destroy(p->leader);
        batch_table_free(&p->cohorts);
        batch_table_free(&p->users);
        batch_table_free(&p->accounts);
        batch_table_free(&p->campaigns);
        timer_heap_free(&p->heap);
        free(p);
}

void ews_pipeline_set_input(struct ews_pipeline *p, struct ews_in_kafka *in)
{
        p->in = in;
}

const struct ews_pipeline_stats *
ews_pipeline_stats(const struct ews_pipeline *p)
{
        return &p->stats;
}

/* Takes a new epoch and reads the fence. */
static bool pipeline_claim(struct ews_pipeline *p, enum ews_source source,
                           int32_t partition)
{
        struct pipeline_part *part = &p->parts[source][partition];
        struct ews_fence fence;
        char errstr[512];

        if (ews_store_fence_claim(p->store, source, partition, &fence, errstr,
                                  sizeof(errstr)) != EWS_STORE_OK) {
                p->stats.store_errors++;
                ews_warn("pipeline", "%s [%d]: claim: %s",
                         p->config->topics[source], (int)partition, errstr);
                part->claimed = false;
                return false;
        }
        part->claimed = true;
        part->epoch = fence.epoch;
        part->next_offset = fence.next_offset;
        part->watermark_ms = fence.watermark_ms;
        part->idle_ms = fence.idle_ms;
        ews_info("pipeline", "%s [%d]: epoch %lld, next offset %lld",
                 p->config->topics[source], (int)partition,
                 (long long)fence.epoch, (long long)fence.next_offset);
        if (fence.next_offset >= 0) {
                part->worked = true;
        } else if (part->worked) {
                p->stats.fences_lost++;
                ews_warn("pipeline",
                         "%s [%d]: the fence is gone though this group has "
                         "committed here (Redis lost its last writes): "
                         "replaying from the first offset the broker has",
                         p->config->topics[source], (int)partition);
        }
        /* What an earlier owner committed and did not see delivered goes
         * out again before anything new is committed. */
        ews_delivery_resend(p->delivery,
                            (struct ews_outbox_ref){(int)source, partition});
        return true;
}

/* Where a claimed partition goes on: its fence; from the first offset
 * the broker has where the fence was lost; else fallback (-1: where it
 * is). */
static int64_t pipeline_resume_offset(const struct pipeline_part *part,
                                      int64_t fallback)
{
        if (part->next_offset >= 0)
                return part->next_offset;
        return part->worked ? EWS_OFFSET_BEGINNING : fallback;
}

static void pipeline_assigned(void *opaque, enum ews_source source,
                              int32_t partition, int64_t committed,
                              int64_t *offset)
{
        struct ews_pipeline *p = opaque;
        struct pipeline_part *part = &p->parts[source][partition];

        memset(part, 0, sizeof(*part));
        part->assigned = true;
        part->rewind = -1;
        part->worked = committed >= 0;
        if (!pipeline_claim(p, source, partition)) {
                /* Consumed messages are skipped until cron claims it. */
                part->recovering = true;
                return;
        }
        *offset = pipeline_resume_offset(part, EWS_OFFSET_DEFAULT);
}

static void pipeline_revoked(void *opaque, enum ews_source source,
                             int32_t partition)
{
        struct ews_pipeline *p = opaque;

        memset(&p->parts[source][partition], 0, sizeof(p->parts[0][0]));
        /* Its next owner writes these users now. */
        if (source == EWS_SOURCE_USAGE)
                ews_store_cache_drop(p->store, partition);
}

static void pipeline_failed(void *opaque, enum ews_source source,
                            int32_t partition, const char *reason)
{
        struct ews_pipeline *p = opaque;
        struct pipeline_part *part = &p->parts[source][partition];

        (void)reason;
        part->failed = true;
        part->paused = true;
}

struct ews_in_kafka_cb ews_pipeline_callbacks(struct ews_pipeline *p)
{
        struct ews_in_kafka_cb cb = {pipeline_assigned, pipeline_revoked,
                                     pipeline_failed, p};
        return cb;
}

/* Between consume calls: claim anew and go back to the fence. A partition
 * that cannot be claimed is paused until cron manages. */
void pipeline_recover(struct ews_pipeline *p, enum ews_source source,
                      int32_t partition, int64_t rewind_offset)
{
        struct pipeline_part *part = &p->parts[source][partition];
        int64_t offset;

        part->recovering = true;
        /* Going back to the fence replaces waiting at a later message. */
        part->blocked = false;
        part->backoff_ms = 0;
        if (part->rewind < 0)
                part->rewind = rewind_offset;
        if (!pipeline_claim(p, source, partition)) {
                if (!part->paused &&
                    !ews_in_kafka_pause(p->in, source, partition, true))
                        part->paused = true;
                return;
        }
        offset = pipeline_resume_offset(part, part->rewind);
        if (offset != -1 && ews_in_kafka_seek(p->in, source, partition, offset))
                return; /* try again at the next cron */
        part->rewind = -1;
        if (part->paused &&
            !ews_in_kafka_pause(p->in, source, partition, false))
                part->paused = false;
        part->recovering = false;
}

/* Whether outbox ref is this instance's to send now. */
static bool pipeline_outbox_owned(void *opaque, struct ews_outbox_ref ref)
{
        const struct ews_pipeline *p = opaque;
        const struct pipeline_part *part;

        if (ref.source == EWS_OUTBOX_LEADER)
                return ews_leader_held(p->leader);
        if (ref.source < 0 || ref.source >= EWS_SOURCE_COUNT ||
            ref.partition < 0 || ref.partition >= EWS_PARTITIONS_MAX)
                return false;
        part = &p->parts[ref.source][ref.partition];
        return part->assigned && part->claimed && !part->recovering;
}

/* The records every outbox this instance owns holds, sent or not. */
static void pipeline_outbox_measure(struct ews_pipeline *p)
{
        struct ews_outbox_key keys[EWS_SOURCE_COUNT * EWS_PARTITIONS_MAX + 1];
        size_t cnt = 0;
        int s, i;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++)
                        if (p->parts[s][i].assigned && p->parts[s][i].claimed)
                                keys[cnt++] =
                                        (struct ews_outbox_key){{s, i}, NULL};
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
        bool quiet;
        int s, i;

        ews_delivery_poll(p->delivery);
        if (periodic)
                ews_delivery_retry_failed(p->delivery, pipeline_outbox_owned,
                                          p);
        /* In flight means its report is still to come: a look at a whole
         * outbox now would send it twice, so a full look waits for a
         * moment with nothing in flight. */
        quiet = ews_delivery_quiet(p->delivery);
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        struct pipeline_part *part = &p->parts[s][i];

                        if (!part->assigned || !part->claimed ||
                            part->recovering || !periodic || !quiet)
                                continue;
                        ews_delivery_resend(p->delivery,
                                            (struct ews_outbox_ref){s, i});
                }
        ews_leader_outbox_cron(p->leader, periodic && quiet);
        pipeline_outbox_measure(p);
}

void ews_pipeline_tick(struct ews_pipeline *p, int64_t now_ms, int64_t mono_ms)
{
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

void ews_pipeline_finish(struct ews_pipeline *p)
{
        pipeline_outbox_cron(p, false);
        ews_leader_release(p->leader);
}

/* After a reconnect Redis may have lost its last writes (a restart that
 * replayed an AOF short of its last second, a failover to a replica
 * behind): every owned partition goes back to its fence, if there is
 * nothing new to consume too. */
static void pipeline_reconnected(struct ews_pipeline *p)
{
        int64_t reconnects = ews_store_stats(p->store).reconnects;
        int s, i;

        if (reconnects == p->store_reconnects)
                return;
        p->store_reconnects = reconnects;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        struct pipeline_part *part = &p->parts[s][i];

                        if (part->assigned && !part->failed)
                                part->recovering = true;
                }
}

bool ews_pipeline_fences_current(struct ews_pipeline *p)
{
        bool current = true;
        char errstr[512];
        int64_t offset;
        int s, i;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        struct pipeline_part *part = &p->parts[s][i];

                        if (!part->assigned || part->failed ||
                            part->recovering || part->next_offset < 0)
                                continue;
                        if (ews_store_fence_read(
                                    p->store, (enum ews_source)s, i, &offset,
                                    errstr, sizeof(errstr)) != EWS_STORE_OK) {
                                p->stats.store_errors++;
                                ews_warn("pipeline", "%s", errstr);
                                return false;
                        }
                        if (offset >= part->next_offset)
                                continue;
                        ews_warn("pipeline",
                                 "%s [%d]: the fence went back from %lld to "
                                 "%lld: replaying",
                                 p->config->topics[s], i,
                                 (long long)part->next_offset,
                                 (long long)offset);
                        pipeline_recover(p, (enum ews_source)s, i, -1);
                        current = false;
                }
        return current;
}

void ews_pipeline_cron(struct ews_pipeline *p, int64_t mono_ms)
{
        int s, i;

        p->mono_ms = mono_ms;
        pipeline_reconnected(p);
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        struct pipeline_part *part = &p->parts[s][i];

                        if (!part->assigned)
                                continue;
                        if (part->recovering)
                                pipeline_recover(p, (enum ews_source)s, i, -1);
                        else if (part->blocked && part->paused &&
                                 mono_ms >= part->retry_at_ms &&
                                 !ews_in_kafka_pause(p->in, (enum ews_source)s,
                                                     i, false)) {
                                part->paused = false;
                                part->blocked = false;
                        }
                }
}

bool ews_pipeline_recovering(const struct ews_pipeline *p)
{
        int s, i;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++)
                        if (p->parts[s][i].assigned &&
                            (p->parts[s][i].recovering ||
                             p->parts[s][i].blocked))
                                return true;
        return false;
}

/* Kept for the partition's commit, which puts it in the outbox. */
static void pipeline_dead_letter(struct ews_pipeline *p, int i,
                                 const struct ews_msg *msg,
                                 enum ews_decode_err err, const char *detail)
{
        struct batch_dead *dead;

        p->stats.dead[msg->source][err]++;
        ews_debug("pipeline", "dead letter %s [%d] @%lld: %s: %s",
                  p->config->topics[msg->source], (int)msg->partition,
                  (long long)msg->offset, ews_decode_err_name(err), detail);
        if (!ews_grow((void **)&p->dead, &p->dead_cap, p->dead_cnt + 1,
                      sizeof(*p->dead))) {
                ews_err("pipeline", "out of memory");
                return;
        }
        dead = &p->dead[p->dead_cnt++];
        dead->msg = i;
        dead->err = err;
        snprintf(dead->detail, sizeof(dead->detail), "%s", detail);
}

static int pipeline_user_add(struct ews_pipeline *p, const char *user_id,
                             int32_t partition)
{
        bool added;
        int i = batch_table_add(&p->users, user_id, &added);

        if (i >= 0 && added)
                pipeline_user(p, (size_t)i)->partition = partition;
        return i;
}

/* Decodes msg into the batch, or sends it to the dead-letter topic. */
static void pipeline_decode(struct ews_pipeline *p, int i,
                            const struct ews_msg *msg)
{
        struct batch_item *item = &p->items[i];
        struct pipeline_part *part = &p->parts[msg->source][msg->partition];
        enum ews_decode_err err;
        char errstr[256];
        int64_t t;

        item->event = i;
        if (msg->source == EWS_SOURCE_USAGE) {
                err = ews_decode_usage(p->decoder, msg->value, msg->value_len,
                                       p->now_ms, &p->usage[i], errstr,
                                       sizeof(errstr));
                t = p->usage[i].occurred_at_ms;
        } else {
                err = ews_decode_campaign(
                        p->decoder, msg->value, msg->value_len, p->now_ms,
                        &p->campaign[i], errstr, sizeof(errstr));
                t = p->campaign[i].occurred_at_ms;
        }
        if (err == EWS_DECODE_RETRY) {
                /* Not bad input: stop this partition here for now. */
                item->kind = ITEM_SKIP;
                part->batch_next = msg->offset;
                part->blocked = true;
                part->blocked_offset = msg->offset;
                p->stats.registry_retries++;
                ews_warn("pipeline", "%s [%d] @%lld: %s",
                         p->config->topics[msg->source], (int)msg->partition,
                         (long long)msg->offset, errstr);
                return;
        }
        if (err) {
                item->kind = ITEM_DEAD;
                pipeline_dead_letter(p, i, msg, err, errstr);
                return;
        }
        part->backoff_ms = 0;
        p->stats.decoded[msg->source]++;
        if (t > part->batch_max_ms)
                part->batch_max_ms = t;
        if (msg->source == EWS_SOURCE_CAMPAIGN) {
                item->kind = ITEM_CAMPAIGN;
                return;
        }
        item->kind = ITEM_USAGE;
        item->user = pipeline_user_add(p, p->usage[i].user_id, msg->partition);
        if (item->user < 0) {
                ews_err("pipeline", "out of memory");
                item->kind = ITEM_SKIP;
        }
}

/* Admits the messages at or past each partition's fence, in order. */
static void pipeline_admit(struct ews_pipeline *p, const struct ews_msg *msgs,
                           int cnt)
{
        struct pipeline_part *part;
        int i;

        for (i = 0; i < cnt; i++) {
                const struct ews_msg *msg = &msgs[i];

                part = &p->parts[msg->source][msg->partition];
                p->stats.consumed[msg->source]++;
                p->items[i].kind = ITEM_SKIP;
                if (!part->assigned || part->failed)
                        continue;
                if (part->recovering) {
                        if (part->rewind < 0)
                                part->rewind = msg->offset;
                        continue;
                }
                if (part->blocked)
                        continue; /* at or behind a message that waits */
                if (!part->in_batch) {
                        part->in_batch = true;
                        part->batch_next = part->next_offset;
                        part->batch_first = msg->offset;
                        part->batch_max_ms = 0;
                }
                /* Offsets can have gaps (compaction, transaction markers):
                 * anything at or past the next expected one is new. */
                if (part->batch_next >= 0 && msg->offset < part->batch_next) {
                        p->stats.replayed++;
                        continue;
                }
                part->batch_next = msg->offset + 1;
                pipeline_decode(p, i, msg);
        }
}

int64_t pipeline_watermark(const struct ews_pipeline *p, int64_t watermark_ms,
                           int64_t event_ms)
{
        int64_t w = (p->time_mode == TIME_WALL ? p->now_ms : event_ms) -
                    p->config->allowed_lateness_ms;

        return w > watermark_ms ? w : watermark_ms;
}

static void pipeline_timer_due(void *opaque, int32_t partition,
                               const char *user_id)
{
        struct ews_pipeline *p = opaque;

        if (pipeline_user_add(p, user_id, partition) < 0)
                ews_err("pipeline", "out of memory");
}

/* Loads every user the batch needs: those of its events and those whose
 * timers are due by the partitions' new watermarks. */
static bool pipeline_load(struct ews_pipeline *p)
{
        size_t due = 0;
        int32_t k;

        for (k = 0; k < EWS_PARTITIONS_MAX; k++) {
                struct pipeline_part *part = &p->parts[EWS_SOURCE_USAGE][k];

                if (!part->in_batch || !part->batch_max_ms)
                        continue;
                p->due_partitions[due] = k;
                p->due_upto[due++] = pipeline_watermark(p, part->watermark_ms,
                                                        part->batch_max_ms);
        }
        return pipeline_load_users(p, due);
}

bool pipeline_load_users(struct ews_pipeline *p, size_t due)
{
        enum ews_store_result result;
        char errstr[512];
        size_t i;

        result = ews_store_timers_due(p->store, p->due_partitions, p->due_upto,
                                      due, pipeline_timer_due, p, errstr,
                                      sizeof(errstr));
        if (result == EWS_STORE_OK && p->users.cnt) {
                if (!ews_grow((void **)&p->load, &p->load_cap, p->users.cnt,
                              sizeof(*p->load)))
                        return false;
                for (i = 0; i < p->users.cnt; i++)
                        memcpy(p->load[i].user_id,
                               pipeline_user(p, i)->user.user_id, EWS_ID_MAX);
                result = ews_store_users_load(p->store, p->load, p->users.cnt,
                                              errstr, sizeof(errstr));
                for (i = 0; result == EWS_STORE_OK && i < p->users.cnt; i++)
                        pipeline_user(p, i)->user = p->load[i];
        }
        if (result != EWS_STORE_OK) {
                p->stats.store_errors++;
                ews_warn("pipeline", "load: %s", errstr);
                return false;
        }
        return true;
}

/* Between consume calls: back to the message that waits, paused until
 * its retry, each retry waiting twice as long up to 30 s. */
static void pipeline_block(struct ews_pipeline *p, enum ews_source source,
                           int32_t partition)
{
        struct pipeline_part *part = &p->parts[source][partition];

        part->backoff_ms = part->backoff_ms ? part->backoff_ms * 2 : 1000;
        if (part->backoff_ms > 30000)
                part->backoff_ms = 30000;
        part->retry_at_ms = p->mono_ms + part->backoff_ms;
        if (ews_in_kafka_seek(p->in, source, partition, part->blocked_offset) ||
            ews_in_kafka_pause(p->in, source, partition, true)) {
                /* cannot hold it here: go back to the fence instead */
                part->blocked = false;
                pipeline_recover(p, source, partition, part->blocked_offset);
                return;
        }
        part->paused = true;
        ews_warn("pipeline", "%s [%d]: paused at %lld, retrying in %llds",
                 p->config->topics[source], (int)partition,
                 (long long)part->blocked_offset,
                 (long long)(part->backoff_ms / 1000));
}

void ews_pipeline_run(struct ews_pipeline *p, const struct ews_msg *msgs,
                      int cnt, int64_t now_ms, int64_t mono_ms)
{
        int s, k;

        p->now_ms = now_ms;
        p->mono_ms = mono_ms;
        p->stats.batches++;
        ews_histogram_observe(&p->stats.batch_messages, cnt);
        batch_table_reset(&p->users);
        p->dead_cnt = 0;
        pipeline_admit(p, msgs, cnt);

        if (!pipeline_load(p)) {
                for (s = 0; s < EWS_SOURCE_COUNT; s++)
                        for (k = 0; k < EWS_PARTITIONS_MAX; k++)
                                if (p->parts[s][k].in_batch)
                                        pipeline_recover(
                                                p, (enum ews_source)s, k,
                                                p->parts[s][k].batch_first);
                goto done;
        }
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (k = 0; k < EWS_PARTITIONS_MAX; k++)
                        if (p->parts[s][k].in_batch &&
                            !p->parts[s][k].recovering &&
                            p->parts[s][k].batch_next !=
                                    p->parts[s][k].next_offset)
                                pipeline_partition(
                                        p, msgs, cnt, (enum ews_source)s, k,
                                        pipeline_watermark(
                                                p, p->parts[s][k].watermark_ms,
                                                0));
done:
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (k = 0; k < EWS_PARTITIONS_MAX; k++) {
                        struct pipeline_part *part = &p->parts[s][k];

                        if (part->in_batch && part->blocked && !part->paused)
                                pipeline_block(p, (enum ews_source)s, k);
                        part->in_batch = false;
                }
}

int ews_pipeline_partitions(const struct ews_pipeline *p,
                            struct ews_partition_metrics *out, int max,
                            int64_t now_ms, int *paused)
{
        int s, i, cnt = 0;

        *paused = 0;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        const struct pipeline_part *part = &p->parts[s][i];

                        if (!part->assigned)
                                continue;
                        *paused += part->paused || part->recovering ||
                                   part->failed;
                        if (cnt == max)
                                continue;
                        out[cnt].source = (enum ews_source)s;
                        out[cnt].partition = i;
                        out[cnt].lag = -1;
                        out[cnt].watermark_delay_s =
                                part->watermark_ms
                                        ? (double)(now_ms -
                                                   part->watermark_ms) /
                                                  1000.0
                                        : -1.0;
                        cnt++;
                }
        return cnt;
}
