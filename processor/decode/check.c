/* The check of Avro binary against a writer schema (decode_int.h). The
 * schema is compiled once, when its path is set up, into a flat table of
 * nodes: the walk of each message then reads an array instead of asking
 * avro-c for each field (a hash lookup a field), which was a sixth of the
 * processor's instructions. */
#include "decode/cursor.h"
#include "decode/decode_int.h"
#include "util/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_DEPTH_MAX 32

/* A schema node: its type, its count (record fields, union branches, enum
 * symbols, fixed bytes) and its children's first index in kids (record
 * fields, union branches, the items of an array or the values of a map:
 * one). */
struct check_node {
        avro_type_t type;
        uint32_t n;
        uint32_t kids;
};

/* The named schemas compiled, for links back to them. */
struct check_named {
        avro_schema_t schema;
        uint32_t node;
};

struct decode_check {
        struct check_node *nodes;
        uint32_t *kids;
        struct check_named *named;
        size_t node_cnt, node_cap, kid_cnt, kid_cap, named_cnt, named_cap;
};

struct check {
        struct decode_cursor cur;
        const struct decode_check *prog;
        int depth;
};

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

const unsigned char *decode_utf8_bad(const unsigned char *p,
                                     const unsigned char *end)
{
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
                if (!(len = check_utf8_seq(p, end)))
                        return p;
                p += len;
        }
        return NULL;
}

static enum ews_decode_err check_value(struct check *c, uint32_t node);

/* Arrays and maps come in blocks (decode_cursor_block) until a zero
 * count; a map's items each a key first. */
static enum ews_decode_err check_blocks(struct check *c, uint32_t items,
                                        int is_map)
{
        enum ews_decode_err err;
        int64_t count, i;

        for (;;) {
                if ((err = decode_cursor_block(&c->cur, &count)) || !count)
                        return err;
                for (i = 0; i < count; i++)
                        if ((is_map &&
                             (err = decode_cursor_text(&c->cur, DECODE_MAP_KEY,
                                                       NULL, NULL))) ||
                            (err = check_value(c, items)))
                                return err;
        }
}

static enum ews_decode_err check_union(struct check *c,
                                       const struct check_node *u)
{
        enum ews_decode_err err;
        int64_t n;

        if ((err = decode_cursor_varint(&c->cur, &n, 5)))
                return err;
        if (n < 0 || (uint64_t)n >= u->n)
                return decode_cursor_fail(&c->cur, EWS_DECODE_BAD_INDEX,
                                          "union branch index");
        return check_value(c, c->prog->kids[u->kids + (uint32_t)n]);
}

static enum ews_decode_err check_value(struct check *c, uint32_t node)
{
        const struct check_node *x = &c->prog->nodes[node];
        struct decode_cursor *cur = &c->cur;
        enum ews_decode_err err = EWS_DECODE_OK;
        int64_t n;
        uint32_t i;

        if (++c->depth > CHECK_DEPTH_MAX)
                return decode_cursor_fail(cur, EWS_DECODE_BAD_VALUE,
                                          "nesting too deep");

        switch (x->type) {
        case AVRO_NULL:
                break;
        case AVRO_BOOLEAN:
                if (cur->p == cur->end)
                        err = decode_cursor_fail(cur, EWS_DECODE_TRUNCATED,
                                                 "boolean");
                else if (*cur->p++ > 1)
                        err = decode_cursor_fail(cur, EWS_DECODE_BAD_VALUE,
                                                 "boolean");
                break;
        case AVRO_INT32:
                if (!(err = decode_cursor_varint(cur, &n, 5)) &&
                    (n < INT32_MIN || n > INT32_MAX))
                        err = decode_cursor_fail(cur, EWS_DECODE_BAD_VALUE,
                                                 "int");
                break;
        case AVRO_INT64:
                err = decode_cursor_varint(cur, &n, 10);
                break;
        case AVRO_FLOAT:
                err = decode_cursor_skip(cur, 4, "float");
                break;
        case AVRO_DOUBLE:
                err = decode_cursor_skip(cur, 8, "double");
                break;
        case AVRO_STRING:
        case AVRO_BYTES:
                err = decode_cursor_text(cur,
                                         x->type == AVRO_STRING ? DECODE_STRING
                                                                : DECODE_BYTES,
                                         NULL, NULL);
                break;
        case AVRO_FIXED:
                err = decode_cursor_skip(cur, x->n, "fixed");
                break;
        case AVRO_ENUM:
                if (!(err = decode_cursor_varint(cur, &n, 5)) &&
                    (n < 0 || n >= x->n))
                        err = decode_cursor_fail(cur, EWS_DECODE_BAD_INDEX,
                                                 "enum symbol index");
                break;
        case AVRO_UNION:
                err = check_union(c, x);
                break;
        case AVRO_RECORD:
                for (i = 0; !err && i < x->n; i++)
                        err = check_value(c, c->prog->kids[x->kids + i]);
                break;
        case AVRO_ARRAY:
        case AVRO_MAP:
                err = check_blocks(c, c->prog->kids[x->kids],
                                   x->type == AVRO_MAP);
                break;
        default:
                err = decode_cursor_fail(cur, EWS_DECODE_BAD_VALUE,
                                         "unknown type");
                break;
        }
        c->depth--;
        return err;
}

