/*
 * ews-gen's scenario model (ews_gen.h). Each campaign's users are dealt
 * behaviours in fixed shares, so a campaign's activation rate is a
 * property of its mix and not of a few dice:
 *
 *   active     sessions at the usual cadence until the end;
 *   quiet      the signup and one light session that day, then nothing:
 *              never activated, disengaged 72h later;
 *   returning  the usual cadence for 3-5 days, then 4-5 days with no event
 *              at all, then the usual cadence again;
 *   fading     the usual cadence for 3-4 days, then one login a day: never
 *              inactive for 72h, while E decays below 0.4 of its peak;
 *   converted  the usual cadence for 2-6 days, then converted.
 *
 * The truth scores every user with config/ews.yaml's default weights, so
 * the tests can tell which alerts the processor owes without running it.
 */
#include "ews_gen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* USER_DISENGAGED fires after 72h of event time without activity. A user
 * meant to stay engaged must never come near it, not even over a weekend:
 * none of their gaps exceeds GEN_GAP_MAX. */
#define GEN_INACTIVITY (72 * GEN_HOUR)
#define GEN_GAP_MAX    (29 * GEN_HOUR)
/* The longest session from its login: eight activities. */
#define GEN_SESSION_SPAN (5 * GEN_MIN + 7 * 12 * GEN_MIN)
#define GEN_PICK(rng, a) ((a)[gen_rng_range((rng), 0, GEN_COUNT(a))])

/* What a user's next event is; the first one is always trial_started. */
enum gen_phase {
        GEN_PHASE_LOGIN = 0,
        GEN_PHASE_ACT,
        GEN_PHASE_PING, /* a login and nothing else */
        GEN_PHASE_CONVERT,
        GEN_PHASE_DONE
};

const char *const gen_behaviour_names[GEN_BEHAVIOURS] = {
        "active", "quiet", "returning", "fading", "converted"};
/* Shares of each behaviour, healthy campaigns then poor ones. */
static const double gen_mixes[2][GEN_BEHAVIOURS] = {
        {0.55, 0.10, 0.10, 0.10, 0.15}, {0.10, 0.90, 0, 0, 0}};
static const char *gen_channels[] = {"webinar", "paid_search", "linkedin",
                                     "content", "events"};
static const char *gen_products[] = {"analytics", "automation", "crm"};
static const char *gen_activities[] = {"feature_used", "page_view",
                                       "video_play", "content_download",
                                       "invite_sent"};
static const int gen_activity_weights[] = {45, 30, 10, 10, 5};
static const char *gen_pages[] = {"pricing", "docs", "blog", "careers",
                                  "demo_request"};
/* Buyers read pricing and ask for demos; evaluators read docs and blogs. */
static const int gen_page_weights[2][5] = {{20, 40, 30, 5, 5},
                                           {35, 30, 10, 0, 25}};
static const char *gen_sizes[] = {"10",  "25",   "50",  "200",
                                  "500", "1000", "5000"};
static const char *gen_industries[] = {
        "software",      "financial_services", "healthcare", "retail",
        "manufacturing", "education",          "media"};
static const char *gen_roles[] = {"marketing",  "sales",     "engineering",
                                  "operations", "executive", "analyst"};
static const char *gen_countries[] = {"US", "US", "GB", "DE", "FR",
                                      "NL", "IN", "BR", "AU", "CA"};
static const int gen_tz_mins[] = {-300, -480, 0,    60,  60,
                                  60,   330,  -180, 600, -300};
static const char *gen_stems[] = {"northwind", "globex",  "initech",
                                  "umbrella",  "acme",    "hooli",
                                  "vandelay",  "soylent", "tyrell"};

/* Users live in their account's time zone: sessions follow its working
 * day, not UTC's. */
static int64_t gen_time_midnight(int64_t ms, int tz_min)
{
        int64_t local = ms + tz_min * GEN_MIN;
        int64_t rem = ((local % GEN_DAY) + GEN_DAY) % GEN_DAY;

        return ms - rem;
}

