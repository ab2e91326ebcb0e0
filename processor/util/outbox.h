/*
 * Outbox records: what out_kafka is to send, as the store keeps it until
 * Kafka acknowledged it. A commit writes its alerts and dead letters into
 * its partition's outbox (a Redis hash, field = the record's id) in the
 * same atomic call as the state, so a crash after the commit loses
 * nothing: the records are sent again from there.
 *
 * Packed as: version, kind, then key, value, and for dead letters the
 * reason, detail and source topic, each as a 4-byte little-endian length
 * and bytes, then the source partition, offset and timestamp as 8-byte
 * little-endian integers. Version 1 ends there. Version 2 adds the topic
 * the record goes to (4-byte length and bytes, not empty), for an alert of
 * a rule routed to a topic of its own (rules.<rule>.topic); a record
 * without one is written as version 1, which goes to the alert or
 * dead-letter topic. Both versions are read.
 */
#ifndef EWS_OUTBOX_H
#define EWS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

enum ews_outbox_kind {
        EWS_OUTBOX_ALERT = 1,
        EWS_OUTBOX_DEAD = 2
};

/* Where an outbox lives: a partition of an input topic, or the leader's. */
struct ews_outbox_ref {
        int source; /* enum ews_source, or EWS_OUTBOX_LEADER */
        int32_t partition;
};
#define EWS_OUTBOX_LEADER (-1)

/* One record of one outbox; id NULL: the outbox as a whole. */
struct ews_outbox_key {
        struct ews_outbox_ref ref;
        char *id;
};

#define EWS_OUTBOX_ID_MAX 320

/* The pointers borrow: from the caller's buffers when packing, from the
 * packed bytes after unpacking. */
struct ews_outbox_entry {
        enum ews_outbox_kind kind;
        const void *key;
        size_t key_len;
        const void *value;
        size_t value_len;
        const char *reason; /* dead letters: a stable metric label */
        size_t reason_len;
        const char *detail;
        size_t detail_len;
        const char *source_topic;
        size_t source_topic_len;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms;
        const char *topic; /* where it goes; empty: by kind (version 1) */
        size_t topic_len;
};

/* Why Kafka refused a record for good: sending it again as it is fails
 * again, so it is parked (out of its outbox, kept until retried or
 * dropped by hand) rather than sent again. */
enum ews_outbox_refusal {
        EWS_REFUSED_TOO_LARGE, /* larger than the topic or producer takes */
        EWS_REFUSED_INVALID,   /* a record the broker finds invalid */
        EWS_REFUSED_NOT_AUTHORIZED, /* topic or cluster authorization */
        EWS_REFUSAL_COUNT
};

/* The refusal's metric label: too_large, invalid_record, not_authorized. */
const char *ews_outbox_refusal_name(enum ews_outbox_refusal refusal);

/* Bytes ews_outbox_pack() writes for entry. */
size_t ews_outbox_size(const struct ews_outbox_entry *entry);

/* Packs entry into buf; returns the length, or -1 when size is short. */
int64_t ews_outbox_pack(const struct ews_outbox_entry *entry,
                        unsigned char *buf, size_t size);

/* Unpacks; entry's pointers point into buf. 0, or -1 when malformed. */
int ews_outbox_unpack(struct ews_outbox_entry *entry, const unsigned char *buf,
                      size_t len);

#endif
