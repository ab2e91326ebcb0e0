/* The partitions' state machine, driven through fake store and consumer
 * calls: claims, recovery (a lost fence, a fence behind), the registry
 * backoff and pauses, the iterator, reconnects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pipeline/partitions.h"

#define U EWS_SOURCE_USAGE
#define C EWS_SOURCE_CAMPAIGN

struct fake {
        bool claim_ok;
        struct ews_fence fence; /* what a claim reads */
        int claims;
        int64_t fence_read; /* what a read without claim sees */
        int seeks;
        int64_t seek_offset;
        int seek_rc;
        int pauses, resumes;
        int pause_rc;
        int resends;
};

struct env {
        struct ews_config config;
        struct ews_pipeline_stats stats;
        struct fake fake;
        struct ews_partitions *parts;
};

static bool fake_claim(void *opaque, enum ews_source source, int32_t partition,
                       struct ews_fence *fence, char *errstr,
                       size_t errstr_size)
{
        struct fake *f = opaque;

        (void)source;
        (void)partition;
        f->claims++;
        if (!f->claim_ok) {
                snprintf(errstr, errstr_size, "store down");
                return false;
        }
        f->fence.epoch++;
        *fence = f->fence;
        return true;
}

static bool fake_fence_read(void *opaque, enum ews_source source,
                            int32_t partition, int64_t *next_offset,
                            char *errstr, size_t errstr_size)
{
        struct fake *f = opaque;

        (void)source;
        (void)partition;
        (void)errstr;
        (void)errstr_size;
        *next_offset = f->fence_read;
        return true;
}

static int fake_seek(void *opaque, enum ews_source source, int32_t partition,
                     int64_t offset)
{
        struct fake *f = opaque;

        (void)source;
        (void)partition;
        f->seeks++;
        f->seek_offset = offset;
        return f->seek_rc;
}

static int fake_pause(void *opaque, enum ews_source source, int32_t partition,
                      bool pause)
{
        struct fake *f = opaque;

        (void)source;
        (void)partition;
        if (f->pause_rc)
                return f->pause_rc;
        if (pause)
                f->pauses++;
        else
                f->resumes++;
        return 0;
}

static void fake_claimed(void *opaque, enum ews_source source,
                         int32_t partition)
{
        struct fake *f = opaque;

        (void)source;
        (void)partition;
        f->resends++;
}

static int setup(void **state)
{
        static struct env env;
        struct ews_partitions_io io = {fake_claim, fake_fence_read, fake_seek,
                                       fake_pause, fake_claimed,    &env.fake};
        char errstr[256];

        memset(&env, 0, sizeof(env));
        ews_config_defaults(&env.config);
        env.fake.claim_ok = true;
        env.fake.fence.next_offset = -1;
        env.parts = ews_partitions_new(&env.config, &io, &env.stats, errstr,
                                       sizeof(errstr));
        assert_non_null(env.parts);
        *state = &env;
        return 0;
}

static int teardown(void **state)
{
        struct env *env = *state;

        ews_partitions_destroy(env->parts);
        ews_partitions_destroy(NULL);
        return 0;
}

static void test_claim_at_fence(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part;
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = 100;
        env->fake.fence.watermark_ms = 5000;
        ews_partitions_assigned(env->parts, U, 3, 90, &offset);
        part = ews_partitions_get(env->parts, U, 3);
        assert_int_equal(offset, 100);
        assert_true(part->assigned && part->claimed && part->worked);
        assert_false(part->recovering);
        assert_int_equal(part->epoch, 1);
        assert_int_equal(part->watermark_ms, 5000);
        assert_int_equal(env->fake.resends, 1); /* its outbox went out */
}

static void test_claim_new_partition(void **state)
{
        struct env *env = *state;
        int64_t offset = EWS_OFFSET_DEFAULT;

        /* no fence, the group never committed: where the consumer is */
        ews_partitions_assigned(env->parts, U, 0, -1, &offset);
        assert_int_equal(offset, EWS_OFFSET_DEFAULT);
        assert_int_equal(env->stats.fences_lost, 0);
}

static void test_claim_fence_lost(void **state)
{
        struct env *env = *state;
        int64_t offset = EWS_OFFSET_DEFAULT;

        /* no fence, though the group committed: it was lost */
        ews_partitions_assigned(env->parts, U, 0, 50, &offset);
        assert_int_equal(offset, EWS_OFFSET_BEGINNING);
        assert_int_equal(env->stats.fences_lost, 1);
}

