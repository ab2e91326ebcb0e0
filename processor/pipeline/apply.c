/* One partition's share of a batch: score, rules, then the commit. */
#include "rules/rules.h"
#include "util/hash.h"
#include "score/score.h"
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APPLY_ALERTS_PER_CALL 4

int64_t pipeline_watermark(const struct ews_pipeline *p, int64_t watermark_ms,
                           int64_t event_ms)
{
        int64_t w = (p->time_mode == EWS_TIME_WALL ? p->now_ms : event_ms) -
                    p->config->allowed_lateness_ms;

        return w > watermark_ms ? w : watermark_ms;
}

/* Room for the alerts one rules call may write. */
static struct ews_alert *apply_alert_slots(struct ews_pipeline *p)
{
        if (!ews_grow((void **)&p->alerts, &p->alert_cap,
                      p->alert_cnt + APPLY_ALERTS_PER_CALL, sizeof(*p->alerts)))
                return NULL;
        return &p->alerts[p->alert_cnt];
}

static void apply_arm(struct ews_pipeline *p, int32_t u)
{
        int64_t deadline = ews_rules_user_deadline(&p->config->rules,
                                                   pipeline_user_state(p, u));

        if (deadline && timer_heap_push(&p->heap, deadline, u))
                ews_err("pipeline", "out of memory");
}

/* The day a count at event time t_ms goes to: its own day, unless the
 * partition's watermark was already past it (from_ms) when the count
 * became known, as with an event later than the allowed lateness; then
 * the day of from_ms, which this partition still holds open, so that no
 * count lands in a day the leader may have decided. */
static int64_t apply_day(int64_t t_ms, int64_t from_ms)
{
        return (t_ms > from_ms ? t_ms : from_ms) / EWS_DAY_MS;
}

/* Decimal digits of v (not negative) at p; the end. */
static char *apply_digits(char *p, int64_t v)
{
        char digits[24];
        uint64_t d = v < 0 ? 0 : (uint64_t)v;
        size_t n = 0;

        do
                digits[n++] = (char)('0' + d % 10);
        while (d /= 10);
        while (n)
                *p++ = digits[--n];
        return p;
}

/* The key of a cohort's days in the batch's table, as
 * "%c%lld-%lld:%08x:%.72s" of kind, the days, the id's hash and the id
 * would write it, without printf (days are not negative): at most 123
 * bytes. */
static void apply_cohort_key(char *key, char kind, int64_t day,
                             int64_t day_last, const char *id)
{
        static const char hex[] = "0123456789abcdef";
        uint32_t h = ews_hash32(id);
        size_t len = strnlen(id, 72);
        char *p = key;
        int i;

        *p++ = kind;
        p = apply_digits(p, day);
        *p++ = '-';
        p = apply_digits(p, day_last);
        *p++ = ':';
        for (i = 7; i >= 0; i--)
                *p++ = hex[(h >> (4 * i)) & 0xf];
        *p++ = ':';
        memcpy(p, id, len);
        p[len] = '\0';
}

/* A cohort's days in this commit, day to day_last, to add to; ids too
 * long for the key are told apart by their hash. NULL when out of
 * memory. */
static struct ews_cohort_delta *apply_cohort(struct ews_pipeline *p, char kind,
                                             const char *id, int64_t day,
                                             int64_t day_last)
{
        char key[EWS_ID_MAX];
        struct batch_cohort *c;
        bool added;
        int i;

        apply_cohort_key(key, kind, day, day_last, id);
        i = batch_table_add(&p->cohorts, key, &added);
        if (i < 0) {
                ews_err("pipeline", "out of memory");
                return NULL;
        }
        c = batch_table_at(&p->cohorts, (size_t)i);
        if (added) {
                c->delta.kind = kind;
                memcpy(c->delta.id, id, strnlen(id, sizeof(c->delta.id) - 1));
                c->delta.day = day;
                c->delta.day_last = day_last;
        }
        return &c->delta;
}

/* A campaign's day in this commit (cb:<id> fields of that day). */
static struct ews_cohort_delta *
apply_campaign_day(struct ews_pipeline *p, const char *campaign_id, int64_t day)
{
        return apply_cohort(p, EWS_COHORT_CAMPAIGN, campaign_id, day, day);
}

/* Fires the user timers due by watermark_ms, which the partition's
 * watermark reached from from_ms. A heap entry whose user has moved on
 * since it was pushed is stale and passed over. A matured trial counts on
 * the day it matured, whatever the partition's events did around it. */
