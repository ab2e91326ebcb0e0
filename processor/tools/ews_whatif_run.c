/* ews-whatif's replays: the history's ends, one ews-processor child per
 * configuration, the checks that it read all of the history and wrote
 * every record, and the deletion of its keys. */
#include "tools/ews_whatif.h"
#include "ops/setup.h"
#include "store/store.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double wi_now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A consumer that joins nothing, for metadata and watermarks. */
static rd_kafka_t *wi_kafka(const struct ews_config *config, char *errstr,
                            size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        int i;

        if (rd_kafka_conf_set(conf, "bootstrap.servers",
                              config->bootstrap_servers, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "group.id", "ews-whatif", errstr,
                              errstr_size) != RD_KAFKA_CONF_OK)
                goto fail;
        for (i = 0; i < config->consumer.cnt; i++)
                if (rd_kafka_conf_set(conf, config->consumer.prop[i].key,
                                      config->consumer.prop[i].value, errstr,
                                      errstr_size) != RD_KAFKA_CONF_OK)
                        goto fail;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (rk)
                return rk;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* One topic's partitions and their ends into h. */
static int wi_history_topic(rd_kafka_t *rk, struct wi_history *h, int s,
                            const char *topic, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        struct wi_partition *p;
        int i, n, id;

        if (rkt)
                err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!err && (md->topic_cnt != 1 || md->topics[0].err))
                err = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                         : md->topics[0].err;
        if (err)
                goto out;
        n = md->topics[0].partition_cnt;
        if (n > EWS_PARTITIONS_MAX) {
                err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                goto out;
        }
        h->partition_cnt[s] = n;
        h->partitions[s] = p = calloc((size_t)n + 1, sizeof(*p));
        if (!p) {
                err = RD_KAFKA_RESP_ERR__FAIL;
                goto out;
        }
        for (i = 0; i < n && !err; i++) {
                id = md->topics[0].partitions[i].id;
                if (id < 0 || id >= n) {
                        err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
                        break;
                }
                err = rd_kafka_query_watermark_offsets(
                        rk, topic, id, &p[id].low, &p[id].end, 10000);
                h->events[s] += p[id].end - p[id].low;
        }
out:
        if (err)
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         rd_kafka_err2str(err));
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return err ? -1 : 0;
}

int wi_history_read(struct wi_history *h, const struct ews_config *config,
                    char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk = wi_kafka(config, errstr, errstr_size);
        int s, rc = 0;

        memset(h, 0, sizeof(*h));
        if (!rk)
                return -1;
        for (s = 0; s < EWS_SOURCE_COUNT && !rc; s++)
                rc = wi_history_topic(rk, h, s, config->topics[s], errstr,
                                      errstr_size);
        rd_kafka_destroy(rk);
        return rc;
}

void wi_history_free(struct wi_history *h)
{
        int s;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                free(h->partitions[s]);
}

/* A new empty file $TMPDIR/ews-whatif-<pid>-<name>-XXXXXX<suffix> into
 * path; 0, or -1 (errno) with path "". */
static int wi_temp(char *path, size_t size, char name, const char *suffix)
{
        const char *tmp = getenv("TMPDIR");
        int n = snprintf(path, size, "%s/ews-whatif-%ld-%c-XXXXXX%s",
                         tmp && *tmp ? tmp : "/tmp", (long)getpid(), name,
                         suffix);
        int fd = -1;

        if (n > 0 && (size_t)n < size)
                fd = mkstemps(path, (int)strlen(suffix));
        else
                errno = ENAMETOOLONG;
        if (fd < 0) {
                path[0] = '\0';
                return -1;
        }
        close(fd);
        return 0;
}

