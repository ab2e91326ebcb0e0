/* Commands written straight in Redis' protocol (RESP) into a buffer kept
 * across commits: no printf, no allocation once the buffer has grown, and
 * hiredis sends the bytes as they are (redisAppendFormattedCommand). */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

static int resp_reserve(struct store_resp *r, size_t bytes)
{
        size_t size;
        char *buf;

        if (r->len + bytes <= r->size)
                return 0;
        size = r->size ? r->size : 65536;
        while (r->len + bytes > size)
                size *= 2;
        buf = realloc(r->buf, size);
        if (!buf)
                return -1;
        r->buf = buf;
        r->size = size;
        return 0;
}

size_t store_digits(char *tmp, int64_t v)
{
        char *p = tmp + 24;
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

        do
                *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0)
                *--p = '-';
        return (size_t)(tmp + 24 - p);
}

/* A "<c><n>\r\n" line. */
static void resp_line(struct store_resp *r, char c, int64_t n)
{
        char tmp[24];
        size_t len = store_digits(tmp, n);

        r->buf[r->len++] = c;
        memcpy(r->buf + r->len, tmp + 24 - len, len);
        r->len += len;
        r->buf[r->len++] = '\r';
        r->buf[r->len++] = '\n';
}

int store_resp_cmd(struct store_resp *r, int argc)
{
        if (resp_reserve(r, 32))
                return -1;
        resp_line(r, '*', argc);
        r->cmds++;
        return 0;
}

int store_resp_arg(struct store_resp *r, const void *s, size_t len)
{
        if (resp_reserve(r, len + 32))
                return -1;
        resp_line(r, '$', (int64_t)len);
        memcpy(r->buf + r->len, s, len);
        r->len += len;
        r->buf[r->len++] = '\r';
        r->buf[r->len++] = '\n';
        return 0;
}

int store_resp_str(struct store_resp *r, const char *s)
{
        return store_resp_arg(r, s, strlen(s));
}

int store_resp_i64(struct store_resp *r, int64_t v)
{
        char tmp[24];
        size_t len = store_digits(tmp, v);

        return store_resp_arg(r, tmp + 24 - len, len);
}

int store_resp_cat(struct store_resp *r, const char *s1, const char *s2,
                   const char *s3)
{
        size_t l1 = strlen(s1), l2 = strlen(s2), l3 = strlen(s3);
        size_t len = l1 + l2 + l3;

        if (resp_reserve(r, len + 32))
                return -1;
        resp_line(r, '$', (int64_t)len);
        memcpy(r->buf + r->len, s1, l1);
        memcpy(r->buf + r->len + l1, s2, l2);
        memcpy(r->buf + r->len + l1 + l2, s3, l3);
        r->len += len;
        r->buf[r->len++] = '\r';
        r->buf[r->len++] = '\n';
        return 0;
}

int store_resp_cat_i64(struct store_resp *r, const char *s1, const char *s2,
                       int64_t v)
{
        char tmp[24];
        size_t d = store_digits(tmp, v);
        size_t l1 = strlen(s1), l2 = strlen(s2), len = l1 + l2 + d;

        if (resp_reserve(r, len + 32))
                return -1;
        resp_line(r, '$', (int64_t)len);
        memcpy(r->buf + r->len, s1, l1);
        memcpy(r->buf + r->len + l1, s2, l2);
        memcpy(r->buf + r->len + l1 + l2, tmp + 24 - d, d);
        r->len += len;
        r->buf[r->len++] = '\r';
        r->buf[r->len++] = '\n';
        return 0;
}

int store_resp_raw(struct store_resp *r, const void *cmds, size_t len,
                   size_t cnt)
{
        if (resp_reserve(r, len))
                return -1;
        if (len) /* an empty body may have no buffer yet */
                memcpy(r->buf + r->len, cmds, len);
        r->len += len;
        r->cmds += cnt;
        return 0;
}

void store_resp_reset(struct store_resp *r)
{
        r->len = 0;
        r->cmds = 0;
}

void store_resp_free(struct store_resp *r)
{
        free(r->buf);
        memset(r, 0, sizeof(*r));
}
