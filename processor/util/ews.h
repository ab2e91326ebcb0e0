/*
 * The types that flow between the stages:
 *
 *   in_kafka -> decode -> score -> rules -> store -> out_kafka
 *
 * Every stage speaks these structs; no library type crosses a module
 * boundary. Strings live in fixed buffers so that a batch is decoded into
 * memory that is reused, never allocated per event.
 */
#ifndef EWS_H
#define EWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EWS_ID_MAX         128 /* ids longer than this are rejected, not cut */
#define EWS_NAME_MAX       64
#define EWS_ATTR_MAX       16
#define EWS_ATTR_VALUE_MAX 128
#define EWS_CONTRIB_MAX    3
#define EWS_PARTITIONS_MAX 1024 /* per input topic */

/* Input topics, in the order they are configured. */
enum ews_source {
        EWS_SOURCE_USAGE = 0,
        EWS_SOURCE_CAMPAIGN = 1,
        EWS_SOURCE_COUNT
};

/* A Kafka message as in_kafka hands it on. The pointers borrow the
 * consumer's buffers and stay valid until the batch is released. */
struct ews_msg {
        enum ews_source source;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms;
        const void *key;
        size_t key_len;
        const void *value;
        size_t value_len;
};

struct ews_attr {
        char key[EWS_NAME_MAX];
        char value[EWS_ATTR_VALUE_MAX];
};

struct ews_usage_event {
        char event_id[EWS_ID_MAX];
        char user_id[EWS_ID_MAX];
        char account_id[EWS_ID_MAX]; /* "" when absent */
        char event_type[EWS_NAME_MAX];
        char product[EWS_NAME_MAX];   /* "" when absent */
        char campaign_id[EWS_ID_MAX]; /* "" when absent */
        bool has_value;
        double value;
        int64_t occurred_at_ms;
        int attr_cnt;
        /* Borrowed: room for EWS_ATTR_MAX before decoding (the decoder
         * fills it), attr_cnt of them after; most events have none, so a
         * batch keeps only those that have (pipeline/) and the event stays
         * small. */
        struct ews_attr *attrs;
};

/* An event with room of its own for its attributes, for those who build
 * or decode one at a time. */
struct ews_usage_event_buf {
        struct ews_usage_event event;
        struct ews_attr attrs[EWS_ATTR_MAX];
};

static inline struct ews_usage_event *
ews_usage_event_init(struct ews_usage_event_buf *buf)
{
        buf->event.attrs = buf->attrs;
        return &buf->event;
}

enum ews_campaign_type {
        EWS_CAMPAIGN_LAUNCHED = 0,
        EWS_CAMPAIGN_SPEND,
        EWS_CAMPAIGN_PAUSED,
        EWS_CAMPAIGN_ENDED
};

struct ews_campaign_event {
        char event_id[EWS_ID_MAX];
        char campaign_id[EWS_ID_MAX];
        enum ews_campaign_type type;
        char name[EWS_ATTR_VALUE_MAX];
        char channel[EWS_NAME_MAX];
        bool has_target;
        double target_activation_rate;
        bool has_amount;
        double amount;
        int64_t occurred_at_ms;
};

/* Lifecycle stage of a user. The numeric values are stored. */
enum ews_stage {
        EWS_STAGE_NONE = 0, /* seen, but no trial_started yet */
        EWS_STAGE_TRIAL = 1,
        EWS_STAGE_ACTIVATED = 2,   /* reached activation within the window */
        EWS_STAGE_SALES_READY = 3, /* E reached the sales-ready threshold */
        EWS_STAGE_CUSTOMER = 4,
        EWS_STAGE_LOST = 5,
        EWS_STAGE_COUNT
};

/* Trial, activated and sales-ready users are all still in their trial. */
bool ews_stage_in_trial(enum ews_stage stage);

/* The stages a campaign's funnel counts, each once per user: a user may
 * skip one (a conversion without activation) or leave the trial, so what
 * was reached is a set of bits, not the stage. */
enum ews_funnel_stage {
        EWS_FUNNEL_SIGNUP = 0, /* trial_started */
        EWS_FUNNEL_ACTIVATED,
        EWS_FUNNEL_SALES_READY,
        EWS_FUNNEL_CUSTOMER,
        EWS_FUNNEL_LOST,
        EWS_FUNNEL_COUNT
};

#define EWS_REASONS_MAX    12 /* event types kept per user, largest first */
#define EWS_INTERESTS_MAX  6  /* products kept per user */
#define EWS_DEDUP_MAX      32 /* recent event-id hashes kept per user */
#define EWS_ACTIVATION_MAX 8  /* behaviour conditions of activation */

/* A share of a decayed score: all share the user's reference time. */
struct ews_component {
        char name[EWS_NAME_MAX];
        double value;
};

/* What the store keeps with a user for its own bookkeeping, so that a
 * commit writes a key only when it changes; scoring and rules neither
 * read nor change it. */
