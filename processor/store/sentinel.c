/* The primary through Sentinel. Every connect asks the sentinels of
 * redis.sentinels in turn (the one that answered last first) for the
 * address of redis.master.name, connects there and checks that the server
 * answers ROLE as the master: a primary demoted by a failover still
 * answers at its old address, as a replica, until every sentinel knows.
 * A reconnect after a failover therefore finds the new primary; what the
 * old one had not yet passed to its replica is missing there, fences
 * included, and the partitions replay it from their fences. */
#include "store/store_int.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ews_store_addr_parse(const char *s, char *host, size_t host_size, int *port)
{
        const char *colon, *host_end;
        char *end;
        size_t len;
        long v;

        if (*s == '[') {
                host_end = strchr(s, ']');
                if (!host_end || host_end[1] != ':')
                        return -1;
                colon = host_end + 1;
                s++;
        } else {
                colon = strrchr(s, ':');
                /* an IPv6 address needs its brackets */
                if (!colon || memchr(s, ':', (size_t)(colon - s)))
                        return -1;
                host_end = colon;
        }
        len = (size_t)(host_end - s);
        if (!len || len >= host_size || !isdigit((unsigned char)colon[1]))
                return -1;
        errno = 0;
        v = strtol(colon + 1, &end, 10);
        if (errno || *end || v < 1 || v > 65535)
                return -1;
        memcpy(host, s, len);
        host[len] = '\0';
        *port = (int)v;
        return 0;
}

int store_sentinels_init(struct ews_store *store, char *errstr,
                         size_t errstr_size)
{
        const struct ews_store_conf *conf = &store->conf;
        int i;

        if (conf->sentinel_cnt > EWS_STORE_SENTINELS_MAX) {
                snprintf(errstr, errstr_size,
                         "redis.sentinels: more than %d sentinels",
                         EWS_STORE_SENTINELS_MAX);
                return -1;
        }
        for (i = 0; i < conf->sentinel_cnt; i++) {
                struct store_sentinel *s = &store->sentinels[i];

                if (ews_store_addr_parse(conf->sentinels[i], s->host,
                                         sizeof(s->host), &s->port)) {
                        snprintf(errstr, errstr_size,
                                 "redis.sentinels: '%s' is not host:port",
                                 conf->sentinels[i]);
                        return -1;
                }
        }
        store->sentinel_cnt = conf->sentinel_cnt;
        snprintf(store->master_name, sizeof(store->master_name), "%s",
                 conf->master_name ? conf->master_name : "");
        if (store->sentinel_cnt && !store->master_name[0]) {
                snprintf(errstr, errstr_size,
                         "redis.master.name is needed with redis.sentinels");
                return -1;
        }
        return 0;
}

/* The reply of SENTINEL get-master-addr-by-name: 0 with host and *port. */
static int sentinel_reply(const redisReply *reply, char *host, size_t host_size,
                          int *port)
{
        int64_t v;

        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_STRING ||
            !reply->element[0]->len || reply->element[0]->len >= host_size ||
            store_parse_i64(reply->element[1]->str, reply->element[1]->len,
                            &v) ||
            v < 1 || v > 65535)
                return -1;
        memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
        *port = (int)v;
        return 0;
}

/* Asks one sentinel where the primary is: 0 with host and *port, or -1
 * with errstr. */
static int sentinel_ask(const struct ews_store *store,
                        const struct store_sentinel *s, char *host,
                        size_t host_size, int *port, char *errstr,
                        size_t errstr_size)
{
        struct timeval tv = store_timeval(store);
        redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
        redisReply *reply = NULL;
        char who[EWS_STORE_ADDR_MAX + 32];
        int rc = -1;

        snprintf(who, sizeof(who), "sentinel %s:%d", s->host, s->port);
        if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
                snprintf(errstr, errstr_size, "%s: %s", who,
                         c ? c->errstr : "out of memory");
                goto out;
        }
        if (store_auth(c, store->conf.sentinel_username,
                       store->conf.sentinel_password, who, errstr, errstr_size))
                goto out;
        reply = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                             store->master_name);
        if (!reply)
                snprintf(errstr, errstr_size, "%s: %s", who, c->errstr);
        else if (reply->type == REDIS_REPLY_NIL)
                snprintf(errstr, errstr_size,
                         "%s monitors no primary named '%s'", who,
                         store->master_name);
        else if (reply->type == REDIS_REPLY_ERROR)
                snprintf(errstr, errstr_size, "%s: %s", who, reply->str);
        else if (sentinel_reply(reply, host, host_size, port))
                snprintf(errstr, errstr_size, "%s: unexpected reply", who);
        else
                rc = 0;
