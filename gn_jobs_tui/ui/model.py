"""The console's in-memory index of jobs: keyed, sorted, filtered.

Rows are keyed by job id; `order` is rebuilt only when a change can move a
row (a new job, a sort column that changed, a filter match that flipped), so
updating the status of one job among 100,000 costs a dict write, not a sort.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gn_jobs_tui.core.model import Job


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int  # 0: takes the remaining room
    min_screen: int = 0  # shown only when the terminal is at least this wide


COLUMNS = (
    Column("id", "ID", 8),
    Column("type", "TYPE", 11),
    Column("user", "USER", 8),
    Column("status", "STATUS", 16),
    Column("progress", "PROGRESS", 8),
    Column("started", "STARTED", 14, min_screen=110),
    Column("elapsed", "ELAPSED", 7),
    Column("host", "HOST", 10, min_screen=130),
    Column("message", "MESSAGE", 0),
)
SORTABLE = tuple(c.key for c in COLUMNS)


def sort_value(job: Job, key: str, now: float) -> tuple:
    if key == "id":
        return (job.job_id,)
    if key == "type":
        return (job.job_type,)
    if key == "user":
        return (job.user_id,)
    if key == "status":
        return (job.effective_status,)
    if key == "progress":
        return (job.progress if job.progress is not None else -1.0,)
    if key == "started":
        return (job.started or 0.0,)
    if key == "elapsed":
        return (job.elapsed(now) or 0.0,)
    if key == "host":
        return (job.host or "",)
    if key == "message":
        return (job.message or "",)
    return (job.created or 0.0,)


class JobIndex:
    """All jobs the console knows, and the filtered, sorted order of the table."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.order: list[str] = []
        self.position: dict[str, int] = {}
        self.sort_key = "created"
        self.reverse = True
        self.text = ""
        self.status: str | None = None
        self.user: str | None = None
        self.status_counts: Counter[str] = Counter()
        self.user_counts: Counter[str] = Counter()
        self._dirty = True

    # -- filtering ----------------------------------------------------------
    def matches(self, job: Job) -> bool:
        if self.user is not None and job.user_id != self.user:
            return False
        if self.status is not None and job.effective_status != self.status:
            return False
        if self.text:
            hay = f"{job.job_id} {job.job_type} {job.user_id} {job.message or ''}".lower()
            return all(word in hay for word in self.text.lower().split())
        return True

    def set_filter(self, *, text: str | None = None, status: str | None | bool = False,
                   user: str | None | bool = False) -> None:
        if text is not None:
            self.text = text.strip()
        if status is not False:
            self.status = status  # type: ignore[assignment]
        if user is not False:
            self.user = user  # type: ignore[assignment]
        self._dirty = True

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        if key not in SORTABLE:
            raise ValueError(key)
        if reverse is None:
            reverse = not self.reverse if key == self.sort_key else key in ("created", "started")
        self.sort_key, self.reverse = key, reverse
        self._dirty = True

    # -- changes ------------------------------------------------------------
    def upsert(self, jobs: Iterable[Job]) -> list[Job]:
        """Add or replace jobs; returns those that changed. Re-sorts only if needed.

        A re-read job equal to the one held is not replaced: the table's row
        cache (keyed on the object) then stays valid.
        """
        changed: list[Job] = []
        for job in jobs:
            old = self.jobs.get(job.job_id)
            if old is not None and old == job:
                continue
            changed.append(job)
            if old is not None:
                self.status_counts[old.effective_status] -= 1
                self.user_counts[old.user_id] -= 1
            self.status_counts[job.effective_status] += 1
            self.user_counts[job.user_id] += 1
            self.jobs[job.job_id] = job
            if self._dirty:
                continue
            was_shown = job.job_id in self.position
            if old is None or was_shown != self.matches(job) or (
                    was_shown and sort_value(old, self.sort_key, 0) !=
                    sort_value(job, self.sort_key, 0)):
                self._dirty = True
        return changed

    def remove(self, ids: Iterable[str]) -> None:
        for job_id in ids:
            old = self.jobs.pop(job_id, None)
            if old is not None:
                self.status_counts[old.effective_status] -= 1
                self.user_counts[old.user_id] -= 1
                self._dirty = True

    def clear(self) -> None:
        self.jobs.clear()
        self.status_counts.clear()
        self.user_counts.clear()
        self._dirty = True

    # -- reading ------------------------------------------------------------
    def ensure_order(self) -> bool:
        """Rebuild the visible order if anything could have moved; True if rebuilt."""
        if not self._dirty:
            return False
        now = self.clock()
        key = self.sort_key
        shown = [j for j in self.jobs.values() if self.matches(j)]
        shown.sort(key=lambda j: (sort_value(j, key, now), j.created or 0.0, j.job_id),
                   reverse=self.reverse)
        self.order = [j.job_id for j in shown]
        self.position = {job_id: i for i, job_id in enumerate(self.order)}
        self._dirty = False
        return True

    def find(self, prefix: str) -> str | None:
        """A job id from a full id or a unique prefix of one."""
        prefix = prefix.strip()
        if prefix in self.jobs:
            return prefix
        hits = [j for j in self.jobs if j.startswith(prefix)] if prefix else []
        return hits[0] if len(hits) == 1 else None

    def counts_text(self) -> str:
        urgency = ["running", "queued", "lost", "failed", "killed", "completed"]
        ranked = sorted(self.status_counts.items(),
                        key=lambda kv: (urgency.index(kv[0]) if kv[0] in urgency else 99, kv[0]))
        parts = [f"{n} {s}" for s, n in ranked if n > 0]
        return " · ".join(parts) if parts else "no jobs"

    def users(self) -> list[tuple[str, int]]:
        return sorted((u, n) for u, n in self.user_counts.items() if n > 0)
