"""The job store: every read and write of the Redis contract.

`Store` (sync, for the CLI, supervisor and job programs) and `AsyncStore`
(redis.asyncio, for the console) share the command building and reply
parsing in `_Base`, so both read a job the same way. Listing is one Lua call
per page (never a round trip per job); reading is tolerant (see `model`).
"""

from __future__ import annotations

import contextlib
import gc
import getpass
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
import redis.asyncio as aioredis

from gn_jobs_tui.core import events, scripts
from gn_jobs_tui.core.keys import QUEUED, TERMINAL_STATUSES, Keys
from gn_jobs_tui.core.model import (
    MISSING,
    TABLE_FIELDS,
    Job,
    normalise_status,
    parse_job,
    parse_table_row,
    to_text,
)
from gn_jobs_tui.core.outputs import KeyState, apply_chunk, read_args

PAGE = 5000
AUDIT_MAXLEN = 100_000


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while thousands of Job objects are made at once.

    They hold no cycles; without this, each page re-scans every job already
    loaded, and listing 100,000 jobs slows down by a third.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class StoreError(Exception):
    """An expected failure, shown to the user as one clear line."""


class ReadOnlyError(StoreError):
    def __init__(self, what: str = "this action") -> None:
        super().__init__(f"read-only mode: {what} is not allowed")


def new_job_id() -> str:
    return uuid.uuid4().hex


def whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actor() -> dict[str, str]:
    """Who is acting, for the audit stream."""
    return {"by_user": whoami(), "by_host": socket.gethostname()}


def job_fields(
    job_id: str,
    job_type: str,
    user_id: str,
    command: list[str],
    params: dict[str, Any] | None,
    *,
    created: float | None = None,
    attempt: int = 1,
    retry_of: str | None = None,
) -> dict[str, str]:
    """The hash of a new job, every value a string as the contract says."""
    fields = {
        "job_id": job_id,
        "job_type": job_type,
        "user_id": user_id,
        "status": QUEUED,
        "command": json.dumps(command),
        "created": repr(created if created is not None else time.time()),
        "params": json.dumps(params or {}),
        "attempt": str(attempt),
    }
    if retry_of:
        fields["retry_of"] = retry_of
    return fields


class _Base:
    """What the sync and async stores share: names, scripts, parsing."""

    def __init__(self, prefix: str, read_only: bool) -> None:
        self.keys = Keys(prefix)
        self.prefix = prefix
        self.read_only = read_only
        self._status_pos = TABLE_FIELDS.index("status") + 1
        self._hb_pos = TABLE_FIELDS.index("heartbeat") + 1

    def check_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(what)

    def _list_args(self, start: int, stop: int) -> list[Any]:
        return [self.prefix, self._status_pos, self._hb_pos, start, stop, *TABLE_FIELDS]

    def _many_args(self, ids: list[str]) -> list[Any]:
        return [self.prefix, self._status_pos, self._hb_pos, len(TABLE_FIELDS), *TABLE_FIELDS, *ids]

    @staticmethod
    def _parse_rows(flat: Any) -> list[Job]:
        """Jobs from a listing script's flat reply (see scripts._ROWS_FN)."""
        jobs: list[Job] = []
        if not isinstance(flat, list):
            return jobs
        with _no_gc():
            return _Base._rows_to_jobs(flat, jobs)

    @staticmethod
    def _rows_to_jobs(flat: list[Any], jobs: list[Job]) -> list[Job]:
        nf = len(TABLE_FIELDS)
        stride = 3 + nf
        for i in range(0, len(flat) - stride + 1, stride):
            job_id = to_text(flat[i]) or "?"
            score, flag, values = flat[i + 1], flat[i + 2], flat[i + 3 : i + stride]
            if not isinstance(flag, int):
                jobs.append(Job(job_id=job_id, damage=(f"job key: {to_text(flag)}",)))
                continue
            if all(v is None for v in values):
                job = Job(job_id=job_id, damage=(MISSING,))
            else:
                job = parse_table_row(job_id, values, None if flag == -1 else flag == 1)
            if job.created is None and score is not None:
                try:
                    job.created = float(score)
                except (TypeError, ValueError):
                    job.damage = (*job.damage, "index score: not a number")
            jobs.append(job)
        return jobs

    def _index(self, user: str | None) -> str:
        return self.keys.user_jobs(user) if user else self.keys.jobs_index

    def _queue_create(self, pipe: Any, fields: dict[str, str], why: str = "created") -> None:
        """Queue the commands that create one job (inside a MULTI)."""
        job_id, created = fields["job_id"], float(fields["created"])
        pipe.hset(self.keys.job(job_id), mapping=fields)
        pipe.zadd(self.keys.jobs_index, {job_id: created})
        pipe.zadd(self.keys.user_jobs(fields["user_id"]), {job_id: created})
        pipe.publish(self.keys.events_channel, events.encode(job_id, why, status=QUEUED))

    def _queue_audit(self, pipe: Any, action: str, job_id: str, detail: str = "") -> None:
        entry = {"action": action, "job_id": job_id, "at": repr(time.time()), "detail": detail,
                 **actor()}
        pipe.xadd(self.keys.audit_stream, entry, maxlen=AUDIT_MAXLEN, approximate=True)

    @staticmethod
    def _one_job(job_id: str, kind: Any, raw: Any, alive: Any) -> Job | None:
        """A job from TYPE, HGETALL and heartbeat EXISTS replies (None: no such key)."""
        kind = to_text(kind)
        if kind == "none":
            return None
        if kind != "hash":
            return Job(job_id=job_id, damage=(f"job key is a {kind}, not a hash",))
        return parse_job(job_id, raw, heartbeat_alive=bool(alive))

    @staticmethod
    def _parse_audit(entries: Any) -> list[dict[str, str]]:
        out = []
        for entry_id, fields in entries or []:
            row = {to_text(k) or "": to_text(v) or "" for k, v in (fields or {}).items()}
            row["id"] = to_text(entry_id) or ""
            out.append(row)
        return out

    @staticmethod
    def _parse_users(names: list[Any], counts: list[Any], keys: Keys) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, count in zip(names, counts, strict=False):
            user = keys.user_of(to_text(name) or "")
            if user is not None and isinstance(count, int) and count > 0:
                out[user] = count
        return dict(sorted(out.items()))


