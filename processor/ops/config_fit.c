/* Fit rules: firmographic attributes that add or take points. */
#include "ops/config_int.h"

#include <stdio.h>
#include <string.h>

static void config_fit_add(struct ews_score_conf *score, const char *attribute,
                           enum ews_fit_op op, const char *values, double min,
                           double max, double points)
{
        struct ews_fit_rule *rule = &score->fit_rules[score->fit_rule_cnt++];
        const char *s, *comma;

        memset(rule, 0, sizeof(*rule));
        config_copy(rule->attribute, sizeof(rule->attribute), attribute);
        rule->op = op;
        rule->min = min;
        rule->max = max;
        rule->points = points;
        for (s = values; s && *s; s = *comma ? comma + 1 : comma) {
                comma = strchr(s, ',');
                if (!comma)
                        comma = s + strlen(s);
                snprintf(rule->values[rule->value_cnt++], EWS_NAME_MAX, "%.*s",
                         (int)(comma - s), s);
        }
}

/* Firmographics of a B2B prospect; free-mail addresses count against. */
void config_fit_defaults(struct ews_score_conf *score)
{
        score->fit_rule_cnt = 0;
        config_fit_add(score, "company_size", EWS_FIT_RANGE, NULL, 50, 5000,
                       10);
        config_fit_add(score, "industry", EWS_FIT_IN,
                       "software,saas,fintech,ecommerce", 0, 0, 5);
        config_fit_add(score, "role", EWS_FIT_IN,
                       "vp,director,head,cto,ceo,manager", 0, 0, 8);
        config_fit_add(score, "country", EWS_FIT_IN, "US,GB,DE,FR,NL,CA", 0, 0,
                       3);
        config_fit_add(score, "email_domain", EWS_FIT_IN,
                       "gmail.com,yahoo.com,hotmail.com,outlook.com", 0, 0,
                       -10);
}

static int config_fit_values(struct config_ctx *ctx, yaml_document_t *doc,
                             yaml_node_t *node, const char *path,
                             struct ews_fit_rule *rule)
{
        yaml_node_item_t *item;

        if (node->type == YAML_SCALAR_NODE) {
                if (node->data.scalar.length >= EWS_NAME_MAX)
                        return config_fail(ctx, node->start_mark.line + 1, path,
                                           "value too long");
                config_copy(rule->values[0], EWS_NAME_MAX,
                            (const char *)node->data.scalar.value);
                rule->value_cnt = 1;
                return 0;
        }
        if (node->type != YAML_SEQUENCE_NODE)
                return config_fail(ctx, node->start_mark.line + 1, path,
                                   "expected a value or a list");
        for (item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++) {
                yaml_node_t *v = yaml_document_get_node(doc, *item);
                if (!v || v->type != YAML_SCALAR_NODE ||
                    v->data.scalar.length >= EWS_NAME_MAX ||
                    rule->value_cnt == EWS_FIT_VALUES_MAX)
                        return config_fail(ctx, node->start_mark.line + 1, path,
                                           "expected at most 16 short values");
                config_copy(rule->values[rule->value_cnt++], EWS_NAME_MAX,
                            (const char *)v->data.scalar.value);
        }
        return 0;
}

/* One rule: {attribute: A, equals: V | in: [V...] | range: [MIN, MAX],
 * points: P}. */
static int config_fit_rule(struct config_ctx *ctx, yaml_document_t *doc,
                           yaml_node_t *node, const char *path,
                           struct ews_fit_rule *rule)
{
        size_t line = node->start_mark.line + 1;
        yaml_node_pair_t *pair;
        int has_op = 0, has_points = 0;
        char key_path[700];

        memset(rule, 0, sizeof(*rule));
        if (node->type != YAML_MAPPING_NODE)
                return config_fail(ctx, line, path,
                                   "each rule is a mapping with attribute, "
                                   "equals/in/range and points");
        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(doc, pair->value);
                const char *name = k && k->type == YAML_SCALAR_NODE
                                           ? (const char *)k->data.scalar.value
                                           : "";
                const char *value = v && v->type == YAML_SCALAR_NODE
                                            ? (const char *)v->data.scalar.value
                                            : NULL;

                line = k ? k->start_mark.line + 1 : line;
                snprintf(key_path, sizeof(key_path), "%s.%s", path, name);
                if (!v)
                        return config_fail(ctx, line, key_path, "no value");
                if (!strcmp(name, "attribute") && value &&
                    strlen(value) < EWS_NAME_MAX) {
                        config_copy(rule->attribute, EWS_NAME_MAX, value);
                } else if (!strcmp(name, "points") && value &&
                           !config_parse_double(value, &rule->points)) {
                        has_points = 1;
                } else if (!strcmp(name, "equals") || !strcmp(name, "in")) {
                        rule->op = name[0] == 'e' ? EWS_FIT_EQUALS : EWS_FIT_IN;
                        if (config_fit_values(ctx, doc, v, key_path, rule))
                                return -1;
                        has_op++;
                } else if (!strcmp(name, "range")) {
                        rule->op = EWS_FIT_RANGE;
                        if (config_fit_values(ctx, doc, v, key_path, rule) ||
                            rule->value_cnt != 2 ||
                            config_parse_double(rule->values[0], &rule->min) ||
                            config_parse_double(rule->values[1], &rule->max) ||
                            rule->min > rule->max)
                                return config_fail(ctx, line, key_path,
                                                   "expected [min, max]");
                        has_op++;
                } else {
                        return config_fail(ctx, line, key_path,
                                           "unknown key or bad value");
                }
        }
        if (!rule->attribute[0] || has_op != 1 || !has_points)
                return config_fail(ctx, node->start_mark.line + 1, path,
                                   "a rule needs attribute, one of "
                                   "equals/in/range, and points");
        return 0;
}

int config_fit(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *node,
               const char *path)
{
        struct ews_score_conf *score = &ctx->config->score;
        yaml_node_item_t *item;
        char rule_path[600];

        score->fit_rule_cnt = 0; /* the file's rules replace the defaults */
        for (item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++) {
                yaml_node_t *v = yaml_document_get_node(doc, *item);

                snprintf(rule_path, sizeof(rule_path), "%s[%d]", path,
                         score->fit_rule_cnt);
                if (score->fit_rule_cnt == EWS_FIT_RULES_MAX)
                        return config_fail(ctx, node->start_mark.line + 1, path,
                                           "at most 32 rules");
                if (!v ||
                    config_fit_rule(ctx, doc, v, rule_path,
                                    &score->fit_rules[score->fit_rule_cnt]))
                        return -1;
                score->fit_rule_cnt++;
        }
        return 0;
}

void config_print_fit(FILE *fp, const struct ews_fit_rule *rule)
{
        int i;

        fprintf(fp, "  - {attribute: %s, ", rule->attribute);
        if (rule->op == EWS_FIT_RANGE) {
                fprintf(fp, "range: [%g, %g]", rule->min, rule->max);
        } else {
                fprintf(fp, "%s: [",
                        rule->op == EWS_FIT_EQUALS ? "equals" : "in");
                for (i = 0; i < rule->value_cnt; i++)
                        fprintf(fp, "%s%s", i ? ", " : "", rule->values[i]);
                fprintf(fp, "]");
        }
        fprintf(fp, ", points: %g}\n", rule->points);
}
