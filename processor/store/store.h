/*
 * Stage 5, store: the state in Redis, written by one atomic, fenced
 * transaction per batch (the commits of all its partitions).
 *
 * Each input partition has a fence in Redis: a fencing epoch and the next
 * offset to apply. Claiming a partition takes a new epoch; a commit applies
 * only when the epoch is still ours and the stored offset is the one the
 * batch starts from, so a zombie owner or a replay changes nothing.
 *
 * Key layout (prefix from redis.prefix, "ews:" by default):
 *   <prefix>m:<topic>              string  the topic's partition count
 *   <prefix>p:<topic>:<partition>  hash    epoch, offset, watermark, idle
 *   <prefix>t:<topic>:<partition>:<hour>
 *                                  zset    user id -> its next deadline,
 *                                          less the hour's start (ms):
 *                                          the timers due in that hour
 *   <prefix>ub:<bucket>            hash    user id -> the packed user
 *                                          (codec.h), a user in bucket
 *                                          FNV-1a(id) % 8192
 *   <prefix>u:<user id>            string  the same, as an earlier
 *                                          version kept it: read after
 *                                          the bucket, deleted at the
 *                                          user's next write of a day
 *   <prefix>names                  hash    the packed users' names
 *                                          dictionary: name -> id
 *   <prefix>a:<account id>         hash    m:<user id>: a member, by the
 *                                          wall-clock day it was last
 *                                          written; users active at each
 *                                          day's end not yet decided:
 *                                          d<day> added to that day, and
 *                                          e<day> to every day from it
 *                                          on (a range of days is
 *                                          +n at its first, -n after its
 *                                          last); s the leader's
 *                                          state in one field (s:* as
 *                                          an earlier version kept it:
 *                                          read, removed at the next
 *                                          decision); xe, xr: the
 *                                          (E, t_ref) of erased members
 *   <prefix>c:<campaign id>        hash    attributes and counters
 *   <prefix>o:<topic>:<partition>  hash    outbox: record id -> record
 *   <prefix>o:leader               hash    the leader's outbox
 *   <prefix>op:<topic>:<partition>,
 *   <prefix>op:leader              hash    parked: record id -> record
 *                                          Kafka refused for good
 *   <prefix>opi:...                hash    parked: record id -> "<parked ms>
 *                                          <error code> <error text>"
 *   <prefix>cb:<campaign id>       hash    cohort: n<day>, k<day>, s<day>,
 *                                          p<day> not yet decided; s:* the
 *                                          leader's state
 *   <prefix>cq, <prefix>aq:<shard> zset    id -> first undecided day;
 *                                          an account in shard
 *                                          FNV-1a(id) % 1024
 *   <prefix>aq                     zset    the same, as an earlier
 *                                          version kept the accounts:
 *                                          read, left at a decision
 *   <prefix>leader                 string  "<owner> <token>", with a TTL
 *   <prefix>leader:token           string  the last fencing token
 *   <prefix>f:<campaign id>        hash    the campaign's funnel (funnel.c):
 *                                          the count of users that reached
 *                                          each stage by its name, a<b>
 *                                          and s<b>: users by bucket b of
 *                                          the time from signup to
 *                                          activation, to sales-ready
 *   <prefix>ft                     hash    the same over all users
 *   <prefix>fi                     zset    campaign id -> first counted ms
 *   <prefix>sg:<stage>:<shard>,
 *   <prefix>sg0:<stage>:<shard>   zset    segments: user id -> score of
 *                                          E (util/funnel.h), E > 0 and
 *                                          E <= 0; a user in shard
 *                                          FNV-1a(id) % 1024 (util/hash.h)
 *   <prefix>sg:<stage>, sg0:<stage> zset   the same, whole, as an earlier
 *                                          version kept it: read until
 *                                          it empties, never written
 * Users and accounts expire a retention period (and at most a day more)
 * after their last event: an account's key by its expiry, a user by the
 * leader's sweep of the buckets (sweep.c). An account's engagement is
 * not stored: it is the sum of its members' (and its erased members') E,
 * taken when read.
 */
#ifndef EWS_OUT_STORE_H
#define EWS_OUT_STORE_H

#include "util/metrics.h"
#include "util/ews.h"
#include "rules/rules.h"
#include "util/outbox.h"
#include "util/funnel.h"

