"""What a supervisor keeps when Redis will not take it: output spill and final-state records.

`OutputBuffer` holds a job's unwritten output lines, numbered n = 1, 2, ...:
in memory up to a byte limit, then in a spill file under the state
directory, then (past the spill cap) dropped and counted, so a job never
blocks and never crashes because Redis is away, loading or full.

A `Record` is a supervisor's last word when the server stayed away after its
job ended: the final fields, the output lines not yet written, and the job's
full hash as claimed. `replay` writes records to the server they belong to
(matched on `Target.identity` and prefix, never on a URL holding a password),
idempotently: output by `APPEND_ONCE`, final fields fenced by the claim, and
a hash that is gone re-created whole from the snapshot, never in part.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

from gn_jobs_tui.core import events, scripts, wire
from gn_jobs_tui.core.env import spool_dir
from gn_jobs_tui.core.keys import Keys

TYPE_CHECKING = False  # the supervisor imports this module: no run-time `typing`
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

Line = tuple[str, str]  # (stream, text)
APPEND = wire.script(scripts.APPEND_ONCE)
FENCED = wire.script(scripts.FENCED_HSET)
BATCH_LINES = 2000
BATCH_BYTES = 1 << 20
LINE_OVERHEAD = 64  # what a buffered line costs beyond its text, roughly
RECENT_MAX = 1 << 20


def _dump(obj: Any) -> str:
    # ensure_ascii keeps lone surrogates (undecodable bytes) as \udcXX escapes.
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


class OutputBuffer:
    """Unwritten output: memory, then a spill file, then dropped (counted). Thread-safe."""

    def __init__(self, spill_path: Path, memory_max: int = 4 << 20, spill_max: int = 256 << 20) -> None:
        self.spill_path, self.memory_max, self.spill_max = spill_path, memory_max, spill_max
        self.lock = threading.Lock()
        self.head_n = 1  # n of the first unwritten line
        self.mem: deque[Line] = deque()
        self.mem_bytes = 0
        self.spilled = 0  # lines in the spill file not yet moved back to memory
        self.spill_bytes = 0
        self._spill: Any = None
        self._read_at = 0
        self.dropped = 0
        # Lines already written, kept a while (RECENT_MAX bytes): a server that lost them
        # (a failover, a restart without fsync) gets them again.
        self.recent: deque[Line] = deque()
        self.recent_bytes = 0

    @property
    def next_n(self) -> int:
        return self.head_n + len(self.mem) + self.spilled

    def __len__(self) -> int:
        return len(self.mem) + self.spilled

    def add(self, stream: str, line: str) -> None:
        cost = len(line) + LINE_OVERHEAD
        with self.lock:
            if not self.spilled and self.mem_bytes + cost <= self.memory_max:
                self.mem.append((stream, line))
                self.mem_bytes += cost
                return
            data = (_dump([stream, line]) + "\n").encode()
            if self.spill_bytes + len(data) > self.spill_max:
                self.dropped += 1
                return
            try:
                if self._spill is None:
                    self.spill_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    self._spill = open(self.spill_path, "a+b")  # noqa: SIM115 - kept open while spilling
                self._spill.seek(0, os.SEEK_END)
                self._spill.write(data)
            except OSError:
                self.dropped += 1  # a full or unwritable disk: the line is counted, not lost silently
                return
            self.spilled += 1
            self.spill_bytes += len(data)

    def peek(self, max_lines: int = BATCH_LINES, max_bytes: int = BATCH_BYTES) -> tuple[int, list[Line]]:
        """(n of the first, the lines) of the next batch to write; memory refills from the spill."""
        with self.lock:
            if not self.mem and self.spilled:
                self._refill()
            out: list[Line] = []
            size = 0
            for item in self.mem:
                if len(out) >= max_lines or (out and size + len(item[1]) > max_bytes):
                    break
                out.append(item)
                size += len(item[1])
            return self.head_n, out

    def _refill(self) -> None:
        """Move the spill file's head back into memory (lock held)."""
        self._spill.flush()
        self._spill.seek(self._read_at)
        budget = self.memory_max
        while self.spilled and budget > 0:
            raw = self._spill.readline()
            if not raw:
                break
            self._read_at += len(raw)
            self.spilled -= 1
            self.spill_bytes -= len(raw)
            stream, line = json.loads(raw)
            self.mem.append((stream, line))
            self.mem_bytes += len(line) + LINE_OVERHEAD
            budget -= len(line) + LINE_OVERHEAD
        if not self.spilled:
            self._spill.truncate(0)
            self._read_at = 0
            self.spill_bytes = 0

    def commit(self, count: int) -> None:
        """The first `count` lines are written: keep them only in the recent window."""
        with self.lock:
            for _ in range(min(count, len(self.mem))):
                item = self.mem.popleft()
                self.mem_bytes -= len(item[1]) + LINE_OVERHEAD
                self.head_n += 1
                self.recent.append(item)
                self.recent_bytes += len(item[1]) + LINE_OVERHEAD
            while self.recent_bytes > RECENT_MAX:
                self.recent_bytes -= len(self.recent.popleft()[1]) + LINE_OVERHEAD

    def rewind(self, to_n: int) -> int:
        """The server has lines before `to_n` only: put the written lines from `to_n` on back
        to be written again, as far as the recent window reaches. Returns how many are gone
        for good (older than the window)."""
        with self.lock:
            want = self.head_n - max(1, to_n)
            back = min(want, len(self.recent))
            for _ in range(back):
                item = self.recent.pop()
                self.recent_bytes -= len(item[1]) + LINE_OVERHEAD
                self.mem.appendleft(item)
                self.mem_bytes += len(item[1]) + LINE_OVERHEAD
                self.head_n -= 1
            return max(0, want - back)

    def drain(self) -> Iterator[Line]:
        """Every unwritten line in order (memory, then spill); for a spool record."""
        with self.lock:
            yield from list(self.mem)
            if self.spilled:
                self._spill.flush()
                self._spill.seek(self._read_at)
                for raw in self._spill:
                    stream, line = json.loads(raw)
                    yield stream, line

    def close(self) -> None:
        with self.lock:
            if self._spill is not None:
                self._spill.close()
                self._spill = None
                try:
                    self.spill_path.unlink()
                except OSError:
                    pass  # already gone: nothing to clean up