int wi_replay_prepare(struct wi_replay *r, const struct ews_config *live,
                      char *errstr, size_t errstr_size)
{
        const char *tmp = getenv("TMPDIR");
        int n;

        n = snprintf(r->prefix, sizeof(r->prefix),
                     "%swhatif:%ld:%c:", live->redis_prefix, (long)getpid(),
                     r->name);
        if (n < 0 || (size_t)n >= sizeof(r->prefix) ||
            (size_t)n >= sizeof(live->redis_prefix)) {
                snprintf(errstr, errstr_size,
                         "redis.prefix '%s' is too long to hold the "
                         "replays' prefixes (%swhatif:PID:a:)",
                         live->redis_prefix, live->redis_prefix);
                return -1;
        }
        snprintf(r->group, sizeof(r->group), "%.200s.whatif.%ld.%c",
                 live->group_id, (long)getpid(), r->name);
        if (wi_temp(r->file, sizeof(r->file), r->name, ".jsonl") ||
            wi_temp(r->log, sizeof(r->log), r->name, ".log")) {
                snprintf(errstr, errstr_size, "a file in %s: %s",
                         tmp && *tmp ? tmp : "/tmp", strerror(errno));
                return -1;
        }
        return 0;
}

/* TOPIC:PARTITION=END,... of every partition of h; NULL when out of
 * memory. The caller frees it. */
static char *wi_end_list(const struct wi_history *h,
                         const struct ews_config *config)
{
        char *list = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&list, &len);
        int s, p, n = 0;

        if (!fp)
                return NULL;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (p = 0; p < h->partition_cnt[s]; p++)
                        fprintf(fp, "%s%s:%d=%lld", n++ ? "," : "",
                                config->topics[s], p,
                                (long long)h->partitions[s][p].end);
        if (fclose(fp)) {
                free(list);
                return NULL;
        }
        return list;
}

/* The environment of a replay: ours, with what makes it a replay set
 * over it. NULL when out of memory; the caller frees the array and the
 * strings from index *own on. */
static char **wi_env(const struct wi_replay *r, size_t *own)
{
        /* plain Avro in the files: nothing asked of a schema registry */
        static const char *const fixed[] = {
                "EWS_TIME_MODE=event", "EWS_HTTP_PORT=0",
                "EWS_KAFKA_AUTO_OFFSET_RESET=earliest",
                "EWS_ALERTS_FORMAT=avro"};
        const char *log = getenv("EWS_LOG_LEVEL");
        size_t n = 0, i, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 12, sizeof(*env));
        if (!env)
                return NULL;
        for (i = 0; i < n; i++)
                if (strncmp(environ[i], "EWS_REDIS_PREFIX=", 17) &&
                    strncmp(environ[i], "EWS_KAFKA_GROUP_ID=", 19) &&
                    strncmp(environ[i], "EWS_TIME_MODE=", 14) &&
                    strncmp(environ[i], "EWS_HTTP_PORT=", 14) &&
                    strncmp(environ[i], "EWS_ALERTS_FORMAT=", 18) &&
                    strncmp(environ[i], "EWS_KAFKA_AUTO_OFFSET_RESET=", 28))
                        env[k++] = environ[i];
        *own = k;
        for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                env[k++] = strdup(fixed[i]);
        /* the replays' info lines (one per alert) are not the report */
        if (!log || !*log)
                env[k++] = strdup("EWS_LOG_LEVEL=warn");
        if (asprintf(&env[k++], "EWS_REDIS_PREFIX=%s", r->prefix) < 0)
                env[k - 1] = NULL;
        if (asprintf(&env[k++], "EWS_KAFKA_GROUP_ID=%s", r->group) < 0)
                env[k - 1] = NULL;
        for (i = *own; i < k; i++)
                if (!env[i])
                        return NULL; /* leaks on out of memory: we exit */
        return env;
}

/* Starts the child: ews-processor -c FILE --exit-at-end --end-offsets
 * LIST --alerts-file FILE -X enable.auto.commit=false -X ... */
