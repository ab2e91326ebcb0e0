/* The users a batch needs, before its partitions are applied: those of
 * its events and those whose timers are due by the partitions' new
 * watermarks, read in one pipelined round trip (the store's cache
 * first). */
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

bool pipeline_load_users(struct ews_pipeline *p, size_t due)
{
        enum ews_store_result result;
        char errstr[512];
        size_t i;

        result = ews_store_timers_due(p->store, p->due_partitions, p->due_upto,
                                      due, pipeline_timer_due, p, errstr,
                                      sizeof(errstr));
        if (result == EWS_STORE_OK && p->users.cnt) {
                if (!ews_grow((void **)&p->load, &p->load_cap, p->users.cnt,
                              sizeof(*p->load)))
                        return false;
                for (i = 0; i < p->users.cnt; i++)
                        memcpy(p->load[i].user_id,
                               pipeline_user(p, i)->user.user_id, EWS_ID_MAX);
                result = ews_store_users_load(p->store, p->load, p->users.cnt,
                                              errstr, sizeof(errstr));
                for (i = 0; result == EWS_STORE_OK && i < p->users.cnt; i++)
                        pipeline_user(p, i)->user = p->load[i];
                if (result == EWS_STORE_OK)
                        pipeline_funnel_loaded(p);
        }
        if (result != EWS_STORE_OK) {
                p->stats.store_errors++;
                ews_warn("pipeline", "load: %s", errstr);
                return false;
        }
        return true;
}
