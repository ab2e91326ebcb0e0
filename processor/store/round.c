/* A round of fenced commits: the partitions' commits of one batch, applied
 * in one MULTI/EXEC after their fences were checked.
 *
 * The fence is as strong as a script's check: the round WATCHes every
 * fence it is about to write and reads them; a commit whose epoch or
 * offset does not match is left out (fenced off); the others go in one
 * MULTI/EXEC, which Redis refuses (a nil reply) if any watched fence
 * changed since the WATCH, so no commit applies on a fence that moved.
 * Two round trips a batch; Redis runs only native commands. */
#include "util/log.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int round_fence_key(struct ews_store *store, struct store_resp *r,
                           const struct store_part *p)
{
        char key[sizeof(store->prefix) + 300];

        snprintf(key, sizeof(key), "%sp:%s:%d", store->prefix,
                 store->topics[p->source], (int)p->partition);
        return store_resp_str(r, key);
}

void store_round_decide_rest(struct store_round *round,
                             enum ews_store_result result, const char *errstr)
{
        size_t i;

        for (i = 0; i < round->cnt; i++)
                if (round->parts[i].result == EWS_STORE_OK) {
                        round->parts[i].result = result;
                        snprintf(round->parts[i].errstr,
                                 sizeof(round->parts[i].errstr), "%s", errstr);
                }
}

static void round_fail(struct ews_store *store, struct store_round *round,
                       const char *what)
{
        char errstr[256];

        store_fail(store, errstr, sizeof(errstr), what);
        store_round_decide_rest(round, EWS_STORE_ERROR, errstr);
}

static int round_send(struct ews_store *store, struct store_resp *r)
{
        return redisAppendFormattedCommand(store->redis, r->buf, r->len) ==
                               REDIS_OK
                       ? 0
                       : -1;
}

static redisReply *round_reply(struct ews_store *store)
{
        redisReply *reply = NULL;

        if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK)
                return NULL;
        return reply;
}

static bool round_field_is(const redisReply *r, int64_t want)
{
        int64_t v;

        if (want < 0)
                return r->type == REDIS_REPLY_NIL ||
                       (r->type == REDIS_REPLY_STRING && !r->len);
        return r->type == REDIS_REPLY_STRING &&
               !store_parse_i64(r->str, r->len, &v) && v == want;
}

static void round_fenced(struct store_part *p, const char *what,
                         const redisReply *r)
{
        p->result = EWS_STORE_FENCED;
        snprintf(p->errstr, sizeof(p->errstr),
                 "fenced off: stored %s is '%.*s'", what,
                 r->type == REDIS_REPLY_STRING ? (int)r->len : 0,
                 r->type == REDIS_REPLY_STRING ? r->str : "");
}

/* WATCH the fences, read them: a part whose fence does not hold is fenced
 * off; the watermark never goes back. 0, or -1 (connection failed). */
static int round_watch(struct ews_store *store, struct store_round *round)
{
        struct store_resp *r = &round->cmd;
        redisReply *reply;
        int64_t stored;
        size_t i;

        store_resp_reset(r);
        if (store_resp_cmd(r, 1 + (int)round->cnt) ||
            store_resp_str(r, "WATCH"))
                return -1;
        for (i = 0; i < round->cnt; i++)
                if (round_fence_key(store, r, &round->parts[i]))
                        return -1;
        for (i = 0; i < round->cnt; i++)
                if (store_resp_cmd(r, 5) || store_resp_str(r, "HMGET") ||
                    round_fence_key(store, r, &round->parts[i]) ||
                    store_resp_str(r, "epoch") || store_resp_str(r, "offset") ||
                    store_resp_str(r, "watermark"))
                        return -1;
        if (round_send(store, r) || !(reply = round_reply(store)))
                return -1;
        if (reply->type != REDIS_REPLY_STATUS) {
                freeReplyObject(reply);
                return -1;
        }
        freeReplyObject(reply);
        for (i = 0; i < round->cnt; i++) {
                struct store_part *p = &round->parts[i];

                if (!(reply = round_reply(store)))
                        return -1;
                if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
                        freeReplyObject(reply);
                        return -1;
                }
                if (!round_field_is(reply->element[0], p->epoch))
                        round_fenced(p, "epoch", reply->element[0]);
                else if (!round_field_is(reply->element[1], p->expected_offset))
                        round_fenced(p, "offset", reply->element[1]);
                else if (reply->element[2]->type == REDIS_REPLY_STRING &&
                         !store_parse_i64(reply->element[2]->str,
                                          reply->element[2]->len, &stored) &&
                         stored > 0) {
                        p->stored_watermark_ms = stored;
                        if (stored > p->watermark_ms)
                                p->watermark_ms = stored;
                }
                freeReplyObject(reply);
        }
        return 0;
}

