/*
 * The store's Lua scripts. A script runs atomically but is not a
 * transaction: every check and every parse comes before the first write.
 * Numbers travel as strings formatted by the caller (%.17g for doubles).
 */
#ifndef EWS_OUT_STORE_SCRIPT_H
#define EWS_OUT_STORE_SCRIPT_H

/* KEYS[1] fence. Returns {epoch, offset or '', watermark or ''}. */
static const char store_script_claim[] =
        "local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)\n"
        "local v = redis.call('HMGET', KEYS[1], 'offset', 'watermark')\n"
        "return {e, v[1] or '', v[2] or ''}\n";

#define STORE_USER_ARGS     11
#define STORE_CAMPAIGN_ARGS 7

/*
 * KEYS: fence, timers, then the users' keys, then the campaigns' keys.
 * ARGV: epoch, expected offset ('' for none), next offset, watermark,
 *       user count, campaign count,
 *       per user: id, deadline (0: none), e, er, la, ts, st, ds, ev, a, c
 *       per campaign: name, channel, status, target, launched (0: keep),
 *                     spend to add, signups to add
 * Returns {1}, or {0, 'epoch'|'offset', stored value} when fenced off.
 */
static const char store_script_commit[] =
        "local fence = redis.call('HMGET', KEYS[1], 'epoch', 'offset')\n"
        "if fence[1] ~= ARGV[1] then return {0, 'epoch', fence[1] or ''} end\n"
        "if (fence[2] or '') ~= ARGV[2] then\n"
        "  return {0, 'offset', fence[2] or ''}\n"
        "end\n"
        "local nu, nc = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
        "if not nu or not nc or #KEYS ~= 2 + nu + nc or\n"
        "   #ARGV ~= 6 + nu * 11 + nc * 7 then\n"
        "  return redis.error_reply('ews: malformed commit')\n"
        "end\n"
        "local cb = 7 + nu * 11\n"
        "for i = 0, nu - 1 do\n"
        "  if not tonumber(ARGV[7 + i * 11 + 1]) then\n"
        "    return redis.error_reply('ews: bad deadline')\n"
        "  end\n"
        "end\n"
        "for i = 0, nc - 1 do\n"
        "  local b = cb + i * 7\n"
        "  if not tonumber(ARGV[b + 5]) or not tonumber(ARGV[b + 6]) then\n"
        "    return redis.error_reply('ews: bad campaign counter')\n"
        "  end\n"
        "end\n"
        "for i = 0, nu - 1 do\n"
        "  local b, key = 7 + i * 11, KEYS[3 + i]\n"
        "  redis.call('HSET', key, 'e', ARGV[b + 2], 'er', ARGV[b + 3],\n"
        "    'la', ARGV[b + 4], 'ts', ARGV[b + 5], 'st', ARGV[b + 6],\n"
        "    'ds', ARGV[b + 7], 'ev', ARGV[b + 8], 'a', ARGV[b + 9],\n"
        "    'c', ARGV[b + 10])\n"
        "  if ARGV[b + 1] == '0' then redis.call('ZREM', KEYS[2], ARGV[b])\n"
        "  else redis.call('ZADD', KEYS[2], ARGV[b + 1], ARGV[b]) end\n"
        "end\n"
        "for i = 0, nc - 1 do\n"
        "  local b, key = cb + i * 7, KEYS[3 + nu + i]\n"
        "  if ARGV[b] ~= '' then redis.call('HSET', key, 'name', ARGV[b]) end\n"
        "  if ARGV[b + 1] ~= '' then\n"
        "    redis.call('HSET', key, 'channel', ARGV[b + 1])\n"
        "  end\n"
        "  if ARGV[b + 2] ~= '' then\n"
        "    redis.call('HSET', key, 'status', ARGV[b + 2])\n"
        "  end\n"
        "  if ARGV[b + 3] ~= '' then\n"
        "    redis.call('HSET', key, 'target', ARGV[b + 3])\n"
        "  end\n"
        "  if ARGV[b + 4] ~= '0' then\n"
        "    redis.call('HSET', key, 'launched', ARGV[b + 4])\n"
        "  end\n"
        "  if tonumber(ARGV[b + 5]) ~= 0 then\n"
        "    redis.call('HINCRBYFLOAT', key, 'spend', ARGV[b + 5])\n"
        "  end\n"
        "  if tonumber(ARGV[b + 6]) ~= 0 then\n"
        "    redis.call('HINCRBY', key, 'signups', ARGV[b + 6])\n"
        "  end\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'offset', ARGV[3], 'watermark', ARGV[4])\n"
        "return {1}\n";

#endif
