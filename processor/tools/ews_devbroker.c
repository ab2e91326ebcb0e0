/*
 * ews-devbroker: librdkafka's Kafka-protocol mock cluster in a process of
 * its own, the development and test broker.
 *
 * Real clients (kcat, consumer groups, idempotent producers) speak to it over
 * TCP on 127.0.0.1. Its limits are those of the mock (librdkafka 2.0.2): at
 * most 5 MiB or 100k message sets kept per partition, and older data is
 * dropped silently to make room; transactions in shape only; everything in
 * memory; a member that restarts under its old name waits out its old
 * session. Nothing in the processor knows about it: the processor only ever
 * gets bootstrap.servers.
 *
 * The mock has no setting for the largest message, and chooses its ports
 * itself (it binds 127.0.0.1:0; no API in 2.0.2 takes a port). What it does
 * check is the size of each request against receive.message.max.bytes of
 * the client handle it lives in: a larger request closes the connection
 * before it is read, so the producer retries and then fails with a timed
 * out message, and nothing is dropped. --max-request-bytes sets that limit,
 * below the 5 MiB a partition keeps. --port puts a forwarder on a fixed
 * port in front of the first broker: a stable bootstrap address.
 * --refuse-produce answers a topic's produce requests with a Kafka error
 * (the mock's per-broker error stack; the topic is led by a broker of its
 * own), as a broker refusing records for good would.
 *
 * --control PATH opens a control channel on a Unix socket, a line protocol
 * over the mock's fault API (ews_devbroker.h): request errors, brokers down
 * and up, round-trip time. The chaos tests make the broker fail with it.
 */
#include "ews_devbroker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEVBROKER_TOPICS_MAX 64
/* What a partition keeps (rdkafka_mock.c, 2.0.2): no request may be as big. */
#define DEVBROKER_PARTITION_BYTES (5 * 1024 * 1024)
#define DEVBROKER_REQUEST_BYTES   (1024 * 1024)
#define DEVBROKER_REQUEST_MAX     (4 * 1024 * 1024)

static volatile sig_atomic_t devbroker_stop;

static void devbroker_on_signal(int sig)
{
        (void)sig;
        devbroker_stop = 1;
}

static void devbroker_usage(FILE *fp)
{
        fprintf(fp,
                "usage: ews-devbroker [--brokers N] [--topic "
                "NAME:PARTITIONS]...\n"
                "                     [--addr-file PATH] [--port N] "
                "[--max-request-bytes N]\n"
                "                     [--refuse-produce TOPIC:ERROR:COUNT] "
                "[--control PATH]\n"
                "Runs a Kafka-protocol mock cluster until SIGTERM or SIGINT.\n"
                "Prints the bootstrap address on stdout and, with "
                "--addr-file,\n"
                "writes it to PATH (atomically, once the topics exist and "
                "the\n"
                "control channel listens).\n"
                "\n"
                "  --brokers N            brokers in the cluster, 1 to 16 "
                "(default 1)\n"
                "  --topic NAME:PARTITIONS  create a topic (replicated on up "
                "to 3 brokers)\n"
                "  --port N               bootstrap on 127.0.0.1:N, a "
                "forwarder to the first\n"
                "                         broker (the brokers' own ports are "
                "the mock's choice)\n"
                "  --max-request-bytes N  refuse a request (a produced "
                "batch) over N bytes\n"
                "                         (default %d, at most %d): the "
                "connection is\n"
                "                         closed, the producer's message "
                "fails once it\n"
                "                         times out\n"
                "  --refuse-produce TOPIC:ERROR:COUNT\n"
                "                         the first COUNT produce requests "
                "to TOPIC (given\n"
                "                         with --topic) fail with the Kafka "
                "error ERROR\n"
                "                         (MSG_SIZE_TOO_LARGE, "
                "TOPIC_AUTHORIZATION_FAILED...):\n"
                "                         TOPIC is led by a broker of its "
                "own (one more\n"
                "                         when --brokers is 1)\n"
                "  --control PATH         a control channel on a Unix socket "
                "at PATH (below)\n"
                "\n"
                "A development and test broker, librdkafka's mock cluster, "
                "NOT Kafka:\n"
                "  - it keeps at most 5 MiB (or 100k batches) per partition "
                "and drops\n"
                "    older data SILENTLY to make room: keep test data "
                "small;\n"
                "  - everything is in memory: a restart loses every message "
                "and offset;\n"
                "  - transactions are in shape only, nothing is isolated;\n"
                "  - a consumer that restarts waits out its old session: set "
                "a low\n"
                "    session.timeout.ms in development.\n"
                "\n"
                "Exit codes: 0 stopped by SIGTERM or SIGINT, 1 could not "
                "start, 2 usage.\n\n",
                DEVBROKER_REQUEST_BYTES, DEVBROKER_REQUEST_MAX);
        devbroker_ctl_help(fp);
}

