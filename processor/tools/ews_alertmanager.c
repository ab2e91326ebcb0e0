/*
 * ews-alertmanager: the alert topic, as Prometheus Alertmanager's API v2
 * wants it. Each FIRING becomes an active alert, its RESOLVED ends it
 * (ews_alertmanager.h says how an episode maps to one alert).
 *
 * A member of its own consumer group: the group's committed offsets mark
 * what Alertmanager has accepted. An offset is stored (and auto-committed)
 * only after the POST that carried its alert was accepted, so delivery is
 * at least once, and posting again is harmless. While Alertmanager cannot
 * be reached the partitions are paused and the POST is tried again after
 * 1 s, doubling to 30 s, each failure logged.
 *
 * Alertmanager resolves an alert by itself once its endsAt has passed, so
 * an active alert must be posted again now and then (Prometheus does the
 * same). Every --resend-interval the bridge posts every active alert it
 * knows with endsAt four intervals ahead: a bridge that stops lets its
 * alerts lapse after that. To know them after a restart it reads each
 * assigned partition from the start of the topic's retention: the records
 * below the committed offset only rebuild the memory (a FIRING remembered,
 * a RESOLVED ending its episode), then every active alert is posted at
 * once, and the records from the committed offset on are posted as they
 * come. A new group posts every record the topic holds. An episode whose
 * FIRING is older than the topic's retention is not known after a restart:
 * Alertmanager lets it lapse.
 * Values are Avro binary of schemas/alert.avsc, read by the processor's
 * decode module as ews-alerts does.
 */
#include "util/ews.h"
#include "util/log.h"
#include "decode/decode.h"
#include "tools/ews_alertmanager.h"

#include <librdkafka/rdkafka.h>

#include <curl/curl.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t am_stop;

static void am_on_signal(int sig)
{
        (void)sig;
        am_stop = 1;
}

static const char am_help[] =
        "usage: ews-alertmanager -b ADDR [-u URL] [-t TOPIC] [--group G]\n"
        "  [--resend-interval D] [--timeout D] [--schemas DIR] "
        "[-X key=value]...\n\n"
        "Posts the alert topic to Prometheus Alertmanager (API v2): a FIRING\n"
        "is an active alert, its RESOLVED ends it. Labels: alertname and rule\n"
        "(the rule), severity, episode, and user, account or campaign (the\n"
        "subject, and the account and campaign it belongs to); annotations:\n"
        "summary (the reason), alert_id, values, top_contributors. Runs until\n"
        "SIGTERM or SIGINT.\n\n"
        "  -b, --bootstrap ADDR  Kafka bootstrap servers (required)\n"
        "  -u, --url URL         Alertmanager (default http://127.0.0.1:9093)\n"
        "  -t, --topic TOPIC     alert topic (default ews-alerts)\n"
        "  --group G             consumer group (default ews-alertmanager)\n"
        "  --resend-interval D   post the active alerts again every D, each\n"
        "                        ending 4 D ahead (default 60s; ms, s, m, h)\n"
        "  --timeout D           of one POST (default 10s)\n"
        "  --schemas DIR         directory of alert.avsc (default schemas)\n"
        "  -X key=value          librdkafka consumer property\n"
        "  -h, --help            print this help and exit 0\n\n"
        "Offsets are committed once Alertmanager accepted their alerts; while\n"
        "it cannot be reached the bridge reads nothing more and tries again\n"
        "after 1 s, doubling to 30 s, logging each failure. A start reads\n"
        "the topic from its start: what the group committed rebuilds the\n"
        "active alerts, which are then posted; the rest is posted as read\n"
        "(a new group posts it all). Alertmanager knows an alert by its\n"
        "labels: posting one again is harmless.\n\n"
        "Exit codes: 0 stopped by a signal, 1 a failure at start (broker\n"
        "client, schemas), 2 bad usage.\n";

