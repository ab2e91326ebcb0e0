/*
 * Subjects' state as JSON, the same for ews-inspect and the HTTP API.
 * The caller owns (json_decref) what these return; NULL when out of memory.
 */
#ifndef EWS_STATE_JSON_H
#define EWS_STATE_JSON_H

#include <jansson.h>

#include "score/score.h"
#include "store/views.h"

/* half_life_ms decays the stored values to as_of_ms (0: as stored). */
json_t *ews_json_user(const struct ews_user *user, double half_life_ms,
                      int64_t as_of_ms);
json_t *ews_json_account(const struct ews_account *account);
json_t *ews_json_campaign(const struct ews_campaign *campaign);

/* How a campaign's trials stand against the activation definition: of
 * its trials (and of those matured), how many met each condition (by bit,
 * as ews_activation_met) and how many met the definition. */
struct ews_activation_tally {
        int64_t trials, mature;
        int64_t met[1 + EWS_ACTIVATION_MAX], met_mature[1 + EWS_ACTIVATION_MAX];
        int64_t all, all_mature;
};

/* Adds user if it is a trial of campaign_id. */
void ews_activation_tally_add(const struct ews_score_conf *conf,
                              struct ews_activation_tally *tally,
                              const char *campaign_id,
                              const struct ews_user *user);
json_t *ews_json_activation(const struct ews_score_conf *conf,
                            const struct ews_activation_tally *tally);

/* A funnel: users that reached each stage, rates of signups, step
 * conversions, medians (ms, null without any) and spend per activated
 * trial and per customer (null without any). */
json_t *ews_json_funnel(const struct ews_funnel *f);

/* A user of a segment: its E now (decayed to now_ms) and the stored
 * (E, t_ref) the segment is ordered by. */
json_t *ews_json_segment_user(const struct ews_user *user, double half_life_ms,
                              int64_t now_ms);

/* An alert with the fields of schemas/alert.avsc (times in ms). */
json_t *ews_json_alert(const struct ews_alert *alert);

/* An outbox record of the outbox named outbox (ews-inspect outbox):
 * outbox, state (pending or parked), id, kind (alert, dead_letter, or
 * unknown when it cannot be read), bytes (its value's), and when parked
 * code, error and parked (UTC, e.g. 2026-12-01T18:00:00.123Z; null when
 * unknown). */
json_t *ews_json_outbox_record(const char *outbox,
                               const struct ews_outbox_listed *record);

#endif
