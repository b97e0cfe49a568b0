"""A job program's writes to Redis, sent by one background thread per process.

A job's own progress report must never kill it or hold it up: a paused,
restarting, loading, full or read-only server is this thread's problem, not
the job's. The job's calls only take a lock and queue; the thread sends with
backoff and retries until the server takes the writes.

- Hash fields coalesce: the latest value of each field wins, so a job that
  reports progress a thousand times during an outage costs one write after it.
- Stream entries keep their order and are numbered per key (`n` = 1, 2, ...);
  `scripts.APPEND_ONCE` skips numbers already in the stream, so a batch sent
  again after a lost reply is never appended twice. A key has one writer.
- Hash writes are fenced (`FENCED_HSET` with the claim identity, else
  `HSET_IF_LIVE`): a job hash that is gone is never re-created, and a job
  superseded by a retry writes nothing more. Refused writes are counted and
  dropped, never retried.
- Bounded (`GN_JOBS_OUTBOX_MAX_ENTRIES`, `GN_JOBS_OUTBOX_MAX_BYTES`): beyond
  the bound new entries are dropped and counted; `start`/`finish` entries
  and the count itself always get in. The count goes to the job hash as
  `updates_dropped` and, at exit, to stderr.
- At exit the outbox flushes for at most `GN_JOBS_EXIT_FLUSH` seconds.

The same thread reads the latest entry of the keys a parent follows (its
children) at most twice a second, so the parent reads them from memory.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gn_jobs_tui.core import events, scripts

ENV_MAX_ENTRIES = "GN_JOBS_OUTBOX_MAX_ENTRIES"
ENV_MAX_BYTES = "GN_JOBS_OUTBOX_MAX_BYTES"
ENV_EXIT_FLUSH = "GN_JOBS_EXIT_FLUSH"
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_EXIT_FLUSH = 60.0
#: Child streams are capped (`MAXLEN ~`) at this many entries.
STREAM_MAXLEN = 100_000
BATCH_ENTRIES = 1000
BATCH_BYTES = 1 << 20
#: After a send, gather for this long: at most ~10 round trips a second.
LINGER = 0.1
FOLLOW_EVERY = 0.5
MIN_DELAY, MAX_DELAY = 0.05, 2.0
#: Socket timeout of the outbox's client: a pause shorter than this is waited
#: out on the same connection, not retried on a new one.
CALL_TIMEOUT = 10.0
DROPPED_FIELD = "updates_dropped"
_TRANSIENT = re.compile(r"\b(LOADING|BUSY|OOM|READONLY|MISCONF|NOSCRIPT|TRYAGAIN|CLUSTERDOWN|"
                        r"MASTERDOWN|NOREPLICAS)\b")


def transient(exc: BaseException) -> bool:
    """True for what passes with time: server away, slow, loading, full, read-only, failing over."""
    import redis
    from redis import exceptions as rex

    if isinstance(exc, rex.AuthenticationError):
        return False  # a wrong user or password does not pass with time
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError,
                        rex.RedisClusterException)):
        return True  # BusyLoadingError (LOADING) is a ConnectionError
    if isinstance(exc, redis.ResponseError):
        if isinstance(exc, rex.NoPermissionError):
            return False
        if isinstance(exc, (rex.OutOfMemoryError, rex.ReadOnlyError, rex.NoScriptError,
                            rex.TryAgainError, rex.ClusterDownError)):
            return True
        # Errors raised inside a script arrive as ERR text that names the cause.
        return bool(_TRANSIENT.search(f"{getattr(exc, 'status_code', '') or ''} {exc}"))
    return False


def env_number(name: str, default: float, kind: type = int) -> Any:
    """A non-negative number from the environment; a bad value is one line on stderr."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
        if value < 0 or value != value:
            raise ValueError
    except ValueError:
        print(f"gn-jobs: {name}={raw[:40]!r} is not a non-negative number; using {default}",
              file=sys.stderr, flush=True)
        return default
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class _HashWrite:
    job_id: str
    fields: dict[str, str] = field(default_factory=dict)
    what: set[str] = field(default_factory=set)


@dataclass
class _Stream:
    job_id: str
    job_key: str
    entries: deque[tuple[int, list[str], int]] = field(default_factory=deque)
    next_n: int = 1
    dropped: int = 0


@dataclass
class _Work:
    hashes: list[tuple[str, _HashWrite]]
    streams: list[tuple[str, _Stream, list[tuple[int, list[str], int]]]]
    follow: list[str]
    done: set[str] = field(default_factory=set)  # stream keys whose batch is settled


