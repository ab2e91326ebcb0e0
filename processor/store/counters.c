/* A round's counters (HINCRBY): each commit notes its increments here
 * instead of writing them, and the round writes one HINCRBY per key and
 * field with the sum over the commits whose fence holds. The funnel's,
 * the campaigns' and the accounts' counts of every partition of a round
 * fall on the same few keys: summed, they are a command per field a round
 * instead of one per field and partition. Sums are commutative, so where
 * in the transaction they go does not change what the keys hold; they go
 * first, before any command of the bodies, so that a key the bodies give
 * an expiry (the accounts') exists when it is given. */
#include "store/store_int.h"
#include "util/grow.h"

#include <stdlib.h>
#include <string.h>

/* Key and field are kept as one string: the key, this byte, the field.
 * Our fields never hold it; an id in a key may (it comes from an event),
 * so the string is split at its last one. */
#define COUNTER_SEP '\x1f'

int store_counters_add(struct store_counters *c, const char *k1, const char *k2,
                       const char *k3, const char *field, int64_t num,
                       int64_t by)
{
        const char *part[4] = {k1, k2, k3, field};
        size_t len[4], need = 0, i;
        char digits[24], *at;
        size_t nd = num < 0 ? 0 : store_digits(digits, num);

        for (i = 0; i < 4; i++)
                need += len[i] = strlen(part[i]);
        need += 1 + nd + 1; /* the separator, the number, the NUL */
        if (!ews_grow((void **)&c->arena, &c->size, c->used + need, 1) ||
            !ews_grow((void **)&c->v, &c->cap, c->cnt + 1, sizeof(*c->v)))
                return -1;
        c->v[c->cnt].at = c->used;
        c->v[c->cnt++].by = by;
        at = c->arena + c->used;
        for (i = 0; i < 4; i++) {
                if (i == 3)
                        *at++ = COUNTER_SEP;
                memcpy(at, part[i], len[i]);
                at += len[i];
        }
        memcpy(at, digits + sizeof(digits) - nd, nd);
        at[nd] = '\0';
        c->used += need;
        return 0;
}

/* HINCRBY for one summed slot, its key and field split again. */
static int counters_write_one(struct store_resp *r, const char *kf, int64_t by)
{
        const char *sep = strrchr(kf, COUNTER_SEP);

        return !sep || store_resp_cmd(r, 4) || store_resp_str(r, "HINCRBY") ||
               store_resp_arg(r, kf, (size_t)(sep - kf)) ||
               store_resp_str(r, sep + 1) || store_resp_i64(r, by);
}

int64_t store_counters_write(struct store_counters *c,
                             const struct store_part *parts, size_t cnt,
                             struct store_resp *r)
{
        struct store_idset_slot *slot;
        size_t i, k, n;

        store_idset_reset(&c->sums);
        for (k = 0; k < cnt; k++) {
                if (parts[k].result != EWS_STORE_OK)
                        continue;
                for (i = parts[k].counters_start; i < parts[k].counters_end;
                     i++) {
                        const struct store_counter *e = &c->v[i];

                        slot = store_idset_add(&c->sums, 'h', c->arena + e->at,
                                               0, NULL);
                        if (!slot)
                                return -1;
                        slot->value += e->by;
                }
        }
        n = c->sums.cnt;
        for (i = 0; i < n; i++) {
                slot = &c->sums.slots[c->sums.order[i]];
                if (counters_write_one(r, slot->id, slot->value))
                        return -1;
        }
        return (int64_t)n;
}

bool store_counters_wrote(const struct store_counters *c,
                          const struct store_part *p, size_t n)
{
        const char *id;
        size_t i;

        if (n >= c->sums.cnt)
                return true; /* not known: as if it did */
        id = c->sums.slots[c->sums.order[n]].id;
        for (i = p->counters_start; i < p->counters_end; i++)
                if (!strcmp(c->arena + c->v[i].at, id))
                        return true;
        return false;
}

void store_counters_reset(struct store_counters *c)
{
        store_idset_reset(&c->sums);
        c->cnt = 0;
        c->used = 0;
}

void store_counters_free(struct store_counters *c)
{
        store_idset_free(&c->sums);
        free(c->v);
        free(c->arena);
        memset(c, 0, sizeof(*c));
}
