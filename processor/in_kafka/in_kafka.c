#include "in_kafka/in_kafka_int.h"
#include "util/log.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int in_kafka_source(const struct ews_in_kafka *in, const char *topic)
{
        int i;

        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                if (!strcmp(in->topics[i], topic))
                        return i;
        return -1;
}

static void in_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        (void)rk;
        ews_log(ews_log_level_from_syslog(level), "rdkafka", "%s: %s", fac,
                buf);
}

void in_kafka_set_state(struct ews_in_kafka *in, int source, int32_t partition,
                        unsigned char state)
{
        unsigned char *s = &in->state[source][partition];

        in->assigned_cnt += (state != 0) - (*s != 0);
        in->eof_cnt += (state == IN_AT_END) - (*s == IN_AT_END);
        *s = state;
}

/* NULL once the member has left or been dropped from the group (a close
 * after the group moved on without it): then an eager unassign. */
bool in_kafka_cooperative(rd_kafka_t *rk)
{
        const char *protocol = rd_kafka_rebalance_protocol(rk);

        return protocol && !strcmp(protocol, "COOPERATIVE");
}

static void in_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque)
{
        struct ews_in_kafka *in = opaque;

        (void)rk;
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                in->brokers_down = true;
        ews_warn("in_kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

/* Lag per partition and whether any broker is up, from the statistics
 * librdkafka emits every statistics.interval.ms. */
static int in_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len,
                             void *opaque)
{
        struct ews_in_kafka *in = opaque;
        json_t *root = json_loadb(json, len, 0, NULL), *topic, *p, *broker;
        const char *name, *key;
        int source, partition, up = 0;

        (void)rk;
        json_object_foreach(json_object_get(root, "topics"), name, topic)
        {
                source = in_kafka_source(in, name);
                if (source < 0)
                        continue;
                json_object_foreach(json_object_get(topic, "partitions"), key,
                                    p)
                {
                        partition = atoi(key);
                        if (partition < 0 || partition >= EWS_PARTITIONS_MAX ||
                            !json_is_integer(
                                    json_object_get(p, "consumer_lag")))
                                continue;
                        in->lag[source][partition] = json_integer_value(
                                json_object_get(p, "consumer_lag"));
                }
        }
        json_object_foreach(json_object_get(root, "brokers"), key, broker)
        {
                const char *state =
                        json_string_value(json_object_get(broker, "state"));
                up += state && !strcmp(state, "UP");
        }
        if (root)
                in->brokers_down = up == 0;
        if (up)
                in->answered = true;
        json_decref(root);
        return 0; /* librdkafka frees json */
}

static int in_kafka_set(rd_kafka_conf_t *conf, const char *key,
                        const char *value, char *errstr, size_t errstr_size)
{
        if (rd_kafka_conf_set(conf, key, value, errstr, errstr_size) !=
            RD_KAFKA_CONF_OK)
                return -1;
        return 0;
}

int ews_kafka_prop_check(const char *key, const char *value, char *errstr,
                         size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        int rc;

        if (!conf) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        rc = in_kafka_set(conf, key, value, errstr, errstr_size);
        rd_kafka_conf_destroy(conf);
        return rc;
}

/* librdkafka before 2.1.0 drops messages of partitions a member keeps
 * through an incremental (cooperative) rebalance from the batch consumer,
 * and before 2.3.0 can abort in the sticky assignor when a member that was
 * never assigned closes (`make chaos` shows both with 2.0.2): said once at
 * start, loudly, since the eager assignors are the safe choice there. */
static void in_kafka_warn_assignor(rd_kafka_conf_t *rk_conf)
{
        char value[256];
        size_t size = sizeof(value);

        if (rd_kafka_conf_get(rk_conf, "partition.assignment.strategy", value,
                              &size) != RD_KAFKA_CONF_OK ||
            !strstr(value, "cooperative-sticky") ||
            rd_kafka_version() >= 0x020300ff)
                return;
        ews_warn("in_kafka",
                 "partition.assignment.strategy=%s with librdkafka %s: "
                 "incremental rebalances can lose messages of the batch "
                 "consumer before librdkafka 2.1.0 and abort a closing member "
                 "before 2.3.0; use the eager assignors (range, roundrobin: "
                 "the default)",
                 value, rd_kafka_version_str());
}

struct ews_in_kafka *ews_in_kafka_new(const struct ews_in_kafka_conf *conf,
                                      const struct ews_in_kafka_cb *cb,
                                      char *errstr, size_t errstr_size)
{
        struct ews_in_kafka *in = calloc(1, sizeof(*in));
        rd_kafka_conf_t *rk_conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *subscription = NULL;
        rd_kafka_resp_err_t err;
        int i;

        if (!in || !rk_conf) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        in->cb = *cb;
        memset(in->lag, 0xff, sizeof(in->lag));
        memset(in->end, 0xff, sizeof(in->end));
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                if (conf->end_offsets[i])
                        memcpy(in->end[i], conf->end_offsets[i],
                               sizeof(in->end[i]));
        in->fetch_wake = conf->fetch_wake;
        in->start_offset = conf->from_end ? RD_KAFKA_OFFSET_END
                                          : RD_KAFKA_OFFSET_BEGINNING;
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                snprintf(in->topics[i], sizeof(in->topics[i]), "%s",
                         conf->topics[i]);

        if (in_kafka_set(rk_conf, "bootstrap.servers", conf->bootstrap_servers,
                         errstr, errstr_size) ||
            in_kafka_set(rk_conf, "group.id", conf->group_id, errstr,
                         errstr_size) ||
            in_kafka_set(rk_conf, "enable.auto.offset.store", "false", errstr,
                         errstr_size) ||
            in_kafka_set(rk_conf, "enable.partition.eof", "true", errstr,
                         errstr_size) ||
            in_kafka_set(rk_conf, "statistics.interval.ms", "5000", errstr,
                         errstr_size) ||
            in_kafka_fetch_conf(in, rk_conf, conf->queue_min, errstr,
                                errstr_size))
                goto fail;
        for (i = 0; i < conf->props->cnt; i++) {
                if (in_kafka_set(rk_conf, conf->props->prop[i].key,
                                 conf->props->prop[i].value, errstr,
                                 errstr_size))
                        goto fail;
        }
        in_kafka_warn_assignor(rk_conf);
        in_kafka_fetch_conf_done(in, rk_conf);
        /* Offsets must never be stored behind the store's back, and a lost
         * position must never be skipped silently. */
        if (in_kafka_set(rk_conf, "enable.auto.offset.store", "false", errstr,
                         errstr_size) ||
            in_kafka_set(rk_conf, "auto.offset.reset", "error", errstr,
                         errstr_size))
                goto fail;
        rd_kafka_conf_set_log_cb(rk_conf, in_kafka_log);
        rd_kafka_conf_set_rebalance_cb(rk_conf, in_kafka_rebalance);
        rd_kafka_conf_set_error_cb(rk_conf, in_kafka_error_cb);
        rd_kafka_conf_set_stats_cb(rk_conf, in_kafka_stats_cb);
        rd_kafka_conf_set_opaque(rk_conf, in);

        in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rk_conf, errstr, errstr_size);
        if (!in->rk)
                goto fail;
        rk_conf = NULL; /* rd_kafka_new() took it */
        rd_kafka_poll_set_consumer(in->rk);
        in->queue = rd_kafka_queue_get_consumer(in->rk);

        subscription = rd_kafka_topic_partition_list_new(EWS_SOURCE_COUNT);
        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                rd_kafka_topic_partition_list_add(subscription, in->topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(in->rk, subscription);
        rd_kafka_topic_partition_list_destroy(subscription);
        if (err) {
                snprintf(errstr, errstr_size, "subscribe: %s",
                         rd_kafka_err2str(err));
                goto fail;
        }
        return in;
fail:
        if (rk_conf)
                rd_kafka_conf_destroy(rk_conf);
        ews_in_kafka_destroy(in);
        return NULL;
}

void ews_in_kafka_destroy(struct ews_in_kafka *in)
{
        rd_kafka_resp_err_t err;

        if (!in)
                return;
        ews_in_kafka_release(in);
        free(in->batch);
        if (in->rk) {
                /* Close serves the final revoke through the callback and
                 * commits what was stored. */
                err = rd_kafka_consumer_close(in->rk);
                if (err)
                        ews_warn("in_kafka", "close: %s",
                                 rd_kafka_err2str(err));
        }
        if (in->queue)
                rd_kafka_queue_destroy(in->queue);
        if (in->rk)
                rd_kafka_destroy(in->rk);
        free(in);
}

void ews_in_kafka_release(struct ews_in_kafka *in)
{
        int i;

        for (i = 0; i < in->batch_cnt; i++)
                rd_kafka_message_destroy(in->batch[i]);
        in->batch_cnt = 0;
}

static void in_kafka_error(struct ews_in_kafka *in, rd_kafka_message_t *m)
{
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        int source = m->rkt ? in_kafka_source(in, topic) : -1;

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (source >= 0 && m->partition >= 0 &&
                    m->partition < EWS_PARTITIONS_MAX &&
                    in->state[source][m->partition])
                        in_kafka_set_state(in, source, m->partition, IN_AT_END);
                return;
        }
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && source >= 0 &&
            m->partition >= 0 && m->partition < EWS_PARTITIONS_MAX) {
                ews_err("in_kafka",
                        "%s [%d]: the broker no longer has the offset to "
                        "resume from (%s); the partition is paused and "
                        "nothing is skipped: restore the data (and restart), "
                        "or move the store's fence knowingly: it goes on "
                        "from there",
                        topic, (int)m->partition, rd_kafka_message_errstr(m));
                ews_in_kafka_pause(in, (enum ews_source)source, m->partition,
                                   true);
                in->cb.failed(in->cb.opaque, (enum ews_source)source,
                              m->partition, rd_kafka_message_errstr(m));
                return;
        }
        ews_err("in_kafka", "%s [%d]: %s", topic, (int)m->partition,
                rd_kafka_message_errstr(m));
}