class Record:
    """A supervisor's final state that the server did not take in time.

    A plain class with slots, not a dataclass: the supervisor must not pay for
    `dataclasses` (over a megabyte per running job). Compares by value.
    """

    __slots__ = ("identity", "prefix", "job_id", "claim", "snapshot", "final", "first_n",
                 "maxlen", "refused", "written", "version")

    def __init__(self, identity: str, prefix: str, job_id: str, claim: str,
                 snapshot: dict[str, str], final: dict[str, str], first_n: int = 1,
                 maxlen: int = 10_000, refused: int = 0, written: float | None = None,
                 version: int = 1) -> None:
        self.identity = identity  # Target.identity: which server, without secrets
        self.prefix = prefix
        self.job_id = job_id
        self.claim = claim  # the supervisor's claim identity (the job's `supervisor` field)
        self.snapshot = snapshot  # the job's full hash at claim, plus the supervisor's own writes
        self.final = final  # the fields of the final write (status, exit_code, ...)
        self.first_n = first_n  # n of the first output line in the record
        self.maxlen = maxlen
        self.refused = refused  # writes refused because the job hash was gone
        self.written = time.time() if written is None else written
        self.version = version

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (the record file's header); dict fields are copies."""
        return {name: dict(v) if isinstance(v := getattr(self, name), dict) else v
                for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable

    def __repr__(self) -> str:
        return "Record(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def _flat(fields: dict[str, str]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out.extend((name, value))
    return out


def append_cmd(keys: Keys, job_id: str, first_n: int, lines: list[Line], maxlen: int) -> tuple[Any, ...]:
    """The APPEND_ONCE call for a batch of lines numbered from `first_n`."""
    args = scripts.append_once_args(maxlen, first_n, keys.events_channel,
                                    events.encode(job_id, "output"),
                                    [[("stream", s), ("line", ln)] for s, ln in lines])
    return APPEND.cmd([keys.output(job_id)], args)


def fenced_cmd(keys: Keys, job_id: str, claim: str, fields: dict[str, str], what: str = "fields",
               status: str | None = None) -> tuple[Any, ...]:
    """FENCED_HSET of `fields` (none: only check the claim), publishing one event."""
    payload = events.encode(job_id, *what.split(","), status=status) if fields else ""
    channel = keys.events_channel if fields else ""
    return FENCED.cmd([keys.job(job_id)], [claim, channel, payload, *_flat(fields)])


def created_of(snapshot: dict[str, str]) -> float:
    try:
        return float(snapshot.get("created", "0"))
    except ValueError:
        return 0.0


def closing_cmds(keys: Keys, job_id: str, status: str, created: float) -> list[tuple[Any, ...]]:
    """After the final status: file it under its status index, drop the heartbeat and kill keys."""
    return [*keys.status_moves(job_id, status, created), ("ZREM", keys.heartbeats, job_id),
            ("DEL", keys.heartbeat(job_id)), ("DEL", keys.kill_request(job_id))]


def check(replies: list[Any]) -> list[Any]:
    """Raise the first error reply of a pipeline (the caller retries the whole, idempotent step)."""
    for reply in replies:
        if isinstance(reply, wire.ReplyError):
            raise reply
    return replies


def write_final(client: wire.Client, keys: Keys, rec: Record) -> tuple[int, str]:
    """The final fields, fenced by the claim, then the closing commands. Returns the fence
    result (scripts.FENCE_*, detail). Raises wire errors: the caller retries or spools."""
    status = rec.final.get("status", "")
    code, detail = client.eval(FENCED, [keys.job(rec.job_id)], [
        rec.claim, keys.events_channel, events.encode(rec.job_id, "status", status=status or None),
        *_flat(rec.final)])
    code, detail = int(code), (detail.decode() if isinstance(detail, bytes) else str(detail))
    if code == scripts.FENCE_OK:
        replies = check(client.pipeline(closing_cmds(keys, rec.job_id, status,
                                                     created_of(rec.snapshot))))
        if replies[-1] == 1 and "kill_acked" not in rec.final:
            # A kill was requested after our last look, before the final write: say so.
            late = {"kill_note": "kill arrived after the job had ended", "kill_acked": repr(time.time())}
            client.call(*fenced_cmd(keys, rec.job_id, rec.claim, late, "fields"))
    return code, detail


def append_lines(client: wire.Client, keys: Keys, job_id: str, first_n: int,
                 lines: Iterable[Line], maxlen: int) -> int:
    """Write lines numbered from `first_n`, exactly once, in batches; returns how many were new."""
    added = 0
    batch: list[Line] = []
    n = first_n
    for item in lines:
        batch.append(item)
        if len(batch) >= BATCH_LINES:
            added += int(client.call(*append_cmd(keys, job_id, n, batch, maxlen))[0])
            n += len(batch)
            batch = []
    if batch:
        added += int(client.call(*append_cmd(keys, job_id, n, batch, maxlen))[0])
    return added


# -- record files -------------------------------------------------------------------------


def record_path(job_id: str, pid: int | None = None) -> Path:
    return spool_dir() / f"{job_id}.{pid or os.getpid()}.rec"


def save(rec: Record, lines: Iterable[Line], path: Path | None = None) -> Path:
    """Write a record atomically: a header line, then one line per output line."""
    path = path or record_path(rec.job_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(_dump(rec.as_dict()) + "\n")
        for stream, line in lines:
            out.write(_dump([stream, line]) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def load_header(path: Path) -> Record | None:
    """The record's header, or None for a file that is not one (it is left alone)."""
    try:
        with open(path, encoding="ascii") as f:
            data = json.loads(f.readline())
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def _lines(path: Path) -> Iterator[Line]:
    with open(path, encoding="ascii") as f:
        f.readline()
        for raw in f:
            stream, line = json.loads(raw)
            yield stream, line


def pending(identity: str, prefix: str) -> list[Path]:
    """Record files for this server and prefix (cheap when there are none: one listdir)."""
    try:
        names = os.listdir(spool_dir())
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.endswith(".rec"):
            rec = load_header(spool_dir() / name)
            if rec is not None and rec.identity == identity and rec.prefix == prefix:
                out.append(spool_dir() / name)
    return out


def _log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} spool[{os.getpid()}] {msg}", file=sys.stderr,
          flush=True)


def _file_log(msg: str) -> None:
    """The CLI's replay notes go to a file: its stdout and stderr belong to the command."""
    try:
        with open(spool_dir() / "replay.log", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} replay[{os.getpid()}] {msg}\n")
    except OSError:
        _log(msg)


def replay_one(client: wire.Client, path: Path, log: Callable[[str], None] = _log) -> str:
    """Write one record to its server; returns what happened. Safe to repeat."""
    rec = load_header(path)
    if rec is None:
        return "unreadable"
    keys = Keys(rec.prefix)
    job_key = keys.job(rec.job_id)
    holder, retried_by = client.call("HMGET", job_key, "supervisor", "retried_by")
    holder = holder.decode("utf-8", "surrogateescape") if holder is not None else None
    if holder is None:
        # Gone (a new server, or evicted): re-create the job whole, never a partial hash.
        full = {**rec.snapshot, **rec.final, "replayed": repr(time.time())}
        created = created_of(full)
        check(client.pipeline([
            ("HSET", job_key, *_flat(full)),
            ("ZADD", keys.jobs_index, repr(created), rec.job_id),
            ("ZADD", keys.user_jobs(full.get("user_id", "unknown")), repr(created), rec.job_id),
            ("ZADD", keys.ids, "0", rec.job_id),
            *closing_cmds(keys, rec.job_id, full.get("status", ""), created),
            ("PUBLISH", keys.events_channel, events.encode(rec.job_id, "created",
                                                          status=full.get("status"))),
        ]))
        append_lines(client, keys, rec.job_id, rec.first_n, _lines(path), rec.maxlen)
        log(f"job {rec.job_id}: re-created from the spool (its hash was gone)")
        return "recreated"
    if holder != rec.claim:
        log(f"job {rec.job_id}: held by another supervisor ({holder}); spooled record dropped")
        return "other"
    append_lines(client, keys, rec.job_id, rec.first_n, _lines(path), rec.maxlen)
    if retried_by is not None:
        log(f"job {rec.job_id}: retried as {retried_by.decode(errors='replace')} meanwhile; "
            "its output was written, its final state dropped")
        return "retried"
    final = {**rec.final, "replayed": repr(time.time())}
    code, detail = write_final(client, keys, Record(**{**rec.as_dict(), "final": final}))
    if code == scripts.FENCE_GONE:
        raise wire.ConnectionLost("job hash vanished during replay; trying again later")
    if code != scripts.FENCE_OK:
        log(f"job {rec.job_id}: final state refused ({code}, {detail}); spooled record dropped")
        return "refused"
    log(f"job {rec.job_id}: final state {final.get('status')} written from the spool")
    return "written"


def replay(client: wire.Client, identity: str, prefix: str,
           log: Callable[[str], None] = _log) -> int:
    """Write every record for this server and prefix; returns how many were settled.

    Each file is locked while it is replayed, so two replayers never collide,
    and deleted once settled; a wire error leaves it for the next replay.
    """
    settled = 0
    for path in pending(identity, prefix):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # settled by someone else meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # another process is replaying it right now
            if not path.exists():
                continue
            replay_one(client, path, log)
            path.unlink()
            settled += 1
        finally:
            os.close(fd)
    return settled


def replay_pending(url: str, prefix: str, read_only: bool = False) -> int:
    """For every `gn-jobs` command that reaches a server: replay what supervisors spooled for it.

    Costs one listdir when nothing is spooled. Never raises: a server that
    refuses now gets the record at the next command.
    """
    if read_only:
        return 0
    from gn_jobs_tui.core.connection import UrlError, parse_url

    try:
        target = parse_url(url)
    except UrlError:
        return 0
    if not pending(target.identity, prefix):
        return 0
    client = wire.Client(target, name="gn-jobs-replay")
    try:
        settled = replay(client, target.identity, prefix, _file_log)
    except wire.WireError as exc:
        print(f"gn-jobs: spooled job records not written yet: {exc}", file=sys.stderr)
        return 0
    finally:
        client.close()
    if settled:
        print(f"gn-jobs: wrote {settled} spooled job record{'s' if settled != 1 else ''} "
              "to the server", file=sys.stderr)
    return settled
