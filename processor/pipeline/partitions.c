/* The partitions' state machine: claims, recovery, registry backoff. */
#include "pipeline/partitions.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS_BACKOFF_MS     1000  /* the first registry retry */
#define PARTITIONS_BACKOFF_MAX_MS 30000 /* the longest */

struct ews_partitions {
        const struct ews_config *config;
        struct ews_partitions_io io;
        struct ews_pipeline_stats *stats;
        int64_t reconnects; /* as last seen: a change re-reads fences */
        struct pipeline_part parts[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
};

/* Forgets all but which partition it is. */
static void partitions_reset(struct pipeline_part *part)
{
        enum ews_source source = part->source;
        int32_t partition = part->partition;

        memset(part, 0, sizeof(*part));
        part->source = source;
        part->partition = partition;
}

struct ews_partitions *ews_partitions_new(const struct ews_config *config,
                                          const struct ews_partitions_io *io,
                                          struct ews_pipeline_stats *stats,
                                          char *errstr, size_t errstr_size)
{
        struct ews_partitions *parts = calloc(1, sizeof(*parts));
        int s, i;

        if (!parts) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        parts->config = config;
        parts->io = *io;
        parts->stats = stats;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        parts->parts[s][i].source = (enum ews_source)s;
                        parts->parts[s][i].partition = i;
                }
        return parts;
}

void ews_partitions_destroy(struct ews_partitions *parts)
{
        free(parts);
}

struct pipeline_part *ews_partitions_get(struct ews_partitions *parts,
                                         enum ews_source source,
                                         int32_t partition)
{
        return &parts->parts[source][partition];
}

struct pipeline_part *ews_partitions_next(struct ews_partitions *parts,
                                          struct ews_partitions_iter *it)
{
        for (;;) {
                if (++it->partition >= EWS_PARTITIONS_MAX) {
                        it->partition = 0;
                        it->source++;
                }
                if (it->source >= EWS_SOURCE_COUNT)
                        return NULL;
                if (parts->parts[it->source][it->partition].assigned)
                        return &parts->parts[it->source][it->partition];
        }
}

/* A fence without an offset where the group committed before was lost. */
static void partitions_fence_lost(struct ews_partitions *parts,
                                  const struct pipeline_part *part)
{
        parts->stats->fences_lost++;
        ews_warn("pipeline",
                 "%s [%d]: the fence is gone though this group has "
                 "committed here (Redis lost its last writes): "
                 "replaying from the first offset the broker has",
                 parts->config->topics[part->source], (int)part->partition);
}

bool ews_partitions_claim(struct ews_partitions *parts, enum ews_source source,
                          int32_t partition)
{
        struct pipeline_part *part = &parts->parts[source][partition];
        struct ews_fence fence;
        char errstr[512];

        if (!parts->io.claim(parts->io.opaque, source, partition, &fence,
                             errstr, sizeof(errstr))) {
                parts->stats->store_errors++;
                ews_warn("pipeline", "%s [%d]: claim: %s",
                         parts->config->topics[source], (int)partition, errstr);
                part->claimed = false;
                return false;
        }
        part->claimed = true;
        part->epoch = fence.epoch;
        part->next_offset = fence.next_offset;
        part->watermark_ms = fence.watermark_ms;
        part->idle_ms = fence.idle_ms;
        ews_info("pipeline", "%s [%d]: epoch %lld, next offset %lld",
                 parts->config->topics[source], (int)partition,
                 (long long)fence.epoch, (long long)fence.next_offset);
        if (fence.next_offset >= 0)
                part->worked = true;
        else if (part->worked)
                partitions_fence_lost(parts, part);
        parts->io.claimed(parts->io.opaque, source, partition);
        return true;
}

/* Where a claimed partition goes on: its fence; from the first offset
 * the broker has where the fence was lost; else fallback (-1: where it
 * is). */
static int64_t partitions_resume_offset(const struct pipeline_part *part,
                                        int64_t fallback)
{
        if (part->next_offset >= 0)
                return part->next_offset;
        return part->worked ? EWS_OFFSET_BEGINNING : fallback;
}

void ews_partitions_assigned(struct ews_partitions *parts,
                             enum ews_source source, int32_t partition,
                             int64_t committed, int64_t *offset)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        partitions_reset(part);
        part->assigned = true;
        part->rewind = -1;
        part->worked = committed >= 0;
        if (!ews_partitions_claim(parts, source, partition)) {
                /* Consumed messages are skipped until cron claims it. */
                part->recovering = true;
                return;
        }
        *offset = partitions_resume_offset(part, EWS_OFFSET_DEFAULT);
}

void ews_partitions_revoked(struct ews_partitions *parts,
                            enum ews_source source, int32_t partition)
{
        partitions_reset(&parts->parts[source][partition]);
}

void ews_partitions_failed(struct ews_partitions *parts, enum ews_source source,
                           int32_t partition)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->failed = true;
        part->paused = true;
}

static int partitions_pause(struct ews_partitions *parts,
                            const struct pipeline_part *part, bool pause)
{
        return parts->io.pause(parts->io.opaque, part->source, part->partition,
                               pause);
}

void ews_partitions_recover_later(struct ews_partitions *parts,
                                  enum ews_source source, int32_t partition,
                                  int64_t rewind_offset)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->recovering = true;
        /* Going back to the fence replaces waiting at a later message. */
        part->blocked = false;
        part->backoff_ms = 0;
        if (part->rewind < 0)
                part->rewind = rewind_offset;
}

