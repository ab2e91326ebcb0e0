/* Configuration: defaults, durations, environment, and bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/config.h"

static struct ews_config config;

static const char *config_write(const char *text)
{
        static char path[64];
        FILE *fp;

        snprintf(path, sizeof(path), "/tmp/ews-test-config-%d.yaml",
                 (int)getpid());
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        return path;
}

static void test_good_file(void **state)
{
        char errstr[512];
        const char *path =
                config_write("kafka:\n"
                             "  bootstrap.servers: broker:9092\n"
                             "  consumer:\n"
                             "    fetch.wait.max.ms: 50\n"
                             "redis:\n"
                             "  port: 7000\n"
                             "  timeout: 1.5s\n"
                             "scoring:\n"
                             "  half.life: 3d\n"
                             "  weights: {login: 2, webinar_attended: 12}\n"
                             "  page.classes: [pricing]\n"
                             "rules:\n"
                             "  user.disengaged: {inactivity: 48h}\n"
                             "  campaign.underperforming:\n"
                             "    decision: wilson\n"
                             "    alpha: 0.01\n");

        (void)state;
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        assert_string_equal(config.bootstrap_servers, "broker:9092");
        assert_int_equal(config.consumer.cnt, 1);
        assert_string_equal(config.consumer.prop[0].key, "fetch.wait.max.ms");
        assert_string_equal(config.consumer.prop[0].value, "50");
        assert_int_equal(config.redis_port, 7000);
        assert_true(config.redis_timeout_ms == 1500);
        assert_float_equal(config.score.half_life_ms, 3 * 86400000.0, 1e-6);
        assert_float_equal(config.rules.half_life_ms, 3 * 86400000.0, 1e-6);
        assert_true(config.rules.inactivity_ms == 48 * 3600000LL);
        assert_int_equal(config.rules.decision, EWS_DECISION_WILSON);
        assert_float_equal(config.rules.alpha, 0.01, 0);
        assert_int_equal(config.score.page_class_cnt, 1);
        assert_string_equal(config.score.page_classes[0], "pricing");
        /* defaults kept, one changed, one added */
        assert_string_equal(config.score.weights[0].event_type,
                            "trial_started");
        assert_float_equal(config.score.weights[1].points, 2.0, 0);
        assert_string_equal(
                config.score.weights[config.score.weight_cnt - 1].event_type,
                "webinar_attended");
        unlink(path);
}

static void test_environment_overrides_file(void **state)
{
        char errstr[512];
        const char *path = config_write("redis:\n  host: from-file\n");

        (void)state;
        setenv("EWS_REDIS_HOST", "from-env", 1);
        setenv("EWS_SCORING_PAGE_CLASSES", "pricing, docs", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        assert_string_equal(config.redis_host, "from-env");
        assert_int_equal(config.score.page_class_cnt, 2);
        assert_string_equal(config.score.page_classes[1], "docs");
        setenv("EWS_REDIS_PORT", "99999", 1);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "EWS_REDIS_PORT: redis.port"));
        unsetenv("EWS_REDIS_HOST");
        unsetenv("EWS_SCORING_PAGE_CLASSES");
        unsetenv("EWS_REDIS_PORT");
        unlink(path);
}

/* rules.<rule>.topic routes a rule's alerts; unset, they go to
 * topics.alerts. From the file and from the environment. */
