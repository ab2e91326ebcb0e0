/*
 * ews-gen: a seeded synthetic workload of trial cohorts for EWS.
 *
 * Campaigns launch and spend daily; each attracts trial users who stay
 * active, go quiet, pause and return, fade to a daily login or convert
 * (ews_gen_model.c has the scenario). Events of both topics are produced in
 * global event-time order as raw Avro binary, as the processor reads them.
 * The same flags give the same stream, byte for byte.
 *
 * --truth FILE writes what the scenario holds, one JSON object a line:
 * each campaign with its mix, each user with its behaviour and the scores
 * of the default model, then a summary. A behaviour is promised with a
 * margin: a quiet user's 72h of inactivity end an hour before --days does,
 * a returning user is back two days before it, a fading user has eleven
 * days of logins alone and its E falls below 0.4 of its peak a day before
 * the end. A user for whom --days, --signup-days or its own dice leave no
 * room for that is active instead; --count-only produces nothing, but
 * still reports and writes the truth.
 *
 * Events are dated near now: the scenario ends at the last UTC midnight,
 * so that a processor in time.mode auto publishes its alerts (older than
 * time.max.alert.age, they are held back). --start-ms fixes the start
 * instead (the same flags then give the same stream, byte for byte);
 * 1767225600000 is 2026-01-01T00:00:00Z, the default of old.
 */
#include "ews_gen.h"

#include <avro.h>
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_OPT_NUM 256
#define GEN_OPT_STR 512
#define GEN_OPT_DBL 768

struct gen_topic {
        const char *name;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        rd_kafka_topic_t *rkt;
};

struct gen {
        struct gen_model model;
        bool count_only;
        struct gen_topic usage, campaign;
        avro_writer_t writer;
        char buf[4096];
        rd_kafka_t *rk;
        int64_t failed;
        struct gen_disorder disorder;
        long long rate;     /* messages a second, 0: as fast as it can */
        long long messages; /* produced (or counted), copies included */
        struct timespec pace_start;
};

/* Optional fields are ["null", T] in every schema; NULL means null. */
static int gen_put_str(avro_value_t *record, const char *name, const char *str)
{
        avro_value_t field, branch;

        if (avro_value_get_by_name(record, name, &field, NULL))
                return -1;
        if (avro_value_get_type(&field) != AVRO_UNION)
                return avro_value_set_string(&field, str);
        if (!str)
                return avro_value_set_branch(&field, 0, &branch) ||
                       avro_value_set_null(&branch);
        return avro_value_set_branch(&field, 1, &branch) ||
               avro_value_set_string(&branch, str);
}

/* Every double in the schemas is optional; NAN means null. */
static int gen_put_double(avro_value_t *record, const char *name, double num)
{
        avro_value_t field, branch;

        return avro_value_get_by_name(record, name, &field, NULL) ||
               avro_value_set_branch(&field, isnan(num) ? 0 : 1, &branch) ||
               (isnan(num) ? avro_value_set_null(&branch)
                           : avro_value_set_double(&branch, num));
}

static int gen_put_long(avro_value_t *record, const char *name, int64_t num)
{
        avro_value_t field;

        return avro_value_get_by_name(record, name, &field, NULL) ||
               avro_value_set_long(&field, num);
}

static int gen_put_attr(avro_value_t *record, const char *key, const char *str)
{
        avro_value_t map, elem;

        return avro_value_get_by_name(record, "attributes", &map, NULL) ||
               avro_value_add(&map, key, &elem, NULL, NULL) ||
               avro_value_set_string(&elem, str);
}

static int gen_encode(struct gen_topic *topic, const struct gen_event *event)
{
        avro_value_t *value = &topic->value, field;
        int err, i;

        avro_value_reset(value);
        if (event->campaign)
                return gen_put_str(value, "event_id", event->event_id) ||
                       gen_put_str(value, "campaign_id", event->key) ||
                       avro_value_get_by_name(value, "type", &field, NULL) ||
                       avro_value_set_enum(&field, event->launch ? 0 : 1) ||
                       gen_put_str(value, "name", event->name) ||
                       gen_put_str(value, "channel", event->channel) ||
                       gen_put_double(value, "target_activation_rate",
                                      event->target) ||
                       gen_put_double(value, "amount", event->amount) ||
                       gen_put_long(value, "occurred_at", event->ms);
        err = gen_put_str(value, "event_id", event->event_id) ||
              gen_put_str(value, "user_id", event->key) ||
              gen_put_str(value, "account_id", event->account_id) ||
              gen_put_str(value, "event_type", event->type) ||
              gen_put_str(value, "product", event->product) ||
              gen_put_double(value, "value", event->value) ||
              gen_put_str(value, "campaign_id", event->campaign_id) ||
              gen_put_long(value, "occurred_at", event->ms);
        for (i = 0; !err && i < event->attr_cnt; i++)
                err = gen_put_attr(value, event->attr_keys[i],
                                   event->attr_values[i]);
        return err;
}

