/*
 * ews-redrive: sends dead letters back through decoding once their cause is
 * fixed (a schema registered, a producer bug fixed, config changed).
 */
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDRIVE_REASONS_MAX 32
#define REDRIVE_PROPS_MAX   64

static const char redrive_help[] =
        "usage: ews-redrive -b ADDR [-t DLQ] [--reason R]... "
        "[--source-topic T]\n"
        "  [--to-topic T] [--group G] [--from-offset N] [-e] [--dry-run] "
        "[-X key=value]...\n\n"
        "Produces each dead letter's original key, value and timestamp to its\n"
        "source topic and partition, for the processor to decode again.\n\n"
        "  -b, --bootstrap ADDR  Kafka bootstrap servers (required)\n"
        "  -t, --topic DLQ       dead-letter topic (default ews-dlq)\n"
        "  --reason R            only records of ews.error.reason R\n"
        "  --source-topic T      only records from topic T\n"
        "  --to-topic T          produce to T (the key picks the partition)\n"
        "  --group G             consumer group that keeps this redrive's\n"
        "                        position on the DLQ (default: ews-redrive.\n"
        "                        DLQ.SOURCE-TOPIC.REASONS, * for none given)\n"
        "  --from-offset N       start every partition at N, not where the\n"
        "                        group stopped (or the start)\n"
        "  -e, --exit-at-end     stop at each partition's end as of start\n"
        "  --dry-run             print, not send: partition offset reason\n"
        "                        source-topic key, one line per record\n"
        "  -X key=value          librdkafka property for both clients\n"
        "  -h, --help            print this help and exit 0\n\n"
        "Each run reads every DLQ partition from where the group's last run\n"
        "stopped up to its end as of start, and, when everything it sent was\n"
        "delivered, commits that end to the group (a dry run commits nothing;\n"
        "a failed or interrupted run commits nothing, so the next one sends\n"
        "it all again). A record this run sent that is dead-lettered again\n"
        "lands after that end: the next run of the group reads only what\n"
        "arrived since, not everything again. Use --reason/--source-topic to\n"
        "select (--reason is repeatable): each selection has its own default\n"
        "group; --from-offset 0 or a new --group reads from the start.\n"
        "The processor counts an event_id once per user within its dedup\n"
        "window (the user's last dedup.events ids), so a record that reached\n"
        "it before is not counted twice while its id is in that window.\n"
        "Records without ews.source.topic are skipped unless --to-topic.\n\n"
        "Exit codes: 0 all selected records delivered (and the position\n"
        "committed), 1 any read, delivery or commit failure or an interrupt,\n"
        "2 bad usage.\n";

struct redrive {
        const char *dlq, *source_topic, *to_topic, *group;
        const char *reasons[REDRIVE_REASONS_MAX];
        int reason_cnt, partition_cnt, left_cnt;
        bool dry_run, read_failed, from_set;
        rd_kafka_t *consumer, *producer;
        int64_t *ends;  /* by partition: its end as of start, -1 once done */
        int64_t *stops; /* by partition: the end to commit, -1 if unread */
        int64_t from_offset, read_cnt, sent_cnt, skipped_cnt, failed_cnt;
};

static volatile sig_atomic_t redrive_stop;

static void redrive_on_signal(int sig)
{
        redrive_stop = 1;
        signal(sig, SIG_DFL); /* a second one ends the process at once */
}

static int redrive_parse_int(const char *str, int64_t min, int64_t *num)
{
        char *end;

        errno = 0;
        *num = strtoll(str, &end, 10);
        return errno || end == str || *end || *num < min ? -1 : 0;
}

/* Header values are not NUL-terminated. One that does not fit counts as
 * absent rather than cut: a cut topic name is another topic. */
static bool redrive_header(rd_kafka_headers_t *hdrs, const char *name,
                           char *buf, size_t size)
{
        const void *val = NULL;
        size_t len = 0;

        if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &len) || !val ||
            len >= size)
                len = 0;
        else
                memcpy(buf, val, len);
        buf[len] = '\0';
        return len > 0;
}

/* Keys are bytes: escaped, a --dry-run line stays one line of fields. */
static void redrive_print_key(const unsigned char *key, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++) {
                if (key[i] > ' ' && key[i] < 0x7f && key[i] != '\\')
                        putchar(key[i]);
                else
                        printf("\\x%02x", key[i]);
        }
        puts(len ? "" : "-");
}

static void redrive_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                       void *opaque)
{
        struct redrive *r = opaque;

        (void)rk;
        if (!m->err) {
                r->sent_cnt++;
                return;
        }
        r->failed_cnt++;
        fprintf(stderr, "ews-redrive: delivery to %s [%" PRId32 "]: %s\n",
                rd_kafka_topic_name(m->rkt), m->partition,
                rd_kafka_err2str(m->err));
}

