-- The leader's decision on one campaign or account.
-- KEYS: lease, cohort hash (cb:<id>, or the account's a:<id>), queue
--       (cq, or the account's shard aq:<n>), leader outbox, an earlier
--       version's account cohort (ab:<id>; for a campaign the cohort hash
--       again), an earlier version's queue (aq, which the id leaves; for
--       a campaign the queue again).
-- ARGV: "<owner> <token>", id, drop before day, next day, state field
--       count, outbox count, stale day (members of an account last
--       written on or before it have expired: their fields go; 0: none),
--       then state fields (name, value), then outbox records (id,
--       record).
-- State fields: a campaign's s:*; an account's one field s, whose writing
-- removes the s:* fields an earlier version kept an account's state in.
-- Day fields (n<day>, k<day>, s<day>, p<day>, d<day>, e<day>) before the
-- drop day go, the e<day> ones (runs of days: n added to every day from
-- it on) summed into e<drop day>; the id is queued again at its first
-- remaining day, not before the next day. An earlier version's ab:<id> is
-- folded into a:<id> and removed.
-- Returns {1}, {0} when the lease is no longer the caller's, or {2} when
-- the cohort hash expired with its account meanwhile: nothing is written
-- (state written now would outlive the account) and the id is unqueued.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local drop, nextd = tonumber(ARGV[3]), tonumber(ARGV[4])
local ns, no, stale = tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
if not drop or not nextd or not ns or not no or not stale or
   #ARGV ~= 7 + ns * 2 + no * 2 then
  return redis.error_reply('ews: malformed cohort commit')
end
if KEYS[6] ~= KEYS[3] then redis.call('ZREM', KEYS[6], ARGV[2]) end
if KEYS[5] ~= KEYS[2] and redis.call('EXISTS', KEYS[5]) == 1 then
  local old = redis.call('HGETALL', KEYS[5])
  for i = 1, #old, 2 do
    if string.sub(old[i], 1, 1) == 'd' and tonumber(string.sub(old[i], 2))
    then
      redis.call('HINCRBY', KEYS[2], old[i], old[i + 1])
    end
  end
  local ttl = redis.call('PTTL', KEYS[5])
  if ttl > 0 and redis.call('PTTL', KEYS[2]) == -1 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  redis.call('DEL', KEYS[5])
end
local all = redis.call('HGETALL', KEYS[2])
if #all == 0 then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return {2}
end
local first, carry, gone = nil, 0, {}
-- an account's state as one field (s): the fields an earlier version kept
-- it in (s:*) go
local packed = ns == 1 and ARGV[8] == 's'
for i = 1, #all, 2 do
  local f = all[i]
  local c, d = string.sub(f, 1, 1), tonumber(string.sub(f, 2))
  if d and (c == 'n' or c == 'k' or c == 's' or c == 'p' or c == 'd' or
            c == 'e') then
    if d < drop then
      -- a run's start before the drop day still counts after it
      if c == 'e' then carry = carry + (tonumber(all[i + 1]) or 0) end
      gone[#gone + 1] = f
    elseif not first or d < first then first = d end
  elseif stale > 0 and string.sub(f, 1, 2) == 'm:' and
         (tonumber(all[i + 1]) or 0) <= stale then
    gone[#gone + 1] = f
  elseif packed and string.sub(f, 1, 2) == 's:' then
    gone[#gone + 1] = f
  end
end
-- one call each for the fields that go, the state and the records
for i = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
end
if carry ~= 0 then
  redis.call('HINCRBY', KEYS[2], 'e' .. string.format('%d', drop), carry)
  if not first or drop < first then first = drop end
end
if ns > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 8, 7 + ns * 2))
end
if first then
  if first < nextd then first = nextd end
  redis.call('ZADD', KEYS[3], first, ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
if no > 0 then
  redis.call('HSET', KEYS[4], unpack(ARGV, 8 + ns * 2, 7 + ns * 2 + no * 2))
end
return {1}