/* cnt child slots, their first index in *first: 0, or -1. */
static int check_kids(struct decode_check *prog, size_t cnt, uint32_t *first)
{
        *first = (uint32_t)prog->kid_cnt;
        while (cnt--) {
                if (!ews_grow((void **)&prog->kids, &prog->kid_cap,
                              prog->kid_cnt + 1, sizeof(*prog->kids)))
                        return -1;
                prog->kids[prog->kid_cnt++] = 0;
        }
        return 0;
}

static int64_t check_compile(struct decode_check *prog, avro_schema_t schema,
                             int depth);

/* The node's children, the schemas child(schema, i) for i below cnt:
 * the node, or -1. */
static int64_t check_compile_kids(struct decode_check *prog, uint32_t node,
                                  avro_schema_t schema, size_t cnt,
                                  avro_schema_t (*child)(avro_schema_t, size_t),
                                  int depth)
{
        uint32_t first;
        size_t i;

        if (check_kids(prog, cnt, &first))
                return -1;
        prog->nodes[node].n = (uint32_t)cnt;
        prog->nodes[node].kids = first;
        for (i = 0; i < cnt; i++) {
                int64_t kid = check_compile(prog, child(schema, i), depth);

                if (kid < 0)
                        return -1;
                prog->kids[first + i] = (uint32_t)kid;
        }
        return node;
}

static avro_schema_t check_field(avro_schema_t s, size_t i)
{
        return avro_schema_record_field_get_by_index(s, (int)i);
}

static avro_schema_t check_branch(avro_schema_t s, size_t i)
{
        return avro_schema_union_branch(s, (int)i);
}

static avro_schema_t check_items(avro_schema_t s, size_t i)
{
        (void)i;
        return avro_typeof(s) == AVRO_MAP ? avro_schema_map_values(s)
                                          : avro_schema_array_items(s);
}

/* The node of schema (a record compiled before: its node), or -1. Links
 * are followed at compile time, so a recursive schema is a cycle of
 * nodes and the walk's depth limit bounds it as before. */
static int64_t check_compile(struct decode_check *prog, avro_schema_t schema,
                             int depth)
{
        avro_type_t type = avro_typeof(schema);
        uint32_t node;
        size_t i;

        while (type == AVRO_LINK) {
                schema = avro_schema_link_target(schema);
                type = avro_typeof(schema);
        }
        for (i = 0; i < prog->named_cnt; i++)
                if (prog->named[i].schema == schema)
                        return prog->named[i].node;
        if (depth > CHECK_DEPTH_MAX * 4 ||
            !ews_grow((void **)&prog->nodes, &prog->node_cap,
                      prog->node_cnt + 1, sizeof(*prog->nodes)))
                return -1;
        node = (uint32_t)prog->node_cnt++;
        prog->nodes[node].type = type;
        prog->nodes[node].n = 0;
        prog->nodes[node].kids = 0;
        switch (type) {
        case AVRO_RECORD:
                if (!ews_grow((void **)&prog->named, &prog->named_cap,
                              prog->named_cnt + 1, sizeof(*prog->named)))
                        return -1;
                prog->named[prog->named_cnt].schema = schema;
                prog->named[prog->named_cnt++].node = node;
                return check_compile_kids(prog, node, schema,
                                          avro_schema_record_size(schema),
                                          check_field, depth + 1);
        case AVRO_UNION:
                return check_compile_kids(prog, node, schema,
                                          avro_schema_union_size(schema),
                                          check_branch, depth + 1);
        case AVRO_ARRAY:
        case AVRO_MAP:
                return check_compile_kids(prog, node, schema, 1, check_items,
                                          depth + 1);
        case AVRO_FIXED:
                prog->nodes[node].n = (uint32_t)avro_schema_fixed_size(schema);
                return node;
        case AVRO_ENUM:
                prog->nodes[node].n =
                        (uint32_t)avro_schema_enum_number_of_symbols(schema);
                return node;
        default:
                return node;
        }
}

struct decode_check *decode_check_new(avro_schema_t schema, char *errstr,
                                      size_t errstr_size)
{
        struct decode_check *prog = calloc(1, sizeof(*prog));

        if (!prog || check_compile(prog, schema, 0) < 0) {
                snprintf(errstr, errstr_size,
                         "out of memory, or a schema nested too deep");
                decode_check_destroy(prog);
                return NULL;
        }
        return prog;
}

void decode_check_destroy(struct decode_check *prog)
{
        if (!prog)
                return;
        free(prog->nodes);
        free(prog->kids);
        free(prog->named);
        free(prog);
}

enum ews_decode_err
ews_decode_check(const struct decode_check *prog, const void *buf, size_t len,
                 const struct ews_decode_check_limits *limits, char *errstr,
                 size_t errstr_size)
{
        struct check c = {
                {buf, buf, (const unsigned char *)buf + len, limits, 0, NULL},
                prog,
                0};
        enum ews_decode_err err;

        if (!len) {
                snprintf(errstr, errstr_size, "empty message");
                return EWS_DECODE_EMPTY;
        }
        err = check_value(&c, 0);
        if (!err && c.cur.p != c.cur.end)
                err = decode_cursor_fail(&c.cur, EWS_DECODE_TRAILING_BYTES,
                                         "bytes after the record");
        if (err)
                snprintf(errstr, errstr_size, "%s at byte %zu",
                         c.cur.what ? c.cur.what : "invalid",
                         (size_t)(c.cur.p - c.cur.start));
        return err;
}
