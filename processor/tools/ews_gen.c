/*
 * ews-gen: a seeded synthetic workload of trial cohorts for EWS.
 *
 * Campaigns launch and spend daily; each attracts trial users who stay quiet,
 * stay active or convert. Events of both topics are produced in global
 * event-time order as raw Avro binary, as the processor reads them.
 *
 * Memory is O(users): every campaign and user is a small generator state
 * with a PRNG of its own, kept in a min-heap by next event time and index.
 * Nothing else decides the order, so the same flags give the same stream.
 */
#include <avro.h>
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_MIN   60000LL
#define GEN_HOUR  (60 * GEN_MIN)
#define GEN_DAY   (24 * GEN_HOUR)
#define GEN_NEVER INT64_MAX
/* USER_DISENGAGED fires after 72h of event time: an active user must never
 * come near it, not even over a weekend, so no gap of theirs exceeds this. */
#define GEN_GAP_MAX      (29 * GEN_HOUR)
#define GEN_ID_MAX       64
#define GEN_USERS_MAX    20000000
#define GEN_OPT_NUM      256
#define GEN_OPT_STR      512
#define GEN_COUNT(a)     ((int64_t)(sizeof(a) / sizeof((a)[0])))
#define GEN_PICK(rng, a) ((a)[gen_rng_range((rng), 0, GEN_COUNT(a))])

enum gen_behaviour {
        GEN_ACTIVE = 0,
        GEN_QUIET,
        GEN_CONVERTED
};

/* What a user's next event is; the first one is always trial_started. */
enum gen_phase {
        GEN_PHASE_LOGIN = 0,
        GEN_PHASE_ACT,
        GEN_PHASE_CONVERT,
        GEN_PHASE_DONE
};

static const char *gen_behaviours[] = {"active", "quiet", "converted"};
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

/* One campaign or user; small, because there is one per user. */
struct gen_entity {
        uint64_t rng;
        int64_t next_ms;
        int64_t until_ms; /* end of the user's active period */
        int64_t signup_ms;
        int64_t last_ms;
        uint32_t seq; /* events emitted, numbers the event ids */
        int32_t account;
        int16_t tz_min;
        uint8_t phase, behaviour, session_left, day_left, product;
        bool converted;
};

struct gen_topic {
        const char *name;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        rd_kafka_topic_t *rkt;
        int64_t events;
};

struct gen {
        long long seed, campaigns, poor, users_per_campaign, days, signup_days,
                start_ms;
        bool count_only;
        int64_t end_ms;  /* simulation end, exclusive */
        long entity_cnt; /* campaigns first, then users */
        long heap_cnt;
        struct gen_entity *entities;
        int32_t *heap;
        struct gen_topic usage, campaign;
        avro_writer_t writer;
        char buf[4096];
        rd_kafka_t *rk;
        int64_t last_event_ms, failed;
        long quiet, converted;
};

