-- Releases a parked record, in one atomic call: 'retry' moves it back to
-- its outbox, as it was parked (its owner sends it at the next look),
-- 'drop' deletes it. Sent with EVAL (by hand, from ews-inspect).
-- KEYS: outbox, parked records, parked info.
-- ARGV: 'retry' or 'drop', record id.
-- Returns 1 when released, 0 when it was not parked.

local mode = ARGV[1]
if mode ~= 'retry' and mode ~= 'drop' then
  return redis.error_reply('unpark: retry or drop, not ' .. tostring(mode))
end
local record = redis.call('HGET', KEYS[2], ARGV[2])
if not record then return 0 end
if mode == 'retry' then redis.call('HSET', KEYS[1], ARGV[2], record) end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
