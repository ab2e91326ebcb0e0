/* Activation by behaviour: scoring.activation.conditions, a list of
 *
 *   {event: TYPE, count: N, within: DURATION}    N events of a type
 *   {product: NAME, count: N, within: DURATION}  N events naming a product
 *   {products: N, within: DURATION}              N distinct products
 *
 * count defaults to 1, within to scoring.activation.window (and may not
 * exceed it); at most one products condition. */
#include "ops/config_int.h"

#include <stdio.h>
#include <string.h>

#define CONFIG_COUNT_MAX 65535

/* A whole number from lo to hi into *out; -1 when it is not. */
static int config_activation_int(const char *value, int lo, int hi, int *out)
{
        double v;

        if (!value || config_parse_double(value, &v) || v != (int)v || v < lo ||
            v > hi)
                return -1;
        *out = (int)v;
        return 0;
}

static int config_activation_name(struct ews_activation_cond *c,
                                  enum ews_activation_kind kind,
                                  const char *value)
{
        if (!value || !*value || strlen(value) >= EWS_NAME_MAX)
                return -1;
        c->kind = kind;
        config_copy(c->name, sizeof(c->name), value);
        return 0;
}

/* One field of a condition; -1 with the failure reported. */
static int config_activation_field(struct config_ctx *ctx, size_t line,
                                   const char *key_path, const char *name,
                                   const char *value,
                                   struct ews_activation_cond *c, int *what,
                                   int *has_count)
{
        double ms;

        if (!strcmp(name, "event") || !strcmp(name, "product")) {
                (*what)++;
                if (config_activation_name(c,
                                           name[0] == 'e'
                                                   ? EWS_ACTIVATION_EVENT
                                                   : EWS_ACTIVATION_PRODUCT,
                                           value))
                        return config_fail(ctx, line, key_path,
                                           "expected a name of at most 63 "
                                           "bytes");
        } else if (!strcmp(name, "products")) {
                (*what)++;
                c->kind = EWS_ACTIVATION_PRODUCTS;
                if (config_activation_int(value, 1, EWS_ACTIVATION_MAX,
                                          &c->count))
                        return config_fail(ctx, line, key_path,
                                           "expected a number of distinct "
                                           "products from 1 to 8");
        } else if (!strcmp(name, "count")) {
                *has_count = 1;
                if (config_activation_int(value, 1, CONFIG_COUNT_MAX,
                                          &c->count))
                        return config_fail(ctx, line, key_path,
                                           "expected an integer from 1 to "
                                           "65535");
        } else if (!strcmp(name, "within")) {
                if (!value || config_parse_ms(value, &ms) || ms < 60000)
                        return config_fail(ctx, line, key_path,
                                           "expected a duration of at least "
                                           "1m (e.g. 3d)");
                c->within_ms = (int64_t)ms;
        } else {
                return config_fail(ctx, line, key_path,
                                   "unknown key: expected event, product or "
                                   "products, count, within");
        }
        return 0;
}

static int config_activation_cond(struct config_ctx *ctx, yaml_document_t *doc,
                                  yaml_node_t *node, const char *path,
                                  struct ews_activation_cond *c)
{
        size_t line = node->start_mark.line + 1;
        yaml_node_pair_t *pair, *prev;
        int what = 0, has_count = 0;
        char key_path[700];

        memset(c, 0, sizeof(*c));
        c->count = 1;
        if (node->type != YAML_MAPPING_NODE)
                return config_fail(ctx, line, path,
                                   "each condition is a mapping: {event: T}, "
                                   "{product: P} or {products: N}, with "
                                   "count and within");
        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(doc, pair->value);
                const char *name = k && k->type == YAML_SCALAR_NODE
                                           ? (const char *)k->data.scalar.value
                                           : "";

                line = k ? k->start_mark.line + 1 : line;
                snprintf(key_path, sizeof(key_path), "%s.%s", path, name);
                for (prev = node->data.mapping.pairs.start; prev < pair;
                     prev++) {
                        yaml_node_t *pk =
                                yaml_document_get_node(doc, prev->key);

                        if (pk && pk->type == YAML_SCALAR_NODE &&
                            !strcmp((const char *)pk->data.scalar.value, name))
                                return config_fail(ctx, line, key_path,
                                                   "duplicate key");
                }
                if (config_activation_field(
                            ctx, line, key_path, name,
                            v && v->type == YAML_SCALAR_NODE
                                    ? (const char *)v->data.scalar.value
                                    : NULL,
                            c, &what, &has_count))
                        return -1;
        }
        line = node->start_mark.line + 1;
        if (what != 1)
                return config_fail(ctx, line, path,
                                   "a condition needs exactly one of event, "
                                   "product or products");
        if (has_count && c->kind == EWS_ACTIVATION_PRODUCTS)
                return config_fail(ctx, line, path,
                                   "products is the count: no count with it");
        return 0;
}

int config_activation(struct config_ctx *ctx, yaml_document_t *doc,
                      yaml_node_t *node, const char *path)
{
        struct ews_score_conf *score = &ctx->config->score;
        yaml_node_item_t *item;
        char cond_path[600];
        int products = 0;

        score->activation_cnt = 0; /* the file's list replaces the default */
        for (item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++) {
                yaml_node_t *v = yaml_document_get_node(doc, *item);
                struct ews_activation_cond *c =
                        &score->activation[score->activation_cnt];

                snprintf(cond_path, sizeof(cond_path), "%s[%d]", path,
                         score->activation_cnt);
                if (score->activation_cnt == EWS_ACTIVATION_MAX)
                        return config_fail(ctx, node->start_mark.line + 1, path,
                                           "at most 8 conditions");
                if (!v || config_activation_cond(ctx, doc, v, cond_path, c))
                        return -1;
                if (c->kind == EWS_ACTIVATION_PRODUCTS && products++)
                        return config_fail(ctx, v->start_mark.line + 1,
                                           cond_path,
                                           "at most one products condition");
                ctx->activation_lines[score->activation_cnt++] =
                        v->start_mark.line + 1;
        }
        return 0;
}

int config_activation_check(struct config_ctx *ctx)
{
        const struct ews_score_conf *score = &ctx->config->score;
        char path[80];
        int i;

        for (i = 0; i < score->activation_cnt; i++) {
                if (score->activation[i].within_ms <=
                    score->activation_window_ms)
                        continue;
                snprintf(path, sizeof(path),
                         "scoring.activation.conditions[%d].within", i);
                return config_fail(ctx, ctx->activation_lines[i], path,
                                   "must not exceed scoring.activation.window");
        }
        if (score->activation_match == EWS_ACTIVATION_ANY &&
            !score->activation_cnt)
                return config_fail(ctx, 0, "scoring.activation.match",
                                   "any needs scoring.activation.conditions");
        return 0;
}

void config_print_activation(FILE *fp, const struct ews_activation_cond *c)
{
        static const char *const kinds[] = {"event", "product", "products"};

        if (c->kind == EWS_ACTIVATION_PRODUCTS)
                fprintf(fp, "  - {products: %d", c->count);
        else
                fprintf(fp, "  - {%s: %s, count: %d", kinds[c->kind], c->name,
                        c->count);
        if (c->within_ms)
                fprintf(fp, ", within: %lldms", (long long)c->within_ms);
        fprintf(fp, "}\n");
}
