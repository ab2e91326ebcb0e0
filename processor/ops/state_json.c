#include "ops/state_json.h"
#include "score/score.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *json_time(int64_t ms)
{
        char buf[40];
        struct tm tm;
        time_t sec = (time_t)(ms / 1000);

        if (!ms)
                return json_null();
        gmtime_r(&sec, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
                 (int)(ms % 1000));
        return json_string(buf);
}

static int json_component_cmp(const void *a, const void *b)
{
        double x = ((const struct ews_component *)a)->value;
        double y = ((const struct ews_component *)b)->value;

        return (y > x) - (y < x);
}

/* Components largest first, decayed by factor: "why is the score this". */
static json_t *json_components(const struct ews_component *v, int cnt,
                               double factor)
{
        struct ews_component sorted[EWS_REASONS_MAX];
        json_t *array = json_array();
        int i;

        if (cnt > EWS_REASONS_MAX)
                cnt = EWS_REASONS_MAX;
        memcpy(sorted, v, (size_t)cnt * sizeof(*v));
        qsort(sorted, (size_t)cnt, sizeof(*sorted), json_component_cmp);
        for (i = 0; array && i < cnt; i++)
                json_array_append_new(
                        array, json_pack("{s:s, s:f}", "name", sorted[i].name,
                                         "score", sorted[i].value * factor));
        return array;
}

/* Activation by behaviour, as kept: the conditions met (bit 0 the score,
 * bit 1 + i condition i), the events each counted, the distinct products
 * seen; NULL when there is none. */
static json_t *json_activation_progress(const struct ews_user *user)
{
        json_t *counts;
        int i;

        if (!user->activation_met && !user->activation_cnt &&
            !user->activation_product_cnt)
                return NULL;
        counts = json_array();
        for (i = 0; counts && i < user->activation_cnt; i++)
                json_array_append_new(counts,
                                      json_integer(user->activation_counts[i]));
        return json_pack("{s:I, s:o, s:i}", "met",
                         (json_int_t)user->activation_met, "counts", counts,
                         "products", user->activation_product_cnt);
}

json_t *ews_json_user(const struct ews_user *user, double half_life_ms,
                      int64_t as_of_ms)
{
        double factor = 1.0;
        int64_t at = user->engagement_ref_ms;
        json_t *json, *progress;

        if (as_of_ms > at && at) {
                factor = ews_score_value_at(1.0, at, as_of_ms, half_life_ms);
                at = as_of_ms;
        }
        json = json_pack(
                "{s:s, s:s, s:o, s:{s:f, s:o, s:f}, s:f, s:o, s:o, s:s?, "
                "s:s?, s:o, s:o, s:o, s:o, s:I}",
                "user_id", user->user_id, "stage", ews_stage_name(user->stage),
                "stage_at", json_time(user->stage_at_ms), "engagement", "score",
                user->engagement * factor, "as_of", json_time(at), "peak",
                user->peak_engagement, "fit", user->fit, "top_contributors",
                json_components(user->reasons, user->reason_cnt, factor),
                "interest",
                json_components(user->interests, user->interest_cnt, factor),
                "account_id", user->account_id[0] ? user->account_id : NULL,
                "campaign_id", user->campaign_id[0] ? user->campaign_id : NULL,
                "trial_started_at", json_time(user->trial_started_ms),
                "activated_at", json_time(user->activated_ms),
                "last_activity_at", json_time(user->last_activity_ms),
                "disengaged_since", json_time(user->disengaged_since_ms),
                "events", (json_int_t)user->events);
        if (json && (progress = json_activation_progress(user)))
                json_object_set_new(json, "activation", progress);
        return json;
}

json_t *ews_json_account(const struct ews_account *account)
{
        return json_pack("{s:s, s:{s:f, s:o}, s:I, s:I}", "account_id",
                         account->account_id, "engagement", "score",
                         account->engagement, "as_of",
                         json_time(account->engagement_ref_ms), "users",
                         (json_int_t)account->users, "active_users",
                         (json_int_t)account->active_users);
}

