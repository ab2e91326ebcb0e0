/* ews-whatif: the replays' alerts read back from their files, and the
 * comparison of the two by alert id and by first FIRING per subject. */
#include "tools/ews_whatif.h"
#include "decode/decode.h"
#include "out_kafka/out_kafka.h"
#include "util/grow.h"

#include <stdlib.h>
#include <string.h>

struct wi_read {
        struct wi_alerts *alerts;
        struct ews_decoder *decoder;
        int64_t from_ms, to_ms;
        char **dead; /* dead letters' ids, counted once each */
        size_t dead_cnt, dead_cap;
        char *errstr;
        size_t errstr_size;
};

static int wi_read_dead(struct wi_read *rd, const char *id)
{
        if (!ews_grow((void **)&rd->dead, &rd->dead_cap, rd->dead_cnt + 1,
                      sizeof(*rd->dead)) ||
            !(rd->dead[rd->dead_cnt] = strdup(id))) {
                snprintf(rd->errstr, rd->errstr_size, "out of memory");
                return -1;
        }
        rd->dead_cnt++;
        return 0;
}

static int wi_read_cb(void *opaque, const char *id,
                      const struct ews_outbox_entry *e)
{
        static struct ews_alert alert; /* large: not on the stack */
        struct wi_read *rd = opaque;
        struct wi_alerts *out = rd->alerts;
        struct wi_alert *a;
        char why[256];

        if (e->kind == EWS_OUTBOX_DEAD)
                return wi_read_dead(rd, id);
        if (ews_decode_alert(rd->decoder, e->value, e->value_len, &alert, why,
                             sizeof(why))) {
                snprintf(rd->errstr, rd->errstr_size,
                         "alert %s: cannot decode: %s", id, why);
                return -1;
        }
        if ((rd->from_ms && alert.event_time_ms < rd->from_ms) ||
            (rd->to_ms && alert.event_time_ms >= rd->to_ms))
                return 0;
        if (!ews_grow((void **)&out->v, &out->cap, out->cnt + 1,
                      sizeof(*out->v)))
                goto oom;
        a = &out->v[out->cnt];
        memset(a, 0, sizeof(*a));
        a->rule = alert.rule;
        a->status = alert.status;
        a->t_ms = alert.event_time_ms;
        a->id = strdup(alert.alert_id);
        a->subject = strdup(alert.subject_id);
        a->campaign = strdup(alert.rule == EWS_RULE_CAMPAIGN_UNDERPERFORMING
                                     ? alert.subject_id
                                     : alert.campaign_id);
        out->cnt++; /* freed with the rest, even when a copy failed */
        if (!a->id || !a->subject || !a->campaign)
                goto oom;
        return 0;
oom:
        snprintf(rd->errstr, rd->errstr_size, "out of memory");
        return -1;
}

static int wi_cmp_id(const void *x, const void *y)
{
        return strcmp(((const struct wi_alert *)x)->id,
                      ((const struct wi_alert *)y)->id);
}

static int wi_cmp_str(const void *x, const void *y)
{
        return strcmp(*(char *const *)x, *(char *const *)y);
}

static void wi_alert_free(struct wi_alert *a)
{
        free(a->id);
        free(a->subject);
        free(a->campaign);
}

/* Sorts by id and keeps each id once (a resend repeats the same alert). */
static void wi_alerts_unique(struct wi_alerts *alerts)
{
        size_t i, n = 0;

        if (alerts->cnt) /* none: no array at all */
                qsort(alerts->v, alerts->cnt, sizeof(*alerts->v), wi_cmp_id);
        for (i = 0; i < alerts->cnt; i++) {
                if (n && !strcmp(alerts->v[n - 1].id, alerts->v[i].id))
                        wi_alert_free(&alerts->v[i]);
                else
                        alerts->v[n++] = alerts->v[i];
        }
        alerts->cnt = n;
}

int wi_alerts_read(struct wi_alerts *alerts, const char *path,
                   struct ews_decoder *decoder, int64_t from_ms, int64_t to_ms,
                   char *errstr, size_t errstr_size)
{
        struct wi_read rd = {alerts, decoder, from_ms, to_ms,      NULL,
                             0,      0,       errstr,  errstr_size};
        size_t i;
        int rc;

        memset(alerts, 0, sizeof(*alerts));
        rc = ews_out_file_read(path, wi_read_cb, &rd, errstr, errstr_size);
        if (!rc) {
                wi_alerts_unique(alerts);
                if (rd.dead_cnt) /* none: no array at all */
                        qsort(rd.dead, rd.dead_cnt, sizeof(*rd.dead),
                              wi_cmp_str);
                for (i = 0; i < rd.dead_cnt; i++)
                        alerts->dead_letters +=
                                !i || strcmp(rd.dead[i - 1], rd.dead[i]);
        }
        for (i = 0; i < rd.dead_cnt; i++)
                free(rd.dead[i]);
        free(rd.dead);
        return rc ? -1 : 0;
}