/* Hours of timers deleted at most by one commit: older ones are left
 * (after a jump of the watermark only stale entries can be in them). */
#define ROUND_PASSED_HOURS_MAX 48

/* The hours of timers the watermark passed: every timer filed in them has
 * fired and moved on, but entries of users whose state expired or whose
 * deadline rounding kept in place; they go. */
static int round_passed_hours(struct ews_store *store, struct store_resp *r,
                              struct store_part *p)
{
        char timers[sizeof(store->prefix) + 300];
        int64_t hour, end;

        if (p->source != EWS_SOURCE_USAGE || p->stored_watermark_ms <= 0)
                return 0;
        hour = p->stored_watermark_ms / STORE_TIMER_BUCKET_MS;
        end = p->watermark_ms / STORE_TIMER_BUCKET_MS;
        if (end - hour > ROUND_PASSED_HOURS_MAX)
                hour = end - ROUND_PASSED_HOURS_MAX;
        if (hour >= end)
                return 0;
        if (store_timer_prefix(store, p->partition, timers, sizeof(timers)) ||
            store_resp_cmd(r, 1 + (int)(end - hour)) ||
            store_resp_str(r, "DEL"))
                return -1;
        for (; hour < end; hour++)
                if (store_resp_cat_i64(r, timers, ":", hour))
                        return -1;
        p->tail_cmds++;
        return 0;
}

/* The fence's own write: watermark, idle clock, next offset; and the
 * hours of timers it passed. */
static int round_fence_write(struct ews_store *store, struct store_resp *r,
                             struct store_part *p)
{
        bool offset = p->next_offset >= 0;

        p->tail_cmds = 1;
        return store_resp_cmd(r, offset ? 8 : 6) || store_resp_str(r, "HSET") ||
               round_fence_key(store, r, p) || store_resp_str(r, "watermark") ||
               store_resp_i64(r, p->watermark_ms) ||
               store_resp_str(r, "idle") || store_resp_i64(r, p->idle_ms) ||
               (offset && (store_resp_str(r, "offset") ||
                           store_resp_i64(r, p->next_offset))) ||
               round_passed_hours(store, r, p);
}

/* The transaction goes to hiredis' output buffer a piece at a time and to
 * the socket whenever the buffer holds ROUND_FLUSH_BYTES: the bodies are
 * the bulk of a round (a few hundred bytes a user written, tens of MB for
 * a batch of a million users' events) and are never copied whole again. */
#define ROUND_FLUSH_BYTES (256 * 1024)

/* bytes (cnt commands) after the transaction's commands so far: 0, or -1
 * (out of memory, or the connection failed). */
static int round_put(struct ews_store *store, const char *bytes, size_t len)
{
        int done = 0;

        if (redisAppendFormattedCommand(store->redis, bytes, len) != REDIS_OK)
                return -1;
        if (sdslen(store->redis->obuf) < ROUND_FLUSH_BYTES)
                return 0;
        while (!done)
                if (redisBufferWrite(store->redis, &done) != REDIS_OK)
                        return -1;
        return 0;
}

