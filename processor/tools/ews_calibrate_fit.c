/*
 * One outcome's model: the users whose outcome is known, split by trial
 * start (the earlier ones train, the later test), an L2-regularised
 * logistic regression fitted by liblinear (solver L2R_LR) on the training
 * users, then both scores judged on the test users.
 *
 * Columns are standardised on the training users (minus the mean, over
 * the standard deviation) so that the penalty weighs them alike; a column
 * without variance there (trial_started: one for everyone, decayed alike)
 * cannot be learned and is left out. Coefficients are turned back into
 * log-odds per unit of the raw column: per point-unit of an event type,
 * per matched fit rule. liblinear 2.3 penalises the bias term too; with
 * centred columns it is the base rate's log-odds and the penalty on it is
 * small next to the loss of hundreds of users.
 */
#include "tools/ews_calibrate.h"

#include <linear.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cal_row_cmp(const void *a, const void *b, void *opaque)
{
        const struct cal_history *h = ((const void **)opaque)[0];
        const struct cal_dataset *ds = ((const void **)opaque)[1];
        const struct cal_row *x = &ds->rows[*(const size_t *)a];
        const struct cal_row *y = &ds->rows[*(const size_t *)b];

        if (x->start_ms != y->start_ms)
                return x->start_ms < y->start_ms ? -1 : 1;
        return strcmp(cal_history_user(h, x->user),
                      cal_history_user(h, y->user));
}

/* The rows whose outcome is known, by trial start, cut into the earlier
 * train and the later test. */
static int cal_split(const struct cal_history *h, const struct cal_dataset *ds,
                     enum cal_outcome o, double test_share, struct cal_fit *fit)
{
        const void *ctx[2] = {h, ds};
        size_t i, n = 0, *rows = malloc((ds->row_cnt + 1) * sizeof(*rows));

        if (!rows)
                return -1;
        for (i = 0; i < ds->row_cnt; i++)
                if (ds->rows[i].label[o] == CAL_POSITIVE ||
                    ds->rows[i].label[o] == CAL_NEGATIVE)
                        rows[n++] = i;
        qsort_r(rows, n, sizeof(*rows), cal_row_cmp, ctx);
        fit->test_cnt = (size_t)llround(test_share * (double)n);
        fit->train_cnt = n - fit->test_cnt;
        fit->train = rows;
        fit->test = rows + fit->train_cnt;
        for (i = 0; i < n; i++)
                *(i < fit->train_cnt ? &fit->train_pos : &fit->test_pos) +=
                        ds->rows[rows[i]].label[o] == CAL_POSITIVE;
        return 0;
}

static void cal_quiet(const char *s)
{
        (void)s;
}

/* Means and standard deviations of the usable columns over the training
 * rows; used[] marks those with variance. */
static int cal_columns(const struct cal_history *h,
                       const struct cal_dataset *ds, struct cal_fit *fit,
                       double *mean, double *sd)
{
        size_t col, i, used = 0;
        double v, n = (double)fit->train_cnt;

        for (col = 0; col < ds->col_cnt && col < CAL_COLS_MAX; col++) {
                mean[col] = sd[col] = 0;
                for (i = 0; i < fit->train_cnt; i++)
                        mean[col] += ds->x[fit->train[i] * ds->col_cnt + col];
                mean[col] /= n;
                for (i = 0; i < fit->train_cnt; i++) {
                        v = ds->x[fit->train[i] * ds->col_cnt + col] -
                            mean[col];
                        sd[col] += v * v;
                }
                sd[col] = sqrt(sd[col] / n);
                fit->used[col] = cal_column_usable(h, ds, col) &&
                                 sd[col] > 1e-9 * (fabs(mean[col]) + 1);
                used += fit->used[col];
        }
        return (int)used;
}

/* Fits on the training rows; fills coef and intercept in raw units. */
static int cal_train(const struct cal_dataset *ds, enum cal_outcome o,
                     double cost, struct cal_fit *fit, const double *mean,
                     const double *sd, int used, char *errstr,
                     size_t errstr_size)
{
        struct feature_node *nodes =
                malloc(fit->train_cnt * (size_t)(used + 2) * sizeof(*nodes));
        struct feature_node **x = malloc(fit->train_cnt * sizeof(*x));
        double *y = malloc(fit->train_cnt * sizeof(*y)), w;
        struct parameter param = {
                .solver_type = L2R_LR, .eps = 1e-4, .C = cost, .p = 0.1};
        struct problem prob = {.l = (int)fit->train_cnt,
                               .n = used + 1,
                               .y = y,
                               .x = x,
                               .bias = 1};
        struct model *model = NULL;
        int labels[2] = {0, 0}, pos = 0, k, rc = -1;
        const char *err;
        size_t i, col;

        if (!nodes || !x || !y) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < fit->train_cnt; i++) {
                const double *row = &ds->x[fit->train[i] * ds->col_cnt];

                x[i] = &nodes[i * (size_t)(used + 2)];
                for (col = 0, k = 0; col < ds->col_cnt; col++) {
                        if (!fit->used[col])
                                continue;
                        x[i][k].index = k + 1; /* liblinear counts from 1 */
                        x[i][k++].value = (row[col] - mean[col]) / sd[col];
                }
                x[i][k].index = used + 1; /* the bias term's column */
                x[i][k++].value = 1.0;
                x[i][k].index = -1;
                y[i] = ds->rows[fit->train[i]].label[o] == CAL_POSITIVE ? 1
                                                                        : -1;
        }
        set_print_string_function(cal_quiet);
        if ((err = check_parameter(&prob, &param))) {
                snprintf(errstr, errstr_size, "liblinear: %s", err);
                goto out;
        }
        if (!(model = train(&prob, &param))) {
                snprintf(errstr, errstr_size, "liblinear: no model");
                goto out;
        }
        get_labels(model, labels);
        pos = labels[0] == 1 ? 0 : 1;
        fit->intercept = get_decfun_bias(model, pos);
        for (col = 0, k = 0; col < ds->col_cnt; col++) {
                if (!fit->used[col])
                        continue;
                w = get_decfun_coef(model, ++k, pos);
                fit->coef[col] = w / sd[col];
                fit->intercept -= w * mean[col] / sd[col];
        }
        rc = 0;
