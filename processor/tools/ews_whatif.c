/*
 * ews-whatif: the alerts another configuration would have raised over the
 * same history, against the live configuration's (ews_whatif.h).
 *
 * Exit codes: 0 the report was printed (whether the configurations differ
 * or not), 1 a replay failed or was stopped, or reading the history or the
 * alerts failed (the replays' keys and files are deleted all the same), 2
 * bad usage, or a configuration that does not load or does not read the
 * same history as the live one.
 */
#include "tools/ews_whatif.h"
#include "decode/decode.h"
#include "ops/setup.h"
#include "util/timearg.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t wi_stop;

static const char whatif_help[] =
        "usage: ews-whatif [-c FILE] -w FILE [--from TIME] [--to TIME]\n"
        "  [--json] [--list N] [--processor PATH] [-X key=value]...\n\n"
        "Replays the input topics, up to their ends as of the start, in event\n"
        "time through the live configuration (A) and through another (B), and\n"
        "prints how B's alerts differ from A's: per rule, status and\n"
        "campaign, the alerts raised under one alone; per subject, whose\n"
        "first FIRING moved; when each campaign was first flagged. Each\n"
        "replay is an ews-processor with a Redis key prefix and a consumer\n"
        "group of its own, writing its alerts to a file of its own: the live\n"
        "state and the live alert topic are not touched, and the replays'\n"
        "keys are deleted afterwards (also on SIGINT or SIGTERM).\n\n"
        "Options:\n"
        "  -c, --config FILE     the live configuration (A), as the\n"
        "                        processor's -c; its topics, brokers, Redis\n"
        "  -w, --what-if FILE    the configuration to try (B); it must read\n"
        "                        the same topics from the same brokers\n"
        "  --from TIME           only alerts with an event time at or after\n"
        "                        TIME (2026-01-05, 2026-01-05T09:30:00Z or\n"
        "                        ms); the history before it is still replayed\n"
        "  --to TIME             only alerts with an event time before TIME\n"
        "  --json                one JSON object, not for people\n"
        "  --list N              ids and subjects shown per line of the text\n"
        "                        report (default 5; 0: all)\n"
        "  --processor PATH      the ews-processor to run (default: the one\n"
        "                        beside ews-whatif, else from PATH)\n"
        "  -X key=value          librdkafka property, for the replays and\n"
        "                        for reading the topics' ends\n"
        "  -h, --help            print this help and exit 0\n\n"
        "The environment applies to both configurations, as to the\n"
        "processor (EWS_REDIS_HOST for redis.host, ...).\n\n"
        "Exit codes: 0 the report was printed (differences or not), 1 a\n"
        "replay failed or was stopped, or reading failed (the replays' keys\n"
        "are deleted all the same), 2 bad usage, or a configuration that\n"
        "does not load or does not read the live one's history.\n";

static void whatif_on_signal(int sig)
{
        (void)sig;
        wi_stop = 1;
}

/* What was wrong, then where to read more; bad usage exits 2. */
static int whatif_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-whatif: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-whatif: %s\n", what);
        fputs("Try 'ews-whatif --help'.\n", stderr);
        return 2;
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static int whatif_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        return whatif_usage(opt == ':' ? "missing value for option"
                                       : "unknown option",
                            arg);
}

struct whatif_args {
        const char *paths[WI_SIDES];
        const char *processor;
        int64_t from_ms, to_ms;
        bool json;
        int list;
        int prop_cnt;
        const char *props[EWS_CONFIG_PROPS_MAX];
};

