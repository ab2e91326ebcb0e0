/* Internal to the store module, the one place that knows hiredis: what its
 * files share. store.c owns the connection, sentinel.c finds the primary
 * through Sentinel, argv.c the arguments of a command, resp.c commands
 * written in Redis' protocol; commit.c builds a partition's commit and
 * round.c applies a round of them; fence.c, read.c, scan.c, outbox.c and
 * leader.c build their commands with argv. */
#ifndef EWS_OUT_STORE_INT_H
#define EWS_OUT_STORE_INT_H

#include <hiredis/hiredis.h>

#include "store/store.h"
#include "store/cache.h"

/* Arguments of one command, in memory kept across commands: the strings
 * live in buf and are addressed by offset until the command is sent, as
 * buf may move while it grows. */
struct store_argv {
        size_t cnt, cap;
        size_t *off;
        size_t *len;
        const char **ptr;
        char *buf;
        size_t used, size;
};

struct store_sentinel {
        char host[EWS_STORE_ADDR_MAX];
        int port;
};

/* Commands in Redis' protocol, in a buffer kept across rounds. */
struct store_resp {
        char *buf;
        size_t len, size;
        size_t cmds; /* commands begun */
};

/* Decimal digits of v at the end of tmp (24 bytes); their length. */
size_t store_digits(char *tmp, int64_t v);

int store_resp_cmd(struct store_resp *r, int argc);
int store_resp_arg(struct store_resp *r, const void *s, size_t len);
int store_resp_str(struct store_resp *r, const char *s);
int store_resp_i64(struct store_resp *r, int64_t v);
/* s1 s2 s3 (or s1 s2 and v in decimal) as one argument: keys, fields. */
int store_resp_cat(struct store_resp *r, const char *s1, const char *s2,
                   const char *s3);
int store_resp_cat_i64(struct store_resp *r, const char *s1, const char *s2,
                       int64_t v);
/* cnt whole commands, already in the protocol. */
int store_resp_raw(struct store_resp *r, const void *cmds, size_t len,
                   size_t cnt);
void store_resp_reset(struct store_resp *r);
void store_resp_free(struct store_resp *r);

/* A set of (kind, id) with a value each, for one commit: the ids are
 * borrowed from the commit being built. */
struct store_idset_slot {
        const char *id; /* NULL: free */
        char kind;
        int64_t value;
};
struct store_idset {
        struct store_idset_slot *slots;
        size_t cap;      /* a power of two */
        size_t cnt;      /* in use */
        uint32_t *order; /* the slots in use, in the order added */
};

/* The slot of (kind, id), added with value init when new (*added says
 * which); NULL when out of memory. */
struct store_idset_slot *store_idset_add(struct store_idset *set, char kind,
                                         const char *id, int64_t init,
                                         bool *added);
void store_idset_reset(struct store_idset *set);
void store_idset_free(struct store_idset *set);

/* store/zset.c: a commit's sorted-set writes, gathered while it is built
 * and written at its end grouped by key, one ZREM and one ZADD per key.
 * The members are borrowed from the commit being built. */
enum store_zkind {
        STORE_Z_TIMER,
        STORE_Z_SEGMENT,
        STORE_Z_QUEUE /* an account queue's shard: ZADD LT, a whole day */
};
struct store_zop {
        int64_t key; /* the hour, -1 the partition's old key; a segment's
                      * shard: segment * STORE_SEGMENT_SHARDS + shard; a
                      * queue's: the shard */
        double score;
        const char *member; /* NULL: a copy, at `at` in the arena */
        uint32_t seq, at;
        uint8_t kind;
        bool add;
};
struct store_zops {
        struct store_zop *ops;
        size_t cnt, cap;
        char *arena; /* the members copied */
        size_t used, size;
};
/* Appends the key numbered key of kind to r: 0, or -1. */
typedef int store_zkey_fn(void *ctx, struct store_resp *r,
                          enum store_zkind kind, int64_t key);
/* 0, or -1 when out of memory. A timer's score is a whole number. add
 * borrows member until the write; add_copy copies it (kept until reset). */
