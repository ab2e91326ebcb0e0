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
                "  -c, --config FILE   YAML configuration (see "
                "config/ews.yaml)\n"
                "  -X key=value        librdkafka property for the consumer "
                "and the producer\n"
                "  --check-config      validate, print the effective "
                "configuration, exit\n"
                "  --exit-at-end       stop once every assigned partition is "
                "consumed to its end\n"
                "Environment variables override the file: EWS_REDIS_HOST for "
                "redis.host, ...\n"
                "Exit codes: 0 clean stop, 1 runtime failure, 2 usage or "
                "configuration error.\n");
}

/* What the periodic work reads and writes. */
struct main_ctx {
        const struct ews_config *config;
        struct ews_pipeline *pipeline;
        struct ews_store *store;
        struct ews_out_kafka *out;
        struct ews_in_kafka *in;
        struct ews_http *http;
        struct ews_metrics *metrics;
        int64_t ready; /* ews_ready */
        int64_t last_recover_ms;
        int64_t last_metrics_ms;
        int64_t last_report_ms;
};

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
                if (ews_pipeline_leader_caught_up(pipeline) || main_stop ||
                    main_clock_ms(CLOCK_MONOTONIC) >= deadline)
                        return;
                usleep(200 * 1000);
        }
}

/* Periodic work happens here, each job at its own period. */
static void main_cron(struct main_ctx *ctx, int64_t now_ms)
{
        struct ews_pipeline *pipeline = ctx->pipeline;

        ews_out_kafka_poll(ctx->out);
        if (now_ms - ctx->last_recover_ms >= 1000) {
                ctx->last_recover_ms = now_ms;
                ews_pipeline_cron(pipeline, now_ms);
                ews_pipeline_tick(pipeline, main_clock_ms(CLOCK_REALTIME),
                                  now_ms);
        }
        if (now_ms - ctx->last_metrics_ms >= 1000) {
                ctx->last_metrics_ms = now_ms;
                main_metrics(ctx);
        }
        if (now_ms - ctx->last_report_ms >= 30000) {
                const struct ews_pipeline_stats *s =
                        ews_pipeline_stats(pipeline);

                ctx->last_report_ms = now_ms;
                ews_info("main",
                         "consumed=%lld commits=%lld fenced=%lld "
                         "store_errors=%lld",
                         (long long)(s->consumed[0] + s->consumed[1]),
                         (long long)s->commits, (long long)s->fenced,
                         (long long)s->store_errors);
        }
}

