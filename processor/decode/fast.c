/*
 * Usage events read straight from Avro binary written with our own schema
 * (schemas/usage_event.avsc): no avro-c value, no allocation, a few
 * hundred instructions where avro-c's generic read and our field lookups
 * by name took ten thousand. The bytes are checked as they are read, by
 * the same reads ews_decode_check makes (decode/cursor.h) with the same
 * limits, so the generic walk of the schema is not needed first. Any
 * byte or field it would refuse sends the message the generic way (check,
 * avro-c, decode_usage_fields), which names the refusal: this path
 * accepts, or passes on. tests/fuzz/fuzz_avro.c decodes every input both
 * ways and requires the same event or the same error.
 */
#include "decode/cursor.h"
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

/* A union's branch of two (null first): *set is whether the value is
 * there. */
static bool fast_branch(struct decode_cursor *c, bool *set)
{
        int64_t n;

        if (decode_cursor_varint(c, &n, 5) || n < 0 || n > 1)
                return false;
        *set = n == 1;
        return true;
}

/* A string field into dst, "" for an optional one that is null: false
 * when the bytes or the field's own checks (decode_string_field) would
 * refuse it. */
static bool fast_string(struct decode_cursor *c, bool optional,
                        const char *name, char *dst, size_t size)
{
        const unsigned char *s;
        char errstr[8];
        bool set = true;
        size_t n;

        dst[0] = '\0';
        if (optional && !fast_branch(c, &set))
                return false;
        return !set || (!decode_cursor_text(c, DECODE_STRING, &s, &n) &&
                        !decode_string_field(name, (const char *)s, n, dst,
                                             size, errstr, sizeof(errstr)));
}

struct fast_entry {
        const char *key, *value;
        size_t key_len, value_len; /* the key up to its first NUL */
};

/* The map's entries as avro-c's generic map holds them: one per key (a
 * key read as a C string), in the order keys first came, with the value
 * that came last. false when the bytes would be refused or there are
 * more than FAST_MAP_MAX. */
static bool fast_map(struct decode_cursor *c, struct fast_entry *entries,
                     size_t *cnt)
{
        const unsigned char *k, *v;
        struct fast_entry e;
        int64_t count;
        size_t i;

        *cnt = 0;
        for (;;) {
                if (decode_cursor_block(c, &count))
                        return false;
                if (!count)
                        return true;
                for (; count > 0; count--) {
                        if (decode_cursor_text(c, DECODE_MAP_KEY, &k,
                                               &e.key_len) ||
                            decode_cursor_text(c, DECODE_STRING, &v,
                                               &e.value_len))
                                return false;
                        e.key = (const char *)k;
                        e.value = (const char *)v;
                        e.key_len = strnlen(e.key, e.key_len);
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

bool decode_usage_fast(const void *buf, size_t len,
                       const struct ews_decode_check_limits *limits,
                       struct ews_usage_event *event)
{
        struct decode_cursor c = {buf,    buf, (const unsigned char *)buf + len,
                                  limits, 0,   NULL};
        struct fast_entry entries[FAST_MAP_MAX];
        uint64_t bits = 0;
        size_t cnt;
        int i;

        if (!len ||
            !fast_string(&c, false, "event_id", event->event_id,
                         sizeof(event->event_id)) ||
            !fast_string(&c, false, "user_id", event->user_id,
                         sizeof(event->user_id)) ||
            !fast_string(&c, true, "account_id", event->account_id,
                         sizeof(event->account_id)) ||
            !fast_string(&c, false, "event_type", event->event_type,
                         sizeof(event->event_type)) ||
            !fast_string(&c, true, "product", event->product,
                         sizeof(event->product)) ||
            !fast_branch(&c, &event->has_value))
                return false;
        if (event->has_value) {
                if (decode_cursor_skip(&c, 8, "double"))
                        return false;
                for (i = 0; i < 8; i++)
                        bits |= (uint64_t)c.p[i - 8] << (8 * i);
                memcpy(&event->value, &bits, sizeof(bits));
        }
        if (!fast_string(&c, true, "campaign_id", event->campaign_id,
                         sizeof(event->campaign_id)) ||
            decode_cursor_varint(&c, &event->occurred_at_ms, 10) ||
            !fast_map(&c, entries, &cnt) || c.p != c.end)
                return false;
        fast_attrs(entries, cnt, event);
        return true;
}
