/* The fetcher's wake (in_kafka.h): the queue's depth it works against,
 * and the end-offset query after a batch from a backlog that wakes
 * librdkafka 2.0.2's broker threads. */
#include "in_kafka/in_kafka_int.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The least queue a woken fetcher keeps: a small batch would otherwise
 * have it stop after every fetch response. */
#define FETCH_QUEUE_MIN 10000
/* How long a wake waits for the leaders' answers: the requests have woken
 * their broker threads once sent; this only bounds the wait. */
#define FETCH_WAKE_WAIT_MS 10
/* At most one wake this often, however small the batches: a stopped
 * fetcher waits this long at most, the leaders get a few requests a
 * second. */
#define FETCH_WAKE_EVERY_MS 50

int in_kafka_fetch_conf(struct ews_in_kafka *in, rd_kafka_conf_t *rk_conf,
                        int queue_min, char *errstr, size_t errstr_size)
{
        char value[32];

        if (!in->fetch_wake)
                return 0;
        snprintf(value, sizeof(value), "%d",
                 queue_min > FETCH_QUEUE_MIN ? queue_min : FETCH_QUEUE_MIN);
        return rd_kafka_conf_set(rk_conf, "queued.min.messages", value, errstr,
                                 errstr_size) == RD_KAFKA_CONF_OK
                       ? 0
                       : -1;
}

void in_kafka_fetch_conf_done(struct ews_in_kafka *in,
                              const rd_kafka_conf_t *rk_conf)
{
        char value[32];
        size_t size = sizeof(value);

        in->queue_min = rd_kafka_conf_get(rk_conf, "queued.min.messages", value,
                                          &size) == RD_KAFKA_CONF_OK
                                ? strtoll(value, NULL, 10)
                                : 0;
}

static int64_t fetch_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks the leaders of the assigned partitions for their end offsets: each
 * request wakes its broker's thread, whose fetcher then looks at the
 * partitions again. */
static void fetch_wake(struct ews_in_kafka *in)
{
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(in->assigned_cnt + 1);
        int source, partition;

        for (source = 0; source < EWS_SOURCE_COUNT; source++)
                for (partition = 0; partition < EWS_PARTITIONS_MAX; partition++)
                        if (in->state[source][partition])
                                rd_kafka_topic_partition_list_add(
                                        parts, in->topics[source], partition)
                                        ->offset = RD_KAFKA_OFFSET_END;
        if (parts->cnt) {
                /* a time out or an error leaves the fetcher as it was */
                (void)rd_kafka_offsets_for_times(in->rk, parts,
                                                 FETCH_WAKE_WAIT_MS);
                in->fetch_wakes++;
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

void in_kafka_fetch_taken(struct ews_in_kafka *in, ssize_t n)
{
        int64_t now_ms;

        /* the fetcher stops once the queue holds queued.min.messages */
        if (!in->fetch_wake || n <= 0 ||
            n + (int64_t)rd_kafka_queue_length(in->queue) < in->queue_min)
                return;
        now_ms = fetch_mono_ms();
        if (in->fetch_wakes &&
            now_ms - in->fetch_woken_ms < FETCH_WAKE_EVERY_MS)
                return;
        in->fetch_woken_ms = now_ms;
        fetch_wake(in);
}

int64_t ews_in_kafka_fetch_wakes(const struct ews_in_kafka *in)
{
        return in ? in->fetch_wakes : 0;
}
