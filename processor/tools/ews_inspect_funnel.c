/* ews-inspect funnel [CAMPAIGN] and ews-inspect segment STAGE [asc|desc]
 * [--campaign, --account, --product as KEY=VALUE words] [limit] ... */
#include "ews_inspect.h"
#include "ops/account_view.h"
#include "ops/state_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INSPECT_FUNNEL_MAX 200

static void funnel_pct(int64_t n, int64_t of)
{
        if (of > 0)
                printf(" %5.1f%%", 100.0 * (double)n / (double)of);
        else
                printf(" %6s", "-");
}

static void funnel_time(int64_t ms)
{
        if (ms < 0)
                printf(" %8s", "-");
        else if (ms < 3600000)
                printf(" %7.0fm", (double)ms / 60000.0);
        else if (ms < 172800000)
                printf(" %7.1fh", (double)ms / 3600000.0);
        else
                printf(" %7.1fd", (double)ms / 86400000.0);
}

static void funnel_row(const struct ews_funnel *f)
{
        const int64_t *n = f->count;

        printf("%-12.12s %8lld %8lld",
               f->campaign_id[0] ? f->campaign_id : "(all)", (long long)n[0],
               (long long)n[1]);
        funnel_pct(n[1], n[0]);
        printf(" %11lld", (long long)n[2]);
        funnel_pct(n[2], n[0]);
        printf(" %8lld", (long long)n[3]);
        funnel_pct(n[3], n[0]);
        printf(" %6lld", (long long)n[4]);
        funnel_time(ews_funnel_median_ms(f->to_activated));
        funnel_time(ews_funnel_median_ms(f->to_sales_ready));
        if (n[1] > 0)
                printf(" %9.2f", f->spend / (double)n[1]);
        else
                printf(" %9s", "-");
        if (n[3] > 0)
                printf(" %9.2f", f->spend / (double)n[3]);
        else
                printf(" %9s", "-");
        printf("\n");
}

