"""The job table's columns: what each shows, how wide it wants to be, the layout.

Widths follow content and the terminal: a column is as wide as its widest
value (within its bounds), MESSAGE takes what is left; on a narrow terminal
the columns with the highest `drop` rank drop out first (HOST, then the
times), and ids are never cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from gn_jobs_tui.core.text import visible
from gn_jobs_tui.processors.base import fmt_duration
from gn_jobs_tui.ui.rows import Row
from gn_jobs_tui.ui.timefmt import stamp


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    low: int  # narrowest useful width
    high: int  # widest it grows to
    drop: int = 0  # 0: never dropped; higher ranks drop out first on a narrow screen
    flex: bool = False  # takes the room left over
    timed: bool = False  # its text changes with the clock


COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("id", "ID", 8, 8),
    Column("type", "TYPE", 6, 20, drop=3),
    Column("user", "USER", 6, 24, drop=2),
    Column("status", "STATUS", 9, 24),
    Column("progress", "PROGRESS", 8, 8, drop=4),
    Column("created", "CREATED", 7, 11, drop=6, timed=True),
    Column("started", "STARTED", 7, 11, drop=7, timed=True),
    Column("finished", "FINISHED", 8, 11, drop=5, timed=True),
    Column("elapsed", "ELAPSED", 7, 7, drop=1, timed=True),
    Column("host", "HOST", 6, 20, drop=8),
    Column("message", "MESSAGE", 16, 10_000, flex=True),
)}
DEFAULT_COLUMNS = ("id", "type", "user", "status", "progress", "started", "elapsed", "host",
                   "message")
MARK_WIDTH = 1  # the mark column, before the others


def natural_width(col: Column, values: list[str], relative: bool) -> int:
    """How wide a column wants to be for these values (and its title)."""
    if col.key in ("created", "started", "finished"):
        want = 8 if relative else 11
    elif values:
        want = max(len(v) for v in values)
    else:
        want = col.low
    return max(col.low, min(col.high, max(want, len(col.title))))


def layout(cols: list[Column], natural: dict[str, int], width: int) -> list[tuple[Column, int]]:
    """Widths for the columns that fit `width` (the mark column and separators included).

    On a narrow screen: the times and HOST drop out first, then the content-sized
    columns (TYPE, USER, STATUS) give way down to their narrowest useful width,
    then the other columns drop in turn; the id is never cut.
    """
    shown = list(cols)
    widths = {c.key: (c.low if c.flex else natural[c.key]) for c in shown}

    def over() -> int:
        return MARK_WIDTH + sum(widths[c.key] + 1 for c in shown) - width

    def drop(min_rank: int) -> None:
        while over() > 0:
            droppable = [c for c in shown if c.drop >= min_rank]
            if not droppable:
                return
            worst = max(droppable, key=lambda c: c.drop)
            shown.remove(worst)

    def squeeze() -> None:
        for col in sorted(shown, key=lambda c: -(widths[c.key] - c.low)):
            if over() <= 0:
                return
            if col.key == "id" or col.flex:
                continue
            widths[col.key] -= min(over(), max(0, widths[col.key] - col.low))

    drop(5)  # HOST, the times
    squeeze()
    drop(1)
    squeeze()
    spare = -over()
    flex = [c for c in shown if c.flex]
    if spare > 0 and shown:
        widths[(flex[0] if flex else shown[-1]).key] += spare
    return [(c, widths[c.key]) for c in shown]


def fit(text: str, width: int) -> str:
    """`text` cut (with an ellipsis) or padded to exactly `width` cells."""
    if width <= 0:
        return ""
    if text.isascii():
        return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def progress_cell(progress: float | None) -> Text | str:
    if progress is None:
        return ""
    filled = int(progress / 100 * 4 + 0.5)
    return Text.assemble(("█" * filled, "green"), ("░" * (4 - filled), "grey42"),
                         f"{progress:3.0f}%")


def timed_text(job: Row, key: str, now: float, relative: bool) -> str:
    """The text of a clock-dependent cell: compared tick to tick to redraw only changes."""
    if key == "elapsed":
        return fmt_duration(job.elapsed(now))
    return stamp(getattr(job, key), now, relative)


def cell(job: Row, key: str, now: float, relative: bool) -> Text | str:
    """One cell: plain text (drawn fast) or styled Text. Row text is shown, never obeyed."""
    if key == "id":
        return job.short_id
    if key == "type":
        return visible(job.job_type, newlines=False)
    if key == "user":
        return visible(job.user_id, newlines=False)
    if key == "status":
        verdict = job.verdict
        status = Text(visible(verdict.label, newlines=False), style=verdict.style)
        return Text.assemble(("! ", "bold red"), status) if job.damage else status
    if key == "progress":
        return progress_cell(job.progress)
    if key in ("created", "started", "finished", "elapsed"):
        return timed_text(job, key, now, relative)
    if key == "host":
        return visible(job.host or "", newlines=False)
    if key == "message":
        return visible(job.summary, newlines=False)
    return ""
