"""Messages workers post to the UI (workers fetch; widgets only draw)."""

from __future__ import annotations

from textual.message import Message

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState


class JobsLoaded(Message):
    """A page of the initial (or re-)load. `reset`: replace what is shown."""

    def __init__(self, jobs: list[Job], *, reset: bool = False, complete: bool = False) -> None:
        self.jobs, self.reset, self.complete = jobs, reset, complete
        super().__init__()


class JobsChanged(Message):
    def __init__(self, jobs: list[Job], removed: list[str]) -> None:
        self.jobs, self.removed = jobs, removed
        super().__init__()


class KeysChanged(Message):
    """A job's output or child keys have new entries (its hash did not change)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__()


class Connection(Message):
    """Link state. `notes`: short facts about the server worth a word in the top
    bar (e.g. "reads without scripts", "maxmemory-policy allkeys-lru can evict
    jobs", "failover: primary now 10.0.0.2:6379"), warnings first."""

    def __init__(self, ok: bool, error: str = "", retry_in: float = 0.0,
                 notes: tuple[str, ...] = ()) -> None:
        self.ok, self.error, self.retry_in, self.notes = ok, error, retry_in, notes
        super().__init__()


class DetailData(Message):
    def __init__(self, job: Job | None, output: KeyState, children: list[KeyState]) -> None:
        self.job, self.output, self.children = job, output, children
        super().__init__()


class ActionDone(Message):
    """The result of a kill/retry/launch run in a thread worker."""

    def __init__(self, text: str, *, error: bool = False, select: str | None = None) -> None:
        self.text, self.error, self.select = text, error, select
        super().__init__()
