/* Every configuration key, its type and bounds, and the built-in
 * defaults (config/ews.yaml shows the same, a unit test keeps them equal). */
#include "ops/config.h"
#include "ops/config_int.h"

#include "store/store.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define CK(p, t, field, lo, hi)                                                \
        {                                                                      \
                .path = p, .type = t,                                          \
                .offset = offsetof(struct ews_config, field),                  \
                .size = sizeof(((struct ews_config *)0)->field), .min = lo,    \
                .max = hi                                                      \
        }
#define CK_LIST(p, field, cnt)                                                 \
        {                                                                      \
                .path = p, .type = CONFIG_LIST,                                \
                .offset = offsetof(struct ews_config, field),                  \
                .size = EWS_SCORE_LIST_MAX, .width = EWS_NAME_MAX,             \
                .cnt_offset = offsetof(struct ews_config, cnt)                 \
        }
/* A list of "host:port" addresses. */
#define CK_ADDRS(p, field, cnt, n)                                             \
        {                                                                      \
                .path = p, .type = CONFIG_LIST,                                \
                .offset = offsetof(struct ews_config, field), .size = n,       \
                .width = EWS_CONFIG_ADDR_MAX,                                  \
                .cnt_offset = offsetof(struct ews_config, cnt),                \
                .check = config_check_addr                                     \
        }
#define CK_ENUM(p, field, v)                                                   \
        {                                                                      \
                .path = p, .type = CONFIG_ENUM,                                \
                .offset = offsetof(struct ews_config, field),                  \
                .size = sizeof(((struct ews_config *)0)->field), .values = &v  \
        }

#define DAY_MS (86400.0 * 1000.0)

#define REDIS_HOST_DEFAULT "127.0.0.1"
#define REDIS_PORT_DEFAULT 6379

static int config_check_addr(const char *entry, char *what, size_t what_size)
{
        char host[EWS_CONFIG_ADDR_MAX];
        int port;

        if (!ews_store_addr_parse(entry, host, sizeof(host), &port))
                return 0;
        snprintf(what, what_size,
                 "expected host:port (port 1-65535, [address]:port for "
                 "IPv6), got '%.64s'",
                 entry);
        return -1;
}

static const char *const offset_reset_names[] = {
        [EWS_RESET_EARLIEST] = "earliest", [EWS_RESET_LATEST] = "latest"};
static const char *const format_names[] = {[EWS_FORMAT_AVRO] = "avro",
                                           [EWS_FORMAT_CONFLUENT] = "confluent",
                                           [EWS_FORMAT_JSON] = "json"};
/* Alerts are written, not read: no json. */
static const char *const alert_format_names[] = {
        [EWS_FORMAT_AVRO] = "avro", [EWS_FORMAT_CONFLUENT] = "confluent"};
static const char *const time_mode_names[] = {[EWS_TIME_AUTO] = "auto",
                                              [EWS_TIME_EVENT] = "event",
                                              [EWS_TIME_WALL] = "wall"};
static const char *const log_level_names[] = {[EWS_LOG_ERR] = "error",
                                              [EWS_LOG_WARN] = "warn",
                                              [EWS_LOG_INFO] = "info",
                                              [EWS_LOG_DEBUG] = "debug"};
static const char *const decision_names[] = {
        [EWS_DECISION_WILSON] = "wilson", [EWS_DECISION_ANYTIME] = "anytime"};
static const char *const log_format_names[] = {
        [EWS_LOG_TEXT] = "text", [EWS_LOG_JSON] = "json"};
#define VALUES(names)                                                          \
        {                                                                      \
                names, (int)(sizeof(names) / sizeof(names[0]))                 \
        }
static const struct config_enum offset_reset_values =
        VALUES(offset_reset_names);
static const struct config_enum format_values = VALUES(format_names);
static const struct config_enum alert_format_values =
        VALUES(alert_format_names);