/* Parses argv into a; -1 when done (help printed), 2 on bad usage, 0. */
static int whatif_parse(int argc, char **argv, struct whatif_args *a)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"what-if", required_argument, NULL, 'w'},
                {"from", required_argument, NULL, 'F'},
                {"to", required_argument, NULL, 'T'},
                {"json", no_argument, NULL, 'J'},
                {"list", required_argument, NULL, 'L'},
                {"processor", required_argument, NULL, 'P'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        char *end;
        long v;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:w:X:h", options, NULL)) !=
               -1) {
                switch (opt) {
                case 'c':
                case 'w':
                        a->paths[opt == 'w'] = optarg;
                        break;
                case 'F':
                case 'T':
                        if (!ews_timearg_parse(optarg, opt == 'F' ? &a->from_ms
                                                                  : &a->to_ms))
                                return whatif_usage(
                                        "a time is 2026-01-05, "
                                        "2026-01-05T09:30:00Z or ms, not",
                                        optarg);
                        break;
                case 'J':
                        a->json = true;
                        break;
                case 'L':
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || v < 0 ||
                            v > INT_MAX)
                                return whatif_usage("--list wants a number "
                                                    ">= 0, not",
                                                    optarg);
                        a->list = (int)v;
                        break;
                case 'P':
                        a->processor = optarg;
                        break;
                case 'X':
                        if (!strchr(optarg, '='))
                                return whatif_usage("-X wants key=value, not",
                                                    optarg);
                        if (a->prop_cnt == EWS_CONFIG_PROPS_MAX)
                                return whatif_usage("too many -X, at", optarg);
                        a->props[a->prop_cnt++] = optarg;
                        break;
                case 'h':
                        fputs(whatif_help, stdout);
                        return -1;
                default:
                        return whatif_bad_option(opt, argv);
                }
        }
        if (optind < argc)
                return whatif_usage("unexpected argument", argv[optind]);
        if (!a->paths[1])
                return whatif_usage("-w FILE (the configuration to try) is "
                                    "required",
                                    NULL);
        if (a->from_ms && a->to_ms && a->from_ms >= a->to_ms)
                return whatif_usage("--from must come before --to", NULL);
        return 0;
}

/* Loads one side's configuration as the processor would (file,
 * environment, -X, the start's checks). 0, or 2 with the reason said. */
static int whatif_config(const struct whatif_args *a, int side,
                         struct ews_config *c)
{
        char errstr[1024];
        int i, rc;

        ews_config_defaults(c);
        rc = ews_config_load(c, a->paths[side], errstr, sizeof(errstr));
        for (i = 0; !rc && i < a->prop_cnt; i++)
                rc = ews_config_set_kafka_prop(c, a->props[i], errstr,
                                               sizeof(errstr));
        if (!rc)
                rc = ews_setup_check(c, a->paths[side], errstr, sizeof(errstr));
        if (!rc)
                return 0;
        fprintf(stderr, "ews-whatif: %s\n", errstr);
        return 2;
}

/* B must replay the history A does, and the replays' prefixes must fit. */
static int whatif_same_history(const struct ews_config *a,
                               const struct ews_config *b)
{
        static const char *const keys[] = {"kafka.bootstrap.servers",
                                           "topics.usage", "topics.campaign"};
        const char *va[] = {a->bootstrap_servers, a->topics[0], a->topics[1]};
        const char *vb[] = {b->bootstrap_servers, b->topics[0], b->topics[1]};
        char msg[1024];
        size_t i;

        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                if (!strcmp(va[i], vb[i]))
                        continue;
                snprintf(msg, sizeof(msg),
                         "the configuration to try has %s '%.300s', the live "
                         "one '%.300s': both must replay the same history",
                         keys[i], vb[i], va[i]);
                return whatif_usage(msg, NULL);
        }
        /* <prefix>whatif:<pid>:a: in redis.prefix's room */
        if (strlen(a->redis_prefix) + 7 + 10 + 3 >= sizeof(a->redis_prefix))
                return whatif_usage("redis.prefix is too long to hold the "
                                    "replays' prefixes (<prefix>whatif:PID:a:)",
                                    NULL);
        return 0;
}

/* The ews-processor beside this program, else the one on PATH. */
static const char *whatif_processor(char *buf, size_t size)
{
        ssize_t n = readlink("/proc/self/exe", buf, size - 1);
        char *slash;

        if (n > 0) {
                buf[n] = '\0';
                slash = strrchr(buf, '/');
                if (slash && (size_t)(slash - buf) + 15 < size) {
                        strcpy(slash + 1, "ews-processor");
                        if (!access(buf, X_OK))
                                return buf;
                }
        }
        return "ews-processor";
}

/* Both replays must have applied each partition to the same offset. */
static int whatif_same_applied(const struct wi_replay *r,
                               const struct wi_history *h,
                               const struct ews_config *c, char *errstr,
                               size_t errstr_size)
{
        int s, p;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (p = 0; p < h->partition_cnt[s]; p++)
                        if (r[0].applied[s][p] != r[1].applied[s][p]) {
                                snprintf(errstr, errstr_size,
                                         "the replays read different "
                                         "history: %s [%d] up to offset "
                                         "%lld under A, %lld under B",
                                         c->topics[s], p,
                                         (long long)r[0].applied[s][p],
                                         (long long)r[1].applied[s][p]);
                                return -1;
                        }
        return 0;
}

