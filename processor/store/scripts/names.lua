-- Ids for names of the packed users' dictionary (codec.h): each name
-- keeps the id it was given first, for life; ids are given in order, 0
-- up, and none past the bound.
-- KEYS: the dictionary (hash: name -> id).
-- ARGV: the bound (ids below it), then the names.
-- Returns each name's id, -1 for one past the bound.

local bound, out = tonumber(ARGV[1]), {}
for i = 2, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if not id then
    local n = redis.call('HLEN', KEYS[1])
    if n < bound then
      redis.call('HSET', KEYS[1], ARGV[i], n)
      id = n
    else
      id = -1
    end
  end
  out[#out + 1] = tonumber(id)
end
return out
