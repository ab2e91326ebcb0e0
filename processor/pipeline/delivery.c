/* The outboxes: what a commit writes for out_kafka, sending it after the
 * commit, deleting it once delivered, sending again what was not. */
#include "pipeline/delivery.h"
#include "util/grow.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_SCAN_MAX   5000   /* records sent again per outbox and look */
#define OUTBOX_FAILED_MAX 100000 /* failed ids remembered */

struct ews_delivery {
        const struct ews_config *config;
        struct ews_decoder *decoder;
        struct ews_store *store;
        struct ews_out_kafka *out;
        struct ews_pipeline_stats *stats;
        bool event_time;
        /* the outbox records of the commits of a batch: packed into one
         * arena, data an offset into it; view: one commit's, with
         * pointers */
        struct ews_outbox_record *records;
        size_t record_cnt, record_cap;
        struct ews_outbox_record *view;
        size_t view_cap;
        unsigned char *arena;
        size_t arena_used, arena_cap;
        /* outbox records delivered, to be deleted; failed, to be sent
         * again (the ids are ours) */
        struct ews_outbox_key *delivered;
        size_t delivered_cnt, delivered_cap;
        struct ews_outbox_key *failed;
        size_t failed_cnt, failed_cap;
};

static void delivery_report(void *opaque, struct ews_outbox_ref ref,
                            const char *id, bool delivered);

struct ews_delivery *
ews_delivery_new(const struct ews_config *config, struct ews_decoder *decoder,
                 struct ews_store *store, struct ews_out_kafka *out,
                 bool event_time, struct ews_pipeline_stats *stats,
                 char *errstr, size_t errstr_size)
{
        struct ews_delivery *d = calloc(1, sizeof(*d));

        if (!d) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        d->config = config;
        d->decoder = decoder;
        d->store = store;
        d->out = out;
        d->event_time = event_time;
        d->stats = stats;
        ews_out_kafka_set_delivered(out, delivery_report, d);
        return d;
}

static void delivery_keys_free(struct ews_outbox_key *keys, size_t cnt)
{
        for (size_t i = 0; i < cnt; i++)
                free(keys[i].id);
        free(keys);
}

void ews_delivery_destroy(struct ews_delivery *d)
{
        if (!d)
                return;
        free(d->records);
        free(d->view);
        free(d->arena);
        delivery_keys_free(d->delivered, d->delivered_cnt);
        delivery_keys_free(d->failed, d->failed_cnt);
        free(d);
}

bool ews_delivery_quiet(const struct ews_delivery *d)
{
        return ews_out_kafka_queue_len(d->out) == 0;
}

void ews_delivery_records_reset(struct ews_delivery *d)
{
        d->record_cnt = 0;
        d->arena_used = 0;
}

bool ews_delivery_record_add(struct ews_delivery *d, const char *id,
                             const struct ews_outbox_entry *entry)
{
        size_t size = ews_outbox_size(entry);
        struct ews_outbox_record *r;
        int64_t len;

        /* the view grows with the records: viewing never fails */
        if (!ews_grow((void **)&d->records, &d->record_cap, d->record_cnt + 1,
                      sizeof(*d->records)) ||
            !ews_grow((void **)&d->view, &d->view_cap, d->record_cnt + 1,
                      sizeof(*d->view)))
                return false;
        if (!ews_grow((void **)&d->arena, &d->arena_cap, d->arena_used + size,
                      1))
                return false;
        len = ews_outbox_pack(entry, d->arena + d->arena_used, size);
        if (len < 0)
                return false;
        r = &d->records[d->record_cnt++];
        snprintf(r->id, sizeof(r->id), "%s", id);
        /* an offset until the arena stops moving */
        r->data = (const unsigned char *)(uintptr_t)d->arena_used;
        r->len = (size_t)len;
        d->arena_used += (size_t)len;
        return true;
}

size_t ews_delivery_records_mark(const struct ews_delivery *d)
{
        return d->record_cnt;
}

/* The records keep their place in the arena as an offset (the arena moves
 * as it grows); a view gives them pointers, in an array as large as the
 * records'. */