struct ews_user_keep {
        int64_t timer_ms; /* deadline its timer entry is filed under; 0:
                             none, -1: not known (read from an older
                             value) */
        int32_t day;      /* wall-clock day (since the epoch) its key's
                             expiry was last set; 0: never */
        bool member;      /* its membership of account_id is written */
};

/* The rolling state of one user, as the store persists it. */
struct ews_user {
        char user_id[EWS_ID_MAX];
        char account_id[EWS_ID_MAX];  /* "" when none named yet */
        char campaign_id[EWS_ID_MAX]; /* "" when not attributed */
        enum ews_stage stage;
        int64_t stage_at_ms;       /* when stage last changed */
        double engagement;         /* E at engagement_ref_ms */
        double peak_engagement;    /* the largest E reached */
        int64_t engagement_ref_ms; /* t_ref of E and its components */
        int64_t last_activity_ms;  /* 0 when never active */
        int64_t trial_started_ms;  /* 0 when unknown */
        int64_t activated_ms;      /* 0 when not (yet) activated */
        /* Rule state: open episodes start at *_since_ms (0: none); the
         * last resolution starts the cooldown. */
        int64_t disengaged_since_ms;
        int64_t disengaged_resolved_ms;
        double rule_peak; /* largest E since the last disengaged episode */
        int64_t sales_ready_since_ms;
        int64_t sales_ready_resolved_ms;
        int64_t matured_ms;   /* counted into its campaign's cohort, or 0 */
        int64_t events;       /* events counted for this user */
        uint32_t fit_matched; /* bit i: fit rule i matched */
        double fit;           /* F: points of the matched rules */
        int reason_cnt;       /* E by event type */
        struct ews_component reasons[EWS_REASONS_MAX];
        int interest_cnt; /* I_p by product */
        struct ews_component interests[EWS_INTERESTS_MAX];
        int dedup_cnt; /* event-id hashes, oldest first */
        uint32_t dedup[EWS_DEDUP_MAX];
        /* Progress towards activation defined by behaviour
         * (scoring.activation.conditions; all zero without): met has bit 0
         * for the score and bit 1 + i for condition i, once met within
         * the window; counts[i] the events condition i counted within its
         * window (for a products condition, the distinct products, whose
         * hashes are kept in products up to the condition's count). */
        uint32_t activation_met;
        int activation_cnt;
        uint16_t activation_counts[EWS_ACTIVATION_MAX];
        int activation_product_cnt;
        uint32_t activation_products[EWS_ACTIVATION_MAX];
        struct ews_user_keep keep;
        /* bit i: funnel stage i reached and counted in the funnel */
        uint8_t funnel;
};

/* The funnel stages the user's state shows reached (bits as in
 * ews_user.funnel). */
uint8_t ews_funnel_reached(const struct ews_user *user);
const char *ews_funnel_name(enum ews_funnel_stage stage);

enum ews_rule {
        EWS_RULE_USER_DISENGAGED = 0,
        EWS_RULE_CAMPAIGN_UNDERPERFORMING,
        EWS_RULE_SALES_READY,
        EWS_RULE_ACCOUNT_AT_RISK,
        EWS_RULE_COUNT
};

enum ews_alert_status {
        EWS_ALERT_FIRING = 0,
        EWS_ALERT_RESOLVED
};
enum ews_severity {
        EWS_SEV_INFO = 0,
        EWS_SEV_WARNING,
        EWS_SEV_CRITICAL
};
enum ews_subject {
        EWS_SUBJECT_USER = 0,
        EWS_SUBJECT_ACCOUNT,
        EWS_SUBJECT_CAMPAIGN
};

#define EWS_ALERT_VALUES_MAX 8

struct ews_alert_value {
        char name[32];
        double value;
};

struct ews_contributor {
        char event_type[EWS_NAME_MAX];
        double score;
};

/* An alert as rules decide it and out_kafka publishes it. */
struct ews_alert {
        char alert_id[2 * EWS_ID_MAX + 16]; /* episode_id ":" seq */
        char episode_id[2 * EWS_ID_MAX];
        int32_t seq;
        enum ews_rule rule;
        enum ews_alert_status status;
        enum ews_severity severity;
        enum ews_subject subject_type;
        char subject_id[EWS_ID_MAX];
        char account_id[EWS_ID_MAX];  /* "" when unknown */
        char campaign_id[EWS_ID_MAX]; /* "" when unknown */
        int64_t event_time_ms;
        int64_t emitted_at_ms;
        char reason[512];
        int value_cnt;
        struct ews_alert_value values[EWS_ALERT_VALUES_MAX];
        int contributor_cnt;
        struct ews_contributor contributors[EWS_CONTRIB_MAX];
        int64_t last_activity_ms; /* 0 when unknown */
};

const char *ews_rule_name(enum ews_rule rule);
const char *ews_alert_status_name(enum ews_alert_status status);
const char *ews_severity_name(enum ews_severity severity);
const char *ews_subject_name(enum ews_subject subject);
const char *ews_stage_name(enum ews_stage stage);

#endif