static int wi_spawn(const struct wi_replay *r, const char *ends,
                    const struct wi_run_opts *opts, pid_t *pid, char *errstr,
                    size_t errstr_size)
{
        const char **argv =
                calloc((size_t)opts->prop_cnt * 2 + 16, sizeof(*argv));
        posix_spawn_file_actions_t fa;
        bool fa_made = false;
        char **env = NULL;
        size_t own = 0, i;
        int n = 0, p, err = ENOMEM;

        if (!argv || !(env = wi_env(r, &own)))
                goto out;
        /* its output to its log, shown when it fails */
        if ((err = posix_spawn_file_actions_init(&fa)))
                goto out;
        fa_made = true;
        if ((err = posix_spawn_file_actions_addopen(&fa, 1, r->log,
                                                    O_WRONLY | O_APPEND, 0)) ||
            (err = posix_spawn_file_actions_adddup2(&fa, 1, 2)))
                goto out;
        err = ENOMEM;
        argv[n++] = opts->processor;
        if (r->config_path) {
                argv[n++] = "-c";
                argv[n++] = r->config_path;
        }
        argv[n++] = "--exit-at-end";
        argv[n++] = "--end-offsets";
        argv[n++] = ends;
        argv[n++] = "--alerts-file";
        argv[n++] = r->file;
        /* the group is the replay's own: it commits nothing */
        argv[n++] = "-X";
        argv[n++] = "enable.auto.commit=false";
        for (p = 0; p < opts->prop_cnt; p++) {
                argv[n++] = "-X";
                argv[n++] = opts->props[p];
        }
        err = posix_spawnp(pid, opts->processor, &fa, NULL, (char *const *)argv,
                           env);
out:
        if (fa_made)
                posix_spawn_file_actions_destroy(&fa);
        if (err)
                snprintf(errstr, errstr_size, "cannot run %s: %s",
                         opts->processor, strerror(err));
        for (i = own; env && env[i]; i++)
                free(env[i]);
        free(env);
        free(argv);
        return err ? -1 : 0;
}

/* Waits for the child; a stop asked for is passed on to it (it finishes
 * its batch and exits). 0 when it exited 0 and no stop was asked. */