static const struct config_enum time_mode_values = VALUES(time_mode_names);
static const char *const switch_names[] = {"false", "true"};
static const struct config_enum switch_values = VALUES(switch_names);
static const struct config_enum log_level_values = VALUES(log_level_names);
static const struct config_enum log_format_values = VALUES(log_format_names);
static const struct config_enum decision_values = VALUES(decision_names);
static const char *const activation_match_names[] = {
        [EWS_ACTIVATION_ALL] = "all", [EWS_ACTIVATION_ANY] = "any"};
static const struct config_enum activation_match_values =
        VALUES(activation_match_names);

const struct config_key config_keys[] = {
        CK("kafka.bootstrap.servers", CONFIG_STR, bootstrap_servers, 0, 0),
        CK("kafka.group.id", CONFIG_STR, group_id, 0, 0),
        CK_ENUM("kafka.auto.offset.reset", offset_reset, offset_reset_values),
        CK("kafka.batch.max", CONFIG_INT, batch_max, 1, 100000),
        CK("kafka.batch.wait", CONFIG_MS, batch_wait_ms, 1, 60000),
        CK("kafka.batch.linger", CONFIG_MS, batch_linger_ms, 0, 60000),
        CK_ENUM("kafka.fetch.wake", fetch_wake, switch_values),
        CK_ENUM("kafka.batch.overlap", batch_overlap, switch_values),
        CK("topics.usage", CONFIG_STR, topics[EWS_SOURCE_USAGE], 0, 0),
        CK("topics.campaign", CONFIG_STR, topics[EWS_SOURCE_CAMPAIGN], 0, 0),
        CK("topics.alerts", CONFIG_STR, topic_alerts, 0, 0),
        CK("topics.dlq", CONFIG_STR, topic_dlq, 0, 0),
        CK_ENUM("alerts.format", alert_format, alert_format_values),
        CK("redis.host", CONFIG_STR, redis_host, 0, 0),
        CK("redis.port", CONFIG_INT, redis_port, 1, 65535),
        CK("redis.timeout", CONFIG_MS, redis_timeout_ms, 1, 600000),
        CK("redis.prefix", CONFIG_STR, redis_prefix, 0, 0),
        CK("redis.username", CONFIG_STR, redis_username, 0, 0),
        CK("redis.password", CONFIG_STR, redis_password, 0, 0),
        CK_ADDRS("redis.sentinels", redis_sentinels, redis_sentinel_cnt,
                 EWS_CONFIG_SENTINELS_MAX),
        CK("redis.master.name", CONFIG_STR, redis_master_name, 0, 0),
        CK("redis.sentinel.username", CONFIG_STR, redis_sentinel_username, 0,
           0),
        CK("redis.sentinel.password", CONFIG_STR, redis_sentinel_password, 0,
           0),
        CK("redis.wait.replicas", CONFIG_INT, redis_wait_replicas, 0, 100),
        CK("redis.wait.timeout", CONFIG_MS, redis_wait_timeout_ms, 1, 600000),
        CK("http.bind", CONFIG_STR, http_bind, 0, 0),
        CK("http.port", CONFIG_INT, http_port, 0, 65535),
        CK("http.token", CONFIG_STR, http_token, 0, 0),
        CK("state.retention", CONFIG_MS, retention_ms, 3600000, 3650 * DAY_MS),
        CK("state.cache.users", CONFIG_INT, cache_users, 1, 100000000),
        CK_LIST("state.funnel.metrics.campaigns", funnel_metrics_campaigns,
                funnel_metrics_campaign_cnt),
        CK_ENUM("state.segments", segments, switch_values),
        CK("state.funnel.metrics.recent", CONFIG_INT, funnel_metrics_recent, 0,
           100),
        CK("scoring.account.active.window", CONFIG_MS, account_active_window_ms,
           3600000, 365 * DAY_MS),
        CK("decode.schema.dir", CONFIG_STR, schema_dir, 0, 0),
        CK_ENUM("decode.usage.format", format[EWS_SOURCE_USAGE], format_values),
        CK("decode.usage.writer.schema", CONFIG_STR,
           writer_schema[EWS_SOURCE_USAGE], 0, 0),
        CK_ENUM("decode.campaign.format", format[EWS_SOURCE_CAMPAIGN],
                format_values),
        CK("decode.campaign.writer.schema", CONFIG_STR,
           writer_schema[EWS_SOURCE_CAMPAIGN], 0, 0),
        CK("decode.registry.url", CONFIG_STR, registry_url, 0, 0),
        CK("decode.registry.username", CONFIG_STR, registry_user, 0, 0),
        CK("decode.registry.password", CONFIG_STR, registry_password, 0, 0),
        CK("decode.registry.timeout", CONFIG_MS, registry_timeout_ms, 100,
           120000),
        CK("decode.max.future", CONFIG_MS, max_future_ms, 0, 3650 * DAY_MS),
        CK("decode.max.bytes", CONFIG_INT, max_bytes, 64, 16 << 20),
        CK("decode.max.items", CONFIG_INT, max_items, 1, 1000000),
        CK("time.allowed.lateness", CONFIG_MS, allowed_lateness_ms, 0,
           30 * DAY_MS),
        CK("scoring.half.life", CONFIG_MS_F, score.half_life_ms, 60000,
           3650 * DAY_MS),
        CK_LIST("scoring.value.scaled", score.value_scaled,
                score.value_scaled_cnt),
        CK_LIST("scoring.page.classes", score.page_classes,
                score.page_class_cnt),
        CK_LIST("scoring.not.activity", score.not_activity,
                score.not_activity_cnt),
        CK("scoring.activation.points", CONFIG_DOUBLE, score.activation_points,
           0, 1e9),
        CK("scoring.activation.window", CONFIG_MS, score.activation_window_ms,
           60000, 365 * DAY_MS),
        CK_ENUM("scoring.activation.match", score.activation_match,
                activation_match_values),
        {.path = "scoring.activation.conditions", .type = CONFIG_ACTIVATION},
        CK("scoring.sales.ready.points", CONFIG_DOUBLE,
           score.sales_ready_points, 0, 1e9),
        CK("scoring.dedup.events", CONFIG_INT, score.dedup_events, 0,
           EWS_DEDUP_MAX),
        {.path = "scoring.fit", .type = CONFIG_FIT},
        CK_ENUM("time.mode", time_mode, time_mode_values),
        CK("time.idle.timeout", CONFIG_MS, idle_timeout_ms, 0, 365 * DAY_MS),
        CK("time.max.alert.age", CONFIG_MS, max_alert_age_ms, 0, 3650 * DAY_MS),
        CK("rules.dwell", CONFIG_MS, rules.dwell_ms, 0, 365 * DAY_MS),
        CK("rules.user.disengaged.topic", CONFIG_STR,
           topic_rules[EWS_RULE_USER_DISENGAGED], 0, 0),
        CK("rules.sales.ready.topic", CONFIG_STR,
           topic_rules[EWS_RULE_SALES_READY], 0, 0),
        CK("rules.campaign.underperforming.topic", CONFIG_STR,
           topic_rules[EWS_RULE_CAMPAIGN_UNDERPERFORMING], 0, 0),
        CK("rules.account.at.risk.topic", CONFIG_STR,
           topic_rules[EWS_RULE_ACCOUNT_AT_RISK], 0, 0),
        CK("rules.cooldown", CONFIG_MS, rules.cooldown_ms, 0, 365 * DAY_MS),
        CK("rules.user.disengaged.inactivity", CONFIG_MS, rules.inactivity_ms,
           1000, 365 * DAY_MS),
        CK("rules.user.disengaged.drop.share", CONFIG_DOUBLE, rules.drop_share,
           0, 1),
        CK("rules.user.disengaged.drop.min.peak", CONFIG_DOUBLE,
           rules.drop_min_peak, 0, 1e9),
        CK("rules.user.disengaged.exit.share", CONFIG_DOUBLE, rules.exit_share,
           0, 10),
        CK("rules.sales.ready.exit.points", CONFIG_DOUBLE,
           rules.sales_ready_exit, 0, 1e9),
        CK("rules.campaign.underperforming.maturity", CONFIG_MS,
           rules.maturity_ms, 60000, 365 * DAY_MS),
        CK("rules.campaign.underperforming.min.sample", CONFIG_INT,
           rules.min_sample, 1, 1000000000),
        CK_ENUM("rules.campaign.underperforming.decision", rules.decision,
                decision_values),
        CK("rules.campaign.underperforming.confidence.z", CONFIG_DOUBLE,
           rules.confidence_z, 0, 10),
        CK("rules.campaign.underperforming.alpha", CONFIG_DOUBLE, rules.alpha,
           1e-9, 0.5),
        CK("rules.campaign.underperforming.default.target", CONFIG_DOUBLE,
           rules.default_target, 0, 1),
        CK("rules.campaign.underperforming.resolve.margin", CONFIG_DOUBLE,
           rules.resolve_margin, 0, 1),
        CK("rules.account.at.risk.trailing.days", CONFIG_INT,
           rules.trailing_days, 1, 365),
        CK("rules.account.at.risk.share", CONFIG_DOUBLE, rules.at_risk_share, 0,
           1),
        CK("rules.account.at.risk.resolve.share", CONFIG_DOUBLE,
           rules.at_risk_resolve_share, 0, 10),
        CK("rules.account.at.risk.min.level", CONFIG_DOUBLE,
           rules.at_risk_min_level, 0, 1e9),
        CK("outbox.resend.interval", CONFIG_MS, outbox_resend_ms, 1000, DAY_MS),
        CK("leader.lease", CONFIG_MS, leader_lease_ms, 2000, 600000),
        CK("leader.turn.ids", CONFIG_INT, leader_turn_ids, 1, 100000),
        CK_ENUM("log.level", log_level, log_level_values),
        CK_ENUM("log.format", log_format, log_format_values),
};

