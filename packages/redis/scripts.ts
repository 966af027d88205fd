/**
 * The Lua scripts the driver runs on the server. A script runs atomically
 * (no other client's command runs in between), so a commit's checks and all
 * its writes are one step for every process sharing the server, and each
 * script is one round trip.
 *
 * The layout (see `storeKeys`): `keys` is a sorted set of encoded keys, all
 * with score 0, so `ZRANGEBYLEX` is key order; `entries` is a hash from
 * encoded key to `version \n expiresAt \n value` (`expiresAt` empty when the
 * entry does not expire); `expiry` is a sorted set of the encoded keys that
 * expire, scored by their expiry time in ms. Expiry follows the store's
 * clock, passed in as `now`; Redis TTLs are not used (they follow the
 * server's clock, and would drop an entry a check at `now` still sees).
 *
 * @module
 */

/**
 * The first lines of every script but OPEN: its last key is the store's meta hash, and a store
 * whose meta hash is gone (the server restarted without persistence, FLUSHDB, evicted keys) is
 * an error reply `FLOWSTATE_GONE`, before anything is read or written: the driver says the store
 * was lost instead of answering from, or writing a part of, an emptied store.
 */
const ALIVE = `
if redis.call("EXISTS", KEYS[#KEYS]) == 0 then return redis.error_reply("FLOWSTATE_GONE") end
`;

/** Helpers every script shares: parsing an entry, byte-wise compare, live counts, range deletes. */
const PRELUDE = `${ALIVE}
local function parts(rec)
  local a = string.find(rec, "\\n", 1, true)
  local b = string.find(rec, "\\n", a + 1, true)
  return string.sub(rec, 1, a - 1), string.sub(rec, a + 1, b - 1)
end

-- memcmp order (Lua's < uses the server's collation locale, not bytes)
local function cmp(a, b)
  if a == b then return 0 end
  local la, lb = #a, #b
  local n = la < lb and la or lb
  for i = 1, n do
    local p, q = string.byte(a, i), string.byte(b, i)
    if p ~= q then return p < q and -1 or 1 end
  end
  return la < lb and -1 or 1
end

local function inRange(m, min, max)
  if min ~= "-" then
    local c = cmp(m, string.sub(min, 2))
    if c < 0 or (c == 0 and string.sub(min, 1, 1) == "(") then return false end
  end
  if max ~= "+" then
    local c = cmp(m, string.sub(max, 2))
    if c > 0 or (c == 0 and string.sub(max, 1, 1) == "(") then return false end
  end
  return true
end

-- live entries in a lex range: all of them less the expired ones, found by
-- walking whichever is smaller, the range or the expired keys
local function liveIn(z, x, min, max, now)
  local total = redis.call("ZLEXCOUNT", z, min, max)
  if total == 0 then return 0 end
  local expired = redis.call("ZCOUNT", x, "-inf", now)
  if expired == 0 then return total end
  local limit = tonumber(now)
  local dead = 0
  if total <= expired then
    local from = min
    while true do
      local ms = redis.call("ZRANGEBYLEX", z, from, max, "LIMIT", 0, 500)
      if #ms == 0 then break end
      for _, m in ipairs(ms) do
        local s = redis.call("ZSCORE", x, m)
        if s and tonumber(s) <= limit then dead = dead + 1 end
      end
      from = "(" .. ms[#ms]
    end
  else
    -- the expired keys are the first ones of the expiry set by rank: walked by rank, each page
    -- costs its size (a LIMIT offset would walk the offset again for every page: 10 s of a
    -- blocked server for 400,000 expired entries)
    for offset = 0, expired - 1, 500 do
      local ms = redis.call("ZRANGE", x, offset, math.min(offset + 499, expired - 1))
      for _, m in ipairs(ms) do
        if inRange(m, min, max) then dead = dead + 1 end
      end
    end
  end
  return total - dead
end

local function deleteRange(z, h, x, min, max)
  while true do
    local ms = redis.call("ZRANGEBYLEX", z, min, max, "LIMIT", 0, 500)
    if #ms == 0 then break end
    redis.call("HDEL", h, unpack(ms))
    redis.call("ZREM", x, unpack(ms))
    redis.call("ZREM", z, unpack(ms))
  end
end
`;

/**
 * KEYS: keys, entries, expiry, meta. ARGV: now, version, number of checks, then per
 * check the encoded key and `""` (must be absent or expired) or `"=" +
 * version`, then the mutations: `s key expiresAt value`, `d key`, `c min max`.
 * Returns the indexes of the failed checks; none means it was applied (now, or by an earlier
 * run of the same commit: see the first lines).
 */
