/* The outboxes: what a commit writes for out_kafka, sending it after the
 * commit, deleting it once delivered, sending again what was not. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_SCAN_MAX   5000   /* records sent again per outbox and look */
#define OUTBOX_FAILED_MAX 100000 /* failed ids remembered */

void pipeline_records_reset(struct ews_pipeline *p)
{
        p->record_cnt = 0;
        p->arena_used = 0;
}

bool pipeline_record_add(struct ews_pipeline *p, const char *id,
                         const struct ews_outbox_entry *entry)
{
        size_t size = ews_outbox_size(entry);
        struct ews_outbox_record *r;
        int64_t len;

        if (!ews_grow((void **)&p->records, &p->record_cap, p->record_cnt + 1,
                      sizeof(*p->records)))
                return false;
        if (!ews_grow((void **)&p->arena, &p->arena_cap, p->arena_used + size,
                      1))
                return false;
        len = ews_outbox_pack(entry, p->arena + p->arena_used, size);
        if (len < 0)
                return false;
        r = &p->records[p->record_cnt++];
        snprintf(r->id, sizeof(r->id), "%s", id);
        /* an offset until the arena stops moving */
        r->data = (const unsigned char *)(uintptr_t)p->arena_used;
        r->len = (size_t)len;
        p->arena_used += (size_t)len;
        return true;
}

void pipeline_records_finish(struct ews_pipeline *p)
{
        size_t i;

        for (i = 0; i < p->record_cnt; i++)
                p->records[i].data = p->arena + (uintptr_t)p->records[i].data;
}

bool pipeline_alert_too_old(struct ews_pipeline *p,
                            const struct ews_alert *alert)
{
        int64_t max_age = p->config->max_alert_age_ms;

        if (p->time_mode == TIME_EVENT || max_age <= 0 ||
            alert->event_time_ms >= p->now_ms - max_age)
                return false;
        p->stats.alerts_too_old[alert->rule]++;
        ews_debug("alert", "%s: older than time.max.alert.age, not sent",
                  alert->alert_id);
        return true;
}

