/*
 * The store's Lua scripts. A script runs atomically but is not a
 * transaction: every check and every parse comes before the first write.
 * Numbers travel as strings formatted by the caller (%.17g for doubles),
 * and leave Lua through string.format('%.17g'): tostring keeps 14 digits.
 *
 * Each script is its own file, processor/store/scripts/<name>.lua, whose
 * header comment names its KEYS, ARGV and replies. The Makefile turns
 * them into $(BUILD)/gen/store/scripts_lua.h: one
 * static const char store_script_<name>[] per file, without its header
 * comment. Here are the argument counts the C side shares with them.
 */
#ifndef EWS_OUT_STORE_SCRIPT_H
#define EWS_OUT_STORE_SCRIPT_H

#include "store/scripts_lua.h"

/* scripts/commit.lua: the header arguments, those per user, campaign,
 * account, outbox record and cohort delta, and the keys before the
 * users'. The funnel's writes (store/funnel.c) come last: a key and
 * three arguments each. */
#define STORE_HEADER_ARGS   13
#define STORE_USER_ARGS     5
#define STORE_CAMPAIGN_ARGS 8
#define STORE_ACCOUNT_ARGS  2
#define STORE_OUTBOX_ARGS   2
#define STORE_COHORT_ARGS   7
#define STORE_FIXED_KEYS    5

#endif