static void test_rule_topics(void **state)
{
        char errstr[512];
        const char *path = config_write("rules:\n  sales.ready:\n"
                                        "    topic: sales-alerts\n");

        (void)state;
        setenv("EWS_RULES_CAMPAIGN_UNDERPERFORMING_TOPIC", "marketing", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        assert_string_equal(
                ews_config_rule_topic(&config, EWS_RULE_SALES_READY),
                "sales-alerts");
        assert_string_equal(ews_config_rule_topic(
                                    &config, EWS_RULE_CAMPAIGN_UNDERPERFORMING),
                            "marketing");
        assert_string_equal(
                ews_config_rule_topic(&config, EWS_RULE_USER_DISENGAGED),
                "ews-alerts");
        assert_string_equal(ews_config_rule_topic_key(EWS_RULE_ACCOUNT_AT_RISK),
                            "rules.account.at.risk.topic");
        unsetenv("EWS_RULES_CAMPAIGN_UNDERPERFORMING_TOPIC");
        unlink(path);
}

/* Each bad file fails with file, line and key named. */
static void test_bad_files(void **state)
{
        static const struct {
                const char *text;
                const char *want; /* after "<path>:" */
        } cases[] = {
                {"redis:\n  hots: x\n", "2: redis.hots: unknown key"},
                {"redis:\n  port: abc\n", "2: redis.port: expected an integer"},
                {"redis:\n  port: 0\n", "2: redis.port: expected an integer"},
                {"redis:\n  port: 6379.5\n", "2: redis.port"},
                {"kafka:\n  batch.wait: 5 parsecs\n",
                 "2: kafka.batch.wait: expected a duration"},
                {"scoring:\n  half.life: -1d\n", "2: scoring.half.life"},
                {"scoring:\n  weights:\n    login: lots\n",
                 "3: scoring.weights.login: expected points"},
                {"scoring:\n  page.classes: pricing\n",
                 "2: scoring.page.classes: expected a list"},
                {"redis: [1, 2]\n", "1: redis: expected a section, not a list"},
                {"redis:\n  port:\n    nested: 1\n",
                 "3: redis.port: expected a value, not a section"},
                {"kafka:\n  auto.offset.reset: middle\n",
                 "kafka.auto.offset.reset: expected earliest or latest"},
                {"rules:\n  campaign.underperforming:\n    decision: bayes\n",
                 "3: rules.campaign.underperforming.decision: expected wilson "
                 "or anytime, got 'bayes'"},
                {"rules:\n  campaign.underperforming: {alpha: 0}\n",
                 "2: rules.campaign.underperforming.alpha: expected a number"},
                {"redis: {port: 1\n", "2: "}, /* not YAML */
                /* libyaml keeps both: the second must not win silently */
                {"redis:\n  port: 1\n  host: h\n  port: 2\n",
                 "4: redis.port: duplicate key (first at line 2)"},
                {"topics:\n  usage: ''\n", "topics.usage: must not be empty"},
                {"kafka:\n  bootstrap.servers: ''\n",
                 "kafka.bootstrap.servers: must not be empty"},
                {"topics:\n  campaign: x\n  alerts: x\n",
                 "topics.campaign: must differ from topics.alerts"},
                {"topics:\n  usage: x\n  dlq: x\n",
                 "topics.usage: must differ from topics.dlq"},
                /* a rule's alerts read back as input, or as dead letters */
                {"rules:\n  sales.ready:\n    topic: product-usage\n",
                 "rules.sales.ready.topic: must differ from topics.usage"},
                {"rules:\n  account.at.risk:\n    topic: campaign-events\n",
                 "rules.account.at.risk.topic: must differ from "
                 "topics.campaign"},
                {"rules:\n  user.disengaged:\n    topic: ews-dlq\n",
                 "rules.user.disengaged.topic: must differ from topics.dlq"},
                {"alerts:\n  format: confluent\n",
                 "alerts.format: confluent needs decode.registry.url"},
                {"alerts:\n  format: json\n",
                 "alerts.format: expected avro or confluent"},
                {"redis:\n  master.name: m\n  sentinels:\n    - h:1\n"
                 "    - h\n",
                 "5: redis.sentinels: expected host:port"},
                {"redis:\n  sentinels: [h:0]\n",
                 "2: redis.sentinels: expected host:port"},
                {"redis:\n  sentinels: ['::1:26379']\n",
                 "2: redis.sentinels: expected host:port"},
                {"redis:\n  sentinels: a:1\n",
                 "2: redis.sentinels: expected a list"},
                {"redis:\n  sentinels: [h:1]\n",
                 "redis.master.name: must be set with redis.sentinels"},
                {"redis:\n  master.name: m\n",
                 "redis.master.name: needs redis.sentinels"},
                {"redis:\n  host: r\n  master.name: m\n  sentinels: [h:1]\n",
                 "redis.host: not used with redis.sentinels"},
                {"redis:\n  port: 7\n  master.name: m\n  sentinels: [h:1]\n",
                 "redis.port: not used with redis.sentinels"},
                {"redis:\n  wait: {replicas: 1, timeout: 2s}\n",
                 "redis.wait.timeout: must be below redis.timeout"},
                {"redis:\n  wait.replicas: -1\n",
                 "2: redis.wait.replicas: expected an integer"},
        };
        char errstr[512], want[600];
        const char *path;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                path = config_write(cases[i].text);
                ews_config_defaults(&config);
                assert_int_equal(
                        ews_config_load(&config, path, errstr, sizeof(errstr)),
                        -1);
                snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
                if (!strstr(errstr, cases[i].want) ||
                    strncmp(errstr, path, strlen(path)))
                        fail_msg("case %zu: got '%s', want '%s'", i, errstr,
                                 want);
                unlink(path);
        }
}

