/*
 * ews-calibrate: are the configured points right? Reads history (the
 * usage topic of the configuration, or a file of JSON events), fits an
 * L2-regularised logistic regression per outcome (activation, conversion)
 * on the users' features at a cut-off after their trial start, compares it
 * with the configured points on the later signups and proposes points for
 * scoring.weights. It only reads: the configuration file, the topic (no
 * group joined, nothing committed) or the file.
 *
 * Exit codes: 0 the report was printed and at least one outcome fitted, 1
 * reading failed or no outcome could be fitted, 2 bad usage or a
 * configuration that does not load.
 */
#include "tools/ews_calibrate.h"
#include "util/timearg.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char calibrate_help[] =
        "usage: ews-calibrate [-c FILE] [-b ADDR] [--from TIME] [--to TIME]\n"
        "  [--file FILE] [--cutoff-days K] [--conversion-days N]\n"
        "  [--test-share S] [--cost C] [--outcome NAME] [--json] "
        "[-X key=value]...\n\n"
        "Fits points per event type to outcomes (activation, conversion) on\n"
        "the earlier signups, compares them with the configured points on\n"
        "the later ones and proposes scoring.weights. Only reads: the\n"
        "configuration, the usage topic (no group joined, nothing\n"
        "committed) or the file.\n\n"
        "Options:\n"
        "  -c, --config FILE     the processor's configuration: points,\n"
        "                        half-life, activation, topic, decoding\n"
        "  -b, --bootstrap ADDR  Kafka bootstrap servers (default the\n"
        "                        configuration's kafka.bootstrap.servers)\n"
        "  --from TIME           only events at or after TIME (event time;\n"
        "                        2026-01-05, 2026-01-05T09:30:00Z or ms)\n"
        "  --to TIME             only events before TIME; outcomes whose\n"
        "                        window ends later are unknown\n"
        "  --file FILE           read JSON events, one a line (the json\n"
        "                        format), instead of the usage topic\n"
        "  --cutoff-days K       features as of K days after the trial\n"
        "                        start (default 1; before the windows)\n"
        "  --conversion-days N   conversion window after the trial start\n"
        "                        (default 14)\n"
        "  --test-share S        the later signups' share kept for the test\n"
        "                        (default 0.3)\n"
        "  --cost C              liblinear's C: smaller regularises more\n"
        "                        (default 1)\n"
        "  --outcome NAME        only activation or conversion (default both)\n"
        "  --json                one JSON object, not for people\n"
        "  -X key=value          librdkafka consumer property\n"
        "  -h, --help            print this help and exit 0\n\n"
        "Exit codes: 0 the report was printed and at least one outcome was\n"
        "fitted, 1 reading failed or no outcome could be fitted, 2 bad usage\n"
        "or a configuration that does not load.\n";

/* What was wrong, then where to read more; bad usage exits 2. */
static int calibrate_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-calibrate: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-calibrate: %s\n", what);
        fputs("Try 'ews-calibrate --help'.\n", stderr);
        return 2;
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static int calibrate_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        return calibrate_usage(opt == ':' ? "missing value for option"
                                          : "unknown option",
                               arg);
}

/* A number in (lo, hi); false otherwise. */
static bool calibrate_num(const char *s, double lo, double hi, double *v)
{
        char *end;

        errno = 0;
        *v = strtod(s, &end);
        return !errno && end != s && !*end && isfinite(*v) && *v > lo &&
               *v < hi;
}

struct calibrate_args {
        const char *config_path, *bootstrap, *file, *outcome;
        int64_t from_ms, to_ms;
        double cutoff_days, conversion_days;
        struct cal_fit_opts fit;
        bool json;
        int prop_cnt; /* -X, applied over the configuration once loaded */
        const char *props[EWS_CONFIG_PROPS_MAX];
};

/* Parses argv into a; -1 when done (help printed), 2 on bad usage, 0. */
static int calibrate_parse(int argc, char **argv, struct calibrate_args *a)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"bootstrap", required_argument, NULL, 'b'},
                {"from", required_argument, NULL, 'F'},
                {"to", required_argument, NULL, 'T'},
                {"file", required_argument, NULL, 'f'},
                {"cutoff-days", required_argument, NULL, 'k'},
                {"conversion-days", required_argument, NULL, 'v'},
                {"test-share", required_argument, NULL, 's'},
                {"cost", required_argument, NULL, 'C'},
                {"outcome", required_argument, NULL, 'o'},
                {"json", no_argument, NULL, 'J'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:b:X:h", options, NULL)) !=
               -1) {
                switch (opt) {
                case 'c':
                        a->config_path = optarg;
                        break;
                case 'b':
                        a->bootstrap = optarg;
                        break;
                case 'F':
                case 'T':
                        if (!ews_timearg_parse(optarg, opt == 'F' ? &a->from_ms
                                                                  : &a->to_ms))
                                return calibrate_usage(
                                        "a time is 2026-01-05, "
                                        "2026-01-05T09:30:00Z or ms, not",
                                        optarg);
                        break;
                case 'f':
                        a->file = optarg;
                        break;
                case 'k':
                        if (!calibrate_num(optarg, 0, 3650, &a->cutoff_days))
                                return calibrate_usage("--cutoff-days wants "
                                                       "days above 0, not",
                                                       optarg);
                        break;
                case 'v':
                        if (!calibrate_num(optarg, 0, 3650,
                                           &a->conversion_days))
                                return calibrate_usage("--conversion-days "
                                                       "wants days above 0, "
                                                       "not",
                                                       optarg);
                        break;
                case 's':
                        if (!calibrate_num(optarg, 0, 1, &a->fit.test_share))
                                return calibrate_usage("--test-share wants a "
                                                       "share between 0 and "
                                                       "1, not",
                                                       optarg);
                        break;
                case 'C':
                        if (!calibrate_num(optarg, 0, 1e9, &a->fit.cost))
                                return calibrate_usage("--cost wants a number "
                                                       "above 0, not",
                                                       optarg);
                        break;
                case 'o':
                        if (strcmp(optarg, "activation") &&
                            strcmp(optarg, "conversion"))
                                return calibrate_usage("--outcome wants "
                                                       "activation or "
                                                       "conversion, not",
                                                       optarg);
                        a->outcome = optarg;
                        break;
                case 'J':
                        a->json = true;
                        break;
                case 'X':
                        if (!strchr(optarg, '='))
                                return calibrate_usage("-X wants key=value, "
                                                       "not",
                                                       optarg);
                        if (a->prop_cnt == EWS_CONFIG_PROPS_MAX)
                                return calibrate_usage("too many -X, at",
                                                       optarg);
                        a->props[a->prop_cnt++] = optarg;
                        break;
                case 'h':
                        fputs(calibrate_help, stdout);
                        return -1;
                default:
                        return calibrate_bad_option(opt, argv);
                }
        }
        if (optind < argc)
                return calibrate_usage("unexpected argument", argv[optind]);
        if (a->from_ms && a->to_ms && a->from_ms >= a->to_ms)
                return calibrate_usage("--from must come before --to", NULL);
        return 0;
}