static void test_recover_fence_lost(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 2);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = 10;
        ews_partitions_assigned(env->parts, U, 2, -1, &offset);
        ews_partitions_committed(env->parts, U, 2, 20, 7000, 8000);
        assert_int_equal(part->next_offset, 20);
        /* Redis lost the fence: back to the first offset the broker has */
        env->fake.fence.next_offset = -1;
        ews_partitions_recover(env->parts, U, 2, 15);
        assert_int_equal(env->fake.seek_offset, EWS_OFFSET_BEGINNING);
        assert_false(part->recovering);
        assert_int_equal(env->stats.fences_lost, 1);
}

static void test_fence_behind_seeks_back(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, C, 1);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = 100;
        ews_partitions_assigned(env->parts, C, 1, 100, &offset);
        ews_partitions_committed(env->parts, C, 1, 150, 0, 1000);
        env->fake.fence_read = 150;
        assert_true(ews_partitions_fences_current(env->parts));
        /* the store went back to 120: replay from there */
        env->fake.fence_read = 120;
        env->fake.fence.next_offset = 120;
        assert_false(ews_partitions_fences_current(env->parts));
        assert_int_equal(env->fake.seek_offset, 120);
        assert_int_equal(part->next_offset, 120);
        assert_false(part->recovering);
        assert_false(ews_partitions_recovering(env->parts));
}

static void test_claim_fails_then_cron(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 4);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.claim_ok = false;
        ews_partitions_assigned(env->parts, U, 4, 30, &offset);
        assert_int_equal(offset, EWS_OFFSET_DEFAULT);
        assert_true(part->recovering);
        assert_true(ews_partitions_recovering(env->parts));
        assert_int_equal(env->stats.store_errors, 1);
        /* still down: paused until a claim works */
        ews_partitions_cron(env->parts, 0);
        assert_true(part->paused);
        assert_int_equal(env->fake.pauses, 1);
        env->fake.claim_ok = true;
        env->fake.fence.next_offset = 40;
        ews_partitions_cron(env->parts, 0);
        assert_int_equal(env->fake.seek_offset, 40);
        assert_false(part->paused);
        assert_false(part->recovering);
        assert_int_equal(env->fake.resumes, 1);
}

static void test_block_and_retry(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 5);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = 200;
        ews_partitions_assigned(env->parts, U, 5, 200, &offset);
        ews_partitions_wait(env->parts, U, 5, 210);
        ews_partitions_block(env->parts, U, 5, 1000);
        assert_int_equal(env->fake.seek_offset, 210);
        assert_true(part->paused && part->blocked);
        assert_int_equal(part->retry_at_ms, 2000);
        assert_true(ews_partitions_recovering(env->parts));
        ews_partitions_cron(env->parts, 1500);
        assert_true(part->paused);
        ews_partitions_cron(env->parts, 2000);
        assert_false(part->paused || part->blocked);
        /* the registry is still down: twice as long */
        ews_partitions_wait(env->parts, U, 5, 210);
        ews_partitions_block(env->parts, U, 5, 3000);
        assert_int_equal(part->retry_at_ms, 5000);
        ews_partitions_cron(env->parts, 5000);
        ews_partitions_registry_ok(env->parts, U, 5);
        ews_partitions_wait(env->parts, U, 5, 300);
        ews_partitions_block(env->parts, U, 5, 6000);
        assert_int_equal(part->retry_at_ms, 7000);
}

static void test_block_cannot_pause(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 6);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = -1;
        ews_partitions_assigned(env->parts, U, 6, -1, &offset);
        ews_partitions_wait(env->parts, U, 6, 77);
        env->fake.pause_rc = -1;
        ews_partitions_block(env->parts, U, 6, 0);
        /* back to the fence instead: none, so to the waiting message */
        assert_false(part->blocked);
        assert_int_equal(env->fake.seek_offset, 77);
        assert_false(part->recovering);
}

static void test_iterator_and_revoke(void **state)
{
        struct env *env = *state;
        struct ews_partitions_iter it = EWS_PARTITIONS_ITER_INIT;
        struct pipeline_part *part;
        int64_t offset;

        ews_partitions_assigned(env->parts, C, 0, -1, &offset);
        ews_partitions_assigned(env->parts, U, 9, -1, &offset);
        ews_partitions_assigned(env->parts, U, 1, -1, &offset);
        part = ews_partitions_next(env->parts, &it);
        assert_true(part->source == U && part->partition == 1);
        part = ews_partitions_next(env->parts, &it);
        assert_true(part->source == U && part->partition == 9);
        part = ews_partitions_next(env->parts, &it);
        assert_true(part->source == C && part->partition == 0);
        assert_null(ews_partitions_next(env->parts, &it));
        ews_partitions_revoked(env->parts, U, 9);
        it = (struct ews_partitions_iter)EWS_PARTITIONS_ITER_INIT;
        assert_int_equal(ews_partitions_next(env->parts, &it)->partition, 1);
        assert_int_equal(ews_partitions_next(env->parts, &it)->source, C);
        assert_null(ews_partitions_next(env->parts, &it));
        part = ews_partitions_get(env->parts, U, 9);
        assert_true(part->source == U && part->partition == 9);
        assert_false(part->assigned);
}

