/* Activation: what it takes for a trial to count as activated. */
#include "score/score.h"
#include "util/hash.h"

#include <stdio.h>
#include <string.h>

#define ACTIVATION_SCORE_BIT 1u
#define ACTIVATION_COUNT_MAX 65535

static int64_t activation_within(const struct ews_score_conf *conf,
                                 const struct ews_activation_cond *c)
{
        return c->within_ms ? c->within_ms : conf->activation_window_ms;
}

/* t_ms lies in [trial start, trial start + within_ms]. */
static bool activation_in_window(const struct ews_user *user, int64_t t_ms,
                                 int64_t within_ms)
{
        return user->trial_started_ms && t_ms >= user->trial_started_ms &&
               t_ms - user->trial_started_ms <= within_ms;
}

/* A distinct product for a products condition: its hash kept until there
 * are as many as the condition asks for. */
static void activation_product(struct ews_user *user, const char *product,
                               int want)
{
        uint32_t h = ews_hash32(product);
        int i;

        for (i = 0; i < user->activation_product_cnt; i++)
                if (user->activation_products[i] == h)
                        return;
        if (user->activation_product_cnt < want &&
            user->activation_product_cnt < EWS_ACTIVATION_MAX)
                user->activation_products[user->activation_product_cnt++] = h;
}

static int activation_counted(const struct ews_user *user,
                              const struct ews_activation_cond *c, int i)
{
        return c->kind == EWS_ACTIVATION_PRODUCTS ? user->activation_product_cnt
                                                  : user->activation_counts[i];
}

void ews_activation_count(const struct ews_score_conf *conf,
                          struct ews_user *user,
                          const struct ews_usage_event *event)
{
        int64_t t = event->occurred_at_ms;
        int i;

        if (!conf->activation_cnt)
                return; /* the score alone: nothing to keep */
        if (user->activation_cnt < conf->activation_cnt)
                user->activation_cnt = conf->activation_cnt;
        if (conf->activation_points > 0 &&
            activation_in_window(user, t, conf->activation_window_ms) &&
            user->engagement >= conf->activation_points)
                user->activation_met |= ACTIVATION_SCORE_BIT;
        for (i = 0; i < conf->activation_cnt; i++) {
                const struct ews_activation_cond *c = &conf->activation[i];

                if (!activation_in_window(user, t, activation_within(conf, c)))
                        continue;
                if (c->kind == EWS_ACTIVATION_PRODUCTS) {
                        if (event->product[0])
                                activation_product(user, event->product,
                                                   c->count);
                } else if (!strcmp(c->kind == EWS_ACTIVATION_EVENT
                                           ? event->event_type
                                           : event->product,
                                   c->name) &&
                           user->activation_counts[i] < ACTIVATION_COUNT_MAX) {
                        user->activation_counts[i]++;
                }
                if (activation_counted(user, c, i) >= c->count)
                        user->activation_met |= 2u << i;
        }
}

uint32_t ews_activation_used(const struct ews_score_conf *conf)
{
        uint32_t used = (2u << conf->activation_cnt) - 2u;

        if (!conf->activation_cnt || conf->activation_points > 0)
                used |= ACTIVATION_SCORE_BIT;
        return used;
}

bool ews_activation_reached(const struct ews_score_conf *conf,
                            const struct ews_user *user, int64_t t_ms)
{
        uint32_t used, met;

        /* An event before the trial's start (its trial_started came late)
         * counts as at the start, as it always did. */
        if (!user->trial_started_ms ||
            t_ms - user->trial_started_ms > conf->activation_window_ms)
                return false;
        if (!conf->activation_cnt)
                return user->engagement >= conf->activation_points;
        used = ews_activation_used(conf);
        met = user->activation_met & used;
        return conf->activation_match == EWS_ACTIVATION_ANY ? met != 0
                                                            : met == used;
}

uint32_t ews_activation_met(const struct ews_score_conf *conf,
                            const struct ews_user *user)
{
        if (!conf->activation_cnt)
                return user->activated_ms ? ACTIVATION_SCORE_BIT : 0;
        return user->activation_met & ews_activation_used(conf);
}

/* A duration in its largest whole unit: 3d, 36h, 90m, 45s, 500ms. */
static void activation_duration(char *buf, size_t size, int64_t ms)
{
        static const struct {
                int64_t ms;
                const char *unit;
        } units[] = {
                {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
        size_t i;

        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (ms % units[i].ms == 0) {
                        snprintf(buf, size, "%lld%s",
                                 (long long)(ms / units[i].ms), units[i].unit);
                        return;
                }
        snprintf(buf, size, "%lldms", (long long)ms);
}

void ews_activation_cond_text(const struct ews_score_conf *conf, int bit,
                              char *buf, size_t size)
{
        const struct ews_activation_cond *c;
        char within[32] = "";

        if (bit == 0 || bit > conf->activation_cnt) {
                snprintf(buf, size, "engagement >= %g",
                         conf->activation_points);
                return;
        }
        c = &conf->activation[bit - 1];
        if (c->within_ms && c->within_ms != conf->activation_window_ms) {
                memcpy(within, " in ", 5);
                activation_duration(within + 4, sizeof(within) - 4,
                                    c->within_ms);
        }
        if (c->kind == EWS_ACTIVATION_PRODUCTS)
                snprintf(buf, size, "%d product%s%s", c->count,
                         c->count == 1 ? "" : "s", within);
        else
                snprintf(buf, size, "%s%s >= %d%s",
                         c->kind == EWS_ACTIVATION_PRODUCT ? "product " : "",
                         c->name, c->count, within);
}

void ews_activation_text(const struct ews_score_conf *conf, char *buf,
                         size_t size)
{
        uint32_t used = ews_activation_used(conf);
        char window[32], cond[160];
        size_t len = 0;
        int bit, n = 0;

        buf[0] = '\0';
        if (conf->activation_cnt)
                len = (size_t)snprintf(
                        buf, size, "%s of ",
                        conf->activation_match == EWS_ACTIVATION_ANY ? "any"
                                                                     : "all");
        for (bit = 0; bit <= conf->activation_cnt && len < size; bit++) {
                if (!(used & (1u << bit)))
                        continue;
                ews_activation_cond_text(conf, bit, cond, sizeof(cond));
                len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                        n++ ? ", " : "", cond);
        }
        activation_duration(window, sizeof(window), conf->activation_window_ms);
        if (len < size)
                snprintf(buf + len, size - len, " within %s", window);
}
