"""Read-only mode holds at every layer on its own, not only in the CLI.

Each layer is tested without the ones above it: the store refuses writes by
itself, and a read-only console that sees a lost job leaves it as it is.
"""

from __future__ import annotations

import time

import pytest

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import ReadOnlyError, Store, job_fields
from gn_jobs_tui.ui.app import JobsApp
from tests.helpers import run_async


def test_the_store_refuses_every_write_on_its_own(config: Config, store: Store) -> None:
    job_id = "ab" * 16
    store.create_job(job_fields(job_id, "sleep", "u", ["true"], {}))
    before = store.r.hgetall(store.keys.job(job_id))
    ro = Store.from_url(config.url, config.prefix, read_only=True)
    writes = {
        "create": lambda: ro.create_job(job_fields("cd" * 16, "sleep", "u", ["true"], {})),
        "create once": lambda: ro.create_if_absent(job_fields("ef" * 16, "sleep", "u", [], {})),
        "update": lambda: ro.update(job_id, "status", status="failed"),
        "kill": lambda: ro.request_kill(job_id),
        "audit": lambda: ro.audit("kill", job_id),
        "cleanup": lambda: ro.cleanup(0),
    }
    for name, write in writes.items():
        with pytest.raises(ReadOnlyError):
            write()
        assert store.r.hgetall(store.keys.job(job_id)) == before, name
    assert not store.r.exists(store.keys.job("cd" * 16), store.keys.job("ef" * 16),
                              store.keys.kill_request(job_id))
    # A lapsed heartbeat is shown lost, never written lost, by a read-only store.
    store._run([("HSET", store.keys.job(job_id), "status", "running", "heartbeat", "0.5")])
    job = ro.get_job(job_id)
    assert job.is_lost and ro.mark_lost(job) is False
    assert store.r.hget(store.keys.job(job_id), "status") == b"running"


def test_a_read_only_console_shows_a_lost_job_and_writes_nothing(config: Config,
                                                                 store: Store) -> None:
    job_id = "12" * 16
    store.create_job(job_fields(job_id, "sleep", "u", ["true"], {}))
    store._run([("HSET", store.keys.job(job_id), "status", "running", "heartbeat", "0.5"),
                *store.keys.status_moves(job_id, "running", time.time()),
                ("ZADD", store.keys.heartbeats, repr(time.time() - 30), job_id)])
    before = store.r.hgetall(store.keys.job(job_id))
    writes_before = store.r.info("commandstats")

    async def go() -> str:
        app = JobsApp(Config(config.url, config.prefix, read_only=True), poll_interval=0.2)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 15
            while not (app.loaded_all and job_id in app.index.jobs):
                assert time.monotonic() < deadline
                await pilot.pause(0.05)
            await pilot.pause(1.0)  # several polls, each of which sees the lapsed heartbeat
            return app.index.jobs[job_id].effective_status

    assert run_async(go()) == "lost"
    assert store.r.hgetall(store.keys.job(job_id)) == before
    assert store.r.zscore(store.keys.heartbeats, job_id) is not None
    assert store.r.zscore(store.keys.status_index("lost"), job_id) is None
    after = store.r.info("commandstats")
    # The one script that writes `lost` back never ran (nor any EVAL, which it would use).
    assert after.get("cmdstat_eval", {}).get("calls", 0) == \
        writes_before.get("cmdstat_eval", {}).get("calls", 0)
