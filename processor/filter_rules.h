/*
 * Stage 4, rules: decides alerts and timers from a user's state.
 *
 * Pure functions; the clock is passed in: watermark_ms is event time (what
 * decides), now_ms is the wall clock (only stamped on the alert as
 * emitted_at). What the rules decide is committed to the store together
 * with the scores, so a decision and its state never part.
 */
#ifndef EWS_FILTER_RULES_H
#define EWS_FILTER_RULES_H

#include "ews.h"

struct ews_rules_conf {
        int64_t inactivity_ms; /* USER_DISENGAGED after this much quiet */
        double half_life_ms;   /* the scoring model's, to report E at a time */
};

/* When the user's inactivity timer is due, in event time; 0 when no timer
 * is armed (not a trial user, never active, or an episode already open). */
int64_t ews_rules_user_deadline(const struct ews_rules_conf *conf,
                                const struct ews_user *user);

/* Called once the watermark has reached watermark_ms. Returns true and
 * fills alert when USER_DISENGAGED fires; marks the episode open in user. */
bool ews_rules_user_timer(const struct ews_rules_conf *conf,
                          struct ews_user *user, int64_t watermark_ms,
                          int64_t now_ms, struct ews_alert *alert);

/* Called after an event was applied to user. Returns true and fills alert
 * when it resolves an open USER_DISENGAGED episode. */
bool ews_rules_user_event(const struct ews_rules_conf *conf,
                          struct ews_user *user, bool activity,
                          int64_t event_ms, int64_t now_ms,
                          struct ews_alert *alert);

#endif
