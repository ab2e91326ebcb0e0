/*
 * ews-alerts: prints the alerts EWS publishes, for people or as JSON Lines.
 *
 * Reads every partition of the alert topic from the beginning with a plain
 * assign(): no consumer group joins, nothing is committed, so running it
 * never disturbs the processor or another reader. Values are raw Avro
 * binary of schemas/alert.avsc, read by the processor's own decode module,
 * which checks every length before avro-c sees it.
 */
#include "util/ews.h"
#include "decode/decode.h"
#include "ops/state_json.h"

#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct alerts {
        struct ews_decoder *decoder;
        bool json;
        int64_t alert_cnt, undecodable_cnt;
        int64_t rule_cnts[EWS_RULE_COUNT];
};

static volatile sig_atomic_t alerts_stop;

static void alerts_on_signal(int sig)
{
        (void)sig;
        alerts_stop = 1;
}

static int64_t alerts_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void alerts_time_iso(int64_t ms, char *buf, size_t size)
{
        time_t secs = (time_t)((ms - (((ms % 1000) + 1000) % 1000)) / 1000);
        struct tm tm;

        if (!gmtime_r(&secs, &tm) ||
            !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, size, "%" PRId64, ms);
}

/* A reason is one line for people; a stray newline must not split it. */
static void alerts_print_text(FILE *fp, const char *s)
{
        for (; *s; s++)
                fputc(iscntrl((unsigned char)*s) ? '?' : *s, fp);
}

static void alerts_print_line(FILE *fp, const struct ews_alert *alert)
{
        const char *context[2] = {alert->account_id, alert->campaign_id};
        const char *labels[2] = {"account", "campaign"};
        const char *p;
        char when[32];
        int i, shown = 0;

        alerts_time_iso(alert->event_time_ms, when, sizeof(when));
        fprintf(fp, "%s %s %s ", when, ews_rule_name(alert->rule),
                ews_alert_status_name(alert->status));
        for (p = ews_subject_name(alert->subject_type); *p; p++)
                fputc(tolower((unsigned char)*p), fp);
        fputc(' ', fp);
        alerts_print_text(fp, alert->subject_id);
        /* The subject's own id is not repeated as its context. */
        for (i = 0; i < 2; i++) {
                if (!context[i][0] || !strcmp(context[i], alert->subject_id))
                        continue;
                fprintf(fp, "%s%s ", shown++ ? ", " : " (", labels[i]);
                alerts_print_text(fp, context[i]);
        }
        fputs(shown ? "): " : ": ", fp);
        alerts_print_text(fp, alert->reason);
        fputc('\n', fp);
}

static void alerts_handle(struct alerts *alerts,
                          const rd_kafka_message_t *rkmessage)
{
        static struct ews_alert alert;
        char errstr[256], *line = NULL;
        json_t *json;

        if (ews_decode_alert(alerts->decoder, rkmessage->payload,
                             rkmessage->payload ? rkmessage->len : 0, &alert,
                             errstr, sizeof(errstr))) {
                alerts->undecodable_cnt++;
                fprintf(stderr,
                        "ews-alerts: %s [%" PRId32 "] offset %" PRId64
                        ": cannot decode: %s\n",
                        rd_kafka_topic_name(rkmessage->rkt),
                        rkmessage->partition, rkmessage->offset, errstr);
                return;
        }
        if (alerts->json) {
                /* A JSON line goes out whole or not at all. */
                json = ews_json_alert(&alert);
                line = json ? json_dumps(json,
                                         JSON_COMPACT | JSON_REAL_PRECISION(17))
                            : NULL;
                json_decref(json);
                if (!line) {
                        fprintf(stderr, "ews-alerts: out of memory\n");
                        alerts->undecodable_cnt++;
                        return;
                }
                printf("%s\n", line);
                free(line);
        } else {
                alerts_print_line(stdout, &alert);
        }
        alerts->alert_cnt++;
        alerts->rule_cnts[alert.rule]++;
}

static int alerts_conf_set(rd_kafka_conf_t *conf, const char *key,
                           const char *value)
{
        char errstr[512];

        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        fprintf(stderr, "ews-alerts: %s\n", errstr);
        return -1;
}