def connect(url: str, *, timeout: float = 5.0, name: str = "gn-jobs") -> redis.Redis:
    """A client named in CLIENT LIST, so an operator (or a benchmark) can tell who is who."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=30, client_name=name)


class Store(_Base):
    """Synchronous store for the CLI, the supervisor and job programs."""

    def __init__(self, client: redis.Redis, prefix: str, read_only: bool = False) -> None:
        super().__init__(prefix, read_only)
        self.r = client
        self._lost = client.register_script(scripts.MARK_LOST)
        self._kill = client.register_script(scripts.REQUEST_KILL)

    def _list(self, keys: list[str], args: list[Any]) -> Any:
        return scripts.LIST_PAGE_RO(self.r, keys, args)

    def _many(self, keys: list[str], args: list[Any]) -> Any:
        return scripts.GET_MANY_RO(self.r, keys, args)

    def _read(self, keys: list[str], args: list[Any]) -> Any:
        return scripts.READ_KEYS_RO(self.r, keys, args)

    @classmethod
    def from_url(cls, url: str, prefix: str, read_only: bool = False) -> Store:
        return cls(connect(url), prefix, read_only)

    # -- writes ---------------------------------------------------------
    def create_job(self, fields: dict[str, str], audit: str | None = "launch") -> str:
        """Create a job atomically: hash, both indexes, event (and audit)."""
        self.check_writable("creating a job")
        with self.r.pipeline(transaction=True) as pipe:
            self._queue_create(pipe, fields)
            if audit:
                self._queue_audit(pipe, audit, fields["job_id"], fields["job_type"])
            pipe.execute()
        return fields["job_id"]

    def update(self, job_id: str, what: str, **fields: Any) -> None:
        """Set fields of a job and publish one event naming what changed."""
        self.check_writable("updating a job")
        mapping = {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict))
                   else repr(v) if isinstance(v, float) else str(v) for k, v in fields.items()}
        status = mapping.get("status")
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.job(job_id), mapping=mapping)
            pipe.publish(self.keys.events_channel, events.encode(job_id, what, status=status))
            pipe.execute()

    def mark_lost(self, job_id: str) -> bool:
        """Write `lost` back for a running job whose heartbeat lapsed (atomic)."""
        if self.read_only:
            return False
        payload = events.encode(job_id, "status", status="lost")
        return bool(self._lost(keys=[self.keys.job(job_id), self.keys.heartbeat(job_id)],
                               args=[self.keys.events_channel, payload]))

    def request_kill(self, job_id: str, reason: str = "") -> int:
        """Durable kill request + notice. -1 no such job, 0 already finished, 1 recorded."""
        self.check_writable("kill")
        request = json.dumps({"at": time.time(), "reason": reason, **actor()})
        result = int(self._kill(
            keys=[self.keys.job(job_id), self.keys.kill_request(job_id)],
            args=[request, repr(time.time()), self.keys.control_channel,
                  json.dumps({"cmd": "kill", "job_id": job_id}), self.keys.events_channel,
                  events.encode(job_id, "kill")]))
        if result == 1:
            self.audit("kill", job_id, reason)
        return result

    def audit(self, action: str, job_id: str, detail: str = "") -> None:
        self.check_writable(action)
        with self.r.pipeline(transaction=False) as pipe:
            self._queue_audit(pipe, action, job_id, detail)
            pipe.execute()

    def cleanup(self, older_than: float, now: float | None = None) -> int:
        """Delete finished jobs created before `now - older_than`, with their keys."""
        self.check_writable("cleanup")
        cutoff = (now if now is not None else time.time()) - older_than
        removed = 0
        start = 0
        while True:
            ids = [to_text(i) or "" for i in self.r.zrangebyscore(
                self.keys.jobs_index, "-inf", cutoff, start=start, num=PAGE)]
            if not ids:
                break
            jobs = self.get_jobs(ids)
            full = {j.job_id: j for j in self._children_of(ids)}
            doomed = [j for j in jobs if j.effective_status in TERMINAL_STATUSES
                      or j.is_missing]
            with self.r.pipeline(transaction=False) as pipe:
                for job in doomed:
                    children = full[job.job_id].children if job.job_id in full else []
                    pipe.delete(self.keys.job(job.job_id), *self.keys.sub_keys(job.job_id, children))
                    pipe.zrem(self.keys.jobs_index, job.job_id)
                    pipe.zrem(self.keys.user_jobs(job.user_id), job.job_id)
                    pipe.publish(self.keys.events_channel, events.encode(job.job_id, "deleted"))
                pipe.execute()
            removed += len(doomed)
            start += len(ids) - len(doomed)
        if removed:
            self.audit("cleanup", "*", f"removed {removed} jobs older than {older_than:.0f}s")
        return removed

    def _children_of(self, ids: list[str]) -> list[Job]:
        with self.r.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self.keys.job(job_id), ["children", "user_id"])
            replies = pipe.execute(raise_on_error=False)
        out = []
        for job_id, reply in zip(ids, replies, strict=False):
            if isinstance(reply, list):
                out.append(parse_job(job_id, {"children": reply[0], "user_id": reply[1]},
                                     partial=True))
        return out

    # -- reads ----------------------------------------------------------
    def get_job(self, job_id: str) -> Job | None:
        """Every field of one job; None when no such key exists at all."""
        key = self.keys.job(job_id)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.type(key)
            pipe.hgetall(key)
            pipe.exists(self.keys.heartbeat(job_id))
            return self._one_job(job_id, *pipe.execute(raise_on_error=False))

    def get_jobs(self, ids: list[str]) -> list[Job]:
        """The table's fields of many jobs, one call per PAGE ids."""
        out: list[Job] = []
        for i in range(0, len(ids), PAGE):
            chunk = ids[i : i + PAGE]
            out.extend(self._parse_rows(self._many(keys=[self.keys.jobs_index],
                                                   args=self._many_args(chunk))))
        return out

    def list_jobs(self, user: str | None = None, start: int = 0, count: int = 100) -> list[Job]:
        """One page, newest first."""
        if count <= 0:
            return []
        return self._parse_rows(self._list(keys=[self._index(user)],
                                           args=self._list_args(start, start + count - 1)))

    def iter_jobs(self, user: str | None = None, page: int = PAGE) -> Iterator[list[Job]]:
        """Every job, newest first, a page at a time (ids seen twice are skipped)."""
        seen: set[str] = set()
        start = 0
        while True:
            jobs = self.list_jobs(user, start, page)
            if not jobs:
                return
            fresh = [j for j in jobs if j.job_id not in seen]
            seen.update(j.job_id for j in fresh)
            yield fresh
            if len(jobs) < page:
                return
            start += page

    def count(self, user: str | None = None) -> int:
        return int(self.r.zcard(self._index(user)))

    def users(self) -> dict[str, int]:
        """Users that have jobs, with their job counts."""
        names = list(self.r.scan_iter(match=self.keys.users_pattern, count=1000))
        with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(name)
            counts = pipe.execute(raise_on_error=False)
        return self._parse_users(names, counts, self.keys)

    def read_keys(self, states: list[KeyState]) -> None:
        """Read what is new in each key since its cursor (one call for all)."""
        if not states:
            return
        keys, args = read_args(states)
        for state, row in zip(states, self._read(keys=keys, args=args), strict=False):
            apply_chunk(state, row)

    def discover(self, cursor: int = 0, budget: int = 20, count: int = 1000) -> tuple[int, list[str]]:
        """Job hashes other producers wrote but did not index: a bounded SCAN.

        Returns the cursor to continue from (0 when a full pass ended) and the
        unindexed ids found in this slice.
        """
        found: list[str] = []
        for _ in range(budget):
            cursor, names = self.r.scan(cursor=cursor, match=self.keys.jobs_pattern, count=count)
            ids = [i for i in (self.keys.job_id_of(to_text(n) or "") for n in names) if i]
            if ids:
                scores = self.r.zmscore(self.keys.jobs_index, ids)  # one command per slice
                found.extend(i for i, s in zip(ids, scores, strict=False) if s is None)
            if cursor == 0:
                break
        return int(cursor), found

    def audit_log(self, count: int = 100) -> list[dict[str, str]]:
        return self._parse_audit(self.r.xrevrange(self.keys.audit_stream, count=count))



