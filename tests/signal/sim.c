/* Seeded campaigns through the campaign rule (sim.h). */
#include "signal/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIM_LAUNCH_DAY 20454 /* 2026-01-01 */
#define SIM_NOW_MS     1795000000000LL

static uint64_t sim_next(uint64_t *rng)
{
        uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static double sim_unit(uint64_t *rng)
{
        return (double)(sim_next(rng) >> 11) * 0x1.0p-53;
}

/* Knuth's product of uniforms: exact, and quick for a mean up to 1000 as
 * long as the product is kept in log space. */
static int sim_poisson(uint64_t *rng, double mean)
{
        double log_product = 0;
        int n = -1;

        do {
                log_product += log(sim_unit(rng) + 0x1.0p-60);
                n++;
        } while (log_product > -mean);
        return n;
}

/* One campaign: its cohort days, then the rule day by day. Returns the
 * days from launch to the end of the day of its first FIRING, or 0. */
static int sim_campaign(const struct ews_rules_conf *conf,
                        const struct sim_setting *s, uint64_t rng,
                        int64_t *signups)
{
        struct ews_cohort_day days[SIM_DAYS_MAX];
        struct ews_campaign_rule_state state;
        struct ews_campaign_rule_info info = {
                .campaign_id = "c-sim",
                .name = "",
                .has_target = true,
                .target = s->target,
        };
        struct ews_alert alerts[4];
        int d, i, n;

        memset(days, 0, sizeof(days));
        memset(&state, 0, sizeof(state));
        for (d = 0; d < s->days; d++) {
                days[d].day = SIM_LAUNCH_DAY + d;
                n = sim_poisson(&rng, s->arrivals);
                for (i = 0; i < n; i++) {
                        int64_t at = (int64_t)d * EWS_DAY_MS +
                                     (int64_t)(sim_unit(&rng) * EWS_DAY_MS) +
                                     conf->maturity_ms;
                        bool activated = sim_unit(&rng) < s->rate;
                        int64_t day = at / EWS_DAY_MS;

                        if (day >= s->days)
                                continue;
                        days[day].n++;
                        days[day].k += activated;
                        *signups += 1;
                }
        }
        for (d = 0; d < s->days; d++) {
                n = ews_rules_campaign_days(conf, &state, &info, &days[d], 1,
                                            SIM_NOW_MS, alerts, 4);
                for (i = 0; i < n; i++)
                        if (alerts[i].status == EWS_ALERT_FIRING)
                                return d + 1;
        }
        return 0;
}

static int sim_cmp(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;

        return (x > y) - (x < y);
}

int sim_run(const struct ews_rules_conf *conf, const struct sim_setting *s,
            struct sim_result *r)
{
        int64_t signups = 0;
        int *to_flag, c;

        memset(r, 0, sizeof(*r));
        if (s->campaigns <= 0 || s->days <= 0 || s->days > SIM_DAYS_MAX ||
            !(s->arrivals >= 0 && s->arrivals <= 1000))
                return -1;
        if (!(to_flag = calloc((size_t)s->campaigns, sizeof(*to_flag))))
                return -1;
        for (c = 0; c < s->campaigns; c++) {
                uint64_t rng = s->seed;
                uint64_t mixed = sim_next(&rng) ^ (uint64_t)c;

                to_flag[c] = sim_campaign(conf, s, sim_next(&mixed), &signups);
                if (to_flag[c])
                        r->flagged++;
                else
                        to_flag[c] = s->days + 1; /* not within the days */
        }
        qsort(to_flag, (size_t)s->campaigns, sizeof(*to_flag), sim_cmp);
        r->campaigns = s->campaigns;
        r->median_days = to_flag[(s->campaigns - 1) / 2];
        if (r->median_days > s->days)
                r->median_days = -1;
        r->signups = (double)signups / s->campaigns;
        free(to_flag);
        return 0;
}

double sim_share_error(const struct sim_result *r)
{
        double p;

        if (r->campaigns <= 0)
                return 0;
        p = (double)r->flagged / r->campaigns;
        return sqrt(p * (1 - p) / r->campaigns);
}
