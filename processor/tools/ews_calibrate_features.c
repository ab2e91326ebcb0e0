/*
 * Features and outcomes of each user, by replaying its events (in event
 * time) through the scoring model with the configuration's points, as the
 * processor applies them: duplicates counted once, E, F and the lifecycle
 * stage as ews_score_apply() keeps them.
 *
 * At the cut-off (trial start + k days) a user's features are, per event
 * type, the sum over its events up to then of ews_score_scale() decayed to
 * the cut-off with the configured half-life (the points the type would give
 * at one point each: sum_j w_j x_j is E at the cut-off), and per fit rule
 * 1 when it matched. An outcome already reached at the cut-off is not
 * predicted (decided); one whose window ends after the data is unknown
 * (censored).
 */
#include "tools/ews_calibrate.h"
#include "score/score.h"

#include <stdlib.h>
#include <string.h>

/* The lifecycle's own event types (score/score.c): outcomes, not
 * behaviour, so never features. */
static const char *const cal_stage_types[] = {"converted", "trial_ended"};

bool cal_column_usable(const struct cal_history *h,
                       const struct cal_dataset *ds, size_t col)
{
        size_t i;

        if (col >= (size_t)ds->type_cnt)
                return true;
        for (i = 0; i < sizeof(cal_stage_types) / sizeof(cal_stage_types[0]);
             i++)
                if (!strcmp(cal_history_type(h, (uint32_t)col),
                            cal_stage_types[i]))
                        return false;
        return true;
}

double cal_configured_points(const struct ews_config *c, const char *type)
{
        int i;

        for (i = 0; i < c->score.weight_cnt; i++)
                if (!strcmp(c->score.weights[i].event_type, type))
                        return c->score.weights[i].points;
        return 0;
}

int64_t cal_outcome_window(const struct ews_config *c,
                           const struct cal_opts *opts, enum cal_outcome o)
{
        int64_t w = c->score.activation_window_ms;

        if (o == CAL_CONVERSION)
                return opts->conversion_ms;
        /* a mature signup counts as activated if it got there by maturity
         * (rules.campaign.underperforming.maturity), and activation counts
         * only within scoring.activation.window */
        return w < c->rules.maturity_ms ? w : c->rules.maturity_ms;
}

/* The event as decode hands it on, from its compact form. */
static void cal_event_expand(const struct cal_history *h,
                             const struct cal_event *e,
                             struct ews_usage_event_buf *buf)
{
        struct ews_usage_event *ev = ews_usage_event_init(buf);
        const struct cal_attr *a = &h->attrs[e->attr_off];
        int i;

        memset(ev, 0, offsetof(struct ews_usage_event, attrs));
        snprintf(ev->event_id, sizeof(ev->event_id), "%s",
                 cal_history_str(h, e->id_off));
        snprintf(ev->user_id, sizeof(ev->user_id), "%s",
                 cal_history_user(h, e->user));
        snprintf(ev->event_type, sizeof(ev->event_type), "%s",
                 cal_history_type(h, e->type));
        ev->has_value = e->has_value;
        ev->value = e->value;
        ev->occurred_at_ms = e->t_ms;
        for (i = 0; i < e->attr_cnt && i < EWS_ATTR_MAX; i++) {
                snprintf(buf->attrs[i].key, sizeof(buf->attrs[i].key), "%s",
                         cal_history_str(h, a[i].key_off));
                snprintf(buf->attrs[i].value, sizeof(buf->attrs[i].value), "%s",
                         cal_history_str(h, a[i].value_off));
        }
        ev->attr_cnt = i;
}

/* What a replay saw of one user. */
struct cal_replay {
        int64_t start_ms, cut_ms, horizon_ms;
        int64_t activated_ms, converted_ms;
        bool at_cut; /* the snapshot was taken */
        bool activated_at_cut, converted_at_cut;
};

static void cal_snapshot(const struct ews_config *c, const struct ews_user *u,
                         struct cal_replay *rp, struct cal_row *row)
{
        row->engagement =
                ews_score_value_at(u->engagement, u->engagement_ref_ms,
                                   rp->cut_ms, c->score.half_life_ms);
        row->fit = u->fit;
        row->fit_matched = u->fit_matched;
        rp->activated_at_cut = u->activated_ms && u->activated_ms <= rp->cut_ms;
        rp->converted_at_cut = rp->converted_ms != 0;
        rp->at_cut = true;
}

