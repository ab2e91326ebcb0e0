/*
 * The campaign rule's anytime-valid decision: is a campaign's activation
 * rate below its target, asked again every day on a growing cohort?
 *
 * A bound with a fixed error rate (Wilson's) is right once; checked every
 * day it is a new chance of a false alarm each day, and the chance that a
 * campaign whose true rate meets its target is ever flagged grows with
 * every day it is watched. The test here keeps that chance below alpha
 * however often and however long it is checked (Ville's inequality for a
 * test martingale, Ville 1939; the mixture method of Robbins 1970; see
 * Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
 * nonasymptotic confidence sequences", Annals of Statistics 2021, and
 * Ramdas, Grunwald, Vovk and Shafer, "Game-theoretic statistics and safe
 * anytime-valid inference", Statistical Science 2023).
 *
 * The evidence against "the rate is at least q" after k activated of n
 * mature trials is the likelihood ratio of "some rate below q, uniformly
 * distributed on [0, q]" to "the rate is q":
 *
 *   M_n(q) = (1/q) integral_0^q  pi^k (1 - pi)^(n-k) / (q^k (1 - q)^(n-k)) dpi
 *          = integral_0^1  s^k ((1 - q s) / (1 - q))^(n-k) ds.
 *
 * Each rate pi < q gives a factor per trial whose mean is 1 when the true
 * rate is q and below 1 when it is above q, so M_n(q) is a nonnegative
 * supermartingale from M_0 = 1 whenever the true rate is q or more, and
 * Ville's inequality gives P(M_n(q) >= 1/alpha for some n) <= alpha: the
 * campaign is flagged when M_n(target) reaches 1/alpha, as often as one
 * looks. In closed form (the incomplete beta function at integer arguments
 * is a binomial tail), with X ~ Binomial(n + 1, q):
 *
 *   M_n(q) = P(X >= k + 1) / ((k + 1) P(X = k + 1)),
 *
 * summed in log space from the term at k + 1 away from the binomial's mode
 * (or its complement below), so no term overflows or cancels.
 *
 * The second form shows M_n(q) rises with q, so the smallest q with
 * M_n(q) >= 1/alpha is an upper confidence bound valid at every n at once
 * (an upper confidence sequence), and "that bound below the target" is the
 * same decision as "M_n(target) >= 1/alpha". That bound is what the rule
 * compares, reports and resolves on, like Wilson's.
 *
 * It assumes what Wilson's bound assumes (trials activate independently
 * at one rate) and nothing about how many trials arrive or when they are
 * looked at. The price is width: the bound is wider than Wilson's at a
 * fixed n, so a poor campaign is flagged a little later (make signal).
 *
 * Pure functions, no state: the cumulative counts are the whole state.
 */
#ifndef EWS_RULES_SEQUENTIAL_H
#define EWS_RULES_SEQUENTIAL_H

#include <stdbool.h>
#include <stdint.h>

/* log M_n(target) for k activated of n mature trials: 0 at n = 0, -inf
 * for a target of 0 or less (nothing is below it), +inf for a target of 1
 * or more once a trial did not activate. k is clamped to [0, n]. */
double ews_seq_log_evidence(int64_t k, int64_t n, double target);

/* Whether the evidence that the rate is below target reached 1 / alpha. */
bool ews_seq_below(int64_t k, int64_t n, double target, double alpha);

/* The anytime upper confidence bound of the rate: the smallest q in [0, 1]
 * with M_n(q) >= 1 / alpha, found to 1e-9 from above (it never reports a
 * q the evidence does not reject); 1 when there is none (n = 0, or
 * every trial activated: then M_n(q) = 1 / (n + 1) for every q). */
double ews_seq_upper(int64_t k, int64_t n, double alpha);

#endif
