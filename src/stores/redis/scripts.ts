/**
 * The Lua scripts of {@link RedisStore}: every store operation is one of these, run by
 * `EVALSHA`, so each transition is atomic on the server. The script text is constant: user
 * values (keys, data, statuses, conditions) only ever arrive as `ARGV` and are read with
 * `cjson`, never pasted into Lua.
 *
 * Calling convention: `KEYS[1]` is the store's id index (`{prefix}:ids`, declared so that a
 * Cluster client routes the script to the slot of the store's hash tag); `ARGV[1]` is the key
 * prefix `{prefix}:` every other key is built from (all keys share the hash tag, hence the
 * slot; both after the client's `keyPrefix`); `ARGV[2]` the JSON list of statuses whose
 * arrivals are published (see `watch`); `ARGV[3]` the call's id, for a write (see "Resent
 * calls" below; empty for a read); `ARGV[4]` the ids of earlier calls whose replies arrived,
 * comma-separated (their records can go). Each script's own arguments follow from `ARGV[5]`.
 *
 * Resent calls: a client may send a call again that already ran. ioredis resends a command whose
 * reply it had not read when the connection dropped (`autoResendUnfulfilledCommands`, on by
 * default), and its Cluster client retries one whose node connection closed. Run again, a
 * completion would find its own result and report a lost lease, and a claim would take another
 * item and leave the first held by no one. So every write marks the items it changes with its
 * call id (`q`), and a write that finds its own mark returns the item as it left it instead of
 * acting again. A claim-next, `retryAll` or purge does not name its items: it also records the ids
 * it changed (or how many it deleted) under `{p}:c:<call id>`, which the next write of the same
 * store deletes once this reply has arrived, or which expires after an hour.
 * Internal.
 * @module
 */
import { script } from './prelude.js';


/** `insert`: ARGV[5] key JSON, [6] status, [7] data JSON, [8] 'ms' | 'at' | '', [9] its value. */
export const INSERT = script(`
local kj = ARGV[5]
local id = redis.call('HGET', IDS, kj)
-- created by this very call, sent again; an id whose item is gone (evicted, or deleted by hand)
-- maps the key to nothing, and the key is tracked again
if id and redis.call('EXISTS', ikey(id)) == 1 then return {mine(id) and 1 or 0, read(id, ITEM)} end
local gone = id
-- first write: INCR, which Redis checks against maxmemory (see script())
id = string.format('%012x', redis.call('INCR', P .. 'seq'))
-- the counter went back (keys evicted, part of the data restored): never write over an item
if redis.call('EXISTS', ikey(id)) == 1 then
  return redis.error_reply('item id ' .. id .. ' from the id counter ' .. P .. 'seq is held by another item: the counter went back (a server that evicts keys, or part of the data restored); nothing was written')
end
if gone then
  -- the gone item's id may still stand in a status's sorted set, where claims would meet it
  for _, s in ipairs(redis.call('SMEMBERS', STATUSES)) do redis.call('ZREM', zkey(s), gone) end
end
local dl = now
if ARGV[8] == 'ms' then dl = math.floor(now + tonumber(ARGV[9])) elseif ARGV[8] == 'at' then dl = tonumber(ARGV[9]) end
local s = ARGV[6]
redis.call('HSET', IDS, kj, id)
redis.call('HSET', ikey(id), 'k', kj, 's', s, 'd', ARGV[7], 'a', '0', 'f', '0', 'dl', num(dl), 'c', num(now), 'u', num(now), 'q', CALL)
redis.call('ZADD', zkey(s), num(dl), id)
redis.call('SADD', STATUSES, s)
tell(s, dl)
publish()
return {1, read(id, ITEM)}
`);

/**
 * `update`: ARGV[5] condition JSON, [6] change JSON, [7] limit (-1: all), [8] 'item' | 'state',
 * [9] '1': append to each row the item's deadline from before the change (absent: not asked).
 */
export const UPDATE = script(`
local c = cjson.decode(ARGV[5])
local ch = cjson.decode(ARGV[6])
local fields = ARGV[8] == 'state' and STATE or ITEM
local prior = ARGV[9] == '1'
local ids, again = targets(c, tonumber(ARGV[7]))
local out = {}
for _, id in ipairs(ids) do
  local dl
  -- sent again: the deadline from before is gone, the current one stands in
  if again then dl = redis.call('HGET', ikey(id), 'dl') else dl = apply(id, ch) end
  local row = read(id, fields)
  -- after the fields (HMGET answers false, not nil, for a missing one, so #row counts them all)
  if prior then row[#row + 1] = dl end
  out[#out + 1] = row
end
if not again and not (c.r or c.k) and #ids > 0 then remember(table.concat(ids, ',')) end
publish()
return out
`);

