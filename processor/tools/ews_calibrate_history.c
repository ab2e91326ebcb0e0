/*
 * The events ews-calibrate read, compact: per event its time, interned user
 * and type, value, id, and the attributes scoring reads (page_class and the
 * fit rules' attributes); nothing else is kept. Strings live in one arena.
 */
#include "tools/ews_calibrate.h"
#include "util/grow.h"
#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

const char *const cal_outcome_names[CAL_OUTCOMES] = {"activation",
                                                     "conversion"};

const char *cal_history_str(const struct cal_history *h, uint32_t off)
{
        return h->arena + off;
}

const char *cal_history_user(const struct cal_history *h, uint32_t user)
{
        return h->arena + h->users.offs[user];
}

const char *cal_history_type(const struct cal_history *h, uint32_t type)
{
        return h->arena + h->types.offs[type];
}

/* Copies s into the arena; its offset, or -1 when out of memory. */
static int64_t cal_arena_put(struct cal_history *h, const char *s)
{
        size_t len = strlen(s) + 1, off = h->arena_len;

        if (off + len > UINT32_MAX ||
            !ews_grow((void **)&h->arena, &h->arena_cap, off + len, 1))
                return -1;
        memcpy(h->arena + off, s, len);
        h->arena_len += len;
        return (int64_t)off;
}