/* Every partition from its beginning, whatever anyone has committed. */
static int alerts_assign(rd_kafka_t *rk, const char *topic, int *partition_cnt)
{
        const struct rd_kafka_metadata *metadata = NULL;
        rd_kafka_topic_partition_list_t *partitions = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        int i;

        if (rkt)
                err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
        if (!err && (metadata->topic_cnt != 1 || metadata->topics[0].err))
                err = metadata->topic_cnt != 1
                              ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                              : metadata->topics[0].err;
        if (err)
                goto out;
        *partition_cnt = metadata->topics[0].partition_cnt;
        partitions = rd_kafka_topic_partition_list_new(*partition_cnt);
        for (i = 0; i < *partition_cnt; i++)
                rd_kafka_topic_partition_list_add(
                        partitions, topic, metadata->topics[0].partitions[i].id)
                        ->offset = RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(rk, partitions);
out:
        if (err)
                fprintf(stderr, "ews-alerts: topic %s: %s\n", topic,
                        rd_kafka_err2str(err));
        if (partitions)
                rd_kafka_topic_partition_list_destroy(partitions);
        if (metadata)
                rd_kafka_metadata_destroy(metadata);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return err ? -1 : 0;
}

static const char alerts_help[] =
        "usage: ews-alerts -b ADDR [-t TOPIC] [--schemas DIR] [--json] [-e]\n"
        "  [--idle-exit-ms N] [-X key=value]...\n\n"
        "Prints every alert of the alert topic, from the beginning of each\n"
        "partition; joins no group and commits nothing.\n\n"
        "  -b, --bootstrap ADDR  Kafka bootstrap servers (required)\n"
        "  -t, --topic TOPIC     alert topic (default ews-alerts)\n"
        "  --schemas DIR         directory of alert.avsc (default schemas)\n"
        "  --json                one JSON object a line, not for people\n"
        "  -e, --exit-at-end     exit once every partition is read to its end\n"
        "  --idle-exit-ms N      exit after N ms without a new alert\n"
        "  -X key=value          librdkafka consumer property\n"
        "  -h, --help            print this help and exit 0\n\n"
        "Exit codes: 0 every alert read was printed, 1 an alert could not be\n"
        "decoded or the consumer failed, 2 bad usage.\n";

