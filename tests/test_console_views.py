"""Pilot tests of issue 12: each defect fixed and each new capability, on the seeded scene
data (tests/scenes.py) in a real server, with a frozen clock where times are shown."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.common import server_calls
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store, job_fields
from gn_jobs_tui.ui.app import JobsApp, MainScreen
from gn_jobs_tui.ui.messages import Connection, Polled
from gn_jobs_tui.ui.screens.audit import AuditScreen
from gn_jobs_tui.ui.screens.columns import ColumnsScreen
from gn_jobs_tui.ui.screens.detail import DetailScreen
from gn_jobs_tui.ui.screens.dialogs import AskScreen, ConfirmScreen, HelpScreen
from gn_jobs_tui.ui.screens.hosts import HostsScreen
from gn_jobs_tui.ui.screens.launcher import LauncherScreen
from gn_jobs_tui.ui.screens.pulse import PulseScreen
from tests.helpers import run_async
from tests.scenes import NOW, seed
from tests.test_console import screen_text, until


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


@pytest.fixture
def roomy(store: Store) -> Iterator[Store]:
    """For tests that write thousands of jobs: their keys go when the test ends (the
    session's server is shared, and other tests scan its key space)."""
    yield store
    keys = list(store.r.scan_iter(match=f"{store.prefix}:*", count=5000))
    for i in range(0, len(keys), 5000):
        store.r.delete(*keys[i : i + 5000])


def make_app(config: Config, tmp_path: Path, **kw: object) -> JobsApp:
    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("poll_interval", 3600)
    kw.setdefault("tick", 0)
    return JobsApp(config, settings_path=tmp_path / "console.json", **kw)  # type: ignore[arg-type]


async def loaded(pilot, app: JobsApp) -> None:  # noqa: ANN001
    await until(pilot, lambda: app.loaded_all and len(app.index) > 0, what="load")
    await pilot.pause(0.1)


async def go_to(pilot, app: JobsApp, start: str) -> None:  # noqa: ANN001
    """`g`, the start of an id, Enter: that job selected in the table."""
    await pilot.press("g")
    await until(pilot, lambda: isinstance(app.screen, AskScreen), what="ask")
    await pilot.press(*start, "enter")
    await until(pilot, lambda: isinstance(app.screen, MainScreen) and
                app.screen.table.cursor_id.startswith(start), what=f"job {start} selected")


def lines(app: JobsApp) -> list[str]:
    return screen_text(app).splitlines()


def run(coro) -> None:  # noqa: ANN001
    run_async(coro)


# -- table: sort, marks, widths, top bar ---------------------------------------------------

def test_sort_key_cycles_every_column_and_always_shows_its_arrow(config: Config, seeded: Store,
                                                                 tmp_path: Path) -> None:
    """Defects 1 and 8: `o` past the last column never crashes; the sort is always shown,
    also for a column not on screen (the default, by creation)."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            assert "▼created" in lines(app)[1]  # default order: said, though CREATED is hidden
            seen = set()
            for _ in range(14):
                await pilot.press("o")
                await pilot.pause(0.05)
                seen.add(app.index.sort_key)
                header = lines(app)[1]
                assert "▲" in header or "▼" in header, header
            assert {"id", "type", "user", "status", "created"} <= seen
            await pilot.press("O")
            assert isinstance(app.screen, MainScreen)

    run(go())


def test_marks_have_their_own_column(config: Config, seeded: Store, tmp_path: Path) -> None:
    """Defect 6: a mark never overwrites the id."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            await pilot.press("space")
            row = lines(app)[2]
            assert row.startswith("●9c0ffee0 "), row
            assert app.screen.table.marked == {"9c0ffee000000000000000000000qc01"}

    run(go())


def test_column_widths_follow_content_and_terminal(config: Config, seeded: Store,
                                                   tmp_path: Path) -> None:
    """Defect 9: a long user name is shown whole on a wide terminal, cut on a narrow one."""
    user = "maintenance-robot"
    f = job_fields("w1de" + "0" * 28, "sleep", user, ["true"], {}, created=NOW - 10)
    seeded.create_job(f, audit=None)

    async def go(size: tuple[int, int]) -> list[str]:
        app = make_app(config, tmp_path)
        async with app.run_test(size=size) as pilot:
            await loaded(pilot, app)
            return lines(app)

    wide = run_async(go((200, 40)))
    assert any(user in line for line in wide)
    narrow = run_async(go((80, 24)))
    assert not any(user in line for line in narrow)
    assert any("maint" in line and "…" in line for line in narrow)


def test_top_bar_fits_80_columns_and_counts_n_of_n(config: Config, seeded: Store,
                                                   tmp_path: Path) -> None:
    """Defect 10: one line at 80 columns with the urgent counts; "n of N" when filtered."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            top = lines(app)[0]
            assert len(top.rstrip()) <= 80 and "4 running" in top and "1 lost" in top
            await pilot.press("slash", *"user:alice", "enter")
            await pilot.pause(0.2)
            top = lines(app)[0]
            assert "user:alice" in top and "of 25" in top, top
            assert {app.index.row(i).user_id for i in range(len(app.index))} == {"alice"}

    run(go())


def test_server_notes_show_in_the_top_bar_and_help(config: Config, seeded: Store,
                                                   tmp_path: Path) -> None:
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, app)
            app.post_message(Connection(True, notes=("! maxmemory-policy allkeys-lru can evict "
                                                     "jobs", "reads without scripts")))
            await pilot.pause(0.2)
            assert "⚠ maxmemory-policy allkeys-lru" in lines(app)[0]
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "Server notes" in text and "reads without scripts" in text

    run(go())


# -- dialogs, feedback, grammar ----------------------------------------------------------------

def test_confirm_buttons_move_with_arrows_and_y_is_documented(config: Config, seeded: Store,
                                                               tmp_path: Path) -> None:
    """Defects 11 and 15: ←/→ move between the buttons, `y` is written on the dialog, and
    the title counts jobs in plain English."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            await pilot.press("space", "space", "k")  # two running jobs marked
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            text = screen_text(app)
            assert "Kill 2 jobs" in text and "(s)" not in text
            assert "y confirms" in text and "Kill (y)" in text
            assert app.focused.id == "no"
            await pilot.press("left")
            assert app.focused.id == "yes"
            await pilot.press("right")
            assert app.focused.id == "no"
            await pilot.press("n")
            assert isinstance(app.screen, MainScreen)

    run(go())


def test_feedback_for_reload_ambiguous_ids(config: Config, seeded: Store, tmp_path: Path) -> None:
    """Defect 14: Ctrl+R says how many jobs it reloaded; `g` says an id is ambiguous."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            app.clear_notifications()
            await pilot.press("ctrl+r")
            await until(pilot, lambda: any("reloaded 25 jobs" in n.message
                                           for n in app._notifications), what="reload notice")
            await pilot.press("g")
            await until(pilot, lambda: isinstance(app.screen, AskScreen), what="ask")
            await pilot.press("0", "enter")
            await until(pilot, lambda: any("ambiguous" in n.message and "jobs match '0'"
                                           in n.message for n in app._notifications),
                        what="ambiguous notice")
            await go_to(pilot, app, "fa11")

    run(go())


def test_launcher_fits_80x24_and_points_at_the_first_error(config: Config, seeded: Store,
                                                           tmp_path: Path) -> None:
    """Defect 5: several fields with their help at 80x24; an error is shown beside its
    field, scrolled into view, with the cursor in it."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LauncherScreen), what="launcher")
            form: LauncherScreen = app.screen  # type: ignore[assignment]
            form.query_one("#job-type").value = "sleep"
            await pilot.pause(0.3)
            form.query_one("#p-seconds").value = "soon"
            form.query_one("#p-exit_code").value = "x"
            await pilot.press("ctrl+s")
            await pilot.pause(0.3)
            text = screen_text(app)
            assert "2 fields need attention: seconds, exit_code" in text
            assert "✗" in text and "Launch (Ctrl+S)" in text
            assert app.focused.id == "p-seconds"
            assert sum(1 for name in ("seconds", "exit_code") if name in text) == 2

    run(go())
    assert not any(j.job_type == "sleep" and j.user_id == "operator"
                   for p in Store.from_url(config.url, config.prefix).iter_jobs() for j in p)


# -- drill-down and audit ---------------------------------------------------------------------

def test_drill_down_tree_grows_and_ids_are_never_folded(config: Config, seeded: Store,
                                                        tmp_path: Path) -> None:
    """Defect 7: the tree is as wide as its labels (up to 40%), and the pane keeps a job id
    and each child record on one line at 80x24 (it scrolls sideways instead)."""
    async def go(size: tuple[int, int]) -> tuple[int, str]:
        app = make_app(config, tmp_path)
        async with app.run_test(size=size) as pilot:
            await loaded(pilot, app)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen) and
                        app.screen.job is not None, what="detail")
            await pilot.pause(0.3)
            width = app.screen.query_one("#keys").size.width
            text = screen_text(app)
            await pilot.press("down", "down", "down")  # the first child
            await pilot.pause(0.3)
            return width, text + "\n" + screen_text(app)

    narrow, text = run_async(go((80, 24)))
    assert "9c0ffee000000000000000000000qc01" in text
    assert "#0 running 70%, 3 problems" in text
    assert any("geno_chr1.tsv" in line and "fields" in line for line in text.splitlines())
    seeded.r.hset(seeded.keys.job("9c0ffee000000000000000000000qc01"), "job_type",
                  "qc-files-with-a-long-type-name")
    wide, text = run_async(go((200, 50)))
    assert narrow <= 32 < wide  # 40% at most at 80 columns; at 200 the whole root label
    assert "qc-files-with-a-long-type-name 9c0ffee0" in text


