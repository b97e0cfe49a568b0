"""The supervisor: one detached process per running job, on the job's host.

`python -m gn_jobs_tui.core.supervisor JOB_ID` (URL and prefix in the env).
It claims the queued job, starts its argv in a new session (no shell),
records pid + start time, streams output to Redis exactly once and in order,
keeps a heartbeat, acts on kill requests (durable key + pub/sub notice), ends
the job's leftover descendants, and writes the final status.

It survives every Redis fault: while the server is away, loading, full,
read-only or refusing, the job runs on, its output waits in bounded memory
then a spill file, and its field writes wait too; all are written once the
server takes them. If it never does, the final state is spooled to a file
(see `spool`) and the supervisor exits a bounded time after its job ended.
Every write to the job hash is fenced by the claim: a supervisor that finds
its job retried (it was judged lost while this host hung) stops its copy.

It imports no redis-py (`wire` speaks the protocol) and no psutil (`procs`
reads /proc): one runs per job, so its size and start-up time count.
"""

from __future__ import annotations

import _socket  # `socket` is 0.23 MB more, for gethostname
import json
import os
import signal
import subprocess
import sys
import threading
import time

from gn_jobs_tui.core import events, procs, scripts, spool, wire
from gn_jobs_tui.core.connection import UrlError, parse_url
from gn_jobs_tui.core.env import (
    ENV_BUFFER,
    ENV_CLAIM,
    ENV_GIVE_UP,
    ENV_GRACE,
    ENV_HEARTBEAT,
    ENV_JOB_ID,
    ENV_MAXLEN,
    ENV_PREFIX,
    ENV_SPILL_MAX,
    ENV_URL,
    number,
    spool_dir,
)
from gn_jobs_tui.core.keys import COMPLETED, DEFAULT_PREFIX, FAILED, KILLED, LOST, RUNNING, Keys

TYPE_CHECKING = False  # one supervisor per running job: no run-time `typing`
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

LINE_MAX = 4096
FLUSH_INTERVAL = 0.1
READER_DRAIN = 2.0  # a grandchild holding the pipes open must not keep us waiting
TICK = 0.02
#: Stopping on SIGTERM (a host shutting down): spool soon rather than wait out GIVE_UP.
TERM_GIVE_UP = 5.0

