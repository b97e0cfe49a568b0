"""The job store: every read and write of the Redis contract.

`Store` (sync, for the CLI, launcher and job programs) and `AsyncStore`
(redis.asyncio, for the console) share the command building and reply
parsing in `_Base`, so both read a job the same way.

Reads take the fastest path the server allows: one read-only Lua call per
page (`EVALSHA_RO`, or `EVALSHA` before Redis 7) where scripts may run, and
the same rows built from pipelines where they may not (an ACL user without
`@scripting`, or a Cluster, where a script may only touch keys of one slot).
Writes are lists of single-key commands: one `MULTI` on a single server, a
pipeline routed by slot on a Cluster; whatever must be exactly-once under
concurrency is decided by a single-key script or a create-if-absent.
"""

from __future__ import annotations

import contextlib
import gc
import getpass
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gn_jobs_tui.core import connection, errors, events, scripts
from gn_jobs_tui.core.connection import Caps, Target
from gn_jobs_tui.core.keys import OUR_STATUSES, QUEUED, TERMINAL_STATUSES, Keys
from gn_jobs_tui.core.model import (
    LIST_FIELDS,
    MISSING,
    Job,
    normalise_status,
    parse_job,
    parse_table_row,
    to_text,
)
from gn_jobs_tui.core.outputs import KeyState, apply_chunk, more_to_read, read_args

if TYPE_CHECKING:
    import asyncio  # the CLI imports this module: asyncio only where the console needs it

PAGE = 5000
AUDIT_MAXLEN = 100_000
#: A Cluster SCAN cursor: which primary (times this) plus that primary's own cursor.
NODE_CURSOR = 1 << 64
#: Pages of more jobs than this are parsed off the console's event loop.
THREAD_PARSE_ROWS = 500
#: Replies that mean "scripts are not for us here" (ACL, or a server without the command).

Cmd = tuple[Any, ...]
T = TypeVar("T")


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


_RETRY_NS = uuid.UUID("6b1d3f0e-5a0c-4c36-9a57-0c2d4e3f9b11")


def retry_job_id(old_id: str) -> str:
    """The one id a retry of `old_id` gets: every admin retrying at once computes the
    same id, and only the first create-if-absent succeeds (no cross-key transaction)."""
    return uuid.uuid5(_RETRY_NS, f"{old_id}/retry").hex


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


def _flat(mapping: dict[str, str]) -> list[str]:
    out: list[str] = []
    for k, v in mapping.items():
        out.extend((k, v))
    return out


def _unknown(exc: BaseException) -> bool:
    """The server does not know this command (older than the one that added it)."""
    return "unknown command" in str(exc).lower()


def denied(exc: BaseException) -> bool:
    """The ACL user may not run this (redis-py maps NOPERM to NoPermissionError)."""
    text = str(exc)
    low = text.lower()
    return isinstance(exc, errors.no_permission()) or text.startswith("NOPERM") \
        or "no permissions" in low or "can't run this command" in low  # (the latter: a script)


def read_only_refusal(exc: BaseException) -> bool:
    """A write refused because the user may not write or the server is a replica."""
    return denied(exc) or isinstance(exc, errors.read_only()) or "READONLY" in str(exc)


def _refused(exc: BaseException) -> bool:
    """Scripts are not for us here: not allowed to this user, or not known to the server."""
    return denied(exc) or _unknown(exc)


