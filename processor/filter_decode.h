/*
 * Stage 2, decode: Kafka message bytes -> our event structs.
 *
 * The one module that knows Avro. It also writes alerts as Avro, so that no
 * other module needs avro-c. Bytes are checked against the writer schema
 * (lengths, counts, union and enum indexes, against the bytes that remain
 * and configured maximums) before avro-c reads them: avro-c 1.11.1 trusts
 * lengths and crashes or over-allocates on hostile ones.
 */
#ifndef EWS_FILTER_DECODE_H
#define EWS_FILTER_DECODE_H

#include "ews.h"

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
        EWS_DECODE_ERR_COUNT
};

const char *ews_decode_err_name(enum ews_decode_err err);

struct ews_decode_conf {
        const char *schema_dir;
        int64_t max_future_ms; /* occurred_at beyond now + this is bad */
        size_t max_bytes;      /* longest string or bytes value */
        size_t max_items;      /* most array or map entries per message */
};

struct ews_decoder;

/* Loads the schemas from conf->schema_dir. Returns NULL on error. */
struct ews_decoder *ews_decoder_new(const struct ews_decode_conf *conf,
                                    char *errstr, size_t errstr_size);
void ews_decoder_destroy(struct ews_decoder *decoder);

/* Decodes one message into event, which the caller owns and reuses.
 * now_ms is the wall clock, for the future-timestamp check. */
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

/* Writes alert as Avro binary (schemas/alert.avsc) into buf. Returns the
 * length, or -1 with errstr set (buf too small). */
int ews_decode_alert_encode(struct ews_decoder *decoder,
                            const struct ews_alert *alert, void *buf,
                            size_t size, char *errstr, size_t errstr_size);

#endif
