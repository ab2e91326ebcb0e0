/* ews-inspect outbox: every outbox's records, pending and parked, as JSON
 * lines; parked records retried (moved back to their outbox, which its
 * owner sends at its next look) or dropped (deleted, logged), one by id or
 * all. */
#include "tools/ews_inspect.h"
#include "ops/state_json.h"
#include "util/grow.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *inspect_outbox_parse(int cnt, char **words, bool all,
                                 struct inspect_outbox_cmd *cmd,
                                 const char **arg)
{
        memset(cmd, 0, sizeof(*cmd));
        *arg = NULL;
        if (!cnt) {
                if (all)
                        return "--all is for outbox retry or drop";
                cmd->action = INSPECT_OUTBOX_LIST;
                return NULL;
        }
        if (!strcmp(words[0], "retry"))
                cmd->action = INSPECT_OUTBOX_RETRY;
        else if (!strcmp(words[0], "drop"))
                cmd->action = INSPECT_OUTBOX_DROP;
        else
                return *arg = words[0], "outbox takes retry or drop, not";
        if (cnt > 2)
                return *arg = words[2], "unexpected argument";
        if (all && cnt == 2)
                return *arg = words[1], "--all or an id, not both:";
        if (!all && cnt == 1)
                return *arg = words[0], "an id or --all after";
        cmd->id = all ? NULL : words[1];
        return NULL;
}

/* A parked record matched by a retry or drop, copied out of the walk. */
struct outbox_match {
        struct ews_outbox_ref ref;
        char *id;
        json_t *json; /* as the list prints it */
};

struct outbox_walk {
        const struct ews_config *config;
        const struct inspect_outbox_cmd *cmd;
        struct outbox_match *matches;
        size_t match_cnt, match_cap;
        bool failed; /* out of memory, or output */
};

static void outbox_name(const struct ews_config *config,
                        struct ews_outbox_ref ref, char *buf, size_t size)
{
        if (ref.source == EWS_OUTBOX_LEADER)
                snprintf(buf, size, "leader");
        else
                snprintf(buf, size, "%s:%d", config->topics[ref.source],
                         (int)ref.partition);
}

static bool outbox_print(json_t *json)
{
        return !json_dumpf(json, stdout, JSON_COMPACT | JSON_SORT_KEYS) &&
               fputc('\n', stdout) != EOF;
}

/* Lists: prints each record. Retry or drop: keeps the parked ones asked. */
static void outbox_walk_cb(void *opaque, const struct ews_outbox_listed *r)
{
        struct outbox_walk *w = opaque;
        struct outbox_match *m;
        char name[300];
        json_t *json;

        if (w->cmd->action != INSPECT_OUTBOX_LIST &&
            (!r->parked || (w->cmd->id && strcmp(w->cmd->id, r->id))))
                return;
        outbox_name(w->config, r->ref, name, sizeof(name));
        json = ews_json_outbox_record(name, r);
        if (!json) {
                w->failed = true;
                return;
        }
        if (w->cmd->action == INSPECT_OUTBOX_LIST) {
                w->failed |= !outbox_print(json);
                json_decref(json);
                return;
        }
        if (!ews_grow((void **)&w->matches, &w->match_cap, w->match_cnt + 1,
                      sizeof(*w->matches))) {
                w->failed = true;
                json_decref(json);
                return;
        }
        m = &w->matches[w->match_cnt];
        m->ref = r->ref;
        m->json = json;
        if ((m->id = strdup(r->id)))
                w->match_cnt++;
        else
                w->failed = true, json_decref(json);
}

/* Retries or drops what the walk matched: one line each on stdout, and
 * the dropped ones logged. 0, or 1 when the store failed. */
static int outbox_release(struct ews_store *store, struct outbox_walk *w)
{
        bool retry = w->cmd->action == INSPECT_OUTBOX_RETRY;
        enum ews_store_result result;
        char errstr[512], *what;
        json_t *line;
        size_t i;
        int rc = 0;

        for (i = 0; i < w->match_cnt && !rc; i++) {
                struct outbox_match *m = &w->matches[i];

                result = ews_store_parked_release(store, m->ref, m->id, retry,
                                                  errstr, sizeof(errstr));
                if (result == EWS_STORE_ERROR) {
                        fprintf(stderr, "ews-inspect: %s\n", errstr);
                        rc = 1;
                        continue;
                }
                if (result == EWS_STORE_NOT_FOUND)
                        continue; /* released meanwhile */
                what = json_dumps(m->json, JSON_COMPACT | JSON_SORT_KEYS);
                if (!retry)
                        ews_info("inspect", "dropped parked record %s: %s",
                                 m->id, what ? what : "");
                free(what);
                line = json_pack("{s:O, s:O, s:b}", "outbox",
                                 json_object_get(m->json, "outbox"), "id",
                                 json_object_get(m->json, "id"),
                                 retry ? "retried" : "dropped", 1);
                if (!line || !outbox_print(line))
                        rc = 1;
                json_decref(line);
        }
        return rc;
}

int inspect_outbox_run(struct ews_store *store, const struct ews_config *config,
                       const struct inspect_outbox_cmd *cmd)
{
        static struct ews_outbox_ref refs[EWS_OUTBOX_REFS_MAX];
        struct outbox_walk w = {config, cmd, NULL, 0, 0, false};
        enum ews_store_result result;
        size_t cnt, i;
        char errstr[512];
        int rc = 1, parked;

        result = ews_store_outbox_refs(store, refs, &cnt, errstr,
                                       sizeof(errstr));
        /* each outbox's pending records, then its parked ones */
        for (i = 0; i < cnt && result == EWS_STORE_OK && !w.failed; i++)
                for (parked = 0; parked < 2 && result == EWS_STORE_OK; parked++)
                        if (parked || cmd->action == INSPECT_OUTBOX_LIST)
                                result = ews_store_outbox_list(
                                        store, refs[i], parked, outbox_walk_cb,
                                        &w, errstr, sizeof(errstr));
        if (result != EWS_STORE_OK)
                fprintf(stderr, "ews-inspect: %s\n", errstr);
        else if (w.failed)
                fprintf(stderr, "ews-inspect: out of memory, or stdout\n");
        else if (cmd->action == INSPECT_OUTBOX_LIST)
                rc = 0;
        else if (cmd->id && !w.match_cnt)
                fprintf(stderr, "ews-inspect: no parked record %s\n", cmd->id);
        else
                rc = outbox_release(store, &w);
        for (i = 0; i < w.match_cnt; i++) {
                free(w.matches[i].id);
                json_decref(w.matches[i].json);
        }
        free(w.matches);
        return rc;
}
