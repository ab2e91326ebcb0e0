#include "store/cache.h"
#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

struct cache_entry {
        char *user_id; /* NULL: free */
        uint64_t hash; /* of user_id: compared first */
        int32_t partition;
        bool referenced; /* second chance for the clock */
        unsigned char *value;
        size_t len, cap;
        int32_t next; /* chain in the bucket, -1 ends */
};

struct ews_user_cache {
        struct cache_entry *entries;
        size_t max;
        int32_t *buckets;
        size_t bucket_cnt; /* a power of two */
        size_t hand;       /* the clock's */
        int32_t free_head; /* free entries, chained through next */
        struct ews_user_cache_stats stats;
};

static size_t cache_bucket(const struct ews_user_cache *cache, uint64_t hash)
{
        return (size_t)hash & (cache->bucket_cnt - 1);
}

struct ews_user_cache *ews_user_cache_new(size_t max_users)
{
        struct ews_user_cache *cache = calloc(1, sizeof(*cache));
        size_t i;

        if (!cache)
                return NULL;
        cache->max = max_users ? max_users : 1;
        for (cache->bucket_cnt = 16; cache->bucket_cnt < cache->max;)
                cache->bucket_cnt *= 2;
        cache->entries = calloc(cache->max, sizeof(*cache->entries));
        cache->buckets = malloc(cache->bucket_cnt * sizeof(*cache->buckets));
        if (!cache->entries || !cache->buckets) {
                ews_user_cache_destroy(cache);
                return NULL;
        }
        memset(cache->buckets, 0xff, cache->bucket_cnt * sizeof(int32_t));
        for (i = 0; i < cache->max; i++)
                cache->entries[i].next =
                        i + 1 < cache->max ? (int32_t)(i + 1) : -1;
        cache->free_head = 0;
        return cache;
}

void ews_user_cache_destroy(struct ews_user_cache *cache)
{
        if (!cache)
                return;
        if (cache->entries)
                ews_user_cache_drop(cache, -1);
        free(cache->entries);
        free(cache->buckets);
        free(cache);
}

/* The entry of id (hash its ews_hash64), or -1; *link the link to it or
 * to the end of its bucket's chain. */
static int32_t cache_find(const struct ews_user_cache *cache, const char *id,
                          uint64_t hash, int32_t **link)
{
        int32_t *l = &cache->buckets[cache_bucket(cache, hash)];

        while (*l >= 0 && (cache->entries[*l].hash != hash ||
                           strcmp(cache->entries[*l].user_id, id)))
                l = &cache->entries[*l].next;
        if (link)
                *link = l;
        return *l;
}

static void cache_remove(struct ews_user_cache *cache, int32_t i)
{
        struct cache_entry *e = &cache->entries[i];
        int32_t *link;

        cache_find(cache, e->user_id, e->hash, &link);
        *link = e->next;
        free(e->user_id);
        free(e->value);
        memset(e, 0, sizeof(*e));
        e->next = cache->free_head;
        cache->free_head = i;
        cache->stats.entries--;
}

const unsigned char *ews_user_cache_get(struct ews_user_cache *cache,
                                        const char *user_id, size_t *len)
{
        int32_t i = cache_find(cache, user_id, ews_hash64(user_id), NULL);

        if (i < 0) {
                cache->stats.misses++;
                return NULL;
        }
        cache->stats.hits++;
        cache->entries[i].referenced = true;
        *len = cache->entries[i].len;
        return cache->entries[i].value;
}

/* The clock: the first entry not referenced since the hand last passed. */
static void cache_evict(struct ews_user_cache *cache)
{
        for (;;) {
                struct cache_entry *e = &cache->entries[cache->hand];
                int32_t i = (int32_t)cache->hand;

                cache->hand = (cache->hand + 1) % cache->max;
                if (!e->user_id)
                        continue;
                if (e->referenced) {
                        e->referenced = false;
                        continue;
                }
                cache_remove(cache, i);
                cache->stats.evictions++;
                return;
        }
}

/* An entry's buffer is kept and grown, so that a user written batch after
 * batch costs no allocation. */
void ews_user_cache_put(struct ews_user_cache *cache, const char *user_id,
                        int32_t partition, const unsigned char *value,
                        size_t len)
{
        uint64_t hash = ews_hash64(user_id);
        int32_t i = cache_find(cache, user_id, hash, NULL);
        struct cache_entry *e;
        size_t b;

        if (i < 0) {
                char *id = strdup(user_id);

                if (!id)
                        return;
                if (cache->free_head < 0)
                        cache_evict(cache);
                i = cache->free_head;
                e = &cache->entries[i];
                cache->free_head = e->next;
                e->user_id = id;
                e->hash = hash;
                b = cache_bucket(cache, hash);
                e->next = cache->buckets[b];
                cache->buckets[b] = i;
                cache->stats.entries++;
        } else {
                e = &cache->entries[i];
        }
        if (len > e->cap) {
                unsigned char *grown = realloc(e->value, len);

                if (!grown) {
                        cache_remove(cache, i);
                        return;
                }
                e->value = grown;
                e->cap = len;
        }
        memcpy(e->value, value, len);
        e->partition = partition;
        e->referenced = true;
        e->len = len;
}

void ews_user_cache_drop(struct ews_user_cache *cache, int32_t partition)
{
        size_t i;

        for (i = 0; i < cache->max; i++)
                if (cache->entries[i].user_id &&
                    (partition < 0 || cache->entries[i].partition == partition))
                        cache_remove(cache, (int32_t)i);
}

struct ews_user_cache_stats
ews_user_cache_stats(const struct ews_user_cache *cache)
{
        return cache->stats;
}