struct devbroker_topic {
        char name[250];
        int partitions;
};

static int devbroker_topic_parse(const char *arg, struct devbroker_topic *topic)
{
        const char *colon = strrchr(arg, ':');
        char *end;
        long partitions;
        size_t name_len;

        if (!colon || colon == arg)
                return -1;
        name_len = (size_t)(colon - arg);
        if (name_len >= sizeof(topic->name))
                return -1;
        errno = 0;
        partitions = strtol(colon + 1, &end, 10);
        if (errno || *end || partitions < 1 || partitions > 10000)
                return -1;
        memcpy(topic->name, arg, name_len);
        topic->name[name_len] = '\0';
        topic->partitions = (int)partitions;
        return 0;
}

/* --refuse-produce TOPIC:ERROR:COUNT: TOPIC is led by the last broker and
 * every other topic given by the first, and the last broker answers its
 * next count Produce requests with the error (the mock's per-broker error
 * stack): only TOPIC's records are refused. 0, or -1 with errstr. */
static int devbroker_refuse_produce(rd_kafka_mock_cluster_t *mcluster,
                                    const struct devbroker_topic *topics,
                                    int topic_cnt, int brokers,
                                    const char *spec, char *errstr,
                                    size_t errstr_size)
{
        const struct rd_kafka_err_desc *descs;
        char topic[250], name[64];
        size_t desc_cnt, i;
        int count = 0, found = 0, t, k;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

        if (sscanf(spec, "%249[^:]:%63[^:]:%d", topic, name, &count) != 3 ||
            count < 1) {
                snprintf(errstr, errstr_size,
                         "bad --refuse-produce '%s' (TOPIC:ERROR:COUNT)", spec);
                return -1;
        }
        rd_kafka_get_err_descs(&descs, &desc_cnt);
        for (i = 0; i < desc_cnt && !err; i++)
                if (descs[i].code > 0 && descs[i].name &&
                    !strcmp(descs[i].name, name))
                        err = descs[i].code;
        if (!err) {
                snprintf(errstr, errstr_size,
                         "--refuse-produce: no Kafka error named %s", name);
                return -1;
        }
        for (t = 0; t < topic_cnt; t++) {
                int leader = strcmp(topics[t].name, topic) ? 1 : brokers;

                found |= leader == brokers;
                for (k = 0; k < topics[t].partitions; k++)
                        rd_kafka_mock_partition_set_leader(
                                mcluster, topics[t].name, k, leader);
        }
        if (!found) {
                snprintf(errstr, errstr_size,
                         "--refuse-produce: %s is not given with --topic",
                         topic);
                return -1;
        }
        for (k = 0; k < count; k++)
                rd_kafka_mock_broker_push_request_error_rtts(
                        mcluster, brokers, 0 /* Produce */, 1, err, 0);
        return 0;
}

/* Written to a temporary name and renamed, so a reader never sees half. */
static int devbroker_addr_write(const char *path, const char *bootstraps)
{
        char tmp[4096];
        FILE *fp;

        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                return -1;
        fp = fopen(tmp, "w");
        if (!fp)
                return -1;
        fprintf(fp, "%s\n", bootstraps);
        if (fclose(fp) != 0)
                return -1;
        return rename(tmp, path);
}

/* The --port forwarder: every connection to the fixed port is piped to the
 * first broker, one thread a direction. Clients bootstrap through it, then
 * connect to the brokers the metadata names. */
struct devbroker_pipe {
        int client, broker;
        atomic_int refs;
};

struct devbroker_half {
        struct devbroker_pipe *pipe;
        int from, to;
};

static struct sockaddr_in devbroker_target;

static void *devbroker_pump(void *arg)
{
        struct devbroker_half *half = arg;
        struct devbroker_pipe *pipe = half->pipe;
        char buf[65536];
        ssize_t n, off, w;

        while ((n = read(half->from, buf, sizeof(buf))) > 0) {
                for (off = 0; off < n; off += w) {
                        w = send(half->to, buf + off, (size_t)(n - off),
                                 MSG_NOSIGNAL);
                        if (w <= 0)
                                goto done;
                }
        }
done:
        shutdown(half->to, SHUT_WR);
        shutdown(half->from, SHUT_RD);
        free(half);
        if (atomic_fetch_sub(&pipe->refs, 1) == 1) {
                close(pipe->client);
                close(pipe->broker);
                free(pipe);
        }
        return NULL;
}

