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

/**
 * Shared helpers, prepended to every script. Layout under the prefix `{p}:`:
 * - `{p}:ids`        hash: canonical key JSON → item id
 * - `{p}:seq`        counter of item ids (ids are never reused)
 * - `{p}:i:<id>`     hash per item: k key JSON, s status, g stage, d data JSON, a attempts,
 *                    f fence, o owner, dl deadline ms, e last error, c created, u updated,
 *                    cl claimed, fi finished (times in epoch ms; absent fields are null),
 *                    q the id of the call that last changed it
 * - `{p}:z:<status>` sorted set per status: member id, score deadline ms. Ids are 12 hex
 *                    digits, so members of equal score sort in insertion order
 * - `{p}:statuses`   set of the statuses that ever held an item
 * - `{p}:keyfields`  JSON list of the key's field names, in the order of the values in each
 *                    key JSON (see `keyOrder` in codec.ts)
 * - `{p}:c:<call>`   what a write that names no item did: the ids it changed, comma-separated,
 *                    or the number it deleted (see "Resent calls")
 * - `{p}:wake`       pub/sub channel: `<ms until claimable>:<status>`
 */
const PRELUDE = String.raw`
local P = ARGV[1]
local IDS = KEYS[1]
local STATUSES = P .. 'statuses'
local CALL = ARGV[3]
-- the mark a change writes on its item (field q): the call id, and in a batch the entry's position
-- too, so that a resent batch answers each entry as it ran, even one naming an item twice
local MARK = CALL
-- a record of what a call did is kept until its reply has arrived, or this long (ms)
local KEEP = 3600000
local claimable = {}
for _, s in ipairs(cjson.decode(ARGV[2])) do claimable[s] = true end
for call in string.gmatch(ARGV[4], '[^,]+') do redis.call('DEL', P .. 'c:' .. call) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function num(n) return string.format('%.0f', n) end
local function ikey(id) return P .. 'i:' .. id end
local function zkey(s) return P .. 'z:' .. s end
local STATE = {'k', 's', 'g', 'a', 'f', 'o', 'dl', 'e', 'c', 'u', 'cl', 'fi'}
local ITEM = {'k', 's', 'g', 'a', 'f', 'o', 'dl', 'e', 'c', 'u', 'cl', 'fi', 'd'}
local function read(id, fields)
  local row = redis.call('HMGET', ikey(id), unpack(fields))
  table.insert(row, 1, id)
  return row
end
local function has(list, v)
  if not list then return false end
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end
-- the earliest delay per status of what became claimable in this script: one message each
local wake = {}
local function tell(s, dl)
  if not claimable[s] then return end
  local ms = math.max(0, tonumber(dl) - now)
  if wake[s] == nil or ms < wake[s] then wake[s] = ms end
end
local function publish()
  for s, ms in pairs(wake) do redis.call('PUBLISH', P .. 'wake', num(ms) .. ':' .. s) end
end
-- a condition c: r id, k key JSON, s statuses, ns not statuses, g stage, f fence,
-- dp 'passed' | 'future', db deadline before (ms), dr deadline before the server's now plus dr (ms)
local function before(c)
  if c.dr then return now + c.dr end
  return c.db
end
local function matches(c, id)
  local h = redis.call('HMGET', ikey(id), 's', 'g', 'f', 'k', 'dl')
  if not h[1] then return false end
  if c.r and c.r ~= id then return false end
  if c.k and c.k ~= h[4] then return false end
  if c.s and #c.s > 0 and not has(c.s, h[1]) then return false end
  if has(c.ns, h[1]) then return false end
  if c.g and c.g ~= h[2] then return false end
  if c.f and tonumber(h[3]) ~= c.f then return false end
  local dl = tonumber(h[5])
  if c.dp == 'passed' and dl > now then return false end
  if c.dp == 'future' and dl <= now then return false end
  local db = before(c)
  if db and dl >= db then return false end
  return true
end
-- the ids matching c, at most limit (< 0: all), in eligible order: a merge of the sorted sets
-- of the statuses, each read in windows of its deadline range
local function select(c, limit)
  local out = {}
  if limit == 0 then return out end
  if c.r or c.k then
    local id = c.r or redis.call('HGET', IDS, c.k)
    if id and matches(c, id) then out[1] = id end
    return out
  end
  local statuses = c.s
  if not statuses or #statuses == 0 then statuses = redis.call('SMEMBERS', STATUSES) end
  local lo, hi = '-inf', '+inf'
  if c.dp == 'passed' then hi = num(now) elseif c.dp == 'future' then lo = '(' .. num(now) end
  local db = before(c)
  if db then hi = '(' .. num(db) end
  -- the sorted set already holds status and deadline: other parts need the item's hash
  local check = c.g ~= nil or c.f ~= nil
  local window = 256
  if limit > 0 and limit < window then window = limit end
  -- each status's members in the deadline range are ranks first..last (ZCOUNT, O(log n)), read
  -- in windows by rank (ZRANGE by index, O(log n) each): a long scan costs O(n), also through a
  -- long run of equal deadlines, where paging by score could only step by offset
  local function below(key, bound)
    if bound == '-inf' then return 0 end
    if string.sub(bound, 1, 1) == '(' then return redis.call('ZCOUNT', key, '-inf', string.sub(bound, 2)) end
    return redis.call('ZCOUNT', key, '-inf', '(' .. bound)
  end
  local cursors = {}
  for _, s in ipairs(statuses) do
    if not has(c.ns, s) then
      local key = zkey(s)
      cursors[#cursors + 1] = {key = key, first = below(key, lo), last = redis.call('ZCOUNT', key, '-inf', hi) - 1, buf = {}, pos = 1}
    end
  end
  local function head(x)
    if x.pos > #x.buf then
      if x.first > x.last then return nil end
      local to = math.min(x.first + window - 1, x.last)
      x.buf = redis.call('ZRANGE', x.key, x.first, to, 'WITHSCORES')
      x.first = to + 1
      x.pos = 1
      if #x.buf == 0 then return nil end
    end
    return x.buf[x.pos], tonumber(x.buf[x.pos + 1])
  end
  while limit < 0 or #out < limit do
    local best, bid, bscore
    for _, x in ipairs(cursors) do
      local id, score = head(x)
      if id and (best == nil or score < bscore or (score == bscore and id < bid)) then best, bid, bscore = x, id, score end
    end
    if best == nil then break end
    best.pos = best.pos + 2
    if not check or matches(c, bid) then out[#out + 1] = bid end
  end
  return out
end
-- items this run changed or answered for: a batch that names an item twice acts on it once,
-- the second guard finding the first's change, and a resent batch answers the same
local touched = {}
-- whether this call already ran (see "Resent calls"), changed the item, and no one has since
local function mine(id)
  if CALL == '' or touched[id] then return false end
  return redis.call('HGET', ikey(id), 'q') == MARK
end
local function nullable(key, field, v, set)
  if v == cjson.null then redis.call('HDEL', key, field) else set[#set + 1] = field; set[#set + 1] = v end
end
-- a change ch: s status, g stage, o owner, bf bump fence, a 'i' | 'd' | 'r' attempts,
-- dm deadline now + ms, da deadline at ms, d data JSON, e last error, fi finished.
-- Returns the deadline from before the change (ms, as stored).
local function apply(id, ch)
  local key = ikey(id)
  local cur = redis.call('HMGET', key, 's', 'dl', 'a')
  local s, dl = cur[1], cur[2]
  local set = {'u', num(now), 'q', MARK}
  touched[id] = true
  local to = s
  if ch.s then to = ch.s; set[#set + 1] = 's'; set[#set + 1] = to end
  if ch.g then set[#set + 1] = 'g'; set[#set + 1] = ch.g end
  if ch.o ~= nil then nullable(key, 'o', ch.o, set) end
  if ch.bf then redis.call('HINCRBY', key, 'f', 1) end
  if ch.a == 'i' then
    redis.call('HINCRBY', key, 'a', 1); set[#set + 1] = 'cl'; set[#set + 1] = num(now)
  elseif ch.a == 'd' then
    if tonumber(cur[3]) > 0 then redis.call('HINCRBY', key, 'a', -1) end
  elseif ch.a == 'r' then
    set[#set + 1] = 'a'; set[#set + 1] = '0'
  end
  local due = dl
  if ch.dm then due = num(math.floor(now + ch.dm)) elseif ch.da then due = num(ch.da) end
  if due ~= dl then set[#set + 1] = 'dl'; set[#set + 1] = due end
  if ch.d then set[#set + 1] = 'd'; set[#set + 1] = ch.d end
  if ch.e ~= nil then nullable(key, 'e', ch.e, set) end
  if ch.fi == true then set[#set + 1] = 'fi'; set[#set + 1] = num(now) elseif ch.fi == false then redis.call('HDEL', key, 'fi') end
  redis.call('HSET', key, unpack(set))
  if to ~= s then
    redis.call('ZREM', zkey(s), id)
    redis.call('SADD', STATUSES, to)
  end
  if to ~= s or due ~= dl then
    redis.call('ZADD', zkey(to), due, id)
    -- a move into a claimable status, or a waiting item's new deadline (a reschedule)
    tell(to, due)
  end
  return dl
end
-- the ids a write acts on, and whether it ran before: then they are those its first run changed
-- that no one has changed since, and the caller returns them as they are
local function targets(c, limit)
  if c.r or c.k then
    local id = c.r or redis.call('HGET', IDS, c.k)
    if limit ~= 0 and id and mine(id) then
      touched[id] = true
      return {id}, true
    end
  else
    local done = redis.call('GET', P .. 'c:' .. CALL)
    if done then
      local ids = {}
      for id in string.gmatch(done, '[^,]+') do
        if mine(id) then ids[#ids + 1] = id; touched[id] = true end
      end
      return ids, true
    end
  end
  return select(c, limit), false
end
-- for a write that names no item: what it did, in case it is sent again
local function remember(value)
  redis.call('SET', P .. 'c:' .. CALL, value, 'PX', KEEP)
end
`;

