/* ews-alertmanager, posting: alerts as Alertmanager's API v2 takes them
 * (labels, annotations, startsAt, endsAt), the memory of active episodes,
 * the POST to /api/v2/alerts (libcurl), and when to post what. */
#include "tools/ews_alertmanager.h"
#include "util/log.h"

#include <curl/curl.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void am_time_iso(int64_t ms, char *buf, size_t size)
{
        int64_t frac = ((ms % 1000) + 1000) % 1000;
        time_t secs = (time_t)((ms - frac) / 1000);
        char whole[24];
        struct tm tm;

        if (!gmtime_r(&secs, &tm) ||
            !strftime(whole, sizeof(whole), "%Y-%m-%dT%H:%M:%S", &tm))
                snprintf(whole, sizeof(whole), "1970-01-01T00:00:00");
        snprintf(buf, size, "%s.%03dZ", whole, (int)frac);
}

/* "INFO" -> "info": Alertmanager's routes match severities in small
 * letters, as Prometheus rules write them. */
static void am_lower(const char *s, char *buf, size_t size)
{
        size_t i;

        for (i = 0; s[i] && i + 1 < size; i++)
                buf[i] = (char)tolower((unsigned char)s[i]);
        buf[i] = '\0';
}

/* alertname and rule (the rule), severity, episode, and the subject under
 * its kind's name (user, account or campaign), with the account and
 * campaign it belongs to when the alert names them. */
static json_t *am_labels(const struct ews_alert *alert)
{
        const char *kinds[] = {"user", "account", "campaign"};
        const char *rule = ews_rule_name(alert->rule);
        json_t *labels;
        char severity[16];

        am_lower(ews_severity_name(alert->severity), severity,
                 sizeof(severity));
        labels = json_pack("{s:s, s:s, s:s, s:s}", "alertname", rule, "rule",
                           rule, "severity", severity, "episode",
                           alert->episode_id);
        if (!labels)
                return NULL;
        if (alert->account_id[0])
                json_object_set_new(labels, "account",
                                    json_string(alert->account_id));
        if (alert->campaign_id[0])
                json_object_set_new(labels, "campaign",
                                    json_string(alert->campaign_id));
        /* The subject last: it is what the label of its kind names. */
        if ((unsigned)alert->subject_type < 3)
                json_object_set_new(labels, kinds[alert->subject_type],
                                    json_string(alert->subject_id));
        return labels;
}

/* "name=value, ..." in the alert's order. */
static json_t *am_pairs(int cnt, const char *(*name)(const void *, int),
                        double (*value)(const void *, int), const void *arg)
{
        char buf[1024];
        size_t len = 0;
        int i, n;

        buf[0] = '\0';
        for (i = 0; i < cnt && len < sizeof(buf); i++) {
                n = snprintf(buf + len, sizeof(buf) - len, "%s%s=%.6g",
                             i ? ", " : "", name(arg, i), value(arg, i));
                if (n < 0)
                        break;
                len += (size_t)n;
        }
        return json_string(buf);
}

static const char *am_value_name(const void *a, int i)
{
        return ((const struct ews_alert *)a)->values[i].name;
}

static double am_value(const void *a, int i)
{
        return ((const struct ews_alert *)a)->values[i].value;
}

static const char *am_contributor_name(const void *a, int i)
{
        return ((const struct ews_alert *)a)->contributors[i].event_type;
}

static double am_contributor(const void *a, int i)
{
        return ((const struct ews_alert *)a)->contributors[i].score;
}

/* summary (the reason), the alert id and the figures that decided it. */
static json_t *am_annotations(const struct ews_alert *alert)
{
        json_t *annotations;
        char when[32];

        am_time_iso(alert->emitted_at_ms, when, sizeof(when));
        annotations = json_pack("{s:s, s:s, s:s, s:s}", "summary",
                                alert->reason, "alert_id", alert->alert_id,
                                "status", ews_alert_status_name(alert->status),
                                "emitted_at", when);
        if (!annotations)
                return NULL;
        if (alert->value_cnt)
                json_object_set_new(annotations, "values",
                                    am_pairs(alert->value_cnt, am_value_name,
                                             am_value, alert));
        if (alert->contributor_cnt)
                json_object_set_new(annotations, "top_contributors",
                                    am_pairs(alert->contributor_cnt,
                                             am_contributor_name,
                                             am_contributor, alert));
        if (alert->last_activity_ms) {
                am_time_iso(alert->last_activity_ms, when, sizeof(when));
                json_object_set_new(annotations, "last_activity_at",
                                    json_string(when));
        }
        return annotations;
}

