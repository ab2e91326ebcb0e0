/*
 * The leader: one instance, holder of a Redis lease, decides campaigns and
 * accounts. Their inputs are cohort days that commits fill, each count on
 * its own day; a day is closed, and decided, once the stored watermark of
 * every partition of both input topics has passed its end, so the
 * decisions do not depend on how the input is partitioned or batched, nor
 * on which instance leads. Its alerts go out through the outbox object,
 * in the leader's own outbox.
 */
#ifndef EWS_PIPELINE_LEADER_H
#define EWS_PIPELINE_LEADER_H

#include "pipeline/delivery.h"

struct ews_leader;

/* Borrows config, store, delivery and stats (counted into); they must
 * outlive it. Names itself after the host, the process and the clock.
 * NULL on error (errstr). */
struct ews_leader *ews_leader_new(const struct ews_config *config,
                                  struct ews_store *store,
                                  struct ews_delivery *delivery,
                                  struct ews_pipeline_stats *stats,
                                  char *errstr, size_t errstr_size);
/* NULL is fine. Does not give up the lease: ews_leader_release() does. */
void ews_leader_destroy(struct ews_leader *leader);

/* The leader's turn at now_ms (wall clock): takes or renews the lease,
 * then decides the closed days due. */
void ews_leader_cron(struct ews_leader *leader, int64_t now_ms);

/* Sends the leader's outbox again when it just took the lease, or when
 * look (a quiet periodic look) is set; nothing when it does not lead. */
void ews_leader_outbox_cron(struct ews_leader *leader, bool look);

/* True while this instance holds the lease. */
bool ews_leader_held(const struct ews_leader *leader);

/* True when it leads and its last turn decided every closed day due. */
bool ews_leader_caught_up(const struct ews_leader *leader);
/* True when it leads and its last turn stopped at its bound (ids per kind
 * a turn) with more closed days due, having decided some: another turn at
 * once decides more. */
bool ews_leader_behind(const struct ews_leader *leader);

/* Gives up the lease, if held. */
void ews_leader_release(struct ews_leader *leader);

#endif
