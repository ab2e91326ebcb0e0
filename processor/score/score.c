#include "score/score.h"
#include "util/hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

double ews_score_decay(double value, int64_t dt_ms, double half_life_ms)
{
        return value * exp2(-(double)dt_ms / half_life_ms);
}

void ews_score_fold(double *engagement, int64_t *ref_ms, double points,
                    int64_t t_ms, double half_life_ms)
{
        if (*ref_ms == 0) {
                *engagement += points;
                *ref_ms = t_ms;
        } else if (t_ms >= *ref_ms) {
                *engagement = ews_score_decay(*engagement, t_ms - *ref_ms,
                                              half_life_ms) +
                              points;
                *ref_ms = t_ms;
        } else {
                *engagement +=
                        ews_score_decay(points, *ref_ms - t_ms, half_life_ms);
        }
}

double ews_score_value_at(double engagement, int64_t ref_ms, int64_t t_ms,
                          double half_life_ms)
{
        if (t_ms <= ref_ms)
                return engagement;
        return ews_score_decay(engagement, t_ms - ref_ms, half_life_ms);
}

static bool score_list_has(const char list[][EWS_NAME_MAX], int cnt,
                           const char *s)
{
        int i;

        for (i = 0; i < cnt; i++)
                if (!strcmp(list[i], s))
                        return true;
        return false;
}

static const char *score_attr(const struct ews_usage_event *event,
                              const char *key)
{
        int i;

        for (i = 0; i < event->attr_cnt; i++)
                if (!strcmp(event->attrs[i].key, key))
                        return event->attrs[i].value;
        return NULL;
}

double ews_score_points(const struct ews_score_conf *conf,
                        const struct ews_usage_event *event)
{
        double points = 0.0;
        int i;

        for (i = 0; i < conf->weight_cnt; i++) {
                if (!strcmp(conf->weights[i].event_type, event->event_type)) {
                        points = conf->weights[i].points;
                        break;
                }
        }
        if (points == 0.0)
                return 0.0;
        return points * ews_score_scale(conf, event);
}

double ews_score_scale(const struct ews_score_conf *conf,
                       const struct ews_usage_event *event)
{
        double value;

        if (!strcmp(event->event_type, "page_view")) {
                const char *page_class = score_attr(event, "page_class");
                if (!page_class ||
                    !score_list_has(conf->page_classes, conf->page_class_cnt,
                                    page_class))
                        return 0.0;
        }
        if (!score_list_has(conf->value_scaled, conf->value_scaled_cnt,
                            event->event_type))
                return 1.0;
        /* Without a value there is no share to scale by: the event says the
         * thing happened, not how much of it. */
        value = event->has_value ? event->value : 1.0;
        if (!(value > 0.0)) /* also NaN */
                return 0.0;
        return value > 1.0 ? 1.0 : value;
}

bool ews_score_is_activity(const struct ews_score_conf *conf,
                           const struct ews_usage_event *event)
{
        return !score_list_has(conf->not_activity, conf->not_activity_cnt,
                               event->event_type);
}

double ews_score_fit(const struct ews_score_conf *conf, uint32_t matched)
{
        double fit = 0.0;
        int i;

        for (i = 0; i < conf->fit_rule_cnt; i++)
                if (matched & (1u << i))
                        fit += conf->fit_rules[i].points;
        return fit;
}

uint32_t ews_score_event_hash(const char *event_id)
{
        return ews_hash32(event_id);
}

static bool score_fit_match(const struct ews_fit_rule *rule, const char *value)
{
        char *end;
        double v;
        int i;

        switch (rule->op) {
        case EWS_FIT_EQUALS:
        case EWS_FIT_IN:
                for (i = 0; i < rule->value_cnt; i++)
                        if (!strcasecmp(rule->values[i], value))
                                return true;
                return false;
        case EWS_FIT_RANGE:
                v = strtod(value, &end);
                return end != value && !*end && v >= rule->min &&
                       v <= rule->max;
        }
        return false;
}

/* A rule is decided by the latest event that carries its attribute, so a
 * corrected company size moves the fit. */
static void score_fit(const struct ews_score_conf *conf, struct ews_user *user,
                      const struct ews_usage_event *event)
{
        const char *value;
        int i;

        for (i = 0; i < conf->fit_rule_cnt && i < 32; i++) {
                value = score_attr(event, conf->fit_rules[i].attribute);
                if (!value)
                        continue;
                if (score_fit_match(&conf->fit_rules[i], value))
                        user->fit_matched |= 1u << i;
                else
                        user->fit_matched &= ~(1u << i);
        }
        user->fit = ews_score_fit(conf, user->fit_matched);
}

/* Adds points to the named component; when all slots are taken, the
 * smallest component makes room (its share is the least telling). */
static void score_component(struct ews_component *v, int *cnt, int max,
                            const char *name, double points)
{
        int i, smallest = 0;
        size_t n;

        for (i = 0; i < *cnt; i++) {
                if (!strcmp(v[i].name, name)) {
                        v[i].value += points;
                        return;
                }
                if (fabs(v[i].value) < fabs(v[smallest].value))
                        smallest = i;
        }
        if (*cnt < max)
                i = (*cnt)++;
        else if (fabs(points) > fabs(v[smallest].value))
                i = smallest;
        else
                return;
        n = strnlen(name, sizeof(v[i].name) - 1); /* cut as snprintf would */
        memcpy(v[i].name, name, n);
        v[i].name[n] = '\0';
        v[i].value = points;
}

