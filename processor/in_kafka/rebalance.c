/* The consumer's assignment: where each assigned partition starts (the
 * pipeline's fence, with the group's committed offset as a mark), and the
 * starting offsets stored so that the group's commits follow the fences. */
#include "in_kafka/in_kafka_int.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

int64_t in_kafka_offset(int64_t offset)
{
        return offset == EWS_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                                              : offset;
}

/* The group's committed offsets of an assignment, in parts' order, into a
 * copy (one round trip to the coordinator); NULL when they could not be
 * read: then every partition counts as never committed. */
static rd_kafka_topic_partition_list_t *
in_kafka_committed(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_topic_partition_list_t *copy =
                rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t err = rd_kafka_committed(rk, copy, 10000);

        if (err) {
                ews_warn("in_kafka", "committed offsets: %s",
                         rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(copy);
                return NULL;
        }
        return copy;
}

/* The committed offset of element i, -1 when none or unknown. */
static int64_t in_kafka_mark(const rd_kafka_topic_partition_list_t *committed,
                             int i)
{
        if (!committed || committed->elems[i].err ||
            committed->elems[i].offset < 0)
                return -1;
        return committed->elems[i].offset;
}

/* The real offsets (>= 0) an assignment starts from, the store's fences,
 * stored once assigned (a store before is reset by the assign): the next
 * auto commit then reports them, so the group's committed offsets follow
 * the fences even before a message arrives (a new group, or a broker that
 * lost the commits). A failed commit leaves librdkafka's committed offset
 * behind the stored one, and every auto.commit.interval.ms commits what is
 * stored and not yet committed: failed commits are retried. */
static void in_kafka_store_start(rd_kafka_t *rk,
                                 const rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_topic_partition_list_t *start =
                rd_kafka_topic_partition_list_new(parts->cnt);
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < parts->cnt; i++)
                if (parts->elems[i].offset >= 0)
                        rd_kafka_topic_partition_list_add(
                                start, parts->elems[i].topic,
                                parts->elems[i].partition)
                                ->offset = parts->elems[i].offset;
        if (start->cnt) {
                err = rd_kafka_offsets_store(rk, start);
                for (i = 0; i < start->cnt; i++)
                        if (err || start->elems[i].err)
                                ews_warn("in_kafka",
                                         "%s [%d]: storing the start offset "
                                         "%lld: %s",
                                         start->elems[i].topic,
                                         (int)start->elems[i].partition,
                                         (long long)start->elems[i].offset,
                                         rd_kafka_err2str(
                                                 start->elems[i].err
                                                         ? start->elems[i].err
                                                         : err));
        }
        rd_kafka_topic_partition_list_destroy(start);
}

/* The eager protocol has no way to assign one partition again: the whole
 * assignment is, each other partition at the next offset this consumer
 * would have fetched (what it handed out was committed, or is sought back
 * to the fence by its owner) and paused again if it was. */
static int in_kafka_reassign(struct ews_in_kafka *in, enum ews_source source,
                             int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err = rd_kafka_assignment(in->rk, &parts);
        int i, s, rc = -1;

        if (err)
                goto out;
        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];

                s = in_kafka_source(in, p->topic);
                if (s < 0 || p->partition < 0 ||
                    p->partition >= EWS_PARTITIONS_MAX)
                        continue;
                p->offset = s == (int)source && p->partition == partition
                                    ? offset
                                    : in->next[s][p->partition];
        }
        err = rd_kafka_assign(in->rk, parts);
        if (err)
                goto out;
        in_kafka_store_start(in->rk, parts);
        for (i = 0; i < parts->cnt; i++) {
                s = in_kafka_source(in, parts->elems[i].topic);
                if (s >= 0 && parts->elems[i].partition >= 0 &&
                    parts->elems[i].partition < EWS_PARTITIONS_MAX &&
                    in->paused[s][parts->elems[i].partition])
                        ews_in_kafka_pause(in, (enum ews_source)s,
                                           parts->elems[i].partition, true);
        }
        rc = 0;
