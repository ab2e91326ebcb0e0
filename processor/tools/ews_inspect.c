/*
 * ews-inspect: a user's, account's or campaign's state as JSON, read from
 * the store the processor writes, with the processor's configuration; and
 * the erasure of a user's state (`erase ID`), as DELETE /v1/users/{id}.
 *
 * Exit codes: 0 found (or erased), 1 not found or the store failed, 2 bad
 * usage.
 */
#include "ops/config.h"
#include "store/store.h"
#include "ops/state_json.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void inspect_usage(FILE *fp)
{
        fprintf(fp, "usage: ews-inspect [-c FILE] [--now] "
                    "user|account|campaign ID\n"
                    "  -c, --config FILE  the processor's configuration\n"
                    "  --now              decay scores to the wall clock, not "
                    "to the last event\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"now", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        static struct ews_config config;
        const char *config_path = NULL, *kind, *id;
        struct ews_store *store = NULL;
        struct ews_store_conf store_conf;
        enum ews_store_result result = EWS_STORE_ERROR;
        json_t *json = NULL;
        char errstr[1024];
        int opt, now = 0, rc = 1;

        while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'n':
                        now = 1;
                        break;
                case 'h':
                        inspect_usage(stdout);
                        return 0;
                default:
                        inspect_usage(stderr);
                        return 2;
                }
        }
        if (argc - optind != 2) {
                inspect_usage(stderr);
                return 2;
        }
        kind = argv[optind];
        id = argv[optind + 1];
        if (strcmp(kind, "user") && strcmp(kind, "account") &&
            strcmp(kind, "campaign") && strcmp(kind, "erase")) {
                inspect_usage(stderr);
                return 2;
        }
        ews_config_defaults(&config);
        if (ews_config_load(&config, config_path, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 2;
        }
        memset(&store_conf, 0, sizeof(store_conf));
        store_conf.host = config.redis_host;
        store_conf.port = config.redis_port;
        store_conf.timeout_ms = config.redis_timeout_ms;
        store_conf.prefix = config.redis_prefix;
        store_conf.topics[0] = config.topics[0];
        store_conf.topics[1] = config.topics[1];
        store_conf.retention_ms = config.retention_ms;
        store_conf.half_life_ms = config.score.half_life_ms;
        store_conf.cache_users = 1;
        store_conf.username = config.redis_username;
        store_conf.password = config.redis_password;
        store = ews_store_new(&store_conf, errstr, sizeof(errstr));
        if (!store)
                goto fail;

        if (!strcmp(kind, "erase")) {
                result =
                        ews_store_user_erase(store, id, errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = json_pack("{s:s, s:b}", "user_id", id, "erased",
                                         1);
                kind = "user";
        } else if (!strcmp(kind, "user")) {
                static struct ews_user user;
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                result = ews_store_user_get(store, id, &user, NULL, errstr,
                                            sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_user(&user, config.score.half_life_ms,
                                             now ? (int64_t)ts.tv_sec * 1000
                                                 : 0);
        } else if (!strcmp(kind, "account")) {
                struct ews_account account;

                result = ews_store_account_get(
                        store, id, config.account_active_window_ms, &account,
                        errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_account(&account);
        } else {
                struct ews_campaign campaign;

                result = ews_store_campaign_get(store, id, &campaign, errstr,
                                                sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_campaign(&campaign);
        }
        if (result == EWS_STORE_NOT_FOUND) {
                fprintf(stderr, "ews-inspect: no %s %s\n", kind, id);
                goto out;
        }
        if (result != EWS_STORE_OK)
                goto fail;
        if (!json || json_dumpf(json, stdout,
                                JSON_INDENT(2) | JSON_SORT_KEYS |
                                        JSON_REAL_PRECISION(17))) {
                fprintf(stderr, "ews-inspect: out of memory\n");
                goto out;
        }
        printf("\n");
        rc = 0;
        goto out;
fail:
        fprintf(stderr, "ews-inspect: %s\n", errstr);
out:
        json_decref(json);
        ews_store_destroy(store);
        return rc;
}