/* A message at or beyond its partition's end offset is not handed out;
 * the partition is at its end (left unpaused: a seek back to the fence
 * must still be able to read again up to the end). */
static bool in_kafka_past_end(struct ews_in_kafka *in, int source,
                              const rd_kafka_message_t *m)
{
        int64_t end = in->end[source][m->partition];

        if (end < 0 || m->offset < end)
                return false;
        if (in->state[source][m->partition] == IN_ASSIGNED)
                in_kafka_set_state(in, source, m->partition, IN_AT_END);
        return true;
}

/* librdkafka's batch call waits for max messages or its timeout, never
 * returning early: a batch of live input would wait out the whole timeout.
 * So: what is there at once; else the first message as it comes (the
 * consumer's poll, which serves the rebalance callback the same way), then
 * the rest within linger_ms. A rebalance served by that second call may
 * have seeked or taken the first message's partition: the batch call
 * purges what it fetched before, and the first message goes too. Returns
 * the count in in->batch. */
static ssize_t in_kafka_take(struct ews_in_kafka *in, int max, int wait_ms,
                             int linger_ms)
{
        rd_kafka_message_t *first;
        unsigned rebalances;
        ssize_t n;

        n = rd_kafka_consume_batch_queue(in->queue, 0, in->batch, (size_t)max);
        if (n != 0 || wait_ms <= 0)
                return n < 0 ? 0 : n;
        first = rd_kafka_consume_queue(in->queue, wait_ms);
        if (!first)
                return 0;
        in->batch[0] = first;
        if (max == 1)
                return 1;
        rebalances = in->rebalances;
        n = rd_kafka_consume_batch_queue(in->queue, linger_ms, in->batch + 1,
                                         (size_t)max - 1);
        if (n < 0)
                n = 0;
        if (in->rebalances == rebalances)
                return n + 1;
        rd_kafka_message_destroy(first);
        memmove(in->batch, in->batch + 1, (size_t)n * sizeof(*in->batch));
        return n;
}

