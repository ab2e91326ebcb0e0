/* A set of (kind, id) with a value each, for one commit or one round
 * (store_int.h): open addressing over a power-of-two table, the slots in
 * use kept in the order added, so that what is written from it comes out
 * in that order. */
#include "store/store_int.h"

#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

struct store_idset_slot *store_idset_add(struct store_idset *set, char kind,
                                         const char *id, int64_t init,
                                         bool *added)
{
        struct store_idset_slot *slot;
        size_t i;

        if (2 * (set->cnt + 1) > set->cap) {
                struct store_idset bigger = {0};

                bigger.cap = set->cap ? set->cap * 2 : 64;
                bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
                bigger.order = malloc(bigger.cap * sizeof(*bigger.order));
                if (!bigger.slots || !bigger.order) {
                        free(bigger.slots);
                        free(bigger.order);
                        return NULL;
                }
                for (i = 0; i < set->cnt; i++) {
                        slot = &set->slots[set->order[i]];
                        *store_idset_add(&bigger, slot->kind, slot->id, 0,
                                         NULL) = *slot;
                }
                store_idset_free(set);
                *set = bigger;
        }
        i = (size_t)(ews_hash64(id) ^ (uint64_t)(unsigned char)kind) &
            (set->cap - 1);
        for (;; i = (i + 1) & (set->cap - 1)) {
                slot = &set->slots[i];
                if (!slot->id)
                        break;
                if (slot->kind == kind && !strcmp(slot->id, id)) {
                        if (added)
                                *added = false;
                        return slot;
                }
        }
        slot->id = id;
        slot->kind = kind;
        slot->value = init;
        set->order[set->cnt++] = (uint32_t)i;
        if (added)
                *added = true;
        return slot;
}

void store_idset_reset(struct store_idset *set)
{
        size_t i;

        for (i = 0; i < set->cnt; i++)
                set->slots[set->order[i]].id = NULL;
        set->cnt = 0;
}

void store_idset_free(struct store_idset *set)
{
        free(set->slots);
        free(set->order);
        memset(set, 0, sizeof(*set));
}