static uint64_t gen_rng_next(uint64_t *rng)
{
        uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Kind and index go through the mixer, not onto the seed, so that streams
 * of neighbouring seeds or entities do not overlap. */
static uint64_t gen_rng_seed(const struct gen *gen, uint64_t kind,
                             uint64_t index)
{
        uint64_t rng = (uint64_t)gen->seed;
        uint64_t mixed = gen_rng_next(&rng) ^ (kind << 56) ^ index;

        return gen_rng_next(&mixed);
}

static double gen_rng_unit(uint64_t *rng)
{
        return (double)(gen_rng_next(rng) >> 11) * 0x1.0p-53;
}

static int64_t gen_rng_range(uint64_t *rng, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(gen_rng_unit(rng) * (double)(hi - lo));
}

static int gen_rng_pick(uint64_t *rng, const int *weights, int weight_cnt)
{
        int total = 0, i, r;

        for (i = 0; i < weight_cnt; i++)
                total += weights[i];
        r = (int)gen_rng_range(rng, 0, total);
        for (i = 0; i < weight_cnt - 1 && r >= weights[i]; i++)
                r -= weights[i];
        return i;
}

/* Users live in their account's time zone: sessions follow its working
 * day, not UTC's. */
static int64_t gen_time_midnight(int64_t ms, int tz_min)
{
        int64_t local = ms + tz_min * GEN_MIN;
        int64_t rem = ((local % GEN_DAY) + GEN_DAY) % GEN_DAY;

        return ms - rem;
}

static void gen_user_id(const struct gen *gen, long index, char *buf,
                        size_t size)
{
        long long user = index - gen->campaigns;

        snprintf(buf, size, "u-%03lld-%04lld",
                 user / gen->users_per_campaign + 1,
                 user % gen->users_per_campaign + 1);
}

static long gen_user_campaign(const struct gen *gen, long index)
{
        return (long)((index - gen->campaigns) / gen->users_per_campaign);
}

/* Optional fields are ["null", T] in every schema; NULL means null. */
static int gen_put_str(avro_value_t *record, const char *name, const char *str)
{
        avro_value_t field, branch;

        if (avro_value_get_by_name(record, name, &field, NULL))
                return -1;
        if (avro_value_get_type(&field) != AVRO_UNION)
                return avro_value_set_string(&field, str);
        if (!str)
                return avro_value_set_branch(&field, 0, &branch) ||
                       avro_value_set_null(&branch);
        return avro_value_set_branch(&field, 1, &branch) ||
               avro_value_set_string(&branch, str);
}

/* Every double in the schemas is optional; NAN means null. */
static int gen_put_double(avro_value_t *record, const char *name, double num)
{
        avro_value_t field, branch;

        return avro_value_get_by_name(record, name, &field, NULL) ||
               avro_value_set_branch(&field, isnan(num) ? 0 : 1, &branch) ||
               (isnan(num) ? avro_value_set_null(&branch)
                           : avro_value_set_double(&branch, num));
}

static int gen_put_long(avro_value_t *record, const char *name, int64_t num)
{
        avro_value_t field;

        return avro_value_get_by_name(record, name, &field, NULL) ||
               avro_value_set_long(&field, num);
}

static int gen_put_attr(avro_value_t *record, const char *key, const char *str)
{
        avro_value_t map, elem;

        return avro_value_get_by_name(record, "attributes", &map, NULL) ||
               avro_value_add(&map, key, &elem, NULL, NULL) ||
               avro_value_set_string(&elem, str);
}

static int gen_produce(struct gen *gen, struct gen_topic *topic,
                       const char *key, int64_t ms)
{
        rd_kafka_resp_err_t err;
        size_t len;

        avro_writer_reset(gen->writer);
        if (avro_value_write(gen->writer, &topic->value)) {
                fprintf(stderr, "ews-gen: encode %s: %s\n", key,
                        avro_strerror());
                return -1;
        }
        len = (size_t)avro_writer_tell(gen->writer);
        topic->events++;
        gen->last_event_ms = ms;
        if (gen->count_only)
                return 0;
        while ((err = rd_kafka_producev(
                        gen->rk, RD_KAFKA_V_RKT(topic->rkt),
                        RD_KAFKA_V_KEY(key, strlen(key)),
                        RD_KAFKA_V_VALUE(gen->buf, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_TIMESTAMP(ms), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(gen->rk, 100);
        if (err) {
                fprintf(stderr, "ews-gen: produce %s: %s\n", key,
                        rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_poll(gen->rk, 0);
        return 0;
}

/* Firmographics come from the account, so colleagues agree on them; the
 * role is the user's own. */
static int gen_user_signup(struct gen *gen, struct gen_entity *entity,
                           long index)
{
        avro_value_t *value = &gen->usage.value;
        uint64_t rng = gen_rng_seed(gen, 3, (uint64_t)entity->account);
        const char *country = GEN_PICK(&rng, gen_countries);
        char campaign_id[GEN_ID_MAX], domain[GEN_ID_MAX];

        snprintf(campaign_id, sizeof(campaign_id), "c-%03ld",
                 gen_user_campaign(gen, index) + 1);
        snprintf(domain, sizeof(domain), "%s-%04d.example.com",
                 GEN_PICK(&rng, gen_stems), entity->account);
        return gen_put_str(value, "event_type", "trial_started") ||
               gen_put_str(value, "campaign_id", campaign_id) ||
               gen_put_attr(value, "company_size", GEN_PICK(&rng, gen_sizes)) ||
               gen_put_attr(value, "industry",
                            GEN_PICK(&rng, gen_industries)) ||
               gen_put_attr(value, "role", GEN_PICK(&entity->rng, gen_roles)) ||
               gen_put_attr(value, "country", country) ||
               gen_put_attr(value, "email_domain", domain);
}

static int gen_user_activity(struct gen *gen, struct gen_entity *entity)
{
        avro_value_t *value = &gen->usage.value;
        uint64_t *rng = &entity->rng;
        int activity = gen_rng_pick(rng, gen_activity_weights,
                                    (int)GEN_COUNT(gen_activity_weights));
        /* Most work happens in the product the user came for. */
        const char *product = gen_rng_unit(rng) < 0.7
                                      ? gen_products[entity->product]
                                      : GEN_PICK(rng, gen_products);
        const int *weights =
                gen_page_weights[entity->behaviour == GEN_CONVERTED];
        int err = gen_put_str(value, "event_type", gen_activities[activity]);

        if (activity == 0 || activity == 2)
                err = err || gen_put_str(value, "product", product);
        if (activity == 1)
                err = err || gen_put_attr(value, "page_class",
                                          gen_pages[gen_rng_pick(
                                                  rng, weights,
                                                  (int)GEN_COUNT(gen_pages))]);
        if (activity == 2) /* the share of the video watched */
                err = err || gen_put_double(value, "value",
                                            gen_rng_range(rng, 5, 101) / 100.0);
        return err;
}

/* Picks the next session: a few per working day, fewer at weekends, never
 * later than GEN_GAP_MAX after the last event. */
static void gen_user_plan(struct gen_entity *entity, int64_t now_ms)
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
        if (next_ms < entity->until_ms)
                entity->phase = GEN_PHASE_LOGIN;
        else if (entity->behaviour == GEN_CONVERTED)
                entity->phase = GEN_PHASE_CONVERT;
        else
                entity->phase = GEN_PHASE_DONE;
}

/* Emits the user's event due now and schedules the one after it. */
static int gen_user_next(struct gen *gen, struct gen_entity *entity, long index)
{
        avro_value_t *value = &gen->usage.value;
        uint64_t *rng = &entity->rng;
        int64_t now_ms = entity->next_ms;
        char user_id[GEN_ID_MAX], event_id[2 * GEN_ID_MAX], account_id[32];
        int err;

        gen_user_id(gen, index, user_id, sizeof(user_id));
        snprintf(event_id, sizeof(event_id), "e-%s-%" PRIu32, user_id,
                 ++entity->seq);
        snprintf(account_id, sizeof(account_id), "a-%04d", entity->account);
        avro_value_reset(value);
        err = gen_put_str(value, "event_id", event_id) ||
              gen_put_str(value, "user_id", user_id) ||
              gen_put_str(value, "account_id", account_id) ||
              gen_put_str(value, "product", NULL) ||
              gen_put_double(value, "value", NAN) ||
              gen_put_str(value, "campaign_id", NULL) ||
              gen_put_long(value, "occurred_at", now_ms);

        if (entity->seq == 1) {
                err = err || gen_user_signup(gen, entity, index);
                entity->day_left = (uint8_t)gen_rng_range(rng, 1, 3);
                entity->phase = GEN_PHASE_LOGIN;
                entity->next_ms =
                        now_ms + gen_rng_range(rng, GEN_MIN, 10 * GEN_MIN);
        } else if (entity->phase == GEN_PHASE_LOGIN) {
                err = err || gen_put_str(value, "event_type", "login");
                entity->session_left = (uint8_t)gen_rng_range(rng, 2, 9);
                entity->day_left -= entity->day_left > 0;
                entity->phase = GEN_PHASE_ACT;
                entity->next_ms =
                        now_ms + gen_rng_range(rng, 20000, 5 * GEN_MIN);
        } else if (entity->phase == GEN_PHASE_ACT) {
                err = err || gen_user_activity(gen, entity);
                if (--entity->session_left > 0)
                        entity->next_ms = now_ms + gen_rng_range(rng, 30000,
                                                                 12 * GEN_MIN);
                else
                        gen_user_plan(entity, now_ms);
        } else {
                err = err || gen_put_str(value, "event_type", "converted") ||
                      gen_put_str(value, "product",
                                  gen_products[entity->product]);
                entity->converted = true;
                entity->phase = GEN_PHASE_DONE;
        }
        if (err) {
                fprintf(stderr, "ews-gen: %s: %s\n", user_id, avro_strerror());
                return -1;
        }
        if (gen_produce(gen, &gen->usage, user_id, now_ms))
                return -1;
        entity->last_ms = now_ms;
        if (entity->phase == GEN_PHASE_DONE || entity->next_ms >= gen->end_ms)
                entity->next_ms = GEN_NEVER;
        return 0;
}

/* A LAUNCHED event, then day d's SPEND the minute before the day ends. */
static int gen_campaign_next(struct gen *gen, struct gen_entity *entity,
                             long index)
{
        avro_value_t *value = &gen->campaign.value;
        bool launch = entity->seq++ == 0;
        char campaign_id[GEN_ID_MAX], event_id[2 * GEN_ID_MAX], name[32];
        double amount = gen_rng_range(&entity->rng, 10000, 100001) / 100.0;
        const char *channel = GEN_PICK(&entity->rng, gen_channels);
        avro_value_t field;

        snprintf(campaign_id, sizeof(campaign_id), "c-%03ld", index + 1);
        snprintf(event_id, sizeof(event_id), "ce-%s-%" PRIu32, campaign_id,
                 entity->seq);
        snprintf(name, sizeof(name), "Campaign %ld", index + 1);
        avro_value_reset(value);
        if (gen_put_str(value, "event_id", event_id) ||
            gen_put_str(value, "campaign_id", campaign_id) ||
            avro_value_get_by_name(value, "type", &field, NULL) ||
            avro_value_set_enum(&field, launch ? 0 : 1) ||
            gen_put_str(value, "name", launch ? name : NULL) ||
            gen_put_str(value, "channel", launch ? channel : NULL) ||
            gen_put_double(value, "target_activation_rate",
                           launch ? 0.4 : NAN) ||
            gen_put_double(value, "amount", launch ? NAN : amount) ||
            gen_put_long(value, "occurred_at", entity->next_ms)) {
                fprintf(stderr, "ews-gen: %s: %s\n", campaign_id,
                        avro_strerror());
                return -1;
        }
        if (gen_produce(gen, &gen->campaign, campaign_id, entity->next_ms))
                return -1;
        entity->last_ms = entity->next_ms;
        entity->next_ms =
                entity->seq > gen->days
                        ? GEN_NEVER
                        : gen->start_ms + entity->seq * GEN_DAY - GEN_MIN;
        return 0;
}

/* Ties go to the lower index, so campaigns come before their users. */
static bool gen_heap_less(const struct gen *gen, int32_t a, int32_t b)
{
        int64_t a_ms = gen->entities[a].next_ms;
        int64_t b_ms = gen->entities[b].next_ms;

        return a_ms < b_ms || (a_ms == b_ms && a < b);
}

static void gen_heap_sift_down(struct gen *gen, long pos)
{
        int32_t *heap = gen->heap, tmp;
        long child;

        while ((child = 2 * pos + 1) < gen->heap_cnt) {
                if (child + 1 < gen->heap_cnt &&
                    gen_heap_less(gen, heap[child + 1], heap[child]))
                        child++;
                if (!gen_heap_less(gen, heap[child], heap[pos]))
                        break;
                tmp = heap[pos];
                heap[pos] = heap[child];
                heap[child] = tmp;
                pos = child;
        }
}

static void gen_user_init(struct gen *gen, struct gen_entity *entity, bool poor)
{
        uint64_t *rng = &entity->rng;
        uint64_t account_rng = gen_rng_seed(gen, 3, (uint64_t)entity->account);
        long long window =
                gen->signup_days < gen->days ? gen->signup_days : gen->days;
        double r = gen_rng_unit(rng);
        int64_t day;

        /* The same draw as gen_user_signup()'s country. */
        entity->tz_min = (int16_t)gen_tz_mins[gen_rng_range(
                &account_rng, 0, GEN_COUNT(gen_countries))];
        if (poor)
                entity->behaviour = r < 0.8 ? GEN_QUIET : GEN_ACTIVE;
        else
                entity->behaviour = r < 0.15   ? GEN_QUIET
                                    : r < 0.30 ? GEN_CONVERTED
                                               : GEN_ACTIVE;
        gen->quiet += entity->behaviour == GEN_QUIET;
        gen->converted += entity->behaviour == GEN_CONVERTED;
        entity->product =
                (uint8_t)gen_rng_range(rng, 0, GEN_COUNT(gen_products));

        /* People sign up during their working day. */
        day = gen->start_ms + gen_rng_range(rng, 0, window) * GEN_DAY;
        entity->signup_ms = gen_time_midnight(day, entity->tz_min) +
                            gen_rng_range(rng, 8 * GEN_HOUR, 20 * GEN_HOUR);
        if (entity->signup_ms <= gen->start_ms)
                entity->signup_ms += GEN_DAY;
        if (entity->signup_ms >= gen->end_ms)
                entity->signup_ms = gen->end_ms - GEN_HOUR;
        entity->next_ms = entity->signup_ms;
        entity->until_ms = GEN_NEVER;
        if (entity->behaviour == GEN_QUIET)
                entity->until_ms = entity->signup_ms +
                                   gen_rng_range(rng, GEN_DAY, 2 * GEN_DAY);
        if (entity->behaviour == GEN_CONVERTED)
                entity->until_ms = entity->signup_ms +
                                   gen_rng_range(rng, 2 * GEN_DAY, 6 * GEN_DAY);
}

static void gen_entities_init(struct gen *gen)
{
        uint64_t account_rng = gen_rng_seed(gen, 4, 0);
        long i, user, account_left = 0;
        int32_t account = 0;
        struct gen_entity *entity;

        for (i = 0; i < gen->entity_cnt; i++) {
                entity = &gen->entities[i];
                entity->rng = gen_rng_seed(gen, i < gen->campaigns ? 1 : 2,
                                           (uint64_t)i);
                entity->next_ms = gen->start_ms;
                gen->heap[i] = (int32_t)i;
                if (i < gen->campaigns)
                        continue;
                /* Colleagues come through the same campaign, so an account
                 * never spans two of them. */
                user = (long)(i - gen->campaigns);
                if (account_left == 0 || user % gen->users_per_campaign == 0) {
                        account++;
                        account_left = gen_rng_range(&account_rng, 1, 6);
                }
                account_left--;
                entity->account = account;
                gen_user_init(gen, entity,
                              gen_user_campaign(gen, i) >=
                                      gen->campaigns - gen->poor);
        }
        gen->heap_cnt = gen->entity_cnt;
        for (i = gen->heap_cnt / 2 - 1; i >= 0; i--)
                gen_heap_sift_down(gen, i);
}

static int gen_run(struct gen *gen)
{
        struct gen_entity *entity;
        int32_t index;
        int err;

        while (gen->heap_cnt > 0) {
                index = gen->heap[0];
                entity = &gen->entities[index];
                if (index < gen->campaigns)
                        err = gen_campaign_next(gen, entity, index);
                else
                        err = gen_user_next(gen, entity, index);
                if (err)
                        return -1;
                if (entity->next_ms == GEN_NEVER)
                        gen->heap[0] = gen->heap[--gen->heap_cnt];
                gen_heap_sift_down(gen, 0);
        }
        return 0;
}

static int gen_truth_write(const struct gen *gen, const char *path)
{
        const struct gen_entity *entity;
        char user_id[GEN_ID_MAX], converted[32];
        FILE *fp = fopen(path, "w");
        long i;

        if (!fp)
                goto fail;
        for (i = 0; i < gen->campaigns; i++)
                fprintf(fp,
                        "{\"kind\":\"campaign\",\"id\":\"c-%03ld\","
                        "\"poor\":%s,\"target\":0.4}\n",
                        i + 1,
                        i >= gen->campaigns - gen->poor ? "true" : "false");
        for (; i < gen->entity_cnt; i++) {
                entity = &gen->entities[i];
                gen_user_id(gen, i, user_id, sizeof(user_id));
                snprintf(converted, sizeof(converted), "%" PRId64,
                         entity->last_ms);
                fprintf(fp,
                        "{\"kind\":\"user\",\"id\":\"%s\","
                        "\"campaign\":\"c-%03ld\",\"account\":\"a-%04d\","
                        "\"behaviour\":\"%s\",\"signup_ms\":%" PRId64
                        ",\"last_event_ms\":%" PRId64 ",\"converted_ms\":%s}\n",
                        user_id, gen_user_campaign(gen, i) + 1, entity->account,
                        gen_behaviours[entity->behaviour], entity->signup_ms,
                        entity->last_ms,
                        entity->converted ? converted : "null");
        }
        fprintf(fp,
                "{\"kind\":\"summary\",\"events\":%" PRId64
                ",\"usage_events\":%" PRId64 ",\"campaign_events\":%" PRId64
                ",\"users\":%lld,\"campaigns\":%lld,\"end_ms\":%" PRId64 "}\n",
                gen->usage.events + gen->campaign.events, gen->usage.events,
                gen->campaign.events, gen->entity_cnt - gen->campaigns,
                gen->campaigns, gen->last_event_ms);
        if (fclose(fp) == 0)
                return 0;
fail:
        fprintf(stderr, "ews-gen: %s: %s\n", path, strerror(errno));
        return -1;
}

static int gen_topic_init(struct gen_topic *topic, const char *dir,
                          const char *file)
{
        char path[4096], *json = NULL;
        FILE *fp;
        long size;
        int rc = -1;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fp = fopen(path, "rb");
        if (!fp || fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET) || !(json = malloc((size_t)size + 1)) ||
            fread(json, 1, (size_t)size, fp) != (size_t)size) {
                fprintf(stderr, "ews-gen: %s: %s\n", path, strerror(errno));
                goto out;
        }
        if (avro_schema_from_json_length(json, (size_t)size, &topic->schema) ||
            !(topic->iface = avro_generic_class_from_schema(topic->schema)) ||
            avro_generic_value_new(topic->iface, &topic->value)) {
                fprintf(stderr, "ews-gen: %s: %s\n", path, avro_strerror());
                goto out;
        }
        rc = 0;
out:
        free(json);
        if (fp)
                fclose(fp);
        return rc;
}

static void gen_topic_destroy(struct gen_topic *topic)
{
        if (topic->rkt)
                rd_kafka_topic_destroy(topic->rkt);
        if (topic->value.iface)
                avro_value_decref(&topic->value);
        if (topic->iface)
                avro_value_iface_decref(topic->iface);
        if (topic->schema)
                avro_schema_decref(topic->schema);
}

static void gen_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage,
                            void *opaque)
{
        struct gen *gen = opaque;

        (void)rk;
        if (rkmessage->err && gen->failed++ < 5)
                fprintf(stderr, "ews-gen: delivery failed: %s\n",
                        rd_kafka_err2str(rkmessage->err));
}

static int gen_conf_set(rd_kafka_conf_t *conf, const char *key,
                        const char *value)
{
        char errstr[512];

        if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        fprintf(stderr, "ews-gen: %s\n", errstr);
        return -1;
}

static void gen_usage(FILE *fp)
{
        fprintf(fp, "usage: ews-gen -b ADDR [--seed N] [--campaigns N] "
                    "[--poor-campaigns N]\n"
                    "  [--users-per-campaign N] [--days N] [--signup-days N] "
                    "[--start-ms MS]\n"
                    "  [--truth FILE] [--usage-topic T] [--campaign-topic T] "
                    "[--schemas DIR]\n"
                    "  [-X key=value]... [--count-only]\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bootstrap", required_argument, NULL, GEN_OPT_STR + 0},
                {"seed", required_argument, NULL, GEN_OPT_NUM + 0},
                {"campaigns", required_argument, NULL, GEN_OPT_NUM + 1},
                {"poor-campaigns", required_argument, NULL, GEN_OPT_NUM + 2},
                {"users-per-campaign", required_argument, NULL,
                 GEN_OPT_NUM + 3},
                {"days", required_argument, NULL, GEN_OPT_NUM + 4},
                {"signup-days", required_argument, NULL, GEN_OPT_NUM + 5},
                {"start-ms", required_argument, NULL, GEN_OPT_NUM + 6},
                {"truth", required_argument, NULL, GEN_OPT_STR + 1},
                {"usage-topic", required_argument, NULL, GEN_OPT_STR + 2},
                {"campaign-topic", required_argument, NULL, GEN_OPT_STR + 3},
                {"schemas", required_argument, NULL, GEN_OPT_STR + 4},
                {"count-only", no_argument, NULL, 'N'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        /* What the scenario relies on; -X comes later and may override. */
        static const char *defaults[][2] = {
                {"enable.idempotence", "true"},
                {"linger.ms", "20"},
                {"batch.num.messages", "10000"},
                {"queue.buffering.max.messages", "100000"},
                {"queue.buffering.max.kbytes", "65536"}};
        struct gen gen = {.seed = 1,
                          .campaigns = 6,
                          .poor = -1,
                          .users_per_campaign = 40,
                          .days = 21,
                          .signup_days = 5,
                          .start_ms = 1767225600000LL,
                          .usage.name = "product-usage",
                          .campaign.name = "campaign-events"};
        long long *nums[] = {&gen.seed,    &gen.campaigns,
                             &gen.poor,    &gen.users_per_campaign,
                             &gen.days,    &gen.signup_days,
                             &gen.start_ms};
        const char *bootstrap = NULL, *truth = NULL, *schemas = "schemas";
        const char **strs[] = {&bootstrap, &truth, &gen.usage.name,
                               &gen.campaign.name, &schemas};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512], end[32], *eq, *num_end;
        int opt, rc = 2;
        time_t end_secs;
        struct tm tm;
        int64_t i;

        for (i = 0; i < GEN_COUNT(defaults); i++)
                if (gen_conf_set(conf, defaults[i][0], defaults[i][1]))
                        goto out;
        while ((opt = getopt_long(argc, argv, "b:X:h", options, NULL)) != -1) {
                if (opt >= GEN_OPT_NUM && opt < GEN_OPT_NUM + GEN_COUNT(nums)) {
                        errno = 0;
                        *nums[opt - GEN_OPT_NUM] = strtoll(optarg, &num_end, 0);
                        if (errno || num_end == optarg || *num_end) {
                                fprintf(stderr, "ews-gen: bad number '%s'\n",
                                        optarg);
                                goto out;
                        }
                        continue;
                }
                if (opt == 'b' || (opt >= GEN_OPT_STR &&
                                   opt < GEN_OPT_STR + GEN_COUNT(strs))) {
                        *strs[opt == 'b' ? 0 : opt - GEN_OPT_STR] = optarg;
                        continue;
                }
                switch (opt) {
                case 'X':
                        eq = strchr(optarg, '=');
                        if (!eq) {
                                fprintf(stderr, "ews-gen: -X key=value\n");
                                goto out;
                        }
                        *eq = '\0';
                        if (gen_conf_set(conf, optarg, eq + 1))
                                goto out;
                        break;
                case 'N':
                        gen.count_only = true;
                        break;
                case 'h':
                        gen_usage(stdout);
                        rc = 0;
                        goto out;
                default:
                        gen_usage(stderr);
                        goto out;
                }
        }
        /* The last two are poor unless told otherwise; with one campaign,
         * that one. */
        if (gen.poor == -1)
                gen.poor = gen.campaigns < 2 ? gen.campaigns : 2;
        if (optind < argc || (!bootstrap && !gen.count_only) ||
            gen.campaigns < 1 || gen.campaigns > GEN_USERS_MAX ||
            gen.poor < 0 || gen.poor > gen.campaigns ||
            gen.users_per_campaign < 1 ||
            gen.users_per_campaign > GEN_USERS_MAX ||
            gen.campaigns * gen.users_per_campaign > GEN_USERS_MAX ||
            gen.days < 1 || gen.days > 3650 || gen.signup_days < 1 ||
            gen.start_ms < 0 || gen.start_ms > 253402300799999LL) {
                gen_usage(stderr);
                goto out;
        }
        rc = 1;
        gen.end_ms = gen.start_ms + gen.days * GEN_DAY;
        gen.entity_cnt = (long)(gen.campaigns * (1 + gen.users_per_campaign));
        gen.entities = calloc((size_t)gen.entity_cnt, sizeof(*gen.entities));
        gen.heap = calloc((size_t)gen.entity_cnt, sizeof(*gen.heap));
        gen.writer = avro_writer_memory(gen.buf, sizeof(gen.buf));
        if (!gen.entities || !gen.heap || !gen.writer) {
                fprintf(stderr, "ews-gen: out of memory\n");
                goto out;
        }
        if (gen_topic_init(&gen.usage, schemas, "usage_event.avsc") ||
            gen_topic_init(&gen.campaign, schemas, "campaign_event.avsc"))
                goto out;

        if (!gen.count_only) {
                if (gen_conf_set(conf, "bootstrap.servers", bootstrap))
                        goto out;
                rd_kafka_conf_set_dr_msg_cb(conf, gen_on_delivery);
                rd_kafka_conf_set_opaque(conf, &gen);
                gen.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                      sizeof(errstr));
                if (!gen.rk) {
                        fprintf(stderr, "ews-gen: %s\n", errstr);
                        goto out;
                }
                conf = NULL; /* rd_kafka_new() took it */
                gen.usage.rkt =
                        rd_kafka_topic_new(gen.rk, gen.usage.name, NULL);
                gen.campaign.rkt =
                        rd_kafka_topic_new(gen.rk, gen.campaign.name, NULL);
                if (!gen.usage.rkt || !gen.campaign.rkt) {
                        fprintf(stderr, "ews-gen: topic: %s\n",
                                rd_kafka_err2str(rd_kafka_last_error()));
                        goto out;
                }
        }

        gen_entities_init(&gen);
        if (gen_run(&gen))
                goto out;
        /* Generous: the queue may hold a lot for a slow broker. */
        if (gen.rk && rd_kafka_flush(gen.rk, 300000)) {
                gen.failed += rd_kafka_outq_len(gen.rk);
                fprintf(stderr, "ews-gen: flush timed out\n");
        }
        if (gen.failed) {
                fprintf(stderr, "ews-gen: %" PRId64 " messages failed\n",
                        gen.failed);
                goto out;
        }
        if (truth && gen_truth_write(&gen, truth))
                goto out;

        end_secs = (time_t)(gen.last_event_ms / 1000);
        if (!gmtime_r(&end_secs, &tm) ||
            !strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(end, sizeof(end), "?");
        fprintf(stderr,
                "ews-gen: events=%" PRId64 " users=%lld campaigns=%lld "
                "quiet=%ld converted=%ld end=%s\n",
                gen.usage.events + gen.campaign.events,
                gen.entity_cnt - gen.campaigns, gen.campaigns, gen.quiet,
                gen.converted, end);
        rc = 0;
out:
        gen_topic_destroy(&gen.usage);
        gen_topic_destroy(&gen.campaign);
        if (gen.rk)
                rd_kafka_destroy(gen.rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        if (gen.writer)
                avro_writer_free(gen.writer);
        free(gen.entities);
        free(gen.heap);
        return rc;
}