int store_zops_add(struct store_zops *z, enum store_zkind kind, bool add,
                   int64_t key, double score, const char *member);
int store_zops_add_copy(struct store_zops *z, enum store_zkind kind, bool add,
                        int64_t key, double score, const char *member);
/* Writes what was added as commands to r and empties z: 0, or -1 when
 * out of memory. */
int store_zops_write(struct store_zops *z, struct store_resp *r,
                     store_zkey_fn *key, void *ctx);
/* Empties z, its copies too. */
void store_zops_reset(struct store_zops *z);
void store_zops_free(struct store_zops *z);

/* Timers are filed by the hour of their deadline, each in a small sorted
 * set: t:<topic>:<partition>:<hour> (store.h). */
#define STORE_TIMER_BUCKET_MS 3600000LL

/* The partition's <prefix>t:<topic>:<partition>, the key an earlier
 * version kept all its timers in and the start of its hours' keys. */
int store_timer_prefix(const struct ews_store *store, int32_t partition,
                       char *buf, size_t size);

/* One partition's commit in a round: its body (its writes but the
 * fence's) in the round's buffer, and what its fence must hold. */
struct store_part {
        enum ews_source source;
        int32_t partition;
        int64_t epoch, expected_offset, next_offset, watermark_ms, idle_ms;
        size_t body_start, body_end, body_cmds;
        size_t counters_start, counters_end; /* its increments */
        size_t segs_start, segs_end;         /* its segment moves and account
                                              * queue entries in the round's */
        size_t tail_cmds; /* the fence's write and the hours it passed */
        int64_t stored_watermark_ms; /* as the fence was read, 0: none */
        enum ews_store_result result;
        char errstr[256];
};

/* store/counters.c: a round's increments (HINCRBY), noted by each commit
 * and written as one command per key and field, summed over the commits
 * whose fence holds, ahead of the bodies. add: the key k1 k2 k3 (as
 * store_resp_cat), the field, and num in decimal after it unless num < 0;
 * 0, or -1 when out of memory; all are copied. write: the commands
 * written to r, -1 when out of memory. */
struct store_counter {
        size_t at; /* key, 0x1f, field in the arena */
        int64_t by;
};
struct store_counters {
        struct store_counter *v;
        size_t cnt, cap;
        char *arena;
        size_t used, size;
        struct store_idset sums;
};
int store_counters_add(struct store_counters *c, const char *k1, const char *k2,
                       const char *k3, const char *field, int64_t num,
                       int64_t by);
int64_t store_counters_write(struct store_counters *c,
                             const struct store_part *parts, size_t cnt,
                             struct store_resp *r);
/* Whether p added to the n-th command store_counters_write wrote. */
bool store_counters_wrote(const struct store_counters *c,
                          const struct store_part *p, size_t n);
void store_counters_reset(struct store_counters *c);
void store_counters_free(struct store_counters *c);

/* The commits sent and not yet received (ews_store_commit_send). */
struct store_round {
        struct store_resp body; /* the commits' bodies, in order */
        struct store_resp cmd;  /* what is sent */
        struct store_part *parts;
        size_t cnt, cap, received;
        bool applied;   /* the round went to Redis (or failed) */
        bool due;       /* its transaction's replies are still to be read */
        int64_t queued; /* its commands between MULTI and EXEC */
        struct store_idset accounts, queues;
        struct store_zops zops; /* the commit being built's */
        struct store_counters counters;
        size_t counters_cmds; /* their commands, first in the transaction */
        /* The commits' segment moves, written as the counters are: once
         * a round, for the commits whose fence holds, one ZREM and one
         * ZADD per shard with the members of every partition, after the
         * counters. A user moves once a round: it is in one partition,
         * and a partition commits once a round (a second commit there
         * is fenced off: the offset it expects is not the stored one).
         * The accounts' queue entries go with them (ZADD LT per shard): an
         * account queued by several partitions' commits keeps the
         * earliest day, as it would with one command each. */
        struct store_zops segs;
        size_t segs_cmds;
};