/* The episode's start: its id ends in it (RULE:subject:start_ms). */
static int64_t am_episode_start(const struct ews_alert *alert)
{
        const char *colon = strrchr(alert->episode_id, ':');
        char *end;
        long long ms;

        if (!colon)
                return alert->event_time_ms;
        ms = strtoll(colon + 1, &end, 10);
        return *end || end == colon + 1 ? alert->event_time_ms : ms;
}

json_t *am_entry_alert(json_t *entry, int64_t ends_ms)
{
        json_t *alert = json_object_get(entry, "alert");
        char when[32];

        if (!json_is_true(json_object_get(entry, "resolved"))) {
                am_time_iso(ends_ms, when, sizeof(when));
                json_object_set_new(alert, "endsAt", json_string(when));
        }
        return alert;
}

size_t am_active_count(const struct am_bridge *b)
{
        const char *episode;
        json_t *entry;
        size_t cnt = 0;

        json_object_foreach(b->memory, episode, entry) cnt +=
                !json_is_true(json_object_get(entry, "resolved"));
        return cnt;
}

/* A resolved episode stays known, without its alert, so that a late copy
 * of its FIRING cannot start it again; the oldest AM_TOMBSTONES_MAX beyond
 * the newest AM_TOMBSTONES_MAX are forgotten (those still to be posted
 * are kept). */
static int am_tombstone(struct am_bridge *b, const char *episode)
{
        size_t i, cnt = json_array_size(b->tombstones);
        json_t *kept, *id, *entry;

        if (json_array_append_new(b->tombstones, json_string(episode)))
                return -1;
        if (++cnt < 2 * AM_TOMBSTONES_MAX)
                return 0;
        if (!(kept = json_array()))
                return -1;
        json_array_foreach(b->tombstones, i, id)
        {
                entry = json_object_get(b->memory, json_string_value(id));
                if (!json_is_true(json_object_get(entry, "resolved")))
                        continue; /* revoked meanwhile */
                if (i < cnt - AM_TOMBSTONES_MAX &&
                    !json_is_true(json_object_get(entry, "dirty")))
                        json_object_del(b->memory, json_string_value(id));
                else
                        json_array_append(kept, id);
        }
        json_decref(b->tombstones);
        b->tombstones = kept;
        return 0;
}

/* A FIRING starts (or, seen again, refreshes) its episode's entry. A
 * RESOLVED ends it under the labels its FIRING had, at the RESOLVED's
 * event time, never before the start nor after now. Nothing changes a
 * resolved episode. */
int am_memory_apply(struct am_bridge *b, const struct ews_alert *alert,
                    int32_t partition, bool live, int64_t now_ms)
{
        json_t *entry = json_object_get(b->memory, alert->episode_id);
        bool queued = json_is_true(json_object_get(entry, "dirty"));
        bool resolved = alert->status == EWS_ALERT_RESOLVED;
        json_t *labels = NULL, *body = NULL, *annotations;
        int64_t start = am_episode_start(alert), end;
        char starts[32], ends[32];

        if (json_is_true(json_object_get(entry, "resolved")))
                return 0;
        if (!resolved || live) {
                if (entry)
                        labels = json_incref(json_object_get(
                                json_object_get(entry, "alert"), "labels"));
                if (!labels)
                        labels = am_labels(alert);
                am_time_iso(resolved ? start : alert->event_time_ms, starts,
                            sizeof(starts));
                annotations = am_annotations(alert);
                body = json_pack("{s:o, s:o, s:s}", "labels", labels,
                                 "annotations", annotations, "startsAt",
                                 starts);
                if (!body)
                        return -1;
        }
        if (body && resolved) {
                end = alert->event_time_ms < now_ms ? alert->event_time_ms
                                                    : now_ms;
                am_time_iso(end > start ? end : start, ends, sizeof(ends));
                json_object_set_new(body, "endsAt", json_string(ends));
        }
        /* Read as history, a RESOLVED leaves its tombstone only. */
        entry = json_pack("{s:i, s:b, s:b}", "p", (int)partition, "resolved",
                          resolved, "dirty", live);
        if (!entry || (body && json_object_set_new(entry, "alert", body)) ||
            json_object_set_new(b->memory, alert->episode_id, entry) ||
            (resolved && am_tombstone(b, alert->episode_id)))
                return -1;
        /* Queued once: a FIRING and its RESOLVED in one batch post once. */
        return live && !queued
                       ? json_array_append_new(b->dirty,
                                               json_string(alert->episode_id))
                       : 0;
}

