"""Processor of `qc-files`: totals, errors grouped by file and check, per-child progress."""

from __future__ import annotations

import json
from collections import Counter

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import Entry, KeyState
from gn_jobs_tui.core.text import visible
from gn_jobs_tui.processors.base import Processor, Verdict, bar, plural


def _num(entry: Entry | None, name: str) -> float | None:
    if entry is None:
        return None
    try:
        return float(entry.get(name))
    except ValueError:
        return None


def child_counts(child: KeyState) -> Counter[str]:
    """Per-check totals: the finish entry's full counts, else what was read."""
    if child.finish is not None:
        try:
            counts = json.loads(child.finish.get("counts", "{}"))
            if isinstance(counts, dict):
                return Counter({str(k): int(v) for k, v in counts.items()
                                if isinstance(v, (int, float))})
        except (ValueError, TypeError):
            pass  # fall back to counting what was read
    out: Counter[str] = Counter()
    for (_file, check), n in child.groups.items():
        out[check] += n
    return out


def child_fraction(child: KeyState) -> float | None:
    done, total = _num(child.progress, "done"), _num(child.progress, "total")
    if child.finish is not None:
        return 1.0
    if done is None or not total:
        return None
    return max(0.0, min(1.0, done / total))


class QCProcessor(Processor):
    name = "qc-files"

    def verdict(self, job: Job) -> Verdict:
        base = super().verdict(job)
        if base.status == "completed" and job.errors:
            return Verdict(f"done, {job.errors} errors", "bold dark_orange", "completed")
        if base.status == "completed" and job.errors == 0:
            return Verdict("passed", "green", "completed")
        return base

    def job_view(self, job: Job, output: KeyState | None, children: list[KeyState],
                 now: float) -> RenderableType:
        parts = self.header(job, now)
        if job.error:
            parts.append(Text(visible(job.error[-1500:]), style="red"))
        totals: Counter[str] = Counter()
        groups: Counter[tuple[str, str]] = Counter()
        examples: dict[tuple[str, str], list[Entry]] = {}
        for child in children:
            totals.update(child_counts(child))
            groups.update(child.groups)
            for g, ex in child.examples.items():
                examples.setdefault(g, []).extend(ex)
        if children:
            done = sum(1 for c in children if c.finish is not None)
            head = Text.assemble(("QC ", "bold"), f"{done}/{len(children)} workers done, ",
                                 (plural(sum(totals.values()), "problem"), "bold red" if totals else "green"))
            parts.extend([Text(""), head])
            if totals:
                parts.append(Text("  " + ", ".join(f"{c}: {n}" for c, n in totals.most_common()),
                                  style="red"))
            parts.append(self._groups_table(groups, examples))
            parts.append(self._workers_table(children))
        return Group(*parts)

    def _groups_table(self, groups: Counter[tuple[str, str]],
                      examples: dict[tuple[str, str], list[Entry]]) -> Table:
        table = Table(title="errors by file and check", title_justify="left", box=None,
                      pad_edge=False, show_edge=False)
        for col in ("file", "check", "count", "first examples"):
            table.add_column(col, overflow="fold")
        for (file, check), n in sorted(groups.items()):
            ex = "; ".join(f"l.{e.get('line', '?')} {e.get('message', '')}"
                           for e in examples.get((file, check), [])[:2])
            table.add_row(visible(file), visible(check), str(n), visible(ex))
        if not groups:
            table.add_row("-", "-", "0", "no problems found yet")
        return table

    def _workers_table(self, children: list[KeyState]) -> Table:
        table = Table(title="workers", title_justify="left", box=None, pad_edge=False,
                      show_edge=False)
        for col in ("child", "state", "progress", "problems"):
            table.add_column(col)
        for i, child in enumerate(children):
            frac = child_fraction(child)
            table.add_row(str(i), self.child_label(child), bar(frac),
                          str(sum(child_counts(child).values())))
        return table

    def child_label(self, child: KeyState) -> str:
        frac = child_fraction(child)
        label = child.state_label()
        if child.finish is None and frac is not None:
            label = f"{label} {frac * 100:.0f}%"
        n = sum(child_counts(child).values())
        return f"{label}, {plural(n, 'problem')}" if child.kind != "none" else label

    def child_view(self, job: Job, child: KeyState) -> RenderableType:
        parts: list[RenderableType] = [Text(visible(child.key), style="bold"),
                                       Text(self.child_label(child))]
        if child.start is not None:
            files = child.start.get("files", "[]")
            try:
                names = json.loads(files)
            except ValueError:
                names = [files]
            parts.append(Text(visible("files: " + ", ".join(str(n) for n in names))))
        frac = child_fraction(child)
        if frac is not None:
            parts.append(bar(frac, 40))
        dropped = child.finish.get("dropped", "0") if child.finish is not None else "0"
        if dropped not in ("", "0"):
            parts.append(Text(f"{visible(dropped)} entries not stored (the worker's outbox was full)",
                              style="red"))
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("file", "line", "column", "check", "value", "message"):
            table.add_column(col, overflow="fold")
        for entry in [e for e in child.tail if e.get("kind") == "record"][-200:]:
            table.add_row(*(visible(v) for v in (
                entry.get("file"), entry.get("line"), entry.get("column"), entry.get("check"),
                entry.get("value")[:30], entry.get("message"))))
        for entry in [e for e in child.tail if e.damaged][-20:]:
            table.add_row("?", "?", "", "damaged", visible((entry.text or "")[:30]),
                          entry.damaged or "")
        parts.append(table)
        if child.damaged:
            parts.append(Text(f"{child.damaged} damaged entries", style="red"))
        return Group(*parts)