static void main_report(const struct ews_pipeline_stats *s,
                        const struct ews_out_kafka_stats *o)
{
        int64_t dead = 0;
        int i, j;

        for (i = 0; i < EWS_SOURCE_COUNT; i++)
                for (j = 0; j < EWS_DECODE_ERR_COUNT; j++)
                        dead += s->dead[i][j];
        fprintf(stderr,
                "ews-processor: consumed=%lld decoded=%lld dead_letters=%lld "
                "replayed=%lld commits=%lld fenced=%lld store_errors=%lld "
                "produced=%lld delivered=%lld failed=%lld",
                (long long)(s->consumed[0] + s->consumed[1]),
                (long long)(s->decoded[0] + s->decoded[1]), (long long)dead,
                (long long)s->replayed, (long long)s->commits,
                (long long)s->fenced, (long long)s->store_errors,
                (long long)o->produced, (long long)o->delivered,
                (long long)o->failed);
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
static int main_partitions_check(struct ews_in_kafka *in,
                                 struct ews_store *store,
                                 const struct ews_config *config)
{
        char errstr[1024];
        int s, cnt, stored, waited = 0;

        for (s = 0; s < EWS_SOURCE_COUNT && !main_stop; s++) {
                while ((cnt = ews_in_kafka_partition_count(
                                in, (enum ews_source)s, 5000)) < 0) {
                        if (main_stop)
                                return 0;
                        if (!(waited++ % 6))
                                ews_warn("main", "waiting for topic %s",
                                         config->topics[s]);
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
                        ews_err("main", "%s", errstr);
                        return -1;
                }
        }
        return 0;
}

/* SIGHUP: the scoring and rule sections from the file again, state kept.
 * The half-life is the model's identity: a changed one needs a re-score. */
static void main_reload_config(struct ews_config *config, const char *path)
{
        static struct ews_config fresh;
        char errstr[1024];

        ews_config_defaults(&fresh);
        if (ews_config_load(&fresh, path, errstr, sizeof(errstr))) {
                ews_err("main", "reload refused: %s", errstr);
                return;
        }
        if (fresh.score.half_life_ms != config->score.half_life_ms) {
                ews_err("main", "reload refused: scoring.half.life changed; "
                                "a new half-life needs a re-score (replay "
                                "into a new redis.prefix), not a reload");
                return;
        }
        config->score = fresh.score;
        config->rules = fresh.rules;
        ews_info("main", "reloaded the scoring and rule sections of %s",
                 path ? path : "(defaults)");
}

static enum ews_log_level main_log_level(const char *name)
{
        if (!strcmp(name, "error"))
                return EWS_LOG_ERR;
        if (!strcmp(name, "warn"))
                return EWS_LOG_WARN;
        if (!strcmp(name, "debug"))
                return EWS_LOG_DEBUG;
        return EWS_LOG_INFO;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"exit-at-end", no_argument, NULL, 'e'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        static struct ews_config config; /* large: not on the stack */
        const char *config_path = NULL;
        const char *kafka_props[EWS_CONFIG_PROPS_MAX];
        int kafka_prop_cnt = 0, check_only = 0, exit_at_end = 0;
        struct ews_decoder *decoder = NULL;
        struct ews_store *store = NULL;
        struct ews_out_kafka *out = NULL;
        struct ews_in_kafka *in = NULL;
        struct ews_pipeline *pipeline = NULL;
        struct ews_msg *msgs = NULL;
        struct main_ctx ctx;
        struct ews_out_kafka_stats out_stats = {0, 0, 0};
        struct sigaction sa;
        char errstr[1024];
        int opt, i, rc = 1;

        while ((opt = getopt_long(argc, argv, "c:X:h", options, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'X':
                        if (kafka_prop_cnt == EWS_CONFIG_PROPS_MAX) {
                                fprintf(stderr, "ews-processor: too many -X\n");
                                return 2;
                        }
                        kafka_props[kafka_prop_cnt++] = optarg;
                        break;
                case 'C':
                        check_only = 1;
                        break;
                case 'e':
                        exit_at_end = 1;
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

        ews_config_defaults(&config);
        if (ews_config_load(&config, config_path, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-processor: %s\n", errstr);
                return 2;
        }
        for (i = 0; i < kafka_prop_cnt; i++) {
                if (ews_config_set_kafka_prop(&config, kafka_props[i], errstr,
                                              sizeof(errstr))) {
                        fprintf(stderr, "ews-processor: %s\n", errstr);
                        return 2;
                }
        }
        if (check_only) {
                ews_config_print(&config, stdout);
                return 0;
        }
        ews_log_setup(main_log_level(config.log_level),
                      !strcmp(config.log_format, "json"));

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = main_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sa.sa_handler = main_on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        memset(&ctx, 0, sizeof(ctx));
        ctx.config = &config;

        {
                struct ews_decode_conf decode_conf = {
                        config.schema_dir,
                        {ews_decode_format_parse(config.format[0]),
                         ews_decode_format_parse(config.format[1])},
                        {config.writer_schema[0], config.writer_schema[1]},
                        config.registry_url,
                        config.registry_user,
                        config.registry_password,
                        config.registry_timeout_ms,
                        config.max_future_ms,
                        (size_t)config.max_bytes,
                        (size_t)config.max_items};
                struct ews_store_conf store_conf = {
                        config.redis_host,
                        config.redis_port,
                        config.redis_timeout_ms,
                        config.redis_prefix,
                        {config.topics[0], config.topics[1]},
                        config.retention_ms,
                        config.score.half_life_ms,
                        (size_t)config.cache_users,
                        config.redis_username,
                        config.redis_password};
                struct ews_out_kafka_conf out_conf = {
                        config.bootstrap_servers, config.topic_alerts,
                        config.topic_dlq, &config.producer};
                struct ews_in_kafka_conf in_conf = {
                        config.bootstrap_servers,
                        config.group_id,
                        config.offset_reset,
                        {config.topics[0], config.topics[1]},
                        &config.consumer};
                struct ews_in_kafka_cb cb;

                if (!(decoder = ews_decoder_new(&decode_conf, errstr,
                                                sizeof(errstr))) ||
                    !(store = ews_store_new(&store_conf, errstr,
                                            sizeof(errstr))) ||
                    !(out = ews_out_kafka_new(&out_conf, errstr,
                                              sizeof(errstr))) ||
                    !(pipeline = ews_pipeline_new(&config, decoder, store, out,
                                                  errstr, sizeof(errstr)))) {
                        ews_err("main", "%s", errstr);
                        goto out;
                }
                cb = ews_pipeline_callbacks(pipeline);
                if (!(in = ews_in_kafka_new(&in_conf, &cb, errstr,
                                            sizeof(errstr)))) {
                        ews_err("main", "%s", errstr);
                        goto out;
                }
                ews_pipeline_set_input(pipeline, in);
                if (main_partitions_check(in, store, &config))
                        goto out;
                if (config.http_port) {
                        struct ews_http_conf http_conf = {
                                config.http_bind,
                                config.http_port,
                                config.http_token,
                                store_conf,
                                config.score.half_life_ms,
                                config.account_active_window_ms};

                        http_conf.store.cache_users = 1;
                        if (!(ctx.http = ews_http_new(&http_conf, errstr,
                                                      sizeof(errstr)))) {
                                ews_err("main", "%s", errstr);
                                goto out;
                        }
                }
        }
        ctx.pipeline = pipeline;
        ctx.store = store;
        ctx.out = out;
        ctx.in = in;
        ctx.metrics = ews_metrics_new();
        if (!ctx.metrics || main_metrics_register(&ctx)) {
                ews_err("main", "out of memory");
                goto out;
        }
        msgs = calloc((size_t)config.batch_max, sizeof(*msgs));
        if (!msgs) {
                ews_err("main", "out of memory");
                goto out;
        }
        ews_info("main", "consuming %s, %s from %s as group %s",
                 config.topics[0], config.topics[1], config.bootstrap_servers,
                 config.group_id);

        while (!main_stop) {
                int cnt = ews_in_kafka_consume(in, msgs, config.batch_max,
                                               (int)config.batch_wait_ms);
                if (cnt > 0)
                        ews_pipeline_run(pipeline, msgs, cnt,
                                         main_clock_ms(CLOCK_REALTIME),
                                         main_clock_ms(CLOCK_MONOTONIC));
                ews_in_kafka_release(in);
                main_cron(&ctx, main_clock_ms(CLOCK_MONOTONIC));
                if (main_reload) {
                        main_reload = 0;
                        main_reload_config(&config, config_path);
                }
                if (exit_at_end && ews_in_kafka_at_end(in) &&
                    !ews_pipeline_recovering(pipeline) &&
                    ews_pipeline_fences_current(pipeline)) {
                        main_finish_input(pipeline, &config);
                        break;
                }
        }
        ews_info("main", "stopping");
        rc = 0;
out:
        alarm(MAIN_STOP_TIMEOUT_S);
        ews_http_destroy(ctx.http);
        /* Alerts first: their state is committed, so they must go out. */
        if (out && ews_out_kafka_flush(out, MAIN_FLUSH_TIMEOUT_MS))
                ews_warn("main", "alerts not all delivered before exit: they "
                                 "stay in the outbox");
        if (pipeline)
                ews_pipeline_finish(pipeline);
        ews_in_kafka_destroy(in);
        if (out)
                out_stats = ews_out_kafka_stats(out);
        if (pipeline)
                main_report(ews_pipeline_stats(pipeline), &out_stats);
        ews_pipeline_destroy(pipeline);
        ews_out_kafka_destroy(out, MAIN_FLUSH_TIMEOUT_MS);
        ews_store_destroy(store);
        ews_decoder_destroy(decoder);
        ews_metrics_destroy(ctx.metrics);
        free(msgs);
        return rc;
}
