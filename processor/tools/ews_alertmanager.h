/*
 * ews-alertmanager's alerts as Prometheus Alertmanager sees them, apart from
 * how they are read from Kafka (ews_alertmanager.c).
 *
 * Alertmanager knows an alert by its label set. Each EWS episode (one
 * FIRING, then one RESOLVED, sharing episode_id) is one label set: the
 * rule, the subject and the episode id. So posting an alert id again
 * changes nothing but the alert's end, and the RESOLVED of an episode ends
 * the very alert its FIRING started.
 *
 * The memory: every episode this process knows, keyed by episode id, as
 * a JSON object:
 *   {"p": partition, "resolved": bool, "dirty": bool,
 *    "alert": {"labels": {...}, "annotations": {...}, "startsAt": "...",
 *              "endsAt": "..."}}
 * "alert" is what is posted. An active alert's endsAt is set anew on each
 * post (now + the hold); a resolved one keeps the RESOLVED's time. A dirty
 * entry waits to be posted. Once posted, a resolved entry drops its alert
 * and stays as a tombstone, so that a late copy of its FIRING (delivery is
 * at least once) cannot start the episode again.
 */
#ifndef EWS_ALERTMANAGER_H
#define EWS_ALERTMANAGER_H

#include "util/ews.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Alerts per POST: a body of a few hundred kilobytes. */
#define AM_POST_MAX       500
#define AM_MOD            "alertmanager"
#define AM_BACKOFF_MIN_MS 1000
#define AM_BACKOFF_MAX_MS 30000
#define AM_PARTITIONS_MAX 100000
#define AM_TOMBSTONES_MAX 100000

/* The bridge: one consumer, its memory and the state of its posts. */
struct am_bridge {
        const char *topic;
        rd_kafka_t *rk;
        struct ews_decoder *decoder;
        struct am_post *post;
        json_t *memory;     /* episode id -> entry (above) */
        json_t *dirty;      /* episode ids to post, in the order read */
        json_t *tombstones; /* resolved episode ids, oldest first */
        int partition_cnt;  /* room in the arrays below */
        int64_t *until;     /* by partition: rebuilding below it; -1 live */
        int64_t *done;      /* by partition: offset to store once posted */
        int rebuilding;     /* partitions still rebuilding */
        bool unstored;      /* an offset in done */
        int assign_gen, paused_gen;
        int64_t resend_ms, next_resend, next_try, backoff_ms, outage_since;
        int failures;
        int64_t read_cnt, posted_cnt, undecodable_cnt, rejected_cnt;
};

/* Set by SIGTERM and SIGINT, or when out of memory: the loop ends. */
extern volatile sig_atomic_t am_stop;

/* Reading (ews_alertmanager_kafka.c). */
int64_t am_clock_ms(clockid_t clock);
/* librdkafka's rebalance callback; opaque is the bridge. */
void am_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t *ps, void *opaque);
void am_pause(struct am_bridge *b, bool pause);
/* Stores the offsets in b->done, for the next auto commit. */
void am_store(struct am_bridge *b);
/* One message or partition end of the alert topic. */
void am_handle(struct am_bridge *b, const rd_kafka_message_t *m);

/* Posting (ews_alertmanager_post.c), now on the monotonic clock: the
 * alerts read since the last post; every active alert again. */
void am_flush(struct am_bridge *b, int64_t now);
void am_resend(struct am_bridge *b, int64_t now);

/* Folds alert (read from partition) into the memory. live: to be posted
 * (the entry is marked dirty and its episode id appended to b->dirty);
 * otherwise only remembered, as when the memory is rebuilt from the
 * topic's history. now_ms is the wall clock: a RESOLVED never ends in the
 * future. Returns 0, or -1 when out of memory. */
int am_memory_apply(struct am_bridge *b, const struct ews_alert *alert,
                    int32_t partition, bool live, int64_t now_ms);

/* Active episodes in the memory. */
size_t am_active_count(const struct am_bridge *b);

/* Sets endsAt of an active entry's alert to ends_ms; returns the alert
 * (borrowed from entry). */
json_t *am_entry_alert(json_t *entry, int64_t ends_ms);

/* Writes ms as 2026-01-05T09:30:00.000Z into buf (at least 32 bytes). */
void am_time_iso(int64_t ms, char *buf, size_t size);

enum am_post_result {
        AM_POST_OK = 0,   /* accepted */
        AM_POST_REJECTED, /* 400: some alerts refused; retrying won't help */
        AM_POST_FAILED    /* not reached, or not accepted: retry later */
};

struct am_post;

/* url: Alertmanager's base URL (http://127.0.0.1:9093); the alerts go to
 * <url>/api/v2/alerts. Returns NULL with errstr on error. */
struct am_post *am_post_new(const char *url, int64_t timeout_ms, char *errstr,
                            size_t errstr_size);
void am_post_destroy(struct am_post *post);

/* Posts alerts (a JSON array, borrowed). errstr says why on anything but
 * AM_POST_OK. */
enum am_post_result am_post_alerts(struct am_post *post, json_t *alerts,
                                   char *errstr, size_t errstr_size);

#endif