static bool cal_intern_rehash(struct cal_intern *t, const struct cal_history *h,
                              size_t slot_cnt)
{
        uint32_t *slots = calloc(slot_cnt, sizeof(*slots));
        size_t i, s;

        if (!slots)
                return false;
        for (i = 0; i < t->cnt; i++) {
                s = ews_hash32(h->arena + t->offs[i]) & (slot_cnt - 1);
                while (slots[s])
                        s = (s + 1) & (slot_cnt - 1);
                slots[s] = (uint32_t)i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->slot_cnt = slot_cnt;
        return true;
}

/* The index of s in t, added when new; -1 when out of memory. */
static int64_t cal_intern(struct cal_history *h, struct cal_intern *t,
                          const char *s)
{
        size_t slot;
        int64_t off;

        if ((t->cnt + 1) * 2 > t->slot_cnt &&
            !cal_intern_rehash(t, h, t->slot_cnt ? 2 * t->slot_cnt : 64))
                return -1;
        slot = ews_hash32(s) & (t->slot_cnt - 1);
        for (; t->slots[slot]; slot = (slot + 1) & (t->slot_cnt - 1))
                if (!strcmp(h->arena + t->offs[t->slots[slot] - 1], s))
                        return t->slots[slot] - 1;
        if (t->cnt >= UINT32_MAX - 1 ||
            !ews_grow((void **)&t->offs, &t->cap, t->cnt + 1,
                      sizeof(*t->offs)) ||
            (off = cal_arena_put(h, s)) < 0)
                return -1;
        t->offs[t->cnt] = (uint32_t)off;
        t->slots[slot] = (uint32_t)++t->cnt;
        return (int64_t)t->cnt - 1;
}

/* page_class decides whether a page_view scores; the fit rules read their
 * attributes. */
static bool cal_attr_kept(const struct ews_score_conf *conf, const char *key)
{
        int i;

        if (!strcmp(key, "page_class"))
                return true;
        for (i = 0; i < conf->fit_rule_cnt; i++)
                if (!strcmp(conf->fit_rules[i].attribute, key))
                        return true;
        return false;
}

static int cal_attrs_add(struct cal_history *h,
                         const struct ews_score_conf *conf,
                         const struct ews_usage_event *event,
                         struct cal_event *e)
{
        int64_t key, value;
        int i;

        e->attr_off = (uint32_t)h->attr_cnt;
        for (i = 0; i < event->attr_cnt && e->attr_cnt < UINT8_MAX; i++) {
                if (!cal_attr_kept(conf, event->attrs[i].key))
                        continue;
                if (!ews_grow((void **)&h->attrs, &h->attr_cap, h->attr_cnt + 1,
                              sizeof(*h->attrs)) ||
                    (key = cal_arena_put(h, event->attrs[i].key)) < 0 ||
                    (value = cal_arena_put(h, event->attrs[i].value)) < 0)
                        return -1;
                h->attrs[h->attr_cnt].key_off = (uint32_t)key;
                h->attrs[h->attr_cnt++].value_off = (uint32_t)value;
                e->attr_cnt++;
        }
        return 0;
}

int cal_history_add(struct cal_history *h, const struct ews_score_conf *conf,
                    const struct ews_usage_event *event, char *errstr,
                    size_t errstr_size)
{
        int64_t t = event->occurred_at_ms, user, type, id;
        struct cal_event e;

        h->read_cnt++;
        if ((h->from_ms && t < h->from_ms) || (h->to_ms && t >= h->to_ms))
                return 0;
        memset(&e, 0, sizeof(e));
        if ((user = cal_intern(h, &h->users, event->user_id)) < 0 ||
            (type = cal_intern(h, &h->types, event->event_type)) < 0 ||
            (id = cal_arena_put(h, event->event_id)) < 0 ||
            cal_attrs_add(h, conf, event, &e) ||
            !ews_grow((void **)&h->events, &h->event_cap, h->event_cnt + 1,
                      sizeof(*h->events))) {
                snprintf(errstr, errstr_size, "out of memory after %zu events",
                         h->event_cnt);
                return -1;
        }
        if (type >= CAL_TYPES_MAX) {
                snprintf(errstr, errstr_size,
                         "more than %d event types (the latest: '%s')",
                         CAL_TYPES_MAX, event->event_type);
                return -1;
        }
        e.t_ms = t;
        e.user = (uint32_t)user;
        e.type = (uint16_t)type;
        e.seq = (uint32_t)h->event_cnt;
        e.id_off = (uint32_t)id;
        e.has_value = event->has_value;
        e.value = event->value;
        h->events[h->event_cnt++] = e;
        if (!h->kept_cnt || t < h->first_ms)
                h->first_ms = t;
        if (!h->kept_cnt || t > h->last_ms)
                h->last_ms = t;
        h->kept_cnt++;
        return 0;
}

static int cal_event_cmp(const void *a, const void *b)
{
        const struct cal_event *x = a, *y = b;

        if (x->user != y->user)
                return x->user < y->user ? -1 : 1;
        if (x->t_ms != y->t_ms)
                return x->t_ms < y->t_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cal_name_cmp(const void *a, const void *b, void *opaque)
{
        const struct cal_history *h = ((const void **)opaque)[0];
        const uint32_t *offs = ((const void **)opaque)[1];

        return strcmp(h->arena + offs[*(const uint32_t *)a],
                      h->arena + offs[*(const uint32_t *)b]);
}

/* Renumbers t's strings in their sorted order; (*map)[old] is the new
 * index (the caller frees it). False when out of memory. */
static bool cal_intern_sort(struct cal_history *h, struct cal_intern *t,
                            uint32_t **map)
{
        uint32_t *order = malloc((t->cnt + 1) * sizeof(*order));
        uint32_t *offs = malloc((t->cnt + 1) * sizeof(*offs));
        const void *ctx[2] = {h, t->offs};
        bool ok = false;
        size_t i;

        *map = malloc((t->cnt + 1) * sizeof(**map));
        if (!order || !offs || !*map)
                goto out;
        for (i = 0; i < t->cnt; i++)
                order[i] = (uint32_t)i;
        qsort_r(order, t->cnt, sizeof(*order), cal_name_cmp, ctx);
        for (i = 0; i < t->cnt; i++) {
                offs[i] = t->offs[order[i]];
                (*map)[order[i]] = (uint32_t)i;
        }
        memcpy(t->offs, offs, t->cnt * sizeof(*offs));
        ok = cal_intern_rehash(t, h, t->slot_cnt ? t->slot_cnt : 64);
out:
        free(order);
        free(offs);
        return ok;
}

int cal_history_sort(struct cal_history *h)
{
        uint32_t *users = NULL, *types = NULL;
        size_t i;
        int rc = -1;

        if (!cal_intern_sort(h, &h->users, &users) ||
            !cal_intern_sort(h, &h->types, &types))
                goto out;
        for (i = 0; i < h->event_cnt; i++) {
                h->events[i].user = users[h->events[i].user];
                h->events[i].type = (uint16_t)types[h->events[i].type];
        }
        if (h->event_cnt)
                qsort(h->events, h->event_cnt, sizeof(*h->events),
                      cal_event_cmp);
        rc = 0;
out:
        free(users);
        free(types);
        return rc;
}

void cal_history_free(struct cal_history *h)
{
        free(h->events);
        free(h->attrs);
        free(h->arena);
        free(h->users.offs);
        free(h->users.slots);
        free(h->types.offs);
        free(h->types.slots);
        memset(h, 0, sizeof(*h));
}
