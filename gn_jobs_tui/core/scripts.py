"""Server-side Lua scripts: one round trip for work that would take many.

Listing reads a page of ids and the table's fields of every job in it in one
call (no round trip per job); reading a job's keys reads every child and the
output, whatever their Redis type, in one call. Every `pcall` keeps one
damaged key (wrong type) from failing the whole call.
"""

from __future__ import annotations

from gn_jobs_tui.core.keys import LIST_FIELDS, STATUS_ALIASES, TERMINAL_STATUSES

TYPE_CHECKING = False  # the supervisor imports this module: no run-time `typing`
if TYPE_CHECKING:
    from typing import Any

_TERMINAL_WORDS = sorted(
    set(TERMINAL_STATUSES) | {k for k, v in STATUS_ALIASES.items() if v in TERMINAL_STATUSES}
)
_TERMINAL_LUA = "{" + ", ".join(f"['{w}']=true" for w in _TERMINAL_WORDS) + "}"

# Both listing scripts reply with ONE flat array, a fixed stride per job:
# id, index score (or false), heartbeat flag (-1 not checked, 0 lapsed,
# 1 alive) or an error text for a key of the wrong type, then the fields.
# A flat reply builds no Lua table per job and parses fastest in the client.
_ROWS_FN = r"""
local function rows_into(out, ids, scores, prefix, status_pos, hb_pos, fields)
  local nf = #fields
  for i = 1, #ids do
    local id = ids[i]
    local vals = redis.pcall('HMGET', prefix .. ':jobs:' .. id, unpack(fields))
    local n = #out
    out[n + 1] = id
    out[n + 2] = scores[i] or false
    if type(vals) == 'table' and vals['err'] then
      out[n + 3] = vals['err']
      for j = 1, nf do out[n + 3 + j] = false end
    else
      local flag = -1
      if vals[status_pos] == 'running' and vals[hb_pos] then
        flag = redis.call('EXISTS', prefix .. ':jobs:' .. id .. ':heartbeat')
      end
      out[n + 3] = flag
      for j = 1, nf do out[n + 3 + j] = vals[j] end
    end
  end
  return out
end
local prefix = ARGV[1]
local status_pos = tonumber(ARGV[2])
local hb_pos = tonumber(ARGV[3])
"""

#: KEYS[1] index zset; ARGV: prefix, status_pos, hb_pos, start, stop, fields...
LIST_PAGE = (
    _ROWS_FN
    + r"""
local flat = redis.call('ZREVRANGE', KEYS[1], ARGV[4], ARGV[5], 'WITHSCORES')
local ids, scores = {}, {}
for i = 1, #flat, 2 do ids[#ids + 1] = flat[i]; scores[#scores + 1] = flat[i + 1] end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
return rows_into({}, ids, scores, prefix, status_pos, hb_pos, fields)
"""
)

#: KEYS[1] jobs index; ARGV: prefix, status_pos, hb_pos, nfields, fields..., ids...
#: The index score is read only for a hash with no `created` (the rare damaged case).
GET_MANY = (
    _ROWS_FN
    + r"""
local nf = tonumber(ARGV[4])
local fields = {}
for i = 5, 4 + nf do fields[#fields + 1] = ARGV[i] end
local ids = {}
for i = 5 + nf, #ARGV do ids[#ids + 1] = ARGV[i] end
local out = rows_into({}, ids, {}, prefix, status_pos, hb_pos, fields)
local stride = 3 + nf
for i = 1, #out, stride do
  if type(out[i + 2]) == 'number' and not out[i + 2 + CREATED_POS] then
    out[i + 1] = redis.call('ZSCORE', KEYS[1], out[i]) or false
  end
end
return out
""".replace("CREATED_POS", str(LIST_FIELDS.index("created") + 1))
)

