"""Test fixtures: a real throw-away server (the embedded binary), real processes.

One server per test session, started exactly as `gn-jobs` starts its own;
each test gets its own key prefix, so tests never see each other's keys.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store

# Fast supervision for tests: spawned supervisors inherit these.
HEARTBEAT = 0.5
os.environ["GN_JOBS_HEARTBEAT"] = str(HEARTBEAT)
os.environ["GN_JOBS_KILL_GRACE"] = "1"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    base = tmp_path_factory.mktemp("gj")
    os.environ["XDG_STATE_HOME"] = str(base / "state")
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
    s.r.close()


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
