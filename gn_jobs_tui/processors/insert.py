"""Processor of `insert-rows`: a progress bar, rows/s, ETA, committed and bad rows."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState
from gn_jobs_tui.core.text import visible
from gn_jobs_tui.processors.base import Processor, Verdict, bar, fmt_duration


def _int(job: Job, name: str) -> int | None:
    try:
        return int(float(job.extra.get(name, "")))
    except ValueError:
        return None


class InsertProcessor(Processor):
    name = "insert-rows"

    def verdict(self, job: Job) -> Verdict:
        base = super().verdict(job)
        bad = _int(job, "bad_rows")
        if base.status == "completed" and bad:
            return Verdict(f"done, {bad} bad rows skipped", "dark_orange", "completed")
        return base

    def job_view(self, job: Job, output: KeyState | None, children: list[KeyState],
                 now: float) -> RenderableType:
        parts = self.header(job, now)
        done, total = _int(job, "rows_done"), _int(job, "rows_total")
        rate = _int(job, "rows_per_s")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        if total:
            frac = min(1.0, (done or 0) / total)
            grid.add_row("rows", bar(frac, 30) + Text(f" {done or 0:,} of {total:,} ({frac * 100:.0f}%)"))
        else:
            grid.add_row("rows", Text(f"{done or 0:,}"))
        grid.add_row("rate", f"{rate:,} rows/s" if rate else "-")
        if rate and total and done is not None and job.effective_status == "running":
            grid.add_row("eta", fmt_duration((total - done) / rate))
        grid.add_row("committed", f"{_int(job, 'committed') or 0:,}")
        bad = _int(job, "bad_rows") or 0
        grid.add_row("bad rows", Text(str(bad), style="red" if bad else ""))
        parts.extend([Text(""), grid])
        if output is not None:
            bad_lines = [e for e in output.tail if e.get("line").startswith("bad row")]
            if bad_lines:
                parts.append(Text("bad rows:", style="bold red"))
                parts.extend(Text(visible(e.get("line")), style="red") for e in bad_lines[-10:])
        if job.error and job.effective_status != "completed":
            parts.append(Text(visible(job.error[-1000:]), style="red"))
        return Group(*parts)
