/* Internal to the configuration module. */
#ifndef EWS_CONFIG_INT_H
#define EWS_CONFIG_INT_H

#include <yaml.h>

#include "ops/config.h"

enum config_type {
        CONFIG_STR,
        CONFIG_INT,
        CONFIG_MS,   /* duration into int64_t milliseconds */
        CONFIG_MS_F, /* duration into double milliseconds */
        CONFIG_DOUBLE,
        CONFIG_LIST, /* sequence of names into char[][EWS_NAME_MAX] */
        CONFIG_FIT,  /* sequence of fit rule mappings */
        CONFIG_ENUM, /* one of names, into an int-sized enum */
};

/* An enumerated key's values: names[v] is the name of value v; NULL for
 * numbers that are not a value. */
struct config_enum {
        const char *const *names;
        int cnt;
};

struct config_key {
        const char *path;
        enum config_type type;
        size_t offset;
        size_t size;       /* CONFIG_STR: buffer; CONFIG_LIST: entries */
        size_t width;      /* CONFIG_LIST: the buffer of one entry */
        size_t cnt_offset; /* CONFIG_LIST: where the count lives */
        /* CONFIG_LIST: checks an entry, 0 or -1 with what is wrong */
        int (*check)(const char *entry, char *what, size_t what_size);
        double min, max;
        const struct config_enum *values; /* CONFIG_ENUM */
};

extern const struct config_key config_keys[];
extern const size_t config_key_cnt;

struct config_ctx {
        struct ews_config *config;
        const char *file;
        char *errstr;
        size_t errstr_size;
        const char *dir;    /* the file's folder, or the current directory */
        int schema_dir_set; /* decode.schema.dir came from file or env */
};

/* Shared by config.c (the file), config_env.c (the environment) and
 * config_props.c (-X): setting a key of the table by path. */
int config_set_scalar(struct config_ctx *ctx, const struct config_key *key,
                      const char *value, size_t line);
int config_list_add(struct config_ctx *ctx, const struct config_key *key,
                    const char *item, size_t line);
const struct config_key *config_key_find(const char *path);
int config_prop_set(struct ews_config_props *props, const char *key,
                    const char *value, enum ews_prop_origin origin,
                    size_t line);
int config_set_prefixed(struct config_ctx *ctx, const char *path,
                        const char *value, size_t line);
/* A path key (schema dir, writer schemas) made absolute against base. */
int config_path_key(struct config_ctx *ctx, const struct config_key *key,
                    const char *base, size_t line);
/* The environment over what the file set (config_env.c). */
int config_env(struct config_ctx *ctx);

/* The topics: none empty, none read back as input (config_keys.c). */
int config_check_topics(struct config_ctx *ctx);

/* The redis keys that go together (sentinels, master name, host and
 * port, the WAIT timeout): 0, or -1 naming the key (config_keys.c). */
int config_check_redis(struct config_ctx *ctx);

/* Fails with "file:line: key: what"; line 0 when not from the file. */
int config_fail(struct config_ctx *ctx, size_t line, const char *key,
                const char *what);
void config_copy(char *dst, size_t size, const char *src);
/* Sets type's points in scoring.weights, adding the type if new. */
void config_weight(struct ews_config *config, const char *type, double points);
int config_parse_double(const char *s, double *v);

/* scoring.fit: the defaults, a YAML sequence of rules, and printing. */
void config_fit_defaults(struct ews_score_conf *score);
int config_fit(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *node,
               const char *path);
void config_print_fit(FILE *fp, const struct ews_fit_rule *rule);

#endif
