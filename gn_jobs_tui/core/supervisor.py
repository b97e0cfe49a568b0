"""The supervisor: one detached process per running job, on the job's host.

`python -m gn_jobs_tui.core.supervisor JOB_ID` (URL and prefix in the env).
It claims the queued job, starts its argv in a new session (no shell),
records pid + start time, streams output to Redis in batches (exactly once,
even across a lost connection), keeps a heartbeat, acts on kill requests
(durable key + pub/sub notice), and writes the final status. If Redis goes
away it keeps the job running, buffers output and status, and writes them
after reconnecting. If the supervisor itself crashes it records `failed`
with the traceback and ends the job rather than leave it running unseen.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import psutil
import redis

from gn_jobs_tui.core import events, procs, scripts
from gn_jobs_tui.core.jobctx import ENV_JOB_ID, ENV_PREFIX, ENV_URL
from gn_jobs_tui.core.keys import COMPLETED, DEFAULT_PREFIX, FAILED, KILLED, LOST, RUNNING
from gn_jobs_tui.core.model import to_text
from gn_jobs_tui.core.store import Store, connect

T = TypeVar("T")
ENV_HEARTBEAT = "GN_JOBS_HEARTBEAT"
ENV_GRACE = "GN_JOBS_KILL_GRACE"
ENV_MAXLEN = "GN_JOBS_OUTPUT_MAXLEN"
LINE_MAX = 4096
BATCH_LINES = 2000
FLUSH_INTERVAL = 0.1
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor[{os.getpid()}] {msg}",
          file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, url: str, prefix: str, job_id: str, *, heartbeat: float = 2.0,
                 grace: float = 5.0, maxlen: int = 10_000) -> None:
        self.url, self.job_id = url, job_id
        self.store = Store(connect(url, name="gn-jobs-supervisor"), prefix)
        self.keys = self.store.keys
        self.heartbeat, self.grace, self.maxlen = heartbeat, grace, maxlen
        self._append = self.store.r.register_script(scripts.APPEND_OUTPUT)
        self._claim = self.store.r.register_script(scripts.CLAIM)
        self.lines: deque[tuple[int, str, str]] = deque()
        self._seq = 0
        self._seq_lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.group: procs.JobProcesses | None = None
        self.kill_requested = False
        self.kill_sent_at: float | None = None
        self.killed_hard = False
        self.traceback_lines: list[str] = []
        self._in_tb = False
        self.last_traceback: str | None = None
        self.connected = True
        self._pubsub: Any = None
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time():.3f}"

    # -- redis with patience -------------------------------------------------
    def _try(self, fn: Callable[[], T]) -> T | None:
        """Run a Redis call; on a connection error note it and return None."""
        try:
            result = fn()
        except REDIS_ERRORS as exc:
            if self.connected:
                log(f"redis unavailable, buffering: {type(exc).__name__}")
            self.connected = False
            self._pubsub = None
            return None
        if not self.connected:
            log("redis reachable again")
        self.connected = True
        return result

    def _must(self, fn: Callable[[], T], what: str, patience: float = 3600.0) -> T:
        """Retry a Redis call with backoff until it succeeds (final writes)."""
        delay, deadline = 0.05, time.monotonic() + patience
        while True:
            result = self._try(fn)
            if self.connected:
                return result  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise RuntimeError(f"gave up writing {what}: redis unreachable for {patience:.0f}s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    def _update(self, what: str, **fields: Any) -> None:
        self._must(lambda: self.store.update(self.job_id, what, **fields), what)

    # -- output --------------------------------------------------------------
    def _reader(self, pipe: Any, stream: str) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if len(line) > LINE_MAX:
                line = line[:LINE_MAX] + "…[line truncated]"
            self._watch_traceback(line)
            with self._seq_lock:
                self._seq += 1
                self.lines.append((self._seq, stream, line))
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

    def flush_output(self) -> bool:
        """Send buffered lines (up to one batch); True when the buffer is empty."""
        if not self.lines:
            return True
        batch = [self.lines[i] for i in range(min(BATCH_LINES, len(self.lines)))]
        args: list[Any] = [batch[0][0], self.maxlen, self.keys.events_channel,
                           events.encode(self.job_id, "output")]
        for _, stream, line in batch:
            args.extend((stream, line))
        keys = [self.keys.job(self.job_id), self.keys.output(self.job_id)]
        if self._try(lambda: self._append(keys=keys, args=args)) is None and not self.connected:
            return False
        for _ in batch:
            self.lines.popleft()
        return not self.lines

    # -- control -------------------------------------------------------------
    def _listen(self) -> None:
        """Non-blocking look at the control channel (the durable key is the truth)."""
        if self._pubsub is None:
            def sub() -> Any:
                ps = self.store.r.pubsub(ignore_subscribe_messages=True)
                ps.subscribe(self.keys.control_channel)
                return ps
            self._pubsub = self._try(sub)
            if self._pubsub is None:
                return
            self._check_kill_key()  # anything requested while we were away
        while True:
            msg = self._try(lambda: self._pubsub.get_message(timeout=0.0))
            if not msg:
                return
            try:
                data = json.loads(msg["data"])
            except (ValueError, TypeError, KeyError):
                continue
            if isinstance(data, dict) and data.get("job_id") == self.job_id and data.get("cmd") == "kill":
                self.kill_requested = True

    def _check_kill_key(self) -> None:
        if self._try(lambda: self.store.r.exists(self.keys.kill_request(self.job_id))):
            self.kill_requested = True

    def _beat(self) -> None:
        def beat() -> None:
            with self.store.r.pipeline(transaction=False) as pipe:
                pipe.set(self.keys.heartbeat(self.job_id), self.identity,
                         px=int(self.heartbeat * 2000))
                pipe.hget(self.keys.job(self.job_id), "status")
                pipe.exists(self.keys.kill_request(self.job_id))
                _, status, kill = pipe.execute()
            if kill:
                self.kill_requested = True
            if to_text(status) == LOST:
                # A reader marked us lost while Redis was away: we are alive.
                self.store.update(self.job_id, "status", status=RUNNING,
                                  message="supervisor reconnected")
        self._try(beat)

    def _signal_job(self, sig: int) -> bool:
        """Signal the job's processes, but only if the recorded identity matches."""
        assert self.proc is not None and self.group is not None
        recorded = self._try(lambda: self.store.r.hmget(self.keys.job(self.job_id),
                                                        ["pid", "pid_started"]))
        if recorded is not None:
            try:
                pid, started = int(recorded[0]), float(recorded[1])
            except (TypeError, ValueError):
                pid, started = 0, None
            leader_alive = self.proc.poll() is None
            if leader_alive and not procs.same_process(pid, started):
                log(f"recorded pid {pid} start time does not match the live process: not signalling")
                self._update("error", error="kill refused: recorded pid/start time do not match "
                             "the running process (pid reused?)")
                return False
        self.group.signal_all(sig)
        return True

    def _handle_kill(self) -> None:
        if not self.kill_requested or self.proc is None:
            return
        now = time.monotonic()
        if self.kill_sent_at is None:
            log("kill requested: SIGTERM to the job's process group")
            if self._signal_job(signal.SIGTERM):
                self.kill_sent_at = now
            else:
                self.kill_requested = False
                self._try(lambda: self.store.r.delete(self.keys.kill_request(self.job_id)))
        elif not self.killed_hard and now - self.kill_sent_at >= self.grace:
            log("grace period over: SIGKILL")
            self._signal_job(signal.SIGKILL)
            self.killed_hard = True

    # -- life cycle ----------------------------------------------------------
    def run(self) -> int:
        try:
            return self._run()
        except Exception:  # noqa: BLE001 - recorded as the job's failure, then re-raised
            text = traceback.format_exc()
            log(text)
            if self.group is not None:
                self.group.signal_all(signal.SIGKILL)
            try:
                self.store.update(self.job_id, "status", status=FAILED, finished=time.time(),
                                  error=f"supervisor crashed:\n{text[-4000:]}",
                                  message="supervisor crashed")
                self.store.r.delete(self.keys.heartbeat(self.job_id))
            except REDIS_ERRORS as exc:
                log(f"could not record the crash: {exc}")
            raise

    def _run(self) -> int:
        claimed = self._must(lambda: self._claim(
            keys=[self.keys.job(self.job_id), self.keys.kill_request(self.job_id)],
            args=[self.identity]), "claim")
        if claimed == 0:
            log(f"job {self.job_id} is not queued or already claimed; nothing to do")
            return 0
        if claimed == 2:
            self._finish(KILLED, None, "killed before it started")
            return 0
        raw = self._must(lambda: self.store.r.hget(self.keys.job(self.job_id), "command"), "read")
        try:
            argv = json.loads(raw)
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ValueError("command is not a non-empty JSON list of strings")
        except (TypeError, ValueError) as exc:
            self._finish(FAILED, None, "bad command", error=f"cannot start: {exc}")
            return 0
        env = dict(os.environ)
        env.update({ENV_JOB_ID: self.job_id, "PYTHONUNBUFFERED": "1"})
        procs.become_subreaper()
        self._beat()
        try:
            # argv list, no shell; a new session = its own process group.
            self.proc = subprocess.Popen(  # noqa: S603
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=env, preexec_fn=procs.die_with_parent,  # noqa: PLW1509
            )
        except OSError as exc:
            self._finish(FAILED, None, "could not start", error=f"cannot start {argv[0]!r}: {exc}")
            return 0
        self.group = procs.JobProcesses(self.proc.pid, psutil.Process())
        started_ct = procs.start_time(self.proc.pid)
        self._update("status", status=RUNNING, pid=self.proc.pid, pid_started=started_ct or 0.0,
                     host=socket.gethostname(), started=time.time(), heartbeat=self.heartbeat,
                     supervisor_pid=os.getpid())
        readers = [threading.Thread(target=self._reader, args=(p, s), daemon=True)
                   for p, s in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for t in readers:
            t.start()
        last_beat = last_flush = time.monotonic()
        exited_at: float | None = None
        while True:
            self._listen()
            now = time.monotonic()
            if now - last_beat >= self.heartbeat / 2:
                self._beat()
                self.group.refresh()
                last_beat = now
            self._handle_kill()
            if exited_at is None and self.proc.poll() is not None:
                exited_at = now
            # A grandchild holding the pipes open must not keep us waiting forever.
            done = exited_at is not None and (
                not any(t.is_alive() for t in readers) or now - exited_at > 2.0)
            if done or now - last_flush >= FLUSH_INTERVAL or len(self.lines) >= BATCH_LINES:
                self.flush_output()
                last_flush = now
            if done:
                break
            time.sleep(0.02)
        rc = self.proc.returncode
        if self.kill_requested and self.kill_sent_at is not None:
            # Anything the job left behind in its group goes too.
            self.group.signal_all(signal.SIGKILL)
            self.group.wait_gone(2.0)
        self.group.reap()
        while not self.flush_output() or self.lines:
            if not self.connected:
                time.sleep(0.2)
        if self.kill_requested and self.kill_sent_at is not None:
            sig = "SIGKILL" if self.killed_hard else "SIGTERM"
            self._finish(KILLED, rc, f"killed ({sig})", kill_acked=time.time())
        elif rc == 0:
            extra = {"error": self.last_traceback} if self.last_traceback else {}
            self._finish(COMPLETED, rc, "exited 0", **extra)
        else:
            self._finish(FAILED, rc, f"exited with code {rc}", default_error=f"exited with code {rc}")
        return 0

    def _finish(self, status: str, rc: int | None, message: str, default_error: str = "",
                **extra: Any) -> None:
        fields: dict[str, Any] = {"status": status, "finished": time.time(), **extra}
        if rc is not None:
            fields["exit_code"] = rc
        raw_msg, raw_err = self._must(lambda: self.store.r.hmget(
            self.keys.job(self.job_id), ["message", "error"]), "read")
        current = to_text(raw_msg) or ""
        if default_error:
            # A traceback we saw, else what the job itself said, else how it ended.
            fields["error"] = self.last_traceback or to_text(raw_err) or default_error
        # The job's own last word is kept; ours says how it ended.
        if status == COMPLETED:
            fields["message"] = current or message
        elif current and status == FAILED:
            fields["message"] = f"{current} [{message}]"  # the job's own reason first
        elif current and status == KILLED:
            fields["message"] = f"{message}: {current}"  # how it ended, then where it was
        else:
            fields["message"] = message
        self._update("status", **fields)
        self._must(lambda: self.store.r.delete(self.keys.heartbeat(self.job_id),
                                               self.keys.kill_request(self.job_id)), "cleanup")
        log(f"job {self.job_id} {status} (exit code {rc})")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gn_jobs_tui.core.supervisor JOB_ID", file=sys.stderr)
        return 2
    url = os.environ.get(ENV_URL)
    if not url:
        print(f"{ENV_URL} is not set", file=sys.stderr)
        return 2
    sup = Supervisor(url, os.environ.get(ENV_PREFIX, DEFAULT_PREFIX), args[0],
                     heartbeat=float(os.environ.get(ENV_HEARTBEAT, "2")),
                     grace=float(os.environ.get(ENV_GRACE, "5")),
                     maxlen=int(os.environ.get(ENV_MAXLEN, "10000")))
    signal.signal(signal.SIGTERM, lambda *_: sup.__setattr__("kill_requested", True))
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
