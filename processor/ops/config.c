#include "ops/config.h"
#include "ops/config_int.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EWS_SHARE_DIR
#define EWS_SHARE_DIR "/usr/local/share/ews" /* make install's PREFIX */
#endif

void config_copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src);
}

/* "250ms", "30s", "15m", "72h", "7d"; a bare number is milliseconds. */
static int config_parse_ms(const char *s, double *ms)
{
        static const struct {
                const char *unit;
                double ms;
        } units[] = {{"ms", 1},      {"s", 1000},       {"m", 60000},
                     {"h", 3600000}, {"d", 86400000.0}, {"", 1}};
        char *end;
        double v;
        size_t i;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -1;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (!strcmp(end, units[i].unit)) {
                        *ms = v * units[i].ms;
                        return 0;
                }
        }
        return -1;
}

int config_parse_double(const char *s, double *v)
{
        char *end;

        errno = 0;
        *v = strtod(s, &end);
        return (errno || end == s || *end || !isfinite(*v)) ? -1 : 0;
}

int config_fail(struct config_ctx *ctx, size_t line, const char *key,
                const char *what)
{
        if (line)
                snprintf(ctx->errstr, ctx->errstr_size, "%s:%zu: %s: %s",
                         ctx->file, line, key, what);
        else
                snprintf(ctx->errstr, ctx->errstr_size, "%s: %s: %s", ctx->file,
                         key, what);
        return -1;
}

/* One of the key's names, or a failure listing them with what was given. */
static int config_set_enum(struct config_ctx *ctx, const struct config_key *key,
                           const char *value, size_t line)
{
        const struct config_enum *e = key->values;
        char what[256];
        size_t used;
        int v, n = 0, last = -1;

        for (v = 0; v < e->cnt; v++)
                if (e->names[v] && !strcmp(e->names[v], value)) {
                        *(int *)((char *)ctx->config + key->offset) = v;
                        return 0;
                }
        for (v = 0; v < e->cnt; v++)
                if (e->names[v])
                        last = v;
        used = (size_t)snprintf(what, sizeof(what), "expected");
        for (v = 0; v < e->cnt && used < sizeof(what); v++) {
                if (!e->names[v])
                        continue;
                used += (size_t)snprintf(what + used, sizeof(what) - used,
                                         "%s%s",
                                         !n++        ? " "
                                         : v == last ? " or "
                                                     : ", ",
                                         e->names[v]);
        }
        if (used < sizeof(what))
                snprintf(what + used, sizeof(what) - used, ", got '%.64s'",
                         value);
        return config_fail(ctx, line, key->path, what);
}

int config_set_scalar(struct config_ctx *ctx, const struct config_key *key,
                      const char *value, size_t line)
{
        char *field = (char *)ctx->config + key->offset;
        char what[256];
        double v;

        switch (key->type) {
        case CONFIG_STR:
                if (strlen(value) >= key->size)
                        return config_fail(ctx, line, key->path, "too long");
                config_copy(field, key->size, value);
                return 0;
        case CONFIG_INT:
        case CONFIG_DOUBLE:
                if (config_parse_double(value, &v) ||
                    (key->type == CONFIG_INT && v != floor(v)))
                        break;
                if (v < key->min || v > key->max)
                        break;
                if (key->type == CONFIG_INT)
                        *(int *)field = (int)v;
                else
                        *(double *)field = v;
                return 0;
        case CONFIG_MS:
        case CONFIG_MS_F:
                if (config_parse_ms(value, &v) || v < key->min || v > key->max)
                        break;
                if (key->type == CONFIG_MS)
                        *(int64_t *)field = (int64_t)v;
                else
                        *(double *)field = v;
                return 0;
        case CONFIG_ENUM:
                return config_set_enum(ctx, key, value, line);
        case CONFIG_LIST:
        case CONFIG_FIT:
                return config_fail(ctx, line, key->path, "expected a list");
        }
        if (key->type == CONFIG_MS || key->type == CONFIG_MS_F)
                snprintf(what, sizeof(what),
                         "expected a duration (e.g. 500ms, 30s, 72h, 7d) "
                         "from %.0fms to %.0fms, got '%.64s'",
                         key->min, key->max, value);
        else
                snprintf(what, sizeof(what),
                         "expected a%s from %g to %g, got '%.64s'",
                         key->type == CONFIG_INT ? "n integer" : " number",
                         key->min, key->max, value);
        return config_fail(ctx, line, key->path, what);
}

