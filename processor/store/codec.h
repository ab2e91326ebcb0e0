/*
 * The store's value of one user: a packed, versioned binary record, about
 * a third of what a Redis hash of the same fields costs. No I/O: the store,
 * ews-inspect and the HTTP API all read it through here.
 *
 * Version 3, in order: u8 version, u8 stage, varint partition (of the
 * usage topic, the user's keys partition), varint events, varints
 * stage_at, engagement_ref, last_activity, trial_started, activated,
 * disengaged_since, disengaged_resolved, sales_ready_since,
 * sales_ready_resolved, matured (ms), f64 rule_peak, f64 engagement, f64
 * peak, f64 fit, u32 fit mask, str account, str campaign, u8 n + n * (str
 * name, f64) reasons, the same for interests, u8 n + n * u32 event-id
 * hashes, then the activation progress (activation by behaviour):
 * varint met, u8 n + n * varint counts, u8 m + m * u32 product hashes
 * (3 + n + 4m bytes while the counts stay below 128). Little-endian; a str
 * is a u8 length and that many bytes. The user id is the key, not the
 * value. A user without activation progress (always, with the score-only
 * definition) is written as version 2: version 3 without that part, byte
 * for byte what earlier releases wrote. Version 4 is version 3 and a u8
 * of the funnel stages counted (ews_user.funnel), written when any is:
 * one byte per user that reached a stage. Version 1 (still read) also lacks
 * the fields from disengaged_resolved to rule_peak.
 */
#ifndef EWS_OUT_STORE_CODEC_H
#define EWS_OUT_STORE_CODEC_H

#include "util/ews.h"

#define EWS_USER_PACKED_VERSION 4
#define EWS_USER_PACKED_MAX     4096

/* Returns the length written to buf, or -1 when size is too small. */
int ews_user_pack(const struct ews_user *user, int32_t partition,
                  unsigned char *buf, size_t size);

/* Fills user (but its user_id) and *partition from a packed value.
 * Returns 0, or -1 when the value is malformed or of an unknown version. */
int ews_user_unpack(struct ews_user *user, int32_t *partition,
                    const unsigned char *buf, size_t len);

#endif
