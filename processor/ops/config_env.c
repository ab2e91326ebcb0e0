/* The environment over the file: EWS_<KEY> for every key of the table,
 * EWS_SCORING_WEIGHTS_<TYPE> and EWS_KAFKA_{CONSUMER,PRODUCER}_<PROP>
 * for map keys; an EWS_<SECTION>_ variable that names no key is refused. */
#include "ops/config_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* A list key from the environment: comma-separated. */
static int config_env_list(struct config_ctx *ctx, const struct config_key *key,
                           const char *value)
{
        char item[EWS_CONFIG_ADDR_MAX + 1], *p;
        const char *s, *comma;

        *(int *)((char *)ctx->config + key->cnt_offset) = 0;
        for (s = value; *s; s = *comma ? comma + 1 : comma) {
                while (isspace((unsigned char)*s))
                        s++;
                comma = strchr(s, ',');
                if (!comma)
                        comma = s + strlen(s);
                if ((size_t)(comma - s) >= sizeof(item))
                        return config_fail(ctx, 0, key->path,
                                           "entry empty or too long");
                snprintf(item, sizeof(item), "%.*s", (int)(comma - s), s);
                for (p = item + strlen(item);
                     p > item && isspace((unsigned char)p[-1]); p--)
                        p[-1] = '\0';
                if (config_list_add(ctx, key, item, 0))
                        return -1;
        }
        return 0;
}

/* key's variable: EWS_ and the path in capitals, dots as underscores. */
static void config_env_name(const char *path, char *name, size_t size)
{
        size_t j, len = (size_t)snprintf(name, size, "EWS_%s", path);

        for (j = 4; j < len && j < size; j++)
                name[j] = name[j] == '.'
                                  ? '_'
                                  : (char)toupper((unsigned char)name[j]);
}

/* Whether EWS_<rest> looks like ours: <rest> starts with a section of the
 * key table and an underscore (EWS_REDIS_..., EWS_SCORING_...). Others, as
 * EWS_BUILD of the tests, are left alone. */
static int config_env_ours(const char *rest)
{
        char section[64], name[64];
        size_t i, len;

        for (i = 0; i < config_key_cnt; i++) {
                len = strcspn(config_keys[i].path, ".");
                snprintf(section, sizeof(section), "%.*s_", (int)len,
                         config_keys[i].path);
                config_env_name(section, name, sizeof(name));
                if (!strncmp(rest, name + 4, strlen(name + 4)))
                        return 1;
        }
        return 0;
}

/* The open-ended keys: EWS_SCORING_WEIGHTS_<TYPE> (the event type in small
 * letters), EWS_KAFKA_CONSUMER_<PROPERTY> and EWS_KAFKA_PRODUCER_<PROPERTY>
 * (underscores as dots: EWS_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS). */
static int config_env_prefixed(struct config_ctx *ctx, const char *name,
                               const char *value)
{
        static const struct {
                const char *env, *path;
                int dots;
        } maps[] = {{"EWS_SCORING_WEIGHTS_", "scoring.weights.", 0},
                    {"EWS_KAFKA_CONSUMER_", "kafka.consumer.", 1},
                    {"EWS_KAFKA_PRODUCER_", "kafka.producer.", 1}};
        char path[256];
        size_t i, j, len;

        for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
                if (strncmp(name, maps[i].env, strlen(maps[i].env)))
                        continue;
                len = (size_t)snprintf(path, sizeof(path), "%s%s", maps[i].path,
                                       name + strlen(maps[i].env));
                if (len >= sizeof(path))
                        return config_fail(ctx, 0, name, "too long");
                for (j = strlen(maps[i].path); j < len; j++)
                        path[j] =
                                maps[i].dots && path[j] == '_'
                                        ? '.'
                                        : (char)tolower((unsigned char)path[j]);
                /* line 0: from the environment */
                return config_set_prefixed(ctx, path, value, 0);
        }
        return config_fail(ctx, 0, name,
                           "names no configuration key (EWS_ and the key in "
                           "capitals, dots as underscores: EWS_REDIS_HOST "
                           "for redis.host)");
}

/* EWS_REDIS_HOST overrides redis.host; lists are comma-separated. Every
 * variable that looks like ours must name a key. */
int config_env(struct config_ctx *ctx)
{
        static char name[256]; /* ctx->file points here on failure */
        char key_name[256], cwd[PATH_MAX];
        const struct config_key *key;
        const char *value;
        char **env;
        size_t i, len;

        if (!getcwd(cwd, sizeof(cwd)))
                config_copy(cwd, sizeof(cwd), ".");
        for (env = environ; *env; env++) {
                if (strncmp(*env, "EWS_", 4) || !config_env_ours(*env + 4))
                        continue;
                value = strchr(*env, '=');
                if (!value)
                        continue;
                len = (size_t)(value - *env);
                value++;
                snprintf(name, sizeof(name), "%.*s", (int)len, *env);
                ctx->file = "environment";
                for (i = 0; i < config_key_cnt; i++) {
                        config_env_name(config_keys[i].path, key_name,
                                        sizeof(key_name));
                        if (!strcmp(key_name, name))
                                break;
                }
                if (i == config_key_cnt) {
                        if (config_env_prefixed(ctx, name, value))
                                return -1;
                        continue;
                }
                key = &config_keys[i];
                ctx->file = name;
                if (key->type == CONFIG_FIT)
                        return config_fail(ctx, 0, key->path,
                                           "cannot be set from the "
                                           "environment: use the file");
                if (key->type == CONFIG_LIST) {
                        if (config_env_list(ctx, key, value))
                                return -1;
                        continue;
                }
                if (config_set_scalar(ctx, key, value, 0) ||
                    config_path_key(ctx, key, cwd, 0))
                        return -1;
        }
        return 0;
}
