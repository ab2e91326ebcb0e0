/* A page of a segment, for the API and ews-inspect: never on the hot path.
 *
 * A segment is kept in STORE_SEGMENT_SHARDS sorted sets (store_int.h) and,
 * until it empties, the one set an earlier version kept it in. A page
 * merges them: each round reads the next few entries of every set in one
 * pipeline, and takes in order those no set could still precede (up to
 * the lowest last entry of the sets read to their limit); the next round
 * starts after them. The order is Redis' own: by score, ties by member's
 * bytes (both reversed for desc). A cursor is the set (E > 0 or E <= 0)
 * and the last entry a page looked at, as text: "<set>:<score>:<member>",
 * so a page starts after it whatever moved meanwhile. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/views.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_SETS  (STORE_SEGMENT_SHARDS + 1) /* the last: the old set */
#define SEGMENT_READ  8   /* entries of each set a round */
#define SEGMENT_CHUNK 256 /* users read at a time */
#define KEY_MAX       320 /* a user's key, a set's: prefix, id, stage */

struct segment_entry {
        double score;
        int set;
        char score_text[32];
        char member[EWS_ID_MAX];
};

/* Where a page is: after (score, member) of the set `part`. */
struct segment_pos {
        int part;
        bool set;
        double score;
        char score_text[32];
        char member[EWS_ID_MAX];
};

struct segment_read {
        struct ews_store *store;
        const struct ews_segment_query *q;
        int segment;
        struct segment_pos pos;
        struct segment_entry *e;
        size_t cnt;
        /* of the sets read to their limit, the one whose last entry is
         * lowest in the page's order: nothing after it is taken yet */
        bool bounded;
        struct segment_entry bound;
        /* sets whose read tied at the position: read on past it */
        bool ties[SEGMENT_SETS];
};

static int segment_cmp(const struct segment_entry *a, const char *b_member,
                       double b_score, bool desc)
{
        int c = a->score < b_score ? -1 : a->score > b_score ? 1 : 0;

        if (!c)
                c = strcmp(a->member, b_member);
        return desc ? -c : c;
}

static bool segment_after_pos(const struct segment_read *r,
                              const struct segment_entry *e)
{
        return !r->pos.set ||
               segment_cmp(e, r->pos.member, r->pos.score, r->q->desc) > 0;
}

static int segment_sort_asc(const void *a, const void *b)
{
        const struct segment_entry *y = b;

        return segment_cmp(a, y->member, y->score, false);
}

static int segment_sort_desc(const void *a, const void *b)
{
        const struct segment_entry *y = b;

        return segment_cmp(a, y->member, y->score, true);
}

int ews_store_segment_cursor_parse(const char *text, int *part, double *score,
                                   char *score_text, size_t score_text_size,
                                   char *member, size_t member_size)
{
        const char *a, *b;
        char *end;

        if (!text || (text[0] != '0' && text[0] != '1') || text[1] != ':')
                return -1;
        a = text + 2;
        if (!(b = strchr(a, ':')) || b == a ||
            (size_t)(b - a) >= score_text_size || !b[1] ||
            strlen(b + 1) >= member_size)
                return -1;
        memcpy(score_text, a, (size_t)(b - a));
        score_text[b - a] = '\0';
        *score = strtod(score_text, &end);
        if (*end || isnan(*score))
                return -1;
        *part = text[0] - '0';
        snprintf(member, member_size, "%s", b + 1);
        return 0;
}

/* ZRANGE of the set after the page's position, WITHSCORES, appended to the
 * connection's pipeline. */
static int segment_append(struct segment_read *r, int set, long offset)
{
        char key[sizeof(r->store->prefix) + 80], off[24], lim[24], old[40];
        const char *from =
                r->pos.set ? r->pos.score_text : (r->q->desc ? "+inf" : "-inf");
        const char *argv[10] = {
                "ZRANGE",     key,     from, r->q->desc ? "-inf" : "+inf",
                "BYSCORE",    "LIMIT", off,  lim,
                "WITHSCORES", "REV"};

        store_segment_key(r->store, r->segment,
                          set < STORE_SEGMENT_SHARDS ? set : -1, key,
                          sizeof(key));
        /* the old set holds the score itself: from a little before the
         * position (its entries are compared in units once read) */
        if (set == STORE_SEGMENT_SHARDS && r->pos.set && !isinf(r->pos.score)) {
                snprintf(old, sizeof(old), "%.17g",
                         r->pos.score / 1e9 + (r->q->desc ? 1e-6 : -1e-6));
                argv[2] = old;
        }
        snprintf(off, sizeof(off), "%ld", offset);
        snprintf(lim, sizeof(lim), "%d", SEGMENT_READ);
        return redisAppendCommandArgv(r->store->redis, r->q->desc ? 10 : 9,
                                      argv, NULL) == REDIS_OK
                       ? 0
                       : -1;
}

