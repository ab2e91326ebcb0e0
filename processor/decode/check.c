#include "decode/decode_int.h"

#include <stdio.h>
#include <string.h>

#define CHECK_DEPTH_MAX 32

struct check {
        const unsigned char *start, *p, *end;
        const struct ews_decode_check_limits *limits;
        size_t items;
        int depth;
        const char *what; /* for the error message */
};

static enum ews_decode_err check_fail(struct check *c, enum ews_decode_err err,
                                      const char *what)
{
        c->what = what;
        return err;
}

/* Avro's zig-zag varint; at most max_bytes bytes (5 for int, 10 for long). */
static enum ews_decode_err check_varint(struct check *c, int64_t *out,
                                        int max_bytes)
{
        uint64_t v = 0;
        int i;

        for (i = 0; i < max_bytes; i++) {
                unsigned char b;

                if (c->p == c->end)
                        return check_fail(c, EWS_DECODE_TRUNCATED, "varint");
                b = *c->p++;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return EWS_DECODE_OK;
                }
        }
        return check_fail(c, EWS_DECODE_BAD_VALUE, "varint too long");
}

static enum ews_decode_err check_skip(struct check *c, int64_t n,
                                      const char *what)
{
        if (n < 0)
                return check_fail(c, EWS_DECODE_BAD_LENGTH, what);
        if ((uint64_t)n > (uint64_t)(c->end - c->p))
                return check_fail(c, EWS_DECODE_TRUNCATED, what);
        c->p += n;
        return EWS_DECODE_OK;
}

/* Bytes of the well-formed UTF-8 sequence at p, 0 when there is none:
 * overlong forms, surrogates and code points past U+10FFFF are not. */
