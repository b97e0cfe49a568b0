"""What the console keeps of each job: a `Row`, about 60% of a `Job`.

A million jobs stay in memory for the table. A Row holds the fields the
table, the filters, the sorts and the views read, with the processor's
verdict and summary worked out once (equal verdicts are one shared object,
and the summary is the message itself when they are the same text); the
fields that only feed those two (exit code, error, attempt, heartbeat...)
are not kept. A Row answers to the Job attribute names the UI uses, so a Job
(e.g. the drill-down's) can go where a Row goes.

The drill-down, kill and retry read the job itself from Redis.
"""

from __future__ import annotations

from typing import TypeVar

from gn_jobs_tui.core.keys import RUNNING, TERMINAL_STATUSES
from gn_jobs_tui.core.model import MISSING, Job
from gn_jobs_tui.processors import for_type
from gn_jobs_tui.processors.base import Verdict

T = TypeVar("T", Verdict, float)
_VERDICTS: dict[Verdict, Verdict] = {}
_FLOATS: dict[float, float] = {}
SHARE_LIMIT = 100_000  # distinct verdicts/progress values shared; beyond, each keeps its own


def _shared(cache: dict[T, T], value: T) -> T:
    """One object for equal values (a million rows, a few distinct verdicts)."""
    try:
        found = cache.get(value)
    except TypeError:  # a plugin's verdict that cannot be hashed: kept as it is
        return value
    if found is not None:
        return found
    if len(cache) < SHARE_LIMIT:
        cache[value] = value
    return value


class Row:
    __slots__ = ("job_id", "job_type", "user_id", "effective_status", "verdict", "created",
                 "started", "finished", "host", "progress", "message", "summary", "damage",
                 "hb", "retried_by")

    def __init__(self, job: Job) -> None:
        proc = for_type(job.job_type)
        self.job_id = job.job_id
        self.job_type = job.job_type
        self.user_id = job.user_id
        self.effective_status = job.effective_status
        self.verdict = _shared(_VERDICTS, proc.verdict(job))
        self.created = job.created
        self.started = job.started
        self.finished = job.finished
        self.host = job.host
        self.progress = None if job.progress is None else _shared(_FLOATS, job.progress)
        self.message = job.message
        summary = proc.summary(job)
        self.summary = job.message if summary == job.message else summary
        self.damage = job.damage
        # Heartbeat health of a running job: alive, lapsed, or ours to judge not at all.
        if job.status != RUNNING:
            self.hb: str | None = None
        elif job.heartbeat is None or job.heartbeat_alive is None:
            self.hb = "unknown"
        else:
            self.hb = "alive" if job.heartbeat_alive else "lapsed"
        self.retried_by = job.retried_by

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in Row.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Row({self.job_id!r}, {self.job_type!r}, {self.effective_status!r})"

    @property
    def short_id(self) -> str:
        return self.job_id[:8]

    @property
    def is_terminal(self) -> bool:
        return self.effective_status in TERMINAL_STATUSES

    @property
    def is_missing(self) -> bool:
        return self.damage == (MISSING,)

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else now
        return max(0.0, end - self.started)
