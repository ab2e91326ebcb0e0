/*
 * ews-calibrate: points per event type learned from outcomes.
 *
 * History (the usage topic, or a file of JSON events) is read into a
 * compact store of events (ews_calibrate_history.c); every user with a
 * trial start is replayed through the scoring model (score/), giving its
 * features as of a cut-off k days after the trial started (the decayed
 * points each event type would give at one point each, and the fit rules
 * matched) and its outcomes (ews_calibrate_features.c). Per outcome, an
 * L2-regularised logistic regression (liblinear) is fitted on the earlier
 * signups and judged on the later ones against the configured points
 * (ews_calibrate_fit.c, ews_calibrate_eval.c); the report proposes points
 * for scoring.weights (ews_calibrate_report.c). Nothing is written
 * anywhere but stdout.
 */
#ifndef EWS_CALIBRATE_H
#define EWS_CALIBRATE_H

#include "ops/config.h"
#include "util/ews.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CAL_DAY_MS    86400000LL
#define CAL_TYPES_MAX 256 /* distinct event types read */
#define CAL_COLS_MAX  (CAL_TYPES_MAX + EWS_FIT_RULES_MAX)

/* The outcomes a model is fitted for. */
enum cal_outcome {
        CAL_ACTIVATION = 0, /* as the campaign rule counts a mature signup */
        CAL_CONVERSION,     /* a converted event within the window */
        CAL_OUTCOMES
};

extern const char *const cal_outcome_names[CAL_OUTCOMES];

/* Where a user stands on an outcome. */
enum cal_label {
        CAL_NEGATIVE = 0,
        CAL_POSITIVE,
        CAL_DECIDED,  /* already reached at the cut-off: nothing to predict */
        CAL_CENSORED, /* its window ends after the data does: unknown */
        CAL_NO_START  /* no trial start read */
};

/* Interned strings: index <-> string, in the history's arena. */
struct cal_intern {
        uint32_t *offs;  /* string offset in the arena, by index */
        uint32_t *slots; /* open addressing: index + 1, 0 empty */
        size_t cnt, cap, slot_cnt;
};

/* One usage event, compact: what scoring reads of it. */
struct cal_event {
        int64_t t_ms;
        double value;
        uint32_t user, seq; /* seq: the order read in */
        uint32_t id_off;    /* event id in the arena */
        uint32_t attr_off;  /* its first kept attribute */
        uint16_t type;
        uint8_t attr_cnt;
        bool has_value;
};

/* An attribute scoring reads (page_class, a fit rule's): arena offsets. */
struct cal_attr {
        uint32_t key_off, value_off;
};

/* Everything read, in the order read until cal_history_sort(). The caller
 * zeroes it and frees it with cal_history_free(). */
struct cal_history {
        int64_t from_ms, to_ms; /* events kept: [from, to) */
        struct cal_event *events;
        size_t event_cnt, event_cap;
        struct cal_attr *attrs;
        size_t attr_cnt, attr_cap;
        char *arena;
        size_t arena_len, arena_cap;
        struct cal_intern users, types;
        int64_t read_cnt, kept_cnt, first_ms, last_ms;
};

/* Keeps event if it occurred in [from, to). 0, or -1 with errstr (out of
 * memory, too many event types). */
int cal_history_add(struct cal_history *h, const struct ews_score_conf *conf,
                    const struct ews_usage_event *event, char *errstr,
                    size_t errstr_size);
/* Numbers users and event types in the order of their names, so that
 * the result does not depend on the order read, then orders the events by
 * user, event time and the order read. 0, or -1 when out of memory. */
int cal_history_sort(struct cal_history *h);
void cal_history_free(struct cal_history *h);
const char *cal_history_str(const struct cal_history *h, uint32_t off);
const char *cal_history_user(const struct cal_history *h, uint32_t user);
const char *cal_history_type(const struct cal_history *h, uint32_t type);

/* What the features and outcomes are measured by. */
struct cal_opts {
        int64_t cutoff_ms;     /* after the trial start */
        int64_t conversion_ms; /* the conversion window */
        int64_t end_ms;        /* the data's end: later outcomes unknown */
};