/* Sentinels a store may be given; an address is "host:port". */
#define EWS_STORE_SENTINELS_MAX 8
#define EWS_STORE_ADDR_MAX      256

struct ews_store_conf {
        const char *host; /* with no sentinels */
        int port;
        int64_t timeout_ms;
        const char *prefix;
        const char *topics[EWS_SOURCE_COUNT];
        int64_t retention_ms; /* users and accounts without events expire */
        double half_life_ms;  /* the model's, for account roll-ups */
        size_t cache_users;   /* bound of the in-process user cache */
        const char *username; /* AUTH: ACL user, NULL or "" for default */
        const char *password; /* AUTH: NULL or "" for none */
        /* Sentinel: with sentinel_cnt > 0 every connect asks these in turn
         * for the primary of master_name and checks that it answers ROLE
         * as the master; host and port are not used. */
        const char *sentinels[EWS_STORE_SENTINELS_MAX]; /* "host:port" */
        int sentinel_cnt;
        const char *master_name;
        const char *sentinel_username; /* AUTH to the sentinels, as above */
        const char *sentinel_password;
        /* WAIT after commits and claims (ews_store_wait): 0 for none */
        int wait_replicas;
        int64_t wait_timeout_ms;
};

/* "host:port", or "[address]:port" for IPv6, into host and *port (1 to
 * 65535): 0, or -1 when s is not one. */
int ews_store_addr_parse(const char *s, char *host, size_t host_size,
                         int *port);

/* What every fallible store call returns: EWS_STORE_OK, EWS_STORE_ERROR
 * with errstr set, and only the other values its comment names. */
enum ews_store_result {
        EWS_STORE_ERROR = -1, /* connection or reply: outcome unknown */
        EWS_STORE_OK = 0,
        EWS_STORE_FENCED = 1,    /* epoch or offset did not match: reclaim */
        EWS_STORE_REJECTED = 2,  /* the script refused the data: not retried */
        EWS_STORE_GONE = 3,      /* the subject expired: nothing written */
        EWS_STORE_NOT_FOUND = 4, /* a read or an erase found no subject */
        EWS_STORE_HELD = 5,      /* another instance holds the lease */
};

struct ews_fence {
        int64_t epoch;
        int64_t next_offset;  /* -1: nothing stored yet */
        int64_t watermark_ms; /* 0: none yet */
        int64_t idle_ms;      /* wall clock the watermark is good to */
};

/* A record for the commit's outbox, packed (outbox.h). */
struct ews_outbox_record {
        char id[EWS_OUTBOX_ID_MAX];
        const unsigned char *data;
        size_t len;
};

enum ews_cohort_kind {
        EWS_COHORT_CAMPAIGN = 'c',
        EWS_COHORT_ACCOUNT = 'a'
};

/* Added to a cohort's day: matured signups (n) and activated ones (k),
 * trials started (signups) and spend of a campaign; or users newly active
 * at an account's day ends (n), at every day end from day to day_last (a
 * campaign's: day_last is day). */
struct ews_cohort_delta {
        char kind;
        char id[EWS_ID_MAX];
        int64_t day, day_last;
        int64_t n, k;
        int64_t signups;
        double spend;
};

/* A user as the commit writes it, with its next rule deadline (0: none). */
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
        int64_t activated_add;
};

/* The funnel's share of a commit: users that reached each stage for the
 * first time (ews_user.funnel), with the durations of their way there by
 * bucket (util/funnel.h). campaign_id "" counts in the total alone. */
struct ews_funnel_delta {
        char campaign_id[EWS_ID_MAX];
        int64_t at_ms; /* event time of the first count */
        int64_t count[EWS_FUNNEL_COUNT];
        int64_t to_activated[EWS_FUNNEL_BUCKETS];
        int64_t to_sales_ready[EWS_FUNNEL_BUCKETS];
};

/* A user's move between segments (util/funnel.h): out of segment from,
 * into segment to with score (-1: none). user_id is borrowed. */
struct ews_segment_move {
        const char *user_id;
        int from, to;
        double score;
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
        int64_t idle_ms; /* the wall clock of the commit */
        const struct ews_outbox_record *outbox;
        size_t outbox_cnt;
        const struct ews_cohort_delta *cohorts;
        size_t cohort_cnt;
        /* written by store/funnel.c in the same fenced call */
        const struct ews_funnel_delta *funnel;
        size_t funnel_cnt;
        const struct ews_segment_move *segments;
        size_t segment_cnt;
};

