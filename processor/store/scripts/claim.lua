-- The claim of a partition's fence: a new epoch, so that the last owner's
-- next commit is fenced off.
-- KEYS[1] fence.
-- Returns {epoch, offset or '', watermark or '', idle clock or ''}.

local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local v = redis.call('HMGET', KEYS[1], 'offset', 'watermark', 'idle')
return {e, v[1] or '', v[2] or '', v[3] or ''}
