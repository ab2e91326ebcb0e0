#include "util/outbox.h"

#include <string.h>

#define OUTBOX_VERSION       1
#define OUTBOX_VERSION_TOPIC 2 /* version 1 and the topic */

const char *ews_outbox_refusal_name(enum ews_outbox_refusal refusal)
{
        static const char *const names[EWS_REFUSAL_COUNT] = {
                [EWS_REFUSED_TOO_LARGE] = "too_large",
                [EWS_REFUSED_INVALID] = "invalid_record",
                [EWS_REFUSED_NOT_AUTHORIZED] = "not_authorized",
        };

        return refusal < EWS_REFUSAL_COUNT ? names[refusal] : "unknown";
}

size_t ews_outbox_size(const struct ews_outbox_entry *e)
{
        return 2 + 5 * 4 + 3 * 8 + e->key_len + e->value_len + e->reason_len +
               e->detail_len + e->source_topic_len +
               (e->topic_len ? 4 + e->topic_len : 0);
}

static void outbox_put_u64(unsigned char **p, uint64_t v, int bytes)
{
        int i;

        for (i = 0; i < bytes; i++)
                (*p)[i] = (unsigned char)(v >> (8 * i));
        *p += bytes;
}

static void outbox_put_bytes(unsigned char **p, const void *v, size_t len)
{
        outbox_put_u64(p, (uint64_t)len, 4);
        if (len)
                memcpy(*p, v, len);
        *p += len;
}

int64_t ews_outbox_pack(const struct ews_outbox_entry *e, unsigned char *buf,
                        size_t size)
{
        unsigned char *p = buf;

        if (size < ews_outbox_size(e) || e->key_len > UINT32_MAX ||
            e->value_len > UINT32_MAX)
                return -1;
        *p++ = e->topic_len ? OUTBOX_VERSION_TOPIC : OUTBOX_VERSION;
        *p++ = (unsigned char)e->kind;
        outbox_put_bytes(&p, e->key, e->key_len);
        outbox_put_bytes(&p, e->value, e->value_len);
        outbox_put_bytes(&p, e->reason, e->reason_len);
        outbox_put_bytes(&p, e->detail, e->detail_len);
        outbox_put_bytes(&p, e->source_topic, e->source_topic_len);
        outbox_put_u64(&p, (uint64_t)(int64_t)e->partition, 8);
        outbox_put_u64(&p, (uint64_t)e->offset, 8);
        outbox_put_u64(&p, (uint64_t)e->timestamp_ms, 8);
        if (e->topic_len)
                outbox_put_bytes(&p, e->topic, e->topic_len);
        return (int64_t)(p - buf);
}

static int outbox_get_u64(const unsigned char **p, const unsigned char *end,
                          int bytes, uint64_t *v)
{
        int i;

        if (end - *p < bytes)
                return -1;
        *v = 0;
        for (i = 0; i < bytes; i++)
                *v |= (uint64_t)(*p)[i] << (8 * i);
        *p += bytes;
        return 0;
}

static int outbox_get_bytes(const unsigned char **p, const unsigned char *end,
                            const void **v, size_t *len)
{
        uint64_t n;

        if (outbox_get_u64(p, end, 4, &n) || (uint64_t)(end - *p) < n)
                return -1;
        *v = *p;
        *len = (size_t)n;
        *p += n;
        return 0;
}

int ews_outbox_unpack(struct ews_outbox_entry *e, const unsigned char *buf,
                      size_t len)
{
        const unsigned char *p = buf, *end = buf + len;
        const void *reason, *detail, *topic, *to = NULL;
        uint64_t partition, offset, timestamp;
        int version = len ? p[0] : 0;

        memset(e, 0, sizeof(*e));
        if (len < 2 ||
            (version != OUTBOX_VERSION && version != OUTBOX_VERSION_TOPIC) ||
            (p[1] != EWS_OUTBOX_ALERT && p[1] != EWS_OUTBOX_DEAD))
                return -1;
        e->kind = (enum ews_outbox_kind)p[1];
        p += 2;
        if (outbox_get_bytes(&p, end, &e->key, &e->key_len) ||
            outbox_get_bytes(&p, end, &e->value, &e->value_len) ||
            outbox_get_bytes(&p, end, &reason, &e->reason_len) ||
            outbox_get_bytes(&p, end, &detail, &e->detail_len) ||
            outbox_get_bytes(&p, end, &topic, &e->source_topic_len) ||
            outbox_get_u64(&p, end, 8, &partition) ||
            outbox_get_u64(&p, end, 8, &offset) ||
            outbox_get_u64(&p, end, 8, &timestamp) ||
            (version == OUTBOX_VERSION_TOPIC &&
             (outbox_get_bytes(&p, end, &to, &e->topic_len) ||
              !e->topic_len)) ||
            p != end || (int64_t)partition < INT32_MIN ||
            (int64_t)partition > INT32_MAX)
                return -1;
        e->topic = to;
        e->reason = reason;
        e->detail = detail;
        e->source_topic = topic;
        e->partition = (int32_t)(int64_t)partition;
        e->offset = (int64_t)offset;
        e->timestamp_ms = (int64_t)timestamp;
        return 0;
}
