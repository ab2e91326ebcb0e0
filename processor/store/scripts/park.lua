-- Parks an outbox record Kafka refused for good: moves it, as it is, from
-- the outbox to the outbox's parked records, with why, in one atomic call:
-- a record is in exactly one of the two. Sent with EVAL (parking is rare),
-- not loaded with the others by store_connect.
-- KEYS: outbox, parked records, parked info.
-- ARGV: record id, info ("<parked ms> <error code> <error text>").
-- Returns 1 when parked, 0 when the outbox no longer held it (delivered
-- or parked meanwhile).

local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
