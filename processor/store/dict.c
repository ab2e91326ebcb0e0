/* The names dictionary of the packed users in Redis (<prefix>names, a
 * hash of name -> id; scripts/names.lua gives the ids): read whole on
 * connecting and again when a value names an id not read yet; names a
 * commit packed inline are given ids before the next load, so that the
 * next commit of those users packs ids. */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_names_load(struct ews_store *store, char *errstr, size_t errstr_size)
{
        redisReply *reply;
        int64_t id;
        size_t i;

        reply = redisCommand(store->redis, "HGETALL %snames", store->prefix);
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                snprintf(errstr, errstr_size, "redis names: %s",
                         reply && reply->type == REDIS_REPLY_ERROR
                                 ? reply->str
                                 : store->redis->errstr);
                if (reply)
                        freeReplyObject(reply);
                return -1;
        }
        for (i = 0; i + 1 < reply->elements; i += 2)
                if (reply->element[i]->type == REDIS_REPLY_STRING &&
                    reply->element[i + 1]->type == REDIS_REPLY_STRING &&
                    !store_parse_i64(reply->element[i + 1]->str,
                                     reply->element[i + 1]->len, &id) &&
                    id >= 0 && id < EWS_NAMES_MAX)
                        /* a name already held keeps its id */
                        (void)ews_names_put(store->names, (uint32_t)id,
                                            reply->element[i]->str);
        freeReplyObject(reply);
        return 0;
}

int store_names_reload(struct ews_store *store, char *errstr,
                       size_t errstr_size)
{
        struct ews_names *fresh = ews_names_new();

        if (!fresh) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        /* Redis is the truth: ids it lost with its last writes are not
         * to be used again */
        ews_names_destroy(store->names);
        store->names = fresh;
        store->names_pending_cnt = 0;
        return store_names_load(store, errstr, errstr_size);
}

void store_names_note(struct ews_store *store, const struct ews_user *user)
{
        const struct ews_component *v;
        int i, n;

        for (i = 0; i < user->reason_cnt + user->interest_cnt; i++) {
                v = i < user->reason_cnt
                            ? &user->reasons[i]
                            : &user->interests[i - user->reason_cnt];
                if (!v->name[0] || ews_names_id(store->names, v->name) >= 0)
                        continue;
                for (n = 0; n < store->names_pending_cnt; n++)
                        if (!strcmp(store->names_pending[n], v->name))
                                break;
                if (n == store->names_pending_cnt &&
                    n < STORE_NAMES_PENDING_MAX)
                        memcpy(store->names_pending[store->names_pending_cnt++],
                               v->name, sizeof(v->name));
        }
}

enum ews_store_result store_names_assign(struct ews_store *store, char *errstr,
                                         size_t errstr_size)
{
        struct store_argv *a = &store->argv;
        redisReply *reply;
        int i;

        if (!store->names_pending_cnt)
                return EWS_STORE_OK;
        store_argv_reset(a);
        if (store_argv_add(a, "EVALSHA", 7) || store_argv_add(a, "", 0) ||
            store_argv_add(a, "1", 1) ||
            store_argv_cat(a, store->prefix, "names", "") ||
            store_argv_i64(a, EWS_NAMES_MAX)) {
                snprintf(errstr, errstr_size, "out of memory");
                return EWS_STORE_ERROR;
        }
        for (i = 0; i < store->names_pending_cnt; i++)
                if (store_argv_add(a, store->names_pending[i],
                                   strlen(store->names_pending[i]))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return EWS_STORE_ERROR;
                }
        reply = store_evalsha(store, store_script_names, store->sha_names,
                              errstr, errstr_size);
        if (!reply || reply->type != REDIS_REPLY_ARRAY ||
            reply->elements != (size_t)store->names_pending_cnt) {
                if (reply)
                        freeReplyObject(reply);
                return store_fail(store, errstr, errstr_size, "names");
        }
        for (i = 0; i < store->names_pending_cnt; i++)
                if (reply->element[i]->type == REDIS_REPLY_INTEGER &&
                    reply->element[i]->integer >= 0)
                        (void)ews_names_put(
                                store->names,
                                (uint32_t)reply->element[i]->integer,
                                store->names_pending[i]);
        freeReplyObject(reply);
        store->names_pending_cnt = 0;
        return EWS_STORE_OK;
}

int store_unpack(struct ews_store *store, struct ews_user *user,
                 int32_t *partition, const unsigned char *buf, size_t len)
{
        char errstr[256];
        int rc = ews_user_unpack(user, partition, store->names, buf, len);

        /* ids another instance gave since this one read them */
        if (rc == EWS_USER_UNKNOWN_NAME && store->redis &&
            !store_names_load(store, errstr, sizeof(errstr)))
                rc = ews_user_unpack(user, partition, store->names, buf, len);
        return rc ? -1 : 0;
}
