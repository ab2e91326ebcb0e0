#include "config.h"
#include "config_int.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CK(path, type, field, min, max)                                        \
        {                                                                      \
                path, type, offsetof(struct ews_config, field),                \
                        sizeof(((struct ews_config *)0)->field), 0, min, max   \
        }
#define CK_LIST(path, field, cnt)                                              \
        {                                                                      \
                path, CONFIG_LIST, offsetof(struct ews_config, field),         \
                        EWS_SCORE_LIST_MAX, offsetof(struct ews_config, cnt),  \
                        0, 0                                                   \
        }

#define DAY_MS (86400.0 * 1000.0)

const struct config_key config_keys[] = {
        CK("kafka.bootstrap.servers", CONFIG_STR, bootstrap_servers, 0, 0),
        CK("kafka.group.id", CONFIG_STR, group_id, 0, 0),
        CK("kafka.auto.offset.reset", CONFIG_STR, offset_reset, 0, 0),
        CK("kafka.batch.max", CONFIG_INT, batch_max, 1, 100000),
        CK("kafka.batch.wait", CONFIG_MS, batch_wait_ms, 1, 60000),
        CK("topics.usage", CONFIG_STR, topics[EWS_SOURCE_USAGE], 0, 0),
        CK("topics.campaign", CONFIG_STR, topics[EWS_SOURCE_CAMPAIGN], 0, 0),
        CK("topics.alerts", CONFIG_STR, topic_alerts, 0, 0),
        CK("topics.dlq", CONFIG_STR, topic_dlq, 0, 0),
        CK("redis.host", CONFIG_STR, redis_host, 0, 0),
        CK("redis.port", CONFIG_INT, redis_port, 1, 65535),
        CK("redis.timeout", CONFIG_MS, redis_timeout_ms, 1, 600000),
        CK("redis.prefix", CONFIG_STR, redis_prefix, 0, 0),
        CK("redis.username", CONFIG_STR, redis_username, 0, 0),
        CK("redis.password", CONFIG_STR, redis_password, 0, 0),
        CK("http.bind", CONFIG_STR, http_bind, 0, 0),
        CK("http.port", CONFIG_INT, http_port, 0, 65535),
        CK("http.token", CONFIG_STR, http_token, 0, 0),
        CK("state.retention", CONFIG_MS, retention_ms, 3600000, 3650 * DAY_MS),
        CK("state.cache.users", CONFIG_INT, cache_users, 1, 100000000),
        CK("scoring.account.active.window", CONFIG_MS, account_active_window_ms,
           3600000, 365 * DAY_MS),
        CK("decode.schema.dir", CONFIG_STR, schema_dir, 0, 0),
        CK("decode.usage.format", CONFIG_STR, format[EWS_SOURCE_USAGE], 0, 0),
        CK("decode.usage.writer.schema", CONFIG_STR,
           writer_schema[EWS_SOURCE_USAGE], 0, 0),
        CK("decode.campaign.format", CONFIG_STR, format[EWS_SOURCE_CAMPAIGN], 0,
           0),
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
        CK("scoring.sales.ready.points", CONFIG_DOUBLE,
           score.sales_ready_points, 0, 1e9),
        CK("scoring.dedup.events", CONFIG_INT, score.dedup_events, 0,
           EWS_DEDUP_MAX),
        {"scoring.fit", CONFIG_FIT, 0, 0, 0, 0, 0},
        CK("time.mode", CONFIG_STR, time_mode, 0, 0),
        CK("time.max.alert.age", CONFIG_MS, max_alert_age_ms, 0, 3650 * DAY_MS),
        CK("rules.dwell", CONFIG_MS, rules.dwell_ms, 0, 365 * DAY_MS),
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
        CK("rules.campaign.underperforming.confidence.z", CONFIG_DOUBLE,
           rules.confidence_z, 0, 10),
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
        CK("log.level", CONFIG_STR, log_level, 0, 0),
        CK("log.format", CONFIG_STR, log_format, 0, 0),
};

const size_t config_key_cnt = sizeof(config_keys) / sizeof(config_keys[0]);
#define CONFIG_KEY_CNT config_key_cnt

void config_copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src);
}

