"""Pulse: what the last hour looked like, as bars rather than rows to read.

Per-minute started / completed / failed for all jobs and each type, p50/p95
durations per type, and the current failure rate; all from memory (see
`ui.pulse`), redrawn every couple of seconds only when a figure changed.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from gn_jobs_tui.processors.base import fmt_duration
from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.pulse import WINDOW, Pulse, Series, compute, spark
from gn_jobs_tui.ui.widgets.footer import JobsFooter
from gn_jobs_tui.ui.widgets.status_bar import StatusBar

EVERY = 2.0
MAX_TYPES = 8


def buckets_for(width: int) -> int:
    """One bar a minute if it fits, else one per two or three minutes."""
    room = width - 34
    return 60 if room >= 60 else 30 if room >= 30 else 20


def rate_text(failed: int, finished: int) -> Text:
    if not finished:
        return Text("no job finished", style="dim")
    rate = failed / finished
    style = "bold red" if rate >= 0.2 else "yellow" if rate > 0 else "green"
    return Text.assemble((f"{rate:.0%}", style), f" ({failed} of {finished} finished)")


def render(pulse: Pulse) -> RenderableType:
    minutes = pulse.bucket_seconds / 60
    finished = sum(f.finished for f in pulse.types)
    failed = sum(sum(f.series.failed) for f in pulse.types)
    head = Text.assemble(
        ("Pulse", "bold"), f" · last hour, a bar per {minutes:g} min · from memory\n",
        ("failure rate, last 15 min: ", "bold"),
        rate_text(pulse.recent_failed, pulse.recent_finished), ("  · last hour: ", "bold"),
        rate_text(failed, finished))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, max_width=14)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)

    def block(name: str, series: Series) -> None:
        for i, (label, values, style) in enumerate((
                ("started", series.started, "cyan"),
                ("completed", series.completed, "green"),
                ("failed", series.failed, "red"))):
            grid.add_row(Text(name if i == 0 else "", style="bold"), label,
                         spark(values, style), str(sum(values)))

    block("all types", pulse.overall)
    for figures in pulse.types[:MAX_TYPES]:
        grid.add_row("", "", "", "")
        block(figures.job_type, figures.series)
    if len(pulse.types) > MAX_TYPES:
        grid.add_row(Text(f"… {len(pulse.types) - MAX_TYPES} more types", style="dim"), "", "", "")
    durations = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("type", "finished", "failed", "p50", "p95"):
        durations.add_column(col, justify="left" if col == "type" else "right", no_wrap=True)
    for figures in pulse.types:
        if not figures.finished:
            continue
        p50, p95 = figures.percentile(50), figures.percentile(95)
        durations.add_row(figures.job_type, str(figures.finished),
                          Text(str(figures.failed), style="red" if figures.failed else ""),
                          fmt_duration(p50) if p50 is not None else "-",
                          fmt_duration(p95) if p95 is not None else "-")
    if not any(f.finished for f in pulse.types):
        durations.add_row("-", "0", "0", "-", "-")
    title = Text("durations of the jobs that finished in the last hour", style="bold")
    return Group(head, Text(""), grid, Text(""), title, durations)


class PulseScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._drawn: object = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll(id="pulse"):
            yield Static(Text("…", style="dim"), id="pulse-body")
        yield JobsFooter()

    def on_mount(self) -> None:
        self.draw()
        self.set_interval(EVERY, self.draw)

    def on_resize(self) -> None:
        self._drawn = None
        self.draw()

    def draw(self) -> None:
        app = jobs_app(self)
        now = app.clock()
        pulse = compute(app.index.recent_jobs(now - WINDOW), now, buckets_for(self.size.width))
        signature = (pulse.buckets, pulse.overall, [(f.job_type, f.series, f.finished, f.failed,
                                                     f.percentile(50), f.percentile(95))
                                                    for f in pulse.types],
                     pulse.recent_finished, pulse.recent_failed)
        if signature == self._drawn:
            return
        self._drawn = signature
        self.query_one("#pulse-body", Static).update(render(pulse))

    def action_back(self) -> None:
        self.app.pop_screen()