static void apply_fire(struct ews_pipeline *p, int64_t from_ms,
                       int64_t watermark_ms)
{
        struct timer_entry entry;
        struct ews_alert *slots;
        struct ews_rules_cohort cohort;
        struct ews_cohort_delta *d;

        while (timer_heap_pop_due(&p->heap, watermark_ms, &entry)) {
                struct batch_user *bu = pipeline_user(p, entry.user);
                struct ews_user *user = pipeline_user_state(p, entry.user);

                if (ews_rules_user_deadline(&p->config->rules, user) !=
                    entry.deadline_ms)
                        continue;
                bu->dirty = true;
                if (!(slots = apply_alert_slots(p)))
                        continue;
                p->alert_cnt += (size_t)ews_rules_user_timer(
                        &p->config->rules, user, watermark_ms, p->now_ms, slots,
                        APPLY_ALERTS_PER_CALL, &cohort);
                if (cohort.matured &&
                    (d = apply_campaign_day(
                             p, user->campaign_id,
                             apply_day(cohort.matured_ms, from_ms)))) {
                        d->n++;
                        d->k += cohort.activated ? 1 : 0;
                }
                apply_arm(p, entry.user);
        }
}

static struct ews_campaign_delta *apply_campaign(struct ews_pipeline *p,
                                                 const char *campaign_id)
{
        int i = batch_table_add(&p->campaigns, campaign_id, NULL);

        if (i < 0) {
                ews_err("pipeline", "out of memory");
                return NULL;
        }
        return batch_table_at(&p->campaigns, (size_t)i);
}

/* Activity at t_ms makes the user active at every day end in
 * [t, t + window); what an earlier activity covered already is not
 * counted again, nor a day end this partition has passed. */
static void apply_account_days(struct ews_pipeline *p, const char *account_id,
                               int64_t before_ms, int64_t t_ms,
                               int64_t watermark_ms)
{
        int64_t window = p->config->rules.active_window_ms;
        int64_t from = before_ms && before_ms + window > t_ms
                               ? before_ms + window
                               : t_ms;
        int64_t day = (from + EWS_DAY_MS - 1) / EWS_DAY_MS - 1, first = -1;
        struct ews_cohort_delta *d;

        /* the days that qualify are one run: both bounds only rise */
        for (; (day + 1) * EWS_DAY_MS < t_ms + window; day++)
                if (first < 0 && (day + 1) * EWS_DAY_MS > watermark_ms &&
                    (day + 1) * EWS_DAY_MS >= from)
                        first = day;
        if (first >= 0 && (d = apply_cohort(p, EWS_COHORT_ACCOUNT, account_id,
                                            first, day - 1)))
                d->n++;
}

static void apply_usage(struct ews_pipeline *p, const struct batch_item *item,
                        int64_t watermark_ms)
{
        struct ews_usage_event buf;
        const struct ews_usage_event *event =
                pipeline_usage_event(p, item, &buf);
        struct batch_user *bu = pipeline_user(p, item->user);
        struct ews_user *user = pipeline_user_state(p, item->user);
        int64_t before_activated = user->activated_ms;
        int64_t before_active = user->last_activity_ms;
        struct ews_score_result r;
        struct ews_campaign_delta *d;
        struct ews_cohort_delta *c;
        struct ews_alert *slots;

        r = ews_score_apply(&p->config->score, user, event);
        if (r.duplicate) {
                p->stats.duplicates++;
                return;
        }
        bu->dirty = true;
        pipeline_funnel_observe(p, user, event->occurred_at_ms);
        if ((slots = apply_alert_slots(p)))
                p->alert_cnt += (size_t)ews_rules_user_event(
                        &p->config->rules, user, r.activity,
                        event->occurred_at_ms, p->now_ms, slots,
                        APPLY_ALERTS_PER_CALL);
        apply_arm(p, item->user);

        /* The account's engagement is its members' E, summed when read:
         * only its users active at day ends are counted here. */
        if (user->account_id[0] && r.activity &&
            event->occurred_at_ms > before_active)
                apply_account_days(p, user->account_id, before_active,
                                   event->occurred_at_ms, watermark_ms);
        if (!user->campaign_id[0])
                return;
        if (r.stage_before == EWS_STAGE_NONE && user->stage != EWS_STAGE_NONE) {
                if ((d = apply_campaign(p, user->campaign_id)))
                        d->signups_add++;
                /* by the trial's day too: the leader's figures as of a
                 * decided day */
                if ((c = apply_campaign_day(
                             p, user->campaign_id,
                             apply_day(event->occurred_at_ms, watermark_ms))))
                        c->signups++;
        }
        if (!before_activated && user->activated_ms &&
            (d = apply_campaign(p, user->campaign_id)))
                d->activated_add++;
}

