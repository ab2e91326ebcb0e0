#include "ews.h"

const char *ews_rule_name(enum ews_rule rule)
{
        static const char *names[EWS_RULE_COUNT] = {
                "USER_DISENGAGED", "CAMPAIGN_UNDERPERFORMING", "SALES_READY",
                "ACCOUNT_AT_RISK"};
        return (unsigned)rule < EWS_RULE_COUNT ? names[rule] : "UNKNOWN";
}

const char *ews_stage_name(enum ews_stage stage)
{
        switch (stage) {
        case EWS_STAGE_NONE:
                return "none";
        case EWS_STAGE_TRIAL:
                return "trial";
        case EWS_STAGE_CUSTOMER:
                return "customer";
        case EWS_STAGE_LOST:
                return "lost";
        }
        return "unknown";
}
