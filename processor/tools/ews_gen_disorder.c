/*
 * ews-gen's redeliveries and late arrivals (ews_gen.h): a min-heap of
 * encoded messages by release time, then by the order they were held, and
 * the dice that decide which usage events go there.
 */
#include "ews_gen.h"

#include <stdlib.h>
#include <string.h>

/* The dice's stream: kinds 1-5 are the model's. */
#define GEN_DISORDER_KIND 6

void gen_disorder_init(struct gen_disorder *disorder,
                       const struct gen_model *model)
{
        disorder->rng = gen_rng_seed(model, GEN_DISORDER_KIND, 0);
}

void gen_disorder_roll(struct gen_disorder *disorder, int64_t ms,
                       int64_t *late_ms, int64_t *copy_ms)
{
        uint64_t *rng = &disorder->rng;

        *late_ms = ms;
        *copy_ms = -1;
        if (disorder->late > 0 && gen_rng_unit(rng) < disorder->late) {
                *late_ms =
                        ms + gen_rng_range(rng, 1, disorder->late_max_ms + 1);
                disorder->late_cnt++;
        }
        if (disorder->duplicates > 0 &&
            gen_rng_unit(rng) < disorder->duplicates) {
                *copy_ms =
                        *late_ms +
                        gen_rng_range(rng, 0, disorder->duplicate_max_ms + 1);
                disorder->duplicate_cnt++;
        }
}

static bool gen_held_before(const struct gen_held *a, const struct gen_held *b)
{
        return a->release_ms < b->release_ms ||
               (a->release_ms == b->release_ms && a->order < b->order);
}

static void gen_held_swap(struct gen_held *a, struct gen_held *b)
{
        struct gen_held t = *a;

        *a = *b;
        *b = t;
}

int gen_disorder_hold(struct gen_disorder *disorder, int64_t release_ms,
                      int64_t ms, const char *key, const void *value,
                      size_t len)
{
        struct gen_held *heap = disorder->heap, *held;
        size_t key_len = strlen(key), i, parent;

        if (disorder->cnt == disorder->cap) {
                size_t cap = disorder->cap ? 2 * disorder->cap : 1024;

                heap = realloc(heap, cap * sizeof(*heap));
                if (!heap)
                        return -1;
                disorder->heap = heap;
                disorder->cap = cap;
        }
        held = &heap[disorder->cnt];
        held->data = malloc(key_len + len);
        if (!held->data)
                return -1;
        memcpy(held->data, key, key_len);
        memcpy(held->data + key_len, value, len);
        held->key_len = key_len;
        held->len = len;
        held->ms = ms;
        held->release_ms = release_ms;
        held->order = disorder->order++;
        for (i = disorder->cnt++; i > 0; i = parent) {
                parent = (i - 1) / 2;
                if (!gen_held_before(&heap[i], &heap[parent]))
                        break;
                gen_held_swap(&heap[i], &heap[parent]);
        }
        return 0;
}

bool gen_disorder_take(struct gen_disorder *disorder, int64_t until_ms,
                       struct gen_held *held)
{
        struct gen_held *heap = disorder->heap;
        size_t i = 0, child;

        if (disorder->cnt == 0 || heap[0].release_ms > until_ms)
                return false;
        *held = heap[0];
        heap[0] = heap[--disorder->cnt];
        for (;;) {
                child = 2 * i + 1;
                if (child >= disorder->cnt)
                        break;
                if (child + 1 < disorder->cnt &&
                    gen_held_before(&heap[child + 1], &heap[child]))
                        child++;
                if (!gen_held_before(&heap[child], &heap[i]))
                        break;
                gen_held_swap(&heap[i], &heap[child]);
                i = child;
        }
        return true;
}

void gen_disorder_free(struct gen_disorder *disorder)
{
        size_t i;

        for (i = 0; i < disorder->cnt; i++)
                free(disorder->heap[i].data);
        free(disorder->heap);
        disorder->heap = NULL;
        disorder->cnt = disorder->cap = 0;
}
