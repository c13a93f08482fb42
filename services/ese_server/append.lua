#!lua
-- Append a validated batch of events to the stream, atomically (one script = one step).
--
-- KEYS: 1 stream, 2 stats hash (total/open/completed), 3 by-type hash, 4 by-subtype hash,
--       5 per-client hash (ip -> events), 6 order-state hash (orderId -> latest state),
--       7 orders last-seen zset (orderId -> ms), 8 clients last-seen zset (ip -> ms)
-- ARGV: 1 retention ms, 2 idempotency key prefix, 3 idempotency window ms,
--       4 tracking horizon ms, 5 most orders tracked, 6 most clients tracked,
--       then 6 per event: id ('' = none), payload json, type key, subtype ('' = none), ip,
--       orderId ('' = not an order event)
-- Returns {stream length, {stream id per event}, {1 if duplicate else 0 per event}}.
--
-- WHY one script: the duplicate check, the append, the trim and the /stats counters must
-- change together or not at all, and one round trip per batch is what makes batches fast.
--
-- WHY the `#!lua` line (a script with flags, none set): Redis then refuses the whole call with
-- an OOM error before it runs when used memory is over `maxmemory` (policy noeviction), so a
-- full store stores nothing of a batch. Without it Redis checks only the script's first write,
-- and a first write that frees memory (HDEL of a stale order) lets every XADD after it through,
-- past maxmemory. A call that starts under the limit runs to the end, even if the batch crosses
-- the limit midway: a script is never stopped halfway.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minid = tostring(now_ms - tonumber(ARGV[1]))
local window = tonumber(ARGV[3])
local horizon_start = now_ms - tonumber(ARGV[4])
local max_orders = tonumber(ARGV[5])
local max_clients = tonumber(ARGV[6])
local FIRST = 7
local CHUNK = 500 -- stay far below Lua's unpack() limit
local n_events = (#ARGV - FIRST + 1) / 6
-- Forget at most this many stale entries per call: proportional to the batch, so the cost per
-- event stays constant while the structures still shrink faster than they can grow.
local trim_limit = 100 + 2 * n_events

-- Idempotency claims (id -> stream id) live in one hash per time bucket of `window` ms; a
-- claim is looked up in the current and the previous bucket, so it is remembered for at least
-- `window` ms. WHY hashes and not a key per id: one HMGET per bucket and one HSET per batch
-- replace a SET NX per event, which was the costliest command of the script.
local bucket = math.floor(now_ms / window)
local cur_key = ARGV[2] .. bucket
local prev_key = ARGV[2] .. (bucket - 1)

local open_d, done_d = 0, 0

-- Orders and clients are tracked over the horizon: a last-seen zset next to each hash, so
-- neither grows forever (half the demo's orders never complete by design).
local function forget_orders(names)
  if #names == 0 then return end
  for c = 1, #names, CHUNK do
    local part = {unpack(names, c, math.min(c + CHUNK - 1, #names))}
    local states = redis.call('HMGET', KEYS[6], unpack(part))
    for j = 1, #part do
      if states[j] == 'ORDER_COMPLETED' then done_d = done_d - 1
      elseif states[j] then open_d = open_d - 1 end
    end
    redis.call('HDEL', KEYS[6], unpack(part))
    redis.call('ZREM', KEYS[7], unpack(part))
  end
end
local function forget_clients(names)
  for c = 1, #names, CHUNK do
    local part = {unpack(names, c, math.min(c + CHUNK - 1, #names))}
    redis.call('HDEL', KEYS[5], unpack(part))
    redis.call('ZREM', KEYS[8], unpack(part))
  end
end
local function stale(key)
  return redis.call('ZRANGE', key, '-inf', '(' .. horizon_start, 'BYSCORE', 'LIMIT', 0, trim_limit)
end
local function overflow(key, limit)
  local extra = redis.call('ZCARD', key) - limit
  if extra <= 0 then return {} end
  local popped = redis.call('ZPOPMIN', key, extra) -- least recently seen first
  local names = {}
  for j = 1, #popped, 2 do names[#names + 1] = popped[j] end
  return names
end
forget_orders(stale(KEYS[7]))
forget_clients(stale(KEYS[8]))

local with_ids = {}
for i = FIRST, #ARGV, 6 do
  if ARGV[i] ~= '' then with_ids[#with_ids + 1] = ARGV[i] end
end
local known = {}
for c = 1, #with_ids, CHUNK do
  local part = {unpack(with_ids, c, math.min(c + CHUNK - 1, #with_ids))}
  local old = redis.call('HMGET', prev_key, unpack(part))
  local new = redis.call('HMGET', cur_key, unpack(part))
  for j = 1, #part do
    local sid = new[j] or old[j]
    if sid then known[part[j]] = sid end
  end
end

local ids, dups, claims = {}, {}, {}
local total, by_type, by_sub, by_client = 0, {}, {}, {}
local seen_orders = {}
local first = true
for i = FIRST, #ARGV, 6 do
  local eid = ARGV[i]
  local prev = eid ~= '' and known[eid]
  if prev then
    ids[#ids + 1] = prev
    dups[#dups + 1] = 1
    -- Claim it again, in the current bucket. WHY: so a retry whose events are all stored
    -- already still writes, and the WAIT after it (ESE_ACK_REPLICAS) covers the first write:
    -- WAIT counts the replicas that hold everything up to the connection's last write, and
    -- this write comes after the one that stored the events on this master.
    claims[#claims + 1] = eid
    claims[#claims + 1] = prev
  else
    local ip = ARGV[i + 4]
    local sid
    -- '*' lets Redis number same-millisecond events ms-0, ms-1, ... so none overwrites
    -- another. MINID trims everything older than the retention window, once per append.
    if first then
      sid = redis.call('XADD', KEYS[1], 'MINID', minid, '*', 'ip', ip, 'e', ARGV[i + 1])
      first = false
    else
      sid = redis.call('XADD', KEYS[1], '*', 'ip', ip, 'e', ARGV[i + 1])
    end
    if eid ~= '' then
      known[eid] = sid -- a repeated id later in the same batch is a duplicate too
      claims[#claims + 1] = eid
      claims[#claims + 1] = sid
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
      seen_orders[#seen_orders + 1] = now_ms
      seen_orders[#seen_orders + 1] = order
      -- An order is open until it is completed. ORDER_COMPLETED is final: an older state
      -- that arrives after it (a retry, or the other ingest shard) does not reopen it.
      local last = redis.call('HGET', KEYS[6], order)
      if last ~= sub and last ~= 'ORDER_COMPLETED' then
        redis.call('HSET', KEYS[6], order, sub)
        local is_done = sub == 'ORDER_COMPLETED'
        if not last then
          if is_done then done_d = done_d + 1 else open_d = open_d + 1 end
        elseif is_done then
          open_d = open_d - 1
          done_d = done_d + 1
        end
      end
    end
  end
end
if #claims > 0 then
  for c = 1, #claims, 2 * CHUNK do
    redis.call('HSET', cur_key, unpack(claims, c, math.min(c + 2 * CHUNK - 1, #claims)))
  end
  redis.call('PEXPIREAT', cur_key, (bucket + 2) * window)
end
-- Counters are summed in Lua first: one HINCRBY per distinct key instead of one per event.
if total > 0 then
  redis.call('HINCRBY', KEYS[2], 'total', total)
  for k, v in pairs(by_type) do redis.call('HINCRBY', KEYS[3], k, v) end
  for k, v in pairs(by_sub) do redis.call('HINCRBY', KEYS[4], k, v) end
  local seen_clients = {}
  for k, v in pairs(by_client) do
    redis.call('HINCRBY', KEYS[5], k, v)
    seen_clients[#seen_clients + 1] = now_ms
    seen_clients[#seen_clients + 1] = k
  end
  for c = 1, #seen_clients, 2 * CHUNK do
    redis.call('ZADD', KEYS[8], unpack(seen_clients, c, math.min(c + 2 * CHUNK - 1, #seen_clients)))
  end
  for c = 1, #seen_orders, 2 * CHUNK do
    redis.call('ZADD', KEYS[7], unpack(seen_orders, c, math.min(c + 2 * CHUNK - 1, #seen_orders)))
  end
  forget_orders(overflow(KEYS[7], max_orders))
  forget_clients(overflow(KEYS[8], max_clients))
end
if open_d ~= 0 then redis.call('HINCRBY', KEYS[2], 'open', open_d) end
if done_d ~= 0 then redis.call('HINCRBY', KEYS[2], 'completed', done_d) end
return {redis.call('XLEN', KEYS[1]), ids, dups}