struct ews_store;

/* Connects and checks the server: maxmemory-policy must be noeviction (an
 * evicted fence is a silent loss). Returns NULL with errstr on error. */
struct ews_store *ews_store_new(const struct ews_store_conf *conf, char *errstr,
                                size_t errstr_size);
void ews_store_destroy(struct ews_store *store);

/* Records the topic's partition count on first use; EWS_STORE_FENCED when
 * it differs from the recorded one (fences, timers are per partition). */
enum ews_store_result ews_store_partitions_check(struct ews_store *store,
                                                 enum ews_source source,
                                                 int partition_cnt,
                                                 int *stored_cnt, char *errstr,
                                                 size_t errstr_size);

/* Forgets the cached users of a partition (-1: all), as when it is
 * revoked. */
void ews_store_cache_drop(struct ews_store *store, int32_t partition);

/* Takes a new epoch for the partition and reads its fence; drops the
 * partition's cached users. With wait_replicas, EWS_STORE_ERROR unless the
 * replicas have the claim, and so every write before it (ews_store_wait):
 * a fence read from the primary alone may be one a failover takes back. */
enum ews_store_result ews_store_fence_claim(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition,
                                            struct ews_fence *fence,
                                            char *errstr, size_t errstr_size);

/* Reads the partition's next offset without claiming it: -1 in
 * *next_offset when the fence has none. */
enum ews_store_result ews_store_fence_read(struct ews_store *store,
                                           enum ews_source source,
                                           int32_t partition,
                                           int64_t *next_offset, char *errstr,
                                           size_t errstr_size);

/* Calls cb for each user whose timer in partitions[i] (of the usage topic)
 * is due by upto_ms[i], from_ms[i] being the partition's stored
 * watermark (timers before it have fired): one pipelined round trip for
 * all of them. A user may come early, by less than an hour (see
 * ews_store_timer_moves), never late. */
enum ews_store_result ews_store_timers_due(
        struct ews_store *store, const int32_t *partitions,
        const int64_t *from_ms, const int64_t *upto_ms, size_t cnt,
        void (*cb)(void *opaque, int32_t partition, const char *user_id),
        void *opaque, char *errstr, size_t errstr_size);

/* Whether a commit of a user whose timer entry is filed under filed_ms
 * (its keep.timer_ms) and whose deadline is deadline_ms writes the timer,
 * the commit's watermark being watermark_ms. Timers are filed by the hour:
 * a deadline that moves later within its hour keeps its entry, until the
 * watermark reaches the entry (every later read would bring the user in
 * early again). A user the timers brought in (due or early) whose timer
 * moves must be committed even if nothing else changed. */
bool ews_store_timer_moves(int64_t filed_ms, int64_t deadline_ms,
                           int64_t watermark_ms);

/* Reads the packed values of the users ids[0] .. ids[cnt - 1]: from the
 * cache, and the misses in one pipelined round trip, each read from Redis
 * checked to unpack (the names dictionary read again once when a value
 * names an id it lacks). Calls got(opaque, i, value, len) once for each,
 * value NULL for a user not stored yet; value is borrowed for the call.
 * got returns false when it could not keep the value (out of memory):
 * the read stops with EWS_STORE_ERROR. */
typedef bool (*ews_store_value_cb)(void *opaque, size_t i,
                                   const unsigned char *value, size_t len);
enum ews_store_result ews_store_users_read(struct ews_store *store,
                                           const char *const *ids, size_t cnt,
                                           ews_store_value_cb got, void *opaque,
                                           char *errstr, size_t errstr_size);

/* Fills user, but its user_id, from a value ews_store_users_read() gave
 * (NULL: a user not stored yet, zeroed). 0; -1 when the value does not
 * unpack, which a value the read gave does, the names dictionary only
 * ever growing. */
int ews_store_user_fill(const struct ews_store *store, struct ews_user *user,
                        const unsigned char *value, size_t len);

/* A round of commits: ews_store_commit_send() queues one (its users go to
 * the cache at once), ews_store_commit_recv() takes the result of the
 * oldest one sent, in order; the first receive applies them all, each
 * only if its fence holds, in one transaction (two round trips), unless
 * ews_store_commit_flush() did: it reads the fences and writes the
 * transaction to the socket, and returns while Redis runs it (its replies
 * are read by the first receive). A commit that did not apply drops its
 * partition's cached users. Between the first send and the last receive
 * no other store call may be made. A send that fails was not queued. */
