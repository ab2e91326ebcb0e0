/* ews-whatif's report: for people, or one JSON object. */
#include "tools/ews_whatif.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void wi_time_iso(int64_t ms, char *buf, size_t size)
{
        time_t secs = (time_t)((ms - (((ms % 1000) + 1000) % 1000)) / 1000);
        struct tm tm;

        if (!gmtime_r(&secs, &tm) ||
            !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, size, "%" PRId64, ms);
}

/* A duration, its two largest units: 2d 3h, 9h 20m, 45m, 30s, 250ms. */
static void wi_duration(int64_t ms, char *buf, size_t size)
{
        static const struct {
                int64_t ms;
                const char *unit;
        } units[] = {
                {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
        size_t i;

        if (ms < 0)
                ms = -ms;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                int64_t big = ms / units[i].ms, rest;

                if (!big)
                        continue;
                rest = i + 1 < sizeof(units) / sizeof(units[0])
                               ? ms % units[i].ms / units[i + 1].ms
                               : 0;
                if (rest)
                        snprintf(buf, size, "%" PRId64 "%s %" PRId64 "%s", big,
                                 units[i].unit, rest, units[i + 1].unit);
                else
                        snprintf(buf, size, "%" PRId64 "%s", big,
                                 units[i].unit);
                return;
        }
        snprintf(buf, size, "%" PRId64 "ms", ms);
}

static const char *wi_or_dash(const char *s)
{
        return s && *s ? s : "-";
}

static void wi_text_sides(const struct wi_report *r, FILE *fp)
{
        const struct ews_config *c = r->config;
        char from[32], to[32];
        int s;

        fprintf(fp, "ews-whatif: the same history replayed in event time "
                    "through two configurations\n");
        for (s = 0; s < WI_SIDES; s++)
                fprintf(fp,
                        "  %c  %-32s %6zu alerts, %" PRId64 " dead letters "
                        "(replayed in %.1f s)\n",
                        'A' + s,
                        r->replays[s]->config_path ? r->replays[s]->config_path
                                                   : "(defaults)",
                        r->alerts[s]->cnt, r->alerts[s]->dead_letters,
                        r->replays[s]->seconds);
        fprintf(fp,
                "  history: %s %" PRId64 " events in %d partitions, %s "
                "%" PRId64 " in %d, to their ends as of the start\n",
                c->topics[0], r->history->events[0],
                r->history->partition_cnt[0], c->topics[1],
                r->history->events[1], r->history->partition_cnt[1]);
        if (!r->from_ms && !r->to_ms) {
                fprintf(fp, "  alerts: all, whatever their event time\n");
                return;
        }
        wi_time_iso(r->from_ms, from, sizeof(from));
        wi_time_iso(r->to_ms, to, sizeof(to));
        if (!r->to_ms)
                fprintf(fp, "  alerts: those with an event time from %s on\n",
                        from);
        else if (!r->from_ms)
                fprintf(fp, "  alerts: those with an event time before %s\n",
                        to);
        else
                fprintf(fp,
                        "  alerts: those with an event time from %s, "
                        "before %s\n",
                        from, to);
}

/* Counts of the pairs from i on that share what same() says. */
struct wi_counts {
        size_t n[WI_SIDES], only[WI_SIDES], end;
};

static struct wi_counts wi_count(const struct wi_diff *d, size_t i,
                                 bool (*same)(const struct wi_alert *,
                                              const struct wi_alert *))
{
        const struct wi_alert *first =
                d->pairs[i].side[0] ? d->pairs[i].side[0] : d->pairs[i].side[1];
        struct wi_counts c = {{0, 0}, {0, 0}, i};
        int s;

        for (; c.end < d->pair_cnt; c.end++) {
                const struct wi_pair *p = &d->pairs[c.end];
                const struct wi_alert *a = p->side[0] ? p->side[0] : p->side[1];

                if (!same(first, a))
                        break;
                for (s = 0; s < WI_SIDES; s++) {
                        c.n[s] += !!p->side[s];
                        c.only[s] += p->side[s] && !p->side[1 - s];
                }
        }
        return c;
}

static bool wi_same_rule_status(const struct wi_alert *a,
                                const struct wi_alert *b)
{
        return a->rule == b->rule && a->status == b->status;
}

static bool wi_same_rule_campaign(const struct wi_alert *a,
                                  const struct wi_alert *b)
{
        return a->rule == b->rule && !strcmp(a->campaign, b->campaign);
}

/* The pairs are by rule, campaign, status: one rule's statuses are
 * counted over all of its campaigns. */
static void wi_text_rules(const struct wi_report *r, FILE *fp)
{
        const struct wi_diff *d = r->diff;
        size_t i, j, total[WI_SIDES] = {r->alerts[0]->cnt, r->alerts[1]->cnt};
        int rule, status, s;

        fprintf(fp, "\nby rule and status %26s %7s %7s %7s\n", "A", "B",
                "only A", "only B");
        for (rule = 0; rule < EWS_RULE_COUNT; rule++)
                for (status = 0; status < 2; status++) {
                        size_t n[WI_SIDES] = {0, 0}, only[WI_SIDES] = {0, 0};

                        for (i = 0; i < d->pair_cnt; i = j) {
                                struct wi_counts c =
                                        wi_count(d, i, wi_same_rule_status);
                                const struct wi_pair *p = &d->pairs[i];
                                const struct wi_alert *a =
                                        p->side[0] ? p->side[0] : p->side[1];

                                j = c.end;
                                if ((int)a->rule != rule ||
                                    (int)a->status != status)
                                        continue;
                                for (s = 0; s < WI_SIDES; s++) {
                                        n[s] += c.n[s];
                                        only[s] += c.only[s];
                                }
                        }
                        if (n[0] || n[1])
                                fprintf(fp,
                                        "  %-24s %-8s %7zu %7zu %7zu %7zu\n",
                                        ews_rule_name(rule),
                                        ews_alert_status_name(status), n[0],
                                        n[1], only[0], only[1]);
                }
        fprintf(fp, "  %-33s %7zu %7zu %7zu %7zu\n", "all", total[0], total[1],
                d->only[0], d->only[1]);
}

/* Whether subject has an alert in [i, end) of the pairs under side s. */
static bool wi_subject_under(const struct wi_diff *d, size_t i, size_t end,
                             int s, const char *subject)
{
        for (; i < end; i++)
                if (d->pairs[i].side[s] &&
                    !strcmp(d->pairs[i].side[s]->subject, subject))
                        return true;
        return false;
}

/* The subjects of the pairs [i, end) (one rule and campaign) that have
 * alerts under side s and none under the other, up to list of them; an
 * episode that only moved is in the first FIRING section instead. */
static void wi_text_only(const struct wi_report *r, size_t i, size_t end, int s,
                         FILE *fp)
{
        const struct wi_diff *d = r->diff;
        size_t k, shown = 0, cnt = 0;

        for (k = i; k < end; k++) {
                const struct wi_alert *a = d->pairs[k].side[s];

                if (!a || d->pairs[k].side[1 - s] ||
                    wi_subject_under(d, i, end, 1 - s, a->subject) ||
                    wi_subject_under(d, i, k, s, a->subject))
                        continue; /* under both, or counted already */
                if (!cnt++)
                        fprintf(fp, "    subjects under %c alone:", 'A' + s);
                if (!r->list || shown < (size_t)r->list)
                        fprintf(fp, "%s %s", shown++ ? "," : "", a->subject);
        }
        if (cnt > shown)
                fprintf(fp, " ... (%zu more)", cnt - shown);
        if (cnt)
                fputc('\n', fp);
}

static void wi_text_campaigns(const struct wi_report *r, FILE *fp)
{
        const struct wi_diff *d = r->diff;
        size_t i, j, rows = 0;
        int s;

        for (i = 0; i < d->pair_cnt; i = j) {
                struct wi_counts c = wi_count(d, i, wi_same_rule_campaign);
                const struct wi_alert *a = d->pairs[i].side[0]
                                                   ? d->pairs[i].side[0]
                                                   : d->pairs[i].side[1];
                char name[80];

                j = c.end;
                if (!c.only[0] && !c.only[1])
                        continue;
                if (!rows++)
                        fprintf(fp,
                                "\nby rule and campaign, where they differ "
                                "%5s %7s %7s %7s\n"
                                "  (alerts by id: an episode that starts at "
                                "another time counts once\n"
                                "  under only A and once under only B; see "
                                "first FIRING per subject)\n",
                                "A", "B", "only A", "only B");
                snprintf(name, sizeof(name), "%s %s", ews_rule_name(a->rule),
                         wi_or_dash(a->campaign));
                fprintf(fp, "  %-33s %7zu %7zu %7zu %7zu\n", name, c.n[0],
                        c.n[1], c.only[0], c.only[1]);
                for (s = 0; s < WI_SIDES; s++)
                        wi_text_only(r, i, j, s, fp);
        }
}

static int wi_cmp_i64(const void *x, const void *y)
{
        int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

        return a < b ? -1 : a > b;
}

/* One subject's first FIRING under each side, and the shift. */
static void wi_text_first(const struct wi_first *f, FILE *fp)
{
        char a[32] = "-", b[32] = "-", by[32] = "";

        if (f->at[0])
                wi_time_iso(f->at[0], a, sizeof(a));
        if (f->at[1])
                wi_time_iso(f->at[1], b, sizeof(b));
        if (f->at[0] && f->at[1])
                wi_duration(f->at[1] - f->at[0], by, sizeof(by));
        if (!by[0]) {
                fprintf(fp, "    %s (%s)  A %-20s  B %s\n", f->subject,
                        wi_or_dash(f->campaign), a, b);
                return;
        }
        fprintf(fp, "    %s (%s)  A %-20s  B %-20s  %s %s\n", f->subject,
                wi_or_dash(f->campaign), a, b, by,
                f->at[1] < f->at[0] ? "earlier" : "later");
}

/* One rule's subjects whose first FIRING differs, [i, end) of firsts. */
static void wi_text_firsts_rule(const struct wi_report *r, size_t i, size_t end,
                                FILE *fp)
{
        const struct wi_first *f = r->diff->firsts;
        size_t only[WI_SIDES] = {0, 0}, earlier = 0, later = 0, k, shown = 0;
        int64_t *shifts = calloc(end - i + 1, sizeof(*shifts));
        char by[32], most[32];
        int pass;

        for (k = i; k < end; k++) {
                if (!f[k].at[0] || !f[k].at[1])
                        only[f[k].at[0] ? 0 : 1]++;
                else if (f[k].at[1] != f[k].at[0]) {
                        earlier += f[k].at[1] < f[k].at[0];
                        later += f[k].at[1] > f[k].at[0];
                        if (shifts)
                                shifts[earlier + later - 1] =
                                        f[k].at[1] - f[k].at[0];
                }
        }
        fprintf(fp,
                "  %s: %zu subjects only under B, %zu only under A; %zu "
                "first flagged earlier under B, %zu later",
                ews_rule_name(f[i].rule), only[1], only[0], earlier, later);
        if (shifts && earlier + later) {
                for (k = 0; k < earlier + later; k++)
                        shifts[k] = shifts[k] < 0 ? -shifts[k] : shifts[k];
                qsort(shifts, earlier + later, sizeof(*shifts), wi_cmp_i64);
                wi_duration(shifts[(earlier + later) / 2], by, sizeof(by));
                wi_duration(shifts[earlier + later - 1], most, sizeof(most));
                fprintf(fp, " (by %s at the median, %s at most)", by, most);
        }
        fputc('\n', fp);
        free(shifts);
        /* those flagged under one side alone first, then those moved */
        for (pass = 0; pass < 2; pass++)
                for (k = i; k < end; k++) {
                        if ((!f[k].at[0] || !f[k].at[1]) != !pass)
                                continue;
                        if (r->list && shown++ == (size_t)r->list) {
                                fprintf(fp, "    ... (%zu more)\n",
                                        end - i - (size_t)r->list);
                                return;
                        }
                        wi_text_first(&f[k], fp);
                }
}

/* Subjects whose first FIRING differs, per rule (campaigns apart). */
static void wi_text_firsts(const struct wi_report *r, FILE *fp)
{
        const struct wi_first *f = r->diff->firsts;
        size_t i, j, rows = 0;

        for (i = 0; i < r->diff->first_cnt; i = j) {
                bool differs = false;

                for (j = i; j < r->diff->first_cnt && f[j].rule == f[i].rule;
                     j++)
                        differs |= f[j].at[0] != f[j].at[1];
                if (f[i].rule == EWS_RULE_CAMPAIGN_UNDERPERFORMING || !differs)
                        continue;
                if (!rows++)
                        fprintf(fp, "\nfirst FIRING per subject, where it "
                                    "differs\n");
                wi_text_firsts_rule(r, i, j, fp);
        }
}

/* Every campaign flagged under either side: when, and the shift. */
static void wi_text_flags(const struct wi_report *r, FILE *fp)
{
        const struct wi_first *f = r->diff->firsts;
        size_t k, rows = 0;
        char a[32], b[32], by[32];

        for (k = 0; k < r->diff->first_cnt; k++) {
                if (f[k].rule != EWS_RULE_CAMPAIGN_UNDERPERFORMING)
                        continue;
                if (!rows++)
                        fprintf(fp, "\ncampaigns flagged "
                                    "(CAMPAIGN_UNDERPERFORMING, first "
                                    "FIRING)\n");
                snprintf(a, sizeof(a), "-");
                snprintf(b, sizeof(b), "-");
                if (f[k].at[0])
                        wi_time_iso(f[k].at[0], a, sizeof(a));
                if (f[k].at[1])
                        wi_time_iso(f[k].at[1], b, sizeof(b));
                if (!f[k].at[0] || !f[k].at[1])
                        snprintf(by, sizeof(by), "only under %c",
                                 f[k].at[0] ? 'A' : 'B');
                else if (f[k].at[0] == f[k].at[1])
                        snprintf(by, sizeof(by), "the same");
                else {
                        wi_duration(f[k].at[1] - f[k].at[0], by, sizeof(by));
                        strcat(by, f[k].at[1] < f[k].at[0] ? " earlier under B"
                                                           : " later under B");
                }
                fprintf(fp, "  %-12s A %-20s  B %-20s  %s\n", f[k].subject, a,
                        b, by);
        }
        if (!rows)
                fprintf(fp, "\ncampaigns flagged: none under either\n");
}

int wi_report_text(const struct wi_report *r, FILE *fp)
{
        const struct wi_diff *d = r->diff;

        wi_text_sides(r, fp);
        wi_text_rules(r, fp);
        wi_text_campaigns(r, fp);
        wi_text_firsts(r, fp);
        wi_text_flags(r, fp);
        if (!d->only[0] && !d->only[1])
                fprintf(fp,
                        "\nno differences: B raises exactly the alerts "
                        "A raises (%zu)\n",
                        d->both);
        else
                fprintf(fp,
                        "\nB raises %zu alert(s) A does not, and not %zu of "
                        "A's; %zu are the same\n",
                        d->only[1], d->only[0], d->both);
        return fflush(fp) || ferror(fp) ? -1 : 0;
}