int config_list_add(struct config_ctx *ctx, const struct config_key *key,
                    const char *item, size_t line)
{
        char *list = (char *)ctx->config + key->offset;
        int *cnt = (int *)((char *)ctx->config + key->cnt_offset);
        char what[256];

        if ((size_t)*cnt >= key->size)
                return config_fail(ctx, line, key->path, "too many entries");
        if (!*item || strlen(item) >= key->width)
                return config_fail(ctx, line, key->path,
                                   "entry empty or too long");
        if (key->check && key->check(item, what, sizeof(what)))
                return config_fail(ctx, line, key->path, what);
        config_copy(list + (size_t)(*cnt)++ * key->width, key->width, item);
        return 0;
}

const struct config_key *config_key_find(const char *path)
{
        size_t i;

        for (i = 0; i < config_key_cnt; i++)
                if (!strcmp(config_keys[i].path, path))
                        return &config_keys[i];
        return NULL;
}

int config_prop_set(struct ews_config_props *props, const char *key,
                    const char *value, enum ews_prop_origin origin, size_t line)
{
        int i;

        if (strlen(key) >= sizeof(props->prop[0].key) ||
            strlen(value) >= sizeof(props->prop[0].value))
                return -1;
        for (i = 0; i < props->cnt; i++)
                if (!strcmp(props->prop[i].key, key))
                        break;
        if (i == props->cnt) {
                if (props->cnt == EWS_CONFIG_PROPS_MAX)
                        return -1;
                props->cnt++;
        }
        config_copy(props->prop[i].key, sizeof(props->prop[i].key), key);
        config_copy(props->prop[i].value, sizeof(props->prop[i].value), value);
        props->prop[i].origin = origin;
        props->prop[i].line = (int)line;
        return 0;
}

/* Keys under these prefixes are open-ended: the rest of the path is the
 * librdkafka property or the event type. */
int config_set_prefixed(struct config_ctx *ctx, const char *path,
                        const char *value, size_t line)
{
        static const char consumer[] = "kafka.consumer.";
        static const char producer[] = "kafka.producer.";
        static const char weights[] = "scoring.weights.";
        double points;

        if (!strncmp(path, consumer, sizeof(consumer) - 1)) {
                if (config_prop_set(&ctx->config->consumer,
                                    path + sizeof(consumer) - 1, value,
                                    line ? EWS_PROP_FILE : EWS_PROP_ENV, line))
                        return config_fail(ctx, line, path,
                                           "too long or too many");
                return 0;
        }
        if (!strncmp(path, producer, sizeof(producer) - 1)) {
                if (config_prop_set(&ctx->config->producer,
                                    path + sizeof(producer) - 1, value,
                                    line ? EWS_PROP_FILE : EWS_PROP_ENV, line))
                        return config_fail(ctx, line, path,
                                           "too long or too many");
                return 0;
        }
        if (!strncmp(path, weights, sizeof(weights) - 1)) {
                const char *type = path + sizeof(weights) - 1;
                if (!*type || strlen(type) >= EWS_NAME_MAX)
                        return config_fail(ctx, line, path,
                                           "event type empty or too long");
                if (config_parse_double(value, &points) || points < -1000 ||
                    points > 1000)
                        return config_fail(ctx, line, path,
                                           "expected points from -1000 to "
                                           "1000");
                if (ctx->config->score.weight_cnt == EWS_SCORE_WEIGHTS_MAX)
                        return config_fail(ctx, line, path, "too many weights");
                config_weight(ctx->config, type, points);
                return 0;
        }
        return config_fail(ctx, line, path, "unknown key");
}