/** `insert`: ARGV[5] key JSON, [6] status, [7] data JSON, [8] 'ms' | 'at' | '', [9] its value. */
export const INSERT = `${PRELUDE}
local kj = ARGV[5]
local id = redis.call('HGET', IDS, kj)
-- created by this very call, sent again; an id whose item is gone (evicted, or deleted by hand)
-- maps the key to nothing, and the key is tracked again
if id and redis.call('EXISTS', ikey(id)) == 1 then return {mine(id) and 1 or 0, read(id, ITEM)} end
if id then
  -- the gone item's id may still stand in a status's sorted set, where claims would meet it
  for _, s in ipairs(redis.call('SMEMBERS', STATUSES)) do redis.call('ZREM', zkey(s), id) end
end
id = string.format('%012x', redis.call('INCR', P .. 'seq'))
-- the counter went back (keys evicted, part of the data restored): never write over an item
if redis.call('EXISTS', ikey(id)) == 1 then
  return redis.error_reply('item id ' .. id .. ' from the id counter ' .. P .. 'seq is held by another item: the counter went back (a server that evicts keys, or part of the data restored); nothing was written')
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
`;

/**
 * `update`: ARGV[5] condition JSON, [6] change JSON, [7] limit (-1: all), [8] 'item' | 'state',
 * [9] '1': append to each row the item's deadline from before the change (absent: not asked).
 */
