/* The funnel's Prometheus series, of bounded cardinality: a campaign label
 * only for the campaigns state.funnel.metrics.campaigns names and the
 * state.funnel.metrics.recent most recently first counted, and the total.
 * Read from the store every FUNNEL_METRICS_PERIOD_MS by the cron and
 * rendered from that copy, as every metric is, on the main thread. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUNNEL_METRICS_PERIOD_MS 30000

/* A label value that needs no escaping (ids are written as they are). */
static bool funnel_label_ok(const char *id)
{
        return id[0] && !strpbrk(id, "\"\\\n");
}

static bool funnel_metrics_has(const struct ews_pipeline *p, const char *id)
{
        size_t i;

        for (i = 0; i < p->gauge_cnt; i++)
                if (!strcmp(p->gauges[i].campaign_id, id))
                        return true;
        return false;
}

static void funnel_metrics_read(struct ews_pipeline *p, const char *id)
{
        char errstr[256];

        if (p->gauge_cnt >= p->gauge_cap || !funnel_label_ok(id) ||
            funnel_metrics_has(p, id))
                return;
        if (ews_store_funnel_get(p->store, id, &p->gauges[p->gauge_cnt], errstr,
                                 sizeof(errstr)) == EWS_STORE_OK)
                p->gauge_cnt++;
}

void pipeline_funnel_metrics_cron(struct ews_pipeline *p, int64_t mono_ms)
{
        const struct ews_config *c = p->config;
        char(*ids)[EWS_ID_MAX];
        char errstr[256];
        size_t n = 0, i;

        if (p->gauges_at_ms &&
            mono_ms - p->gauges_at_ms < FUNNEL_METRICS_PERIOD_MS)
                return;
        p->gauges_at_ms = mono_ms;
        p->gauge_cap = (size_t)c->funnel_metrics_campaign_cnt +
                       (size_t)c->funnel_metrics_recent;
        if (!p->gauges)
                p->gauges = calloc(p->gauge_cap + 1, sizeof(*p->gauges));
        ids = calloc((size_t)c->funnel_metrics_recent + 1, sizeof(*ids));
        if (!p->gauges || !ids) {
                free(ids);
                return;
        }
        if (ews_store_funnel_get(p->store, "", &p->gauge_total, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK ||
            ews_store_funnel_campaigns(p->store, ids,
                                       (size_t)c->funnel_metrics_recent, &n,
                                       errstr, sizeof(errstr))) {
                ews_debug("pipeline", "funnel metrics: %s", errstr);
                free(ids);
                return;
        }
        p->gauge_cnt = 0;
        for (i = 0; i < (size_t)c->funnel_metrics_campaign_cnt; i++)
                funnel_metrics_read(p, c->funnel_metrics_campaigns[i]);
        for (i = 0; i < n; i++)
                funnel_metrics_read(p, ids[i]);
        p->gauges_valid = true;
        free(ids);
}

static void funnel_metrics_users(void *opaque, struct ews_metrics_out *out)
{
        const struct ews_pipeline *p = opaque;
        char labels[EWS_ID_MAX + 64];
        size_t i;
        int s;

        if (!p->gauges_valid)
                return;
        for (s = 0; s < EWS_FUNNEL_COUNT; s++) {
                snprintf(labels, sizeof(labels), "stage=\"%s\"",
                         ews_funnel_name(s));
                ews_metrics_series(out, labels,
                                   (double)p->gauge_total.count[s]);
        }
        for (i = 0; i < p->gauge_cnt; i++)
                for (s = 0; s < EWS_FUNNEL_COUNT; s++) {
                        snprintf(labels, sizeof(labels),
                                 "campaign=\"%s\",stage=\"%s\"",
                                 p->gauges[i].campaign_id, ews_funnel_name(s));
                        ews_metrics_series(out, labels,
                                           (double)p->gauges[i].count[s]);
                }
}

int ews_pipeline_funnel_metrics_register(const struct ews_pipeline *p,
                                         struct ews_metrics *m)
{
        return ews_metrics_add_fn(
                m, "ews_funnel_users",
                "Users that reached the funnel stage: in all (no campaign "
                "label) and for the campaigns of "
                "state.funnel.metrics.campaigns and .recent.",
                EWS_METRIC_GAUGE, funnel_metrics_users, (void *)p);
}