#: KEYS: keys to read; ARGV: per key, a cursor (stream id or list index), then max items.
#: Returns per key {type, payload, extra}: stream -> entries after the cursor;
#: list -> items from the index; string -> value (capped); hash -> flat pairs.
READ_KEYS = r"""
local maxn = tonumber(ARGV[#ARGV])
local out = {}
for i = 1, #KEYS do
  local key, cur = KEYS[i], ARGV[i]
  local t = redis.call('TYPE', key)['ok']
  local row
  if t == 'stream' then
    -- Inclusive start and drop the cursor's own entry: exclusive '(' ranges
    -- need Redis 6.2, and this must run on 6.0 too.
    local entries
    if cur ~= '' and cur ~= '0' then
      entries = redis.pcall('XRANGE', key, cur, '+', 'COUNT', maxn + 1)
      if type(entries) == 'table' and entries[1] and entries[1][1] == cur then
        table.remove(entries, 1)
      elseif type(entries) == 'table' and #entries > maxn then
        table.remove(entries)
      end
    else
      entries = redis.pcall('XRANGE', key, '-', '+', 'COUNT', maxn)
    end
    local info = redis.pcall('XLEN', key)
    row = {t, entries, info}
  elseif t == 'list' then
    local idx = tonumber(cur) or 0
    local len = redis.call('LLEN', key)
    row = {t, redis.call('LRANGE', key, idx, idx + maxn - 1), len}
  elseif t == 'string' then
    row = {t, {redis.call('GETRANGE', key, 0, 262143)}, redis.call('STRLEN', key)}
  elseif t == 'hash' then
    row = {t, redis.call('HGETALL', key), redis.call('HLEN', key)}
  else
    row = {t, {}, 0}
  end
  out[#out + 1] = row
end
return out
"""

