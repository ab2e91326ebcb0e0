/*
 * ews-alerts: prints the alerts EWS publishes, for people or as JSON Lines.
 *
 * Reads every partition of the alert topic from the beginning with a plain
 * assign(): no consumer group joins, nothing is committed, so running it
 * never disturbs the processor or another reader. Values are raw Avro
 * binary of schemas/alert.avsc, without any framing.
 */
#include <avro.h>
#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALERTS_RULES_MAX 64

/* A string of the decoded value; ptr is NULL for an Avro null. */
struct alerts_str {
        const char *ptr;
        size_t len;
};

/* What the one-line form shows; borrows from the decoded value, so it is
 * valid until the next message. */
struct alerts_alert {
        struct alerts_str subject_id, account_id, campaign_id, reason;
        const char *rule, *status, *subject_type;
        int rule_idx;
        int64_t event_time_ms;
};

struct alerts {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        avro_reader_t reader;
        bool json;
        int64_t alert_cnt, undecodable_cnt;
        int64_t rule_cnts[ALERTS_RULES_MAX];
        const char *rule_names[ALERTS_RULES_MAX];
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

/* Optional fields are ["null", T]: the current branch stands for the field,
 * and its type is AVRO_NULL when the value is absent. */
static int alerts_field(avro_value_t *record, const char *name,
                        avro_value_t *field)
{
        avro_value_t tmp;

        if (avro_value_get_by_name(record, name, &tmp, NULL))
                return -1;
        if (avro_value_get_type(&tmp) != AVRO_UNION) {
                *field = tmp;
                return 0;
        }
        return avro_value_get_current_branch(&tmp, field);
}

static int alerts_get_str(avro_value_t *record, const char *name,
                          struct alerts_str *str)
{
        avro_value_t field;
        size_t size;

        str->ptr = NULL;
        str->len = 0;
        if (alerts_field(record, name, &field))
                return -1;
        if (avro_value_get_type(&field) == AVRO_NULL)
                return 0;
        if (avro_value_get_string(&field, &str->ptr, &size))
                return -1;
        str->len = size > 0 ? size - 1 : 0; /* size counts the NUL */
        return 0;
}

static int alerts_get_enum(avro_value_t *record, const char *name,
                           const char **symbol, int *idx)
{
        avro_value_t field;

        if (alerts_field(record, name, &field) ||
            avro_value_get_enum(&field, idx))
                return -1;
        *symbol = avro_schema_enum_get(avro_value_get_schema(&field), *idx);
        return *symbol ? 0 : -1;
}

static int alerts_varint(const unsigned char **p, const unsigned char *end,
                         int64_t *num)
{
        uint64_t u = 0;
        int shift;

        for (shift = 0; shift < 64 && *p < end; shift += 7) {
                u |= (uint64_t)(**p & 0x7f) << shift;
                if (!(*(*p)++ & 0x80)) {
                        *num = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
        }
        return -1;
}

static int alerts_skip(const unsigned char **p, const unsigned char *end,
                       int64_t size)
{
        if (size < 0 || size > end - *p)
                return -1;
        *p += size;
        return 0;
}

static int alerts_check(const unsigned char **p, const unsigned char *end,
                        avro_schema_t schema);

/* Arrays and maps come in blocks; a negative count is followed by the
 * block's size in bytes. */
static int alerts_check_blocks(const unsigned char **p,
                               const unsigned char *end, avro_schema_t schema)
{
        bool map = avro_typeof(schema) == AVRO_MAP;
        avro_schema_t items = map ? avro_schema_map_values(schema)
                                  : avro_schema_array_items(schema);
        int64_t cnt, size;

        for (;;) {
                if (alerts_varint(p, end, &cnt))
                        return -1;
                if (cnt == 0)
                        return 0;
                if (cnt < 0 &&
                    (cnt == INT64_MIN || alerts_varint(p, end, &size)))
                        return -1;
                cnt = cnt < 0 ? -cnt : cnt;
                /* No item of alert.avsc is empty: this bounds the loop by
                 * the payload, not by a count read from it. */
                if (cnt > end - *p)
                        return -1;
                for (; cnt > 0; cnt--) {
                        if (map && (alerts_varint(p, end, &size) ||
                                    alerts_skip(p, end, size)))
                                return -1;
                        if (alerts_check(p, end, items))
                                return -1;
                }
        }
}

/*
 * Walks the binary encoding against the schema without allocating. avro-c
 * allocates whatever length it reads before it looks for the bytes: one
 * corrupt message could ask it for gigabytes, and a short one leaks the
 * buffer. Nothing reaches avro_value_read() that this has not accepted.
 */
static int alerts_check(const unsigned char **p, const unsigned char *end,
                        avro_schema_t schema)
{
        int64_t num;
        size_t i;

        switch (avro_typeof(schema)) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                return alerts_skip(p, end, 1);
        case AVRO_FLOAT:
                return alerts_skip(p, end, 4);
        case AVRO_DOUBLE:
                return alerts_skip(p, end, 8);
        case AVRO_FIXED:
                return alerts_skip(p, end, avro_schema_fixed_size(schema));
        case AVRO_INT32:
        case AVRO_INT64:
                return alerts_varint(p, end, &num);
        case AVRO_STRING:
        case AVRO_BYTES:
                return alerts_varint(p, end, &num) || alerts_skip(p, end, num);
        case AVRO_ENUM:
                if (alerts_varint(p, end, &num) || num < 0 ||
                    num >= avro_schema_enum_number_of_symbols(schema))
                        return -1;
                return 0;
        case AVRO_UNION:
                if (alerts_varint(p, end, &num) || num < 0 ||
                    num >= (int64_t)avro_schema_union_size(schema))
                        return -1;
                return alerts_check(p, end,
                                    avro_schema_union_branch(schema, (int)num));
        case AVRO_RECORD:
                for (i = 0; i < avro_schema_record_size(schema); i++)
                        if (alerts_check(p, end,
                                         avro_schema_record_field_get_by_index(
                                                 schema, (int)i)))
                                return -1;
                return 0;
        case AVRO_ARRAY:
        case AVRO_MAP:
                return alerts_check_blocks(p, end, schema);
        case AVRO_LINK:
                return alerts_check(p, end, avro_schema_link_target(schema));
        default:
                return -1;
        }
}

static int alerts_decode(struct alerts *alerts, const void *payload, size_t len,
                         struct alerts_alert *alert)
{
        avro_value_t *value = &alerts->value;
        const unsigned char *p;
        avro_value_t field;
        int idx;

