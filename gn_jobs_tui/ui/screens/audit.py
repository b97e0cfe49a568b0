"""The audit trail: who launched, killed, retried or cleaned up what, and when.

A table sized to its content (no wrapped ids at 80 columns, no wide gaps at
200); Enter opens the job a row is about.
"""

from __future__ import annotations

import redis
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.timefmt import absolute, ago
from gn_jobs_tui.ui.widgets.footer import JobsFooter
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

ROWS = 200


class AuditScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open job"),
        Binding("t", "times", "Relative/absolute times", show=False),
        Binding("ctrl+r", "load", "Reload"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static(Text("admin actions, newest first · loading…", style="dim"), id="audit-title")
        table: DataTable[Text | str] = DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        yield table
        yield JobsFooter()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.action_load()

    @work(exclusive=True, group="audit")
    async def action_load(self) -> None:
        app = jobs_app(self)
        title = self.query_one("#audit-title", Static)
        try:
            self.rows = await app.feed.store.audit_log(ROWS)
        except (redis.RedisError, OSError) as exc:
            title.update(Text(redact_text(f"cannot read the audit stream: {exc}", app.config.url),
                              style="bold red"))
            return
        title.update(Text(f"admin actions, newest first · {len(self.rows)} shown · "
                          "Enter opens the job", style="dim"))
        self.draw()

    def draw(self) -> None:
        app = jobs_app(self)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for name in ("when", "who", "action", "job", "detail"):
            table.add_column(name, key=name)
        now, relative = app.clock(), app.settings.relative_times
        for r in self.rows:
            try:
                at: float | None = float(r.get("at") or "")
            except ValueError:
                at = None
            when = ago(at, now) if relative else absolute(at, seconds=True)
            job = r.get("job_id", "")
            table.add_row(when, f"{r.get('by_user', '?')}@{r.get('by_host', '?')}",
                          r.get("action", "?"), job[:8] if job != "*" else "all",
                          Text(r.get("detail", ""), no_wrap=True), key=r.get("id") or None)
        if not self.rows:
            table.add_row("-", "-", "-", "-", "no admin actions recorded yet")

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return
        job_id = self.rows[table.cursor_row].get("job_id", "")
        if not job_id or job_id == "*":
            self.notify("this action is not about one job", severity="warning", timeout=2)
            return
        jobs_app(self).open_job(job_id)

    def action_times(self) -> None:
        jobs_app(self).toggle_times()
        self.draw()

    def action_back(self) -> None:
        self.app.pop_screen()
