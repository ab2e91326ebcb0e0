/*
 * ews-gen's random numbers: every campaign and user draws from a
 * splitmix64 stream of its own, seeded from the run's seed, its kind and
 * its index, so that the same flags give the same stream (ews_gen.h).
 */
#include "ews_gen.h"

uint64_t gen_rng_next(uint64_t *rng)
{
        uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Kind and index go through the mixer, not onto the seed, so that streams
 * of neighbouring seeds or entities do not overlap. */
uint64_t gen_rng_seed(const struct gen_model *model, uint64_t kind,
                      uint64_t index)
{
        uint64_t rng = (uint64_t)model->seed;
        uint64_t mixed = gen_rng_next(&rng) ^ (kind << 56) ^ index;

        return gen_rng_next(&mixed);
}

double gen_rng_unit(uint64_t *rng)
{
        return (double)(gen_rng_next(rng) >> 11) * 0x1.0p-53;
}

int64_t gen_rng_range(uint64_t *rng, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(gen_rng_unit(rng) * (double)(hi - lo));
}

int gen_rng_pick(uint64_t *rng, const int *weights, int weight_cnt)
{
        int total = 0, i, r;

        for (i = 0; i < weight_cnt; i++)
                total += weights[i];
        r = (int)gen_rng_range(rng, 0, total);
        for (i = 0; i < weight_cnt - 1 && r >= weights[i]; i++)
                r -= weights[i];
        return i;
}
