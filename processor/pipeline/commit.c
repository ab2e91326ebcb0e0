/* A partition's commit and the round of them: what the partition's share
 * of a batch wrote (its users, cohorts, campaigns, funnel, its dead
 * letters and alerts for the outbox) sent to the store with the others,
 * then each reply read in order and the partition gone on (alerts out,
 * offset stored) or back to its fence. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool commit_records(struct ews_pipeline *p, enum ews_source source,
                           int32_t partition)
{
        struct ews_outbox_entry entry;
        char id[EWS_OUTBOX_ID_MAX];
        size_t i;

        for (i = 0; i < p->dead_cnt; i++) {
                const struct batch_dead *dead = &p->dead[i];
                const char *reason = ews_decode_err_name(dead->err);

                if (dead->source != source || dead->partition != partition)
                        continue;
                memset(&entry, 0, sizeof(entry));
                entry.kind = EWS_OUTBOX_DEAD;
                entry.key =
                        dead->has_key ? p->dead_bytes + dead->key_off : NULL;
                entry.key_len = dead->has_key ? dead->key_len : 0;
                entry.value = dead->has_value ? p->dead_bytes + dead->value_off
                                              : NULL;
                entry.value_len = dead->has_value ? dead->value_len : 0;
                entry.reason = reason;
                entry.reason_len = strlen(reason);
                entry.detail = dead->detail;
                entry.detail_len = strlen(dead->detail);
                entry.source_topic = p->config->topics[source];
                entry.source_topic_len = strlen(entry.source_topic);
                entry.partition = partition;
                entry.offset = dead->offset;
                entry.timestamp_ms = dead->timestamp_ms;
                snprintf(id, sizeof(id), "dlq:%s:%d:%lld",
                         p->config->topics[source], (int)partition,
                         (long long)dead->offset);
                if (!ews_delivery_record_add(p->delivery, id, &entry))
                        return false;
        }
        for (i = p->alert_first; i < p->alert_cnt; i++)
                if (!ews_delivery_alert_too_old(p->delivery, &p->alerts[i],
                                                p->now_ms) &&
                    !ews_delivery_record_alert(p->delivery, &p->alerts[i]))
                        return false;
        return true;
}

/* The partition's dirty users, with their deadlines; and those whose
 * timer the store must move though nothing else changed (a user the
 * timers brought in early, its deadline since moved by a reload of the
 * rules, or filed by an earlier version). */
static size_t commit_dirty_users(struct ews_pipeline *p, int32_t partition,
                                 int64_t watermark_ms)
{
        size_t i, cnt = 0;
        int64_t deadline;

        for (i = (size_t)p->part_first[partition];
             i < (size_t)p->part_first[partition + 1]; i++) {
                struct batch_user *bu = pipeline_user(p, p->part_users[i]);
                struct ews_user *user =
                        pipeline_user_state(p, p->part_users[i]);

                deadline = ews_rules_user_deadline(&p->config->rules, user);
                if (!bu->dirty &&
                    !ews_store_timer_moves(user->keep.timer_ms, deadline,
                                           watermark_ms))
                        continue;
                p->commit_users[cnt].user = user;
                p->commit_users[cnt++].deadline_ms = deadline;
        }
        return cnt;
}

static bool commit_prepare(struct ews_pipeline *p, struct ews_commit *commit,
                           size_t first)
{
        size_t i;

        if (!ews_grow((void **)&p->commit_users, &p->commit_users_cap,
                      p->users.cnt + 1, sizeof(*p->commit_users)) ||
            !ews_grow((void **)&p->commit_cohorts, &p->commit_cohorts_cap,
                      p->cohorts.cnt + 1, sizeof(*p->commit_cohorts)) ||
            !commit_records(p, commit->source, commit->partition))
                return false;
        commit->users = p->commit_users;
        if (commit->source == EWS_SOURCE_USAGE)
                commit->user_cnt = commit_dirty_users(p, commit->partition,
                                                      commit->watermark_ms);
        commit->campaigns = batch_table_at(&p->campaigns, 0);
        commit->campaign_cnt = p->campaigns.cnt;
        for (i = 0; i < p->cohorts.cnt; i++)
                p->commit_cohorts[i] =
                        ((struct batch_cohort *)batch_table_at(&p->cohorts, i))
                                ->delta;
        commit->cohorts = p->commit_cohorts;
        commit->cohort_cnt = p->cohorts.cnt;
        commit->outbox = ews_delivery_records_view(p->delivery, first,
                                                   &commit->outbox_cnt);
        return pipeline_funnel_commit(p, commit);
}

