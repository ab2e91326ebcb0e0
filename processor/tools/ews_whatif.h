/*
 * ews-whatif: what would another configuration have raised? The same
 * history (the input topics up to their ends as of the start) is replayed
 * in event time through the live configuration (A) and through the other
 * (B), each by an ews-processor child of its own (--exit-at-end, fixed
 * --end-offsets, --alerts-file): its own Redis key prefix
 * (<prefix>whatif:<pid>:a:, :b:) deleted afterwards, its own consumer
 * group committing nothing, its alerts and dead letters written to a file
 * of its own instead of Kafka. The two sets of alerts are then compared
 * by alert id (ids are deterministic: the same episode has the same id).
 *
 * ews_whatif.c: the command line and the order of things;
 * ews_whatif_run.c: the history's ends, the replays, the cleanup;
 * ews_whatif_diff.c: reading the replays' alerts and comparing them;
 * ews_whatif_report.c: the report, for people or as JSON.
 */
#ifndef EWS_WHATIF_H
#define EWS_WHATIF_H

#include "ops/config.h"
#include "util/ews.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WI_SIDES 2 /* A: the live configuration, B: the other */

/* Set by SIGINT and SIGTERM: the running replay is stopped, its keys
 * deleted, and the tool exits 1. */
extern volatile sig_atomic_t wi_stop;

/* One input partition of the history: [low, end) is replayed. */
struct wi_partition {
        int64_t low, end;
};

/* The history both replays read: every partition of both input topics,
 * to its end as of the start. */
struct wi_history {
        int partition_cnt[EWS_SOURCE_COUNT];
        struct wi_partition *partitions[EWS_SOURCE_COUNT];
        int64_t events[EWS_SOURCE_COUNT]; /* messages in the ranges */
};

/* One replay: a configuration, its scratch prefix, group and file. */
struct wi_replay {
        char name;               /* 'a' or 'b' */
        const char *config_path; /* NULL: the defaults */
        const struct ews_config *config;
        char prefix[64]; /* redis.prefix of the replay */
        char group[256]; /* kafka.group.id of the replay */
        char file[4096]; /* its alerts and dead letters */
        char log[4096];  /* its stdout and stderr */
        double seconds;  /* how long it took */
        int64_t keys_deleted;
        /* per partition, the next offset its replay would have applied
         * (-1: none applied): the two replays must agree */
        int64_t applied[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX];
};

/* What the replays run: the processor binary and the -X properties. */
struct wi_run_opts {
        const char *processor;
        int prop_cnt;
        const char *const *props;
};

/* The history's ends, from the broker of config (its -X properties
 * applied). 0, or -1 with errstr. wi_history_free() frees. */
int wi_history_read(struct wi_history *h, const struct ews_config *config,
                    char *errstr, size_t errstr_size);
void wi_history_free(struct wi_history *h);

/* Names r's prefix, group, file and log (created empty) for this
 * process. 0, or -1 with errstr (a prefix too long for redis.prefix, the
 * files). */
int wi_replay_prepare(struct wi_replay *r, const struct ews_config *live,
                      char *errstr, size_t errstr_size);

/* Runs r's replay of h to its end and checks it read all of h and wrote
 * every record to its file; its keys are deleted in any case. 0, or -1
 * with errstr (failed, or stopped by wi_stop; the end of its log is
 * printed to stderr). */
int wi_replay_run(struct wi_replay *r, const struct wi_history *h,
                  const struct wi_run_opts *opts, char *errstr,
                  size_t errstr_size);

/* Deletes every key under r's prefix; 0, or -1 with errstr. */
int wi_replay_clean(struct wi_replay *r, char *errstr, size_t errstr_size);

/* One alert of a replay, as far as the comparison needs it. */
struct wi_alert {
        char *id;       /* alert_id */
        char *subject;  /* subject_id */
        char *campaign; /* the campaign's id (a campaign's own), "" none */
        enum ews_rule rule;
        enum ews_alert_status status;
        int64_t t_ms; /* event time */
};

/* One replay's alerts in [from_ms, to_ms), unique by id, sorted by id. */
struct wi_alerts {
        struct wi_alert *v;
        size_t cnt, cap;
        int64_t dead_letters;
};

/* Reads a replay's file: alerts decoded with decoder, repeated ids (an
 * outbox sends at least once) kept once. 0, or -1 with errstr. */
struct ews_decoder;
int wi_alerts_read(struct wi_alerts *alerts, const char *path,
                   struct ews_decoder *decoder, int64_t from_ms, int64_t to_ms,
                   char *errstr, size_t errstr_size);
void wi_alerts_free(struct wi_alerts *alerts);

/* An alert id under A, B or both. */
struct wi_pair {
        const struct wi_alert *side[WI_SIDES]; /* NULL: not under it */
};

/* A subject's first FIRING of a rule under each side (0: none). */
struct wi_first {
        enum ews_rule rule;
        const char *subject, *campaign;
        int64_t at[WI_SIDES];
};

/* The comparison; borrows the alerts. */
struct wi_diff {
        struct wi_pair *pairs; /* by rule, campaign, status, id */
        size_t pair_cnt;
        size_t only[WI_SIDES], both;
        struct wi_first *firsts; /* by rule, subject: those that differ,
                                  * and every campaign flagged */
        size_t first_cnt;
};

/* 0, or -1 when out of memory. wi_diff_free() frees. */
int wi_diff_make(struct wi_diff *d, const struct wi_alerts *a,
                 const struct wi_alerts *b);
void wi_diff_free(struct wi_diff *d);

/* Everything the report shows. */
struct wi_report {
        const struct wi_replay *replays[WI_SIDES];
        const struct wi_history *history;
        const struct ews_config *config;
        const struct wi_alerts *alerts[WI_SIDES];
        const struct wi_diff *diff;
        int64_t from_ms, to_ms; /* 0: open */
        int list;               /* ids listed per line (text), 0: all */
};

/* 0, or -1 when writing failed. */
int wi_report_text(const struct wi_report *r, FILE *fp);
int wi_report_json(const struct wi_report *r, FILE *fp);

/* A time as 2026-01-05T09:30:00Z, into buf. */
void wi_time_iso(int64_t ms, char *buf, size_t size);

#endif
