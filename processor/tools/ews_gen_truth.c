/*
 * What ews-gen knows about its own users: their E under the default scoring
 * model, computed as the processor does, and the truth file the tests check
 * the processor's alerts against.
 */
#include "ews_gen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The event's points under the default weights. */
static double gen_event_points(const struct gen_event *event)
{
        static const struct {
                const char *type;
                double points;
        } weights[] = {{"trial_started", 5}, {"login", 1},
                       {"feature_used", 3},  {"page_view", 4},
                       {"video_play", 6},    {"content_download", 4},
                       {"invite_sent", 8}};
        const char *page = NULL;
        int i;

        for (i = 0; i < event->attr_cnt; i++)
                if (!strcmp(event->attr_keys[i], "page_class"))
                        page = event->attr_values[i];
        for (i = 0; i < GEN_COUNT(weights); i++) {
                if (strcmp(event->type, weights[i].type))
                        continue;
                if (!strcmp(event->type, "page_view") &&
                    (!page ||
                     (strcmp(page, "pricing") && strcmp(page, "demo_request") &&
                      strcmp(page, "integrations"))))
                        return 0;
                if (!strcmp(event->type, "video_play"))
                        return isnan(event->value)
                                       ? 0
                                       : weights[i].points * event->value;
                return weights[i].points;
        }
        return 0;
}

double gen_decay(double points, int64_t elapsed_ms)
{
        return points * exp2(-(double)elapsed_ms / GEN_HALF_LIFE);
}

/* When E, decaying from e at last_ms, falls below the drop share of the
 * peak, if that peak counts and it happens by until_ms; else 0. */
int64_t gen_drop_time(double e, double peak, int64_t last_ms, int64_t until_ms)
{
        double floor_e = GEN_DROP_SHARE * peak, at;

        if (peak < GEN_DROP_MIN_PEAK)
                return 0;
        at = e <= floor_e ? (double)last_ms
                          : ceil((double)last_ms +
                                 GEN_HALF_LIFE * log2(e / floor_e));
        return at <= (double)until_ms ? (int64_t)at : 0;
}

/* Folds the event into the user's E, as the processor would, and keeps
 * what the truth reports: peak, activation, the lowest ratio to the
 * running peak and when E first dropped. */
void gen_user_score(struct gen_entity *entity, const struct gen_event *event)
{
        double e = 0;

        if (entity->seq > 1) {
                if (!entity->drop_ms)
                        entity->drop_ms =
                                gen_drop_time(entity->points_e, entity->peak_e,
                                              entity->last_ms, event->ms);
                e = gen_decay(entity->points_e, event->ms - entity->last_ms);
                if (entity->peak_e >= GEN_DROP_MIN_PEAK &&
                    (entity->min_ratio < 0 ||
                     e / entity->peak_e < entity->min_ratio))
                        entity->min_ratio = e / entity->peak_e;
        }
        e += gen_event_points(event);
        entity->points_e = e;
        if (e > entity->peak_e)
                entity->peak_e = e;
        if (e >= GEN_ACTIVATION_POINTS &&
            event->ms - entity->signup_ms <= GEN_ACTIVATION_WINDOW)
                entity->activated = true;
}

static const char *gen_json_ms(char *buf, size_t size, bool set, int64_t ms)
{
        if (!set)
                return "null";
        snprintf(buf, size, "%" PRId64, ms);
        return buf;
}

static void gen_truth_user(const struct gen_model *model, FILE *fp, long index)
{
        const struct gen_entity *entity = &model->entities[index];
        int b = entity->behaviour;
        bool paused = b == GEN_QUIET || b == GEN_RETURNING;
        /* E goes on decaying after the user's last event. */
        int64_t drop_ms =
                entity->drop_ms
                        ? entity->drop_ms
                        : gen_drop_time(entity->points_e, entity->peak_e,
                                        entity->last_ms, model->end_ms - 1);
        char id[GEN_ID_MAX], converted[24], quiet[24], back[24], fade[24],
                drop[24], ratio[32] = "null";

        gen_user_id(model, index, id, sizeof(id));
        if (b == GEN_ACTIVE && entity->min_ratio >= 0)
                snprintf(ratio, sizeof(ratio), "%.6f", entity->min_ratio);
        fprintf(fp,
                "{\"kind\":\"user\",\"id\":\"%s\","
                "\"campaign\":\"c-%03ld\",\"account\":\"a-%04d\","
                "\"behaviour\":\"%s\",\"signup_ms\":%" PRId64
                ",\"last_event_ms\":%" PRId64 ",\"converted_ms\":%s,"
                "\"quiet_from_ms\":%s,\"return_ms\":%s,\"fade_ms\":%s,"
                "\"drop_ms\":%s,\"peak_points_e\":%.6f,"
                "\"min_ratio_active\":%s,\"activated\":%s}\n",
                id, gen_user_campaign(model, index) + 1, entity->account,
                gen_behaviour_names[b], entity->signup_ms, entity->last_ms,
                gen_json_ms(converted, sizeof(converted), entity->converted,
                            entity->last_ms),
                gen_json_ms(quiet, sizeof(quiet), paused && entity->pause_ms,
                            entity->pause_ms),
                gen_json_ms(back, sizeof(back),
                            b == GEN_RETURNING && entity->return_ms,
                            entity->return_ms),
                gen_json_ms(fade, sizeof(fade),
                            b == GEN_FADING && entity->pause_ms,
                            entity->pause_ms),
                gen_json_ms(drop, sizeof(drop), drop_ms, drop_ms),
                entity->peak_e, ratio, entity->activated ? "true" : "false");
}

/* quiet_from_ms, return_ms and fade_ms mark the gap or the fade the
 * behaviour is about; drop_ms is when E first fell below 0.4 of its
 * running peak (once that reached 30), in continuous event time, whatever
 * the behaviour; peak_points_e, min_ratio_active (active users: the lowest
 * E / running peak just before an event, once the peak reached 30) and
 * activated come from the default scoring model. */
int gen_model_truth_write(const struct gen_model *model, const char *path)
{
        FILE *fp = fopen(path, "w");
        long i;
        int b;

        if (!fp)
                goto fail;
        for (i = 0; i < model->campaigns; i++)
                fprintf(fp,
                        "{\"kind\":\"campaign\",\"id\":\"c-%03ld\","
                        "\"poor\":%s,\"target\":%g,\"launched\":%s,"
                        "\"mix\":\"%s\"}\n",
                        i + 1, gen_campaign_poor(model, i) ? "true" : "false",
                        GEN_TARGET,
                        model->no_campaign_events ? "false" : "true",
                        gen_campaign_poor(model, i) ? "poor" : "healthy");
        for (; i < model->entity_cnt; i++)
                gen_truth_user(model, fp, i);
        fprintf(fp,
                "{\"kind\":\"summary\",\"events\":%" PRId64
                ",\"usage_events\":%" PRId64 ",\"campaign_events\":%" PRId64
                ",\"users\":%lld,\"campaigns\":%lld,\"end_ms\":%" PRId64,
                model->usage_events + model->campaign_events,
                model->usage_events, model->campaign_events,
                model->entity_cnt - model->campaigns, model->campaigns,
                model->last_event_ms);
        for (b = 0; b < GEN_BEHAVIOURS; b++)
                fprintf(fp, ",\"%s\":%ld", gen_behaviour_names[b],
                        model->behaviours[b]);
        fprintf(fp, "}\n");
        if (fclose(fp) == 0)
                return 0;
fail:
        fprintf(stderr, "ews-gen: %s: %s\n", path, strerror(errno));
        return -1;
}
