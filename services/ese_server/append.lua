-- Append a validated batch of events to the stream, atomically (one script = one step).
--
-- KEYS: 1 stream, 2 stats hash (total/open/completed), 3 by-type hash, 4 by-subtype hash,
--       5 per-client hash, 6 order-state hash (orderId -> latest state)
-- ARGV: 1 retention ms, 2 idempotency key prefix, 3 idempotency ttl ms,
--       then 6 per event: id ('' = none), payload json, type key, subtype ('' = none), ip,
--       orderId ('' = not an order event)
-- Returns {stream length, {stream id per event}, {1 if duplicate else 0 per event}}.
--
-- WHY one script: the duplicate check, the append, the trim and the /stats counters must
-- change together or not at all, and one round trip per batch is what makes batches fast.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minid = tostring(now_ms - tonumber(ARGV[1]))
local idp = ARGV[2]
local ttl = ARGV[3]
local ids, dups = {}, {}
local total, by_type, by_sub, by_client = 0, {}, {}, {}
local open_d, done_d = 0, 0
for i = 4, #ARGV, 6 do
  local eid = ARGV[i]
  local sid = false
  if eid ~= '' then
    sid = redis.call('GET', idp .. eid)
  end
  if sid then
    ids[#ids + 1] = sid
    dups[#dups + 1] = 1
  else
    local ip = ARGV[i + 4]
    -- MINID trims everything older than the retention window on every append; '*' lets
    -- Redis number same-millisecond events ms-0, ms-1, ... so none overwrites another.
    sid = redis.call('XADD', KEYS[1], 'MINID', minid, '*', 'ip', ip, 'e', ARGV[i + 1])
    if eid ~= '' then
      redis.call('SET', idp .. eid, sid, 'PX', ttl)
    end
    ids[#ids + 1] = sid
    dups[#dups + 1] = 0
    total = total + 1
    local t = ARGV[i + 2]
    by_type[t] = (by_type[t] or 0) + 1
    local sub = ARGV[i + 3]
    if sub ~= '' then by_sub[sub] = (by_sub[sub] or 0) + 1 end
    by_client[ip] = (by_client[ip] or 0) + 1
    local order = ARGV[i + 5]
    if order ~= '' then
      -- An order is open while its latest state is not ORDER_COMPLETED.
      local prev = redis.call('HGET', KEYS[6], order)
      if prev ~= sub then
        redis.call('HSET', KEYS[6], order, sub)
        local was_done = prev == 'ORDER_COMPLETED'
        local is_done = sub == 'ORDER_COMPLETED'
        if not prev then
          if is_done then done_d = done_d + 1 else open_d = open_d + 1 end
        elseif was_done and not is_done then
          done_d = done_d - 1
          open_d = open_d + 1
        elseif is_done and not was_done then
          open_d = open_d - 1
          done_d = done_d + 1
        end
      end
    end
  end
end
-- Counters are summed in Lua first: one HINCRBY per distinct key instead of one per event.
if total > 0 then
  redis.call('HINCRBY', KEYS[2], 'total', total)
  if open_d ~= 0 then redis.call('HINCRBY', KEYS[2], 'open', open_d) end
  if done_d ~= 0 then redis.call('HINCRBY', KEYS[2], 'completed', done_d) end
  for k, v in pairs(by_type) do redis.call('HINCRBY', KEYS[3], k, v) end
  for k, v in pairs(by_sub) do redis.call('HINCRBY', KEYS[4], k, v) end
  for k, v in pairs(by_client) do redis.call('HINCRBY', KEYS[5], k, v) end
end
return {redis.call('XLEN', KEYS[1]), ids, dups}