def test_audit_fits_and_enter_opens_the_job(config: Config, seeded: Store,
                                            tmp_path: Path) -> None:
    """Defect 12: short ids on one line at 80 columns, Enter opens the job."""
    job_id = "9c0ffee000000000000000000000qc01"
    seeded.audit("kill", job_id, "console")

    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.rows,
                        what="audit rows")
            await pilot.pause(0.2)
            row = next(line for line in lines(app) if "kill" in line)
            assert "9c0ffee0" in row and len(row.rstrip()) <= 80
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            assert app.screen.job_id == job_id

    run(go())


# -- new views --------------------------------------------------------------------------------

def test_times_relative_or_absolute_and_more_columns(config: Config, seeded: Store,
                                                     tmp_path: Path) -> None:
    """Capability a: "3m ago" by default, absolute on `t`; CREATED and FINISHED exist."""
    (tmp_path / "console.json").write_text(json.dumps(
        {"columns": ["id", "status", "created", "started", "finished", "message"]}))

    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, app)
            header = lines(app)[1]
            assert "CREATED" in header and "FINISHED" in header
            assert "10m ago" in lines(app)[2]
            await pilot.press("t")
            await pilot.pause(0.1)
            assert "12-31 23:50" in lines(app)[2]
            assert json.loads((tmp_path / "console.json").read_text())["relative_times"] is False

    run(go())


