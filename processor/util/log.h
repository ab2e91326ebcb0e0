/*
 * Logging: one line per record on stderr, text or JSON lines.
 * Levels follow syslog numbering so librdkafka's levels map one to one.
 */
#ifndef EWS_LOG_H
#define EWS_LOG_H

enum ews_log_level {
        EWS_LOG_ERR = 3,
        EWS_LOG_WARN = 4,
        EWS_LOG_INFO = 6,
        EWS_LOG_DEBUG = 7
};

/* syslog level numbers (librdkafka's) to ours. */
enum ews_log_level ews_log_level_from_syslog(int level);

void ews_log_setup(enum ews_log_level level, int json);
int ews_log_enabled(enum ews_log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void ews_log(enum ews_log_level level, const char *module, const char *fmt,
             ...);

#define ews_err(mod, ...)   ews_log(EWS_LOG_ERR, mod, __VA_ARGS__)
#define ews_warn(mod, ...)  ews_log(EWS_LOG_WARN, mod, __VA_ARGS__)
#define ews_info(mod, ...)  ews_log(EWS_LOG_INFO, mod, __VA_ARGS__)
#define ews_debug(mod, ...) ews_log(EWS_LOG_DEBUG, mod, __VA_ARGS__)

#endif
