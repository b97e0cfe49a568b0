"""The console's in-memory index of jobs: keyed, sorted, filtered, counted.

Three lists of the same `Row`s (see `rows`), all ascending by a unique key (see
`ordering`): `base` (every job, oldest first), `sorted_all` (every job in the
view's sort; the same list as `base` when sorting by creation) and `order`
(the jobs the filters let through; the same list as `sorted_all` with no
filter). A changed job is found by bisection and replaced in place, or moved
if its key or its match changed; so one change among a million jobs costs a
few microseconds, never a sort.

What costs time in proportion to the number of jobs (a new sort or filter, a
big batch of moves, pages arriving while sorted by another column) is a
`Build`: the app runs it from a snapshot in a worker thread for big indexes,
changes meanwhile are logged and replayed on its result. While the initial
load streams in, the default view needs no build at all (pages arrive in
creation order); another sort is rebuilt only when what is loaded has doubled
since the last build, and once at the end: a bounded number per load.
"""

from __future__ import annotations

import itertools
import operator
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gn_jobs_tui.core.model import Job
from gn_jobs_tui.ui.ordering import Build, Key, Result, View, base_key
from gn_jobs_tui.ui.query import Query
from gn_jobs_tui.ui.rows import Row

#: Below this many jobs a build runs at once on the UI thread (a few ms).
SYNC_LIMIT = 30_000
#: Moves of one job cost a memmove of the lists (~1 ms at a million jobs):
#: a batch costing more than this many job-moves x jobs becomes a build.
MOVE_BUDGET = 60_000_000
URGENT = frozenset({"running", "queued", "lost", "failed"})
#: Jobs with activity within this window feed the Pulse view.
RECENT = 3600.0
_ID = operator.attrgetter("job_id")
_WHO = operator.attrgetter("_who")
_STATUS = operator.attrgetter("effective_status")
_ODD = operator.attrgetter("_odd")
_CREATED = operator.attrgetter("created")
_STARTED = operator.attrgetter("started")
_FINISHED = operator.attrgetter("finished")


def _newest(rows: list[Row]) -> float:
    """The latest of any row's created, started and finished times (0.0 if none)."""
    return max(max(filter(None, map(get, rows)), default=0.0)
               for get in (_CREATED, _STARTED, _FINISHED))


LEVELS = ("filter", "sort", "full")


def _deeper(a: str, b: str) -> str:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b


def _locate(jobs: list[Row], job: Row, key: Key) -> int:
    i = bisect_left(jobs, key(job), key=key)
    if i < len(jobs) and jobs[i].job_id == job.job_id:
        return i
    return -1


def _move(jobs: list[Row], key: Key, old: Row | None, new: Row | None,
          old_in: bool = True, new_in: bool = True) -> None:
    """Put `new` where `old` was (in place if the key is the same), or drop/insert."""
    i = _locate(jobs, old, key) if old is not None and old_in else -1
    if old is not None and i >= 0 and new is not None and new_in and key(old) == key(new):
        jobs[i] = new
        return
    if i >= 0:
        del jobs[i]
    if new is not None and new_in:
        if jobs and key(jobs[-1]) < key(new):
            jobs.append(new)  # the usual case for a new job: the newest
        else:
            insort(jobs, new, key=key)


@dataclass
class HostStat:
    """What the Hosts view shows for one host."""

    statuses: Counter[str] = field(default_factory=Counter)
    alive: int = 0  # running jobs whose supervisor's heartbeat is there
    lapsed: int = 0  # running jobs whose heartbeat lapsed (shown lost)
    unknown: int = 0  # running jobs with no heartbeat of ours to judge
    last_seen: float = 0.0

    @property
    def running(self) -> int:
        return self.statuses.get("running", 0)

    def add_group(self, status: str, hb: str | None, n: int) -> None:
        """N new jobs of one status and heartbeat health (a load counts them by group)."""
        self.statuses[status] += n
        if hb == "unknown":
            self.unknown += n
        elif hb == "alive":
            self.alive += n
        elif hb == "lapsed":
            self.lapsed += n

    def saw(self, when: float) -> None:
        if when > self.last_seen:
            self.last_seen = when

    def add(self, job: Row, sign: int) -> None:
        self.statuses[job.effective_status] += sign
        if job.hb == "unknown":
            self.unknown += sign
        elif job.hb == "alive":
            self.alive += sign
        elif job.hb == "lapsed":
            self.lapsed += sign
        if sign > 0:
            seen = max(job.started or 0.0, job.finished or 0.0, job.created or 0.0)
            if seen > self.last_seen:
                self.last_seen = seen


