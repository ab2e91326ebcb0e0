/* Internal to the store module, the one place that knows hiredis: what its
 * files share. store.c owns the connection, sentinel.c finds the primary
 * through Sentinel, argv.c the arguments of a command; fence.c, commit.c,
 * read.c, scan.c, outbox.c and leader.c build their commands with them. */
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
        char sha_commit[41];
        char sha_lease[41];
        char sha_cohort[41];
        struct store_argv argv;
        /* the funnel's and segments' writes of the commit being built */
        struct store_argv ops;
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
        /* commits sent and not yet received (ews_store_commit_send) */
        size_t pending;
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

/* Drops the connection (dead after any error) and the cache with it. */
enum ews_store_result store_fail(struct ews_store *store, char *errstr,
                                 size_t errstr_size, const char *what);

/* EVALSHA of the arguments, loading the script again when the server lost
 * it. The arguments start with "EVALSHA", "" (the sha's place). */
redisReply *store_evalsha(struct ews_store *store, const char *script,
                          char *sha, char *errstr, size_t errstr_size);

/* Pipelines the arguments as one command; -1 (connection dropped) on
 * error. */
int store_append(struct ews_store *store, char *errstr, size_t errstr_size,
                 const char *what);

/* store/funnel.c: the funnel's and the segments' writes of the commit,
 * into store->ops as STORE_FUNNEL_OP strings each: a command (HINCRBY key
 * field n, ZADD key score member, ZADDNX key score member, ZREM key
 * member ""), its key and two arguments. 0, or -1 when out of memory. */
#define STORE_FUNNEL_OP 4
int store_funnel_ops(struct ews_store *store, const struct ews_commit *commit);
/* The sorted set of a segment (util/funnel.h). */
void store_segment_key(const struct ews_store *store, int segment, char *out,
                       size_t size);

int store_parse_i64(const char *s, size_t len, int64_t *out);

int store_add_partition_key(struct ews_store *store, struct store_argv *a,
                            char kind, enum ews_source source,
                            int32_t partition);

#endif
