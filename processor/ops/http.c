#include "ops/http.h"
#include "ops/http_query.h"
#include "util/log.h"
#include "ops/state_json.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The daemon: HTTP_THREADS threads, each polling its share of the
 * connections with epoll, so that a connection costs a socket and a little
 * memory, not a thread: slow clients cannot use up the threads. A client
 * idle for HTTP_TIMEOUT_S is dropped; one address holds at most
 * HTTP_PER_IP connections, all together at most HTTP_CONNECTIONS.
 * /v1 blocks its thread on Redis (at most redis.timeout a call): at most
 * HTTP_V1_BUSY of the threads are in /v1 at once, the rest answer 503 at
 * once, so that HTTP_THREADS - HTTP_V1_BUSY threads always accept and
 * answer /healthz, /readyz and /metrics. */
enum {
        HTTP_THREADS = 4,
        HTTP_V1_BUSY = 2,
        HTTP_TIMEOUT_S = 5,
        HTTP_PER_IP = 32,
        HTTP_CONNECTIONS = 1000,
        HTTP_TOKEN_MAX = 256, /* with its NUL */
};

struct ews_http {
        struct ews_http_conf conf;
        char bind[64];
        /* zero-padded to its size, compared all of it: see http_authorized */
        char token[HTTP_TOKEN_MAX];
        bool has_token;
        bool v1_refused; /* a non-loopback bind and no token */
        struct MHD_Daemon *daemon;
        pthread_mutex_t lock;
        /* under lock: what the main loop published last */
        char *metrics;
        size_t metrics_len;
        bool ready;
        char why[320]; /* /readyz's body when not ready: what it waits for */
        time_t log_second; /* libmicrohttpd's messages: one a second */
        unsigned log_dropped;
        /* /v1's own connection, made on demand; one request at a time. */
        atomic_int v1_busy;
        pthread_mutex_t store_lock;
        struct ews_store *store;
};

/* A request: its URI as the client sent it, before any decoding, so that
 * /v1 decodes the id itself and sees every byte of it (libmicrohttpd's
 * decoded URL ends at the first %00). */
struct http_request {
        bool announced;
        char uri[];
};

