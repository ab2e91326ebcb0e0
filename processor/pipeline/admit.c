/* A batch taken in: each message at or past its partition's fence (or
 * past the commit still in flight there) decoded into the batch and
 * chained to its partition's share, or sent to the dead-letter topic with
 * a copy of its bytes; messages behind the fence are counted as replayed
 * and passed over. */
#include "util/log.h"
#include "pipeline/pipeline_int.h"

#include <stdio.h>
#include <string.h>

/* A copy of n bytes of v in the batch's dead_bytes, at *off. */
static bool pipeline_dead_copy(struct ews_pipeline *p, const void *v, size_t n,
                               size_t *off)
{
        if (!ews_grow((void **)&p->dead_bytes, &p->dead_bytes_cap,
                      p->dead_bytes_used + n + 1, 1))
                return false;
        *off = p->dead_bytes_used;
        if (n)
                memcpy(p->dead_bytes + *off, v, n);
        p->dead_bytes_used += n;
        return true;
}

/* Kept for the partition's commit, which puts it in the outbox. */
static void pipeline_dead_letter(struct ews_pipeline *p,
                                 const struct ews_msg *msg,
                                 enum ews_decode_err err, const char *detail)
{
        struct batch_dead *dead;

        p->stats.dead[msg->source][err]++;
        ews_debug("pipeline", "dead letter %s [%d] @%lld: %s: %s",
                  p->config->topics[msg->source], (int)msg->partition,
                  (long long)msg->offset, ews_decode_err_name(err), detail);
        if (!ews_grow((void **)&p->dead, &p->dead_cap, p->dead_cnt + 1,
                      sizeof(*p->dead))) {
                ews_err("pipeline", "out of memory");
                return;
        }
        dead = &p->dead[p->dead_cnt];
        memset(dead, 0, sizeof(*dead));
        dead->source = msg->source;
        dead->partition = msg->partition;
        dead->offset = msg->offset;
        dead->timestamp_ms = msg->timestamp_ms;
        dead->has_key = msg->key != NULL;
        dead->has_value = msg->value != NULL;
        dead->key_len = dead->has_key ? msg->key_len : 0;
        dead->value_len = dead->has_value ? msg->value_len : 0;
        if (!pipeline_dead_copy(p, msg->key, dead->key_len, &dead->key_off) ||
            !pipeline_dead_copy(p, msg->value, dead->value_len,
                                &dead->value_off)) {
                ews_err("pipeline", "out of memory");
                return;
        }
        dead->err = err;
        snprintf(dead->detail, sizeof(dead->detail), "%s", detail);
        p->dead_cnt++;
}

/* Decodes msg into the batch, or sends it to the dead-letter topic. */
static void pipeline_decode(struct ews_pipeline *p, int i,
                            const struct ews_msg *msg)
{
        struct batch_item *item = &p->items[i];
        struct pipeline_part *part =
                ews_partitions_get(p->parts, msg->source, msg->partition);
        struct ews_campaign_event campaign;
        enum ews_decode_err err;
        char errstr[256];
        bool kept = true;
        int64_t t;

        if (msg->source == EWS_SOURCE_USAGE) {
                p->decoded.attrs = p->attr_scratch;
                err = ews_decode_usage(p->decoder, msg->value, msg->value_len,
                                       p->now_ms, &p->decoded, errstr,
                                       sizeof(errstr));
                if (!err)
                        kept = !pipeline_keep_usage(p, item, &p->decoded);
                t = p->decoded.occurred_at_ms;
        } else {
                err = ews_decode_campaign(p->decoder, msg->value,
                                          msg->value_len, p->now_ms, &campaign,
                                          errstr, sizeof(errstr));
                if (!err)
                        kept = !pipeline_keep_campaign(p, item, &campaign);
                t = campaign.occurred_at_ms;
        }
        if (!kept) {
                /* out of memory: wait here as for the registry */
                snprintf(errstr, sizeof(errstr), "out of memory");
                err = EWS_DECODE_RETRY;
        }
        if (err == EWS_DECODE_RETRY) {
                /* Not bad input: stop this partition here for now. */
                item->kind = ITEM_SKIP;
                part->batch_next = msg->offset;
                ews_partitions_wait(p->parts, msg->source, msg->partition,
                                    msg->offset);
                p->stats.registry_retries++;
                ews_warn("pipeline", "%s [%d] @%lld: %s",
                         p->config->topics[msg->source], (int)msg->partition,
                         (long long)msg->offset, errstr);
                return;
        }
        if (err) {
                item->kind = ITEM_DEAD;
                pipeline_dead_letter(p, msg, err, errstr);
                return;
        }
        ews_partitions_registry_ok(p->parts, msg->source, msg->partition);
        p->stats.decoded[msg->source]++;
        if (t > part->batch_max_ms)
                part->batch_max_ms = t;
        if (msg->source == EWS_SOURCE_CAMPAIGN) {
                item->kind = ITEM_CAMPAIGN;
                return;
        }
        item->kind = ITEM_USAGE;
        item->user = pipeline_user_add(p, p->decoded.user_id, msg->partition);
        if (item->user < 0) {
                ews_err("pipeline", "out of memory");
                item->kind = ITEM_SKIP;
        }
}

void pipeline_admit(struct ews_pipeline *p, const struct ews_msg *msgs, int cnt)
{
        struct pipeline_part *part;
        int i;

        p->attr_used = 0;
        p->text_used = 0;
        p->usage_cnt = 0;
        p->campaign_cnt = 0;
        for (i = 0; i < cnt; i++) {
                const struct ews_msg *msg = &msgs[i];

                part = ews_partitions_get(p->parts, msg->source,
                                          msg->partition);
                p->stats.consumed[msg->source]++;
                p->items[i].kind = ITEM_SKIP;
                if (!part->assigned || part->failed)
                        continue;
                if (part->recovering) {
                        if (part->rewind < 0)
                                part->rewind = msg->offset;
                        continue;
                }
                if (part->blocked)
                        continue; /* at or behind a message that waits */
                if (!part->in_batch) {
                        part->in_batch = true;
                        /* after the commit in flight, if one is */
                        part->batch_from = part->inflight ? part->inflight_next
                                                          : part->next_offset;
                        part->batch_next = part->batch_from;
                        part->batch_first = msg->offset;
                        part->batch_max_ms = 0;
                        part->batch_head = part->batch_tail = -1;
                }
                /* Offsets can have gaps (compaction, transaction markers):
                 * anything at or past the next expected one is new. */
                if (part->batch_next >= 0 && msg->offset < part->batch_next) {
                        p->stats.replayed++;
                        continue;
                }
                part->batch_next = msg->offset + 1;
                pipeline_decode(p, i, msg);
                /* its partition's share is then walked without the rest */
                p->items[i].next = -1;
                if (part->batch_tail >= 0)
                        p->items[part->batch_tail].next = i;
                else
                        part->batch_head = i;
                part->batch_tail = i;
        }
}