void gen_user_id(const struct gen_model *model, long index, char *buf,
                 size_t size)
{
        long long user = index - model->campaigns;

        snprintf(buf, size, "u-%03lld-%04lld",
                 user / model->users_per_campaign + 1,
                 user % model->users_per_campaign + 1);
}

long gen_user_campaign(const struct gen_model *model, long index)
{
        return (long)((index - model->campaigns) / model->users_per_campaign);
}

bool gen_campaign_poor(const struct gen_model *model, long campaign)
{
        return campaign >= model->campaigns - model->poor;
}

static void gen_event_attr(struct gen_event *event, const char *key,
                           const char *str)
{
        if (event->attr_cnt < GEN_ATTRS_MAX) {
                event->attr_keys[event->attr_cnt] = key;
                event->attr_values[event->attr_cnt++] = str;
        }
}

/* Firmographics come from the account, so colleagues agree on them; the
 * role is the user's own. */
static void gen_user_signup(const struct gen_model *model,
                            struct gen_entity *entity, long index,
                            struct gen_event *event)
{
        uint64_t rng = gen_rng_seed(model, 3, (uint64_t)entity->account);
        const char *country = GEN_PICK(&rng, gen_countries);

        snprintf(event->attribution, sizeof(event->attribution), "c-%03ld",
                 gen_user_campaign(model, index) + 1);
        snprintf(event->domain, sizeof(event->domain), "%s-%04d.example.com",
                 GEN_PICK(&rng, gen_stems), entity->account);
        event->type = "trial_started";
        event->campaign_id = event->attribution;
        gen_event_attr(event, "company_size", GEN_PICK(&rng, gen_sizes));
        gen_event_attr(event, "industry", GEN_PICK(&rng, gen_industries));
        gen_event_attr(event, "role", GEN_PICK(&entity->rng, gen_roles));
        gen_event_attr(event, "country", country);
        gen_event_attr(event, "email_domain", event->domain);
}

static void gen_user_activity(struct gen_entity *entity,
                              struct gen_event *event)
{
        uint64_t *rng = &entity->rng;
        int activity = gen_rng_pick(rng, gen_activity_weights,
                                    (int)GEN_COUNT(gen_activity_weights));
        /* Most work happens in the product the user came for. */
        const char *product = gen_rng_unit(rng) < 0.7
                                      ? gen_products[entity->product]
                                      : GEN_PICK(rng, gen_products);
        const int *weights =
                gen_page_weights[entity->behaviour == GEN_CONVERTED];

        event->type = gen_activities[activity];
        if (activity == 0 || activity == 2)
                event->product = product;
        if (activity == 1)
                gen_event_attr(
                        event, "page_class",
                        gen_pages[gen_rng_pick(rng, weights,
                                               (int)GEN_COUNT(gen_pages))]);
        if (activity == 2) /* the share of the video watched */
                event->value = gen_rng_range(rng, 5, 101) / 100.0;
}

/* A returning user's gap: 4-5 days without a single event, back on a
 * working morning. The morning of the fourth day after, or of the fifth if
 * that one comes too soon. */
static void gen_user_pause(struct gen_entity *entity, int64_t now_ms)
{
        uint64_t *rng = &entity->rng;
        int64_t back = gen_time_midnight(now_ms + 4 * GEN_DAY, entity->tz_min) +
                       gen_rng_range(rng, 7 * GEN_HOUR, 12 * GEN_HOUR);

        if (back - now_ms < 4 * GEN_DAY)
                back += GEN_DAY;
        entity->pause_ms = now_ms;
        entity->until_ms = GEN_NEVER;
        entity->day_left = (uint8_t)gen_rng_range(rng, 2, 5);
        entity->next_ms = back;
        entity->phase = GEN_PHASE_LOGIN;
}

