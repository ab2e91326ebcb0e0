#include "util/metrics.h"
#include "util/grow.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ews_histogram_init(struct ews_histogram *h, const double *bounds,
                        int bound_cnt)
{
        memset(h, 0, sizeof(*h));
        h->bound_cnt = bound_cnt < EWS_HIST_MAX ? bound_cnt : EWS_HIST_MAX;
        memcpy(h->bounds, bounds, (size_t)h->bound_cnt * sizeof(*bounds));
}

void ews_histogram_observe(struct ews_histogram *h, double value)
{
        int i = 0;

        while (i < h->bound_cnt && value > h->bounds[i])
                i++;
        h->counts[i]++;
        h->sum += value;
        h->count++;
}

enum metrics_kind {
        METRICS_I64,
        METRICS_F64,
        METRICS_HIST,
        METRICS_FN
};

struct metrics_row {
        const char *name;
        const char *help;
        enum ews_metric_type type;
        char *labels;
        enum metrics_kind kind;
        union {
                const int64_t *i64;
                const double *f64;
                const struct ews_histogram *hist;
                struct {
                        ews_metrics_fn fn;
                        void *opaque;
                } fn;
        } value;
};

struct ews_metrics {
        struct metrics_row *rows;
        size_t cnt, cap;
};

struct ews_metrics_out {
        FILE *fp;
        const char *name;
};

static const char *metrics_type_name(enum ews_metric_type type)
{
        return type == EWS_METRIC_COUNTER ? "counter"
               : type == EWS_METRIC_GAUGE ? "gauge"
                                          : "histogram";
}

struct ews_metrics *ews_metrics_new(void)
{
        return calloc(1, sizeof(struct ews_metrics));
}

void ews_metrics_destroy(struct ews_metrics *metrics)
{
        size_t i;

        if (!metrics)
                return;
        for (i = 0; i < metrics->cnt; i++)
                free(metrics->rows[i].labels);
        free(metrics->rows);
        free(metrics);
}

/* A new row after the last one of the same name, so that a name's rows
 * stay together; NULL when out of memory or the type differs. */
static struct metrics_row *metrics_row(struct ews_metrics *metrics,
                                       const char *name, const char *help,
                                       enum ews_metric_type type,
                                       const char *labels)
{
        size_t at = metrics->cnt, i;
        char *copy = strdup(labels ? labels : "");
        struct metrics_row *row;

        for (i = 0; i < metrics->cnt; i++)
                if (!strcmp(metrics->rows[i].name, name)) {
                        if (metrics->rows[i].type != type)
                                goto fail;
                        at = i + 1;
                }
        if (!copy || !ews_grow((void **)&metrics->rows, &metrics->cap,
                               metrics->cnt + 1, sizeof(*metrics->rows)))
                goto fail;
        memmove(&metrics->rows[at + 1], &metrics->rows[at],
                (metrics->cnt - at) * sizeof(*metrics->rows));
        metrics->cnt++;
        row = &metrics->rows[at];
        memset(row, 0, sizeof(*row));
        row->name = name;
        row->help = help;
        row->type = type;
        row->labels = copy;
        return row;
fail:
        free(copy);
        return NULL;
}

int ews_metrics_add_i64(struct ews_metrics *metrics, const char *name,
                        const char *help, enum ews_metric_type type,
                        const char *labels, const int64_t *value)
{
        struct metrics_row *row =
                metrics_row(metrics, name, help, type, labels);

        if (!row)
                return -1;
        row->kind = METRICS_I64;
        row->value.i64 = value;
        return 0;
}

int ews_metrics_add_f64(struct ews_metrics *metrics, const char *name,
                        const char *help, enum ews_metric_type type,
                        const char *labels, const double *value)
{
        struct metrics_row *row =
                metrics_row(metrics, name, help, type, labels);

        if (!row)
                return -1;
        row->kind = METRICS_F64;
        row->value.f64 = value;
        return 0;
}

int ews_metrics_add_histogram(struct ews_metrics *metrics, const char *name,
                              const char *help, const char *labels,
                              const struct ews_histogram *value)
{
        struct metrics_row *row =
                metrics_row(metrics, name, help, EWS_METRIC_HISTOGRAM, labels);

        if (!row)
                return -1;
        row->kind = METRICS_HIST;
        row->value.hist = value;
        return 0;
}

int ews_metrics_add_fn(struct ews_metrics *metrics, const char *name,
                       const char *help, enum ews_metric_type type,
                       ews_metrics_fn fn, void *opaque)
{
        struct metrics_row *row = metrics_row(metrics, name, help, type, "");

        if (!row)
                return -1;
        row->kind = METRICS_FN;
        row->value.fn.fn = fn;
        row->value.fn.opaque = opaque;
        return 0;
}