/* The reply of one set into the round's entries (those after the
 * position); -1 for a reply that is not one. */
static int segment_take(struct segment_read *r, int set, redisReply *reply)
{
        struct segment_entry *e = NULL;
        size_t i, after = 0;

        if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
                return -1;
        for (i = 0; i + 1 < reply->elements; i += 2) {
                const redisReply *m = reply->element[i],
                                 *s = reply->element[i + 1];
                char *end;

                if (m->type != REDIS_REPLY_STRING ||
                    s->type != REDIS_REPLY_STRING || m->len >= EWS_ID_MAX ||
                    s->len >= sizeof(e->score_text))
                        return -1;
                e = &r->e[r->cnt];
                memcpy(e->member, m->str, m->len);
                e->member[m->len] = '\0';
                memcpy(e->score_text, s->str, s->len);
                e->score_text[s->len] = '\0';
                e->score = strtod(e->score_text, &end);
                if (*end)
                        return -1;
                e->set = set;
                if (set == STORE_SEGMENT_SHARDS) { /* in units, as now */
                        e->score = store_segment_units(e->score);
                        store_segment_text(e->score, e->score_text);
                }
                if (!segment_after_pos(r, e))
                        continue;
                r->cnt++;
                after++;
        }
        /* read to its limit: the last entry bounds what may be taken (a
         * set read only up to the position reads on: segment_past_ties) */
        r->ties[set] = reply->elements == 2 * SEGMENT_READ && !after;
        if (reply->elements == 2 * SEGMENT_READ && after &&
            (!r->bounded ||
             segment_cmp(e, r->bound.member, r->bound.score, r->q->desc) < 0)) {
                r->bound = *e;
                r->bounded = true;
        }
        return 0;
}

/* The next reply of the pipeline, taken into the round as set's: 0, or
 * -1 when the connection failed or the reply is not one. */
static int segment_reply(struct segment_read *r, int set)
{
        redisReply *reply;
        int rc;

        if (redisGetReply(r->store->redis, (void **)&reply) != REDIS_OK ||
            !reply)
                return -1;
        rc = segment_take(r, set, reply);
        freeReplyObject(reply);
        return rc;
}

/* A set whose whole read tied at the position, at or before it: read on
 * until past it (ties of E = 0 in a set of E <= 0 are the case). */
static int segment_past_ties(struct segment_read *r, int set)
{
        long offset = 0;

        while (r->ties[set]) {
                offset += SEGMENT_READ;
                if (segment_append(r, set, offset) || segment_reply(r, set))
                        return -1;
        }
        return 0;
}

/* One round: the next entries of every set, sorted. */
static int segment_round(struct segment_read *r)
{
        int set;

        r->cnt = 0;
        r->bounded = false;
        for (set = 0; set < SEGMENT_SETS; set++)
                if (segment_append(r, set, 0))
                        return -1;
        for (set = 0; set < SEGMENT_SETS; set++)
                if (segment_reply(r, set))
                        return -1;
        /* after the pipeline's replies: no other command between them */
        for (set = 0; set < SEGMENT_SETS; set++)
                if (segment_past_ties(r, set))
                        return -1;
        qsort(r->e, r->cnt, sizeof(*r->e),
              r->q->desc ? segment_sort_desc : segment_sort_asc);
        return 0;
}

/* What a page does with an entry. */
enum segment_verdict {
        SEGMENT_SKIP,  /* not the user's entry now: passed over */
        SEGMENT_TAKE,  /* the user's: in the page if it matches */
        SEGMENT_SWEEP, /* passed over, and out of its set */
};

/* The entries of users that expired out of their sets, each only if its
 * user is still gone, atomically, as a commit may have brought it back
 * since the read; and the old set's entries that no longer stand
 * (nothing writes that set any more). Best effort: a failure leaves them
 * for the next read. The entries are those numbered idx[0..n) of the
 * chunk that starts at from; a user is gone when neither its bucket nor
 * an earlier version's key holds it (as store_user_take reads it). argv
 * has room for 5 * n + 3 arguments. */