/* One user with a trial start: features at the cut-off and outcomes. */
struct cal_row {
        uint32_t user;
        int64_t start_ms;
        double engagement; /* E at the cut-off, configured points */
        double fit;        /* F at the cut-off */
        uint32_t fit_matched;
        enum cal_label label[CAL_OUTCOMES];
};

/* The rows, and x: per row, type_cnt decayed one-point sums (one per
 * interned type) then fit_cnt 0/1 columns (one per fit rule). */
struct cal_dataset {
        size_t row_cnt, col_cnt;
        int type_cnt, fit_cnt;
        struct cal_row *rows;
        double *x;
        int64_t users_read, no_start;
};

/* Replays each user's events (history sorted) through the scoring model.
 * 0, or -1 with errstr. The caller frees ds with cal_dataset_free(). */
int cal_dataset_build(const struct cal_history *h, const struct ews_config *c,
                      const struct cal_opts *opts, struct cal_dataset *ds,
                      char *errstr, size_t errstr_size);
void cal_dataset_free(struct cal_dataset *ds);
/* The outcome window after the trial start, as the config defines it. */
int64_t cal_outcome_window(const struct ews_config *c,
                           const struct cal_opts *opts, enum cal_outcome o);
/* Whether column col may be a feature: not a lifecycle event type. */
bool cal_column_usable(const struct cal_history *h,
                       const struct cal_dataset *ds, size_t col);

/* Exact AUC by ranks (ties count a half): NAN when either class is empty.
 * 0, or -1 when out of memory. */
int cal_auc(const double *score, const bool *positive, size_t n, double *auc);
/* Precision among the top share of scores (ceil(share * n) of them); a tie
 * across the boundary counts with its share of positives. *top is that
 * count. 0, or -1 when out of memory; NAN for n = 0. */
int cal_precision_top(const double *score, const bool *positive, size_t n,
                      double share, double *precision, size_t *top);

/* A fitted model of one outcome, in raw feature units. */
struct cal_fit {
        bool fitted;
        char why_not[128]; /* when not fitted */
        size_t train_cnt, train_pos, test_cnt, test_pos;
        size_t *train, *test; /* row indexes, earlier signups train */
        bool used[CAL_COLS_MAX];
        double coef[CAL_COLS_MAX]; /* log-odds per unit of the column */
        double intercept;
        double points_per_logit; /* the scale to points */
        double configured_total; /* sum of |points| it matches */
        /* on the test split */
        double auc_configured, auc_fitted;
        double prec_configured, prec_fitted;
        size_t prec_top;
};

struct cal_fit_opts {
        double test_share;
        double cost; /* liblinear's C */
        double top_share;
};

/* Splits by trial start, fits and evaluates one outcome. 0 (fit->fitted
 * tells whether there was anything to fit), or -1 with errstr. The caller
 * frees it with cal_fit_free(). */
int cal_fit_outcome(const struct cal_history *h, const struct cal_dataset *ds,
                    const struct ews_config *c, enum cal_outcome o,
                    const struct cal_fit_opts *opts, struct cal_fit *fit,
                    char *errstr, size_t errstr_size);
void cal_fit_free(struct cal_fit *fit);
/* The configured points of an event type (0 when not configured). */
double cal_configured_points(const struct ews_config *c, const char *type);

/* What the report says. */
struct cal_report {
        const struct ews_config *config;
        const struct cal_history *history;
        const struct cal_dataset *ds;
        const struct cal_opts *opts;
        const struct cal_fit_opts *fit_opts;
        const char *source; /* the topic or the file read */
        int64_t undecodable;
        struct cal_fit fits[CAL_OUTCOMES];
        bool wanted[CAL_OUTCOMES];
};

int cal_report_text(const struct cal_report *r, FILE *fp);
int cal_report_json(const struct cal_report *r, FILE *fp);

/* Reading (ews_calibrate_read.c): 0, or -1 with errstr; undecodable
 * messages are counted and skipped, as the processor dead-letters them. */
struct cal_read {
        const struct ews_config *config;
        const char *bootstrap; /* NULL: the config's */
        int64_t undecodable;
};
int cal_read_topic(struct cal_read *rd, struct cal_history *h, char *errstr,
                   size_t errstr_size);
int cal_read_file(struct cal_read *rd, const char *path, struct cal_history *h,
                  char *errstr, size_t errstr_size);

#endif