static size_t check_utf8_seq(const unsigned char *p, const unsigned char *end)
{
        unsigned b = *p, len, cp, i;

        if (b < 0x80)
                return 1;
        if (b >= 0xc2 && b <= 0xdf)
                len = 1, cp = b & 0x1f;
        else if (b >= 0xe0 && b <= 0xef)
                len = 2, cp = b & 0x0f;
        else if (b >= 0xf0 && b <= 0xf4)
                len = 3, cp = b & 0x07;
        else
                return 0;
        if ((size_t)(end - p) <= len)
                return 0;
        for (i = 1; i <= len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 3 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len + 1;
}

/* The n bytes before c->p are an Avro string: UTF-8 by the spec, and
 * what the JSON of alerts and of /v1 needs. */
static enum ews_decode_err check_utf8(struct check *c, int64_t n,
                                      const char *what)
{
        const unsigned char *p = c->p - n, *end = c->p;
        uint64_t eight;
        size_t len;

        while (p < end) {
                /* ASCII, the common case, eight bytes at a time */
                if (end - p >= 8) {
                        memcpy(&eight, p, 8);
                        if (!(eight & 0x8080808080808080ULL)) {
                                p += 8;
                                continue;
                        }
                }
                if (!(len = check_utf8_seq(p, end))) {
                        c->p = p; /* the error names this byte */
                        return check_fail(c, EWS_DECODE_BAD_VALUE, what);
                }
                p += len;
        }
        return EWS_DECODE_OK;
}

static enum ews_decode_err check_value(struct check *c, avro_schema_t schema);

/* Arrays and maps come in blocks: a count (negative: followed by the
 * block's size in bytes), the items, until a zero count. */
static enum ews_decode_err check_blocks(struct check *c, avro_schema_t items,
                                        int is_map)
{
        enum ews_decode_err err;
        int64_t count, size, i;

        for (;;) {
                if ((err = check_varint(c, &count, 10)))
                        return err;
                if (count == 0)
                        return EWS_DECODE_OK;
                if (count < 0) {
                        if (count == INT64_MIN)
                                return check_fail(c, EWS_DECODE_BAD_LENGTH,
                                                  "block count");
                        count = -count;
                        if ((err = check_varint(c, &size, 10)))
                                return err;
                        if (size < 0 ||
                            (uint64_t)size > (uint64_t)(c->end - c->p))
                                return check_fail(c, EWS_DECODE_BAD_LENGTH,
                                                  "block size");
                }
                /* Items of null take no bytes, so the count alone is
                 * bounded by the limit, not by what remains. */
                if ((uint64_t)count > c->limits->max_items - c->items)
                        return check_fail(c, EWS_DECODE_BAD_LENGTH,
                                          "too many items");
                c->items += (size_t)count;
                for (i = 0; i < count; i++) {
                        if (is_map) {
                                int64_t key_len;
                                if ((err = check_varint(c, &key_len, 10)))
                                        return err;
                                if ((uint64_t)key_len > c->limits->max_bytes)
                                        return check_fail(c,
                                                          EWS_DECODE_BAD_LENGTH,
                                                          "map key length");
                                if ((err = check_skip(c, key_len,
                                                      "map key length")) ||
                                    (err = check_utf8(c, key_len,
                                                      "map key not UTF-8")))
                                        return err;
                        }
                        if ((err = check_value(c, items)))
                                return err;
                }
        }
}

static enum ews_decode_err check_value(struct check *c, avro_schema_t schema)
{
        enum ews_decode_err err = EWS_DECODE_OK;
        int64_t n;
        size_t i;

        if (++c->depth > CHECK_DEPTH_MAX)
                return check_fail(c, EWS_DECODE_BAD_VALUE, "nesting too deep");

        switch (avro_typeof(schema)) {
        case AVRO_NULL:
                break;
        case AVRO_BOOLEAN:
                if (c->p == c->end)
                        err = check_fail(c, EWS_DECODE_TRUNCATED, "boolean");
                else if (*c->p++ > 1)
                        err = check_fail(c, EWS_DECODE_BAD_VALUE, "boolean");
                break;
        case AVRO_INT32:
                if (!(err = check_varint(c, &n, 5)) &&
                    (n < INT32_MIN || n > INT32_MAX))
                        err = check_fail(c, EWS_DECODE_BAD_VALUE, "int");
                break;
        case AVRO_INT64:
                err = check_varint(c, &n, 10);
                break;
        case AVRO_FLOAT:
                err = check_skip(c, 4, "float");
                break;
        case AVRO_DOUBLE:
                err = check_skip(c, 8, "double");
                break;
        case AVRO_STRING:
        case AVRO_BYTES:
                if ((err = check_varint(c, &n, 10)))
                        break;
                if (n >= 0 && (uint64_t)n > c->limits->max_bytes)
                        err = check_fail(c, EWS_DECODE_BAD_LENGTH,
                                         "string or bytes too long");
                else if (!(err = check_skip(c, n, "string or bytes length")) &&
                         avro_typeof(schema) == AVRO_STRING)
                        err = check_utf8(c, n, "string not UTF-8");
                break;
        case AVRO_FIXED:
                err = check_skip(c, avro_schema_fixed_size(schema), "fixed");
                break;
        case AVRO_ENUM:
                if (!(err = check_varint(c, &n, 5)) &&
                    (n < 0 || n >= avro_schema_enum_number_of_symbols(schema)))
                        err = check_fail(c, EWS_DECODE_BAD_INDEX,
                                         "enum symbol index");
                break;
        case AVRO_UNION:
                if ((err = check_varint(c, &n, 5)))
                        break;
                if (n < 0 || (uint64_t)n >= avro_schema_union_size(schema))
                        err = check_fail(c, EWS_DECODE_BAD_INDEX,
                                         "union branch index");
                else
                        err = check_value(
                                c, avro_schema_union_branch(schema, (int)n));
                break;
        case AVRO_RECORD:
                for (i = 0; !err && i < avro_schema_record_size(schema); i++)
                        err = check_value(c,
                                          avro_schema_record_field_get_by_index(
                                                  schema, (int)i));
                break;
        case AVRO_ARRAY:
                err = check_blocks(c, avro_schema_array_items(schema), 0);
                break;
        case AVRO_MAP:
                err = check_blocks(c, avro_schema_map_values(schema), 1);
                break;
        case AVRO_LINK:
                err = check_value(c, avro_schema_link_target(schema));
                break;
        default:
                err = check_fail(c, EWS_DECODE_BAD_VALUE, "unknown type");
                break;
        }
        c->depth--;
        return err;
}

enum ews_decode_err
ews_decode_check(avro_schema_t schema, const void *buf, size_t len,
                 const struct ews_decode_check_limits *limits, char *errstr,
                 size_t errstr_size)
{
        struct check c = {buf, buf, (const unsigned char *)buf + len, limits, 0,
                          0,   NULL};
        enum ews_decode_err err;

        if (!len) {
                snprintf(errstr, errstr_size, "empty message");
                return EWS_DECODE_EMPTY;
        }
        err = check_value(&c, schema);
        if (!err && c.p != c.end) {
                c.what = "bytes after the record";
                err = EWS_DECODE_TRAILING_BYTES;
        }
        if (err)
                snprintf(errstr, errstr_size, "%s at byte %zu",
                         c.what ? c.what : "invalid", (size_t)(c.p - c.start));
        return err;
}
