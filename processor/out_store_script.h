/*
 * The store's Lua scripts. A script runs atomically but is not a
 * transaction: every check and every parse comes before the first write.
 * Numbers travel as strings formatted by the caller (%.17g for doubles),
 * and leave Lua through string.format('%.17g'): tostring keeps 14 digits.
 */
#ifndef EWS_OUT_STORE_SCRIPT_H
#define EWS_OUT_STORE_SCRIPT_H

/* KEYS[1] fence. Returns {epoch, offset or '', watermark or ''}. */
static const char store_script_claim[] =
        "local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)\n"
        "local v = redis.call('HMGET', KEYS[1], 'offset', 'watermark')\n"
        "return {e, v[1] or '', v[2] or ''}\n";

#define STORE_HEADER_ARGS   9
#define STORE_USER_ARGS     5
#define STORE_CAMPAIGN_ARGS 8
#define STORE_ACCOUNT_ARGS  2

/*
 * KEYS: fence, timers, the users' keys, the campaigns' keys, the accounts'
 *       hashes, the accounts' member sets.
 * ARGV: epoch, expected offset ('' for none), next offset, watermark,
 *       user count, campaign count, account count, retention ms, H ms,
 *       per user: id, deadline (0: none), packed value, last activity,
 *                 account index (0: none, else 1-based)
 *       per campaign: name, channel, status, target, launched (0: keep),
 *                     spend to add, signups to add, activated to add
 *       per account: points, at (ms): folded into (e, er)
 * Returns {1}, or {0, 'epoch'|'offset', stored value} when fenced off.
 */
static const char store_script_commit[] =
        "local fence = redis.call('HMGET', KEYS[1], 'epoch', 'offset')\n"
        "if fence[1] ~= ARGV[1] then return {0, 'epoch', fence[1] or ''} end\n"
        "if (fence[2] or '') ~= ARGV[2] then\n"
        "  return {0, 'offset', fence[2] or ''}\n"
        "end\n"
        "local nu, nc, na = tonumber(ARGV[5]), tonumber(ARGV[6]),\n"
        "  tonumber(ARGV[7])\n"
        "local retention, hl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
        "local wm = tonumber(ARGV[4])\n"
        "if not nu or not nc or not na or not retention or not hl or\n"
        "   not wm or #KEYS ~= 2 + nu + nc + 2 * na or\n"
        "   #ARGV ~= 9 + nu * 5 + nc * 8 + na * 2 then\n"
        "  return redis.error_reply('ews: malformed commit')\n"
        "end\n"
        "local cb, ab = 10 + nu * 5, 10 + nu * 5 + nc * 8\n"
        "for i = 0, nu - 1 do\n"
        "  local b = 10 + i * 5\n"
        "  local acc = tonumber(ARGV[b + 4])\n"
        "  if not tonumber(ARGV[b + 1]) or not tonumber(ARGV[b + 3]) or\n"
        "     not acc or acc < 0 or acc > na then\n"
        "    return redis.error_reply('ews: bad user ' .. ARGV[b])\n"
        "  end\n"
        "end\n"
        "for i = 0, nc - 1 do\n"
        "  local b = cb + i * 8\n"
        "  if not tonumber(ARGV[b + 5]) or not tonumber(ARGV[b + 6]) or\n"
        "     not tonumber(ARGV[b + 7]) then\n"
        "    return redis.error_reply('ews: bad campaign counter')\n"
        "  end\n"
        "end\n"
        "local folded = {}\n"
        "for i = 0, na - 1 do\n"
        "  local b, key = ab + i * 2, KEYS[3 + nu + nc + i]\n"
        "  local p, t = tonumber(ARGV[b]), tonumber(ARGV[b + 1])\n"
        "  if not p or not t then\n"
        "    return redis.error_reply('ews: bad account points')\n"
        "  end\n"
        "  local cur = redis.call('HMGET', key, 'e', 'er')\n"
        "  local e, er = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0\n"
        "  if er == 0 then e, er = e + p, t\n"
        "  elseif t >= er then e, er = e * 2 ^ (-(t - er) / hl) + p, t\n"
        "  else e = e + p * 2 ^ (-(er - t) / hl) end\n"
        "  folded[i] = {string.format('%.17g', e), string.format('%.17g', "
        "er)}\n"
        "end\n"
        "for i = 0, nu - 1 do\n"
        "  local b, key = 10 + i * 5, KEYS[3 + i]\n"
        "  redis.call('SET', key, ARGV[b + 2], 'PX', retention)\n"
        "  if ARGV[b + 1] == '0' then redis.call('ZREM', KEYS[2], ARGV[b])\n"
        "  else redis.call('ZADD', KEYS[2], ARGV[b + 1], ARGV[b]) end\n"
        "  local acc = tonumber(ARGV[b + 4])\n"
        "  if acc > 0 and ARGV[b + 3] ~= '0' then\n"
        "    redis.call('ZADD', KEYS[2 + nu + nc + na + acc], 'GT',\n"
        "      ARGV[b + 3], ARGV[b])\n"
        "  end\n"
        "end\n"
        "for i = 0, nc - 1 do\n"
        "  local b, key = cb + i * 8, KEYS[3 + nu + i]\n"
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
        "  if tonumber(ARGV[b + 7]) ~= 0 then\n"
        "    redis.call('HINCRBY', key, 'activated', ARGV[b + 7])\n"
        "  end\n"
        "end\n"
        "for i = 0, na - 1 do\n"
        "  local key, members = KEYS[3 + nu + nc + i], KEYS[3 + nu + nc + na + "
        "i]\n"
        "  redis.call('HSET', key, 'e', folded[i][1], 'er', folded[i][2])\n"
        "  redis.call('PEXPIRE', key, retention)\n"
        "  redis.call('ZREMRANGEBYSCORE', members, '-inf',\n"
        "    string.format('%.17g', wm - retention))\n"
        "  redis.call('PEXPIRE', members, retention)\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'offset', ARGV[3], 'watermark', ARGV[4])\n"
        "return {1}\n";

#endif
