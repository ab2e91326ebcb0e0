#include "util/funnel.h"

#include <math.h>

#define FUNNEL_MINUTE_MS 60000.0

int ews_funnel_bucket(int64_t ms)
{
        double minutes = (double)ms / FUNNEL_MINUTE_MS;
        int b;

        if (minutes < 1.0)
                return 0;
        b = 1 + (int)floor(2.0 * log2(minutes));
        return b >= EWS_FUNNEL_BUCKETS ? EWS_FUNNEL_BUCKETS - 1 : b;
}

int64_t ews_funnel_bucket_ms(int bucket)
{
        if (bucket <= 0)
                return (int64_t)(FUNNEL_MINUTE_MS / 2);
        /* bounds 2^((b-1)/2) and 2^(b/2) minutes: the middle 2^((2b-1)/4) */
        return (int64_t)llround(FUNNEL_MINUTE_MS *
                                exp2((2.0 * bucket - 1.0) / 4.0));
}

int64_t ews_funnel_median_ms(const int64_t *hist)
{
        int64_t n = 0, seen = 0;
        int b;

        for (b = 0; b < EWS_FUNNEL_BUCKETS; b++)
                n += hist[b] > 0 ? hist[b] : 0;
        if (!n)
                return -1;
        /* the lower median: the ceil(n/2)-th duration */
        for (b = 0; b < EWS_FUNNEL_BUCKETS; b++) {
                seen += hist[b] > 0 ? hist[b] : 0;
                if (2 * seen >= n)
                        break;
        }
        return ews_funnel_bucket_ms(b);
}

int ews_segment_of(const struct ews_user *user)
{
        if (user->stage == EWS_STAGE_NONE ||
            (unsigned)user->stage >= EWS_STAGE_COUNT)
                return -1;
        return 2 * (int)user->stage + (user->engagement > 0 ? 0 : 1);
}

double ews_segment_score(double engagement, int64_t ref_ms, double half_life_ms)
{
        double t = (double)ref_ms / half_life_ms;

        if (engagement > 0)
                return log2(engagement) + t;
        if (engagement < 0)
                return -(log2(-engagement) + t);
        return INFINITY;
}