/* The outcomes wanted whose window ends after the cut-off; 2 (usage) when
 * one named does not. */
static int calibrate_outcomes(const struct calibrate_args *a,
                              const struct ews_config *config,
                              const struct cal_opts *opts, bool *wanted)
{
        char msg[256];
        int o;

        for (o = 0; o < CAL_OUTCOMES; o++) {
                wanted[o] = !a->outcome ||
                            !strcmp(a->outcome, cal_outcome_names[o]);
                if (wanted[o] &&
                    cal_outcome_window(config, opts, o) <= opts->cutoff_ms) {
                        snprintf(msg, sizeof(msg),
                                 "the cut-off (%g days) is not before the "
                                 "end of the %s window (%g days): the outcome "
                                 "would be known at it; --cutoff-days",
                                 a->cutoff_days, cal_outcome_names[o],
                                 (double)cal_outcome_window(config, opts, o) /
                                         CAL_DAY_MS);
                        return calibrate_usage(msg, NULL);
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        static struct ews_config config;
        static struct cal_history history;
        static struct cal_dataset ds;
        static struct cal_report report;
        struct calibrate_args a = {
                .cutoff_days = 1,
                .conversion_days = 14,
                .fit = {.test_share = 0.3, .cost = 1, .top_share = 0.1}};
        struct cal_read rd = {.config = &config};
        struct cal_opts opts;
        char errstr[1024];
        int o, rc, fitted = 0;

        rc = calibrate_parse(argc, argv, &a);
        if (rc)
                return rc < 0 ? 0 : rc;
        ews_config_defaults(&config);
        rc = ews_config_load(&config, a.config_path, errstr, sizeof(errstr));
        for (o = 0; !rc && o < a.prop_cnt; o++)
                rc = ews_config_set_kafka_prop(&config, a.props[o], errstr,
                                               sizeof(errstr));
        if (rc) {
                fprintf(stderr, "ews-calibrate: %s\n", errstr);
                return 2;
        }
        opts.cutoff_ms = (int64_t)llround(a.cutoff_days * CAL_DAY_MS);
        opts.conversion_ms = (int64_t)llround(a.conversion_days * CAL_DAY_MS);
        if ((rc = calibrate_outcomes(&a, &config, &opts, report.wanted)))
                return rc;

        rc = 1;
        history.from_ms = a.from_ms;
        history.to_ms = a.to_ms;
        rd.bootstrap = a.bootstrap;
        if (a.file ? cal_read_file(&rd, a.file, &history, errstr,
                                   sizeof(errstr))
                   : cal_read_topic(&rd, &history, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-calibrate: %s\n", errstr);
                goto out;
        }
        if (cal_history_sort(&history)) {
                snprintf(errstr, sizeof(errstr), "out of memory");
                goto fail;
        }
        /* --to bounds what is known; without it, the last event read */
        opts.end_ms = a.to_ms ? a.to_ms - 1 : history.last_ms;
        if (cal_dataset_build(&history, &config, &opts, &ds, errstr,
                              sizeof(errstr)))
                goto fail;
        for (o = 0; o < CAL_OUTCOMES; o++) {
                if (!report.wanted[o])
                        continue;
                if (cal_fit_outcome(&history, &ds, &config, o, &a.fit,
                                    &report.fits[o], errstr, sizeof(errstr)))
                        goto fail;
                fitted += report.fits[o].fitted;
        }
        report.config = &config;
        report.history = &history;
        report.ds = &ds;
        report.opts = &opts;
        report.fit_opts = &a.fit;
        report.source = a.file ? a.file : config.topics[EWS_SOURCE_USAGE];
        report.undecodable = rd.undecodable;
        if (a.json ? cal_report_json(&report, stdout)
                   : cal_report_text(&report, stdout)) {
                snprintf(errstr, sizeof(errstr), "write: %s", strerror(errno));
                goto fail;
        }
        if (!fitted)
                fprintf(stderr, "ews-calibrate: no outcome could be fitted\n");
        rc = fitted ? 0 : 1;
        goto out;
fail:
        fprintf(stderr, "ews-calibrate: %s\n", errstr);
out:
        for (o = 0; o < CAL_OUTCOMES; o++)
                cal_fit_free(&report.fits[o]);
        cal_dataset_free(&ds);
        cal_history_free(&history);
        return rc;
}
