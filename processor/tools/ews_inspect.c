/*
 * ews-inspect: a user's, account's or campaign's state as JSON, read from
 * the store the processor writes, with the processor's configuration; and
 * the erasure of a user's state (`erase ID`), as DELETE /v1/users/{id};
 * and `export`: every subject as JSON lines, between a header with the
 * fences it was read at and a trailer with the counts; and `outbox`
 * (ews_inspect_outbox.c): the outboxes' pending and parked records, and
 * parked records retried or dropped.
 *
 * Exit codes: 0 found (or erased, exported, listed, retried, dropped), 1
 * not found or the store (or, for export, the output) failed, 2 bad usage.
 */
#include "ops/config.h"
#include "ops/setup.h"
#include "store/store.h"
#include "ops/state_json.h"
#include "tools/ews_inspect.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char inspect_help[] =
        "usage: ews-inspect [-c FILE] [--now] user|account|campaign ID\n"
        "       ews-inspect [-c FILE] funnel [CAMPAIGN]\n"
        "       ews-inspect [-c FILE] segment STAGE [asc|desc] [campaign=ID]\n"
        "                   [account=ID] [product=P] [limit=N] [cursor=C]\n"
        "       ews-inspect [-c FILE] [--now] accounts [by=engagement|"
        "active_users]\n"
        "                   [asc|desc] [limit=N] [members=M]\n"
        "       ews-inspect [-c FILE] erase ID\n"
        "       ews-inspect [-c FILE] [--now] export "
        "[--kind user|account|campaign] [--out FILE]\n"
        "       ews-inspect [-c FILE] outbox [retry|drop ID|--all]\n\n"
        "Commands:\n"
        "  user ID       a user's state as JSON\n"
        "  account ID    an account's state as JSON\n"
        "  campaign ID   a campaign's state as JSON, and how its trials\n"
        "                stand against the activation definition (a walk\n"
        "                over every user)\n"
        "  erase ID      erase a user's state, as DELETE /v1/users/{id}\n"
        "  export        every user, account and campaign as JSON lines,\n"
        "                between a header (fences) and a trailer (counts)\n"
        "  outbox        every outbox record as JSON lines: pending (not yet\n"
        "                confirmed delivered) and parked (refused by Kafka\n"
        "                for good: not sent again), with error and time\n"
        "  outbox retry ID|--all\n"
        "                move parked records back to their outbox: sent\n"
        "                again at the owner's next outbox look\n"
        "  outbox drop ID|--all\n"
        "                delete parked records (each logged on stderr)\n\n"
        "Options:\n"
        "  -c, --config FILE  the processor's configuration (Redis address:\n"
        "                     redis.host, redis.port; or the environment\n"
        "                     EWS_REDIS_HOST, EWS_REDIS_PORT)\n"
        "  --now              decay scores to the wall clock, not to the last\n"
        "                     event\n"
        "  --kind KIND        export: only user, account or campaign\n"
        "  --out FILE         export: write to FILE, not stdout\n"
        "  --all              outbox retry, drop: every parked record\n"
        "  -h, --help         print this help and exit 0\n\n"
        "Exit codes: 0 found (or erased, exported, listed, retried,\n"
        "dropped), 1 not found (no such subject, no parked record ID), or\n"
        "the store (or, for export, the output) failed, 2 bad usage or a\n"
        "configuration that does not load.\n";

/* What was wrong, then where to read more; bad usage exits 2. */
static int inspect_usage(const char *what, const char *arg)
{
        if (arg)
                fprintf(stderr, "ews-inspect: %s '%s'\n", what, arg);
        else
                fprintf(stderr, "ews-inspect: %s\n", what);
        fputs("Try 'ews-inspect --help'.\n", stderr);
        return 2;
}

/* getopt_long() is quiet (opterr 0, a leading ':'): say it in our words. */
static int inspect_bad_option(int opt, char **argv)
{
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *arg = argv[optind - 1];

        if (strncmp(arg, "--", 2) && optopt)
                arg = shortopt;
        return inspect_usage(opt == ':' ? "missing value for option"
                                        : "unknown option",
                             arg);
}

/* What an export writes to and counts. */
struct inspect_export {
        struct ews_store *store;
        const struct ews_config *config;
        int64_t as_of_ms;
        FILE *out;
        json_t *fences;
        int64_t counts[3];
        char *errstr;
        size_t errstr_size;
};

static const char *const inspect_kinds[] = {
        [EWS_SUBJECT_USER] = "user",
        [EWS_SUBJECT_ACCOUNT] = "account",
        [EWS_SUBJECT_CAMPAIGN] = "campaign",
};

