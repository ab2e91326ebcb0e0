/* ews-devbroker's control channel (ews_devbroker.h). */
#include "ews_devbroker.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_CLIENTS_MAX 16
#define CTL_LINE_MAX    1024
#define CTL_WORDS_MAX   8
#define CTL_COUNT_MAX   100000
#define CTL_RTT_MAX     600000 /* ms */

/* The Kafka requests the mock answers (and a few it refuses), by number. */
static const struct {
        const char *name;
        int16_t key;
} ctl_apis[] = {
        {"Produce", 0},          {"Fetch", 1},
        {"ListOffsets", 2},      {"Metadata", 3},
        {"OffsetCommit", 8},     {"OffsetFetch", 9},
        {"FindCoordinator", 10}, {"JoinGroup", 11},
        {"Heartbeat", 12},       {"LeaveGroup", 13},
        {"SyncGroup", 14},       {"DescribeGroups", 15},
        {"ListGroups", 16},      {"SaslHandshake", 17},
        {"ApiVersions", 18},     {"CreateTopics", 19},
        {"DeleteTopics", 20},    {"DeleteRecords", 21},
        {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
        {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
        {"TxnOffsetCommit", 28},
};

void devbroker_ctl_help(FILE *fp)
{
        fprintf(fp,
                "Control channel (--control PATH): one command a line on the "
                "Unix socket,\n"
                "each answered by one line, \"ok\" or \"error <why>\":\n"
                "  ping\n"
                "  errors API COUNT ERROR     the next COUNT requests of API, "
                "on any broker,\n"
                "                             answer ERROR\n"
                "  broker-errors BROKER API COUNT ERROR [RTT_MS]\n"
                "                             the same on one broker (served "
                "before the\n"
                "                             cluster's), each answer RTT_MS "
                "late\n"
                "  clear API                  drop the cluster's errors left "
                "for API\n"
                "  down BROKER|all            close the broker's connections "
                "and refuse new ones\n"
                "  up BROKER|all              accept connections again\n"
                "  rtt BROKER|all MS          every answer of the broker MS "
                "late (0: none)\n"
                "  leader TOPIC PARTITION BROKER (a topic it does not know, "
                "the mock creates)\n"
                "  coordinator group|transaction KEY BROKER\n"
                "API: a request name or number (Produce, Fetch, ListOffsets, "
                "Metadata,\n"
                "OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, "
                "Heartbeat,\n"
                "LeaveGroup, SyncGroup, InitProducerId, ...). ERROR: a "
                "librdkafka error\n"
                "name (NOT_COORDINATOR, NOT_LEADER_OR_FOLLOWER, "
                "REQUEST_TIMED_OUT,\n"
                "_TRANSPORT: the broker closes the connection) or number. "
                "Brokers are\n"
                "numbered from 1. Example: echo 'errors OffsetCommit 3 "
                "NOT_COORDINATOR' |\n"
                "  nc -N -U PATH\n");
}

static int ctl_number(const char *word, long lo, long hi, long *out)
{
        char *end;
        long n;

        errno = 0;
        n = strtol(word, &end, 10);
        if (errno || end == word || *end || n < lo || n > hi)
                return -1;
        *out = n;
        return 0;
}

static int ctl_api(const char *word, int16_t *key)
{
        size_t i;
        long n;

        for (i = 0; i < sizeof(ctl_apis) / sizeof(ctl_apis[0]); i++)
                if (!strcasecmp(word, ctl_apis[i].name)) {
                        *key = ctl_apis[i].key;
                        return 0;
                }
        if (ctl_number(word, 0, 100, &n))
                return -1;
        *key = (int16_t)n;
        return 0;
}

static int ctl_error(const char *word, rd_kafka_resp_err_t *err)
{
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;
        long n;

        if (!strncasecmp(word, "RD_KAFKA_RESP_ERR_", 18))
                word += 18;
        /* Kafka's name since 2.4; librdkafka 2.0.2 lists the old one */
        if (!strcasecmp(word, "NOT_LEADER_OR_FOLLOWER"))
                word = "NOT_LEADER_FOR_PARTITION";
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++)
                if (descs[i].name && !strcasecmp(word, descs[i].name)) {
                        *err = descs[i].code;
                        return 0;
                }
        if (ctl_number(word, INT_MIN, INT_MAX, &n))
                return -1;
        for (i = 0; i < cnt; i++)
                if (descs[i].name && descs[i].code == n) {
                        *err = descs[i].code;
                        return 0;
                }
        return -1;
}

/* A broker id, or -1 for every broker when all is allowed. */
static int ctl_broker(const char *word, int broker_cnt, bool all, int32_t *id)
{
        long n;

        if (all && !strcasecmp(word, "all")) {
                *id = -1;
                return 0;
        }
        if (ctl_number(word, 1, broker_cnt, &n))
                return -1;
        *id = (int32_t)n;
        return 0;
}

static size_t ctl_split(char *line, char **words, size_t max)
{
        size_t cnt = 0;
        char *save = NULL, *word;

        for (word = strtok_r(line, " \t\r", &save); word;
             word = strtok_r(NULL, " \t\r", &save)) {
                if (cnt == max)
                        return max + 1;
                words[cnt++] = word;
        }
        return cnt;
}

#define CTL_FAIL(...)                                                          \
        do {                                                                   \
                snprintf(reply, reply_size, "error " __VA_ARGS__);             \
                return;                                                        \
        } while (0)

static void ctl_errors(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                       char **w, size_t cnt, char *reply, size_t reply_size)
{
        bool on_broker = !strcmp(w[0], "broker-errors");
        size_t first = on_broker ? 2 : 1, i;
        rd_kafka_resp_err_t err, res, *errs;
        int32_t broker = 0;
        int16_t api;
        long count, rtt = 0;

        if (cnt != first + 3 && !(on_broker && cnt == first + 4))
                CTL_FAIL("usage: %s", on_broker ? "broker-errors BROKER API "
                                                  "COUNT ERROR [RTT_MS]"
                                                : "errors API COUNT ERROR");
        if (on_broker && ctl_broker(w[1], broker_cnt, false, &broker))
                CTL_FAIL("no broker '%s' (1 to %d)", w[1], broker_cnt);
        if (ctl_api(w[first], &api))
                CTL_FAIL("unknown API '%s'", w[first]);
        if (ctl_number(w[first + 1], 1, CTL_COUNT_MAX, &count))
                CTL_FAIL("COUNT takes 1 to %d, not '%s'", CTL_COUNT_MAX,
                         w[first + 1]);
        if (ctl_error(w[first + 2], &err))
                CTL_FAIL("unknown error '%s'", w[first + 2]);
        if (cnt == first + 4 && ctl_number(w[first + 3], 0, CTL_RTT_MAX, &rtt))
                CTL_FAIL("RTT_MS takes 0 to %d, not '%s'", CTL_RTT_MAX,
                         w[first + 3]);
        if (on_broker) {
                for (i = 0; i < (size_t)count; i++)
                        if ((res = rd_kafka_mock_broker_push_request_error_rtts(
                                     mcluster, broker, api, 1, err,
                                     (int)rtt)) != RD_KAFKA_RESP_ERR_NO_ERROR)
                                CTL_FAIL("%s", rd_kafka_err2str(res));
        } else {
                errs = malloc((size_t)count * sizeof(*errs));
                if (!errs)
                        CTL_FAIL("out of memory");
                for (i = 0; i < (size_t)count; i++)
                        errs[i] = err;
                rd_kafka_mock_push_request_errors_array(mcluster, api,
                                                        (size_t)count, errs);
                free(errs);
        }
        snprintf(reply, reply_size, "ok");
}

static void ctl_broker_cmd(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                           char **w, size_t cnt, char *reply, size_t reply_size)
{
        bool rtt = !strcmp(w[0], "rtt");
        rd_kafka_resp_err_t err;
        int32_t broker;
        long ms = 0;

        if (cnt != (rtt ? 3u : 2u))
                CTL_FAIL("usage: %s",
                         rtt ? "rtt BROKER|all MS" : "down|up BROKER|all");
        if (ctl_broker(w[1], broker_cnt, true, &broker))
                CTL_FAIL("no broker '%s' (1 to %d, or all)", w[1], broker_cnt);
        if (rtt && ctl_number(w[2], 0, CTL_RTT_MAX, &ms))
                CTL_FAIL("MS takes 0 to %d, not '%s'", CTL_RTT_MAX, w[2]);
        if (rtt)
                err = rd_kafka_mock_broker_set_rtt(mcluster, broker, (int)ms);
        else if (!strcmp(w[0], "down"))
                err = rd_kafka_mock_broker_set_down(mcluster, broker);
        else
                err = rd_kafka_mock_broker_set_up(mcluster, broker);
        if (err)
                CTL_FAIL("%s", rd_kafka_err2str(err));
        snprintf(reply, reply_size, "ok");
}

static void ctl_placement(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                          char **w, size_t cnt, char *reply, size_t reply_size)
{
        bool leader = !strcmp(w[0], "leader");
        rd_kafka_resp_err_t err;
        int32_t broker;
        long partition;

        if (cnt != 4)
                CTL_FAIL("usage: %s",
                         leader ? "leader TOPIC PARTITION BROKER"
                                : "coordinator group|transaction KEY BROKER");
        if (ctl_broker(w[3], broker_cnt, false, &broker))
                CTL_FAIL("no broker '%s' (1 to %d)", w[3], broker_cnt);
        if (leader) {
                if (ctl_number(w[2], 0, INT32_MAX, &partition))
                        CTL_FAIL("bad partition '%s'", w[2]);
                err = rd_kafka_mock_partition_set_leader(
                        mcluster, w[1], (int32_t)partition, broker);
        } else {
                if (strcmp(w[1], "group") && strcmp(w[1], "transaction"))
                        CTL_FAIL("coordinator of 'group' or 'transaction', "
                                 "not '%s'",
                                 w[1]);
                err = rd_kafka_mock_coordinator_set(mcluster, w[1], w[2],
                                                    broker);
        }
        if (err)
                CTL_FAIL("%s", rd_kafka_err2str(err));
        snprintf(reply, reply_size, "ok");
}

void devbroker_ctl_exec(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                        char *line, char *reply, size_t reply_size)
{
        char *w[CTL_WORDS_MAX];
        size_t cnt = ctl_split(line, w, CTL_WORDS_MAX);
        int16_t api;

        if (cnt == 0)
                CTL_FAIL("empty command");
        if (cnt > CTL_WORDS_MAX)
                CTL_FAIL("too many words");
        if (!strcmp(w[0], "ping")) {
                if (cnt != 1)
                        CTL_FAIL("usage: ping");
                snprintf(reply, reply_size, "ok");
        } else if (!strcmp(w[0], "errors") || !strcmp(w[0], "broker-errors")) {
                ctl_errors(mcluster, broker_cnt, w, cnt, reply, reply_size);
        } else if (!strcmp(w[0], "clear")) {
                if (cnt != 2)
                        CTL_FAIL("usage: clear API");
                if (ctl_api(w[1], &api))
                        CTL_FAIL("unknown API '%s'", w[1]);
                rd_kafka_mock_clear_request_errors(mcluster, api);
                snprintf(reply, reply_size, "ok");
        } else if (!strcmp(w[0], "down") || !strcmp(w[0], "up") ||
                   !strcmp(w[0], "rtt")) {
                ctl_broker_cmd(mcluster, broker_cnt, w, cnt, reply, reply_size);
        } else if (!strcmp(w[0], "leader") || !strcmp(w[0], "coordinator")) {
                ctl_placement(mcluster, broker_cnt, w, cnt, reply, reply_size);
        } else {
                CTL_FAIL("unknown command '%s' (ews-devbroker --help lists "
                         "them)",
                         w[0]);
        }
}

int devbroker_ctl_listen(const char *path)
{
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        struct stat st;
        int fd;

        if (strlen(path) >= sizeof(sun.sun_path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        strcpy(sun.sun_path, path);
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        errno = EEXIST;
                        return -1;
                }
                unlink(path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
            listen(fd, CTL_CLIENTS_MAX)) {
                int saved = errno;

                close(fd);
                errno = saved;
                return -1;
        }
        return fd;
}

struct ctl_client {
        int fd;
        size_t len;
        char buf[CTL_LINE_MAX];
};

static void ctl_send(int fd, const char *reply)
{
        char out[CTL_LINE_MAX + 2];
        int n = snprintf(out, sizeof(out), "%s\n", reply);

        /* a client that does not read its answers is its own problem */
        (void)!send(fd, out, (size_t)n, MSG_NOSIGNAL);
}

/* Reads what came and answers every whole line; false: close it. */
static bool ctl_client_read(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                            struct ctl_client *c)
{
        char reply[CTL_LINE_MAX], *nl;
        ssize_t n;
        size_t used;

        n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n <= 0)
                return n < 0 && (errno == EINTR || errno == EAGAIN);
        c->len += (size_t)n;
        while ((nl = memchr(c->buf, '\n', c->len))) {
                *nl = '\0';
                used = (size_t)(nl - c->buf) + 1;
                if (c->buf[strspn(c->buf, " \t\r")] != '\0') {
                        devbroker_ctl_exec(mcluster, broker_cnt, c->buf, reply,
                                           sizeof(reply));
                        ctl_send(c->fd, reply);
                }
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
        }
        if (c->len == sizeof(c->buf)) {
                ctl_send(c->fd, "error line too long");
                return false;
        }
        return true;
}

void devbroker_ctl_serve(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                         int listen_fd, volatile sig_atomic_t *stop,
                         const sigset_t *waitmask)
{
        struct ctl_client clients[CTL_CLIENTS_MAX];
        struct pollfd fds[CTL_CLIENTS_MAX + 1];
        size_t client_cnt = 0, i;
        int fd;

        while (!*stop) {
                fds[0].fd = listen_fd;
                fds[0].events = POLLIN;
                for (i = 0; i < client_cnt; i++) {
                        fds[i + 1].fd = clients[i].fd;
                        fds[i + 1].events = POLLIN;
                }
                if (ppoll(fds, client_cnt + 1, NULL, waitmask) < 0)
                        continue; /* EINTR: a signal, *stop says which */
                for (i = client_cnt; i-- > 0;) {
                        if (!fds[i + 1].revents ||
                            ctl_client_read(mcluster, broker_cnt, &clients[i]))
                                continue;
                        close(clients[i].fd);
                        clients[i] = clients[--client_cnt];
                }
                if (listen_fd >= 0 && (fds[0].revents & POLLIN)) {
                        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd < 0)
                                continue;
                        if (client_cnt == CTL_CLIENTS_MAX) {
                                ctl_send(fd, "error too many connections");
                                close(fd);
                                continue;
                        }
                        clients[client_cnt].fd = fd;
                        clients[client_cnt++].len = 0;
                }
        }
        for (i = 0; i < client_cnt; i++)
                close(clients[i].fd);
}
