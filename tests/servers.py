"""Private servers for fault tests: started like the product's own, ended fast.

`EmbeddedServer.stop()` (SHUTDOWN, then pings) takes seconds: redis-py retries a
refused connection. A test server is ended with SIGKILL and waited for, so
nothing outlives the test, and its stale socket is removed so that a restart
(`ensure()`) does not wait out those retries either.
"""

from __future__ import annotations

import os
import signal

import psutil

from gn_jobs_tui.core.server import EmbeddedServer
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
