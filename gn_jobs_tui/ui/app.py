"""The console: all-jobs table, user and text filters, drill-down, actions.

Data comes only from the `Feed` (asyncio workers posting messages); admin
actions run in thread workers through the core (`control`, `launcher`) and
post their result. In read-only mode no action that writes is offered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input

from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.jobtypes import registry
from gn_jobs_tui.core.keys import RETRYABLE_STATUSES, TERMINAL_STATUSES
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.feed import Feed
from gn_jobs_tui.ui.messages import ActionDone, Connection, JobsChanged, JobsLoaded, KeysChanged
from gn_jobs_tui.ui.model import COLUMNS, JobIndex
from gn_jobs_tui.ui.screens.audit import AuditScreen
from gn_jobs_tui.ui.screens.detail import DetailScreen
from gn_jobs_tui.ui.screens.dialogs import AskScreen, ConfirmScreen, HelpScreen, UserScreen
from gn_jobs_tui.ui.screens.launcher import LauncherScreen, LaunchRequest
from gn_jobs_tui.ui.widgets.job_table import JobTable
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

STATUS_CYCLE = [None, "running", "queued", "failed", "killed", "lost", "completed"]
WRITE_ACTIONS = {"launch", "kill", "retry"}


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("slash", "filter", "Filter"),
        Binding("u", "users", "User"),
        Binding("f", "status_filter", "Status filter", show=False),
        Binding("o", "sort", "Sort", show=False),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("g", "goto", "Go to id", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("l", "launch", "Launch"),
        Binding("k", "kill", "Kill"),
        Binding("r", "retry", "Retry"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("a", "audit", "Audit trail", show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield JobTable(self.app.index, id="jobs")  # type: ignore[attr-defined]
        yield Input(placeholder="filter: id, type, user, message (Enter keeps, Esc clears)",
                    id="filter")
        yield Footer(compact=True)

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    def on_mount(self) -> None:
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.app.config.read_only:  # type: ignore[attr-defined]
            return False
        return True

    # -- navigation and filters ------------------------------------------------
    def on_job_table_opened(self, message: JobTable.Opened) -> None:
        self.app.push_screen(DetailScreen(message.job_id))

    def on_job_table_sort_requested(self, message: JobTable.SortRequested) -> None:
        self.app.index.set_sort(message.key)  # type: ignore[attr-defined]
        self.table.refresh_rows()

    def action_open(self) -> None:
        self.table.key_enter()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.app.index.set_filter(text=event.value)  # type: ignore[attr-defined]
        self.table.refresh_rows()
        self.app.sync_bars()  # type: ignore[attr-defined]

    @on(Input.Submitted, "#filter")
    def filter_done(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        index: JobIndex = self.app.index  # type: ignore[attr-defined]
        if box.value or box.has_class("-shown"):
            box.value = ""
            box.remove_class("-shown")
            self.table.focus()
        elif self.table.marked:
            self.table.marked.clear()
            self.table.refresh()
        elif index.status or index.user:
            index.set_filter(status=None, user=None)
            self.table.refresh_rows()
            self.app.sync_bars()  # type: ignore[attr-defined]

    def action_status_filter(self) -> None:
        index: JobIndex = self.app.index  # type: ignore[attr-defined]
        nxt = STATUS_CYCLE[(STATUS_CYCLE.index(index.status) + 1) % len(STATUS_CYCLE)]
        index.set_filter(status=nxt)
        self.table.refresh_rows()
        self.app.sync_bars()  # type: ignore[attr-defined]

    def action_sort(self) -> None:
        index: JobIndex = self.app.index  # type: ignore[attr-defined]
        keys = [c.key for c in COLUMNS]
        order = ["created", *keys]
        nxt = order[(order.index(index.sort_key) + 1) % len(order)]
        index.set_sort(nxt)
        self.table.refresh_rows()
        self.notify(f"sorted by {nxt}", timeout=1.5)

    def action_reverse(self) -> None:
        index: JobIndex = self.app.index  # type: ignore[attr-defined]
        index.set_sort(index.sort_key, not index.reverse)
        self.table.refresh_rows()

    def action_users(self) -> None:
        index: JobIndex = self.app.index  # type: ignore[attr-defined]

        def chosen(user: str | None) -> None:
            index.set_filter(user=user)
            self.table.refresh_rows()
            self.app.sync_bars()  # type: ignore[attr-defined]

        self.app.push_screen(UserScreen(index.users(), len(index.jobs), index.user), chosen)

    def action_goto(self) -> None:
        def go(text: str | None) -> None:
            if not text:
                return
            index: JobIndex = self.app.index  # type: ignore[attr-defined]
            job_id = index.find(text)
            if job_id is None:
                self.notify(f"no single job matches {text!r}", severity="warning")
                return
            if job_id not in index.position:
                index.set_filter(text="", status=None, user=None)
                self.query_one("#filter", Input).value = ""
                self.table.refresh_rows()
            self.table.select(job_id)

        self.app.push_screen(AskScreen("Go to job", "job id or its first characters"), go)

    def action_mark(self) -> None:
        self.table.toggle_mark()

    def action_audit(self) -> None:
        self.app.push_screen(AuditScreen())

    def action_reload(self) -> None:
        self.app.feed.request_reload()  # type: ignore[attr-defined]

    # -- admin actions ------------------------------------------------------------
    def action_launch(self) -> None:
        self.app.ask_launch()  # type: ignore[attr-defined]

    def action_kill(self) -> None:
        self.app.ask_kill(self.table.targets())  # type: ignore[attr-defined]

    def action_retry(self) -> None:
        self.app.ask_retry(self.table.targets())  # type: ignore[attr-defined]


class JobsApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "gn-jobs"
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, config: Config, *, user: str | None = None,
                 clock: Callable[[], float] | None = None, server_label: str | None = None,
                 poll_interval: float = 3.0, tick: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.clock = clock or time.time
        self.index = JobIndex(self.clock)
        if user:
            self.index.set_filter(user=user)
        self.server_label = server_label or (
            "embedded server" if config.embedded else config.display_url)
        self.feed = Feed(config, self.post_message, poll_interval=poll_interval)
        self.link_state: tuple[bool, str, float] | None = None
        self.pending_select: str | None = None
        self.loaded_all = False
        self.tick = tick
        self._sync_store: Store | None = None
        self._last_load_redraw = 0.0

    def on_mount(self) -> None:
        self.push_screen(MainScreen())
        self.run_feed()
        if self.tick:
            self.set_interval(self.tick, self._tick)

    @work(exclusive=True, group="feed")
    async def run_feed(self) -> None:
        try:
            await self.feed.run()
        finally:
            await self.feed.aclose()

    def _tick(self) -> None:
        """Elapsed times move: redraw the visible rows (no fetch)."""
        if isinstance(self.screen, MainScreen):
            self.screen.table.refresh()

    # -- data in ------------------------------------------------------------
    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _apply(self, jobs: Iterable[Job], removed: Iterable[str] = (), *,
               redraw: bool = True) -> None:
        jobs = self.index.upsert(jobs)  # only those that really changed
        self.index.remove(removed)
        if not redraw:
            return
        main = self._main()
        if main is not None and main.is_mounted:
            if removed:
                main.table.refresh_rows()
            else:
                main.table.refresh_changed([j.job_id for j in jobs])
            if self.pending_select and self.pending_select in self.index.position:
                main.table.select(self.pending_select)
                self.pending_select = None
        if isinstance(self.screen, DetailScreen) and any(
                j.job_id == self.screen.job_id for j in jobs):
            self.screen.poke()
        self.sync_bars()

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        if message.reset:
            self.index.clear()
        self.loaded_all = message.complete
        # While the rest loads in the background, re-sort and redraw at most
        # twice a second: sorting 100,000 rows for each page would cost more
        # than reading them.
        now = time.monotonic()
        redraw = message.reset or message.complete or now - self._last_load_redraw > 0.5
        if redraw:
            self._last_load_redraw = now
        self._apply(message.jobs, redraw=redraw)

    def on_jobs_changed(self, message: JobsChanged) -> None:
        self._apply(message.jobs, message.removed)

    def on_keys_changed(self, message: KeysChanged) -> None:
        if isinstance(self.screen, DetailScreen) and self.screen.job_id == message.job_id:
            self.screen.poke()

    def on_connection(self, message: Connection) -> None:
        self.link_state = (message.ok, message.error, message.retry_in)
        main = self._main()
        if main is not None and main.is_mounted:
            main.table.set_class(not message.ok, "-stale")
        self.sync_bars()

    def sync_bars(self) -> None:
        """Only the visible screen's bar: the others sync when they show again."""
        for bar in self.screen.query(StatusBar):
            bar.sync()

    def status_text(self) -> Text:
        if self.link_state and not self.link_state[0]:
            _, error, retry = self.link_state
            return Text(f" ⚠ disconnected from {self.server_label} · reconnecting · data shown "
                        f"is stale · {error}")
        index = self.index
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ● " if self.link_state else " ○ ", style="bold green" if self.link_state else "dim")
        text.append(self.server_label)
        text.append(f"  {self.config.prefix}", style="bold")
        if self.config.read_only:
            text.append("  READ-ONLY", style="bold yellow")
        scope = [f"user {index.user}"] if index.user else []
        if index.status:
            scope.append(f"status {index.status}")
        if index.text:
            scope.append(f"“{index.text}”")
        if scope:
            text.append("  [" + ", ".join(scope) + f": {len(index.order)}]", style="bold cyan")
        text.append("  " + index.counts_text())
        if not self.loaded_all and self.link_state:
            text.append(f"  loading… {len(index.jobs)}", style="italic")
        return text

    # -- actions (thread workers through the core) ----------------------------------
    @property
    def sync_store(self) -> Store:
        if self._sync_store is None:
            self._sync_store = Store.from_url(self.config.url, self.config.prefix,
                                              self.config.read_only)
        return self._sync_store

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen))

    def ask_launch(self) -> None:
        if self.config.read_only:
            return

        def submitted(req: LaunchRequest | None) -> None:
            if req is not None:
                self.do_launch(req)

        main = self._main()
        current = main.table.current() if main is not None else None
        self.push_screen(LauncherScreen(registry(), current.job_type if current else None), submitted)

    @work(thread=True, group="actions")
    def do_launch(self, req: LaunchRequest) -> None:
        try:
            job_id = launch(self.sync_store, self.config, req.job_type, req.params, req.user)
        except Exception as exc:  # noqa: BLE001 - every failure is shown, none swallowed
            self.post_message(ActionDone(f"launch failed: {self._safe(exc)}", error=True))
            return
        self.post_message(ActionDone(f"launched {req.job_type} {job_id[:8]}", select=job_id))

    def ask_kill(self, jobs: list[Job]) -> None:
        if self.config.read_only or not jobs:
            return
        live = [j for j in jobs if j.effective_status not in TERMINAL_STATUSES or j.is_lost]
        if not live:
            self.notify("nothing to kill: the selected jobs have finished", severity="warning")
            return
        body = (f"Kill {self._names(live)}?\n\nEach job's supervisor, on its own host, sends "
                "SIGTERM to the job's whole process group, then SIGKILL after the grace period.")
        self.push_screen(ConfirmScreen(f"Kill {len(live)} job(s)", body, "Kill"),
                         lambda yes: self.do_admin("kill", live) if yes else None)

    def ask_retry(self, jobs: list[Job]) -> None:
        if self.config.read_only or not jobs:
            return
        ok = [j for j in jobs if j.effective_status in RETRYABLE_STATUSES]
        if not ok:
            self.notify("only failed, killed or lost jobs can be retried", severity="warning")
            return
        body = (f"Retry {self._names(ok)}?\n\nA new job of the same type, with the same "
                "parameters and user, starts for each (attempt + 1). Already retried jobs are "
                "not run twice.")
        self.push_screen(ConfirmScreen(f"Retry {len(ok)} job(s)", body, "Retry"),
                         lambda yes: self.do_admin("retry", ok) if yes else None)

    @staticmethod
    def _names(jobs: list[Job]) -> str:
        names = ", ".join(f"{j.short_id} ({j.job_type}, {j.effective_status})" for j in jobs[:5])
        return names + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")

    @work(thread=True, group="actions")
    def do_admin(self, verb: str, jobs: list[Job]) -> None:
        """Kill or retry each job through the core; every result or error is shown."""
        for job in jobs:
            try:
                if verb == "kill":
                    outcome = control.kill(self.sync_store, job.job_id, "console")
                    select = None
                else:
                    outcome = control.retry(self.sync_store, self.config, job.job_id)
                    select = outcome.job_id
                self.post_message(ActionDone(outcome.message, select=select))
            except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
                self.post_message(ActionDone(f"{verb} {job.short_id} failed: {self._safe(exc)}",
                                             error=True))

    def _safe(self, exc: BaseException) -> str:
        return redact_text(str(exc) or type(exc).__name__, self.config.url)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information",
                    timeout=6 if message.error else 4)
        if message.select:
            if isinstance(self.screen, DetailScreen):
                self.pop_screen()
            main = self._main()
            if not (main and main.table.select(message.select)):
                self.pending_select = message.select

    # -- command palette ------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            entries = [
                ("Filter jobs", "Filter by id, type, user or message (/)", screen.action_filter),
                ("Pick a user", "Show one user's jobs (u)", screen.action_users),
                ("Status filter", "Cycle the status filter (f)", screen.action_status_filter),
                ("Sort", "Sort by the next column (o)", screen.action_sort),
                ("Go to job", "Jump to a job by id (g)", screen.action_goto),
                ("Reload", "Reload every job from Redis (ctrl+r)", screen.action_reload),
                ("Audit trail", "Who launched, killed, retried what (a)", screen.action_audit),
            ]
            if not self.config.read_only:
                entries += [
                    ("Launch a job", "Open the launcher (l)", screen.action_launch),
                    ("Kill", "Kill the selected or marked jobs (k)", screen.action_kill),
                    ("Retry", "Retry the selected or marked jobs (r)", screen.action_retry),
                ]
            for title, help_text, callback in entries:
                yield SystemCommand(title, help_text, callback)
        elif isinstance(screen, DetailScreen) and not self.config.read_only:
            yield SystemCommand("Kill this job", "k", screen.action_kill)
            yield SystemCommand("Retry this job", "r", screen.action_retry)
