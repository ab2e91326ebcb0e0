/*
 * ews-processor: the early-warning stream processor.
 *
 * Exit codes: 0 stopped cleanly (signal, or --exit-at-end reached the end);
 * 1 a runtime failure (store or broker client could not be set up);
 * 2 bad usage or configuration; 3 a stop that overran its time limit.
 */
#include "ops/config.h"
#include "decode/decode.h"
#include "ops/http.h"
#include "ops/setup.h"
#include "in_kafka/in_kafka.h"
#include "util/log.h"
#include "out_kafka/out_kafka.h"
#include "store/store.h"
#include "pipeline/pipeline.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAIN_FLUSH_TIMEOUT_MS 10000
#define MAIN_STOP_TIMEOUT_S   30 /* from SIGTERM to exit, at the most */

static volatile sig_atomic_t main_stop, main_reload;

static void main_on_signal(int sig)
{
        if (sig == SIGHUP) {
                main_reload = 1;
                return;
        }
        main_stop = 1;
}

/* A stop that cannot finish (a broker or Redis that never answers) must
 * still end, for the orchestrator's sake. */
static void main_on_alarm(int sig)
{
        static const char msg[] = "ews-processor: stop timed out\n";

        (void)sig;
        if (write(2, msg, sizeof(msg) - 1) < 0)
                _exit(3);
        _exit(3);
}

