#include "pipeline/batch.h"
#include "util/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *batch_id(const struct batch_table *table, size_t i)
{
        return table->v + i * table->elem_size;
}

static size_t batch_slot(const struct batch_table *table, const char *id,
                         uint64_t hash)
{
        size_t mask = table->slot_cap - 1;
        size_t i = (size_t)hash & mask;

        while (table->slots[i] >= 0 &&
               (table->hashes[i] != (uint32_t)(hash >> 32) ||
                strcmp(batch_id(table, (size_t)table->slots[i]), id)))
                i = (i + 1) & mask;
        return i;
}

/* Keeps the table at most half full. */
static int batch_rehash(struct batch_table *table, size_t slot_cap)
{
        int32_t *slots = malloc(slot_cap * sizeof(*slots));
        uint32_t *hashes = malloc(slot_cap * sizeof(*hashes));
        uint64_t hash;
        size_t i, slot;

        if (!slots || !hashes) {
                free(slots);
                free(hashes);
                return -1;
        }
        free(table->slots);
        free(table->hashes);
        table->slots = slots;
        table->hashes = hashes;
        table->slot_cap = slot_cap;
        memset(slots, 0xff, slot_cap * sizeof(*slots));
        for (i = 0; i < table->cnt; i++) {
                hash = ews_hash64(batch_id(table, i));
                slot = batch_slot(table, batch_id(table, i), hash);
                slots[slot] = (int32_t)i;
                hashes[slot] = (uint32_t)(hash >> 32);
        }
        return 0;
}

void batch_table_init(struct batch_table *table, size_t elem_size)
{
        memset(table, 0, sizeof(*table));
        table->elem_size = elem_size;
}

int batch_table_add(struct batch_table *table, const char *id, bool *added)
{
        size_t slot, len;
        uint64_t hash;
        char *elem;

        if (added)
                *added = false;
        if ((table->cnt + 1) * 2 > table->slot_cap &&
            batch_rehash(table, table->slot_cap ? table->slot_cap * 2 : 1024))
                return -1;
        hash = ews_hash64(id);
        slot = batch_slot(table, id, hash);
        if (table->slots[slot] >= 0)
                return table->slots[slot];
        if (table->cnt == table->cap) {
                size_t cap = table->cap ? table->cap * 2 : 256;
                char *v = realloc(table->v, cap * table->elem_size);
                if (!v)
                        return -1;
                table->v = v;
                table->cap = cap;
        }
        elem = table->v + table->cnt * table->elem_size;
        memset(elem, 0, table->elem_size);
        len = strnlen(id, EWS_ID_MAX - 1); /* as snprintf would cut it */
        memcpy(elem, id, len);
        table->slots[slot] = (int32_t)table->cnt;
        table->hashes[slot] = (uint32_t)(hash >> 32);
        if (added)
                *added = true;
        return (int)table->cnt++;
}

void *batch_table_at(const struct batch_table *table, size_t i)
{
        return table->v + i * table->elem_size;
}

void batch_table_reset(struct batch_table *table)
{
        if (table->slots)
                memset(table->slots, 0xff,
                       table->slot_cap * sizeof(*table->slots));
        table->cnt = 0;
}

void batch_table_free(struct batch_table *table)
{
        free(table->v);
        free(table->slots);
        free(table->hashes);
        batch_table_init(table, table->elem_size);
}

static bool timer_less(const struct timer_entry *a, const struct timer_entry *b)
{
        /* Ties by user index keep the firing order independent of how the
         * heap was built. */
        return a->deadline_ms < b->deadline_ms ||
               (a->deadline_ms == b->deadline_ms && a->user < b->user);
}

int timer_heap_push(struct timer_heap *heap, int64_t deadline_ms, int32_t user)
{
        struct timer_entry e = {deadline_ms, user};
        size_t i;

        if (heap->cnt == heap->cap) {
                size_t cap = heap->cap ? heap->cap * 2 : 1024;
                struct timer_entry *v = realloc(heap->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                heap->v = v;
                heap->cap = cap;
        }
        for (i = heap->cnt++; i > 0 && timer_less(&e, &heap->v[(i - 1) / 2]);
             i = (i - 1) / 2)
                heap->v[i] = heap->v[(i - 1) / 2];
        heap->v[i] = e;
        return 0;
}

bool timer_heap_pop_due(struct timer_heap *heap, int64_t upto_ms,
                        struct timer_entry *entry)
{
        struct timer_entry last;
        size_t i = 0, child;

        if (!heap->cnt || heap->v[0].deadline_ms > upto_ms)
                return false;
        *entry = heap->v[0];
        last = heap->v[--heap->cnt];
        while ((child = 2 * i + 1) < heap->cnt) {
                if (child + 1 < heap->cnt &&
                    timer_less(&heap->v[child + 1], &heap->v[child]))
                        child++;
                if (!timer_less(&heap->v[child], &last))
                        break;
                heap->v[i] = heap->v[child];
                i = child;
        }
        heap->v[i] = last;
        return true;
}

void timer_heap_free(struct timer_heap *heap)
{
        free(heap->v);
        memset(heap, 0, sizeof(*heap));
}
