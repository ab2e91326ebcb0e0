-- The leader's lease.
-- KEYS: lease, token counter.
-- ARGV: owner, ttl ms, 'release' to let go.
-- Returns {1, token} when owner holds the lease, {0, holder} else.

local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^(.*) (%d+)$')
  if owner ~= ARGV[1] then return {0, cur} end
  if ARGV[3] == 'release' then
    redis.call('DEL', KEYS[1])
    return {0, ''}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, token}
end
if ARGV[3] == 'release' then return {0, ''} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return {1, tostring(token)}
