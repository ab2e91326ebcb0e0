/*
 * FNV-1a over a NUL-terminated string: the one hash of ids for tables,
 * cache buckets and the users' dedup window (whose 32-bit values are
 * stored in Redis: changing it changes what a stored window matches).
 */
#ifndef EWS_HASH_H
#define EWS_HASH_H

#include <stdint.h>

static inline uint32_t ews_hash32(const char *s)
{
        uint32_t h = 2166136261u;

        while (*s)
                h = (h ^ (unsigned char)*s++) * 16777619u;
        return h;
}

static inline uint64_t ews_hash64(const char *s)
{
        uint64_t h = 1469598103934665603ULL;

        while (*s)
                h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
        return h;
}

#endif