static void config_weight(struct ews_config *config, const char *type,
                          double points)
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
        config_copy(config->offset_reset, sizeof(config->offset_reset),
                    "earliest");
        config->batch_max = 2000;
        config->batch_wait_ms = 100;
        config_copy(config->topics[EWS_SOURCE_USAGE], 256, "product-usage");
        config_copy(config->topics[EWS_SOURCE_CAMPAIGN], 256,
                    "campaign-events");
        config_copy(config->topic_alerts, 256, "ews-alerts");
        config_copy(config->topic_dlq, 256, "ews-dlq");
        config_copy(config->redis_host, sizeof(config->redis_host),
                    "127.0.0.1");
        config->redis_port = 6379;
        config->redis_timeout_ms = 2000;
        config_copy(config->http_bind, sizeof(config->http_bind), "127.0.0.1");
        config->http_port = 9464;
        config_copy(config->redis_prefix, sizeof(config->redis_prefix), "ews:");
        config->retention_ms = (int64_t)(90 * DAY_MS);
        config->cache_users = 200000;
        config->account_active_window_ms = (int64_t)(7 * DAY_MS);
        config_copy(config->schema_dir, sizeof(config->schema_dir), "schemas");
        config_copy(config->format[EWS_SOURCE_USAGE], 16, "avro");
        config_copy(config->format[EWS_SOURCE_CAMPAIGN], 16, "avro");
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
        config_copy(config->time_mode, sizeof(config->time_mode), "auto");
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
        config->rules.confidence_z = 1.645;
        config->rules.default_target = 0.3;
        config->rules.resolve_margin = 0.05;
        config->rules.trailing_days = 14;
        config->rules.at_risk_share = 0.5;
        config->rules.at_risk_resolve_share = 0.8;
        config->rules.at_risk_min_level = 3;
        config->outbox_resend_ms = 10000;
        config->leader_lease_ms = 10000;
        config_copy(config->log_level, sizeof(config->log_level), "info");
        config_copy(config->log_format, sizeof(config->log_format), "text");
}

/* "250ms", "30s", "15m", "72h", "7d"; a bare number is milliseconds. */
static int config_parse_ms(const char *s, double *ms)
{
        static const struct {
                const char *unit;
                double ms;
        } units[] = {{"ms", 1},      {"s", 1000},       {"m", 60000},
                     {"h", 3600000}, {"d", 86400000.0}, {"", 1}};
        char *end;
        double v;
        size_t i;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -1;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (!strcmp(end, units[i].unit)) {
                        *ms = v * units[i].ms;
                        return 0;
                }
        }
        return -1;
}

int config_parse_double(const char *s, double *v)
{
        char *end;

        errno = 0;
        *v = strtod(s, &end);
        return (errno || end == s || *end || !isfinite(*v)) ? -1 : 0;
}

int config_fail(struct config_ctx *ctx, size_t line, const char *key,
                const char *what)
{
        if (line)
                snprintf(ctx->errstr, ctx->errstr_size, "%s:%zu: %s: %s",
                         ctx->file, line, key, what);
        else
                snprintf(ctx->errstr, ctx->errstr_size, "%s: %s: %s", ctx->file,
                         key, what);
        return -1;
}

static int config_set_scalar(struct config_ctx *ctx,
                             const struct config_key *key, const char *value,
                             size_t line)
{
        char *field = (char *)ctx->config + key->offset;
        char what[256];
        double v;

        switch (key->type) {
        case CONFIG_STR:
                if (strlen(value) >= key->size)
                        return config_fail(ctx, line, key->path, "too long");
                config_copy(field, key->size, value);
                return 0;
        case CONFIG_INT:
        case CONFIG_DOUBLE:
                if (config_parse_double(value, &v) ||
                    (key->type == CONFIG_INT && v != floor(v)))
                        break;
                if (v < key->min || v > key->max)
                        break;
                if (key->type == CONFIG_INT)
                        *(int *)field = (int)v;
                else
                        *(double *)field = v;
                return 0;
        case CONFIG_MS:
        case CONFIG_MS_F:
                if (config_parse_ms(value, &v) || v < key->min || v > key->max)
                        break;
                if (key->type == CONFIG_MS)
                        *(int64_t *)field = (int64_t)v;
                else
                        *(double *)field = v;
                return 0;
        case CONFIG_LIST:
        case CONFIG_FIT:
                return config_fail(ctx, line, key->path, "expected a list");
        }
        if (key->type == CONFIG_MS || key->type == CONFIG_MS_F)
                snprintf(what, sizeof(what),
                         "expected a duration (e.g. 500ms, 30s, 72h, 7d) "
                         "from %.0fms to %.0fms, got '%.64s'",
                         key->min, key->max, value);
        else
                snprintf(what, sizeof(what),
                         "expected a%s from %g to %g, got '%.64s'",
                         key->type == CONFIG_INT ? "n integer" : " number",
                         key->min, key->max, value);
        return config_fail(ctx, line, key->path, what);
}