class JobIndex:
    """All jobs the console knows, the table's order, and running counts."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.jobs: dict[str, Row] = {}
        self.base: list[Row] = []
        self.sorted_all: list[Row] = self.base
        self.order: list[Row] = self.base
        self.view = View()
        self.building: Build | None = None
        self.preview: list[Row] | None = None
        self.loading = False
        self.unsorted = 0  # jobs in `base` not yet placed in sorted_all/order (load)
        self.builds = 0  # builds started: tests and benchmarks count them
        self.sync_limit = SYNC_LIMIT
        self._serial = 0
        self.status_counts: Counter[str] = Counter()
        self.user_counts: Counter[str] = Counter()
        self.type_counts: Counter[str] = Counter()
        self.hosts: dict[str, HostStat] = {}
        self.recent: dict[str, Row] = {}
        self.distinct_version = 0  # bumped when users, types or hosts come or go

    # -- the view -------------------------------------------------------------
    @property
    def target(self) -> View:
        """The view asked for (its build may still run; the lists show `view`)."""
        return self.building.view if self.building is not None else self.view

    @property
    def sort_key(self) -> str:
        return self.target.sort_key

    @property
    def reverse(self) -> bool:
        return self.target.reverse

    @property
    def query(self) -> Query:
        return self.target.query

    @property
    def user(self) -> str | None:
        return self.target.user

    @property
    def status(self) -> str | None:
        return self.target.status

    def set_view(self, view: View) -> Build | None:
        """Ask for another sort or filter; returns the build to run, if one is needed."""
        if view == self.target:
            return None
        if self.building is None and view.same_order(self.view) and \
                view.same_filter(self.view) and not self.unsorted:
            self.view = view  # only the direction changed: the lists read the other way
            return None
        return self._restart(view, "filter")

    def _restart(self, view: View, level: str) -> Build:
        """Start a build for `view`, replacing any running one, at the level all need."""
        if not view.same_order(self.view) or self.unsorted:
            level = _deeper(level, "sort")
        if self.building is not None:
            level = _deeper(level, self.building.level)  # never less than what it owed
            self.building.cancelled = True
            self.building = None
        self.preview = None
        return self._start(view, level)

    def _cancel(self) -> None:
        if self.building is not None:
            self.building.cancelled = True
        self.building = None
        self.preview = None

    def _start(self, view: View, level: str) -> Build:
        self._serial += 1
        self.builds += 1
        if level == "full":
            source = list(self.jobs.values())
        elif level == "sort":
            source = self.base[:]
        else:
            source = self.sorted_all[:]
        self.building = Build(self._serial, view, level, source, size=len(source))
        self.unsorted = 0
        return self.building

    def next_build(self) -> Build | None:
        """The build to run now, if any: one the index started itself (too many
        moves, an unordered page) or one owed (jobs placed in `base` only)."""
        build = self.building
        if build is not None:
            return None if build.started else build
        if self.unsorted and (not self.loading or
                              self.unsorted >= max(1000, len(self.sorted_all))):
            # During the load: only when what is loaded has doubled since the last sort.
            return self._start(self.view, "sort" if self.sorted_all is not self.base
                               else "filter")
        return None

    def finish(self, build: Build, result: Result | None) -> bool:
        """Install a build's result, replaying what changed meanwhile. False if stale."""
        if build is not self.building or result is None:
            return False
        self.building = None
        self.preview = None
        view, log = build.view, build.log
        if len(log) > 1 and len(log) * max(1, build.size) > MOVE_BUDGET:
            self._start(view, build.level)  # too much changed meanwhile: again, from now
            return False
        key = view.key()
        if result.base is not None:
            self.base = result.base
            for old, new in log:
                _move(self.base, base_key, old, new)
        if view.sort_key == "created":
            self.sorted_all = self.base  # kept up to date all along
        elif result.sorted_all is not None:
            self.sorted_all = result.sorted_all
            for old, new in log:
                _move(self.sorted_all, key, old, new)
        # else: a filter-only build; sorted_all was kept up to date in the same order.
        if result.order is None:
            self.order = self.sorted_all
        else:
            self.order = result.order
            for old, new in log:
                _move(self.order, key, old, new, old is not None and view.matches(old),
                      new is not None and view.matches(new))
        self.view = view
        return True

    # -- changes ----------------------------------------------------------------
    def _count(self, job: Row, sign: int) -> None:
        self.status_counts[job.effective_status] += sign
        users, types = self.user_counts, self.type_counts
        users[job.user_id] = n_user = users[job.user_id] + sign
        types[job.job_type] = n_type = types[job.job_type] + sign
        edge = 1 if sign > 0 else 0
        if n_user == edge or n_type == edge:
            self.distinct_version += 1  # a user or type appeared or went: widths may change
        if job.host:
            stat = self.hosts.get(job.host)
            if stat is None:
                stat = self.hosts[job.host] = HostStat()
                self.distinct_version += 1
            stat.add(job, sign)

    def _count_new(self, rows: list[Row]) -> None:
        """`_count` and `_note_recent` for many new rows at once.

        A load brings a million rows with a few distinct (type, user, host, status,
        health) among them: the rows are grouped by those in C (`Counter` over
        `map`), and only the groups are walked in Python.
        """
        self.jobs.update(zip(map(_ID, rows), rows, strict=True))
        sizes = (len(self.user_counts), len(self.type_counts), len(self.hosts))
        groups = Counter(zip(map(_WHO, rows), map(_STATUS, rows), map(_ODD, rows), strict=True))
        statuses, users, types, hosts = (self.status_counts, self.user_counts,
                                         self.type_counts, self.hosts)
        page_hosts: set[str] = set()
        for (who, status, odd), n in groups.items():
            job_type, user, host = who
            statuses[status] += n
            users[user] += n
            types[job_type] += n
            if host:
                stat = hosts.get(host)
                if stat is None:
                    stat = hosts[host] = HostStat()
                stat.add_group(status, odd[1] if odd is not None else None, n)
                page_hosts.add(host)
        if sizes != (len(self.user_counts), len(self.type_counts), len(self.hosts)):
            self.distinct_version += 1
        if page_hosts:
            if len(page_hosts) == 1 and all(who[2] for who, _, _ in groups):
                hosts[next(iter(page_hosts))].saw(_newest(rows))
            else:
                by_host: dict[str, list[Row]] = {}
                for r in rows:
                    if (host := r._who[2]):
                        by_host.setdefault(host, []).append(r)
                for host, group in by_host.items():
                    hosts[host].saw(_newest(group))
        horizon = self.clock() - RECENT
        if _newest(rows) >= horizon:
            self.recent.update((r.job_id, r) for r in rows if max(
                r.created or 0.0, r.started or 0.0, r.finished or 0.0) >= horizon)

    def _note_recent(self, job: Row, horizon: float) -> None:
        if max(job.created or 0.0, job.started or 0.0, job.finished or 0.0) >= horizon:
            self.recent[job.job_id] = job
        else:
            self.recent.pop(job.job_id, None)

    def add_page(self, page: Sequence[Job | Row]) -> list[Row]:
        """A page of the initial load (newest first), as Jobs or Rows already made.
        Returns the rows that changed.

        New jobs go to the front of `base` in one step when they are older than
        everything held, as the listing sends them; with the default view they
        are then shown with no further work.
        """
        known = self.jobs
        changed: list[Row] = []
        if known.keys().isdisjoint(map(_ID, page)):  # a load: all new (checked in C)
            fresh = list(page) if set(map(type, page)) <= {Row} else \
                [j if type(j) is Row else Row(j) for j in page]  # type: ignore[arg-type]
        else:
            fresh = [j if type(j) is Row else Row(j)  # type: ignore[arg-type]
                     for j in page if j.job_id not in known]
            changed = self.upsert([j for j in page if j.job_id in known])
        if not fresh:
            return changed
        self._count_new(fresh)  # type: ignore[arg-type]
        fresh.reverse()  # oldest first, like `base`
        created = list(map(_CREATED, fresh))
        keys = list(zip(created, map(_ID, fresh), strict=True)) if None not in created else \
            [base_key(j) for j in fresh]  # type: ignore[arg-type]
        ordered = all(map(operator.lt, keys, itertools.islice(keys, 1, None)))
        building = self.building
        if building is not None and building.level == "full":
            building.log.extend((None, j) for j in fresh)
        if ordered and (not self.base or keys[-1] < base_key(self.base[0])):
            self.base[0:0] = fresh
        elif len(fresh) * max(1, len(self.base)) <= MOVE_BUDGET:
            for job in fresh:
                _move(self.base, base_key, None, job)
        elif building is None or building.level != "full":
            self._restart(self.target, "full")  # rebuilt from the dict, fresh jobs included
            return changed + fresh
        if building is not None:
            if building.level != "full":
                self.unsorted += len(fresh)  # not in the build's snapshot
        elif self.sorted_all is not self.base:
            self.unsorted += len(fresh)
        elif self.order is not self.sorted_all:
            placed = [j for j in fresh if self.view.matches(j)]
            if ordered and (not placed or not self.order or
                            base_key(placed[-1]) < base_key(self.order[0])):
                self.order[0:0] = placed
            elif len(placed) * max(1, len(self.order)) <= MOVE_BUDGET:
                for job in placed:
                    _move(self.order, base_key, None, job)
            else:
                self.unsorted += len(fresh)
        return changed + fresh

    def upsert(self, jobs: Iterable[Job | Row]) -> list[Row]:
        """Add or replace jobs; returns the rows that changed.

        A re-read job whose row equals the one held is not replaced: the
        table's line cache (keyed on the object) then stays valid.
        """
        pairs: list[tuple[Row | None, Row | None]] = []
        horizon = self.clock() - RECENT
        for full in jobs:
            job = full if type(full) is Row else Row(full)  # type: ignore[arg-type]
            old = self.jobs.get(job.job_id)
            if old is not None and old == job:
                continue
            if old is not None:
                self._count(old, -1)
            self._count(job, 1)
            self._note_recent(job, horizon)
            self.jobs[job.job_id] = job
            pairs.append((old, job))
        if pairs:
            self._apply(pairs)
        return [new for _, new in pairs if new is not None]

    def remove(self, ids: Iterable[str]) -> list[Row]:
        pairs: list[tuple[Row | None, Row | None]] = []
        for job_id in ids:
            old = self.jobs.pop(job_id, None)
            if old is not None:
                self._count(old, -1)
                self.recent.pop(job_id, None)
                pairs.append((old, None))
        if pairs:
            self._apply(pairs)
        return [old for old, _ in pairs if old is not None]

    def _apply(self, pairs: list[tuple[Row | None, Row | None]]) -> None:
        """Bring every list up to date with these changes, or leave it to a build."""
        size = max(1, len(self.base))
        building = self.building
        last = base_key(self.base[-1]) if self.base else None
        base_moves = sum(1 for old, new in pairs if not (
            (old is not None and new is not None and base_key(old) == base_key(new))
            or (old is None and new is not None and (last is None or base_key(new) > last))))
        if base_moves > 1 and base_moves * size > MOVE_BUDGET:
            # E.g. a clean-up removed thousands: cheaper to rebuild from the dict.
            if building is not None and building.level == "full":
                building.log.extend(pairs)
            else:
                self._restart(self.target, "full")
            return
        if building is not None:
            building.log.extend(pairs)
        for old, new in pairs:
            _move(self.base, base_key, old, new)
        view = self.view
        key, matches = view.key(), view.matches
        own_sort = self.sorted_all is not self.base
        own_order = self.order is not self.sorted_all
        moves = 0
        if own_sort:
            moves += sum(1 for old, new in pairs
                         if old is None or new is None or key(old) != key(new))
        if own_order:
            moves += sum(1 for old, new in pairs
                         if (old is not None and matches(old)) != (new is not None and matches(new))
                         or (old is not None and new is not None and key(old) != key(new)))
        if moves > 1 and moves * size > MOVE_BUDGET:
            # The view's lists are re-made from `base` (up to date now).
            self._restart(self.target, "sort" if own_sort else "filter")
            return
        for old, new in pairs:
            if own_sort:
                _move(self.sorted_all, key, old, new)
            if own_order:
                _move(self.order, key, old, new, old is not None and matches(old),
                      new is not None and matches(new))

    def clear(self) -> None:
        """Forget every job (a reload); the view (sort, filters) stays."""
        self.reset(self.target)

    def reset(self, view: View) -> None:
        """Empty, showing `view`: the lists are set up the way that view keeps them."""
        self._cancel()
        self.jobs = {}
        self.base = []
        self.sorted_all = self.base if view.sort_key == "created" else []
        self.order = [] if view.filtered else self.sorted_all
        self.view = view
        self.unsorted = 0
        self.status_counts.clear()
        self.user_counts.clear()
        self.type_counts.clear()
        self.hosts.clear()
        self.recent.clear()
        self.distinct_version += 1

    # -- reading ------------------------------------------------------------------
    def __len__(self) -> int:
        """Rows of the table (the preview's while a build has only shown one)."""
        return len(self.preview) if self.preview is not None else len(self.order)

    def row(self, i: int) -> Row:
        if self.preview is not None:
            return self.preview[i]
        order = self.order
        return order[len(order) - 1 - i] if self.view.reverse else order[i]

    def rows(self, start: int, stop: int) -> list[Row]:
        return [self.row(i) for i in range(max(0, start), min(len(self), stop))]

    def row_of(self, job_id: str) -> int | None:
        """The table row of a job, by bisection (None if it is not shown)."""
        if self.preview is not None:
            for i, job in enumerate(self.preview):
                if job.job_id == job_id:
                    return i
            return None
        job = self.jobs.get(job_id)
        if job is None:
            return None
        i = _locate(self.order, job, self.view.key())
        if i < 0 or self.order[i] is not job:
            return None  # not shown, or placed only by a build still to come
        return len(self.order) - 1 - i if self.view.reverse else i

    def counts_text(self, urgent: bool | None = None) -> str:
        """Counts by status, the urgent ones first; `urgent` picks one half of them."""
        urgency = ["running", "queued", "lost", "failed", "killed", "completed"]
        ranked = sorted(self.status_counts.items(),
                        key=lambda kv: (urgency.index(kv[0]) if kv[0] in urgency else 99, kv[0]))
        parts = [f"{n:,} {s}" for s, n in ranked if n > 0 and (
            urgent is None or (s in URGENT) == urgent)]
        return " · ".join(parts) if parts or urgent is not None else "no jobs"

    def users(self) -> list[tuple[str, int]]:
        return sorted((u, n) for u, n in self.user_counts.items() if n > 0)

    def recent_jobs(self, horizon: float) -> list[Row]:
        """Jobs with activity since `horizon` (for Pulse); older ones are forgotten here."""
        old = [i for i, j in self.recent.items()
               if max(j.created or 0.0, j.started or 0.0, j.finished or 0.0) < horizon]
        for job_id in old:
            del self.recent[job_id]
        return list(self.recent.values())

    def distinct(self, what: str) -> list[str]:
        """Distinct users, types or hosts present (for column widths)."""
        if what == "user":
            return [k for k, n in self.user_counts.items() if n > 0]
        if what == "type":
            return [k for k, n in self.type_counts.items() if n > 0]
        if what == "host":
            return [h for h, s in self.hosts.items() if sum(s.statuses.values()) > 0]
        return []
