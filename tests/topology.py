"""Real multi-server topologies for tests, started from the embedded binary.

- `SentinelSet`: a primary, a replica and three sentinels (the same binary
  run with `--sentinel`), on loopback ports.
- `ClusterSet`: three primaries, each with a replica, joined with the
  binary's own `--cluster create`.

Each server is a child process of the test (not daemonised), so `close()`
(and the session's leftover check) can see it end.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from gn_jobs_tui.core.server import find_binary


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """N free loopback ports whose cluster-bus twins (port + 10000) are free too."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        port = rng.randrange(20_000, 45_000)
        if port not in ports and _bindable(port) and _bindable(port + 10_000):
            ports.append(port)
    return ports


def _cli() -> str:
    server = find_binary()
    for name in ("valkey-cli", "redis-cli"):
        candidate = os.path.join(os.path.dirname(server), name)
        if os.path.exists(candidate):
            return candidate
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no valkey-cli/redis-cli beside the server binary")


class _Servers:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int, *args: str, conf: str | None = None) -> None:
        d = self.base / str(port)
        d.mkdir(parents=True, exist_ok=True)
        argv = [find_binary()]
        if conf is not None:
            path = d / "sentinel.conf"
            path.write_text(conf)
            argv.append(str(path))
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
                 "--appendonly", "no", "--logfile", str(d / "log"), *args]
        self.procs[port] = subprocess.Popen(argv, stdin=subprocess.DEVNULL,  # noqa: S603
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_up(port)

    @staticmethod
    def client(port: int, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def wait_up(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client(port).ping()
                return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                proc = self.procs.get(port)
                if proc is not None and proc.poll() is not None:
                    log = (self.base / str(port) / "log")
                    tail = log.read_text()[-500:] if log.exists() else ""
                    raise RuntimeError(f"server on {port} exited ({proc.returncode}): {tail}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def close(self) -> None:
        for port in list(self.procs):
            self.kill(port)


class SentinelSet(_Servers):
    SERVICE = "jobs"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.primary, self.replica, *self.sentinels = free_ports(5)
        self.start(self.primary)
        self.start(self.replica, "--replicaof", "127.0.0.1", str(self.primary))
        conf = (f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 4000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n")
        for port in self.sentinels:
            self.start(port, "--sentinel", conf=conf)
        self.wait_replicated()

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}"

    def current_primary(self) -> int:
        host, port = self.client(self.sentinels[0]).execute_command(
            "SENTINEL", "get-master-addr-by-name", self.SERVICE)
        return int(port)

    def wait_replicated(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.client(self.replica).info("replication")
            if info.get("master_link_status") == "up":
                sentinel = self.client(self.sentinels[0])
                seen = sentinel.execute_command("SENTINEL", "replicas", self.SERVICE)
                if seen and all(self.client(p).ping() for p in self.sentinels):
                    return
            time.sleep(0.1)
        raise RuntimeError("the replica never synced with the primary")

    def failover(self, timeout: float = 30.0) -> int:
        """SENTINEL FAILOVER and wait for the other server to be primary; returns its port."""
        old = self.current_primary()
        self.client(self.sentinels[0]).execute_command("SENTINEL", "FAILOVER", self.SERVICE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.current_primary()
            if new != old and self.client(new).info("replication").get("role") == "master":
                return new
            time.sleep(0.1)
        raise RuntimeError("no failover happened")


class ClusterSet(_Servers):
    def __init__(self, base: Path, replicas: bool = True) -> None:
        super().__init__(base)
        self.ports = free_ports(6 if replicas else 3)
        for port in self.ports:
            self.start(port, "--cluster-enabled", "yes", "--cluster-config-file",
                       str(base / str(port) / "nodes.conf"), "--cluster-node-timeout", "2000")
        argv = [_cli(), "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas", "1" if replicas else "0", "--cluster-yes"]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
        self.wait_ok()

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def wait_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                states = [self.client(p).execute_command("CLUSTER", "INFO") for p in self.procs]
                if all(b"cluster_state:ok" in s for s in states):
                    return
            except redis.RedisError:
                pass  # a node still starting: look again
            time.sleep(0.1)
        raise RuntimeError("the cluster never became ok")

    def primaries(self) -> list[int]:
        out = []
        for port in self.procs:
            if self.client(port).info("replication").get("role") == "master":
                out.append(port)
        return out

    def replica_of(self, primary: int) -> int:
        node_id = self.client(primary).execute_command("CLUSTER", "MYID").decode()
        for port in self.procs:
            info = self.client(port).info("replication")
            if info.get("role") == "slave" and info.get("master_port") == primary:
                return port
        raise RuntimeError(f"no replica of {primary} ({node_id})")

    def failover(self, primary: int, timeout: float = 30.0) -> int:
        """CLUSTER FAILOVER on the primary's replica; returns the new primary's port."""
        replica = self.replica_of(primary)
        self.client(replica).execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client(replica).info("replication").get("role") == "master":
                self.wait_ok()
                return replica
            time.sleep(0.1)
        raise RuntimeError("no cluster failover happened")
