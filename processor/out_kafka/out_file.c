/* The replay sink: outbox records as JSON lines in a file (out_file.h). */
#include "out_kafka/out_file.h"
#include "util/grow.h"
#include "util/log.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out_file_report {
        struct ews_outbox_ref ref;
        char *id;
};

struct out_file {
        FILE *fp;
        char path[1024];
        struct out_file_report *pending; /* written, not yet reported */
        size_t pending_cnt, pending_cap;
};

static const char b64_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The base64 text of len bytes, NUL-terminated; NULL when out of memory.
 * The caller frees it. */
static char *b64_encode(const unsigned char *p, size_t len)
{
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        size_t i;

        if (!out)
                return NULL;
        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
                             p[i + 2];
                *o++ = b64_chars[v >> 18 & 63];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = b64_chars[v >> 6 & 63];
                *o++ = b64_chars[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)p[i] << 16 |
                             (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
                *o++ = b64_chars[v >> 18 & 63];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(char c)
{
        const char *at = c ? strchr(b64_chars, c) : NULL;

        return at ? (int)(at - b64_chars) : -1;
}

/* Decodes s (padded base64) into a new buffer, its length in *len; NULL
 * when s is not base64 or out of memory. The caller frees it. */
static unsigned char *b64_decode(const char *s, size_t *len)
{
        size_t n = strlen(s), i, pad = 0;
        unsigned char *out, *o;

        if (n % 4)
                return NULL;
        if (n && s[n - 1] == '=')
                pad = n > 1 && s[n - 2] == '=' ? 2 : 1;
        out = o = malloc(n / 4 * 3 + 1);
        if (!out)
                return NULL;
        for (i = 0; i < n; i += 4) {
                int v[4], k, last = i + 4 == n;
                uint32_t w = 0;

                for (k = 0; k < 4; k++) {
                        v[k] = last && k >= 4 - (int)pad ? 0
                                                         : b64_value(s[i + k]);
                        if (v[k] < 0) {
                                free(out);
                                return NULL;
                        }
                        w = w << 6 | (uint32_t)v[k];
                }
                *o++ = (unsigned char)(w >> 16);
                if (!last || pad < 2)
                        *o++ = (unsigned char)(w >> 8);
                if (!last || pad < 1)
                        *o++ = (unsigned char)w;
        }
        *len = (size_t)(o - out);
        return out;
}

struct out_file *out_file_new(const char *path, char *errstr,
                              size_t errstr_size)
{
        struct out_file *f = calloc(1, sizeof(*f));

        if (!f) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        snprintf(f->path, sizeof(f->path), "%s", path);
        f->fp = fopen(path, "a");
        if (!f->fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                free(f);
                return NULL;
        }
        return f;
}

static void out_file_drop_pending(struct out_file *f)
{
        size_t i;

        for (i = 0; i < f->pending_cnt; i++)
                free(f->pending[i].id);
        f->pending_cnt = 0;
}

void out_file_destroy(struct out_file *f)
{
        if (!f)
                return;
        if (fclose(f->fp))
                ews_warn("out_kafka", "%s: %s", f->path, strerror(errno));
        out_file_drop_pending(f);
        free(f->pending);
        free(f);
}

/* A JSON string of len bytes; bytes that are not UTF-8 become '?'. */
static json_t *out_file_str(const void *s, size_t len)
{
        json_t *str = json_stringn(s, len);
        char *copy;
        size_t i;

        if (str || !(copy = malloc(len + 1)))
                return str;
        for (i = 0; i < len; i++)
                copy[i] = ((const unsigned char *)s)[i] < 0x80
                                  ? ((const char *)s)[i]
                                  : '?';
        str = json_stringn(copy, len);
        free(copy);
        return str;
}

static json_t *out_file_b64(const void *p, size_t len)
{
        char *text = b64_encode(p, len);
        json_t *str = text ? json_string(text) : NULL;

        free(text);
        return str;
}

/* The record as one JSON object; NULL when out of memory. */
static json_t *out_file_json(const char *id, const struct ews_outbox_entry *e)
{
        bool dead = e->kind == EWS_OUTBOX_DEAD;
        json_t *o = json_object();

        if (!o || json_object_set_new(o, "id", out_file_str(id, strlen(id))) ||
            json_object_set_new(o, "kind",
                                json_string(dead ? "dead_letter" : "alert")) ||
            json_object_set_new(o, "key", out_file_b64(e->key, e->key_len)) ||
            json_object_set_new(o, "value",
                                out_file_b64(e->value, e->value_len)) ||
            (e->topic_len &&
             json_object_set_new(o, "topic",
                                 out_file_str(e->topic, e->topic_len))))
                goto fail;
        if (dead &&
            (json_object_set_new(o, "reason",
                                 out_file_str(e->reason, e->reason_len)) ||
             json_object_set_new(o, "detail",
                                 out_file_str(e->detail, e->detail_len)) ||
             json_object_set_new(
                     o, "source_topic",
                     out_file_str(e->source_topic, e->source_topic_len)) ||
             json_object_set_new(o, "partition", json_integer(e->partition)) ||
             json_object_set_new(o, "offset", json_integer(e->offset)) ||
             json_object_set_new(o, "timestamp_ms",
                                 json_integer(e->timestamp_ms))))
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

/* A record not written: kept in its outbox and sent again. */
static void out_file_failed(struct ews_out_kafka_error *error, const char *what)
{
        memset(error, 0, sizeof(*error));
        snprintf(error->code, sizeof(error->code), "replay file");
        snprintf(error->text, sizeof(error->text), "%s", what);
}

int out_file_send(struct out_file *f, struct ews_outbox_ref ref, const char *id,
                  const struct ews_outbox_entry *entry,
                  struct ews_out_kafka_error *error)
{
        json_t *o = out_file_json(id, entry);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        struct out_file_report *r;
        int rc = -1;

        json_decref(o);
        if (!line || !ews_grow((void **)&f->pending, &f->pending_cap,
                               f->pending_cnt + 1, sizeof(*f->pending))) {
                ews_err("out_kafka", "out of memory: %s stays in the outbox",
                        id);
                out_file_failed(error, "out of memory");
                goto out;
        }
        if (fputs(line, f->fp) == EOF || fputc('\n', f->fp) == EOF) {
                ews_err("out_kafka", "%s: %s (%s stays in the outbox)", f->path,
                        strerror(errno), id);
                out_file_failed(error, strerror(errno));
                goto out;
        }
        r = &f->pending[f->pending_cnt];
        r->ref = ref;
        if (!(r->id = strdup(id))) {
                /* written, not reported: written again, a duplicate */
                out_file_failed(error, "out of memory");
                goto out;
        }
        f->pending_cnt++;
        rc = 0;
out:
        free(line);
        return rc;
}

int out_file_poll(struct out_file *f, ews_out_kafka_delivered_fn delivered,
                  void *opaque, struct ews_out_kafka_stats *stats)
{
        struct ews_out_kafka_error error;
        bool ok = fflush(f->fp) == 0;
        size_t i;

        if (!ok) {
                ews_err("out_kafka",
                        "%s: %s (kept in the outbox, written again)", f->path,
                        strerror(errno));
                out_file_failed(&error, strerror(errno));
        }
        for (i = 0; i < f->pending_cnt; i++) {
                if (ok)
                        stats->delivered++;
                else
                        stats->failed++;
                if (delivered)
                        delivered(opaque, f->pending[i].ref, f->pending[i].id,
                                  ok ? NULL : &error);
        }
        out_file_drop_pending(f);
        return ok ? 0 : -1;
}

int64_t out_file_pending(const struct out_file *f)
{
        return (int64_t)f->pending_cnt;
}

/* A string member, "" when absent. */
static const char *out_file_get(json_t *o, const char *name)
{
        const char *s = json_string_value(json_object_get(o, name));

        return s ? s : "";
}

#define OUT_FILE_NOT_A_RECORD (-1000)

/* One line into the record it holds, handed to fn: fn's result, or
 * OUT_FILE_NOT_A_RECORD. */
static int out_file_line(const char *line, ews_out_file_fn fn, void *opaque)
{
        json_t *o = json_loads(line, 0, NULL);
        const char *kind = out_file_get(o, "kind");
        unsigned char *key = NULL, *value = NULL;
        struct ews_outbox_entry e;
        int rc = OUT_FILE_NOT_A_RECORD;

        memset(&e, 0, sizeof(e));
        e.kind = !strcmp(kind, "alert")         ? EWS_OUTBOX_ALERT
                 : !strcmp(kind, "dead_letter") ? EWS_OUTBOX_DEAD
                                                : 0;
        if (!o || !e.kind || !*out_file_get(o, "id") ||
            !(key = b64_decode(out_file_get(o, "key"), &e.key_len)) ||
            !(value = b64_decode(out_file_get(o, "value"), &e.value_len)))
                goto out;
        e.key = key;
        e.value = value;
        e.reason = out_file_get(o, "reason");
        e.reason_len = strlen(e.reason);
        e.detail = out_file_get(o, "detail");
        e.detail_len = strlen(e.detail);
        e.source_topic = out_file_get(o, "source_topic");
        e.source_topic_len = strlen(e.source_topic);
        e.topic = out_file_get(o, "topic");
        e.topic_len = strlen(e.topic);
        e.partition =
                (int32_t)json_integer_value(json_object_get(o, "partition"));
        e.offset = json_integer_value(json_object_get(o, "offset"));
        e.timestamp_ms = json_integer_value(json_object_get(o, "timestamp_ms"));
        rc = fn(opaque, out_file_get(o, "id"), &e);
out:
        free(key);
        free(value);
        json_decref(o);
        return rc;
}

int ews_out_file_read(const char *path, ews_out_file_fn fn, void *opaque,
                      char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        ssize_t len;
        int rc = 0;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return -1;
        }
        while (!rc && (len = getline(&line, &cap, fp)) >= 0) {
                lineno++;
                if (len == 0 || (len == 1 && line[0] == '\n'))
                        continue;
                rc = out_file_line(line, fn, opaque);
                if (rc == OUT_FILE_NOT_A_RECORD) {
                        snprintf(errstr, errstr_size,
                                 "%s:%ld: not a record of a replay file", path,
                                 lineno);
                        rc = -1;
                }
        }
        if (!rc && ferror(fp)) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                rc = -1;
        }
        free(line);
        fclose(fp);
        return rc;
}
