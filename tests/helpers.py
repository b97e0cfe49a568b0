"""Shared helpers for tests that run real jobs."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import textwrap
from collections.abc import Coroutine
from typing import Any, TypeVar

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id

T = TypeVar("T")


def run_command(store: Store, config: Config, argv: list[str], *, user: str = "tester",
                job_type: str = "custom") -> str:
    """Start an arbitrary argv under a real supervisor (tests only: the
    launcher itself accepts registered types only)."""
    return start_job(store, config, job_fields(new_job_id(), job_type, user, argv, {}))


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def run_async(coro: Coroutine[Any, Any, T], grace: float = 10.0) -> T:
    """asyncio.run, except that a task still running after the test fails it by name.

    asyncio.run waits without bound for tasks it cancels at the end: one that
    will not end (a leaked listener, a swallowed cancel) would hang the run
    until pytest-timeout, with no word of which task it was.
    """
    async def main() -> T:
        try:
            return await coro
        finally:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            pending = (await asyncio.wait(rest, timeout=grace))[1] if rest else set()
            if pending:
                out = io.StringIO()
                for task in pending:
                    task.print_stack(file=out)
                raise AssertionError(f"{len(pending)} task(s) outlived the test, cancelled "
                                     f"{grace:.0f} s ago:\n{out.getvalue()}")

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def stubborn_tree() -> list[str]:
    """A process that ignores SIGTERM and starts a child that starts a grandchild,
    all ignoring SIGTERM; each prints its pid as JSON."""
    code = (
        "import json, os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "level = int(sys.argv[1]) if len(sys.argv) > 1 else 0\n"
        "if level < 2:\n"
        "    subprocess.Popen([sys.executable, '-c', 'CODE = %r\\n' % CODE + CODE, str(level + 1)])\n"
        "print(json.dumps({'pid': os.getpid(), 'level': level}), flush=True)\n"
        "while True:\n"
        "    time.sleep(0.1)\n"
    )
    full = f"CODE = {code!r}\n" + code
    return [sys.executable, "-c", full]


def pids_from_output(store: Store, job_id: str) -> list[int]:
    out = []
    for _id, fields in store.r.xrange(store.keys.output(job_id)):
        line = fields.get(b"line", b"").decode()
        if line.startswith("{"):
            out.append(json.loads(line)["pid"])
    return out


class TcpProxy:
    """A TCP port in front of a server's unix socket (the embedded server has no port).

    Lets tests use redis:// and rediss:// URLs, and see what a client does when
    the other end speaks plain Redis. `close()` stops it and every connection.
    """

    def __init__(self, unix_path: str) -> None:
        import socket
        import threading

        self.unix_path = unix_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.unix_path)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # the other side closed: the pair is done
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    continue

    def close(self) -> None:
        """Shut down before closing: close() alone wakes no thread blocked in accept/recv."""
        import socket

        self._stop.set()
        for s in (self.listener, *self.conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected (the listener) or already closed
            s.close()
