/*
 * The store's Lua scripts. A script runs atomically but is not a
 * transaction: every check and every parse comes before the first write.
 * Numbers travel as strings formatted by the caller (%.17g for doubles),
 * and leave Lua through string.format('%.17g'): tostring keeps 14 digits.
 */
#ifndef EWS_OUT_STORE_SCRIPT_H
#define EWS_OUT_STORE_SCRIPT_H

/* KEYS[1] fence. Returns {epoch, offset or '', watermark or '',
 * idle clock or ''}. */
static const char store_script_claim[] =
        "local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)\n"
        "local v = redis.call('HMGET', KEYS[1], 'offset', 'watermark', "
        "'idle')\n"
        "return {e, v[1] or '', v[2] or '', v[3] or ''}\n";

#define STORE_HEADER_ARGS   12
#define STORE_USER_ARGS     5
#define STORE_CAMPAIGN_ARGS 8
#define STORE_ACCOUNT_ARGS  2
#define STORE_OUTBOX_ARGS   2
#define STORE_COHORT_ARGS   5
#define STORE_FIXED_KEYS    5

/*
 * KEYS: fence, timers, outbox, campaign queue, account queue, the users'
 *       keys, the campaigns' keys, the accounts' hashes, the accounts'
 *       member sets, the cohort hashes.
 * ARGV: epoch, expected offset ('' for none), next offset ('' for none),
 *       watermark, user count, campaign count, account count, retention
 *       ms, H ms, idle clock, outbox count, cohort count,
 *       per user: id, deadline (0: none), packed value, last activity,
 *                 account index (0: none, else 1-based)
 *       per campaign: name, channel, status, target, launched (0: keep),
 *                     spend to add, signups to add, activated to add
 *       per account: points, at (ms): folded into (e, er)
 *       per outbox record: id, packed record
 *       per cohort delta: 'c' (campaign) or 'a' (account), its id, day,
 *                         n, k
 * The watermark never goes back: the larger of the stored and the given
 * one is kept.
 * Returns {1}, or {0, 'epoch'|'offset', stored value} when fenced off.
 */
static const char store_script_commit[] =
        "local fence = redis.call('HMGET', KEYS[1], 'epoch', 'offset', "
        "'watermark')\n"
        "if fence[1] ~= ARGV[1] then return {0, 'epoch', fence[1] or ''} end\n"
        "if (fence[2] or '') ~= ARGV[2] then\n"
        "  return {0, 'offset', fence[2] or ''}\n"
        "end\n"
        "local nu, nc, na = tonumber(ARGV[5]), tonumber(ARGV[6]),\n"
        "  tonumber(ARGV[7])\n"
        "local retention, hl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
        "local wm, no, nh = tonumber(ARGV[4]), tonumber(ARGV[11]),\n"
        "  tonumber(ARGV[12])\n"
        "if not nu or not nc or not na or not retention or not hl or\n"
        "   not wm or not no or not nh or not tonumber(ARGV[10]) or\n"
        "   #KEYS ~= 5 + nu + nc + 2 * na + nh or\n"
        "   #ARGV ~= 12 + nu * 5 + nc * 8 + na * 2 + no * 2 + nh * 5 then\n"
        "  return redis.error_reply('ews: malformed commit')\n"
        "end\n"
        "local ub = 13\n"
        "local cb = ub + nu * 5\n"
        "local ab = cb + nc * 8\n"
        "local ob = ab + na * 2\n"
        "local hb = ob + no * 2\n"
        "local kc = 6 + nu\n"
        "local ka = kc + nc\n"
        "local km = ka + na\n"
        "local kh = km + na\n"
        "for i = 0, nu - 1 do\n"
        "  local b = ub + i * 5\n"
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
        "for i = 0, nh - 1 do\n"
        "  local b = hb + i * 5\n"
        "  if (ARGV[b] ~= 'c' and ARGV[b] ~= 'a') or\n"
        "     not tonumber(ARGV[b + 2]) or not tonumber(ARGV[b + 3]) or\n"
        "     not tonumber(ARGV[b + 4]) then\n"
        "    return redis.error_reply('ews: bad cohort delta')\n"
        "  end\n"
        "end\n"
        "local folded = {}\n"
        "for i = 0, na - 1 do\n"
        "  local b, key = ab + i * 2, KEYS[ka + i]\n"
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
        "  local b, key = ub + i * 5, KEYS[6 + i]\n"
        "  redis.call('SET', key, ARGV[b + 2], 'PX', retention)\n"
        "  if ARGV[b + 1] == '0' then redis.call('ZREM', KEYS[2], ARGV[b])\n"
        "  else redis.call('ZADD', KEYS[2], ARGV[b + 1], ARGV[b]) end\n"
        "  local acc = tonumber(ARGV[b + 4])\n"
        "  if acc > 0 and ARGV[b + 3] ~= '0' then\n"
        "    redis.call('ZADD', KEYS[km + acc - 1], 'GT', ARGV[b + 3], "
        "ARGV[b])\n"
        "  end\n"
        "end\n"
        "for i = 0, nc - 1 do\n"
        "  local b, key = cb + i * 8, KEYS[kc + i]\n"
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
        "  local key, members = KEYS[ka + i], KEYS[km + i]\n"
        "  redis.call('HSET', key, 'e', folded[i][1], 'er', folded[i][2])\n"
        "  redis.call('PEXPIRE', key, retention)\n"
        "  redis.call('ZREMRANGEBYSCORE', members, '-inf',\n"
        "    string.format('%.17g', wm - retention))\n"
        "  redis.call('PEXPIRE', members, retention)\n"
        "end\n"
        "for i = 0, no - 1 do\n"
        "  redis.call('HSET', KEYS[3], ARGV[ob + i * 2], ARGV[ob + i * 2 + "
        "1])\n"
        "end\n"
        "local first = {}\n"
        "for i = 0, nh - 1 do\n"
        "  local b, key = hb + i * 5, KEYS[kh + i]\n"
        "  local day, queue = tonumber(ARGV[b + 2]), KEYS[4]\n"
        "  if ARGV[b] == 'c' then\n"
        "    redis.call('HINCRBY', key, 'n' .. ARGV[b + 2], ARGV[b + 3])\n"
        "    redis.call('HINCRBY', key, 'k' .. ARGV[b + 2], ARGV[b + 4])\n"
        "  else\n"
        "    redis.call('HINCRBY', key, 'd' .. ARGV[b + 2], ARGV[b + 3])\n"
        "    queue = KEYS[5]\n"
        "    if not first[key] then redis.call('PEXPIRE', key, retention) end\n"
        "  end\n"
        "  local q = first[key]\n"
        "  if not q then first[key] = {queue, day, ARGV[b + 1]}\n"
        "  elseif day < q[2] then q[2] = day end\n"
        "end\n"
        "for _, q in pairs(first) do\n"
        "  redis.call('ZADD', q[1], 'LT', q[2], q[3])\n"
        "end\n"
        "local stored = tonumber(fence[3] or '')\n"
        "if stored and stored > wm then wm = stored end\n"
        "redis.call('HSET', KEYS[1], 'watermark', string.format('%d', wm),\n"
        "  'idle', ARGV[10])\n"
        "if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'offset', ARGV[3]) "
        "end\n"
        "return {1}\n";