/* The partition's entry among the round's commits; NULL when out of
 * memory, the partition then gone back to its fence. */
static struct pipeline_pending *commit_pending(struct ews_pipeline *p,
                                               enum ews_source source,
                                               int32_t partition)
{
        const struct pipeline_part *part =
                ews_partitions_get(p->parts, source, partition);
        struct pipeline_pending *c;

        if (!ews_grow((void **)&p->pending, &p->pending_cap, p->pending_cnt + 1,
                      sizeof(*p->pending))) {
                ews_err("pipeline", "out of memory");
                /* the replies due first: recovering calls the store */
                pipeline_round_finish(p);
                ews_partitions_recover(
                        p->parts, source, partition,
                        ews_partitions_get(p->parts, source, partition)
                                ->batch_first);
                return NULL;
        }
        c = &p->pending[p->pending_cnt++];
        memset(c, 0, sizeof(*c));
        c->source = source;
        c->partition = partition;
        c->batch_first = part->batch_first;
        c->next_offset = part->batch_next;
        c->record_first = ews_delivery_records_mark(p->delivery);
        c->result = EWS_STORE_ERROR;
        return c;
}

/* Prepares the partition's commit and sends it; its reply is read when
 * the round finishes. */
void pipeline_commit(struct ews_pipeline *p, enum ews_source source,
                     int32_t partition, int64_t watermark_ms)
{
        struct pipeline_part *part =
                ews_partitions_get(p->parts, source, partition);
        struct pipeline_pending *c = commit_pending(p, source, partition);
        struct ews_commit commit;

        if (!c)
                return;
        c->watermark_ms = watermark_ms;
        memset(&commit, 0, sizeof(commit));
        commit.source = source;
        commit.partition = partition;
        commit.epoch = part->epoch;
        commit.expected_offset = part->next_offset;
        commit.next_offset = part->batch_next;
        commit.watermark_ms = watermark_ms;
        commit.idle_ms = p->now_ms;
        if (!commit_prepare(p, &commit, c->record_first)) {
                snprintf(c->errstr, sizeof(c->errstr), "out of memory");
                return;
        }
        c->record_cnt = commit.outbox_cnt;
        clock_gettime(CLOCK_MONOTONIC, &c->start);
        c->result = ews_store_commit_send(p->store, &commit, c->errstr,
                                          sizeof(c->errstr));
        c->sent = c->result == EWS_STORE_OK;
        /* the next batch takes up from its end while it is in flight */
        part->inflight = true;
        part->inflight_next = part->batch_next;
}

void pipeline_round_begin(struct ews_pipeline *p)
{
        p->alert_cnt = 0;
        p->pending_cnt = 0;
        ews_delivery_records_reset(p->delivery);
}

/* later: from a rebalance callback, where the consumer takes no seek and
 * no pause: a partition goes back to its fence, or is paused, at the next
 * cron. */
