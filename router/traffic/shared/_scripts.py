"""The Lua that makes each shared update atomic: one script, one round trip.

Redis runs a script alone, so a check and the increment it allows can never be split
by another daemon's request. Times are Redis's own (``TIME``), so daemons whose clocks
disagree still share one window. Numbers that may be fractional (USD, waits) go out as
strings: Redis turns a Lua number into an integer reply, dropping the fraction.

Rate windows keep the local path's meaning (``router.traffic._window``): a moving 60 s
window of entries; an entry counts while ``now < at + 60 s``, and a refusal says how
long until enough of the oldest entries have left for the request to fit. Each window
is a sorted set of ``ID|REQUESTS|TOKENS`` members scored by their time in ms, beside a
hash of the sums (``r``, ``t``), so a check costs O(log n) unless the window is full.

A budget keeps spend per UTC period (``INCRBYFLOAT``) and holds of requests in flight
in a sorted set of ``ID|USD`` members scored by when the hold lapses (a daemon that
died never releases its holds; they lapse), beside their sum.

The cache keeps each answer under its own key (with Redis's own expiry for the TTL),
a sorted set of keys by last use (LRU) and a hash of their sizes; ``bytes`` is the
sum, and a store evicts the least recently used until the new answer fits.
"""

from __future__ import annotations

import hashlib

__all__ = ["ADMIT", "ALL", "CACHE_PUT", "HEDGE", "RECONCILE", "RELEASE", "TAKE", "UNHOLD", "Script"]


class Script:
    """A script's source and its SHA-1 (``EVALSHA``)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by SHA-1


_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parts(member)
  local _, _, r, t = string.find(member, '|(%d+)|(%d+)$')
  return tonumber(r), tonumber(t)
end

-- Drop the entries that have left the window (at + 60 s <= now).
local function prune(win, sums, now)
  local gone = redis.call('ZRANGEBYSCORE', win, '-inf', now - 60000)
  if #gone == 0 then return end
  local r, t = 0, 0
  for _, m in ipairs(gone) do
    local mr, mt = parts(m)
    r = r + mr
    t = t + mt
  end
  redis.call('ZREMRANGEBYSCORE', win, '-inf', now - 60000)
  redis.call('HINCRBY', sums, 'r', -r)
  redis.call('HINCRBY', sums, 't', -t)
end

-- ms until the oldest entries holding `must` (requests: field 1, tokens: 2) have left.
local function leave_in(win, now, must, field)
  local entries = redis.call('ZRANGE', win, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local mr, mt = parts(entries[i])
    must = must - (field == 1 and mr or mt)
    if must <= 0 then return tonumber(entries[i + 1]) + 60000 - now end
  end
  return 0
end

-- ms until the window could take one request of `tokens`; -1: it can now.
local function wait_ms(win, sums, now, rpm, tpm, tokens)
  prune(win, sums, now)
  local r = tonumber(redis.call('HGET', sums, 'r') or '0')
  local t = tonumber(redis.call('HGET', sums, 't') or '0')
  local wait = -1
  if rpm > 0 and r >= rpm then
    wait = math.max(wait, leave_in(win, now, r + 1 - rpm, 1))
  end
  if tpm > 0 then
    local must = t + math.min(tokens, tpm) - tpm
    if must > 0 then wait = math.max(wait, leave_in(win, now, must, 2)) end
  end
  return wait
end

local function add(win, sums, now, member, tokens)
  redis.call('ZADD', win, now, member .. '|1|' .. tokens)
  redis.call('HINCRBY', sums, 'r', 1)
  redis.call('HINCRBY', sums, 't', tokens)
  redis.call('PEXPIRE', win, 120000)
  redis.call('PEXPIRE', sums, 120000)
end
"""

# KEYS: 2 per window (zset, sums). ARGV: member id, then rpm, tpm, tokens per window
# (0: no limit). Returns {0} when taken from every window, else {index, wait ms}.
TAKE = Script(
    "take",
    _COMMON
    + """
local now = now_ms()
local n = #KEYS / 2
for i = 1, n do
  local w = wait_ms(KEYS[2*i-1], KEYS[2*i], now, tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1]))
  if w >= 0 then return {i, tostring(w)} end
end
for i = 1, n do add(KEYS[2*i-1], KEYS[2*i], now, ARGV[1], ARGV[3*i+1]) end
return {0}
""",
)

