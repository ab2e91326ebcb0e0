#include "filter_score.h"

#include <math.h>
#include <string.h>

double ews_score_decay(double value, int64_t dt_ms, double half_life_ms)
{
        return value * exp2(-(double)dt_ms / half_life_ms);
}

void ews_score_fold(double *engagement, int64_t *ref_ms, double points,
                    int64_t t_ms, double half_life_ms)
{
        if (*ref_ms == 0 && *engagement == 0.0) {
                *engagement = points;
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
        double points = 0.0, value;
        int i;

        for (i = 0; i < conf->weight_cnt; i++) {
                if (!strcmp(conf->weights[i].event_type, event->event_type)) {
                        points = conf->weights[i].points;
                        break;
                }
        }
        if (points == 0.0)
                return 0.0;

        if (!strcmp(event->event_type, "page_view")) {
                const char *page_class = score_attr(event, "page_class");
                if (!page_class ||
                    !score_list_has(conf->page_classes, conf->page_class_cnt,
                                    page_class))
                        return 0.0;
        }

        if (score_list_has(conf->value_scaled, conf->value_scaled_cnt,
                           event->event_type)) {
                /* Without a value there is no share to scale by: the event
                 * says the thing happened, not how much of it. */
                value = event->has_value ? event->value : 1.0;
                if (!(value > 0.0)) /* also NaN */
                        value = 0.0;
                else if (value > 1.0)
                        value = 1.0;
                points *= value;
        }
        return points;
}

bool ews_score_is_activity(const struct ews_score_conf *conf,
                           const struct ews_usage_event *event)
{
        return !score_list_has(conf->not_activity, conf->not_activity_cnt,
                               event->event_type);
}

static void score_copy(char *dst, const char *src)
{
        /* Both are EWS_ID_MAX buffers; decode guarantees termination. */
        memcpy(dst, src, EWS_ID_MAX);
}

static void score_stage(struct ews_user *user,
                        const struct ews_usage_event *event)
{
        const char *type = event->event_type;

        if (!strcmp(type, "trial_started")) {
                if (user->stage == EWS_STAGE_NONE)
                        user->stage = EWS_STAGE_TRIAL;
                /* A replayed or repeated start keeps the first one. */
                if (!user->trial_started_ms ||
                    event->occurred_at_ms < user->trial_started_ms)
                        user->trial_started_ms = event->occurred_at_ms;
                if (!user->campaign_id[0] && event->campaign_id[0])
                        score_copy(user->campaign_id, event->campaign_id);
        } else if (!strcmp(type, "converted")) {
                user->stage = EWS_STAGE_CUSTOMER;
        } else if (!strcmp(type, "trial_ended")) {
                if (user->stage != EWS_STAGE_CUSTOMER)
                        user->stage = EWS_STAGE_LOST;
        }
}

bool ews_score_apply(const struct ews_score_conf *conf, struct ews_user *user,
                     const struct ews_usage_event *event)
{
        double points = ews_score_points(conf, event);
        bool activity = ews_score_is_activity(conf, event);

        if (points != 0.0)
                ews_score_fold(&user->engagement, &user->engagement_ref_ms,
                               points, event->occurred_at_ms,
                               conf->half_life_ms);
        if (activity && event->occurred_at_ms > user->last_activity_ms)
                user->last_activity_ms = event->occurred_at_ms;
        /* The account named first sticks: a user does not move between
         * companies mid-trial, and a later typo must not split roll-ups. */
        if (!user->account_id[0] && event->account_id[0])
                score_copy(user->account_id, event->account_id);
        score_stage(user, event);
        user->events++;
        return activity;
}