class _Base:
    """What the sync and async stores share: names, commands, parsing."""

    def __init__(self, prefix: str, read_only: bool, target: Target | None = None) -> None:
        self.keys = Keys(prefix)
        self.prefix = prefix
        self.read_only = read_only
        self.target = target
        self.caps = Caps()
        self._detected = False
        self._status_pos = LIST_FIELDS.index("status") + 1
        self._hb_pos = LIST_FIELDS.index("heartbeat") + 1

    def check_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(what)

    @property
    def scripted_reads(self) -> bool:
        """Multi-key read scripts: a single server that lets us run scripts."""
        return self.caps.scripting and not self.caps.cluster

    @property
    def atomic(self) -> bool:
        """MULTI across keys: only on a single server (a Cluster refuses cross-slot)."""
        return not self.caps.cluster

    def _fold_caps(self, info: Any) -> None:
        if isinstance(info, dict):
            connection.caps_from_info(info, self.caps)
        elif isinstance(info, Exception):
            self.caps.info_allowed = False
        self._detected = True
        if self.target is not None:
            connection.check_version(self.caps, self.target)

    # -- script arguments ----------------------------------------------------
    def _list_args(self, start: int, stop: int) -> list[Any]:
        return [self.prefix, self._status_pos, self._hb_pos, start, stop, *LIST_FIELDS]

    def _many_args(self, ids: Sequence[str]) -> list[Any]:
        return [self.prefix, self._status_pos, self._hb_pos, len(LIST_FIELDS), *LIST_FIELDS, *ids]

    # -- pipelined reads (same flat rows as the scripts) -------------------------
    def _row_cmds(self, ids: Sequence[str]) -> list[Cmd]:
        return [("HMGET", self.keys.job(i), *LIST_FIELDS) for i in ids]

    def _rows_from(self, ids: Sequence[str], scores: Sequence[Any], replies: list[Any]
                   ) -> tuple[list[Any], list[tuple[int, str]]]:
        """Flat rows like the listing scripts', and which rows still need a heartbeat check."""
        nf = len(LIST_FIELDS)
        flat: list[Any] = []
        need_hb: list[tuple[int, str]] = []
        for i, job_id in enumerate(ids):
            reply = replies[i] if i < len(replies) else None
            score = scores[i] if i < len(scores) else None
            base = len(flat)
            if isinstance(reply, Exception) or not isinstance(reply, list):
                flat.extend((job_id, score, str(reply).encode()))
                flat.extend([None] * nf)
                continue
            flat.extend((job_id, score, -1))
            flat.extend(reply)
            if reply[self._status_pos - 1] == b"running" and reply[self._hb_pos - 1]:
                need_hb.append((base + 2, job_id))
        return flat, need_hb

    def _score_cmds_for_missing_created(self, flat: list[Any]) -> list[tuple[int, Cmd]]:
        stride = 3 + len(LIST_FIELDS)
        created = LIST_FIELDS.index("created")
        out = []
        for i in range(0, len(flat), stride):
            if isinstance(flat[i + 2], int) and flat[i + 1] is None and flat[i + 3 + created] is None:
                out.append((i + 1, ("ZSCORE", self.keys.jobs_index, to_text(flat[i]) or "")))
        return out

    # -- parsing ------------------------------------------------------------------
    @staticmethod
    def _parse_rows(flat: Any, hints: dict[str, str] | None = None) -> list[Job]:
        """Jobs from a listing's flat reply (see scripts._ROWS_FN)."""
        jobs: list[Job] = []
        if not isinstance(flat, list):
            return jobs
        with _no_gc():
            return _Base._rows_to_jobs(flat, jobs, hints or {})

    @staticmethod
    def _rows_to_jobs(flat: list[Any], jobs: list[Job], hints: dict[str, str]) -> list[Job]:
        nf = len(LIST_FIELDS)
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
                job = parse_table_row(job_id, values, None if flag == -1 else flag == 1,
                                      hints.get(job_id))
            if job.created is None and score is not None:
                try:
                    job.created = float(score)
                except (TypeError, ValueError):
                    job.damage = (*job.damage, "index score: not a number")
            jobs.append(job)
        return jobs

    def _index(self, user: str | None) -> str:
        return self.keys.user_jobs(user) if user else self.keys.jobs_index

    # -- writes as command lists -----------------------------------------------------
    def _create_cmds(self, fields: dict[str, str], why: str = "created") -> list[Cmd]:
        """Every command that creates one job: hash (whole, in one HSET), indexes, event."""
        job_id, created = fields["job_id"], float(fields["created"])
        return [
            ("HSET", self.keys.job(job_id), *_flat(fields)),
            *self._index_cmds(job_id, fields["user_id"], created, fields.get("status", QUEUED)),
            ("PUBLISH", self.keys.events_channel, events.encode(job_id, why, status=QUEUED)),
        ]

    def _index_cmds(self, job_id: str, user_id: str, created: float, status: str) -> list[Cmd]:
        status = normalise_status(status)
        cmds: list[Cmd] = [
            ("ZADD", self.keys.jobs_index, repr(created), job_id),
            ("ZADD", self.keys.user_jobs(user_id), repr(created), job_id),
            ("ZADD", self.keys.ids, "0", job_id),
        ]
        if status in OUR_STATUSES:
            cmds.append(("ZADD", self.keys.status_index(status), repr(created), job_id))
        return cmds

    def _audit_cmd(self, action: str, job_id: str, detail: str = "") -> Cmd:
        entry = {"action": action, "job_id": job_id, "at": repr(time.time()), "detail": detail,
                 **actor()}
        return ("XADD", self.keys.audit_stream, "MAXLEN", "~", str(AUDIT_MAXLEN), "*",
                *_flat(entry))

    def _delete_cmds(self, job: Job, children: Sequence[str]) -> list[Cmd]:
        job_id = job.job_id
        cmds: list[Cmd] = [("DEL", k) for k in (self.keys.job(job_id),
                                                *self.keys.sub_keys(job_id, list(children)))]
        cmds += [("ZREM", k, job_id) for k in (self.keys.jobs_index, self.keys.user_jobs(job.user_id),
                                               self.keys.ids, self.keys.heartbeats)]
        cmds += [("ZREM", self.keys.status_index(s), job_id) for s in OUR_STATUSES]
        cmds.append(("PUBLISH", self.keys.events_channel, events.encode(job_id, "deleted")))
        return cmds

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
    def _children_key(job: Job) -> str | None:
        """A `children` field that names one key (a set or list of child key names)."""
        if len(job.children) == 1 and ":" in job.children[0] and "children" not in \
                job.children[0].rsplit(":", 2)[-2:]:
            return job.children[0]
        return None

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

    def _job_ids(self, names: Sequence[Any]) -> list[str]:
        ids = [self.keys.job_id_of(to_text(n) or "") for n in names]
        return [i for i in ids if i]


def _without_gc(fn: Callable[..., list[T]], *args: Any) -> list[T]:
    with _no_gc():
        return fn(*args)


def jobs_from_listing(flat: Any, hints: dict[str, str] | None = None) -> list[Job]:
    """Jobs from a listing's flat reply (the parser of the console's own rows falls back
    on this one, so both read a row the same way)."""
    return _Base._parse_rows(flat, hints)


def connect(url: str, *, timeout: float = 5.0, name: str = "gn-jobs") -> Any:
    """A client named in CLIENT LIST, so an operator (or a benchmark) can tell who is who."""
    return connection.sync_client(connection.parse_url(url), timeout=timeout, name=name)