/**
 * `updateEach`: ARGV[5] JSON list of [guard condition, change], [6] 'item' | 'state'. Returns,
 * in order, the updated item or `false` (a nil reply) where the guard did not hold. Each guard
 * names its item, so a resent call needs no record.
 */
export const UPDATE_EACH = script(`
local fields = ARGV[6] == 'state' and STATE or ITEM
local out = {}
for i, u in ipairs(cjson.decode(ARGV[5])) do
  if CALL ~= '' then MARK = CALL .. ':' .. i end
  local ids, again = targets(u[1], 1)
  local id = ids[1]
  if id then
    if not again then apply(id, u[2]) end
    out[i] = read(id, fields)
  else
    out[i] = false
  end
end
publish()
return out
`);

/** `find`: ARGV[5] condition JSON, [6] limit (-1: all), [7] 'item' | 'state'. */
export const FIND = script(`
local fields = ARGV[7] == 'state' and STATE or ITEM
local out = {}
for _, id in ipairs(select(cjson.decode(ARGV[5]), tonumber(ARGV[6]))) do out[#out + 1] = read(id, fields) end
return out
`);

/** `delete`: ARGV[5] condition JSON, [6] limit. Returns how many were deleted. */
export const DELETE = script(`
-- sent again: deleting the next ones would exceed the limit asked for
local done = redis.call('GET', P .. 'c:' .. CALL)
if done then return tonumber(done) end
local n = 0
for _, id in ipairs(select(cjson.decode(ARGV[5]), tonumber(ARGV[6]))) do
  local h = redis.call('HMGET', ikey(id), 'k', 's')
  redis.call('HDEL', IDS, h[1])
  redis.call('ZREM', zkey(h[2]), id)
  redis.call('DEL', ikey(id))
  n = n + 1
end
if n > 0 then remember(n) end
return n
`);

/** `stats`: a flat list of status, total, future (deadline after now) for each status with items. */
export const STATS = script(`
local out = {}
for _, s in ipairs(redis.call('SMEMBERS', STATUSES)) do
  local total = redis.call('ZCARD', zkey(s))
  if total > 0 then
    out[#out + 1] = s
    out[#out + 1] = total
    out[#out + 1] = redis.call('ZCOUNT', zkey(s), '(' .. num(now), '+inf')
  end
end
return out
`);

/**
 * `init`: ARGV[5] the key's field names in the tracker's declaration order (JSON list), [6] the
 * prefix `{prefix}:` without the client's keyPrefix. Returns the store's record of them (made now
 * from ARGV[5] if there is none, or if the store holds no item and the record names other fields,
 * in one step so that processes starting at once agree); 1 if the store's items are not under
 * `P` although its ids are: written through a client with a `keyPrefix` by a version that put it
 * on `{p}:ids` only (an id is taken from `{p}:seq` before any key maps to it, so a store's ids
 * never outlive it), 2 if keys are mapped but there is no id counter at all (deleted, evicted,
 * or lost in a partial restore); and how many keys `{p}:ids` maps.
 */
export const INIT = script(`
local K = P .. 'keyfields'
local names = redis.call('GET', K)
local count = redis.call('HLEN', IDS)
-- whether two JSON lists of names hold the same names (in any order); a record that is not such
-- a list is left for the client to report
local function same(a, b)
  local ok, x = pcall(cjson.decode, a)
  if not ok or type(x) ~= 'table' then return true end
  local y = cjson.decode(b)
  if #x ~= #y then return false end
  local seen = {}
  for _, n in ipairs(x) do seen[n] = true end
  for _, n in ipairs(y) do if not seen[n] then return false end end
  return true
end
-- the first tracker records its fields; one of other fields may take over only an empty store
-- (a reordering alone is not recorded: older processes may still write in the recorded order)
if not names or (count == 0 and not same(names, ARGV[5])) then
  names = ARGV[5]
  redis.call('SET', K, names)
end
local split = 0
if count > 0 and redis.call('EXISTS', P .. 'seq') == 0 then
  -- the older layout keeps its counter without the client's keyPrefix (ARGV[6]); none anywhere:
  -- the counter itself was lost
  if ARGV[6] ~= P and redis.call('EXISTS', ARGV[6] .. 'seq') == 1 then split = 1 else split = 2 end
end
return {names, split, count}
`);

/** The scripts by name. */
export const SCRIPTS = { insert: INSERT, update: UPDATE, updateEach: UPDATE_EACH, find: FIND, delete: DELETE, stats: STATS, init: INIT } as const;

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;
