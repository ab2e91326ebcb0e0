/*
 * Configuration: one YAML file, every key with a default (config/ews.yaml
 * documents them), environment variables over the file (EWS_REDIS_HOST for
 * redis.host), and librdkafka properties passed through as they are.
 */
#ifndef EWS_CONFIG_H
#define EWS_CONFIG_H

#include <stdio.h>

#include "decode/decode.h"
#include "rules/rules.h"
#include "score/score.h"
#include "util/log.h"
#include "util/props.h"

/* The keys with a fixed set of values are parsed once, here, into these
 * (and enum ews_decode_format, enum ews_log_level). */
enum ews_offset_reset {
        EWS_RESET_EARLIEST,
        EWS_RESET_LATEST
};

enum ews_time_mode {
        EWS_TIME_AUTO,  /* event time, and the wall clock on idle partitions */
        EWS_TIME_EVENT, /* event time alone: replays, backfills */
        EWS_TIME_WALL   /* the wall clock */
};

/* redis.sentinels: at most this many, each "host:port" below this size. */
#define EWS_CONFIG_SENTINELS_MAX 8
#define EWS_CONFIG_ADDR_MAX      256

enum ews_log_format {
        EWS_LOG_TEXT,
        EWS_LOG_JSON
};

struct ews_config {
        /* kafka */
        char bootstrap_servers[1024];
        char group_id[256];
        enum ews_offset_reset offset_reset; /* where no position is */
        char topics[EWS_SOURCE_COUNT][256];
        char topic_alerts[256];
        char topic_dlq[256];
        /* rules.<rule>.topic: where the rule's alerts go; "": topic_alerts */
        char topic_rules[EWS_RULE_COUNT][256];
        /* alerts.format: avro, or confluent (registered, framed) */
        enum ews_decode_format alert_format;
        int batch_max;
        int64_t batch_wait_ms;   /* longest wait for a batch's first message */
        int64_t batch_linger_ms; /* then how long it keeps filling */
        int fetch_wake; /* kafka.fetch.wake: 1 wakes the fetcher after a
                         * batch taken from a backlog (in_kafka.h) */
        /* kafka.batch.overlap: 1 takes the next batch in while Redis runs
         * the last one's round, when the consumer holds it already
         * (pipeline.h) */
        int batch_overlap;
        struct ews_config_props consumer;
        struct ews_config_props producer;
        /* redis */
        char redis_host[256];
        int redis_port;
        int64_t redis_timeout_ms;
        char redis_prefix[64];
        char redis_username[128]; /* ACL user; "" for the default user */
        char redis_password[256];
        /* Sentinel: the primary of redis_master_name is asked of these */
        char redis_sentinels[EWS_CONFIG_SENTINELS_MAX][EWS_CONFIG_ADDR_MAX];
        int redis_sentinel_cnt;
        char redis_master_name[256];
        char redis_sentinel_username[128]; /* AUTH to the sentinels */
        char redis_sentinel_password[256];
        int redis_wait_replicas; /* WAIT after commits; 0: off */
        int64_t redis_wait_timeout_ms;
        /* state */
        int64_t retention_ms;
        int cache_users;
        int64_t account_active_window_ms; /* "active users" of an account */
        /* campaigns with their own funnel series in /metrics */
        char funnel_metrics_campaigns[EWS_SCORE_LIST_MAX][EWS_NAME_MAX];
        int funnel_metrics_campaign_cnt;
        int funnel_metrics_recent;
        int segments; /* state.segments: 1 the segment sets are written */
        /* decode */
        char schema_dir[1024];
        enum ews_decode_format format[EWS_SOURCE_COUNT];
        char writer_schema[EWS_SOURCE_COUNT][1024];
        char registry_url[1024];
        char registry_user[256];
        char registry_password[256];
        int64_t registry_timeout_ms;
        int64_t max_future_ms;
        int max_bytes;
        int max_items;
        /* time */
        int64_t allowed_lateness_ms;
        enum ews_time_mode time_mode;
        int64_t idle_timeout_ms;  /* event mode: quiet this long to follow */
        int64_t max_alert_age_ms; /* 0: off */
        /* delivery */
        int64_t outbox_resend_ms;
        int64_t leader_lease_ms;
        int leader_turn_ids; /* ids per kind a leader's turn decides */
        /* model */
        struct ews_score_conf score;
        struct ews_rules_conf rules;
        /* http */
        char http_bind[64];
        int http_port; /* 0: no HTTP endpoint */
        char http_token[256];
        /* log */
        enum ews_log_level log_level;
        enum ews_log_format log_format;
};

/* Fills config with the defaults. */
void ews_config_defaults(struct ews_config *config);

/* Loads path over what config holds, then the environment over that
 * (every EWS_<SECTION>_ variable must name a key). Paths become absolute:
 * from the file relative to its folder, from the environment to the current
 * directory. Returns 0, or -1 with errstr naming file, line and key. */
int ews_config_load(struct ews_config *config, const char *path, char *errstr,
                    size_t errstr_size);

/* Applies "key=value" as kcat's -X does: to the librdkafka client whose
 * property it is (librdkafka's scope), to both when both have it. */
int ews_config_set_kafka_prop(struct ews_config *config, const char *kv,
                              char *errstr, size_t errstr_size);

/* Where rule's alerts go: rules.<rule>.topic, else topics.alerts. */
const char *ews_config_rule_topic(const struct ews_config *config,
                                  enum ews_rule rule);

/* The key of rules.<rule>.topic, e.g. "rules.sales.ready.topic". */
const char *ews_config_rule_topic_key(enum ews_rule rule);

/* Writes the effective configuration as YAML, secrets redacted. */
void ews_config_print(const struct ews_config *config, FILE *fp);

#endif
