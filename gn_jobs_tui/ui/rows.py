"""What the console keeps of each job: a `Row`, under half of a `Job`.

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
from gn_jobs_tui.processors.base import Processor, Verdict

T = TypeVar("T", Verdict, float, tuple[object, ...])
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


_ODD: dict[tuple[object, ...], tuple[object, ...]] = {}
_WHO: dict[tuple[object, ...], tuple[object, ...]] = {}
_PLAIN = ((), None, None)  # damage, heartbeat health, retried_by of most jobs


class Row:
    """10 slots (112 bytes): type, user and host share one slot (a tuple shared by every
    row with the same three), the message and its summary share one when they are the
    same text, and damage, heartbeat health and `retried_by` share one (None for most
    jobs, else a shared tuple)."""

    __slots__ = ("job_id", "_who", "effective_status", "verdict", "created", "started",
                 "finished", "progress", "_text", "_odd")

    def __init__(self, job: Job) -> None:
        proc = for_type(job.job_type)
        self.job_id = job.job_id
        self._who = _shared(_WHO, (job.job_type, job.user_id, job.host))
        self.effective_status = job.effective_status
        self.verdict = _shared(_VERDICTS, proc.verdict(job))
        self.created = job.created
        self.started = job.started
        self.finished = job.finished
        self.progress = None if job.progress is None else _shared(_FLOATS, job.progress)
        message = job.message
        if message and type(proc).summary is Processor.summary and message.isprintable() \
                and not message.isspace():
            summary = message  # one printable line: what the generic summary gives (fast path)
        else:
            summary = proc.summary(job)
        same = summary == (message or "")
        self._text: str | tuple[str | None, str] | None = message if same else (message, summary)
        # Heartbeat health of a running job: alive, lapsed, or ours to judge not at all.
        if job.status != RUNNING:
            hb: str | None = None
        elif job.heartbeat is None or job.heartbeat_alive is None:
            hb = "unknown"
        else:
            hb = "alive" if job.heartbeat_alive else "lapsed"
        odd = (job.damage, hb, job.retried_by)
        self._odd = None if odd == _PLAIN else _shared(_ODD, odd)

    @property
    def job_type(self) -> str:
        return self._who[0]  # type: ignore[return-value]

    @property
    def user_id(self) -> str:
        return self._who[1]  # type: ignore[return-value]

    @property
    def host(self) -> str | None:
        return self._who[2]  # type: ignore[return-value]

    @property
    def message(self) -> str | None:
        text = self._text
        return text[0] if isinstance(text, tuple) else text

    @property
    def summary(self) -> str:
        """What the table shows as the message: the processor's summary."""
        text = self._text
        return text[1] if isinstance(text, tuple) else (text or "")

    @property
    def damage(self) -> tuple[str, ...]:
        return self._odd[0] if self._odd is not None else ()  # type: ignore[return-value]

    @property
    def hb(self) -> str | None:
        return self._odd[1] if self._odd is not None else None  # type: ignore[return-value]

    @property
    def retried_by(self) -> str | None:
        return self._odd[2] if self._odd is not None else None  # type: ignore[return-value]

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
