/* Internal to the pipeline, the driver: pipeline.c (the batch, the
 * consumer's callbacks, the periodic work), idle.c (idle watermarks),
 * events.c (the batch's events, kept compact), load.c (the users a batch
 * needs), apply.c (a partition's share of a batch) and commit.c (a
 * partition's commit, the round of them). Calls go one way: pipeline.c and
 * idle.c to load.c, apply.c and commit.c; apply.c to events.c, funnel.c and
 * commit.c; commit.c to funnel.c; events.c and funnel.c call none. The
 * driver holds the batch scratch and calls the partitions, the outboxes
 * (delivery) and the leader, which never call back into it. */
#ifndef EWS_PIPELINE_INT_H
#define EWS_PIPELINE_INT_H

#include "pipeline/pipeline.h"
#include "pipeline/batch.h"
#include "pipeline/delivery.h"
#include "pipeline/leader.h"
#include "pipeline/partitions.h"
#include "store/views.h"
#include "util/grow.h"

#include <time.h>

enum item_kind {
        ITEM_SKIP,
        ITEM_DEAD,
        ITEM_USAGE,
        ITEM_CAMPAIGN
};

struct batch_item {
        enum item_kind kind;
        int event;       /* index into the batch's usage or campaign events */
        int user;        /* index into the batch's users */
        size_t attr_off; /* its attributes in the batch's attr_arena */
        int next;        /* the partition's next admitted message, -1 */
};

/* A usage event as the batch keeps it until its partition is applied:
 * its texts in the batch's text arena, each ending in its NUL (an event
 * has room for 128-byte ids; most use a tenth of that, and a batch holds
 * tens of thousands), its attributes in attr_arena. pipeline_usage_event()
 * makes it an event again. */
enum batch_text {
        BATCH_EVENT_ID,
        BATCH_USER_ID,
        BATCH_ACCOUNT_ID,
        BATCH_EVENT_TYPE,
        BATCH_PRODUCT,
        BATCH_CAMPAIGN_ID,
        BATCH_TEXTS
};

struct batch_usage {
        size_t text;                   /* where its texts start, in order */
        uint8_t text_len[BATCH_TEXTS]; /* their lengths, without the NUL */
        double value;
        int64_t occurred_at_ms;
        bool has_value;
        int attr_cnt;
};

/* A message of the batch that goes to the dead-letter topic, kept as it
 * came (its key and value copied into the batch's dead_bytes: the
 * batch's messages are released once admitted). */
struct batch_dead {
        enum ews_source source;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms;
        size_t key_off, key_len, value_off, value_len;
        bool has_key, has_value;
        enum ews_decode_err err;
        char detail[256];
};

struct batch_cohort {
        char key[EWS_ID_MAX]; /* kind, day and id */
        struct ews_cohort_delta delta;
};

/* A partition's commit of this round: sent to the store with the others
 * (one pipelined round trip), then finished in order. */
struct pipeline_pending {
        enum ews_source source;
        int32_t partition;
        /* its share of the batch: from batch_first to before next_offset
         * (the partition's own fields move on with the next batch while
         * this round is in flight) */
        int64_t batch_first, next_offset;
        int64_t watermark_ms;
        size_t record_first, record_cnt;
        bool sent;
        enum ews_store_result result;
        struct timespec start;
        char errstr[256];
};

struct ews_pipeline {
        const struct ews_config *config;
        struct ews_decoder *decoder;
        struct ews_store *store;
        struct ews_out_kafka *out;
        struct ews_in_kafka *in;
        struct ews_partitions *parts;
        struct ews_pipeline_stats stats;
        /* batch scratch, sized for config->batch_max */
        struct batch_item *items;
        /* the batch's events: a usage event decoded into decoded (its
         * attributes into attr_scratch), then kept compact in usage, its
         * texts in text and its attributes in attr_arena; the few campaign
         * events as they are */
        struct ews_usage_event decoded;
        struct ews_attr attr_scratch[EWS_ATTR_MAX];
        struct ews_attr *attr_arena;
        size_t attr_used, attr_cap;
        char *text;
        size_t text_used, text_cap;
        struct batch_usage *usage;
        size_t usage_cnt;
        struct ews_campaign_event *campaign;
        size_t campaign_cnt, campaign_cap;
        struct batch_table users;     /* of struct batch_user */
        struct batch_table campaigns; /* of struct ews_campaign_delta */
        const char **load; /* the batch's users' ids, for the store */
        size_t load_cap;
        /* their packed values as read (batch_user.value_off) */
        unsigned char *values;
        size_t values_used, values_cap;
        /* the users of the partition being applied, unpacked: the batch's
         * user part_users[part_first[partition] + j] is part_state[j] */
        struct ews_user *part_state;
        size_t part_state_cap;
        /* the batch's users by partition (of the usage topic), once they
         * are loaded: user indexes part_users[part_first[k]] up to
         * part_users[part_first[k + 1]] are partition k's, in order */
        int32_t *part_users;
        size_t part_users_cap;
        int32_t part_first[EWS_PARTITIONS_MAX + 1];
        struct timer_heap heap;
        struct ews_store_user *commit_users;
        size_t commit_users_cap;
        /* the round's alerts; the partition being applied has those from
         * alert_first on */
        struct ews_alert *alerts;
        size_t alert_cnt, alert_cap, alert_first;
        /* the round's commits, sent, waiting for their replies */
        struct pipeline_pending *pending;
        size_t pending_cnt, pending_cap;
        /* The round's transaction is with Redis, its replies not yet read:
         * the batch after it is taken in meanwhile (pipeline_settle). */
        bool inflight;
        struct batch_dead *dead;
        size_t dead_cnt, dead_cap;
        unsigned char *dead_bytes;
        size_t dead_bytes_used, dead_bytes_cap;
        struct batch_table cohorts; /* of struct batch_cohort */
        struct ews_cohort_delta *commit_cohorts;
        size_t commit_cohorts_cap;
        struct batch_table funnel; /* of struct ews_funnel_delta */
        struct ews_segment_move *commit_segments;
        size_t commit_segments_cap;
        /* the funnel's series as last read (funnel_metrics.c) */
        struct ews_funnel *gauges, gauge_total;
        size_t gauge_cnt, gauge_cap;
        int64_t gauges_at_ms;
        bool gauges_valid;
        struct ews_delivery *delivery;
        enum ews_time_mode time_mode;
        bool bounded; /* the input ends where the consumer finds its end */
        int64_t resend_at_ms; /* monotonic: the next periodic outbox look */
        struct ews_leader *leader;
        int64_t now_ms;  /* wall clock of the batch */
        int64_t mono_ms; /* monotonic clock of the batch, for retries */
        /* the usage partitions whose due timers the batch reads */
        int32_t due_partitions[EWS_PARTITIONS_MAX];
        int64_t due_from[EWS_PARTITIONS_MAX]; /* their stored watermarks */
        int64_t due_upto[EWS_PARTITIONS_MAX];
};