out:
        if (err)
                ews_err("in_kafka", "%s [%d]: assigning again at %lld: %s",
                        in->topics[source], (int)partition, (long long)offset,
                        rd_kafka_err2str(err));
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}

int in_kafka_restart(struct ews_in_kafka *in, enum ews_source source,
                     int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *one;
        rd_kafka_error_t *error;

        if (!in_kafka_cooperative(in->rk))
                return in_kafka_reassign(in, source, partition, offset);
        one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, in->topics[source], partition)
                ->offset = offset;
        error = rd_kafka_incremental_unassign(in->rk, one);
        if (!error)
                error = rd_kafka_incremental_assign(in->rk, one);
        if (!error)
                in_kafka_store_start(in->rk, one);
        rd_kafka_topic_partition_list_destroy(one);
        if (!error)
                return 0;
        ews_err("in_kafka", "%s [%d]: assigning again at %lld: %s",
                in->topics[source], (int)partition, (long long)offset,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
}

/* An assigned partition starts unpaused, as the pipeline takes it to be.
 * librdkafka keeps an application's pause through an unassign and the next
 * assign (it resets only its own pause): a partition paused while Redis was
 * away, then revoked and assigned again, would otherwise never be fetched
 * again while the pipeline counts it as running, and ready. */
static void
in_kafka_resume_assigned(rd_kafka_t *rk,
                         const rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_topic_partition_list_t *copy =
                rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk, copy);
        int i;

        for (i = 0; i < copy->cnt; i++)
                if (err || copy->elems[i].err)
                        ews_warn("in_kafka", "%s [%d]: resume: %s",
                                 copy->elems[i].topic,
                                 (int)copy->elems[i].partition,
                                 rd_kafka_err2str(err ? err
                                                      : copy->elems[i].err));
        rd_kafka_topic_partition_list_destroy(copy);
}

/* Served inside consume, on the consuming thread: sequential with it. */
void in_kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct ews_in_kafka *in = opaque;
        rd_kafka_topic_partition_list_t *committed = NULL;
        rd_kafka_error_t *error = NULL;
        int i, source;

        in->rebalances++;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && parts->cnt)
                committed = in_kafka_committed(rk, parts);
        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];

                source = in_kafka_source(in, p->topic);
                if (source < 0 || p->partition < 0 ||
                    p->partition >= EWS_PARTITIONS_MAX) {
                        ews_err("in_kafka", "%s [%d]: not one of ours",
                                p->topic, (int)p->partition);
                        continue;
                }
                if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                        int64_t offset = EWS_OFFSET_DEFAULT;
                        int64_t mark = in_kafka_mark(committed, i);

                        in->cb.assigned(in->cb.opaque, (enum ews_source)source,
                                        p->partition, mark, &offset);
                        p->offset = offset == EWS_OFFSET_DEFAULT
                                            ? in->start_offset
                                            : in_kafka_offset(offset);
                        in_kafka_set_state(in, source, p->partition,
                                           IN_ASSIGNED);
                        in->next[source][p->partition] = p->offset;
                        in->paused[source][p->partition] = false;
                } else {
                        in->cb.revoked(in->cb.opaque, (enum ews_source)source,
                                       p->partition);
                        in->paused[source][p->partition] = false;
                        in_kafka_set_state(in, source, p->partition, 0);
                }
        }
        in->joined = true;
        ews_info("in_kafka", "%s %d partition(s)",
                 err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned"
                                                             : "revoked",
                 parts->cnt);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;

                if (in_kafka_cooperative(rk))
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        assign_err = rd_kafka_assign(rk, parts);
                if (!error && !assign_err) {
                        in_kafka_store_start(rk, parts);
                        in_kafka_resume_assigned(rk, parts);
                }
        } else {
                if (in_kafka_cooperative(rk))
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
        }
        if (error) {
                ews_err("in_kafka", "rebalance: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        if (committed)
                rd_kafka_topic_partition_list_destroy(committed);
}