enum ews_store_result ews_store_commit_send(struct ews_store *store,
                                            const struct ews_commit *commit,
                                            char *errstr, size_t errstr_size);
void ews_store_commit_flush(struct ews_store *store);
enum ews_store_result ews_store_commit_recv(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition, char *errstr,
                                            size_t errstr_size);

/* With wait_replicas: WAIT until that many replicas have every write made
 * on this connection, for at most wait_timeout_ms. Called after the
 * replies of a round of commits, before their alerts go out and their
 * offsets are stored. EWS_STORE_OK, also when wait_replicas is 0;
 * EWS_STORE_ERROR when fewer acknowledged in time (counted: a failover now
 * could still lose those writes, so their outcome is unknown; for the
 * next wait_timeout_ms it then fails at once, so that the claims of many
 * recovering partitions do not each wait), or when the connection is gone
 * (not made anew: a new connection's WAIT would not cover the writes of
 * the old one). */
enum ews_store_result ews_store_wait(struct ews_store *store, char *errstr,
                                     size_t errstr_size);

/* Applies commit atomically if the fence still matches; on success the
 * users are cached under the commit's partition. EWS_STORE_FENCED when the
 * fence did not match, EWS_STORE_REJECTED when Redis refused a write. */
enum ews_store_result ews_store_commit(struct ews_store *store,
                                       const struct ews_commit *commit,
                                       char *errstr, size_t errstr_size);

/* An account as read: its roll-up and its members' activity. */
struct ews_account {
        char account_id[EWS_ID_MAX];
        double engagement;         /* A at engagement_ref_ms: the members' E */
        int64_t engagement_ref_ms; /* the latest t_ref of its members */
        int64_t users;             /* members stored (within the retention) */
        int64_t active_users;      /* active within the window before t_ref */
};

struct ews_campaign {
        char campaign_id[EWS_ID_MAX];
        char name[EWS_ATTR_VALUE_MAX];
        char channel[EWS_NAME_MAX];
        char status[16];
        bool has_target;
        double target_activation_rate;
        int64_t launched_ms;
        double spend;
        int64_t signups;
        int64_t activated;
};

/* Reads for inspection: EWS_STORE_OK when found, EWS_STORE_NOT_FOUND when
 * not, EWS_STORE_ERROR with errstr. The user's partition (of the usage
 * topic) into *partition unless NULL. */
enum ews_store_result ews_store_user_get(struct ews_store *store,
                                         const char *user_id,
                                         struct ews_user *user,
                                         int32_t *partition, char *errstr,
                                         size_t errstr_size);

/* Bulk reads, for exports (ews-inspect export): never on the hot path. */
#define EWS_FENCE_HAS_EPOCH     1u
#define EWS_FENCE_HAS_OFFSET    2u
#define EWS_FENCE_HAS_WATERMARK 4u
#define EWS_FENCE_HAS_IDLE      8u

/* Calls cb for each stored fence of both topics (partitions 0 to the
 * count in m:<topic>), have saying which of its fields are stored: one
 * pipelined round trip. A result other than EWS_STORE_OK from cb stops
 * the calls and is returned; otherwise EWS_STORE_OK or EWS_STORE_ERROR. */
enum ews_store_result ews_store_fences_read(
        struct ews_store *store,
        enum ews_store_result (*cb)(void *opaque, const char *topic,
                                    int32_t partition,
                                    const struct ews_fence *fence,
                                    unsigned have),
        void *opaque, char *errstr, size_t errstr_size);

/* Masks of subject kinds (enum ews_subject): users are fields of ub:<n>,
 * accounts a:<id>, campaigns c:<id>. */
#define EWS_SUBJECTS_USERS     (1u << EWS_SUBJECT_USER)
#define EWS_SUBJECTS_ACCOUNTS  (1u << EWS_SUBJECT_ACCOUNT)
#define EWS_SUBJECTS_CAMPAIGNS (1u << EWS_SUBJECT_CAMPAIGN)
#define EWS_SUBJECTS_ALL                                                       \
        (EWS_SUBJECTS_USERS | EWS_SUBJECTS_ACCOUNTS | EWS_SUBJECTS_CAMPAIGNS)