out:
        if (model)
                free_and_destroy_model(&model);
        free(nodes);
        free(x);
        free(y);
        return rc;
}

/* Points per log-odds unit: the proposal's sum of |points| over the fitted
 * event types is the configured one's; without configured points there,
 * the largest proposed is 10. */
static void cal_scale(const struct cal_history *h, const struct cal_dataset *ds,
                      const struct ews_config *c, struct cal_fit *fit)
{
        double cfg = 0, fitted = 0, largest = 0;
        int col;

        for (col = 0; col < ds->type_cnt; col++) {
                if (!fit->used[col])
                        continue;
                cfg += fabs(cal_configured_points(
                        c, cal_history_type(h, (uint32_t)col)));
                fitted += fabs(fit->coef[col]);
                if (fabs(fit->coef[col]) > largest)
                        largest = fabs(fit->coef[col]);
        }
        fit->configured_total = cfg;
        fit->points_per_logit = fitted == 0 ? 0
                                : cfg > 0   ? cfg / fitted
                                            : 10 / largest;
}

static int cal_evaluate(const struct cal_dataset *ds, enum cal_outcome o,
                        double top_share, struct cal_fit *fit)
{
        size_t n = fit->test_cnt, i, col;
        double *cfg = malloc((n + 1) * sizeof(*cfg));
        double *fitted = malloc((n + 1) * sizeof(*fitted));
        bool *pos = malloc((n + 1) * sizeof(*pos));
        int rc = -1;

        if (!cfg || !fitted || !pos)
                goto out;
        for (i = 0; i < n; i++) {
                const struct cal_row *row = &ds->rows[fit->test[i]];
                const double *x = &ds->x[fit->test[i] * ds->col_cnt];

                cfg[i] = row->engagement + row->fit;
                fitted[i] = fit->intercept;
                for (col = 0; col < ds->col_cnt; col++)
                        if (fit->used[col])
                                fitted[i] += fit->coef[col] * x[col];
                pos[i] = row->label[o] == CAL_POSITIVE;
        }
        fit->auc_fitted = fit->prec_fitted = NAN;
        if (cal_auc(cfg, pos, n, &fit->auc_configured) ||
            cal_precision_top(cfg, pos, n, top_share, &fit->prec_configured,
                              &fit->prec_top) ||
            (fit->fitted &&
             (cal_auc(fitted, pos, n, &fit->auc_fitted) ||
              cal_precision_top(fitted, pos, n, top_share, &fit->prec_fitted,
                                &fit->prec_top))))
                goto out;
        rc = 0;
out:
        free(cfg);
        free(fitted);
        free(pos);
        return rc;
}

int cal_fit_outcome(const struct cal_history *h, const struct cal_dataset *ds,
                    const struct ews_config *c, enum cal_outcome o,
                    const struct cal_fit_opts *opts, struct cal_fit *fit,
                    char *errstr, size_t errstr_size)
{
        static double mean[CAL_COLS_MAX], sd[CAL_COLS_MAX];
        int used;

        memset(fit, 0, sizeof(*fit));
        if (cal_split(h, ds, o, opts->test_share, fit)) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        used = cal_columns(h, ds, fit, mean, sd);
        if (fit->train_pos == 0 || fit->train_pos == fit->train_cnt)
                snprintf(fit->why_not, sizeof(fit->why_not),
                         "the training users (%zu) are all %s", fit->train_cnt,
                         fit->train_pos ? "positive" : "negative");
        else if (used == 0)
                snprintf(fit->why_not, sizeof(fit->why_not),
                         "no feature varies among the training users");
        else if (cal_train(ds, o, opts->cost, fit, mean, sd, used, errstr,
                           errstr_size))
                return -1;
        else
                fit->fitted = true;
        if (fit->fitted)
                cal_scale(h, ds, c, fit);
        if (cal_evaluate(ds, o, opts->top_share, fit)) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

void cal_fit_free(struct cal_fit *fit)
{
        free(fit->train); /* test points into it */
        fit->train = fit->test = NULL;
}