# One request's admission, in one round trip: its key's budget (spent, or held by
# requests in flight?), its key's window, the cache; then the hold, if no cached answer.
# KEYS: window, sums, spend of the day, spend of the month, holds, held, cache entry, lru.
# ARGV: id, rpm, tpm, tokens (rpm = tpm = -1: no window), budget usd (-1: no budget),
# per (day|month), hold usd, lease ms, cached (1: look the cache up).
# Returns {code, spent_day, spent_month, answer or wait}: code 0 admitted (the cached
# answer or false), 1 the budget is held by requests in flight, 2 it is spent, 3 the
# window is full (the wait in ms).
ADMIT = Script(
    "admit",
    _COMMON
    + """
local now = now_ms()
local id, rpm, tpm, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local day = tonumber(redis.call('GET', KEYS[3]) or '0')
local month = tonumber(redis.call('GET', KEYS[4]) or '0')
if budget >= 0 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
    if redis.call('ZCARD', KEYS[5]) == 0 then
      redis.call('DEL', KEYS[6])
    else
      local sum = 0
      for _, m in ipairs(lapsed) do
        local _, _, usd = string.find(m, '|([^|]+)$')
        sum = sum + tonumber(usd)
      end
      redis.call('INCRBYFLOAT', KEYS[6], -sum)
    end
  end
  local spent = ARGV[6] == 'month' and month or day
  local remaining = math.max(0, budget - spent)
  local held = tonumber(redis.call('GET', KEYS[6]) or '0')
  if remaining - held <= 0 then
    if remaining > 0 then return {1, tostring(day), tostring(month)} end
    return {2, tostring(day), tostring(month)}
  end
end
if rpm >= 0 then
  local w = wait_ms(KEYS[1], KEYS[2], now, rpm, tpm, tokens)
  if w >= 0 then return {3, tostring(day), tostring(month), tostring(w)} end
  add(KEYS[1], KEYS[2], now, id, tokens)
end
local answer = false
if ARGV[9] == '1' then
  answer = redis.call('GET', KEYS[7])
  if answer then redis.call('ZADD', KEYS[8], now, KEYS[7]) end
end
if budget >= 0 and not answer then
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[8]), id .. '|' .. ARGV[7])
  redis.call('INCRBYFLOAT', KEYS[6], ARGV[7])
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[8]) + 60000)
  redis.call('PEXPIRE', KEYS[6], tonumber(ARGV[8]) + 60000)
end
return {0, tostring(day), tostring(month), answer}
""",
)

# The upstream's usage replaces a window entry's estimate. KEYS: window, sums.
# ARGV: id, estimated, actual. An entry gone from the window: a surplus is charged now.
RECONCILE = Script(
    "reconcile",
    _COMMON
    + """
local now = now_ms()
local old = ARGV[1] .. '|1|' .. ARGV[2]
local at = redis.call('ZSCORE', KEYS[1], old)
local diff = tonumber(ARGV[3]) - tonumber(ARGV[2])
if at then
  redis.call('ZREM', KEYS[1], old)
  redis.call('ZADD', KEYS[1], at, ARGV[1] .. '|1|' .. ARGV[3])
  redis.call('HINCRBY', KEYS[2], 't', diff)
elseif diff > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. '+|0|' .. diff)
  redis.call('HINCRBY', KEYS[2], 't', diff)
end
return 0
""",
)

# An attempt that never reached the upstream gives its entry back. KEYS: window, sums.
# ARGV: id, tokens.
RELEASE = Script(
    "release",
    """
if redis.call('ZREM', KEYS[1], ARGV[1] .. '|1|' .. ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'r', -1)
  redis.call('HINCRBY', KEYS[2], 't', -tonumber(ARGV[2]))
end
return 0
""",
)

# A hold given back. KEYS: holds, held. ARGV: id, usd.
UNHOLD = Script(
    "unhold",
    """
if redis.call('ZREM', KEYS[1], ARGV[1] .. '|' .. ARGV[2]) == 1 then
  if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[2])
  else
    redis.call('INCRBYFLOAT', KEYS[2], '-' .. ARGV[2])
  end
end
return 0
""",
)

# Store an answer. KEYS: entry, lru, sizes, bytes. ARGV: data, ttl ms, size, max bytes.
# Returns the entries evicted to make room.
CACHE_PUT = Script(
    "cache_put",
    """
local key, size, max = KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('HGET', KEYS[3], key)
if old then
  redis.call('HDEL', KEYS[3], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('DECRBY', KEYS[4], old)
end
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
local evicted = 0
while total + size > max do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then total = 0 break end
  local k = oldest[1]
  total = total - tonumber(redis.call('HGET', KEYS[3], k) or '0')
  redis.call('ZREM', KEYS[2], k)
  redis.call('HDEL', KEYS[3], k)
  evicted = evicted + redis.call('DEL', k)
end
redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, key)
redis.call('HSET', KEYS[3], key, size)
redis.call('SET', KEYS[4], total + size)
return evicted
""",
)

# The hedge budget: this daemon's earnings and spending since it last said, applied to
# the shared bucket (which starts full). KEYS: bucket. ARGV: earned, spent, burst.
HEDGE = Script(
    "hedge",
    """
local burst = tonumber(ARGV[3])
local tokens = tonumber(redis.call('GET', KEYS[1]) or ARGV[3])
tokens = math.max(0, math.min(burst, tokens + tonumber(ARGV[1])) - tonumber(ARGV[2]))
redis.call('SET', KEYS[1], tostring(tokens))
return tostring(tokens)
""",
)

ALL = (ADMIT, TAKE, RECONCILE, RELEASE, UNHOLD, CACHE_PUT, HEDGE)
