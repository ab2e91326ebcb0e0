/*
 * Reading history for ews-calibrate: the configuration's usage topic, every
 * partition from its beginning to its end as of the start (a plain
 * assign(): no group joined, nothing committed), or a file of JSON events.
 * Messages are decoded by the processor's decode stage with the
 * configuration's formats; what it rejects is counted and skipped, as the
 * processor would dead-letter it.
 */
#include "tools/ews_calibrate.h"
#include "decode/decode.h"
#include "ops/setup.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAL_STALL_MS 30000 /* no message for this long: give up */

static int64_t cal_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Decodes one message into h. 0 (kept, skipped or undecodable), -1 with
 * errstr. */
static int cal_read_one(struct cal_read *rd, struct ews_decoder *decoder,
                        const void *buf, size_t len, const char *where,
                        struct cal_history *h, char *errstr, size_t errstr_size)
{
        static struct ews_usage_event_buf ev;
        enum ews_decode_err err;
        char why[256];

        err = ews_decode_usage(decoder, buf, len, cal_wall_ms(),
                               ews_usage_event_init(&ev), why, sizeof(why));
        if (err == EWS_DECODE_RETRY) {
                snprintf(errstr, errstr_size, "%s: schema registry: %s", where,
                         why);
                return -1;
        }
        if (err) {
                if (rd->undecodable++ < 5)
                        fprintf(stderr, "ews-calibrate: %s: skipped, %s: %s\n",
                                where, ews_decode_err_name(err), why);
                return 0;
        }
        return cal_history_add(h, &rd->config->score, &ev.event, errstr,
                               errstr_size);
}

int cal_read_file(struct cal_read *rd, const char *path, struct cal_history *h,
                  char *errstr, size_t errstr_size)
{
        static struct ews_config json_config;
        struct ews_decoder *decoder = NULL;
        FILE *fp = fopen(path, "r");
        char *line = NULL, where[64];
        size_t cap = 0;
        ssize_t len;
        long lineno = 0;
        int rc = -1;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return -1;
        }
        json_config = *rd->config;
        json_config.format[EWS_SOURCE_USAGE] = EWS_FORMAT_JSON;
        if (!(decoder = ews_setup_decoder(&json_config, errstr, errstr_size)))
                goto out;
        while ((len = getline(&line, &cap, fp)) >= 0) {
                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                if (len == 0)
                        continue;
                snprintf(where, sizeof(where), "line %ld", lineno);
                if (cal_read_one(rd, decoder, line, (size_t)len, where, h,
                                 errstr, errstr_size))
                        goto out;
        }
        if (ferror(fp)) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                goto out;
        }
        rc = 0;
out:
        free(line);
        fclose(fp);
        ews_decoder_destroy(decoder);
        return rc;
}

