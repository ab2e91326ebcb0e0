/*
 * Internal to the decode module: the Schema Registry's REST API, asked
 * for a writer schema by id (GET /schemas/ids/{id}), and told the alert
 * schema (POST /subjects/{subject}/versions). Only a 404 says the schema
 * does not exist, only a 409 or 422 that a schema is refused; anything
 * else (refused connection, timeout, 5xx, 401) is an outage, to be
 * retried.
 */
#ifndef EWS_FILTER_DECODE_REGISTRY_H
#define EWS_FILTER_DECODE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

enum registry_status {
        REGISTRY_OK,
        REGISTRY_NOT_FOUND,
        REGISTRY_UNAVAILABLE,
        REGISTRY_REFUSED /* a schema it will not register (409, 422) */
};

struct registry;

/* user and password may be NULL (no authentication). NULL on error. */
struct registry *registry_new(const char *url, const char *user,
                              const char *password, int64_t timeout_ms,
                              char *errstr, size_t errstr_size);
void registry_destroy(struct registry *registry);

/* The schema of id as JSON text into *schema, which the caller frees. */
enum registry_status registry_fetch(struct registry *registry, int32_t id,
                                    char **schema, char *errstr,
                                    size_t errstr_size);

/* Registers schema (JSON text) under subject (POST
 * /subjects/{subject}/versions; the same schema again gets its id again):
 * its id into *id. */
enum registry_status registry_register(struct registry *registry,
                                       const char *subject, const char *schema,
                                       int32_t *id, char *errstr,
                                       size_t errstr_size);

#endif
