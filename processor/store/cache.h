/*
 * A bounded cache of the packed values of users in the partitions this
 * instance owns, so that a batch reads from Redis only what it misses.
 * Only the owner of a partition writes its users, so an entry stays true
 * until the partition is revoked, the connection is lost or a commit's
 * outcome is unknown: then the partition's entries (or all) are dropped.
 * Account and campaign keys are never cached: other instances change them.
 */
#ifndef EWS_OUT_STORE_CACHE_H
#define EWS_OUT_STORE_CACHE_H

#include "util/ews.h"

struct ews_user_cache;

/* Holds at most max_users entries; NULL when out of memory. */
struct ews_user_cache *ews_user_cache_new(size_t max_users);
void ews_user_cache_destroy(struct ews_user_cache *cache);

/* The packed value of user_id, or NULL; valid until the next put or drop. */
const unsigned char *ews_user_cache_get(struct ews_user_cache *cache,
                                        const char *user_id, size_t *len);

/* Stores a copy of the packed value, evicting another entry when full. */
void ews_user_cache_put(struct ews_user_cache *cache, const char *user_id,
                        int32_t partition, const unsigned char *value,
                        size_t len);

/* partition -1 drops every entry. */
void ews_user_cache_drop(struct ews_user_cache *cache, int32_t partition);

struct ews_user_cache_stats {
        int64_t hits, misses, evictions;
        size_t entries;
};
struct ews_user_cache_stats
ews_user_cache_stats(const struct ews_user_cache *cache);

#endif
