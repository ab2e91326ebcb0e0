/* The stages' configurations made from the configuration, and what a
 * start checks before anything connects (ops/setup.h). */
#include "ops/setup.h"
#include "in_kafka/in_kafka.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A librdkafka property the client would refuse, named where it was set. */
static int setup_check_props(const struct ews_config_props *props,
                             const char *client, const char *config_path,
                             char *errstr, size_t errstr_size)
{
        char what[512], env[192];
        size_t j;
        int i;

        for (i = 0; i < props->cnt; i++) {
                const struct ews_config_prop *p = &props->prop[i];

                if (!ews_kafka_prop_check(p->key, p->value, what, sizeof(what)))
                        continue;
                switch (p->origin) {
                case EWS_PROP_FILE:
                        snprintf(errstr, errstr_size, "%s:%d: kafka.%s.%s: %s",
                                 config_path, p->line, client, p->key, what);
                        break;
                case EWS_PROP_ENV:
                        snprintf(env, sizeof(env), "EWS_KAFKA_%s_%s", client,
                                 p->key);
                        for (j = 0; env[j]; j++)
                                env[j] = env[j] == '.' ? '_'
                                         : (env[j] >= 'a' && env[j] <= 'z')
                                                 ? (char)(env[j] - 'a' + 'A')
                                                 : env[j];
                        snprintf(errstr, errstr_size, "%s: kafka.%s.%s: %s",
                                 env, client, p->key, what);
                        break;
                case EWS_PROP_ARG:
                        snprintf(errstr, errstr_size, "-X: %s: %s", p->key,
                                 what);
                        break;
                }
                return -1;
        }
        return 0;
}

/* What a start would refuse, found before anything connects: librdkafka
 * properties, and schema files that are missing or do not parse. */
int ews_setup_check(const struct ews_config *c, const char *config_path,
                    char *errstr, size_t errstr_size)
{
        static const char *const writer_keys[EWS_SOURCE_COUNT] = {
                [EWS_SOURCE_USAGE] = "decode.usage.writer.schema",
                [EWS_SOURCE_CAMPAIGN] = "decode.campaign.writer.schema"};
        const char *file = config_path ? config_path : "(defaults)";
        const char *key = "decode.schema.dir";
        struct ews_decoder *decoder;
        char what[768];
        int s;

        if (setup_check_props(&c->consumer, "consumer", file, errstr,
                              errstr_size) ||
            setup_check_props(&c->producer, "producer", file, errstr,
                              errstr_size))
                return -1;
        decoder = ews_setup_decoder(c, what, sizeof(what));
        if (decoder) {
                ews_decoder_destroy(decoder);
                return 0;
        }
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                if (c->writer_schema[s][0] && strstr(what, c->writer_schema[s]))
                        key = writer_keys[s];
        snprintf(errstr, errstr_size, "%s: %s: %s", file, key, what);
        return -1;
}

_Static_assert(EWS_CONFIG_SENTINELS_MAX <= EWS_STORE_SENTINELS_MAX,
               "every configured sentinel fits the store's conf");

struct ews_store_conf ews_setup_store_conf(const struct ews_config *c)
{
        struct ews_store_conf conf = {
                .host = c->redis_host,
                .port = c->redis_port,
                .timeout_ms = c->redis_timeout_ms,
                .prefix = c->redis_prefix,
                .topics = {c->topics[0], c->topics[1]},
                .retention_ms = c->retention_ms,
                .half_life_ms = c->score.half_life_ms,
                .cache_users = (size_t)c->cache_users,
                .username = c->redis_username,
                .password = c->redis_password,
                .sentinel_cnt = c->redis_sentinel_cnt,
                .master_name = c->redis_master_name,
                .sentinel_username = c->redis_sentinel_username,
                .sentinel_password = c->redis_sentinel_password,
                .wait_replicas = c->redis_wait_replicas,
                .wait_timeout_ms = c->redis_wait_timeout_ms,
        };
        int i;

        for (i = 0; i < c->redis_sentinel_cnt; i++)
                conf.sentinels[i] = c->redis_sentinels[i];
        return conf;
}

struct ews_decoder *ews_setup_decoder(const struct ews_config *c, char *errstr,
                                      size_t errstr_size)
{
        struct ews_decode_conf conf = {
                .schema_dir = c->schema_dir,
                .format = {c->format[0], c->format[1]},
                .writer_schema = {c->writer_schema[0], c->writer_schema[1]},
                .registry_url = c->registry_url,
                .registry_user = c->registry_user,
                .registry_password = c->registry_password,
                .registry_timeout_ms = c->registry_timeout_ms,
                .max_future_ms = c->max_future_ms,
                .max_bytes = (size_t)c->max_bytes,
                .max_items = (size_t)c->max_items,
        };

        return ews_decoder_new(&conf, errstr, errstr_size);
}

struct ews_http *ews_setup_http(const struct ews_config *c, char *errstr,
                                size_t errstr_size)
{
        struct ews_http_conf conf = {
                .bind = c->http_bind,
                .port = c->http_port,
                .token = c->http_token,
                .store = ews_setup_store_conf(c),
                .query = {.half_life_ms = c->score.half_life_ms,
                          .account_active_window_ms =
                                  c->account_active_window_ms,
                          .segments = c->segments != 0},
                /* what a start waits for first */
                .why = "waiting for brokers",
        };

        conf.store.cache_users = 1;
        return ews_http_new(&conf, errstr, errstr_size);
}

