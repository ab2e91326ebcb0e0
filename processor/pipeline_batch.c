#include "pipeline_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t batch_hash(const char *s)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        while (*s)
                h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
        return h;
}

static size_t batch_slot(const struct batch_users *users, const char *user_id)
{
        size_t mask = users->slot_cap - 1;
        size_t i = (size_t)batch_hash(user_id) & mask;

        while (users->slots[i] >= 0 &&
               strcmp(users->v[users->slots[i]].user.user_id, user_id))
                i = (i + 1) & mask;
        return i;
}

/* Keeps the table at most half full. */
static int batch_rehash(struct batch_users *users, size_t slot_cap)
{
        int32_t *slots = malloc(slot_cap * sizeof(*slots));
        size_t i;

        if (!slots)
                return -1;
        free(users->slots);
        users->slots = slots;
        users->slot_cap = slot_cap;
        memset(slots, 0xff, slot_cap * sizeof(*slots));
        for (i = 0; i < users->cnt; i++)
                slots[batch_slot(users, users->v[i].user.user_id)] = (int32_t)i;
        return 0;
}

int batch_users_add(struct batch_users *users, const char *user_id,
                    int32_t partition)
{
        struct batch_user *bu;
        size_t slot;

        if ((users->cnt + 1) * 2 > users->slot_cap &&
            batch_rehash(users, users->slot_cap ? users->slot_cap * 2 : 1024))
                return -1;
        slot = batch_slot(users, user_id);
        if (users->slots[slot] >= 0)
                return users->slots[slot];
        if (users->cnt == users->cap) {
                size_t cap = users->cap ? users->cap * 2 : 512;
                struct batch_user *v = realloc(users->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                users->v = v;
                users->cap = cap;
        }
        bu = &users->v[users->cnt];
        memset(bu, 0, sizeof(*bu));
        snprintf(bu->user.user_id, sizeof(bu->user.user_id), "%s", user_id);
        bu->partition = partition;
        users->slots[slot] = (int32_t)users->cnt;
        return (int)users->cnt++;
}

void batch_users_reset(struct batch_users *users)
{
        if (users->slots)
                memset(users->slots, 0xff,
                       users->slot_cap * sizeof(*users->slots));
        users->cnt = 0;
}

void batch_users_free(struct batch_users *users)
{
        free(users->v);
        free(users->slots);
        memset(users, 0, sizeof(*users));
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
