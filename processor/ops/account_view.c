/* The account view (account_view.h). */
#include "ops/account_view.h"
#include "score/score.h"
#include "store/views.h"
#include "util/funnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct view_walk {
        struct ews_store *store;
        const struct ews_account_view_query *q;
        struct ews_account *top; /* the best q->limit so far, unsorted */
        size_t cnt;
        char *errstr;
        size_t errstr_size;
};

static const struct ews_account_view_query *view_q;

/* The order key within a sign of A (util/funnel.h): larger is ahead in
 * descending order. */
static double view_key(const struct ews_account *a)
{
        if (view_q->by_active)
                return (double)a->active_users;
        return ews_segment_score(a->engagement, a->engagement_ref_ms,
                                 view_q->half_life_ms);
}

/* Negative when a goes first. */
static int view_cmp(const void *pa, const void *pb)
{
        const struct ews_account *a = pa, *b = pb;
        int pos_a = a->engagement > 0, pos_b = b->engagement > 0;
        double ka = view_key(a), kb = view_key(b);
        int c;

        if (!view_q->by_active && pos_a != pos_b)
                c = pos_a - pos_b;
        else
                c = (ka > kb) - (ka < kb);
        if (!c)
                c = -strcmp(a->account_id, b->account_id);
        return view_q->asc ? c : -c;
}

static enum ews_store_result view_account(void *opaque, enum ews_subject kind,
                                          const char *id)
{
        struct view_walk *w = opaque;
        struct ews_account a;
        enum ews_store_result r;
        size_t i, last = 0;

        (void)kind;
        r = ews_store_account_get(w->store, id, w->q->active_window_ms, &a,
                                  w->errstr, w->errstr_size);
        if (r == EWS_STORE_NOT_FOUND)
                return EWS_STORE_OK; /* expired meanwhile */
        if (r != EWS_STORE_OK)
                return r;
        if (w->cnt < w->q->limit) {
                w->top[w->cnt++] = a;
                return EWS_STORE_OK;
        }
        /* replaces the one that goes last, if a goes before it */
        for (i = 1; i < w->cnt; i++)
                if (view_cmp(&w->top[i], &w->top[last]) > 0)
                        last = i;
        if (view_cmp(&a, &w->top[last]) < 0)
                w->top[last] = a;
        return EWS_STORE_OK;
}

static json_t *view_json(struct view_walk *w, const struct ews_account *a,
                         int64_t as_of, char (*ids)[EWS_ID_MAX])
{
        json_t *members = json_array();
        size_t n = 0, i;

        if (ews_store_account_members(w->store, a->account_id, ids,
                                      w->q->members, &n, w->errstr,
                                      w->errstr_size)) {
                json_decref(members);
                return NULL;
        }
        for (i = 0; i < n; i++)
                json_array_append_new(members, json_string(ids[i]));
        return json_pack("{s:s, s:f, s:I, s:I, s:I, s:o}", "account_id",
                         a->account_id, "engagement",
                         ews_score_value_at(a->engagement, a->engagement_ref_ms,
                                            as_of, w->q->half_life_ms),
                         "as_of_ms", (json_int_t)as_of, "users",
                         (json_int_t)a->users, "active_users",
                         (json_int_t)a->active_users, "members", members);
}

json_t *ews_account_view(struct ews_store *store,
                         const struct ews_account_view_query *q, char *errstr,
                         size_t errstr_size)
{
        struct view_walk w = {store, q, NULL, 0, errstr, errstr_size};
        char(*ids)[EWS_ID_MAX] = calloc(q->members + 1, sizeof(*ids));
        json_t *list = NULL, *one;
        int64_t as_of = q->now_ms;
        size_t i;

        view_q = q;
        w.top = calloc(q->limit + 1, sizeof(*w.top));
        if (!w.top || !ids) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if (ews_store_subjects_scan(store, EWS_SUBJECTS_ACCOUNTS, 0,
                                    view_account, &w, errstr, errstr_size))
                goto out;
        qsort(w.top, w.cnt, sizeof(*w.top), view_cmp);
        for (i = 0; !q->now_ms && i < w.cnt; i++)
                if (w.top[i].engagement_ref_ms > as_of)
                        as_of = w.top[i].engagement_ref_ms;
        list = json_array();
        for (i = 0; i < w.cnt; i++) {
                if (!(one = view_json(&w, &w.top[i], as_of, ids))) {
                        json_decref(list);
                        list = NULL;
                        goto out;
                }
                json_array_append_new(list, one);
        }
        list = json_pack("{s:o, s:s, s:s}", "accounts", list, "order_by",
                         q->by_active ? "active_users" : "engagement", "order",
                         q->asc ? "asc" : "desc");
out:
        free(w.top);
        free(ids);
        return list;
}