/* A fading user logs in once a day from now on, 20-28h apart. Those
 * logins are all the user's dice decide from here, so a copy of its PRNG
 * tells when E will fall below the drop share of its peak. Unless that is
 * a day or more before the end, the user stays active instead: a fade the
 * processor might not see is no truth. */
static void gen_user_fade(struct gen_model *model, struct gen_entity *entity,
                          int64_t now_ms)
{
        uint64_t rng = entity->rng;
        int64_t by_ms = model->end_ms - GEN_DAY, at_ms = now_ms, next_ms;
        double e = entity->points_e;
        int64_t drop_ms = 0;

        while (!drop_ms && at_ms < by_ms) {
                next_ms = at_ms +
                          gen_rng_range(&rng, 20 * GEN_HOUR, 28 * GEN_HOUR);
                drop_ms = gen_drop_time(e, entity->peak_e, at_ms,
                                        next_ms < by_ms ? next_ms : by_ms);
                e = gen_decay(e, next_ms - at_ms) + 1;
                at_ms = next_ms;
        }
        if (!drop_ms) {
                model->behaviours[GEN_FADING]--;
                model->behaviours[GEN_ACTIVE]++;
                entity->behaviour = GEN_ACTIVE;
                entity->until_ms = GEN_NEVER;
                entity->phase = GEN_PHASE_LOGIN;
                return;
        }
        entity->pause_ms = now_ms;
        entity->phase = GEN_PHASE_PING;
        entity->next_ms = now_ms + gen_rng_range(&entity->rng, 20 * GEN_HOUR,
                                                 28 * GEN_HOUR);
}

/* Picks the next session: a few per working day, fewer at weekends, never
 * later than GEN_GAP_MAX after the last event. Past until_ms, the user's
 * behaviour decides what comes instead. */
static void gen_user_plan(struct gen_model *model, struct gen_entity *entity,
                          int64_t now_ms)
{
        uint64_t *rng = &entity->rng;
        int64_t midnight = gen_time_midnight(now_ms, entity->tz_min);
        int64_t next_ms = 0, day;
        bool weekend;

        if (entity->day_left > 0) {
                next_ms = now_ms + gen_rng_range(rng, GEN_HOUR, 5 * GEN_HOUR);
                if (next_ms >= midnight + 22 * GEN_HOUR)
                        next_ms = 0;
        }
        if (!next_ms) {
                midnight += GEN_DAY;
                /* 1970-01-01 was a Thursday. */
                day = (midnight + entity->tz_min * GEN_MIN) / GEN_DAY;
                weekend = (day + 4) % 7 == 0 || (day + 4) % 7 == 6;
                entity->day_left = (uint8_t)gen_rng_range(rng, weekend ? 1 : 2,
                                                          weekend ? 3 : 5);
                next_ms = midnight +
                          gen_rng_range(rng, (weekend ? 9 : 7) * GEN_HOUR,
                                        (weekend ? 17 : 12) * GEN_HOUR);
        }
        if (next_ms - now_ms > GEN_GAP_MAX)
                next_ms =
                        now_ms + GEN_GAP_MAX - gen_rng_range(rng, 0, GEN_HOUR);
        entity->next_ms = next_ms;
        entity->phase = GEN_PHASE_LOGIN;
        if (next_ms < entity->until_ms)
                return;
        switch (entity->behaviour) {
        case GEN_CONVERTED:
                entity->phase = GEN_PHASE_CONVERT;
                break;
        case GEN_RETURNING:
                gen_user_pause(entity, now_ms);
                break;
        case GEN_FADING:
                gen_user_fade(model, entity, now_ms);
                break;
        default:
                entity->pause_ms = now_ms;
                entity->phase = GEN_PHASE_DONE;
                break;
        }
}

