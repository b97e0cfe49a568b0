"""Faults: the server goes away mid-job, notices get lost, the console dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp
from tests.conftest import wait_for
from tests.helpers import python, run_async, run_command


def reconnecting(store: Store, fn, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (OSError, Exception) as exc:  # noqa: BLE001 - the server is coming back
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not come back: {exc}") from exc
            time.sleep(0.1)


def test_server_down_for_5s_mid_job_loses_no_line(private: EmbeddedServer) -> None:
    config = Config(private.url, "fault")
    store = Store.from_url(config.url, config.prefix)
    n = 1500  # 150 lines/s for 10 s
    job_id = run_command(store, config, python(
        f"import time\nfor i in range({n}):\n    print(f'line {{i}}', flush=True)\n"
        "    time.sleep(1/150)\n"))
    wait_for(lambda: store.r.xlen(store.keys.output(job_id)) > 150, what="output flowing")

    async def console_sees_it() -> list[bool]:
        app = JobsApp(config, poll_interval=1.0)
        states: list[bool] = []
        async with app.run_test(size=(80, 24)) as pilot:
            while not app.loaded_all:
                await pilot.pause(0.05)
            private.stop()
            t = time.monotonic()
            while time.monotonic() - t < 5:
                if app.link_state:
                    states.append(app.link_state[0])
                await pilot.pause(0.1)
            private.ensure()
            t = time.monotonic()
            while not (app.link_state and app.link_state[0]) and time.monotonic() - t < 20:
                await pilot.pause(0.1)
            states.append(app.link_state[0])
        return states

    states = run_async(console_sees_it())
    assert False in states and states[-1] is True  # shown disconnected, then recovered
    store = Store.from_url(config.url, config.prefix)
    job = wait_for(lambda: reconnecting(store, lambda: store.get_job(job_id)).is_terminal
                   and store.get_job(job_id), timeout=60, what="job to finish")
    assert job.status == "completed"
    lines = [f[b"line"].decode() for _, f in store.r.xrange(store.keys.output(job_id))]
    assert lines == [f"line {i}" for i in range(n)]  # every line, in order, exactly once
    seqs = [int(f[b"n"]) for _, f in store.r.xrange(store.keys.output(job_id))]
    assert seqs == list(range(1, n + 1))


def test_kill_request_whose_notice_was_lost_is_still_acted_on(private: EmbeddedServer) -> None:
    config = Config(private.url, "fault")
    store = Store.from_url(config.url, config.prefix)
    job_id = launch(store, config, "sleep", {"seconds": "60"})
    wait_for(lambda: store.get_job(job_id).status == "running", what="running")
    # The supervisor's connections drop (a network blip) ...
    for client in store.r.client_list():
        if client.get("name") == "gn-jobs-supervisor":
            store.r.client_kill_filter(_id=client["id"])
    # ... and the request is recorded without any notice reaching it.
    store.r.set(store.keys.kill_request(job_id), json.dumps({"at": time.time()}))
    job = wait_for(lambda: (j := store.get_job(job_id)).is_terminal and j, timeout=20,
                   what="killed from the durable request")
    assert job.status == "killed"


def test_console_killed_with_sigkill_jobs_complete(config: Config, store: Store) -> None:
    code = (
        "import asyncio, sys\n"
        "from gn_jobs_tui.core.config import Config\n"
        "from gn_jobs_tui.core.launcher import launch\n"
        "from gn_jobs_tui.core.store import Store\n"
        "from gn_jobs_tui.ui.app import JobsApp\n"
        f"config = Config({config.url!r}, {config.prefix!r})\n"
        "async def main():\n"
        "    app = JobsApp(config)\n"
        "    async with app.run_test() as pilot:\n"
        "        s = Store.from_url(config.url, config.prefix)\n"
        "        for i in range(3):\n"
        "            launch(s, config, 'sleep', {'seconds': '2'}, user='u')\n"
        "        print('ready', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n")
    console = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env=os.environ.copy())
    assert console.stdout.readline().strip() == "ready"
    os.kill(console.pid, signal.SIGKILL)
    console.wait(10)
    jobs = wait_for(lambda: (js := [j for p in store.iter_jobs() for j in p]) and
                    len(js) == 3 and all(j.is_terminal for j in js) and js, timeout=20,
                    what="all jobs to finish without their console")
    assert {j.status for j in jobs} == {"completed"}

    async def new_console() -> set[str]:
        app = JobsApp(config)
        async with app.run_test() as pilot:
            while not app.loaded_all or len(app.index.jobs) < 3:
                await pilot.pause(0.05)
            return {j.effective_status for j in app.index.jobs.values()}

    assert run_async(new_console()) == {"completed"}


def test_lost_job_can_be_retried(config: Config, store: Store) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "30"}, user="ops")
    job = wait_for(lambda: (j := store.get_job(job_id)) and j.status == "running" and
                   j.extra.get("supervisor_pid") and j, what="running")
    os.kill(int(job.extra["supervisor_pid"]), signal.SIGKILL)
    wait_for(lambda: store.get_job(job_id).effective_status == "lost", what="lost")
    outcome = control.retry(store, config, job_id)
    new = wait_for(lambda: (j := store.get_job(outcome.job_id)) and j.status == "running" and j,
                   what="retry running")
    assert new.retry_of == job_id and new.attempt == 2
    control.kill(store, new.job_id)
