"""A table that renders only the rows on screen, keyed by job id.

Textual's DataTable builds every row up front (seconds for 100,000 rows);
this one draws the visible lines from the `JobIndex`, so a million jobs cost
no more to show than a hundred. The cursor is a job id, not a row number:
when rows change, arrive or leave, the selection stays on the same job.

Nothing is redrawn that did not change: a changed job repaints its own line,
and the clock repaints only the time cells whose text moved (an idle table
with nothing running sends nothing to the terminal).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gn_jobs_tui.ui.access import jobs_app
from gn_jobs_tui.ui.columns import (
    COLUMNS,
    MARK_WIDTH,
    Column,
    cell,
    fit,
    layout,
    natural_width,
    timed_text,
)
from gn_jobs_tui.ui.model import JobIndex
from gn_jobs_tui.ui.rows import Row


class JobTable(ScrollView, can_focus=True):
    """All jobs: virtual rows, keyed cursor, marks (space), sort by header click."""

    DEFAULT_CSS = """
    JobTable { background: $surface; overflow-x: hidden; }
    JobTable > .job-table--header { text-style: bold; background: $panel; color: $text; }
    JobTable > .job-table--sort { text-style: bold; color: $accent; background: $panel; }
    JobTable > .job-table--cursor { background: $accent 60%; color: $text; }
    JobTable:blur > .job-table--cursor { background: $accent 25%; }
    JobTable > .job-table--marked { color: $warning; text-style: bold; }
    JobTable > .job-table--damaged { color: $error; }
    JobTable > .job-table--dim { color: $text-muted; }
    JobTable.-stale { opacity: 60%; }
    """
    COMPONENT_CLASSES = {"job-table--header", "job-table--sort", "job-table--cursor",
                         "job-table--marked", "job-table--damaged", "job-table--dim"}
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
        self._strips: dict[tuple[object, ...], tuple[Row, Strip]] = {}
        self._painted: dict[int, tuple[Row, tuple[str, ...]]] = {}
        self._layout: list[tuple[Column, int]] = []
        self._layout_key: tuple[object, ...] = ()
        self._status_seen = 6
        self._style_cache: tuple[bool, dict[str, Style]] | None = None
        self._cells: dict[tuple[object, ...], list[Segment]] = {}
        self._width = 80
        # Counted for tests and benchmarks: what an idle table must not do.
        self.full_refreshes = 0
        self.lines_rendered = 0
        self.cells_refreshed = 0

    # -- layout ---------------------------------------------------------------
    @property
    def relative(self) -> bool:
        return jobs_app(self).settings.relative_times

    def visible_columns(self) -> list[tuple[Column, int]]:
        width = max(20, self.scrollable_content_region.width)
        settings = jobs_app(self).settings
        key = (width, tuple(settings.columns), settings.relative_times, self._status_seen,
               self.index.distinct_version)
        if key != self._layout_key:
            cols = [COLUMNS[k] for k in settings.columns if k in COLUMNS]
            natural = {c.key: natural_width(c, self._values(c.key), settings.relative_times)
                       for c in cols}
            self._layout = layout(cols, natural, width)
            self._layout_key = key
            self._strips.clear()
        return self._layout

    def _values(self, key: str) -> list[str]:
        if key in ("user", "type", "host"):
            return self.index.distinct(key)
        if key == "status":
            return ["x" * self._status_seen]
        return []

    def _note_status_widths(self, jobs: list[Row]) -> None:
        """Grow the STATUS column to the labels seen (it never shrinks while running)."""
        for job in jobs:
            label = job.verdict.label
            width = len(label) + (2 if job.damage else 0)
            if width > self._status_seen:
                self._status_seen = min(COLUMNS["status"].high, width)

    # -- refreshing -------------------------------------------------------------
    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> JobTable:
        if repaint and not regions:
            self.full_refreshes += 1
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def window(self) -> list[str]:
        """Ids of the rows on screen, top to bottom."""
        top = int(self.scroll_offset.y)
        return [j.job_id for j in self.index.rows(top, top + max(1, self.size.height - 1))]

    def refresh_changed(self, jobs: list[Row], before: list[str]) -> None:
        """Some jobs changed: repaint just their lines, unless the rows on screen moved.

        `before`: `window()` taken before the index took the changes.
        """
        self._sync_size()
        if self.cursor_id is None and len(self.index) or (
                self.cursor_id is not None and self.index.row_of(self.cursor_id) is None
                and self.index.building is None):
            self.refresh_rows()  # the first rows arrived, or the cursor's job left the view
            return
        if self.window() != before:
            top = int(self.scroll_offset.y)
            self._note_status_widths(self.index.rows(top, top + self.size.height))
            self.refresh()
            return
        layout_key = self._layout_key
        self._note_status_widths(jobs)
        self.visible_columns()
        if self._layout_key != layout_key:
            self.refresh()  # a column grew: every line moves
            return
        width = self.size.width
        for y, (job, _timed) in list(self._painted.items()):
            if y < self.size.height and self.index.jobs.get(job.job_id) is not job:
                self.refresh(Region(0, y, width, 1))

    def _sync_size(self) -> None:
        size = Size(self.scrollable_content_region.width, len(self.index) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def refresh_rows(self) -> None:
        """Call after the index changed shape: keep the cursor's job, redraw."""
        self._sync_size()
        if self.cursor_id is None or self.index.row_of(self.cursor_id) is None:
            if self.index.building is None or self.cursor_id is None:
                self.cursor_id = self.index.row(0).job_id if len(self.index) else None
        if self.marked:
            self.marked &= self.index.jobs.keys()
        self._keep_cursor_visible()
        top = int(self.scroll_offset.y)
        self._note_status_widths(self.index.rows(top, top + self.size.height))
        self.refresh()

    def tick(self) -> None:
        """The clock moved: repaint the time cells whose text changed, nothing else."""
        if not self._painted:
            return
        app = jobs_app(self)
        now, relative = app.clock(), app.settings.relative_times
        x = MARK_WIDTH
        spans = []
        for col, width in self._layout:
            if col.timed:
                spans.append((col.key, x, width))
            x += width + 1
        if not spans:
            return
        for y, (job, timed) in list(self._painted.items()):
            if y >= self.size.height:
                continue
            fresh = tuple(timed_text(job, key, now, relative) for key, _, _ in spans)
            moved = [(x0, x0 + width) for (_key, x0, width), a, b
                     in zip(spans, timed, fresh, strict=False) if a != b]
            if moved:
                # One region per line: Textual writes a line's update from the widget's
                # left edge to the region's end, so two cells would write it twice.
                self.cells_refreshed += len(moved)
                x1, x2 = moved[0][0], moved[-1][1]
                self.refresh(Region(x1, y, x2 - x1, 1))

    # -- cursor -----------------------------------------------------------------
    @property
    def cursor_row(self) -> int:
        if self.cursor_id is None:
            return 0
        row = self.index.row_of(self.cursor_id)
        return 0 if row is None else row

    def select(self, job_id: str) -> bool:
        if self.index.row_of(job_id) is None:
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

    def action_cursor(self, delta: int) -> None:
        n = len(self.index)
        if not n:
            return
        row = max(0, min(n - 1, self.cursor_row + delta))
        self.select(self.index.row(row).job_id)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        n = len(self.index)
        if n:
            self.select(self.index.row(n - 1 if end else 0).job_id)

    def toggle_mark(self) -> None:
        if self.cursor_id is None:
            return
        self.marked.symmetric_difference_update({self.cursor_id})
        self.action_cursor(1)
        self.refresh()

    def targets(self) -> list[Row]:
        """The marked jobs (in table order), or the job under the cursor."""
        if self.marked:
            jobs = [self.index.jobs[i] for i in self.marked if i in self.index.jobs]
            rows = {j.job_id: self.index.row_of(j.job_id) for j in jobs}
            return sorted(jobs, key=lambda j: (rows[j.job_id] is None, rows[j.job_id] or 0))
        current = self.current()
        return [current] if current is not None else []

    def current(self) -> Row | None:
        return self.index.jobs.get(self.cursor_id) if self.cursor_id else None

    def key_enter(self) -> None:
        if self.cursor_id:
            self.post_message(self.Opened(self.cursor_id))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = MARK_WIDTH
            for col, width in self.visible_columns():
                if x <= event.x < x + width + 1:
                    self.post_message(self.SortRequested(col.key))
                    return
                x += width + 1
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self.index):
            job_id = self.index.row(row).job_id
            if event.chain >= 2 and job_id == self.cursor_id:
                self.post_message(self.Opened(job_id))
            self.select(job_id)

    # -- drawing ------------------------------------------------------------------
    def _styles(self) -> dict[str, Style]:
        """Component styles, looked up once per theme and focus state (not per line)."""
        key = self.has_focus
        if self._style_cache is None or self._style_cache[0] != key:
            names = ("header", "sort", "cursor", "marked", "dim")
            styles = {n: self.get_component_rich_style(f"job-table--{n}") for n in names}
            styles["base"] = self.rich_style
            self._style_cache = (key, styles)
        return self._style_cache[1]

    def _line(self, cells: list[tuple[Text | str, int]], base: Style, lead: str = " ") -> Strip:
        """One line: the mark column (`lead`), then each cell cut or padded to its width.

        Plain cells become one segment each; only styled cells go through Rich.
        """
        segments: list[Segment] = [Segment(fit(lead, MARK_WIDTH), base)]
        append = segments.append
        console = self.app.console
        for value, width in cells:
            if isinstance(value, str):
                append(Segment(fit(value, width) + " ", base))
                continue
            key = (value.plain, str(value.style), repr(value.spans), width, base)
            done = self._cells.get(key)
            if done is None:
                text = value.copy()
                if text.style:
                    # Text.render drops the base style of a Text without spans: a span.
                    text.stylize(text.style, 0, len(text))
                text.truncate(width, overflow="ellipsis", pad=True)
                text.end = ""
                done = [Segment(seg.text, base + seg.style if seg.style else base)
                        for seg in text.render(console, end="")]
                done.append(Segment(" ", base))
                if len(self._cells) > 2000:
                    self._cells.clear()
                self._cells[key] = done
            segments.extend(done)
        return Strip(segments).crop_extend(0, self._width, base)

    def render_line(self, y: int) -> Strip:
        self.lines_rendered += 1
        width = self._width = self.scrollable_content_region.width
        cols = self.visible_columns()
        row = int(self.scroll_offset.y) + y - 1
        if y == 0:
            return self._header(cols, width)
        if row < len(self.index):
            return self._row(y, self.index.row(row), cols)
        self._painted.pop(y, None)
        if not len(self.index) and y == 2:
            busy = self.index.building is not None or self.index.loading
            msg = Text("  loading…" if busy else "  no jobs match" if self.index.jobs
                       else "  no jobs yet")
            return self._line([(msg, width)], self._styles()["dim"])
        return Strip.blank(width, self._styles()["base"])

    def _header(self, cols: list[tuple[Column, int]], width: int) -> Strip:
        style = self._styles()["header"]
        sort_style = style + self._styles()["sort"]
        index = self.index
        arrow = "▼" if index.reverse else "▲"
        titles: list[tuple[Text, int]] = []
        shown = False
        for col, w in cols:
            if col.key == index.sort_key:
                shown = True
                # The arrow is never cut: the title gives way first.
                title = Text(col.title[: max(0, w - 1)] + arrow, style=sort_style)
            else:
                title = Text(col.title)
            titles.append((title, w))
        note = ""
        if index.building is not None:
            note = "sorting… " if not index.building.view.same_order(index.view) else "filtering… "
        if not shown:
            note += f"{arrow}{index.sort_key}"  # sorted by a column not on screen: say which
        strip = self._line(titles, style)
        if note:
            last_x = width - (cols[-1][1] + 1 if cols else 0)
            room = width - last_x - 1
            if cols and room >= len(cols[-1][0].title) + 2 + len(note):
                pass  # the last title and the note both fit
            elif cols and room >= 4 + len(note):
                titles[-1] = (Text(cols[-1][0].title[:3]), cols[-1][1])
                strip = self._line(titles, style)
            tail_strip = Strip([Segment(note + " ", sort_style)])
            keep = max(0, width - tail_strip.cell_length)
            strip = Strip.join([strip.crop(0, keep), tail_strip]).crop_extend(0, width, style)
        return strip

    def _row(self, y: int, job: Row, cols: list[tuple[Column, int]]) -> Strip:
        app = jobs_app(self)
        now, relative = app.clock(), app.settings.relative_times
        timed = tuple(timed_text(job, c.key, now, relative) for c, _ in cols if c.timed)
        self._painted[y] = (job, timed)
        cursor = job.job_id == self.cursor_id
        marked = job.job_id in self.marked
        key = (job.job_id, self._layout_key, cursor, marked, self.has_focus, timed)
        cached = self._strips.get(key)
        if cached is not None and cached[0] is job:
            return cached[1]
        styles = self._styles()
        base = styles["base"]
        if marked:
            base = base + styles["marked"]
        if cursor:
            base = base + styles["cursor"]
        strip = self._line([(cell(job, c.key, now, relative), w) for c, w in cols], base,
                           "●" if marked else " ")
        if len(self._strips) > 4 * max(50, self.size.height):
            self._strips.clear()
        self._strips[key] = (job, strip)
        return strip

    def notify_style_update(self) -> None:
        """Theme or CSS changed: cached rows have the old colours."""
        self._strips.clear()
        self._cells.clear()
        self._style_cache = None
        super().notify_style_update()