/* Every EWS_<SECTION>_ variable names a key; map keys are reachable. */
static void test_environment_names_keys(void **state)
{
        char errstr[512];
        int i;

        (void)state;
        setenv("EWS_BUILD", "/not/a/key", 1); /* the tests' own: left alone */
        setenv("EWS_SCORING_WEIGHTS_LOGIN", "3", 1);
        setenv("EWS_SCORING_WEIGHTS_WEBINAR_ATTENDED", "7", 1);
        setenv("EWS_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS", "50", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, NULL, errstr, sizeof(errstr)),
                         0);
        for (i = 0; i < config.score.weight_cnt; i++)
                if (!strcmp(config.score.weights[i].event_type, "login"))
                        assert_float_equal(config.score.weights[i].points, 3,
                                           0);
        assert_string_equal(
                config.score.weights[config.score.weight_cnt - 1].event_type,
                "webinar_attended");
        assert_string_equal(config.consumer.prop[0].key, "fetch.wait.max.ms");
        unsetenv("EWS_SCORING_WEIGHTS_LOGIN");
        unsetenv("EWS_SCORING_WEIGHTS_WEBINAR_ATTENDED");
        unsetenv("EWS_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS");
        setenv("EWS_REDIS_HOSTNAME", "h", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "EWS_REDIS_HOSTNAME: names no"));
        unsetenv("EWS_REDIS_HOSTNAME");
        setenv("EWS_SCORING_FIT", "x", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "scoring.fit: cannot be set"));
        unsetenv("EWS_SCORING_FIT");
        unsetenv("EWS_BUILD");
}

/* -X goes to the client whose property it is (CONFIGURATION.md's scope). */
static void test_kafka_prop_scope(void **state)
{
        char errstr[256];

        (void)state;
        ews_config_defaults(&config);
        assert_int_equal(ews_config_set_kafka_prop(&config,
                                                   "fetch.wait.max.ms=50",
                                                   errstr, sizeof(errstr)),
                         0);
        assert_int_equal(ews_config_set_kafka_prop(&config, "linger.ms=20",
                                                   errstr, sizeof(errstr)),
                         0);
        assert_int_equal(ews_config_set_kafka_prop(&config,
                                                   "socket.timeout.ms=9000",
                                                   errstr, sizeof(errstr)),
                         0);
        assert_int_equal(config.consumer.cnt, 2);
        assert_string_equal(config.consumer.prop[0].key, "fetch.wait.max.ms");
        assert_string_equal(config.consumer.prop[1].key, "socket.timeout.ms");
        assert_int_equal(config.producer.cnt, 2);
        assert_string_equal(config.producer.prop[0].key, "linger.ms");
        assert_string_equal(config.producer.prop[1].key, "socket.timeout.ms");
        assert_int_equal(ews_config_set_kafka_prop(&config,
                                                   "bootstrap.servers=", errstr,
                                                   sizeof(errstr)),
                         -1);
}

