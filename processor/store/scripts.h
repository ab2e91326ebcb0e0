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
 * comment. The batch's commit is no script: it is native commands in one
 * MULTI/EXEC (round.c).
 */
#ifndef EWS_OUT_STORE_SCRIPT_H
#define EWS_OUT_STORE_SCRIPT_H

#include "store/scripts_lua.h"

#endif