#: The old job of a retry, whose supervisor came back: note who superseded it.
#: KEYS[1] job hash; ARGV: claim, retry id, events channel, event. Returns {1, status} or {0, ''}.
SUPERSEDE = r"""
if redis.call('HGET', KEYS[1], 'supervisor') ~= ARGV[1] then return {0, ''} end
if redis.call('HGET', KEYS[1], 'retried_by') ~= ARGV[2] then return {0, ''} end
redis.call('HSET', KEYS[1], 'superseded_by', ARGV[2])
local st = redis.call('HGET', KEYS[1], 'status') or ''
if st == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'lost')
  st = 'lost'
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {1, st}
"""
#: Claim a queued job (one key, so it runs on a Cluster too; the kill key is looked at
#: next). KEYS[1] job hash; ARGV[1] claim identity. Returns 1 claimed, 0 not queued or taken.
CLAIM = r"""
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' and st ~= 'pending' then return 0 end
if redis.call('HSETNX', KEYS[1], 'supervisor', ARGV[1]) == 0 then return 0 end
return 1
"""
_CLAIM = wire.script(CLAIM)
_SUPERSEDE = wire.script(SUPERSEDE)


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor[{os.getpid()}] {msg}",
          file=sys.stderr, flush=True)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class Supervisor:
    def __init__(self, url: str, prefix: str, job_id: str, *, heartbeat: float = 2.0,
                 grace: float = 5.0, maxlen: int = 10_000, give_up: float = 300.0,
                 buffer_bytes: int = 4 << 20, spill_max: int = 256 << 20) -> None:
        self.target = parse_url(url)
        self.prefix, self.job_id = prefix, job_id
        self.keys = Keys(prefix)
        self.heartbeat, self.grace, self.maxlen, self.give_up = heartbeat, grace, maxlen, give_up
        self.client = wire.Client(self.target, name="gn-jobs-supervisor",
                                  timeout=min(5.0, max(1.0, 2 * heartbeat)))
        self.sub: wire.Subscription | None = None
        me = os.getpid()
        self.identity = f"{_socket.gethostname()}:{me}:{procs.start_time(me) or time.time():.3f}"
        self.buffer = spool.OutputBuffer(spool_dir() / f"{job_id}.{me}.spill", buffer_bytes, spill_max)
        self.snapshot: dict[str, str] = {}  # the job hash as claimed, plus our own writes
        self.pending: dict[str, str] = {}  # field writes the server has not taken yet
        self.pending_what: set[str] = set()
        self.moves_due: str | None = None  # a status whose index moves are not written yet
        self.proc: subprocess.Popen[bytes] | None = None
        self.group: procs.JobProcesses | None = None
        self.pid_started = 0.0
        # Why the job is being stopped (any of them), and what we sent while its leader lived.
        self.kill_requested = False  # durable key or notice in Redis
        self.terminating = False  # SIGTERM to this supervisor
        self.superseded_by: str | None = None  # our claim lost to a retry
        self.held_by: str | None = None  # our claim lost to another supervisor
        self.kill_sent_at: float | None = None
        self.sent: list[int] = []
        # After the leader exits: its leftover descendants.
        self.exited_at: float | None = None
        self.ended: set[int] = set()
        self.desc_term_at: float | None = None
        self.desc_killed = False
        self.desc_done = False
        # The link, and what the server refused.
        self.link_up = True
        self.link_retry_at = 0.0
        self.backoff = 0.1
        self.write_retry_at = 0.0
        self.write_backoff = 0.1
        self.refusing: str | None = None
        self.hash_gone = False
        self.refused = 0  # writes refused because the job hash was gone
        self.dropped_recorded = 0
        self.gap_logged = False
        self.check_tip = False  # after a reconnect or failover: did the server keep our lines?
        self.clock_offset = 0.0
        self.clock_at = -1e9
        self.last_beat = -1e9
        self.sub_retry_at = 0.0
        self.traceback_lines: list[str] = []
        self._in_tb = False
        self.last_traceback: str | None = None

    # -- redis, patiently ------------------------------------------------------------
    def _io(self, fn: Callable[[], Any], what: str) -> tuple[bool, Any]:
        """Run a Redis call. (True, value), or (False, None) while the link is down,
        or (False, error) for a refusal (OOM, MISCONF, NOPERM, ...): never raises."""
        now = time.monotonic()
        if now < self.link_retry_at:
            return False, None
        try:
            value = fn()
        except wire.WireError as exc:
            return False, self._failed(exc, what)
        if not self.link_up:
            log("redis reachable again")
            self.link_up, self.backoff = True, 0.1
        if now - self.clock_at > 60:
            self.clock_at = now
            self._measure_clock()
        return True, value

    def _failed(self, exc: wire.WireError, what: str) -> wire.ReplyError | None:
        """Note a failed call: a dead link backs off (None), a refusal is returned."""
        if isinstance(exc, (wire.ConnectionLost, wire.Loading, wire.Busy, wire.ReadOnly)):
            # Nothing on this link can work now: drop it, back off, reconnect later.
            self.client.close()
            self._drop_sub()
            self.check_tip = True
            if self.link_up:
                log(f"redis unavailable ({what}: {exc}); the job runs on, output is kept")
            self.link_up = False
            self.link_retry_at = time.monotonic() + self.backoff
            self.backoff = min(2.0, self.backoff * 2)
            return None
        assert isinstance(exc, wire.ReplyError)
        if self.refusing != exc.kind:
            log(f"redis refused {what}: {exc}; keeping it to try again")
        self.refusing = exc.kind
        return exc

    def _measure_clock(self) -> None:
        """Heartbeat scores are on the server's clock: measure our offset from it."""
        try:
            sec, usec = self.client.call("TIME")
        except wire.WireError:
            return
        self.clock_offset = int(sec) + int(usec) / 1e6 - time.time()

    def _refused(self, what: str) -> None:
        now = time.monotonic()
        self.write_retry_at = now + self.write_backoff
        self.write_backoff = min(2.0, self.write_backoff * 2)

    def _fence(self, reply: Any, what: str) -> bool:
        """Read FENCED_HSET's answer: True if our claim stands (and the write, if any, was made)."""
        code, detail = int(reply[0]), _text(reply[1])
        if code == scripts.FENCE_OK:
            return True
        if code == scripts.FENCE_RETRIED:
            if self.superseded_by is None:
                log(f"job {self.job_id} was retried as {detail}: stopping this copy")
            self.superseded_by = detail
        elif code == scripts.FENCE_OTHER:
            if self.held_by is None:
                log(f"job {self.job_id} is held by another supervisor ({detail}): stopping this copy")
            self.held_by = detail
        else:
            if not self.hash_gone:
                log(f"job hash {self.keys.job(self.job_id)} is gone: writes refused, kept for the spool")
            self.hash_gone = True
        return False

    @property
    def claim_lost(self) -> bool:
        return self.superseded_by is not None or self.held_by is not None

    def _set(self, what: str, **fields: Any) -> None:
        """A write to the job hash, fenced, sent now or as soon as the server takes it."""
        for name, value in fields.items():
            self.pending[name] = self.snapshot[name] = _text(value)
        self.pending_what.add(what)
        if self.hash_gone or self.claim_lost:
            self.refused += self.hash_gone
            return
        self._flush_fields()

    def _flush_fields(self) -> None:
        if time.monotonic() < self.write_retry_at or self.hash_gone or self.claim_lost:
            return
        if self.pending:
            fields = dict(self.pending)
            status = fields.get("status")
            cmd = spool.fenced_cmd(self.keys, self.job_id, self.identity, fields,
                                   ",".join(sorted(self.pending_what)), status)
            ok, reply = self._io(lambda: self.client.call(*cmd), "a field write")
            if not ok:
                if reply is not None:
                    self._refused("fields")
                return
            self.write_backoff = 0.1
            if not self._fence(reply, "fields"):
                self.refused += self.hash_gone
                return
            for name, value in fields.items():
                if self.pending.get(name) == value:
                    del self.pending[name]
            if not self.pending:
                self.pending_what.clear()
            if status:
                self.moves_due = status
        if self.moves_due:
            moves = self.keys.status_moves(self.job_id, self.moves_due,
                                           spool.created_of(self.snapshot))
            ok, reply = self._io(lambda: spool.check(self.client.pipeline(moves)), "status index")
            if ok:
                self.moves_due = None
            elif reply is not None:
                self._refused("status index")

    # -- output --------------------------------------------------------------------------
    def _reader(self, pipe: Any, stream: str) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if len(line) > LINE_MAX:
                line = line[:LINE_MAX] + "…[line truncated]"
            self._watch_traceback(line)
            self.buffer.add(stream, line)
        pipe.close()

    def _watch_traceback(self, line: str) -> None:
        """Remember the last Python traceback printed: a job that printed one is no success."""
        if line.startswith("Traceback (most recent call last):"):
            self._in_tb, self.traceback_lines = True, [line]
        elif self._in_tb:
            self.traceback_lines.append(line)
            if line and not line[0].isspace():
                self._in_tb = False
                self.last_traceback = "\n".join(self.traceback_lines[-40:])

    def _check_tip(self) -> bool:
        """After a reconnect or a failover: lines the server lost (a restart without fsync, a
        primary that was replaced) are written again from the recent window."""
        key = self.keys.output(self.job_id)
        ok, tip = self._io(lambda: self.client.call("XREVRANGE", key, "+", "-", "COUNT", 1), "output tip")
        if not ok:
            return False
        self.check_tip = False
        last = 0
        if tip:
            fields = tip[0][1]
            for i in range(0, len(fields) - 1, 2):
                if fields[i] == b"n":
                    last = int(fields[i + 1])
        if last < self.buffer.head_n - 1:
            missing = self.buffer.head_n - 1 - last
            gone = self.buffer.rewind(last + 1)
            log(f"the server lost {missing} output lines it had taken (n > {last}); "
                f"writing them again" + (f", {gone} of them no longer held" if gone else ""))
        return True

    def flush_output(self) -> bool:
        """Send one batch of output (exactly once, in order); True when nothing is left."""
        if time.monotonic() < self.write_retry_at:
            return False
        if self.check_tip and not self._check_tip():
            return False
        first_n, batch = self.buffer.peek()
        if not batch:
            return True
        cmd = spool.append_cmd(self.keys, self.job_id, first_n, batch, self.maxlen)
        ok, reply = self._io(lambda: self.client.call(*cmd), "output")
        if not ok:
            if reply is not None:
                self._refused("output")
            return False
        self.write_backoff = 0.1
        self.refusing = None
        last = int(reply[1])
        if last < first_n - 1 and not self.gap_logged:
            self.gap_logged = True
            log(f"the server's output stream ends at n={last}, before {first_n - 1} lines it had "
                "taken: it lost them (restarted without persisting?)")
        self.buffer.commit(len(batch))
        return len(self.buffer) == 0

    # -- control -------------------------------------------------------------------------
    def _drop_sub(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None

    def _listen(self) -> None:
        """Non-blocking look at the control channel (the durable key is the truth)."""
        now = time.monotonic()
        if now < self.link_retry_at or now < self.sub_retry_at:
            return
        try:
            if self.sub is None:
                self.sub = self.client.subscribe(self.keys.control_channel)
            messages = self.sub.poll()
        except wire.WireError as exc:
            self._drop_sub()
            if self._failed(exc, "the control channel") is not None:
                # Refused (e.g. NOPERM for pub/sub): the heartbeat's look at the kill key remains.
                self.sub_retry_at = now + 60
            return
        for payload in messages:
            try:
                data = json.loads(payload)
            except (ValueError, TypeError):
                continue
            if isinstance(data, dict) and data.get("job_id") == self.job_id and data.get("cmd") == "kill":
                self.kill_requested = True

    def _beat(self) -> None:
        """Check the claim and the kill key, then refresh the heartbeat (only if the claim stands)."""
        check = spool.fenced_cmd(self.keys, self.job_id, self.identity, {})
        ok, replies = self._io(lambda: self.client.pipeline(
            [check, ("EXISTS", self.keys.kill_request(self.job_id))]), "heartbeat")
        if not ok:
            return
        fence, kill = replies
        if kill == 1:
            self.kill_requested = True
        if self.target.kind == "sentinel":
            ok, moved = self._io(self.client.verify_primary, "asking the sentinels")
            if ok and moved:
                log("the sentinels name a new primary: following it")
                self.check_tip = True
                self._drop_sub()  # notices are published on the new primary
                return
        if isinstance(fence, wire.ReplyError) or not self._fence(fence, "heartbeat"):
            return
        ttl = int(self.heartbeat * 2000)
        score = time.time() + self.clock_offset + 2 * self.heartbeat
        hb = self.keys.heartbeat(self.job_id)
        ok, replies = self._io(lambda: self.client.pipeline([
            ("SET", hb, self.identity, "PX", ttl),
            ("ZADD", self.keys.heartbeats, repr(round(score, 3)), self.job_id)]), "heartbeat")
        if ok and isinstance(replies[0], wire.ReplyError):
            # Memory full: SET is refused but PEXPIRE is not, so the heartbeat lives on.
            self._io(lambda: self.client.call("PEXPIRE", hb, ttl), "heartbeat")
        if _text(fence[1]) == LOST and self.exited_at is None:
            log("judged lost while away; back to running")
            self._set("status", status=RUNNING, message="supervisor reconnected")

    def _beat_if_due(self, now: float) -> None:
        if now - self.last_beat >= self.heartbeat / 2:
            self.last_beat = now
            self._beat()

    def _identity_ok(self) -> bool:
        """The pid and start time recorded in Redis must match the live leader before a kill."""
        assert self.proc is not None
        ok, recorded = self._io(lambda: self.client.call(
            "HMGET", self.keys.job(self.job_id), "pid", "pid_started"), "the recorded pid")
        if not ok or recorded[0] is None:
            return True  # unreadable or not written yet: our own record of the leader stands
        try:
            pid, started = int(recorded[0]), float(recorded[1])
        except (TypeError, ValueError):
            pid, started = 0, -1.0
        # Our own child as we recorded it (alive, or a zombie we have not reaped: its pid
        # cannot be reused yet). Anything else recorded means the record is not ours to act on.
        if pid == self.proc.pid and abs(started - self.pid_started) <= procs.START_TIME_TOLERANCE:
            return True
        log(f"recorded pid {pid} start time does not match the live process: not signalling")
        self._set("error", error="kill refused: recorded pid/start time do not match the running "
                  "process (pid reused?)")
        return False

    def _stop_reason(self) -> str | None:
        if self.claim_lost:
            return "superseded"
        if self.terminating:
            return "its supervisor got SIGTERM"
        if self.kill_requested:
            return "kill requested"
        return None

    def _handle_kill(self, now: float) -> None:
        reason = self._stop_reason()
        if reason is None or self.proc is None or self.group is None or self.exited_at is not None:
            return
        if self.kill_sent_at is None:
            if self.proc.poll() is not None:
                return  # it ended on its own first: the exit path notes the late kill
            if reason == "kill requested" and not self._identity_ok():
                self.kill_requested = False
                self._io(lambda: self.client.call("DEL", self.keys.kill_request(self.job_id)),
                         "kill request")
                return
            log(f"{reason}: SIGTERM to the job's process group and descendants")
            self.group.signal_all(signal.SIGTERM)
            self.sent.append(signal.SIGTERM)
            self.kill_sent_at = now
        elif signal.SIGKILL not in self.sent and now - self.kill_sent_at >= self.grace:
            log("grace period over: SIGKILL")
            self.group.signal_all(signal.SIGKILL)
            self.sent.append(signal.SIGKILL)

    def _end_descendants(self, now: float) -> None:
        """After the leader exits, what it left behind: SIGTERM, grace, SIGKILL."""
        group = self.group
        assert group is not None
        if self.desc_done:
            return
        if self.desc_term_at is None:
            group.leader_reaped = True  # Popen reaped it: its group id is no longer proof
            group.refresh()
            left = group.alive(include_leader=False)
            if not left:
                self.desc_done = True
                return
            self.ended.update(left)
            if self.kill_sent_at is None:
                log(f"job leader exited; ending {len(left)} leftover descendant(s)")
                group.signal_all(signal.SIGTERM, include_leader=False)
                self.desc_term_at = now
            else:
                self.desc_term_at = self.kill_sent_at  # they had SIGTERM with the group
            return
        group.reap()
        group.refresh()
        left = group.alive(include_leader=False)
        self.ended.update(left)
        if not left:
            self.desc_done = True
        elif not self.desc_killed and now - self.desc_term_at >= self.grace:
            group.signal_all(signal.SIGKILL, include_leader=False)
            self.desc_killed = True

    # -- life cycle ----------------------------------------------------------------------
    def run(self) -> int:
        try:
            return self._run()
        except Exception:  # noqa: BLE001 - recorded as the job's failure, then re-raised
            import traceback  # only here: it costs every healthy supervisor ~0.2 MB

            text = traceback.format_exc()
            log(text)
            if self.group is not None:
                self.group.signal_all(signal.SIGKILL)
            try:
                self._finish(FAILED, None, "supervisor crashed", time.monotonic() + TERM_GIVE_UP,
                             flush=False, error=f"supervisor crashed:\n{text[-4000:]}")
            except Exception as exc:  # noqa: BLE001 - the crash itself is what matters
                log(f"could not record the crash: {exc!r}")
            raise
        finally:
            self.buffer.close()
            self._drop_sub()
            self.client.close()

    def _wait_for(self, fn: Callable[[], Any], what: str, deadline: float) -> tuple[bool, Any]:
        """Retry a call until it succeeds, we are told to stop, or the deadline passes."""
        while True:
            ok, value = self._io(fn, what)
            if ok:
                return True, value
            if self.terminating or time.monotonic() > deadline:
                return False, None
            time.sleep(max(0.05, min(1.0, self.link_retry_at - time.monotonic())))

    def _run(self) -> int:
        deadline = time.monotonic() + self.give_up
        job_key = self.keys.job(self.job_id)
        ok, claimed = self._wait_for(lambda: self.client.eval(_CLAIM, [job_key], [self.identity]),
                                     "claim", deadline)
        if not ok:
            log(f"gave up claiming job {self.job_id}: the server did not answer")
            return 1
        if claimed == 0:
            log(f"job {self.job_id} is not queued or already claimed; nothing to do")
            return 0
        ok, killed = self._wait_for(lambda: self.client.call(
            "EXISTS", self.keys.kill_request(self.job_id)), "kill request", deadline)
        if ok and killed:
            claimed = 2  # a kill was requested before it started
        ok, raw = self._wait_for(lambda: self.client.call("HGETALL", job_key), "read", deadline)
        if not ok:
            log(f"gave up reading job {self.job_id} after claiming it")
            return 1
        self.snapshot = {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw) - 1, 2)}
        self.exited_at = time.monotonic()  # until a process runs, "ended" means now
        if claimed == 2:
            self._finish(KILLED, None, "killed before it started", deadline=self._end_deadline(),
                         kill_acked=time.time())
            return 0
        try:
            argv = json.loads(self.snapshot.get("command", ""))
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ValueError("command is not a non-empty JSON list of strings")
        except ValueError as exc:
            self._finish(FAILED, None, "bad command", self._end_deadline(), error=f"cannot start: {exc}")
            return 0
        env = dict(os.environ)
        env.update({ENV_JOB_ID: self.job_id, ENV_CLAIM: self.identity, "PYTHONUNBUFFERED": "1"})
        procs.become_subreaper()
        procs.release_free_memory()  # what starting up freed; one of us runs per job
        self._beat()  # a heartbeat before `running`, so no reader ever sees running without one
        try:
            # argv list, no shell; a new session = its own process group.
            self.proc = subprocess.Popen(  # noqa: S603
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=env, preexec_fn=procs.die_with_parent,  # noqa: PLW1509
            )
        except OSError as exc:
            self._finish(FAILED, None, "could not start", self._end_deadline(),
                         error=f"cannot start {argv[0]!r}: {exc}")
            return 0
        self.exited_at = None
        self.pid_started = procs.start_time(self.proc.pid) or 0.0
        self.group = procs.JobProcesses(self.proc.pid)
        self._set("status", status=RUNNING, pid=self.proc.pid, pid_started=self.pid_started,
                  host=_socket.gethostname(), started=time.time(), heartbeat=self.heartbeat,
                  supervisor_pid=os.getpid())
        readers = [threading.Thread(target=self._reader, args=(p, s), daemon=True)
                   for p, s in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for t in readers:
            t.start()
        self._replay()
        self._supervise(readers)
        return 0

    def _replay(self) -> None:
        """Records other supervisors on this host spooled for this server: write them now."""
        if not spool.pending(self.target.identity, self.prefix):
            return
        self._io(lambda: spool.replay(self.client, self.target.identity, self.prefix, log),
                 "spooled records")

    def _supervise(self, readers: list[threading.Thread]) -> None:
        assert self.proc is not None
        last_flush = time.monotonic()
        drained_at: float | None = None
        while True:
            now = time.monotonic()
            self._beat_if_due(now)
            self._listen()
            self._handle_kill(now)
            if self.exited_at is None and self.proc.poll() is not None:
                self.exited_at = now
            if self.exited_at is not None:
                self._end_descendants(now)
                if self.desc_done and drained_at is None:
                    drained_at = now
            done = drained_at is not None and (
                not any(t.is_alive() for t in readers) or now - drained_at > READER_DRAIN)
            if done:
                break
            if (len(self.buffer) or self.check_tip) and (now - last_flush >= FLUSH_INTERVAL
                                     or len(self.buffer) >= spool.BATCH_LINES):
                self.flush_output()
                last_flush = now
            if self.buffer.dropped != self.dropped_recorded:
                self.dropped_recorded = self.buffer.dropped
                self._set("fields", output_dropped=self.buffer.dropped)
            elif self.pending or self.moves_due:
                self._flush_fields()
            time.sleep(TICK)
        self.group.reap()  # type: ignore[union-attr]
        status, code, message, extra = self._outcome(self.proc.returncode)
        self._finish(status, code, message, self._end_deadline(), **extra)

    def _end_deadline(self) -> float:
        ended = self.exited_at if self.exited_at is not None else time.monotonic()
        return ended + (min(self.give_up, TERM_GIVE_UP) if self.terminating else self.give_up)

    def _outcome(self, rc: int) -> tuple[str, int, str, dict[str, Any]]:
        """How the job ended. `killed` only when one of our signals ended it; exit codes as a
        shell reports them (128+N for signal N)."""
        code = 128 - rc if rc < 0 else rc
        sig = -rc if rc < 0 else rc - 128 if rc > 128 else None
        extra: dict[str, Any] = {}
        if self.kill_requested:
            extra["kill_acked"] = time.time()
        if sig is not None and sig in self.sent:
            why = {"its supervisor got SIGTERM": ": its supervisor was stopped",
                   "superseded": ": superseded by a retry"}.get(self._stop_reason() or "", "")
            return KILLED, code, f"killed ({signal_name(sig)}){why}", extra
        if self.kill_requested or self.terminating:
            extra["kill_note"] = ("kill arrived after the job had ended" if not self.sent else
                                  f"kill requested, but the job ended on its own (exit code {code})")
        if rc == 0:
            extra.update({"error": self.last_traceback} if self.last_traceback else {})
            return COMPLETED, 0, "exited 0", extra
        if rc < 0:
            return FAILED, code, f"ended by {signal_name(-rc)} (exit code {code})", extra
        return FAILED, code, f"exited with code {code}", extra

    def _finish(self, status: str, rc: int | None, message: str, deadline: float, *,
                flush: bool = True, **extra: Any) -> None:
        """Write the output, then the final fields (fenced); spool them if the server will not."""
        while flush and len(self.buffer) and time.monotonic() < deadline:
            self._beat_if_due(time.monotonic())  # still ours until the final write: keep it alive
            if not self.flush_output():
                time.sleep(TICK)
        if self.claim_lost:
            self._record_superseded(deadline)
            return
        fields: dict[str, Any] = {"status": status, "finished": time.time(), **extra}
        if rc is not None:
            fields["exit_code"] = rc
        if self.buffer.dropped:
            fields["output_dropped"] = self.buffer.dropped
        if self.ended:
            fields["descendants_ended"] = len(self.ended)
        ok, current = self._io(lambda: self.client.call(
            "HMGET", self.keys.job(self.job_id), "message", "error"), "read")
        msg, err = ((_text(current[0]) if current[0] else "", _text(current[1]) if current[1] else "")
                    if ok else (self.snapshot.get("message", ""), self.snapshot.get("error", "")))
        if status == FAILED and "error" not in fields:
            # A traceback we saw, else what the job itself said, else how it ended.
            fields["error"] = self.last_traceback or err or message
        # The job's own last word is kept; ours says how it ended.
        if status == COMPLETED:
            fields["message"] = msg or message
        elif msg and status == FAILED:
            fields["message"] = f"{msg} [{message}]"
        elif msg and status == KILLED:
            fields["message"] = f"{message}: {msg}"
        else:
            fields["message"] = message
        final = {**self.pending, **{k: _text(v) for k, v in fields.items()}}
        self.snapshot.update(final)
        rec = spool.Record(identity=self.target.identity, prefix=self.prefix, job_id=self.job_id,
                           claim=self.identity, snapshot=dict(self.snapshot), final=final,
                           maxlen=self.maxlen)
        self.refused += self.hash_gone  # known gone: the final write is refused too
        while not self.hash_gone:
            self._beat_if_due(time.monotonic())
            if not (flush and (len(self.buffer) or self.check_tip)) or self.flush_output():
                ok, reply = self._io(lambda: spool.write_final(self.client, self.keys, rec), "final state")
                if ok and reply[0] == scripts.FENCE_OK and self._final_kept():
                    log(f"job {self.job_id} {status} (exit code {rc})")
                    return
                if ok and reply[0] == scripts.FENCE_OK:
                    continue  # a failover took the write with it: again, on the new primary
                if ok:
                    self._fence([reply[0], reply[1]], "final state")
                    self.refused += self.hash_gone
                    if self.claim_lost:
                        self._record_superseded(deadline)
                        return
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(max(TICK, min(0.5, self.link_retry_at - time.monotonic())))
        rec.first_n, rec.refused = self.buffer.head_n, self.refused
        path = spool.save(rec, self.buffer.drain())
        log(f"job {self.job_id} {status} (exit code {rc}); the server did not take it: "
            f"spooled to {path} ({len(self.buffer)} output lines, {self.refused} writes refused)")

    def _final_kept(self) -> bool:
        """Sentinel: the final state reached a replica and the primary did not move meanwhile
        (a write taken by a primary that is then replaced is lost with it)."""
        if self.target.kind != "sentinel":
            return True
        self._io(lambda: self.client.call("WAIT", 1, int(self.client.timeout * 1000)), "WAIT")
        ok, moved = self._io(self.client.verify_primary, "asking the sentinels")
        if ok and moved:
            log("the primary moved while the final state was written: writing it again")
            self.check_tip = True
            return False
        return True

    def _record_superseded(self, deadline: float) -> None:
        """Our copy was stopped because the job was retried: say so on the old job."""
        if self.superseded_by is None:
            return  # held by another supervisor: its job now, nothing of ours to record
        payload = events.encode(self.job_id, "status")
        while True:
            ok, reply = self._io(lambda: self.client.eval(
                _SUPERSEDE, [self.keys.job(self.job_id)],
                [self.identity, self.superseded_by, self.keys.events_channel, payload]), "superseded_by")
            if ok:
                if int(reply[0]) == 1:
                    moves = [*self.keys.status_moves(self.job_id, _text(reply[1]),
                                                     spool.created_of(self.snapshot)),
                             ("ZREM", self.keys.heartbeats, self.job_id)]
                    self._io(lambda m=moves: spool.check(self.client.pipeline(m)), "status index")
                log(f"job {self.job_id}: this copy stopped; superseded by {self.superseded_by}")
                return
            if time.monotonic() > deadline:
                log(f"job {self.job_id}: could not record superseded_by; giving up")
                return
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gn_jobs_tui.core.supervisor JOB_ID", file=sys.stderr)
        return 2
    url = os.environ.get(ENV_URL)
    if not url:
        print(f"{ENV_URL} is not set", file=sys.stderr)
        return 2
    try:
        sup = Supervisor(url, os.environ.get(ENV_PREFIX, DEFAULT_PREFIX), args[0],
                         heartbeat=number(ENV_HEARTBEAT, 2.0), grace=number(ENV_GRACE, 5.0),
                         maxlen=int(number(ENV_MAXLEN, 10_000)), give_up=number(ENV_GIVE_UP, 300.0),
                         buffer_bytes=int(number(ENV_BUFFER, 4 << 20)),
                         spill_max=int(number(ENV_SPILL_MAX, 256 << 20)))
    except UrlError as exc:
        print(f"bad {ENV_URL}: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: setattr(sup, "terminating", True))
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
