/*
 * make signal: the campaign rule's false alarms and delay, both decisions.
 *
 * For each setting (signups a day, target), seeded campaigns whose true
 * activation rate equals the target and as many at half the target go
 * through CAMPAIGN_UNDERPERFORMING (sim.h) once with the daily Wilson
 * bound and once with the anytime bound, the same campaigns for both. It
 * prints, as a Markdown table, the share of at-target campaigns ever
 * flagged within the days watched (with its binomial standard error) and
 * the median days to flag a campaign at half the target, then one summary
 * line. The rule's figures (minimum sample, maturity, z, alpha, dwell,
 * cooldown) are the configuration's: the defaults, the environment, or -c.
 *
 * Exit codes: 0 done, 1 the anytime share at the target above alpha by
 * more than three standard errors in some setting, 2 usage or
 * configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/config.h"
#include "signal/sim.h"

static const struct {
        double arrivals, target;
} settings[] = {
        {5, 0.3}, {10, 0.3}, {25, 0.3}, {100, 0.3}, {25, 0.1},
};
#define SETTING_CNT ((int)(sizeof(settings) / sizeof(settings[0])))

static const char usage[] =
        "usage: signal [-c FILE] [--campaigns N] [--days D] [--seed S]\n"
        "  -c FILE        the rule's figures from this configuration\n"
        "  --campaigns N  campaigns per setting and rate (1000)\n"
        "  --days D       days watched from launch (30)\n"
        "  --seed S       the first setting's seed (1); setting i uses S+i\n"
        "Exit codes: 0 done, 1 the anytime mode above alpha, 2 usage.\n";

struct signal_opts {
        const char *config;
        int campaigns, days;
        unsigned long long seed;
};

static int signal_args(int argc, char **argv, struct signal_opts *o)
{
        static const struct option options[] = {
                {"campaigns", required_argument, NULL, 'n'},
                {"days", required_argument, NULL, 'd'},
                {"seed", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        char *end;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:h", options, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'n':
                        o->campaigns = (int)strtol(optarg, &end, 10);
                        if (*end || o->campaigns < 1 || o->campaigns > 1000000)
                                goto bad;
                        break;
                case 'd':
                        o->days = (int)strtol(optarg, &end, 10);
                        if (*end || o->days < 1 || o->days > SIM_DAYS_MAX)
                                goto bad;
                        break;
                case 's':
                        o->seed = strtoull(optarg, &end, 10);
                        if (*end)
                                goto bad;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        exit(0);
                default:
                        fprintf(stderr, "signal: %s '%s'\n%s",
                                opt == ':' ? "missing value for"
                                           : "unknown option",
                                argv[optind - 1], usage);
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "signal: unexpected argument '%s'\n%s",
                        argv[optind], usage);
                return -1;
        }
        return 0;
bad:
        fprintf(stderr, "signal: bad value '%s' for %s\n%s", optarg,
                argv[optind - 1], usage);
        return -1;
}

static void signal_days(char *buf, size_t size, const struct sim_result *r,
                        int days)
{
        double share = 100.0 * r->flagged / r->campaigns;

        if (r->median_days < 0)
                snprintf(buf, size, "over %d (%.0f%%)", days, share);
        else
                snprintf(buf, size, "%d (%.0f%%)", r->median_days, share);
}

int main(int argc, char **argv)
{
        static struct ews_config config;
        struct signal_opts o = {NULL, 1000, 30, 1};
        struct sim_result at[2][SETTING_CNT], half[2][SETTING_CNT];
        long flagged[2] = {0, 0}, campaigns = 0;
        int lo[2] = {-1, -1}, hi[2] = {-1, -1}, mode, i, rc = 0;
        char errstr[512], days[2][32];

        if (signal_args(argc, argv, &o))
                return 2;
        ews_config_defaults(&config);
        if (ews_config_load(&config, o.config, errstr, sizeof(errstr))) {
                fprintf(stderr, "signal: %s\n", errstr);
                return 2;
        }
        for (mode = 0; mode < 2; mode++) {
                config.rules.decision =
                        mode ? EWS_DECISION_ANYTIME : EWS_DECISION_WILSON;
                for (i = 0; i < SETTING_CNT; i++) {
                        struct sim_setting s = {
                                .arrivals = settings[i].arrivals,
                                .rate = settings[i].target,
                                .target = settings[i].target,
                                .days = o.days,
                                .campaigns = o.campaigns,
                                .seed = o.seed + (uint64_t)i,
                        };

                        sim_run(&config.rules, &s, &at[mode][i]);
                        s.rate = s.target / 2;
                        sim_run(&config.rules, &s, &half[mode][i]);
                        flagged[mode] += at[mode][i].flagged;
                        campaigns += mode ? 0 : o.campaigns;
                        if (half[mode][i].median_days < 0)
                                continue;
                        if (lo[mode] < 0 ||
                            half[mode][i].median_days < lo[mode])
                                lo[mode] = half[mode][i].median_days;
                        if (half[mode][i].median_days > hi[mode])
                                hi[mode] = half[mode][i].median_days;
                }
        }
        printf("%d campaigns a row at the target and as many at half of it; "
               "watched %d days; min sample %d, maturity %.1f d; wilson z "
               "%.3f each day, anytime alpha %g; ± one standard error\n\n",
               o.campaigns, o.days, config.rules.min_sample,
               (double)config.rules.maturity_ms / EWS_DAY_MS,
               config.rules.confidence_z, config.rules.alpha);
        printf("| signups/day | target | mature signups (mean) "
               "| at target, ever flagged: wilson | anytime "
               "| at half the target, median days to flag (share flagged): "
               "wilson | anytime |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|\n");
        for (i = 0; i < SETTING_CNT; i++) {
                double share = (double)at[1][i].flagged / o.campaigns;

                if (share > config.rules.alpha + 3 * sim_share_error(&at[1][i]))
                        rc = 1;
                signal_days(days[0], sizeof(days[0]), &half[0][i], o.days);
                signal_days(days[1], sizeof(days[1]), &half[1][i], o.days);
                printf("| %.0f | %.0f%% | %.0f | %.1f%% ±%.1f | %.1f%% ±%.1f "
                       "| %s | %s |\n",
                       settings[i].arrivals, 100 * settings[i].target,
                       at[0][i].signups, 100.0 * at[0][i].flagged / o.campaigns,
                       100 * sim_share_error(&at[0][i]), 100 * share,
                       100 * sim_share_error(&at[1][i]), days[0], days[1]);
        }
        printf("\nsignal: campaigns at their target ever flagged in %d days: "
               "wilson %.1f%%, anytime %.1f%% (alpha %g) of %ld; median days "
               "to flag at half the target: wilson %d-%d, anytime %d-%d\n",
               o.days, 100.0 * flagged[0] / campaigns,
               100.0 * flagged[1] / campaigns, config.rules.alpha, campaigns,
               lo[0], hi[0], lo[1], hi[1]);
        if (rc)
                fprintf(stderr, "signal: the anytime mode flagged more than "
                                "alpha allows\n");
        return rc;
}
