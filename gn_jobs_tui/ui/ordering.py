"""Sort keys, the table's view (sort + filter), and the order builder.

Every list of jobs the index keeps is *ascending* by a unique key
K = (value of the sort column, created, job id); a descending table reads it
from the end. So flipping the direction costs nothing, and one job is found,
moved or inserted with a bisection instead of a sort.

A full sort or filter of a million jobs takes about a second of CPU. `build`
does it in a worker thread without holding the GIL for long: it sorts slices
(a C call of a few milliseconds each), posts the top of the new order (the
rows on screen) as soon as it is known, then merges the slices in Python,
which lets the UI thread run between any two steps.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gn_jobs_tui.ui.query import Query
from gn_jobs_tui.ui.rows import Row

SORT_KEYS = ("id", "type", "user", "status", "progress", "created", "started", "finished",
             "elapsed", "host", "message")
DEFAULT_SORT = "created"
#: Slices sorted by one C call: a few milliseconds each, so the UI thread waits no longer.
CHUNK = 10_000
MERGE_STEP = 10_000

Key = Callable[[Row], Any]


def base_key(job: Row) -> tuple[float, str]:
    """The order every other one starts from: oldest first, then by id."""
    return (job.created or 0.0, job.job_id)


def primary(sort_key: str, now: float) -> Key:
    """The sort column's value of a job: plain values, so comparisons stay cheap."""
    if sort_key == "id":
        return lambda j: j.job_id
    if sort_key == "type":
        return lambda j: j.job_type
    if sort_key == "user":
        return lambda j: j.user_id
    if sort_key == "status":
        return lambda j: j.effective_status
    if sort_key == "progress":
        return lambda j: -1.0 if j.progress is None else j.progress
    if sort_key == "started":
        return lambda j: j.started or 0.0
    if sort_key == "finished":
        return lambda j: j.finished or 0.0
    if sort_key == "elapsed":
        return lambda j: j.elapsed(now) or 0.0
    if sort_key == "host":
        return lambda j: j.host or ""
    if sort_key == "message":
        return lambda j: j.message or ""
    return lambda j: j.created or 0.0


def full_key(sort_key: str, now: float) -> Key:
    """K: unique per job, consistent with a stable sort of the base order by `primary`."""
    if sort_key == "created":
        return base_key
    if sort_key == "id":
        return lambda j: (j.job_id,)
    value = primary(sort_key, now)
    return lambda j: (value(j), j.created or 0.0, j.job_id)


@dataclass(frozen=True)
class View:
    """What the table shows: one sort and the filters. Immutable: a change is a new View."""

    sort_key: str = DEFAULT_SORT
    reverse: bool = True
    query: Query = field(default_factory=Query)
    user: str | None = None
    status: str | None = None
    now: float = 0.0  # the clock for `elapsed`, fixed when the sort was asked for

    @property
    def filtered(self) -> bool:
        return bool(self.query) or self.user is not None or self.status is not None

    def matches(self, job: Row) -> bool:
        if self.user is not None and job.user_id != self.user:
            return False
        if self.status is not None and job.effective_status != self.status:
            return False
        return not self.query or self.query.matches(job)

    def key(self) -> Key:
        return full_key(self.sort_key, self.now)

    def same_order(self, other: View) -> bool:
        """True if both sort the same way (direction aside)."""
        return self.sort_key == other.sort_key and (
            self.sort_key != "elapsed" or self.now == other.now)

    def same_filter(self, other: View) -> bool:
        return (self.query, self.user, self.status) == (other.query, other.user, other.status)

    def with_(self, **changes: Any) -> View:
        return replace(self, **changes)


