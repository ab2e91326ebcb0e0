/* The fenced commit of one partition's batch: one EVALSHA. */
#include "util/log.h"
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <string.h>

/* funnel: the writes store/funnel.c built for this commit */
static size_t commit_op_cnt(const struct ews_store *store)
{
        return store->ops.cnt / STORE_FUNNEL_OP;
}

static size_t commit_key_cnt(const struct ews_store *store,
                             const struct ews_commit *commit)
{
        return STORE_FIXED_KEYS + commit->user_cnt + commit->campaign_cnt +
               2 * commit->account_cnt + commit->cohort_cnt +
               commit_op_cnt(store); /* funnel */
}

static int commit_keys(struct ews_store *store, const struct ews_commit *commit)
{
        struct store_argv *a = &store->argv;
        size_t i;

        if (store_argv_add(a, "EVALSHA", 7) || store_argv_add(a, "", 0) ||
            store_argv_i64(a, (int64_t)commit_key_cnt(store, commit)) ||
            store_add_partition_key(store, a, 'p', commit->source,
                                    commit->partition) ||
            store_add_partition_key(store, a, 't', commit->source,
                                    commit->partition) ||
            store_add_partition_key(store, a, 'o', commit->source,
                                    commit->partition) ||
            store_argv_addf(a, "%scq", store->prefix) ||
            store_argv_addf(a, "%saq", store->prefix))
                return -1;
        for (i = 0; i < commit->user_cnt; i++)
                if (store_argv_cat(a, store->prefix,
                                   "u:", commit->users[i].user->user_id))
                        return -1;
        for (i = 0; i < commit->campaign_cnt; i++)
                if (store_argv_cat(a, store->prefix,
                                   "c:", commit->campaigns[i].campaign_id))
                        return -1;
        for (i = 0; i < commit->account_cnt; i++)
                if (store_argv_cat(a, store->prefix,
                                   "a:", commit->accounts[i].account_id))
                        return -1;
        for (i = 0; i < commit->account_cnt; i++)
                if (store_argv_cat(a, store->prefix,
                                   "am:", commit->accounts[i].account_id))
                        return -1;
        for (i = 0; i < commit->cohort_cnt; i++)
                if (store_argv_addf(a, "%s%cb:%s", store->prefix,
                                    commit->cohorts[i].kind,
                                    commit->cohorts[i].id))
                        return -1;
        /* funnel: the keys of its writes */
        for (i = 0; i < commit_op_cnt(store); i++)
                if (store_argv_add(a,
                                   store->ops.buf + store->ops.off[4 * i + 1],
                                   store->ops.len[4 * i + 1]))
                        return -1;
        return 0;
}

static int commit_users(struct ews_store *store,
                        const struct ews_commit *commit)
{
        struct store_argv *a = &store->argv;
        size_t i;
        int len;

        for (i = 0; i < commit->user_cnt; i++) {
                const struct ews_store_user *su = &commit->users[i];

                len = ews_user_pack(su->user, commit->partition, store->packed,
                                    sizeof(store->packed));
                if (len < 0 ||
                    store_argv_add(a, su->user->user_id,
                                   strlen(su->user->user_id)) ||
                    store_argv_i64(a, su->deadline_ms) ||
                    store_argv_add(a, (const char *)store->packed,
                                   (size_t)len) ||
                    store_argv_i64(a, su->user->last_activity_ms) ||
                    store_argv_i64(a, su->account + 1))
                        return -1;
        }
        return 0;
}

static int commit_args(struct ews_store *store, const struct ews_commit *commit)
{
        struct store_argv *a = &store->argv;
        size_t i;

        store_argv_reset(a);
        if (commit_keys(store, commit) || store_argv_i64(a, commit->epoch) ||
            (commit->expected_offset >= 0
                     ? store_argv_i64(a, commit->expected_offset)
                     : store_argv_add(a, "", 0)) ||
            (commit->next_offset >= 0 ? store_argv_i64(a, commit->next_offset)
                                      : store_argv_add(a, "", 0)) ||
            store_argv_i64(a, commit->watermark_ms) ||
            store_argv_i64(a, (int64_t)commit->user_cnt) ||
            store_argv_i64(a, (int64_t)commit->campaign_cnt) ||
            store_argv_i64(a, (int64_t)commit->account_cnt) ||
            store_argv_i64(a, store->conf.retention_ms) ||
            store_argv_addf(a, "%.17g", store->conf.half_life_ms) ||
            store_argv_i64(a, commit->idle_ms) ||
            store_argv_i64(a, (int64_t)commit->outbox_cnt) ||
            store_argv_i64(a, (int64_t)commit->cohort_cnt) ||
            store_argv_i64(a, (int64_t)commit_op_cnt(store)) || /* funnel */
            commit_users(store, commit))
                return -1;
        for (i = 0; i < commit->campaign_cnt; i++) {
                const struct ews_campaign_delta *c = &commit->campaigns[i];

                if (store_argv_add(a, c->name, strlen(c->name)) ||
                    store_argv_add(a, c->channel, strlen(c->channel)) ||
                    store_argv_add(a, c->status, strlen(c->status)) ||
                    (c->has_target ? store_argv_addf(a, "%.17g",
                                                     c->target_activation_rate)
                                   : store_argv_add(a, "", 0)) ||
                    store_argv_i64(a, c->launched_ms) ||
                    store_argv_addf(a, "%.17g", c->spend_add) ||
                    store_argv_i64(a, c->signups_add) ||
                    store_argv_i64(a, c->activated_add))
                        return -1;
        }
        for (i = 0; i < commit->account_cnt; i++)
                if (store_argv_addf(a, "%.17g", commit->accounts[i].points) ||
                    store_argv_i64(a, commit->accounts[i].at_ms))
                        return -1;
        for (i = 0; i < commit->outbox_cnt; i++)
                if (store_argv_add(a, commit->outbox[i].id,
                                   strlen(commit->outbox[i].id)) ||
                    store_argv_add(a, (const char *)commit->outbox[i].data,
                                   commit->outbox[i].len))
                        return -1;
        for (i = 0; i < commit->cohort_cnt; i++) {
                const struct ews_cohort_delta *h = &commit->cohorts[i];

                if (store_argv_add(a, &h->kind, 1) ||
                    store_argv_add(a, h->id, strlen(h->id)) ||
                    store_argv_i64(a, h->day) || store_argv_i64(a, h->n) ||
                    store_argv_i64(a, h->k) || store_argv_i64(a, h->signups) ||
                    store_argv_addf(a, "%.17g", h->spend))
                        return -1;
        }
        /* funnel: command and arguments of its writes */
        for (i = 0; i < store->ops.cnt; i++)
                if (i % STORE_FUNNEL_OP != 1 &&
                    store_argv_add(a, store->ops.buf + store->ops.off[i],
                                   store->ops.len[i]))
                        return -1;
        return 0;
}

