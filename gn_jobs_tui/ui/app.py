"""The console app: where data arrives, views change, and screens meet.

Data comes only from the `Feed` (asyncio workers posting messages) and is
put in the `JobIndex`; sorts and filters of big indexes are built in thread
workers (see `ordering`); admin actions run in thread workers through the
core (see `actions`). Nothing here reads Redis on the UI thread.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.model import Job
from gn_jobs_tui.processors.base import fmt_duration
from gn_jobs_tui.ui import ordering, settings
from gn_jobs_tui.ui.actions import Actions, Target
from gn_jobs_tui.ui.feed import Feed
from gn_jobs_tui.ui.messages import (
    ActionDone,
    Connection,
    Found,
    JobsChanged,
    JobsLoaded,
    KeysChanged,
    OrderBuilt,
    OrderPreview,
    Polled,
    Selected,
)
from gn_jobs_tui.ui.model import JobIndex
from gn_jobs_tui.ui.ordering import Build, Result, View
from gn_jobs_tui.ui.query import Query
from gn_jobs_tui.ui.rows import Row
from gn_jobs_tui.ui.screens.detail import DetailScreen
from gn_jobs_tui.ui.screens.dialogs import HelpScreen
from gn_jobs_tui.ui.screens.main import MainScreen
from gn_jobs_tui.ui.timefmt import ago
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

#: Changes held while paused; past this the console resumes by itself (memory).
HOLD_LIMIT = 200_000
#: Index work per turn of the message queue, and jobs per slice of a page.
STEP = 0.015
SLICE = 1000
PREVIEW_ROWS = 80


class JobsApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "gn-jobs"
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, config: Config, *, user: str | None = None,
                 clock: Callable[[], float] | None = None, server_label: str | None = None,
                 poll_interval: float = 3.0, tick: float = 1.0,
                 settings_path: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.clock = clock or time.time
        self.index = JobIndex(self.clock)
        if user:
            self.index.reset(View(user=user))
        self.server_label = server_label or (
            "embedded server" if config.embedded else config.display_url)
        self.feed = Feed(config, self.post_message, poll_interval=poll_interval)
        self.poll_interval = poll_interval
        self.tick = tick
        self.link_state: tuple[bool, str, float] | None = None
        self.notes: tuple[str, ...] = ()
        self.pending_select: str | None = None
        self.loaded_all = False
        self.settings_path = settings_path or settings.default_path()
        self.settings = settings.load(self.settings_path)
        self.actions = Actions(self)
        self.paused_since: float | None = None
        self.polled = False
        self.last_data: float | None = None
        self._inbox: deque[Message] = deque()  # data in, taken into the index in order
        self._drain_pending = False
        self._reload_asked = False

    def on_mount(self) -> None:
        self.push_screen(MainScreen())
        self.run_feed()
        if self.tick:
            self.set_interval(self.tick, self._tick)
        if self.settings.problem:
            self.notify(self.settings.problem, severity="warning", timeout=8)

    def on_unmount(self) -> None:
        """Blank the screen before the terminal leaves the alternate screen.

        tmux keeps the alternate screen's last frame in the shell's history when
        the terminal was resized while it showed: erased lines leave nothing.
        """
        driver = getattr(self, "_driver", None)
        if driver is not None and not self.is_headless:
            rows = self.size.height
            driver.write("".join(f"\x1b[{y};1H\x1b[2K" for y in range(1, rows + 1)) + "\x1b[H")
            driver.flush()

    @work(exclusive=True, group="feed")
    async def run_feed(self) -> None:
        try:
            await self.feed.run()
        finally:
            await self.feed.aclose()

    def _tick(self) -> None:
        """The clock moved: time cells that changed, and the top bar (no fetch)."""
        main = self.main_screen()
        if self.paused_since is None and main is not None and self.screen is main:
            main.table.tick()
        self.sync_bars()

    # -- screens ------------------------------------------------------------------
    def main_screen(self) -> MainScreen | None:
        """The job table's screen, once its table exists (data may arrive before)."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen) and screen.ready:
                return screen
        return None

    def current_job(self) -> Row | None:
        main = self.main_screen()
        return main.table.current() if main is not None else None

    def open_job(self, job_id: str) -> None:
        self.push_screen(DetailScreen(job_id))

    def reveal(self, job_id: str) -> None:
        """Select a job in the table, clearing the filters if they hide it."""
        main = self.main_screen()
        if main is None:
            return
        if self.index.row_of(job_id) is None and self.index.target.filtered:
            main.query_one("#filter", Input).value = ""
            self.set_view(query=Query(), status=None, user=None)
        if not main.table.select(job_id):
            self.pending_select = job_id

    def sync_bars(self) -> None:
        """Only the visible screen's bar: the others sync when they show again."""
        for bar in self.screen.query(StatusBar):
            bar.sync()

    # -- data in ------------------------------------------------------------------
    def _seen_data(self) -> None:
        self.last_data = time.monotonic()

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        self._seen_data()
        if message.reset and self.paused_since is not None:
            self._inbox.clear()  # a reload replaces everything held
        self._inbox.append(message)
        self._drain()

    def on_jobs_changed(self, message: JobsChanged) -> None:
        self._seen_data()
        self._inbox.append(message)
        self._drain()

    def _drain(self) -> None:
        """Take what arrived into the index, in order, a bounded slice of work at a time.

        A page of 5,000 jobs costs tens of milliseconds: taken in slices, with the
        rest left for after the messages queued meanwhile (keys, repaints), the UI
        never waits on it. While paused, nothing is taken: it waits here.
        """
        self._drain_pending = False
        if self.paused_since is not None:
            if self.waiting_count() > HOLD_LIMIT:
                self.notify("too many changes while paused: live again", severity="warning")
                self.toggle_pause()
            else:
                self.sync_bars()
            return
        deadline = time.perf_counter() + STEP
        inbox = self._inbox
        while inbox:
            message = inbox[0]
            if isinstance(message, JobsLoaded):
                if len(message.jobs) > SLICE:
                    part = JobsLoaded(message.jobs[:SLICE], reset=message.reset)
                    message.jobs, message.reset = message.jobs[SLICE:], False
                else:
                    part = inbox.popleft()  # type: ignore[assignment]
                self._load(part)
            else:
                inbox.popleft()
                if isinstance(message, JobsChanged):
                    self._apply(message.jobs, message.removed)
            if time.perf_counter() > deadline:
                break
        if inbox and not self._drain_pending:
            self._drain_pending = True
            self.call_later(self._drain)

    def on_polled(self, message: Polled) -> None:
        self.polled = True
        self._seen_data()

    def _load(self, message: JobsLoaded) -> None:
        main = self.main_screen()
        before = main.table.window() if main is not None else []
        if message.reset:
            self.index.clear()
            self.index.loading = True
        changed = self.index.add_page(message.jobs)
        if message.complete:
            self.index.loading = False
            if self._reload_asked:
                self._reload_asked = False
                self.notify(f"reloaded {len(self.index.jobs):,} jobs from the server", timeout=3)
        self.loaded_all = message.complete
        # The loaded jobs live as long as the console and hold no cycles: keep the
        # cyclic collector from walking all of them again and again (a stall of
        # tenths of a second per pass at a million jobs).
        gc.freeze()
        self._run_builds()
        self._redraw(changed, before)

    def _apply(self, jobs: Iterable[Job], removed: Iterable[str] = (), *,
               redraw: bool = True) -> None:
        """Changed and removed jobs into the index, and on screen (`redraw`: kept for
        subclasses that time it)."""
        main = self.main_screen()
        before = main.table.window() if main is not None else []
        changed = self.index.upsert(jobs)
        gone = self.index.remove(removed)
        self._run_builds()
        if changed or gone:
            self._redraw(changed + gone, before)
        self.sync_bars()

    def _redraw(self, changed: list[Row], before: list[str]) -> None:
        main = self.main_screen()
        if main is not None:
            main.table.refresh_changed(changed, before)
            if self.pending_select and main.table.select(self.pending_select):
                self.pending_select = None
        screen = self.screen
        if isinstance(screen, DetailScreen) and any(j.job_id == screen.job_id for j in changed):
            screen.poke()
        self.sync_bars()

    def on_keys_changed(self, message: KeysChanged) -> None:
        if isinstance(self.screen, DetailScreen) and self.screen.job_id == message.job_id:
            self.screen.poke()

    def on_connection(self, message: Connection) -> None:
        self.link_state = (message.ok, message.error, message.retry_in)
        if message.ok:
            self._seen_data()
        if message.ok or message.notes:
            self.notes = tuple(message.notes)
        main = self.main_screen()
        if main is not None:
            main.table.set_class(not message.ok, "-stale")
        self.sync_bars()

    def reload(self) -> None:
        if self.paused_since is not None:
            self.toggle_pause()
        self._reload_asked = True
        self.notify("reloading every job from the server…", timeout=2)
        self.feed.request_reload()

    # -- pause --------------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.paused_since is None:
            self.paused_since = time.monotonic()
            self.notify("live updates paused: changes wait until p is pressed again", timeout=3)
        else:
            waiting = self.waiting_count()
            self.paused_since = None
            self._drain()
            self.notify(f"live again: {waiting:,} changes applied", timeout=2)
        self.sync_bars()

    def waiting_count(self) -> int:
        return sum(len(getattr(m, "jobs", ())) + len(getattr(m, "removed", ()))
                   for m in self._inbox)

    def paused_for(self) -> str:
        if self.paused_since is None:
            return ""
        return fmt_duration(time.monotonic() - self.paused_since)

    def freshness(self) -> str:
        """How old the data shown is (or how long it has been paused)."""
        since = self.paused_since if self.paused_since is not None else self.last_data
        if since is None:
            return "never"
        return ago(since, time.monotonic())

    def stale_for(self) -> float | None:
        """Seconds since the last sign of life from the server, if that is too long."""
        if not self.polled or self.last_data is None:
            return None
        age = time.monotonic() - self.last_data
        return age if age > max(10.0, 2.5 * self.poll_interval) else None

    # -- the view: sorts and filters -------------------------------------------------
    def set_view(self, **changes: Any) -> None:
        view = self.index.target.with_(**changes)
        if view.sort_key == "elapsed" and "sort_key" in changes:
            view = view.with_(now=self.clock())
        self.index.set_view(view)
        self._run_builds()
        main = self.main_screen()
        if main is not None:
            main.table.refresh_rows()
        self.sync_bars()

    def _run_builds(self) -> None:
        """Run what the index owes: small builds now, big ones in a worker thread."""
        while (build := self.index.next_build()) is not None:
            build.started = True
            if len(build.source) <= self.index.sync_limit:
                self.index.finish(build, ordering.run(build))
                continue
            # Described: Textual would otherwise describe it by repr() of its arguments,
            # a million jobs long.
            self.run_worker(partial(self._build_in_thread, build), name="order",
                            description="sort/filter build", thread=True, group="order")
            return

    def _build_in_thread(self, build: Build) -> None:
        # A full collection walks every list of a million jobs (tenths of a second,
        # holding the GIL); the build makes garbage fast enough to set one off.
        enabled = gc.isenabled()
        gc.disable()
        try:
            result = ordering.run(build, PREVIEW_ROWS,
                                  lambda rows: self.post_message(OrderPreview(build, rows)))
            build.source = []  # the snapshot is done with: freed now, never walked
            # The new lists live until the next sort: out of the collector's way, as the
            # rows are (walking a list of a million costs a tenth of a second).
            gc.freeze()
        finally:
            if enabled:
                gc.enable()
        self.post_message(OrderBuilt(build, result))

    def on_order_preview(self, message: OrderPreview) -> None:
        if message.build is self.index.building:
            self.index.preview = message.rows
            main = self.main_screen()
            if main is not None:
                main.table.refresh_rows()

    def on_order_built(self, message: OrderBuilt) -> None:
        build, result = message.build, message.result
        if isinstance(build, Build) and (result is None or isinstance(result, Result)):
            self.index.finish(build, result)
        self._run_builds()
        main = self.main_screen()
        if main is not None:
            main.table.refresh_rows()
            if self.pending_select and main.table.select(self.pending_select):
                self.pending_select = None
        self.sync_bars()

    # -- settings -----------------------------------------------------------------
    def toggle_times(self) -> None:
        self.settings.relative_times = not self.settings.relative_times
        self._save_settings()
        self.notify("times: " + ("relative (3m ago)" if self.settings.relative_times
                                 else "absolute (UTC)"), timeout=1.5)
        main = self.main_screen()
        if main is not None:
            main.table.refresh_rows()

    def choose_columns(self) -> None:
        from gn_jobs_tui.ui.screens.columns import ColumnsScreen

        def chosen(columns: list[str] | None) -> None:
            if columns and columns != self.settings.columns:
                self.settings.columns = columns
                self._save_settings()
                main = self.main_screen()
                if main is not None:
                    main.table.refresh_rows()

        self.push_screen(ColumnsScreen(self.settings.columns), chosen)

    def _save_settings(self) -> None:
        problem = settings.save(self.settings, self.settings_path)
        if problem:
            self.notify(problem, severity="error")

    # -- actions --------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen, self.notes, self.config.read_only))

    def ask_launch(self) -> None:
        self.actions.ask_launch()

    def ask_kill(self, jobs: list[Target]) -> None:
        self.actions.ask_kill(jobs)

    def ask_retry(self, jobs: list[Target]) -> None:
        self.actions.ask_retry(jobs)

    def ask_goto(self) -> None:
        self.actions.ask_goto()

    def ask_cleanup(self) -> None:
        self.actions.ask_cleanup()

    def select_matching(self, what: str) -> None:
        self.actions.select_matching(what)

    def copy_job(self, job: Target | None, *, command: bool) -> None:
        self.actions.copy_job(job, command=command)

    def on_selected(self, message: Selected) -> None:
        self.actions.selected(message)

    def on_found(self, message: Found) -> None:
        self.actions.found(message)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information",
                    timeout=6 if message.error else 4)
        if not message.select:
            return
        if isinstance(self.screen, DetailScreen):
            # A retry from the drill-down: follow the new job there.
            self.switch_screen(DetailScreen(message.select))
        main = self.main_screen()
        if not (main and main.table.select(message.select)):
            self.pending_select = message.select

    # -- command palette: the same actions as the keys ------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = {"app.help", "help", "app.quit", "quit", "refuse_write"}
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.action in seen:
                continue
            if active.node is not screen and active.node is not self:
                continue  # the focused widget's own keys (cursor moves) are not commands
            seen.add(binding.action)
            yield SystemCommand(binding.description, f"key: {self.get_key_display(binding)}",
                                partial(self.run_action, binding.action, active.node))