/* Folds points at t into E and its components, all on one t_ref. */
static void score_fold_user(const struct ews_score_conf *conf,
                            struct ews_user *user, double points, int64_t t,
                            const char *type, const char *product)
{
        double factor = 1.0;
        int i;

        if (user->engagement_ref_ms && t > user->engagement_ref_ms) {
                factor = exp2(-(double)(t - user->engagement_ref_ms) /
                              conf->half_life_ms);
                for (i = 0; i < user->reason_cnt; i++)
                        user->reasons[i].value *= factor;
                for (i = 0; i < user->interest_cnt; i++)
                        user->interests[i].value *= factor;
        }
        ews_score_fold(&user->engagement, &user->engagement_ref_ms, points, t,
                       conf->half_life_ms);
        /* A late event's points arrive already decayed to t_ref. */
        if (t < user->engagement_ref_ms)
                points = ews_score_decay(points, user->engagement_ref_ms - t,
                                         conf->half_life_ms);
        score_component(user->reasons, &user->reason_cnt, EWS_REASONS_MAX, type,
                        points);
        if (product[0])
                score_component(user->interests, &user->interest_cnt,
                                EWS_INTERESTS_MAX, product, points);
        if (user->engagement > user->peak_engagement)
                user->peak_engagement = user->engagement;
}

static void score_stage_set(struct ews_user *user, enum ews_stage stage,
                            int64_t t)
{
        if (user->stage != stage) {
                user->stage = stage;
                user->stage_at_ms = t;
        }
}

static void score_stage(const struct ews_score_conf *conf,
                        struct ews_user *user,
                        const struct ews_usage_event *event)
{
        const char *type = event->event_type;
        int64_t t = event->occurred_at_ms;

        if (!strcmp(type, "trial_started")) {
                if (user->stage == EWS_STAGE_NONE)
                        score_stage_set(user, EWS_STAGE_TRIAL, t);
                /* A repeated start keeps the first one. */
                if (!user->trial_started_ms || t < user->trial_started_ms)
                        user->trial_started_ms = t;
                if (!user->campaign_id[0] && event->campaign_id[0])
                        memcpy(user->campaign_id, event->campaign_id,
                               EWS_ID_MAX);
        } else if (!strcmp(type, "converted")) {
                score_stage_set(user, EWS_STAGE_CUSTOMER, t);
        } else if (!strcmp(type, "trial_ended")) {
                if (ews_stage_in_trial(user->stage))
                        score_stage_set(user, EWS_STAGE_LOST, t);
        }
        /* Activation counts only within the window after the trial's start:
         * a trial that took three weeks to engage did not activate. A
         * definition by behaviour may be met after the score made the
         * user sales-ready: activated all the same. */
        ews_activation_count(conf, user, event);
        if ((conf->activation_cnt
                     ? ews_stage_in_trial(user->stage) && !user->activated_ms
                     : user->stage == EWS_STAGE_TRIAL) &&
            ews_activation_reached(conf, user, t)) {
                if (user->stage == EWS_STAGE_TRIAL)
                        score_stage_set(user, EWS_STAGE_ACTIVATED, t);
                user->activated_ms = t;
        }
        if ((user->stage == EWS_STAGE_TRIAL ||
             user->stage == EWS_STAGE_ACTIVATED) &&
            user->engagement >= conf->sales_ready_points)
                score_stage_set(user, EWS_STAGE_SALES_READY, t);
}

static bool score_duplicate(const struct ews_score_conf *conf,
                            struct ews_user *user, const char *event_id)
{
        uint32_t h = ews_score_event_hash(event_id);
        int i, keep = conf->dedup_events;

        if (keep <= 0)
                return false;
        for (i = 0; i < user->dedup_cnt; i++)
                if (user->dedup[i] == h)
                        return true;
        if (keep > EWS_DEDUP_MAX)
                keep = EWS_DEDUP_MAX;
        if (user->dedup_cnt >= keep) {
                memmove(user->dedup, user->dedup + (user->dedup_cnt - keep + 1),
                        (size_t)(keep - 1) * sizeof(user->dedup[0]));
                user->dedup_cnt = keep - 1;
        }
        user->dedup[user->dedup_cnt++] = h;
        return false;
}

struct ews_score_result ews_score_apply(const struct ews_score_conf *conf,
                                        struct ews_user *user,
                                        const struct ews_usage_event *event)
{
        struct ews_score_result r = {false, false, 0.0, false, user->stage};

        if (score_duplicate(conf, user, event->event_id)) {
                r.duplicate = true;
                return r;
        }
        r.points = ews_score_points(conf, event);
        r.activity = ews_score_is_activity(conf, event);
        if (r.points != 0.0)
                score_fold_user(conf, user, r.points, event->occurred_at_ms,
                                event->event_type, event->product);
        if (r.activity && event->occurred_at_ms > user->last_activity_ms)
                user->last_activity_ms = event->occurred_at_ms;
        /* The account named first sticks: a user does not move between
         * companies mid-trial, and a later typo must not split roll-ups. */
        if (!user->account_id[0] && event->account_id[0]) {
                memcpy(user->account_id, event->account_id, EWS_ID_MAX);
                r.joined_account = true;
        }
        score_fit(conf, user, event);
        score_stage(conf, user, event);
        user->events++;
        return r;
}
