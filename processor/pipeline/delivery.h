/*
 * The outboxes, as one object: the records a commit writes for out_kafka
 * (packed into one arena), sending them after the commit, deleting them
 * once Kafka reported them delivered, sending again what was not, and
 * parking what Kafka refused for good (out of the outbox, counted, kept
 * for ews-inspect outbox to retry or drop). The
 * driver and the leader fill and send records through these functions;
 * what this instance owns is told by the caller, so that the outbox never
 * needs to know about partitions or the lease.
 */
#ifndef EWS_PIPELINE_DELIVERY_H
#define EWS_PIPELINE_DELIVERY_H

#include "pipeline/pipeline.h"

struct ews_delivery;

/* Whether this instance owns outbox ref now (its records may be sent). */
typedef bool (*ews_delivery_owned_fn)(void *opaque, struct ews_outbox_ref ref);

/* Borrows config, decoder, store, out and stats (counted into); they must
 * outlive it. Registers itself as out's delivery report callback. With
 * event_time no alert is too old to send. NULL on error (errstr). */
struct ews_delivery *
ews_delivery_new(const struct ews_config *config, struct ews_decoder *decoder,
                 struct ews_store *store, struct ews_out_kafka *out,
                 bool event_time, struct ews_pipeline_stats *stats,
                 char *errstr, size_t errstr_size);
/* Frees the records and the ids still remembered; NULL is fine. */
void ews_delivery_destroy(struct ews_delivery *delivery);

/* The records of the commits of a batch: reset once, then per commit
 * mark where its records start, add them, view them for the commit, and
 * send them (by mark and count) once it applied. */
void ews_delivery_records_reset(struct ews_delivery *delivery);
/* Adds a copy of entry as record id; false when out of memory. */
bool ews_delivery_record_add(struct ews_delivery *delivery, const char *id,
                             const struct ews_outbox_entry *entry);
/* Whether an alert is too old to publish at now_ms (counted, not sent). */
bool ews_delivery_alert_too_old(struct ews_delivery *delivery,
                                const struct ews_alert *alert, int64_t now_ms);
/* Encodes alert into the records; false on failure (logged). */
bool ews_delivery_record_alert(struct ews_delivery *delivery,
                               const struct ews_alert *alert);
/* Where the next record goes: a commit's records start there. */
size_t ews_delivery_records_mark(const struct ews_delivery *delivery);
/* The records from first on, with pointers valid until the next add;
 * *cnt their count. */
const struct ews_outbox_record *
ews_delivery_records_view(struct ews_delivery *delivery, size_t first,
                          size_t *cnt);
/* Sends cnt committed records from first as those of outbox ref. */
void ews_delivery_records_send(struct ews_delivery *delivery,
                               struct ews_outbox_ref ref, size_t first,
                               size_t cnt);

/* Polls the producer (delivery reports), deletes what was delivered and
 * parks what was refused for good (a store error: at the next poll). */
void ews_delivery_poll(struct ews_delivery *delivery);
/* Sends the records that failed again, by id, those owned still. */
void ews_delivery_retry_failed(struct ews_delivery *delivery,
                               ews_delivery_owned_fn owned, void *opaque);
/* True when nothing is in flight: a look at a whole outbox now cannot
 * send a record twice. */
bool ews_delivery_quiet(const struct ews_delivery *delivery);
/* Sends outbox ref's records again (a claim, a quiet periodic look). */
void ews_delivery_resend(struct ews_delivery *delivery,
                         struct ews_outbox_ref ref);
/* Measures what the outboxes of keys (ids NULL) hold, pending and parked,
 * into the stats. */
void ews_delivery_measure(struct ews_delivery *delivery,
                          const struct ews_outbox_key *keys, size_t cnt);

#endif