/* What was wrong, then where to read more; bad usage exits 2. */
static void alerts_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-alerts: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-alerts: %s\n", what);
        fputs("Try 'ews-alerts --help'.\n", stderr);
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static void alerts_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        alerts_usage(opt == ':' ? "missing value for option" : "unknown option",
                     arg);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bootstrap", required_argument, NULL, 'b'},
                {"topic", required_argument, NULL, 't'},
                {"schemas", required_argument, NULL, 'S'},
                {"json", no_argument, NULL, 'J'},
                {"exit-at-end", no_argument, NULL, 'e'},
                {"idle-exit-ms", required_argument, NULL, 'I'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        /* A group id only because librdkafka's consumer API wants one:
         * nothing joins the group and nothing is committed to it. */
        static const char *defaults[][2] = {
                {"group.id", "ews-alerts"},
                {"enable.auto.commit", "false"},
                {"enable.auto.offset.store", "false"},
                {"enable.partition.eof", "false"}};
        const char *bootstrap = NULL, *topic = "ews-alerts",
                   *schemas = "schemas";
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_message_t *rkmessage;
        struct alerts alerts = {0};
        long long idle_ms = 0;
        int64_t last_ms;
        bool exit_at_end = false, *eofs = NULL;
        int opt, rc = 2, partition_cnt = 0, eof_cnt = 0, i;
        char errstr[512], *end;
        struct sigaction sa;
        rd_kafka_t *rk = NULL;

        for (i = 0; i < (int)(sizeof(defaults) / sizeof(defaults[0])); i++)
                if (alerts_conf_set(conf, defaults[i][0], defaults[i][1]))
                        goto out;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":b:t:eX:h", options, NULL)) !=
               -1) {
                switch (opt) {
                case 'b':
                        bootstrap = optarg;
                        break;
                case 't':
                        topic = optarg;
                        break;
                case 'S':
                        schemas = optarg;
                        break;
                case 'J':
                        alerts.json = true;
                        break;
                case 'e':
                        exit_at_end = true;
                        if (alerts_conf_set(conf, "enable.partition.eof",
                                            "true"))
                                goto out;
                        break;
                case 'I':
                        errno = 0;
                        idle_ms = strtoll(optarg, &end, 10);
                        if (errno || end == optarg || *end || idle_ms < 1) {
                                alerts_usage("--idle-exit-ms wants a number "
                                             ">= 1, not",
                                             optarg);
                                goto out;
                        }
                        break;
                case 'X':
                        end = strchr(optarg, '=');
                        if (!end) {
                                alerts_usage("-X wants key=value, not", optarg);
                                goto out;
                        }
                        *end = '\0';
                        if (alerts_conf_set(conf, optarg, end + 1))
                                goto out;
                        break;
                case 'h':
                        fputs(alerts_help, stdout);
                        rc = 0;
                        goto out;
                default:
                        alerts_bad_option(opt, argv);
                        goto out;
                }
        }
        if (optind < argc) {
                alerts_usage("unexpected argument", argv[optind]);
                goto out;
        }
        if (!bootstrap) {
                alerts_usage("-b ADDR is required", NULL);
                goto out;
        }
        rc = 1;
        {
                struct ews_decode_conf decode_conf = {
                        .schema_dir = schemas,
                        .max_future_ms = INT64_MAX / 2,
                        .max_bytes = 1 << 20,
                        .max_items = 10000,
                };

                alerts.decoder =
                        ews_decoder_new(&decode_conf, errstr, sizeof(errstr));
                if (!alerts.decoder) {
                        fprintf(stderr, "ews-alerts: %s\n", errstr);
                        goto out;
                }
        }
        if (alerts_conf_set(conf, "bootstrap.servers", bootstrap))
                goto out;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "ews-alerts: %s\n", errstr);
                goto out;
        }
        conf = NULL; /* rd_kafka_new() took it */
        rd_kafka_poll_set_consumer(rk);
        if (alerts_assign(rk, topic, &partition_cnt))
                goto out;
        /* Partition ids are 0..n-1 in Kafka; one flag each. */
        eofs = calloc((size_t)partition_cnt + 1, sizeof(*eofs));
        if (!eofs)
                goto out;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = alerts_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);

        last_ms = alerts_now_ms();
        while (!alerts_stop) {
                if (idle_ms && alerts_now_ms() - last_ms >= idle_ms)
                        break;
                rkmessage = rd_kafka_consumer_poll(rk, 100);
                if (!rkmessage)
                        continue;
                i = rkmessage->partition;
                if (rkmessage->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (i >= 0 && i < partition_cnt && !eofs[i]) {
                                eofs[i] = true;
                                eof_cnt++;
                        }
                } else if (rkmessage->err) {
                        fprintf(stderr, "ews-alerts: %s\n",
                                rd_kafka_message_errstr(rkmessage));
                } else {
                        last_ms = alerts_now_ms();
                        /* New data: this partition must reach its end
                         * again before -e may exit. */
                        if (i >= 0 && i < partition_cnt && eofs[i]) {
                                eofs[i] = false;
                                eof_cnt--;
                        }
                        alerts_handle(&alerts, rkmessage);
                }
                rd_kafka_message_destroy(rkmessage);
                if (exit_at_end && eof_cnt == partition_cnt)
                        break;
        }
        rc = alerts.undecodable_cnt ? 1 : 0;

        fflush(stdout);
        fprintf(stderr, "ews-alerts: alerts=%" PRId64, alerts.alert_cnt);
        for (i = 0; i < EWS_RULE_COUNT; i++)
                if (alerts.rule_cnts[i])
                        fprintf(stderr, " %s=%" PRId64, ews_rule_name(i),
                                alerts.rule_cnts[i]);
        if (alerts.undecodable_cnt)
                fprintf(stderr, " undecodable=%" PRId64,
                        alerts.undecodable_cnt);
        fputc('\n', stderr);
out:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (conf)
                rd_kafka_conf_destroy(conf);
        ews_decoder_destroy(alerts.decoder);
        free(eofs);
        return rc;
}
