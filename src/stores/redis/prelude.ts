/**
 * The Lua helpers every script of {@link RedisStore} starts with (see scripts.ts for the calling
 * convention). Internal.
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
export const PRELUDE = String.raw`
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
-- deletes the records of earlier calls whose replies arrived, and the ghost ids this script met
-- (see present): run last (see script() below)
local ghosts = {}
local function forget()
  for call in string.gmatch(ARGV[4], '[^,]+') do redis.call('DEL', P .. 'c:' .. call) end
  for _, g in ipairs(ghosts) do redis.call('ZREM', g[1], g[2]) end
end
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
  if h[2] and has(c.ng, h[2]) then return false end
  if c.f and tonumber(h[3]) ~= c.f then return false end
  local dl = tonumber(h[5])
  if c.dp == 'passed' and dl > now then return false end
  if c.dp == 'future' and dl <= now then return false end
  local db = before(c)
  if db and dl >= db then return false end
  return true
end
-- ids met in a status's sorted set whose item is gone (its hash deleted by hand, or evicted):
-- skipped, and removed from that set once the script is done (see forget)
local function present(key, id)
  if redis.call('EXISTS', ikey(id)) == 1 then return true end
  ghosts[#ghosts + 1] = {key, id}
  return false
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
  local check = c.g ~= nil or c.ng ~= nil or c.f ~= nil
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
    if present(best.key, bid) and (not check or matches(c, bid)) then out[#out + 1] = bid end
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
local function nullable(field, v, set, gone)
  if v == cjson.null then gone[#gone + 1] = field else set[#set + 1] = field; set[#set + 1] = v end
end
-- a change ch: s status, g stage, o owner, bf bump fence, a 'i' | 'd' | 'r' attempts,
-- dm deadline now + ms, da deadline at ms, d data JSON, e last error, fi finished.
-- Returns the deadline from before the change (ms, as stored).
local function apply(id, ch)
  local key = ikey(id)
  local cur = redis.call('HMGET', key, 's', 'dl', 'a')
  local s, dl = cur[1], cur[2]
  local set = {'u', num(now), 'q', MARK}
  -- fields to delete, after the HSET: a script's first write must be one Redis checks against
  -- maxmemory (see script()), and HDEL is not
  local gone = {}
  touched[id] = true
  local to = s
  if ch.s then to = ch.s; set[#set + 1] = 's'; set[#set + 1] = to end
  if ch.g then set[#set + 1] = 'g'; set[#set + 1] = ch.g end
  if ch.o ~= nil then nullable('o', ch.o, set, gone) end
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
  if ch.e ~= nil then nullable('e', ch.e, set, gone) end
  if ch.fi == true then set[#set + 1] = 'fi'; set[#set + 1] = num(now) elseif ch.fi == false then gone[#gone + 1] = 'fi' end
  redis.call('HSET', key, unpack(set))
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
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

/**
 * A script: the prelude, then `body` (Lua that ends in `return`), then the deletion of earlier
 * calls' records and of the ghost ids the script met. That deletion runs last because Redis checks `maxmemory` inside a script only
 * at its first write, and only at a write that may grow memory: a `DEL` first would let every
 * later write of the script past a full `noeviction` server (a `track` after a claim, say). Run
 * last, the script's own first write meets the check, and a refused one deletes nothing either
 * (the client sends those ids again with its next write).
 */
export function script(body: string): string {
  return `${PRELUDE}
local function run()
${body}
end
local result = run()
forget()
return result
`;
}