/* One TOPIC:PARTITION=OFFSET of len bytes at item into end; 0 or -1. */
static int setup_end_offset(const struct ews_config *c, const char *item,
                            size_t len,
                            int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX])
{
        char buf[512], *colon, *eq, *stop;
        long long partition, offset;
        int s;

        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, item, len);
        buf[len] = '\0';
        eq = strrchr(buf, '=');
        if (!eq)
                return -1;
        *eq = '\0';
        colon = strrchr(buf, ':');
        if (!colon)
                return -1;
        *colon = '\0';
        errno = 0;
        partition = strtoll(colon + 1, &stop, 10);
        if (errno || stop == colon + 1 || *stop || partition < 0 ||
            partition >= EWS_PARTITIONS_MAX)
                return -1;
        offset = strtoll(eq + 1, &stop, 10);
        if (errno || stop == eq + 1 || *stop || offset < 0)
                return -1;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                if (!strcmp(buf, c->topics[s])) {
                        end[s][partition] = offset;
                        return 0;
                }
        return -1;
}

int ews_setup_end_offsets(const struct ews_config *c, const char *list,
                          int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX],
                          char *errstr, size_t errstr_size)
{
        const char *item = list, *comma;
        size_t len;

        memset(end, 0xff,
               sizeof(int64_t) * EWS_SOURCE_COUNT * EWS_PARTITIONS_MAX);
        if (!*list)
                return 0;
        for (;; item = comma + 1) {
                comma = strchr(item, ',');
                if (!comma)
                        comma = item + strlen(item);
                len = (size_t)(comma - item);
                if (setup_end_offset(c, item, len, end)) {
                        snprintf(errstr, errstr_size,
                                 "--end-offsets: '%.*s' is not "
                                 "TOPIC:PARTITION=OFFSET with TOPIC %s or %s",
                                 (int)len, item, c->topics[0], c->topics[1]);
                        return -1;
                }
                if (!*comma)
                        break;
        }
        return 0;
}

/* A rule routed to a topic of its own: the topic must exist, as the input
 * topics must. */
static bool setup_routes(const struct ews_config *c, struct ews_out_kafka *out,
                         ews_setup_wait_fn wait, void *opaque)
{
        char why[400];
        int r;

        for (r = 0; r < EWS_RULE_COUNT; r++)
                while (c->topic_rules[r][0] &&
                       ews_out_kafka_partition_count(out, c->topic_rules[r],
                                                     2000) < 0) {
                        snprintf(why, sizeof(why), "waiting for topic %s (%s)",
                                 c->topic_rules[r],
                                 ews_config_rule_topic_key(r));
                        if (!wait(opaque, why))
                                return false;
                }
        return true;
}

int ews_setup_outputs(const struct ews_config *c, struct ews_out_kafka *out,
                      struct ews_decoder *decoder, ews_setup_wait_fn wait,
                      void *opaque, char *errstr, size_t errstr_size)
{
        char why[900], what[768];
        const char *topic;
        int r;

        if (!setup_routes(c, out, wait, opaque) ||
            c->alert_format != EWS_FORMAT_CONFLUENT)
                return 0;
        for (r = -1; r < EWS_RULE_COUNT; r++) {
                topic = r < 0 ? c->topic_alerts : c->topic_rules[r];
                if (!topic[0])
                        continue;
                for (;;) {
                        switch (ews_decode_alert_register(decoder, topic, what,
                                                          sizeof(what))) {
                        case EWS_DECODE_OK:
                                break;
                        case EWS_DECODE_RETRY:
                                snprintf(why, sizeof(why),
                                         "waiting for the schema registry: %s",
                                         what);
                                if (!wait(opaque, why))
                                        return 0;
                                continue;
                        default:
                                snprintf(errstr, errstr_size,
                                         "alerts.format confluent: the alert "
                                         "schema for %s-value: %s",
                                         topic, what);
                                return -1;
                        }
                        break;
                }
        }
        return 0;
}

void ews_setup_reload(struct ews_config *config, const char *path)
{
        static struct ews_config fresh;
        char errstr[1024];

        ews_config_defaults(&fresh);
        if (ews_config_load(&fresh, path, errstr, sizeof(errstr))) {
                ews_err("setup", "reload refused: %s", errstr);
                return;
        }
        if (fresh.score.half_life_ms != config->score.half_life_ms) {
                ews_err("setup", "reload refused: scoring.half.life changed; "
                                 "a new half-life needs a re-score (replay "
                                 "into a new redis.prefix), not a reload");
                return;
        }
        for (int r = 0; r < EWS_RULE_COUNT; r++)
                if (strcmp(fresh.topic_rules[r], config->topic_rules[r]))
                        ews_warn("setup",
                                 "%s changed: kept as it was until a restart "
                                 "(a start checks the topic)",
                                 ews_config_rule_topic_key(r));
        config->score = fresh.score;
        config->rules = fresh.rules;
        ews_info("setup", "reloaded the scoring and rule sections of %s",
                 path ? path : "(defaults)");
}
