#!lua flags=no-writes
-- Read the /stats counters in one atomic step (a consistent snapshot).
--
-- KEYS: 1 stats hash, 2 by-type hash, 3 by-subtype hash, 4 per-client hash, 5 stream.
-- Returns {stats, by type, by subtype, per client (flat HGETALL replies), stream length}.
--
-- WHY a script and not MULTI/EXEC: Redis over `maxmemory` refuses every command queued in a
-- MULTI, reads included, while a `no-writes` script still runs, so /stats keeps answering
-- when the store is full.
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('XLEN', KEYS[5]),
}