export const UPDATE = `${PRELUDE}
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
`;

/**
 * `updateEach`: ARGV[5] JSON list of [guard condition, change], [6] 'item' | 'state'. Returns,
 * in order, the updated item or `false` (a nil reply) where the guard did not hold. Each guard
 * names its item, so a resent call needs no record.
 */
export const UPDATE_EACH = `${PRELUDE}
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
`;

/** `find`: ARGV[5] condition JSON, [6] limit (-1: all), [7] 'item' | 'state'. */
export const FIND = `${PRELUDE}
local fields = ARGV[7] == 'state' and STATE or ITEM
local out = {}
for _, id in ipairs(select(cjson.decode(ARGV[5]), tonumber(ARGV[6]))) do out[#out + 1] = read(id, fields) end
return out
`;

/** `delete`: ARGV[5] condition JSON, [6] limit. Returns how many were deleted. */
export const DELETE = `${PRELUDE}
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
`;

/** `stats`: a flat list of status, total, future (deadline after now) for each status with items. */
export const STATS = `${PRELUDE}
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
`;

/**
 * `init`: ARGV[5] the key's field names in the tracker's declaration order (JSON list). Returns
 * the store's record of them (made now from ARGV[5] if there is none, or if the store holds no
 * item and the record names other fields, in one step so that processes starting at once agree),
 * 1 if the store's items are not under `P` although its
 * ids are: written through a client with a `keyPrefix` by a version that put it on `{p}:ids` only
 * (an id is taken from `{p}:seq` before any key maps to it, so a store's ids never outlive it),
 * and how many keys `{p}:ids` maps.
 */
export const INIT = `${PRELUDE}
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
if count > 0 and redis.call('EXISTS', P .. 'seq') == 0 then split = 1 end
return {names, split, count}
`;

/** The scripts by name. */
export const SCRIPTS = { insert: INSERT, update: UPDATE, updateEach: UPDATE_EACH, find: FIND, delete: DELETE, stats: STATS, init: INIT } as const;

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;
