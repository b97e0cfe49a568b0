"""The audit trail: who launched, killed, retried or cleaned up what, and when."""

from __future__ import annotations

import redis
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.processors.base import fmt_time
from gn_jobs_tui.ui.widgets.status_bar import StatusBar


class AuditScreen(Screen[None]):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("ctrl+r", "load", "Reload"),
                Binding("question_mark", "app.help", "Help")]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll(id="audit"):
            yield Static(Text("loading…", style="dim"), id="audit-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_load()

    @work(exclusive=True, group="audit")
    async def action_load(self) -> None:
        body = self.query_one("#audit-body", Static)
        try:
            rows = await self.app.feed.store.audit_log(200)  # type: ignore[attr-defined]
        except (redis.RedisError, OSError) as exc:
            body.update(Text(redact_text(f"cannot read the audit stream: {exc}",
                                         self.app.config.url), style="bold red"))  # type: ignore[attr-defined]
            return
        table = Table(title="admin actions, newest first", title_justify="left", box=None,
                      pad_edge=False, show_edge=False, expand=True)
        for col in ("when", "who", "action", "job", "detail"):
            table.add_column(col, overflow="fold")
        for r in rows:
            try:
                when = fmt_time(float(r.get("at") or 0))
            except ValueError:
                when = "?"
            table.add_row(when, f"{r.get('by_user', '?')}@{r.get('by_host', '?')}",
                          r.get("action", "?"), r.get("job_id", "")[:8], r.get("detail", ""))
        if not rows:
            table.add_row("-", "-", "-", "-", "no admin actions recorded yet")
        body.update(table)

    def action_back(self) -> None:
        self.app.pop_screen()