bool pipeline_record_alert(struct ews_pipeline *p,
                           const struct ews_alert *alert)
{
        struct ews_outbox_entry entry;
        char buf[8192], errstr[256];
        int len = ews_decode_alert_encode(p->decoder, alert, buf, sizeof(buf),
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
        return pipeline_record_add(p, alert->alert_id, &entry);
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
static void outbox_remember(struct ews_pipeline *p, struct ews_outbox_ref ref,
                            const char *id)
{
        if (p->failed_cnt < OUTBOX_FAILED_MAX)
                outbox_key_add(&p->failed, &p->failed_cnt, &p->failed_cap, ref,
                               id);
}

static void outbox_failed(struct ews_pipeline *p, struct ews_outbox_ref ref,
                          const char *id)
{
        p->stats.outbox_failed++;
        outbox_remember(p, ref, id);
}

/* True when the producer took the record. */
static bool outbox_send(struct ews_pipeline *p, struct ews_outbox_ref ref,
                        const char *id, const unsigned char *data, size_t len)
{
        struct ews_outbox_entry entry;

        if (ews_outbox_unpack(&entry, data, len)) {
                ews_err("pipeline",
                        "outbox record %s is malformed: left "
                        "where it is",
                        id);
                p->stats.outbox_failed++;
                return false;
        }
        if (ews_out_kafka_send(p->out, ref, id, &entry)) {
                outbox_failed(p, ref, id);
                return false;
        }
        p->stats.outbox_sent++;
        return true;
}

void pipeline_records_send(struct ews_pipeline *p, struct ews_outbox_ref ref)
{
        size_t i;

        for (i = 0; i < p->record_cnt; i++)
                outbox_send(p, ref, p->records[i].id, p->records[i].data,
                            p->records[i].len);
}

void pipeline_delivered(void *opaque, struct ews_outbox_ref ref, const char *id,
                        bool delivered)
{
        struct ews_pipeline *p = opaque;

        if (delivered)
                outbox_key_add(&p->delivered, &p->delivered_cnt,
                               &p->delivered_cap, ref, id);
        else
                outbox_failed(p, ref, id); /* stays in the outbox */
}

static void outbox_delete(struct ews_pipeline *p)
{
        char errstr[256];
        size_t i, n = p->delivered_cnt;

        if (!n)
                return;
        if (ews_store_outbox_delete(p->store, p->delivered, n, errstr,
                                    sizeof(errstr)) == EWS_STORE_OK)
                p->stats.outbox_deleted += (int64_t)n;
        else
                /* sent again later: a duplicate, never a loss */
                ews_warn("pipeline", "outbox delete: %s", errstr);
        for (i = 0; i < n; i++)
                free(p->delivered[i].id);
        p->delivered_cnt = 0;
}

struct outbox_scan {
        struct ews_pipeline *p;
        struct ews_outbox_ref ref;
};

static void outbox_scan_cb(void *opaque, const char *id,
                           const unsigned char *data, size_t len)
{
        struct outbox_scan *scan = opaque;

        if (outbox_send(scan->p, scan->ref, id, data, len))
                scan->p->stats.outbox_resent++;
}

void pipeline_outbox_resend(struct ews_pipeline *p, struct ews_outbox_ref ref)
{
        struct outbox_scan scan = {p, ref};
        char errstr[256];
        int64_t seen = 0;

        if (ews_store_outbox_scan(p->store, ref, OUTBOX_SCAN_MAX,
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
                                 : p->config->topics[ref.source],
                         (int)ref.partition, (long long)seen);
}

/* The records every outbox this instance owns holds, sent or not. */
static void outbox_measure(struct ews_pipeline *p)
{
        struct ews_outbox_key keys[EWS_SOURCE_COUNT * EWS_PARTITIONS_MAX + 1];
        size_t cnt = 0;
        int64_t total;
        char errstr[256];
        int s, i;

        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++)
                        if (p->parts[s][i].assigned && p->parts[s][i].claimed)
                                keys[cnt++] =
                                        (struct ews_outbox_key){{s, i}, NULL};
        if (p->leader.held)
                keys[cnt++] =
                        (struct ews_outbox_key){{EWS_OUTBOX_LEADER, 0}, NULL};
        if (ews_store_outbox_len(p->store, keys, cnt, &total, errstr,
                                 sizeof(errstr)) == EWS_STORE_OK)
                p->stats.outbox_pending = total;
}

static bool outbox_owned(const struct ews_pipeline *p,
                         struct ews_outbox_ref ref)
{
        const struct pipeline_part *part;

        if (ref.source == EWS_OUTBOX_LEADER)
                return p->leader.held;
        if (ref.source < 0 || ref.source >= EWS_SOURCE_COUNT ||
            ref.partition < 0 || ref.partition >= EWS_PARTITIONS_MAX)
                return false;
        part = &p->parts[ref.source][ref.partition];
        return part->assigned && part->claimed && !part->recovering;
}

struct outbox_retry {
        struct ews_pipeline *p;
        const struct ews_outbox_key *failed;
};

static void outbox_retry_cb(void *opaque, size_t i, const unsigned char *data,
                            size_t len)
{
        struct outbox_retry *retry = opaque;

        if (outbox_send(retry->p, retry->failed[i].ref, retry->failed[i].id,
                        data, len))
                retry->p->stats.outbox_resent++;
}

/* Sends the records that failed again, by id: the list is taken first, as
 * a new failure adds to it. Records no longer owned are left to their new
 * owner, which sends its outboxes when it claims them. */
static void outbox_retry_failed(struct ews_pipeline *p)
{
        struct ews_outbox_key *failed = p->failed;
        struct outbox_retry retry = {p, failed};
        size_t cnt = p->failed_cnt, kept = 0, i;
        char errstr[256];

        if (!cnt)
                return;
        p->failed = NULL;
        p->failed_cnt = p->failed_cap = 0;
        for (i = 0; i < cnt; i++) {
                if (outbox_owned(p, failed[i].ref))
                        failed[kept++] = failed[i];
                else
                        free(failed[i].id);
        }
        if (ews_store_outbox_get(p->store, failed, kept, outbox_retry_cb,
                                 &retry, errstr,
                                 sizeof(errstr)) != EWS_STORE_OK) {
                ews_warn("pipeline", "outbox: %s", errstr);
                /* tried again at the next look */
                for (i = 0; i < kept; i++)
                        outbox_remember(p, failed[i].ref, failed[i].id);
        }
        for (i = 0; i < kept; i++)
                free(failed[i].id);
        free(failed);
}

void pipeline_outbox_cron(struct ews_pipeline *p, bool periodic)
{
        struct ews_outbox_ref ref;
        bool quiet;
        int s, i;

        ews_out_kafka_poll(p->out);
        outbox_delete(p);
        if (periodic)
                outbox_retry_failed(p);
        /* In flight means its report is still to come: a look at a whole
         * outbox now would send it twice, so a full look waits for a
         * moment with nothing in flight. */
        quiet = ews_out_kafka_queue_len(p->out) == 0;
        for (s = 0; s < EWS_SOURCE_COUNT; s++)
                for (i = 0; i < EWS_PARTITIONS_MAX; i++) {
                        struct pipeline_part *part = &p->parts[s][i];

                        if (!part->assigned || !part->claimed ||
                            part->recovering || !periodic || !quiet)
                                continue;
                        ref.source = s;
                        ref.partition = i;
                        pipeline_outbox_resend(p, ref);
                }
        if (p->leader.held && (p->leader.resend || (periodic && quiet))) {
                p->leader.resend = false;
                ref.source = EWS_OUTBOX_LEADER;
                ref.partition = 0;
                pipeline_outbox_resend(p, ref);
        }
        outbox_measure(p);
}