        /* avro-c appends to its last error message rather than replacing
         * it, so a stale one would leak into this message's report. */
        avro_set_error("%s", payload ? "" : "no value");
        if (!payload)
                return -1;
        /* Bytes left over mean a framed or foreign payload that only
         * happened to parse. */
        p = payload;
        if (alerts_check(&p, p + len, alerts->schema) ||
            p != (const unsigned char *)payload + len) {
                avro_set_error("not a binary %s record", "alert.avsc");
                return -1;
        }
        avro_reader_memory_set_source(alerts->reader, payload, (int64_t)len);
        avro_value_reset(value);
        if (avro_value_read(alerts->reader, value))
                return -1;
        return alerts_get_enum(value, "rule", &alert->rule, &alert->rule_idx) ||
               alerts_get_enum(value, "status", &alert->status, &idx) ||
               alerts_get_enum(value, "subject_type", &alert->subject_type,
                               &idx) ||
               alerts_get_str(value, "subject_id", &alert->subject_id) ||
               alerts_get_str(value, "account_id", &alert->account_id) ||
               alerts_get_str(value, "campaign_id", &alert->campaign_id) ||
               avro_value_get_by_name(value, "event_time", &field, NULL) ||
               avro_value_get_long(&field, &alert->event_time_ms) ||
               alerts_get_str(value, "reason", &alert->reason);
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
static void alerts_print_text(FILE *fp, const struct alerts_str *str)
{
        size_t i;

        for (i = 0; i < str->len; i++)
                fputc(iscntrl((unsigned char)str->ptr[i]) ? '?' : str->ptr[i],
                      fp);
}

static void alerts_print_line(FILE *fp, const struct alerts_alert *alert)
{
        const struct alerts_str *context[2] = {&alert->account_id,
                                               &alert->campaign_id};
        const char *labels[2] = {"account", "campaign"};
        char when[32];
        const char *p;
        int i, shown = 0;

        alerts_time_iso(alert->event_time_ms, when, sizeof(when));
        fprintf(fp, "%s %s %s ", when, alert->rule, alert->status);
        for (p = alert->subject_type; *p; p++)
                fputc(tolower((unsigned char)*p), fp);
        fputc(' ', fp);
        alerts_print_text(fp, &alert->subject_id);
        /* The subject's own id is not repeated as its context. */
        for (i = 0; i < 2; i++) {
                if (!context[i]->ptr ||
                    (context[i]->len == alert->subject_id.len &&
                     !memcmp(context[i]->ptr, alert->subject_id.ptr,
                             context[i]->len)))
                        continue;
                fprintf(fp, "%s%s ", shown++ ? ", " : " (", labels[i]);
                alerts_print_text(fp, context[i]);
        }
        fputs(shown ? "): " : ": ", fp);
        alerts_print_text(fp, &alert->reason);
        fputc('\n', fp);
}

static void alerts_json_str(FILE *fp, const char *ptr, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        unsigned char c;
        size_t i;

        if (!ptr) {
                fputs("null", fp);
                return;
        }
        fputc('"', fp);
        for (i = 0; i < len; i++) {
                c = (unsigned char)ptr[i];
                if (c == '"' || c == '\\')
                        fprintf(fp, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", fp);
                else if (c == '\t')
                        fputs("\\t", fp);
                else if (c == '\r')
                        fputs("\\r", fp);
                else if (c < 0x20)
                        fprintf(fp, "\\u00%c%c", hex[c >> 4], hex[c & 0xf]);
                else
                        fputc(c, fp);
        }
        fputc('"', fp);
}

/* The shortest form that reads back as the same double; JSON has no NaN or
 * infinity, so those become null. */
static void alerts_json_double(FILE *fp, double num)
{
        char buf[32];
        int digits;

        if (!isfinite(num)) {
                fputs("null", fp);
                return;
        }
        for (digits = 15; digits < 17; digits++) {
                snprintf(buf, sizeof(buf), "%.*g", digits, num);
                if (strtod(buf, NULL) == num)
                        break;
        }
        if (digits == 17)
                snprintf(buf, sizeof(buf), "%.17g", num);
        fputs(buf, fp);
}

/* Writes any decoded value as plain JSON: a union as its branch, an enum as
 * its symbol, a record as an object in schema order. */
static int alerts_json_value(FILE *fp, avro_value_t *value)
{
        avro_type_t type = avro_value_get_type(value);
        avro_value_t child;
        const char *str;
        size_t size, i;
        int64_t num;
        int32_t num32;
        double dbl;
        float flt;
        int idx;

        switch (type) {
        case AVRO_NULL:
                fputs("null", fp);
                return 0;
        case AVRO_BOOLEAN:
                if (avro_value_get_boolean(value, &idx))
                        return -1;
                fputs(idx ? "true" : "false", fp);
                return 0;
        case AVRO_INT32:
                if (avro_value_get_int(value, &num32))
                        return -1;
                fprintf(fp, "%" PRId32, num32);
                return 0;
        case AVRO_INT64:
                if (avro_value_get_long(value, &num))
                        return -1;
                fprintf(fp, "%" PRId64, num);
                return 0;
        case AVRO_FLOAT:
                if (avro_value_get_float(value, &flt))
                        return -1;
                alerts_json_double(fp, flt);
                return 0;
        case AVRO_DOUBLE:
                if (avro_value_get_double(value, &dbl))
                        return -1;
                alerts_json_double(fp, dbl);
                return 0;
        case AVRO_STRING:
                if (avro_value_get_string(value, &str, &size))
                        return -1;
                alerts_json_str(fp, str, size > 0 ? size - 1 : 0);
                return 0;
        case AVRO_ENUM:
                if (avro_value_get_enum(value, &idx) ||
                    !(str = avro_schema_enum_get(avro_value_get_schema(value),
                                                 idx)))
                        return -1;
                alerts_json_str(fp, str, strlen(str));
                return 0;
        case AVRO_UNION:
                return avro_value_get_current_branch(value, &child) ||
                       alerts_json_value(fp, &child);
        case AVRO_RECORD:
        case AVRO_MAP:
        case AVRO_ARRAY:
                if (avro_value_get_size(value, &size))
                        return -1;
                fputc(type == AVRO_ARRAY ? '[' : '{', fp);
                for (i = 0; i < size; i++) {
                        if (avro_value_get_by_index(value, i, &child, &str))
                                return -1;
                        fputs(i ? "," : "", fp);
                        if (type != AVRO_ARRAY) {
                                alerts_json_str(fp, str, strlen(str));
                                fputc(':', fp);
                        }
                        if (alerts_json_value(fp, &child))
                                return -1;
                }
                fputc(type == AVRO_ARRAY ? ']' : '}', fp);
                return 0;
        default:
                return -1;
        }
}

static void alerts_handle(struct alerts *alerts,
                          const rd_kafka_message_t *rkmessage)
{
        struct alerts_alert alert;
        char *json = NULL;
        size_t json_len = 0;
        FILE *fp = NULL;
        int rc = alerts_decode(alerts, rkmessage->payload, rkmessage->len,
                               &alert);

        /* A JSON line goes out whole or not at all: half an object would
         * break every reader of the stream. */
        if (!rc && alerts->json) {
                fp = open_memstream(&json, &json_len);
                rc = !fp || alerts_json_value(fp, &alerts->value) ||
                     fputc('\n', fp) == EOF;
                if (fp && fclose(fp))
                        rc = -1;
        }
        if (rc) {
                alerts->undecodable_cnt++;
                fprintf(stderr,
                        "ews-alerts: %s [%" PRId32 "] offset %" PRId64
                        ": cannot decode: %s\n",
                        rd_kafka_topic_name(rkmessage->rkt),
                        rkmessage->partition, rkmessage->offset,
                        avro_strerror());
                goto out;
        }
        if (alerts->json)
                fwrite(json, 1, json_len, stdout);
        else
                alerts_print_line(stdout, &alert);
        alerts->alert_cnt++;
        if (alert.rule_idx >= 0 && alert.rule_idx < ALERTS_RULES_MAX) {
                alerts->rule_cnts[alert.rule_idx]++;
                alerts->rule_names[alert.rule_idx] = alert.rule;
        }
out:
        free(json);
}

static int alerts_schema_load(struct alerts *alerts, const char *dir)
{
        char path[4096], *json = NULL;
        FILE *fp;
        long size;
        int rc = -1;

        snprintf(path, sizeof(path), "%s/alert.avsc", dir);
        fp = fopen(path, "rb");
        if (!fp || fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET) || !(json = malloc((size_t)size + 1)) ||
            fread(json, 1, (size_t)size, fp) != (size_t)size) {
                fprintf(stderr, "ews-alerts: %s: %s\n", path, strerror(errno));
                goto out;
        }
        if (avro_schema_from_json_length(json, (size_t)size, &alerts->schema) ||
            !(alerts->iface = avro_generic_class_from_schema(alerts->schema)) ||
            avro_generic_value_new(alerts->iface, &alerts->value)) {
                fprintf(stderr, "ews-alerts: %s: %s\n", path, avro_strerror());
                goto out;
        }
        rc = 0;
out:
        free(json);
        if (fp)
                fclose(fp);
        return rc;
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

static void alerts_usage(FILE *fp)
{
        fprintf(fp, "usage: ews-alerts -b ADDR [-t TOPIC] [--schemas DIR] "
                    "[--json] [-e]\n"
                    "  [--idle-exit-ms N] [-X key=value]...\n");
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
        while ((opt = getopt_long(argc, argv, "b:t:eX:h", options, NULL)) !=
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
                                fprintf(stderr,
                                        "ews-alerts: bad --idle-exit-ms\n");
                                goto out;
                        }
                        break;
                case 'X':
                        end = strchr(optarg, '=');
                        if (!end) {
                                fprintf(stderr, "ews-alerts: -X key=value\n");
                                goto out;
                        }
                        *end = '\0';
                        if (alerts_conf_set(conf, optarg, end + 1))
                                goto out;
                        break;
                case 'h':
                        alerts_usage(stdout);
                        rc = 0;
                        goto out;
                default:
                        alerts_usage(stderr);
                        goto out;
                }
        }
        if (!bootstrap || optind < argc) {
                alerts_usage(stderr);
                goto out;
        }
        rc = 1;
        if (alerts_schema_load(&alerts, schemas))
                goto out;
        alerts.reader = avro_reader_memory("", 0);
        if (!alerts.reader ||
            alerts_conf_set(conf, "bootstrap.servers", bootstrap))
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
        for (i = 0; i < ALERTS_RULES_MAX; i++)
                if (alerts.rule_cnts[i])
                        fprintf(stderr, " %s=%" PRId64, alerts.rule_names[i],
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
        if (alerts.reader)
                avro_reader_free(alerts.reader);
        if (alerts.value.iface)
                avro_value_decref(&alerts.value);
        if (alerts.iface)
                avro_value_iface_decref(alerts.iface);
        if (alerts.schema)
                avro_schema_decref(alerts.schema);
        free(eofs);
        return rc;
}
