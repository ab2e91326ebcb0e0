/*
 * Stage 1, in: the consumer group member.
 *
 * Batches come from rd_kafka_consume_batch_queue on the calling thread.
 * librdkafka 2.0.2's batch consume loses or repeats messages when a seek,
 * pause, resume or rebalance runs in parallel with it, so all of those run
 * here, sequentially: the rebalance callback is served inside consume, and
 * seek, pause and resume are only called between two consume calls.
 * Offsets are stored only when the caller says its state is safe
 * (enable.auto.offset.store=false); auto commit then commits them.
 * The consumer runs with auto.offset.reset=error: a partition whose stored
 * position the broker no longer has is reported and paused, never skipped.
 * Where no position is stored at all, conf->offset_reset says where to
 * start, explicitly.
 *
 * librdkafka 2.0.2's fetcher stops while queued.min.messages wait in the
 * consumer's queue and decides again only when its broker thread next
 * wakes, up to a second later (2.2.0 added fetch.queue.backoff.ms). With
 * conf->fetch_wake, a batch taken from a backlog (the queue had reached
 * queued.min.messages, so the fetcher may have stopped) is followed by a
 * query of the assigned partitions' end offsets (rd_kafka_offsets_for_times,
 * one ListOffsets request to each leader, waited for briefly): the request
 * wakes each leader's broker thread, which looks at its partitions again and
 * fetches while the batch is processed. At most one wake every 50 ms. Any
 * Kafka answers it; the reply is not needed.
 */
#ifndef EWS_IN_KAFKA_H
#define EWS_IN_KAFKA_H

#include "util/props.h"
#include "util/ews.h"
#include "util/metrics.h"

/* No stored position: start where conf->offset_reset says. */
#define EWS_OFFSET_DEFAULT (-1001)
/* The first offset the broker still has (a seek or a start offset). */
#define EWS_OFFSET_BEGINNING (-1002)

struct ews_in_kafka_cb {
        /* A partition was assigned: set *offset to where to start, or
         * EWS_OFFSET_DEFAULT. committed is the group's committed offset
         * on the broker (a mark outside the store that the group has
         * worked here before), -1 when there is none or it could not be
         * read. */
        void (*assigned)(void *opaque, enum ews_source source,
                         int32_t partition, int64_t committed, int64_t *offset);
        void (*revoked)(void *opaque, enum ews_source source,
                        int32_t partition);
        /* The partition cannot go on where it should (its offset is gone
         * from the broker); it is paused and stays so until a seek. */
        void (*failed)(void *opaque, enum ews_source source, int32_t partition,
                       const char *reason);
        void *opaque;
};

struct ews_in_kafka_conf {
        const char *bootstrap_servers;
        const char *group_id;
        bool from_end;   /* where no position is stored: the end, else the
                          * beginning */
        bool fetch_wake; /* wake the fetcher after a batch from a backlog */
        /* with fetch_wake, librdkafka's queued.min.messages (10000 at
         * least) where props do not set it */
        int queue_min;
        const char *topics[EWS_SOURCE_COUNT];
        const struct ews_config_props *props; /* over the settings above */
        /* Per source, NULL or EWS_PARTITIONS_MAX offsets (-1: none): where
         * a partition ends for this consumer (a replay of a fixed range,
         * ews-processor --end-offsets). Messages from there on are not
         * handed out, and the partition counts as at its end once it has
         * handed out the one before, or met one beyond. Copied. */
        const int64_t *end_offsets[EWS_SOURCE_COUNT];
};

struct ews_in_kafka;

/* Whether librdkafka knows the property and accepts the value (on a scratch
 * configuration: nothing connects). 0, or -1 with librdkafka's reason. */
int ews_kafka_prop_check(const char *key, const char *value, char *errstr,
                         size_t errstr_size);

/* Subscribes to the topics. Returns NULL with errstr on error. */
struct ews_in_kafka *ews_in_kafka_new(const struct ews_in_kafka_conf *conf,
                                      const struct ews_in_kafka_cb *cb,
                                      char *errstr, size_t errstr_size);

/* Leaves the group (committing stored offsets) and frees. */
void ews_in_kafka_destroy(struct ews_in_kafka *in);

/* Fills msgs with up to max messages: waits up to wait_ms for the first,
 * then takes what has arrived, filling for at most linger_ms more. A
 * backlog gives full batches at once; live input gives batches of what
 * came while the last one was processed, so an event waits for at most
 * one batch's work and linger_ms. The messages borrow librdkafka's
 * buffers until the next consume or release. Returns the count. */
int ews_in_kafka_consume(struct ews_in_kafka *in, struct ews_msg *msgs, int max,
                         int wait_ms, int linger_ms);
void ews_in_kafka_release(struct ews_in_kafka *in);
/* The messages (and events) the consumer holds ready: more than 0, and
 * the next consume returns without waiting. */
int64_t ews_in_kafka_ready(const struct ews_in_kafka *in);

/* The state produced by everything before next_offset is safe. */
int ews_in_kafka_offset_store(struct ews_in_kafka *in, enum ews_source source,
                              int32_t partition, int64_t next_offset);

/* Between consume calls only (see above). A seek of a partition whose
 * offset was gone from the broker (librdkafka stopped fetching it)
 * assigns it again at offset: with the eager protocol the whole
 * assignment, every other partition at the next offset it would have
 * handed out, paused as it was. 0, or -1 when it could not. */
int ews_in_kafka_seek(struct ews_in_kafka *in, enum ews_source source,
                      int32_t partition, int64_t offset);
int ews_in_kafka_pause(struct ews_in_kafka *in, enum ews_source source,
                       int32_t partition, bool pause);

/* The topic's partition count from the broker's metadata, or -1 when the
 * topic is not known (yet) or the broker did not answer in time. */
int ews_in_kafka_partition_count(struct ews_in_kafka *in,
                                 enum ews_source source, int timeout_ms);

/* Messages behind the high watermark, from librdkafka's statistics; -1
 * when unknown or not assigned. */
int64_t ews_in_kafka_lag(const struct ews_in_kafka *in, enum ews_source source,
                         int32_t partition);

/* Registers the consumer's rows (lag per owned partition, from
 * librdkafka's statistics); they borrow in. 0, or -1 when out of memory. */
int ews_in_kafka_metrics_register(struct ews_in_kafka *in,
                                  struct ews_metrics *metrics);

/* Batches after which the fetcher was woken (conf->fetch_wake); 0 for
 * NULL. */
int64_t ews_in_kafka_fetch_wakes(const struct ews_in_kafka *in);
/* Joined the group (with or without partitions) and a broker reachable. */
bool ews_in_kafka_healthy(const struct ews_in_kafka *in);
/* Why not healthy: "waiting for brokers" (none has answered yet, or all
 * are down) or "waiting for assignment" (not joined yet); NULL when
 * healthy. */
const char *ews_in_kafka_waiting(const struct ews_in_kafka *in);

/* True when the partition is assigned and consumed to its end, with
 * nothing arrived since. */
bool ews_in_kafka_partition_at_end(const struct ews_in_kafka *in,
                                   enum ews_source source, int32_t partition);

/* True when partitions are assigned and every one is at its end. */
bool ews_in_kafka_at_end(const struct ews_in_kafka *in);

#endif
