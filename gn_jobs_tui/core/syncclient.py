"""The sync store's client: the redis-py calls the store makes, answered through `core/wire`.

Why: every `gn-jobs` command builds a sync store, and importing redis-py
(which imports its asyncio client and asyncio whatever is used) cost about
180 ms of a 380 ms `list`. Wire is the supervisor's client (hiredis, no
asyncio). Only what the store and its callers use is here, with the reply
shapes redis-py gives them (HGETALL a dict, ZSCORE a float, ...). Callers that
want anything else use `Store.r`, a redis-py client made on first use.

Cluster URLs keep redis-py (`RedisCluster`): the store asks it for per-node
SCAN and DBSIZE, which wire does not route.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from gn_jobs_tui.core import wire
from gn_jobs_tui.core.connection import Target

Cmd = tuple[Any, ...]


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _score(value: Any) -> float | None:
    return None if value is None else float(value)


def _scored(flat: list[Any]) -> list[tuple[Any, float]]:
    return [(m, float(s)) for m, s in zip(flat[::2], flat[1::2], strict=True)]


def _entries(entries: list[Any]) -> list[tuple[Any, dict[Any, Any]]]:
    return [(eid, _pairs(fields or [])) for eid, fields in entries]


def _info_value(text: str) -> Any:
    if "," not in text and "=" not in text:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
        return text
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key] = _info_value(value) if value else value
    return out


def parse_info(raw: bytes | str) -> dict[str, Any]:
    """INFO's text as redis-py gives it: `key: value`, numbers as numbers."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        info[key] = _info_value(value)
    return info


#: Replies reshaped as redis-py does for these commands (without WITHSCORES options).
_SHAPES: dict[str, Any] = {
    "HGETALL": lambda r: _pairs(r),
    "ZSCORE": _score,
    "ZMSCORE": lambda r: [_score(v) for v in r],
    "SMEMBERS": set,
    "XRANGE": _entries,
    "XREVRANGE": _entries,
    "INFO": parse_info,
    "TIME": lambda r: (int(r[0]), int(r[1])),
    "SCAN": lambda r: (int(r[0]), r[1]),
}


def shaped(cmd: Sequence[Any], reply: Any) -> Any:
    """A reply as redis-py would return it for this command (errors unchanged)."""
    if isinstance(reply, Exception):
        return reply
    name = cmd[0].upper() if isinstance(cmd[0], str) else cmd[0].decode().upper()
    if name.startswith("Z") and any(isinstance(a, str) and a.upper() == "WITHSCORES"
                                    for a in cmd[2:]):
        return _scored(reply)
    shape = _SHAPES.get(name)
    return reply if shape is None else shape(reply)


class Pipeline:
    """Commands sent in one round trip; MULTI/EXEC around them when `transaction`."""

    def __init__(self, client: WireRedis, transaction: bool) -> None:
        self.client, self.transaction = client, transaction
        self.cmds: list[Cmd] = []

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cmds = []

    def execute_command(self, *args: Any) -> Pipeline:
        self.cmds.append(args)
        return self

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        cmds, self.cmds = self.cmds, []
        if not cmds:
            return []
        if self.transaction:
            got = self.client.send([("MULTI",), *cmds, ("EXEC",)])
            # A command refused when queued (OOM, NOPERM, a wrong argument): EXEC
            # aborts and nothing ran; the refusal says why, EXECABORT does not.
            refused = next((r for r in got[1:-1] if isinstance(r, wire.ReplyError)), None)
            if refused is not None:
                raise refused
            if isinstance(got[-1], wire.ReplyError):
                raise got[-1]
            # Errors inside EXEC's reply come as hiredis's plain error objects: type them.
            replies = [wire.classify(str(r)) if isinstance(r, Exception)
                       and not isinstance(r, wire.ReplyError) else r for r in got[-1]]
        else:
            replies = self.client.send(cmds)
        out = [shaped(c, r) for c, r in zip(cmds, replies, strict=True)]
        if raise_on_error:
            failed = next((r for r in out if isinstance(r, wire.ReplyError)), None)
            if failed is not None:
                raise failed
        return out