int ews_in_kafka_consume(struct ews_in_kafka *in, struct ews_msg *msgs, int max,
                         int wait_ms, int linger_ms)
{
        ssize_t n;
        int i, cnt = 0;

        ews_in_kafka_release(in);
        if (max > in->batch_cap) {
                rd_kafka_message_t **batch =
                        realloc(in->batch, (size_t)max * sizeof(*batch));
                if (!batch)
                        return 0;
                in->batch = batch;
                in->batch_cap = max;
        }
        n = in_kafka_take(in, max, wait_ms, linger_ms);
        in->batch_cnt = (int)n;
        in_kafka_fetch_taken(in, n);
        if (n > 0)
                in->brokers_down = false, in->answered = true;

        for (i = 0; i < in->batch_cnt; i++) {
                rd_kafka_message_t *m = in->batch[i];
                struct ews_msg *msg = &msgs[cnt];
                int source;

                if (m->err) {
                        in_kafka_error(in, m);
                        continue;
                }
                source = in_kafka_source(in, rd_kafka_topic_name(m->rkt));
                if (source < 0 || m->partition < 0 ||
                    m->partition >= EWS_PARTITIONS_MAX)
                        continue;
                if (in_kafka_past_end(in, source, m))
                        continue;
                if (in->state[source][m->partition] == IN_AT_END)
                        in_kafka_set_state(in, source, m->partition,
                                           IN_ASSIGNED);
                in->next[source][m->partition] = m->offset + 1;
                msg->source = (enum ews_source)source;
                msg->partition = m->partition;
                msg->offset = m->offset;
                msg->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
                msg->key = m->key;
                msg->key_len = m->key_len;
                msg->value = m->payload;
                msg->value_len = m->len;
                cnt++;
                if (in->end[source][m->partition] >= 0 &&
                    m->offset + 1 >= in->end[source][m->partition])
                        in_kafka_set_state(in, source, m->partition, IN_AT_END);
        }
        return cnt;
}