/* Decides the user's event due now and schedules the one after it. */
static void gen_user_next(struct gen_model *model, struct gen_entity *entity,
                          long index, struct gen_event *event)
{
        uint64_t *rng = &entity->rng;
        int64_t now_ms = entity->next_ms;

        gen_user_id(model, index, event->key, sizeof(event->key));
        snprintf(event->event_id, sizeof(event->event_id), "e-%s-%" PRIu32,
                 event->key, ++entity->seq);
        snprintf(event->account_id, sizeof(event->account_id), "a-%04d",
                 entity->account);
        event->ms = now_ms;
        if (entity->seq == 1)
                gen_user_signup(model, entity, index, event);
        else if (entity->phase == GEN_PHASE_LOGIN ||
                 entity->phase == GEN_PHASE_PING)
                event->type = "login";
        else if (entity->phase == GEN_PHASE_ACT)
                gen_user_activity(entity, event);
        else {
                event->type = "converted";
                event->product = gen_products[entity->product];
        }
        if (entity->pause_ms && entity->behaviour == GEN_RETURNING &&
            !entity->return_ms)
                entity->return_ms = now_ms;
        gen_user_score(entity, event);
        entity->last_ms = now_ms;

        if (entity->seq == 1) {
                entity->day_left = (uint8_t)gen_rng_range(rng, 1, 3);
                entity->phase = GEN_PHASE_LOGIN;
                entity->next_ms =
                        now_ms + gen_rng_range(rng, GEN_MIN, 10 * GEN_MIN);
        } else if (entity->phase == GEN_PHASE_LOGIN) {
                /* Four activities at most keep a quiet user's points below
                 * activation, whatever they are. */
                entity->session_left = (uint8_t)gen_rng_range(
                        rng, 2, entity->behaviour == GEN_QUIET ? 5 : 9);
                entity->day_left -= entity->day_left > 0;
                entity->phase = GEN_PHASE_ACT;
                entity->next_ms =
                        now_ms + gen_rng_range(rng, 20000, 5 * GEN_MIN);
        } else if (entity->phase == GEN_PHASE_ACT) {
                if (--entity->session_left > 0)
                        entity->next_ms = now_ms + gen_rng_range(rng, 30000,
                                                                 12 * GEN_MIN);
                else
                        gen_user_plan(model, entity, now_ms);
        } else if (entity->phase == GEN_PHASE_PING) {
                entity->next_ms = now_ms + gen_rng_range(rng, 20 * GEN_HOUR,
                                                         28 * GEN_HOUR);
        } else {
                entity->converted = true;
                entity->phase = GEN_PHASE_DONE;
        }
        if (entity->phase == GEN_PHASE_DONE || entity->next_ms >= model->end_ms)
                entity->next_ms = GEN_NEVER;
}

/* A LAUNCHED event, then day d's SPEND the minute before the day ends. */
static void gen_campaign_next(const struct gen_model *model,
                              struct gen_entity *entity, long index,
                              struct gen_event *event)
{
        bool launch = entity->seq++ == 0;
        double amount = gen_rng_range(&entity->rng, 10000, 100001) / 100.0;
        const char *channel = GEN_PICK(&entity->rng, gen_channels);

        snprintf(event->key, sizeof(event->key), "c-%03ld", index + 1);
        snprintf(event->event_id, sizeof(event->event_id), "ce-%s-%" PRIu32,
                 event->key, entity->seq);
        snprintf(event->label, sizeof(event->label), "Campaign %ld", index + 1);
        event->campaign = true;
        event->launch = launch;
        event->ms = entity->next_ms;
        if (launch) {
                event->name = event->label;
                event->channel = channel;
                event->target = GEN_TARGET;
        } else {
                event->amount = amount;
        }
        entity->last_ms = entity->next_ms;
        entity->next_ms =
                entity->seq > model->days
                        ? GEN_NEVER
                        : model->start_ms + entity->seq * GEN_DAY - GEN_MIN;
}

