/* The outboxes: what a commit writes for out_kafka, sending it after the
 * commit, deleting it once delivered, sending again what was not, parking
 * what Kafka refused for good. */
#include "pipeline/delivery.h"
#include "util/grow.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTBOX_SCAN_MAX   5000   /* records sent again per outbox and look */
#define OUTBOX_FAILED_MAX 100000 /* failed ids remembered */
#define HELD_LOG_MS       60000  /* a rule's held-back alerts: one line */

/* A record Kafka refused for good, to be parked at the next poll. */
struct delivery_park {
        struct ews_outbox_ref ref;
        char *id;
        enum ews_outbox_refusal refusal;
        char code[64];
        char text[256];
};

/* What a record that is an alert logs and counts once committed. */
struct delivery_note {
        bool alert;
        enum ews_rule rule;
        enum ews_alert_status status;
        char subject_id[EWS_ID_MAX];
        char reason[256];
};

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
        struct delivery_note *notes; /* one a record */
        size_t note_cap;
        /* held back (too old): per rule, the last line and the count
         * since */
        int64_t held_logged_ms[EWS_RULE_COUNT];
        int64_t held_since[EWS_RULE_COUNT];
        unsigned char *arena;
        size_t arena_used, arena_cap;
        /* outbox records delivered, to be deleted; failed, to be sent
         * again (the ids are ours) */
        struct ews_outbox_key *delivered;
        size_t delivered_cnt, delivered_cap;
        struct ews_outbox_key *failed;
        size_t failed_cnt, failed_cap;
        struct delivery_park *parks;
        size_t park_cnt, park_cap;
};

static void delivery_report(void *opaque, struct ews_outbox_ref ref,
                            const char *id,
                            const struct ews_out_kafka_error *error);

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
        free(d->notes);
        free(d->arena);
        delivery_keys_free(d->delivered, d->delivered_cnt);
        delivery_keys_free(d->failed, d->failed_cnt);
        for (size_t i = 0; i < d->park_cnt; i++)
                free(d->parks[i].id);
        free(d->parks);
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
                      sizeof(*d->view)) ||
            !ews_grow((void **)&d->notes, &d->note_cap, d->record_cnt + 1,
                      sizeof(*d->notes)))
                return false;
        if (!ews_grow((void **)&d->arena, &d->arena_cap, d->arena_used + size,
                      1))
                return false;
        len = ews_outbox_pack(entry, d->arena + d->arena_used, size);
        if (len < 0)
                return false;
        d->notes[d->record_cnt].alert = false;
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

static int64_t delivery_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days, hours or minutes, whichever is whole (3d, 72h, 90m), else ms. */
static void delivery_duration(char *buf, size_t size, int64_t ms)
{
        if (ms > 0 && ms % 86400000 == 0)
                snprintf(buf, size, "%lldd", (long long)(ms / 86400000));
        else if (ms > 0 && ms % 3600000 == 0)
                snprintf(buf, size, "%lldh", (long long)(ms / 3600000));
        else if (ms > 0 && ms % 60000 == 0)
                snprintf(buf, size, "%lldm", (long long)(ms / 60000));
        else
                snprintf(buf, size, "%lldms", (long long)ms);
}

/* A held-back alert is logged at info, at most once a rule a minute, with
 * how many of the rule were held back since the last line. */
static void delivery_log_held(struct ews_delivery *d,
                              const struct ews_alert *alert, int64_t now_ms)
{
        int64_t mono_ms = delivery_mono_ms(), *last;
        char age[32], max[32];

        d->held_since[alert->rule]++;
        last = &d->held_logged_ms[alert->rule];
        if (*last && mono_ms - *last < HELD_LOG_MS)
                return;
        snprintf(age, sizeof(age), "%.1fd",
                 (double)(now_ms - alert->event_time_ms) / 86400000.0);
        delivery_duration(max, sizeof(max), d->config->max_alert_age_ms);
        ews_info("alert",
                 "%s %s %s held back, not published: its event time is %s "
                 "old, older than time.max.alert.age (%s; time.mode event "
                 "publishes all); %lld %s alerts held back since the last "
                 "line (ews_alerts_suppressed_total)",
                 ews_rule_name(alert->rule),
                 ews_alert_status_name(alert->status), alert->subject_id, age,
                 max, (long long)d->held_since[alert->rule],
                 ews_rule_name(alert->rule));
        *last = mono_ms;
        d->held_since[alert->rule] = 0;
}