def test_column_chooser_hides_reorders_and_persists(config: Config, seeded: Store,
                                                    tmp_path: Path) -> None:
    """Capability b: chosen in a dialog, kept in the user's config directory."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("C")
            await until(pilot, lambda: isinstance(app.screen, ColumnsScreen), what="chooser")
            await pilot.press("space")  # hide TYPE (ID, always shown, is not selectable)
            await pilot.press("down", "right_square_bracket")  # move USER down past STATUS
            await pilot.press("enter")
            await pilot.pause(0.2)
            header = lines(app)[1].split()
            assert "TYPE" not in header and header.index("STATUS") < header.index("USER")

    run(go())
    saved = json.loads((tmp_path / "console.json").read_text())["columns"]
    assert "type" not in saved and saved.index("status") < saved.index("user")

    async def again() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, app)
            assert "TYPE" not in lines(app)[1]

    run(again())


def test_copy_full_id_and_show_command(config: Config, seeded: Store, tmp_path: Path) -> None:
    """Capability c: OSC 52 through Textual; the command never holds the server URL."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("c")
            assert app.clipboard == "9c0ffee000000000000000000000qc01"
            await pilot.press("y")
            assert app.clipboard == (f"gn-jobs --prefix {config.prefix} show "
                                     "9c0ffee000000000000000000000qc01")
            assert config.url not in app.clipboard

    run(go())


