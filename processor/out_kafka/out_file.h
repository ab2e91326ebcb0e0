/*
 * Internal to out_kafka: the replay sink. In replay mode (the conf's
 * file) no producer is made; each record goes to the file as one JSON line
 * instead and is reported delivered once the file was flushed, so the
 * outbox drains as it would against Kafka. The format, written here and
 * read back by ews_out_file_read():
 *
 *   {"id":ID,"kind":"alert","key":B64,"value":B64}
 *   {"id":ID,"kind":"dead_letter","key":B64,"value":B64,"reason":S,
 *    "detail":S,"source_topic":S,"partition":N,"offset":N,
 *    "timestamp_ms":N}
 *
 * with "topic":S added when the record names its topic (a rule routed to
 * a topic of its own). key and value are base64 (RFC 4648) of the bytes
 * Kafka would have been given (an alert: schemas/alert.avsc as
 * alerts.format says).
 */
#ifndef EWS_OUT_FILE_H
#define EWS_OUT_FILE_H

#include "out_kafka/out_kafka.h"

struct out_file;

/* Opens path for appending. NULL with errstr on error. */
struct out_file *out_file_new(const char *path, char *errstr,
                              size_t errstr_size);

/* Closes the file; records not reported yet are dropped (they stay in
 * their outbox). NULL is fine. */
void out_file_destroy(struct out_file *f);

/* Writes the record; it is reported at the next poll. 0, or -1 with
 * *error (never permanent) when it could not be written (it stays in the
 * outbox). */
int out_file_send(struct out_file *f, struct ews_outbox_ref ref, const char *id,
                  const struct ews_outbox_entry *entry,
                  struct ews_out_kafka_error *error);

/* Flushes the file, then reports every record written since the last
 * poll: delivered when the flush succeeded, failed otherwise. Counts into
 * stats. 0, or -1 when the flush failed. */
int out_file_poll(struct out_file *f, ews_out_kafka_delivered_fn delivered,
                  void *opaque, struct ews_out_kafka_stats *stats);

/* Records written and not yet reported. */
int64_t out_file_pending(const struct out_file *f);

#endif
