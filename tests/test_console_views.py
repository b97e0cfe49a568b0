"""Pilot tests of issue 12: each defect fixed and each new capability, on the seeded scene
data (tests/scenes.py) in a real server, with a frozen clock where times are shown."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
from tests.scenes import NOW, seed
from tests.test_console import screen_text, until


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


def make_app(config: Config, tmp_path: Path, **kw: object) -> JobsApp:
    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("poll_interval", 3600)
    kw.setdefault("tick", 0)
    return JobsApp(config, settings_path=tmp_path / "console.json", **kw)  # type: ignore[arg-type]


async def loaded(pilot, app: JobsApp) -> None:  # noqa: ANN001
    await until(pilot, lambda: app.loaded_all and len(app.index) > 0, what="load")
    await pilot.pause(0.1)


def lines(app: JobsApp) -> list[str]:
    return screen_text(app).splitlines()


def run(coro) -> None:  # noqa: ANN001
    asyncio.run(coro)


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

    wide = asyncio.run(go((200, 40)))
    assert any(user in line for line in wide)
    narrow = asyncio.run(go((80, 24)))
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
            await pilot.press("g")
            await until(pilot, lambda: isinstance(app.screen, AskScreen), what="ask")
            await pilot.press(*"fa11", "enter")
            await until(pilot, lambda: app.screen.table.cursor_id.startswith("fa11"),
                        what="the job selected")

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

    narrow, text = asyncio.run(go((80, 24)))
    assert "9c0ffee000000000000000000000qc01" in text
    assert "#0 running 70%, 3 problems" in text
    assert any("geno_chr1.tsv" in line and "fields" in line for line in text.splitlines())
    seeded.r.hset(seeded.keys.job("9c0ffee000000000000000000000qc01"), "job_type",
                  "qc-files-with-a-long-type-name")
    wide, text = asyncio.run(go((200, 50)))
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
    seeded.r.hset(seeded.keys.job("c0ffee00000000000000000000000qc2"), "host", "node-b")

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
            assert [app.index.row(i).host for i in range(len(app.index))] == ["node-b"]

    run(go())


def test_pulse_is_drawn_from_memory_with_no_server_command(config: Config, seeded: Store,
                                                           tmp_path: Path) -> None:
    """Capability e: started/completed/failed per minute, p50/p95, failure rate; frames
    cost the server nothing."""
    def calls() -> int:
        stats = seeded.r.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")

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

    assert asyncio.run(shown("type:qc status:running")) == {"9c0ffee0", "broken00"}
    assert asyncio.run(shown("user:carol type:insert")) == {"1a5e4700", "dead0000"}
    assert asyncio.run(shown("9cff")) == {"9c0ffee0"}
    assert asyncio.run(shown("-host:node-a")) == {"broken00"}


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
            await until(pilot, lambda: app.screen.table.marked, what="marks")
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
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            help_rows = {desc for _, desc in app.screen.rows}
            assert set(wanted) <= help_rows

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