const size_t config_key_cnt = sizeof(config_keys) / sizeof(config_keys[0]);

const char *ews_config_rule_topic_key(enum ews_rule rule)
{
        static const char *const keys[EWS_RULE_COUNT] = {
                [EWS_RULE_USER_DISENGAGED] = "rules.user.disengaged.topic",
                [EWS_RULE_SALES_READY] = "rules.sales.ready.topic",
                [EWS_RULE_CAMPAIGN_UNDERPERFORMING] =
                        "rules.campaign.underperforming.topic",
                [EWS_RULE_ACCOUNT_AT_RISK] = "rules.account.at.risk.topic"};

        return (unsigned)rule < EWS_RULE_COUNT ? keys[rule] : "rules.?.topic";
}

const char *ews_config_rule_topic(const struct ews_config *config,
                                  enum ews_rule rule)
{
        return (unsigned)rule < EWS_RULE_COUNT && config->topic_rules[rule][0]
                       ? config->topic_rules[rule]
                       : config->topic_alerts;
}

/* An output topic read back as input would feed alerts or dead letters to
 * the decoder; alerts in the dead-letter topic would be redriven. */
static int config_check_output(struct config_ctx *ctx, const char *key,
                               const char *topic)
{
        static const char *const input_keys[EWS_SOURCE_COUNT] = {
                [EWS_SOURCE_USAGE] = "topics.usage",
                [EWS_SOURCE_CAMPAIGN] = "topics.campaign"};
        char what[64];
        int s;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                if (!strcmp(topic, ctx->config->topics[s])) {
                        snprintf(what, sizeof(what), "must differ from %s",
                                 input_keys[s]);
                        return config_fail(ctx, 0, key, what);
                }
        if (!strcmp(topic, ctx->config->topic_dlq))
                return config_fail(ctx, 0, key, "must differ from topics.dlq");
        return 0;
}