/* Ties go to the lower index, so campaigns come before their users. */
static bool gen_heap_less(const struct gen_model *model, int32_t a, int32_t b)
{
        int64_t a_ms = model->entities[a].next_ms;
        int64_t b_ms = model->entities[b].next_ms;

        return a_ms < b_ms || (a_ms == b_ms && a < b);
}

static void gen_heap_sift_down(struct gen_model *model, long pos)
{
        int32_t *heap = model->heap, tmp;
        long child;

        while ((child = 2 * pos + 1) < model->heap_cnt) {
                if (child + 1 < model->heap_cnt &&
                    gen_heap_less(model, heap[child + 1], heap[child]))
                        child++;
                if (!gen_heap_less(model, heap[child], heap[pos]))
                        break;
                tmp = heap[pos];
                heap[pos] = heap[child];
                heap[child] = tmp;
                pos = child;
        }
}

/* Deals the campaign's users their behaviours: the mix's shares, rounded,
 * in a shuffled order. */
static void gen_campaign_mix(const struct gen_model *model, long campaign)
{
        const double *mix = gen_mixes[gen_campaign_poor(model, campaign)];
        long n = (long)model->users_per_campaign, k, j;
        struct gen_entity *users =
                &model->entities[model->campaigns + campaign * n];
        uint64_t rng = gen_rng_seed(model, 5, (uint64_t)campaign);
        double share;
        uint8_t b;

        for (k = 0; k < n; k++) {
                share = mix[0];
                for (b = 0; b + 1 < GEN_BEHAVIOURS &&
                            ((double)k + 0.5) / (double)n >= share;
                     b++)
                        share += mix[b + 1];
                users[k].behaviour = b;
        }
        for (k = n - 1; k > 0; k--) {
                j = (long)gen_rng_range(&rng, 0, k + 1);
                b = users[k].behaviour;
                users[k].behaviour = users[j].behaviour;
                users[j].behaviour = b;
        }
}

/* Draws the signup and the length of the first run of sessions. A
 * behaviour that cannot play out before the end, with the margins the
 * truth promises, becomes active. */
static void gen_user_init(struct gen_model *model, struct gen_entity *entity)
{
        uint64_t *rng = &entity->rng;
        uint64_t account_rng =
                gen_rng_seed(model, 3, (uint64_t)entity->account);
        long long window = model->signup_days < model->days ? model->signup_days
                                                            : model->days;
        int64_t day, need_ms = 0;

        /* The same draw as gen_user_signup()'s country. */
        entity->tz_min = (int16_t)gen_tz_mins[gen_rng_range(
                &account_rng, 0, GEN_COUNT(gen_countries))];
        entity->product =
                (uint8_t)gen_rng_range(rng, 0, GEN_COUNT(gen_products));

        /* People sign up during their working day. */
        day = model->start_ms + gen_rng_range(rng, 0, window) * GEN_DAY;
        entity->signup_ms = gen_time_midnight(day, entity->tz_min) +
                            gen_rng_range(rng, 8 * GEN_HOUR, 20 * GEN_HOUR);
        if (entity->signup_ms <= model->start_ms)
                entity->signup_ms += GEN_DAY;
        if (entity->signup_ms >= model->end_ms)
                entity->signup_ms = model->end_ms - GEN_HOUR;
        entity->next_ms = entity->signup_ms;
        entity->until_ms = GEN_NEVER;
        entity->min_ratio = -1;
        switch (entity->behaviour) {
        case GEN_QUIET:
                /* Disengaged at the last event + 72h, an hour before the
                 * end at the latest. */
                entity->until_ms = entity->signup_ms;
                need_ms = entity->signup_ms + 10 * GEN_MIN + GEN_SESSION_SPAN +
                          GEN_INACTIVITY + GEN_HOUR;
                break;
        case GEN_RETURNING:
                /* Back two days before the end at the latest. */
                entity->until_ms = entity->signup_ms +
                                   gen_rng_range(rng, 3 * GEN_DAY, 5 * GEN_DAY);
                need_ms = entity->until_ms + GEN_SESSION_SPAN + 7 * GEN_DAY;
                break;
        case GEN_FADING:
                /* Eleven days of logins alone at least. */
                entity->until_ms = entity->signup_ms +
                                   gen_rng_range(rng, 3 * GEN_DAY, 4 * GEN_DAY);
                need_ms = entity->until_ms + GEN_SESSION_SPAN + 11 * GEN_DAY;
                break;
        case GEN_CONVERTED:
                entity->until_ms = entity->signup_ms +
                                   gen_rng_range(rng, 2 * GEN_DAY, 6 * GEN_DAY);
                break;
        }
        if (need_ms >= model->end_ms) {
                entity->behaviour = GEN_ACTIVE;
                entity->until_ms = GEN_NEVER;
        }
        model->behaviours[entity->behaviour]++;
}

