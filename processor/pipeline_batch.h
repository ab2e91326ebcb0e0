/*
 * Scratch memory of one batch, kept across batches so that steady state
 * allocates nothing: the users the batch touches, indexed by id, and a
 * min-heap of their inactivity deadlines.
 */
#ifndef EWS_PIPELINE_BATCH_H
#define EWS_PIPELINE_BATCH_H

#include "ews.h"

struct batch_user {
        struct ews_user user;
        int32_t partition;
        bool dirty; /* to be written by the partition's commit */
};

struct batch_users {
        struct batch_user *v;
        size_t cnt, cap;
        int32_t *slots; /* open addressing over v, -1 when free */
        size_t slot_cap;
};

/* The index of user_id, added (zeroed, with its id) when new; -1 when out
 * of memory. */
int batch_users_add(struct batch_users *users, const char *user_id,
                    int32_t partition);
void batch_users_reset(struct batch_users *users);
void batch_users_free(struct batch_users *users);

struct timer_entry {
        int64_t deadline_ms;
        int32_t user;
};

struct timer_heap {
        struct timer_entry *v;
        size_t cnt, cap;
};

int timer_heap_push(struct timer_heap *heap, int64_t deadline_ms, int32_t user);
/* Pops the earliest entry due by upto_ms into *entry; false when none. */
bool timer_heap_pop_due(struct timer_heap *heap, int64_t upto_ms,
                        struct timer_entry *entry);
void timer_heap_free(struct timer_heap *heap);

#endif
