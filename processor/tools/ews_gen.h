/*
 * ews-gen's scenario model: campaigns, their trial users and what each does
 * when, apart from how events are encoded and produced (ews_gen.c).
 *
 * Memory is O(users): every campaign and user is a small generator state
 * with a PRNG of its own, kept in a min-heap by next event time and index.
 * Nothing else decides the order, so the same flags give the same stream.
 */
#ifndef EWS_GEN_H
#define EWS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MIN       60000LL
#define GEN_HOUR      (60 * GEN_MIN)
#define GEN_DAY       (24 * GEN_HOUR)
#define GEN_NEVER     INT64_MAX
#define GEN_ID_MAX    64
#define GEN_USERS_MAX 20000000
#define GEN_ATTRS_MAX 5
#define GEN_COUNT(a)  ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* Every campaign's target activation rate, on its LAUNCHED event. */
#define GEN_TARGET 0.4
/* The scoring model and the thresholds of the rules, as config/ews.yaml
 * sets them by default. */
#define GEN_HALF_LIFE         (7.0 * GEN_DAY)
#define GEN_ACTIVATION_POINTS 40.0
#define GEN_ACTIVATION_WINDOW (3 * GEN_DAY)
#define GEN_DROP_SHARE        0.4
#define GEN_DROP_MIN_PEAK     30.0

enum gen_behaviour {
        GEN_ACTIVE = 0,
        GEN_QUIET,
        GEN_RETURNING,
        GEN_FADING,
        GEN_CONVERTED,
        GEN_BEHAVIOURS
};

/* One campaign or user; small, because there is one per user. */
struct gen_entity {
        uint64_t rng;
        int64_t next_ms;
        int64_t until_ms; /* end of the user's current run of sessions */
        int64_t signup_ms;
        int64_t last_ms;
        /* Last event before a gap (quiet, returning) or before login-only
         * days (fading); the first event back (returning). 0: none. */
        int64_t pause_ms;
        int64_t return_ms;
        int64_t drop_ms; /* E first fell below 0.4 of its running peak */
        double points_e; /* E at last_ms */
        double peak_e;
        double min_ratio; /* of E to its running peak; < 0 while unknown */
        uint32_t seq;     /* events emitted, numbers the event ids */
        int32_t account;
        int16_t tz_min;
        uint8_t phase, behaviour, session_left, day_left, product;
        bool converted, activated;
};

/* One event as the model decided it, for the encoder; NULL strings and
 * NAN numbers are nulls. */
struct gen_event {
        int64_t ms;
        bool campaign;    /* campaign-events, else product-usage */
        bool launch;      /* campaign: LAUNCHED, else SPEND */
        const char *type; /* usage: event_type */
        const char *product;
        const char *campaign_id; /* usage: attribution */
        const char *name, *channel;
        double value, target, amount;
        int attr_cnt;
        const char *attr_keys[GEN_ATTRS_MAX];
        const char *attr_values[GEN_ATTRS_MAX];
        char key[GEN_ID_MAX]; /* user_id or campaign_id */
        char event_id[2 * GEN_ID_MAX];
        char account_id[32];
        char attribution[GEN_ID_MAX];
        char domain[GEN_ID_MAX];
        char label[32];
};

struct gen_model {
        long long seed, campaigns, poor, users_per_campaign, days, signup_days,
                start_ms;
        int64_t end_ms;  /* simulation end, exclusive */
        long entity_cnt; /* campaigns first, then users */
        long heap_cnt;
        struct gen_entity *entities;
        int32_t *heap;
        int64_t usage_events, campaign_events, last_event_ms;
        long behaviours[GEN_BEHAVIOURS];
        bool no_campaign_events; /* campaigns known only by attribution */
};

extern const char *const gen_behaviour_names[GEN_BEHAVIOURS];

/* Allocates and seeds the scenario the fields up to start_ms describe;
 * -1 when out of memory. */
int gen_model_init(struct gen_model *model);

/* Fills event with the next event in event-time order; false at the end. */
bool gen_model_next(struct gen_model *model, struct gen_event *event);

/* The truth as JSON lines: campaigns, users, then a summary. */
int gen_model_truth_write(const struct gen_model *model, const char *path);

void gen_model_free(struct gen_model *model);

/* ews_gen_rng.c: the next number of a stream; the first state of the
 * stream of entity index of a kind; a double in [0, 1); an integer in
 * [lo, hi); an index drawn with the given weights. */
uint64_t gen_rng_next(uint64_t *rng);
uint64_t gen_rng_seed(const struct gen_model *model, uint64_t kind,
                      uint64_t index);
double gen_rng_unit(uint64_t *rng);
int64_t gen_rng_range(uint64_t *rng, int64_t lo, int64_t hi);
int gen_rng_pick(uint64_t *rng, const int *weights, int weight_cnt);

/* ews_gen_disorder.c: redeliveries and late arrivals of usage events, as
 * producers cause them. Each usage event, by dice of a stream of its own
 * (the model's stream is the same with or without them), is held back by
 * up to late_max_ms of event time (a late arrival: produced once the
 * stream reaches its time plus the delay), and produced a second time with
 * the same event id up to duplicate_max_ms later (a redelivery). What waits
 * is kept encoded, in a min-heap by release time and then arrival. */
struct gen_held {
        int64_t release_ms;
        uint64_t order;
        int64_t ms; /* the event's time: the message's timestamp */
        size_t key_len, len;
        char *data; /* the key, then the value; the taker frees it */
};

struct gen_disorder {
        double duplicates, late; /* shares of the usage events, 0..1 */
        long long duplicate_max_ms, late_max_ms;
        uint64_t rng, order;
        struct gen_held *heap;
        size_t cnt, cap;
        long long duplicate_cnt, late_cnt;
};

void gen_disorder_init(struct gen_disorder *disorder,
                       const struct gen_model *model);
/* The dice for a usage event at ms: when it is late, *late_ms is when to
 * produce it (else ms); when it is redelivered, *copy_ms is when to produce
 * the copy (else -1). */
void gen_disorder_roll(struct gen_disorder *disorder, int64_t ms,
                       int64_t *late_ms, int64_t *copy_ms);
/* Keeps a copy of the message until release_ms; -1 when out of memory. */
int gen_disorder_hold(struct gen_disorder *disorder, int64_t release_ms,
                      int64_t ms, const char *key, const void *value,
                      size_t len);
/* Takes the first message due by until_ms into *held; false when none. */
bool gen_disorder_take(struct gen_disorder *disorder, int64_t until_ms,
                       struct gen_held *held);
void gen_disorder_free(struct gen_disorder *disorder);

/* Shared by the model and the truth (ews_gen_truth.c). */
void gen_user_id(const struct gen_model *model, long index, char *buf,
                 size_t size);
long gen_user_campaign(const struct gen_model *model, long index);
bool gen_campaign_poor(const struct gen_model *model, long campaign);
/* points decayed over elapsed_ms by the default half-life. */
double gen_decay(double points, int64_t elapsed_ms);
/* Folds the event into the user's E, as the processor would. */
void gen_user_score(struct gen_entity *entity, const struct gen_event *event);
/* When E, decaying from e at last_ms, falls below the drop share of the
 * peak, if that peak counts and it happens by until_ms; else 0. */
int64_t gen_drop_time(double e, double peak, int64_t last_ms, int64_t until_ms);

#endif
