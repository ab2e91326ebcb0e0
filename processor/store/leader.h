/*
 * The store's side of the leader (leader.c, cohort.c, sweep.c): its
 * lease, the campaigns' and accounts' cohorts it decides once every
 * partition has passed a day, and the sweep of expired users. Kept apart
 * from store.h, the store's write path and subjects, so that the
 * pipeline's commit sees none of it.
 *
 * The lease is a key with a TTL holding "<owner> <token>"; each new holder
 * gets a larger token, and every decision is written only while its token
 * still holds the lease (scripts/cohort.lua), so a leader that lost it
 * writes nothing.
 */
#ifndef EWS_OUT_STORE_LEADER_H
#define EWS_OUT_STORE_LEADER_H

#include "store/store.h"

/* The leader's lease: takes it when free, renews it when owner holds it.
 * EWS_STORE_OK with *token the fencing token, EWS_STORE_HELD when another
 * holds it, EWS_STORE_ERROR. */
enum ews_store_result ews_store_lease(struct ews_store *store,
                                      const char *owner, int64_t ttl_ms,
                                      int64_t *token, char *errstr,
                                      size_t errstr_size);

/* Lets the lease go if owner holds it: EWS_STORE_OK (also when it did
 * not), or EWS_STORE_ERROR, which it logs as well. */
enum ews_store_result ews_store_lease_release(struct ews_store *store,
                                              const char *owner);

/* Ids queued for a decision by upto_day, at most max. */
enum ews_store_result
ews_store_cohort_due(struct ews_store *store, char kind, int64_t upto_day,
                     size_t max, void (*cb)(void *opaque, const char *id),
                     void *opaque, char *errstr, size_t errstr_size);

/* Whether a user whose last write's keep is keep has outlived the
 * retention at now_ms (wall clock): a retention and a day from its
 * write's day, as its key's expiry did. */
bool ews_store_user_expired(const struct ews_user_keep *keep,
                            int64_t retention_ms, int64_t now_ms);

/* Sweeps the next `buckets` (at most EWS_STORE_SWEEP_MAX) of the users'
 * buckets, from where the last sweep stopped: each expired user is
 * deleted unless written meanwhile; *removed counts them. At 12 users a
 * bucket (100,000 users), 16 buckets a second pass over all of them in
 * under nine minutes. EWS_STORE_OK or EWS_STORE_ERROR. */
#define EWS_STORE_SWEEP_MAX 64
enum ews_store_result ews_store_users_sweep(struct ews_store *store,
                                            int64_t now_ms, int buckets,
                                            int64_t *removed, char *errstr,
                                            size_t errstr_size);

#define EWS_COHORT_DAYS_MAX 128

/* A campaign's or account's cohort as the leader reads and writes it. */
struct ews_store_cohort {
        char kind;
        char id[EWS_ID_MAX];
        int day_cnt; /* ascending; days beyond the bound are left out */
        struct ews_cohort_day days[EWS_COHORT_DAYS_MAX];
        struct ews_campaign_rule_state campaign;
        struct ews_account_rule_state account;
        struct ews_campaign info; /* campaigns: c:<id> */
        bool decided; /* the leader's state (s:* or an account's s) was there */
        bool has_sums; /* with the decided signups and spend */
};

/* Reads cnt cohorts, each named by its kind and id (the rest is reset),
 * and each campaign's c:<id>, in one round trip: EWS_STORE_OK (an absent
 * cohort reads empty) or EWS_STORE_ERROR. */
enum ews_store_result ews_store_cohorts_get(struct ews_store *store,
                                            struct ews_store_cohort *cohorts,
                                            size_t cnt, char *errstr,
                                            size_t errstr_size);

/* One of the leader's decisions, as written: the cohort's state, its day
 * fields before drop_before_day deleted, its id queued again at the first
 * remaining day (not before next_day), its outbox records. The writes
 * borrow the cohort and the records. */
struct ews_store_cohort_write {
        const struct ews_store_cohort *cohort;
        int64_t drop_before_day, next_day;
        const struct ews_outbox_record *outbox;
        size_t outbox_cnt;
        /* set by ews_store_cohorts_commit: EWS_STORE_OK; EWS_STORE_GONE
         * when the cohort hash has expired (nothing written);
         * EWS_STORE_FENCED when token no longer holds the lease;
         * EWS_STORE_REJECTED when the script refused the data (logged);
         * EWS_STORE_ERROR when the outcome is unknown */
        enum ews_store_result result;
};

/* Writes cnt decisions in one round trip, each applied only if token
 * still holds the lease, and sets each one's result: EWS_STORE_OK when
 * every reply was read, EWS_STORE_ERROR (with errstr) when the connection
 * failed, the writes without a reply then EWS_STORE_ERROR. */
enum ews_store_result
ews_store_cohorts_commit(struct ews_store *store, const char *owner,
                         int64_t token, struct ews_store_cohort_write *writes,
                         size_t cnt, char *errstr, size_t errstr_size);

#endif