static int devbroker_pump_start(struct devbroker_pipe *pipe, int from, int to)
{
        struct devbroker_half *half = malloc(sizeof(*half));
        pthread_t thread;

        if (!half)
                return -1;
        half->pipe = pipe;
        half->from = from;
        half->to = to;
        if (pthread_create(&thread, NULL, devbroker_pump, half)) {
                free(half);
                return -1;
        }
        pthread_detach(thread);
        return 0;
}

static void *devbroker_forward(void *arg)
{
        int listen_s = (int)(intptr_t)arg, client, broker;
        struct devbroker_pipe *pipe;

        for (;;) {
                client = accept(listen_s, NULL, NULL);
                if (client < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        fprintf(stderr, "ews-devbroker: accept: %s\n",
                                strerror(errno));
                        return NULL;
                }
                broker = socket(AF_INET, SOCK_STREAM, 0);
                pipe = malloc(sizeof(*pipe));
                if (broker < 0 || !pipe ||
                    connect(broker, (struct sockaddr *)&devbroker_target,
                            sizeof(devbroker_target))) {
                        close(client);
                        if (broker >= 0)
                                close(broker);
                        free(pipe);
                        continue;
                }
                pipe->client = client;
                pipe->broker = broker;
                atomic_init(&pipe->refs, 2);
                if (devbroker_pump_start(pipe, client, broker)) {
                        close(client);
                        close(broker);
                        free(pipe);
                        continue;
                }
                if (devbroker_pump_start(pipe, broker, client)) {
                        /* the running half sees the shutdown and frees */
                        shutdown(client, SHUT_RDWR);
                        shutdown(broker, SHUT_RDWR);
                        if (atomic_fetch_sub(&pipe->refs, 1) == 1) {
                                close(client);
                                close(broker);
                                free(pipe);
                        }
                }
        }
}

/* Listens on 127.0.0.1:port and forwards to the first of bootstraps
 * ("127.0.0.1:P1,127.0.0.1:P2,..."). */
