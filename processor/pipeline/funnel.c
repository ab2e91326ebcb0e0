/* The funnel's and the segments' share of a partition's commit, from the
 * users' transitions in the batch: a funnel stage counts when a user
 * reaches it for the first time (its bit in ews_user.funnel, written with
 * the user in the same commit), and a dirty user moves from the segment it
 * was loaded in to the one it is in now. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <string.h>

static struct ews_funnel_delta *
funnel_delta(struct ews_pipeline *p, const char *campaign_id, int64_t t_ms)
{
        struct ews_funnel_delta *d;
        bool added;
        int i = batch_table_add(&p->funnel, campaign_id, &added);

        if (i < 0) {
                ews_err("pipeline", "out of memory");
                return NULL;
        }
        d = batch_table_at(&p->funnel, (size_t)i);
        if (added || t_ms < d->at_ms)
                d->at_ms = t_ms;
        return d;
}

void pipeline_funnel_observe(struct ews_pipeline *p, struct ews_user *user,
                             int64_t t_ms)
{
        uint8_t fresh = ews_funnel_reached(user) & (uint8_t)~user->funnel;
        struct ews_funnel_delta *d;
        int s;

        if (!fresh || !(d = funnel_delta(p, user->campaign_id, t_ms)))
                return;
        user->funnel |= fresh;
        for (s = 0; s < EWS_FUNNEL_COUNT; s++)
                if (fresh & (1u << s))
                        d->count[s]++;
        if (!user->trial_started_ms)
                return;
        if (fresh & (1u << EWS_FUNNEL_ACTIVATED))
                d->to_activated[ews_funnel_bucket(user->activated_ms -
                                                  user->trial_started_ms)]++;
        if (fresh & (1u << EWS_FUNNEL_SALES_READY))
                d->to_sales_ready[ews_funnel_bucket(user->stage_at_ms -
                                                    user->trial_started_ms)]++;
}

void pipeline_funnel_loaded(const struct ews_pipeline *p, struct batch_user *bu,
                            const struct ews_user *user)
{
        bu->segment = ews_segment_of(user);
        bu->segment_score =
                ews_segment_score(user->engagement, user->engagement_ref_ms,
                                  p->config->score.half_life_ms);
}

bool pipeline_funnel_commit(struct ews_pipeline *p, struct ews_commit *commit)
{
        size_t i, cnt = 0;

        if (!ews_grow((void **)&p->commit_segments, &p->commit_segments_cap,
                      commit->user_cnt + 1, sizeof(*p->commit_segments)))
                return false;
        /* state.segments false: no segment writes at all */
        for (i = 0; p->config->segments && i < commit->user_cnt; i++) {
                const struct ews_user *user = commit->users[i].user;
                /* the commit's users are the partition's, in part_state */
                const struct batch_user *bu = pipeline_user(
                        p,
                        (size_t)p->part_users[p->part_first[commit->partition] +
                                              (user - p->part_state)]);
                struct ews_segment_move *m = &p->commit_segments[cnt];

                m->user_id = user->user_id;
                m->from = bu->segment;
                m->to = ews_segment_of(user);
                m->score = ews_segment_score(user->engagement,
                                             user->engagement_ref_ms,
                                             p->config->score.half_life_ms);
                /* unchanged (a timer's user): nothing to write */
                if ((m->from >= 0 || m->to >= 0) &&
                    (m->from != m->to || m->score != bu->segment_score))
                        cnt++;
        }
        commit->segments = p->commit_segments;
        commit->segment_cnt = cnt;
        commit->funnel = batch_table_at(&p->funnel, 0);
        commit->funnel_cnt = p->funnel.cnt;
        return true;
}
