#include "util/timearg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool ews_timearg_parse(const char *s, int64_t *ms)
{
        struct tm tm;
        char *end;
        long long v;
        int n = 0;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (!errno && end != s && !*end && v > 0) {
                *ms = v;
                return true;
        }
        memset(&tm, 0, sizeof(tm));
        if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &n) != 3)
                return false;
        s += n;
        if (*s == 'T' || *s == ' ') {
                n = 0;
                if (sscanf(s + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) !=
                    2)
                        return false;
                s += 1 + n;
                n = 0;
                if (*s == ':' && sscanf(s + 1, "%2d%n", &tm.tm_sec, &n) == 1)
                        s += 1 + n;
                s += *s == 'Z';
        }
        if (*s || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
            tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
                return false;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        *ms = (int64_t)timegm(&tm) * 1000;
        return true;
}