def test_hosts_view_and_enter_filters_to_the_host(config: Config, seeded: Store,
                                                 tmp_path: Path) -> None:
    """Capability d."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("h")
            await until(pilot, lambda: isinstance(app.screen, HostsScreen), what="hosts")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "node-a" in text and "node-b" in text and "last seen" in text
            await pilot.press("down", "enter")  # node-b: fewer running, listed second
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
            await pilot.pause(0.2)
            assert app.index.target.query.text == "host:node-b"
            assert {app.index.row(i).host for i in range(len(app.index))} == {"node-b"}
            assert len(app.index) == 2

    run(go())


def test_pulse_is_drawn_from_memory_with_no_server_command(config: Config, seeded: Store,
                                                           tmp_path: Path) -> None:
    """Capability e: started/completed/failed per minute, p50/p95, failure rate; frames
    cost the server nothing."""
    def calls() -> int:
        return server_calls(seeded.r)

    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot, app)
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, PulseScreen), what="pulse")
            before = calls()
            await pilot.pause(4.5)  # two redraws at least
            assert calls() == before
            text = screen_text(app)
            assert "failure rate, last 15 min" in text
            assert "started" in text and "completed" in text and "p95" in text
            assert "sleep" in text and "qc-files" in text

    run(go())


def test_filter_tokens_in_the_table(config: Config, seeded: Store, tmp_path: Path) -> None:
    """Capability i: user:, type:, status:, host: and a fuzzy id."""
    async def shown(text: str) -> set[str]:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("slash", *text, "enter")
            await pilot.pause(0.2)
            return {app.index.row(i).short_id for i in range(len(app.index))}

    assert run_async(shown("type:qc status:running")) == {"9c0ffee0", "broken00"}
    assert run_async(shown("user:carol type:insert")) == {"1a5e4700", "dead0000"}
    assert run_async(shown("9cff")) == {"9c0ffee0"}
    assert run_async(shown("-host:node-a")) == {"broken00", "c0ffee00", "fa11ed00"}

    async def typo() -> str:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("slash", *"usr:carol", "enter")
            await until(pilot, lambda: "not a filter" in screen_text(app), what="the typo named")
            return screen_text(app)

    assert "no jobs match: usr: is not a filter (user: type: status: host: id:)" in run_async(typo())


def test_pause_holds_changes_and_the_bar_says_so(config: Config, seeded: Store,
                                                 tmp_path: Path) -> None:
    """Capability h: `p` freezes the table (changes wait), the top bar says PAUSED; a
    silent server shows "updated ... ago"."""
    job_id = "5eed0000000000000000000000000s01"

    async def go() -> None:
        app = make_app(config, tmp_path, poll_interval=3.0)
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("p")
            Store.from_url(config.url, config.prefix).update(job_id, "status", status="failed")
            await until(pilot, lambda: app.waiting_count() == 1, what="a change held")
            assert app.index.jobs[job_id].effective_status == "running"
            assert "PAUSED" in lines(app)[0] and "1 waiting" in lines(app)[0]
            await pilot.press("p")
            assert app.index.jobs[job_id].effective_status == "failed"
            assert "PAUSED" not in lines(app)[0]
            app.post_message(Polled(time.time()))
            await pilot.pause(0.1)
            app.last_data = time.monotonic() - 75  # nothing from the server since
            app.sync_bars()
            await pilot.pause(0.1)
            assert "updated 1m ago" in lines(app)[0]

    run(go())


def test_bulk_mark_all_matching(config: Config, seeded: Store, tmp_path: Path) -> None:
    """Capability f (marks): `M` marks every job the filter shows, again unmarks them."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("slash", *"user:bob", "enter", "M")
            await until(pilot, lambda: app.main_screen().table.marked, what="marks")
            bobs = {j.job_id for j in app.index.jobs.values() if j.user_id == "bob"}
            assert app.screen.table.marked == bobs
            await pilot.press("M")
            await until(pilot, lambda: not app.screen.table.marked, what="unmarked")

    run(go())