static int devbroker_forward_start(int port, const char *bootstraps)
{
        struct sockaddr_in sin;
        const char *colon = strchr(bootstraps, ':');
        pthread_t thread;
        int listen_s, on = 1;

        if (!colon)
                return -1;
        memset(&devbroker_target, 0, sizeof(devbroker_target));
        devbroker_target.sin_family = AF_INET;
        devbroker_target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        devbroker_target.sin_port = htons((uint16_t)atoi(colon + 1));

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons((uint16_t)port);
        listen_s = socket(AF_INET, SOCK_STREAM, 0);
        if (listen_s < 0)
                return -1;
        if (setsockopt(listen_s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
            bind(listen_s, (struct sockaddr *)&sin, sizeof(sin)) ||
            listen(listen_s, 16) ||
            pthread_create(&thread, NULL, devbroker_forward,
                           (void *)(intptr_t)listen_s)) {
                close(listen_s);
                return -1;
        }
        pthread_detach(thread);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"brokers", required_argument, NULL, 'n'},
                {"topic", required_argument, NULL, 't'},
                {"addr-file", required_argument, NULL, 'a'},
                {"port", required_argument, NULL, 'p'},
                {"max-request-bytes", required_argument, NULL, 'm'},
                {"refuse-produce", required_argument, NULL, 'r'},
                {"control", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        struct devbroker_topic topics[DEVBROKER_TOPICS_MAX];
        int topic_cnt = 0, brokers = 1, opt, i, rc = 1, port = 0;
        int control_fd = -1;
        long max_request = DEVBROKER_REQUEST_BYTES;
        const char *addr_file = NULL, *refuse = NULL, *control = NULL;
        char errstr[512], value[32], fixed[64];
        char *end;
        sigset_t mask, old_mask, wait_mask;
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        const char *bootstraps;
        struct sigaction sa;

        while ((opt = getopt_long(argc, argv, "n:t:a:p:m:r:c:h", options,
                                  NULL)) != -1) {
                switch (opt) {
                case 'n':
                        brokers = atoi(optarg);
                        if (brokers < 1 || brokers > 16) {
                                fprintf(stderr, "ews-devbroker: --brokers "
                                                "takes 1 to 16\n");
                                return 2;
                        }
                        break;
                case 't':
                        if (topic_cnt == DEVBROKER_TOPICS_MAX ||
                            devbroker_topic_parse(optarg, &topics[topic_cnt])) {
                                fprintf(stderr,
                                        "ews-devbroker: bad --topic '%s' "
                                        "(NAME:PARTITIONS, at most %d)\n",
                                        optarg, DEVBROKER_TOPICS_MAX);
                                return 2;
                        }
                        topic_cnt++;
                        break;
                case 'a':
                        addr_file = optarg;
                        break;
                case 'p':
                        errno = 0;
                        port = (int)strtol(optarg, &end, 10);
                        if (errno || *end || port < 1 || port > 65535) {
                                fprintf(stderr, "ews-devbroker: --port "
                                                "takes 1 to 65535\n");
                                return 2;
                        }
                        break;
                case 'm':
                        errno = 0;
                        max_request = strtol(optarg, &end, 10);
                        if (errno || *end || max_request < 1000 ||
                            max_request > DEVBROKER_REQUEST_MAX) {
                                fprintf(stderr,
                                        "ews-devbroker: --max-request-bytes "
                                        "takes 1000 to %d (a partition "
                                        "keeps %d)\n",
                                        DEVBROKER_REQUEST_MAX,
                                        DEVBROKER_PARTITION_BYTES);
                                return 2;
                        }
                        break;
                case 'r':
                        refuse = optarg;
                        break;
                case 'c':
                        control = optarg;
                        break;
                case 'h':
                        devbroker_usage(stdout);
                        return 0;
                default:
                        devbroker_usage(stderr);
                        return 2;
                }
        }

        if (optind < argc) {
                fprintf(stderr, "ews-devbroker: unexpected argument '%s'\n",
                        argv[optind]);
                return 2;
        }

        /* SIGTERM and SIGINT are blocked except while the main thread
         * waits (ppoll), so a stop is never missed between two waits; the
         * threads made from here on (librdkafka's, the forwarder's) inherit
         * the block and leave the signals to the main thread. */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = devbroker_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, &old_mask);
        wait_mask = old_mask;
        sigdelset(&wait_mask, SIGTERM);
        sigdelset(&wait_mask, SIGINT);

        /* The mock cluster needs a client handle to live in; a producer
         * that never produces is the lightest one. */
        /* The mock checks each request's size against this client's
         * receive.message.max.bytes: the only size limit it has. */
        snprintf(value, sizeof(value), "%ld", max_request);
        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
                    RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "receive.message.max.bytes", value, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "ews-devbroker: %s\n", errstr);
                goto out;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "ews-devbroker: %s\n", errstr);
                goto out;
        }
        conf = NULL; /* rd_kafka_new() took it */

        if (refuse && brokers == 1)
                brokers = 2; /* the refusing topic's own */
        mcluster = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mcluster) {
                fprintf(stderr, "ews-devbroker: cannot start mock cluster\n");
                goto out;
        }
        for (i = 0; i < topic_cnt; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                        mcluster, topics[i].name, topics[i].partitions,
                        brokers < 3 ? brokers : 3);
                if (err) {
                        fprintf(stderr, "ews-devbroker: topic %s: %s\n",
                                topics[i].name, rd_kafka_err2str(err));
                        goto out;
                }
        }

        if (refuse &&
            devbroker_refuse_produce(mcluster, topics, topic_cnt, brokers,
                                     refuse, errstr, sizeof(errstr))) {
                fprintf(stderr, "ews-devbroker: %s\n", errstr);
                goto out;
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        if (port) {
                if (devbroker_forward_start(port, bootstraps)) {
                        fprintf(stderr,
                                "ews-devbroker: cannot listen on "
                                "127.0.0.1:%d: %s\n",
                                port, strerror(errno));
                        goto out;
                }
                snprintf(fixed, sizeof(fixed), "127.0.0.1:%d", port);
                bootstraps = fixed;
        }
        if (control && (control_fd = devbroker_ctl_listen(control)) < 0) {
                fprintf(stderr, "ews-devbroker: cannot listen on %s: %s\n",
                        control, strerror(errno));
                goto out;
        }
        if (addr_file && devbroker_addr_write(addr_file, bootstraps)) {
                fprintf(stderr, "ews-devbroker: cannot write %s: %s\n",
                        addr_file, strerror(errno));
                goto out;
        }
        printf("%s\n", bootstraps);
        fflush(stdout);

        devbroker_ctl_serve(mcluster, brokers, control_fd, &devbroker_stop,
                            &wait_mask);
        rc = 0;

out:
        if (control_fd >= 0) {
                close(control_fd);
                unlink(control);
        }
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}