static int config_walk(struct config_ctx *ctx, yaml_document_t *doc,
                       yaml_node_t *node, char *path, size_t path_len);

/* The keys that name files: relative to the configuration file's folder
 * when set there, to the current directory when set in the environment. */
static const char *const config_path_keys[] = {"decode.schema.dir",
                                               "decode.usage.writer.schema",
                                               "decode.campaign.writer.schema"};

/* base/path made absolute (and clean, if it exists) in field. */
static int config_absolute(char *field, size_t size, const char *base)
{
        char joined[PATH_MAX + 1024], real[PATH_MAX];
        const char *result = joined;

        if (!*field)
                return 0;
        if (*field == '/')
                config_copy(joined, sizeof(joined), field);
        else
                snprintf(joined, sizeof(joined), "%s/%s", base, field);
        if (realpath(joined, real))
                result = real;
        if (strlen(result) >= size)
                return -1;
        config_copy(field, size, result);
        return 0;
}

/* A path key just set: resolved against base, and remembered as set. */
int config_path_key(struct config_ctx *ctx, const struct config_key *key,
                    const char *base, size_t line)
{
        size_t i;

        for (i = 0; i < sizeof(config_path_keys) / sizeof(config_path_keys[0]);
             i++)
                if (!strcmp(key->path, config_path_keys[i]))
                        break;
        if (i == sizeof(config_path_keys) / sizeof(config_path_keys[0]))
                return 0;
        if (!i)
                ctx->schema_dir_set = 1;
        if (config_absolute((char *)ctx->config + key->offset, key->size, base))
                return config_fail(ctx, line, key->path, "path too long");
        return 0;
}

static int config_has_schemas(const char *dir)
{
        char file[PATH_MAX + 32];
        struct stat st;

        snprintf(file, sizeof(file), "%s/usage_event.avsc", dir);
        return !stat(file, &st);
}

/* decode.schema.dir left at its default: "schemas" beside the
 * configuration file (or in the current directory without one), else the
 * installed copy. */
static int config_default_schema_dir(struct config_ctx *ctx, const char *base)
{
        struct ews_config *config = ctx->config;
        char dir[sizeof(config->schema_dir) + sizeof(EWS_SHARE_DIR) + 1];

        if (ctx->schema_dir_set)
                return 0;
        config_copy(dir, sizeof(dir), config->schema_dir);
        if (config_absolute(dir, sizeof(config->schema_dir), base))
                return config_fail(ctx, 0, "decode.schema.dir",
                                   "path too long");
        if (!config_has_schemas(dir) && *config->schema_dir != '/')
                snprintf(dir, sizeof(dir), "%s/%s", EWS_SHARE_DIR,
                         config->schema_dir);
        if (strlen(dir) >= sizeof(config->schema_dir))
                return config_fail(ctx, 0, "decode.schema.dir",
                                   "path too long");
        config_copy(config->schema_dir, sizeof(config->schema_dir), dir);
        return 0;
}

/* Whether path names a section: some key lies below it. */
static int config_is_section(const char *path)
{
        size_t i, len = strlen(path);

        for (i = 0; i < config_key_cnt; i++)
                if (!strncmp(config_keys[i].path, path, len) &&
                    config_keys[i].path[len] == '.')
                        return 1;
        return !strcmp(path, "kafka.consumer") ||
               !strcmp(path, "kafka.producer") ||
               !strcmp(path, "scoring.weights");
}