class Outbox:
    """Queued writes of one process, sent in order by its own thread (see module doc)."""

    def __init__(self, connect: Callable[[], Any], events_channel: str, claim: str | None = None,
                 *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES,
                 maxlen: int = STREAM_MAXLEN, linger: float = LINGER) -> None:
        self._connect = connect
        self.channel = events_channel
        self.claim = claim or None
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.maxlen, self.linger = maxlen, linger
        self._cond = threading.Condition()
        self._hashes: dict[str, _HashWrite] = {}
        self._streams: dict[str, _Stream] = {}
        self._entries = 0  # waiting: stream entries + hash fields
        self._bytes = 0
        self._inflight: list[tuple[str, _HashWrite]] = []  # hash writes sent, not yet settled
        self._halt = self._closed = False
        self._stop = threading.Event()  # set when closing: cuts a linger or backoff short
        self._used: set[str] = set()  # job hashes this process writes
        self._refused_jobs: dict[str, str] = {}  # job hash -> why its writes are refused
        self._reported: dict[str, int] = {}  # job hash -> `updates_dropped` last stored
        self._follow: list[str] = []
        self._latest: dict[str, dict[str, str]] = {}
        self._next_follow = 0.0
        self.dropped = 0  # over the bound
        self.refused = 0  # refused by the fence or the server
        self.unsent = 0  # still waiting when the exit flush ran out
        self.elsewhere = 0  # reported by other processes of the job (its workers)
        self._reasons: list[str] = []
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self.pid = os.getpid()
        # multiprocessing children end with os._exit, so atexit never runs there.
        from multiprocessing import util as mp_util

        mp_util.register_after_fork(self, Outbox._flush_at_multiprocessing_exit)

    # -- what the job calls (never blocks on Redis, never raises from it) --------------
    def set_fields(self, job_key: str, job_id: str, what: str, fields: dict[str, str]) -> None:
        """Queue hash fields of a job; the latest value of each field wins."""
        with self._cond:
            if self._closed or job_key in self._refused_jobs:
                self._count_lost(len(fields), closed=self._closed)
                return
            hw = self._hashes.get(job_key)
            if hw is None:
                hw = self._hashes[job_key] = _HashWrite(job_id)
            for name, value in fields.items():
                size = len(name) + len(value)
                old = hw.fields.get(name)
                if old is not None:
                    self._bytes += len(value) - len(old)
                elif self._full(size):
                    self.dropped += 1
                    continue
                else:
                    self._entries += 1
                    self._bytes += size
                hw.fields[name] = value
            hw.what.add(what)
            self._used.add(job_key)
            self._kick()

    def append(self, job_key: str, job_id: str, key: str, flat: list[str],
               essential: bool = False) -> bool:
        """Queue one stream entry, `flat` = [name, value, ...] (numbered in order); False if dropped."""
        with self._cond:
            if self._closed or job_key in self._refused_jobs:
                self._count_lost(1, closed=self._closed)
                return False
            st = self._streams.get(key)
            if st is None:
                st = self._streams[key] = _Stream(job_id, job_key)
            size = sum(map(len, flat))
            if not essential and self._full(size):
                self.dropped += 1
                st.dropped += 1
                self._kick()  # the count itself is news
                return False
            st.entries.append((st.next_n, flat, size))
            st.next_n += 1
            self._entries += 1
            self._bytes += size
            self._kick()
            return True

    def add_elsewhere(self, n: int) -> None:
        """Drops another process of this job reported (e.g. in a worker's finish entry)."""
        if n > 0:
            with self._cond:
                self.elsewhere += n
                self._kick()

    def follow(self, keys: list[str]) -> None:
        """Read the latest entry of these keys now and then (see `latest`)."""
        with self._cond:
            self._follow = list(keys)
            self._next_follow = 0.0
            self._kick()

    def latest(self, keys: list[str]) -> list[dict[str, str] | None]:
        """The latest entry read of each followed key (None: nothing read yet)."""
        with self._cond:
            return [dict(e) if (e := self._latest.get(k)) is not None else None for k in keys]

    def dropped_for(self, key: str) -> int:
        with self._cond:
            st = self._streams.get(key)
            return st.dropped if st else 0

    def kick(self) -> None:
        """Send what is queued soon (never waits)."""
        with self._cond:
            self._kick()

    @property
    def not_stored(self) -> int:
        """Updates of this process that never reached Redis (dropped, refused, unsent)."""
        return self.dropped + self.refused + self.unsent

    def flush(self, timeout: float) -> bool:
        """Wait at most `timeout` s until everything queued is stored; True if it was."""
        with self._cond:
            if self._pending():
                self._kick()
            return self._cond.wait_for(lambda: self._halt or not self._pending(), timeout)

    def close(self, timeout: float) -> int:
        """Flush for at most `timeout` s, then stop; returns the count never stored."""
        self.flush(timeout)
        with self._cond:
            if not self._closed:
                left = self._left()
                if left:
                    self.unsent += left
                    self._reasons.append(f"{left} still waiting for the server at exit")
                for st in self._streams.values():
                    st.entries.clear()
                self._hashes.clear()
                self._entries = self._bytes = 0
                self._inflight = []
            self._closed = self._halt = True
            self._stop.set()
            self._cond.notify_all()
            return self.not_stored

    def summary(self) -> str | None:
        """The one line for stderr at exit, or None when everything was stored."""
        n = self.not_stored
        if not n:
            return None
        why = list(self._reasons)
        if self.dropped:
            why.insert(0, f"{self.dropped} over the outbox limit ({ENV_MAX_ENTRIES}/{ENV_MAX_BYTES})")
        return f"gn-jobs: {_plural(n, 'progress update')} not stored ({'; '.join(why)})"

    # -- bookkeeping (lock held) --------------------------------------------------------
    def _left(self) -> int:
        """Entries and hash fields not stored yet (a field both in flight and queued: once)."""
        names: dict[str, set[str]] = {}
        for job_key, hw in [*self._inflight, *self._hashes.items()]:
            names.setdefault(job_key, set()).update(hw.fields)
        return sum(len(st.entries) for st in self._streams.values()) + \
            sum(len(v) for v in names.values())

    def _full(self, size: int) -> bool:
        return self._entries + 1 > self.max_entries or self._bytes + size > self.max_bytes

    def _count_lost(self, n: int, closed: bool) -> None:
        if closed:
            self.unsent += n
        else:
            self.refused += n

    def _kick(self) -> None:
        if self._thread is None and not self._halt:
            self._thread = threading.Thread(target=self._run, name="gn-jobs-outbox", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _total_dropped(self) -> int:
        return self.dropped + self.refused + self.elsewhere

    def _report_due(self) -> bool:
        total = self._total_dropped()
        return bool(total) and any(self._reported.get(k, 0) != total for k in self._used
                                   if k not in self._refused_jobs)

    def _pending(self) -> bool:
        return bool(self._entries or self._inflight or self._hashes or self._report_due())

    def _ready(self) -> bool:
        return self._halt or self._pending() or (
            bool(self._follow) and time.monotonic() >= self._next_follow)

    def _wait_time(self) -> float | None:
        if not self._follow:
            return None
        return max(0.0, self._next_follow - time.monotonic())

    def _take(self) -> _Work:
        total = self._total_dropped()
        if total:
            for job_key in self._used:
                if job_key not in self._refused_jobs and self._reported.get(job_key, 0) != total:
                    hw = self._hashes.get(job_key)
                    if hw is None:
                        job_id = job_key.rsplit(":", 1)[-1]
                        hw = self._hashes[job_key] = _HashWrite(job_id)
                    if DROPPED_FIELD not in hw.fields:
                        self._entries += 1
                    hw.fields[DROPPED_FIELD] = str(total)
                    hw.what.add("fields")
        hashes = list(self._hashes.items())
        self._hashes = {}
        for _, hw in hashes:
            self._entries -= len(hw.fields)
            self._bytes -= sum(len(k) + len(v) for k, v in hw.fields.items())
        self._inflight = list(hashes)
        streams = []
        for key, st in self._streams.items():
            if not st.entries:
                continue
            batch, size = [], 0
            for item in st.entries:
                if batch and (len(batch) >= BATCH_ENTRIES or size + item[2] > BATCH_BYTES):
                    break
                batch.append(item)
                size += item[2]
            streams.append((key, st, batch))
        follow: list[str] = []
        if self._follow and time.monotonic() >= self._next_follow:
            follow = list(self._follow)
            self._next_follow = time.monotonic() + FOLLOW_EVERY
        return _Work(hashes, streams, follow)

    def _put_back(self, hashes: list[tuple[str, _HashWrite]]) -> None:
        """Unsent hash writes go back under what was queued since (newer values win)."""
        for job_key, old in hashes:
            newer = self._hashes.get(job_key)
            merged = _HashWrite(old.job_id, dict(old.fields), set(old.what))
            if newer is not None:
                for name, value in newer.fields.items():
                    if name in merged.fields:
                        self._entries -= 1  # counted twice: once in flight, once queued
                        self._bytes -= len(name) + len(merged.fields[name])
                    merged.fields[name] = value
                merged.what |= newer.what
            self._hashes[job_key] = merged
            self._entries += len(old.fields)
            self._bytes += sum(len(k) + len(v) for k, v in old.fields.items())

    def _refuse_job(self, job_key: str, why: str, lost_fields: int) -> None:
        """The job's hash refused a write: drop and count everything of that job."""
        self.refused += lost_fields
        if job_key not in self._refused_jobs:
            self._refused_jobs[job_key] = why
            self._reasons.append(f"refused: {why}")
        hw = self._hashes.pop(job_key, None)
        if hw is not None:
            self.refused += len(hw.fields)
            self._entries -= len(hw.fields)
            self._bytes -= sum(len(k) + len(v) for k, v in hw.fields.items())
        for st in self._streams.values():
            if st.job_key == job_key and st.entries:
                self.refused += len(st.entries)
                self._entries -= len(st.entries)
                self._bytes -= sum(item[2] for item in st.entries)
                st.entries.clear()

    def _drop_work(self, work: _Work, why: str) -> None:
        """A round that failed for no transient reason: count it and move on, never loop on it."""
        if why not in self._reasons:
            self._reasons.append(why)
        self.refused += sum(len(hw.fields) for _, hw in self._inflight)
        self._inflight = []
        for key, st, batch in work.streams:
            if key in work.done:
                continue
            for _ in batch:
                if not st.entries:
                    break
                _n, _pairs, size = st.entries.popleft()
                self.refused += 1
                self._entries -= 1
                self._bytes -= size

    def _after_fork_in_child(self) -> None:
        """A forked child starts empty, with its own lock and thread, flushed at its own exit.

        What was queued before the fork stays the parent's to send.
        """
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread, self._client, self._scripts = None, None, {}
        self._hashes.clear()
        for st in self._streams.values():
            st.entries.clear()
        self._entries = self._bytes = 0
        self._inflight = []
        self.dropped = self.refused = self.unsent = self.elsewhere = 0
        self._reasons, self._reported, self._follow = [], {}, []
        self._used = set()
        self.pid = os.getpid()  # the parent's atexit registration now flushes this child's

    @staticmethod
    def _flush_at_multiprocessing_exit(box: Outbox) -> None:
        """In a multiprocessing child (after it dropped the parent's finalizers): flush at its exit."""
        from multiprocessing import util

        util.Finalize(box, exit_flush, args=(box,), exitpriority=100)

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.0
        while True:
            if delay:
                self._stop.wait(delay)  # backoff; only closing cuts it short
            with self._cond:
                self._cond.wait_for(self._ready, timeout=self._wait_time())
                if self._halt:
                    return
                work = self._take()
            try:
                ok = self._send(work)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bug in one write
                ok = True
                with self._cond:
                    self._drop_work(work, f"error: {type(exc).__name__}: {exc}"[:200])
            if work.follow and ok:
                self._read_follow(work.follow)
            with self._cond:
                self._cond.notify_all()  # flush() waiters
                backlog = self._entries >= BATCH_ENTRIES
            delay = 0.0 if ok else min(MAX_DELAY, max(MIN_DELAY, delay * 2))
            if ok and self.linger and not backlog:
                # Let a trickle gather into one batch; a backlog goes on at once.
                self._stop.wait(self.linger)

    def _client_and_scripts(self) -> Any:
        if self._client is None:
            client = self._connect()
            self._scripts = {"fenced": client.register_script(scripts.FENCED_HSET),
                             "live": client.register_script(scripts.HSET_IF_LIVE),
                             "append": client.register_script(scripts.APPEND_ONCE)}
            self._client = client
        return self._client

    def _send(self, work: _Work) -> bool:
        """Send one round of work; False (and hashes put back) on a transient failure."""
        try:
            self._client_and_scripts()
        except Exception as exc:  # noqa: BLE001 - classified right below
            if not transient(exc):
                raise
            with self._cond:
                self._inflight = []
                self._put_back(work.hashes)
            return False
        for i, (job_key, hw) in enumerate(work.hashes):
            try:
                reply = self._hset(job_key, hw)
            except Exception as exc:  # noqa: BLE001 - classified right below
                with self._cond:
                    if transient(exc):
                        self._inflight = []
                        self._put_back(work.hashes[i:])
                        return False
                    self._inflight = work.hashes[i + 1:]
                    self._refuse_job(job_key, f"the server refused: {exc}"[:200], len(hw.fields))
                continue
            code, info = _fence_reply(reply)
            with self._cond:
                self._inflight = work.hashes[i + 1:]
                if code == scripts.FENCE_OK:
                    if DROPPED_FIELD in hw.fields:
                        self._reported[job_key] = int(hw.fields[DROPPED_FIELD])
                else:
                    self._refuse_job(job_key, _fence_why(code, info), len(hw.fields))
        for key, st, batch in work.streams:
            with self._cond:
                if st.job_key in self._refused_jobs or not st.entries:
                    work.done.add(key)
                    continue  # dropped and counted with its job
            try:
                self._append(key, st, batch)
            except Exception as exc:  # noqa: BLE001 - classified right below
                if transient(exc):
                    return False
                with self._cond:
                    self.refused += len(batch)
                    self._reasons.append(f"refused: {key}: {exc}"[:200])
            with self._cond:
                for _ in batch:
                    _n, _pairs, size = st.entries.popleft()
                    self._entries -= 1
                    self._bytes -= size
                work.done.add(key)
        return True

    def _hset(self, job_key: str, hw: _HashWrite) -> Any:
        payload = events.encode(hw.job_id, *sorted(hw.what))
        pairs = [x for kv in hw.fields.items() for x in kv]
        if self.claim:
            return self._scripts["fenced"](keys=[job_key],
                                           args=[self.claim, self.channel, payload, *pairs])
        return self._scripts["live"](keys=[job_key], args=[self.channel, payload, *pairs])

    def _append(self, key: str, st: _Stream, batch: list[tuple[int, list[str], int]]) -> None:
        # APPEND_ONCE's ARGV (as scripts.append_once_args builds it), from flat entries.
        args: list[str] = [str(self.maxlen), str(batch[0][0]), self.channel,
                           events.encode(st.job_id, "child")]
        for _n, flat, _size in batch:
            args.append(str(len(flat) // 2))
            args.extend(flat)
        self._scripts["append"](keys=[key], args=args)

    def _read_follow(self, keys: list[str]) -> None:
        """XREVRANGE COUNT 1 per followed key, one round trip; errors wait for the next turn."""
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.xrevrange(key, count=1)
            replies = pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - a read that failed is tried again later
            if not transient(exc):
                with self._cond:
                    self._follow = []  # e.g. no permission: stop asking
            return
        latest = {}
        for key, reply in zip(keys, replies, strict=False):
            if isinstance(reply, list) and reply and isinstance(reply[0], (list, tuple)):
                fields = reply[0][1] if len(reply[0]) > 1 else {}
                if isinstance(fields, dict):
                    latest[key] = {_text(k): _text(v) for k, v in fields.items()}
        with self._cond:
            self._latest.update(latest)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fence_reply(reply: Any) -> tuple[int, str]:
    try:
        return int(reply[0]), _text(reply[1])
    except (TypeError, ValueError, IndexError):
        return scripts.FENCE_GONE, f"unexpected reply {reply!r:.60}"


def _fence_why(code: int, info: str) -> str:
    if code == scripts.FENCE_GONE:
        return "the job hash is gone, deleted or evicted"
    if code == scripts.FENCE_RETRIED:
        return f"the job was retried as {info}"
    if code == scripts.FENCE_OTHER:
        return f"another supervisor holds the job ({info})"
    return f"unexpected reply {code}"


# -- one outbox per process ----------------------------------------------------------------
_shared: Outbox | None = None
_shared_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()
    if _shared is not None:
        _shared._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)


def shared(make: Callable[[], Outbox]) -> Outbox:
    """This process's outbox (made on first use, flushed at exit); a forked child resets it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = make()
            atexit.register(exit_flush, _shared)
        return _shared


def exit_flush(box: Outbox, timeout: float | None = None) -> int:
    """Flush for at most GN_JOBS_EXIT_FLUSH seconds; say once on stderr what was not stored."""
    if box.pid != os.getpid() or box._closed:
        return box.not_stored  # another process's, or flushed already
    if timeout is None:
        timeout = env_number(ENV_EXIT_FLUSH, DEFAULT_EXIT_FLUSH, float)
    lost = box.close(timeout)
    line = box.summary()
    if line:
        print(line, file=sys.stderr, flush=True)
    return lost
