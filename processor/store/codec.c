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

static uint64_t zigzag(int64_t v)
{
        return ((uint64_t)v << 1) ^ (v < 0 ? ~(uint64_t)0 : 0);
}

/* The flags before the scores (version 5). */
#define CODEC_PEAK_IS_E         0x01u /* peak_engagement is engagement */
#define CODEC_RULE_PEAK_IS_PEAK 0x02u /* rule_peak is peak_engagement */
#define CODEC_FIT_WHOLE         0x04u /* fit a zig-zag varint, not an f64 */
#define CODEC_SCORE_FLAGS       0x07u

static int64_t unzigzag(uint64_t z)
{
        return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* A time near ref: 0 stays 0, any other as its distance from ref (a few
 * bytes where the time itself takes six). */
static void put_near(struct codec *c, int64_t v, int64_t ref)
{
        put_varint(c,
                   v ? zigzag((int64_t)((uint64_t)v - (uint64_t)ref)) + 1 : 0);
}

/* A name as its id in names plus one, or 0 and the name itself. */
static void put_components(struct codec *c, const struct ews_component *v,
                           int cnt, const struct ews_names *names)
{
        int32_t id;
        int i;

        put_u8(c, (unsigned)cnt);
        for (i = 0; i < cnt; i++) {
                id = ews_names_id(names, v[i].name);
                put_varint(c, id >= 0 ? (uint64_t)id + 1 : 0);
                if (id < 0)
                        put_str(c, v[i].name);
                put_f64(c, v[i].value);
        }
}

/* The timer: 0 none, 1 not known, 2 near ref, 3 elsewhere. */
static void put_keep(struct codec *c, const struct ews_user_keep *keep,
                     int64_t ref)
{
        int64_t t = keep->timer_ms;
        int64_t d = (int64_t)((uint64_t)t - (uint64_t)ref);

        if (t == 0 || t == -1) {
                put_varint(c, t == 0 ? 0 : 1);
        } else if (d > -((int64_t)1 << 40) && d < ((int64_t)1 << 40)) {
                put_varint(c, 2);
                put_varint(c, zigzag(d));
        } else {
                put_varint(c, 3);
                put_varint(c, zigzag(t));
        }
        put_varint(c, (uint64_t)(uint32_t)keep->day);
        put_u8(c, keep->member ? 1 : 0);
}

/* Progress towards activation by behaviour: 3 bytes while there is none. */
static void put_activation(struct codec *c, const struct ews_user *user)
{
        int i;

        put_varint(c, user->activation_met);
        put_u8(c, (unsigned)user->activation_cnt);
        for (i = 0; i < user->activation_cnt; i++)
                put_varint(c, user->activation_counts[i]);
        put_u8(c, (unsigned)user->activation_product_cnt);
        for (i = 0; i < user->activation_product_cnt; i++)
                put_u32(c, user->activation_products[i]);
}

static bool same_bits(double a, double b)
{
        return !memcmp(&a, &b, sizeof(a));
}

/* Whether d is a whole number a varint holds exactly (not -0, not NaN). */
static bool whole_number(double d, int64_t *v)
{
        if (!(d > -9007199254740992.0 && d < 9007199254740992.0))
                return false;
        *v = (int64_t)d;
        return same_bits((double)*v, d);
}

/* E, the peaks and fit (version 5): a flags byte, then E, each peak only
 * when it differs from the one before it in bits, fit as a zig-zag varint
 * when it is a whole number. Lossless: every value reads back bit for bit. */
static void put_scores(struct codec *c, const struct ews_user *user)
{
        unsigned flags = 0;
        int64_t fit = 0;

        if (same_bits(user->peak_engagement, user->engagement))
                flags |= CODEC_PEAK_IS_E;
        if (same_bits(user->rule_peak, user->peak_engagement))
                flags |= CODEC_RULE_PEAK_IS_PEAK;
        if (whole_number(user->fit, &fit))
                flags |= CODEC_FIT_WHOLE;
        put_u8(c, flags);
        put_f64(c, user->engagement);
        if (!(flags & CODEC_PEAK_IS_E))
                put_f64(c, user->peak_engagement);
        if (!(flags & CODEC_RULE_PEAK_IS_PEAK))
                put_f64(c, user->rule_peak);
        if (flags & CODEC_FIT_WHOLE)
                put_varint(c, zigzag(fit));
        else
                put_f64(c, user->fit);
}

int ews_user_pack(const struct ews_user *user, int32_t partition,
                  const struct ews_names *names, unsigned char *buf,
                  size_t size)
{
        return ews_user_pack_keep(user, &user->keep, partition, names, buf,
                                  size);
}

int ews_user_pack_keep(const struct ews_user *user,
                       const struct ews_user_keep *keep, int32_t partition,
                       const struct ews_names *names, unsigned char *buf,
                       size_t size)
{
        struct codec c = {buf, buf + size, 0};
        int64_t ref = user->engagement_ref_ms;
        int i;

        put_u8(&c, EWS_USER_PACKED_VERSION);
        put_u8(&c, (unsigned)user->stage);
        put_varint(&c, (uint64_t)(uint32_t)partition);
        put_varint(&c, (uint64_t)user->events);
        put_varint(&c, (uint64_t)ref);
        put_near(&c, user->stage_at_ms, ref);
        put_near(&c, user->last_activity_ms, ref);
        put_near(&c, user->trial_started_ms, ref);
        put_near(&c, user->activated_ms, ref);
        put_near(&c, user->disengaged_since_ms, ref);
        put_near(&c, user->disengaged_resolved_ms, ref);
        put_near(&c, user->sales_ready_since_ms, ref);
        put_near(&c, user->sales_ready_resolved_ms, ref);
        put_near(&c, user->matured_ms, ref);
        put_scores(&c, user);
        put_varint(&c, user->fit_matched);
        put_str(&c, user->account_id);
        put_str(&c, user->campaign_id);
        put_components(&c, user->reasons, user->reason_cnt, names);
        put_components(&c, user->interests, user->interest_cnt, names);
        put_u8(&c, (unsigned)user->dedup_cnt);
        for (i = 0; i < user->dedup_cnt; i++)
                put_u32(&c, user->dedup[i]);
        put_keep(&c, keep, ref);
        put_activation(&c, user);
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

/* Up to 64 bits: ten bytes, the last of them 0 or 1. */
static int64_t get_varint(struct codec *c)
{
        uint64_t v = 0;
        unsigned b;
        int shift;

        for (shift = 0; shift < 64; shift += 7) {
                b = get_u8(c);
                if (shift == 63 && b > 1)
                        break;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        return (int64_t)v;
        }
        c->bad = 1;
        return 0;
}

static int64_t get_near(struct codec *c, int64_t ref)
{
        uint64_t z = (uint64_t)get_varint(c);

        return z ? (int64_t)((uint64_t)ref + (uint64_t)unzigzag(z - 1)) : 0;
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

/* Components: a name inline (versions 1 to 3), or as put_components
 * writes it (version 4); *unknown is set when an id is not in names. */
static int get_components(struct codec *c, struct ews_component *v, int max,
                          bool ids, const struct ews_names *names,
                          bool *unknown)
{
        int i, cnt = (int)get_u8(c);
        const char *name;
        int64_t id;

        if (cnt > max) {
                c->bad = 1;
                return 0;
        }
        for (i = 0; i < cnt; i++) {
                id = ids ? get_varint(c) : 0;
                if (!id) {
                        get_str(c, v[i].name, sizeof(v[i].name));
                } else if (id > EWS_NAMES_MAX) {
                        c->bad = 1;
                } else if ((name = ews_names_name(names, (uint32_t)id - 1))) {
                        memcpy(v[i].name, name, strlen(name) + 1);
                } else {
                        *unknown = true;
                        v[i].name[0] = '\0';
                }
                v[i].value = get_f64(c);
        }
        return cnt;
}

static void get_keep(struct codec *c, struct ews_user_keep *keep, int64_t ref)
{
        int64_t t, day;
        unsigned member;

        switch (get_varint(c)) {
        case 0:
                t = 0;
                break;
        case 1:
                t = -1;
                break;
        case 2:
                t = (int64_t)((uint64_t)ref +
                              (uint64_t)unzigzag((uint64_t)get_varint(c)));
                break;
        case 3:
                t = unzigzag((uint64_t)get_varint(c));
                break;
        default:
                c->bad = 1;
                t = 0;
        }
        keep->timer_ms = t;
        day = get_varint(c);
        member = get_u8(c);
        if (day < 0 || day > INT32_MAX || member > 1)
                c->bad = 1;
        keep->day = (int32_t)day;
        keep->member = member == 1;
}

/* The activation progress (versions 3 and 4); -1 when malformed. */
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

/* The times, versions 1 to 3: each a varint of its own. */
static void get_times_before_4(struct codec *c, struct ews_user *user,
                               unsigned version)
{
        user->stage_at_ms = get_varint(c);
        user->engagement_ref_ms = get_varint(c);
        user->last_activity_ms = get_varint(c);
        user->trial_started_ms = get_varint(c);
        user->activated_ms = get_varint(c);
        user->disengaged_since_ms = get_varint(c);
        if (version >= 2) {
                user->disengaged_resolved_ms = get_varint(c);
                user->sales_ready_since_ms = get_varint(c);
                user->sales_ready_resolved_ms = get_varint(c);
                user->matured_ms = get_varint(c);
                user->rule_peak = get_f64(c);
        } else {
                /* Version 1 had no rule state: it reads as never alerted. */
                user->disengaged_resolved_ms = 0;
                user->sales_ready_since_ms = 0;
                user->sales_ready_resolved_ms = 0;
                user->matured_ms = 0;
                user->rule_peak = 0;
        }
}

/* The times, versions 4 and 5: t_ref, then each near it; version 4 has
 * rule_peak after them. */
static void get_times(struct codec *c, struct ews_user *user, unsigned version)
{
        int64_t ref = get_varint(c);

        user->engagement_ref_ms = ref;
        user->stage_at_ms = get_near(c, ref);
        user->last_activity_ms = get_near(c, ref);
        user->trial_started_ms = get_near(c, ref);
        user->activated_ms = get_near(c, ref);
        user->disengaged_since_ms = get_near(c, ref);
        user->disengaged_resolved_ms = get_near(c, ref);
        user->sales_ready_since_ms = get_near(c, ref);
        user->sales_ready_resolved_ms = get_near(c, ref);
        user->matured_ms = get_near(c, ref);
        if (version == 4)
                user->rule_peak = get_f64(c);
}

/* E, the peaks and fit as put_scores writes them (version 5). */
static void get_scores(struct codec *c, struct ews_user *user)
{
        unsigned flags = get_u8(c);

        if (flags & ~CODEC_SCORE_FLAGS)
                c->bad = 1;
        user->engagement = get_f64(c);
        user->peak_engagement =
                flags & CODEC_PEAK_IS_E ? user->engagement : get_f64(c);
        user->rule_peak = flags & CODEC_RULE_PEAK_IS_PEAK
                                  ? user->peak_engagement
                                  : get_f64(c);
        user->fit = flags & CODEC_FIT_WHOLE
                            ? (double)unzigzag((uint64_t)get_varint(c))
                            : get_f64(c);
}

int ews_user_unpack(struct ews_user *user, int32_t *partition,
                    const struct ews_names *names, const unsigned char *buf,
                    size_t len)
{
        struct codec c = {(unsigned char *)buf, buf + len, 0};
        unsigned stage, version;
        bool unknown = false;
        int64_t p;
        int i;

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
        if (version >= 4)
                get_times(&c, user, version);
        else
                get_times_before_4(&c, user, version);
        if (version >= 5) {
                get_scores(&c, user);
        } else {
                user->engagement = get_f64(&c);
                user->peak_engagement = get_f64(&c);
                user->fit = get_f64(&c);
        }
        if (version >= 4) {
                p = get_varint(&c);
                if (p < 0 || p > UINT32_MAX)
                        c.bad = 1;
                user->fit_matched = (uint32_t)p;
        } else {
                user->fit_matched = get_u32(&c);
        }
        get_str(&c, user->account_id, sizeof(user->account_id));
        get_str(&c, user->campaign_id, sizeof(user->campaign_id));
        user->reason_cnt = get_components(&c, user->reasons, EWS_REASONS_MAX,
                                          version >= 4, names, &unknown);
        user->interest_cnt =
                get_components(&c, user->interests, EWS_INTERESTS_MAX,
                               version >= 4, names, &unknown);
        user->dedup_cnt = (int)get_u8(&c);
        if (user->dedup_cnt > EWS_DEDUP_MAX)
                return -1;
        for (i = 0; i < user->dedup_cnt; i++)
                user->dedup[i] = get_u32(&c);
        if (version >= 4) {
                get_keep(&c, &user->keep, user->engagement_ref_ms);
        } else {
                user->keep.timer_ms = -1; /* the commit files it anew */
                user->keep.day = 0;
                user->keep.member = false;
        }
        user->activation_met = 0;
        user->activation_cnt = user->activation_product_cnt = 0;
        if (version >= 3 && get_activation(&c, user))
                return -1;
        user->funnel =
                version >= 4 ? (uint8_t)get_u8(&c) : ews_funnel_reached(user);
        if (c.bad || c.p != c.end)
                return -1;
        return unknown ? EWS_USER_UNKNOWN_NAME : 0;
}
