#!lua flags=allow-oom
-- Drop the stream entries older than the retention window (what append.lua does on each append).
--
-- KEYS: 1 stream. ARGV: 1 retention ms. Returns the number of entries removed.
--
-- WHY a script of its own with allow-oom: when Redis is over `maxmemory` it refuses append.lua
-- before it runs, so its trim never happens either; this one may run then, and removing old
-- entries is what frees the memory for new ones. It only deletes.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('XTRIM', KEYS[1], 'MINID', tostring(now_ms - tonumber(ARGV[1])))
