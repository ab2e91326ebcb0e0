/*
 * Internal to the decode module, the one place that knows avro-c: what its
 * files share. decode.c is the decoder and its per-message paths, schema.c
 * our schemas and the paths from a writer's, check.c the walk that comes
 * before avro-c reads, fields.c and json.c our structs from a record or a
 * JSON object, fast.c usage events straight from bytes of our own schema,
 * alert_encode.c alerts as Avro (alert_wire.c: in the registry's wire
 * format).
 */
#ifndef EWS_FILTER_DECODE_INT_H
#define EWS_FILTER_DECODE_INT_H

#include <avro.h>

#include "decode/decode.h"
#include "decode/registry.h"

struct ews_decode_check_limits {
        size_t max_bytes; /* longest string, bytes or fixed */
        size_t max_items; /* array and map entries, summed per message */
};

#define DECODE_FIELDS_MAX 64

/* One of our schemas, with a value of it reused for every message. */
struct decode_schema {
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        int value_ok;
        /* Fields with a default: a writer may leave them out. */
        int default_cnt;
        char defaults[DECODE_FIELDS_MAX][64];
};

/*
 * How bytes written with one writer schema become a record of our fields.
 * avro-c 1.11.1 resolves only fields both schemas have (a reader default
 * is not filled in), so another writer is resolved against our schema
 * projected onto the writer's fields, once each field it lacks is known to
 * have a default in ours; reading that record, a missing field is absent,
 * which our defaults (null, empty) mean anyway.
 */
struct decode_path {
        avro_schema_t writer;       /* the schema the bytes were written with */
        struct decode_check *check; /* the writer's, compiled */
        avro_schema_t projection;   /* ours, less what the writer lacks */
        avro_value_iface_t *dest_iface;
        avro_value_t dest; /* the record read; when not ours, the value */
        int dest_ok;
        avro_value_iface_t *resolver; /* NULL: the writer is our schema */
        avro_value_t resolved;        /* a writer value filling dest */
        int resolved_ok;
};

/* A registry schema id, as it was found for a source. */
struct decode_registered {
        int32_t id;
        enum ews_source source;
        enum ews_decode_err status; /* OK, UNKNOWN_SCHEMA or INCOMPATIBLE_ */
        int64_t checked_ms;         /* monotonic, when the registry said so */
        char reason[256];
        struct decode_path path;
};

/* An alert topic in the registry's wire format: the id the registry gave
 * alert.avsc under the subject <topic>-value. */
struct decode_alert_topic {
        char topic[256];
        int32_t id;
};
#define DECODE_ALERT_TOPICS_MAX (EWS_RULE_COUNT + 1)

struct ews_decoder {
        struct ews_decode_conf conf;
        struct ews_decode_check_limits limits;
        struct decode_schema reader[EWS_SOURCE_COUNT];
        struct decode_schema alert;
        struct decode_check *alert_check; /* alert.avsc's, compiled */
        struct decode_path raw[EWS_SOURCE_COUNT];
        struct decode_registered *registered;
        size_t registered_cnt, registered_cap;
        struct registry *registry;
        struct decode_alert_topic alert_topics[DECODE_ALERT_TOPICS_MAX];
        int alert_topic_cnt;
        avro_reader_t avro_reader;
        avro_writer_t avro_writer;
        bool fast_usage; /* our usage schema has fast.c's layout */
};

/* schema.c: a schema from JSON (what names it in errstr) or from a file;
 * -1 with errstr when it does not parse. */
int decode_schema_parse(const char *json, size_t len, avro_schema_t *schema,
                        const char *what, char *errstr, size_t errstr_size);
int decode_schema_file(const char *path, avro_schema_t *schema, char *errstr,
                       size_t errstr_size);
/* One of our schemas, dir/file, with its defaults and its reused value. */
int decode_schema_load(struct decode_schema *ds, const char *dir,
                       const char *file, char *errstr, size_t errstr_size);
void decode_schema_clear(struct decode_schema *ds);
/* Takes the reference to writer. The same schema as ours reads directly;
 * another is resolved against ours (see struct decode_path), or is
 * incompatible (-1). decode_path_clear releases what init took, writer
 * too, and may be called on a path init failed on. */
int decode_path_init(struct decode_path *path, avro_schema_t writer,
                     struct decode_schema *reader, char *errstr,
                     size_t errstr_size);
void decode_path_clear(struct decode_path *path);

/* check.c: walks Avro binary against a writer schema without allocating,
 * so that avro-c only ever reads bytes whose every length, count and index
 * is known to be sane. The schema is compiled first (new: NULL with
 * errstr when out of memory or nested too deep; destroy(NULL) is safe; it
 * borrows nothing from the schema once made). ews_decode_check checks that
 * buf holds exactly one value of the schema: EWS_DECODE_OK, or why not
 * with the offending position in errstr. */
struct decode_check;
struct decode_check *decode_check_new(avro_schema_t schema, char *errstr,
                                      size_t errstr_size);
void decode_check_destroy(struct decode_check *check);
enum ews_decode_err
ews_decode_check(const struct decode_check *check, const void *buf, size_t len,
                 const struct ews_decode_check_limits *limits, char *errstr,
                 size_t errstr_size);

/* A string field of n bytes at s into dst (size bytes): refused when too
 * long for it or holding a NUL, with errstr naming the field. */
enum ews_decode_err decode_string_field(const char *name, const char *s,
                                        size_t n, char *dst, size_t size,
                                        char *errstr, size_t errstr_size);

/* The first byte of [p, end) that does not begin a well-formed UTF-8
 * sequence (overlong forms, surrogates and code points past U+10FFFF do
 * not), NULL when there is none. */
const unsigned char *decode_utf8_bad(const unsigned char *p,
                                     const unsigned char *end);

/* fast.c: whether reader is our usage schema as fast.c reads it; and a
 * usage event from len bytes written with that schema, checked as it is
 * read against what ews_decode_check would refuse (limits), and made as
 * decode_usage_fields makes it from avro-c's record: true. False when the
 * bytes or a field are not what it takes (anything ews_decode_check or
 * the fields would refuse, a map too large for it): the caller then goes
 * the generic way, which gives a refusal its exact error. */
bool decode_fast_usable(avro_schema_t reader);
bool decode_usage_fast(const void *buf, size_t len,
                       const struct ews_decode_check_limits *limits,
                       struct ews_usage_event *event);

/* Our structs from a reader-schema record. */
enum ews_decode_err decode_usage_fields(avro_value_t *record,
                                        struct ews_usage_event *event,
                                        char *errstr, size_t errstr_size);
enum ews_decode_err decode_campaign_fields(avro_value_t *record,
                                           struct ews_campaign_event *event,
                                           char *errstr, size_t errstr_size);

/* Our structs from a JSON object with the schemas' field names. */
enum ews_decode_err decode_usage_json(const void *buf, size_t len,
                                      struct ews_usage_event *event,
                                      char *errstr, size_t errstr_size);
enum ews_decode_err decode_campaign_json(const void *buf, size_t len,
                                         struct ews_campaign_event *event,
                                         char *errstr, size_t errstr_size);

#endif
