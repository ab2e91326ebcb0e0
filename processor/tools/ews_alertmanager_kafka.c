/* ews-alertmanager, reading: the consumer group's assignments, the rebuild
 * of the active alerts from each partition's history, and the offsets of
 * what was posted. */
#include "tools/ews_alertmanager.h"
#include "decode/decode.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int64_t am_clock_ms(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Room for partition ids up to p; new slots are live with nothing done. */
static int am_grow(struct am_bridge *b, int32_t p)
{
        int64_t *until, *done;
        int i, cnt = p + 1;

        if (p < b->partition_cnt)
                return 0;
        if (p >= AM_PARTITIONS_MAX)
                return -1;
        until = realloc(b->until, (size_t)cnt * sizeof(*until));
        if (until)
                b->until = until;
        done = until ? realloc(b->done, (size_t)cnt * sizeof(*done)) : NULL;
        if (!done)
                return -1;
        b->done = done;
        for (i = b->partition_cnt; i < cnt; i++)
                b->until[i] = b->done[i] = -1;
        b->partition_cnt = cnt;
        return 0;
}

/* Each partition is read from the start of its retention: the records
 * below the group's committed offset only rebuild the memory, the others
 * are posted. Without a committed offset (a new group, or the coordinator
 * did not answer) everything is posted: resolved episodes too, which
 * Alertmanager keeps quiet. */
static void am_assign(struct am_bridge *b, rd_kafka_topic_partition_list_t *ps)
{
        rd_kafka_resp_err_t err = rd_kafka_committed(b->rk, ps, 10000);
        rd_kafka_topic_partition_t *tp;
        int64_t committed;
        int i;

        if (err)
                ews_warn(AM_MOD,
                         "committed offsets of group: %s; every alert the "
                         "topic holds is posted again",
                         rd_kafka_err2str(err));
        for (i = 0; i < ps->cnt; i++) {
                tp = &ps->elems[i];
                committed = err || tp->err || tp->offset < 0 ? -1 : tp->offset;
                if (am_grow(b, tp->partition)) {
                        ews_err(AM_MOD, "%s [%" PRId32 "]: out of memory",
                                tp->topic, tp->partition);
                        continue;
                }
                b->until[tp->partition] = committed > 0 ? committed : -1;
                b->done[tp->partition] = -1;
                b->rebuilding += committed > 0;
                ews_info(AM_MOD,
                         "%s [%" PRId32 "]: assigned; committed offset %s: %s",
                         tp->topic, tp->partition,
                         committed >= 0 ? "found" : "none",
                         committed > 0 ? "the records below it rebuild the "
                                         "active alerts"
                                       : "every record is posted");
                tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
}

/* The partitions' episodes are another member's now. */
static void am_revoke(struct am_bridge *b, rd_kafka_topic_partition_list_t *ps)
{
        const char *episode;
        json_t *entry, *p;
        void *tmp;
        int i;

        json_object_foreach_safe(b->memory, tmp, episode, entry)
        {
                p = json_object_get(entry, "p");
                for (i = 0; i < ps->cnt; i++)
                        if (json_integer_value(p) == ps->elems[i].partition) {
                                json_object_del(b->memory, episode);
                                break;
                        }
        }
        for (i = 0; i < ps->cnt; i++) {
                if (ps->elems[i].partition >= b->partition_cnt)
                        continue;
                b->rebuilding -= b->until[ps->elems[i].partition] >= 0;
                b->until[ps->elems[i].partition] = -1;
                b->done[ps->elems[i].partition] = -1;
        }
}

void am_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t *ps, void *opaque)
{
        struct am_bridge *b = opaque;
        bool cooperative =
                !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;

        b->assign_gen++;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                am_assign(b, ps);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, ps);
                else
                        err = rd_kafka_assign(rk, ps);
        } else {
                am_revoke(b, ps);
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, ps);
                else
                        err = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                ews_err(AM_MOD, "rebalance: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (err && err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS &&
                   err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                ews_err(AM_MOD, "rebalance: %s", rd_kafka_err2str(err));
        }
}

/* Pause (or resume) every assigned partition: nothing more is read while
 * Alertmanager cannot take what was. */
void am_pause(struct am_bridge *b, bool pause)
{
        rd_kafka_topic_partition_list_t *ps = NULL;

        if (rd_kafka_assignment(b->rk, &ps) || !ps)
                return;
        if (pause)
                rd_kafka_pause_partitions(b->rk, ps);
        else
                rd_kafka_resume_partitions(b->rk, ps);
        rd_kafka_topic_partition_list_destroy(ps);
        b->paused_gen = pause ? b->assign_gen : -1;
}

/* Offsets of what was posted go to the group; the next auto commit takes
 * them. */
void am_store(struct am_bridge *b)
{
        rd_kafka_topic_partition_list_t *ps =
                rd_kafka_topic_partition_list_new(4);
        int i;

        for (i = 0; i < b->partition_cnt; i++) {
                if (b->done[i] < 0)
                        continue;
                rd_kafka_topic_partition_list_add(ps, b->topic, i)->offset =
                        b->done[i];
                b->done[i] = -1;
        }
        if (ps->cnt)
                rd_kafka_offsets_store(b->rk, ps);
        b->unstored = false;
        rd_kafka_topic_partition_list_destroy(ps);
}

/* Partition p's history is read: once every partition's is, the active
 * alerts are posted. */
static void am_rebuilt(struct am_bridge *b, int32_t p)
{
        b->until[p] = -1;
        if (--b->rebuilding)
                return;
        ews_info(AM_MOD, "%zu active alerts known from the history; posting",
                 am_active_count(b));
        b->next_resend = am_clock_ms(CLOCK_MONOTONIC);
}

void am_handle(struct am_bridge *b, const rd_kafka_message_t *m)
{
        static struct ews_alert alert;
        int32_t p = m->partition;
        bool live;
        char errstr[256];

        if (p < 0 || p >= b->partition_cnt)
                return; /* not ours: an assignment we could not track */
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (b->until[p] >= 0)
                        am_rebuilt(b, p);
                return;
        }
        /* The committed offset may be gone with the retention. */
        if (b->until[p] >= 0 && m->offset >= b->until[p])
                am_rebuilt(b, p);
        live = b->until[p] < 0;
        b->read_cnt++;
        if (ews_decode_alert(b->decoder, m->payload, m->payload ? m->len : 0,
                             &alert, errstr, sizeof(errstr))) {
                b->undecodable_cnt++;
                ews_err(AM_MOD,
                        "%s [%" PRId32 "] offset %" PRId64
                        ": cannot decode, skipped: %s",
                        b->topic, p, m->offset, errstr);
        } else if (am_memory_apply(b, &alert, p, live,
                                   am_clock_ms(CLOCK_REALTIME))) {
                ews_err(AM_MOD, "out of memory");
                am_stop = 1;
                return;
        }
        if (live) {
                b->done[p] = m->offset + 1;
                b->unstored = true;
        } else if (m->offset + 1 >= b->until[p]) {
                am_rebuilt(b, p);
        }
}