static inline struct batch_user *pipeline_user(const struct ews_pipeline *p,
                                               size_t i)
{
        return batch_table_at(&p->users, i);
}

/* The state of the batch's user i, while its partition is applied. */
static inline struct ews_user *pipeline_user_state(const struct ews_pipeline *p,
                                                   size_t i)
{
        return &p->part_state[pipeline_user(p, i)->slot];
}

/* events.c: keeps the decoded event as the batch's, item->event and
 * item->attr_off set (-1 when out of memory); fills event with the
 * batch's usage event of item (its attributes borrowed from the batch)
 * and returns it. */
int pipeline_keep_usage(struct ews_pipeline *p, struct batch_item *item,
                        const struct ews_usage_event *event);
int pipeline_keep_campaign(struct ews_pipeline *p, struct batch_item *item,
                           const struct ews_campaign_event *event);
const struct ews_usage_event *
pipeline_usage_event(const struct ews_pipeline *p,
                     const struct batch_item *item,
                     struct ews_usage_event *event);

/* The watermark after an event at event_ms (0: none) moved it from
 * watermark_ms: it never goes back, as a late event does not move it. */
int64_t pipeline_watermark(const struct ews_pipeline *p, int64_t watermark_ms,
                           int64_t event_ms);

/* The index of user_id in p->users, added (for partition) when new; -1
 * when out of memory. */
int pipeline_user_add(struct ews_pipeline *p, const char *user_id,
                      int32_t partition);

/* admit.c: admits the messages at or past each partition's fence (or
 * the end of its commit in flight), in order: decoded into the batch,
 * chained by partition, or dead letters. Reads msgs, keeps none of it. */
void pipeline_admit(struct ews_pipeline *p, const struct ews_msg *msgs,
                    int cnt);

/* A round of commits: begin, pipeline_partition() for each partition
 * (it applies and sends the partition's commit), then finish: the replies
 * are read in order and each partition goes on or back to its fence. Or,
 * instead of finish, flush: the transaction goes to Redis, and the round
 * is in flight until pipeline_settle() finishes it (every call that uses
 * the store or the partitions' offsets settles first). in_callback: from
 * a rebalance callback, where partitions go back to their fence at the
 * next cron rather than seek at once. */
void pipeline_round_begin(struct ews_pipeline *p);
void pipeline_round_finish(struct ews_pipeline *p);
void pipeline_round_flush(struct ews_pipeline *p);
void pipeline_settle(struct ews_pipeline *p, bool in_callback);

/* commit.c: prepares the partition's commit from what apply.c left in
 * the batch scratch and sends it, its reply read when the round finishes;
 * or, when the partition could not be applied (why), has it go back to
 * its fence then, as after a commit that failed. */
void pipeline_commit(struct ews_pipeline *p, enum ews_source source,
                     int32_t partition, int64_t watermark_ms);
void pipeline_commit_failed(struct ews_pipeline *p, enum ews_source source,
                            int32_t partition, const char *why);

/* Runs one partition's share of the batch (none when !batch: an idle
 * advance) through score and rules, in offset order, then sends its
 * commit. watermark_ms is where the partition's watermark starts (its
 * stored one, or an idle advance). */
void pipeline_partition(struct ews_pipeline *p, bool batch,
                        enum ews_source source, int32_t partition,
                        int64_t watermark_ms);

/* Loads the users whose timers are due in the usage partitions listed in
 * p->due_partitions / due_from / due_upto, and those already in
 * p->users. */
bool pipeline_load_users(struct ews_pipeline *p, size_t due);

/* funnel.c: counts the funnel stages the user reached for the first time
 * (at event time t_ms) into p->funnel; notes the segment of a user as
 * loaded (its state user); fills the commit's funnel and segment moves
 * (false: out of memory). */
void pipeline_funnel_observe(struct ews_pipeline *p, struct ews_user *user,
                             int64_t t_ms);
void pipeline_funnel_loaded(const struct ews_pipeline *p, struct batch_user *bu,
                            const struct ews_user *user);
bool pipeline_funnel_commit(struct ews_pipeline *p, struct ews_commit *commit);

/* funnel_metrics.c: reads the funnel's series now and then (cron). */
void pipeline_funnel_metrics_cron(struct ews_pipeline *p, int64_t mono_ms);

/* Advances the watermarks of idle partitions and fires their timers. */
void pipeline_idle(struct ews_pipeline *p);

#endif