out:
        if (reply)
                freeReplyObject(reply);
        if (c)
                redisFree(c);
        return rc;
}

/* The role of the server just connected to ("master", "slave"): 0, or -1
 * with errstr. */
static int sentinel_role(struct ews_store *store, char *role, size_t role_size,
                         char *errstr, size_t errstr_size)
{
        redisReply *reply = redisCommand(store->redis, "ROLE");
        int rc = -1;

        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements &&
            reply->element[0]->type == REDIS_REPLY_STRING) {
                snprintf(role, role_size, "%s", reply->element[0]->str);
                rc = 0;
        } else {
                snprintf(errstr, errstr_size, "redis %s:%d ROLE: %s",
                         store->host, store->port,
                         reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                         : reply ? "unexpected reply"
                                 : store->redis->errstr);
        }
        if (reply)
                freeReplyObject(reply);
        return rc;
}

/* Connects to the address s named and checks that it is the primary: 0,
 * or -1 with errstr and no connection. */
static int sentinel_open(struct ews_store *store,
                         const struct store_sentinel *s, char *errstr,
                         size_t errstr_size)
{
        char role[32], why[512];

        if (store_open(store, why, sizeof(why)) ||
            sentinel_role(store, role, sizeof(role), why, sizeof(why)))
                goto fail;
        if (!strcmp(role, "master"))
                return 0;
        snprintf(why, sizeof(why),
                 "redis %s:%d answers ROLE as %s, not as the primary (a "
                 "failover under way, or a sentinel behind)",
                 store->host, store->port, role);
        ews_warn("store",
                 "%s (primary '%s' for sentinel %s:%d): asking the "
                 "next sentinel",
                 why, store->master_name, s->host, s->port);
fail:
        snprintf(errstr, errstr_size, "%s (primary '%s' for sentinel %s:%d)",
                 why, store->master_name, s->host, s->port);
        if (store->redis)
                redisFree(store->redis);
        store->redis = NULL;
        return -1;
}

/* Connected to the primary s named at addr: logged, and counted as a
 * failover when the primary moved since the last connect. */
static void sentinel_found(struct ews_store *store,
                           const struct store_sentinel *s, const char *addr)
{
        if (store->primary[0] && strcmp(store->primary, addr)) {
                store->stats.failovers++;
                ews_warn("store",
                         "redis primary '%s' moved from %s to %s (sentinel "
                         "%s:%d): a failover; the partitions go back to "
                         "their fences on the new primary, and replay what "
                         "it had not received",
                         store->master_name, store->primary, addr, s->host,
                         s->port);
        } else {
                ews_info("store", "redis primary '%s' is %s (sentinel %s:%d)",
                         store->master_name, addr, s->host, s->port);
        }
        snprintf(store->primary, sizeof(store->primary), "%s", addr);
}

int store_sentinel_connect(struct ews_store *store, char *errstr,
                           size_t errstr_size)
{
        char host[EWS_STORE_ADDR_MAX], addr[sizeof(store->primary)];
        char failed[sizeof(addr)] = "", last[1536] = "";
        int i, k, port;

        for (k = 0; k < store->sentinel_cnt; k++) {
                const struct store_sentinel *s;

                i = (store->sentinel_first + k) % store->sentinel_cnt;
                s = &store->sentinels[i];
                if (sentinel_ask(store, s, host, sizeof(host), &port, last,
                                 sizeof(last)))
                        continue;
                snprintf(addr, sizeof(addr), "%s:%d", host, port);
                /* named again by another sentinel: last says why not */
                if (!strcmp(addr, failed))
                        continue;
                snprintf(store->host, sizeof(store->host), "%s", host);
                store->port = port;
                if (sentinel_open(store, s, last, sizeof(last))) {
                        snprintf(failed, sizeof(failed), "%s", addr);
                        continue;
                }
                store->sentinel_first = i;
                sentinel_found(store, s, addr);
                return 0;
        }
        snprintf(errstr, errstr_size, "redis: no primary '%s' from %d %s: %s",
                 store->master_name, store->sentinel_cnt,
                 store->sentinel_cnt == 1 ? "sentinel" : "sentinels", last);
        return -1;
}