#define INSPECT_JSON_FLAGS (JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

static json_t *inspect_i64(int64_t v, bool have)
{
        return have ? json_integer(v) : json_null();
}

static enum ews_store_result export_fence(void *opaque, const char *topic,
                                          int32_t partition,
                                          const struct ews_fence *fence,
                                          unsigned have)
{
        struct inspect_export *x = opaque;
        json_t *per_topic = json_object_get(x->fences, topic), *f;
        char key[16];

        if (!per_topic) {
                per_topic = json_object();
                if (json_object_set_new(x->fences, topic, per_topic))
                        goto oom;
        }
        f = json_pack(
                "{s:o, s:o, s:o}", "epoch",
                inspect_i64(fence->epoch, have & EWS_FENCE_HAS_EPOCH), "offset",
                inspect_i64(fence->next_offset, have & EWS_FENCE_HAS_OFFSET),
                "watermark",
                inspect_i64(fence->watermark_ms,
                            have & EWS_FENCE_HAS_WATERMARK));
        snprintf(key, sizeof(key), "%d", (int)partition);
        if (!f || json_object_set_new(per_topic, key, f))
                goto oom;
        return EWS_STORE_OK;
oom:
        snprintf(x->errstr, x->errstr_size, "out of memory");
        return EWS_STORE_ERROR;
}