def test_help_and_palette_list_every_action(config: Config, seeded: Store,
                                            tmp_path: Path) -> None:
    wanted = ["Pause", "Hosts", "Pulse", "Columns", "Copy full id", "Mark all matching",
              "Kill all running matching", "Retry all failed matching",
              "Clean up old finished jobs", "Relative/absolute times"]

    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot, app)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert set(wanted) <= titles
            assert footer_keys(app) <= titles and "Help" in titles  # the walk found Help missing
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            help_rows = {desc for _, desc in app.screen.rows}
            assert set(wanted) <= help_rows
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="drill-down")
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert footer_keys(app) <= titles and "Help" in titles

    run(go())


def footer_keys(app: JobsApp) -> set[str]:
    """What the footer shows on the current screen: every one must be a palette command."""
    return {a.binding.description for a in app.screen.active_bindings.values()
            if a.binding.show and a.binding.description and a.node is app.screen}


def test_the_drill_down_pane_takes_focus_and_scrolls_at_80x24(config: Config, seeded: Store,
                                                              tmp_path: Path) -> None:
    """The walk at 80x24: a QC summary is wider and taller than the pane; Tab must reach the
    pane and the keys scroll it (it was not focusable: only `show` could read it)."""
    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            await go_to(pilot, app, "9c0ffee0")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="drill-down")
            pane = app.screen.query_one("#pane")
            await until(pilot, lambda: pane.max_scroll_y > 0 and pane.max_scroll_x > 0,
                        what="a pane larger than the screen")
            await pilot.press("tab")
            assert app.focused is pane
            await pilot.press("pagedown", "right", "right")
            await until(pilot, lambda: pane.scroll_y > 0 and pane.scroll_x > 0, what="scrolled")

    run(go())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_quitting_after_a_resize_leaves_no_frame_in_tmux(config: Config, seeded: Store,
                                                         tmp_path: Path) -> None:
    """Defect 16: tmux keeps the last frame of a resized alternate screen in the shell's
    history unless the console blanks it before it leaves."""
    session = f"gnj{int(time.time() * 1000) % 10**8}"
    cmd = (f"{sys.executable} -m gn_jobs_tui --redis-url {config.url} --prefix {config.prefix}; "
           "echo CONSOLE-ENDED; sleep 30")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    "-e", f"XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']}", cmd], check=True)
    try:
        def capture() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"],
                                  capture_output=True, text=True, check=True).stdout

        deadline = time.monotonic() + 20
        while "9c0ffee0" not in capture() and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run(["tmux", "resize-window", "-t", session, "-x", "120", "-y", "40"],
                       check=True)
        time.sleep(1.5)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while "CONSOLE-ENDED" not in capture() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = capture()
        assert "CONSOLE-ENDED" in text
        assert "9c0ffee0" not in text and "MESSAGE" not in text, text
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


# -- actions over a filter, with real jobs ----------------------------------------------------

