#include "store/codec.h"

#include <stdbool.h>
#include <string.h>

struct codec {
        unsigned char *p;
        const unsigned char *end;
        int bad;
};

static void put_bytes(struct codec *c, const void *v, size_t n)
{
        if (c->bad || (size_t)(c->end - c->p) < n) {
                c->bad = 1;
                return;
        }
        memcpy(c->p, v, n);
        c->p += n;
}

static void put_u8(struct codec *c, unsigned v)
{
        unsigned char b = (unsigned char)v;

        put_bytes(c, &b, 1);
}

static void put_varint(struct codec *c, uint64_t v)
{
        while (v > 0x7f) {
                put_u8(c, (unsigned)((v & 0x7f) | 0x80));
                v >>= 7;
        }
        put_u8(c, (unsigned)v);
}

static void put_u32(struct codec *c, uint32_t v)
{
        unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                              (unsigned char)(v >> 16),
                              (unsigned char)(v >> 24)};

        put_bytes(c, b, 4);
}

static void put_f64(struct codec *c, double d)
{
        uint64_t v;
        int i;

        memcpy(&v, &d, 8);
        for (i = 0; i < 8; i++)
                put_u8(c, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_str(struct codec *c, const char *s)
{
        size_t n = strlen(s);

        if (n > 255) {
                c->bad = 1;
                return;
        }
        put_u8(c, (unsigned)n);
        put_bytes(c, s, n);
}

static void put_components(struct codec *c, const struct ews_component *v,
                           int cnt)
{
        int i;

        put_u8(c, (unsigned)cnt);
        for (i = 0; i < cnt; i++) {
                put_str(c, v[i].name);
                put_f64(c, v[i].value);
        }
}

int ews_user_pack(const struct ews_user *user, int32_t partition,
                  unsigned char *buf, size_t size)
{
        struct codec c = {buf, buf + size, 0};
        int i;

        bool activation = user->activation_met || user->activation_cnt ||
                          user->activation_product_cnt || user->funnel;

        /* without activation progress or funnel, version 2 as it always
         * was */
        put_u8(&c, user->funnel ? EWS_USER_PACKED_VERSION : activation ? 3 : 2);
        put_u8(&c, (unsigned)user->stage);
        put_varint(&c, (uint64_t)(uint32_t)partition);
        put_varint(&c, (uint64_t)user->events);
        put_varint(&c, (uint64_t)user->stage_at_ms);
        put_varint(&c, (uint64_t)user->engagement_ref_ms);
        put_varint(&c, (uint64_t)user->last_activity_ms);
        put_varint(&c, (uint64_t)user->trial_started_ms);
        put_varint(&c, (uint64_t)user->activated_ms);
        put_varint(&c, (uint64_t)user->disengaged_since_ms);
        put_varint(&c, (uint64_t)user->disengaged_resolved_ms);
        put_varint(&c, (uint64_t)user->sales_ready_since_ms);
        put_varint(&c, (uint64_t)user->sales_ready_resolved_ms);
        put_varint(&c, (uint64_t)user->matured_ms);
        put_f64(&c, user->rule_peak);
        put_f64(&c, user->engagement);
        put_f64(&c, user->peak_engagement);
        put_f64(&c, user->fit);
        put_u32(&c, user->fit_matched);
        put_str(&c, user->account_id);
        put_str(&c, user->campaign_id);
        put_components(&c, user->reasons, user->reason_cnt);
        put_components(&c, user->interests, user->interest_cnt);
        put_u8(&c, (unsigned)user->dedup_cnt);
        for (i = 0; i < user->dedup_cnt; i++)
                put_u32(&c, user->dedup[i]);
        if (activation) {
                put_varint(&c, user->activation_met);
                put_u8(&c, (unsigned)user->activation_cnt);
                for (i = 0; i < user->activation_cnt; i++)
                        put_varint(&c, user->activation_counts[i]);
                put_u8(&c, (unsigned)user->activation_product_cnt);
                for (i = 0; i < user->activation_product_cnt; i++)
                        put_u32(&c, user->activation_products[i]);
        }
        if (user->funnel)
                put_u8(&c, user->funnel);
        return c.bad ? -1 : (int)(c.p - buf);
}

static const unsigned char *get_bytes(struct codec *c, size_t n)
{
        const unsigned char *p = c->p;

        if (c->bad || (size_t)(c->end - c->p) < n) {
                c->bad = 1;
                return NULL;
        }
        c->p += n;
        return p;
}

static unsigned get_u8(struct codec *c)
{
        const unsigned char *p = get_bytes(c, 1);

        return p ? *p : 0;
}

static int64_t get_varint(struct codec *c)
{
        uint64_t v = 0;
        unsigned b;
        int shift;

        for (shift = 0; shift < 63; shift += 7) {
                b = get_u8(c);
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        return (int64_t)v;
        }
        c->bad = 1;
        return 0;
}

static uint32_t get_u32(struct codec *c)
{
        const unsigned char *p = get_bytes(c, 4);

        return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                               (uint32_t)p[3] << 24
                 : 0;
}

static double get_f64(struct codec *c)
{
        const unsigned char *p = get_bytes(c, 8);
        uint64_t v = 0;
        double d = 0.0;
        int i;

        if (!p)
                return 0.0;
        for (i = 0; i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        memcpy(&d, &v, 8);
        return d;
}

static void get_str(struct codec *c, char *dst, size_t size)
{
        size_t n = get_u8(c);
        const unsigned char *p = get_bytes(c, n);

        /* the packer writes strlen() bytes: a NUL inside is damage */
        if (!p || n >= size || memchr(p, '\0', n)) {
                c->bad = 1;
                dst[0] = '\0';
                return;
        }
        memcpy(dst, p, n);
        dst[n] = '\0';
}

static int get_components(struct codec *c, struct ews_component *v, int max)
{
        int i, cnt = (int)get_u8(c);

        if (cnt > max) {
                c->bad = 1;
                return 0;
        }
        for (i = 0; i < cnt; i++) {
                get_str(c, v[i].name, sizeof(v[i].name));
                v[i].value = get_f64(c);
        }
        return cnt;
}

/* The activation progress of a version 3 value; -1 when malformed. */
static int get_activation(struct codec *c, struct ews_user *user)
{
        int64_t v;
        int i;

        v = get_varint(c);
        user->activation_met = (uint32_t)v;
        user->activation_cnt = (int)get_u8(c);
        if (v < 0 || v > UINT32_MAX ||
            user->activation_cnt > EWS_ACTIVATION_MAX)
                return -1;
        for (i = 0; i < user->activation_cnt; i++) {
                v = get_varint(c);
                if (v < 0 || v > UINT16_MAX)
                        return -1;
                user->activation_counts[i] = (uint16_t)v;
        }
        user->activation_product_cnt = (int)get_u8(c);
        if (user->activation_product_cnt > EWS_ACTIVATION_MAX)
                return -1;
        for (i = 0; i < user->activation_product_cnt; i++)
                user->activation_products[i] = get_u32(c);
        return 0;
}

int ews_user_unpack(struct ews_user *user, int32_t *partition,
                    const unsigned char *buf, size_t len)
{
        struct codec c = {(unsigned char *)buf, buf + len, 0};
        unsigned stage, version;
        int64_t p;
        int i;

        /* Version 1 had no rule state: it reads as never alerted; before
         * version 3 none had activation progress. */
        version = get_u8(&c);
        if (version < 1 || version > EWS_USER_PACKED_VERSION)
                return -1;
        stage = get_u8(&c);
        if (stage >= EWS_STAGE_COUNT)
                return -1;
        p = get_varint(&c);
        if (p < 0 || p > INT32_MAX)
                return -1;
        *partition = (int32_t)p;
        user->stage = (enum ews_stage)stage;
        user->events = get_varint(&c);
        user->stage_at_ms = get_varint(&c);
        user->engagement_ref_ms = get_varint(&c);
        user->last_activity_ms = get_varint(&c);
        user->trial_started_ms = get_varint(&c);
        user->activated_ms = get_varint(&c);
        user->disengaged_since_ms = get_varint(&c);
        if (version >= 2) {
                user->disengaged_resolved_ms = get_varint(&c);
                user->sales_ready_since_ms = get_varint(&c);
                user->sales_ready_resolved_ms = get_varint(&c);
                user->matured_ms = get_varint(&c);
                user->rule_peak = get_f64(&c);
        } else {
                user->disengaged_resolved_ms = 0;
                user->sales_ready_since_ms = 0;
                user->sales_ready_resolved_ms = 0;
                user->matured_ms = 0;
                user->rule_peak = 0;
        }
        user->engagement = get_f64(&c);
        user->peak_engagement = get_f64(&c);
        user->fit = get_f64(&c);
        user->fit_matched = get_u32(&c);
        user->activation_met = 0;
        user->activation_cnt = user->activation_product_cnt = 0;
        get_str(&c, user->account_id, sizeof(user->account_id));
        get_str(&c, user->campaign_id, sizeof(user->campaign_id));
        user->reason_cnt = get_components(&c, user->reasons, EWS_REASONS_MAX);
        user->interest_cnt =
                get_components(&c, user->interests, EWS_INTERESTS_MAX);
        user->dedup_cnt = (int)get_u8(&c);
        if (user->dedup_cnt > EWS_DEDUP_MAX)
                return -1;
        for (i = 0; i < user->dedup_cnt; i++)
                user->dedup[i] = get_u32(&c);
        if (version >= 3 && get_activation(&c, user))
                return -1;
        /* Before version 4 the funnel did not count: what the user had
         * reached then reads as counted, so the funnel counts from the
         * upgrade on, not the past again. */
        user->funnel =
                version >= 4 ? (uint8_t)get_u8(&c) : ews_funnel_reached(user);
        return c.bad || c.p != c.end ? -1 : 0;
}
