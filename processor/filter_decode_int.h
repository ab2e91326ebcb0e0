/*
 * Internal to the decode module, the one place that knows avro-c.
 */
#ifndef EWS_FILTER_DECODE_INT_H
#define EWS_FILTER_DECODE_INT_H

#include <avro.h>

#include "filter_decode.h"

struct ews_decode_check_limits {
        size_t max_bytes; /* longest string, bytes or fixed */
        size_t max_items; /* array and map entries, summed per message */
};

struct decode_schema {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value; /* reused for every message */
        int value_ok;
};

struct ews_decoder {
        struct ews_decode_conf conf;
        struct ews_decode_check_limits limits;
        struct decode_schema usage, campaign, alert;
        avro_reader_t reader;
        avro_writer_t writer;
};

/* Walks Avro binary against a writer schema without allocating, so that
 * avro-c only ever reads bytes whose every length, count and index is
 * known to be sane. Checks that buf holds exactly one value of schema.
 * EWS_DECODE_OK, or why not with the offending position in errstr. */
enum ews_decode_err
ews_decode_check(avro_schema_t schema, const void *buf, size_t len,
                 const struct ews_decode_check_limits *limits, char *errstr,
                 size_t errstr_size);

#endif
