"""Private servers for fault tests: started like the product's own, ended fast.

`EmbeddedServer.stop()` (SHUTDOWN, then pings) takes seconds: redis-py retries a
refused connection. A test server is ended with SIGKILL and waited for, so
nothing outlives the test, and its stale socket is removed so that a restart
(`ensure()`) does not wait out those retries either.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess

import psutil

from gn_jobs_tui.core.server import EmbeddedServer, find_binary
from tests.conftest import wait_for


def kill_server(srv: EmbeddedServer) -> None:
    pid = srv.pid()
    if pid is None or not srv.ping():
        return
    try:
        proc = psutil.Process(pid)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE,
                 timeout=10, what="the server to end")
    except psutil.NoSuchProcess:
        pass  # ended already
    srv.socket.unlink(missing_ok=True)


@functools.cache
def binary_major() -> int:
    """The major version of the server binary the tests start (6 for Redis 6.2, 8 for Valkey 8)."""
    out = subprocess.run([find_binary(), "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    found = re.search(r"v=(\d+)", out)
    return int(found.group(1)) if found else 0


class ArgServer(EmbeddedServer):
    """The embedded server, started with extra arguments (e.g. a slow load for LOADING).

    A test may move `dir` (to make BGSAVE fail: MISCONF): from 7.0 that needs
    protected configs enabled; 6.2 has no such option and allows it anyway.
    """

    extra: tuple[str, ...] = ()

    def _start(self) -> None:
        protected = ("--enable-protected-configs", "yes") if binary_major() >= 7 else ()
        argv = [find_binary(), "--port", "0", "--unixsocket", str(self.socket),
                "--unixsocketperm", "700", "--dir", str(self.directory), "--appendonly", "yes",
                "--save", "", "--daemonize", "yes", "--pidfile", str(self.pidfile),
                "--logfile", str(self.directory / "server.log"), "--maxmemory-policy", "noeviction",
                *protected, *self.extra]
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=True)
