-- Deletes users of one bucket whose retention has passed (store/sweep.c),
-- each only while its value is still the one the sweep read: a user the
-- owner wrote meanwhile stays.
-- KEYS: the bucket (ub:<n>).
-- ARGV: user id, the value read, in pairs.
-- Returns how many were deleted.

local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
