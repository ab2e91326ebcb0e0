/*
 * ews-calibrate's report: per outcome, the test split's AUC and precision
 * at the top share for the configured points and the fitted model, the
 * points per event type (configured, fitted, proposed) and a YAML fragment
 * for scoring.weights; as text for people or as one JSON object.
 *
 * Proposed points are the fitted log-odds per point-unit times one scale,
 * the same for every column: the one that gives the fitted event types the
 * configured types' sum of absolute points. Event types that could not be
 * fitted (not in the data, or the same for everyone at the cut-off) keep
 * their configured points in the fragment.
 */
#include "tools/ews_calibrate.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fewer positives or negatives than this in the test split: its figures
 * move a lot with a few users. */
#define CAL_FEW 20

static bool cal_few(const struct cal_fit *fit)
{
        return fit->test_pos < CAL_FEW ||
               fit->test_cnt - fit->test_pos < CAL_FEW;
}

/* The fitted model ranks the test split better than the configured
 * points. */
static bool cal_better(const struct cal_fit *fit)
{
        return fit->fitted && fit->auc_fitted > fit->auc_configured;
}

/* How many users of an outcome stand where. */
static size_t cal_count(const struct cal_dataset *ds, enum cal_outcome o,
                        enum cal_label label)
{
        size_t i, n = 0;

        for (i = 0; i < ds->row_cnt; i++)
                n += ds->rows[i].label[o] == label;
        return n;
}

static void cal_iso(int64_t ms, char *buf, size_t size)
{
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;

        if (!gmtime_r(&secs, &tm) ||
            !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, size, "%" PRId64, ms);
}

static const char *cal_rule_attr(const struct cal_report *r, size_t col)
{
        return r->config->score.fit_rules[col - (size_t)r->ds->type_cnt]
                .attribute;
}

static double cal_col_configured(const struct cal_report *r, size_t col)
{
        if (col < (size_t)r->ds->type_cnt)
                return cal_configured_points(
                        r->config, cal_history_type(r->history, (uint32_t)col));
        return r->config->score.fit_rules[col - (size_t)r->ds->type_cnt].points;
}