int64_t ews_in_kafka_ready(const struct ews_in_kafka *in)
{
        return in && in->queue ? (int64_t)rd_kafka_queue_length(in->queue) : 0;
}

static rd_kafka_topic_partition_list_t *in_kafka_one(struct ews_in_kafka *in,
                                                     enum ews_source source,
                                                     int32_t partition,
                                                     int64_t offset)
{
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(parts, in->topics[source], partition)
                ->offset = offset;
        return parts;
}

int ews_in_kafka_offset_store(struct ews_in_kafka *in, enum ews_source source,
                              int32_t partition, int64_t next_offset)
{
        rd_kafka_topic_partition_list_t *parts =
                in_kafka_one(in, source, partition, next_offset);
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(in->rk, parts);

        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                /* A partition revoked meanwhile: its next owner starts from
                 * the store's fence, not from this offset. */
                ews_debug("in_kafka", "offset store %s [%d]: %s",
                          in->topics[source], (int)partition,
                          rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

int ews_in_kafka_seek(struct ews_in_kafka *in, enum ews_source source,
                      int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *parts =
                in_kafka_one(in, source, partition, in_kafka_offset(offset));
        rd_kafka_error_t *error = rd_kafka_seek_partitions(in->rk, parts, 5000);
        int rc = 0;

        /* Stopped (the broker lacked its offset): assigned again there. */
        if (!error && parts->elems[0].err == RD_KAFKA_RESP_ERR__STATE)
                rc = in_kafka_restart(in, source, partition, offset);
        else if (!error && parts->elems[0].err)
                rc = -1;
        if (!rc)
                in->next[source][partition] = in_kafka_offset(offset);
        if (error) {
                ews_err("in_kafka", "seek %s [%d] to %lld: %s",
                        in->topics[source], (int)partition, (long long)offset,
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                rc = -1;
        }
        if (in->state[source][partition] == IN_AT_END)
                in_kafka_set_state(in, source, partition, IN_ASSIGNED);
        rd_kafka_topic_partition_list_destroy(parts);
        return rc;
}

int ews_in_kafka_pause(struct ews_in_kafka *in, enum ews_source source,
                       int32_t partition, bool pause)
{
        rd_kafka_topic_partition_list_t *parts =
                in_kafka_one(in, source, partition, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resp_err_t err =
                pause ? rd_kafka_pause_partitions(in->rk, parts)
                      : rd_kafka_resume_partitions(in->rk, parts);

        rd_kafka_topic_partition_list_destroy(parts);
        if (err)
                return -1;
        in->paused[source][partition] = pause;
        return 0;
}

bool ews_in_kafka_at_end(const struct ews_in_kafka *in)
{
        return in->assigned_cnt > 0 && in->eof_cnt == in->assigned_cnt;
}

int ews_in_kafka_partition_count(struct ews_in_kafka *in,
                                 enum ews_source source, int timeout_ms)
{
        const struct rd_kafka_metadata *metadata = NULL;
        rd_kafka_topic_t *rkt =
                rd_kafka_topic_new(in->rk, in->topics[source], NULL);
        int cnt = -1;

        if (!rkt)
                return -1;
        if (!rd_kafka_metadata(in->rk, 0, rkt, &metadata, timeout_ms)) {
                in->answered = true;
                if (metadata->topic_cnt == 1 && !metadata->topics[0].err)
                        cnt = metadata->topics[0].partition_cnt;
        }
        if (metadata)
                rd_kafka_metadata_destroy(metadata);
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

int64_t ews_in_kafka_lag(const struct ews_in_kafka *in, enum ews_source source,
                         int32_t partition)
{
        if (partition < 0 || partition >= EWS_PARTITIONS_MAX ||
            !in->state[source][partition])
                return -1;
        return in->lag[source][partition];
}

bool ews_in_kafka_healthy(const struct ews_in_kafka *in)
{
        return in->joined && !in->brokers_down;
}

const char *ews_in_kafka_waiting(const struct ews_in_kafka *in)
{
        if (in->brokers_down || (!in->answered && !in->joined))
                return "waiting for brokers";
        return in->joined ? NULL : "waiting for assignment";
}

bool ews_in_kafka_partition_at_end(const struct ews_in_kafka *in,
                                   enum ews_source source, int32_t partition)
{
        return partition >= 0 && partition < EWS_PARTITIONS_MAX &&
               in->state[source][partition] == IN_AT_END;
}

static void in_kafka_metrics_lag(void *opaque, struct ews_metrics_out *out)
{
        const struct ews_in_kafka *in = opaque;
        char labels[320];
        int s, p;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (p = 0; p < EWS_PARTITIONS_MAX; p++) {
                        if (!in->state[s][p] || in->lag[s][p] < 0)
                                continue;
                        snprintf(labels, sizeof(labels),
                                 "topic=\"%s\",partition=\"%d\"", in->topics[s],
                                 p);
                        ews_metrics_series(out, labels, (double)in->lag[s][p]);
                }
}

int ews_in_kafka_metrics_register(struct ews_in_kafka *in,
                                  struct ews_metrics *metrics)
{
        if (ews_metrics_add_fn(metrics, "ews_consumer_lag_messages",
                               "Messages behind the partition's high "
                               "watermark.",
                               EWS_METRIC_GAUGE, in_kafka_metrics_lag, in))
                return -1;
        return ews_metrics_add_i64(metrics, "ews_consumer_fetch_wakes_total",
                                   "Batches taken from a backlog after which "
                                   "the fetcher was woken (kafka.fetch.wake).",
                                   EWS_METRIC_COUNTER, "", &in->fetch_wakes);
}
