/* Internal to the rules stage: building alerts. */
#ifndef EWS_FILTER_RULES_INT_H
#define EWS_FILTER_RULES_INT_H

#include "rules/rules.h"

#include <stddef.h>

/* Fills the identity of an episode's event: ids from rule, subject and
 * start only, seq 1 for FIRING and 2 for RESOLVED. */
void rules_alert_init(struct ews_alert *alert, enum ews_rule rule,
                      enum ews_alert_status status, enum ews_severity severity,
                      enum ews_subject subject_type, const char *subject_id,
                      int64_t start_ms, int64_t event_ms, int64_t now_ms);
void rules_alert_value(struct ews_alert *alert, const char *name, double value);
/* The alert's one-line reason, cut to its buffer on a character
 * boundary. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void rules_reason(struct ews_alert *alert, const char *fmt, ...);
void rules_format_time(char *buf, size_t size, int64_t ms);

#endif