static int config_walk_mapping(struct config_ctx *ctx, yaml_document_t *doc,
                               yaml_node_t *node, char *path, size_t path_len)
{
        yaml_node_pair_t *pair;

        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(doc, pair->key);
                yaml_node_t *value = yaml_document_get_node(doc, pair->value);
                int n;

                yaml_node_pair_t *prev;

                if (!key || key->type != YAML_SCALAR_NODE)
                        return config_fail(ctx,
                                           key ? key->start_mark.line + 1 : 0,
                                           path, "keys must be plain names");
                /* libyaml keeps both of a repeated key: the last would win
                 * silently. */
                for (prev = node->data.mapping.pairs.start; prev < pair;
                     prev++) {
                        yaml_node_t *k = yaml_document_get_node(doc, prev->key);
                        char what[64];

                        if (!k || k->type != YAML_SCALAR_NODE ||
                            strcmp((const char *)k->data.scalar.value,
                                   (const char *)key->data.scalar.value))
                                continue;
                        snprintf(path + path_len, 512 - path_len, "%s%s",
                                 path_len ? "." : "",
                                 (const char *)key->data.scalar.value);
                        snprintf(what, sizeof(what),
                                 "duplicate key (first at line %zu)",
                                 k->start_mark.line + 1);
                        return config_fail(ctx, key->start_mark.line + 1, path,
                                           what);
                }
                n = snprintf(path + path_len, 512 - path_len, "%s%s",
                             path_len ? "." : "",
                             (const char *)key->data.scalar.value);
                if (n < 0 || (size_t)n >= 512 - path_len)
                        return config_fail(ctx, key->start_mark.line + 1, path,
                                           "key too long");
                /* A subsection was asked for but a value was given, or the
                 * other way round: the walk reports it at the leaf. */
                if (config_walk(ctx, doc, value, path, path_len + (size_t)n))
                        return -1;
                path[path_len] = '\0';
        }
        return 0;
}

static int config_walk(struct config_ctx *ctx, yaml_document_t *doc,
                       yaml_node_t *node, char *path, size_t path_len)
{
        const struct config_key *key = config_key_find(path);
        size_t line = node->start_mark.line + 1;
        yaml_node_item_t *item;
        int *cnt;

        switch (node->type) {
        case YAML_MAPPING_NODE:
                if (key)
                        return config_fail(ctx, line, path,
                                           "expected a value, not a section");
                return config_walk_mapping(ctx, doc, node, path, path_len);
        case YAML_SEQUENCE_NODE:
                if (key && key->type == CONFIG_FIT)
                        return config_fit(ctx, doc, node, path);
                if (!key || key->type != CONFIG_LIST)
                        return config_fail(
                                ctx, line, path,
                                key ? "expected a value, not a list"
                                : config_is_section(path)
                                        ? "expected a section, not a list"
                                        : "unknown key");
                cnt = (int *)((char *)ctx->config + key->cnt_offset);
                *cnt = 0; /* a list in the file replaces the default */
                for (item = node->data.sequence.items.start;
                     item < node->data.sequence.items.top; item++) {
                        yaml_node_t *v = yaml_document_get_node(doc, *item);
                        if (!v || v->type != YAML_SCALAR_NODE)
                                return config_fail(ctx, line, path,
                                                   "list entries must be "
                                                   "names");
                        if (config_list_add(ctx, key,
                                            (const char *)v->data.scalar.value,
                                            v->start_mark.line + 1))
                                return -1;
                }
                return 0;
        case YAML_SCALAR_NODE:
                /* A section left empty, with its keys commented out. */
                if (!key && config_is_section(path)) {
                        if (!node->data.scalar.length)
                                return 0;
                        return config_fail(ctx, line, path,
                                           "expected a section, not a value");
                }
                if (!key)
                        return config_set_prefixed(
                                ctx, path,
                                (const char *)node->data.scalar.value, line);
                if (config_set_scalar(ctx, key,
                                      (const char *)node->data.scalar.value,
                                      line))
                        return -1;
                return config_path_key(ctx, key, ctx->dir, line);
        default:
                return config_fail(ctx, line, path, "unexpected YAML node");
        }
}