json_t *ews_json_campaign(const struct ews_campaign *c)
{
        json_t *json = json_pack(
                "{s:s, s:s, s:s, s:s, s:o, s:f, s:I, s:I}", "campaign_id",
                c->campaign_id, "name", c->name, "channel", c->channel,
                "status", c->status, "launched_at", json_time(c->launched_ms),
                "spend", c->spend, "signups", (json_int_t)c->signups,
                "activated", (json_int_t)c->activated);

        if (!json)
                return NULL;
        json_object_set_new(json, "target_activation_rate",
                            c->has_target ? json_real(c->target_activation_rate)
                                          : json_null());
        json_object_set_new(json, "cost_per_activated_trial",
                            c->activated
                                    ? json_real(c->spend / (double)c->activated)
                                    : json_null());
        return json;
}

json_t *ews_json_alert(const struct ews_alert *alert)
{
        json_t *values = json_object(), *contributors = json_array(), *json;
        int i;

        for (i = 0; values && i < alert->value_cnt; i++)
                json_object_set_new(values, alert->values[i].name,
                                    json_real(alert->values[i].value));
        for (i = 0; contributors && i < alert->contributor_cnt; i++)
                json_array_append_new(
                        contributors,
                        json_pack("{s:s, s:f}", "event_type",
                                  alert->contributors[i].event_type, "score",
                                  alert->contributors[i].score));
        json = json_pack(
                "{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:I, "
                "s:I, s:s, s:o, s:o}",
                "alert_id", alert->alert_id, "episode_id", alert->episode_id,
                "seq", (int)alert->seq, "rule", ews_rule_name(alert->rule),
                "status", ews_alert_status_name(alert->status), "severity",
                ews_severity_name(alert->severity), "subject_type",
                ews_subject_name(alert->subject_type), "subject_id",
                alert->subject_id, "account_id",
                alert->account_id[0] ? alert->account_id : NULL, "campaign_id",
                alert->campaign_id[0] ? alert->campaign_id : NULL, "event_time",
                (json_int_t)alert->event_time_ms, "emitted_at",
                (json_int_t)alert->emitted_at_ms, "reason", alert->reason,
                "values", values, "top_contributors", contributors);
        if (json)
                json_object_set_new(
                        json, "last_activity_at",
                        alert->last_activity_ms
                                ? json_integer(alert->last_activity_ms)
                                : json_null());
        return json;
}

void ews_activation_tally_add(const struct ews_score_conf *conf,
                              struct ews_activation_tally *tally,
                              const char *campaign_id,
                              const struct ews_user *user)
{
        uint32_t used = ews_activation_used(conf);
        uint32_t met = ews_activation_met(conf, user);
        bool all = conf->activation_match == EWS_ACTIVATION_ANY ? met != 0
                                                                : met == used;
        bool mature = user->matured_ms != 0;
        int bit;

        if (strcmp(user->campaign_id, campaign_id) || !user->trial_started_ms)
                return;
        tally->trials++;
        tally->mature += mature;
        for (bit = 0; bit <= EWS_ACTIVATION_MAX; bit++)
                if (met & (1u << bit)) {
                        tally->met[bit]++;
                        tally->met_mature[bit] += mature;
                }
        tally->all += all;
        tally->all_mature += all && mature;
}

json_t *ews_json_activation(const struct ews_score_conf *conf,
                            const struct ews_activation_tally *t)
{
        uint32_t used = ews_activation_used(conf);
        json_t *conditions = json_array();
        char text[224];
        int bit;

        for (bit = 0; conditions && bit <= EWS_ACTIVATION_MAX; bit++) {
                if (!(used & (1u << bit)))
                        continue;
                ews_activation_cond_text(conf, bit, text, sizeof(text));
                json_array_append_new(
                        conditions,
                        json_pack("{s:s, s:I, s:I}", "condition", text,
                                  "trials", (json_int_t)t->met[bit], "mature",
                                  (json_int_t)t->met_mature[bit]));
        }
        ews_activation_text(conf, text, sizeof(text));
        return json_pack("{s:s, s:{s:I, s:I}, s:o, s:{s:I, s:I}}", "definition",
                         text, "of", "trials", (json_int_t)t->trials, "mature",
                         (json_int_t)t->mature, "conditions", conditions,
                         conf->activation_match == EWS_ACTIVATION_ANY
                                 ? "met_any"
                                 : "met_all",
                         "trials", (json_int_t)t->all, "mature",
                         (json_int_t)t->all_mature);
}

