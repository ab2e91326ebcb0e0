#include "ops/http.h"
#include "util/log.h"
#include "ops/state_json.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ews_http {
        struct ews_http_conf conf;
        char bind[64];
        char token[256];
        struct MHD_Daemon *daemon;
        pthread_mutex_t lock;
        /* under lock: what the main loop published last */
        char *metrics;
        size_t metrics_len;
        bool ready;
        /* /v1's own connection, made on demand; one request at a time. */
        pthread_mutex_t store_lock;
        struct ews_store *store;
};

static enum MHD_Result http_reply(struct MHD_Connection *connection,
                                  unsigned status, const char *type, char *body,
                                  size_t len)
{
        struct MHD_Response *response = MHD_create_response_from_buffer(
                len, body, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result rc;

        if (!response) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(response, "Content-Type", type);
        rc = MHD_queue_response(connection, status, response);
        MHD_destroy_response(response);
        return rc;
}

static enum MHD_Result http_text(struct MHD_Connection *connection,
                                 unsigned status, const char *text)
{
        char *body = strdup(text);

        return body ? http_reply(connection, status, "text/plain", body,
                                 strlen(body))
                    : MHD_NO;
}

static enum MHD_Result http_json(struct MHD_Connection *connection,
                                 unsigned status, json_t *json)
{
        char *body = json ? json_dumps(json,
                                       JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
                          : NULL;

        json_decref(json);
        if (!body)
                return http_text(connection, 500, "out of memory\n");
        return http_reply(connection, status, "application/json", body,
                          strlen(body));
}

static enum MHD_Result http_metrics(struct ews_http *http,
                                    struct MHD_Connection *connection)
{
        char *body;
        size_t len;

        pthread_mutex_lock(&http->lock);
        len = http->metrics_len;
        body = malloc(len + 1);
        if (body)
                memcpy(body, http->metrics ? http->metrics : "", len + 1);
        pthread_mutex_unlock(&http->lock);
        if (!body)
                return http_text(connection, 500, "out of memory\n");
        return http_reply(connection, 200, "text/plain; version=0.0.4", body,
                          len);
}

static bool http_ready(struct ews_http *http)
{
        bool ready;

        pthread_mutex_lock(&http->lock);
        ready = http->ready;
        pthread_mutex_unlock(&http->lock);
        return ready;
}

/* Compares all of it, so that timing says nothing about the token. */
static bool http_authorized(struct ews_http *http,
                            struct MHD_Connection *connection)
{
        const char *got = MHD_lookup_connection_value(
                connection, MHD_HEADER_KIND, "Authorization");
        size_t want_len = strlen(http->token), i;
        unsigned char diff = 0;

        if (!want_len)
                return true;
        if (!got || strncmp(got, "Bearer ", 7) || strlen(got + 7) != want_len)
                return false;
        for (i = 0; i < want_len; i++)
                diff |= (unsigned char)(got[7 + i] ^ http->token[i]);
        return diff == 0;
}

static enum MHD_Result http_v1_locked(struct ews_http *http,
                                      struct MHD_Connection *connection,
                                      const char *method, const char *path)
{
        char kind[16], id[EWS_ID_MAX], errstr[512];
        enum ews_store_result result = EWS_STORE_ERROR;
        json_t *json = NULL;
        int n = 0;

        if (!http_authorized(http, connection))
                return http_text(connection, 401, "bearer token required\n");
        if (sscanf(path, "/v1/%15[a-z]/%n", kind, &n) != 1 || !n || !path[n] ||
            strlen(path + n) >= sizeof(id) || strchr(path + n, '/'))
                return http_text(connection, 404, "not found\n");
        snprintf(id, sizeof(id), "%s", path + n);
        if (!http->store) {
                http->store = ews_store_new(&http->conf.store, errstr,
                                            sizeof(errstr));
                if (!http->store)
                        return http_text(connection, 503,
                                         "store unavailable\n");
        }
        if (!strcmp(method, "DELETE")) {
                if (strcmp(kind, "users"))
                        return http_text(connection, 405, "only users\n");
                result = ews_store_user_erase(http->store, id, errstr,
                                              sizeof(errstr));
                if (result == EWS_STORE_OK) {
                        ews_info("http", "erased user %s", id);
                        return http_json(connection, 200,
                                         json_pack("{s:s, s:b}", "user_id", id,
                                                   "erased", 1));
                }
        } else if (!strcmp(kind, "users")) {
                static struct ews_user user;

                result = ews_store_user_get(http->store, id, &user, NULL,
                                            errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_user(&user, http->conf.half_life_ms, 0);
        } else if (!strcmp(kind, "accounts")) {
                struct ews_account account;

                result = ews_store_account_get(
                        http->store, id, http->conf.account_active_window_ms,
                        &account, errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_account(&account);
        } else if (!strcmp(kind, "campaigns")) {
                struct ews_campaign campaign;

                result = ews_store_campaign_get(http->store, id, &campaign,
                                                errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_campaign(&campaign);
        } else {
                return http_text(connection, 404, "not found\n");
        }
        if (result == EWS_STORE_NOT_FOUND)
                return http_text(connection, 404, "not found\n");
        if (result != EWS_STORE_OK) {
                ews_warn("http", "%s", errstr);
                return http_text(connection, 503, "store unavailable\n");
        }
        return http_json(connection, 200, json);
}

static enum MHD_Result http_v1(struct ews_http *http,
                               struct MHD_Connection *connection,
                               const char *method, const char *path)
{
        enum MHD_Result rc;

        pthread_mutex_lock(&http->store_lock);
        rc = http_v1_locked(http, connection, method, path);
        pthread_mutex_unlock(&http->store_lock);
        return rc;
}

static enum MHD_Result http_handle(void *opaque,
                                   struct MHD_Connection *connection,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *data_size, void **state)
{
        struct ews_http *http = opaque;

        (void)version;
        (void)data;
        /* The first call only announces the request; answer the second. */
        if (!*state) {
                *state = http;
                return MHD_YES;
        }
        if (*data_size) {
                *data_size = 0; /* no endpoint takes a body */
                return MHD_YES;
        }
        if (!strncmp(url, "/v1/", 4) &&
            (!strcmp(method, "GET") || !strcmp(method, "DELETE")))
                return http_v1(http, connection, method, url);
        if (strcmp(method, "GET"))
                return http_text(connection, 405, "method not allowed\n");
        if (!strcmp(url, "/metrics"))
                return http_metrics(http, connection);
        if (!strcmp(url, "/healthz"))
                return http_text(connection, 200, "ok\n");
        if (!strcmp(url, "/readyz"))
                return http_ready(http)
                               ? http_text(connection, 200, "ready\n")
                               : http_text(connection, 503, "not ready\n");
        return http_text(connection, 404, "not found\n");
}

struct ews_http *ews_http_new(const struct ews_http_conf *conf, char *errstr,
                              size_t errstr_size)
{
        struct ews_http *http = calloc(1, sizeof(*http));
        struct sockaddr_in addr;

        if (!http) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        http->conf = *conf;
        snprintf(http->bind, sizeof(http->bind), "%s",
                 conf->bind && *conf->bind ? conf->bind : "127.0.0.1");
        snprintf(http->token, sizeof(http->token), "%s",
                 conf->token ? conf->token : "");
        pthread_mutex_init(&http->lock, NULL);
        pthread_mutex_init(&http->store_lock, NULL);
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)conf->port);
        if (inet_pton(AF_INET, http->bind, &addr.sin_addr) != 1) {
                snprintf(errstr, errstr_size,
                         "http.bind: %s is not an IPv4 address", http->bind);
                goto fail;
        }
        http->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD |
                        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
                (uint16_t)conf->port, NULL, NULL, http_handle, http,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
        if (!http->daemon) {
                snprintf(errstr, errstr_size, "http: cannot listen on %s:%d",
                         http->bind, conf->port);
                goto fail;
        }
        return http;
fail:
        ews_http_destroy(http);
        return NULL;
}

void ews_http_destroy(struct ews_http *http)
{
        if (!http)
                return;
        if (http->daemon)
                MHD_stop_daemon(http->daemon);
        ews_store_destroy(http->store);
        pthread_mutex_destroy(&http->lock);
        pthread_mutex_destroy(&http->store_lock);
        free(http->metrics);
        free(http);
}

void ews_http_publish(struct ews_http *http, const char *metrics, size_t len,
                      bool ready)
{
        char *copy = malloc(len + 1);

        if (copy) {
                memcpy(copy, metrics, len);
                copy[len] = '\0';
        }
        pthread_mutex_lock(&http->lock);
        if (copy) {
                free(http->metrics);
                http->metrics = copy;
                http->metrics_len = len;
        }
        http->ready = ready;
        pthread_mutex_unlock(&http->lock);
}