int inspect_funnel_run(struct ews_store *store, int cnt, char **words)
{
        static char ids[INSPECT_FUNNEL_MAX][EWS_ID_MAX];
        struct ews_funnel f, total;
        char errstr[512];
        size_t n = 0, i;

        if (cnt > 1) {
                fprintf(stderr,
                        "ews-inspect: funnel takes one campaign at most\n");
                return 2;
        }
        if (cnt == 1) {
                snprintf(ids[0], EWS_ID_MAX, "%s", words[0]);
                n = 1;
        } else if (ews_store_funnel_campaigns(store, ids, INSPECT_FUNNEL_MAX,
                                              &n, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 1;
        }
        printf("%-12s %9s %9s %6s %11s %6s %8s %6s %6s %8s %8s %9s %9s\n",
               "campaign", "signed_up", "activated", "rate", "sales_ready",
               "rate", "customer", "rate", "lost", "to_act", "to_sr",
               "spend/act", "spend/cus");
        for (i = 0; i < n; i++) {
                enum ews_store_result r = ews_store_funnel_get(
                        store, ids[i], &f, errstr, sizeof(errstr));

                if (r == EWS_STORE_NOT_FOUND) {
                        fprintf(stderr, "ews-inspect: no campaign %s\n",
                                ids[i]);
                        return 1;
                }
                if (r != EWS_STORE_OK) {
                        fprintf(stderr, "ews-inspect: %s\n", errstr);
                        return 1;
                }
                funnel_row(&f);
        }
        if (cnt == 1)
                return 0;
        if (ews_store_funnel_get(store, "", &total, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 1;
        }
        funnel_row(&total);
        printf("rate: of signed_up; to_act, to_sr: median time from signup "
               "to activation, to sales-ready (log-spaced buckets: within "
               "19%%); spend per activated trial, per customer\n");
        return 0;
}

int inspect_segment_run(struct ews_store *store, double half_life_ms,
                        int64_t now_ms, int cnt, char **words)
{
        int64_t as_of = 0;
        static struct ews_user users[1000];
        struct ews_segment_query q;
        char errstr[512];
        size_t limit = 20, n = 0, i;
        char next[EWS_SEGMENT_CURSOR_MAX];
        int w, s;
        json_t *out, *list;

        memset(&q, 0, sizeof(q));
        q.stage = EWS_STAGE_COUNT;
        for (w = 0; w < cnt; w++) {
                const char *v = strchr(words[w], '=');

                for (s = 1; !v && s < EWS_STAGE_COUNT; s++)
                        if (!strcmp(words[w], ews_stage_name(s)))
                                q.stage = (enum ews_stage)s;
                if (!v &&
                    (!strcmp(words[w], "asc") || !strcmp(words[w], "desc")))
                        q.desc = words[w][0] == 'd';
                else if (v && !strncmp(words[w], "campaign=", 9))
                        q.campaign_id = v + 1;
                else if (v && !strncmp(words[w], "account=", 8))
                        q.account_id = v + 1;
                else if (v && !strncmp(words[w], "product=", 8))
                        q.product = v + 1;
                else if (v && !strncmp(words[w], "limit=", 6))
                        limit = (size_t)strtoul(v + 1, NULL, 10);
                else if (v && !strncmp(words[w], "cursor=", 7))
                        q.cursor = v + 1;
                else if (v || q.stage == EWS_STAGE_COUNT) {
                        fprintf(stderr, "ews-inspect: segment: what is '%s'?\n",
                                words[w]);
                        return 2;
                }
        }
        if (q.stage == EWS_STAGE_COUNT || !limit || limit > 1000) {
                fprintf(stderr, "ews-inspect: segment STAGE [asc|desc] "
                                "[campaign=ID] [account=ID] [product=P] "
                                "[limit=1..1000] [cursor=C]\n");
                return 2;
        }
        switch (ews_store_segment(store, &q, users, limit, &n, next, errstr,
                                  sizeof(errstr))) {
        case EWS_STORE_OK:
                break;
        case EWS_STORE_REJECTED:
                fprintf(stderr,
                        "ews-inspect: %s (pass a page's next_cursor "
                        "as it is)\n",
                        errstr);
                return 2;
        default:
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 1;
        }
        /* E as of now (--now), else as of the page's latest t_ref: the
         * order is the same at any time */
        for (i = 0; !now_ms && i < n; i++)
                if (users[i].engagement_ref_ms > as_of)
                        as_of = users[i].engagement_ref_ms;
        list = json_array();
        for (i = 0; i < n; i++)
                json_array_append_new(
                        list, ews_json_segment_user(&users[i], half_life_ms,
                                                    now_ms ? now_ms : as_of));
        out = json_pack("{s:s, s:s, s:o, s:o}", "stage",
                        ews_stage_name(q.stage), "order",
                        q.desc ? "desc" : "asc", "users", list, "next_cursor",
                        next[0] ? json_string(next) : json_null());
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        printf("\n");
        json_decref(out);
        return 0;
}

int inspect_accounts_run(struct ews_store *store, double half_life_ms,
                         int64_t active_window_ms, int64_t now_ms, int cnt,
                         char **words)
{
        struct ews_account_view_query q = {
                false, false, 20, 10, half_life_ms, active_window_ms, now_ms};
        char errstr[512];
        json_t *out;
        long v;
        int w;

        for (w = 0; w < cnt; w++) {
                const char *eq = strchr(words[w], '=');

                v = eq ? strtol(eq + 1, NULL, 10) : 0;
                if (!strcmp(words[w], "asc") || !strcmp(words[w], "desc"))
                        q.asc = words[w][0] == 'a';
                else if (!strcmp(words[w], "by=engagement") ||
                         !strcmp(words[w], "by=active_users"))
                        q.by_active = words[w][3] == 'a';
                else if (!strncmp(words[w], "limit=", 6) && v > 0 &&
                         v <= EWS_ACCOUNT_VIEW_MAX)
                        q.limit = (size_t)v;
                else if (!strncmp(words[w], "members=", 8) && v >= 0 &&
                         v <= 1000)
                        q.members = (size_t)v;
                else {
                        fprintf(stderr,
                                "ews-inspect: accounts [by=engagement|"
                                "active_users] [asc|desc] [limit=1..%d] "
                                "[members=0..1000], not '%s'\n",
                                EWS_ACCOUNT_VIEW_MAX, words[w]);
                        return 2;
                }
        }
        out = ews_account_view(store, &q, errstr, sizeof(errstr));
        if (!out) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 1;
        }
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        printf("\n");
        json_decref(out);
        return 0;
}