/* Calls cb with the kind and id of every stored subject of kinds (a mask
 * of EWS_SUBJECTS_*), walking the keys with SCAN ... COUNT count (0:
 * 1000) in constant memory; cb may make other store calls. As SCAN, a
 * subject stored throughout comes at least once, one added or removed
 * meanwhile may or may not, and one may come twice when Redis resizes its
 * table during the walk. A result other than EWS_STORE_OK from cb stops
 * the walk and is returned; otherwise EWS_STORE_OK or EWS_STORE_ERROR. */
enum ews_store_result ews_store_subjects_scan(
        struct ews_store *store, unsigned kinds, size_t count,
        enum ews_store_result (*cb)(void *opaque, enum ews_subject kind,
                                    const char *id),
        void *opaque, char *errstr, size_t errstr_size);

/* Deletes every key under the store's prefix (SCAN ... MATCH, UNLINK), in
 * passes until one finds none; *deleted counts them. For a scratch prefix
 * (ews-whatif's replays), never a live one. Refused (EWS_STORE_ERROR) for
 * an empty prefix. EWS_STORE_OK or EWS_STORE_ERROR. */
enum ews_store_result ews_store_drop_all(struct ews_store *store,
                                         int64_t *deleted, char *errstr,
                                         size_t errstr_size);

/* Calls cb with every stored user (its id filled), reading the users'
 * buckets 64 a round trip, then an earlier version's keys (SCAN u:*) of
 * users not in a bucket yet, in constant memory; values that do not
 * unpack are passed over. cb may call the store. A result other than
 * EWS_STORE_OK from cb stops the walk and is returned; otherwise
 * EWS_STORE_OK or EWS_STORE_ERROR. A user stored throughout comes once
 * (twice when Redis resizes its table during the walk of the earlier
 * keys); one written or removed meanwhile may or may not. */
enum ews_store_result ews_store_users_scan(
        struct ews_store *store,
        enum ews_store_result (*cb)(void *opaque, const struct ews_user *user),
        void *opaque, char *errstr, size_t errstr_size);

/* Erasure of a user's personal data (privacy requests): its state, its
 * inactivity timer, its membership of its account. Counters and account
 * scores keep what they summed, without the user's identity (the
 * account's score keeps the user's E as its erased members' share).
 * EWS_STORE_OK erased, EWS_STORE_NOT_FOUND no such user, EWS_STORE_ERROR. */
enum ews_store_result ews_store_user_erase(struct ews_store *store,
                                           const char *user_id, char *errstr,
                                           size_t errstr_size);

/* Reads the account's members (one pipelined round trip for their
 * states) and sums their E: EWS_STORE_OK when it has a stored member or
 * an erased one's share, EWS_STORE_NOT_FOUND when not, EWS_STORE_ERROR. */
enum ews_store_result ews_store_account_get(struct ews_store *store,
                                            const char *account_id,
                                            int64_t active_window_ms,
                                            struct ews_account *account,
                                            char *errstr, size_t errstr_size);

/* EWS_STORE_OK when the campaign has any field, EWS_STORE_NOT_FOUND when
 * not, EWS_STORE_ERROR. */
enum ews_store_result ews_store_campaign_get(struct ews_store *store,
                                             const char *campaign_id,
                                             struct ews_campaign *campaign,
                                             char *errstr, size_t errstr_size);

/* Calls cb for up to max records of the outbox, *left to how many it
 * holds. */
enum ews_store_result ews_store_outbox_scan(
        struct ews_store *store, struct ews_outbox_ref ref, size_t max,
        void (*cb)(void *opaque, const char *id, const unsigned char *data,
                   size_t len),
        void *opaque, int64_t *left, char *errstr, size_t errstr_size);

/* Deletes delivered records: one pipelined round trip. */
enum ews_store_result ews_store_outbox_delete(struct ews_store *store,
                                              const struct ews_outbox_key *keys,
                                              size_t cnt, char *errstr,
                                              size_t errstr_size);

/* Calls cb with the i-th record (keys[i]) for each of them still there:
 * one pipelined round trip. */
enum ews_store_result
ews_store_outbox_get(struct ews_store *store, const struct ews_outbox_key *keys,
                     size_t cnt,
                     void (*cb)(void *opaque, size_t i,
                                const unsigned char *data, size_t len),
                     void *opaque, char *errstr, size_t errstr_size);