/* Replays events[0..n) of one user into row and its features x. */
static void cal_replay_user(const struct cal_history *h,
                            const struct ews_config *c,
                            const struct cal_event *events, size_t n,
                            struct cal_replay *rp, struct cal_row *row,
                            double *x)
{
        static struct ews_usage_event_buf buf;
        static struct ews_user user;
        struct ews_score_result r;
        const struct cal_event *e;
        size_t i;

        memset(&user, 0, sizeof(user));
        for (i = 0; i < n; i++) {
                e = &events[i];
                if (e->t_ms > rp->cut_ms && !rp->at_cut)
                        cal_snapshot(c, &user, rp, row);
                if (e->t_ms > rp->horizon_ms)
                        break;
                cal_event_expand(h, e, &buf);
                r = ews_score_apply(&c->score, &user, &buf.event);
                if (!r.duplicate && e->t_ms <= rp->cut_ms)
                        x[e->type] += ews_score_decay(
                                ews_score_scale(&c->score, &buf.event),
                                rp->cut_ms - e->t_ms, c->score.half_life_ms);
                if (user.stage == EWS_STAGE_CUSTOMER && !rp->converted_ms)
                        rp->converted_ms = user.stage_at_ms;
        }
        if (!rp->at_cut)
                cal_snapshot(c, &user, rp, row);
        rp->activated_ms = user.activated_ms;
}

static enum cal_label cal_label_of(int64_t end_ms, int64_t horizon_ms,
                                   bool at_cut, int64_t reached_ms)
{
        if (horizon_ms > end_ms)
                return CAL_CENSORED;
        if (at_cut)
                return CAL_DECIDED;
        return reached_ms && reached_ms <= horizon_ms ? CAL_POSITIVE
                                                      : CAL_NEGATIVE;
}

/* The earliest trial start among the user's events, 0 for none. */
static int64_t cal_user_start(const struct cal_history *h,
                              const struct cal_event *events, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (!strcmp(cal_history_type(h, events[i].type),
                            "trial_started"))
                        return events[i].t_ms; /* in time order */
        return 0;
}

static void cal_row_add(const struct cal_history *h, const struct ews_config *c,
                        const struct cal_opts *opts,
                        const struct cal_event *events, size_t n,
                        struct cal_dataset *ds)
{
        int64_t win[CAL_OUTCOMES], start = cal_user_start(h, events, n);
        struct cal_replay rp;
        struct cal_row *row;
        double *x;
        int o, i;

        if (!start) {
                ds->no_start++;
                return;
        }
        memset(&rp, 0, sizeof(rp));
        rp.start_ms = start;
        rp.cut_ms = start + opts->cutoff_ms;
        rp.horizon_ms = rp.cut_ms;
        for (o = 0; o < CAL_OUTCOMES; o++) {
                win[o] = cal_outcome_window(c, opts, o);
                if (start + win[o] > rp.horizon_ms)
                        rp.horizon_ms = start + win[o];
        }
        row = &ds->rows[ds->row_cnt];
        x = &ds->x[ds->row_cnt * ds->col_cnt];
        memset(row, 0, sizeof(*row));
        row->user = events[0].user;
        row->start_ms = start;
        cal_replay_user(h, c, events, n, &rp, row, x);
        for (i = 0; i < ds->fit_cnt; i++)
                x[ds->type_cnt + i] = (row->fit_matched >> i) & 1u;
        row->label[CAL_ACTIVATION] =
                cal_label_of(opts->end_ms, start + win[CAL_ACTIVATION],
                             rp.activated_at_cut, rp.activated_ms);
        row->label[CAL_CONVERSION] =
                cal_label_of(opts->end_ms, start + win[CAL_CONVERSION],
                             rp.converted_at_cut, rp.converted_ms);
        ds->row_cnt++;
}

int cal_dataset_build(const struct cal_history *h, const struct ews_config *c,
                      const struct cal_opts *opts, struct cal_dataset *ds,
                      char *errstr, size_t errstr_size)
{
        size_t i, j;

        memset(ds, 0, sizeof(*ds));
        ds->type_cnt = (int)h->types.cnt;
        ds->fit_cnt = c->score.fit_rule_cnt < 32 ? c->score.fit_rule_cnt : 32;
        ds->col_cnt = (size_t)(ds->type_cnt + ds->fit_cnt);
        ds->users_read = (int64_t)h->users.cnt;
        ds->rows = calloc(h->users.cnt + 1, sizeof(*ds->rows));
        ds->x = calloc((h->users.cnt + 1) * (ds->col_cnt + 1), sizeof(*ds->x));
        if (!ds->rows || !ds->x) {
                snprintf(errstr, errstr_size,
                         "out of memory for %zu users' features", h->users.cnt);
                cal_dataset_free(ds);
                return -1;
        }
        for (i = 0; i < h->event_cnt; i = j) {
                for (j = i + 1;
                     j < h->event_cnt && h->events[j].user == h->events[i].user;
                     j++)
                        ;
                cal_row_add(h, c, opts, &h->events[i], j - i, ds);
        }
        return 0;
}

void cal_dataset_free(struct cal_dataset *ds)
{
        free(ds->rows);
        free(ds->x);
        memset(ds, 0, sizeof(*ds));
}