static void test_reconnect_and_failed(void **state)
{
        struct env *env = *state;
        int64_t offset;

        ews_partitions_reconnected(env->parts, 3);
        ews_partitions_assigned(env->parts, U, 0, -1, &offset);
        ews_partitions_assigned(env->parts, U, 1, -1, &offset);
        ews_partitions_failed(env->parts, U, 1);
        assert_true(ews_partitions_get(env->parts, U, 1)->paused);
        ews_partitions_reconnected(env->parts, 3);
        assert_false(ews_partitions_recovering(env->parts));
        ews_partitions_reconnected(env->parts, 4);
        assert_true(ews_partitions_get(env->parts, U, 0)->recovering);
        assert_false(ews_partitions_get(env->parts, U, 1)->recovering);
        ews_partitions_reject(env->parts, U, 0, false);
        assert_true(ews_partitions_get(env->parts, U, 0)->failed);
}

static void test_failed_until_fence_moved(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 2);
        int64_t offset = EWS_OFFSET_DEFAULT;

        env->fake.fence.next_offset = 500;
        ews_partitions_assigned(env->parts, U, 2, 500, &offset);
        ews_partitions_failed(env->parts, U, 2);
        /* the fence as it was, or gone: it waits */
        env->fake.fence_read = 500;
        ews_partitions_cron(env->parts, 0);
        env->fake.fence_read = -1;
        ews_partitions_cron(env->parts, 0);
        assert_true(part->failed && part->paused);
        assert_int_equal(env->fake.seeks, 0);
        assert_int_equal(env->fake.claims, 1);
        /* moved by hand: claimed again, from there, resumed */
        env->fake.fence_read = 420;
        env->fake.fence.next_offset = 420;
        ews_partitions_cron(env->parts, 0);
        assert_int_equal(env->fake.claims, 2);
        assert_int_equal(env->fake.seek_offset, 420);
        assert_false(part->failed || part->paused || part->recovering);
        assert_int_equal(env->fake.resumes, 1);
        assert_int_equal(part->next_offset, 420);
}

/* From a rebalance callback a partition goes back to its fence at the
 * next cron (no seek there), and a rejected one is paused there. */
static void test_later_from_a_callback(void **state)
{
        struct env *env = *state;
        struct pipeline_part *part = ews_partitions_get(env->parts, U, 3);
        struct pipeline_part *other = ews_partitions_get(env->parts, U, 4);
        int64_t offset = EWS_OFFSET_DEFAULT;
        int seeks, claims, pauses;

        env->fake.fence.next_offset = 10;
        ews_partitions_assigned(env->parts, U, 3, -1, &offset);
        ews_partitions_assigned(env->parts, U, 4, -1, &offset);
        ews_partitions_committed(env->parts, U, 3, 30, 0, 1000);
        seeks = env->fake.seeks;
        claims = env->fake.claims;
        pauses = env->fake.pauses;
        ews_partitions_recover_later(env->parts, U, 3, 30);
        ews_partitions_reject(env->parts, U, 4, true);
        assert_true(part->recovering);
        assert_int_equal(part->rewind, 30);
        assert_true(other->failed);
        assert_false(other->paused);
        assert_int_equal(env->fake.seeks, seeks);
        assert_int_equal(env->fake.claims, claims);
        assert_int_equal(env->fake.pauses, pauses);
        /* the cron: claimed again and back to the fence; paused */
        env->fake.fence_read = 10;
        ews_partitions_cron(env->parts, 0);
        assert_false(part->recovering);
        assert_int_equal(part->next_offset, 10);
        assert_int_equal(env->fake.seek_offset, 10);
        assert_true(other->paused);
        assert_int_equal(env->fake.pauses, pauses + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_claim_at_fence),           T(test_claim_new_partition),
                T(test_claim_fence_lost),         T(test_recover_fence_lost),
                T(test_fence_behind_seeks_back),  T(test_claim_fails_then_cron),
                T(test_block_and_retry),          T(test_block_cannot_pause),
                T(test_iterator_and_revoke),      T(test_reconnect_and_failed),
                T(test_failed_until_fence_moved), T(test_later_from_a_callback),
#undef T
        };

        cmocka_set_test_filter(getenv("EWS_TEST_FILTER"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