static int config_list_add(struct config_ctx *ctx, const struct config_key *key,
                           const char *item, size_t line)
{
        char(*list)[EWS_NAME_MAX] =
                (char(*)[EWS_NAME_MAX])((char *)ctx->config + key->offset);
        int *cnt = (int *)((char *)ctx->config + key->cnt_offset);

        if ((size_t)*cnt >= key->size)
                return config_fail(ctx, line, key->path, "too many entries");
        if (!*item || strlen(item) >= EWS_NAME_MAX)
                return config_fail(ctx, line, key->path,
                                   "entry empty or too long");
        config_copy(list[(*cnt)++], EWS_NAME_MAX, item);
        return 0;
}

static const struct config_key *config_key_find(const char *path)
{
        size_t i;

        for (i = 0; i < CONFIG_KEY_CNT; i++)
                if (!strcmp(config_keys[i].path, path))
                        return &config_keys[i];
        return NULL;
}

static int config_prop_set(struct ews_config_props *props, const char *key,
                           const char *value)
{
        int i;

        if (strlen(key) >= sizeof(props->prop[0].key) ||
            strlen(value) >= sizeof(props->prop[0].value))
                return -1;
        for (i = 0; i < props->cnt; i++)
                if (!strcmp(props->prop[i].key, key))
                        break;
        if (i == props->cnt) {
                if (props->cnt == EWS_CONFIG_PROPS_MAX)
                        return -1;
                props->cnt++;
        }
        config_copy(props->prop[i].key, sizeof(props->prop[i].key), key);
        config_copy(props->prop[i].value, sizeof(props->prop[i].value), value);
        return 0;
}

/* Keys under these prefixes are open-ended: the rest of the path is the
 * librdkafka property or the event type. */
static int config_set_prefixed(struct config_ctx *ctx, const char *path,
                               const char *value, size_t line)
{
        static const char consumer[] = "kafka.consumer.";
        static const char producer[] = "kafka.producer.";
        static const char weights[] = "scoring.weights.";
        double points;

        if (!strncmp(path, consumer, sizeof(consumer) - 1)) {
                if (config_prop_set(&ctx->config->consumer,
                                    path + sizeof(consumer) - 1, value))
                        return config_fail(ctx, line, path,
                                           "too long or too many");
                return 0;
        }
        if (!strncmp(path, producer, sizeof(producer) - 1)) {
                if (config_prop_set(&ctx->config->producer,
                                    path + sizeof(producer) - 1, value))
                        return config_fail(ctx, line, path,
                                           "too long or too many");
                return 0;
        }
        if (!strncmp(path, weights, sizeof(weights) - 1)) {
                const char *type = path + sizeof(weights) - 1;
                if (!*type || strlen(type) >= EWS_NAME_MAX)
                        return config_fail(ctx, line, path,
                                           "event type empty or too long");
                if (config_parse_double(value, &points) || points < -1000 ||
                    points > 1000)
                        return config_fail(ctx, line, path,
                                           "expected points from -1000 to "
                                           "1000");
                if (ctx->config->score.weight_cnt == EWS_SCORE_WEIGHTS_MAX)
                        return config_fail(ctx, line, path, "too many weights");
                config_weight(ctx->config, type, points);
                return 0;
        }
        return config_fail(ctx, line, path, "unknown key");
}

static int config_walk(struct config_ctx *ctx, yaml_document_t *doc,
                       yaml_node_t *node, char *path, size_t path_len);

/* Whether path names a section: some key lies below it. */
static int config_is_section(const char *path)
{
        size_t i, len = strlen(path);

        for (i = 0; i < CONFIG_KEY_CNT; i++)
                if (!strncmp(config_keys[i].path, path, len) &&
                    config_keys[i].path[len] == '.')
                        return 1;
        return !strcmp(path, "kafka.consumer") ||
               !strcmp(path, "kafka.producer") ||
               !strcmp(path, "scoring.weights");
}

static int config_walk_mapping(struct config_ctx *ctx, yaml_document_t *doc,
                               yaml_node_t *node, char *path, size_t path_len)
{
        yaml_node_pair_t *pair;

        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(doc, pair->key);
                yaml_node_t *value = yaml_document_get_node(doc, pair->value);
                int n;

                if (!key || key->type != YAML_SCALAR_NODE)
                        return config_fail(ctx,
                                           key ? key->start_mark.line + 1 : 0,
                                           path, "keys must be plain names");
                n = snprintf(path + path_len, 512 - path_len, "%s%s",
                             path_len ? "." : "",
                             (const char *)key->data.scalar.value);
                if (n < 0 || (size_t)n >= 512 - path_len)
                        return config_fail(ctx, key->start_mark.line + 1, path,
                                           "key too long");
                /* A subsection was asked for but a value was given, or the
                 * other way round: the walk reports it at the leaf. */
                if (config_walk(ctx, doc, value, path, path_len + (size_t)n))
                        return -1;
                path[path_len] = '\0';
        }
        return 0;
}

