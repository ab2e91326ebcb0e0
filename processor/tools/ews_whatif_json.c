/* ews-whatif --json: the report as one JSON object (README.md, "What-if
 * replay: ews-whatif", lists its fields). */
#include "tools/ews_whatif.h"

#include <inttypes.h>
#include <string.h>

static void wi_json_str(FILE *fp, const char *s)
{
        fputc('"', fp);
        for (; s && *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(fp, "\\%c", c);
                else if (c < 0x20)
                        fprintf(fp, "\\u%04x", c);
                else
                        fputc(c, fp);
        }
        fputc('"', fp);
}

/* A time in ms, or null for 0 (none). */
static void wi_json_ms(FILE *fp, int64_t ms)
{
        if (ms)
                fprintf(fp, "%" PRId64, ms);
        else
                fputs("null", fp);
}

static void wi_json_sides(const struct wi_report *r, FILE *fp)
{
        const struct ews_config *c = r->config;
        int s;

        for (s = 0; s < WI_SIDES; s++) {
                fprintf(fp, "\"%c\":{\"config\":", 'a' + s);
                wi_json_str(fp, r->replays[s]->config_path
                                        ? r->replays[s]->config_path
                                        : "");
                fprintf(fp,
                        ",\"alerts\":%zu,\"dead_letters\":%" PRId64
                        ",\"seconds\":%.3f},",
                        r->alerts[s]->cnt, r->alerts[s]->dead_letters,
                        r->replays[s]->seconds);
        }
        fputs("\"history\":[", fp);
        for (s = 0; s < EWS_SOURCE_COUNT; s++) {
                fputs(s ? ",{\"topic\":" : "{\"topic\":", fp);
                wi_json_str(fp, c->topics[s]);
                fprintf(fp, ",\"partitions\":%d,\"events\":%" PRId64 "}",
                        r->history->partition_cnt[s], r->history->events[s]);
        }
        fputs("],\"from_ms\":", fp);
        wi_json_ms(fp, r->from_ms);
        fputs(",\"to_ms\":", fp);
        wi_json_ms(fp, r->to_ms);
}

static const struct wi_alert *wi_json_alert(const struct wi_pair *p)
{
        return p->side[0] ? p->side[0] : p->side[1];
}

/* Per rule, campaign and status: counts, and the ids under one side
 * alone. The pairs are sorted that way. */
static void wi_json_groups(const struct wi_report *r, FILE *fp)
{
        const struct wi_diff *d = r->diff;
        size_t i, j, k, n[WI_SIDES], rows = 0;
        int s;

        fputs(",\"groups\":[", fp);
        for (i = 0; i < d->pair_cnt; i = j) {
                const struct wi_alert *a = wi_json_alert(&d->pairs[i]);

                n[0] = n[1] = 0;
                for (j = i; j < d->pair_cnt; j++) {
                        const struct wi_alert *b = wi_json_alert(&d->pairs[j]);

                        if (b->rule != a->rule || b->status != a->status ||
                            strcmp(b->campaign, a->campaign))
                                break;
                        for (s = 0; s < WI_SIDES; s++)
                                n[s] += !!d->pairs[j].side[s];
                }
                fprintf(fp,
                        "%s{\"rule\":\"%s\",\"status\":\"%s\",\"campaign\":",
                        rows++ ? "," : "", ews_rule_name(a->rule),
                        ews_alert_status_name(a->status));
                wi_json_str(fp, a->campaign);
                fprintf(fp, ",\"a\":%zu,\"b\":%zu", n[0], n[1]);
                for (s = 0; s < WI_SIDES; s++) {
                        size_t shown = 0;

                        fprintf(fp, ",\"only_%c\":[", 'a' + s);
                        for (k = i; k < j; k++) {
                                const struct wi_pair *p = &d->pairs[k];

                                if (!p->side[s] || p->side[1 - s])
                                        continue;
                                if (shown++)
                                        fputc(',', fp);
                                wi_json_str(fp, p->side[s]->id);
                        }
                        fputc(']', fp);
                }
                fputc('}', fp);
        }
        fputc(']', fp);
}

/* Subjects whose first FIRING differs; campaigns flagged, all. */
static void wi_json_firsts(const struct wi_report *r, FILE *fp)
{
        const struct wi_first *f = r->diff->firsts;
        size_t k, rows[2] = {0, 0};
        int pass;

        for (pass = 0; pass < 2; pass++) {
                fputs(pass ? ",\"campaigns\":[" : ",\"subjects\":[", fp);
                for (k = 0; k < r->diff->first_cnt; k++) {
                        bool campaign =
                                f[k].rule == EWS_RULE_CAMPAIGN_UNDERPERFORMING;

                        if (pass ? !campaign : f[k].at[0] == f[k].at[1])
                                continue;
                        fputs(rows[pass]++ ? "," : "", fp);
                        fprintf(fp, "{\"rule\":\"%s\",\"subject\":",
                                ews_rule_name(f[k].rule));
                        wi_json_str(fp, f[k].subject);
                        fputs(",\"campaign\":", fp);
                        wi_json_str(fp, f[k].campaign);
                        fputs(",\"first_firing_a_ms\":", fp);
                        wi_json_ms(fp, f[k].at[0]);
                        fputs(",\"first_firing_b_ms\":", fp);
                        wi_json_ms(fp, f[k].at[1]);
                        fputs(",\"shift_ms\":", fp);
                        if (f[k].at[0] && f[k].at[1])
                                fprintf(fp, "%" PRId64,
                                        f[k].at[1] - f[k].at[0]);
                        else
                                fputs("null", fp);
                        fputc('}', fp);
                }
                fputc(']', fp);
        }
}

int wi_report_json(const struct wi_report *r, FILE *fp)
{
        const struct wi_diff *d = r->diff;

        fputc('{', fp);
        wi_json_sides(r, fp);
        fprintf(fp,
                ",\"identical\":%s,\"only_a\":%zu,\"only_b\":%zu,"
                "\"both\":%zu",
                d->only[0] || d->only[1] ? "false" : "true", d->only[0],
                d->only[1], d->both);
        wi_json_groups(r, fp);
        wi_json_firsts(r, fp);
        fputs("}\n", fp);
        return fflush(fp) || ferror(fp) ? -1 : 0;
}
