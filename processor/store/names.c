/* The names dictionary of the packed users (codec.h): event types and
 * products as small ids, both ways. */
#include "store/codec.h"
#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

struct ews_names {
        char (*names)[EWS_NAME_MAX]; /* by id; "" where none yet */
        uint32_t cap;                /* ids below it have room */
        uint32_t cnt;                /* names held */
        int32_t *slots;  /* open addressing over name hashes: id, -1 free */
        size_t slot_cap; /* a power of two, at least twice cnt */
};

struct ews_names *ews_names_new(void)
{
        return calloc(1, sizeof(struct ews_names));
}

void ews_names_destroy(struct ews_names *names)
{
        if (!names)
                return;
        free(names->names);
        free(names->slots);
        free(names);
}

static size_t names_slot(const struct ews_names *names, const char *name)
{
        size_t mask = names->slot_cap - 1;
        size_t i = (size_t)ews_hash64(name) & mask;

        while (names->slots[i] >= 0 &&
               strcmp(names->names[names->slots[i]], name))
                i = (i + 1) & mask;
        return i;
}

int32_t ews_names_id(const struct ews_names *names, const char *name)
{
        if (!names || !names->cnt)
                return -1;
        return names->slots[names_slot(names, name)];
}

const char *ews_names_name(const struct ews_names *names, uint32_t id)
{
        if (!names || id >= names->cap || !names->names[id][0])
                return NULL;
        return names->names[id];
}

static int names_rehash(struct ews_names *names, size_t slot_cap)
{
        int32_t *slots = malloc(slot_cap * sizeof(*slots));
        uint32_t id;

        if (!slots)
                return -1;
        free(names->slots);
        names->slots = slots;
        names->slot_cap = slot_cap;
        memset(slots, 0xff, slot_cap * sizeof(*slots));
        for (id = 0; id < names->cap; id++)
                if (names->names[id][0])
                        slots[names_slot(names, names->names[id])] =
                                (int32_t)id;
        return 0;
}

int ews_names_put(struct ews_names *names, uint32_t id, const char *name)
{
        size_t len = strlen(name);

        if (!len || len >= EWS_NAME_MAX || id >= EWS_NAMES_MAX)
                return -1;
        if (id < names->cap && names->names[id][0])
                return strcmp(names->names[id], name) ? -1 : 0;
        if (ews_names_id(names, name) >= 0)
                return -1; /* the name has another id */
        if (id >= names->cap) {
                uint32_t cap = names->cap ? names->cap : 64;
                char(*grown)[EWS_NAME_MAX];

                while (cap <= id)
                        cap *= 2;
                grown = realloc(names->names, cap * sizeof(*grown));
                if (!grown)
                        return -1;
                memset(grown + names->cap, 0,
                       (cap - names->cap) * sizeof(*grown));
                names->names = grown;
                names->cap = cap;
        }
        if (2 * ((size_t)names->cnt + 1) > names->slot_cap &&
            names_rehash(names, names->slot_cap ? names->slot_cap * 2 : 128))
                return -1;
        memcpy(names->names[id], name, len + 1);
        names->slots[names_slot(names, name)] = (int32_t)id;
        names->cnt++;
        return 0;
}