static enum MHD_Result http_reply_with(struct MHD_Connection *connection,
                                       unsigned status, const char *type,
                                       char *body, size_t len,
                                       const char *header, const char *value)
{
        struct MHD_Response *response = MHD_create_response_from_buffer(
                len, body, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result rc;

        if (!response) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(response, "Content-Type", type);
        if (header)
                MHD_add_response_header(response, header, value);
        rc = MHD_queue_response(connection, status, response);
        MHD_destroy_response(response);
        return rc;
}

static enum MHD_Result http_reply(struct MHD_Connection *connection,
                                  unsigned status, const char *type, char *body,
                                  size_t len)
{
        return http_reply_with(connection, status, type, body, len, NULL, NULL);
}

static enum MHD_Result http_text_with(struct MHD_Connection *connection,
                                      unsigned status, const char *text,
                                      const char *header, const char *value)
{
        char *body = strdup(text);

        return body ? http_reply_with(connection, status, "text/plain", body,
                                      strlen(body), header, value)
                    : MHD_NO;
}

static enum MHD_Result http_text(struct MHD_Connection *connection,
                                 unsigned status, const char *text)
{
        return http_text_with(connection, status, text, NULL, NULL);
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

static bool http_ready(struct ews_http *http, char *why, size_t why_size)
{
        bool ready;

        pthread_mutex_lock(&http->lock);
        ready = http->ready;
        snprintf(why, why_size, "%s\n", http->why[0] ? http->why : "not ready");
        pthread_mutex_unlock(&http->lock);
        return ready;
}

/* The token given, zero-padded to the size of the token's buffer, is
 * compared with all of that buffer: the time taken depends on the length
 * given, never on the token's, nor on where they differ. */
static bool http_authorized(struct ews_http *http,
                            struct MHD_Connection *connection)
{
        const char *got = MHD_lookup_connection_value(
                connection, MHD_HEADER_KIND, "Authorization");
        unsigned char given[HTTP_TOKEN_MAX] = {0};
        unsigned diff = 0;
        size_t len, i;

        if (!http->has_token)
                return true;
        if (!got || strncmp(got, "Bearer ", 7))
                return false;
        len = strlen(got + 7);
        if (len >= sizeof(given))
                return false; /* longer than any token can be */
        memcpy(given, got + 7, len);
        for (i = 0; i < sizeof(given); i++)
                diff |= given[i] ^ (unsigned char)http->token[i];
        return diff == 0;
}

static int http_hex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if it is not one:
 * overlong forms, surrogates and past U+10FFFF are not. C0 and C1 controls
 * and DEL are refused as well: an id is printable. */
static size_t http_utf8(const unsigned char *s, size_t n)
{
        uint32_t cp;
        size_t len, i;

        if (s[0] < 0x80)
                return s[0] >= 0x20 && s[0] != 0x7f;
        if ((s[0] & 0xe0) == 0xc0)
                len = 2, cp = s[0] & 0x1fu;
        else if ((s[0] & 0xf0) == 0xe0)
                len = 3, cp = s[0] & 0x0fu;
        else if ((s[0] & 0xf8) == 0xf0)
                len = 4, cp = s[0] & 0x07u;
        else
                return 0;
        if (len > n)
                return 0;
        for (i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
                return 0;
        return len;
}

/* Decodes the path of a raw URI (up to '?') into out (size bytes). NULL, or
 * why the path cannot name anything. */
static const char *http_decode_path(const char *uri, char *out, size_t size)
{
        size_t used = 0, i, n;

        for (; *uri && *uri != '?' && *uri != '#'; uri++) {
                int c = (unsigned char)*uri;

                if (c == '%') {
                        int hi = http_hex(uri[1]),
                            lo = hi < 0 ? -1 : http_hex(uri[2]);

                        if (lo < 0)
                                return "a malformed %-escape";
                        c = hi << 4 | lo;
                        uri += 2;
                }
                if (used + 1 >= size)
                        return "more bytes than an id may have";
                out[used++] = (char)c;
        }
        out[used] = '\0';
        for (i = 0; i < used; i += n)
                if (!(n = http_utf8((const unsigned char *)out + i, used - i)))
                        return "a NUL, a control character or invalid UTF-8";
        return NULL;
}

static void http_client(struct MHD_Connection *connection, char *out,
                        size_t size)
{
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(
                connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = info ? info->client_addr : NULL;

        snprintf(out, size, "?");
        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET,
                          &((const struct sockaddr_in *)(const void *)sa)
                                   ->sin_addr,
                          out, (socklen_t)size);
        else if (sa && sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6,
                          &((const struct sockaddr_in6 *)(const void *)sa)
                                   ->sin6_addr,
                          out, (socklen_t)size);
}

/* path: decoded, checked; kind and id taken from it. */
static enum MHD_Result http_v1_locked(struct ews_http *http,
                                      struct MHD_Connection *connection,
                                      const char *method, const char *kind,
                                      const char *id)
{
        char errstr[512], client[INET6_ADDRSTRLEN];
        enum ews_store_result result = EWS_STORE_ERROR;
        json_t *json = NULL;

        if (!http->store) {
                http->store = ews_store_new(&http->conf.store, errstr,
                                            sizeof(errstr));
                if (!http->store)
                        return http_text(connection, 503,
                                         "store unavailable\n");
        }
        if (!kind[0]) { /* funnel, segments: http_query.c */
                unsigned status;

                json = ews_http_query(http->store, &http->conf.query,
                                      connection, method, id, &status, errstr,
                                      sizeof(errstr));
                return json ? http_json(connection, status, json)
                            : http_text(connection, status, errstr);
        }
        if (!strcmp(method, "DELETE")) {
                if (strcmp(kind, "users"))
                        return http_text(connection, 405, "only users\n");
                http_client(connection, client, sizeof(client));
                result = ews_store_user_erase(http->store, id, errstr,
                                              sizeof(errstr));
                ews_info("http", "erasure of user %s asked by %s: %s", id,
                         client,
                         result == EWS_STORE_OK          ? "erased"
                         : result == EWS_STORE_NOT_FOUND ? "not found"
                                                         : "failed");
                if (result == EWS_STORE_OK) {
                        return http_json(connection, 200,
                                         json_pack("{s:s, s:b}", "user_id", id,
                                                   "erased", 1));
                }
        } else if (!strcmp(kind, "users")) {
                static struct ews_user user;

                result = ews_store_user_get(http->store, id, &user, NULL,
                                            errstr, sizeof(errstr));
                if (result == EWS_STORE_OK)
                        json = ews_json_user(&user,
                                             http->conf.query.half_life_ms, 0);
        } else if (!strcmp(kind, "accounts")) {
                struct ews_account account;

                result = ews_store_account_get(
                        http->store, id,
                        http->conf.query.account_active_window_ms, &account,
                        errstr, sizeof(errstr));
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
                               const char *method, const char *uri)
{
        char path[4 + 16 + 1 + EWS_ID_MAX + 1], kind[16];
        const char *why;
        enum MHD_Result rc;
        int n = 0;

        if (http->v1_refused)
                return http_text(connection, 403,
                                 "/v1 is off: http.bind is not a loopback "
                                 "address and no http.token is set\n");
        if (!http_authorized(http, connection))
                return http_text_with(connection, 401,
                                      "bearer token required\n",
                                      "WWW-Authenticate", "Bearer");
        why = http_decode_path(uri, path, sizeof(path));
        if (why) {
                char text[128];

                snprintf(text, sizeof(text), "bad id: the path holds %s\n",
                         why);
                return http_text(connection, 400, text);
        }
        if (ews_http_query_path(path))
                kind[0] = '\0'; /* its id: the path */
        else if (sscanf(path, "/v1/%15[a-z]/%n", kind, &n) != 1 || !n ||
                 !path[n] || strlen(path + n) >= EWS_ID_MAX ||
                 strchr(path + n, '/'))
                return http_text(connection, 404, "not found\n");
        if (atomic_fetch_add(&http->v1_busy, 1) >= HTTP_V1_BUSY) {
                atomic_fetch_sub(&http->v1_busy, 1);
                return http_text_with(connection, 503, "busy\n", "Retry-After",
                                      "1");
        }
        pthread_mutex_lock(&http->store_lock);
        rc = http_v1_locked(http, connection, method, kind, path + n);
        pthread_mutex_unlock(&http->store_lock);
        atomic_fetch_sub(&http->v1_busy, 1);
        return rc;
}

static enum MHD_Result http_handle(void *opaque,
                                   struct MHD_Connection *connection,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *data_size, void **state)
{
        struct ews_http *http = opaque;
        struct http_request *request = *state;
        char why[330];

        (void)version;
        (void)data;
        if (!request)
                return MHD_NO; /* http_uri_log found no memory */
        /* The first call only announces the request; answer the second. */
        if (!request->announced) {
                request->announced = true;
                return MHD_YES;
        }
        if (*data_size) {
                *data_size = 0; /* no endpoint takes a body */
                return MHD_YES;
        }
        if (!strncmp(url, "/v1/", 4) &&
            (!strcmp(method, "GET") || !strcmp(method, "DELETE")))
                return http_v1(http, connection, method, request->uri);
        if (strcmp(method, "GET"))
                return http_text(connection, 405, "method not allowed\n");
        if (!strcmp(url, "/metrics"))
                return http_metrics(http, connection);
        if (!strcmp(url, "/healthz"))
                return http_text(connection, 200, "ok\n");
        if (!strcmp(url, "/readyz"))
                return http_ready(http, why, sizeof(why))
                               ? http_text(connection, 200, "ready\n")
                               : http_text(connection, 503, why);
        return http_text(connection, 404, "not found\n");
}

/* Called with the request line's URI as sent; what it returns is the
 * request's state. */
static void *http_uri_log(void *opaque, const char *uri,
                          struct MHD_Connection *connection)
{
        size_t len = strlen(uri);
        struct http_request *request = malloc(sizeof(*request) + len + 1);

        (void)opaque;
        (void)connection;
        if (request) {
                request->announced = false;
                memcpy(request->uri, uri, len + 1);
        }
        return request;
}

static void http_completed(void *opaque, struct MHD_Connection *connection,
                           void **state, enum MHD_RequestTerminationCode code)
{
        (void)opaque;
        (void)connection;
        (void)code;
        free(*state);
        *state = NULL;
}

/* libmicrohttpd's own messages (a refused connection, say) come at the
 * rate clients make them: one a second gets to the log. */
static void http_mhd_log(void *opaque, const char *fmt, va_list ap)
{
        struct ews_http *http = opaque;
        time_t now = time(NULL);
        unsigned dropped = 0;
        bool log = false;
        char msg[256];
        size_t len;

        pthread_mutex_lock(&http->lock);
        if (now != http->log_second) {
                http->log_second = now;
                dropped = http->log_dropped;
                http->log_dropped = 0;
                log = true;
        } else {
                http->log_dropped++;
        }
        pthread_mutex_unlock(&http->lock);
        if (!log)
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
                msg[--len] = '\0';
        if (dropped)
                ews_warn("http", "%s (and %u more messages)", msg, dropped);
        else
                ews_warn("http", "%s", msg);
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
        if (conf->token && strlen(conf->token) >= sizeof(http->token)) {
                snprintf(errstr, errstr_size,
                         "http.token: longer than %zu bytes",
                         sizeof(http->token) - 1);
                free(http);
                return NULL;
        }
        /* the rest of the buffer stays zero: see http_authorized */
        if (conf->token)
                memcpy(http->token, conf->token, strlen(conf->token));
        http->has_token = http->token[0] != '\0';
        /* before it listens: no request sees it without its reason */
        snprintf(http->why, sizeof(http->why), "%s",
                 conf->why ? conf->why : "");
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
        /* 127.0.0.0/8 is loopback; anything else may be reached by others */
        if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127 && !http->has_token) {
                http->v1_refused = true;
                ews_warn("http",
                         "http.bind %s is not a loopback address and "
                         "http.token is not set: /v1 answers 403 (metrics "
                         "and health are served); set http.token to serve it",
                         http->bind);
        }
        http->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                        MHD_USE_ERROR_LOG,
                (uint16_t)conf->port, NULL, NULL, http_handle, http,
                MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, http,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP,
                MHD_OPTION_URI_LOG_CALLBACK, http_uri_log, http,
                MHD_OPTION_NOTIFY_COMPLETED, http_completed, http,
                MHD_OPTION_END);
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

void ews_http_publish_why(struct ews_http *http, const char *why)
{
        pthread_mutex_lock(&http->lock);
        snprintf(http->why, sizeof(http->why), "%s", why ? why : "");
        pthread_mutex_unlock(&http->lock);
}