/* Appends the commit's body to the round (its users to the cache):
 * 0, or -1 when out of memory (nothing of it is in the round). */
int store_commit_build(struct ews_store *store, struct store_round *round,
                       const struct ews_commit *commit);

/* Applies the round's commits: send watches and reads the fences, then
 * writes one MULTI/EXEC with every commit whose fence holds to the socket;
 * read reads its replies (nothing when none are due). Each sets the
 * parts' results it decides. */
void store_round_send(struct ews_store *store, struct store_round *round);
void store_round_read(
        struct ews_store *store,
        struct store_round *round); /* Every part still undecided gets result,
                                       with errstr (round.c). */
void store_round_decide_rest(struct store_round *round,
                             enum ews_store_result result, const char *errstr);
/* round_reply.c: reads the transaction of queued commands sent and
 * decides the parts; 0, or -1 when the connection failed. */
int store_round_exec(struct ews_store *store, struct store_round *round,
                     int64_t queued);
void store_round_free(struct store_round *round);

/* dict.c: the names dictionary of the packed users. Load reads it whole
 * into the copy (0, -1 with errstr); note queues the names of user it does not
 * hold; assign gives the queued names their ids (one script call); unpack is
 * ews_user_unpack with the dictionary read again once when a value names
 * an id not held yet (0 or -1), and so must not be called with replies
 * pending. */
#define STORE_NAMES_PENDING_MAX 64
int store_names_load(struct ews_store *store, char *errstr, size_t errstr_size);
/* Drops the copy and reads it anew, as on every connection. */
int store_names_reload(struct ews_store *store, char *errstr,
                       size_t errstr_size);
void store_names_note(struct ews_store *store, const struct ews_user *user);
enum ews_store_result store_names_assign(struct ews_store *store, char *errstr,
                                         size_t errstr_size);
int store_unpack(struct ews_store *store, struct ews_user *user,
                 int32_t *partition, const unsigned char *buf, size_t len);

struct ews_store {
        struct ews_store_conf conf;
        /* where store_open() connects: conf's, or the primary the
         * sentinels named */
        char host[EWS_STORE_ADDR_MAX];
        int port;
        struct store_sentinel sentinels[EWS_STORE_SENTINELS_MAX];
        int sentinel_cnt;
        int sentinel_first; /* asked first: the last one that answered */
        char master_name[256];
        char primary[EWS_STORE_ADDR_MAX + 8]; /* last connected, "" none */
        char prefix[64];
        char topics[EWS_SOURCE_COUNT][256];
        redisContext *redis;
        char sha_claim[41];
        char sha_lease[41];
        char sha_cohort[41];
        char sha_names[41];
        char sha_sweep[41];
        int queue_cursor; /* the account queue's shard the leader reads
                           * next (queue.c) */
        int sweep_cursor; /* the users' bucket swept next (sweep.c) */
        struct ews_names *names;
        char names_pending[STORE_NAMES_PENDING_MAX][EWS_NAME_MAX];
        int names_pending_cnt;
        struct store_argv argv;
        struct ews_user_cache *cache;
        struct ews_store_stats stats;
        /* After a failed connect, calls fail fast until retry_at_ms
         * (monotonic): the backoff doubles from 0.1 s up to 4 s, so
         * an unreachable Redis does not stall the loop a timeout per call. */
        int64_t retry_at_ms, backoff_ms;
        char connect_error[256];
        /* After a WAIT fell short, WAITs fail at once until then
         * (monotonic): one recovering partition waits, not each. */
        int64_t wait_retry_at_ms;
        bool connected_once;
        struct store_round round;
        struct store_resp cohort_cmds; /* the leader's writes, sent at once */
        /* each input topic's partition count as checked at the start (0:
         * not checked): the watermarks are read by it, not by m:<topic>,
         * which a Redis that lost its last writes may have lost */
        int partition_cnt[EWS_SOURCE_COUNT];
        unsigned char packed[4096]; /* one user, as it goes to Redis */
};