def test_kill_all_running_matching_states_count_and_sample(config: Config, store: Store,
                                                           tmp_path: Path) -> None:
    """Capability f: K kills every running job the filter shows, after a confirmation that
    states how many and shows which."""
    from gn_jobs_tui.core.launcher import launch
    from tests.conftest import wait_for

    ids = [launch(store, config, "sleep", {"seconds": "60"}, user="bulk") for _ in range(2)]
    spare = launch(store, config, "sleep", {"seconds": "60"}, user="other")
    wait_for(lambda: all(store.get_job(i).status == "running" for i in [*ids, spare]),
             what="running")

    async def go() -> None:
        app = make_app(config, tmp_path, clock=time.time, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("slash", *"user:bulk", "enter", "K")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            text = screen_text(app)
            assert "Kill 2 jobs (all that match the filter)" in text
            assert all(i[:8] in text for i in ids) and spare[:8] not in text
            await pilot.press("y")
            await until(pilot, lambda: all(app.index.jobs[i].effective_status == "killed"
                                           for i in ids), what="both killed", timeout=30)
            assert app.index.jobs[spare].effective_status == "running"

    run(go())
    from gn_jobs_tui.core import control

    control.kill(store, spare)
    wait_for(lambda: store.get_job(spare).is_terminal, what="spare ended")


def test_retry_all_failed_matching(config: Config, store: Store, tmp_path: Path) -> None:
    from gn_jobs_tui.core.launcher import launch
    from tests.conftest import wait_for

    ids = [launch(store, config, "sleep", {"seconds": "0", "exit_code": "3"}, user="flaky")
           for _ in range(2)]
    wait_for(lambda: all(store.get_job(i).status == "failed" for i in ids), what="failed")

    async def go() -> None:
        app = make_app(config, tmp_path, clock=time.time, poll_interval=1.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("slash", *"user:flaky status:failed", "enter", "R")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            assert "Retry 2 jobs (all that match the filter)" in screen_text(app)
            await pilot.press("y")
            await until(pilot, lambda: any("retried 2 jobs" in n.message
                                           for n in app._notifications), what="summary")

    run(go())
    retries = [j for p in store.iter_jobs() for j in p if j.retry_of in ids]
    assert sorted(j.retry_of for j in retries) == sorted(ids)
    wait_for(lambda: all(store.get_job(j.job_id).is_terminal for j in retries), what="ended")


def test_clean_up_old_jobs_from_the_console_is_confirmed_and_audited(
        config: Config, store: Store, tmp_path: Path) -> None:
    """Capability f: X asks for an age, says how many finished jobs it would delete, then
    deletes them through the core, which records it in the audit trail."""
    seeded = store
    for i, (age, status) in enumerate([(30, "completed"), (31, "failed"), (32, "killed"),
                                       (40, "running"), (1, "completed")]):
        f = job_fields(f"{'ancient' if age > 10 else 'recent0'}{i}" + "0" * 24, "sleep", "old",
                       ["true"], {}, created=time.time() - age * 86400)  # the real clock
        seeded.create_job(f, audit=None)
        seeded.update(f["job_id"], "status", status=status)

    async def go() -> None:
        app = make_app(config, tmp_path, clock=time.time)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("X")
            await until(pilot, lambda: isinstance(app.screen, AskScreen), what="ask")
            await pilot.press(*"soon", "enter")
            await pilot.pause(0.1)
            assert "bad age" in screen_text(app)  # a one-line reason; nothing happens
            app.screen.query_one("#ask").value = ""
            await pilot.press(*"10d", "enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "Delete 3 finished jobs created more than 10 days ago" in text
            assert "ancient0" in text
            await pilot.press("y")
            await until(pilot, lambda: any("removed 3 jobs" in n.message
                                           for n in app._notifications), what="done")

    run(go())
    left = sorted(j.job_id[:8] for p in seeded.iter_jobs() for j in p)
    assert left == ["ancient3", "recent04"]  # the running one and the recent one stay
    assert seeded.audit_log(1)[0]["action"] == "cleanup"


def test_retry_from_the_drill_down_follows_the_new_job(config: Config, store: Store,
                                                       tmp_path: Path) -> None:
    """Defect 11: a retry from the drill-down stays in the drill-down, on the new job."""
    from gn_jobs_tui.core.launcher import launch
    from tests.conftest import wait_for

    job_id = launch(store, config, "sleep", {"seconds": "0", "exit_code": "5"}, user="dd")
    wait_for(lambda: store.get_job(job_id).status == "failed", what="failed")

    async def go() -> str:
        app = make_app(config, tmp_path, clock=time.time)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            await pilot.press("enter", "r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
            await pilot.press("y")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen) and
                        app.screen.job_id != job_id, what="the new job's drill-down")
            return app.screen.job_id

    new_id = run_async(go())
    assert store.get_job(new_id).retry_of == job_id
    wait_for(lambda: store.get_job(new_id).is_terminal, what="retry ended")


def test_output_pane_search_wrap_follow_and_first_traceback(config: Config, store: Store,
                                                            tmp_path: Path) -> None:
    """Capability g."""
    from tests.conftest import wait_for
    from tests.helpers import python, run_command

    code = ("import sys\n"
            "for i in range(120):\n"
            "    print(f'line {i} ' + 'x' * (150 if i == 5 else 3))\n"
            "print('Traceback (most recent call last):')\n"
            "print('  File \"job.py\", line 1, in <module>')\n"
            "print('ValueError: boom')\n"
            "for i in range(40):\n"
            "    print(f'after {i}')\n")
    job_id = run_command(store, config, python(code))
    wait_for(lambda: store.get_job(job_id).is_terminal, what="job ended")

    async def go() -> None:
        app = make_app(config, tmp_path, clock=time.time)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            app.screen.table.select(job_id)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen) and
                        app.screen.output is not None and app.screen.output.seen >= 163,
                        what="output read")
            await pilot.press("slash", *"line 1", "enter")
            pane = app.screen.query_one("#output")
            # line 1, 10-19, 100-119, and the traceback's "line 1"
            await until(pilot, lambda: len(pane.matches) == 32, what="matches")
            head = app.screen.query_one("#output-head").render()
            assert "1/32" in str(head) and "not following" in str(head)
            await pilot.press("n", "n")
            assert pane.current == 2
            await pilot.press("N")
            assert pane.current == 1
            await pilot.press("w")
            assert pane.wrap and "wrap on" in str(app.screen.query_one("#output-head").render())
            await pilot.press("f")
            assert pane.follow and pane.scroll_offset.y == pane.max_scroll_y
            await pilot.press("e")
            assert not pane.follow
            top = int(pane.scroll_offset.y)
            shown = [pane._rows[r][1].plain for r in range(top, top + pane.size.height)]
            assert any(s.startswith("Traceback (most recent call last):") for s in shown)

    run(go())


