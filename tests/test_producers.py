"""Other producers' jobs, in their exact shapes, through the CLI and the console.

gn-uploader's own job code and GeneNetwork2 write jobs differently from us
(tests/producers.py); the dialect table must read each as its author meant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp
from tests.conftest import wait_for
from tests.helpers import run_async
from tests.producers import gn2_job, gn2_manager, gn_uploader_job


def gn(config: Config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", config.url,
                           "--prefix", config.prefix, *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    return r


def test_gn_uploader_job_is_listed_shown_and_logged(config: Config, store: Store) -> None:
    prefix = config.prefix
    child = f"{prefix}:jobs:c1:children:0"
    job_id = gn_uploader_job(store.r, prefix, user="alice",
                             children=f"{child},{prefix}:jobs:c1:children:1")
    store.r.xadd(child, {"kind": "start", "files": '["a.tsv"]'})
    listed = json.loads(ok(gn(config, "list", "--json")).stdout)
    [job] = [j for j in listed if j["job_id"] == job_id]
    assert job["user_id"] == "alice"  # from the index it was found in
    assert job["job_type"] == "qc-rqtl2" and job["status"] == "running"
    assert job["progress"] == 31.0 and job["damage"] == []
    assert [j["job_id"] for j in json.loads(ok(gn(config, "list", "--user", "alice",
                                                  "--json")).stdout)] == [job_id]
    shown = json.loads(ok(gn(config, "show", job_id[:8], "--json")).stdout)
    assert shown["job_id"] == job_id
    assert shown["children"] == [child, f"{prefix}:jobs:c1:children:1"]
    assert shown["command_text"].endswith("'bundle with spaces.zip'")
    assert [c["type"] for c in shown["children_state"]] == ["stream", "none"]
    logs = ok(gn(config, "logs", job_id[:8])).stdout.splitlines()
    assert logs == ["reading bundle", "checking genotypes"]
    text = ok(gn(config, "show", job_id)).stdout
    assert "bundle with spaces.zip" in text and "checking genotypes" in text


def test_gn2_jobs_without_any_index_and_their_verdict(config: Config, server) -> None:
    gn2 = Config(config.url, f"gn2{uuid.uuid4().hex[:6]}")
    r = Store.from_url(gn2.url, gn2.prefix).r
    failed = gn2_job(r, prefix=gn2.prefix, stdout="step 1\nstep 2\n",
                     stderr="Traceback (most recent call last):\nValueError: bad trait\n")
    passed = gn2_job(r, prefix=gn2.prefix, verdict="success", return_code="0")
    running = gn2_job(r, prefix=gn2.prefix, status="running", verdict=None, return_code=None)
    gn2_manager(r, gn2.prefix)
    listed = {j["job_id"]: j for j in json.loads(ok(gn(gn2, "list", "--json")).stdout)}
    assert set(listed) == {failed, passed, running}  # the manager hash is not a job
    assert listed[failed]["status"] == "failed" and listed[failed]["exit_code"] == 2
    assert listed[passed]["status"] == "completed" and listed[running]["status"] == "running"
    shown = json.loads(ok(gn(gn2, "show", failed, "--json")).stdout)
    assert shown["verdict"].startswith("failed")
    assert ok(gn(gn2, "logs", failed)).stdout.splitlines() == [
        "step 1", "step 2", "Traceback (most recent call last):", "ValueError: bad trait"]
    assert ok(gn(gn2, "list", "--status", "failed", "--json")).stdout.count(failed) == 1


def test_children_in_a_redis_set_or_list(config: Config, store: Store) -> None:
    p = config.prefix
    for kind in ("set", "list"):
        job_id = gn_uploader_job(store.r, p, user="bob", children=f"{p}:kids:{kind}")
        names = [f"{p}:jobs:{job_id}:children:{i}" for i in range(3)]
        if kind == "set":
            store.r.sadd(f"{p}:kids:{kind}", *names)
        else:
            store.r.rpush(f"{p}:kids:{kind}", *names)
        job = store.get_job(job_id)
        assert sorted(job.children) == names


def test_console_reads_every_source_and_keeps_them_across_reload(config: Config,
                                                                  store: Store) -> None:
    p = config.prefix
    ours = launch(store, config, "sleep", {"seconds": "0"}, user="carol")
    uploader = gn_uploader_job(store.r, p, user="alice", status="success", percent="100")
    unindexed = gn2_job(store.r, prefix=p)
    gn2_manager(store.r, p)

    async def go() -> None:
        app = JobsApp(config, poll_interval=0.5)
        async with app.run_test(size=(120, 30)) as pilot:
            deadline = time.monotonic() + 20
            while not (app.loaded_all and {ours, uploader, unindexed} <= app.index.jobs.keys()):
                assert time.monotonic() < deadline, "every source loaded"
                await pilot.pause(0.05)
            assert "manager" not in app.index.jobs
            assert app.index.jobs[uploader].user_id == "alice"
            assert app.index.jobs[uploader].effective_status == "completed"
            assert app.index.jobs[unindexed].effective_status == "failed"
            # A new unindexed job appears within a poll or two, with no event at all.
            later = gn2_job(store.r, prefix=p, status="running", verdict=None, return_code=None)
            deadline = time.monotonic() + 3
            while later not in app.index.jobs:
                assert time.monotonic() < deadline, "new unindexed job within a poll"
                await pilot.pause(0.05)
            # Ctrl+R: the table never loses them while everything is read again.
            app.feed.request_reload()
            t = time.monotonic()
            while time.monotonic() - t < 2:
                assert {uploader, unindexed, later} <= app.index.jobs.keys()
                await pilot.pause(0.02)

    run_async(go())
    wait_for(lambda: store.get_job(ours).is_terminal, what="our job ends")