int store_argv_add(struct store_argv *a, const char *s, size_t len);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int store_argv_addf(struct store_argv *a, const char *fmt, ...);
/* An integer in decimal; s1 s2 s3 concatenated (keys). Both 0 or -1. */
int store_argv_i64(struct store_argv *a, int64_t v);
int store_argv_cat(struct store_argv *a, const char *s1, const char *s2,
                   const char *s3);
void store_argv_reset(struct store_argv *a);
/* Fixes the pointers once all arguments are in. */
void store_argv_finish(struct store_argv *a);
void store_argv_free(struct store_argv *a);

/* Connects when not connected (not before the backoff allows). */
int store_connect(struct ews_store *store, char *errstr, size_t errstr_size);

/* Connects to host:port with the timeouts and keepalive, and AUTH: 0, or
 * -1 with errstr and no connection. */
int store_open(struct ews_store *store, char *errstr, size_t errstr_size);

/* AUTH as user (NULL or "": the default user) when password is set: 0,
 * or -1 with errstr starting with who. */
int store_auth(redisContext *c, const char *user, const char *password,
               const char *who, char *errstr, size_t errstr_size);

/* redis.timeout as hiredis takes it. */
struct timeval store_timeval(const struct ews_store *store);

/* The sentinels of conf, parsed: 0, or -1 with errstr (sentinel.c). */
int store_sentinels_init(struct ews_store *store, char *errstr,
                         size_t errstr_size);

/* Asks the sentinels in turn for the primary, connects to it (store_open)
 * and checks it answers ROLE as the master, asking the next sentinel when
 * it does not: 0, or -1 with errstr and no connection. Logs the sentinel
 * that answered, and counts a failover when the primary moved. */
int store_sentinel_connect(struct ews_store *store, char *errstr,
                           size_t errstr_size);

/* An error reply that says this server is not (or not yet) the primary to
 * write to (READONLY, LOADING, MASTERDOWN), not that the command is
 * wrong: the caller drops the connection, as for a lost one. */
bool store_not_primary(const char *err);

/* Drops the connection (dead after any error) and the cache with it. */
enum ews_store_result store_fail(struct ews_store *store, char *errstr,
                                 size_t errstr_size, const char *what);

/* A read's reply (store/read.c), or NULL when there is none or it is an
 * error: then it is freed and the store failed, with errstr. */
redisReply *store_read_reply(struct ews_store *store, redisReply *reply,
                             char *errstr, size_t errstr_size);

/* EVALSHA of the arguments, loading the script again when the server lost
 * it. The arguments start with "EVALSHA", "" (the sha's place). */
redisReply *store_evalsha(struct ews_store *store, const char *script,
                          char *sha, char *errstr, size_t errstr_size);

/* SCRIPT LOAD of script, its sha into sha (41 bytes): 0, or -1 with
 * errstr. */
int store_script_load(struct ews_store *store, const char *script, char *sha,
                      char *errstr, size_t errstr_size);

/* Pipelines the HMGET of campaign_id's c:<id> that store_campaign_parse
 * reads: 0, or -1 (hiredis out of memory). */
int store_campaign_append(struct ews_store *store, const char *campaign_id);
/* That HMGET's reply into campaign (reset first): EWS_STORE_OK when the
 * campaign has any field, EWS_STORE_NOT_FOUND when not. */
enum ews_store_result store_campaign_parse(const redisReply *reply,
                                           const char *campaign_id,
                                           struct ews_campaign *campaign);

/* Pipelines the arguments as one command; -1 (connection dropped) on
 * error. */
int store_append(struct ews_store *store, char *errstr, size_t errstr_size,
                 const char *what);

/* store/funnel.c: the funnel's writes of the commit: its counts added to
 * c, its first times appended to r (ZADD NX) and its segments' moves
 * added to z (their ids copied). 0, or -1 when out of memory. */
int store_funnel_cmds(struct ews_store *store, struct store_resp *r,
                      struct store_counters *c, struct store_zops *z,
                      const struct ews_commit *commit);
