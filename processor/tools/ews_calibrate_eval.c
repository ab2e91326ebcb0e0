/*
 * How well a score ranks an outcome, computed exactly.
 *
 * AUC is the Mann-Whitney statistic: the probability that a positive
 * scores above a negative, a tie counting one half. With the scores
 * ranked from 1 (lowest) and tied scores given their mean rank, AUC =
 * (R+ - P(P+1)/2) / (P N), R+ the positives' rank sum, P and N the counts.
 *
 * Precision at the top share: the positives among the ceil(share * n)
 * highest scores, over that count. A group of equal scores that straddles
 * the boundary contributes the share of it that fits times its positives
 * (what any order among equals gives on average), so the result does not
 * depend on how ties happen to be sorted.
 */
#include "tools/ews_calibrate.h"

#include <math.h>
#include <stdlib.h>

struct cal_scored {
        double score;
        bool positive;
};

static int cal_scored_cmp(const void *a, const void *b)
{
        const struct cal_scored *x = a, *y = b;

        return x->score < y->score ? -1 : x->score > y->score;
}

/* The pairs sorted by score, lowest first; NULL when out of memory. */
static struct cal_scored *cal_sorted(const double *score, const bool *positive,
                                     size_t n)
{
        struct cal_scored *v = malloc((n ? n : 1) * sizeof(*v));
        size_t i;

        if (!v)
                return NULL;
        for (i = 0; i < n; i++) {
                v[i].score = score[i];
                v[i].positive = positive[i];
        }
        qsort(v, n, sizeof(*v), cal_scored_cmp);
        return v;
}

int cal_auc(const double *score, const bool *positive, size_t n, double *auc)
{
        struct cal_scored *v;
        double pos = 0, rank_sum = 0, group_pos;
        size_t i, j, k;

        for (i = 0; i < n; i++)
                pos += positive[i];
        *auc = NAN;
        if (pos == 0 || pos == (double)n)
                return 0;
        if (!(v = cal_sorted(score, positive, n)))
                return -1;
        for (i = 0; i < n; i = j) {
                group_pos = 0;
                for (j = i; j < n && v[j].score == v[i].score; j++)
                        ;
                for (k = i; k < j; k++)
                        group_pos += v[k].positive;
                /* ranks i+1 .. j, their mean for each */
                rank_sum += group_pos * ((double)(i + 1) + (double)j) / 2.0;
        }
        free(v);
        *auc = (rank_sum - pos * (pos + 1) / 2.0) / (pos * ((double)n - pos));
        return 0;
}

int cal_precision_top(const double *score, const bool *positive, size_t n,
                      double share, double *precision, size_t *top)
{
        struct cal_scored *v;
        double hits = 0, group_pos;
        size_t want, taken = 0, i, j, k;

        *precision = NAN;
        *top = 0;
        if (n == 0)
                return 0;
        /* the 1e-9 keeps 0.1 * 30 from rounding up to 4 */
        want = (size_t)ceil(share * (double)n - 1e-9);
        if (want < 1)
                want = 1;
        if (want > n)
                want = n;
        if (!(v = cal_sorted(score, positive, n)))
                return -1;
        for (i = n; taken < want; i = j) {
                group_pos = 0;
                for (j = i; j > 0 && v[j - 1].score == v[i - 1].score; j--)
                        ;
                for (k = j; k < i; k++)
                        group_pos += v[k].positive;
                if (taken + (i - j) <= want) {
                        hits += group_pos;
                        taken += i - j;
                } else {
                        hits += group_pos * (double)(want - taken) /
                                (double)(i - j);
                        taken = want;
                }
        }
        free(v);
        *precision = hits / (double)want;
        *top = want;
        return 0;
}