/* A YAML key as the configuration reads it: plain when it can be. */
static void cal_yaml_key(FILE *fp, const char *s)
{
        const char *p;

        for (p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-' || (*p >= 'A' && *p <= 'Z')))
                        break;
        if (!*p && *s) {
                fputs(s, fp);
                return;
        }
        fputc('"', fp);
        for (p = s; *p; p++)
                fprintf(fp, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        fputc('"', fp);
}

/* Points as the configuration takes them: one decimal, no "-0.0". */
static double cal_round(double v)
{
        v = round(v * 10) / 10;
        return v == 0 ? 0 : v;
}

/* The fragment for scoring.weights: every configured type, with its
 * proposed points when fitted, then the fitted types not configured. */
static void cal_yaml(const struct cal_report *r, const struct cal_fit *fit,
                     enum cal_outcome o, const char *indent, FILE *fp)
{
        const struct ews_score_conf *sc = &r->config->score;
        const struct cal_history *h = r->history;
        int i, col;

        fprintf(fp,
                "%s# proposed by ews-calibrate for %s (test AUC %.3f, "
                "configured %.3f)\n%sscoring:\n%s  weights:\n",
                indent, cal_outcome_names[o], fit->auc_fitted,
                fit->auc_configured, indent, indent);
        for (i = 0; i < sc->weight_cnt; i++) {
                const char *type = sc->weights[i].event_type;
                double v = sc->weights[i].points;

                for (col = 0; col < r->ds->type_cnt; col++)
                        if (fit->used[col] &&
                            !strcmp(cal_history_type(h, (uint32_t)col), type))
                                v = fit->coef[col] * fit->points_per_logit;
                fprintf(fp, "%s    ", indent);
                cal_yaml_key(fp, type);
                fprintf(fp, ": %g\n", cal_round(v));
        }
        for (col = 0; col < r->ds->type_cnt; col++) {
                const char *type = cal_history_type(h, (uint32_t)col);

                for (i = 0; i < sc->weight_cnt; i++)
                        if (!strcmp(sc->weights[i].event_type, type))
                                break;
                if (!fit->used[col] || i < sc->weight_cnt)
                        continue;
                fprintf(fp, "%s    ", indent);
                cal_yaml_key(fp, type);
                fprintf(fp, ": %g  # not configured before\n",
                        cal_round(fit->coef[col] * fit->points_per_logit));
        }
}

static void cal_text_columns(const struct cal_report *r,
                             const struct cal_fit *fit, FILE *fp)
{
        const struct cal_dataset *ds = r->ds;
        size_t col;
        bool rules = false;

        fprintf(fp, "  %-24s %10s %14s %9s\n", "event type", "configured",
                "log-odds/unit", "proposed");
        for (col = 0; col < ds->col_cnt; col++) {
                double cfg = cal_col_configured(r, col);
                bool type = col < (size_t)ds->type_cnt;

                if (!type && !rules) {
                        fprintf(fp, "  fit rule (attribute)\n");
                        rules = true;
                }
                if (type && !cal_column_usable(r->history, ds, col))
                        continue;
                if (type)
                        fprintf(fp, "    %-22.22s",
                                cal_history_type(r->history, (uint32_t)col));
                else
                        fprintf(fp, "    #%-2zu %-18.18s",
                                col - (size_t)ds->type_cnt + 1,
                                cal_rule_attr(r, col));
                if (fit->used[col] && fit->fitted)
                        fprintf(fp, " %10.1f %14.4f %9.1f\n", cfg,
                                fit->coef[col],
                                cal_round(fit->coef[col] *
                                          fit->points_per_logit));
                else
                        fprintf(fp,
                                " %10.1f %14s %9.1f  (the same for "
                                "every training user: kept)\n",
                                cfg, "-", cfg);
        }
}

static void cal_text_outcome(const struct cal_report *r, enum cal_outcome o,
                             FILE *fp)
{
        const struct cal_fit *fit = &r->fits[o];
        const struct ews_config *c = r->config;
        double days =
                (double)cal_outcome_window(c, r->opts, o) / (double)CAL_DAY_MS;

        if (o == CAL_ACTIVATION)
                fprintf(fp,
                        "\nactivation: E reached %g points within %g d of "
                        "the trial start (as the campaign rule counts it)\n",
                        c->score.activation_points, days);
        else
                fprintf(fp,
                        "\nconversion: a converted event within %g d of the "
                        "trial start\n",
                        days);
        fprintf(fp,
                "  users: train %zu (%zu positive), test %zu (%zu positive); "
                "left out: %zu %s by the cut-off, %zu too recent to know\n",
                fit->train_cnt, fit->train_pos, fit->test_cnt, fit->test_pos,
                cal_count(r->ds, o, CAL_DECIDED),
                o == CAL_ACTIVATION ? "activated" : "converted",
                cal_count(r->ds, o, CAL_CENSORED));
        fprintf(fp, "  on the test split     %8s  precision, top %g%% (%zu)\n",
                "AUC", r->fit_opts->top_share * 100, fit->prec_top);
        fprintf(fp, "    configured points   %8.3f  %.3f\n",
                fit->auc_configured, fit->prec_configured);
        if (!fit->fitted) {
                fprintf(fp, "    fitted model        not fitted: %s\n",
                        fit->why_not);
                return;
        }
        fprintf(fp, "    fitted model        %8.3f  %.3f\n", fit->auc_fitted,
                fit->prec_fitted);
        cal_text_columns(r, fit, fp);
        fprintf(fp,
                "  proposed = log-odds/unit x %.4g: the fitted event types' "
                "points add up\n  (absolute values) to the configured %g; "
                "the thresholds (activation.points,\n  sales.ready.points) "
                "are not rescaled.\n",
                fit->points_per_logit, fit->configured_total);
        if (cal_few(fit))
                fprintf(fp,
                        "  few outcomes in the test split (%zu positive, %zu "
                        "negative): its figures are uncertain; read more "
                        "history.\n",
                        fit->test_pos, fit->test_cnt - fit->test_pos);
        if (cal_better(fit))
                cal_yaml(r, fit, o, "  ", fp);
        else
                fprintf(fp, "  keep the configured points: the fitted model "
                            "ranks the test split no better.\n");
}

int cal_report_text(const struct cal_report *r, FILE *fp)
{
        char first[32], last[32];
        int o;

        cal_iso(r->history->first_ms, first, sizeof(first));
        cal_iso(r->history->last_ms, last, sizeof(last));
        fprintf(fp,
                "ews-calibrate: %s: %" PRId64 " events decoded (%" PRId64
                " not), %" PRId64 " in range (%s .. %s); %zu users with a "
                "trial start, %" PRId64 " without\n",
                r->source, r->history->read_cnt, r->undecodable,
                r->history->kept_cnt, first, last, r->ds->row_cnt,
                r->ds->no_start);
        fprintf(fp,
                "features as of %g d after the trial start (half-life "
                "%g d); the earlier %g%% of signups train, the later %g%% "
                "test\n",
                (double)r->opts->cutoff_ms / CAL_DAY_MS,
                r->config->score.half_life_ms / CAL_DAY_MS,
                100 - r->fit_opts->test_share * 100,
                r->fit_opts->test_share * 100);
        for (o = 0; o < CAL_OUTCOMES; o++)
                if (r->wanted[o])
                        cal_text_outcome(r, o, fp);
        return fflush(fp) || ferror(fp) ? -1 : 0;
}

/* JSON, by hand: the tools do not link a JSON library. */
static void cal_json_str(FILE *fp, const char *s)
{
        fputc('"', fp);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;

                if (ch == '"' || ch == '\\')
                        fprintf(fp, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(fp, "\\u%04x", ch);
                else
                        fputc(ch, fp);
        }
        fputc('"', fp);
}

static void cal_json_num(FILE *fp, double v)
{
        if (isfinite(v))
                fprintf(fp, "%.10g", v);
        else
                fputs("null", fp);
}

static void cal_json_column(const struct cal_report *r,
                            const struct cal_fit *fit, size_t col, FILE *fp)
{
        bool type = col < (size_t)r->ds->type_cnt,
             used = fit->fitted && fit->used[col];
        double cfg = cal_col_configured(r, col);

        if (type) {
                fputs("{\"event_type\":", fp);
                cal_json_str(fp, cal_history_type(r->history, (uint32_t)col));
        } else {
                fprintf(fp, "{\"fit_rule\":%zu,\"attribute\":",
                        col - (size_t)r->ds->type_cnt);
                cal_json_str(fp, cal_rule_attr(r, col));
        }
        fputs(",\"configured\":", fp);
        cal_json_num(fp, cfg);
        fputs(",\"coef\":", fp);
        cal_json_num(fp, used ? fit->coef[col] : NAN);
        fputs(",\"proposed\":", fp);
        cal_json_num(fp,
                     used ? cal_round(fit->coef[col] * fit->points_per_logit)
                          : cfg);
        fprintf(fp, ",\"fitted\":%s}", used ? "true" : "false");
}

static void cal_json_outcome(const struct cal_report *r, enum cal_outcome o,
                             FILE *fp)
{
        const struct cal_fit *fit = &r->fits[o];
        const char *sep = "";
        char *yaml = NULL;
        size_t col, yaml_len = 0;
        FILE *mem;

        fprintf(fp, "\"%s\":{\"window_days\":", cal_outcome_names[o]);
        cal_json_num(fp, (double)cal_outcome_window(r->config, r->opts, o) /
                                 CAL_DAY_MS);
        fprintf(fp,
                ",\"train\":{\"users\":%zu,\"positive\":%zu},"
                "\"test\":{\"users\":%zu,\"positive\":%zu},"
                "\"decided_at_cutoff\":%zu,\"censored\":%zu,"
                "\"few_outcomes\":%s,\"fitted\":%s,\"better\":%s,"
                "\"why_not\":",
                fit->train_cnt, fit->train_pos, fit->test_cnt, fit->test_pos,
                cal_count(r->ds, o, CAL_DECIDED),
                cal_count(r->ds, o, CAL_CENSORED),
                cal_few(fit) ? "true" : "false", fit->fitted ? "true" : "false",
                cal_better(fit) ? "true" : "false");
        if (fit->fitted)
                fputs("null", fp);
        else
                cal_json_str(fp, fit->why_not);
        fputs(",\"auc\":{\"configured\":", fp);
        cal_json_num(fp, fit->auc_configured);
        fputs(",\"fitted\":", fp);
        cal_json_num(fp, fit->auc_fitted);
        fprintf(fp,
                "},\"precision_top\":{\"share\":%g,\"users\":%zu,"
                "\"configured\":",
                r->fit_opts->top_share, fit->prec_top);
        cal_json_num(fp, fit->prec_configured);
        fputs(",\"fitted\":", fp);
        cal_json_num(fp, fit->prec_fitted);
        fputs("},\"intercept\":", fp);
        cal_json_num(fp, fit->fitted ? fit->intercept : NAN);
        fputs(",\"points_per_logit\":", fp);
        cal_json_num(fp, fit->fitted ? fit->points_per_logit : NAN);
        fputs(",\"columns\":[", fp);
        for (col = 0; col < r->ds->col_cnt; col++) {
                if (!cal_column_usable(r->history, r->ds, col))
                        continue;
                fputs(sep, fp);
                cal_json_column(r, fit, col, fp);
                sep = ",";
        }
        fputs("],\"yaml\":", fp);
        if (fit->fitted && (mem = open_memstream(&yaml, &yaml_len))) {
                cal_yaml(r, fit, o, "", mem);
                fclose(mem);
        }
        if (yaml)
                cal_json_str(fp, yaml);
        else
                fputs("null", fp);
        free(yaml);
        fputc('}', fp);
}

int cal_report_json(const struct cal_report *r, FILE *fp)
{
        const char *sep = "";
        int o;

        fputs("{\"source\":", fp);
        cal_json_str(fp, r->source);
        fprintf(fp,
                ",\"events_read\":%" PRId64 ",\"undecodable\":%" PRId64
                ",\"events_kept\":%" PRId64 ",\"first_ms\":%" PRId64
                ",\"last_ms\":%" PRId64
                ",\"users\":%zu,\"users_without_start\":%" PRId64
                ",\"cutoff_days\":",
                r->history->read_cnt, r->undecodable, r->history->kept_cnt,
                r->history->first_ms, r->history->last_ms, r->ds->row_cnt,
                r->ds->no_start);
        cal_json_num(fp, (double)r->opts->cutoff_ms / CAL_DAY_MS);
        fputs(",\"half_life_days\":", fp);
        cal_json_num(fp, r->config->score.half_life_ms / CAL_DAY_MS);
        fprintf(fp, ",\"test_share\":%g,\"outcomes\":{",
                r->fit_opts->test_share);
        for (o = 0; o < CAL_OUTCOMES; o++) {
                if (!r->wanted[o])
                        continue;
                fputs(sep, fp);
                cal_json_outcome(r, o, fp);
                sep = ",";
        }
        fputs("}}\n", fp);
        return fflush(fp) || ferror(fp) ? -1 : 0;
}