json_t *ews_json_outbox_record(const char *outbox,
                               const struct ews_outbox_listed *r)
{
        struct ews_outbox_entry entry;
        const char *kind = "unknown";
        json_t *json;

        if (!ews_outbox_unpack(&entry, r->data, r->len))
                kind = entry.kind == EWS_OUTBOX_ALERT ? "alert" : "dead_letter";
        else
                entry.value_len = r->len;
        json = json_pack("{s:s, s:s, s:s, s:s, s:I}", "outbox", outbox, "state",
                         r->parked ? "parked" : "pending", "id", r->id, "kind",
                         kind, "bytes", (json_int_t)entry.value_len);
        if (json && r->parked) {
                if (json_object_set_new(json, "code", json_string(r->code)) ||
                    json_object_set_new(json, "error", json_string(r->error)) ||
                    json_object_set_new(json, "parked",
                                        json_time(r->parked_ms))) {
                        json_decref(json);
                        return NULL;
                }
        }
        return json;
}

static json_t *json_ratio(int64_t n, int64_t of)
{
        return of > 0 ? json_real((double)n / (double)of) : json_null();
}

static json_t *json_per(double spend, int64_t n)
{
        return n > 0 ? json_real(spend / (double)n) : json_null();
}

static json_t *json_median(const int64_t *hist)
{
        int64_t ms = ews_funnel_median_ms(hist);

        return ms < 0 ? json_null() : json_integer(ms);
}

json_t *ews_json_funnel(const struct ews_funnel *f)
{
        json_t *counts = json_object(), *o;
        const int64_t *n = f->count;
        int i;

        for (i = 0; i < EWS_FUNNEL_COUNT; i++)
                json_object_set_new(counts, ews_funnel_name(i),
                                    json_integer(n[i]));
        o = json_pack(
                "{s:s, s:s, s:o, s:{s:o, s:o, s:o, s:o}, s:{s:o, s:o, s:o, "
                "s:o}, s:o, s:o, s:s, s:f, s:o, s:o}",
                "campaign_id", f->campaign_id, "name", f->name, "reached",
                counts, "rate", "activated",
                json_ratio(n[EWS_FUNNEL_ACTIVATED], n[EWS_FUNNEL_SIGNUP]),
                "sales_ready",
                json_ratio(n[EWS_FUNNEL_SALES_READY], n[EWS_FUNNEL_SIGNUP]),
                "customer",
                json_ratio(n[EWS_FUNNEL_CUSTOMER], n[EWS_FUNNEL_SIGNUP]),
                "lost", json_ratio(n[EWS_FUNNEL_LOST], n[EWS_FUNNEL_SIGNUP]),
                "conversion", "signed_up_to_activated",
                json_ratio(n[EWS_FUNNEL_ACTIVATED], n[EWS_FUNNEL_SIGNUP]),
                "activated_to_sales_ready",
                json_ratio(n[EWS_FUNNEL_SALES_READY], n[EWS_FUNNEL_ACTIVATED]),
                "sales_ready_to_customer",
                json_ratio(n[EWS_FUNNEL_CUSTOMER], n[EWS_FUNNEL_SALES_READY]),
                "signed_up_to_customer",
                json_ratio(n[EWS_FUNNEL_CUSTOMER], n[EWS_FUNNEL_SIGNUP]),
                "median_to_activated_ms", json_median(f->to_activated),
                "median_to_sales_ready_ms", json_median(f->to_sales_ready),
                "median_resolution", "x2^(1/4): within 19%", "spend", f->spend,
                "spend_per_activated",
                json_per(f->spend, n[EWS_FUNNEL_ACTIVATED]),
                "spend_per_customer",
                json_per(f->spend, n[EWS_FUNNEL_CUSTOMER]));
        return o;
}

json_t *ews_json_segment_user(const struct ews_user *user, double half_life_ms,
                              int64_t now_ms)
{
        return json_pack(
                "{s:s, s:s?, s:s?, s:s, s:f, s:o, s:f, s:I}", "user_id",
                user->user_id, "campaign_id",
                user->campaign_id[0] ? user->campaign_id : NULL, "account_id",
                user->account_id[0] ? user->account_id : NULL, "stage",
                ews_stage_name(user->stage), "engagement",
                ews_score_value_at(user->engagement, user->engagement_ref_ms,
                                   now_ms, half_life_ms),
                "as_of", json_time(now_ms), "engagement_ref", user->engagement,
                "engagement_ref_ms", (json_int_t)user->engagement_ref_ms);
}