int gen_model_init(struct gen_model *model)
{
        uint64_t account_rng;
        long i, user, account_left = 0;
        int32_t account = 0;
        struct gen_entity *entity;

        model->end_ms = model->start_ms + model->days * GEN_DAY;
        model->entity_cnt =
                (long)(model->campaigns * (1 + model->users_per_campaign));
        model->entities =
                calloc((size_t)model->entity_cnt, sizeof(*model->entities));
        model->heap = calloc((size_t)model->entity_cnt, sizeof(*model->heap));
        if (!model->entities || !model->heap)
                return -1;
        account_rng = gen_rng_seed(model, 4, 0);
        for (i = 0; i < model->entity_cnt; i++) {
                entity = &model->entities[i];
                entity->rng = gen_rng_seed(model, i < model->campaigns ? 1 : 2,
                                           (uint64_t)i);
                entity->next_ms = model->start_ms;
                model->heap[i] = (int32_t)i;
                if (i < model->campaigns) {
                        if (model->no_campaign_events)
                                entity->next_ms = GEN_NEVER;
                        continue;
                }
                /* Colleagues come through the same campaign, so an account
                 * never spans two of them. */
                user = (long)(i - model->campaigns);
                if (account_left == 0 ||
                    user % model->users_per_campaign == 0) {
                        account++;
                        account_left = gen_rng_range(&account_rng, 1, 6);
                }
                account_left--;
                entity->account = account;
        }
        for (i = 0; i < model->campaigns; i++)
                gen_campaign_mix(model, i);
        for (i = model->campaigns; i < model->entity_cnt; i++)
                gen_user_init(model, &model->entities[i]);
        model->heap_cnt = model->entity_cnt;
        for (i = model->heap_cnt / 2 - 1; i >= 0; i--)
                gen_heap_sift_down(model, i);
        return 0;
}

bool gen_model_next(struct gen_model *model, struct gen_event *event)
{
        struct gen_entity *entity;
        int32_t index;

        for (;;) {
                if (model->heap_cnt == 0)
                        return false;
                index = model->heap[0];
                entity = &model->entities[index];
                if (entity->next_ms != GEN_NEVER)
                        break;
                /* a campaign that says nothing (--no-campaign-events) */
                model->heap[0] = model->heap[--model->heap_cnt];
                gen_heap_sift_down(model, 0);
        }
        memset(event, 0, sizeof(*event));
        event->value = event->target = event->amount = NAN;
        if (index < model->campaigns) {
                gen_campaign_next(model, entity, index, event);
                model->campaign_events++;
        } else {
                gen_user_next(model, entity, index, event);
                model->usage_events++;
        }
        model->last_event_ms = event->ms;
        if (entity->next_ms == GEN_NEVER)
                model->heap[0] = model->heap[--model->heap_cnt];
        gen_heap_sift_down(model, 0);
        return true;
}

void gen_model_free(struct gen_model *model)
{
        free(model->entities);
        free(model->heap);
        model->entities = NULL;
        model->heap = NULL;
}
