#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum ews_log_level log_level = EWS_LOG_INFO;
static int log_json;

void ews_log_setup(enum ews_log_level level, int json)
{
        log_level = level;
        log_json = json;
}

enum ews_log_level ews_log_level_from_syslog(int level)
{
        if (level <= EWS_LOG_ERR)
                return EWS_LOG_ERR;
        if (level == EWS_LOG_WARN)
                return EWS_LOG_WARN;
        return level <= EWS_LOG_INFO ? EWS_LOG_INFO : EWS_LOG_DEBUG;
}

int ews_log_enabled(enum ews_log_level level)
{
        return level <= log_level;
}

static const char *log_level_name(enum ews_log_level level)
{
        switch (level) {
        case EWS_LOG_ERR:
                return "error";
        case EWS_LOG_WARN:
                return "warn";
        case EWS_LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

/* JSON output escapes the message; text output prints it as it is. */
static void log_json_string(FILE *fp, const char *s)
{
        fputc('"', fp);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        fprintf(fp, "\\%c", c);
                else if (c < 0x20)
                        fprintf(fp, "\\u%04x", c);
                else
                        fputc(c, fp);
        }
        fputc('"', fp);
}

void ews_log(enum ews_log_level level, const char *module, const char *fmt, ...)
{
        char msg[1024], stamp[32];
        struct timespec ts;
        struct tm tm;
        va_list ap;

        if (!ews_log_enabled(level))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

        /* One fprintf per line keeps lines whole when threads interleave. */
        if (log_json) {
                flockfile(stderr);
                fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",",
                        stamp, ts.tv_nsec / 1000000, log_level_name(level));
                fprintf(stderr, "\"module\":");
                log_json_string(stderr, module);
                fprintf(stderr, ",\"msg\":");
                log_json_string(stderr, msg);
                fprintf(stderr, "}\n");
                funlockfile(stderr);
        } else {
                fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp,
                        ts.tv_nsec / 1000000, log_level_name(level), module,
                        msg);
        }
}
