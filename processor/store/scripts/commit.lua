-- The fenced commit of one partition's batch.
-- KEYS: fence, timers, outbox, campaign queue, account queue, the users'
--       keys, the campaigns' keys, the accounts' hashes, the accounts'
--       member sets, the cohort hashes.
-- ARGV: epoch, expected offset ('' for none), next offset ('' for none),
--       watermark, user count, campaign count, account count, retention
--       ms, H ms, idle clock, outbox count, cohort count,
--       per user: id, deadline (0: none), packed value, last activity,
--                 account index (0: none, else 1-based)
--       per campaign: name, channel, status, target, launched (0: keep),
--                     spend to add, signups to add, activated to add
--       per account: points, at (ms): folded into (e, er)
--       per outbox record: id, packed record
--       per cohort delta: 'c' (campaign) or 'a' (account), its id, day,
--                         n, k, signups, spend
--       per funnel write (store/funnel.c): HINCRBY|ZADD|ZADDNX|ZREM and
--                         two arguments
-- The counts and offsets are STORE_*_ARGS and STORE_FIXED_KEYS in
-- scripts.h. The watermark never goes back: the larger of the stored and
-- the given one is kept.
-- Returns {1}, or {0, 'epoch'|'offset', stored value} when fenced off.

local fence = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'watermark')
if fence[1] ~= ARGV[1] then return {0, 'epoch', fence[1] or ''} end
if (fence[2] or '') ~= ARGV[2] then
  return {0, 'offset', fence[2] or ''}
end
local nu, nc, na = tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
local retention, hl = tonumber(ARGV[8]), tonumber(ARGV[9])
local wm, no, nh = tonumber(ARGV[4]), tonumber(ARGV[11]),
  tonumber(ARGV[12])
local nx = tonumber(ARGV[13]) -- funnel
if not nu or not nc or not na or not retention or not hl or
   not wm or not no or not nh or not tonumber(ARGV[10]) or not nx or
   #KEYS ~= 5 + nu + nc + 2 * na + nh + nx or
   #ARGV ~= 13 + nu * 5 + nc * 8 + na * 2 + no * 2 + nh * 7 + nx * 3 then
  return redis.error_reply('ews: malformed commit')
end
local ub = 14
local cb = ub + nu * 5
local ab = cb + nc * 8
local ob = ab + na * 2
local hb = ob + no * 2
local kc = 6 + nu
local ka = kc + nc
local km = ka + na
local kh = km + na
local xb, kx = hb + nh * 7, kh + nh -- funnel
for i = 0, nu - 1 do
  local b = ub + i * 5
  local acc = tonumber(ARGV[b + 4])
  if not tonumber(ARGV[b + 1]) or not tonumber(ARGV[b + 3]) or
     not acc or acc < 0 or acc > na then
    return redis.error_reply('ews: bad user ' .. ARGV[b])
  end
end
for i = 0, nc - 1 do
  local b = cb + i * 8
  if not tonumber(ARGV[b + 5]) or not tonumber(ARGV[b + 6]) or
     not tonumber(ARGV[b + 7]) then
    return redis.error_reply('ews: bad campaign counter')
  end
end
for i = 0, nh - 1 do
  local b = hb + i * 7
  if (ARGV[b] ~= 'c' and ARGV[b] ~= 'a') or
     not tonumber(ARGV[b + 2]) or not tonumber(ARGV[b + 3]) or
     not tonumber(ARGV[b + 4]) or not tonumber(ARGV[b + 5]) or
     not tonumber(ARGV[b + 6]) then
    return redis.error_reply('ews: bad cohort delta')
  end
end
-- funnel: its writes checked
for i = 0, nx - 1 do
  local c, b = ARGV[xb + i * 3], xb + i * 3
  if not ((c == 'HINCRBY' and tonumber(ARGV[b + 2])) or
          ((c == 'ZADD' or c == 'ZADDNX') and tonumber(ARGV[b + 1])) or
          c == 'ZREM') then
    return redis.error_reply('ews: bad funnel write')
  end
end
-- An account's expiry and its stale members are looked after once a day
-- (of the idle clock, a wall clock), not at every commit: its hash keeps
-- the day in 'x'. The expiry is then the retention plus a day, so that an
-- account still lives at least the retention after its last event.
local day = string.format('%d', math.floor(tonumber(ARGV[10]) / 86400000))
local folded = {}
for i = 0, na - 1 do
  local b, key = ab + i * 2, KEYS[ka + i]
  local p, t = tonumber(ARGV[b]), tonumber(ARGV[b + 1])
  if not p or not t then
    return redis.error_reply('ews: bad account points')
  end
  local cur = redis.call('HMGET', key, 'e', 'er', 'x')
  local e, er = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
  if er == 0 then e, er = e + p, t
  elseif t >= er then e, er = e * 2 ^ (-(t - er) / hl) + p, t
  else e = e + p * 2 ^ (-(er - t) / hl) end
  folded[i] = {string.format('%.17g', e), string.format('%d', er),
               cur[3] ~= day}