static void segment_sweep(struct segment_read *r, size_t from,
                          const size_t *idx, size_t n, const char **argv)
{
        static const char script[] =
                "for i = 1, #ARGV, 2 do local k = 3 * (i - 1) / 2 "
                "if ARGV[i + 1] == '1' or "
                "(redis.call('HEXISTS', KEYS[k + 1], ARGV[i]) == 0 and "
                "redis.call('EXISTS', KEYS[k + 2]) == 0) then "
                "redis.call('ZREM', KEYS[k + 3], ARGV[i]) end end";
        char cnt[24], (*keys)[KEY_MAX] = calloc(3 * n, sizeof(*keys));
        redisReply *reply;
        size_t j;

        if (!n || !keys) {
                free(keys);
                return;
        }
        argv[0] = "EVAL";
        argv[1] = script;
        snprintf(cnt, sizeof(cnt), "%zu", 3 * n);
        argv[2] = cnt;
        for (j = 0; j < n; j++) {
                const struct segment_entry *e = &r->e[from + idx[j]];
                bool old = e->set == STORE_SEGMENT_SHARDS;

                store_user_key(r->store, store_user_bucket(e->member),
                               keys[3 * j], sizeof(keys[3 * j]));
                store_user_old_key(r->store, e->member, keys[3 * j + 1],
                                   sizeof(keys[3 * j + 1]));
                store_segment_key(r->store, r->segment, old ? -1 : e->set,
                                  keys[3 * j + 2], sizeof(keys[3 * j + 2]));
                argv[3 + 3 * j] = keys[3 * j];
                argv[4 + 3 * j] = keys[3 * j + 1];
                argv[5 + 3 * j] = keys[3 * j + 2];
                argv[3 + 3 * n + 2 * j] = e->member;
                argv[4 + 3 * n + 2 * j] = old ? "1" : "0";
        }
        reply = redisCommandArgv(r->store->redis, (int)(3 + 5 * n), argv, NULL);
        if (reply)
                freeReplyObject(reply);
        free(keys);
}

/* Whether an entry of the old set still stands for its user: written
 * since, the user has its entry in its shard and this one is stale. */
static bool segment_old_current(const struct segment_read *r,
                                const struct segment_entry *e,
                                const struct ews_user *u)
{
        return store_segment_units(ews_segment_score(
                       u->engagement, u->engagement_ref_ms,
                       r->store->conf.half_life_ms)) == e->score;
}

/* The entry's user (its value v) unpacked into u, and what to do. */
static enum segment_verdict segment_judge(struct segment_read *r,
                                          const struct segment_entry *e,
                                          const redisReply *v,
                                          struct ews_user *u)
{
        bool old = e->set == STORE_SEGMENT_SHARDS;
        int32_t partition;

        memset(u, 0, sizeof(*u));
        snprintf(u->user_id, sizeof(u->user_id), "%s", e->member);
        if (v->type != REDIS_REPLY_STRING)
                return SEGMENT_SWEEP; /* expired */
        if (store_unpack(r->store, u, &partition, (const unsigned char *)v->str,
                         v->len))
                return SEGMENT_SKIP;
        if (ews_segment_of(u) != r->segment ||
            (old && !segment_old_current(r, e, u)))
                return old ? SEGMENT_SWEEP : SEGMENT_SKIP;
        return SEGMENT_TAKE;
}

static bool segment_match(const struct ews_segment_query *q,
                          const struct ews_user *u)
{
        int i;

        if (q->campaign_id && q->campaign_id[0] &&
            strcmp(q->campaign_id, u->campaign_id))
                return false;
        if (q->account_id && q->account_id[0] &&
            strcmp(q->account_id, u->account_id))
                return false;
        if (!q->product || !q->product[0])
                return true;
        for (i = 0; i < u->interest_cnt; i++)
                if (!strcmp(q->product, u->interests[i].name))
                        return true;
        return false;
}

struct segment_out {
        struct ews_user *users;
        size_t max, cnt;
};

static void segment_pos_set(struct segment_read *r,
                            const struct segment_entry *e)
{
        r->pos.set = true;
        r->pos.score = e->score;
        memcpy(r->pos.score_text, e->score_text, sizeof(e->score_text));
        memcpy(r->pos.member, e->member, sizeof(e->member));
}

/* The users of entries [from, to), one pipelined round trip: each read's
 * reply into vals[i] (the caller frees them). 0, or -1 when the
 * connection failed. */
static int segment_values(struct segment_read *r, size_t from, size_t n,
                          redisReply **vals)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (store_user_append(r->store, r->e[from + i].member))
                        return -1;
        for (i = 0; i < n; i++)
                if (!(vals[i] = store_user_take(r->store)))
                        return -1;
        return 0;
}

