"""The all-jobs screen: the table, its filters, sort, marks and the actions on jobs."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.ordering import SORT_KEYS
from gn_jobs_tui.ui.query import Query
from gn_jobs_tui.ui.widgets.footer import JobsFooter
from gn_jobs_tui.ui.widgets.job_table import JobTable
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

STATUS_CYCLE = [None, "running", "queued", "failed", "killed", "lost", "completed"]
#: Actions that write; in read-only mode they are not offered (and a key says why).
WRITE_ACTIONS = frozenset({"launch", "kill", "retry", "kill_matching", "retry_matching",
                           "cleanup"})


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("slash", "filter", "Filter"),
        Binding("u", "users", "User"),
        Binding("f", "status_filter", "Status filter", show=False),
        Binding("o", "sort", "Sort by next column", show=False),
        Binding("O", "reverse", "Reverse order", show=False),
        Binding("t", "times", "Relative/absolute times", show=False),
        Binding("C", "columns", "Columns", show=False),
        Binding("g", "goto", "Go to job id", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("M", "mark_matching", "Mark all matching", show=False),
        Binding("c", "copy_id", "Copy full id", show=False),
        Binding("y", "copy_command", "Copy gn-jobs show command", show=False),
        Binding("p", "pause", "Pause"),
        Binding("h", "hosts", "Hosts"),
        Binding("s", "pulse", "Pulse"),
        Binding("l", "launch", "Launch"),
        Binding("k", "kill", "Kill"),
        Binding("r", "retry", "Retry"),
        Binding("K", "kill_matching", "Kill all running matching", show=False),
        Binding("R", "retry_matching", "Retry all failed matching", show=False),
        Binding("X", "cleanup", "Clean up old finished jobs", show=False),
        Binding("a", "audit", "Audit trail", show=False),
        Binding("ctrl+r", "reload", "Reload from Redis", show=False),
        Binding("escape", "clear", "Clear filter, marks", show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
        # Read-only: the write keys say why they do nothing (no description: not listed).
        Binding("l,k,r,K,R,X", "refuse_write", "", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._table: JobTable | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield JobTable(jobs_app(self).index, id="jobs")
        yield Input(placeholder="filter: words, user:alice type:qc status:failed host:node-a "
                    "-user:bot (Enter keeps, Esc clears)", id="filter")
        yield JobsFooter()

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    @property
    def ready(self) -> bool:
        """Its table is there: messages arrive before it is mounted and while the app
        shuts down, when it is already gone."""
        table = self._table
        return table is not None and table.is_attached and table.is_running

    def on_mount(self) -> None:
        self._table = self.table
        self._table.focus()

    def on_unmount(self) -> None:
        self._table = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        read_only = jobs_app(self).config.read_only
        if action == "refuse_write":
            return read_only
        if action in WRITE_ACTIONS and read_only:
            return False
        return True

    # -- navigation and filters ------------------------------------------------
    def on_job_table_opened(self, message: JobTable.Opened) -> None:
        jobs_app(self).open_job(message.job_id)

    def on_job_table_sort_requested(self, message: JobTable.SortRequested) -> None:
        app = jobs_app(self)
        target = app.index.target
        reverse = (not target.reverse if message.key == target.sort_key
                   else message.key in ("created", "started", "finished", "elapsed"))
        app.set_view(sort_key=message.key, reverse=reverse)

    def action_open(self) -> None:
        self.table.key_enter()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def set_filter_text(self, text: str) -> None:
        box = self.query_one("#filter", Input)
        box.value = text  # Input.Changed applies it
        box.set_class(bool(text), "-shown")
        jobs_app(self).set_view(query=Query.parse(text))

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        jobs_app(self).set_view(query=Query.parse(event.value))

    @on(Input.Submitted, "#filter")
    def filter_done(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        app = jobs_app(self)
        if box.value or box.has_class("-shown"):
            box.value = ""
            box.remove_class("-shown")
            self.table.focus()
        elif self.table.marked:
            self.table.marked.clear()
            self.table.refresh()
        elif app.index.target.status or app.index.target.user:
            app.set_view(status=None, user=None)

    def action_status_filter(self) -> None:
        app = jobs_app(self)
        current = app.index.target.status
        cycle = STATUS_CYCLE if current in STATUS_CYCLE else [current, *STATUS_CYCLE]
        app.set_view(status=cycle[(cycle.index(current) + 1) % len(cycle)])

    def action_sort(self) -> None:
        app = jobs_app(self)
        shown = [c for c, _ in self.table.visible_columns()]
        order = [c.key for c in shown if c.key in SORT_KEYS]
        if "created" not in order:
            order.insert(0, "created")
        current = app.index.target.sort_key
        nxt = order[(order.index(current) + 1) % len(order)] if current in order else order[0]
        app.set_view(sort_key=nxt, reverse=nxt in ("created", "started", "finished", "elapsed"))
        self.notify(f"sorted by {nxt}", timeout=1.5)

    def action_reverse(self) -> None:
        app = jobs_app(self)
        app.set_view(reverse=not app.index.target.reverse)

    def action_times(self) -> None:
        jobs_app(self).toggle_times()

    def action_columns(self) -> None:
        jobs_app(self).choose_columns()

    def action_users(self) -> None:
        app = jobs_app(self)
        index = app.index

        def chosen(user: str | None) -> None:
            app.set_view(user=user)

        from gn_jobs_tui.ui.screens.dialogs import UserScreen

        self.app.push_screen(UserScreen(index.users(), len(index.jobs), index.target.user), chosen)

    def action_goto(self) -> None:
        jobs_app(self).ask_goto()

    def action_mark(self) -> None:
        self.table.toggle_mark()

    def action_mark_matching(self) -> None:
        jobs_app(self).select_matching("mark")

    def action_copy_id(self) -> None:
        jobs_app(self).copy_job(self.table.current(), command=False)

    def action_copy_command(self) -> None:
        jobs_app(self).copy_job(self.table.current(), command=True)

    def action_pause(self) -> None:
        jobs_app(self).toggle_pause()

    def action_hosts(self) -> None:
        from gn_jobs_tui.ui.screens.hosts import HostsScreen

        self.app.push_screen(HostsScreen())

    def action_pulse(self) -> None:
        from gn_jobs_tui.ui.screens.pulse import PulseScreen

        self.app.push_screen(PulseScreen())

    def action_audit(self) -> None:
        from gn_jobs_tui.ui.screens.audit import AuditScreen

        self.app.push_screen(AuditScreen())

    def action_reload(self) -> None:
        jobs_app(self).reload()

    # -- admin actions ------------------------------------------------------------
    def action_launch(self) -> None:
        jobs_app(self).ask_launch()

    def action_kill(self) -> None:
        jobs_app(self).ask_kill(self.table.targets())

    def action_retry(self) -> None:
        jobs_app(self).ask_retry(self.table.targets())

    def action_kill_matching(self) -> None:
        jobs_app(self).select_matching("kill")

    def action_retry_matching(self) -> None:
        jobs_app(self).select_matching("retry")

    def action_cleanup(self) -> None:
        jobs_app(self).ask_cleanup()

    def action_refuse_write(self) -> None:
        self.notify("read-only mode: launch, kill, retry and clean-up are not offered "
                    "(the console was started with --read-only)", severity="warning")