static void commit_done(struct ews_pipeline *p,
                        const struct pipeline_pending *c, bool later)
{
        struct pipeline_part *part =
                ews_partitions_get(p->parts, c->source, c->partition);
        struct ews_outbox_ref ref = {(int)c->source, c->partition};

        part->inflight = false;
        if (c->result == EWS_STORE_OK) {
                p->stats.commits++;
                /* counts and logs the alerts it publishes */
                ews_delivery_records_send(p->delivery, ref, c->record_first,
                                          c->record_cnt);
                ews_partitions_committed(p->parts, c->source, c->partition,
                                         c->next_offset, c->watermark_ms,
                                         p->now_ms);
                if (part->next_offset >= 0)
                        ews_in_kafka_offset_store(p->in, c->source,
                                                  c->partition,
                                                  part->next_offset);
                return;
        }
        if (c->result == EWS_STORE_REJECTED) {
                /* Deterministic: replaying the batch would fail the same
                 * way. Stop this partition where people will see it. */
                p->stats.store_errors++;
                ews_err("pipeline",
                        "%s [%d]: the store rejected the batch at %lld: %s; "
                        "the partition is paused until this is resolved",
                        p->config->topics[c->source], (int)c->partition,
                        (long long)part->next_offset, c->errstr);
                ews_partitions_reject(p->parts, c->source, c->partition, later);
                return;
        }
        if (c->result == EWS_STORE_FENCED)
                p->stats.fenced++;
        else
                p->stats.store_errors++;
        ews_warn("pipeline", "%s [%d]: %s", p->config->topics[c->source],
                 (int)c->partition, c->errstr);
        if (later)
                ews_partitions_recover_later(p->parts, c->source, c->partition,
                                             c->batch_first);
        else
                ews_partitions_recover(p->parts, c->source, c->partition,
                                       c->batch_first);
}

/* redis.wait.replicas: the round's applied commits must reach the
 * replicas before their alerts go out and their offsets are stored. When
 * fewer acknowledge in time a failover could still take them back: their
 * outcome is unknown, and each goes back to its fence as after a
 * timed-out reply (the claim there waits for the replicas too). */
static void commit_wait_replicas(struct ews_pipeline *p)
{
        char errstr[256];
        bool applied = false;
        size_t i;

        for (i = 0; i < p->pending_cnt; i++)
                applied |= p->pending[i].result == EWS_STORE_OK;
        if (!applied ||
            ews_store_wait(p->store, errstr, sizeof(errstr)) == EWS_STORE_OK)
                return;
        for (i = 0; i < p->pending_cnt; i++) {
                struct pipeline_pending *c = &p->pending[i];

                if (c->result != EWS_STORE_OK)
                        continue;
                c->result = EWS_STORE_ERROR;
                snprintf(c->errstr, sizeof(c->errstr), "%s", errstr);
        }
}

static void commit_finish(struct ews_pipeline *p, bool later)
{
        struct timespec end;
        size_t i;

        /* every reply first: a partition going back to its fence calls the
         * store, which must not happen with replies still due */
        for (i = 0; i < p->pending_cnt; i++) {
                struct pipeline_pending *c = &p->pending[i];

                if (!c->sent)
                        continue;
                c->result =
                        ews_store_commit_recv(p->store, c->source, c->partition,
                                              c->errstr, sizeof(c->errstr));
                clock_gettime(CLOCK_MONOTONIC, &end);
                ews_histogram_observe(
                        &p->stats.commit_seconds,
                        (double)(end.tv_sec - c->start.tv_sec) +
                                (double)(end.tv_nsec - c->start.tv_nsec) / 1e9);
        }
        commit_wait_replicas(p);
        for (i = 0; i < p->pending_cnt; i++)
                commit_done(p, &p->pending[i], later);
        p->pending_cnt = 0;
}

void pipeline_round_finish(struct ews_pipeline *p)
{
        commit_finish(p, false);
}

void pipeline_round_flush(struct ews_pipeline *p)
{
        if (!p->pending_cnt)
                return;
        ews_store_commit_flush(p->store);
        p->inflight = true;
}

void pipeline_settle(struct ews_pipeline *p, bool in_callback)
{
        if (!p->inflight)
                return;
        p->inflight = false;
        commit_finish(p, in_callback);
}

/* The partition is not applied: it goes back to its fence when the round
 * finishes, as after a commit that failed. */
void pipeline_commit_failed(struct ews_pipeline *p, enum ews_source source,
                            int32_t partition, const char *why)
{
        struct pipeline_pending *c = commit_pending(p, source, partition);

        if (c)
                snprintf(c->errstr, sizeof(c->errstr), "%s", why);
}
