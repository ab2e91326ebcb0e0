/*
 * Seeded campaigns through the campaign rule, to measure its signal: how
 * often a campaign whose true activation rate meets its target is ever
 * flagged, and how soon a poor one is.
 *
 * A campaign launches at the start of day 0; its signups arrive at a mean
 * rate a day (Poisson), each at a uniform time of its day, and each
 * activates with the true rate, independently. A signup counts in the
 * cohort of the day it matures (signup time + the rule's maturity), and the
 * rule sees the closed days one by one, as the leader decides them:
 * ews_rules_campaign_days() itself, with the rule's real minimum sample,
 * maturity, dwell and cooldown from the configuration passed in. A campaign
 * is flagged at its first FIRING alert; its days to flag count from launch
 * to the end of the day that fired.
 *
 * Every campaign draws from a splitmix64 stream of its own, from the seed
 * and its index: the same seed gives the same campaigns under either
 * decision.
 */
#ifndef EWS_TESTS_SIM_H
#define EWS_TESTS_SIM_H

#include <stdint.h>

#include "rules/rules.h"

#define SIM_DAYS_MAX 366

struct sim_setting {
        double arrivals; /* mean signups a day, at most 1000 */
        double rate;     /* the true activation rate */
        double target;   /* the campaign's LAUNCHED target */
        int days;        /* days watched from launch, at most SIM_DAYS_MAX */
        int campaigns;
        uint64_t seed;
};

struct sim_result {
        int campaigns;
        int flagged;     /* campaigns with a FIRING alert within days */
        int median_days; /* days to flag of the median campaign; -1 when
                          * half or more were not flagged within days */
        double signups;  /* mean mature signups seen per campaign */
};

/* Runs s->campaigns campaigns through the rule as conf decides it. Returns
 * 0, or -1 when the setting is out of range. */
int sim_run(const struct ews_rules_conf *conf, const struct sim_setting *s,
            struct sim_result *r);

/* The binomial standard error of the share flagged. */
double sim_share_error(const struct sim_result *r);

#endif
