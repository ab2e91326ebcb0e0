/*
 * The arithmetic of the funnel and the segments, pure and without I/O:
 * the store writes what it computes, the API and ews-inspect report it.
 *
 * Durations (signup to activation, to sales-ready) are kept as a small
 * histogram per campaign: bucket 0 holds under a minute, bucket b >= 1
 * [2^((b-1)/2), 2^(b/2)) minutes, the last one everything longer (about
 * 1.4 years and up). A median read from it is the geometric middle of its
 * bucket: within a factor 2^(1/4) (19%) of the exact one.
 *
 * A segment is the users of one stage, ordered by engagement now. With
 * one half-life H for all, E(now) = E * 2^(-(now - t_ref) / H), so for
 * E > 0 the order of log2(E) + t_ref / H is that of E(now) at every now,
 * and a sorted set keyed by it stays exact without being rewritten as
 * time passes. Users with E <= 0 go to a set of their own keyed by
 * -(log2(-E) + t_ref / H) (E = 0: +inf), below every positive E.
 */
#ifndef EWS_UTIL_FUNNEL_H
#define EWS_UTIL_FUNNEL_H

#include "util/ews.h"

#define EWS_FUNNEL_BUCKETS 40

/* The bucket of a duration in ms (negative counts as 0). */
int ews_funnel_bucket(int64_t ms);

/* The ms a bucket stands for: the geometric middle of its bounds. */
int64_t ews_funnel_bucket_ms(int bucket);

/* The median of a histogram of EWS_FUNNEL_BUCKETS counts, in ms; -1 when
 * it is empty. */
int64_t ews_funnel_median_ms(const int64_t *hist);

/* The segment a user belongs to: 2 * stage for E > 0, 2 * stage + 1 for
 * E <= 0; -1 for a user without a trial (stage none). */
#define EWS_SEGMENT_COUNT (2 * EWS_STAGE_COUNT)
int ews_segment_of(const struct ews_user *user);

/* The score of (E, t_ref) in its segment's sorted set (see above). */
double ews_segment_score(double engagement, int64_t ref_ms,
                         double half_life_ms);

#endif
