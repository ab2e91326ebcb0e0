/*
 * The store's value of one user: a packed, versioned binary record, about
 * a third of what a Redis hash of the same fields costs. No I/O: the store,
 * ews-inspect and the HTTP API all read it through here.
 *
 * Version 5, in order: u8 version, u8 stage, varint partition (of the
 * usage topic, the user's keys partition), varint events, varint
 * engagement_ref (ms), then stage_at, last_activity, trial_started,
 * activated, disengaged_since, disengaged_resolved, sales_ready_since,
 * sales_ready_resolved, matured each as a varint near engagement_ref (0
 * for 0, else 1 + zig-zag of the distance), u8 score flags, f64
 * engagement, f64 peak unless flag 1 (the same bits as engagement), f64
 * rule_peak unless flag 2 (the same bits as peak), fit as a zig-zag
 * varint with flag 4 (a whole number), else an f64, varint fit mask, str
 * account, str campaign, u8 n + n * (name, f64) reasons, the same for
 * interests, u8 n + n * u32 event-id hashes, then the store's bookkeeping
 * (struct ews_user_keep): the timer (varint 0 none, 1 not known, 2 and a
 * zig-zag varint distance from engagement_ref, 3 and a zig-zag varint
 * time), varint day, u8 member; then the activation progress (activation by
 * behaviour): varint met, u8 n + n * varint counts, u8 m + m * u32 product
 * hashes (3 bytes without progress); then u8 the funnel stages counted
 * (ews_user.funnel). A name is a varint: its id in the names
 * dictionary plus one, or 0 and the name itself as a str (a name the
 * dictionary does not hold yet, or will not: it is bounded).
 * Little-endian; a str is a u8 length and that many bytes. The user id is
 * the key, not the value.
 *
 * Version 4 is still read: after the times f64 rule_peak, f64 engagement,
 * f64 peak, f64 fit, the rest as version 5 (which saves 20-odd bytes a
 * typical user: its peaks are mostly E's, its fit a whole number).
 * Versions 1 to 3 are still read: each time a varint of its own, the fit
 * mask a u32, names always inline, no bookkeeping (read as timer not
 * known, day 0, not a member). Version 3 ends with the activation
 * progress, version 2 lacks it, version 1 also the fields from
 * disengaged_resolved to rule_peak. Before version 4 the funnel did not
 * count: what such a user had reached reads as counted, so the funnel
 * counts from the upgrade on, not the past again.
 */
#ifndef EWS_OUT_STORE_CODEC_H
#define EWS_OUT_STORE_CODEC_H

#include "util/ews.h"

#define EWS_USER_PACKED_VERSION 5
#define EWS_USER_PACKED_MAX     4096

/* The names dictionary (names.c): event types and products, each with an
 * id for life, so that a packed user holds a byte or two for a name. The
 * store keeps it in Redis and a copy here; ids below EWS_NAMES_MAX. */
#define EWS_NAMES_MAX 65536
struct ews_names;

/* NULL when out of memory. */
struct ews_names *ews_names_new(void);
void ews_names_destroy(struct ews_names *names);
/* The id of name, or -1 (names may be NULL). */
int32_t ews_names_id(const struct ews_names *names, const char *name);
/* The name of id, or NULL (names may be NULL). */
const char *ews_names_name(const struct ews_names *names, uint32_t id);
/* Records name as id: 0, or -1 when either already names another or out
 * of memory. */
int ews_names_put(struct ews_names *names, uint32_t id, const char *name);

/* Returns the length written to buf, or -1 when size is too small. A
 * name names does not hold (or names NULL) is written inline. */
int ews_user_pack(const struct ews_user *user, int32_t partition,
                  const struct ews_names *names, unsigned char *buf,
                  size_t size);

/* The same with keep in place of user->keep (a commit's new bookkeeping). */
int ews_user_pack_keep(const struct ews_user *user,
                       const struct ews_user_keep *keep, int32_t partition,
                       const struct ews_names *names, unsigned char *buf,
                       size_t size);

/* Fills user (but its user_id) and *partition from a packed value.
 * Returns 0; -1 when the value is malformed or of an unknown version;
 * EWS_USER_UNKNOWN_NAME when it names an id names does not hold (read the
 * dictionary again: another instance may have added it). */
#define EWS_USER_UNKNOWN_NAME (-2)
int ews_user_unpack(struct ews_user *user, int32_t *partition,
                    const struct ews_names *names, const unsigned char *buf,
                    size_t len);

#endif
