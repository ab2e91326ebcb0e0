#include "store/store_int.h"

/* The store's rows of the metrics table. */

static void store_metrics_hits(void *opaque, struct ews_metrics_out *out)
{
        ews_metrics_series(out, "", (double)ews_store_stats(opaque).cache_hits);
}

static void store_metrics_misses(void *opaque, struct ews_metrics_out *out)
{
        ews_metrics_series(out, "",
                           (double)ews_store_stats(opaque).cache_misses);
}

int ews_store_metrics_register(struct ews_store *store,
                               struct ews_metrics *metrics)
{
        if (ews_metrics_add_i64(metrics, "ews_redis_reconnects_total",
                                "Connections made to Redis after the first.",
                                EWS_METRIC_COUNTER, "",
                                &store->stats.reconnects) ||
            ews_metrics_add_i64(metrics, "ews_redis_failovers_total",
                                "Connections through Sentinel that found "
                                "the primary at another address than the "
                                "last one.",
                                EWS_METRIC_COUNTER, "",
                                &store->stats.failovers) ||
            ews_metrics_add_i64(metrics, "ews_redis_wait_shortfalls_total",
                                "WAIT calls (redis.wait.replicas) that "
                                "fewer replicas acknowledged in time: the "
                                "commits or claims before them went back to "
                                "their fences.",
                                EWS_METRIC_COUNTER, "",
                                &store->stats.wait_shortfalls) ||
            ews_metrics_add_fn(metrics, "ews_user_cache_hits_total",
                               "User reads served by the in-process cache.",
                               EWS_METRIC_COUNTER, store_metrics_hits, store) ||
            ews_metrics_add_fn(metrics, "ews_user_cache_misses_total",
                               "User reads that went to Redis.",
                               EWS_METRIC_COUNTER, store_metrics_misses, store))
                return -1;
        return 0;
}