/* *total to the records the outboxes of keys (ids NULL) hold: one
 * pipelined round trip. */
enum ews_store_result ews_store_outbox_len(struct ews_store *store,
                                           const struct ews_outbox_key *keys,
                                           size_t cnt, int64_t *total,
                                           char *errstr, size_t errstr_size);

/* Parked records: those Kafka refused for good, moved out of their outbox
 * (atomically: a record is in exactly one of the two) so that they are
 * not sent again, until retried (moved back) or dropped by hand. */

/* Moves record id of outbox ref to its parked records, with when (wall
 * clock) and why: librdkafka's error code name and text. EWS_STORE_OK,
 * EWS_STORE_NOT_FOUND when the outbox no longer held it (delivered or
 * parked meanwhile), EWS_STORE_ERROR. */
enum ews_store_result ews_store_outbox_park(struct ews_store *store,
                                            struct ews_outbox_ref ref,
                                            const char *id, int64_t now_ms,
                                            const char *code, const char *error,
                                            char *errstr, size_t errstr_size);

/* *total to the parked records of the outboxes of keys (ids NULL): one
 * pipelined round trip. */
enum ews_store_result ews_store_parked_len(struct ews_store *store,
                                           const struct ews_outbox_key *keys,
                                           size_t cnt, int64_t *total,
                                           char *errstr, size_t errstr_size);

/* The outboxes there may be: the leader's, then each partition of both
 * topics up to the count in m:<topic>. refs holds at least
 * EWS_OUTBOX_REFS_MAX; *cnt to how many were written. */
#define EWS_OUTBOX_REFS_MAX (EWS_SOURCE_COUNT * EWS_PARTITIONS_MAX + 1)
enum ews_store_result ews_store_outbox_refs(struct ews_store *store,
                                            struct ews_outbox_ref *refs,
                                            size_t *cnt, char *errstr,
                                            size_t errstr_size);

/* One record as ews_store_outbox_list() gives it; the pointers are valid
 * during the call only. */
struct ews_outbox_listed {
        struct ews_outbox_ref ref;
        const char *id;
        const unsigned char *data; /* the packed record (outbox.h) */
        size_t len;
        bool parked;
        int64_t parked_ms; /* parked: when, wall clock (0: unknown) */
        const char *code;  /* parked: librdkafka's error code name */
        const char *error; /* parked: its text */
};

/* Calls cb with each pending (parked false) or parked record of outbox
 * ref, walking it with HSCAN; cb may not call the store. */
enum ews_store_result ews_store_outbox_list(
        struct ews_store *store, struct ews_outbox_ref ref, bool parked,
        void (*cb)(void *opaque, const struct ews_outbox_listed *record),
        void *opaque, char *errstr, size_t errstr_size);

/* Releases parked record id of outbox ref: retry moves it back to the
 * outbox (its owner sends it at the next look), else it is dropped.
 * EWS_STORE_OK, EWS_STORE_NOT_FOUND when not parked, EWS_STORE_ERROR. */
enum ews_store_result ews_store_parked_release(struct ews_store *store,
                                               struct ews_outbox_ref ref,
                                               const char *id, bool retry,
                                               char *errstr,
                                               size_t errstr_size);

/* The smallest stored watermark over every partition of source's topic
 * (0 when one has none yet, or the partition count is not recorded) and
 * the largest (0: none). EWS_STORE_OK or EWS_STORE_ERROR. */
enum ews_store_result ews_store_watermarks(struct ews_store *store,
                                           enum ews_source source,
                                           int64_t *min_ms, int64_t *max_ms,
                                           char *errstr, size_t errstr_size);

struct ews_store_stats {
        int64_t cache_hits, cache_misses;
        int64_t reconnects;
        int64_t failovers;       /* the sentinels named another primary */
        int64_t wait_shortfalls; /* WAIT: fewer replicas than asked for */
};
struct ews_store_stats ews_store_stats(const struct ews_store *store);

/* Registers the store's rows (reconnects, failovers, WAIT shortfalls,
 * user cache) in the metrics table; they borrow store. 0, or -1 when out
 * of memory. */
int ews_store_metrics_register(struct ews_store *store,
                               struct ews_metrics *metrics);

/* Whether the last call reached Redis. */
bool ews_store_connected(const struct ews_store *store);

#endif