/* KEYS: lease, token counter. ARGV: owner, ttl ms, 'release' to let go.
 * Returns {1, token} when owner holds the lease, {0, holder} else. */
static const char store_script_lease[] =
        "local cur = redis.call('GET', KEYS[1])\n"
        "if cur then\n"
        "  local owner, token = string.match(cur, '^(.*) (%d+)$')\n"
        "  if owner ~= ARGV[1] then return {0, cur} end\n"
        "  if ARGV[3] == 'release' then\n"
        "    redis.call('DEL', KEYS[1])\n"
        "    return {0, ''}\n"
        "  end\n"
        "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
        "  return {1, token}\n"
        "end\n"
        "if ARGV[3] == 'release' then return {0, ''} end\n"
        "local token = redis.call('INCR', KEYS[2])\n"
        "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])\n"
        "return {1, tostring(token)}\n";

/*
 * The leader's decision on one campaign or account.
 * KEYS: lease, cohort hash, queue, leader outbox.
 * ARGV: "<owner> <token>", id, drop before day, next day, state field
 *       count, outbox count, then state fields (name, value), then outbox
 *       records (id, record).
 * Day fields (n<day>, k<day>, d<day>) before the drop day go; the id is
 * queued again at its first remaining day, not before the next day.
 * Returns {1}, {0} when the lease is no longer the caller's, or {2} when
 * the cohort hash expired with its account meanwhile: nothing is written
 * (state written now would outlive the account) and the id is unqueued.
 */
static const char store_script_cohort[] =
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end\n"
        "local drop, nextd = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
        "local ns, no = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
        "if not drop or not nextd or not ns or not no or\n"
        "   #ARGV ~= 6 + ns * 2 + no * 2 then\n"
        "  return redis.error_reply('ews: malformed cohort commit')\n"
        "end\n"
        "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
        "  redis.call('ZREM', KEYS[3], ARGV[2])\n"
        "  return {2}\n"
        "end\n"
        "local first = nil\n"
        "for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do\n"
        "  local c, d = string.sub(f, 1, 1), tonumber(string.sub(f, 2))\n"
        "  if d and (c == 'n' or c == 'k' or c == 'd') then\n"
        "    if d < drop then redis.call('HDEL', KEYS[2], f)\n"
        "    elseif not first or d < first then first = d end\n"
        "  end\n"
        "end\n"
        "for i = 0, ns - 1 do\n"
        "  redis.call('HSET', KEYS[2], ARGV[7 + i * 2], ARGV[8 + i * 2])\n"
        "end\n"
        "if first then\n"
        "  if first < nextd then first = nextd end\n"
        "  redis.call('ZADD', KEYS[3], first, ARGV[2])\n"
        "else\n"
        "  redis.call('ZREM', KEYS[3], ARGV[2])\n"
        "end\n"
        "local ob = 7 + ns * 2\n"
        "for i = 0, no - 1 do\n"
        "  redis.call('HSET', KEYS[4], ARGV[ob + i * 2], ARGV[ob + i * 2 + "
        "1])\n"
        "end\n"
        "return {1}\n";

#endif
