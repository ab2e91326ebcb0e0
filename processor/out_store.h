/*
 * Stage 5, store: the state in Redis, written by one atomic, fenced call
 * per partition and batch.
 *
 * Each input partition has a fence in Redis: a fencing epoch and the next
 * offset to apply. Claiming a partition takes a new epoch; a commit applies
 * only when the epoch is still ours and the stored offset is the one the
 * batch starts from, so a zombie owner or a replay changes nothing.
 *
 * Key layout (prefix from redis.prefix, "ews:" by default):
 *   <prefix>p:<topic>:<partition>  hash  epoch, offset, watermark
 *   <prefix>t:<topic>:<partition>  zset  user id -> inactivity deadline (ms)
 *   <prefix>u:<user id>            hash  a user's state (fields below)
 *   <prefix>c:<campaign id>        hash  a campaign's attributes, counters
 */
#ifndef EWS_OUT_STORE_H
#define EWS_OUT_STORE_H

#include "ews.h"

struct ews_store_conf {
        const char *host;
        int port;
        int64_t timeout_ms;
        const char *prefix;
        const char *topics[EWS_SOURCE_COUNT];
};

enum ews_store_result {
        EWS_STORE_ERROR = -1, /* connection or reply: outcome unknown */
        EWS_STORE_OK = 0,
        EWS_STORE_FENCED = 1, /* epoch or offset did not match: reclaim */
};

struct ews_fence {
        int64_t epoch;
        int64_t next_offset;  /* -1: nothing stored yet */
        int64_t watermark_ms; /* 0: none yet */
};

/* A user as the commit writes it, with its inactivity deadline (0: none). */
struct ews_store_user {
        const struct ews_user *user;
        int64_t deadline_ms;
};

/* What a campaign event or a signup changes on a campaign. Strings left
 * empty and has_* false leave the stored field as it is. */
struct ews_campaign_delta {
        char campaign_id[EWS_ID_MAX];
        char name[EWS_ATTR_VALUE_MAX];
        char channel[EWS_NAME_MAX];
        char status[16];
        bool has_target;
        double target_activation_rate;
        int64_t launched_ms;
        double spend_add;
        int64_t signups_add;
};

struct ews_commit {
        enum ews_source source;
        int32_t partition;
        int64_t epoch;
        int64_t expected_offset; /* the fence's next_offset, -1 for none */
        int64_t next_offset;
        int64_t watermark_ms;
        const struct ews_store_user *users;
        size_t user_cnt;
        const struct ews_campaign_delta *campaigns;
        size_t campaign_cnt;
};

struct ews_store;

/* Connects and checks the server: maxmemory-policy must be noeviction (an
 * evicted fence is a silent loss). Returns NULL with errstr on error. */
struct ews_store *ews_store_new(const struct ews_store_conf *conf, char *errstr,
                                size_t errstr_size);
void ews_store_destroy(struct ews_store *store);

/* Takes a new epoch for the partition and reads its fence. */
enum ews_store_result ews_store_fence_claim(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition,
                                            struct ews_fence *fence,
                                            char *errstr, size_t errstr_size);

/* Calls cb for each user whose timer in the partition is due by upto_ms. */
enum ews_store_result
ews_store_timers_due(struct ews_store *store, int32_t partition,
                     int64_t upto_ms,
                     void (*cb)(void *opaque, const char *user_id),
                     void *opaque, char *errstr, size_t errstr_size);

/* Loads users[i] by users[i].user_id in one pipelined round trip. A user
 * not stored yet comes back zeroed but for its id. */
enum ews_store_result ews_store_users_load(struct ews_store *store,
                                           struct ews_user *users, size_t cnt,
                                           char *errstr, size_t errstr_size);

/* Applies commit atomically if the fence still matches. */
enum ews_store_result ews_store_commit(struct ews_store *store,
                                       const struct ews_commit *commit,
                                       char *errstr, size_t errstr_size);

#endif