/* What was wrong, then where to read more; bad usage exits 2. */
static int am_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-alertmanager: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-alertmanager: %s\n", what);
        fputs("Try 'ews-alertmanager --help'.\n", stderr);
        return 2;
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static int am_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        return am_usage(opt == ':' ? "missing value for option"
                                   : "unknown option",
                        arg);
}

/* 250ms, 10s, 5m, 1h; a bare number is seconds. -1 unless positive. */
static int64_t am_duration(const char *s)
{
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {{"ms", 1},
                     {"s", 1000},
                     {"", 1000},
                     {"m", 60000},
                     {"h", 3600000}};
        char *end;
        long long n;
        size_t i;

        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno || end == s || n < 1 || n > 1000000000LL)
                return -1;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (!strcmp(end, units[i].unit))
                        return n * units[i].ms;
        return -1;
}

static int am_conf_set(rd_kafka_conf_t *conf, const char *key,
                       const char *value)
{
        char errstr[512];

        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        fprintf(stderr, "ews-alertmanager: %s\n", errstr);
        return -1;
}

static void am_run(struct am_bridge *b)
{
        rd_kafka_message_t *m;
        bool idle;
        int64_t now;

        b->next_resend = am_clock_ms(CLOCK_MONOTONIC) + b->resend_ms;
        while (!am_stop) {
                m = rd_kafka_consumer_poll(
                        b->rk,
                        b->failures || !json_array_size(b->dirty) ? 100 : 0);
                idle = !m;
                if (m) {
                        if (m->err &&
                            m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                ews_warn(AM_MOD, "%s",
                                         rd_kafka_message_errstr(m));
                        else
                                am_handle(b, m);
                        rd_kafka_message_destroy(m);
                }
                now = am_clock_ms(CLOCK_MONOTONIC);
                if (now < b->next_try)
                        continue;
                if ((json_array_size(b->dirty) || b->unstored) &&
                    (idle || json_array_size(b->dirty) >= AM_POST_MAX))
                        am_flush(b, now);
                else if (!json_array_size(b->dirty) && now >= b->next_resend)
                        am_resend(b, now);
                if (b->failures && b->paused_gen != b->assign_gen)
                        am_pause(b, true);
        }
        /* What was read and not yet posted: once more, without waiting. */
        if (json_array_size(b->dirty) && !b->failures)
                am_flush(b, am_clock_ms(CLOCK_MONOTONIC));
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bootstrap", required_argument, NULL, 'b'},
                {"url", required_argument, NULL, 'u'},
                {"topic", required_argument, NULL, 't'},
                {"group", required_argument, NULL, 'g'},
                {"resend-interval", required_argument, NULL, 'R'},
                {"timeout", required_argument, NULL, 'T'},
                {"schemas", required_argument, NULL, 'S'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        static const char *defaults[][2] = {
                {"enable.auto.commit", "true"},
                {"enable.auto.offset.store", "false"},
                {"enable.partition.eof", "true"},
                {"auto.offset.reset", "earliest"}};
        const char *bootstrap = NULL, *url = "http://127.0.0.1:9093",
                   *group = "ews-alertmanager", *schemas = "schemas";
        struct am_bridge b = {
                .topic = "ews-alerts", .resend_ms = 60000, .paused_gen = -1};
        int64_t timeout_ms = 10000;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *sub = NULL;
        rd_kafka_resp_err_t err;
        struct sigaction sa;
        char errstr[512], *eq;
        int opt, rc = 2;
        size_t i;

        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (am_conf_set(conf, defaults[i][0], defaults[i][1]))
                        goto out;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":b:u:t:X:h", options, NULL)) !=
               -1) {
                switch (opt) {
                case 'b':
                        bootstrap = optarg;
                        break;
                case 'u':
                        url = optarg;
                        break;
                case 't':
                        b.topic = optarg;
                        break;
                case 'g':
                        group = optarg;
                        break;
                case 'R':
                        if ((b.resend_ms = am_duration(optarg)) < 0) {
                                rc = am_usage("--resend-interval wants a "
                                              "duration such as 60s, not",
                                              optarg);
                                goto out;
                        }
                        break;
                case 'T':
                        if ((timeout_ms = am_duration(optarg)) < 0) {
                                rc = am_usage("--timeout wants a duration "
                                              "such as 10s, not",
                                              optarg);
                                goto out;
                        }
                        break;
                case 'S':
                        schemas = optarg;
                        break;
                case 'X':
                        eq = strchr(optarg, '=');
                        if (!eq) {
                                rc = am_usage("-X wants key=value, not",
                                              optarg);
                                goto out;
                        }
                        *eq = '\0';
                        if (am_conf_set(conf, optarg, eq + 1))
                                goto out;
                        break;
                case 'h':
                        fputs(am_help, stdout);
                        rc = 0;
                        goto out;
                default:
                        rc = am_bad_option(opt, argv);
                        goto out;
                }
        }
        if (optind < argc) {
                rc = am_usage("unexpected argument", argv[optind]);
                goto out;
        }
        if (!bootstrap) {
                rc = am_usage("-b ADDR is required", NULL);
                goto out;
        }
        if (!*group || !*b.topic || !*url) {
                rc = am_usage("--group, --topic and --url may not be empty",
                              NULL);
                goto out;
        }
        if (am_conf_set(conf, "bootstrap.servers", bootstrap) ||
            am_conf_set(conf, "group.id", group))
                goto out;
        rc = 1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        {
                struct ews_decode_conf decode_conf = {
                        .schema_dir = schemas,
                        .max_future_ms = INT64_MAX / 2,
                        .max_bytes = 1 << 20,
                        .max_items = 10000,
                };

                b.decoder =
                        ews_decoder_new(&decode_conf, errstr, sizeof(errstr));
        }
        if (!b.decoder ||
            !(b.post = am_post_new(url, timeout_ms, errstr, sizeof(errstr))) ||
            !(b.memory = json_object()) || !(b.dirty = json_array()) ||
            !(b.tombstones = json_array())) {
                fprintf(stderr, "ews-alertmanager: %s\n",
                        b.memory ? errstr : "out of memory");
                goto out;
        }
        rd_kafka_conf_set_rebalance_cb(conf, am_rebalance);
        rd_kafka_conf_set_opaque(conf, &b);
        b.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!b.rk) {
                fprintf(stderr, "ews-alertmanager: %s\n", errstr);
                goto out;
        }
        conf = NULL; /* rd_kafka_new() took it */
        rd_kafka_poll_set_consumer(b.rk);
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, b.topic, RD_KAFKA_PARTITION_UA);
        if ((err = rd_kafka_subscribe(b.rk, sub))) {
                fprintf(stderr, "ews-alertmanager: subscribe to %s: %s\n",
                        b.topic, rd_kafka_err2str(err));
                goto out;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = am_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        ews_info(AM_MOD,
                 "posting %s (group %s) to %s; active alerts again every "
                 "%.3g s",
                 b.topic, group, url, b.resend_ms / 1000.0);
        am_run(&b);
        ews_info(AM_MOD,
                 "stopped: read=%" PRId64 " posted=%" PRId64
                 " undecodable=%" PRId64 " refused_posts=%" PRId64
                 " active=%zu",
                 b.read_cnt, b.posted_cnt, b.undecodable_cnt, b.rejected_cnt,
                 am_active_count(&b));
        rc = 0;
out:
        if (b.rk) {
                rd_kafka_consumer_close(b.rk); /* commits what was stored */
                rd_kafka_destroy(b.rk);
        }
        if (conf)
                rd_kafka_conf_destroy(conf);
        if (sub)
                rd_kafka_topic_partition_list_destroy(sub);
        ews_decoder_destroy(b.decoder);
        am_post_destroy(b.post);
        json_decref(b.memory);
        json_decref(b.dirty);
        json_decref(b.tombstones);
        free(b.until);
        free(b.done);
        if (rc != 2)
                curl_global_cleanup();
        return rc;
}