/* The key of a round's sorted-set write (store_zkey_fn; ctx: the store):
 * a segment's shard, or an account queue's. */
static int round_zkey(void *ctx, struct store_resp *r, enum store_zkind kind,
                      int64_t key)
{
        char name[sizeof(((struct ews_store *)0)->prefix) + 80];

        if (kind == STORE_Z_QUEUE)
                store_queue_key(ctx, (int)key, name, sizeof(name));
        else
                store_segment_key(ctx, (int)(key / STORE_SEGMENT_SHARDS),
                                  (int)(key % STORE_SEGMENT_SHARDS), name,
                                  sizeof(name));
        return store_resp_str(r, name);
}

/* The segment moves and account queue entries of the parts whose fence
 * holds, grouped by shard, to r: the commands written, -1 when out of
 * memory. */
static int64_t round_segments(struct ews_store *store,
                              struct store_round *round, struct store_resp *r)
{
        struct store_zops *z = &round->segs;
        size_t cmds = r->cmds, n = 0, k, i;

        for (k = 0; k < round->cnt; k++) {
                const struct store_part *p = &round->parts[k];

                for (i = p->segs_start;
                     p->result == EWS_STORE_OK && i < p->segs_end; i++)
                        z->ops[n++] = z->ops[i];
        }
        z->cnt = n;
        if (store_zops_write(z, r, round_zkey, store))
                return -1;
        return (int64_t)(r->cmds - cmds);
}

/* MULTI, the summed counters, the segment moves and the bodies of the
 * parts whose fence holds with their fence writes, EXEC, sent: the number
 * of commands queued, -1 when out of memory or the connection failed (the
 * transaction was then cut off: Redis discards it with the connection). */
static int64_t round_multi(struct ews_store *store, struct store_round *round)
{
        struct store_resp *r = &round->cmd;
        int64_t counted, moved, queued;
        size_t i;

        store_resp_reset(r);
        if (store_resp_cmd(r, 1) || store_resp_str(r, "MULTI"))
                return -1;
        counted = store_counters_write(&round->counters, round->parts,
                                       round->cnt, r);
        moved = counted < 0 ? -1 : round_segments(store, round, r);
        if (moved < 0 || round_put(store, r->buf, r->len))
                return -1;
        round->counters_cmds = (size_t)counted;
        round->segs_cmds = (size_t)moved;
        queued = counted + moved;
        for (i = 0; i < round->cnt; i++) {
                struct store_part *p = &round->parts[i];

                if (p->result != EWS_STORE_OK)
                        continue;
                store_resp_reset(r);
                if (round_put(store, round->body.buf + p->body_start,
                              p->body_end - p->body_start) ||
                    round_fence_write(store, r, p) ||
                    round_put(store, r->buf, r->len))
                        return -1;
                queued += (int64_t)(p->body_cmds + p->tail_cmds);
        }
        store_resp_reset(r);
        if (store_resp_cmd(r, 1) || store_resp_str(r, "EXEC") ||
            round_put(store, r->buf, r->len))
                return -1;
        return queued;
}

/* The rest of the transaction to the socket, however much it is: 0, or -1
 * when the connection failed. */
static int round_flush(struct ews_store *store)
{
        int done = 0;

        while (!done)
                if (redisBufferWrite(store->redis, &done) != REDIS_OK)
                        return -1;
        return 0;
}