class AsyncStore(_Base):
    """asyncio store for the console: the reads it needs, same parsing."""

    def __init__(self, client: aioredis.Redis, prefix: str, read_only: bool = False) -> None:
        super().__init__(prefix, read_only)
        self.r = client
        self._lost = client.register_script(scripts.MARK_LOST)

    async def _list(self, keys: list[str], args: list[Any]) -> Any:
        return await scripts.LIST_PAGE_RO.acall(self.r, keys, args)

    async def _many(self, keys: list[str], args: list[Any]) -> Any:
        return await scripts.GET_MANY_RO.acall(self.r, keys, args)

    async def _read(self, keys: list[str], args: list[Any]) -> Any:
        return await scripts.READ_KEYS_RO.acall(self.r, keys, args)

    @classmethod
    def from_url(cls, url: str, prefix: str, read_only: bool = False) -> AsyncStore:
        client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                         health_check_interval=30, client_name="gn-jobs-console")
        return cls(client, prefix, read_only)

    async def list_jobs(self, user: str | None = None, start: int = 0,
                        count: int = 100) -> list[Job]:
        if count <= 0:
            return []
        return self._parse_rows(await self._list(keys=[self._index(user)],
                                                 args=self._list_args(start, start + count - 1)))

    async def get_jobs(self, ids: list[str]) -> list[Job]:
        out: list[Job] = []
        for i in range(0, len(ids), PAGE):
            chunk = ids[i : i + PAGE]
            out.extend(self._parse_rows(await self._many(keys=[self.keys.jobs_index],
                                                         args=self._many_args(chunk))))
        return out

    async def get_job(self, job_id: str) -> Job | None:
        key = self.keys.job(job_id)
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.type(key)
            pipe.hgetall(key)
            pipe.exists(self.keys.heartbeat(job_id))
            return self._one_job(job_id, *await pipe.execute(raise_on_error=False))

    async def count(self, user: str | None = None) -> int:
        return int(await self.r.zcard(self._index(user)))

    async def users(self) -> dict[str, int]:
        names = [n async for n in self.r.scan_iter(match=self.keys.users_pattern, count=1000)]
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(name)
            counts = await pipe.execute(raise_on_error=False)
        return self._parse_users(names, counts, self.keys)

    async def read_keys(self, states: list[KeyState]) -> None:
        if not states:
            return
        keys, args = read_args(states)
        for state, row in zip(states, await self._read(keys=keys, args=args), strict=False):
            apply_chunk(state, row)

    async def mark_lost(self, job_id: str) -> bool:
        if self.read_only:
            return False
        payload = events.encode(job_id, "status", status="lost")
        return bool(await self._lost(keys=[self.keys.job(job_id), self.keys.heartbeat(job_id)],
                                     args=[self.keys.events_channel, payload]))

    async def discover(self, cursor: int = 0, budget: int = 5,
                       count: int = 1000) -> tuple[int, list[str]]:
        found: list[str] = []
        for _ in range(budget):
            cursor, names = await self.r.scan(cursor=cursor, match=self.keys.jobs_pattern,
                                              count=count)
            ids = [i for i in (self.keys.job_id_of(to_text(n) or "") for n in names) if i]
            if ids:
                scores = await self.r.zmscore(self.keys.jobs_index, ids)
                found.extend(i for i, s in zip(ids, scores, strict=False) if s is None)
            if cursor == 0:
                break
        return int(cursor), found

    async def subscribe(self) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        """(job id, what changed) from our events; keyspace events say ("keyspace",)."""
        pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.events_channel)
        await pubsub.psubscribe(f"__keyspace@*__:{self.keys.jobs_pattern}")
        try:
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None:
                    continue
                if msg.get("type") == "message":
                    event = events.decode(msg.get("data", b""))
                    if event is not None:
                        yield event.job_id, event.what
                elif msg.get("type") == "pmessage":
                    channel = to_text(msg.get("channel")) or ""
                    key = channel.split(":", 1)[1] if ":" in channel else ""
                    rest = key[len(self.keys.job("")):]
                    job_id, _, sub = rest.partition(":")
                    if job_id:
                        yield job_id, ("output",) if sub else ("keyspace",)
        finally:
            await pubsub.aclose()

    async def audit_log(self, count: int = 200) -> list[dict[str, str]]:
        return self._parse_audit(await self.r.xrevrange(self.keys.audit_stream, count=count))

    async def aclose(self) -> None:
        await self.r.aclose()


__all__ = ["Store", "AsyncStore", "StoreError", "ReadOnlyError", "job_fields", "new_job_id",
           "normalise_status"]
