/* The effective configuration as YAML-like lines, secrets redacted. */
#include "ops/config_int.h"

#include <string.h>

static int config_secret(const char *key)
{
        return strstr(key, "password") || strstr(key, "secret") ||
               strstr(key, "sasl.oauthbearer.config") ||
               strstr(key, "ssl.key.pem") || strstr(key, "token");
}

static void config_print_props(FILE *fp, const char *section,
                               const struct ews_config_props *props)
{
        int i;

        for (i = 0; i < props->cnt; i++)
                fprintf(fp, "kafka.%s.%s: \"%s\"\n", section,
                        props->prop[i].key,
                        config_secret(props->prop[i].key)
                                ? "[redacted]"
                                : props->prop[i].value);
}

void ews_config_print(const struct ews_config *config, FILE *fp)
{
        const char *field;
        size_t i;
        int j, cnt;

        for (i = 0; i < config_key_cnt; i++) {
                const struct config_key *key = &config_keys[i];

                field = (const char *)config + key->offset;
                fprintf(fp, "%s: ", key->path);
                switch (key->type) {
                case CONFIG_STR:
                        fprintf(fp, "\"%s\"\n",
                                config_secret(key->path) ? "[redacted]"
                                                         : field);
                        break;
                case CONFIG_INT:
                        fprintf(fp, "%d\n", *(const int *)field);
                        break;
                case CONFIG_ENUM:
                        fprintf(fp, "%s\n",
                                key->values->names[*(const int *)field]);
                        break;
                case CONFIG_MS:
                        fprintf(fp, "%lldms\n",
                                (long long)*(const int64_t *)field);
                        break;
                case CONFIG_MS_F:
                        fprintf(fp, "%.0fms\n", *(const double *)field);
                        break;
                case CONFIG_DOUBLE:
                        fprintf(fp, "%g\n", *(const double *)field);
                        break;
                case CONFIG_FIT:
                        fprintf(fp, "\n");
                        for (j = 0; j < config->score.fit_rule_cnt; j++)
                                config_print_fit(fp,
                                                 &config->score.fit_rules[j]);
                        break;
                case CONFIG_LIST:
                        cnt = *(const int *)((const char *)config +
                                             key->cnt_offset);
                        fprintf(fp, "[");
                        for (j = 0; j < cnt; j++)
                                fprintf(fp, "%s%s", j ? ", " : "",
                                        field + (size_t)j * key->width);
                        fprintf(fp, "]\n");
                        break;
                }
        }
        for (j = 0; j < config->score.weight_cnt; j++)
                fprintf(fp, "scoring.weights.%s: %g\n",
                        config->score.weights[j].event_type,
                        config->score.weights[j].points);
        config_print_props(fp, "consumer", &config->consumer);
        config_print_props(fp, "producer", &config->producer);
}