void store_round_send(struct ews_store *store, struct store_round *round)
{
        redisReply *reply;
        int64_t queued;
        size_t i, ok = 0;

        round->applied = true;
        if (!round->cnt)
                return;
        if (!store->redis) {
                store_round_decide_rest(round, EWS_STORE_ERROR,
                                        "redis commit: connection lost");
                return;
        }
        if (round_watch(store, round)) {
                round_fail(store, round, "commit");
                return;
        }
        for (i = 0; i < round->cnt; i++)
                ok += round->parts[i].result == EWS_STORE_OK;
        if (!ok) {
                store_resp_reset(&round->cmd);
                if (store_resp_cmd(&round->cmd, 1) ||
                    store_resp_str(&round->cmd, "UNWATCH") ||
                    round_send(store, &round->cmd) ||
                    !(reply = round_reply(store))) {
                        round_fail(store, round, "commit");
                        return;
                }
                freeReplyObject(reply);
                return;
        }
        queued = round_multi(store, round);
        if (queued < 0 || round_flush(store)) {
                /* the transaction cut off, and the WATCH stays: a new
                 * connection */
                round_fail(store, round, "commit (out of memory or lost)");
                return;
        }
        round->queued = queued;
        round->due = true;
}

void store_round_read(struct ews_store *store, struct store_round *round)
{
        if (!round->due)
                return;
        round->due = false;
        if (store_round_exec(store, round, round->queued))
                round_fail(store, round, "commit");
}

static void round_reset(struct store_round *round)
{
        round->cnt = 0;
        round->received = 0;
        round->applied = false;
        round->due = false;
        round->counters_cmds = 0;
        round->segs_cmds = 0;
        store_resp_reset(&round->body);
        store_counters_reset(&round->counters);
        store_zops_reset(&round->segs);
}

void store_round_free(struct store_round *round)
{
        store_resp_free(&round->body);
        store_resp_free(&round->cmd);
        store_idset_free(&round->accounts);
        store_idset_free(&round->queues);
        store_zops_free(&round->zops);
        store_zops_free(&round->segs);
        store_counters_free(&round->counters);
        free(round->parts);
        memset(round, 0, sizeof(*round));
}

enum ews_store_result ews_store_commit_send(struct ews_store *store,
                                            const struct ews_commit *commit,
                                            char *errstr, size_t errstr_size)
{
        struct store_round *round = &store->round;

        if (round->applied && round->received == round->cnt)
                round_reset(round);
        if (round->applied) {
                snprintf(errstr, errstr_size,
                         "redis commit: a round is still being received");
                return EWS_STORE_ERROR;
        }
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (store_commit_build(store, round, commit)) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_commit_recv(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition, char *errstr,
                                            size_t errstr_size)
{
        struct store_round *round = &store->round;
        enum ews_store_result result;
        const struct store_part *p;

        if (round->received >= round->cnt) {
                snprintf(errstr, errstr_size, "redis commit: none pending");
                return EWS_STORE_ERROR;
        }
        if (!round->applied)
                store_round_send(store, round);
        store_round_read(store, round);
        p = &round->parts[round->received++];
        result = p->result;
        if (p->source != source || p->partition != partition) {
                ews_err("store", "commit replies out of order");
                result = EWS_STORE_ERROR;
        }
        if (result != EWS_STORE_OK) {
                snprintf(errstr, errstr_size, "%s", p->errstr);
                if (source == EWS_SOURCE_USAGE)
                        ews_user_cache_drop(store->cache, partition);
        }
        if (round->received == round->cnt)
                round_reset(round);
        return result;
}

void ews_store_commit_flush(struct ews_store *store)
{
        struct store_round *round = &store->round;

        if (round->cnt && !round->applied)
                store_round_send(store, round);
}

enum ews_store_result ews_store_commit(struct ews_store *store,
                                       const struct ews_commit *commit,
                                       char *errstr, size_t errstr_size)
{
        enum ews_store_result result =
                ews_store_commit_send(store, commit, errstr, errstr_size);

        if (result != EWS_STORE_OK) {
                if (commit->source == EWS_SOURCE_USAGE)
                        ews_user_cache_drop(store->cache, commit->partition);
                return result;
        }
        return ews_store_commit_recv(store, commit->source, commit->partition,
                                     errstr, errstr_size);
}
