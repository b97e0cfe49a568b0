"""Pilot tests of the console against the real test server and real jobs."""

from __future__ import annotations

import time

import psutil

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.ui.app import JobsApp, MainScreen
from gn_jobs_tui.ui.screens.detail import DetailScreen
from gn_jobs_tui.ui.screens.dialogs import ConfirmScreen
from gn_jobs_tui.ui.screens.launcher import LauncherScreen
from gn_jobs_tui.ui.screens.main import WRITE_ACTIONS
from tests.conftest import wait_for
from tests.helpers import run_async


async def until(pilot, predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def screen_text(app: JobsApp) -> str:
    """What is on screen, as lines of text (the compositor's strips)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def make(store: Store, n: int, user: str = "u", status: str = "completed") -> list[str]:
    ids = []
    for i in range(n):
        f = job_fields(new_job_id(), "sleep", user, ["true"], {"seconds": 0, "exit_code": 0},
                       created=1_700_000_000 + i)
        store.create_job(f, audit=None)
        store.update(f["job_id"], "status", status=status)
        ids.append(f["job_id"])
    return ids


def test_launch_from_the_form_appears_and_completes(config: Config, store: Store) -> None:
    async def go() -> None:
        app = JobsApp(config, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.loaded_all, what="load")
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LauncherScreen), what="launcher")
            form: LauncherScreen = app.screen  # type: ignore[assignment]
            form.query_one("#job-type").value = "sleep"
            await pilot.pause(0.3)
            form.query_one("#p-seconds").value = "0.5"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="form closed")
            table = app.screen.table
            await until(pilot, lambda: len(app.index.jobs) == 1 and table.cursor_id, what="row")
            job_id = table.cursor_id
            await until(pilot, lambda: app.index.jobs[job_id].effective_status == "completed",
                        what="completed on screen")
            assert store.get_job(job_id).status == "completed"

    run_async(go())


def test_bad_form_input_creates_nothing(config: Config, store: Store) -> None:
    async def go() -> None:
        app = JobsApp(config)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.loaded_all, what="load")
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LauncherScreen), what="launcher")
            app.screen.query_one("#job-type").value = "sleep"
            await pilot.pause(0.3)
            app.screen.query_one("#p-seconds").value = "soon; rm -rf /"
            await pilot.press("ctrl+s")
            await pilot.pause(0.3)
            assert isinstance(app.screen, LauncherScreen)
            assert "not a number" in str(app.screen.query_one("#err-seconds").render())
    run_async(go())
    assert store.count() == 0


def test_change_by_another_process_appears_without_a_key_press(config: Config,
                                                               store: Store) -> None:
    [job_id] = make(store, 1, status="running")

    async def go() -> None:
        app = JobsApp(config, poll_interval=3600)  # no polling: only the event can do it
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: job_id in app.index.jobs, what="load")
            Store.from_url(config.url, config.prefix).update(job_id, "status", status="failed",
                                                             message="boom from elsewhere")
            await until(pilot, lambda: app.index.jobs[job_id].effective_status == "failed", timeout=5,
                        what="event to reach the table")
            assert app.index.jobs[job_id].message == "boom from elsewhere"

    run_async(go())


def test_kill_from_the_console_ends_a_real_process(config: Config, store: Store) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "60"}, user="ops")

    async def go() -> None:
        app = JobsApp(config, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: job_id in app.index.jobs and
                        app.index.jobs[job_id].effective_status == "running", what="running job")
            proc = psutil.Process(store.get_job(job_id).pid)  # table rows carry no pid
            app.screen.table.select(job_id)
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            await pilot.press("y")
            await until(pilot, lambda: app.index.jobs[job_id].effective_status == "killed",
                        what="killed on screen")
            assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE

    run_async(go())


def test_retry_creates_one_new_job_and_selects_it(config: Config, store: Store) -> None:
    job_id = launch(store, config, "sleep", {"seconds": "0", "exit_code": "4"}, user="ops")
    deadline = time.monotonic() + 20
    while store.get_job(job_id).status != "failed" and time.monotonic() < deadline:
        time.sleep(0.05)

    async def go() -> None:
        app = JobsApp(config, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: job_id in app.index.jobs, what="load")
            app.screen.table.select(job_id)
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            await pilot.press("y")
            await until(pilot, lambda: isinstance(app.screen, MainScreen) and
                        app.screen.table.cursor_id not in (None, job_id),
                        what="new job selected")
            new_id = app.screen.table.cursor_id
            assert store.get_job(new_id).retry_of == job_id
            # Retrying it again is not offered: it says why and makes no second job.
            app.screen.table.select(job_id)
            await until(pilot, lambda: app.index.jobs[job_id].retried_by == new_id, what="link")
            await pilot.press("r")
            await pilot.pause(0.5)
            assert isinstance(app.screen, MainScreen)
            assert any("nothing to retry" in n.message for n in app._notifications)

    run_async(go())
    assert len([j for p in store.iter_jobs() for j in p if j.retry_of == job_id]) == 1


def test_selection_stays_on_the_same_job_while_others_change(config: Config,
                                                             store: Store) -> None:
    ids = make(store, 60, status="running")
    target = ids[30]

    async def go() -> None:
        app = JobsApp(config, poll_interval=3600)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: len(app.index.jobs) == 60, what="load")
            table = app.screen.table
            table.select(target)
            await pilot.press("o")  # sort by id...
            for _ in range(3):
                await pilot.press("o")  # ...then by status, a column that changes below
            other = Store.from_url(config.url, config.prefix)
            for i, job_id in enumerate(j for j in ids if j != target):
                other.update(job_id, "status", status="failed" if i % 2 else "completed")
            for i in range(5):  # and new jobs arrive
                other.create_job(job_fields(new_job_id(), "sleep", "z", ["true"], {},
                                            created=1_800_000_000 + i), audit=None)
            await until(pilot, lambda: len(app.index.jobs) == 65 and
                        sum(j.effective_status == "failed" for j in app.index.jobs.values()) == 29,
                        what="changes applied")
            assert table.cursor_id == target
            assert app.index.row(table.cursor_row).job_id == target

    run_async(go())


def test_damaged_data_renders_without_an_exception(config: Config, store: Store) -> None:
    key = store.keys.job("dmg")
    store.r.hset(key, mapping={"job_id": "dmg", "status": b"\xff\xfe", "progress": "NaN",
                               "children": '[1, {"x": 2}]', "created": "x", "job_type": "qc-files"})
    store.r.zadd(store.keys.jobs_index, {"dmg": 1.0, "ghost": 2.0})  # ghost: no hash at all
    store.r.set(store.keys.job("wrongtype"), "a string")
    store.r.zadd(store.keys.jobs_index, {"wrongtype": 3.0})

    async def go() -> None:
        app = JobsApp(config)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: len(app.index.jobs) == 3, what="load")
            assert all(j.damage for j in app.index.jobs.values())
            for job_id in ("dmg", "wrongtype", "ghost"):
                app.screen.table.select(job_id)
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
                await pilot.pause(0.7)
                for _ in range(4):
                    await pilot.press("down")
                await pilot.pause(0.2)
                await pilot.press("escape")
                await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")

    run_async(go())


def test_read_only_offers_no_writing_action_and_says_why(config: Config, store: Store) -> None:
    """Defect 14: in read-only mode the write keys are not offered, and pressed, say why."""
    make(store, 2, status="failed")
    ro = Config(config.url, config.prefix, read_only=True)

    async def go() -> None:
        app = JobsApp(ro)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.loaded_all and app.index.jobs, what="load")
            actions = {b.binding.action for b in app.screen.active_bindings.values()}
            assert not actions & WRITE_ACTIONS
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert not any(t.startswith(("Launch", "Kill", "Retry", "Clean")) for t in titles)
            for key in ("l", "k", "r", "K", "R", "X"):
                app.clear_notifications()
                await pilot.press(key)
                await pilot.pause(0.1)
                assert isinstance(app.screen, MainScreen)
                assert any("read-only mode" in n.message for n in app._notifications), key
            await pilot.press("question_mark")
            assert "not offered" in screen_text(app)

    run_async(go())
    assert all(j.retried_by is None for p in store.iter_jobs() for j in p)


def test_drill_down_follows_output_and_children_as_they_arrive(config: Config,
                                                               store: Store) -> None:
    from tests.helpers import python, run_async, run_command

    code = ("import os, time\n"
            "from gn_jobs_tui.core.jobctx import JobContext\n"
            "ctx = JobContext.from_env()\n"
            "for i in range(6):\n"
            "    print(f'step {i}', flush=True)\n"
            "    time.sleep(0.3)\n"
            "[key] = ctx.children(1)\n"
            "w = ctx.writer(key); w.start(files=['f.tsv'])\n"
            "w.record(file='f.tsv', line='3', check='numeric', value='x', message='not a number')\n"
            "w.finish('completed')\n"
            "time.sleep(1.0)\n")
    job_id = run_command(store, config, python(code), job_type="qc-files")

    async def go() -> None:
        app = JobsApp(config)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: job_id in app.index.jobs, what="load")
            app.screen.table.select(job_id)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            await pilot.press("down", "down")  # the output node
            await until(pilot, lambda: app.screen.selected == "output", what="output node")
            await until(pilot, lambda: "step 5" in screen_text(app), timeout=15,
                        what="new output lines on screen")
            await until(pilot, lambda: len(app.screen.children_states) == 1, what="child node")
            await pilot.press("down", "down")
            await until(pilot, lambda: "not a number" in screen_text(app), timeout=10,
                        what="the child's record on screen")

    run_async(go())
    wait_for(lambda: store.get_job(job_id).is_terminal, what="the job to end")