# -- costs, as counts -----------------------------------------------------------------------

def test_an_idle_console_repaints_nothing_but_ticking_cells(config: Config, store: Store,
                                                            tmp_path: Path) -> None:
    """Issue 11 item 3: in 5 idle seconds no full repaint; the only lines drawn are those
    of the one running job, whose elapsed time moves (the others' cells do not change)."""
    now = time.time()
    for i in range(30):
        f = job_fields(f"done{i:04d}" + "0" * 24, "sleep", "idle", ["true"], {},
                       created=now - 3600 - i)
        store.create_job(f, audit=None)
        store.update(f["job_id"], "status", status="completed", started=repr(now - 3600 - i),
                     finished=repr(now - 3500 - i))
    f = job_fields("tick0000" + "0" * 24, "sleep", "idle", ["true"], {}, created=now)
    store.create_job(f, audit=None)
    store.update(f["job_id"], "status", status="running", started=repr(now))

    async def go() -> None:
        app = make_app(config, tmp_path, clock=time.time, tick=1.0, poll_interval=1.0)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot, app)
            await pilot.pause(1.5)
            table = app.screen.table
            table.full_refreshes = table.lines_rendered = table.cells_refreshed = 0
            await pilot.pause(5.0)
            assert table.full_refreshes == 0
            assert table.cells_refreshed >= 4  # the running job's ELAPSED, once a second
            assert table.lines_rendered <= table.cells_refreshed + 2  # its line, nothing else

    run(go())


