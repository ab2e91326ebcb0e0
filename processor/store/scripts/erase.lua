-- Removes the user's state and timer and its membership of its account,
-- keeps its E in the account's erased members' share (xe, xr: the same
-- fold as a user's E), and takes a new epoch for its partition: the
-- owner's next commit there is fenced off, so it drops its cache and
-- cannot write the user back.
-- Sent with EVAL, not loaded with the others by store_connect.
-- KEYS: user's bucket (ub:), timers, fence, account, its segment's shard
--       and the whole segment's set of an earlier version (sg:, sg0:), the
--       user's key of an earlier version (u:).
-- ARGV: user id, '1' when the user has an account, the value the caller
--       read (the share is taken from it), its E, its t_ref (ms), H (ms),
--       the account's expiry (ms), '1' when it is in a segment.
-- Returns 1 when the user was erased, 0 when it was not there, -1 when
-- its value changed since the caller read it (read again).

local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then cur = redis.call('GET', KEYS[7]) end
if not cur then return 0 end
if cur ~= ARGV[3] then return -1 end
local p, t, hl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if not p or not t or not hl or not tonumber(ARGV[7]) then
  return redis.error_reply('ews: malformed erase')
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[7])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  redis.call('HDEL', KEYS[4], 'm:' .. ARGV[1])
  if p ~= 0 and t > 0 then
    local cur = redis.call('HMGET', KEYS[4], 'xe', 'xr')
    local e, er = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
    if er == 0 then e, er = e + p, t
    elseif t >= er then e, er = e * 2 ^ (-(t - er) / hl) + p, t
    else e = e + p * 2 ^ (-(er - t) / hl) end
    redis.call('HSET', KEYS[4], 'xe', string.format('%.17g', e),
      'xr', string.format('%d', er))
    redis.call('PEXPIRE', KEYS[4], ARGV[7])
  end
end
if ARGV[8] == '1' then
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('ZREM', KEYS[6], ARGV[1])
end
redis.call('HINCRBY', KEYS[3], 'epoch', 1)
return 1
