/*
 * The partitions this instance owns, as a state machine per (source,
 * partition): assigned, claimed under an epoch read with the fence,
 * recovering (claim anew and go back to the fence), blocked while the
 * schema registry cannot be asked, paused, failed, revoked. It owns no
 * connection: what it needs of the store and the consumer (claim and read
 * a fence, seek, pause, resume, resend an outbox) comes in through a small
 * io interface, so that it can be driven without either, as the unit test
 * does.
 */
#ifndef EWS_PIPELINE_PARTITIONS_H
#define EWS_PIPELINE_PARTITIONS_H

#include "pipeline/pipeline.h"

/* One partition. The state fields change through the functions below;
 * the batch fields are the driver's, for the batch it runs. */
struct pipeline_part {
        enum ews_source source;
        int32_t partition;
        bool assigned;
        bool claimed;    /* the fence below was read under our epoch */
        bool recovering; /* waits for a new claim; its messages are skipped */
        bool paused;
        /* Its offset is gone from the broker, or the store refused its
         * batch: paused until its fence is moved by hand. */
        bool failed;
        /* The registry could not be asked: from blocked_offset on, the
         * partition waits (paused) until retry_at_ms, then tries again. */
        bool blocked;
        int64_t blocked_offset;
        int64_t retry_at_ms;
        int64_t backoff_ms;
        /* The group has committed here before (a fence was read or
         * written, or the broker holds a committed offset): a fence
         * without an offset was lost, not never made. */
        bool worked;
        int64_t epoch;
        int64_t next_offset; /* -1: nothing stored yet */
        int64_t watermark_ms;
        int64_t idle_ms; /* wall clock the watermark accounts for */
        /* Where to go back to when no fence offset exists yet: the first
         * message consumed but not committed. -1: none. */
        int64_t rewind;
        /* The driver's commit here whose round is still in flight (its
         * replies not yet read): the offset after it. */
        bool inflight;
        int64_t inflight_next;
        /* this batch (the driver's) */
        bool in_batch;
        int64_t batch_from;         /* the offset it took up from */
        int64_t batch_next;         /* next offset to accept */
        int64_t batch_first;        /* first accepted offset */
        int64_t batch_max_ms;       /* largest event time */
        int batch_head, batch_tail; /* its admitted messages, chained */
        /* monotonic: at its end, with no new input, since (0: not) */
        int64_t quiet_ms;
};

/* What the partitions need of the store and the consumer. */
struct ews_partitions_io {
        /* Takes a new epoch and reads the fence; false on error (errstr). */
        bool (*claim)(void *opaque, enum ews_source source, int32_t partition,
                      struct ews_fence *fence, char *errstr,
                      size_t errstr_size);
        /* Reads the fence's next offset (-1: none) without claiming it;
         * false on error (errstr). */
        bool (*fence_read)(void *opaque, enum ews_source source,
                           int32_t partition, int64_t *next_offset,
                           char *errstr, size_t errstr_size);
        /* Between consume calls; 0, or -1 when it could not. */
        int (*seek)(void *opaque, enum ews_source source, int32_t partition,
                    int64_t offset);
        int (*pause)(void *opaque, enum ews_source source, int32_t partition,
                     bool pause);
        /* Claimed: what an earlier owner committed and did not see
         * delivered goes out again before anything new is committed. */
        void (*claimed)(void *opaque, enum ews_source source,
                        int32_t partition);
        void *opaque;
};

struct ews_partitions;

/* Borrows config (for the topic names) and stats (counted into); copies
 * io, whose opaque must outlive it. NULL on error (errstr). */
struct ews_partitions *ews_partitions_new(const struct ews_config *config,
                                          const struct ews_partitions_io *io,
                                          struct ews_pipeline_stats *stats,
                                          char *errstr, size_t errstr_size);
/* NULL is fine. */
void ews_partitions_destroy(struct ews_partitions *parts);

/* The partition; source and partition must be in range. */
struct pipeline_part *ews_partitions_get(struct ews_partitions *parts,
                                         enum ews_source source,
                                         int32_t partition);