static int64_t main_clock_ms(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void main_usage(FILE *fp)
{
        fprintf(fp,
                "usage: ews-processor [-c FILE] [-X key=value]... "
                "[--check-config] [--exit-at-end]\n"
                "  [--end-offsets LIST] [--alerts-file FILE]\n"
                "  -c, --config FILE   YAML configuration (see "
                "config/ews.yaml)\n"
                "  -X key=value        librdkafka property, for the client "
                "whose it is (both if both)\n"
                "  --check-config      validate, print the effective "
                "configuration, exit\n"
                "  --exit-at-end       stop once every assigned partition is "
                "consumed to its end\n"
                "  --end-offsets LIST  --exit-at-end, partitions ending at "
                "TOPIC:PARTITION=OFFSET,...\n"
                "  --alerts-file FILE  replay mode: alerts and dead letters "
                "to FILE (JSON lines), not Kafka\n"
                "Environment variables override the file: EWS_REDIS_HOST for "
                "redis.host, ...\n"
                "Exit codes: 0 clean stop, 1 runtime failure, 2 usage or "
                "configuration error.\n");
}

/* What the main loop drives. It owns the stages (made in main_open,
 * freed in main_close); the stages own their state. */
struct main_ctx {
        struct ews_config *config;
        const char *config_path;
        bool exit_at_end;
        const char *alerts_file; /* replay mode: alerts to a file */
        const char *end_list;    /* --end-offsets, parsed into end */
        int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
        struct ews_decoder *decoder;
        struct ews_store *store;
        struct ews_out_kafka *out;
        struct ews_in_kafka *in;
        struct ews_pipeline *pipeline;
        struct ews_http *http;
        struct ews_metrics *metrics;
        struct ews_msg *msgs;
        int64_t ready;             /* ews_ready */
        int64_t waiting_logged_ms; /* the last "waiting for" line */
};

#define MAIN_WAITING_LOG_MS 10000 /* how often a wait is logged */

/* What /readyz says and, every 10 s while not ready, the log: why. */
static void main_waiting(struct main_ctx *ctx, const char *why)
{
        int64_t mono_ms = main_clock_ms(CLOCK_MONOTONIC);

        if (ctx->http)
                ews_http_publish_why(ctx->http, why);
        if (!why || !strcmp(why, "ready")) {
                ctx->waiting_logged_ms = 0;
                return;
        }
        if (ctx->waiting_logged_ms &&
            mono_ms - ctx->waiting_logged_ms < MAIN_WAITING_LOG_MS)
                return;
        ctx->waiting_logged_ms = mono_ms;
        ews_warn("main", "not ready: %s", why);
}

/* The main loop's own rows, and every stage's. */
static int main_metrics_register(struct main_ctx *ctx)
{
        struct ews_metrics *m = ctx->metrics;

        if (ews_pipeline_metrics_register(ctx->pipeline, ctx->config, m) ||
            ews_store_metrics_register(ctx->store, m) ||
            ews_in_kafka_metrics_register(ctx->in, m) ||
            ews_out_kafka_metrics_register(ctx->out, m) ||
            ews_metrics_add_i64(m, "ews_ready", "1 when ready (as /readyz).",
                                EWS_METRIC_GAUGE, "", &ctx->ready) ||
            ews_metrics_add_process(m))
                return -1;
        return 0;
}

/* What readiness waits for, in the order a start meets it. */
static const char *main_why(struct main_ctx *ctx, int paused)
{
        const char *why = ews_in_kafka_waiting(ctx->in);

        if (why)
                return why;
        if (!ews_store_connected(ctx->store))
                return "waiting for Redis";
        return paused ? "partitions paused (Redis errors)" : "ready";
}

/* Renders the table and hands it to the HTTP thread. */
static void main_metrics(struct main_ctx *ctx)
{
        char *text = NULL;
        size_t len = 0;
        int paused;
        FILE *fp;

        ews_pipeline_partitions(ctx->pipeline, NULL, 0,
                                main_clock_ms(CLOCK_REALTIME), &paused);
        /* A standby that owns no partition is ready: rollouts need it. */
        ctx->ready = ews_in_kafka_healthy(ctx->in) &&
                     ews_store_connected(ctx->store) && !paused;
        main_waiting(ctx, main_why(ctx, paused));
        if (!ctx->http)
                return;
        fp = open_memstream(&text, &len);
        if (!fp)
                return;
        ews_metrics_render(ctx->metrics, fp);
        if (!fclose(fp))
                ews_http_publish(ctx->http, text, len, ctx->ready);
        free(text);
}

/* What the end of the input decides (--exit-at-end): idle watermarks and
 * the leader's closed days. An instance that does not lead waits, up to a
 * lease, for the one that does to finish or leave: the last to finish
 * decides what the others' watermarks had not yet closed. */
static void main_finish_input(struct ews_pipeline *pipeline,
                              const struct ews_config *config)
{
        int64_t deadline =
                main_clock_ms(CLOCK_MONOTONIC) + config->leader_lease_ms + 2000;

        for (;;) {
                ews_pipeline_tick(pipeline, main_clock_ms(CLOCK_REALTIME),
                                  main_clock_ms(CLOCK_MONOTONIC));
                if (ews_pipeline_leader_caught_up(pipeline) || main_stop)
                        return;
                /* a leader with more due goes on at once: it is deciding,
                 * not waiting for anything */
                if (ews_pipeline_leader_behind(pipeline)) {
                        deadline = main_clock_ms(CLOCK_MONOTONIC) +
                                   config->leader_lease_ms + 2000;
                        continue;
                }
                if (main_clock_ms(CLOCK_MONOTONIC) >= deadline)
                        return;
                usleep(200 * 1000);
        }
}

/* The partitions' retries and the pipeline's timers, idle watermarks,
 * leader and outboxes. */
static void main_job_pipeline(struct main_ctx *ctx, int64_t mono_ms)
{
        ews_pipeline_cron(ctx->pipeline, mono_ms);
        ews_pipeline_tick(ctx->pipeline, main_clock_ms(CLOCK_REALTIME),
                          mono_ms);
}

static void main_job_metrics(struct main_ctx *ctx, int64_t mono_ms)
{
        (void)mono_ms;
        main_metrics(ctx);
}

static void main_job_report(struct main_ctx *ctx, int64_t mono_ms)
{
        const struct ews_pipeline_stats *s = ews_pipeline_stats(ctx->pipeline);

        (void)mono_ms;
        ews_info("main",
                 "consumed=%lld commits=%lld fenced=%lld "
                 "store_errors=%lld",
                 (long long)(s->consumed[0] + s->consumed[1]),
                 (long long)s->commits, (long long)s->fenced,
                 (long long)s->store_errors);
}

/* All periodic work happens here, each job at its own period (as Redis'
 * serverCron runs its jobs with run_with_period). */
static void main_cron(struct main_ctx *ctx, int64_t mono_ms)
{
        static struct {
                int64_t period_ms;
                void (*run)(struct main_ctx *ctx, int64_t mono_ms);
                int64_t last_ms;
        } jobs[] = {
                {1000, main_job_pipeline, 0},
                {1000, main_job_metrics, 0},
                {30000, main_job_report, 0},
        };
        size_t i;

        ews_out_kafka_poll(ctx->out);
        for (i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++)
                if (mono_ms - jobs[i].last_ms >= jobs[i].period_ms) {
                        jobs[i].last_ms = mono_ms;
                        jobs[i].run(ctx, mono_ms);
                }
}

static void main_report(const struct ews_pipeline_stats *s,
                        const struct ews_out_kafka_stats *o,
                        int64_t fetch_wakes)
{
        int64_t dead = 0;
        int i, j;

        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                for (j = 0; j < EWS_DECODE_ERR_COUNT; j++)
                        dead += s->dead[i][j];
        fprintf(stderr,
                "ews-processor: consumed=%lld decoded=%lld dead_letters=%lld "
                "replayed=%lld commits=%lld fenced=%lld store_errors=%lld "
                "produced=%lld delivered=%lld failed=%lld fetch_wakes=%lld "
                "overlapped=%lld",
                (long long)(s->consumed[0] + s->consumed[1]),
                (long long)(s->decoded[0] + s->decoded[1]), (long long)dead,
                (long long)s->replayed, (long long)s->commits,
                (long long)s->fenced, (long long)s->store_errors,
                (long long)o->produced, (long long)o->delivered,
                (long long)o->failed, (long long)fetch_wakes,
                (long long)s->rounds_overlapped);
        for (i = 0; i < EWS_RULE_COUNT; i++)
                if (s->alerts[i][0] || s->alerts[i][1])
                        fprintf(stderr, " %s=%lld/%lld", ews_rule_name(i),
                                (long long)s->alerts[i][0],
                                (long long)s->alerts[i][1]);
        fprintf(stderr, "\n");
}

/* Fences, timers and state are per partition: a topic whose partition
 * count changed under a store would silently mix users. Waits for the
 * topics to exist, as the consumer would. */
static int main_partitions_check(struct main_ctx *ctx)
{
        struct ews_in_kafka *in = ctx->in;
        struct ews_store *store = ctx->store;
        const struct ews_config *config = ctx->config;
        char errstr[1024], why[300];
        const char *broker;
        int s, cnt, stored;

        for (s = 0; s < EWS_SOURCE_COUNT && !main_stop; s++) {
                while ((cnt = ews_in_kafka_partition_count(
                                in, (enum ews_source)s, 2000)) < 0) {
                        if (main_stop)
                                return 0;
                        /* a broker that answered, without the topic */
                        broker = ews_in_kafka_waiting(in);
                        if (!broker || strcmp(broker, "waiting for brokers"))
                                snprintf(why, sizeof(why),
                                         "waiting for topic %s",
                                         config->topics[s]);
                        else
                                snprintf(why, sizeof(why), "%s", broker);
                        main_waiting(ctx, why);
                        sleep(1);
                }
                switch (ews_store_partitions_check(store, (enum ews_source)s,
                                                   cnt, &stored, errstr,
                                                   sizeof(errstr))) {
                case EWS_STORE_OK:
                        break;
                case EWS_STORE_FENCED:
                        ews_err("main", "refusing to run: %s", errstr);
                        return -1;
                case EWS_STORE_ERROR:
                case EWS_STORE_REJECTED:
                case EWS_STORE_GONE:
                case EWS_STORE_NOT_FOUND:
                case EWS_STORE_HELD:
                        ews_err("main", "%s", errstr);
                        return -1;
                }
        }
        return 0;
}

/* A start waiting for something outside (ews_setup_outputs()): /readyz
 * says what, and a signal ends the wait. */
static bool main_wait(void *opaque, const char *why)
{
        if (main_stop)
                return false;
        main_waiting(opaque, why);
        sleep(1);
        return !main_stop;
}

/* Parses the command line into ctx and the configuration. Returns -1 to
 * go on, else the exit code. */
static int main_args(int argc, char **argv, struct main_ctx *ctx)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"exit-at-end", no_argument, NULL, 'e'},
                {"end-offsets", required_argument, NULL, 'E'},
                {"alerts-file", required_argument, NULL, 'A'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        const char *props[EWS_CONFIG_PROPS_MAX];
        int prop_cnt = 0, check_only = 0, opt, i;
        char errstr[1024];

        while ((opt = getopt_long(argc, argv, "c:X:h", options, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        ctx->config_path = optarg;
                        break;
                case 'X':
                        if (prop_cnt == EWS_CONFIG_PROPS_MAX) {
                                fprintf(stderr, "ews-processor: too many -X\n");
                                return 2;
                        }
                        props[prop_cnt++] = optarg;
                        break;
                case 'C':
                        check_only = 1;
                        break;
                case 'e':
                        ctx->exit_at_end = true;
                        break;
                case 'E':
                        ctx->end_list = optarg;
                        ctx->exit_at_end = true;
                        break;
                case 'A':
                        ctx->alerts_file = optarg;
                        break;
                case 'h':
                        main_usage(stdout);
                        return 0;
                default:
                        main_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                main_usage(stderr);
                return 2;
        }
        ews_config_defaults(ctx->config);
        if (ews_config_load(ctx->config, ctx->config_path, errstr,
                            sizeof(errstr)))
                goto bad;
        for (i = 0; i < prop_cnt; i++)
                if (ews_config_set_kafka_prop(ctx->config, props[i], errstr,
                                              sizeof(errstr)))
                        goto bad;
        /* A start would refuse these: refused here, exit 2, for both. */
        if (ews_setup_check(ctx->config, ctx->config_path, errstr,
                            sizeof(errstr)) ||
            (ctx->end_list &&
             ews_setup_end_offsets(ctx->config, ctx->end_list, ctx->end, errstr,
                                   sizeof(errstr))))
                goto bad;
        if (check_only) {
                ews_config_print(ctx->config, stdout);
                return 0;
        }
        return -1;
bad:
        fprintf(stderr, "ews-processor: %s\n", errstr);
        return 2;
}

static void main_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = main_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sa.sa_handler = main_on_alarm;
        sigaction(SIGALRM, &sa, NULL);
}

static struct ews_in_kafka *main_input(const struct main_ctx *ctx, char *errstr,
                                       size_t errstr_size)
{
        const struct ews_config *c = ctx->config;
        struct ews_in_kafka_conf conf = {
                .bootstrap_servers = c->bootstrap_servers,
                .group_id = c->group_id,
                .from_end = c->offset_reset == EWS_RESET_LATEST,
                .fetch_wake = c->fetch_wake != 0,
                /* woken, the fetcher keeps about a batch queued ahead */
                .queue_min = c->batch_max,
                .topics = {c->topics[0], c->topics[1]},
                .props = &c->consumer,
                .end_offsets = {ctx->end_list ? ctx->end[0] : NULL,
                                ctx->end_list ? ctx->end[1] : NULL},
        };
        struct ews_in_kafka_cb cb = ews_pipeline_callbacks(ctx->pipeline);

        return ews_in_kafka_new(&conf, &cb, errstr, errstr_size);
}

/* Makes the stages, in the order of the data flow, and wires them.
 * 0, or -1 with errstr (what was made is freed by main_close). */
static int main_open(struct main_ctx *ctx, char *errstr, size_t errstr_size)
{
        const struct ews_config *c = ctx->config;
        struct ews_store_conf store_conf = ews_setup_store_conf(c);
        struct ews_out_kafka_conf out_conf = {
                .bootstrap_servers = c->bootstrap_servers,
                .topic_alerts = c->topic_alerts,
                .topic_dlq = c->topic_dlq,
                .props = &c->producer,
                .file = ctx->alerts_file,
        };

        /* HTTP first: the probes answer, and say why, while the start
         * waits for brokers and topics. */
        if (c->http_port &&
            !(ctx->http = ews_setup_http(c, errstr, errstr_size)))
                return -1;
        main_waiting(ctx, "waiting for brokers");
        if (!(ctx->decoder = ews_setup_decoder(c, errstr, errstr_size)) ||
            !(ctx->store = ews_store_new(&store_conf, errstr, errstr_size)) ||
            !(ctx->out = ews_out_kafka_new(&out_conf, errstr, errstr_size)) ||
            !(ctx->pipeline =
                      ews_pipeline_new(c, ctx->decoder, ctx->store, ctx->out,
                                       errstr, errstr_size)) ||
            !(ctx->in = main_input(ctx, errstr, errstr_size)))
                return -1;
        ews_pipeline_set_input(ctx->pipeline, ctx->in);
        ews_pipeline_set_bounded(ctx->pipeline, ctx->exit_at_end);
        if (main_partitions_check(ctx)) {
                snprintf(errstr, errstr_size, "partition check failed");
                return -1;
        }
        if (ews_setup_outputs(c, ctx->out, ctx->decoder, main_wait, ctx, errstr,
                              errstr_size))
                return -1;
        ctx->metrics = ews_metrics_new();
        ctx->msgs = calloc((size_t)c->batch_max, sizeof(*ctx->msgs));
        if (!ctx->metrics || !ctx->msgs || main_metrics_register(ctx)) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        main_metrics(ctx); /* readiness, and why, at once */
        return 0;
}

/* Consumes until a signal (or the end of the input, --exit-at-end). */
static void main_loop(struct main_ctx *ctx)
{
        const struct ews_config *c = ctx->config;

        ews_info("main", "consuming %s, %s from %s as group %s", c->topics[0],
                 c->topics[1], c->bootstrap_servers, c->group_id);
        while (!main_stop) {
                int cnt = ews_in_kafka_consume(ctx->in, ctx->msgs, c->batch_max,
                                               (int)c->batch_wait_ms,
                                               (int)c->batch_linger_ms);
                if (cnt > 0)
                        ews_pipeline_run(ctx->pipeline, ctx->msgs, cnt,
                                         main_clock_ms(CLOCK_REALTIME),
                                         main_clock_ms(CLOCK_MONOTONIC));
                else /* the round in flight waits for no batch */
                        ews_pipeline_settle(ctx->pipeline);
                ews_in_kafka_release(ctx->in);
                main_cron(ctx, main_clock_ms(CLOCK_MONOTONIC));
                if (main_reload) {
                        main_reload = 0;
                        ews_setup_reload(ctx->config, ctx->config_path);
                }
                if (ctx->exit_at_end && ews_in_kafka_at_end(ctx->in) &&
                    !ews_pipeline_recovering(ctx->pipeline) &&
                    ews_pipeline_fences_current(ctx->pipeline)) {
                        main_finish_input(ctx->pipeline, c);
                        break;
                }
        }
        ews_info("main", "stopping");
}

/* Stops in the order that loses nothing: alerts out, outboxes cleaned,
 * the group left (committing stored offsets), then the rest. */
static void main_close(struct main_ctx *ctx)
{
        struct ews_out_kafka_stats out_stats = {0, 0, 0};
        int64_t fetch_wakes;

        alarm(MAIN_STOP_TIMEOUT_S);
        ews_http_destroy(ctx->http);
        /* The round in flight, if one is: its alerts go with the rest. */
        if (ctx->pipeline)
                ews_pipeline_settle(ctx->pipeline);
        /* Alerts first: their state is committed, so they must go out. */
        if (ctx->out && ews_out_kafka_flush(ctx->out, MAIN_FLUSH_TIMEOUT_MS))
                ews_warn("main", "alerts not all delivered before exit: they "
                                 "stay in the outbox");
        if (ctx->pipeline)
                ews_pipeline_finish(ctx->pipeline);
        fetch_wakes = ews_in_kafka_fetch_wakes(ctx->in);
        ews_in_kafka_destroy(ctx->in);
        if (ctx->out)
                out_stats = ews_out_kafka_stats(ctx->out);
        if (ctx->pipeline)
                main_report(ews_pipeline_stats(ctx->pipeline), &out_stats,
                            fetch_wakes);
        ews_pipeline_destroy(ctx->pipeline);
        ews_out_kafka_destroy(ctx->out, MAIN_FLUSH_TIMEOUT_MS);
        ews_store_destroy(ctx->store);
        ews_decoder_destroy(ctx->decoder);
        ews_metrics_destroy(ctx->metrics);
        free(ctx->msgs);
}

int main(int argc, char **argv)
{
        static struct ews_config config; /* large: not on the stack */
        struct main_ctx ctx = {.config = &config};
        char errstr[1024];
        int rc = main_args(argc, argv, &ctx);

        if (rc >= 0)
                return rc;
        ews_log_setup(config.log_level, config.log_format == EWS_LOG_JSON);
        main_signals();
        rc = 1;
        if (main_open(&ctx, errstr, sizeof(errstr))) {
                ews_err("main", "%s", errstr);
                goto out;
        }
        main_loop(&ctx);
        rc = 0;
out:
        main_close(&ctx);
        return rc;
}
