/*
 * Stage 2, decode: Kafka message bytes -> our event structs.
 *
 * The one module that knows Avro. It also writes alerts as Avro, so that no
 * other module needs avro-c. Bytes are checked against the writer schema
 * (lengths, counts, union and enum indexes, against the bytes that remain
 * and configured maximums) before avro-c reads them: avro-c 1.11.1 trusts
 * lengths and crashes or over-allocates on hostile ones.
 *
 * Each input topic has a format:
 *   avro       Avro binary written with a configured writer schema (ours by
 *              default), resolved against our reader schema;
 *   confluent  the Schema Registry wire format: byte 0, a 4-byte big-endian
 *              schema id, Avro binary; the writer schema is fetched by id
 *              once (filter_decode_registry.c) and resolved against ours;
 *   json       one JSON object per message with the same field names.
 * Resolution lets producers evolve compatibly (optional fields added,
 * fields with defaults removed, int widened to long, ...).
 */
#ifndef EWS_FILTER_DECODE_H
#define EWS_FILTER_DECODE_H

#include "util/ews.h"

/* Why a message was rejected. The names label dead letters and metrics. */
enum ews_decode_err {
        EWS_DECODE_OK = 0,
        EWS_DECODE_EMPTY,
        EWS_DECODE_TRUNCATED,
        EWS_DECODE_BAD_LENGTH,
        EWS_DECODE_BAD_INDEX,
        EWS_DECODE_BAD_VALUE,
        EWS_DECODE_TRAILING_BYTES,
        EWS_DECODE_AVRO,
        EWS_DECODE_MISSING_FIELD,
        EWS_DECODE_ID_TOO_LONG,
        EWS_DECODE_BAD_TIMESTAMP,
        EWS_DECODE_FUTURE_TIMESTAMP,
        EWS_DECODE_BAD_MAGIC,           /* not the registry's wire format */
        EWS_DECODE_UNKNOWN_SCHEMA,      /* the registry has no such id */
        EWS_DECODE_INCOMPATIBLE_SCHEMA, /* cannot be read as ours */
        EWS_DECODE_BAD_JSON,
        EWS_DECODE_RETRY, /* registry unavailable: not bad input, retry */
        EWS_DECODE_ERR_COUNT
};

enum ews_decode_format {
        EWS_FORMAT_AVRO = 0,
        EWS_FORMAT_CONFLUENT,
        EWS_FORMAT_JSON
};

/* "avro", "confluent", "json"; -1 for anything else. */
int ews_decode_format_parse(const char *name);

const char *ews_decode_err_name(enum ews_decode_err err);

struct ews_decode_conf {
        const char *schema_dir; /* our reader schemas and alert.avsc */
        enum ews_decode_format format[EWS_SOURCE_COUNT];
        /* avro format: the producers' writer schema file; NULL: ours. */
        const char *writer_schema[EWS_SOURCE_COUNT];
        /* confluent format: the registry, e.g. http://registry:8081 */
        const char *registry_url;
        const char *registry_user; /* basic auth, NULL for none */
        const char *registry_password;
        int64_t registry_timeout_ms;
        int64_t max_future_ms; /* occurred_at beyond now + this is bad */
        size_t max_bytes;      /* longest string or bytes value */
        size_t max_items;      /* most array or map entries per message */
};

struct ews_decoder;

/* Loads the schemas from conf->schema_dir. Returns NULL on error. */
struct ews_decoder *ews_decoder_new(const struct ews_decode_conf *conf,
                                    char *errstr, size_t errstr_size);
void ews_decoder_destroy(struct ews_decoder *decoder);

/* Registers a writer schema under a registry id as if fetched, for tests,
 * fuzzing and preloading. A schema that cannot be read as ours is
 * remembered as such and refuses its messages (incompatible_schema).
 * Returns 0, or -1 with errstr when out of memory. */
int ews_decoder_schema_add(struct ews_decoder *decoder, int32_t id,
                           const char *json, size_t len, char *errstr,
                           size_t errstr_size);

/* Decodes one message of the source's format into event, which the caller
 * owns and reuses. now_ms is the wall clock, for the future-timestamp
 * check. EWS_DECODE_RETRY: the registry could not be asked; the message is
 * not bad and must be decoded again later. */
enum ews_decode_err ews_decode_usage(struct ews_decoder *decoder,
                                     const void *buf, size_t len,
                                     int64_t now_ms,
                                     struct ews_usage_event *event,
                                     char *errstr, size_t errstr_size);
enum ews_decode_err ews_decode_campaign(struct ews_decoder *decoder,
                                        const void *buf, size_t len,
                                        int64_t now_ms,
                                        struct ews_campaign_event *event,
                                        char *errstr, size_t errstr_size);

/* Reads an alert (Avro binary of schemas/alert.avsc as published, or the
 * registry's wire format of it, read with our schema without asking the
 * registry), for tools that read the alert topic. Values and contributors
 * beyond the struct's room are left out. */
enum ews_decode_err ews_decode_alert(struct ews_decoder *decoder,
                                     const void *buf, size_t len,
                                     struct ews_alert *alert, char *errstr,
                                     size_t errstr_size);

/* Writes alert as Avro binary (schemas/alert.avsc) into buf. Returns the
 * length, or -1 with errstr set (buf too small). */
int ews_decode_alert_encode(struct ews_decoder *decoder,
                            const struct ews_alert *alert, void *buf,
                            size_t size, char *errstr, size_t errstr_size);

/* Alerts in the registry's wire format (alerts.format: confluent):
 * registers schemas/alert.avsc under the subject <topic>-value, so that
 * ews_decode_alert_encode_for() frames the alerts of topic with the id the
 * registry gave. EWS_DECODE_OK; EWS_DECODE_RETRY when the registry could
 * not be asked (an outage: ask again); EWS_DECODE_INCOMPATIBLE_SCHEMA
 * when it refused the schema or none is configured. */
enum ews_decode_err ews_decode_alert_register(struct ews_decoder *decoder,
                                              const char *topic, char *errstr,
                                              size_t errstr_size);

/* As ews_decode_alert_encode(), for topic: in the wire format (byte 0, the
 * 4-byte big-endian schema id, then Avro binary) when topic was
 * registered, plain Avro binary otherwise. */
int ews_decode_alert_encode_for(struct ews_decoder *decoder, const char *topic,
                                const struct ews_alert *alert, void *buf,
                                size_t size, char *errstr, size_t errstr_size);

#endif
