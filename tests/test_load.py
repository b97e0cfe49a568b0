"""Load, scaled down to fit the suite (the full runs: benchmarks/bench_load.py).

These assert counts, never times: no output line lost, no heartbeat lapse
under chatty jobs, and console polling whose cost follows changes and
active jobs, not the number of jobs stored.
"""

from __future__ import annotations

import asyncio
import sys
import time

from benchmarks.common import server_calls
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.ui.app import JobsApp
from gn_jobs_tui.ui.feed import Feed
from tests.helpers import run_async


def seed(store: Store, n: int, active: int = 0) -> None:
    with store.r.pipeline(transaction=False) as pipe:
        for i in range(n):
            f = job_fields(f"{i:032x}", "sleep", f"u{i % 7}", ["true"], {}, created=1e9 + i)
            f["status"] = "running" if i < active else "completed"
            pipe.hset(store.keys.job(f["job_id"]), mapping=f)
            pipe.zadd(store.keys.jobs_index, {f["job_id"]: 1e9 + i})
            pipe.zadd(store.keys.user_jobs(f["user_id"]), {f["job_id"]: 1e9 + i})
        pipe.execute()


def test_chatty_jobs_with_a_console_lose_no_line_and_keep_their_heartbeats(
        config: Config, store: Store) -> None:
    seed(store, 5000)
    lines, jobs = 3000, 6  # each job: 1,000 lines/s for 3 s
    code = ("import sys, time\n"
            f"for i in range({lines}):\n"
            "    sys.stdout.write(f'line {i}\\n')\n"
            "    if i % 50 == 49:\n        sys.stdout.flush(); time.sleep(0.05)\n")
    lapses = 0

    async def go() -> list[str]:
        nonlocal lapses
        app = JobsApp(config, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            while not app.loaded_all or len(app.index.jobs) < 5000:
                await pilot.pause(0.05)
            ids = [start_job(store, config, job_fields(new_job_id(), "chatty", "load",
                                                       [sys.executable, "-c", code], {}))
                   for _ in range(jobs)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = await asyncio.to_thread(lambda: [store.get_job(i) for i in ids])
                lapses += sum(j.status == "running" and j.heartbeat_alive is False for j in states)
                if all(j.is_terminal for j in states):
                    break
                await pilot.press("down")
                await pilot.pause(0.2)
            await pilot.pause(1.0)
            assert all(app.index.jobs[i].effective_status == "completed" for i in ids)
            return ids

    ids = run_async(go())
    assert lapses == 0
    for job_id in ids:
        entries = store.r.xrange(store.keys.output(job_id))
        assert [int(f[b"n"]) for _, f in entries] == list(range(1, lines + 1))
        got = [f[b"line"].decode() for _, f in entries]
        assert got == [f"line {i}" for i in range(lines)]


def running_ours(store: Store, n: int, start: int = 0) -> None:
    """N of our running jobs with live heartbeats, as supervisors keep them."""
    with store.r.pipeline(transaction=False) as pipe:
        for i in range(start, start + n):
            job_id = f"{i:032x}"
            f = job_fields(job_id, "sleep", "ops", ["true"], {}, created=1e9 + i)
            f.update(status="running", heartbeat="2", supervisor=f"h:{i}:1")
            pipe.hset(store.keys.job(job_id), mapping=f)
            pipe.zadd(store.keys.jobs_index, {job_id: 1e9 + i})
            pipe.zadd(store.keys.user_jobs("ops"), {job_id: 1e9 + i})
            pipe.set(store.keys.heartbeat(job_id), "x", ex=600)
            pipe.zadd(store.keys.heartbeats, {job_id: time.time() + 600})
        pipe.execute()


def test_commands_per_poll_do_not_grow_with_running_jobs(tmp_path) -> None:
    """10 running jobs or 2,000: the same server commands per poll (scripts' insides counted)."""
    from gn_jobs_tui.core.server import EmbeddedServer

    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    try:
        store = Store.from_url(srv.url, "poll")
        client = srv.client()

        async def per_poll() -> float:
            feed = Feed(Config(srv.url, "poll"), lambda m: None)
            await feed.store.detect()
            await feed.load()
            await feed.poll_once()  # the first poll sees what the load saw
            before = server_calls(client)
            for _ in range(5):
                await feed.poll_once()
            spent = server_calls(client) - before - 5  # INFO itself is not counted; 5 calls of it
            await feed.aclose()
            return spent / 5

        running_ours(store, 10)
        few = run_async(per_poll())
        running_ours(store, 1990, start=10)
        many = run_async(per_poll())
        assert many == few, (few, many)
    finally:
        srv.stop()


def test_polling_cost_follows_active_jobs_not_stored_jobs(server, prefix: str) -> None:
    small, big = Store.from_url(server.url, prefix + "s"), Store.from_url(server.url, prefix + "b")
    seed(small, 500, active=20)
    seed(big, 10_000, active=20)

    async def cost(store: Store) -> int:
        """Commands 20 consoles' feeds send for 5 polls each (loading excluded)."""
        feeds = [Feed(Config(server.url, store.prefix), lambda m: None) for _ in range(20)]
        for feed in feeds:
            await feed.store.detect()
            await feed.load()
        sent = {"n": 0}
        for feed in feeds:
            count_commands(feed.store.r, sent)
        for _ in range(5):
            for feed in feeds:
                await feed.poll_once()
        for feed in feeds:
            await feed.aclose()
        return sent["n"]

    spent_small = run_async(cost(small))
    spent_big = run_async(cost(big))
    # 20x the stored jobs, same active jobs: about the same cost (SCAN slices aside).
    assert spent_big < 1.5 * spent_small, (spent_small, spent_big)


def count_commands(client, sent: dict[str, int]) -> None:
    """Count every command a redis.asyncio client sends, pipelines included (client side)."""
    import redis.asyncio.client as aio

    real_execute = client.execute_command

    async def execute(*args, **kwargs):
        sent["n"] += 1
        return await real_execute(*args, **kwargs)

    client.execute_command = execute
    real_pipeline = client.pipeline

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_exec = pipe.execute

        async def run(*a, **kw):
            sent["n"] += len(pipe.command_stack)
            return await real_exec(*a, **kw)

        pipe.execute = run
        return pipe

    client.pipeline = pipeline
    assert aio  # the class we instrument
