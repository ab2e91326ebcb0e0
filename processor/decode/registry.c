#include "decode/registry.h"

#include <curl/curl.h>
#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGISTRY_BODY_MAX (1 << 20) /* a schema larger than this is wrong */

struct registry {
        CURL *curl;
        char url[1024];
        char *body;
        size_t body_len, body_cap;
};

static size_t registry_write(char *data, size_t size, size_t n, void *opaque)
{
        struct registry *registry = opaque;
        size_t len = size * n;

        if (registry->body_len + len + 1 > REGISTRY_BODY_MAX)
                return 0; /* makes curl fail the transfer */
        if (registry->body_len + len + 1 > registry->body_cap) {
                size_t cap = registry->body_cap ? registry->body_cap : 4096;
                char *body;

                while (cap < registry->body_len + len + 1)
                        cap *= 2;
                body = realloc(registry->body, cap);
                if (!body)
                        return 0;
                registry->body = body;
                registry->body_cap = cap;
        }
        memcpy(registry->body + registry->body_len, data, len);
        registry->body_len += len;
        registry->body[registry->body_len] = '\0';
        return len;
}

struct registry *registry_new(const char *url, const char *user,
                              const char *password, int64_t timeout_ms,
                              char *errstr, size_t errstr_size)
{
        struct registry *registry = calloc(1, sizeof(*registry));
        size_t len;

        if (!registry || !(registry->curl = curl_easy_init())) {
                snprintf(errstr, errstr_size, "registry: out of memory");
                registry_destroy(registry);
                return NULL;
        }
        snprintf(registry->url, sizeof(registry->url), "%s", url);
        len = strlen(registry->url);
        while (len && registry->url[len - 1] == '/')
                registry->url[--len] = '\0';
        curl_easy_setopt(registry->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(registry->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)timeout_ms);
        curl_easy_setopt(registry->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(registry->curl, CURLOPT_WRITEFUNCTION, registry_write);
        curl_easy_setopt(registry->curl, CURLOPT_WRITEDATA, registry);
        curl_easy_setopt(registry->curl, CURLOPT_USERAGENT, "ews-processor");
        if (user && *user) {
                curl_easy_setopt(registry->curl, CURLOPT_HTTPAUTH,
                                 (long)CURLAUTH_BASIC);
                curl_easy_setopt(registry->curl, CURLOPT_USERNAME, user);
                curl_easy_setopt(registry->curl, CURLOPT_PASSWORD,
                                 password ? password : "");
        }
        return registry;
}

void registry_destroy(struct registry *registry)
{
        if (!registry)
                return;
        if (registry->curl)
                curl_easy_cleanup(registry->curl);
        free(registry->body);
        free(registry);
}

enum registry_status registry_fetch(struct registry *registry, int32_t id,
                                    char **schema, char *errstr,
                                    size_t errstr_size)
{
        enum registry_status status = REGISTRY_UNAVAILABLE;
        json_t *body = NULL, *text;
        char url[1200];
        long code = 0;
        CURLcode rc;

        *schema = NULL;
        snprintf(url, sizeof(url), "%s/schemas/ids/%d", registry->url, (int)id);
        registry->body_len = 0;
        curl_easy_setopt(registry->curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(registry->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(registry->curl, CURLOPT_URL, url);
        rc = curl_easy_perform(registry->curl);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "registry %s: %s", url,
                         curl_easy_strerror(rc));
                goto out;
        }
        curl_easy_getinfo(registry->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code == 404) {
                snprintf(errstr, errstr_size, "registry has no schema id %d",
                         (int)id);
                status = REGISTRY_NOT_FOUND;
                goto out;
        }
        if (code != 200) {
                snprintf(errstr, errstr_size, "registry %s: HTTP %ld", url,
                         code);
                goto out;
        }
        body = json_loadb(registry->body ? registry->body : "",
                          registry->body_len, 0, NULL);
        text = body ? json_object_get(body, "schema") : NULL;
        if (!json_is_string(text)) {
                snprintf(errstr, errstr_size,
                         "registry %s: answer has no \"schema\"", url);
                goto out;
        }
        *schema = strdup(json_string_value(text));
        status = *schema ? REGISTRY_OK : REGISTRY_UNAVAILABLE;
out:
        json_decref(body);
        return status;
}

enum registry_status registry_register(struct registry *registry,
                                       const char *subject, const char *schema,
                                       int32_t *id, char *errstr,
                                       size_t errstr_size)
{
        enum registry_status status = REGISTRY_UNAVAILABLE;
        json_t *request = json_pack("{s:s}", "schema", schema), *body = NULL;
        struct curl_slist *headers = curl_slist_append(
                NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
        char url[1400], *text = request ? json_dumps(request, 0) : NULL;
        const char *message;
        json_int_t got;
        long code = 0;
        CURLcode rc;

        snprintf(url, sizeof(url), "%s/subjects/%s/versions", registry->url,
                 subject);
        if (!text || !headers) {
                snprintf(errstr, errstr_size, "registry: out of memory");
                goto out;
        }
        registry->body_len = 0;
        curl_easy_setopt(registry->curl, CURLOPT_URL, url);
        curl_easy_setopt(registry->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(registry->curl, CURLOPT_POSTFIELDS, text);
        rc = curl_easy_perform(registry->curl);
        curl_easy_setopt(registry->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(registry->curl, CURLOPT_HTTPGET, 1L);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "registry %s: %s", url,
                         curl_easy_strerror(rc));
                goto out;
        }
        curl_easy_getinfo(registry->curl, CURLINFO_RESPONSE_CODE, &code);
        body = json_loadb(registry->body ? registry->body : "",
                          registry->body_len, 0, NULL);
        if (code == 409 || code == 422) {
                message = json_string_value(json_object_get(body, "message"));
                snprintf(errstr, errstr_size, "registry %s: HTTP %ld: %s", url,
                         code, message ? message : "refused");
                status = REGISTRY_REFUSED;
                goto out;
        }
        got = json_integer_value(json_object_get(body, "id"));
        if (code != 200 || !json_is_integer(json_object_get(body, "id")) ||
            got < 0 || got > INT32_MAX) {
                snprintf(errstr, errstr_size,
                         "registry %s: HTTP %ld without an id", url, code);
                goto out;
        }
        *id = (int32_t)got;
        status = REGISTRY_OK;
out:
        curl_slist_free_all(headers);
        json_decref(request);
        json_decref(body);
        free(text);
        return status;
}
