/*
 * Properties passed through as they are: the librdkafka settings of the
 * consumer and of the producer (`kafka.consumer`, `kafka.producer`, -X),
 * which the configuration collects and the Kafka stages apply. Shared here
 * so that those stages need nothing else of the configuration.
 */
#ifndef EWS_PROPS_H
#define EWS_PROPS_H

#define EWS_CONFIG_PROPS_MAX 64

/* Where a property was set, for the message that refuses it. */
enum ews_prop_origin {
        EWS_PROP_FILE, /* kafka.consumer.* or kafka.producer.*, at line */
        EWS_PROP_ENV,  /* EWS_KAFKA_CONSUMER_*, EWS_KAFKA_PRODUCER_* */
        EWS_PROP_ARG   /* -X */
};

struct ews_config_prop {
        char key[128];
        char value[512];
        enum ews_prop_origin origin;
        int line; /* EWS_PROP_FILE */
};

struct ews_config_props {
        int cnt;
        struct ews_config_prop prop[EWS_CONFIG_PROPS_MAX];
};

#endif