struct am_post {
        CURL *curl;
        char *url;
        struct curl_slist *headers;
        char body[512]; /* the start of Alertmanager's answer */
        char error[CURL_ERROR_SIZE];
        size_t body_len;
};

static size_t am_post_write(char *data, size_t size, size_t n, void *opaque)
{
        struct am_post *post = opaque;
        size_t len = size * n, room = sizeof(post->body) - 1 - post->body_len;

        memcpy(post->body + post->body_len, data, len < room ? len : room);
        post->body_len += len < room ? len : room;
        post->body[post->body_len] = '\0';
        return len;
}

struct am_post *am_post_new(const char *url, int64_t timeout_ms, char *errstr,
                            size_t errstr_size)
{
        struct am_post *post = calloc(1, sizeof(*post));
        size_t len = strlen(url);

        while (len && url[len - 1] == '/')
                len--;
        if (!post || !(post->curl = curl_easy_init()) ||
            !(post->url = malloc(len + sizeof("/api/v2/alerts"))) ||
            !(post->headers = curl_slist_append(
                      NULL, "Content-Type: application/json"))) {
                snprintf(errstr, errstr_size, "out of memory");
                am_post_destroy(post);
                return NULL;
        }
        memcpy(post->url, url, len);
        strcpy(post->url + len, "/api/v2/alerts");
        curl_easy_setopt(post->curl, CURLOPT_URL, post->url);
        curl_easy_setopt(post->curl, CURLOPT_HTTPHEADER, post->headers);
        curl_easy_setopt(post->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(post->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(post->curl, CURLOPT_WRITEFUNCTION, am_post_write);
        curl_easy_setopt(post->curl, CURLOPT_WRITEDATA, post);
        curl_easy_setopt(post->curl, CURLOPT_ERRORBUFFER, post->error);
        return post;
}

void am_post_destroy(struct am_post *post)
{
        if (!post)
                return;
        if (post->curl)
                curl_easy_cleanup(post->curl);
        curl_slist_free_all(post->headers);
        free(post->url);
        free(post);
}

/* The answer's first line, for the log. */
static const char *am_post_answer(struct am_post *post)
{
        post->body[strcspn(post->body, "\r\n")] = '\0';
        return post->body;
}

enum am_post_result am_post_alerts(struct am_post *post, json_t *alerts,
                                   char *errstr, size_t errstr_size)
{
        char *text = json_dumps(alerts, JSON_COMPACT);
        long status = 0;
        CURLcode rc;

        if (!text) {
                snprintf(errstr, errstr_size, "out of memory");
                return AM_POST_FAILED;
        }
        post->body_len = 0;
        post->body[0] = post->error[0] = '\0';
        curl_easy_setopt(post->curl, CURLOPT_POSTFIELDS, text);
        rc = curl_easy_perform(post->curl);
        free(text);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "POST %s: %s", post->url,
                         post->error[0] ? post->error : curl_easy_strerror(rc));
                return AM_POST_FAILED;
        }
        curl_easy_getinfo(post->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
                return AM_POST_OK;
        snprintf(errstr, errstr_size, "POST %s: HTTP %ld: %s", post->url,
                 status, am_post_answer(post));
        /* Alertmanager keeps the valid alerts of a batch and answers 400
         * for the others: sending them again would not change that. */
        return status == 400 || status == 422 ? AM_POST_REJECTED
                                              : AM_POST_FAILED;
}

/* A post failed: try again after the backoff, with the log saying so. */
static void am_failed(struct am_bridge *b, const char *what, size_t waiting,
                      int64_t now)
{
        if (!b->failures++)
                b->outage_since = now;
        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : AM_BACKOFF_MIN_MS;
        if (b->backoff_ms > AM_BACKOFF_MAX_MS)
                b->backoff_ms = AM_BACKOFF_MAX_MS;
        b->next_try = now + b->backoff_ms;
        ews_warn(AM_MOD, "%s; alerts waiting: %zu; trying again in %.0f s",
                 what, waiting, b->backoff_ms / 1000.0);
        if (b->paused_gen != b->assign_gen)
                am_pause(b, true);
}

static void am_recovered(struct am_bridge *b, int64_t now)
{
        if (!b->failures)
                return;
        ews_info(AM_MOD,
                 "Alertmanager accepts alerts again, after %d failed "
                 "attempts in %.1f s; every active alert is sent again",
                 b->failures, (now - b->outage_since) / 1000.0);
        b->failures = 0;
        b->backoff_ms = 0;
        b->next_try = 0;
        b->next_resend = now; /* it may have lost them meanwhile */
        am_pause(b, false);
}

/* Posts a batch; 0 when Alertmanager took it (or refused some of it, which
 * is logged: sending them again would be refused again). */
static int am_send(struct am_bridge *b, json_t *batch, size_t waiting,
                   int64_t now)
{
        char errstr[768];

        switch (am_post_alerts(b->post, batch, errstr, sizeof(errstr))) {
        case AM_POST_OK:
                break;
        case AM_POST_REJECTED:
                b->rejected_cnt++;
                ews_err(AM_MOD, "Alertmanager refused alerts: %s", errstr);
                break;
        default:
                am_failed(b, errstr, waiting, now);
                return -1;
        }
        am_recovered(b, now);
        return 0;
}

/* The alerts read since the last post: the active ones ending
 * 4 * resend_ms from now, the resolved ones at their time. */
void am_flush(struct am_bridge *b, int64_t now)
{
        int64_t ends = am_clock_ms(CLOCK_REALTIME) + 4 * b->resend_ms;
        json_t *batch = json_array(), *entry, *id;
        size_t i, resolved = 0;

        json_array_foreach(b->dirty, i, id)
        {
                entry = json_object_get(b->memory, json_string_value(id));
                if (entry) {
                        resolved += json_is_true(
                                json_object_get(entry, "resolved"));
                        json_array_append(batch, am_entry_alert(entry, ends));
                }
        }
        if (json_array_size(batch) &&
            am_send(b, batch, json_array_size(batch), now)) {
                json_decref(batch);
                return;
        }
        if (json_array_size(batch))
                ews_info(AM_MOD, "posted: %zu firing, %zu resolved",
                         json_array_size(batch) - resolved, resolved);
        b->posted_cnt += (int64_t)json_array_size(batch);
        json_array_foreach(b->dirty, i, id)
        {
                entry = json_object_get(b->memory, json_string_value(id));
                if (!entry)
                        continue; /* revoked meanwhile */
                json_object_set_new(entry, "dirty", json_false());
                /* Posted, a resolved episode keeps its tombstone only. */
                if (json_is_true(json_object_get(entry, "resolved")))
                        json_object_del(entry, "alert");
        }
        json_array_clear(b->dirty);
        json_decref(batch);
        am_store(b);
}

/* Every active alert again, AM_POST_MAX a request, so that Alertmanager
 * keeps them active (and has them back after a restart of its own). */
void am_resend(struct am_bridge *b, int64_t now)
{
        int64_t ends = am_clock_ms(CLOCK_REALTIME) + 4 * b->resend_ms;
        json_t *batch = json_array(), *entry;
        const char *episode;
        size_t sent = 0;
        int rc = 0;

        json_object_foreach(b->memory, episode, entry)
        {
                if (json_is_true(json_object_get(entry, "resolved")))
                        continue;
                json_array_append(batch, am_entry_alert(entry, ends));
                if (json_array_size(batch) < AM_POST_MAX)
                        continue;
                sent += json_array_size(batch);
                if ((rc = am_send(b, batch, am_active_count(b), now)))
                        break;
                json_array_clear(batch);
        }
        sent += json_array_size(batch);
        if (!rc && json_array_size(batch))
                rc = am_send(b, batch, am_active_count(b), now);
        json_decref(batch);
        if (rc)
                return;
        ews_debug(AM_MOD, "sent the %zu active alerts again", sent);
        b->next_resend = now + b->resend_ms;
}
