/*
 * Usage events read straight from Avro binary written with our own schema
 * (schemas/usage_event.avsc): no avro-c value, no allocation, a few
 * hundred instructions where avro-c's generic read and our field lookups
 * by name took ten thousand. The bytes are checked as they are read, each
 * length, union index and block as ews_decode_check checks it (the same
 * limits), so the generic walk of the schema is not needed first. Any
 * byte or field it would refuse sends the message the generic way (check,
 * avro-c, decode_usage_fields), which names the refusal: this path
 * accepts, or passes on. tests/fuzz/fuzz_avro.c decodes every input both
 * ways and requires the same event or the same error.
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
        const struct ews_decode_check_limits *limits;
        size_t items;
        bool bad; /* something ews_decode_check or a field would refuse */
};

/* A zig-zag varint of at most max_bytes bytes (5 for an int, 10 for a
 * long), as ews_decode_check reads it; 0 and bad when it is not one. */
static int64_t fast_varint(struct fast *f, int max_bytes)
{
        uint64_t v = 0;
        int i;

        for (i = 0; i < max_bytes && f->p < f->end; i++) {
                unsigned char b = *f->p++;

                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80))
                        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        }
        f->bad = true;
        return 0;
}

static int64_t fast_long(struct fast *f)
{
        return fast_varint(f, 10);
}

/* A union's branch of two: 0 or 1, bad otherwise. */
static bool fast_branch(struct fast *f)
{
        int64_t n = fast_varint(f, 5);

        if (n < 0 || n > 1)
                f->bad = true;
        return n == 1;
}

/* An Avro string: its length within the limit and the bytes left, UTF-8. */
static const char *fast_bytes(struct fast *f, size_t *len)
{
        int64_t n = fast_long(f);
        const char *s = (const char *)f->p;

        *len = 0;
        if (f->bad || n < 0 || (uint64_t)n > f->limits->max_bytes ||
            (uint64_t)n > (uint64_t)(f->end - f->p) ||
            decode_utf8_bad(f->p, f->p + n)) {
                f->bad = true;
                return s;
        }
        *len = (size_t)n;
        f->p += n;
        return s;
}

/* A string field into dst: bad when the bytes or the field's own checks
 * (decode_string_field) would refuse it. */
static void fast_string(struct fast *f, bool optional, const char *name,
                        char *dst, size_t size)
{
        char errstr[8];
        const char *s;
        size_t n;

        dst[0] = '\0';
        if (optional && !fast_branch(f)) /* the null branch */
                return;
        s = fast_bytes(f, &n);
        if (!f->bad &&
            decode_string_field(name, s, n, dst, size, errstr, sizeof(errstr)))
                f->bad = true;
}

struct fast_entry {
        const char *key, *value;
        size_t key_len, value_len; /* the key up to its first NUL */
};

/* A block's count, as ews_decode_check takes it: within the message's
 * items left, a negative one followed by a size within the bytes left. */
static int64_t fast_block(struct fast *f)
{
        int64_t count = fast_long(f), size;

        if (count == INT64_MIN)
                f->bad = true;
        if (count < 0 && !f->bad) {
                count = -count;
                size = fast_long(f);
                if (size < 0 || (uint64_t)size > (uint64_t)(f->end - f->p))
                        f->bad = true;
        }
        if (f->bad || (uint64_t)count > f->limits->max_items - f->items) {
                f->bad = true;
                return 0;
        }
        f->items += (size_t)count;
        return count;
}

/* The map's entries as avro-c's generic map holds them: one per key (a
 * key read as a C string), in the order keys first came, with the value
 * that came last. false when there are more than FAST_MAP_MAX. */
static bool fast_map(struct fast *f, struct fast_entry *entries, size_t *cnt)
{
        struct fast_entry e;
        int64_t count;
        size_t i;

        *cnt = 0;
        while ((count = fast_block(f))) {
                for (; count > 0; count--) {
                        e.key = fast_bytes(f, &e.key_len);
                        e.key_len = strnlen(e.key, e.key_len);
                        e.value = fast_bytes(f, &e.value_len);
                        if (f->bad)
                                return true;
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

bool decode_usage_fast(const void *buf, size_t len,
                       const struct ews_decode_check_limits *limits,
                       struct ews_usage_event *event)
{
        struct fast f = {buf, (const unsigned char *)buf + len, limits, 0,
                         len == 0};
        struct fast_entry entries[FAST_MAP_MAX];
        uint64_t bits = 0;
        size_t cnt;
        int i;

        fast_string(&f, false, "event_id", event->event_id,
                    sizeof(event->event_id));
        fast_string(&f, false, "user_id", event->user_id,
                    sizeof(event->user_id));
        fast_string(&f, true, "account_id", event->account_id,
                    sizeof(event->account_id));
        fast_string(&f, false, "event_type", event->event_type,
                    sizeof(event->event_type));
        fast_string(&f, true, "product", event->product,
                    sizeof(event->product));
        event->has_value = !f.bad && fast_branch(&f);
        if (event->has_value && f.end - f.p < 8)
                f.bad = true;
        if (event->has_value && !f.bad) {
                for (i = 0; i < 8; i++)
                        bits |= (uint64_t)f.p[i] << (8 * i);
                f.p += 8;
                memcpy(&event->value, &bits, sizeof(bits));
        }
        fast_string(&f, true, "campaign_id", event->campaign_id,
                    sizeof(event->campaign_id));
        event->occurred_at_ms = f.bad ? 0 : fast_long(&f);
        if (f.bad || !fast_map(&f, entries, &cnt) || f.bad || f.p != f.end)
                return false;
        fast_attrs(entries, cnt, event);
        return true;
}
