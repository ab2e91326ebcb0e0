/* Internal to the configuration module. */
#ifndef EWS_CONFIG_INT_H
#define EWS_CONFIG_INT_H

#include <yaml.h>

#include "config.h"

struct config_ctx {
        struct ews_config *config;
        const char *file;
        char *errstr;
        size_t errstr_size;
};

/* Fails with "file:line: key: what"; line 0 when not from the file. */
int config_fail(struct config_ctx *ctx, size_t line, const char *key,
                const char *what);
void config_copy(char *dst, size_t size, const char *src);
int config_parse_double(const char *s, double *v);

/* scoring.fit: the defaults, a YAML sequence of rules, and printing. */
void config_fit_defaults(struct ews_score_conf *score);
int config_fit(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *node,
               const char *path);
void config_print_fit(FILE *fp, const struct ews_fit_rule *rule);

#endif
