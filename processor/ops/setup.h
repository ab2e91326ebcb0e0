/*
 * Setting up from the configuration: the confs of the stages that only
 * need the configuration (the store, the decoder, the HTTP endpoint), and
 * the checks a start and --check-config make before anything connects, so
 * that both refuse the same things (exit 2).
 */
#ifndef EWS_SETUP_H
#define EWS_SETUP_H

#include <stddef.h>

#include "decode/decode.h"
#include "ops/config.h"
#include "ops/http.h"
#include "out_kafka/out_kafka.h"
#include "store/store.h"

#include <stdbool.h>

/* The store's conf; it borrows c's strings. */
struct ews_store_conf ews_setup_store_conf(const struct ews_config *c);

/* The decoder of c's formats and schemas; NULL with errstr. The caller
 * frees it (ews_decoder_destroy). */
struct ews_decoder *ews_setup_decoder(const struct ews_config *c, char *errstr,
                                      size_t errstr_size);

/* The HTTP endpoint with its own store connection; NULL with errstr. */
struct ews_http *ews_setup_http(const struct ews_config *c, char *errstr,
                                size_t errstr_size);

/* What a start would refuse: librdkafka properties the clients would not
 * take, schema files missing or not parsing. 0, or -1 with errstr naming
 * the file (config_path, or "(defaults)"), line and key. */
int ews_setup_check(const struct ews_config *c, const char *config_path,
                    char *errstr, size_t errstr_size);

/* Parses ews-processor's --end-offsets list, TOPIC:PARTITION=OFFSET
 * separated by commas (TOPIC one of c's input topics), into end (-1 where
 * the list names nothing). 0, or -1 with errstr naming the bad item. */
int ews_setup_end_offsets(const struct ews_config *c, const char *list,
                          int64_t end[EWS_SOURCE_COUNT][EWS_PARTITIONS_MAX],
                          char *errstr, size_t errstr_size);

/* Called once a second while a start waits, with why (what /readyz
 * says); returns false to stop waiting (a signal). */
typedef bool (*ews_setup_wait_fn)(void *opaque, const char *why);

/* What the alert topics need before the first alert: each rule's own
 * topic exists (rules.<rule>.topic, asked of out's brokers), and with
 * alerts.format confluent the alert schema is registered under each alert
 * topic's subject (decoder). Waits while a broker or the registry cannot
 * tell. 0 (also when wait gave up), or -1 with errstr when the registry
 * refused the schema. */
int ews_setup_outputs(const struct ews_config *c, struct ews_out_kafka *out,
                      struct ews_decoder *decoder, ews_setup_wait_fn wait,
                      void *opaque, char *errstr, size_t errstr_size);

/* SIGHUP: the scoring and rule sections of the file at path over config,
 * the rest kept, as is the state. Refused, with an error logged, when the
 * file does not load or its half-life differs (the model's identity: a
 * changed one needs a re-score); a changed rule topic is logged and kept
 * as it was until a restart. */
void ews_setup_reload(struct ews_config *config, const char *path);

#endif