static void test_kafka_prop_passthrough(void **state)
{
        char errstr[256];

        (void)state;
        ews_config_defaults(&config);
        assert_int_equal(ews_config_set_kafka_prop(&config,
                                                   "security.protocol=SSL",
                                                   errstr, sizeof(errstr)),
                         0);
        assert_string_equal(config.consumer.prop[0].value, "SSL");
        assert_string_equal(config.producer.prop[0].value, "SSL");
        assert_int_equal(ews_config_set_kafka_prop(&config, "novalue", errstr,
                                                   sizeof(errstr)),
                         -1);
        assert_int_equal(ews_config_set_kafka_prop(&config,
                                                   "bootstrap.servers=h:1",
                                                   errstr, sizeof(errstr)),
                         0);
        assert_string_equal(config.bootstrap_servers, "h:1");
}

/* The sentinels as a YAML list or a comma-separated variable, addresses
 * longer than a name; the WAIT keys. */
static void test_redis_sentinels(void **state)
{
        static const char long_host[] =
                "redis-sentinel-0.redis-sentinel-headless.production.svc."
                "cluster.local:26379";
        char errstr[512], env[512];
        const char *path =
                config_write("redis:\n"
                             "  master.name: ews\n"
                             "  sentinels:\n"
                             "    - 10.0.0.11:26379\n"
                             "    - '[::1]:26380'\n"
                             "  wait: {replicas: 1, timeout: 250ms}\n");

        (void)state;
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(config.redis_sentinel_cnt, 2);
        assert_string_equal(config.redis_sentinels[0], "10.0.0.11:26379");
        assert_string_equal(config.redis_sentinels[1], "[::1]:26380");
        assert_string_equal(config.redis_master_name, "ews");
        assert_int_equal(config.redis_wait_replicas, 1);
        assert_true(config.redis_wait_timeout_ms == 250);

        snprintf(env, sizeof(env), " a:1 , %s", long_host);
        setenv("EWS_REDIS_SENTINELS", env, 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(config.redis_sentinel_cnt, 2);
        assert_string_equal(config.redis_sentinels[0], "a:1");
        assert_string_equal(config.redis_sentinels[1], long_host);

        setenv("EWS_REDIS_SENTINELS", "a:1,b", 1);
        ews_config_defaults(&config);
        assert_int_equal(ews_config_load(&config, path, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "EWS_REDIS_SENTINELS: redis.sentinels: "
                                       "expected host:port"));
        unsetenv("EWS_REDIS_SENTINELS");
        unlink(path);
}

/* config/ews.yaml documents the defaults: it must say what the code does. */
static void test_example_is_the_defaults(void **state)
{
        static struct ews_config from_file;
        char *a = NULL, *b = NULL, errstr[512];
        size_t a_len = 0, b_len = 0;
        FILE *fp;

        (void)state;
        ews_config_defaults(&config);
        ews_config_defaults(&from_file);
        assert_int_equal(ews_config_load(&from_file, "config/ews.yaml", errstr,
                                         sizeof(errstr)),
                         0);
        assert_int_equal(ews_config_load(&config, NULL, errstr, sizeof(errstr)),
                         0);
        fp = open_memstream(&a, &a_len);
        ews_config_print(&from_file, fp);
        fclose(fp);
        fp = open_memstream(&b, &b_len);
        ews_config_print(&config, fp);
        fclose(fp);
        assert_string_equal(a, b);
        free(a);
        free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_file),
                cmocka_unit_test(test_environment_overrides_file),
                cmocka_unit_test(test_bad_files),
                cmocka_unit_test(test_rule_topics),
                cmocka_unit_test(test_kafka_prop_passthrough),
                cmocka_unit_test(test_environment_names_keys),
                cmocka_unit_test(test_kafka_prop_scope),
                cmocka_unit_test(test_redis_sentinels),
                cmocka_unit_test(test_example_is_the_defaults),
        };
        cmocka_set_test_filter(getenv("EWS_TEST_FILTER")); /* NULL: all */
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
