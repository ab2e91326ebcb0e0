#include "util/ews.h"

const char *ews_rule_name(enum ews_rule rule)
{
        static const char *names[EWS_RULE_COUNT] = {
                "USER_DISENGAGED", "CAMPAIGN_UNDERPERFORMING", "SALES_READY",
                "ACCOUNT_AT_RISK"};
        return (unsigned)rule < EWS_RULE_COUNT ? names[rule] : "UNKNOWN";
}

bool ews_stage_in_trial(enum ews_stage stage)
{
        return stage == EWS_STAGE_TRIAL || stage == EWS_STAGE_ACTIVATED ||
               stage == EWS_STAGE_SALES_READY;
}

uint8_t ews_funnel_reached(const struct ews_user *user)
{
        uint8_t bits = 0;

        if (user->trial_started_ms)
                bits |= 1u << EWS_FUNNEL_SIGNUP;
        if (user->activated_ms)
                bits |= 1u << EWS_FUNNEL_ACTIVATED;
        if (user->stage == EWS_STAGE_SALES_READY)
                bits |= 1u << EWS_FUNNEL_SALES_READY;
        if (user->stage == EWS_STAGE_CUSTOMER)
                bits |= 1u << EWS_FUNNEL_CUSTOMER;
        if (user->stage == EWS_STAGE_LOST)
                bits |= 1u << EWS_FUNNEL_LOST;
        return bits;
}

const char *ews_funnel_name(enum ews_funnel_stage stage)
{
        static const char *names[EWS_FUNNEL_COUNT] = {
                "signed_up", "activated", "sales_ready", "customer", "lost"};

        return (unsigned)stage < EWS_FUNNEL_COUNT ? names[stage] : "?";
}

const char *ews_stage_name(enum ews_stage stage)
{
        static const char *names[EWS_STAGE_COUNT] = {"none",      "trial",
                                                     "activated", "sales_ready",
                                                     "customer",  "lost"};
        return (unsigned)stage < EWS_STAGE_COUNT ? names[stage] : "unknown";
}

const char *ews_alert_status_name(enum ews_alert_status status)
{
        return status == EWS_ALERT_RESOLVED ? "RESOLVED" : "FIRING";
}

const char *ews_severity_name(enum ews_severity severity)
{
        static const char *names[] = {"INFO", "WARNING", "CRITICAL"};
        return (unsigned)severity < 3 ? names[severity] : "UNKNOWN";
}

const char *ews_subject_name(enum ews_subject subject)
{
        static const char *names[] = {"USER", "ACCOUNT", "CAMPAIGN"};
        return (unsigned)subject < 3 ? names[subject] : "UNKNOWN";
}
