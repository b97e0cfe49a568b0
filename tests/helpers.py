"""Shared helpers for tests that run real jobs."""

from __future__ import annotations

import json
import sys
import textwrap

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id


def run_command(store: Store, config: Config, argv: list[str], *, user: str = "tester",
                job_type: str = "custom") -> str:
    """Start an arbitrary argv under a real supervisor (tests only: the
    launcher itself accepts registered types only)."""
    return start_job(store, config, job_fields(new_job_id(), job_type, user, argv, {}))


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]




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
        self._stop.set()
        self.listener.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                continue