static void redrive_handle(struct redrive *r, const rd_kafka_message_t *msg)
{
        char reason[128], source[256], num[32];
        rd_kafka_headers_t *hdrs = NULL;
        int64_t partition = RD_KAFKA_PARTITION_UA, ts = 0;
        bool selected = r->reason_cnt == 0;
        rd_kafka_resp_err_t err;
        const char *topic;
        int i;

        r->read_cnt++;
        rd_kafka_message_headers(msg, &hdrs);
        redrive_header(hdrs, "ews.error.reason", reason, sizeof(reason));
        redrive_header(hdrs, "ews.source.topic", source, sizeof(source));
        for (i = 0; i < r->reason_cnt; i++)
                selected = selected || !strcmp(reason, r->reasons[i]);
        if (r->source_topic && strcmp(source, r->source_topic))
                selected = false;
        topic = r->to_topic ? r->to_topic : source;
        if (!selected || !*topic) {
                r->skipped_cnt++;
                return;
        }
        if (r->dry_run) {
                printf("%" PRId32 " %" PRId64 " %s %s ", msg->partition,
                       msg->offset, *reason ? reason : "-",
                       *source ? source : "-");
                redrive_print_key(msg->key, msg->key_len);
                return;
        }
        /* The processor keeps state per partition, and the original
         * producer's partitioner is unknown: back where it came from. */
        if (strcmp(topic, source) ||
            !redrive_header(hdrs, "ews.source.partition", num, sizeof(num)) ||
            redrive_parse_int(num, 0, &partition) || partition > INT32_MAX)
                partition = RD_KAFKA_PARTITION_UA;
        /* Without one, 0 lets the producer stamp the time of sending. */
        if (!redrive_header(hdrs, "ews.source.timestamp", num, sizeof(num)) ||
            redrive_parse_int(num, 1, &ts))
                ts = 0;
        /* A full queue is back pressure: serve reports, then retry. */
        while ((err = rd_kafka_producev(
                        r->producer, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_PARTITION((int32_t)partition),
                        RD_KAFKA_V_KEY(msg->key, msg->key_len),
                        RD_KAFKA_V_VALUE(msg->payload, msg->len),
                        RD_KAFKA_V_TIMESTAMP(ts),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(r->producer, 100);
        rd_kafka_poll(r->producer, 0);
        if (err) {
                r->failed_cnt++;
                fprintf(stderr, "ews-redrive: offset %" PRId64 " to %s: %s\n",
                        msg->offset, topic, rd_kafka_err2str(err));
        }
}

/* A partition is done at its end as of start: later records may be ones
 * this run sent back, dead-lettered again. A failed one is not waited for. */
static void redrive_consumed(struct redrive *r, const rd_kafka_message_t *msg)
{
        int32_t p = msg->partition;
        bool failed = msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF;

        if (failed)
                fprintf(stderr, "ews-redrive: %s\n",
                        rd_kafka_message_errstr(msg));
        /* Errors of no topic are the client's: it retries them. */
        if ((failed && !msg->rkt) || p < 0 || p >= r->partition_cnt ||
            r->ends[p] < 0)
                return;
        if (!msg->err && msg->offset < r->ends[p])
                redrive_handle(r, msg);
        if (failed || msg->offset + !msg->err >= r->ends[p]) {
                r->read_failed = r->read_failed || failed;
                r->ends[p] = -1;
                r->left_cnt--;
        }
}

/* Every partition from --from-offset up to its end as of now. */
static int redrive_assign(struct redrive *r)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->consumer, r->dlq, NULL);
        rd_kafka_topic_partition_list_t *all = NULL;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        int64_t *lows = NULL, start;
        int i;

        if (rkt)
                err = rd_kafka_metadata(r->consumer, 0, rkt, &md, 10000);
        if (err || (err = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                             : md->topics[0].err))
                goto out;
        r->partition_cnt = md->topics[0].partition_cnt;
        r->ends = calloc((size_t)r->partition_cnt + 1, sizeof(*r->ends));
        r->stops = calloc((size_t)r->partition_cnt + 1, sizeof(*r->stops));
        lows = calloc((size_t)r->partition_cnt + 1, sizeof(*lows));
        parts = rd_kafka_topic_partition_list_new(r->partition_cnt);
        all = rd_kafka_topic_partition_list_new(r->partition_cnt);
        if (!r->ends || !r->stops || !lows)
                err = RD_KAFKA_RESP_ERR__FAIL;
        /* Partition ids are 0..n-1 in Kafka: slot i is partition i. */
        for (i = 0; i < r->partition_cnt && !err; i++) {
                err = rd_kafka_query_watermark_offsets(
                        r->consumer, r->dlq, i, &lows[i], &r->ends[i], 10000);
                rd_kafka_topic_partition_list_add(all, r->dlq, i);
        }
        /* Where the group's last run stopped, unless --from-offset. */
        if (!err && !r->from_set)
                err = rd_kafka_committed(r->consumer, all, 10000);
        for (i = 0; i < r->partition_cnt && !err; i++) {
                err = all->elems[i].err;
                start = r->from_set ? r->from_offset : all->elems[i].offset;
                if (start < lows[i]) /* none committed, or since deleted */
                        start = lows[i];
                r->stops[i] = r->ends[i];
                if (start >= r->ends[i]) {
                        r->ends[i] = r->stops[i] = -1; /* nothing to read */
                        continue;
                }
                rd_kafka_topic_partition_list_add(parts, r->dlq, i)->offset =
                        start;
                r->left_cnt++;
        }
        if (!err)
                err = rd_kafka_assign(r->consumer, parts);
out:
        if (err)
                fprintf(stderr, "ews-redrive: topic %s: %s\n", r->dlq,
                        rd_kafka_err2str(err));
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        if (all)
                rd_kafka_topic_partition_list_destroy(all);
        free(lows);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return err ? -1 : 0;
}

/* The defaults, then -X to override any. Returns 2 when a property is
 * refused (bad usage), 1 when the client cannot start. */
static int redrive_client(struct redrive *r, rd_kafka_type_t type,
                          const char **props, int prop_cnt)
{
        bool producer = type == RD_KAFKA_PRODUCER;
        char errstr[512];
        /* The producer's one, then the consumer's. Partitions come from
         * assign(): nothing joins the group; it only keeps the position,
         * committed by redrive_commit(). */
        const char *defaults[][2] = {{"enable.idempotence", "true"},
                                     {"group.id", r->group},
                                     {"enable.auto.commit", "false"},
                                     {"enable.partition.eof", "true"},
                                     {"auto.offset.reset", "earliest"}};
        int i, first = producer ? 0 : 1, cnt = producer ? 1 : 4, rc = 2;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t **rkp = producer ? &r->producer : &r->consumer;
        const char **kv;

        for (i = 0; i < cnt + prop_cnt; i++) {
                kv = i < cnt ? defaults[first + i] : &props[2 * (i - cnt)];
                if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
                        goto out;
        }
        rc = 1;
        if (producer)
                rd_kafka_conf_set_dr_msg_cb(conf, redrive_dr);
        rd_kafka_conf_set_opaque(conf, r);
        *rkp = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        if (*rkp)
                return 0; /* rd_kafka_new() took conf */
out:
        fprintf(stderr, "ews-redrive: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return rc;
}

/* Each partition read, at its end as of start: the next run of the group
 * starts there. Returns 0, or -1 when the commit failed. */
static int redrive_commit(struct redrive *r)
{
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(r->partition_cnt + 1);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int i;

        for (i = 0; i < r->partition_cnt; i++)
                if (r->stops[i] >= 0)
                        rd_kafka_topic_partition_list_add(parts, r->dlq, i)
                                ->offset = r->stops[i];
        if (parts->cnt)
                err = rd_kafka_commit(r->consumer, parts, 0);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err)
                fprintf(stderr, "ews-redrive: commit to group %s: %s\n",
                        r->group, rd_kafka_err2str(err));
        return err ? -1 : 0;
}

/* What was wrong, then where to read more; bad usage exits 2. */
static int redrive_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-redrive: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-redrive: %s\n", what);
        fputs("Try 'ews-redrive --help'.\n", stderr);
        return 2;
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static int redrive_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        return redrive_usage(opt == ':' ? "missing value for option"
                                        : "unknown option",
                             arg);
}