static int config_check(struct config_ctx *ctx)
{
        struct ews_config *config = ctx->config;

        if (!config->bootstrap_servers[0])
                return config_fail(ctx, 0, "kafka.bootstrap.servers",
                                   "must not be empty");
        if (config_check_topics(ctx))
                return -1;
        if ((config->format[0] == EWS_FORMAT_CONFLUENT ||
             config->format[1] == EWS_FORMAT_CONFLUENT) &&
            !config->registry_url[0])
                return config_fail(ctx, 0, "decode.registry.url",
                                   "the confluent format needs a registry");
        if (config->alert_format == EWS_FORMAT_CONFLUENT &&
            !config->registry_url[0])
                return config_fail(ctx, 0, "alerts.format",
                                   "confluent needs decode.registry.url");
        if (config->rules.exit_share < config->rules.drop_share)
                return config_fail(ctx, 0, "rules.user.disengaged.exit.share",
                                   "must not be below drop.share");
        if (config->rules.sales_ready_exit > config->score.sales_ready_points)
                return config_fail(ctx, 0, "rules.sales.ready.exit.points",
                                   "must not be above "
                                   "scoring.sales.ready.points");
        if (config_check_redis(ctx))
                return -1;
        config->rules.half_life_ms = config->score.half_life_ms;
        config->rules.sales_ready_points = config->score.sales_ready_points;
        config->rules.active_window_ms = config->account_active_window_ms;
        return 0;
}

int ews_config_load(struct ews_config *config, const char *path, char *errstr,
                    size_t errstr_size)
{
        char dir[PATH_MAX], *slash;
        struct config_ctx ctx = {config, path, errstr, errstr_size, dir, 0};
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root;
        char key_path[512] = "";
        FILE *fp = NULL;
        int parser_ok = 0, doc_ok = 0, rc = -1;

        if (!getcwd(dir, sizeof(dir)))
                config_copy(dir, sizeof(dir), ".");
        if (path) {
                fp = fopen(path, "rb");
                if (!fp) {
                        snprintf(errstr, errstr_size, "%s: %s", path,
                                 strerror(errno));
                        goto out;
                }
                /* Paths in the file are relative to its folder. */
                if (realpath(path, dir) && (slash = strrchr(dir, '/')))
                        *(slash == dir ? slash + 1 : slash) = '\0';
                if (!yaml_parser_initialize(&parser)) {
                        snprintf(errstr, errstr_size, "%s: out of memory",
                                 path);
                        goto out;
                }
                parser_ok = 1;
                yaml_parser_set_input_file(&parser, fp);
                if (!yaml_parser_load(&parser, &doc)) {
                        snprintf(errstr, errstr_size, "%s:%zu: %s", path,
                                 parser.problem_mark.line + 1,
                                 parser.problem ? parser.problem
                                                : "invalid YAML");
                        goto out;
                }
                doc_ok = 1;
                root = yaml_document_get_root_node(&doc);
                if (root && !(root->type == YAML_SCALAR_NODE &&
                              !root->data.scalar.length)) {
                        if (root->type != YAML_MAPPING_NODE) {
                                config_fail(&ctx, root->start_mark.line + 1,
                                            "(top)", "expected a mapping");
                                goto out;
                        }
                        if (config_walk(&ctx, &doc, root, key_path, 0))
                                goto out;
                }
        }
        if (config_env(&ctx))
                goto out;
        ctx.file = path ? path : "(defaults)";
        if (config_default_schema_dir(&ctx, dir) || config_check(&ctx))
                goto out;
        rc = 0;
out:
        if (doc_ok)
                yaml_document_delete(&doc);
        if (parser_ok)
                yaml_parser_delete(&parser);
        if (fp)
                fclose(fp);
        return rc;
}