static void whatif_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = whatif_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
}

/* The replays, one after the other (one copy of the state in Redis at a
 * time), then the comparison and the report. 0 or 1. */
static int whatif_run(const struct whatif_args *a, struct wi_replay *r,
                      const struct ews_config *live)
{
        static struct wi_history h;
        struct wi_alerts alerts[WI_SIDES] = {{0}, {0}};
        struct wi_run_opts opts = {a->processor, a->prop_cnt, a->props};
        struct ews_decoder *decoder = NULL;
        struct wi_diff diff = {0};
        char errstr[1024];
        int s, rc = 1;

        if (!(decoder = ews_setup_decoder(live, errstr, sizeof(errstr))) ||
            wi_history_read(&h, live, errstr, sizeof(errstr)))
                goto fail;
        for (s = 0; s < WI_SIDES; s++)
                if (wi_replay_prepare(&r[s], live, errstr, sizeof(errstr)))
                        goto fail;
        for (s = 0; s < WI_SIDES; s++) {
                if (wi_stop) {
                        snprintf(errstr, sizeof(errstr), "stopped");
                        goto fail;
                }
                fprintf(stderr,
                        "ews-whatif: replay %c of %lld + %lld events "
                        "through %s\n",
                        'A' + s, (long long)h.events[0], (long long)h.events[1],
                        r[s].config_path ? r[s].config_path : "(defaults)");
                if (wi_replay_run(&r[s], &h, &opts, errstr, sizeof(errstr)))
                        goto fail;
                if (wi_alerts_read(&alerts[s], r[s].file, decoder, a->from_ms,
                                   a->to_ms, errstr, sizeof(errstr)))
                        goto fail;
                fprintf(stderr,
                        "ews-whatif: replay %c done in %.1f s: %zu alerts, "
                        "%lld keys deleted\n",
                        'A' + s, r[s].seconds, alerts[s].cnt,
                        (long long)r[s].keys_deleted);
        }
        if (whatif_same_applied(r, &h, live, errstr, sizeof(errstr)))
                goto fail;
        if (wi_diff_make(&diff, &alerts[0], &alerts[1])) {
                snprintf(errstr, sizeof(errstr), "out of memory");
                goto fail;
        }
        {
                struct wi_report report = {
                        {&r[0], &r[1]}, &h,
                        live,           {&alerts[0], &alerts[1]},
                        &diff,          a->from_ms,
                        a->to_ms,       a->list};

                if ((a->json ? wi_report_json(&report, stdout)
                             : wi_report_text(&report, stdout))) {
                        snprintf(errstr, sizeof(errstr), "write: %s",
                                 strerror(errno));
                        goto fail;
                }
        }
        rc = 0;
        goto out;
fail:
        fprintf(stderr, "ews-whatif: %s\n", errstr);
out:
        wi_diff_free(&diff);
        for (s = 0; s < WI_SIDES; s++)
                wi_alerts_free(&alerts[s]);
        wi_history_free(&h);
        ews_decoder_destroy(decoder);
        return rc;
}

int main(int argc, char **argv)
{
        static struct ews_config configs[WI_SIDES];
        static struct wi_replay replays[WI_SIDES];
        struct whatif_args a = {.list = 5};
        char processor[4096];
        int s, rc;

        rc = whatif_parse(argc, argv, &a);
        if (rc)
                return rc < 0 ? 0 : rc;
        for (s = 0; s < WI_SIDES; s++)
                if ((rc = whatif_config(&a, s, &configs[s])))
                        return rc;
        if ((rc = whatif_same_history(&configs[0], &configs[1])))
                return rc;
        if (!a.processor)
                a.processor = whatif_processor(processor, sizeof(processor));
        ews_log_setup(EWS_LOG_WARN, false);
        whatif_signals();
        for (s = 0; s < WI_SIDES; s++) {
                replays[s].name = (char)('a' + s);
                replays[s].config_path = a.paths[s];
                replays[s].config = &configs[s];
        }
        rc = whatif_run(&a, replays, &configs[0]);
        for (s = 0; s < WI_SIDES; s++) {
                if (replays[s].file[0])
                        unlink(replays[s].file);
                if (replays[s].log[0])
                        unlink(replays[s].log);
        }
        return rc;
}