void ews_partitions_recover(struct ews_partitions *parts,
                            enum ews_source source, int32_t partition,
                            int64_t rewind_offset)
{
        struct pipeline_part *part = &parts->parts[source][partition];
        int64_t offset;

        ews_partitions_recover_later(parts, source, partition, rewind_offset);
        if (!ews_partitions_claim(parts, source, partition)) {
                if (!part->paused && !partitions_pause(parts, part, true))
                        part->paused = true;
                return;
        }
        offset = partitions_resume_offset(part, part->rewind);
        if (offset != -1 &&
            parts->io.seek(parts->io.opaque, source, partition, offset))
                return; /* try again at the next cron */
        part->rewind = -1;
        if (part->paused && !partitions_pause(parts, part, false))
                part->paused = false;
        part->recovering = false;
}

void ews_partitions_wait(struct ews_partitions *parts, enum ews_source source,
                         int32_t partition, int64_t offset)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->blocked = true;
        part->blocked_offset = offset;
}

void ews_partitions_registry_ok(struct ews_partitions *parts,
                                enum ews_source source, int32_t partition)
{
        parts->parts[source][partition].backoff_ms = 0;
}

void ews_partitions_block(struct ews_partitions *parts, enum ews_source source,
                          int32_t partition, int64_t mono_ms)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->backoff_ms =
                part->backoff_ms ? part->backoff_ms * 2 : PARTITIONS_BACKOFF_MS;
        if (part->backoff_ms > PARTITIONS_BACKOFF_MAX_MS)
                part->backoff_ms = PARTITIONS_BACKOFF_MAX_MS;
        part->retry_at_ms = mono_ms + part->backoff_ms;
        if (parts->io.seek(parts->io.opaque, source, partition,
                           part->blocked_offset) ||
            partitions_pause(parts, part, true)) {
                /* cannot hold it here: go back to the fence instead */
                part->blocked = false;
                ews_partitions_recover(parts, source, partition,
                                       part->blocked_offset);
                return;
        }
        part->paused = true;
        ews_warn("pipeline", "%s [%d]: paused at %lld, retrying in %llds",
                 parts->config->topics[source], (int)partition,
                 (long long)part->blocked_offset,
                 (long long)(part->backoff_ms / 1000));
}

void ews_partitions_committed(struct ews_partitions *parts,
                              enum ews_source source, int32_t partition,
                              int64_t next_offset, int64_t watermark_ms,
                              int64_t now_ms)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->next_offset = next_offset;
        part->worked = true;
        if (watermark_ms > part->watermark_ms)
                part->watermark_ms = watermark_ms;
        part->idle_ms = now_ms;
}

void ews_partitions_reject(struct ews_partitions *parts, enum ews_source source,
                           int32_t partition, bool later)
{
        struct pipeline_part *part = &parts->parts[source][partition];

        part->failed = true;
        if (!later && !partitions_pause(parts, part, true))
                part->paused = true;
}

/* A failed partition waits for people: when they move its fence by hand
 * (to where the broker has data, or past a batch the store refuses), it
 * is claimed again and goes on from there. */
static void partitions_failed_look(struct ews_partitions *parts,
                                   struct pipeline_part *part)
{
        char errstr[512];
        int64_t offset;

        if (!parts->io.fence_read(parts->io.opaque, part->source,
                                  part->partition, &offset, errstr,
                                  sizeof(errstr))) {
                parts->stats->store_errors++;
                ews_warn("pipeline", "%s", errstr);
                return;
        }
        if (offset < 0 || offset == part->next_offset)
                return;
        ews_warn("pipeline",
                 "%s [%d]: the fence was moved by hand from %lld to %lld: "
                 "going on from there",
                 parts->config->topics[part->source], (int)part->partition,
                 (long long)part->next_offset, (long long)offset);
        part->failed = false;
        ews_partitions_recover(parts, part->source, part->partition, -1);
}

void ews_partitions_cron(struct ews_partitions *parts, int64_t mono_ms)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;

        while ((part = ews_partitions_next(parts, &it))) {
                if (part->failed && !part->paused &&
                    !partitions_pause(parts, part, true))
                        part->paused = true;
                if (part->failed)
                        partitions_failed_look(parts, part);
                else if (part->recovering)
                        ews_partitions_recover(parts, part->source,
                                               part->partition, -1);
                else if (part->blocked && part->paused &&
                         mono_ms >= part->retry_at_ms &&
                         !partitions_pause(parts, part, false)) {
                        part->paused = false;
                        part->blocked = false;
                }
        }
}

void ews_partitions_reconnected(struct ews_partitions *parts,
                                int64_t reconnects)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;

        if (reconnects == parts->reconnects)
                return;
        parts->reconnects = reconnects;
        while ((part = ews_partitions_next(parts, &it)))
                if (!part->failed)
                        part->recovering = true;
}

bool ews_partitions_fences_current(struct ews_partitions *parts)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        bool current = true;
        char errstr[512];
        int64_t offset;

        while ((part = ews_partitions_next(parts, &it))) {
                if (part->failed || part->recovering || part->next_offset < 0)
                        continue;
                if (!parts->io.fence_read(parts->io.opaque, part->source,
                                          part->partition, &offset, errstr,
                                          sizeof(errstr))) {
                        parts->stats->store_errors++;
                        ews_warn("pipeline", "%s", errstr);
                        return false;
                }
                if (offset >= part->next_offset)
                        continue;
                ews_warn("pipeline",
                         "%s [%d]: the fence went back from %lld to %lld: "
                         "replaying",
                         parts->config->topics[part->source],
                         (int)part->partition, (long long)part->next_offset,
                         (long long)offset);
                ews_partitions_recover(parts, part->source, part->partition,
                                       -1);
                current = false;
        }
        return current;
}

bool ews_partitions_recovering(struct ews_partitions *parts)
{
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;

        while ((part = ews_partitions_next(parts, &it)))
                if (part->recovering || part->blocked)
                        return true;
        return false;
}