class Recording(JobsApp):
    previews = 0

    def on_order_preview(self, message) -> None:  # noqa: ANN001
        if message.build is self.index.building:
            self.previews += 1
        super().on_order_preview(message)


def test_big_sorts_and_filters_run_off_the_ui_thread_top_rows_first(config: Config, roomy: Store,
                                                                     tmp_path: Path) -> None:
    """Issue 11 item 1: a sort or filter of a big index is built in a worker thread from a
    snapshot; the rows on screen come first; changes meanwhile are not lost."""
    from benchmarks.common import fill
    from gn_jobs_tui.ui.query import Query
    from tests.test_index import brute

    store = Store.from_url(config.url, config.prefix)
    ids = fill(store, 3000)

    async def go() -> None:
        app = Recording(config, settings_path=tmp_path / "c.json", poll_interval=3600, tick=0)
        app.index.sync_limit = 0  # every build in the thread, as at a million jobs
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(pilot, app)
            app.set_view(sort_key="user", reverse=False)
            assert app.index.building is not None  # nothing sorted on the UI thread
            Store.from_url(config.url, config.prefix).update(ids[5], "status", status="failed",
                                                             message="changed meanwhile")
            await until(pilot, lambda: app.index.building is None and
                        app.index.jobs[ids[5]].message == "changed meanwhile", what="sorted")
            assert [app.index.row(i).job_id for i in range(len(app.index))] == brute(app.index)
            app.set_view(query=Query.parse("step 1"))
            await until(pilot, lambda: app.index.building is None, what="filtered")
            assert [app.index.row(i).job_id for i in range(len(app.index))] == brute(app.index)
            assert app.previews >= 1
            assert app.index.row_of(app.screen.table.cursor_id) is not None

    run(go())


@pytest.mark.parametrize("sort", ["created", "user"])
def test_sorts_per_load_are_bounded(config: Config, roomy: Store, tmp_path: Path,
                                    sort: str) -> None:
    """Issue 11 item 1: loading page after page never re-sorts everything per page: none
    at all in the default view, and a bounded few when sorted by another column."""
    from benchmarks.common import fill
    from gn_jobs_tui.ui.ordering import View
    from tests.test_index import brute

    store = Store.from_url(config.url, config.prefix)
    fill(store, 16_000)  # the feed sends a first page, then pages of 2,000

    async def go() -> int:
        app = make_app(config, tmp_path, clock=time.time)
        app.index.reset(View(sort_key=sort, reverse=sort == "created"))
        app.index.sync_limit = 0
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.loaded_all and app.index.building is None and
                        len(app.index) == 16_000, what="load")
            assert [app.index.row(i).job_id for i in range(50)] == brute(app.index)[:50]
            return app.index.builds

    builds = run_async(go())
    # A sort is rebuilt as what is loaded grows geometrically: at most log2(jobs / first page)
    # builds (7 here), whatever the page size (9 pages here; one build per page was the bug).
    from gn_jobs_tui.ui.feed import FIRST_PAGE

    bound = math.ceil(math.log2(16_000 / FIRST_PAGE))
    assert builds == 0 if sort == "created" else 1 <= builds <= bound, builds


def test_unreadable_settings_are_reported_and_kept(config: Config, seeded: Store,
                                                   tmp_path: Path) -> None:
    """A broken settings file: one line says so, defaults are used, and the file is kept
    (as console.json.bad) when new settings are saved."""
    (tmp_path / "console.json").write_text("{not json")

    async def go() -> None:
        app = make_app(config, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(pilot, app)
            assert any("ignored" in n.message and "console.json" in n.message
                       for n in app._notifications)
            assert "TYPE" in lines(app)[1]  # the default columns
            await pilot.press("t")

    run(go())
    assert (tmp_path / "console.json.bad").read_text() == "{not json"
    assert json.loads((tmp_path / "console.json").read_text())["relative_times"] is False