void wi_alerts_free(struct wi_alerts *alerts)
{
        size_t i;

        for (i = 0; i < alerts->cnt; i++)
                wi_alert_free(&alerts->v[i]);
        free(alerts->v);
        memset(alerts, 0, sizeof(*alerts));
}

/* The alert a pair is about (A's when under both: the same id is the
 * same rule, subject and status). */
static const struct wi_alert *wi_pair_alert(const struct wi_pair *p)
{
        return p->side[0] ? p->side[0] : p->side[1];
}

/* By rule, campaign, status, then id. */
static int wi_cmp_pair(const void *x, const void *y)
{
        const struct wi_alert *a = wi_pair_alert(x), *b = wi_pair_alert(y);
        int c;

        if (a->rule != b->rule)
                return a->rule < b->rule ? -1 : 1;
        if ((c = strcmp(a->campaign, b->campaign)))
                return c;
        if (a->status != b->status)
                return a->status < b->status ? -1 : 1;
        return strcmp(a->id, b->id);
}

/* Both sides' alerts merged by id. */
static int wi_diff_pairs(struct wi_diff *d, const struct wi_alerts *a,
                         const struct wi_alerts *b)
{
        size_t i = 0, j = 0;
        int c;

        d->pairs = calloc(a->cnt + b->cnt + 1, sizeof(*d->pairs));
        if (!d->pairs)
                return -1;
        while (i < a->cnt || j < b->cnt) {
                struct wi_pair *p = &d->pairs[d->pair_cnt++];

                c = i == a->cnt   ? 1
                    : j == b->cnt ? -1
                                  : strcmp(a->v[i].id, b->v[j].id);
                if (c <= 0)
                        p->side[0] = &a->v[i++];
                if (c >= 0)
                        p->side[1] = &b->v[j++];
                if (c)
                        d->only[c < 0 ? 0 : 1]++;
                else
                        d->both++;
        }
        if (d->pair_cnt)
                qsort(d->pairs, d->pair_cnt, sizeof(*d->pairs), wi_cmp_pair);
        return 0;
}

/* A FIRING under one side, for the first-FIRING comparison. */
struct wi_firing {
        const struct wi_alert *alert;
        int side;
};

/* By rule, subject, then time. */
static int wi_cmp_firing(const void *x, const void *y)
{
        const struct wi_alert *a = ((const struct wi_firing *)x)->alert;
        const struct wi_alert *b = ((const struct wi_firing *)y)->alert;
        int c;

        if (a->rule != b->rule)
                return a->rule < b->rule ? -1 : 1;
        if ((c = strcmp(a->subject, b->subject)))
                return c;
        return a->t_ms < b->t_ms ? -1 : a->t_ms > b->t_ms;
}

/* Per rule and subject, the first FIRING under each side: kept where the
 * sides differ, and for every campaign flagged under either. */
static int wi_diff_firsts(struct wi_diff *d, const struct wi_alerts *sides[2])
{
        struct wi_firing *f =
                calloc(sides[0]->cnt + sides[1]->cnt + 1, sizeof(*f));
        size_t n = 0, i, k;
        int s;

        d->firsts =
                calloc(sides[0]->cnt + sides[1]->cnt + 1, sizeof(*d->firsts));
        if (!f || !d->firsts) {
                free(f);
                return -1;
        }
        for (s = 0; s < WI_SIDES; s++)
                for (i = 0; i < sides[s]->cnt; i++)
                        if (sides[s]->v[i].status == EWS_ALERT_FIRING)
                                f[n++] = (struct wi_firing){&sides[s]->v[i], s};
        qsort(f, n, sizeof(*f), wi_cmp_firing);
        for (i = 0; i < n; i = k) {
                struct wi_first first = {f[i].alert->rule,
                                         f[i].alert->subject,
                                         f[i].alert->campaign,
                                         {0, 0}};

                for (k = i; k < n && f[k].alert->rule == first.rule &&
                            !strcmp(f[k].alert->subject, first.subject);
                     k++)
                        if (!first.at[f[k].side])
                                first.at[f[k].side] = f[k].alert->t_ms;
                if (first.at[0] != first.at[1] ||
                    first.rule == EWS_RULE_CAMPAIGN_UNDERPERFORMING)
                        d->firsts[d->first_cnt++] = first;
        }
        free(f);
        return 0;
}

int wi_diff_make(struct wi_diff *d, const struct wi_alerts *a,
                 const struct wi_alerts *b)
{
        const struct wi_alerts *sides[2] = {a, b};

        memset(d, 0, sizeof(*d));
        if (wi_diff_pairs(d, a, b) || wi_diff_firsts(d, sides)) {
                wi_diff_free(d);
                return -1;
        }
        return 0;
}

void wi_diff_free(struct wi_diff *d)
{
        free(d->pairs);
        free(d->firsts);
        memset(d, 0, sizeof(*d));
}