/* Entries [from, to) of the round: their users read, those that belong
 * and match into out, the position moved past each looked at. */
static int segment_chunk(struct segment_read *r, size_t from, size_t to,
                         struct segment_out *out)
{
        size_t n = to - from, i, swept = 0;
        const char **argv = calloc(5 * n + 3, sizeof(*argv));
        redisReply **vals = calloc(n, sizeof(*vals));
        size_t *idx = calloc(n, sizeof(*idx));
        enum segment_verdict v;
        int rc = -1;

        if (!argv || !vals || !idx || segment_values(r, from, n, vals))
                goto out;
        for (i = 0; i < n && out->cnt < out->max; i++) {
                const struct segment_entry *e = &r->e[from + i];
                struct ews_user *u = &out->users[out->cnt];

                /* the old set's copy of the entry just looked at */
                if (!segment_after_pos(r, e))
                        continue;
                segment_pos_set(r, e);
                v = segment_judge(r, e, vals[i], u);
                if (v == SEGMENT_SWEEP)
                        idx[swept++] = i;
                if (v == SEGMENT_TAKE && segment_match(r->q, u))
                        out->cnt++;
        }
        segment_sweep(r, from, idx, swept, argv);
        rc = 0;
out:
        for (i = 0; vals && i < n; i++)
                if (vals[i])
                        freeReplyObject(vals[i]);
        free(vals);
        free(argv);
        free(idx);
        return rc;
}

/* The part of the page in one set (E > 0 or E <= 0): rounds until out is
 * full or the set ends. */
static int segment_part(struct segment_read *r, struct segment_out *out)
{
        size_t taken, from;

        for (;;) {
                if (segment_round(r))
                        return -1;
                /* what no set could still precede: up to the bound */
                for (taken = 0; taken < r->cnt && r->bounded &&
                                segment_cmp(&r->e[taken], r->bound.member,
                                            r->bound.score, r->q->desc) <= 0;
                     taken++)
                        ;
                if (!r->bounded)
                        taken = r->cnt;
                for (from = 0; from < taken && out->cnt < out->max;
                     from += SEGMENT_CHUNK)
                        if (segment_chunk(r, from,
                                          from + SEGMENT_CHUNK < taken
                                                  ? from + SEGMENT_CHUNK
                                                  : taken,
                                          out))
                                return -1;
                if (out->cnt == out->max || !r->bounded)
                        return 0;
                segment_pos_set(r, &r->bound);
        }
}

enum ews_store_result ews_store_segment(struct ews_store *store,
                                        const struct ews_segment_query *q,
                                        struct ews_user *users, size_t max,
                                        size_t *cnt, char *next, char *errstr,
                                        size_t errstr_size)
{
        /* ascending: E <= 0 first, then E > 0; descending the other way */
        int first = 2 * (int)q->stage + (q->desc ? 0 : 1);
        struct segment_out out = {users, max, 0};
        struct segment_read r = {.store = store, .q = q};
        enum ews_store_result rc = EWS_STORE_ERROR;

        *cnt = 0;
        next[0] = '\0';
        if (q->cursor && q->cursor[0] &&
            ews_store_segment_cursor_parse(
                    q->cursor, &r.pos.part, &r.pos.score, r.pos.score_text,
                    sizeof(r.pos.score_text), r.pos.member,
                    sizeof(r.pos.member))) {
                snprintf(errstr, errstr_size, "not a segment cursor: %s",
                         q->cursor);
                return EWS_STORE_REJECTED;
        }
        r.pos.set = q->cursor && q->cursor[0];
        r.e = calloc(SEGMENT_SETS * SEGMENT_READ, sizeof(*r.e));
        if (!r.e) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        if (store_connect(store, errstr, errstr_size))
                goto out;
        while (r.pos.part < 2) {
                r.segment = r.pos.part ? (first ^ 1) : first;
                if (segment_part(&r, &out)) {
                        store_fail(store, errstr, errstr_size, "segment");
                        goto out;
                }
                if (out.cnt == max)
                        break;
                r.pos.part++;
                r.pos.set = false;
        }
        *cnt = out.cnt;
        if (out.cnt == max && r.pos.set)
                snprintf(next, EWS_SEGMENT_CURSOR_MAX, "%d:%s:%s", r.pos.part,
                         r.pos.score_text, r.pos.member);
        rc = EWS_STORE_OK;
out:
        free(r.e);
        return rc;
}
