"""What an output processor is: job + its keys -> verdict, summary, panes.

Processors are pure: they take what the store read (a `Job`, its output
`KeyState` and its children's `KeyState`s) and return text and Rich
renderables. They never fetch and never raise on odd data: a damaged
record is shown as damaged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import Entry, KeyState, output_from_fields
from gn_jobs_tui.core.redact import hide_passwords
from gn_jobs_tui.core.text import has_controls, visible

STATUS_STYLES = {
    "queued": "cyan",
    "running": "yellow",
    "completed": "green",
    "failed": "bold red",
    "killed": "magenta",
    "lost": "bold red reverse",
}


@dataclass(frozen=True)
class Verdict:
    """What the table shows in the status column, and how."""

    label: str
    style: str
    status: str


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def bar(fraction: float | None, width: int = 20) -> Text:
    """A plain progress bar as Text (renders the same in a table, a pane or a log)."""
    if fraction is None:
        return Text("-", style="dim")
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    return Text.assemble(("━" * filled, "green"), ("━" * (width - filled), "grey35"))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def damage_text(job: Job) -> Text | None:
    if not job.damage:
        return None
    return Text("damaged: " + "; ".join(job.damage[:6]), style="bold red")


class Visible:
    """Draws another renderable with any control character made visible.

    Processors already pass job text through `visible`; this wrapper, put
    where renderables reach a terminal (CLI, console panes), catches any text
    a processor plugin forgot.
    """

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for seg in console.render(self.inner, options):
            if seg.control or not has_controls(seg.text):
                yield seg
            else:
                yield Segment(visible(seg.text), seg.style)


def entry_text(entry: Entry) -> str:
    """One output/child entry as its raw text (what `logs --raw` prints)."""
    if entry.text is not None:
        return entry.text
    if "line" in entry.fields:
        return entry.fields["line"]
    return " ".join(f"{k}={v}" for k, v in entry.fields.items() if k not in ("ts", "n"))


def entry_line(entry: Entry) -> Text:
    """One output/child entry as a line; damaged entries are marked, controls made visible."""
    if entry.damaged:
        return Text(f"[damaged: {entry.damaged}] {visible(entry.text or '')}", style="red")
    style = "red" if entry.fields.get("stream") == "err" else ""
    return Text(visible(entry_text(entry)), style=style)


def has_traceback(state: KeyState | None) -> bool:
    if state is None:
        return False
    return any(entry_line(e).plain.startswith("Traceback (most recent call last):")
               for e in state.tail)


class Processor:
    """The generic processor: any job type, including other producers' jobs."""

    name = "generic"

    def verdict(self, job: Job) -> Verdict:
        status = job.effective_status
        if status == "completed" and job.error and "Traceback" in job.error:
            return Verdict("failed (traceback)", "bold red", "failed")
        if status == "completed" and job.exit_code not in (None, 0):
            return Verdict(f"failed ({job.exit_code})", "bold red", "failed")
        label = status if job.raw_status is None or job.raw_status.lower() == status \
            else f"{status} ({job.raw_status})"
        if status == "running" and job.kill_requested:
            label = "killing"
        return Verdict(label, STATUS_STYLES.get(status, "dim"), status)

    def summary(self, job: Job) -> str:
        """First line of the message, else the last line of the error (a traceback's)."""
        lines = [line for line in (job.message or "").splitlines() if line.strip()]
        if lines:
            return visible(lines[0])
        lines = [line for line in (job.error or "").splitlines() if line.strip()]
        return visible(lines[-1]) if lines else ""

    def fields_table(self, job: Job, now: float) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        verdict = self.verdict(job)
        rows: list[tuple[str, str | Text]] = [
            ("job", job.job_id),
            ("type", job.job_type),
            ("user", job.user_id),
            ("status", Text(visible(verdict.label), style=verdict.style)),
            ("attempt", str(job.attempt or 1)),
            ("created", fmt_time(job.created)),
            ("started", fmt_time(job.started)),
            ("finished", fmt_time(job.finished)),
            ("elapsed", fmt_duration(job.elapsed(now))),
            ("host", job.host or "-"),
            ("pid", str(job.pid) if job.pid else "-"),
            ("exit code", "-" if job.exit_code is None else str(job.exit_code)),
        ]
        if job.progress is not None:
            rows.append(("progress", f"{job.progress:.0f}%"))
        if job.message:
            rows.append(("message", job.message))
        if (lost := job.extra.get("updates_dropped", "0")) not in ("", "0"):
            rows.append(("not stored", f"{lost} progress updates (updates_dropped)"))
        if job.command_display:
            rows.append(("command", hide_passwords(job.command_display)))
        if job.params:
            rows.append(("params", hide_passwords(", ".join(f"{k}={v}"
                                                            for k, v in job.params.items()))))
        for name in ("retry_of", "retried_by"):
            value = getattr(job, name)
            if value:
                rows.append((name.replace("_", " "), value))
        if job.children:
            rows.append(("children", str(len(job.children))))
        rows.extend(self._supervision_rows(job))
        for name, value in rows:
            grid.add_row(name, Text(visible(value)) if isinstance(value, str) else value)
        return grid

    @staticmethod
    def _supervision_rows(job: Job) -> list[tuple[str, str]]:
        """What the supervisor noted beyond the status: gaps, late kills, leftovers, retries."""
        extra = job.extra
        rows: list[tuple[str, str]] = []
        if extra.get("output_dropped", "0") not in ("", "0"):
            rows.append(("output", f"{extra['output_dropped']} output lines not stored"))
        if extra.get("descendants_ended", "0") not in ("", "0"):
            rows.append(("leftovers", f"{extra['descendants_ended']} leftover processes ended "
                         "after the job exited"))
        if extra.get("kill_note"):
            rows.append(("kill", extra["kill_note"]))
        if extra.get("superseded_by"):
            rows.append(("superseded by", extra["superseded_by"]))
        return rows

    def output_view(self, job: Job, output: KeyState | None, lines: int = 200) -> RenderableType:
        if output is None or output.kind == "none":
            # Other producers keep a job's output in its hash (`stdout`, `stderr`).
            output = output_from_fields(job)
        if output is None or output.kind == "none":
            return Text("no output yet", style="dim")
        parts: list[RenderableType] = []
        if output.truncated:
            parts.append(Text(f"… {output.truncated} earlier lines truncated", style="dim italic"))
        tail = list(output.tail)[-lines:]
        if output.seen > len(tail) and not output.truncated:
            parts.append(Text(f"… {output.seen - len(tail)} earlier lines", style="dim italic"))
        parts.extend(entry_line(e) for e in tail)
        if output.damaged:
            parts.append(Text(f"{output.damaged} damaged entries", style="red"))
        return Group(*parts)

    def header(self, job: Job, now: float) -> list[RenderableType]:
        """The top of every job pane: its fields, then any damage found."""
        parts: list[RenderableType] = [self.fields_table(job, now)]
        damage = damage_text(job)
        if damage is not None:
            parts.append(damage)
        return parts

    def job_view(self, job: Job, output: KeyState | None, children: list[KeyState],
                 now: float) -> RenderableType:
        parts = self.header(job, now)
        if has_traceback(output) and job.effective_status == "completed":
            parts.append(Text("printed a traceback: not a success", style="bold red"))
        if job.error:
            parts.append(Text("error:", style="bold red"))
            parts.append(Text(visible(job.error[-2000:]), style="red"))
        elif job.extra.get("stderr", "").strip() and job.effective_status != "completed":
            # Other producers (gn-uploader, GeneNetwork2) say why in `stderr`.
            parts.append(Text("stderr:", style="bold red"))
            parts.append(Text(visible(job.extra["stderr"][-2000:].rstrip()), style="red"))
        if children:
            parts.append(Text(""))
            parts.append(self.children_table(job, children))
        return Group(*parts)

    def children_table(self, job: Job, children: list[KeyState]) -> Table:
        table = Table(box=None, pad_edge=False, expand=False, show_edge=False)
        for col in ("child", "state", "entries", "last"):
            table.add_column(col)
        for i, child in enumerate(children):
            last = entry_line(child.tail[-1]).plain[:60] if child.tail else ""
            table.add_row(str(i), child.state_label(), str(child.seen), last)
        return table

    def child_view(self, job: Job, child: KeyState) -> RenderableType:
        head = Text(f"{visible(child.key)}  [{child.kind}]  {child.state_label()}  {child.seen} entries",
                    style="bold")
        return Group(head, self.output_view(job, child))

    def child_label(self, child: KeyState) -> str:
        return child.state_label()
