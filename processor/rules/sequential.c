/* The campaign rule's anytime-valid decision (sequential.h), and the bound
 * the rule compares with its target in either mode. */
#include "rules/sequential.h"
#include "rules/rules.h"

#include <math.h>

/* A tail sum stops at the first term below this share of what it has. */
#define SEQ_EPS 1e-17
/* The bound is found to this width, from above; regula falsi steps before
 * bisection takes over. */
#define SEQ_TOL   1e-9
#define SEQ_STEPS 40

/* With t_i = P(X = i), X ~ Binomial(m, q), r = q / (1 - q): the sum of
 * t_i / t_j over i = j .. m. Called with j at or above the mode, where the
 * terms only fall. */
static double seq_sum_up(int64_t m, int64_t j, double r)
{
        double term = 1, sum = 1;
        int64_t i;

        for (i = j; i < m; i++) {
                term *= (double)(m - i) / (double)(i + 1) * r;
                sum += term;
                if (term < SEQ_EPS * sum)
                        break;
        }
        return sum;
}

/* The sum of t_i / t_j over i = 0 .. j - 1, with j below the mode. */
static double seq_sum_down(int64_t m, int64_t j, double r)
{
        double term = 1, sum = 0;
        int64_t i;

        for (i = j; i > 0; i--) {
                term *= (double)i / ((double)(m - i + 1) * r);
                sum += term;
                if (term < SEQ_EPS * sum)
                        break;
        }
        return sum;
}

/* log P(X = j), X ~ Binomial(m, q), 0 < q < 1. */
static double seq_log_pmf(int64_t m, int64_t j, double q)
{
        return lgamma((double)m + 1) - lgamma((double)j + 1) -
               lgamma((double)(m - j) + 1) + (double)j * log(q) +
               (double)(m - j) * log1p(-q);
}

double ews_seq_log_evidence(int64_t k, int64_t n, double target)
{
        int64_t m, j;
        double r, log_pmf, low;

        if (n <= 0)
                return 0;
        if (!(target > 0))
                return -INFINITY;
        k = k < 0 ? 0 : k > n ? n : k;
        if (target >= 1)
                return k < n ? INFINITY : -log((double)n + 1);
        /* M = P(X >= j) / (j P(X = j)), X ~ Binomial(n + 1, target) */
        m = n + 1;
        j = k + 1;
        r = target / (1 - target);
        if ((double)j >= (double)(m + 1) * target - 1)
                return log(seq_sum_up(m, j, r)) - log((double)j);
        log_pmf = seq_log_pmf(m, j, target);
        low = exp(log_pmf + log(seq_sum_down(m, j, r))); /* P(X < j) */
        return log1p(-low) - log((double)j) - log_pmf;
}

bool ews_seq_below(int64_t k, int64_t n, double target, double alpha)
{
        if (n <= 0 || !(alpha > 0 && alpha < 1))
                return false;
        return ews_seq_log_evidence(k, n, target) >= -log(alpha);
}

/* The root of g(q) = log M(q) - threshold, which rises with q, by regula
 * falsi with the Illinois step (the end kept twice running has its value
 * halved), bisecting while g(hi) is infinite or after SEQ_STEPS steps: g(lo)
 * stays below 0 and g(hi) at or above it, and hi is returned. */
static double seq_root(int64_t k, int64_t n, double threshold)
{
        double lo = (double)k / (double)n, hi = 1, x, gx, glo, ghi = INFINITY;
        int step = 0, last = 0; /* -1: lo moved last, 1: hi did */

        /* M(0+) = 1 / (k + 1); M(k / n) <= 1 < 1 / alpha: the integrand
         * rises up to k / n */
        glo = lo > 0 ? ews_seq_log_evidence(k, n, lo) - threshold
                     : -log((double)k + 1) - threshold;
        while (hi - lo > SEQ_TOL) {
                if (isfinite(ghi) && ++step <= SEQ_STEPS)
                        x = hi - ghi * (hi - lo) / (ghi - glo);
                else
                        x = lo + (hi - lo) / 2;
                if (!(x > lo + SEQ_TOL / 2))
                        x = lo + SEQ_TOL / 2;
                if (!(x < hi - SEQ_TOL / 2))
                        x = hi - SEQ_TOL / 2;
                gx = ews_seq_log_evidence(k, n, x) - threshold;
                if (gx >= 0) {
                        hi = x;
                        ghi = gx;
                        glo /= last > 0 ? 2 : 1;
                        last = 1;
                } else {
                        lo = x;
                        glo = gx;
                        ghi /= last < 0 ? 2 : 1;
                        last = -1;
                }
        }
        return hi;
}

double ews_seq_upper(int64_t k, int64_t n, double alpha)
{
        if (n <= 0 || !(alpha > 0 && alpha < 1))
                return 1;
        k = k < 0 ? 0 : k > n ? n : k;
        if (k == n)
                return 1;
        return seq_root(k, n, -log(alpha));
}

double ews_rules_campaign_upper(const struct ews_rules_conf *conf, int64_t k,
                                int64_t n)
{
        if (conf->decision == EWS_DECISION_ANYTIME)
                return ews_seq_upper(k, n, conf->alpha);
        return ews_rules_wilson(k, n, conf->confidence_z, 1);
}

double ews_rules_campaign_confidence(const struct ews_rules_conf *conf)
{
        if (conf->decision == EWS_DECISION_ANYTIME)
                return 1 - conf->alpha;
        return 0.5 * (1 + erf(conf->confidence_z / sqrt(2.0)));
}
