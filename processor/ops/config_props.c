/* librdkafka properties given with -X: each goes to the client whose
 * scope it is, as librdkafka's CONFIGURATION.md gives them. */
#include "ops/config.h"
#include "ops/config_int.h"

#include <stdio.h>
#include <string.h>

/* librdkafka's scopes (CONFIGURATION.md: C, P or *) for the properties
 * that belong to one client only: a property given with -X goes to the
 * client it is for (the other would log a CONFWARN for it), the rest to
 * both. Names ending in a dot are prefixes. */
static const char *const config_consumer_only[] = {
        "group.",
        "fetch.",
        "auto.",
        "enable.auto.",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "isolation.level",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "queued.",
        "check.crcs",
        "enable.partition.eof",
        "consume.callback.max.messages",
        "coordinator.query.interval.ms",
        "offset.store.",
        "consume.",
        "rebalance_cb",
        "offset_commit_cb"};
static const char *const config_producer_only[] = {
        "linger.ms",
        "batch.",
        "acks",
        "request.required.acks",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "compression.",
        "queue.buffering.",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "transactional.id",
        "transaction.timeout.ms",
        "message.send.max.retries",
        "retries",
        "partitioner",
        "sticky.partitioning.linger.ms",
        "queuing.strategy",
        "request.timeout.ms",
        "produce.offset.report",
        "delivery.report.only.error",
        "dr_cb",
        "dr_msg_cb"};

static int config_scope_in(const char *key, const char *const *names,
                           size_t cnt)
{
        size_t i, len;

        for (i = 0; i < cnt; i++) {
                len = strlen(names[i]);
                if (names[i][len - 1] == '.' ? !strncmp(key, names[i], len)
                                             : !strcmp(key, names[i]))
                        return 1;
        }
        return 0;
}

int ews_config_set_kafka_prop(struct ews_config *config, const char *kv,
                              char *errstr, size_t errstr_size)
{
        const char *eq = strchr(kv, '=');
        char key[128];
        int consumer, producer;

        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
                snprintf(errstr, errstr_size, "-X %s: expected key=value", kv);
                return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        /* Shared by both clients and shown in logs: keep it in one place. */
        if (!strcmp(key, "bootstrap.servers")) {
                if (!eq[1]) {
                        snprintf(errstr, errstr_size,
                                 "-X: bootstrap.servers: must not be empty");
                        return -1;
                }
                if (strlen(eq + 1) >= sizeof(config->bootstrap_servers)) {
                        snprintf(errstr, errstr_size, "-X %s: too long", kv);
                        return -1;
                }
                config_copy(config->bootstrap_servers,
                            sizeof(config->bootstrap_servers), eq + 1);
                return 0;
        }
        consumer = !config_scope_in(key, config_producer_only,
                                    sizeof(config_producer_only) /
                                            sizeof(config_producer_only[0]));
        producer = !config_scope_in(key, config_consumer_only,
                                    sizeof(config_consumer_only) /
                                            sizeof(config_consumer_only[0]));
        if ((consumer && config_prop_set(&config->consumer, key, eq + 1,
                                         EWS_PROP_ARG, 0)) ||
            (producer && config_prop_set(&config->producer, key, eq + 1,
                                         EWS_PROP_ARG, 0))) {
                snprintf(errstr, errstr_size, "-X %s: too long or too many",
                         kv);
                return -1;
        }
        return 0;
}
