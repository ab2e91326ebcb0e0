/* A round's transaction read back (round.c sends it): MULTI's reply,
 * each command's QUEUED and EXEC's array, read without building reply
 * objects (hiredis would allocate each, and a round queues thousands),
 * keeping only what decides the round: whether EXEC ran, and which parts
 * an error inside it falls on. */
#include "util/log.h"
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

/* The transaction's replies are one a command, nearly all +QUEUED and
 * +OK or integers: they are read without building reply objects (hiredis
 * would allocate each), keeping only what decides the round. */
#define ROUND_ERRORS_MAX 64

struct round_replies {
        int type;           /* of the last whole reply */
        long long elements; /* its elements, for an array */
        size_t errors;      /* error replies in it, or in it as elements */
        long long at[ROUND_ERRORS_MAX]; /* their indexes (-1: the reply) */
        char first[160];                /* the first error's text */
};

static char round_sentinel;

static void *round_note(const redisReadTask *task, int type, long long elements,
                        const char *str, size_t len)
{
        struct round_replies *r = task->privdata;

        if (!task->parent) {
                r->type = type;
                r->elements = elements;
        }
        if (type == REDIS_REPLY_ERROR) {
                if (!r->errors)
                        snprintf(r->first, sizeof(r->first), "%.*s",
                                 (int)(len < sizeof(r->first)
                                               ? len
                                               : sizeof(r->first) - 1),
                                 str);
                if (r->errors < ROUND_ERRORS_MAX)
                        r->at[r->errors] = task->parent ? task->idx : -1;
                r->errors++;
        }
        return &round_sentinel;
}

static void *round_string(const redisReadTask *task, char *str, size_t len)
{
        return round_note(task, task->type, 0, str, len);
}

static void *round_array(const redisReadTask *task, int elements)
{
        return round_note(task, REDIS_REPLY_ARRAY, elements, NULL, 0);
}

static void *round_integer(const redisReadTask *task, long long value)
{
        (void)value;
        return round_note(task, REDIS_REPLY_INTEGER, 0, NULL, 0);
}

static void *round_nil(const redisReadTask *task)
{
        return round_note(task, REDIS_REPLY_NIL, 0, NULL, 0);
}

static void round_free(void *obj)
{
        (void)obj;
}

static redisReplyObjectFunctions round_functions = {
        round_string, round_array, round_integer, round_nil, round_free};

/* The next whole reply, noted in *r (reset first): 0, or -1 when the
 * connection failed. */
static int round_read(struct ews_store *store, struct round_replies *r)
{
        void *reply = NULL;

        r->type = -1;
        r->errors = 0;
        return redisGetReply(store->redis, &reply) == REDIS_OK &&
                               reply == &round_sentinel
                       ? 0
                       : -1;
}

/* Whether one of the errors falls on part p: on its commands (from at on),
 * on a summed counter it added to, or on a segment's shard while it moved
 * users (which shard is not kept: any). */
static bool round_error_of(const struct store_round *round,
                           const struct round_replies *r,
                           const struct store_part *p, size_t at)
{
        size_t e, n = p->body_cmds + p->tail_cmds;

        for (e = 0; e < r->errors; e++) {
                long long i = e < ROUND_ERRORS_MAX ? r->at[e] : -1;

                if (i < 0) /* not known where: every part's */
                        return true;
                if ((size_t)i < round->counters_cmds
                            ? store_counters_wrote(&round->counters, p,
                                                   (size_t)i)
                    : (size_t)i < round->counters_cmds + round->segs_cmds
                            ? p->segs_end > p->segs_start
                            : (size_t)i >= at && (size_t)i < at + n)
                        return true;
        }
        return false;
}

/* Which parts an error inside EXEC's reply belongs to: those stop. */
static void round_errors(struct store_round *round,
                         const struct round_replies *r)
{
        size_t k, at = round->counters_cmds + round->segs_cmds;

        for (k = 0; k < round->cnt; k++) {
                struct store_part *p = &round->parts[k];

                if (p->result != EWS_STORE_OK)
                        continue;
                if (round_error_of(round, r, p, at)) {
                        p->result = EWS_STORE_REJECTED;
                        snprintf(p->errstr, sizeof(p->errstr),
                                 "commit partly rejected: %s", r->first);
                }
                at += p->body_cmds + p->tail_cmds;
        }
}

/* Reads MULTI's reply, each command's QUEUED and EXEC's reply, and decides
 * the parts. 0, or -1 when the connection failed. */
static int round_exec_read(struct ews_store *store, struct store_round *round,
                           int64_t queued, struct round_replies *r)
{
        char first[160] = "", msg[256];
        int64_t i;

        if (round_read(store, r) || r->type != REDIS_REPLY_STATUS)
                return -1;
        for (i = 0; i < queued; i++) {
                if (round_read(store, r))
                        return -1;
                if (r->errors && !first[0])
                        snprintf(first, sizeof(first), "%s", r->first);
        }
        if (round_read(store, r))
                return -1;
        if (r->type == REDIS_REPLY_NIL) {
                /* a watched fence moved after it was read: nothing applied */
                store_round_decide_rest(
                        round, EWS_STORE_FENCED,
                        "fenced off: a fence changed during the "
                        "commit");
        } else if (r->type == REDIS_REPLY_ERROR && store_not_primary(first)) {
                /* EXECABORT from a primary demoted by a failover (or one
                 * still loading): nothing applied; the primary is
                 * elsewhere, found on the next connect */
                ews_warn("store", "commit not applied: %s", first);
                return -1;
        } else if (r->type == REDIS_REPLY_ERROR) {
                /* EXECABORT: a command was refused (OOM...), nothing
                 * applied */
                snprintf(msg, sizeof(msg), "commit rejected: %s", first);
                store_round_decide_rest(round, EWS_STORE_REJECTED, msg);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == queued) {
                /* Applied. An error here is a key of another type than
                 * ours (written by hand): the partition stops. */
                round_errors(round, r);
        } else {
                return -1;
        }
        return 0;
}

int store_round_exec(struct ews_store *store, struct store_round *round,
                     int64_t queued)
{
        redisReplyObjectFunctions *fn = store->redis->reader->fn;
        void *privdata = store->redis->reader->privdata;
        struct round_replies r;
        int rc;

        memset(&r, 0, sizeof(r));
        store->redis->reader->fn = &round_functions;
        store->redis->reader->privdata = &r;
        rc = round_exec_read(store, round, queued, &r);
        store->redis->reader->fn = fn;
        store->redis->reader->privdata = privdata;
        return rc;
}