int config_check_topics(struct config_ctx *ctx)
{
        static const char *const topic_keys[EWS_SOURCE_COUNT] = {
                [EWS_SOURCE_USAGE] = "topics.usage",
                [EWS_SOURCE_CAMPAIGN] = "topics.campaign"};
        struct ews_config *config = ctx->config;
        int s, r;

        if (!config->topic_alerts[0])
                return config_fail(ctx, 0, "topics.alerts",
                                   "must not be empty");
        if (!config->topic_dlq[0])
                return config_fail(ctx, 0, "topics.dlq", "must not be empty");
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                if (!config->topics[s][0])
                        return config_fail(ctx, 0, topic_keys[s],
                                           "must not be empty");
                /* Alerts or dead letters read back as input. */
                if (!strcmp(config->topics[s], config->topic_alerts))
                        return config_fail(ctx, 0, topic_keys[s],
                                           "must differ from topics.alerts");
                if (!strcmp(config->topics[s], config->topic_dlq))
                        return config_fail(ctx, 0, topic_keys[s],
                                           "must differ from topics.dlq");
        }
        for (r = 0; r < EWS_RULE_COUNT; r++)
                if (config->topic_rules[r][0] &&
                    config_check_output(ctx, ews_config_rule_topic_key(r),
                                        config->topic_rules[r]))
                        return -1;
        return 0;
}