static int config_walk(struct config_ctx *ctx, yaml_document_t *doc,
                       yaml_node_t *node, char *path, size_t path_len)
{
        const struct config_key *key = config_key_find(path);
        size_t line = node->start_mark.line + 1;
        yaml_node_item_t *item;
        int *cnt;

        switch (node->type) {
        case YAML_MAPPING_NODE:
                if (key)
                        return config_fail(ctx, line, path,
                                           "expected a value, not a section");
                return config_walk_mapping(ctx, doc, node, path, path_len);
        case YAML_SEQUENCE_NODE:
                if (key && key->type == CONFIG_FIT)
                        return config_fit(ctx, doc, node, path);
                if (!key || key->type != CONFIG_LIST)
                        return config_fail(
                                ctx, line, path,
                                key ? "expected a value, not a list"
                                : config_is_section(path)
                                        ? "expected a section, not a list"
                                        : "unknown key");
                cnt = (int *)((char *)ctx->config + key->cnt_offset);
                *cnt = 0; /* a list in the file replaces the default */
                for (item = node->data.sequence.items.start;
                     item < node->data.sequence.items.top; item++) {
                        yaml_node_t *v = yaml_document_get_node(doc, *item);
                        if (!v || v->type != YAML_SCALAR_NODE)
                                return config_fail(ctx, line, path,
                                                   "list entries must be "
                                                   "names");
                        if (config_list_add(ctx, key,
                                            (const char *)v->data.scalar.value,
                                            v->start_mark.line + 1))
                                return -1;
                }
                return 0;
        case YAML_SCALAR_NODE:
                /* A section left empty, with its keys commented out. */
                if (!key && config_is_section(path)) {
                        if (!node->data.scalar.length)
                                return 0;
                        return config_fail(ctx, line, path,
                                           "expected a section, not a value");
                }
                if (!key)
                        return config_set_prefixed(
                                ctx, path,
                                (const char *)node->data.scalar.value, line);
                return config_set_scalar(
                        ctx, key, (const char *)node->data.scalar.value, line);
        default:
                return config_fail(ctx, line, path, "unexpected YAML node");
        }
}

/* EWS_REDIS_HOST overrides redis.host; lists are comma-separated. */
static int config_env(struct config_ctx *ctx)
{
        char name[160], item[EWS_NAME_MAX], *p;
        const char *value, *s, *comma;
        size_t i, j, len;

        for (i = 0; i < CONFIG_KEY_CNT; i++) {
                const struct config_key *key = &config_keys[i];

                len = (size_t)snprintf(name, sizeof(name), "EWS_%s", key->path);
                for (j = 4; j < len; j++)
                        name[j] =
                                name[j] == '.'
                                        ? '_'
                                        : (char)toupper((unsigned char)name[j]);
                value = getenv(name);
                if (!value || key->type == CONFIG_FIT)
                        continue;
                ctx->file = name;
                if (key->type != CONFIG_LIST) {
                        if (config_set_scalar(ctx, key, value, 0))
                                return -1;
                        continue;
                }
                *(int *)((char *)ctx->config + key->cnt_offset) = 0;
                for (s = value; *s; s = *comma ? comma + 1 : comma) {
                        while (isspace((unsigned char)*s))
                                s++;
                        comma = strchr(s, ',');
                        if (!comma)
                                comma = s + strlen(s);
                        snprintf(item, sizeof(item), "%.*s", (int)(comma - s),
                                 s);
                        for (p = item + strlen(item);
                             p > item && isspace((unsigned char)p[-1]); p--)
                                p[-1] = '\0';
                        if (config_list_add(ctx, key, item, 0))
                                return -1;
                }
        }
        return 0;
}

