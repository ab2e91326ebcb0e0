/*
 * ews-devbroker's control channel: a line protocol on a Unix socket over
 * the mock cluster's fault API (librdkafka 2.0.2, rdkafka_mock.h), so that
 * a test can make the broker fail while real clients use it.
 *
 * One command a line, one answer a line: "ok", or "error <why>". The
 * commands (devbroker_ctl_help() prints them for --help):
 *
 *   ping
 *   errors API COUNT ERROR        the next COUNT requests of API, on any
 *                                 broker, answer ERROR
 *   broker-errors BROKER API COUNT ERROR [RTT_MS]
 *                                 the same on one broker (before the
 *                                 cluster's), each answer RTT_MS late
 *   clear API                     drops the cluster's errors left for API
 *   down BROKER|all, up BROKER|all
 *   rtt BROKER|all MS             every answer of the broker MS late
 *   leader TOPIC PARTITION BROKER
 *   coordinator group|transaction KEY BROKER
 *
 * API is a request name (Produce, Fetch, OffsetCommit, JoinGroup,
 * Heartbeat, ...) or its number; ERROR a librdkafka error name without its
 * RD_KAFKA_RESP_ERR_ prefix (NOT_COORDINATOR, _TRANSPORT: the connection is
 * closed) or its number. Brokers are numbered from 1.
 *
 * The mock's calls post to its own thread and wait, so the channel is
 * served from the main thread.
 */
#ifndef EWS_DEVBROKER_H
#define EWS_DEVBROKER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdio.h>
#include <stddef.h>

/* Listens on a Unix socket at path (a socket file left there by an earlier
 * run is replaced, any other file refused); the descriptor, or -1 with
 * errno set. */
int devbroker_ctl_listen(const char *path);

/* Serves control connections on listen_fd until *stop is set: waits with
 * ppoll() under waitmask, so a signal blocked outside it and unblocked in
 * it interrupts the wait. listen_fd -1: only waits. Borrows mcluster. */
void devbroker_ctl_serve(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                         int listen_fd, volatile sig_atomic_t *stop,
                         const sigset_t *waitmask);

/* Runs one command (line is changed: split into words) and writes its
 * answer, "ok" or "error <why>", without a newline, to reply. */
void devbroker_ctl_exec(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
                        char *line, char *reply, size_t reply_size);

/* The commands, for --help. */
void devbroker_ctl_help(FILE *fp);

#endif