@dataclass
class Build:
    """One rebuild of the index's lists, started from a snapshot.

    level: "full" rebuilds the base order from every job, "sort" re-sorts the
    base order for the view, "filter" only filters the sorted list. Changes
    that arrive while it runs are logged and replayed on the result.
    """

    serial: int
    view: View
    level: str
    source: list[Row] = field(repr=False)
    log: list[tuple[Row | None, Row | None]] = field(default_factory=list, repr=False)
    size: int = 0  # len(source) when it started (the source is dropped once used)
    started: bool = False  # handed to a runner (the app) already
    cancelled: bool = False


@dataclass
class Result:
    base: list[Row] | None
    sorted_all: list[Row] | None
    order: list[Row] | None


def _merge(chunks: list[list[Row]], key: Key, stop: Callable[[], bool]) -> list[Row] | None:
    """Stable k-way merge in steps, so the thread yields the GIL between any two."""
    if len(chunks) == 1:
        return chunks[0]
    out: list[Row] = []
    merged = heapq.merge(*chunks, key=key)  # ties: the earlier chunk first (stable)
    while True:
        step = list(itertools.islice(merged, MERGE_STEP))
        if not step:
            return out
        out.extend(step)
        if stop():
            return None


def _sorted_in_chunks(jobs: list[Row], key: Key, stop: Callable[[], bool]) -> list[list[Row]] | None:
    chunks = []
    for i in range(0, len(jobs), CHUNK):
        chunks.append(sorted(jobs[i : i + CHUNK], key=key))
        if stop():
            return None
    return chunks or [[]]


def _top(chunks: list[list[Row]], key: Key, window: int, reverse: bool) -> list[Row]:
    """The first `window` rows of the merged order, in display order, from the chunk ends."""
    if reverse:
        tails = [c[-window:] for c in chunks]
        return list(heapq.merge(*tails, key=key))[-window:][::-1]
    heads = [c[:window] for c in chunks]
    return list(itertools.islice(heapq.merge(*heads, key=key), window))


def run(build: Build, window: int = 60, preview: Callable[[list[Row]], None] | None = None,
        stop: Callable[[], bool] | None = None) -> Result | None:
    """The lists for `build.view` from `build.source`; None if stopped. Pure: no index access."""
    view = build.view
    halt = stop or (lambda: build.cancelled)
    base = sorted_all = None
    source = build.source
    if build.level == "full":
        chunks = _sorted_in_chunks(source, base_key, halt)
        base = None if chunks is None else _merge(chunks, base_key, halt)
        if base is None:
            return None
        source = base
    if build.level in ("full", "sort"):
        if view.sort_key == "created":
            sorted_all = source
        else:
            value = primary(view.sort_key, view.now)
            # The source is in base order, so a stable sort by the column's value
            # alone gives exactly K's order (cheap comparisons of plain values).
            chunks = _sorted_in_chunks(source, value, halt)
            if chunks is None:
                return None
            if preview is not None and not view.filtered:
                preview(_top(chunks, value, window, view.reverse))
            sorted_all = _merge(chunks, value, halt)
            if sorted_all is None:
                return None
        source = sorted_all
    if not view.filtered:
        return Result(base, sorted_all, None)
    return _filter(build, source, base, sorted_all, window, preview, halt)


def _filter(build: Build, source: list[Row], base: list[Row] | None, sorted_all: list[Row] | None,
            window: int, preview: Callable[[list[Row]], None] | None,
            halt: Callable[[], bool]) -> Result | None:
    matches = build.view.matches
    reverse = build.view.reverse
    picked: list[Row] = []
    n = len(source)
    # In display order, so the first screenful is known (and shown) first.
    for done in range(0, n, MERGE_STEP):
        if reverse:
            part = source[max(0, n - done - MERGE_STEP) : n - done]
            part.reverse()
        else:
            part = source[done : done + MERGE_STEP]
        picked.extend([j for j in part if matches(j)])
        if preview is not None and len(picked) >= window:
            preview(picked[:window])
            preview = None
        if halt():
            return None
    if reverse:
        picked.reverse()
    return Result(base, sorted_all, picked)