#: KEYS[1] job hash; ARGV[1] events channel, ARGV[2] event. One key (Cluster-
#: safe): the caller saw the heartbeat key gone just before; a supervisor that
#: beats again in between sets its job back to `running` itself.
MARK_LOST = r"""
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if not redis.call('HGET', KEYS[1], 'heartbeat') then return 0 end
redis.call('HSET', KEYS[1], 'status', 'lost', 'message', 'supervisor stopped answering')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""

#: KEYS[1] job hash; ARGV: now, events ch, event payload. -1 no job, 0
#: finished, 1 recorded. The durable request key is written by the caller
#: first (one key per command: Cluster-safe); this marks the job and says
#: whether the request stands.
REQUEST_KILL = (
    "local terminal = "
    + _TERMINAL_LUA
    + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local st = redis.call('HGET', KEYS[1], 'status')
if st and terminal[string.lower(st)] and st ~= 'lost' then return 0 end
redis.call('HSET', KEYS[1], 'kill_requested', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""
)

#: Create a job hash only if it does not exist: KEYS[1] job hash, ARGV field/value
#: pairs. 1 created, 0 it was there. With deterministic retry ids this makes a
#: retry exactly-once without a transaction across keys.
CREATE_IF_ABSENT = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

#: Append stream entries exactly once, in order, even when a batch is sent
#: again after its reply was lost: each entry carries a sequence number `n`
#: (1, 2, ...) and entries at or below the stream's last `n` are skipped. One
#: key only, so it runs on any topology (Cluster included) and needs no hash.
#: KEYS[1] stream; ARGV: maxlen, first n, events channel ('' for none), event
#: payload, then per entry: number of field/value pairs, then the pairs.
#: Returns {appended, last n before}.
APPEND_ONCE = r"""
local tip = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if tip[1] then
  local f = tip[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'n' then last = tonumber(f[i + 1]) or 0 end
  end
end
local n = tonumber(ARGV[2]) - 1
local added = 0
local i = 5
while i <= #ARGV do
  local np = tonumber(ARGV[i])
  n = n + 1
  if n > last then
    local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', n}
    for j = i + 1, i + 2 * np do args[#args + 1] = ARGV[j] end
    redis.call(unpack(args))
    added = added + 1
  end
  i = i + 1 + 2 * np
end
if added > 0 and ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return {added, last}
"""


def append_once_args(maxlen: int, first_n: int, channel: str, payload: str,
                     entries: list[list[tuple[str, str]]]) -> list[str]:
    """ARGV for APPEND_ONCE: entries numbered first_n, first_n + 1, ..."""
    args = [str(maxlen), str(first_n), channel, payload]
    for pairs in entries:
        args.append(str(len(pairs)))
        for name, value in pairs:
            args.extend((name, value))
    return args


#: A write to a job hash by its supervisor, or by the job it runs, that holds
#: only while the supervisor's claim stands (fencing): refused when another
#: supervisor holds the job, when the job was retried (a hung supervisor came
#: back after its job was judged lost and run again), or when the hash is gone
#: (deleted or evicted: a write never re-creates a partial hash).
#: KEYS[1] job hash; ARGV: claim identity, events channel ('' none), event
#: payload, then field/value pairs (none: only check the claim).
#: Returns {1, status before} | {-1, holder} | {-2, retried_by} | {-3, ''}.
FENCED_HSET = r"""
local sup = redis.call('HGET', KEYS[1], 'supervisor')
if not sup then return {-3, ''} end
if sup ~= ARGV[1] then return {-1, sup} end
local by = redis.call('HGET', KEYS[1], 'retried_by')
if by then return {-2, by} end
local before = redis.call('HGET', KEYS[1], 'status') or ''
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return {1, before}
"""
FENCE_OK, FENCE_OTHER, FENCE_RETRIED, FENCE_GONE = 1, -1, -2, -3


class ReadScript:
    """A read-only script, by its SHA first and its source when the server lacks it.

    `ro=True` (Redis 7+, Valkey) runs it with EVALSHA_RO/EVAL_RO, which need no
    write permission, so a Redis ACL user limited to reads can run it;
    before Redis 7 it runs with EVALSHA/EVAL. A user refused scripting gets a
    ResponseError (NOPERM) that the store answers with pipelined reads.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    @property
    def sha(self) -> str:
        # Computed when first used, not at import: hashlib loads OpenSSL (~4 MB),
        # and the supervisor imports this module without ever calling a ReadScript.
        if "_sha" not in self.__dict__:
            import hashlib

            self.__dict__["_sha"] = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324
        return self.__dict__["_sha"]

    def __call__(self, client: Any, keys: list, args: list, *, ro: bool = True) -> Any:
        from gn_jobs_tui.core import errors

        by_sha, by_source = ("evalsha_ro", "eval_ro") if ro else ("evalsha", "eval")
        try:
            return getattr(client, by_sha)(self.sha, len(keys), *keys, *args)
        except errors.no_script():
            return getattr(client, by_source)(self.source, len(keys), *keys, *args)

    async def acall(self, client: Any, keys: list, args: list, *, ro: bool = True) -> Any:
        import redis

        by_sha, by_source = ("evalsha_ro", "eval_ro") if ro else ("evalsha", "eval")
        try:
            return await getattr(client, by_sha)(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await getattr(client, by_source)(self.source, len(keys), *keys, *args)


LIST_PAGE_RO = ReadScript(LIST_PAGE)
GET_MANY_RO = ReadScript(GET_MANY)
READ_KEYS_RO = ReadScript(READ_KEYS)


#: A job program's write to its job hash when it holds no claim identity (no
#: `GN_JOBS_CLAIM`): like FENCED_HSET without the holder check. Still never
#: re-creates a hash that is gone and never writes to a job superseded by a retry.
#: KEYS[1] job hash; ARGV: events channel ('' none), event payload, then
#: field/value pairs. Returns {1, status before} | {-2, retried_by} | {-3, ''}.
HSET_IF_LIVE = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {-3, ''} end
local by = redis.call('HGET', KEYS[1], 'retried_by')
if by then return {-2, by} end
local before = redis.call('HGET', KEYS[1], 'status') or ''
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return {1, before}
"""