/* --rate: no faster than rate messages a second, counted from the first. */
static void gen_pace(struct gen *gen)
{
        struct timespec now;
        double elapsed, due;

        if (gen->rate <= 0)
                return;
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (gen->messages == 1)
                        gen->pace_start = now;
                elapsed = (double)(now.tv_sec - gen->pace_start.tv_sec) +
                          (double)(now.tv_nsec - gen->pace_start.tv_nsec) / 1e9;
                due = (double)(gen->messages - 1) / (double)gen->rate;
                if (elapsed >= due)
                        return;
                /* serves delivery reports while it waits */
                rd_kafka_poll(gen->rk, (int)((due - elapsed) * 1000) + 1);
        }
}

/* Produces one message, or only counts it (--count-only). */
static int gen_send(struct gen *gen, struct gen_topic *topic, const char *key,
                    size_t key_len, const void *value, size_t len, int64_t ms)
{
        rd_kafka_resp_err_t err;

        gen->messages++;
        if (gen->count_only)
                return 0;
        gen_pace(gen);
        while ((err = rd_kafka_producev(
                        gen->rk, RD_KAFKA_V_RKT(topic->rkt),
                        RD_KAFKA_V_KEY(key, key_len),
                        RD_KAFKA_V_VALUE((void *)value, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_TIMESTAMP(ms), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(gen->rk, 100);
        if (err) {
                fprintf(stderr, "ews-gen: produce %.*s: %s\n", (int)key_len,
                        key, rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_poll(gen->rk, 0);
        return 0;
}

/* Produces the held-back messages due by until_ms, in release order. */
static int gen_release(struct gen *gen, int64_t until_ms)
{
        struct gen_held held;
        int rc = 0;

        while (!rc && gen_disorder_take(&gen->disorder, until_ms, &held)) {
                rc = gen_send(gen, &gen->usage, held.data, held.key_len,
                              held.data + held.key_len, held.len, held.ms);
                free(held.data);
        }
        return rc;
}

/* The event now, later (late) or twice (redelivered). */
static int gen_produce(struct gen *gen, const struct gen_event *event)
{
        struct gen_topic *topic =
                event->campaign ? &gen->campaign : &gen->usage;
        int64_t late_ms, copy_ms;
        size_t len;

        avro_writer_reset(gen->writer);
        if (gen_encode(topic, event) ||
            avro_value_write(gen->writer, &topic->value)) {
                fprintf(stderr, "ews-gen: encode %s: %s\n", event->key,
                        avro_strerror());
                return -1;
        }
        len = (size_t)avro_writer_tell(gen->writer);
        if (event->campaign)
                return gen_send(gen, topic, event->key, strlen(event->key),
                                gen->buf, len, event->ms);
        gen_disorder_roll(&gen->disorder, event->ms, &late_ms, &copy_ms);
        if (late_ms == event->ms &&
            gen_send(gen, topic, event->key, strlen(event->key), gen->buf, len,
                     event->ms))
                return -1;
        if ((late_ms != event->ms &&
             gen_disorder_hold(&gen->disorder, late_ms, event->ms, event->key,
                               gen->buf, len)) ||
            (copy_ms >= 0 &&
             gen_disorder_hold(&gen->disorder, copy_ms, event->ms, event->key,
                               gen->buf, len))) {
                fprintf(stderr, "ews-gen: out of memory\n");
                return -1;
        }
        return 0;
}

static int gen_run(struct gen *gen)
{
        struct gen_event event;

        gen_disorder_init(&gen->disorder, &gen->model);
        while (gen_model_next(&gen->model, &event))
                if (gen_release(gen, event.ms) || gen_produce(gen, &event))
                        return -1;
        return gen_release(gen, GEN_NEVER);
}

static int gen_topic_init(struct gen_topic *topic, const char *dir,
                          const char *file)
{
        char path[4096], *json = NULL;
        FILE *fp;
        long size;
        int rc = -1;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fp = fopen(path, "rb");
        if (!fp || fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET) || !(json = malloc((size_t)size + 1)) ||
            fread(json, 1, (size_t)size, fp) != (size_t)size) {
                fprintf(stderr, "ews-gen: %s: %s\n", path, strerror(errno));
                goto out;
        }
        if (avro_schema_from_json_length(json, (size_t)size, &topic->schema) ||
            !(topic->iface = avro_generic_class_from_schema(topic->schema)) ||
            avro_generic_value_new(topic->iface, &topic->value)) {
                fprintf(stderr, "ews-gen: %s: %s\n", path, avro_strerror());
                goto out;
        }
        rc = 0;
out:
        free(json);
        if (fp)
                fclose(fp);
        return rc;
}

static void gen_topic_destroy(struct gen_topic *topic)
{
        if (topic->rkt)
                rd_kafka_topic_destroy(topic->rkt);
        if (topic->value.iface)
                avro_value_decref(&topic->value);
        if (topic->iface)
                avro_value_iface_decref(topic->iface);
        if (topic->schema)
                avro_schema_decref(topic->schema);
}

static void gen_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage,
                            void *opaque)
{
        struct gen *gen = opaque;

        (void)rk;
        if (rkmessage->err && gen->failed++ < 5)
                fprintf(stderr, "ews-gen: delivery failed: %s\n",
                        rd_kafka_err2str(rkmessage->err));
}

static int gen_conf_set(rd_kafka_conf_t *conf, const char *key,
                        const char *value)
{
        char errstr[512];

        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        fprintf(stderr, "ews-gen: %s\n", errstr);
        return -1;
}

static void gen_usage(FILE *fp)
{
        fprintf(fp, "usage: ews-gen {-b ADDR | --count-only} [--seed N] "
                    "[--campaigns N]\n"
                    "  [--poor-campaigns N] [--users-per-campaign N] "
                    "[--days N]\n"
                    "  [--signup-days N] [--start-ms MS] [--truth FILE] "
                    "[--usage-topic T]\n"
                    "  [--campaign-topic T] [--schemas DIR] "
                    "[--no-campaign-events] [-X key=value]...\n"
                    "  [--duplicates SHARE] [--duplicate-max-ms MS] "
                    "[--late SHARE] [--late-max-ms MS]\n"
                    "  [--rate N]\n"
                    "Disorder, as producers cause it (none by default; "
                    "campaign events keep\n"
                    "their order):\n"
                    "  --duplicates SHARE      this share of the usage "
                    "events (0 to 1) is\n"
                    "                          produced again, same "
                    "event_id, up to\n"
                    "  --duplicate-max-ms MS   this much event time later "
                    "(default 600000)\n"
                    "  --late SHARE            this share of the usage "
                    "events arrives late,\n"
                    "  --late-max-ms MS        produced once the stream is "
                    "up to this much\n"
                    "                          event time past it "
                    "(default 169200000, 47 h)\n"
                    "  --rate N                at most N messages a second "
                    "(default: at once)\n"
                    "The same flags give the same stream, byte for byte, "
                    "whatever the rate.\n"
                    "Exit codes: 0 done, 1 a failure (a message not "
                    "delivered), 2 usage.\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bootstrap", required_argument, NULL, GEN_OPT_STR + 0},
                {"seed", required_argument, NULL, GEN_OPT_NUM + 0},
                {"campaigns", required_argument, NULL, GEN_OPT_NUM + 1},
                {"poor-campaigns", required_argument, NULL, GEN_OPT_NUM + 2},
                {"users-per-campaign", required_argument, NULL,
                 GEN_OPT_NUM + 3},
                {"days", required_argument, NULL, GEN_OPT_NUM + 4},
                {"signup-days", required_argument, NULL, GEN_OPT_NUM + 5},
                {"start-ms", required_argument, NULL, GEN_OPT_NUM + 6},
                {"truth", required_argument, NULL, GEN_OPT_STR + 1},
                {"usage-topic", required_argument, NULL, GEN_OPT_STR + 2},
                {"campaign-topic", required_argument, NULL, GEN_OPT_STR + 3},
                {"schemas", required_argument, NULL, GEN_OPT_STR + 4},
                {"duplicate-max-ms", required_argument, NULL, GEN_OPT_NUM + 7},
                {"late-max-ms", required_argument, NULL, GEN_OPT_NUM + 8},
                {"rate", required_argument, NULL, GEN_OPT_NUM + 9},
                {"duplicates", required_argument, NULL, GEN_OPT_DBL + 0},
                {"late", required_argument, NULL, GEN_OPT_DBL + 1},
                {"count-only", no_argument, NULL, 'N'},
                {"no-campaign-events", no_argument, NULL, 'C'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        /* What the scenario relies on; -X comes later and may override. */
        static const char *defaults[][2] = {
                {"enable.idempotence", "true"},
                {"linger.ms", "20"},
                {"batch.num.messages", "10000"},
                {"queue.buffering.max.messages", "100000"},
                {"queue.buffering.max.kbytes", "65536"}};
        struct gen gen = {.model = {.seed = 1,
                                    .campaigns = 6,
                                    .poor = -1,
                                    .users_per_campaign = 40,
                                    .days = 21,
                                    .signup_days = 5,
                                    .start_ms = -1},
                          .disorder = {.duplicate_max_ms = 10 * GEN_MIN,
                                       .late_max_ms = 47 * GEN_HOUR},
                          .usage.name = "product-usage",
                          .campaign.name = "campaign-events"};
        struct gen_model *model = &gen.model;
        long long *nums[] = {&model->seed,
                             &model->campaigns,
                             &model->poor,
                             &model->users_per_campaign,
                             &model->days,
                             &model->signup_days,
                             &model->start_ms,
                             &gen.disorder.duplicate_max_ms,
                             &gen.disorder.late_max_ms,
                             &gen.rate};
        double *dbls[] = {&gen.disorder.duplicates, &gen.disorder.late};
        const char *bootstrap = NULL, *truth = NULL, *schemas = "schemas";
        const char **strs[] = {&bootstrap, &truth, &gen.usage.name,
                               &gen.campaign.name, &schemas};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512], end[32], *eq, *num_end;
        int opt, rc = 2;
        time_t end_secs;
        struct tm tm;
        int64_t i;

        for (i = 0; i < GEN_COUNT(defaults); i++)
                if (gen_conf_set(conf, defaults[i][0], defaults[i][1]))
                        goto out;
        while ((opt = getopt_long(argc, argv, "b:X:h", options, NULL)) != -1) {
                if (opt >= GEN_OPT_NUM && opt < GEN_OPT_NUM + GEN_COUNT(nums)) {
                        errno = 0;
                        *nums[opt - GEN_OPT_NUM] = strtoll(optarg, &num_end, 0);
                        if (errno || num_end == optarg || *num_end) {
                                fprintf(stderr, "ews-gen: bad number '%s'\n",
                                        optarg);
                                goto out;
                        }
                        continue;
                }
                if (opt >= GEN_OPT_DBL && opt < GEN_OPT_DBL + GEN_COUNT(dbls)) {
                        errno = 0;
                        *dbls[opt - GEN_OPT_DBL] = strtod(optarg, &num_end);
                        if (errno || num_end == optarg || *num_end ||
                            !(*dbls[opt - GEN_OPT_DBL] >= 0) ||
                            *dbls[opt - GEN_OPT_DBL] > 1) {
                                fprintf(stderr,
                                        "ews-gen: bad share '%s' (0 to 1)\n",
                                        optarg);
                                goto out;
                        }
                        continue;
                }
                if (opt == 'b' || (opt >= GEN_OPT_STR &&
                                   opt < GEN_OPT_STR + GEN_COUNT(strs))) {
                        *strs[opt == 'b' ? 0 : opt - GEN_OPT_STR] = optarg;
                        continue;
                }
                switch (opt) {
                case 'X':
                        eq = strchr(optarg, '=');
                        if (!eq) {
                                fprintf(stderr, "ews-gen: -X key=value\n");
                                goto out;
                        }
                        *eq = '\0';
                        if (gen_conf_set(conf, optarg, eq + 1))
                                goto out;
                        break;
                case 'N':
                        gen.count_only = true;
                        break;
                case 'C':
                        model->no_campaign_events = true;
                        break;
                case 'h':
                        gen_usage(stdout);
                        rc = 0;
                        goto out;
                default:
                        gen_usage(stderr);
                        goto out;
                }
        }
        /* The last two are poor unless told otherwise; with one campaign,
         * that one. */
        if (model->poor == -1)
                model->poor = model->campaigns < 2 ? model->campaigns : 2;
        /* Near now: --days ending at the last UTC midnight. */
        if (model->start_ms == -1 && model->days >= 1 && model->days <= 3650)
                model->start_ms =
                        (long long)(time(NULL) / 86400 - model->days) * GEN_DAY;
        if (optind < argc || (!bootstrap && !gen.count_only) ||
            model->campaigns < 1 || model->campaigns > GEN_USERS_MAX ||
            model->poor < 0 || model->poor > model->campaigns ||
            model->users_per_campaign < 1 ||
            model->users_per_campaign > GEN_USERS_MAX ||
            model->campaigns * model->users_per_campaign > GEN_USERS_MAX ||
            model->days < 1 || model->days > 3650 || model->signup_days < 1 ||
            model->start_ms < 0 || model->start_ms > 253402300799999LL ||
            gen.disorder.duplicate_max_ms < 0 ||
            gen.disorder.duplicate_max_ms > 3650 * GEN_DAY ||
            gen.disorder.late_max_ms < 1 ||
            gen.disorder.late_max_ms > 3650 * GEN_DAY || gen.rate < 0) {
                gen_usage(stderr);
                goto out;
        }
        rc = 1;
        gen.writer = avro_writer_memory(gen.buf, sizeof(gen.buf));
        if (gen_model_init(model) || !gen.writer) {
                fprintf(stderr, "ews-gen: out of memory\n");
                goto out;
        }
        if (gen_topic_init(&gen.usage, schemas, "usage_event.avsc") ||
            gen_topic_init(&gen.campaign, schemas, "campaign_event.avsc"))
                goto out;

        if (!gen.count_only) {
                if (gen_conf_set(conf, "bootstrap.servers", bootstrap))
                        goto out;
                rd_kafka_conf_set_dr_msg_cb(conf, gen_on_delivery);
                rd_kafka_conf_set_opaque(conf, &gen);
                gen.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                      sizeof(errstr));
                if (!gen.rk) {
                        fprintf(stderr, "ews-gen: %s\n", errstr);
                        goto out;
                }
                conf = NULL; /* rd_kafka_new() took it */
                gen.usage.rkt =
                        rd_kafka_topic_new(gen.rk, gen.usage.name, NULL);
                gen.campaign.rkt =
                        rd_kafka_topic_new(gen.rk, gen.campaign.name, NULL);
                if (!gen.usage.rkt || !gen.campaign.rkt) {
                        fprintf(stderr, "ews-gen: topic: %s\n",
                                rd_kafka_err2str(rd_kafka_last_error()));
                        goto out;
                }
        }

        if (gen_run(&gen))
                goto out;
        /* Generous: the queue may hold a lot for a slow broker. */
        if (gen.rk && rd_kafka_flush(gen.rk, 300000)) {
                gen.failed += rd_kafka_outq_len(gen.rk);
                fprintf(stderr, "ews-gen: flush timed out\n");
        }
        if (gen.failed) {
                fprintf(stderr, "ews-gen: %" PRId64 " messages failed\n",
                        gen.failed);
                goto out;
        }
        if (truth && gen_model_truth_write(model, truth))
                goto out;

        end_secs = (time_t)(model->last_event_ms / 1000);
        if (!gmtime_r(&end_secs, &tm) ||
            !strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(end, sizeof(end), "?");
        fprintf(stderr,
                "ews-gen: events=%" PRId64 " users=%lld campaigns=%lld "
                "quiet=%ld returning=%ld fading=%ld converted=%ld end=%s\n",
                model->usage_events + model->campaign_events,
                model->entity_cnt - model->campaigns, model->campaigns,
                model->behaviours[GEN_QUIET], model->behaviours[GEN_RETURNING],
                model->behaviours[GEN_FADING], model->behaviours[GEN_CONVERTED],
                end);
        if (gen.disorder.duplicates > 0 || gen.disorder.late > 0)
                fprintf(stderr,
                        "ews-gen: messages=%lld duplicates=%lld late=%lld\n",
                        gen.messages, gen.disorder.duplicate_cnt,
                        gen.disorder.late_cnt);
        rc = 0;
out:
        gen_disorder_free(&gen.disorder);
        gen_topic_destroy(&gen.usage);
        gen_topic_destroy(&gen.campaign);
        if (gen.rk)
                rd_kafka_destroy(gen.rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        if (gen.writer)
                avro_writer_free(gen.writer);
        gen_model_free(model);
        return rc;
}