export const COMMIT = `${PRELUDE}
local z, h, x = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local version = ARGV[2]
local i = 4
local conflicts = {}
-- A commit sent again (ioredis resends the commands whose answers a lost connection took) that
-- the server already ran: its first set's key holds this commit's version, which is unique to
-- it. It is reported applied, as it was, instead of as a conflict with itself.
local first = 4 + 2 * tonumber(ARGV[3])
while first <= #ARGV and ARGV[first] ~= "s" do
  first = first + (ARGV[first] == "d" and 2 or 3)
end
if first <= #ARGV then
  local rec = redis.call("HGET", h, ARGV[first + 1])
  if rec and string.sub(rec, 1, #version + 1) == version .. "\\n" then return conflicts end
end
for c = 1, tonumber(ARGV[3]) do
  local want = ARGV[i + 1]
  local current = ""
  local rec = redis.call("HGET", h, ARGV[i])
  if rec then
    local v, e = parts(rec)
    if e == "" or tonumber(e) > now then current = "=" .. v end
  end
  if current ~= want then conflicts[#conflicts + 1] = c - 1 end
  i = i + 2
end
if #conflicts > 0 then return conflicts end
local n = #ARGV
while i <= n do
  local t = ARGV[i]
  if t == "s" then
    local k, e = ARGV[i + 1], ARGV[i + 2]
    redis.call("HSET", h, k, version .. "\\n" .. e .. "\\n" .. ARGV[i + 3])
    redis.call("ZADD", z, 0, k)
    if e == "" then redis.call("ZREM", x, k) else redis.call("ZADD", x, e, k) end
    i = i + 4
  elseif t == "d" then
    local k = ARGV[i + 1]
    redis.call("HDEL", h, k)
    redis.call("ZREM", z, k)
    redis.call("ZREM", x, k)
    i = i + 2
  else
    deleteRange(z, h, x, ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  end
end
return conflicts
`;

/**
 * KEYS: keys, entries, meta. ARGV: min, max, `"1"` for descending order, count.
 * Returns up to count `[encodedKey, entry]` pairs, flattened.
 */
export const LIST = `${ALIVE}
local ms
if ARGV[3] == "1" then
  ms = redis.call("ZREVRANGEBYLEX", KEYS[1], ARGV[2], ARGV[1], "LIMIT", 0, ARGV[4])
else
  ms = redis.call("ZRANGEBYLEX", KEYS[1], ARGV[1], ARGV[2], "LIMIT", 0, ARGV[4])
end
if #ms == 0 then return {} end
local recs = redis.call("HMGET", KEYS[2], unpack(ms))
local out = {}
for i = 1, #ms do
  out[2 * i - 1] = ms[i]
  out[2 * i] = recs[i]
end
return out
`;

/** KEYS: keys, expiry, meta. ARGV: min, max, now. Returns how many live entries the range holds. */
export const COUNT = `${PRELUDE}
return liveIn(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
`;

/**
 * KEYS: keys, entries, expiry, meta. ARGV: min, max, now. Deletes every entry in the
 * range, expired ones too; returns how many were live.
 */
export const CLEAR = `${PRELUDE}
local live = liveIn(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
deleteRange(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
return live
`;

/** KEYS: keys, entries, expiry, meta. ARGV: now. Deletes every entry expired at now; returns how many. */
export const PURGE = `${ALIVE}
local z, h, x = KEYS[1], KEYS[2], KEYS[3]
local n = 0
while true do
  local ms = redis.call("ZRANGEBYSCORE", x, "-inf", ARGV[1], "LIMIT", 0, 500)
  if #ms == 0 then break end
  redis.call("HDEL", h, unpack(ms))
  redis.call("ZREM", z, unpack(ms))
  redis.call("ZREM", x, unpack(ms))
  n = n + #ms
end
return n
`;

/**
 * KEYS: meta, keys, entries, expiry. ARGV: `"1"` to create nothing, format,
 * layout version. Checks the keys' types and the layout; creates the meta
 * hash of a new store. Returns `{status, detail…}`: `ok`, `created`,
 * `missing`, `wrongtype key type`, `foreign format`, `newer version`.
 */
export const OPEN = `
local types = { "hash", "zset", "hash", "zset" }
for i, k in ipairs(KEYS) do
  local t = redis.call("TYPE", k)["ok"]
  if t ~= "none" and t ~= types[i] then return { "wrongtype", k, t } end
end
local format = redis.call("HGET", KEYS[1], "format")
if not format then
  if ARGV[1] == "1" then return { "missing" } end
  redis.call("HSET", KEYS[1], "format", ARGV[2], "version", ARGV[3])
  return { "created" }
end
if format ~= ARGV[2] then return { "foreign", format } end
local v = redis.call("HGET", KEYS[1], "version")
if not v or not tonumber(v) or tonumber(v) > tonumber(ARGV[3]) then
  return { "newer", tostring(v) }
end
return { "ok" }
`;