const struct ews_outbox_record *
ews_delivery_records_view(struct ews_delivery *d, size_t first, size_t *cnt)
{
        size_t i;

        *cnt = first < d->record_cnt ? d->record_cnt - first : 0;
        for (i = 0; i < *cnt; i++) {
                d->view[i] = d->records[first + i];
                d->view[i].data =
                        d->arena + (uintptr_t)d->records[first + i].data;
        }
        return d->view;
}

bool ews_delivery_alert_too_old(struct ews_delivery *d,
                                const struct ews_alert *alert, int64_t now_ms)
{
        int64_t max_age = d->config->max_alert_age_ms;

        if (d->event_time || max_age <= 0 ||
            alert->event_time_ms >= now_ms - max_age)
                return false;
        d->stats->alerts_too_old[alert->rule]++;
        ews_debug("alert", "%s: older than time.max.alert.age, not sent",
                  alert->alert_id);
        return true;
}

bool ews_delivery_record_alert(struct ews_delivery *d,
                               const struct ews_alert *alert)
{
        struct ews_outbox_entry entry;
        char buf[8192], errstr[256];
        int len = ews_decode_alert_encode(d->decoder, alert, buf, sizeof(buf),
                                          errstr, sizeof(errstr));

        if (len < 0) {
                ews_err("pipeline", "%s: %s", alert->alert_id, errstr);
                return true; /* cannot be encoded: nothing to keep */
        }
        memset(&entry, 0, sizeof(entry));
        entry.kind = EWS_OUTBOX_ALERT;
        entry.key = alert->subject_id;
        entry.key_len = strlen(alert->subject_id);
        entry.value = buf;
        entry.value_len = (size_t)len;
        return ews_delivery_record_add(d, alert->alert_id, &entry);
}

/* Appends a copy of (ref, id) to a list of keys; out of memory, nothing. */
static void outbox_key_add(struct ews_outbox_key **keys, size_t *cnt,
                           size_t *cap, struct ews_outbox_ref ref,
                           const char *id)
{
        struct ews_outbox_key *k;

        if (!ews_grow((void **)keys, cap, *cnt + 1, sizeof(**keys)))
                return;
        k = &(*keys)[*cnt];
        k->ref = ref;
        if ((k->id = strdup(id)))
                (*cnt)++;
}

/* A record that did not go out is sent again, by id, at the next
 * periodic look, whatever else is in flight then. Past the cap (or out of
 * memory), the full look of a quiet moment finds it instead. */
static void outbox_remember(struct ews_delivery *d, struct ews_outbox_ref ref,
                            const char *id)
{
        if (d->failed_cnt < OUTBOX_FAILED_MAX)
                outbox_key_add(&d->failed, &d->failed_cnt, &d->failed_cap, ref,
                               id);
}

static void outbox_failed(struct ews_delivery *d, struct ews_outbox_ref ref,
                          const char *id)
{
        d->stats->outbox_failed++;
        outbox_remember(d, ref, id);
}

/* True when the producer took the record. */
static bool outbox_send(struct ews_delivery *d, struct ews_outbox_ref ref,
                        const char *id, const unsigned char *data, size_t len)
{
        struct ews_outbox_entry entry;

        if (ews_outbox_unpack(&entry, data, len)) {
                ews_err("pipeline",
                        "outbox record %s is malformed: left "
                        "where it is",
                        id);
                d->stats->outbox_failed++;
                return false;
        }
        if (ews_out_kafka_send(d->out, ref, id, &entry)) {
                outbox_failed(d, ref, id);
                return false;
        }
        d->stats->outbox_sent++;
        return true;
}

void ews_delivery_records_send(struct ews_delivery *d,
                               struct ews_outbox_ref ref, size_t first,
                               size_t cnt)
{
        size_t i;

        for (i = first; i < first + cnt && i < d->record_cnt; i++)
                outbox_send(d, ref, d->records[i].id,
                            d->arena + (uintptr_t)d->records[i].data,
                            d->records[i].len);
}