/* A segment (util/funnel.h) is kept in STORE_SEGMENT_SHARDS sorted sets,
 * a user in the one its id hashes to: small sets, each within Redis'
 * compact encoding (zset-max-listpack-entries, 128 by default) up to
 * about 100,000 users a segment, and a skiplist of a thousandth of the
 * segment's users past that. Fixed: a user's shard is where every
 * instance and version looks for it. */
#define STORE_SEGMENT_SHARDS 1024
/* The shard of user_id's entry. */
int store_segment_shard(const char *user_id);
/* Users are fields of STORE_USER_BUCKETS hashes (ub:<bucket>), a user in
 * the one its id hashes to (users.c): about 12 users a hash at 100,000
 * users and 122 at a million, each hash within Redis' listpack (with
 * hash-max-listpack-value above a packed user's length), which keeps a
 * user in about 88 bytes less than a key of its own. Fixed, as the
 * segments' shards are. Users have no expiry of their own: the leader
 * sweeps the buckets (sweep.c). */
#define STORE_USER_BUCKETS 8192
int store_user_bucket(const char *user_id);
/* The bucket's key, ub:<bucket>; an earlier version's key of user_id,
 * u:<id>. */
void store_user_key(const struct ews_store *store, int bucket, char *out,
                    size_t size);
void store_user_old_key(const struct ews_store *store, const char *user_id,
                        char *out, size_t size);
/* Pipelines the reads of user_id (its field in its bucket, then an
 * earlier version's key): 0, or -1 (hiredis out of memory). */
int store_user_append(struct ews_store *store, const char *user_id);
/* Their replies as one: the bucket's, unless it has none and the earlier
 * key has (a string, a nil, or an error reply such as WRONGTYPE); the
 * caller frees it. NULL when the connection failed. */
redisReply *store_user_take(struct ews_store *store);
/* Both at once: one user, one round trip. */
redisReply *store_user_read(struct ews_store *store, const char *user_id);
/* Sends cmd (HGETALL, HKEYS) for buckets from .. from + n - 1 (modulo
 * STORE_USER_BUCKETS) in one pipelined round trip and takes the n replies
 * into replies (the caller frees them): 0, or -1 when the connection
 * failed (none kept; the caller drops the connection). */
int store_user_buckets_read(struct ews_store *store, int from, int n,
                            const char *cmd, redisReply **replies);
/* The accounts due for the leader wait in STORE_QUEUE_SHARDS sorted sets
 * (aq:<shard>), an account in the one its id hashes to: small sets in
 * Redis' listpack up to about 130,000 accounts, where one set of them all
 * was a skiplist (about 107 bytes an account against about 20). The
 * campaigns' queue (cq) stays one set: there are few. Fixed, as the
 * segments' shards are. */
#define STORE_QUEUE_SHARDS 1024
int store_queue_shard(const char *account_id);
/* The account queue's shard; shard -1 is the one set an earlier version
 * kept (aq: read and emptied, never added to). */
void store_queue_key(const struct ews_store *store, int shard, char *out,
                     size_t size);
/* The sorted set of a segment's shard; shard -1 is the one set an earlier
 * version kept the whole segment in (read until it empties). */
void store_segment_key(const struct ews_store *store, int segment, int shard,
                       char *out, size_t size);
/* A segment's score (util/funnel.h) as the commit writes it (zset.c): in
 * billionths, a whole number (or +-inf). An earlier version wrote the
 * score itself, to nine places. */
double store_segment_units(double score);
/* Units as Redis takes them, into buf (40 bytes): their length. */
size_t store_segment_text(double units, char *buf);

int store_parse_i64(const char *s, size_t len, int64_t *out);

/* The partition count recorded for topic s (m:<topic>), 0 when none is;
 * -1 when Redis failed (scan.c). */
int store_partition_count(struct ews_store *store, int s, int64_t *count,
                          char *errstr, size_t errstr_size);

int store_add_partition_key(struct ews_store *store, struct store_argv *a,
                            char kind, enum ews_source source,
                            int32_t partition);

#endif
