/*
 * The metrics table: what the processor tells Prometheus.
 *
 * Each stage registers its own rows once, at start: {name, help, type,
 * labels, pointer to the value it keeps}. The row's name is the published
 * name, and the only one. The main loop renders the whole table in the
 * Prometheus text format (base units, _total on counters) once a second
 * and hands the text to the HTTP thread, so values are only ever read on
 * the thread that writes them. Rows of one name are written together,
 * under one HELP and TYPE, in the order they were registered.
 */
#ifndef EWS_METRICS_H
#define EWS_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/ews.h"

#define EWS_HIST_MAX 16

struct ews_histogram {
        int bound_cnt;
        double bounds[EWS_HIST_MAX];       /* upper bounds, ascending */
        uint64_t counts[EWS_HIST_MAX + 1]; /* per bucket, the last is +Inf */
        double sum;
        uint64_t count;
};

void ews_histogram_init(struct ews_histogram *h, const double *bounds,
                        int bound_cnt);
void ews_histogram_observe(struct ews_histogram *h, double value);

/* One owned partition, as the pipeline reports it. */
struct ews_partition_metrics {
        const char *topic; /* borrowed from the configuration */
        enum ews_source source;
        int32_t partition;
        int64_t lag;              /* messages; -1 unknown */
        double watermark_delay_s; /* wall clock minus watermark; <0 unknown */
};

enum ews_metric_type {
        EWS_METRIC_COUNTER,
        EWS_METRIC_GAUGE,
        EWS_METRIC_HISTOGRAM
};

struct ews_metrics;
/* Where a row computed at render time writes its series. */
struct ews_metrics_out;
typedef void (*ews_metrics_fn)(void *opaque, struct ews_metrics_out *out);

/* An empty table; NULL when out of memory. */
struct ews_metrics *ews_metrics_new(void);
void ews_metrics_destroy(struct ews_metrics *metrics);

/* Adds a row read from *value at each render. name and help are borrowed
 * (string literals); labels ("" or `key="value",...`) is copied; value is
 * borrowed and must outlive the table. 0, or -1 when out of memory or
 * when name is registered with another type. */
int ews_metrics_add_i64(struct ews_metrics *metrics, const char *name,
                        const char *help, enum ews_metric_type type,
                        const char *labels, const int64_t *value);
int ews_metrics_add_f64(struct ews_metrics *metrics, const char *name,
                        const char *help, enum ews_metric_type type,
                        const char *labels, const double *value);
int ews_metrics_add_histogram(struct ews_metrics *metrics, const char *name,
                              const char *help, const char *labels,
                              const struct ews_histogram *value);
/* Adds series known only at render time (per partition, from a library):
 * fn writes each with ews_metrics_series(). opaque is borrowed. */
int ews_metrics_add_fn(struct ews_metrics *metrics, const char *name,
                       const char *help, enum ews_metric_type type,
                       ews_metrics_fn fn, void *opaque);
void ews_metrics_series(struct ews_metrics_out *out, const char *labels,
                        double value);

/* The process's own CPU time and resident memory, from /proc. */
int ews_metrics_add_process(struct ews_metrics *metrics);

/* Writes every row in the Prometheus text format. */
void ews_metrics_render(const struct ews_metrics *metrics, FILE *fp);

#endif
