/*
 * A cursor over Avro binary and the reads that check it: a varint of at
 * most so many bytes, a skip, a string, bytes or map key within the
 * limits and the bytes left (UTF-8 where Avro says so), a block's count.
 * The one place these rules live: check.c walks any writer schema with
 * them and fast.c reads our usage schema with them, so that both refuse
 * the same bytes. Static inline: both call them per field, on the hot
 * path. Each read returns EWS_DECODE_OK, or why not with what it was in
 * c->what (for the error message) and c->p at the offending byte.
 */
#ifndef EWS_DECODE_CURSOR_H
#define EWS_DECODE_CURSOR_H

#include "decode/decode_int.h"

#include <stdint.h>

struct decode_cursor {
        const unsigned char *start, *p, *end;
        const struct ews_decode_check_limits *limits;
        size_t items;     /* array and map entries so far */
        const char *what; /* for the error message */
};

static inline enum ews_decode_err decode_cursor_fail(struct decode_cursor *c,
                                                     enum ews_decode_err err,
                                                     const char *what)
{
        c->what = what;
        return err;
}

/* Avro's zig-zag varint; at most max_bytes bytes (5 for int, 10 for long). */
static inline enum ews_decode_err
decode_cursor_varint(struct decode_cursor *c, int64_t *out, int max_bytes)
{
        uint64_t v = 0;
        int i;

        for (i = 0; i < max_bytes; i++) {
                unsigned char b;

                if (c->p == c->end)
                        return decode_cursor_fail(c, EWS_DECODE_TRUNCATED,
                                                  "varint");
                b = *c->p++;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return EWS_DECODE_OK;
                }
        }
        return decode_cursor_fail(c, EWS_DECODE_BAD_VALUE, "varint too long");
}

static inline enum ews_decode_err
decode_cursor_skip(struct decode_cursor *c, int64_t n, const char *what)
{
        if (n < 0)
                return decode_cursor_fail(c, EWS_DECODE_BAD_LENGTH, what);
        if ((uint64_t)n > (uint64_t)(c->end - c->p))
                return decode_cursor_fail(c, EWS_DECODE_TRUNCATED, what);
        c->p += n;
        return EWS_DECODE_OK;
}

enum decode_cursor_text {
        DECODE_BYTES,   /* any bytes */
        DECODE_STRING,  /* UTF-8 */
        DECODE_MAP_KEY, /* UTF-8, named as a map's key in errors */
};

/* A length, then that many bytes: *s and *len (which may be NULL). */
static inline enum ews_decode_err
decode_cursor_text(struct decode_cursor *c, enum decode_cursor_text kind,
                   const unsigned char **s, size_t *len)
{
        bool key = kind == DECODE_MAP_KEY;
        const unsigned char *bad;
        enum ews_decode_err err;
        int64_t n;

        if ((err = decode_cursor_varint(c, &n, 10)))
                return err;
        if (n >= 0 && (uint64_t)n > c->limits->max_bytes)
                return decode_cursor_fail(c, EWS_DECODE_BAD_LENGTH,
                                          key ? "map key length"
                                              : "string or bytes too long");
        if ((err = decode_cursor_skip(
                     c, n, key ? "map key length" : "string or bytes length")))
                return err;
        if (s)
                *s = c->p - n;
        if (len)
                *len = (size_t)n;
        if (kind == DECODE_BYTES || !(bad = decode_utf8_bad(c->p - n, c->p)))
                return EWS_DECODE_OK;
        c->p = bad; /* the error names this byte */
        return decode_cursor_fail(c, EWS_DECODE_BAD_VALUE,
                                  key ? "map key not UTF-8"
                                      : "string not UTF-8");
}

/* An array's or a map's next block: its count of items (0: the end), a
 * negative one followed by the block's size in bytes. Items of null take
 * no bytes, so the count alone is bounded by the limit, not by what
 * remains. */
static inline enum ews_decode_err decode_cursor_block(struct decode_cursor *c,
                                                      int64_t *count)
{
        enum ews_decode_err err;
        int64_t size;

        if ((err = decode_cursor_varint(c, count, 10)))
                return err;
        if (*count < 0) {
                if (*count == INT64_MIN)
                        return decode_cursor_fail(c, EWS_DECODE_BAD_LENGTH,
                                                  "block count");
                *count = -*count;
                if ((err = decode_cursor_varint(c, &size, 10)))
                        return err;
                if (size < 0 || (uint64_t)size > (uint64_t)(c->end - c->p))
                        return decode_cursor_fail(c, EWS_DECODE_BAD_LENGTH,
                                                  "block size");
        }
        if ((uint64_t)*count > c->limits->max_items - c->items)
                return decode_cursor_fail(c, EWS_DECODE_BAD_LENGTH,
                                          "too many items");
        c->items += (size_t)*count;
        return EWS_DECODE_OK;
}

#endif
