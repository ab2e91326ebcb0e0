/*
 * Usage events read straight from Avro binary written with our own schema
 * (schemas/usage_event.avsc): no avro-c value, no allocation, a few
 * hundred instructions where avro-c's generic read and our field lookups
 * by name took ten thousand. Used only for bytes ews_decode_check has
 * passed against that schema, so every length, union index and block is
 * known to lie within them; the event comes out as decode_usage_fields
 * makes it from avro-c's record, error for error (the same checks, in the
 * same order), which tests/unit/test_decode.c compares over every input
 * of the fuzz corpus.
 */
#include "decode/decode_int.h"

#include <string.h>

/* Our usage schema's layout, which the reader's must equal (names and
 * types, in order) for this path to read it. */
static const char fast_usage_layout[] =
        "{\"type\":\"record\",\"name\":\"UsageEvent\",\"namespace\":"
        "\"ews.v1\",\"fields\":["
        "{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"user_id\",\"type\":\"string\"},"
        "{\"name\":\"account_id\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"event_type\",\"type\":\"string\"},"
        "{\"name\":\"product\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"value\",\"type\":[\"null\",\"double\"]},"
        "{\"name\":\"campaign_id\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"occurred_at\",\"type\":{\"type\":\"long\","
        "\"logicalType\":\"timestamp-millis\"}},"
        "{\"name\":\"attributes\",\"type\":{\"type\":\"map\","
        "\"values\":\"string\"}}]}";

/* Map entries read here at the most; a larger map goes the generic way
 * (its keys are made unique in first-come order, which costs a pass over
 * those before each). */
#define FAST_MAP_MAX 64

bool decode_fast_usable(avro_schema_t reader)
{
        avro_schema_t layout;
        bool equal;

        if (avro_schema_from_json_length(
                    fast_usage_layout, sizeof(fast_usage_layout) - 1, &layout))
                return false;
        equal = avro_schema_equal(layout, reader);
        avro_schema_decref(layout);
        return equal;
}

struct fast {
        const unsigned char *p, *end;
};

/* A zig-zag varint; the checker has seen it whole. */
static int64_t fast_long(struct fast *f)
{
        uint64_t v = 0;
        int shift = 0;
        unsigned char b;

        do {
                b = *f->p++;
                v |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
        } while ((b & 0x80) && shift < 70);
        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static const char *fast_bytes(struct fast *f, size_t *len)
{
        const char *s;

        *len = (size_t)fast_long(f);
        s = (const char *)f->p;
        f->p += *len;
        return s;
}

static enum ews_decode_err fast_string(struct fast *f, bool optional,
                                       const char *name, char *dst, size_t size,
                                       char *errstr, size_t errstr_size)
{
        const char *s;
        size_t n;

        if (optional && !fast_long(f)) { /* the null branch */
                dst[0] = '\0';
                return EWS_DECODE_OK;
        }
        s = fast_bytes(f, &n);
        return decode_string_field(name, s, n, dst, size, errstr, errstr_size);
}

struct fast_entry {
        const char *key, *value;
        size_t key_len, value_len; /* the key up to its first NUL */
};

/* The map's entries as avro-c's generic map holds them: one per key (a
 * key read as a C string), in the order keys first came, with the value
 * that came last. false when there are more than FAST_MAP_MAX. */
static bool fast_map(struct fast *f, struct fast_entry *entries, size_t *cnt)
{
        struct fast_entry e;
        int64_t count;
        size_t i;

        *cnt = 0;
        while ((count = fast_long(f))) {
                if (count < 0) {
                        count = -count;
                        (void)fast_long(f); /* the block's size */
                }
                for (; count > 0; count--) {
                        e.key = fast_bytes(f, &e.key_len);
                        e.key_len = strnlen(e.key, e.key_len);
                        e.value = fast_bytes(f, &e.value_len);
                        for (i = 0; i < *cnt; i++)
                                if (entries[i].key_len == e.key_len &&
                                    !memcmp(entries[i].key, e.key, e.key_len))
                                        break;
                        if (i == *cnt && *cnt == FAST_MAP_MAX)
                                return false;
                        if (i == *cnt) {
                                entries[(*cnt)++] = e;
                        } else {
                                entries[i].value = e.value;
                                entries[i].value_len = e.value_len;
                        }
                }
        }
        return true;
}

/* As fields_attrs: an entry that does not fit a slot is passed over. */
static void fast_attrs(const struct fast_entry *entries, size_t cnt,
                       struct ews_usage_event *event)
{
        size_t i;

        event->attr_cnt = 0;
        for (i = 0; i < cnt && event->attr_cnt < EWS_ATTR_MAX; i++) {
                struct ews_attr *attr = &event->attrs[event->attr_cnt];
                const struct fast_entry *e = &entries[i];

                if (e->key_len >= sizeof(attr->key) ||
                    e->value_len + 1 > sizeof(attr->value))
                        continue;
                memcpy(attr->key, e->key, e->key_len);
                attr->key[e->key_len] = '\0';
                memcpy(attr->value, e->value, e->value_len);
                attr->value[e->value_len] = '\0';
                event->attr_cnt++;
        }
}

enum ews_decode_err decode_usage_fast(const void *buf, size_t len,
                                      struct ews_usage_event *event,
                                      bool *generic, char *errstr,
                                      size_t errstr_size)
{
        struct fast f = {buf, (const unsigned char *)buf + len};
        struct fast_entry entries[FAST_MAP_MAX];
        enum ews_decode_err err;
        uint64_t bits = 0;
        size_t cnt;
        int i;

        *generic = false;
        if ((err = fast_string(&f, false, "event_id", event->event_id,
                               sizeof(event->event_id), errstr, errstr_size)) ||
            (err = fast_string(&f, false, "user_id", event->user_id,
                               sizeof(event->user_id), errstr, errstr_size)) ||
            (err = fast_string(&f, true, "account_id", event->account_id,
                               sizeof(event->account_id), errstr,
                               errstr_size)) ||
            (err = fast_string(&f, false, "event_type", event->event_type,
                               sizeof(event->event_type), errstr,
                               errstr_size)) ||
            (err = fast_string(&f, true, "product", event->product,
                               sizeof(event->product), errstr, errstr_size)))
                return err;
        event->has_value = fast_long(&f) != 0;
        if (event->has_value) {
                for (i = 0; i < 8; i++)
                        bits |= (uint64_t)f.p[i] << (8 * i);
                f.p += 8;
                memcpy(&event->value, &bits, sizeof(bits));
        }
        if ((err = fast_string(&f, true, "campaign_id", event->campaign_id,
                               sizeof(event->campaign_id), errstr,
                               errstr_size)))
                return err;
        event->occurred_at_ms = fast_long(&f);
        if (!fast_map(&f, entries, &cnt)) {
                *generic = true;
                return EWS_DECODE_OK;
        }
        fast_attrs(entries, cnt, event);
        return EWS_DECODE_OK;
}
