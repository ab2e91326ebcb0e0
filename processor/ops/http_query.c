/* The funnel and segment queries of the HTTP API (http_query.h). */
#include "ops/http_query.h"
#include "ops/account_view.h"
#include "ops/state_json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERY_CAMPAIGNS_MAX 1000
#define QUERY_USERS_MAX     1000

static const char *query_arg(struct MHD_Connection *c, const char *name)
{
        return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

bool ews_http_query_path(const char *path)
{
        size_t n = strlen(path);

        return !strcmp(path, "/v1/funnel") || !strcmp(path, "/v1/segments") ||
               !strcmp(path, "/v1/accounts") ||
               (!strncmp(path, "/v1/campaigns/", 14) && n > 21 &&
                !strcmp(path + n - 7, "/funnel"));
}

/* A positive number up to max from the argument (def when absent); -1
 * when it is not one. */
static long query_count(struct MHD_Connection *c, const char *name, long def,
                        long max)
{
        const char *v = query_arg(c, name);
        char *end;
        long n;

        if (!v)
                return def;
        n = strtol(v, &end, 10);
        return *v && !*end && n > 0 && n <= max ? n : -1;
}

static int query_stage(const char *name)
{
        int s;

        for (s = 0; name && s < EWS_FUNNEL_COUNT; s++)
                if (!strcmp(name, ews_funnel_name(s)))
                        return s;
        return -1;
}

static int query_sort_stage;
static bool query_sort_asc;

static double query_rate(const struct ews_funnel *f)
{
        int s = query_sort_stage;

        if (s == EWS_FUNNEL_SIGNUP)
                return (double)f->count[s];
        return f->count[0] ? (double)f->count[s] / (double)f->count[0] : -1;
}

static int query_funnel_cmp(const void *a, const void *b)
{
        double ra = query_rate(a), rb = query_rate(b);
        int c = (ra > rb) - (ra < rb);

        return query_sort_asc ? c : -c;
}

static json_t *query_funnels(struct ews_store *store, struct MHD_Connection *c,
                             unsigned *status, char *why, size_t why_size)
{
        static char ids[QUERY_CAMPAIGNS_MAX][EWS_ID_MAX];
        static struct ews_funnel funnels[QUERY_CAMPAIGNS_MAX];
        const char *sort = query_arg(c, "sort"), *order = query_arg(c, "order");
        long limit = query_count(c, "limit", 100, QUERY_CAMPAIGNS_MAX);
        struct ews_funnel total;
        size_t n = 0, i;
        json_t *list;

        query_sort_stage = sort ? query_stage(sort) : EWS_FUNNEL_SIGNUP;
        query_sort_asc = order && !strcmp(order, "asc");
        if (query_sort_stage < 0 || limit < 0 ||
            (order && strcmp(order, "asc") && strcmp(order, "desc"))) {
                *status = 400;
                snprintf(why, why_size,
                         "sort=signed_up|activated|sales_ready|customer|lost, "
                         "order=asc|desc, limit=1..%d\n",
                         QUERY_CAMPAIGNS_MAX);
                return NULL;
        }
        if (ews_store_funnel_campaigns(store, ids, (size_t)limit, &n, why,
                                       why_size) ||
            ews_store_funnel_get(store, "", &total, why, why_size))
                return NULL;
        for (i = 0; i < n; i++) {
                if (ews_store_funnel_get(store, ids[i], &funnels[i], why,
                                         why_size) == EWS_STORE_ERROR)
                        return NULL;
        }
        qsort(funnels, n, sizeof(funnels[0]), query_funnel_cmp);
        list = json_array();
        for (i = 0; i < n; i++)
                json_array_append_new(list, ews_json_funnel(&funnels[i]));
        return json_pack("{s:o, s:o, s:s}", "campaigns", list, "total",
                         ews_json_funnel(&total), "sort",
                         ews_funnel_name(query_sort_stage));
}

static json_t *query_segments(struct ews_store *store, double half_life_ms,
                              struct MHD_Connection *c, unsigned *status,
                              char *why, size_t why_size)
{
        static struct ews_user users[QUERY_USERS_MAX];
        const char *stage = query_arg(c, "stage"),
                   *order = query_arg(c, "order");
        const char *cursor = query_arg(c, "cursor");
        long limit = query_count(c, "limit", 50, QUERY_USERS_MAX);
        struct ews_segment_query q;
        struct timespec ts;
        char next[EWS_SEGMENT_CURSOR_MAX];
        size_t n, i;
        json_t *list;
        int s;

        memset(&q, 0, sizeof(q));
        q.stage = EWS_STAGE_COUNT;
        for (s = 1; stage && s < EWS_STAGE_COUNT; s++)
                if (!strcmp(stage, ews_stage_name(s)))
                        q.stage = (enum ews_stage)s;
        q.desc = order && !strcmp(order, "desc");
        q.cursor = cursor;
        if (q.stage == EWS_STAGE_COUNT || limit < 0 ||
            (order && strcmp(order, "asc") && strcmp(order, "desc")) ||
            (cursor && !*cursor)) {
                *status = 400;
                snprintf(why, why_size,
                         "stage=trial|activated|sales_ready|customer|lost, "
                         "order=asc|desc, limit=1..%d, cursor from "
                         "next_cursor\n",
                         QUERY_USERS_MAX);
                return NULL;
        }
        q.campaign_id = query_arg(c, "campaign");
        q.account_id = query_arg(c, "account");
        q.product = query_arg(c, "product");
        switch (ews_store_segment(store, &q, users, (size_t)limit, &n, next,
                                  why, why_size)) {
        case EWS_STORE_OK:
                break;
        case EWS_STORE_REJECTED:
                *status = 400;
                snprintf(why, why_size,
                         "cursor: pass a page's next_cursor "
                         "as it is\n");
                return NULL;
        default:
                return NULL;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        list = json_array();
        for (i = 0; i < n; i++)
                json_array_append_new(
                        list,
                        ews_json_segment_user(&users[i], half_life_ms,
                                              (int64_t)ts.tv_sec * 1000 +
                                                      ts.tv_nsec / 1000000));
        return json_pack("{s:s, s:s, s:o, s:o}", "stage",
                         ews_stage_name(q.stage), "order",
                         q.desc ? "desc" : "asc", "users", list, "next_cursor",
                         next[0] ? json_string(next) : json_null());
}

static json_t *query_accounts(struct ews_store *store,
                              const struct ews_http_query_conf *conf,
                              struct MHD_Connection *c, unsigned *status,
                              char *why, size_t why_size)
{
        const char *by = query_arg(c, "order_by"),
                   *order = query_arg(c, "order");
        struct ews_account_view_query q = {
                .half_life_ms = conf->half_life_ms,
                .active_window_ms = conf->account_active_window_ms};
        long limit = query_count(c, "limit", 20, EWS_ACCOUNT_VIEW_MAX);
        long members = query_count(c, "members", 10, 1000);

        if (limit < 0 || members < 0 ||
            (by && strcmp(by, "engagement") && strcmp(by, "active_users")) ||
            (order && strcmp(order, "asc") && strcmp(order, "desc"))) {
                *status = 400;
                snprintf(why, why_size,
                         "order_by=engagement|active_users, order=asc|desc, "
                         "limit=1..%d, members=1..1000\n",
                         EWS_ACCOUNT_VIEW_MAX);
                return NULL;
        }
        q.by_active = by && !strcmp(by, "active_users");
        q.asc = order && !strcmp(order, "asc");
        q.limit = (size_t)limit;
        q.members = (size_t)members;
        return ews_account_view(store, &q, why, why_size);
}

json_t *ews_http_query(struct ews_store *store,
                       const struct ews_http_query_conf *conf,
                       struct MHD_Connection *connection, const char *method,
                       const char *path, unsigned *status, char *why,
                       size_t why_size)
{
        double half_life_ms = conf->half_life_ms;
        char id[EWS_ID_MAX];
        struct ews_funnel f;
        json_t *json = NULL;
        size_t n = strlen(path) - 14 - 7;
        enum ews_store_result r;

        *status = 200;
        if (strcmp(method, "GET")) {
                *status = 405;
                snprintf(why, why_size, "only GET\n");
                return NULL;
        }
        if (!strcmp(path, "/v1/funnel"))
                json = query_funnels(store, connection, status, why, why_size);
        else if (!strcmp(path, "/v1/accounts"))
                json = query_accounts(store, conf, connection, status, why,
                                      why_size);
        else if (!strcmp(path, "/v1/segments") && !conf->segments) {
                *status = 404;
                snprintf(why, why_size,
                         "segments are off (state.segments: false)\n");
        } else if (!strcmp(path, "/v1/segments"))
                json = query_segments(store, half_life_ms, connection, status,
                                      why, why_size);
        else if (n >= sizeof(id) || memchr(path + 14, '/', n)) {
                *status = 404;
                snprintf(why, why_size, "not found\n");
                return NULL;
        } else {
                memcpy(id, path + 14, n);
                id[n] = '\0';
                r = ews_store_funnel_get(store, id, &f, why, why_size);
                if (r == EWS_STORE_NOT_FOUND) {
                        *status = 404;
                        snprintf(why, why_size, "not found\n");
                        return NULL;
                }
                if (r == EWS_STORE_OK)
                        json = ews_json_funnel(&f);
        }
        if (!json && *status == 200) {
                ews_warn("http", "%s", why);
                *status = 503;
                snprintf(why, why_size, "store unavailable\n");
        }
        return json;
}