/* The consumer: the configuration's consumer properties, then ours. */
static rd_kafka_t *cal_consumer_new(struct cal_read *rd, char *errstr,
                                    size_t errstr_size)
{
        static const char *ours[][2] = {
                /* librdkafka's consumer API wants a group id; nothing
                 * joins it or commits to it */
                {"group.id", "ews-calibrate"},
                {"enable.auto.commit", "false"},
                {"enable.auto.offset.store", "false"},
                {"enable.partition.eof", "true"}};
        const struct ews_config_props *props = &rd->config->consumer;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        size_t i;

        for (i = 0; i < (size_t)props->cnt; i++)
                if (rd_kafka_conf_set(conf, props->prop[i].key,
                                      props->prop[i].value, errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        goto fail;
        for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
                if (rd_kafka_conf_set(conf, ours[i][0], ours[i][1], errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        goto fail;
        if (rd_kafka_conf_set(conf, "bootstrap.servers",
                              rd->bootstrap ? rd->bootstrap
                                            : rd->config->bootstrap_servers,
                              errstr, errstr_size) != RD_KAFKA_CONF_OK)
                goto fail;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                goto fail;
        rd_kafka_poll_set_consumer(rk);
        return rk;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* Assigns every partition from its beginning; *end (the caller frees)
 * gets each partition's end offset as of now. Returns the partition
 * count, or -1 with errstr. */
static int cal_assign(rd_kafka_t *rk, const char *topic, int64_t **end,
                      char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        int64_t low, high;
        int cnt = -1, i, id;

        if (rkt)
                err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!err && (md->topic_cnt != 1 || md->topics[0].err))
                err = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                         : md->topics[0].err;
        if (err)
                goto out;
        cnt = md->topics[0].partition_cnt;
        *end = calloc((size_t)cnt + 1, sizeof(**end));
        parts = rd_kafka_topic_partition_list_new(cnt);
        if (!*end || !parts) {
                err = RD_KAFKA_RESP_ERR__FAIL;
                goto out;
        }
        for (i = 0; i < cnt && !err; i++) {
                id = md->topics[0].partitions[i].id;
                if (id < 0 || id >= cnt) {
                        err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
                        break;
                }
                err = rd_kafka_query_watermark_offsets(rk, topic, id, &low,
                                                       &high, 10000);
                (*end)[id] = high;
                rd_kafka_topic_partition_list_add(parts, topic, id)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        }
        if (!err)
                err = rd_kafka_assign(rk, parts);
out:
        if (err) {
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         rd_kafka_err2str(err));
                cnt = -1;
        }
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return cnt;
}

/* Partitions still short of their end. */
static int cal_pending(const int64_t *next, const int64_t *end, int cnt)
{
        int i, pending = 0;

        for (i = 0; i < cnt; i++)
                pending += next[i] < end[i];
        return pending;
}

int cal_read_topic(struct cal_read *rd, struct cal_history *h, char *errstr,
                   size_t errstr_size)
{
        const char *topic = rd->config->topics[EWS_SOURCE_USAGE];
        struct ews_decoder *decoder = NULL;
        int64_t *end = NULL, *next = NULL, idle_since = cal_wall_ms();
        rd_kafka_message_t *m;
        rd_kafka_t *rk = NULL;
        char where[320];
        int cnt, p, rc = -1;

        if (!(decoder = ews_setup_decoder(rd->config, errstr, errstr_size)) ||
            !(rk = cal_consumer_new(rd, errstr, errstr_size)) ||
            (cnt = cal_assign(rk, topic, &end, errstr, errstr_size)) < 0)
                goto out;
        if (!(next = calloc((size_t)cnt + 1, sizeof(*next)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        while (cal_pending(next, end, cnt)) {
                if (cal_wall_ms() - idle_since > CAL_STALL_MS) {
                        snprintf(errstr, errstr_size,
                                 "topic %s: nothing read for %d s, %d "
                                 "partitions short of their end",
                                 topic, CAL_STALL_MS / 1000,
                                 cal_pending(next, end, cnt));
                        goto out;
                }
                if (!(m = rd_kafka_consumer_poll(rk, 200)))
                        continue;
                p = m->partition;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p >= 0 && p < cnt && m->offset > next[p])
                                next[p] = m->offset;
                } else if (m->err) {
                        fprintf(stderr, "ews-calibrate: %s\n",
                                rd_kafka_message_errstr(m));
                } else if (p >= 0 && p < cnt && m->offset < end[p]) {
                        idle_since = cal_wall_ms();
                        next[p] = m->offset + 1;
                        snprintf(where, sizeof(where),
                                 "%s [%d] offset %" PRId64, topic, p,
                                 m->offset);
                        if (cal_read_one(rd, decoder, m->payload,
                                         m->payload ? m->len : 0, where, h,
                                         errstr, errstr_size)) {
                                rd_kafka_message_destroy(m);
                                goto out;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rc = 0;
out:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        ews_decoder_destroy(decoder);
        free(end);
        free(next);
        return rc;
}
