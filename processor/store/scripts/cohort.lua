-- The leader's decision on one campaign or account.
-- KEYS: lease, cohort hash, queue, leader outbox.
-- ARGV: "<owner> <token>", id, drop before day, next day, state field
--       count, outbox count, then state fields (name, value), then outbox
--       records (id, record).
-- Day fields (n<day>, k<day>, s<day>, p<day>, d<day>) before the drop
-- day go; the id is queued again at its first remaining day, not before
-- the next day.
-- Returns {1}, {0} when the lease is no longer the caller's, or {2} when
-- the cohort hash expired with its account meanwhile: nothing is written
-- (state written now would outlive the account) and the id is unqueued.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local drop, nextd = tonumber(ARGV[3]), tonumber(ARGV[4])
local ns, no = tonumber(ARGV[5]), tonumber(ARGV[6])
if not drop or not nextd or not ns or not no or
   #ARGV ~= 6 + ns * 2 + no * 2 then
  return redis.error_reply('ews: malformed cohort commit')
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return {2}
end
local first = nil
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  local c, d = string.sub(f, 1, 1), tonumber(string.sub(f, 2))
  if d and (c == 'n' or c == 'k' or c == 's' or c == 'p' or c == 'd') then
    if d < drop then redis.call('HDEL', KEYS[2], f)
    elseif not first or d < first then first = d end
  end
end
for i = 0, ns - 1 do
  redis.call('HSET', KEYS[2], ARGV[7 + i * 2], ARGV[8 + i * 2])
end
if first then
  if first < nextd then first = nextd end
  redis.call('ZADD', KEYS[3], first, ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
local ob = 7 + ns * 2
for i = 0, no - 1 do
  redis.call('HSET', KEYS[4], ARGV[ob + i * 2], ARGV[ob + i * 2 + 1])
end
return {1}