class Store(_Base):
    """Synchronous store for the CLI, the launcher and job programs.

    `client` is what the store talks through: `syncclient.WireRedis` from a
    URL (no redis-py imported), or any redis-py client given to it.
    """

    def __init__(self, client: Any, prefix: str, read_only: bool = False,
                 target: Target | None = None) -> None:
        super().__init__(prefix, read_only, target)
        self.client = client
        self._redis_py: Any = None

    @classmethod
    def from_url(cls, url: str, prefix: str, read_only: bool = False, *,
                 name: str = "gn-jobs") -> Store:
        from gn_jobs_tui.core.syncclient import client_for

        target = connection.parse_url(url)
        return cls(client_for(target, name=name), prefix, read_only, target)

    @property
    def r(self) -> Any:
        """A redis-py client on the same server, made on first use (for callers that
        want redis-py's whole API; the store's own calls go through `client`)."""
        from gn_jobs_tui.core.syncclient import WireRedis

        if not isinstance(self.client, WireRedis):
            return self.client
        if self._redis_py is None:
            assert self.target is not None
            self._redis_py = connection.sync_client(self.target)
        return self._redis_py

    # -- capabilities ------------------------------------------------------------
    def detect(self) -> Caps:
        """Find what the server (and our ACL user) allows, once per store."""
        if self._detected:
            return self.caps
        # INFO, not HELLO: HELLO through redis-py changes how it parses replies.
        try:
            info: Any = self.client.info()
        except errors.reply() as exc:
            if (old := connection.no_hello(exc, self.target)) is not None:
                raise old from None
            info = exc
        if isinstance(info, dict) and "redis_version" not in info and info:
            info = next(iter(info.values()), {})  # a Cluster answers per node
        self._fold_caps(info)
        self._switch_to_cluster()
        return self.caps

    def _switch_to_cluster(self) -> None:
        """A redis:// URL that names a Cluster node: talk to the whole Cluster."""
        if not self.caps.cluster or self.target is None or not self.target.hosts:
            return
        from redis.cluster import RedisCluster

        if not isinstance(self.client, RedisCluster):
            self.client.close()
            self.target = self.target._replace(kind="cluster")
            self.client = connection.sync_client(self.target)

    def _run(self, cmds: Sequence[Cmd], *, transaction: bool = True,
             raise_on_error: bool = True) -> list[Any]:
        """Run commands in one round trip: MULTI on a single server, routed on a Cluster."""
        self.detect()
        with self.client.pipeline(transaction=transaction and self.atomic) as pipe:
            for cmd in cmds:
                pipe.execute_command(*cmd)
            return pipe.execute(raise_on_error=raise_on_error)

    def _script(self, script: scripts.ReadScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(self.client, keys, args, ro=self.caps.eval_ro)
        except errors.reply() as exc:
            if not (self.caps.eval_ro and _unknown(exc)):
                raise
            self.caps.learnt["eval_ro"] = False  # before Redis 7: EVALSHA reads as well
            return script(self.client, keys, args, ro=False)

    # -- writes ---------------------------------------------------------------------
    def create_job(self, fields: dict[str, str], audit: str | None = "launch") -> str:
        """Create a job: its hash whole in one command, then its indexes, event (and audit)."""
        self.check_writable("creating a job")
        cmds = self._create_cmds(fields)
        if audit:
            cmds.append(self._audit_cmd(audit, fields["job_id"], fields["job_type"]))
        self._run(cmds)
        return fields["job_id"]

    def create_if_absent(self, fields: dict[str, str], why: str = "created") -> bool:
        """Create a job unless its hash exists (exactly once under any concurrency)."""
        self.check_writable("creating a job")
        self.detect()
        key = self.keys.job(fields["job_id"])
        created = int(self.client.eval(scripts.CREATE_IF_ABSENT, 1, key, *_flat(fields)))
        if created:
            self._run(self._create_cmds(fields, why)[1:])
        return bool(created)

    def update(self, job_id: str, what: str, **fields: Any) -> None:
        """Set fields of a job and publish one event naming what changed."""
        self.check_writable("updating a job")
        mapping = {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict))
                   else repr(v) if isinstance(v, float) else str(v) for k, v in fields.items()}
        status = mapping.get("status")
        self._run([("HSET", self.keys.job(job_id), *_flat(mapping)),
                   ("PUBLISH", self.keys.events_channel, events.encode(job_id, what, status=status))])

    def mark_lost(self, job: Job | str) -> bool:
        """Write `lost` back for a running job whose heartbeat lapsed.

        A single-key script on the job hash re-checks that it is still running;
        the heartbeat key was checked just before by the read. If the
        supervisor beats again in between, it sets itself back to `running`.
        """
        if self.read_only:
            return False
        job_id = job if isinstance(job, str) else job.job_id
        self.detect()
        if self.client.exists(self.keys.heartbeat(job_id)):
            return False
        payload = events.encode(job_id, "status", status="lost")
        try:
            if not int(self.client.eval(scripts.MARK_LOST, 1, self.keys.job(job_id),
                                   self.keys.events_channel, payload)):
                return False
        except errors.reply() as exc:
            if read_only_refusal(exc):
                return False  # a read-only user: the job is shown lost, not written lost
            raise
        created = job.created if isinstance(job, Job) and job.created else time.time()
        self._run([*self.keys.status_moves(job_id, "lost", created),
                   ("ZREM", self.keys.heartbeats, job_id)], transaction=False)
        return True

    def request_kill(self, job_id: str, reason: str = "") -> int:
        """Durable kill request + notice. -1 no such job, 0 already finished, 1 recorded."""
        self.check_writable("kill")
        self.detect()
        request = json.dumps({"at": time.time(), "reason": reason, **actor()})
        # The durable request first: a notice may be missed, the key is not.
        self.client.set(self.keys.kill_request(job_id), request)
        result = int(self.client.eval(scripts.REQUEST_KILL, 1, self.keys.job(job_id), repr(time.time()),
                                 self.keys.events_channel, events.encode(job_id, "kill")))
        if result != 1:
            self.client.delete(self.keys.kill_request(job_id))
            return result
        self.client.publish(self.keys.control_channel, json.dumps({"cmd": "kill", "job_id": job_id}))
        self.audit("kill", job_id, reason)
        return result

    def audit(self, action: str, job_id: str, detail: str = "") -> None:
        self.check_writable(action)
        self._run([self._audit_cmd(action, job_id, detail)], transaction=False)

    def cleanup(self, older_than: float, now: float | None = None) -> int:
        """Delete finished jobs created before `now - older_than`, with their keys."""
        self.check_writable("cleanup")
        cutoff = (now if now is not None else time.time()) - older_than
        removed = 0
        start = 0
        while True:
            ids = [to_text(i) or "" for i in self.client.zrangebyscore(
                self.keys.jobs_index, "-inf", cutoff, start=start, num=PAGE)]
            if not ids:
                break
            jobs = self.get_jobs(ids)
            children = self._children_of(ids)
            doomed = [j for j in jobs if j.effective_status in TERMINAL_STATUSES or j.is_missing]
            cmds: list[Cmd] = []
            for job in doomed:
                cmds += self._delete_cmds(job, children.get(job.job_id, ()))
            if cmds:
                self._run(cmds, transaction=False)
            removed += len(doomed)
            start += len(ids) - len(doomed)
        if removed:
            self.audit("cleanup", "*", f"removed {removed} jobs older than {older_than:.0f}s")
        return removed

    def _children_of(self, ids: list[str]) -> dict[str, Sequence[str]]:
        replies = self._run([("HGET", self.keys.job(i), "children") for i in ids],
                            transaction=False, raise_on_error=False)
        out = {}
        for job_id, reply in zip(ids, replies, strict=False):
            if isinstance(reply, bytes):
                out[job_id] = parse_job(job_id, {"children": reply}, partial=True).children
        return out

    # -- reads ----------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job | None:
        """Every field of one job; None when no such key exists at all."""
        key = self.keys.job(job_id)
        replies = self._run([("TYPE", key), ("HGETALL", key),
                             ("EXISTS", self.keys.heartbeat(job_id))],
                            transaction=False, raise_on_error=False)
        job = self._one_job(job_id, *replies)
        if job is not None and (ckey := self._children_key(job)):
            kind = to_text(self.client.type(ckey))
            if kind == "set":
                job.children = sorted(to_text(m) or "" for m in self.client.smembers(ckey))
            elif kind == "list":
                job.children = [to_text(m) or "" for m in self.client.lrange(ckey, 0, -1)]
        return job

    def get_jobs_full(self, listed: Sequence[Job]) -> list[Job]:
        """Every field of listed jobs (`list --json`), a page per round trip.

        What the listing learnt that the hash lacks (the user of the index it
        came from, the index score) is kept.
        """
        out: list[Job] = []
        for i in range(0, len(listed), PAGE):
            chunk = listed[i:i + PAGE]
            cmds: list[Cmd] = []
            for job in chunk:
                cmds += [("HGETALL", self.keys.job(job.job_id)),
                         ("EXISTS", self.keys.heartbeat(job.job_id))]
            replies = self._run(cmds, transaction=False, raise_on_error=False)
            for n, job in enumerate(chunk):
                raw, alive = replies[2 * n], replies[2 * n + 1]
                if not isinstance(raw, dict) or not raw:
                    out.append(job)  # gone since, or not a hash: what the listing saw
                    continue
                hint = job.user_id if job.user_id != "unknown" else None
                full = parse_job(job.job_id, raw, heartbeat_alive=bool(alive), user_hint=hint)
                if full.created is None:
                    full.created = job.created
                out.append(full)
        return out

    def _rows(self, ids: Sequence[str], scores: Sequence[Any]) -> list[Any]:
        """Flat listing rows for these ids, built from pipelines."""
        replies = self._run(self._row_cmds(ids), transaction=False, raise_on_error=False)
        flat, need_hb = self._rows_from(ids, scores, replies)
        if need_hb:
            alive = self._run([("EXISTS", self.keys.heartbeat(i)) for _, i in need_hb],
                              transaction=False)
            for (pos, _), a in zip(need_hb, alive, strict=False):
                flat[pos] = int(a)
        missing = self._score_cmds_for_missing_created(flat)
        if missing:
            for (pos, _), s in zip(missing, self._run([c for _, c in missing], transaction=False),
                                   strict=False):
                flat[pos] = s
        return flat

    def get_jobs(self, ids: Sequence[str], hints: dict[str, str] | None = None) -> list[Job]:
        """The table's fields of many jobs, one call per PAGE ids."""
        self.detect()
        out: list[Job] = []
        for i in range(0, len(ids), PAGE):
            chunk = list(ids[i : i + PAGE])
            flat = None
            if self.scripted_reads:
                try:
                    flat = self._script(scripts.GET_MANY_RO, [self.keys.jobs_index],
                                        self._many_args(chunk))
                except errors.reply() as exc:
                    if not _refused(exc):
                        raise
                    self.caps.scripting = False
            if flat is None:
                flat = self._rows(chunk, [])
            out.extend(self._parse_rows(flat, hints))
        return out

    def list_jobs(self, user: str | None = None, start: int = 0, count: int = 100) -> list[Job]:
        """One page of an index (all jobs, or one user's), newest first."""
        if count <= 0:
            return []
        self.detect()
        index = self._index(user)
        hints = None
        if self.scripted_reads:
            try:
                flat = self._script(scripts.LIST_PAGE_RO, [index],
                                    self._list_args(start, start + count - 1))
                if user:
                    hints = {to_text(flat[i]) or "": user for i in range(0, len(flat),
                                                                          3 + len(LIST_FIELDS))}
                return self._parse_rows(flat, hints)
            except errors.reply() as exc:
                if not _refused(exc):
                    raise
                self.caps.scripting = False
        pairs = self.client.zrevrange(index, start, start + count - 1, withscores=True)
        ids = [to_text(i) or "" for i, _ in pairs]
        if user:
            hints = dict.fromkeys(ids, user)
        return self._parse_rows(self._rows(ids, [s for _, s in pairs]), hints)

    def iter_jobs(self, user: str | None = None, page: int = PAGE) -> Iterator[list[Job]]:
        """Every job of one index, newest first, a page at a time (ids seen twice skipped)."""
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
        return int(self.client.zcard(self._index(user)))

    def user_indexes(self) -> list[str]:
        """Every per-user index key (a SCAN of the user-index pattern)."""
        self.detect()
        return sorted({to_text(n) or "" for n in
                       self.client.scan_iter(match=self.keys.users_pattern, count=10_000)})

    def users(self) -> dict[str, int]:
        """Users that have jobs, with their job counts."""
        names = self.user_indexes()
        counts = self._run([("ZCARD", n) for n in names], transaction=False, raise_on_error=False)
        return self._parse_users(names, counts, self.keys)

    def in_index(self, ids: Sequence[str]) -> list[bool]:
        """Which ids the all-jobs index holds (ZMSCORE, or ZSCOREs before Redis 6.2)."""
        if not ids:
            return []
        self.detect()
        scores = None
        if self.caps.zmscore and not self.caps.cluster:
            try:
                scores = self.client.zmscore(self.keys.jobs_index, list(ids))
            except errors.reply() as exc:
                if not _unknown(exc):
                    raise
                self.caps.learnt["zmscore"] = False
        if scores is None:
            scores = self._run([("ZSCORE", self.keys.jobs_index, i) for i in ids],
                               transaction=False)
        return [s is not None for s in scores]

    def read_keys(self, states: list[KeyState]) -> None:
        """Read what is new in each key since its cursor (one call for all)."""
        if not states:
            return
        self.detect()
        keys, args = read_args(states)
        if self.scripted_reads:
            try:
                rows = self._script(scripts.READ_KEYS_RO, keys, args)
            except errors.reply() as exc:
                if not _refused(exc):
                    raise
                self.caps.scripting = False
            else:
                for state, row in zip(states, rows, strict=False):
                    apply_chunk(state, row)
                return
        from gn_jobs_tui.core import keyreads

        kinds = self._run([("TYPE", s.key) for s in states], transaction=False,
                          raise_on_error=False)
        cmds, plan = keyreads.read_cmds(states, kinds)
        replies = self._run(cmds, transaction=False, raise_on_error=False)
        for state, row in zip(states, keyreads.rows(plan, replies), strict=False):
            apply_chunk(state, row)

    def read_all(self, states: list[KeyState], limit: int = 1_000_000) -> None:
        """Read each key to its end, a batch at a time (`show` and `logs` miss nothing)."""
        while True:
            before = [s.seen for s in states]
            self.read_keys(states)
            if not more_to_read(states, before) or sum(s.seen for s in states) >= limit:
                return

    def discover(self, cursor: int = 0, budget: int = 20, count: int = 1000) -> tuple[int, list[str]]:
        """Job hashes other producers wrote but did not index: a bounded SCAN.

        Returns the cursor to continue from (0 when a full pass ended) and the
        unindexed ids found in this slice.
        """
        self.detect()
        found: list[str] = []
        for _ in range(budget):
            cursor, names = self._scan_step(cursor, self.keys.jobs_pattern, count)
            ids = self._job_ids(names)
            found.extend(i for i, known in zip(ids, self.in_index(ids), strict=False) if not known)
            if cursor == 0:
                break
        return int(cursor), found

    def _scan_step(self, cursor: int, match: str, count: int) -> tuple[int, list[Any]]:
        """One SCAN step; on a Cluster the cursor also says which primary (every one, in turn)."""
        if not self.caps.cluster:
            nxt, names = self.client.scan(cursor=cursor, match=match, count=count)
            return int(nxt), names
        nodes = self.client.get_primaries()
        idx, cur = divmod(cursor, NODE_CURSOR)
        if idx >= len(nodes):
            return 0, []
        cursors, names = self.client.scan(cursor=cur, match=match, count=count, target_nodes=nodes[idx])
        cur = int(next(iter(cursors.values()))) if isinstance(cursors, dict) else int(cursors)
        if cur == 0:
            idx += 1
        return (0 if idx >= len(nodes) else idx * NODE_CURSOR + cur), names

    def dbsize(self) -> int:
        """Keys on the server (every primary's, on a Cluster)."""
        if self.caps.cluster:
            sizes = self.client.dbsize(target_nodes=self.client.PRIMARIES)
            return sum(sizes.values()) if isinstance(sizes, dict) else int(sizes)
        return int(self.client.dbsize())

    def ids_by_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Job ids starting with `prefix` from the lexical id index (bounded)."""
        self.detect()
        return [to_text(i) or "" for i in self.client.zrangebylex(
            self.keys.ids, f"[{prefix}", f"[{prefix}\xff", start=0, num=limit)]

    def scan_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Job hashes whose id starts with `prefix`, by SCAN (jobs the id index lacks)."""
        pattern = self.keys.job(_glob_escape(prefix)) + "*"
        found: list[str] = []
        for name in self.client.scan_iter(match=pattern, count=5000):
            job_id = self.keys.job_id_of(to_text(name) or "")
            if job_id and job_id not in found:
                found.append(job_id)
                if len(found) >= limit:
                    break
        return found

    def status_ids(self, status: str, start: int, count: int) -> list[str]:
        return [to_text(i) or "" for i in self.client.zrevrange(self.keys.status_index(status), start,
                                                            start + count - 1)]

    def lapsed(self, since: float = 0.0) -> tuple[float, list[str]]:
        """Running jobs whose heartbeat lapsed after `since` (server clock), and the server's now."""
        now = time.time()
        if self.caps.learnt.get("time", True):
            try:
                secs, micros = self.client.time()
                now = secs + micros / 1e6
            except errors.reply() as exc:
                if not denied(exc):
                    raise
                self.caps.learnt["time"] = False  # TIME not granted: our clock will do
        ids = self.client.zrangebyscore(self.keys.heartbeats, f"({since}", now)
        return now, [to_text(i) or "" for i in ids]

    def status_probe(self, status: str, count: int) -> tuple[bool, list[str], list[str]]:
        """In one round trip: do our status indexes cover the all-jobs index, the newest
        `count` ids filed under `status`, and (for lost/running) lapsed heartbeats."""
        cmds: list[Cmd] = [("ZCARD", self.keys.jobs_index)]
        cmds += [("ZCARD", self.keys.status_index(s)) for s in OUR_STATUSES]
        cmds.append(("ZREVRANGE", self.keys.status_index(status), 0, count - 1))
        if status in ("lost", "running"):
            # Our clock, not TIME: a heartbeat lives seconds, skew is milliseconds.
            cmds.append(("ZRANGEBYSCORE", self.keys.heartbeats, "-inf", repr(time.time())))
        replies = self._run(cmds, transaction=False)
        jobs, filed = int(replies[0]), sum(int(r) for r in replies[1:7])
        ids = [to_text(i) or "" for i in replies[7]]
        lapsed = [to_text(i) or "" for i in replies[8]] if len(replies) > 8 else []
        return jobs > 0 and filed >= jobs, ids, lapsed

    def index_counts(self) -> dict[str, int]:
        """Sizes of our indexes, to know whether they cover every job (see lookup.py)."""
        self.detect()
        cmds: list[Cmd] = [("ZCARD", self.keys.jobs_index), ("ZCARD", self.keys.ids)]
        cmds += [("ZCARD", self.keys.status_index(s)) for s in OUR_STATUSES]
        replies = self._run(cmds, transaction=False)
        out = {"jobs": int(replies[0]), "ids": int(replies[1]),
               "statuses": sum(int(r) for r in replies[2:])}
        try:
            out["keys"] = self.dbsize()
        except errors.reply():
            out["keys"] = -1  # DBSIZE not granted: assume large
        return out

    def audit_log(self, count: int = 100) -> list[dict[str, str]]:
        return self._parse_audit(self.client.xrevrange(self.keys.audit_stream, count=count))

    def close(self) -> None:
        self.client.close()
        if self._redis_py is not None:
            self._redis_py.close()


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an unwanted future's outcome (its error, if any, is moot: nobody waits)."""
    if not future.cancelled():
        future.exception()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class AsyncStore(_Base):
    """asyncio store for the console: the reads it needs, same parsing."""

    def __init__(self, client: Any, prefix: str, read_only: bool = False,
                 target: Target | None = None) -> None:
        super().__init__(prefix, read_only, target)
        self.r = client

    @classmethod
    def from_url(cls, url: str, prefix: str, read_only: bool = False) -> AsyncStore:
        target = connection.parse_url(url)
        return cls(connection.async_client(target), prefix, read_only, target)

    async def detect(self) -> Caps:
        if self._detected:
            return self.caps
        # INFO, not HELLO: HELLO through redis-py changes how it parses replies.
        try:
            info: Any = await self.r.info()
        except errors.reply() as exc:
            if (old := connection.no_hello(exc, self.target)) is not None:
                raise old from None
            info = exc
        if isinstance(info, dict) and "redis_version" not in info and info:
            info = next(iter(info.values()), {})
        self._fold_caps(info)
        await self._switch_to_cluster()
        return self.caps

    async def primary(self) -> str | None:
        """Behind Sentinel: the primary's address right now (None on other topologies)."""
        pool = getattr(self.r, "connection_pool", None)
        if self.target is None or self.target.kind != "sentinel" or pool is None:
            return None
        host, port = await pool.get_master_address()
        return f"{host}:{port}"

    async def refresh_caps(self) -> Caps:
        """Re-read memory figures (for the top bar's warnings); keeps what was learnt."""
        try:
            info = await self.r.info("memory")
        except errors.reply():
            self.caps.info_allowed = False
            return self.caps
        if isinstance(info, dict) and "used_memory" not in info and info:
            info = next(iter(info.values()), {})
        connection.caps_from_info({**info, "cluster_enabled": int(self.caps.cluster)}, self.caps)
        return self.caps

    async def _switch_to_cluster(self) -> None:
        from redis.asyncio.cluster import RedisCluster

        if self.caps.cluster and not isinstance(self.r, RedisCluster) and self.target is not None \
                and self.target.hosts:
            await self.r.aclose()
            self.target = self.target._replace(kind="cluster")
            self.r = connection.async_client(self.target)

    async def _run(self, cmds: Sequence[Cmd], *, transaction: bool = False,
                   raise_on_error: bool = True) -> list[Any]:
        await self.detect()
        async with self.r.pipeline(transaction=transaction and self.atomic) as pipe:
            for cmd in cmds:
                pipe.execute_command(*cmd)
            return await pipe.execute(raise_on_error=raise_on_error)

    async def _parse(self, flat: Any, hints: dict[str, str] | None = None,
                     parse: Callable[[Any, dict[str, str] | None], list[T]] | None = None
                     ) -> list[T]:
        """Rows to Jobs (or what `parse` makes of them); a big page in a thread, so the
        console's event loop never waits on it for long (parsing 5,000 jobs takes about
        100 ms)."""
        fn = parse or self._parse_rows
        if isinstance(flat, list) and len(flat) > THREAD_PARSE_ROWS * (3 + len(LIST_FIELDS)):
            import asyncio  # here: the CLI imports this module and never needs asyncio

            return await asyncio.to_thread(_without_gc, fn, flat, hints)  # type: ignore[arg-type]
        return fn(flat, hints)  # type: ignore[return-value]

    async def _script(self, script: scripts.ReadScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script.acall(self.r, keys, args, ro=self.caps.eval_ro)
        except errors.reply() as exc:
            if not (self.caps.eval_ro and _unknown(exc)):
                raise
            self.caps.learnt["eval_ro"] = False
            return await script.acall(self.r, keys, args, ro=False)

    async def _rows(self, ids: Sequence[str], scores: Sequence[Any]) -> list[Any]:
        replies = await self._run(self._row_cmds(ids), raise_on_error=False)
        flat, need_hb = self._rows_from(ids, scores, replies)
        if need_hb:
            alive = await self._run([("EXISTS", self.keys.heartbeat(i)) for _, i in need_hb])
            for (pos, _), a in zip(need_hb, alive, strict=False):
                flat[pos] = int(a)
        missing = self._score_cmds_for_missing_created(flat)
        if missing:
            for (pos, _), s in zip(missing, await self._run([c for _, c in missing]), strict=False):
                flat[pos] = s
        return flat

    async def list_jobs(self, user: str | None = None, start: int = 0,
                        count: int = 100) -> list[Job]:
        if count <= 0:
            return []
        return await self._parse(await self._page(user, start, count))

    async def _page(self, user: str | None, start: int, count: int) -> list[Any]:
        """One page of an index as flat listing rows (not parsed yet)."""
        await self.detect()
        index = self._index(user)
        if self.scripted_reads:
            try:
                return await self._script(scripts.LIST_PAGE_RO, [index],
                                          self._list_args(start, start + count - 1))
            except errors.reply() as exc:
                if not _refused(exc):
                    raise
                self.caps.scripting = False
        pairs = await self.r.zrevrange(index, start, start + count - 1, withscores=True)
        ids = [to_text(i) or "" for i, _ in pairs]
        return await self._rows(ids, [s for _, s in pairs])

    async def iter_pages(self, user: str | None, start: int, count: int,
                         parse: Callable[[Any, dict[str, str] | None], list[T]] | None = None
                         ) -> AsyncIterator[list[T]]:
        """Pages of an index from `start`, newest first, until a short or empty one
        (an empty one is not handed on).

        The next page is asked for before this one is parsed and handed on, so
        the server's work on it overlaps ours (the console's load: parsing and
        indexing a page take about as long as the server's reading it).
        `parse`: what to make of a page's flat rows (default: Jobs); the console
        makes its table rows straight from them.
        """
        import asyncio

        ahead: asyncio.Future[list[Any]] | None = asyncio.ensure_future(
            self._page(user, start, count))
        try:
            while ahead is not None:
                flat = await ahead
                ahead = None
                if isinstance(flat, list) and len(flat) >= count * (3 + len(LIST_FIELDS)):
                    start += count
                    ahead = asyncio.ensure_future(self._page(user, start, count))
                page = await self._parse(flat, None, parse)
                if not page:
                    return
                yield page
        finally:
            if ahead is not None:  # stopped early: the page asked for is not wanted
                ahead.cancel()
                ahead.add_done_callback(_consume)

    async def index_page(self, index: str, start: int, count: int) -> list[tuple[str, float]]:
        """(id, score) of one page of an index, newest first."""
        pairs = await self.r.zrevrange(index, start, start + count - 1, withscores=True)
        return [(to_text(i) or "", float(s)) for i, s in pairs]

    async def get_jobs(self, ids: Sequence[str], hints: dict[str, str] | None = None) -> list[Job]:
        await self.detect()
        out: list[Job] = []
        for i in range(0, len(ids), PAGE):
            chunk = list(ids[i : i + PAGE])
            flat = None
            if self.scripted_reads:
                try:
                    flat = await self._script(scripts.GET_MANY_RO, [self.keys.jobs_index],
                                              self._many_args(chunk))
                except errors.reply() as exc:
                    if not _refused(exc):
                        raise
                    self.caps.scripting = False
            if flat is None:
                flat = await self._rows(chunk, [])
            out.extend(await self._parse(flat, hints))
        return out

    async def get_job(self, job_id: str) -> Job | None:
        key = self.keys.job(job_id)
        replies = await self._run([("TYPE", key), ("HGETALL", key),
                                   ("EXISTS", self.keys.heartbeat(job_id))], raise_on_error=False)
        job = self._one_job(job_id, *replies)
        if job is not None and (ckey := self._children_key(job)):
            kind = to_text(await self.r.type(ckey))
            if kind == "set":
                job.children = sorted(to_text(m) or "" for m in await self.r.smembers(ckey))
            elif kind == "list":
                job.children = [to_text(m) or "" for m in await self.r.lrange(ckey, 0, -1)]
        return job

    async def count(self, user: str | None = None) -> int:
        return int(await self.r.zcard(self._index(user)))

    async def user_indexes(self) -> list[str]:
        await self.detect()
        return sorted({to_text(n) or "" async for n in
                       self.r.scan_iter(match=self.keys.users_pattern, count=10_000)})

    async def users(self) -> dict[str, int]:
        names = await self.user_indexes()
        counts = await self._run([("ZCARD", n) for n in names], raise_on_error=False)
        return self._parse_users(names, counts, self.keys)

    async def in_index(self, ids: Sequence[str]) -> list[bool]:
        if not ids:
            return []
        await self.detect()
        scores = None
        if self.caps.zmscore and not self.caps.cluster:
            try:
                scores = await self.r.zmscore(self.keys.jobs_index, list(ids))
            except errors.reply() as exc:
                if not _unknown(exc):
                    raise
                self.caps.learnt["zmscore"] = False
        if scores is None:
            scores = await self._run([("ZSCORE", self.keys.jobs_index, i) for i in ids])
        return [s is not None for s in scores]

    async def read_keys(self, states: list[KeyState]) -> None:
        if not states:
            return
        await self.detect()
        keys, args = read_args(states)
        if self.scripted_reads:
            try:
                rows = await self._script(scripts.READ_KEYS_RO, keys, args)
            except errors.reply() as exc:
                if not _refused(exc):
                    raise
                self.caps.scripting = False
            else:
                for state, row in zip(states, rows, strict=False):
                    apply_chunk(state, row)
                return
        from gn_jobs_tui.core import keyreads

        kinds = await self._run([("TYPE", s.key) for s in states], raise_on_error=False)
        cmds, plan = keyreads.read_cmds(states, kinds)
        replies = await self._run(cmds, raise_on_error=False)
        for state, row in zip(states, keyreads.rows(plan, replies), strict=False):
            apply_chunk(state, row)

    async def mark_lost(self, job: Job) -> bool:
        if self.read_only:
            return False
        await self.detect()
        if await self.r.exists(self.keys.heartbeat(job.job_id)):
            return False
        payload = events.encode(job.job_id, "status", status="lost")
        try:
            done = int(await self.r.eval(scripts.MARK_LOST, 1, self.keys.job(job.job_id),
                                         self.keys.events_channel, payload))
        except errors.reply() as exc:
            if read_only_refusal(exc):
                return False  # a read-only user: show the job lost, don't write it
            raise
        if done:
            await self._run([*self.keys.status_moves(job.job_id, "lost", job.created or time.time()),
                             ("ZREM", self.keys.heartbeats, job.job_id)])
        return bool(done)

    async def discover(self, cursor: int = 0, budget: int = 5, count: int = 1000,
                       skip: Callable[[str], bool] | None = None) -> tuple[int, list[str]]:
        """Ids of job hashes that no all-jobs index lists, from `budget` SCAN steps.

        `skip`: ids the caller holds already (it read them from the index), left
        out before the index is asked about the rest: a load's full pass over a
        million keys then sends the server no million ids to look up.
        """
        await self.detect()
        found: list[str] = []
        for _ in range(budget):
            cursor, names = await self._scan_step(cursor, self.keys.jobs_pattern, count)
            ids = self._job_ids(names)
            if skip is not None:
                ids = [i for i in ids if not skip(i)]
            found.extend(i for i, known in zip(ids, await self.in_index(ids), strict=False)
                         if not known)
            if cursor == 0:
                break
        return int(cursor), found

    async def _scan_step(self, cursor: int, match: str, count: int) -> tuple[int, list[Any]]:
        if not self.caps.cluster:
            nxt, names = await self.r.scan(cursor=cursor, match=match, count=count)
            return int(nxt), names
        nodes = self.r.get_primaries()
        idx, cur = divmod(cursor, NODE_CURSOR)
        if idx >= len(nodes):
            return 0, []
        cursors, names = await self.r.scan(cursor=cur, match=match, count=count,
                                           target_nodes=nodes[idx])
        cur = int(next(iter(cursors.values()))) if isinstance(cursors, dict) else int(cursors)
        if cur == 0:
            idx += 1
        return (0 if idx >= len(nodes) else idx * NODE_CURSOR + cur), names

    async def dbsize(self) -> int:
        if self.caps.cluster:
            sizes = await self.r.dbsize(target_nodes=self.r.PRIMARIES)
            return sum(sizes.values()) if isinstance(sizes, dict) else int(sizes)
        return int(await self.r.dbsize())

    async def lapsed(self, since: float = 0.0) -> tuple[float, list[str]]:
        now = time.time()
        if self.caps.learnt.get("time", True):
            try:
                secs, micros = await self.r.time()
                now = secs + micros / 1e6
            except errors.reply() as exc:
                if not denied(exc):
                    raise
                self.caps.learnt["time"] = False
        ids = await self.r.zrangebyscore(self.keys.heartbeats, f"({since}", now)
        return now, [to_text(i) or "" for i in ids]

    async def subscribe(self, keyspace: bool = True, ready: Callable[[], object] | None = None
                        ) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        """(job id, what changed) from our events; keyspace events say ("keyspace",).

        `ready` is called once the subscription stands (load after it, and no
        change falls between the two). A user whose ACL refuses the keyspace
        channels still gets our own events: the refusal is noted
        (`caps.keyspace = False`) and not tried again.
        """
        pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.events_channel)
        pattern = f"__keyspace@*__:{self.keys.jobs_pattern}"
        if keyspace and self.caps.keyspace is not False:
            await pubsub.psubscribe(pattern)
        try:
            # The replies to (p)subscribe come first: a refusal arrives as an error here.
            for _ in range(2):
                try:
                    await pubsub.get_message(timeout=1.0)
                except errors.reply() as exc:
                    if not denied(exc):
                        raise
                    self.caps.keyspace = False
            if self.caps.keyspace is None and keyspace:
                self.caps.keyspace = True
            if ready is not None:
                ready()
            while True:
                try:
                    msg = await pubsub.get_message(timeout=1.0)
                except errors.reply() as exc:
                    if not denied(exc):
                        raise
                    self.caps.keyspace = False
                    continue
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
           "retry_job_id", "normalise_status"]