static int config_check(struct config_ctx *ctx)
{
        struct ews_config *config = ctx->config;

        if (strcmp(config->offset_reset, "earliest") &&
            strcmp(config->offset_reset, "latest"))
                return config_fail(ctx, 0, "kafka.auto.offset.reset",
                                   "expected earliest or latest");
        for (int s = 0; s < EWS_SOURCE_COUNT; s++)
                if (strcmp(config->format[s], "avro") &&
                    strcmp(config->format[s], "confluent") &&
                    strcmp(config->format[s], "json"))
                        return config_fail(ctx, 0,
                                           s ? "decode.campaign.format"
                                             : "decode.usage.format",
                                           "expected avro, confluent or json");
        if ((!strcmp(config->format[0], "confluent") ||
             !strcmp(config->format[1], "confluent")) &&
            !config->registry_url[0])
                return config_fail(ctx, 0, "decode.registry.url",
                                   "the confluent format needs a registry");
        if (strcmp(config->log_format, "text") &&
            strcmp(config->log_format, "json"))
                return config_fail(ctx, 0, "log.format",
                                   "expected text or json");
        if (strcmp(config->log_level, "error") &&
            strcmp(config->log_level, "warn") &&
            strcmp(config->log_level, "info") &&
            strcmp(config->log_level, "debug"))
                return config_fail(ctx, 0, "log.level",
                                   "expected error, warn, info or debug");
        if (strcmp(config->time_mode, "auto") &&
            strcmp(config->time_mode, "event") &&
            strcmp(config->time_mode, "wall"))
                return config_fail(ctx, 0, "time.mode",
                                   "expected auto, event or wall");
        if (config->rules.exit_share < config->rules.drop_share)
                return config_fail(ctx, 0, "rules.user.disengaged.exit.share",
                                   "must not be below drop.share");
        if (config->rules.sales_ready_exit > config->score.sales_ready_points)
                return config_fail(ctx, 0, "rules.sales.ready.exit.points",
                                   "must not be above "
                                   "scoring.sales.ready.points");
        config->rules.half_life_ms = config->score.half_life_ms;
        config->rules.sales_ready_points = config->score.sales_ready_points;
        config->rules.active_window_ms = config->account_active_window_ms;
        return 0;
}

int ews_config_load(struct ews_config *config, const char *path, char *errstr,
                    size_t errstr_size)
{
        struct config_ctx ctx = {config, path, errstr, errstr_size};
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root;
        char key_path[512] = "";
        FILE *fp = NULL;
        int parser_ok = 0, doc_ok = 0, rc = -1;

        if (path) {
                fp = fopen(path, "rb");
                if (!fp) {
                        snprintf(errstr, errstr_size, "%s: %s", path,
                                 strerror(errno));
                        goto out;
                }
                if (!yaml_parser_initialize(&parser)) {
                        snprintf(errstr, errstr_size, "%s: out of memory",
                                 path);
                        goto out;
                }
                parser_ok = 1;
                yaml_parser_set_input_file(&parser, fp);
                if (!yaml_parser_load(&parser, &doc)) {
                        snprintf(errstr, errstr_size, "%s:%zu: %s", path,
                                 parser.problem_mark.line + 1,
                                 parser.problem ? parser.problem
                                                : "invalid YAML");
                        goto out;
                }
                doc_ok = 1;
                root = yaml_document_get_root_node(&doc);
                if (root && !(root->type == YAML_SCALAR_NODE &&
                              !root->data.scalar.length)) {
                        if (root->type != YAML_MAPPING_NODE) {
                                config_fail(&ctx, root->start_mark.line + 1,
                                            "(top)", "expected a mapping");
                                goto out;
                        }
                        if (config_walk(&ctx, &doc, root, key_path, 0))
                                goto out;
                }
        }
        if (config_env(&ctx))
                goto out;
        ctx.file = path ? path : "(defaults)";
        if (config_check(&ctx))
                goto out;
        rc = 0;
out:
        if (doc_ok)
                yaml_document_delete(&doc);
        if (parser_ok)
                yaml_parser_delete(&parser);
        if (fp)
                fclose(fp);
        return rc;
}

int ews_config_set_kafka_prop(struct ews_config *config, const char *kv,
                              char *errstr, size_t errstr_size)
{
        const char *eq = strchr(kv, '=');
        char key[128];

        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
                snprintf(errstr, errstr_size, "-X %s: expected key=value", kv);
                return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        /* Shared by both clients and shown in logs: keep it in one place. */
        if (!strcmp(key, "bootstrap.servers")) {
                if (strlen(eq + 1) >= sizeof(config->bootstrap_servers)) {
                        snprintf(errstr, errstr_size, "-X %s: too long", kv);
                        return -1;
                }
                config_copy(config->bootstrap_servers,
                            sizeof(config->bootstrap_servers), eq + 1);
                return 0;
        }
        if (config_prop_set(&config->consumer, key, eq + 1) ||
            config_prop_set(&config->producer, key, eq + 1)) {
                snprintf(errstr, errstr_size, "-X %s: too long or too many",
                         kv);
                return -1;
        }
        return 0;
}
