/* The batch's events, kept from their decoding until their partition is
 * applied: a usage event compact, its texts in one arena (a decoded event
 * has room for 128-byte ids and 64-byte names, and a batch holds tens of
 * thousands); the few campaign events as they are. Calls no other driver
 * file. */
#include "pipeline/pipeline_int.h"

#include <stddef.h>
#include <string.h>

/* Where each of a usage event's texts is, in the order of enum batch_text;
 * each fits in its array, so its length in a byte. */
_Static_assert(EWS_ID_MAX <= 256 && EWS_NAME_MAX <= 256,
               "a kept text's length is a byte");
static const size_t usage_text_at[BATCH_TEXTS] = {
        offsetof(struct ews_usage_event, event_id),
        offsetof(struct ews_usage_event, user_id),
        offsetof(struct ews_usage_event, account_id),
        offsetof(struct ews_usage_event, event_type),
        offsetof(struct ews_usage_event, product),
        offsetof(struct ews_usage_event, campaign_id)};

int pipeline_keep_usage(struct ews_pipeline *p, struct batch_item *item,
                        const struct ews_usage_event *event)
{
        struct batch_usage *kept = &p->usage[p->usage_cnt];
        size_t n = (size_t)event->attr_cnt, len[BATCH_TEXTS], all = 0;
        int t;

        for (t = 0; t < BATCH_TEXTS; t++)
                all += len[t] =
                        strlen((const char *)event + usage_text_at[t]) + 1;
        if (!ews_grow((void **)&p->text, &p->text_cap, p->text_used + all, 1) ||
            (n && !ews_grow((void **)&p->attr_arena, &p->attr_cap,
                            p->attr_used + n, sizeof(*p->attr_arena))))
                return -1;
        kept->text = p->text_used;
        for (t = 0; t < BATCH_TEXTS; t++) {
                kept->text_len[t] = (uint8_t)(len[t] - 1);
                memcpy(p->text + p->text_used,
                       (const char *)event + usage_text_at[t], len[t]);
                p->text_used += len[t];
        }
        kept->value = event->value;
        kept->occurred_at_ms = event->occurred_at_ms;
        kept->has_value = event->has_value;
        kept->attr_cnt = event->attr_cnt;
        item->event = (int)p->usage_cnt++;
        item->attr_off = p->attr_used;
        if (n)
                memcpy(p->attr_arena + p->attr_used, event->attrs,
                       n * sizeof(*p->attr_arena));
        p->attr_used += n;
        return 0;
}

const struct ews_usage_event *
pipeline_usage_event(const struct ews_pipeline *p,
                     const struct batch_item *item,
                     struct ews_usage_event *event)
{
        const struct batch_usage *kept = &p->usage[item->event];
        const char *text = p->text + kept->text;
        size_t len;
        int t;

        for (t = 0; t < BATCH_TEXTS; t++) {
                len = (size_t)kept->text_len[t] + 1;
                memcpy((char *)event + usage_text_at[t], text, len);
                text += len;
        }
        event->value = kept->value;
        event->occurred_at_ms = kept->occurred_at_ms;
        event->has_value = kept->has_value;
        event->attr_cnt = kept->attr_cnt;
        event->attrs = p->attr_arena + item->attr_off;
        return event;
}

int pipeline_keep_campaign(struct ews_pipeline *p, struct batch_item *item,
                           const struct ews_campaign_event *event)
{
        if (!ews_grow((void **)&p->campaign, &p->campaign_cap,
                      p->campaign_cnt + 1, sizeof(*p->campaign)))
                return -1;
        p->campaign[p->campaign_cnt] = *event;
        item->event = (int)p->campaign_cnt++;
        return 0;
}