void ews_metrics_series(struct ews_metrics_out *out, const char *labels,
                        double value)
{
        if (labels && *labels)
                fprintf(out->fp, "%s{%s} %.15g\n", out->name, labels, value);
        else
                fprintf(out->fp, "%s %.15g\n", out->name, value);
}

/* name{labels,extra} or name{extra} or name{labels} or name. */
static void metrics_name(FILE *fp, const char *name, const char *suffix,
                         const char *labels, const char *extra)
{
        bool l = labels && *labels, e = extra && *extra;

        fprintf(fp, "%s%s", name, suffix);
        if (l || e)
                fprintf(fp, "{%s%s%s}", l ? labels : "", l && e ? "," : "",
                        e ? extra : "");
}

static void metrics_histogram(FILE *fp, const struct metrics_row *row)
{
        const struct ews_histogram *h = row->value.hist;
        uint64_t cumulative = 0;
        char le[64];
        int i;

        for (i = 0; i <= h->bound_cnt; i++) {
                cumulative += h->counts[i];
                if (i < h->bound_cnt)
                        snprintf(le, sizeof(le), "le=\"%g\"", h->bounds[i]);
                else
                        snprintf(le, sizeof(le), "le=\"+Inf\"");
                metrics_name(fp, row->name, "_bucket", row->labels, le);
                fprintf(fp, " %llu\n", (unsigned long long)cumulative);
        }
        metrics_name(fp, row->name, "_sum", row->labels, NULL);
        fprintf(fp, " %.9g\n", h->sum);
        metrics_name(fp, row->name, "_count", row->labels, NULL);
        fprintf(fp, " %llu\n", (unsigned long long)h->count);
}

static void metrics_row_render(FILE *fp, const struct metrics_row *row)
{
        struct ews_metrics_out out = {fp, row->name};

        switch (row->kind) {
        case METRICS_I64:
                metrics_name(fp, row->name, "", row->labels, NULL);
                fprintf(fp, " %lld\n", (long long)*row->value.i64);
                break;
        case METRICS_F64:
                metrics_name(fp, row->name, "", row->labels, NULL);
                fprintf(fp, " %.15g\n", *row->value.f64);
                break;
        case METRICS_HIST:
                metrics_histogram(fp, row);
                break;
        case METRICS_FN:
                row->value.fn.fn(row->value.fn.opaque, &out);
                break;
        }
}

void ews_metrics_render(const struct ews_metrics *metrics, FILE *fp)
{
        size_t i;

        for (i = 0; i < metrics->cnt; i++) {
                const struct metrics_row *row = &metrics->rows[i];

                if (!i || strcmp(metrics->rows[i - 1].name, row->name))
                        fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", row->name,
                                row->help, row->name,
                                metrics_type_name(row->type));
                metrics_row_render(fp, row);
        }
}

/* utime + stime (fields 14, 15 of /proc/self/stat), in clock ticks. */
static void metrics_cpu(void *opaque, struct ews_metrics_out *out)
{
        long ticks = sysconf(_SC_CLK_TCK);
        unsigned long long utime = 0, stime = 0;
        char buf[1024], *p;
        FILE *stat = fopen("/proc/self/stat", "r");
        int field;

        (void)opaque;
        if (!stat)
                return;
        if (fgets(buf, sizeof(buf), stat) && (p = strrchr(buf, ')'))) {
                /* after "pid (comm)", field 3 on */
                for (field = 3; p && field < 14; field++)
                        p = strchr(p + 1, ' ');
                if (p && sscanf(p + 1, "%llu %llu", &utime, &stime) == 2 &&
                    ticks > 0)
                        ews_metrics_series(out, "",
                                           (double)(utime + stime) /
                                                   (double)ticks);
        }
        fclose(stat);
}

/* Resident pages (field 2 of /proc/self/statm), in bytes. */
static void metrics_resident(void *opaque, struct ews_metrics_out *out)
{
        unsigned long long size, resident;
        FILE *statm = fopen("/proc/self/statm", "r");

        (void)opaque;
        if (!statm)
                return;
        if (fscanf(statm, "%llu %llu", &size, &resident) == 2)
                ews_metrics_series(out, "",
                                   (double)resident *
                                           (double)sysconf(_SC_PAGESIZE));
        fclose(statm);
}

int ews_metrics_add_process(struct ews_metrics *metrics)
{
        if (ews_metrics_add_fn(metrics, "process_cpu_seconds_total",
                               "User and system CPU time spent in seconds.",
                               EWS_METRIC_COUNTER, metrics_cpu, NULL) ||
            ews_metrics_add_fn(metrics, "process_resident_memory_bytes",
                               "Resident memory size in bytes.",
                               EWS_METRIC_GAUGE, metrics_resident, NULL))
                return -1;
        return 0;
}