end
for i = 0, nu - 1 do
  local b, key = ub + i * 5, KEYS[6 + i]
  redis.call('SET', key, ARGV[b + 2], 'PX', retention)
  if ARGV[b + 1] == '0' then redis.call('ZREM', KEYS[2], ARGV[b])
  else redis.call('ZADD', KEYS[2], ARGV[b + 1], ARGV[b]) end
  local acc = tonumber(ARGV[b + 4])
  -- a member new to the set (or a set made anew) gets the expiry now: the
  -- account's daily look may have been done today already
  if acc > 0 and ARGV[b + 3] ~= '0' and
     redis.call('ZADD', KEYS[km + acc - 1], 'GT', ARGV[b + 3], ARGV[b]) == 1
  then
    redis.call('PEXPIRE', KEYS[km + acc - 1], retention + 86400000)
  end
end
for i = 0, nc - 1 do
  local b, key = cb + i * 8, KEYS[kc + i]
  if ARGV[b] ~= '' then redis.call('HSET', key, 'name', ARGV[b]) end
  if ARGV[b + 1] ~= '' then
    redis.call('HSET', key, 'channel', ARGV[b + 1])
  end
  if ARGV[b + 2] ~= '' then
    redis.call('HSET', key, 'status', ARGV[b + 2])
  end
  if ARGV[b + 3] ~= '' then
    redis.call('HSET', key, 'target', ARGV[b + 3])
  end
  if ARGV[b + 4] ~= '0' then
    redis.call('HSET', key, 'launched', ARGV[b + 4])
  end
  if tonumber(ARGV[b + 5]) ~= 0 then
    redis.call('HINCRBYFLOAT', key, 'spend', ARGV[b + 5])
  end
  if tonumber(ARGV[b + 6]) ~= 0 then
    redis.call('HINCRBY', key, 'signups', ARGV[b + 6])
  end
  if tonumber(ARGV[b + 7]) ~= 0 then
    redis.call('HINCRBY', key, 'activated', ARGV[b + 7])
  end
end
local stale = string.format('%.17g', wm - retention)
for i = 0, na - 1 do
  local key, members = KEYS[ka + i], KEYS[km + i]
  if folded[i][3] then
    redis.call('HSET', key, 'e', folded[i][1], 'er', folded[i][2], 'x', day)
    redis.call('PEXPIRE', key, retention + 86400000)
    redis.call('ZREMRANGEBYSCORE', members, '-inf', stale)
    redis.call('PEXPIRE', members, retention + 86400000)
  else
    redis.call('HSET', key, 'e', folded[i][1], 'er', folded[i][2])
  end
end
for i = 0, no - 1 do
  redis.call('HSET', KEYS[3], ARGV[ob + i * 2], ARGV[ob + i * 2 + 1])
end
local first = {}
for i = 0, nh - 1 do
  local b, key = hb + i * 7, KEYS[kh + i]
  local day, queue = tonumber(ARGV[b + 2]), KEYS[4]
  if ARGV[b] == 'c' then
    redis.call('HINCRBY', key, 'n' .. ARGV[b + 2], ARGV[b + 3])
    redis.call('HINCRBY', key, 'k' .. ARGV[b + 2], ARGV[b + 4])
    -- trials started and spend by their own day (the leader's figures)
    if ARGV[b + 5] ~= '0' then
      redis.call('HINCRBY', key, 's' .. ARGV[b + 2], ARGV[b + 5])
    end
    if tonumber(ARGV[b + 6]) ~= 0 then
      redis.call('HINCRBYFLOAT', key, 'p' .. ARGV[b + 2], ARGV[b + 6])
    end
  else
    redis.call('HINCRBY', key, 'd' .. ARGV[b + 2], ARGV[b + 3])
    queue = KEYS[5]
    if not first[key] then redis.call('PEXPIRE', key, retention) end
  end
  local q = first[key]
  if not q then first[key] = {queue, day, ARGV[b + 1]}
  elseif day < q[2] then q[2] = day end
end
for _, q in pairs(first) do
  redis.call('ZADD', q[1], 'LT', q[2], q[3])
end
-- funnel: its writes
for i = 0, nx - 1 do
  local b, key = xb + i * 3, KEYS[kx + i]
  local c = ARGV[b]
  if c == 'HINCRBY' then redis.call('HINCRBY', key, ARGV[b + 1], ARGV[b + 2])
  elseif c == 'ZADD' then redis.call('ZADD', key, ARGV[b + 1], ARGV[b + 2])
  elseif c == 'ZADDNX' then
    redis.call('ZADD', key, 'NX', ARGV[b + 1], ARGV[b + 2])
  else redis.call('ZREM', key, ARGV[b + 1]) end
end
local stored = tonumber(fence[3] or '')
if stored and stored > wm then wm = stored end
redis.call('HSET', KEYS[1], 'watermark', string.format('%d', wm),
  'idle', ARGV[10])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'offset', ARGV[3]) end
return {1}
