/* The store's arguments of one command (struct store_argv) and the small
 * helpers every file of the module builds its commands with. */
#include "store/store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int argv_reserve(struct store_argv *a, size_t bytes)
{
        if (a->cnt == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 256;
                size_t *off = realloc(a->off, cap * sizeof(*off));
                size_t *len;
                const char **ptr;

                if (!off)
                        return -1;
                a->off = off;
                len = realloc(a->len, cap * sizeof(*len));
                if (!len)
                        return -1;
                a->len = len;
                ptr = realloc(a->ptr, cap * sizeof(*ptr));
                if (!ptr)
                        return -1;
                a->ptr = ptr;
                a->cap = cap;
        }
        if (a->used + bytes > a->size) {
                size_t size = a->size ? a->size : 4096;
                char *buf;

                while (a->used + bytes > size)
                        size *= 2;
                buf = realloc(a->buf, size);
                if (!buf)
                        return -1;
                a->buf = buf;
                a->size = size;
        }
        return 0;
}

int store_argv_add(struct store_argv *a, const char *s, size_t len)
{
        if (argv_reserve(a, len))
                return -1;
        memcpy(a->buf + a->used, s, len);
        a->off[a->cnt] = a->used;
        a->len[a->cnt++] = len;
        a->used += len;
        return 0;
}

int store_argv_addf(struct store_argv *a, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || argv_reserve(a, (size_t)n + 1))
                return -1;
        va_start(ap, fmt);
        vsnprintf(a->buf + a->used, (size_t)n + 1, fmt, ap);
        va_end(ap);
        a->off[a->cnt] = a->used;
        a->len[a->cnt++] = (size_t)n;
        a->used += (size_t)n;
        return 0;
}

/* The hot path's two shapes, without printf: an integer, and a key made
 * of up to three parts (prefix, class, id). */
int store_argv_i64(struct store_argv *a, int64_t v)
{
        char buf[24];
        size_t len = store_digits(buf, v);

        return store_argv_add(a, buf + sizeof(buf) - len, len);
}

int store_argv_cat(struct store_argv *a, const char *s1, const char *s2,
                   const char *s3)
{
        size_t l1 = strlen(s1), l2 = strlen(s2), l3 = strlen(s3);

        if (argv_reserve(a, l1 + l2 + l3))
                return -1;
        memcpy(a->buf + a->used, s1, l1);
        memcpy(a->buf + a->used + l1, s2, l2);
        memcpy(a->buf + a->used + l1 + l2, s3, l3);
        a->off[a->cnt] = a->used;
        a->len[a->cnt++] = l1 + l2 + l3;
        a->used += l1 + l2 + l3;
        return 0;
}

void store_argv_reset(struct store_argv *a)
{
        a->cnt = 0;
        a->used = 0;
}

void store_argv_finish(struct store_argv *a)
{
        size_t i;

        for (i = 0; i < a->cnt; i++)
                a->ptr[i] = a->buf + a->off[i];
}

void store_argv_free(struct store_argv *a)
{
        free(a->off);
        free(a->len);
        free(a->ptr);
        free(a->buf);
}

int store_parse_i64(const char *s, size_t len, int64_t *out)
{
        char buf[32], *end;

        if (!len || len >= sizeof(buf))
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        *out = strtoll(buf, &end, 10);
        return (errno || *end) ? -1 : 0;
}

int store_add_partition_key(struct ews_store *store, struct store_argv *a,
                            char kind, enum ews_source source,
                            int32_t partition)
{
        return store_argv_addf(a, "%s%c:%s:%d", store->prefix, kind,
                               store->topics[source], (int)partition);
}
