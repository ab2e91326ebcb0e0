-- Removes the user's state and timer and its membership of its account,
-- and takes a new epoch for its partition: the owner's next commit there
-- is fenced off, so it drops its cache and cannot write the user back.
-- Sent with EVAL, not loaded with the others by store_connect.
-- KEYS: user, timers, fence, account members, segment (sg:, sg0:).
-- ARGV: user id, '1' when the user has an account, '1' when it is in a
--       segment.
-- Returns 1 when the user was there, 0 else.

local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('ZREM', KEYS[4], ARGV[1]) end
if ARGV[3] == '1' then redis.call('ZREM', KEYS[5], ARGV[1]) end
if n == 1 then redis.call('HINCRBY', KEYS[3], 'epoch', 1) end
return n
