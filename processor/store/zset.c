/* A commit's sorted-set writes (timers' hours, segments), gathered while
 * the commit is built and written at its end as one ZREM and one ZADD per
 * key with every member of the commit. Redis runs one command for many
 * members: the per-command cost (parsing it, looking the key up, the
 * transaction's bookkeeping) is paid once per key instead of once per
 * user. A commit writes each user once, so a member occurs at most once
 * per key and the order of the members within a key does not matter to
 * what Redis holds; they go in score order, ties as added, so a commit's
 * bytes are the same on every replay. */
#include "store/store_int.h"
#include "util/grow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_zops_add(struct store_zops *z, enum store_zkind kind, bool add,
                   int64_t key, double score, const char *member)
{
        struct store_zop *op;

        if (!ews_grow((void **)&z->ops, &z->cap, z->cnt + 1, sizeof(*z->ops)))
                return -1;
        op = &z->ops[z->cnt];
        op->key = key;
        op->score = score;
        op->member = member;
        op->seq = (uint32_t)z->cnt;
        op->at = 0;
        op->kind = (uint8_t)kind;
        op->add = add;
        z->cnt++;
        return 0;
}

int store_zops_add_copy(struct store_zops *z, enum store_zkind kind, bool add,
                        int64_t key, double score, const char *member)
{
        size_t len = strlen(member) + 1;

        if (z->used + len > UINT32_MAX ||
            !ews_grow((void **)&z->arena, &z->size, z->used + len, 1) ||
            store_zops_add(z, kind, add, key, score, NULL))
                return -1;
        memcpy(z->arena + z->used, member, len);
        z->ops[z->cnt - 1].at = (uint32_t)z->used;
        z->used += len;
        return 0;
}

static const char *zops_member(const struct store_zops *z,
                               const struct store_zop *op)
{
        return op->member ? op->member : z->arena + op->at;
}

/* By kind, then removals before additions, then key, then by score (a
 * sorted set's skiplist takes members in score order with fewer cache
 * misses: about 14% less of Redis' time for a segment's ZADD, measured),
 * then as added. */
static int zops_cmp(const void *a, const void *b)
{
        const struct store_zop *x = a, *y = b;

        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->add != y->add)
                return x->add ? 1 : -1;
        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        if (x->add && x->score != y->score)
                return x->score < y->score ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A segment's score in billionths, a whole number: it orders users whose
 * engagement differs by a billionth part as the nine decimal places an
 * earlier version wrote did, and Redis keeps a whole number in a small
 * set's listpack as an integer, compared without parsing text (a score
 * with a fraction is kept as text, and every insert into the set parses
 * each one it passes: about four times the CPU, measured). Below 9e6 the
 * score in billionths is exact; past it (a half-life of under about three
 * minutes) it is as near as a double goes. */
double store_segment_units(double v)
{
        double u = v * 1e9;

        if (isinf(v) || !(fabs(u) < 9e18))
                return isinf(v) ? v : u;
        return (double)llround(u);
}

size_t store_segment_text(double units, char *buf)
{
        if (isinf(units))
                return (size_t)snprintf(buf, 40, "%s",
                                        units > 0 ? "+inf" : "-inf");
        if (fabs(units) < 9e18)
                return (size_t)snprintf(buf, 40, "%lld", (long long)units);
        return (size_t)snprintf(buf, 40, "%.17g", units);
}

static int zops_score(struct store_resp *r, const struct store_zop *op)
{
        char buf[40];
        double u;

        if (op->kind != STORE_Z_SEGMENT)
                return store_resp_i64(r, (int64_t)op->score);
        u = store_segment_units(op->score);
        if (!isinf(u) && fabs(u) < 9e18)
                return store_resp_i64(r, (int64_t)u);
        return store_resp_arg(r, buf, store_segment_text(u, buf));
}

/* The run [from, to) of one kind, one key, one verb as one command. */
static int zops_run(const struct store_zops *z, size_t from, size_t to,
                    struct store_resp *r, store_zkey_fn *key, void *ctx)
{
        const struct store_zop *first = &z->ops[from];
        bool lt = first->add && first->kind == STORE_Z_QUEUE;
        size_t n = to - from, i;

        if (store_resp_cmd(r, (int)(2 + lt + (first->add ? 2 : 1) * n)) ||
            store_resp_str(r, first->add ? "ZADD" : "ZREM") ||
            key(ctx, r, (enum store_zkind)first->kind, first->key) ||
            (lt && store_resp_str(r, "LT")))
                return -1;
        for (i = from; i < to; i++)
                if ((first->add && zops_score(r, &z->ops[i])) ||
                    store_resp_str(r, zops_member(z, &z->ops[i])))
                        return -1;
        return 0;
}

int store_zops_write(struct store_zops *z, struct store_resp *r,
                     store_zkey_fn *key, void *ctx)
{
        size_t from = 0, i;

        if (z->cnt)
                qsort(z->ops, z->cnt, sizeof(*z->ops), zops_cmp);
        for (i = 1; i <= z->cnt; i++) {
                const struct store_zop *a = &z->ops[from];

                if (i < z->cnt && z->ops[i].kind == a->kind &&
                    z->ops[i].add == a->add && z->ops[i].key == a->key)
                        continue;
                if (zops_run(z, from, i, r, key, ctx))
                        return -1;
                from = i;
        }
        z->cnt = 0;
        return 0;
}

void store_zops_reset(struct store_zops *z)
{
        z->cnt = 0;
        z->used = 0;
}

void store_zops_free(struct store_zops *z)
{
        free(z->ops);
        free(z->arena);
        memset(z, 0, sizeof(*z));
}