static enum ews_store_result export_subject(void *opaque, enum ews_subject kind,
                                            const char *id)
{
        struct inspect_export *x = opaque;
        enum ews_store_result result;
        json_t *state = NULL, *jid;
        int bad;

        if (kind == EWS_SUBJECT_USER) {
                static struct ews_user user;

                result = ews_store_user_get(x->store, id, &user, NULL,
                                            x->errstr, x->errstr_size);
                if (result == EWS_STORE_OK)
                        state = ews_json_user(&user,
                                              x->config->score.half_life_ms,
                                              x->as_of_ms);
        } else if (kind == EWS_SUBJECT_ACCOUNT) {
                struct ews_account account;

                result = ews_store_account_get(
                        x->store, id, x->config->account_active_window_ms,
                        &account, x->errstr, x->errstr_size);
                if (result == EWS_STORE_OK)
                        state = ews_json_account(&account);
        } else {
                struct ews_campaign campaign;

                result = ews_store_campaign_get(x->store, id, &campaign,
                                                x->errstr, x->errstr_size);
                if (result == EWS_STORE_OK)
                        state = ews_json_campaign(&campaign);
        }
        if (result == EWS_STORE_NOT_FOUND)
                return EWS_STORE_OK; /* expired since the scan saw it */
        if (result != EWS_STORE_OK)
                return result;
        jid = json_string(id);
        if (!state || !jid) {
                json_decref(state);
                json_decref(jid);
                snprintf(x->errstr, x->errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        /* kind, id, state in this order; the state as `ews-inspect KIND
         * ID` has it, on one line */
        bad = fprintf(x->out, "{\"kind\":\"%s\",\"id\":", inspect_kinds[kind]) <
                      0 ||
              json_dumpf(jid, x->out, JSON_ENCODE_ANY) ||
              fputs(",\"state\":", x->out) < 0 ||
              json_dumpf(state, x->out, JSON_COMPACT | INSPECT_JSON_FLAGS) ||
              fputs("}\n", x->out) < 0;
        json_decref(state);
        json_decref(jid);
        if (bad) {
                snprintf(x->errstr, x->errstr_size, "write: %s",
                         strerror(errno));
                return EWS_STORE_ERROR;
        }
        x->counts[kind]++;
        return EWS_STORE_OK;
}

/* A campaign's trials against the activation definition. */
struct inspect_tally {
        const struct ews_score_conf *conf;
        const char *campaign_id;
        struct ews_activation_tally tally;
};

static enum ews_store_result tally_user(void *opaque,
                                        const struct ews_user *user)
{
        struct inspect_tally *t = opaque;

        ews_activation_tally_add(t->conf, &t->tally, t->campaign_id, user);
        return EWS_STORE_OK;
}

/* Adds "activation" to a campaign's JSON: how its trials stand against
 * the definition, from a walk over every user. */
static enum ews_store_result inspect_activation(struct ews_store *store,
                                                const struct ews_config *config,
                                                const char *id, json_t *json,
                                                char *errstr,
                                                size_t errstr_size)
{
        struct inspect_tally t;
        enum ews_store_result result;

        memset(&t, 0, sizeof(t));
        t.conf = &config->score;
        t.campaign_id = id;
        result = ews_store_users_scan(store, tally_user, &t, errstr,
                                      errstr_size);
        if (result == EWS_STORE_OK &&
            json_object_set_new(
                    json, "activation",
                    ews_json_activation(&config->score, &t.tally))) {
                snprintf(errstr, errstr_size, "out of memory");
                result = EWS_STORE_ERROR;
        }
        return result;
}

/* ews-inspect export (kind checked): 0, or 1 (store or output). */
static int inspect_export(struct ews_store *store,
                          const struct ews_config *config, int64_t as_of_ms,
                          const char *kind, const char *out_path)
{
        struct inspect_export x;
        unsigned kinds = EWS_SUBJECTS_ALL;
        enum ews_store_result result;
        char errstr[1024];
        json_t *header = NULL;
        int rc = 1;

        if (kind && !strcmp(kind, "user"))
                kinds = EWS_SUBJECTS_USERS;
        else if (kind && !strcmp(kind, "account"))
                kinds = EWS_SUBJECTS_ACCOUNTS;
        else if (kind && !strcmp(kind, "campaign"))
                kinds = EWS_SUBJECTS_CAMPAIGNS;
        memset(&x, 0, sizeof(x));
        x.store = store;
        x.config = config;
        x.as_of_ms = as_of_ms;
        x.errstr = errstr;
        x.errstr_size = sizeof(errstr);
        x.out = out_path ? fopen(out_path, "w") : stdout;
        if (!x.out) {
                fprintf(stderr, "ews-inspect: %s: %s\n", out_path,
                        strerror(errno));
                return 1;
        }
        /* the fences first: the state scanned after them is at least as
         * new as their offsets */
        x.fences = json_object();
        if (!x.fences) {
                snprintf(errstr, sizeof(errstr), "out of memory");
                goto out;
        }
        result = ews_store_fences_read(store, export_fence, &x, errstr,
                                       sizeof(errstr));
        if (result != EWS_STORE_OK)
                goto out;
        header = json_pack("{s:s, s:O}", "kind", "fences", "fences", x.fences);
        if (!header) {
                snprintf(errstr, sizeof(errstr), "out of memory");
                goto out;
        }
        if (json_dumpf(header, x.out, JSON_COMPACT) || fputc('\n', x.out) < 0) {
                snprintf(errstr, sizeof(errstr), "write: %s", strerror(errno));
                goto out;
        }
        result = ews_store_subjects_scan(store, kinds, 1000, export_subject, &x,
                                         errstr, sizeof(errstr));
        if (result != EWS_STORE_OK)
                goto out;
        if (fprintf(x.out,
                    "{\"kind\":\"end\",\"users\":%lld,\"accounts\":%lld,"
                    "\"campaigns\":%lld}\n",
                    (long long)x.counts[EWS_SUBJECT_USER],
                    (long long)x.counts[EWS_SUBJECT_ACCOUNT],
                    (long long)x.counts[EWS_SUBJECT_CAMPAIGN]) < 0 ||
            fflush(x.out)) {
                snprintf(errstr, sizeof(errstr), "write: %s", strerror(errno));
                goto out;
        }
        rc = 0;
out:
        if (x.out != stdout && fclose(x.out) && !rc) {
                snprintf(errstr, sizeof(errstr), "write: %s", strerror(errno));
                rc = 1;
        }
        if (rc)
                fprintf(stderr, "ews-inspect: export: %s\n", errstr);
        json_decref(header);
        json_decref(x.fences);
        return rc;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"now", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {"kind", required_argument, NULL, 'k'},
                {"out", required_argument, NULL, 'o'},
                {"all", no_argument, NULL, 'a'},
                {NULL, 0, NULL, 0}};
        struct inspect_outbox_cmd outbox_cmd;
        const char *what, *what_arg;
        bool all = false;
        static struct ews_config config;
        const char *config_path = NULL, *kind, *id = NULL;
        const char *export_kind = NULL, *export_out = NULL;
        struct ews_store *store = NULL;
        struct ews_store_conf store_conf;
        enum ews_store_result result = EWS_STORE_ERROR;
        json_t *json = NULL;
        char errstr[1024];
        int opt, now = 0, rc = 1;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:h", options, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'n':
                        now = 1;
                        break;
                case 'k':
                        export_kind = optarg;
                        break;
                case 'o':
                        export_out = optarg;
                        break;
                case 'a':
                        all = true;
                        break;
                case 'h':
                        fputs(inspect_help, stdout);
                        return 0;
                default:
                        return inspect_bad_option(opt, argv);
                }
        }
        if (optind == argc)
                return inspect_usage("a command is required: user, account, "
                                     "campaign, erase, export or outbox",
                                     NULL);
        kind = argv[optind];
        if (strcmp(kind, "user") && strcmp(kind, "account") &&
            strcmp(kind, "campaign") && strcmp(kind, "erase") &&
            strcmp(kind, "export") && strcmp(kind, "outbox") &&
            strcmp(kind, "funnel") && strcmp(kind, "segment") &&
            strcmp(kind, "accounts"))
                return inspect_usage("unknown command", kind);
        if (all && strcmp(kind, "outbox"))
                return inspect_usage("--all is for outbox, not", kind);
        if (!strcmp(kind, "outbox")) {
                if (export_kind || export_out || now)
                        return inspect_usage(
                                export_kind  ? "--kind is for export, not"
                                : export_out ? "--out is for export, not"
                                             : "--now is not for",
                                kind);
                what = inspect_outbox_parse(argc - optind - 1,
                                            argv + optind + 1, all, &outbox_cmd,
                                            &what_arg);
                if (what)
                        return inspect_usage(what, what_arg);
        } else if (!strcmp(kind, "export")) {
                if (argc - optind > 1)
                        return inspect_usage("unexpected argument",
                                             argv[optind + 1]);
                if (export_kind && strcmp(export_kind, "user") &&
                    strcmp(export_kind, "account") &&
                    strcmp(export_kind, "campaign"))
                        return inspect_usage("--kind wants user, account or "
                                             "campaign, not",
                                             export_kind);
        } else if (!strcmp(kind, "funnel") || !strcmp(kind, "segment") ||
                   !strcmp(kind, "accounts")) {
                /* their words are read once connected */
        } else if (argc - optind < 2) {
                return inspect_usage("missing ID after", kind);
        } else if (argc - optind > 2) {
                return inspect_usage("unexpected argument", argv[optind + 2]);
        } else if (export_kind || export_out) {
                return inspect_usage(export_kind ? "--kind is for export, not"
                                                 : "--out is for export, not",
                                     kind);
        } else {
                id = argv[optind + 1];
        }
        ews_config_defaults(&config);
        if (ews_config_load(&config, config_path, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                return 2;
        }
        /* as the processor connects: redis.host, or through the
         * sentinels */
        store_conf = ews_setup_store_conf(&config);
        store_conf.cache_users = 1;
        store = ews_store_new(&store_conf, errstr, sizeof(errstr));
        if (!store) {
                fprintf(stderr, "ews-inspect: %s\n", errstr);
                if (config.redis_sentinel_cnt)
                        fprintf(stderr,
                                "ews-inspect: are the sentinels of "
                                "redis.sentinels (EWS_REDIS_SENTINELS) up, "
                                "monitoring a primary named '%s' "
                                "(redis.master.name)?\n",
                                config.redis_master_name);
                else
                        fprintf(stderr,
                                "ews-inspect: is Redis at %s:%d? Set "
                                "redis.host and redis.port in the "
                                "configuration (-c FILE), or EWS_REDIS_HOST "
                                "and EWS_REDIS_PORT\n",
                                config.redis_host, config.redis_port);
                goto out;
        }

        if (!strcmp(kind, "outbox")) {
                ews_log_setup(config.log_level,
                              config.log_format == EWS_LOG_JSON);
                rc = inspect_outbox_run(store, &config, &outbox_cmd);
                goto out;
        }
        if (!strcmp(kind, "funnel")) {
                rc = inspect_funnel_run(store, argc - optind - 1,
                                        argv + optind + 1);
                goto out;
        }
        if (!strcmp(kind, "accounts")) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                rc = inspect_accounts_run(store, config.score.half_life_ms,
                                          config.account_active_window_ms,
                                          now ? (int64_t)ts.tv_sec * 1000 : 0,
                                          argc - optind - 1, argv + optind + 1);
                goto out;
        }
        if (!strcmp(kind, "segment") && !config.segments) {
                fprintf(stderr, "ews-inspect: segments are off "
                                "(state.segments: false)\n");
                rc = 1;
                goto out;
        }
        if (!strcmp(kind, "segment")) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                rc = inspect_segment_run(store, config.score.half_life_ms,
                                         now ? (int64_t)ts.tv_sec * 1000 : 0,
                                         argc - optind - 1, argv + optind + 1);
                goto out;
        }
        if (!strcmp(kind, "export")) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                rc = inspect_export(store, &config,
                                    now ? (int64_t)ts.tv_sec * 1000 : 0,
                                    export_kind, export_out);
                goto out;
        }
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
                if (result == EWS_STORE_OK && json)
                        result = inspect_activation(store, &config, id, json,
                                                    errstr, sizeof(errstr));
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
