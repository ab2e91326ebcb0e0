/*
 * ews-devbroker: librdkafka's Kafka-protocol mock cluster in a process of
 * its own, the development and test broker.
 *
 * Real clients (kcat, consumer groups, idempotent producers) speak to it over
 * TCP on 127.0.0.1. Its limits are those of the mock: at most 5 MiB or 100k
 * message sets kept per partition (older data is dropped), transactions in
 * shape only, everything in memory. Nothing in the processor knows about it:
 * the processor only ever gets bootstrap.servers.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEVBROKER_TOPICS_MAX 64

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
                "                     [--addr-file PATH]\n"
                "Runs a Kafka-protocol mock cluster until SIGTERM or SIGINT.\n"
                "Prints the bootstrap address on stdout and, with "
                "--addr-file,\n"
                "writes it to PATH (atomically, once the topics exist).\n");
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

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"brokers", required_argument, NULL, 'n'},
                {"topic", required_argument, NULL, 't'},
                {"addr-file", required_argument, NULL, 'a'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        struct devbroker_topic topics[DEVBROKER_TOPICS_MAX];
        int topic_cnt = 0, brokers = 1, opt, i, rc = 1;
        const char *addr_file = NULL;
        char errstr[512];
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        const char *bootstraps;
        struct sigaction sa;

        while ((opt = getopt_long(argc, argv, "n:t:a:h", options, NULL)) !=
               -1) {
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
                case 'h':
                        devbroker_usage(stdout);
                        return 0;
                default:
                        devbroker_usage(stderr);
                        return 2;
                }
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = devbroker_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        /* The mock cluster needs a client handle to live in; a producer
         * that never produces is the lightest one. */
        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
                fprintf(stderr, "ews-devbroker: %s\n", errstr);
                goto out;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "ews-devbroker: %s\n", errstr);
                goto out;
        }
        conf = NULL; /* rd_kafka_new() took it */

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

        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        if (addr_file && devbroker_addr_write(addr_file, bootstraps)) {
                fprintf(stderr, "ews-devbroker: cannot write %s: %s\n",
                        addr_file, strerror(errno));
                goto out;
        }
        printf("%s\n", bootstraps);
        fflush(stdout);

        while (!devbroker_stop)
                pause();
        rc = 0;

out:
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}