bool ews_delivery_alert_too_old(struct ews_delivery *d,
                                const struct ews_alert *alert, int64_t now_ms)
{
        int64_t max_age = d->config->max_alert_age_ms;

        if (d->event_time || max_age <= 0 ||
            alert->event_time_ms >= now_ms - max_age)
                return false;
        d->stats->alerts_too_old[alert->rule]++;
        delivery_log_held(d, alert, now_ms);
        return true;
}

bool ews_delivery_record_alert(struct ews_delivery *d,
                               const struct ews_alert *alert)
{
        struct ews_outbox_entry entry;
        struct delivery_note *note;
        char buf[8192], errstr[256];
        /* framed for its topic in the registry's wire format, if so set */
        int len = ews_decode_alert_encode_for(
                d->decoder, ews_config_rule_topic(d->config, alert->rule),
                alert, buf, sizeof(buf), errstr, sizeof(errstr));

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
        /* a rule routed to a topic of its own: the record keeps it */
        entry.topic = d->config->topic_rules[alert->rule];
        entry.topic_len = strlen(entry.topic);
        if (!ews_delivery_record_add(d, alert->alert_id, &entry))
                return false;
        note = &d->notes[d->record_cnt - 1];
        note->alert = true;
        note->rule = alert->rule;
        note->status = alert->status;
        snprintf(note->subject_id, sizeof(note->subject_id), "%s",
                 alert->subject_id);
        snprintf(note->reason, sizeof(note->reason), "%s", alert->reason);
        return true;
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

/* A record refused for good is parked at the next poll (out of memory: it
 * stays, is sent again at a full look, refused again, parked then). */
static void outbox_refused(struct ews_delivery *d, struct ews_outbox_ref ref,
                           const char *id,
                           const struct ews_out_kafka_error *error)
{
        struct delivery_park *park;

        if (!ews_grow((void **)&d->parks, &d->park_cap, d->park_cnt + 1,
                      sizeof(*d->parks)))
                return;
        park = &d->parks[d->park_cnt];
        park->ref = ref;
        park->refusal = error->refusal;
        snprintf(park->code, sizeof(park->code), "%s", error->code);
        snprintf(park->text, sizeof(park->text), "%s", error->text);
        if ((park->id = strdup(id)))
                d->park_cnt++;
}

static void outbox_failed(struct ews_delivery *d, struct ews_outbox_ref ref,
                          const char *id,
                          const struct ews_out_kafka_error *error)
{
        d->stats->outbox_failed++;
        if (error->permanent)
                outbox_refused(d, ref, id, error);
        else
                outbox_remember(d, ref, id);
}

/* True when the producer took the record. */
static bool outbox_send(struct ews_delivery *d, struct ews_outbox_ref ref,
                        const char *id, const unsigned char *data, size_t len)
{
        struct ews_out_kafka_error error;
        struct ews_outbox_entry entry;

        if (ews_outbox_unpack(&entry, data, len)) {
                /* never sendable: parked, to be looked at and dropped */
                memset(&error, 0, sizeof(error));
                error.permanent = true;
                error.refusal = EWS_REFUSED_INVALID;
                snprintf(error.code, sizeof(error.code), "EWS_MALFORMED");
                snprintf(error.text, sizeof(error.text),
                         "the outbox record cannot be read");
                ews_err("pipeline", "outbox record %s is malformed: parked",
                        id);
                outbox_failed(d, ref, id, &error);
                return false;
        }
        if (ews_out_kafka_send(d->out, ref, id, &entry, &error)) {
                outbox_failed(d, ref, id, &error);
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

        for (i = first; i < first + cnt && i < d->record_cnt; i++) {
                const struct delivery_note *note = &d->notes[i];

                /* committed to the outbox: it is published */
                if (note->alert) {
                        d->stats->alerts[note->rule][note->status]++;
                        ews_info("alert", "%s %s %s: %s",
                                 ews_rule_name(note->rule),
                                 ews_alert_status_name(note->status),
                                 note->subject_id, note->reason);
                }
                outbox_send(d, ref, d->records[i].id,
                            d->arena + (uintptr_t)d->records[i].data,
                            d->records[i].len);
        }
}

static void delivery_report(void *opaque, struct ews_outbox_ref ref,
                            const char *id,
                            const struct ews_out_kafka_error *error)
{
        struct ews_delivery *d = opaque;

        if (!error)
                outbox_key_add(&d->delivered, &d->delivered_cnt,
                               &d->delivered_cap, ref, id);
        else
                outbox_failed(d, ref, id, error); /* stays, or is parked */
}

static const char *delivery_outbox_name(const struct ews_delivery *d,
                                        struct ews_outbox_ref ref)
{
        return ref.source == EWS_OUTBOX_LEADER ? "leader"
                                               : d->config->topics[ref.source];
}

/* Moves the records refused for good to their outbox's parked records;
 * those the store could not take are tried again at the next poll. */
static void delivery_park(struct ews_delivery *d)
{
        struct timespec ts;
        enum ews_store_result result;
        char errstr[256];
        size_t i, kept = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        for (i = 0; i < d->park_cnt; i++) {
                struct delivery_park *p = &d->parks[i];

                result = ews_store_outbox_park(
                        d->store, p->ref, p->id,
                        (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                        p->code, p->text, errstr, sizeof(errstr));
                if (result == EWS_STORE_ERROR) {
                        ews_warn("pipeline", "outbox park: %s", errstr);
                        d->parks[kept++] = *p;
                        continue;
                }
                if (result == EWS_STORE_OK) {
                        d->stats->outbox_parked[p->refusal]++;
                        ews_err("pipeline",
                                "outbox %s [%d]: %s refused for good (%s: "
                                "%s): parked, not sent again; ews-inspect "
                                "outbox lists, retries or drops it",
                                delivery_outbox_name(d, p->ref),
                                (int)p->ref.partition, p->id, p->code, p->text);
                }
                free(p->id);
        }
        d->park_cnt = kept;
}

void ews_delivery_poll(struct ews_delivery *d)
{
        char errstr[256];
        size_t i, n;

        ews_out_kafka_poll(d->out);
        if (d->park_cnt)
                delivery_park(d);
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
                         delivery_outbox_name(d, ref), (int)ref.partition,
                         (long long)seen);
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

static int outbox_key_cmp(const void *a, const void *b)
{
        const struct ews_outbox_key *x = a, *y = b;

        if (x->ref.source != y->ref.source)
                return x->ref.source < y->ref.source ? -1 : 1;
        if (x->ref.partition != y->ref.partition)
                return x->ref.partition < y->ref.partition ? -1 : 1;
        return strcmp(x->id, y->id);
}

/* Sends the records that failed again, by id, each once however often it
 * failed since (a record failing at every look would otherwise be sent
 * once more each interval): the list is taken first, as a new failure
 * adds to it. Records no longer owned are left to their new owner, which
 * sends its outboxes when it claims them. */
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
        qsort(failed, cnt, sizeof(*failed), outbox_key_cmp);
        for (i = 0; i < cnt; i++) {
                if (owned(opaque, failed[i].ref) &&
                    (!kept || outbox_key_cmp(&failed[kept - 1], &failed[i])))
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
        if (ews_store_parked_len(d->store, keys, cnt, &total, errstr,
                                 sizeof(errstr)) == EWS_STORE_OK)
                d->stats->outbox_parked_records = total;
}