static void apply_campaign_event(struct ews_pipeline *p,
                                 const struct batch_item *item,
                                 int64_t watermark_ms)
{
        const struct ews_campaign_event *event = &p->campaign[item->event];
        struct ews_campaign_delta *d = apply_campaign(p, event->campaign_id);
        static const char *status[] = {"active", "", "paused", "ended"};
        struct ews_cohort_delta *c;

        if (!d)
                return;
        if (status[event->type][0])
                snprintf(d->status, sizeof(d->status), "%s",
                         status[event->type]);
        if (event->type == EWS_CAMPAIGN_LAUNCHED) {
                memcpy(d->name, event->name, sizeof(d->name));
                memcpy(d->channel, event->channel, sizeof(d->channel));
                d->has_target = event->has_target;
                d->target_activation_rate = event->target_activation_rate;
                d->launched_ms = event->occurred_at_ms;
        } else if (event->type == EWS_CAMPAIGN_SPEND && event->has_amount) {
                d->spend_add += event->amount;
                /* by its day too, as signups are */
                if ((c = apply_campaign_day(
                             p, event->campaign_id,
                             apply_day(event->occurred_at_ms, watermark_ms))))
                        c->spend += event->amount;
        }
}

/* The partition's dead letters and alerts, as outbox records. */
/* The partition's users unpacked into p->part_state, each one's segment
 * as loaded noted; false (errstr says why) when one does not unpack. */
static bool apply_unpack(struct ews_pipeline *p, int32_t partition,
                         char *errstr, size_t errstr_size)
{
        size_t first = (size_t)p->part_first[partition];
        size_t cnt = (size_t)p->part_first[partition + 1] - first, j;

        if (!ews_grow((void **)&p->part_state, &p->part_state_cap, cnt + 1,
                      sizeof(*p->part_state))) {
                snprintf(errstr, errstr_size, "out of memory");
                return false;
        }
        for (j = 0; j < cnt; j++) {
                struct batch_user *bu =
                        pipeline_user(p, (size_t)p->part_users[first + j]);
                struct ews_user *user = &p->part_state[j];

                memcpy(user->user_id, bu->user_id, sizeof(user->user_id));
                if (ews_store_user_fill(
                            p->store, user,
                            bu->value_len ? p->values + bu->value_off : NULL,
                            bu->value_len)) {
                        snprintf(errstr, errstr_size,
                                 "user %s: its value as read does not unpack",
                                 bu->user_id);
                        return false;
                }
                bu->slot = (int32_t)j;
                pipeline_funnel_loaded(p, bu, user);
        }
        return true;
}

void pipeline_partition(struct ews_pipeline *p, bool batch,
                        enum ews_source source, int32_t partition,
                        int64_t watermark_ms)
{
        const struct pipeline_part *part =
                ews_partitions_get(p->parts, source, partition);
        /* where the watermark stood before it moved: the committed one */
        int64_t before = part->watermark_ms;
        char errstr[256];
        size_t u;
        int i;

        p->heap.cnt = 0;
        p->alert_first = p->alert_cnt;
        batch_table_reset(&p->campaigns);
        batch_table_reset(&p->cohorts);
        batch_table_reset(&p->funnel);
        if (source == EWS_SOURCE_USAGE &&
            !apply_unpack(p, partition, errstr, sizeof(errstr))) {
                pipeline_commit_failed(p, source, partition, errstr);
                return;
        }
        if (source == EWS_SOURCE_USAGE) {
                for (u = (size_t)p->part_first[partition];
                     u < (size_t)p->part_first[partition + 1]; u++)
                        apply_arm(p, p->part_users[u]);
                apply_fire(p, before, watermark_ms);
        }

        /* the partition's admitted messages, in offset order */
        for (i = batch && part->in_batch ? part->batch_head : -1; i >= 0;
             i = p->items[i].next) {
                const struct batch_item *item = &p->items[i];

                if (item->kind == ITEM_SKIP || item->kind == ITEM_DEAD)
                        continue;
                if (item->kind == ITEM_USAGE) {
                        before = watermark_ms;
                        watermark_ms = pipeline_watermark(
                                p, watermark_ms,
                                p->usage[item->event].occurred_at_ms);
                        apply_fire(p, before, watermark_ms);
                        apply_usage(p, item, watermark_ms);
                        apply_fire(p, watermark_ms, watermark_ms);
                } else if (item->kind == ITEM_CAMPAIGN) {
                        watermark_ms = pipeline_watermark(
                                p, watermark_ms,
                                p->campaign[item->event].occurred_at_ms);
                        apply_campaign_event(p, item, watermark_ms);
                }
        }
        pipeline_commit(p, source, partition, watermark_ms);
}