static void delivery_report(void *opaque, struct ews_outbox_ref ref,
                            const char *id, bool delivered)
{
        struct ews_delivery *d = opaque;

        if (delivered)
                outbox_key_add(&d->delivered, &d->delivered_cnt,
                               &d->delivered_cap, ref, id);
        else
                outbox_failed(d, ref, id); /* stays in the outbox */
}

void ews_delivery_poll(struct ews_delivery *d)
{
        char errstr[256];
        size_t i, n;

        ews_out_kafka_poll(d->out);
        n = d->delivered_cnt;
        if (!n)
                return;
        if (ews_store_outbox_delete(d->store, d->delivered, n, errstr,
                                    sizeof(errstr)) == EWS_STORE_OK)
                d->stats->outbox_deleted += (int64_t)n;
        else
                /* sent again later: a duplicate, never a loss */
                ews_warn("pipeline", "outbox delete: %s", errstr);
        for (i = 0; i < n; i++)
                free(d->delivered[i].id);
        d->delivered_cnt = 0;
}

struct outbox_scan {
        struct ews_delivery *d;
        struct ews_outbox_ref ref;
};

static void outbox_scan_cb(void *opaque, const char *id,
                           const unsigned char *data, size_t len)
{
        struct outbox_scan *scan = opaque;

        if (outbox_send(scan->d, scan->ref, id, data, len))
                scan->d->stats->outbox_resent++;
}

void ews_delivery_resend(struct ews_delivery *d, struct ews_outbox_ref ref)
{
        struct outbox_scan scan = {d, ref};
        char errstr[256];
        int64_t seen = 0;

        if (ews_store_outbox_scan(d->store, ref, OUTBOX_SCAN_MAX,
                                  outbox_scan_cb, &scan, &seen, errstr,
                                  sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("pipeline", "outbox scan: %s", errstr);
                return; /* the next periodic look tries again */
        }
        if (seen)
                ews_info("pipeline",
                         "outbox %s [%d]: %lld record(s) sent "
                         "again",
                         ref.source == EWS_OUTBOX_LEADER
                                 ? "leader"
                                 : d->config->topics[ref.source],
                         (int)ref.partition, (long long)seen);
}

struct outbox_retry {
        struct ews_delivery *d;
        const struct ews_outbox_key *failed;
};

static void outbox_retry_cb(void *opaque, size_t i, const unsigned char *data,
                            size_t len)
{
        struct outbox_retry *retry = opaque;

        if (outbox_send(retry->d, retry->failed[i].ref, retry->failed[i].id,
                        data, len))
                retry->d->stats->outbox_resent++;
}

/* Sends the records that failed again, by id: the list is taken first, as
 * a new failure adds to it. Records no longer owned are left to their new
 * owner, which sends its outboxes when it claims them. */
void ews_delivery_retry_failed(struct ews_delivery *d,
                               ews_delivery_owned_fn owned, void *opaque)
{
        struct ews_outbox_key *failed = d->failed;
        struct outbox_retry retry = {d, failed};
        size_t cnt = d->failed_cnt, kept = 0, i;
        char errstr[256];

        if (!cnt)
                return;
        d->failed = NULL;
        d->failed_cnt = d->failed_cap = 0;
        for (i = 0; i < cnt; i++) {
                if (owned(opaque, failed[i].ref))
                        failed[kept++] = failed[i];
                else
                        free(failed[i].id);
        }
        if (ews_store_outbox_get(d->store, failed, kept, outbox_retry_cb,
                                 &retry, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("pipeline", "outbox: %s", errstr);
                /* tried again at the next look */
                for (i = 0; i < kept; i++)
                        outbox_remember(d, failed[i].ref, failed[i].id);
        }
        for (i = 0; i < kept; i++)
                free(failed[i].id);
        free(failed);
}

void ews_delivery_measure(struct ews_delivery *d,
                          const struct ews_outbox_key *keys, size_t cnt)
{
        int64_t total;
        char errstr[256];

        if (ews_store_outbox_len(d->store, keys, cnt, &total, errstr,
                                 sizeof(errstr)) == EWS_STORE_OK)
                d->stats->outbox_pending = total;
}
