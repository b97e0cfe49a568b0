"""Messages workers post to the UI (workers fetch; widgets only draw)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.outputs import KeyState

if TYPE_CHECKING:
    from gn_jobs_tui.ui.rows import Row


class JobsLoaded(Message):
    """A page of the initial (or re-)load. `reset`: replace what is shown.

    The all-jobs pages carry table rows made straight from the listing's reply
    (no Job per row); other sources' pages carry Jobs."""

    def __init__(self, jobs: list[Job] | list[Row], *, reset: bool = False, complete: bool = False) -> None:
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


class Polled(Message):
    """A poll of the server finished without error (`at`: time.time()).

    Posted by the feed after every successful poll, even when nothing
    changed, so the top bar can tell "nothing happened" from "not asked".
    """

    def __init__(self, at: float) -> None:
        self.at = at
        super().__init__()


class OrderPreview(Message):
    """The first rows of a sort or filter still being built (the rows on screen)."""

    def __init__(self, build: object, rows: list[Job]) -> None:
        self.build, self.rows = build, rows
        super().__init__()


class OrderBuilt(Message):
    """A sort or filter built in a worker thread; `result` None if it was stopped."""

    def __init__(self, build: object, result: object) -> None:
        self.build, self.result = build, result
        super().__init__()


class Selected(Message):
    """Jobs picked by a worker for a bulk action (`what`: "mark", "kill", "retry")."""

    def __init__(self, what: str, jobs: list[Job]) -> None:
        self.what, self.jobs = what, jobs
        super().__init__()


class Found(Message):
    """The answer to "go to job": the ids that start with what was typed."""

    def __init__(self, text: str, ids: list[str]) -> None:
        self.text, self.ids = text, ids
        super().__init__()