/* ews-redrive.DLQ.SOURCE-TOPIC.REASONS: one group per selection, so a run
 * of one selection does not move another's position. */
static char *redrive_default_group(const struct redrive *r)
{
        size_t len = strlen("ews-redrive...*") + strlen(r->dlq) +
                     (r->source_topic ? strlen(r->source_topic) : 1);
        char *group;
        int i;

        for (i = 0; i < r->reason_cnt; i++)
                len += strlen(r->reasons[i]) + 1;
        if (!(group = malloc(len + 1)))
                return NULL;
        snprintf(group, len + 1, "ews-redrive.%s.%s.", r->dlq,
                 r->source_topic ? r->source_topic : "*");
        for (i = 0; i < r->reason_cnt; i++) {
                if (i)
                        strcat(group, ",");
                strcat(group, r->reasons[i]);
        }
        if (!r->reason_cnt)
                strcat(group, "*");
        return group;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bootstrap", required_argument, NULL, 'b'},
                {"topic", required_argument, NULL, 't'},
                {"reason", required_argument, NULL, 'r'},
                {"source-topic", required_argument, NULL, 's'},
                {"to-topic", required_argument, NULL, 'T'},
                {"from-offset", required_argument, NULL, 'o'},
                {"group", required_argument, NULL, 'g'},
                {"exit-at-end", no_argument, NULL, 'e'},
                {"dry-run", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        static const char *props[2 * REDRIVE_PROPS_MAX + 2];
        struct redrive r = {.dlq = "ews-dlq"};
        const char *bootstrap = NULL;
        char *group = NULL;
        rd_kafka_message_t *msg;
        int opt, rc, prop_cnt = 0;
        char *eq;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":b:t:eX:h", options, NULL)) !=
               -1) {
                switch (opt) {
                case 'b':
                        bootstrap = optarg;
                        break;
                case 't':
                        r.dlq = optarg;
                        break;
                case 'r':
                        if (r.reason_cnt == REDRIVE_REASONS_MAX)
                                return redrive_usage("too many --reason",
                                                     optarg);
                        r.reasons[r.reason_cnt++] = optarg;
                        break;
                case 's':
                        r.source_topic = optarg;
                        break;
                case 'T':
                        r.to_topic = optarg;
                        break;
                case 'o':
                        if (redrive_parse_int(optarg, 0, &r.from_offset))
                                return redrive_usage(
                                        "--from-offset wants a number >= 0, "
                                        "not",
                                        optarg);
                        r.from_set = true;
                        break;
                case 'g':
                        if (!*optarg)
                                return redrive_usage("--group is empty", NULL);
                        r.group = optarg;
                        break;
                case 'e':
                        break; /* the only mode: see redrive_consumed() */
                case 'n':
                        r.dry_run = true;
                        break;
                case 'X':
                        eq = strchr(optarg, '=');
                        if (!eq)
                                return redrive_usage("-X wants key=value, not",
                                                     optarg);
                        if (prop_cnt == REDRIVE_PROPS_MAX)
                                return redrive_usage("too many -X", optarg);
                        *eq = '\0';
                        props[2 * prop_cnt] = optarg;
                        props[2 * prop_cnt++ + 1] = eq + 1;
                        break;
                case 'h':
                        fputs(redrive_help, stdout);
                        return 0;
                default:
                        return redrive_bad_option(opt, argv);
                }
        }
        if (optind < argc)
                return redrive_usage("unexpected argument", argv[optind]);
        if (!bootstrap)
                return redrive_usage("-b ADDR is required", NULL);
        if (r.to_topic && !*r.to_topic)
                return redrive_usage("--to-topic is empty", NULL);
        if (!r.group && !(r.group = group = redrive_default_group(&r))) {
                fputs("ews-redrive: out of memory\n", stderr);
                return 1;
        }
        props[2 * prop_cnt] = "bootstrap.servers";
        props[2 * prop_cnt++ + 1] = bootstrap;
        /* A dry run has no producer, so it cannot send anything. */
        if ((rc = redrive_client(&r, RD_KAFKA_CONSUMER, props, prop_cnt)) ||
            (!r.dry_run &&
             (rc = redrive_client(&r, RD_KAFKA_PRODUCER, props, prop_cnt))))
                goto out;
        rc = 1;
        rd_kafka_poll_set_consumer(r.consumer);
        if (redrive_assign(&r))
                goto out;

        signal(SIGINT, redrive_on_signal);
        signal(SIGTERM, redrive_on_signal);
        while (!redrive_stop && r.left_cnt > 0) {
                if (!(msg = rd_kafka_consumer_poll(r.consumer, 100)))
                        continue;
                redrive_consumed(&r, msg);
                rd_kafka_message_destroy(msg);
        }
        /* Each record is delivered or fails within message.timeout.ms. */
        if (r.producer)
                rd_kafka_flush(r.producer, -1);
        fprintf(stderr,
                "ews-redrive: read=%" PRId64 " sent=%" PRId64
                " skipped=%" PRId64 " failed=%" PRId64 "%s\n",
                r.read_cnt, r.sent_cnt, r.skipped_cnt, r.failed_cnt,
                redrive_stop ? " (interrupted)" : "");
        rc = redrive_stop || r.read_failed || r.failed_cnt;
        /* Only a run that delivered everything moves the group on. */
        if (!rc && !r.dry_run && redrive_commit(&r))
                rc = 1;
out:
        if (r.consumer) {
                rd_kafka_consumer_close(r.consumer);
                rd_kafka_destroy(r.consumer);
        }
        if (r.producer)
                rd_kafka_destroy(r.producer);
        free(r.ends);
        free(r.stops);
        free(group);
        return rc;
}
