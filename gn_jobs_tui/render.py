"""The CLI's text and JSON output: `list` and `show`. Pure functions, no Textual.

- `list` fits the terminal: ids are never cut; MESSAGE shrinks first, then
  HOST and STARTED drop out. Piped, nothing is cut and no line is padded.
- `show` piped (a file, `less`, `grep`) has no padding at line ends.
- `job_json` is the one JSON shape of a job for `list --json` and
  `show --json`: the same keys; `unread` names the fields that command did not
  read from Redis (the listing reads the table's fields only), so a null
  there means "not read", never "not set".
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from rich.console import Console
from rich.text import Text

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState
from gn_jobs_tui.core.text import visible
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.processors.base import Visible, fmt_duration, fmt_time

#: Job attributes that are hash fields (the others are derived while parsing).
HASH_ATTRS = tuple(f.name for f in fields(Job)
                   if f.name not in ("raw_status", "heartbeat_alive", "damage", "extra"))
#: Keys only `show` fills: what it read besides the hash.
SHOW_ONLY = ("output_lines", "children_state")
GAP = 2


def job_json(job: Job, *, output: KeyState | None = None,
             children: Sequence[KeyState] | None = None,
             read: Sequence[str] | None = None) -> dict[str, Any]:
    """A job as JSON; `read`: the hash fields the command read (None: all of them).

    `list` passes `TABLE_FIELDS`; the fields it did not read, and `extra`
    (the fields no column names), are listed in `unread` and left null.
    """
    data = job.to_dict()
    proc = for_type(job.job_type)
    data["short_id"] = job.short_id
    data["verdict"] = proc.verdict(job).label
    data["summary"] = proc.summary(job)
    unread: list[str] = []
    if read is not None:
        unread = [name for name in HASH_ATTRS if name not in read and name != "job_id"]
        for name in unread:
            data[name] = None
        unread.append("extra")
        data["extra"] = None
    if output is None and children is None:
        unread.extend(SHOW_ONLY)
        data["output_lines"] = data["children_state"] = None
    else:
        data["output_lines"] = output.seen if output is not None else 0
        data["children_state"] = [{"key": c.key, "type": c.kind, "state": c.state_label(),
                                   "entries": c.seen} for c in children or ()]
    data["unread"] = unread
    return data


@dataclass
class Col:
    title: str
    values: list[Text]
    drop: int = 0  # order in which columns drop out (higher first), 0: never
    flex: bool = False  # shrinks first
    keep: bool = False  # never cut (the id)

    @property
    def natural(self) -> int:
        return max([len(self.title), *(v.cell_len for v in self.values)])


def _columns(jobs: Sequence[Job], now: float) -> list[Col]:
    rows = []
    for job in jobs:
        proc = for_type(job.job_type)
        verdict = proc.verdict(job)
        rows.append((
            Text(job.short_id),
            Text(visible(job.job_type, newlines=False)),
            Text(visible(job.user_id, newlines=False)),
            Text(visible(verdict.label, newlines=False) + (" !" if job.damage else ""),
                 style=verdict.style),
            Text(f"{job.progress:.0f}%" if job.progress is not None else ""),
            Text(fmt_time(job.started)),
            Text(fmt_duration(job.elapsed(now))),
            Text(visible(job.host or "", newlines=False)),
            Text(visible(proc.summary(job), newlines=False)),
        ))
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9
    spec = [("ID", 0, False, True), ("TYPE", 0, False, False), ("USER", 0, False, False),
            ("STATUS", 0, False, False), ("PROG", 0, False, False), ("STARTED", 2, False, False),
            ("ELAPSED", 0, False, False), ("HOST", 3, False, False), ("MESSAGE", 1, True, False)]
    return [Col(title, list(values), drop, flex, keep)
            for (title, drop, flex, keep), values in zip(spec, cols, strict=True)]


def fit_columns(cols: list[Col], width: int | None) -> list[tuple[Col, int]]:
    """Widths for a terminal `width` (None: no limit): ids whole, MESSAGE first to give."""
    sized = [(c, c.natural) for c in cols]
    if width is None:
        return sized

    def total(items: list[tuple[Col, int]]) -> int:
        return sum(w for _, w in items) + GAP * (len(items) - 1)

    def shrink_flex(floor: int) -> None:
        over = total(sized) - width
        for i, (c, w) in enumerate(sized):
            if c.flex and over > 0:
                give = min(over, max(0, w - floor))
                sized[i] = (c, w - give)

    shrink_flex(24)
    for drop in (3, 2):  # HOST, then STARTED
        if total(sized) > width:
            sized = [(c, w) for c, w in sized if c.drop != drop]
    shrink_flex(10)
    if total(sized) > width:
        sized = [(c, w) for c, w in sized if not c.flex]
    # Still too wide: the other columns give way in turn, the id never.
    while total(sized) > width:
        i, (c, w) = max(((i, cw) for i, cw in enumerate(sized) if not cw[0].keep),
                        key=lambda x: x[1][1], default=(-1, (None, 0)))
        if c is None or w <= 4:
            break
        sized[i] = (c, w - 1)
    return sized


def list_lines(jobs: Sequence[Job], now: float, width: int | None) -> list[Text]:
    """The `list` table as lines (styled); no trailing spaces."""
    sized = fit_columns(_columns(jobs, now), width)
    lines = []
    head = Text(style="bold")
    for i, (col, w) in enumerate(sized):
        head.append(col.title.ljust(w) if i < len(sized) - 1 else col.title)
        if i < len(sized) - 1:
            head.append(" " * GAP)
    lines.append(head)
    for r in range(len(jobs)):
        line = Text()
        for i, (col, w) in enumerate(sized):
            cell = col.values[r].copy()
            last = i == len(sized) - 1
            if cell.cell_len > w:
                cell.truncate(w, overflow="ellipsis")
            elif not last:
                cell.pad_right(w - cell.cell_len)
            line.append_text(cell)
            if not last:
                line.append(" " * GAP)
        line.rstrip()
        lines.append(line)
    return lines


def print_list(jobs: Sequence[Job], now: float, console: Console | None = None) -> None:
    """`gn-jobs list`: fits a terminal's width; piped, whole lines with no padding."""
    out = console or Console(highlight=False, soft_wrap=True)
    width = out.width if out.is_terminal else None
    for line in list_lines(jobs, now, width):
        out.print(line, no_wrap=True, crop=width is not None, overflow="ignore")


def print_show(job: Job, output: KeyState, children: list[KeyState], now: float,
               console: Console | None = None) -> None:
    """`gn-jobs show`: the processor's view of the job and the output tail.

    On a terminal it is drawn for its width; piped, it is drawn wide and every
    line ends where its text ends (no padding to 80 columns).
    """
    proc = for_type(job.job_type)
    out = console or Console(soft_wrap=False, highlight=False)
    if out.is_terminal:
        out.print(Visible(proc.job_view(job, output, children, now)))
        if output.kind != "none":
            out.rule("output (tail)")
            out.print(Visible(proc.output_view(job, output, lines=20)))
        return
    buffer = io.StringIO()
    wide = Console(file=buffer, width=200, color_system=None, highlight=False,
                   soft_wrap=False, emoji=False)
    wide.print(Visible(proc.job_view(job, output, children, now)))
    if output.kind != "none":
        wide.print("── output (tail) " + "─" * 20)
        wide.print(Visible(proc.output_view(job, output, lines=20)))
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    out.file.write(text + "\n")
    out.file.flush()