/* Walks the assigned partitions, by source then partition:
 *
 *   struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
 *   while ((part = ews_partitions_next(parts, &it)))
 */
struct ews_partitions_iter {
        int source;
        int32_t partition;
};
#define EWS_PARTITIONS_ITER_INIT                                               \
        {                                                                      \
                0, -1                                                          \
        }
/* The next assigned partition, or NULL past the last. */
struct pipeline_part *ews_partitions_next(struct ews_partitions *parts,
                                          struct ews_partitions_iter *it);

/* The consumer's rebalance: assigned claims the partition and sets
 * *offset where it starts (its fence; EWS_OFFSET_BEGINNING where the
 * fence was lost, committed >= 0 telling the group committed before);
 * one that cannot be claimed is recovering, *offset left. */
void ews_partitions_assigned(struct ews_partitions *parts,
                             enum ews_source source, int32_t partition,
                             int64_t committed, int64_t *offset);
void ews_partitions_revoked(struct ews_partitions *parts,
                            enum ews_source source, int32_t partition);
/* Its offset is gone from the broker: it stays paused until its fence is
 * moved. */
void ews_partitions_failed(struct ews_partitions *parts, enum ews_source source,
                           int32_t partition);

/* Takes a new epoch and reads the fence; false when the store failed. */
bool ews_partitions_claim(struct ews_partitions *parts, enum ews_source source,
                          int32_t partition);
/* Between consume calls: claim anew and go back to the fence (or to
 * rewind_offset, -1: none, where no fence offset exists). A partition
 * that cannot be claimed is paused until ews_partitions_cron() manages. */
void ews_partitions_recover(struct ews_partitions *parts,
                            enum ews_source source, int32_t partition,
                            int64_t rewind_offset);
/* The same, left to ews_partitions_cron(): from a rebalance callback,
 * where the consumer takes no seek. Its messages are passed over till. */
void ews_partitions_recover_later(struct ews_partitions *parts,
                                  enum ews_source source, int32_t partition,
                                  int64_t rewind_offset);

/* The registry could not be asked for the message at offset: the
 * partition waits there. */
void ews_partitions_wait(struct ews_partitions *parts, enum ews_source source,
                         int32_t partition, int64_t offset);
/* The registry answered: the next wait starts from the first backoff. */
void ews_partitions_registry_ok(struct ews_partitions *parts,
                                enum ews_source source, int32_t partition);
/* Between consume calls: back to the message that waits, paused until
 * its retry, each retry waiting twice as long up to 30 s. */
void ews_partitions_block(struct ews_partitions *parts, enum ews_source source,
                          int32_t partition, int64_t mono_ms);

/* The batch up to next_offset is committed with watermark_ms at now_ms. */
void ews_partitions_committed(struct ews_partitions *parts,
                              enum ews_source source, int32_t partition,
                              int64_t next_offset, int64_t watermark_ms,
                              int64_t now_ms);
/* The store rejected the batch: paused for people to see (failed); from
 * a rebalance callback (later) the pause is left to
 * ews_partitions_cron(). */
void ews_partitions_reject(struct ews_partitions *parts, enum ews_source source,
                           int32_t partition, bool later);

/* Periodic: claims the recovering partitions again, resumes the blocked
 * ones whose retry is due at mono_ms, and the failed ones whose fence was
 * moved by hand (read once a call), from there. */
void ews_partitions_cron(struct ews_partitions *parts, int64_t mono_ms);

/* reconnects is the store's count of reconnects: when it changed since
 * the last call, every owned partition goes back to its fence (Redis may
 * have lost its last writes). Call once after new to take the count. */
void ews_partitions_reconnected(struct ews_partitions *parts,
                                int64_t reconnects);

/* Reads every owned fence again: true when none is behind what was
 * committed; those that are go back to their fence. */
bool ews_partitions_fences_current(struct ews_partitions *parts);

/* True while some assigned partition waits for the store or the
 * registry. */
bool ews_partitions_recovering(struct ews_partitions *parts);

#endif