void config_weight(struct ews_config *config, const char *type, double points)
{
        struct ews_score_conf *score = &config->score;
        int i;

        for (i = 0; i < score->weight_cnt; i++)
                if (!strcmp(score->weights[i].event_type, type))
                        break;
        if (i == score->weight_cnt)
                config_copy(score->weights[score->weight_cnt++].event_type,
                            EWS_NAME_MAX, type);
        score->weights[i].points = points;
}

void ews_config_defaults(struct ews_config *config)
{
        static const struct {
                const char *type;
                double points;
        } weights[] = {
                {"trial_started", 5},      {"login", 1},
                {"feature_used", 3},       {"page_view", 4},
                {"video_play", 6},         {"content_download", 4},
                {"invite_sent", 8},        {"unsubscribed", -10},
                {"careers_page_view", -5},
        };
        static const char *page_classes[] = {"pricing", "demo_request",
                                             "integrations"};
        static const char *not_activity[] = {"converted", "trial_ended",
                                             "unsubscribed"};
        size_t i;

        memset(config, 0, sizeof(*config));
        config_copy(config->bootstrap_servers,
                    sizeof(config->bootstrap_servers), "127.0.0.1:9092");
        config_copy(config->group_id, sizeof(config->group_id), "ews");
        config->offset_reset = EWS_RESET_EARLIEST;
        config->batch_max = 64000;
        config->batch_wait_ms = 100;
        config->fetch_wake = 1;
        config->batch_overlap = 1;
        config_copy(config->topics[EWS_SOURCE_USAGE], 256, "product-usage");
        config_copy(config->topics[EWS_SOURCE_CAMPAIGN], 256,
                    "campaign-events");
        config_copy(config->topic_alerts, 256, "ews-alerts");
        config_copy(config->topic_dlq, 256, "ews-dlq");
        config->alert_format = EWS_FORMAT_AVRO;
        config_copy(config->redis_host, sizeof(config->redis_host),
                    REDIS_HOST_DEFAULT);
        config->redis_port = REDIS_PORT_DEFAULT;
        config->redis_timeout_ms = 2000;
        config->redis_wait_timeout_ms = 1000;
        config_copy(config->http_bind, sizeof(config->http_bind), "127.0.0.1");
        config->http_port = 9464;
        config_copy(config->redis_prefix, sizeof(config->redis_prefix), "ews:");
        config->retention_ms = (int64_t)(90 * DAY_MS);
        config->cache_users = 100000;
        config->funnel_metrics_recent = 10;
        config->segments = 1;
        config->account_active_window_ms = (int64_t)(7 * DAY_MS);
        config_copy(config->schema_dir, sizeof(config->schema_dir), "schemas");
        config->format[EWS_SOURCE_USAGE] = EWS_FORMAT_AVRO;
        config->format[EWS_SOURCE_CAMPAIGN] = EWS_FORMAT_AVRO;
        config->registry_timeout_ms = 5000;
        config->max_future_ms = (int64_t)DAY_MS;
        config->max_bytes = 65536;
        config->max_items = 1000;
        config->allowed_lateness_ms = 5 * 60 * 1000;
        config->score.half_life_ms = 7 * DAY_MS;
        for (i = 0; i < sizeof(weights) / sizeof(weights[0]); i++)
                config_weight(config, weights[i].type, weights[i].points);
        config_copy(config->score.value_scaled[0], EWS_NAME_MAX, "video_play");
        config->score.value_scaled_cnt = 1;
        for (i = 0; i < sizeof(page_classes) / sizeof(page_classes[0]); i++)
                config_copy(config->score.page_classes[i], EWS_NAME_MAX,
                            page_classes[i]);
        config->score.page_class_cnt = (int)i;
        for (i = 0; i < sizeof(not_activity) / sizeof(not_activity[0]); i++)
                config_copy(config->score.not_activity[i], EWS_NAME_MAX,
                            not_activity[i]);
        config->score.not_activity_cnt = (int)i;
        config->score.activation_points = 40;
        config->score.activation_window_ms = (int64_t)(3 * DAY_MS);
        config->score.sales_ready_points = 100;
        config->score.dedup_events = 8;
        config_fit_defaults(&config->score);
        config->time_mode = EWS_TIME_AUTO;
        config->idle_timeout_ms = 60 * 1000;
        config->max_alert_age_ms = (int64_t)(3 * DAY_MS);
        config->rules.dwell_ms = 3600000;
        config->rules.cooldown_ms = 6 * 3600000;
        config->rules.inactivity_ms = (int64_t)(3 * DAY_MS);
        config->rules.drop_share = 0.4;
        config->rules.drop_min_peak = 30;
        config->rules.exit_share = 0.5;
        config->rules.sales_ready_exit = 70;
        config->rules.maturity_ms = (int64_t)(3 * DAY_MS);
        config->rules.min_sample = 20;
        config->rules.decision = EWS_DECISION_ANYTIME;
        config->rules.confidence_z = 1.645;
        config->rules.alpha = 0.05;
        config->rules.default_target = 0.3;
        config->rules.resolve_margin = 0.05;
        config->rules.trailing_days = 14;
        config->rules.at_risk_share = 0.5;
        config->rules.at_risk_resolve_share = 0.8;
        config->rules.at_risk_min_level = 3;
        config->outbox_resend_ms = 10000;
        config->leader_lease_ms = 10000;
        config->leader_turn_ids = 500;
        config->log_level = EWS_LOG_INFO;
        config->log_format = EWS_LOG_TEXT;
}

