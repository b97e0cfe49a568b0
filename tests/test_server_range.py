"""The ACL users people really grant, and what the console and CLI do with each.

Each shape is a real Redis ACL user on the test server. What a user may not
do is a degradation shown once (`server status`, the console's top bar),
never a failure and never a reload loop. The whole suite also runs against a
Redis 6.2 server in CI (GN_JOBS_SERVER_BIN), which has no EVAL_RO, and so
takes the EVALSHA path everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp
from gn_jobs_tui.ui.feed import Feed
from tests.conftest import wait_for
from tests.helpers import run_async


def gn(url: str, prefix: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", url, "--prefix",
                           prefix, *args], capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())


@pytest.fixture
def acl_user(server: EmbeddedServer) -> Iterator:
    """Make ACL users of a given shape; all deleted at the end."""
    admin = server.client()
    made: list[str] = []

    def make(*rules: str) -> str:
        name, password = f"u{uuid.uuid4().hex[:8]}", "Pw-" + uuid.uuid4().hex
        admin.execute_command("ACL", "SETUSER", name, "reset", "resetchannels", "on",
                              f">{password}", *rules)
        made.append(name)
        return f"unix://{name}@{server.socket}?password={password}"

    yield make
    for name in made:
        admin.execute_command("ACL", "DELUSER", name)


def finished_job(store: Store, config: Config) -> str:
    job_id = launch(store, config, "sleep", {"seconds": "0"}, user="ro")
    wait_for(lambda: store.get_job(job_id).is_terminal, what="finish")
    return job_id


def test_read_grant_without_scripting_lists_with_pipelines(acl_user, config: Config,
                                                           store: Store) -> None:
    """`+@read` without `@scripting`: the usual grant. Reads fall back to pipelines."""
    url = acl_user("~*", "&*", "+@read", "+@connection", "+@pubsub", "-@scripting")
    job_id = finished_job(store, config)
    listed = json.loads(gn(url, config.prefix, "list", "--json").stdout)
    assert [j["job_id"] for j in listed] == [job_id] and listed[0]["status"] == "completed"
    assert gn(url, config.prefix, "logs", job_id[:8]).stdout.strip().splitlines()[-1] == "done"
    assert gn(url, config.prefix, "show", job_id).returncode == 0
    status = gn(url, config.prefix, "server", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert "reads without scripts" in json.loads(status.stdout)["degradations"]

    async def console() -> tuple[set[str], tuple[str, ...]]:
        app = JobsApp(Config(url, config.prefix, read_only=True))
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 15
            while not (app.loaded_all and app.index.jobs) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            return set(app.index.jobs), app.feed.notes

    jobs, notes = run_async(console())
    assert jobs == {job_id} and "reads without scripts" in notes


def test_channels_limited_to_the_prefix_mean_no_keyspace_events_and_no_loop(
        acl_user, config: Config, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user whose channels are `&P:*`: keyspace PSUBSCRIBE is refused; events still flow."""
    url = acl_user("~*", f"&{config.prefix}:*", "+@read", "+@connection", "+@pubsub",
                   "+@scripting")
    job_id = finished_job(store, config)
    loads = {"n": 0}
    real_load = Feed.load

    async def counting(self: Feed) -> None:
        loads["n"] += 1
        await real_load(self)

    monkeypatch.setattr(Feed, "load", counting)

    async def console() -> tuple[int, bool, tuple[str, ...], str | None]:
        app = JobsApp(Config(url, config.prefix, read_only=True), poll_interval=0.3)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 15
            while not (app.loaded_all and job_id in app.index.jobs) and \
                    time.monotonic() < deadline:
                await pilot.pause(0.05)
            # Our own events still arrive: a change made elsewhere shows without a poll.
            store.update(job_id, "fields", message="changed elsewhere")
            t = time.monotonic()
            while app.index.jobs[job_id].message != "changed elsewhere" and \
                    time.monotonic() - t < 5:
                await pilot.pause(0.05)
            await pilot.pause(2.0)  # long enough for a loop to show itself
            return (loads["n"], bool(app.link_state and app.link_state[0]), app.feed.notes,
                    app.index.jobs[job_id].message)

    n, ok, notes, message = run_async(console())
    assert n == 1 and ok  # loaded once, connected: no reload loop
    assert "no keyspace events" in notes and message == "changed elsewhere"


def test_read_only_user_without_read_only_flag_still_lists_lost_jobs(
        acl_user, config: Config, store: Store) -> None:
    """The write-back of `lost` is refused by Redis: the job is shown lost, nothing fails."""
    url = acl_user("~*", "&*", "+@read", "+@connection", "+@pubsub", "+@scripting")
    job_id = finished_job(store, config)
    key = store.keys.job(job_id)
    # Its supervisor died: running, filed as running, its heartbeat lapsed long ago.
    store.r.hset(key, mapping={"status": "running", "heartbeat": "0.5"})
    store._run([*store.keys.status_moves(job_id, "running", time.time()),
                ("ZADD", store.keys.heartbeats, repr(time.time() - 60), job_id)])
    listed = gn(url, config.prefix, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["status"] == "lost"
    lost = gn(url, config.prefix, "list", "--status", "lost", "--json")
    assert [j["job_id"] for j in json.loads(lost.stdout)] == [job_id]
    assert store.r.hget(key, "status") == b"running"  # not written: the user may not

    async def console() -> str:
        app = JobsApp(Config(url, config.prefix))  # no --read-only: the server says no
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 15
            while not (app.loaded_all and job_id in app.index.jobs) and \
                    time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            assert app.link_state and app.link_state[0]
            return app.index.jobs[job_id].effective_status

    assert run_async(console()) == "lost"


def test_eviction_policy_and_full_memory_are_warned(tmp_path, monkeypatch) -> None:
    """A policy that can evict jobs, and memory above 90% of maxmemory: said out loud."""
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    try:
        admin = srv.client()
        url, prefix = srv.url, "health"
        status = json.loads(gn(url, prefix, "server", "status", "--json").stdout)
        assert status["maxmemory_policy"] == "noeviction" and status["warnings"] == []
        admin.config_set("maxmemory-policy", "allkeys-lru")
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(int(used / 0.95)))
        status = json.loads(gn(url, prefix, "server", "status", "--json").stdout)
        assert any("allkeys-lru can evict" in w for w in status["warnings"])
        assert any("of maxmemory" in w for w in status["warnings"])

        async def console() -> tuple[str, ...]:
            app = JobsApp(Config(url, prefix))
            async with app.run_test(size=(100, 30)) as pilot:
                deadline = time.monotonic() + 10
                while not app.feed.notes and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                return app.feed.notes

        notes = run_async(console())
        assert any("can evict" in n for n in notes)
        admin.config_set("maxmemory", "0")
    finally:
        srv.stop()
