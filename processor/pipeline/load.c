/* The users a batch needs, before its partitions are applied: those of
 * its events and those whose timers are due by the partitions' new
 * watermarks, read in one pipelined round trip (the store's cache
 * first) and kept packed, then grouped by partition so that each
 * partition's share walks only its own, unpacked while it is applied. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <string.h>

int pipeline_user_add(struct ews_pipeline *p, const char *user_id,
                      int32_t partition)
{
        bool added;
        int i = batch_table_add(&p->users, user_id, &added);

        if (i >= 0 && added)
                pipeline_user(p, (size_t)i)->partition = partition;
        return i;
}

static void pipeline_timer_due(void *opaque, int32_t partition,
                               const char *user_id)
{
        struct ews_pipeline *p = opaque;

        if (pipeline_user_add(p, user_id, partition) < 0)
                ews_err("pipeline", "out of memory");
}

/* The batch's users grouped by partition, in the order they were added
 * (a counting sort): each partition's share walks only its own. */
static bool pipeline_group_users(struct ews_pipeline *p)
{
        int32_t *first = p->part_first;
        size_t i;

        if (!ews_grow((void **)&p->part_users, &p->part_users_cap,
                      p->users.cnt + 1, sizeof(*p->part_users)))
                return false;
        memset(first, 0, sizeof(p->part_first));
        for (i = 0; i < p->users.cnt; i++)
                first[pipeline_user(p, i)->partition + 1]++;
        for (i = 1; i <= EWS_PARTITIONS_MAX; i++)
                first[i] += first[i - 1];
        for (i = 0; i < p->users.cnt; i++)
                p->part_users[first[pipeline_user(p, i)->partition]++] =
                        (int32_t)i;
        /* each start moved to the next one's: shift back */
        memmove(first + 1, first, EWS_PARTITIONS_MAX * sizeof(*first));
        first[0] = 0;
        return true;
}

/* Keeps user i's packed value (NULL: not stored yet) in the batch's
 * values, until its partition is applied. */
static bool pipeline_value_got(void *opaque, size_t i,
                               const unsigned char *value, size_t len)
{
        struct ews_pipeline *p = opaque;
        struct batch_user *bu = pipeline_user(p, i);

        bu->value_off = p->values_used;
        bu->value_len = value ? len : 0;
        if (!value)
                return true;
        if (!ews_grow((void **)&p->values, &p->values_cap, p->values_used + len,
                      1))
                return false;
        memcpy(p->values + p->values_used, value, len);
        p->values_used += len;
        return true;
}

bool pipeline_load_users(struct ews_pipeline *p, size_t due)
{
        enum ews_store_result result;
        char errstr[512];
        size_t i;

        p->values_used = 0;
        result = ews_store_timers_due(p->store, p->due_partitions, p->due_from,
                                      p->due_upto, due, pipeline_timer_due, p,
                                      errstr, sizeof(errstr));
        if (result == EWS_STORE_OK && p->users.cnt) {
                if (!ews_grow((void **)&p->load, &p->load_cap, p->users.cnt,
                              sizeof(*p->load)))
                        return false;
                for (i = 0; i < p->users.cnt; i++)
                        p->load[i] = pipeline_user(p, i)->user_id;
                result = ews_store_users_read(p->store, p->load, p->users.cnt,
                                              pipeline_value_got, p, errstr,
                                              sizeof(errstr));
        }
        if (result != EWS_STORE_OK) {
                p->stats.store_errors++;
                ews_warn("pipeline", "load: %s", errstr);
                return false;
        }
        return pipeline_group_users(p);
}
