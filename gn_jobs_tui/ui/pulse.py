"""Pulse figures: jobs started, completed and failed per minute over the last hour,
per type; p50/p95 durations; the current failure rate.

Computed from the jobs the index saw active within the hour (it keeps them as
they arrive), never from Redis: a frame costs no server command, and its work
follows the last hour's activity, not the number of jobs kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.text import Text

from gn_jobs_tui.ui.rows import Row

WINDOW = 3600.0
RECENT_RATE = 900.0  # "current" failure rate: the last 15 minutes
BARS = "▁▂▃▄▅▆▇█"
FAILED = frozenset({"failed", "lost"})  # killed jobs were stopped on purpose


@dataclass
class Series:
    started: list[int]
    completed: list[int]
    failed: list[int]

    @classmethod
    def empty(cls, n: int) -> Series:
        return cls([0] * n, [0] * n, [0] * n)


@dataclass
class TypeFigures:
    job_type: str
    series: Series
    durations: list[float] = field(default_factory=list)
    finished: int = 0
    failed: int = 0

    def percentile(self, p: float) -> float | None:
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Pulse:
    now: float
    buckets: int
    overall: Series
    types: list[TypeFigures]
    recent_finished: int = 0
    recent_failed: int = 0

    @property
    def bucket_seconds(self) -> float:
        return WINDOW / self.buckets

    def failure_rate(self) -> float | None:
        return self.recent_failed / self.recent_finished if self.recent_finished else None


def compute(jobs: Iterable[Row], now: float, buckets: int = 60) -> Pulse:
    size = WINDOW / buckets
    start = now - WINDOW
    overall = Series.empty(buckets)
    types: dict[str, TypeFigures] = {}
    pulse = Pulse(now, buckets, overall, [])

    def slot(ts: float | None) -> int | None:
        if ts is None or ts < start or ts > now:
            return None
        return min(buckets - 1, int((ts - start) // size))

    for job in jobs:
        figures = types.get(job.job_type)
        if figures is None:
            figures = types[job.job_type] = TypeFigures(job.job_type, Series.empty(buckets))
        b = slot(job.started)
        if b is not None:
            overall.started[b] += 1
            figures.series.started[b] += 1
        b = slot(job.finished)
        if b is None or job.finished is None:
            continue
        status = job.verdict.status
        if status == "completed":
            overall.completed[b] += 1
            figures.series.completed[b] += 1
        elif status in FAILED:
            overall.failed[b] += 1
            figures.series.failed[b] += 1
            figures.failed += 1
        figures.finished += 1
        if job.started is not None:
            figures.durations.append(max(0.0, job.finished - job.started))
        if job.finished >= now - RECENT_RATE and status in FAILED | {"completed"}:
            pulse.recent_finished += 1
            pulse.recent_failed += status in FAILED
    pulse.types = sorted((f for f in types.values() if sum(f.series.started) or f.finished),
                         key=lambda f: (-(sum(f.series.started) + f.finished), f.job_type))
    return pulse


def spark(values: list[int], style: str) -> Text:
    """One bar per bucket, scaled to the busiest; an empty bucket is a dot."""
    top = max(values, default=0)
    text = Text()
    for v in values:
        if v == 0:
            text.append("·", style="grey35")
        else:
            text.append(BARS[min(len(BARS) - 1, (v * len(BARS) - 1) // top)], style=style)
    return text
