/*
 * Stage 3, score: folds a usage event into a user's rolling state.
 *
 * Pure functions of their arguments; the clock is the event's own time.
 * Engagement E(t) = sum of w_i * 2^(-(t - t_i)/H), kept as (E, t_ref): an
 * event at t >= t_ref decays E to t and adds w; a late event (t < t_ref)
 * adds w * 2^(-(t_ref - t)/H). The result does not depend on arrival order
 * beyond floating-point rounding. E's share per event type (the reasons)
 * and per product (the interests) are folded the same way with the same
 * t_ref. Fit F comes from the attributes, lifecycle stage from E and time.
 */
#ifndef EWS_FILTER_SCORE_H
#define EWS_FILTER_SCORE_H

#include "util/ews.h"

#define EWS_SCORE_WEIGHTS_MAX 64
#define EWS_SCORE_LIST_MAX    16
#define EWS_FIT_RULES_MAX     32
#define EWS_FIT_VALUES_MAX    16

struct ews_score_weight {
        char event_type[EWS_NAME_MAX];
        double points;
};

enum ews_fit_op {
        EWS_FIT_EQUALS, /* the attribute is values[0] */
        EWS_FIT_IN,     /* the attribute is one of values */
        EWS_FIT_RANGE,  /* the attribute is a number in [min, max] */
};

/* A firmographic rule: an attribute that matches gives points. */
struct ews_fit_rule {
        char attribute[EWS_NAME_MAX];
        enum ews_fit_op op;
        int value_cnt;
        char values[EWS_FIT_VALUES_MAX][EWS_NAME_MAX];
        double min, max;
        double points;
};

struct ews_score_conf {
        double half_life_ms; /* H: part of the model's identity */
        int weight_cnt;
        struct ews_score_weight weights[EWS_SCORE_WEIGHTS_MAX];
        /* Event types whose points are multiplied by the event's value,
         * clamped to [0, 1] (a share, e.g. of a video watched). */
        int value_scaled_cnt;
        char value_scaled[EWS_SCORE_LIST_MAX][EWS_NAME_MAX];
        /* page_view scores only for these page classes. */
        int page_class_cnt;
        char page_classes[EWS_SCORE_LIST_MAX][EWS_NAME_MAX];
        /* Event types that are not the user's own activity. */
        int not_activity_cnt;
        char not_activity[EWS_SCORE_LIST_MAX][EWS_NAME_MAX];
        /* Fit rules, also part of the model's identity (stored by index). */
        int fit_rule_cnt;
        struct ews_fit_rule fit_rules[EWS_FIT_RULES_MAX];
        /* Lifecycle thresholds. */
        double activation_points;
        int64_t activation_window_ms; /* after trial start */
        double sales_ready_points;
        /* How many recent event ids per user are remembered to count a
         * redelivered event once (0 to EWS_DEDUP_MAX). */
        int dedup_events;
};

/* value * 2^(-dt/H); dt may be negative (grows the value). */
double ews_score_decay(double value, int64_t dt_ms, double half_life_ms);

/* Folds points at t_ms into (E, t_ref) as described above. */
void ews_score_fold(double *engagement, int64_t *ref_ms, double points,
                    int64_t t_ms, double half_life_ms);

/* E as of t_ms (t_ms >= ref_ms decays; earlier returns E unchanged). */
double ews_score_value_at(double engagement, int64_t ref_ms, int64_t t_ms,
                          double half_life_ms);

/* The points an event is worth under conf; 0 when it does not score:
 * its type's points times ews_score_scale(). */
double ews_score_points(const struct ews_score_conf *conf,
                        const struct ews_usage_event *event);

/* What the event makes of its type's points, whatever they are: 0 for a
 * page_view outside the page classes, the value share (clamped to 0..1,
 * 1 without a value) for a value-scaled type, else 1. */
double ews_score_scale(const struct ews_score_conf *conf,
                       const struct ews_usage_event *event);

bool ews_score_is_activity(const struct ews_score_conf *conf,
                           const struct ews_usage_event *event);

/* F for the rules matched in the bit mask. */
double ews_score_fit(const struct ews_score_conf *conf, uint32_t matched);

/* The hash under which an event id is remembered. */
uint32_t ews_score_event_hash(const char *event_id);

/* What applying an event did. */
struct ews_score_result {
        bool duplicate;      /* seen before: nothing else was changed */
        bool activity;       /* the user's own activity */
        double points;       /* folded into E at the event's time */
        bool joined_account; /* the event named the user's first account */
        enum ews_stage stage_before;
};

/* Applies event to user: duplicates, engagement and its components, last
 * activity, fit, lifecycle stage, account and campaign attribution. */
struct ews_score_result ews_score_apply(const struct ews_score_conf *conf,
                                        struct ews_user *user,
                                        const struct ews_usage_event *event);

#endif
