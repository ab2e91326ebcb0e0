/*
 * A point in time as the tools take it on their command lines
 * (`--from`, `--to`): a date, a date and time of day in UTC, or
 * milliseconds since the epoch. One parser, so that every tool reads the
 * same text as the same instant.
 */
#ifndef EWS_TIMEARG_H
#define EWS_TIMEARG_H

#include <stdbool.h>
#include <stdint.h>

/* 2026-01-05, 2026-01-05T09:30[:00][Z] (UTC, a space for the T too) or
 * milliseconds (> 0) into *ms; false, *ms untouched, for anything else. */
bool ews_timearg_parse(const char *s, int64_t *ms);

#endif
