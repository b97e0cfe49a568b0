"""A table that renders only the rows on screen, keyed by job id.

Textual's DataTable builds every row up front (seconds for 100,000 rows);
this one draws the visible lines from the `JobIndex`, so 100,000 jobs cost
no more to show than 100. The cursor is a job id, not a row number: when
rows change, arrive or leave, the selection stays on the same job.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.processors.base import fmt_duration, fmt_time
from gn_jobs_tui.ui.model import COLUMNS, Column, JobIndex


class JobTable(ScrollView, can_focus=True):
    """All jobs: virtual rows, keyed cursor, marks (space), sort by header click."""

    DEFAULT_CSS = """
    JobTable { background: $surface; overflow-x: hidden; }
    JobTable > .job-table--header { text-style: bold; background: $panel; color: $text; }
    JobTable > .job-table--cursor { background: $accent 60%; color: $text; }
    JobTable:blur > .job-table--cursor { background: $accent 25%; }
    JobTable > .job-table--marked { color: $warning; text-style: bold; }
    JobTable > .job-table--damaged { color: $error; }
    JobTable > .job-table--dim { color: $text-muted; }
    JobTable.-stale { opacity: 60%; }
    """
    COMPONENT_CLASSES = {"job-table--header", "job-table--cursor", "job-table--marked",
                         "job-table--damaged", "job-table--dim"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    class Opened(Message):
        def __init__(self, job_id: str) -> None:
            self.job_id = job_id
            super().__init__()

    class SortRequested(Message):
        def __init__(self, key: str) -> None:
            self.key = key
            super().__init__()

    def __init__(self, index: JobIndex, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self.cursor_id: str | None = None
        self.marked: set[str] = set()
        self._strips: dict[tuple[object, ...], tuple[Job, Strip]] = {}

    # -- layout ---------------------------------------------------------------
    def visible_columns(self) -> list[tuple[Column, int]]:
        width = max(20, self.scrollable_content_region.width)
        cols = [c for c in COLUMNS if width >= c.min_screen]
        fixed = sum(c.width + 1 for c in cols if c.width)
        return [(c, c.width or max(8, width - fixed)) for c in cols]

    def refresh_changed(self, job_ids: list[str]) -> None:
        """Some jobs changed: repaint just their rows, unless rows moved."""
        if self.index.ensure_order() or self.cursor_id not in self.index.position:
            self.refresh_rows()
            return
        top = int(self.scroll_offset.y)
        bottom = top + self.size.height - 1
        for job_id in job_ids:
            row = self.index.position.get(job_id)
            if row is not None and top <= row < bottom:
                self.refresh_lines(row + 1)  # +1: line 0 is the header

    def refresh_rows(self) -> None:
        """Call after the index changed: re-sort if needed, keep the cursor's job."""
        self.index.ensure_order()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.index.order) + 1)
        if self.cursor_id not in self.index.position:
            self.cursor_id = self.index.order[0] if self.index.order else None
        self.marked &= self.index.jobs.keys()
        self._keep_cursor_visible()
        self.refresh()

    @property
    def cursor_row(self) -> int:
        return self.index.position.get(self.cursor_id, 0) if self.cursor_id else 0

    def select(self, job_id: str) -> bool:
        if job_id not in self.index.position:
            return False
        self.cursor_id = job_id
        self._keep_cursor_visible()
        self.refresh()
        return True

    def _keep_cursor_visible(self) -> None:
        rows = max(1, self.size.height - 1)
        row = self.cursor_row
        top = int(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + rows:
            self.scroll_to(y=row - rows + 1, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self.refresh_rows()

    # -- actions ----------------------------------------------------------------
    def action_cursor(self, delta: int) -> None:
        order = self.index.order
        if not order:
            return
        row = max(0, min(len(order) - 1, self.cursor_row + delta))
        self.select(order[row])

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        if self.index.order:
            self.select(self.index.order[-1 if end else 0])

    def toggle_mark(self) -> None:
        if self.cursor_id is None:
            return
        self.marked.symmetric_difference_update({self.cursor_id})
        self.action_cursor(1)
        self.refresh()

    def targets(self) -> list[Job]:
        """The marked jobs, or the job under the cursor."""
        ids = [i for i in self.index.order if i in self.marked] or (
            [self.cursor_id] if self.cursor_id else [])
        return [self.index.jobs[i] for i in ids if i in self.index.jobs]

    def current(self) -> Job | None:
        return self.index.jobs.get(self.cursor_id) if self.cursor_id else None

    def key_enter(self) -> None:
        if self.cursor_id:
            self.post_message(self.Opened(self.cursor_id))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = 0
            for col, width in self.visible_columns():
                if x <= event.x < x + width + 1:
                    self.post_message(self.SortRequested(col.key))
                    return
                x += width + 1
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self.index.order):
            job_id = self.index.order[row]
            if event.chain >= 2 and job_id == self.cursor_id:
                self.post_message(self.Opened(job_id))
            self.select(job_id)

    # -- drawing ------------------------------------------------------------------
    def cells(self, job: Job, now: float) -> dict[str, Text]:
        proc = for_type(job.job_type)
        verdict = proc.verdict(job)
        progress = job.progress
        if progress is None:
            prog = Text("")
        else:
            filled = int(progress / 100 * 4 + 0.5)
            prog = Text.assemble(("█" * filled, "green"), ("░" * (4 - filled), "grey42"),
                                 f"{progress:3.0f}%")
        status = Text(verdict.label, style=verdict.style)
        if job.damage:
            status = Text.assemble(("! ", "bold red"), status)
        return {
            "id": Text(job.short_id),
            "type": Text(job.job_type),
            "user": Text(job.user_id),
            "status": status,
            "progress": prog,
            "started": Text(fmt_time(job.started)[5:16] if job.started else "-"),
            "elapsed": Text(fmt_duration(job.elapsed(now))),
            "host": Text(job.host or ""),
            "message": Text(proc.summary(job)),
        }

    def _line(self, texts: list[tuple[Text, int]], base: Style) -> Strip:
        segments: list[Segment] = []
        for text, width in texts:
            text = text.copy()
            if text.style:
                # Text.render drops the base style of a Text without spans: make it a span.
                text.stylize(text.style, 0, len(text))
            text.truncate(width, overflow="ellipsis", pad=True)
            text.end = ""
            segments.extend(text.render(self.app.console, end=""))
            segments.append(Segment(" "))
        strip = Strip(segments).apply_style(base)
        return strip.crop_extend(0, self.scrollable_content_region.width, base)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_offset.y) + y - 1
        order = self.index.order
        if y > 0 and row < len(order):
            job_id = order[row]
            job = self.index.jobs[job_id]
            now = self.app.clock()  # type: ignore[attr-defined]
            # A changed job is a new Job object, so identity says whether a row
            # changed; only an unfinished job's elapsed time moves on its own.
            key = (job_id, width, job_id == self.cursor_id, job_id in self.marked,
                   int(now) if job.finished is None else 0, self.has_focus)
            cached = self._strips.get(key)
            if cached is not None and cached[0] is job:
                return cached[1]
            strip = self._job_line(job, now)
            if len(self._strips) > 4 * max(50, self.size.height):
                self._strips.clear()
            self._strips[key] = (job, strip)
            return strip
        cols = self.visible_columns()
        if y == 0:
            style = self.get_component_rich_style("job-table--header")
            titles = []
            for col, w in cols:
                arrow = ("▼" if self.index.reverse else "▲") if col.key == self.index.sort_key else ""
                titles.append((Text(col.title + arrow), w))
            return self._line(titles, style)
        if not order and y == 2:
            msg = Text("  no jobs match" if self.index.jobs else "  no jobs yet")
            return self._line([(msg, width)], self.get_component_rich_style("job-table--dim"))
        return Strip.blank(width, self.rich_style)

    def _job_line(self, job: Job, now: float) -> Strip:
        base = self.rich_style
        cells = self.cells(job, now)
        if job.job_id in self.marked:
            cells["id"] = Text("*" + job.short_id[1:])
            base = base + self.get_component_rich_style("job-table--marked")
        if job.job_id == self.cursor_id:
            base = base + self.get_component_rich_style("job-table--cursor")
        return self._line([(cells[c.key], w) for c, w in self.visible_columns()], base)

    def notify_style_update(self) -> None:
        """Theme or CSS changed: cached rows have the old colours."""
        self._strips.clear()
        super().notify_style_update()