class WireRedis:
    """The part of redis-py's `Redis` the sync store calls, on wire clients.

    Thread-safe as redis-py's is (the console's actions share one store across
    worker threads): each call takes a wire client from a pool, made when none
    is free, so the pool holds as many connections as calls ever ran at once.
    Errors are wire's (`core/errors.py` catches them beside redis-py's).
    """

    def __init__(self, target: Target, *, name: str = "gn-jobs", timeout: float = 5.0) -> None:
        self.target, self.name, self.timeout = target, name, timeout
        self._lock = threading.Lock()
        self._free: list[wire.Client] = []
        self._made: list[wire.Client] = []

    def send(self, cmds: Sequence[Cmd]) -> list[Any]:
        """Commands in one round trip on a free connection; error replies in place."""
        with self._lock:
            client = self._free.pop() if self._free else None
        if client is None:
            client = wire.Client(self.target, name=self.name, timeout=self.timeout)
            with self._lock:
                self._made.append(client)
        try:
            client.drop_stale()  # as redis-py's pool does: a restart since the last call
            return client.pipeline(cmds)
        finally:
            with self._lock:
                self._free.append(client)

    def execute_command(self, *cmd: Any) -> Any:
        reply = self.send([cmd])[0]
        if isinstance(reply, wire.ReplyError):
            raise reply
        return shaped(cmd, reply)

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self, transaction)

    def close(self) -> None:
        with self._lock:
            made, self._made, self._free = self._made, [], []
        for client in made:
            client.close()

    # -- the calls the store makes, with redis-py's signatures --------------------------
    def info(self, section: str | None = None) -> dict[str, Any]:
        return self.execute_command("INFO", *([section] if section else []))

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVAL", script, numkeys, *keys_and_args)

    def eval_ro(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVAL_RO", script, numkeys, *keys_and_args)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def evalsha_ro(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVALSHA_RO", sha, numkeys, *keys_and_args)

    def exists(self, *names: Any) -> int:
        return self.execute_command("EXISTS", *names)

    def type(self, name: Any) -> bytes:
        return self.execute_command("TYPE", name)

    def smembers(self, name: Any) -> set[Any]:
        return self.execute_command("SMEMBERS", name)

    def lrange(self, name: Any, start: int, end: int) -> list[Any]:
        return self.execute_command("LRANGE", name, start, end)

    def set(self, name: Any, value: Any) -> Any:
        return self.execute_command("SET", name, value)

    def delete(self, *names: Any) -> int:
        return self.execute_command("DEL", *names)

    def publish(self, channel: Any, message: Any) -> int:
        return self.execute_command("PUBLISH", channel, message)

    def hsetnx(self, name: Any, key: Any, value: Any) -> bool:
        return bool(self.execute_command("HSETNX", name, key, value))

    def zcard(self, name: Any) -> int:
        return self.execute_command("ZCARD", name)

    def zmscore(self, key: Any, members: Sequence[Any]) -> list[float | None]:
        return self.execute_command("ZMSCORE", key, *members)

    def zrange(self, name: Any, start: int, end: int, withscores: bool = False) -> list[Any]:
        return self.execute_command("ZRANGE", name, start, end,
                                    *(["WITHSCORES"] if withscores else []))

    def zrevrange(self, name: Any, start: int, end: int, withscores: bool = False) -> list[Any]:
        return self.execute_command("ZREVRANGE", name, start, end,
                                    *(["WITHSCORES"] if withscores else []))

    def zrangebyscore(self, name: Any, min: Any, max: Any, start: int | None = None,
                      num: int | None = None) -> list[Any]:
        limit = ["LIMIT", start, num] if start is not None and num is not None else []
        return self.execute_command("ZRANGEBYSCORE", name, min, max, *limit)

    def zrangebylex(self, name: Any, min: Any, max: Any, start: int | None = None,
                    num: int | None = None) -> list[Any]:
        limit = ["LIMIT", start, num] if start is not None and num is not None else []
        return self.execute_command("ZRANGEBYLEX", name, min, max, *limit)

    def xrevrange(self, name: Any, max: str = "+", min: str = "-",
                  count: int | None = None) -> list[Any]:
        return self.execute_command("XREVRANGE", name, max, min,
                                    *(["COUNT", count] if count is not None else []))

    def time(self) -> tuple[int, int]:
        return self.execute_command("TIME")

    def dbsize(self) -> int:
        return self.execute_command("DBSIZE")

    def scan(self, cursor: int = 0, match: str | None = None,
             count: int | None = None) -> tuple[int, list[Any]]:
        return self.execute_command("SCAN", cursor, *(["MATCH", match] if match else []),
                                    *(["COUNT", count] if count else []))

    def scan_iter(self, match: str | None = None, count: int | None = None) -> Iterator[Any]:
        cursor = None
        while cursor != 0:
            cursor, names = self.scan(cursor or 0, match, count)
            yield from names


def client_for(target: Target, *, name: str = "gn-jobs", timeout: float = 5.0) -> Any:
    """The sync store's client: wire for one server or Sentinel, redis-py for a Cluster."""
    if target.kind == "cluster":
        from gn_jobs_tui.core.connection import sync_client

        return sync_client(target, timeout=timeout, name=name)
    return WireRedis(target, name=name, timeout=timeout)