static int wi_wait(const struct wi_replay *r, pid_t pid, char *errstr,
                   size_t errstr_size)
{
        struct timespec tick = {0, 50 * 1000 * 1000};
        bool passed = false;
        pid_t got;
        int status;

        while ((got = waitpid(pid, &status, WNOHANG)) != pid) {
                if (got < 0 && errno != EINTR) {
                        snprintf(errstr, errstr_size, "waitpid: %s",
                                 strerror(errno));
                        return -1;
                }
                if (wi_stop && !passed) {
                        kill(pid, SIGTERM);
                        passed = true;
                }
                nanosleep(&tick, NULL);
        }
        if (wi_stop) {
                snprintf(errstr, errstr_size, "stopped during replay %c",
                         r->name - 'a' + 'A');
                return -1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                snprintf(errstr, errstr_size,
                         "replay %c: ews-processor exited %d (the end of "
                         "its log is above)",
                         r->name - 'a' + 'A', WEXITSTATUS(status));
        else
                snprintf(errstr, errstr_size,
                         "replay %c: ews-processor killed by signal %d",
                         r->name - 'a' + 'A', WTERMSIG(status));
        return -1;
}

struct wi_fences {
        const struct wi_history *h;
        const struct ews_config *config;
        struct wi_replay *r;
};

/* Where the replay's fence of a partition stands: the next offset it
 * would apply. */
static enum ews_store_result wi_fence_cb(void *opaque, const char *topic,
                                         int32_t partition,
                                         const struct ews_fence *fence,
                                         unsigned have)
{
        struct wi_fences *f = opaque;
        int s = strcmp(topic, f->config->topics[0]) ? 1 : 0;

        if (partition < f->h->partition_cnt[s] && (have & EWS_FENCE_HAS_OFFSET))
                f->r->applied[s][partition] = fence->next_offset;
        return EWS_STORE_OK;
}

/* What the replay left in Redis says it is whole: every partition with
 * history applied (how far: r->applied, compared between the replays by
 * the caller; a control record of a transaction may end a partition
 * without being applied), every outbox written out. */
static int wi_check(struct ews_store *store, struct wi_replay *r,
                    const struct wi_history *h, char *errstr,
                    size_t errstr_size)
{
        struct wi_fences f = {h, r->config, r};
        static struct ews_outbox_key keys[2 * EWS_PARTITIONS_MAX + 1];
        size_t n = 0;
        int64_t left = 0;
        int s, p;

        memset(r->applied, 0xff, sizeof(r->applied));
        if (ews_store_fences_read(store, wi_fence_cb, &f, errstr,
                                  errstr_size) != EWS_STORE_OK)
                return -1;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (p = 0; p < h->partition_cnt[s]; p++) {
                        const struct wi_partition *part = &h->partitions[s][p];

                        if (part->end > part->low && r->applied[s][p] < 0) {
                                snprintf(errstr, errstr_size,
                                         "%s [%d] holds offsets %lld to "
                                         "%lld, none applied",
                                         r->config->topics[s], p,
                                         (long long)part->low,
                                         (long long)part->end - 1);
                                return -1;
                        }
                        keys[n++] = (struct ews_outbox_key){{s, p}, NULL};
                }
        keys[n++] = (struct ews_outbox_key){{EWS_OUTBOX_LEADER, 0}, NULL};
        if (ews_store_outbox_len(store, keys, n, &left, errstr, errstr_size) !=
            EWS_STORE_OK)
                return -1;
        if (left) {
                snprintf(errstr, errstr_size,
                         "%lld record(s) were not written to %.900s",
                         (long long)left, r->file);
                return -1;
        }
        return 0;
}

static struct ews_store *wi_store(const struct wi_replay *r, char *errstr,
                                  size_t errstr_size)
{
        struct ews_store_conf conf = ews_setup_store_conf(r->config);

        conf.prefix = r->prefix;
        conf.cache_users = 1;
        return ews_store_new(&conf, errstr, errstr_size);
}

int wi_replay_clean(struct wi_replay *r, char *errstr, size_t errstr_size)
{
        struct ews_store *store = wi_store(r, errstr, errstr_size);
        int64_t deleted = 0;
        int rc = -1;

        if (store && ews_store_drop_all(store, &deleted, errstr, errstr_size) ==
                             EWS_STORE_OK)
                rc = 0;
        r->keys_deleted += deleted;
        ews_store_destroy(store);
        return rc;
}

/* The last lines of the replay's log, to stderr: why it failed. */
static void wi_log_tail(const struct wi_replay *r)
{
        enum {
                TAIL = 20
        };
        char *lines[TAIL] = {NULL}, *line = NULL;
        FILE *fp = fopen(r->log, "r");
        size_t cap = 0, n = 0, i;

        if (!fp)
                return;
        while (getline(&line, &cap, fp) >= 0) {
                free(lines[n % TAIL]);
                lines[n++ % TAIL] = line;
                line = NULL;
                cap = 0;
        }
        free(line);
        fclose(fp);
        for (i = n > TAIL ? n - TAIL : 0; i < n; i++)
                fprintf(stderr, "  replay %c: %s", r->name - 'a' + 'A',
                        lines[i % TAIL]);
        for (i = 0; i < TAIL; i++)
                free(lines[i]);
}

int wi_replay_run(struct wi_replay *r, const struct wi_history *h,
                  const struct wi_run_opts *opts, char *errstr,
                  size_t errstr_size)
{
        char *ends = wi_end_list(h, r->config), why[1024] = "";
        struct ews_store *store = NULL;
        double start = wi_now_s();
        pid_t pid;
        int rc = -1;

        if (!ends) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        /* a prefix is this process's: what a killed run of the same pid
         * left is not ours to resume */
        if (wi_replay_clean(r, errstr, errstr_size))
                goto out;
        r->keys_deleted = 0;
        if (wi_spawn(r, ends, opts, &pid, errstr, errstr_size))
                goto out;
        if (wi_wait(r, pid, errstr, errstr_size))
                goto out;
        r->seconds = wi_now_s() - start;
        store = wi_store(r, errstr, errstr_size);
        if (!store || wi_check(store, r, h, why, sizeof(why))) {
                if (store)
                        snprintf(errstr, errstr_size, "replay %c: %s",
                                 r->name - 'a' + 'A', why);
                goto out;
        }
        rc = 0;
out:
        if (rc && !wi_stop)
                wi_log_tail(r);
        ews_store_destroy(store);
        /* its keys go in every case; a failure to delete them is said */
        if (wi_replay_clean(r, why, sizeof(why))) {
                fprintf(stderr,
                        "ews-whatif: the keys under '%s' could not be "
                        "deleted: %s; delete them with redis-cli --scan "
                        "--pattern '%s*' | xargs redis-cli unlink\n",
                        r->prefix, why, r->prefix);
                if (!rc)
                        snprintf(errstr, errstr_size, "%s", why);
                rc = -1;
        }
        free(ends);
        return rc;
}