/* The users as committed are the truth of this partition: cache them,
 * from the packed values still in the command (EVALSHA, sha, key count,
 * the keys, the header arguments, then STORE_USER_ARGS per user with the
 * packed value third). */
static void commit_cache(struct ews_store *store,
                         const struct ews_commit *commit)
{
        const struct store_argv *a = &store->argv;
        size_t keys = commit_key_cnt(store, commit);
        size_t first = 3 + keys + STORE_HEADER_ARGS + 2, i, arg;

        for (i = 0; i < commit->user_cnt; i++) {
                arg = first + i * STORE_USER_ARGS;
                ews_user_cache_put(store->cache, commit->users[i].user->user_id,
                                   commit->partition,
                                   (const unsigned char *)a->ptr[arg],
                                   a->len[arg]);
        }
}

/* The reply of one commit; not OK drops the partition's cached users. */
static enum ews_store_result commit_reply(struct ews_store *store,
                                          redisReply *reply, int32_t partition,
                                          bool usage, char *errstr,
                                          size_t errstr_size)
{
        enum ews_store_result result;

        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
            reply->element[0]->type != REDIS_REPLY_INTEGER) {
                if (reply && reply->type == REDIS_REPLY_ERROR &&
                    strncmp(reply->str, "NOSCRIPT", 8)) {
                        /* The script ran and refused: not an unknown
                         * outcome, and the connection is fine. */
                        snprintf(errstr, errstr_size, "commit rejected: %s",
                                 reply->str);
                        result = EWS_STORE_REJECTED;
                } else {
                        /* Also a script flushed under a pipeline: it did
                         * not run; a new connection loads it again. */
                        result = store_fail(store, errstr, errstr_size,
                                            "commit");
                }
        } else if (reply->element[0]->integer == 1) {
                return EWS_STORE_OK;
        } else {
                snprintf(errstr, errstr_size, "fenced off: stored %s is '%s'",
                         reply->elements > 1 ? reply->element[1]->str : "?",
                         reply->elements > 2 ? reply->element[2]->str : "?");
                result = EWS_STORE_FENCED;
        }
        if (usage)
                ews_user_cache_drop(store->cache, partition);
        return result;
}

enum ews_store_result ews_store_commit_send(struct ews_store *store,
                                            const struct ews_commit *commit,
                                            char *errstr, size_t errstr_size)
{
        /* A connection lost under a pipeline: the replies went with it, and
         * a new one must not answer for them. */
        if (store->pending && !store->redis) {
                snprintf(errstr, errstr_size, "redis commit: connection lost");
                return EWS_STORE_ERROR;
        }
        if (store_connect(store, errstr, errstr_size))
                return EWS_STORE_ERROR;
        if (store_funnel_ops(store, commit) || /* funnel */
            commit_args(store, commit)) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        store_argv_finish(&store->argv);
        store->argv.ptr[1] = store->sha_commit;
        store->argv.len[1] = 40;
        if (redisAppendCommandArgv(store->redis, (int)store->argv.cnt,
                                   store->argv.ptr,
                                   store->argv.len) != REDIS_OK)
                return store_fail(store, errstr, errstr_size, "commit");
        store->pending++;
        /* Cached now, from the packed values still in the command: a
         * commit that does not apply drops them when its reply comes. */
        commit_cache(store, commit);
        return EWS_STORE_OK;
}

enum ews_store_result ews_store_commit_recv(struct ews_store *store,
                                            enum ews_source source,
                                            int32_t partition, char *errstr,
                                            size_t errstr_size)
{
        enum ews_store_result result;
        redisReply *reply = NULL;

        if (!store->pending)
                return EWS_STORE_ERROR;
        store->pending--;
        if (!store->redis) {
                snprintf(errstr, errstr_size, "redis commit: connection lost");
                if (source == EWS_SOURCE_USAGE)
                        ews_user_cache_drop(store->cache, partition);
                return EWS_STORE_ERROR;
        }
        if (redisGetReply(store->redis, (void **)&reply) != REDIS_OK)
                reply = NULL;
        result = commit_reply(store, reply, partition,
                              source == EWS_SOURCE_USAGE, errstr, errstr_size);
        if (reply)
                freeReplyObject(reply);
        return result;
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
