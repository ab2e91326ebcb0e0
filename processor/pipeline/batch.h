/*
 * Scratch memory of one batch, kept across batches so that steady state
 * allocates nothing: tables of what the batch touches (users, accounts,
 * campaigns) indexed by id, and a min-heap of inactivity deadlines.
 */
#ifndef EWS_PIPELINE_BATCH_H
#define EWS_PIPELINE_BATCH_H

#include "util/ews.h"

/* Elements of elem_size bytes that each begin with their id, a
 * char[EWS_ID_MAX]. */
struct batch_table {
        size_t elem_size;
        char *v;
        size_t cnt, cap;
        int32_t *slots;   /* open addressing over v, -1 when free */
        uint32_t *hashes; /* of the slots' ids: most probes compare these */
        size_t slot_cap;
};

void batch_table_init(struct batch_table *table, size_t elem_size);

/* The index of id, added zeroed but for its id when new; -1 when out of
 * memory. *added tells which, when not NULL. */
int batch_table_add(struct batch_table *table, const char *id, bool *added);
void *batch_table_at(const struct batch_table *table, size_t i);
void batch_table_reset(struct batch_table *table);
void batch_table_free(struct batch_table *table);

/* A user of the batch: its packed value as the store read it until its
 * partition is applied, then unpacked with the partition's others (2 KB
 * each whole, a few hundred bytes packed: a batch holds tens of
 * thousands). */
struct batch_user {
        char user_id[EWS_ID_MAX];
        int32_t partition;
        bool dirty;           /* to be written by the partition's commit */
        size_t value_off;     /* the value in the batch's values */
        size_t value_len;     /* 0: not stored yet (a packed user is never
                               * empty) */
        int32_t slot;         /* in the partition's users while applied */
        int segment;          /* as loaded (util/funnel.h), -1 for none */
        double segment_score; /* its score in it, as loaded */
};

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