/* With sentinels the primary's address comes from them alone: a host or
 * port beside them would be a second answer to the same question. */
int config_check_redis(struct config_ctx *ctx)
{
        const struct ews_config *c = ctx->config;

        if (c->redis_sentinel_cnt && !c->redis_master_name[0])
                return config_fail(ctx, 0, "redis.master.name",
                                   "must be set with redis.sentinels (the "
                                   "name the sentinels monitor the primary "
                                   "under)");
        if (!c->redis_sentinel_cnt && c->redis_master_name[0])
                return config_fail(ctx, 0, "redis.master.name",
                                   "needs redis.sentinels");
        if (c->redis_sentinel_cnt && strcmp(c->redis_host, REDIS_HOST_DEFAULT))
                return config_fail(ctx, 0, "redis.host",
                                   "not used with redis.sentinels (they name "
                                   "the primary): leave it out");
        if (c->redis_sentinel_cnt && c->redis_port != REDIS_PORT_DEFAULT)
                return config_fail(ctx, 0, "redis.port",
                                   "not used with redis.sentinels (they name "
                                   "the primary): leave it out");
        if (c->redis_wait_replicas &&
            c->redis_wait_timeout_ms >= c->redis_timeout_ms)
                return config_fail(ctx, 0, "redis.wait.timeout",
                                   "must be below redis.timeout (a reply "
                                   "later than that is a lost connection)");
        return 0;
}
