"""Hosts: every host that ran jobs, its running jobs, heartbeat health, lost jobs, last seen.

Counted by the index as jobs arrive (no Redis read here, no pass over all
jobs per frame); redrawn every couple of seconds only if a figure changed.
Enter filters the job table to the host.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.model import HostStat
from gn_jobs_tui.ui.timefmt import absolute, ago
from gn_jobs_tui.ui.widgets.footer import JobsFooter
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

EVERY = 2.0


def health(stat: HostStat) -> Text:
    """Heartbeats of the host's running jobs: all alive, some lapsed, or not ours to judge."""
    if not stat.running and not stat.lapsed:
        return Text("-", style="dim")
    parts = []
    if stat.alive:
        parts.append((f"{stat.alive} alive", "green"))
    if stat.lapsed:
        parts.append((f"{stat.lapsed} lapsed", "bold red"))
    if stat.unknown:
        parts.append((f"{stat.unknown} unknown", "dim"))
    text = Text()
    for i, (label, style) in enumerate(parts):
        if i:
            text.append(", ")
        text.append(label, style=style)
    return text


class HostsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Show its jobs"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []
        self._drawn: object = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static(Text("hosts with supervisors, most running first · Enter shows a host's "
                          "jobs", style="dim"), id="hosts-title")
        yield DataTable(id="hosts", cursor_type="row", zebra_stripes=True)
        yield JobsFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in ("host", "running", "heartbeats", "lost", "failed", "finished", "last seen"):
            table.add_column(name, key=name)
        table.focus()
        self.draw()
        self.set_interval(EVERY, self.draw)

    def draw(self) -> None:
        app = jobs_app(self)
        now, relative = app.clock(), app.settings.relative_times
        stats = {h: s for h, s in app.index.hosts.items() if sum(s.statuses.values()) > 0}
        order = sorted(stats, key=lambda h: (-stats[h].running, -stats[h].statuses["lost"], h))
        rows = []
        for host in order:
            s = stats[host]
            finished = sum(s.statuses[k] for k in ("completed", "failed", "killed", "lost"))
            lost = s.statuses["lost"]
            rows.append((host, str(s.running), health(s),
                         Text(str(lost), style="bold red" if lost else ""),
                         str(s.statuses["failed"]), str(finished),
                         ago(s.last_seen or None, now) if relative else absolute(s.last_seen)))
        signature = [(r[0], r[1], r[2].plain, r[3].plain, r[4], r[5], r[6]) for r in rows]
        if signature == self._drawn:
            return
        self._drawn = signature
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        if not rows:
            table.add_row("no host has run a job yet", "", "", "", "", "", "")
        self.hosts = order
        table.move_cursor(row=min(keep, max(0, len(rows) - 1)))

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.hosts or table.cursor_row >= len(self.hosts):
            return
        host = self.hosts[table.cursor_row]
        app = jobs_app(self)
        self.app.pop_screen()
        main = app.main_screen()
        if main is not None:
            text = " ".join(t for t in app.index.target.query.text.split()
                            if not t.startswith("host:"))
            main.set_filter_text(f"{text} host:{host}".strip())

    def action_back(self) -> None:
        self.app.pop_screen()
