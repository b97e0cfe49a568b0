"""The live feed: load, subscribe and poll, as asyncio workers of the app.

- load: the first page first (first screen fast), then the rest of the
  all-jobs index in pages, then jobs only per-user indexes list, then job
  hashes nobody indexed. A reload (Ctrl+R, reconnect) re-reads everything
  and then removes only what is gone: the table never empties meanwhile.
- subscribe: change events (and keyspace events where the server sends them
  and our user may hear them); changed ids are coalesced for 50 ms and
  re-read in one call.
- poll: one loop, so polls never overlap. Its cost does not grow with the
  number of running jobs: our own jobs announce their changes, and lapsed
  heartbeats are one range query on `P:heartbeats`. What it still reads is
  bounded: the 20 newest indexed ids, a rotating slice of other producers'
  active jobs (they publish nothing), a slice of the key space for new
  unindexed jobs (on a small server, the whole key space, but only when its
  size changed, and every 20th poll as a safety net), and the newest ids of
  per-user indexes that hold other producers' jobs.
If Redis goes away, every loop reports it, backs off and reloads on return.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from collections import Counter
from collections.abc import Callable, Sequence

import redis

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.connection import UrlError
from gn_jobs_tui.core.model import Job, looks_like_a_job
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.core.store import AsyncStore
from gn_jobs_tui.ui.messages import Connection, JobsChanged, JobsLoaded, KeysChanged, Polled
from gn_jobs_tui.ui.rows import Row, rows_from_listing

FIRST_PAGE = 200
#: Jobs per page after the first: a page's reply is read on the event loop, and 5,000 held
#: it for 112 ms at a million jobs (2,000: 78 ms, the same load time).
PAGE = 2000
COALESCE = 0.05
ACTIVE_SLICE = 1000
#: Below this many keys, every poll scans the whole key space for new unindexed jobs.
SMALL_KEYSPACE = 50_000
SCAN_COUNT = 5000
#: A poll's slice of a large key space: 2 x 1,000 keys. Parsing 10,000 keys every poll was
#: half of an idle console's CPU at a million jobs; a full pass over 3M keys now takes
#: about 75 minutes of polls (Ctrl+R reads everything at once).
SLICE_BUDGET = 2
SLICE_COUNT = 1000
FULL_PASS_EVERY = 20
USERS_EVERY = 20
MEMORY_EVERY = 10
KEY_ONLY = frozenset({"output", "child"})
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
_ID = operator.attrgetter("job_id")
_WHO = operator.attrgetter("_who")
_ODD = operator.attrgetter("_odd")


async def _end(tasks: set[asyncio.Task[object]]) -> None:
    """Cancel these tasks and wait until each has ended (idempotent)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


class Feed:
    def __init__(self, config: Config, post: Callable[[object], object], *,
                 poll_interval: float = 3.0) -> None:
        self.config = config
        self.post = post
        self.poll_interval = poll_interval
        self.store = AsyncStore.from_url(config.url, config.prefix, config.read_only)
        #: Every id the console holds, and which of them came from the all-jobs index.
        self.known: set[str] = set()
        self.indexed = 0
        #: Other producers' jobs that are not finished: they announce nothing, so polled.
        self.foreign_active: set[str] = set()
        #: Ids no all-jobs index lists (per-user only, or unindexed), kept across reloads.
        self.outside: dict[str, str | None] = {}
        #: Per-user indexes that list jobs the all-jobs index lacks.
        self.foreign_users: set[str] = set()
        #: Jobs per user in the all-jobs index: a per-user index larger than that lists more.
        self.user_counts: dict[str, int] = {}
        self.changed: set[str] = set()
        self.connected: bool | None = None
        self.loaded = False
        self.notes: tuple[str, ...] = ()
        #: Behind Sentinel: the primary last seen, and the failover note once it changed.
        self.primary: str | None = None
        self.failover: str | None = None
        self._wake = asyncio.Event()
        self._reload = asyncio.Event()
        self._scan_cursor = 0
        self._polls = 0
        self._active_at = 0
        self._lapsed_since = 0.0
        self._keys = -1

    def _error(self, exc: BaseException) -> str:
        return redact_text(f"{type(exc).__name__}: {exc}", self.config.url)

    def _note(self, jobs: Sequence[Job | Row], *, indexed: bool = False) -> None:
        for job in jobs:
            if job.job_id not in self.known:
                self.known.add(job.job_id)
                if indexed:
                    self.indexed += 1
                    self.user_counts[job.user_id] = self.user_counts.get(job.user_id, 0) + 1
                    self.outside.pop(job.job_id, None)  # now in the all-jobs index
            if isinstance(job, Row):
                polled = job.polled
            else:
                ours = job.heartbeat is not None or job.attempt is not None
                polled = not (job.is_terminal or ours)
            if polled:
                self.foreign_active.add(job.job_id)
            else:
                self.foreign_active.discard(job.job_id)

    def _note_rows(self, rows: list[Row], ids: list[str]) -> None:
        """`_note(rows, indexed=True)` for a page of new rows (`ids` not in `known`),
        in C where it can be."""
        self.known.update(ids)
        self.indexed += len(ids)
        if self.outside:  # those now in the all-jobs index are no longer outside it
            for job_id in ids:
                self.outside.pop(job_id, None)
        counts = self.user_counts
        for who, n in Counter(map(_WHO, rows)).items():
            counts[who[1]] = counts.get(who[1], 0) + n
        if self.foreign_active:
            self.foreign_active.difference_update(ids)
        self.foreign_active.update(r.job_id for r in itertools.compress(rows, map(_ODD, rows))
                                   if r.polled)

    def _forget(self, ids: list[str]) -> None:
        for job_id in ids:
            if job_id in self.known:
                self.known.discard(job_id)
                if job_id not in self.outside:
                    self.indexed -= 1
            self.outside.pop(job_id, None)
            self.foreign_active.discard(job_id)

    async def _mark_lost(self, jobs: list[Job]) -> None:
        if self.config.read_only:
            return
        for job in jobs:
            if job.is_lost:
                await self.store.mark_lost(job)

    async def _check_primary(self) -> None:
        """Behind Sentinel: a new primary since last time is a failover, said in the top bar."""
        primary = await self.store.primary()
        if primary is None:
            return
        if self.primary is not None and primary != self.primary:
            self.failover = f"failover: primary now {primary} (was {self.primary})"
        self.primary = primary

    def _post_notes(self, force: bool = False) -> None:
        caps = self.store.caps
        notes = tuple(caps.warnings() + ([self.failover] if self.failover else [])
                      + caps.degradations())
        if force or notes != self.notes:
            self.notes = notes
            self.post(Connection(True, notes=notes))

    # -- loops -------------------------------------------------------------
    async def run(self) -> None:
        """Load, then keep subscribe and poll going; reconnect with backoff.

        Every task it starts ends with it, on every path (app closing while it
        subscribes or loads included): a leftover listener would poll forever.
        """
        delay = 0.5
        while True:
            tasks: set[asyncio.Task[object]] = set()
            try:
                await self._session(tasks)
            except (*REDIS_ERRORS, redis.ResponseError, UrlError) as exc:
                # LOADING, a failover's READONLY, NOPERM on a read: say so, retry later.
                await _end(tasks)
                self.connected = False
                self.post(Connection(False, self._error(exc), delay))
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
            else:
                delay = 0.5
            finally:
                await _end(tasks)

    async def _session(self, tasks: set[asyncio.Task[object]]) -> None:
        """One connected stretch: until a reload is asked for or a loop fails."""
        await self.store.detect()
        # Subscribe first, then load: a change made while loading is not lost.
        subscribed = asyncio.Event()
        listener = asyncio.create_task(self.listen(subscribed.set))
        waiter = asyncio.create_task(subscribed.wait())
        tasks.update((listener, waiter))
        await asyncio.wait({listener, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if listener.done():
            listener.result()  # the subscription failed: its error says why
        self._reload.clear()
        await self.load()
        await self._check_primary()
        if self.connected is not True:
            self.connected = True
            self._post_notes(force=True)
        tasks.add(asyncio.create_task(self.poll()))
        reload = asyncio.create_task(self._reload.wait())
        tasks.add(reload)
        done, _ = await asyncio.wait(tasks - {waiter}, return_when=asyncio.FIRST_COMPLETED)
        await _end(tasks)
        for task in done:
            if task is not reload and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def request_reload(self) -> None:
        self._reload.set()

    async def load(self) -> None:
        """Every source, the first screen first; then remove what is gone.

        `known` starts empty and takes each id as it is read: it is also the set of
        ids seen by this load (a second set of a million ids cost as much again,
        and both grew, so re-hashed, in the same step: a stall of 180 ms).
        """
        first_load = not self.known
        previous = self.known
        self.known = seen = set()
        self.indexed = 0
        self.user_counts = {}
        first = await self.store.list_jobs(None, 0, FIRST_PAGE)
        self._note(first, indexed=True)
        self.post(JobsLoaded(first, reset=first_load, complete=False))
        if len(first) == FIRST_PAGE:
            # The server reads the next page while this one is parsed and posted.
            async for page in self.store.iter_pages(None, FIRST_PAGE, PAGE,
                                                    parse=rows_from_listing):
                ids = list(map(_ID, page))
                if seen.isdisjoint(ids):  # the usual case, checked in C
                    self._note_rows(page, ids)
                    fresh = page
                else:  # already read: a job added meanwhile shifted the pages, or a change
                    fresh = [j for j in page if j.job_id not in seen]
                    self._note(fresh, indexed=True)
                self.post(JobsLoaded(fresh, complete=False))
        # Jobs the all-jobs index lacks: the ones already found, at once, then a fresh search.
        if self.outside:
            kept = [i for i in self.outside if i not in seen]
            jobs = [j for j in await self.store.get_jobs(kept, self._hints(kept))
                    if not j.is_missing]
            self._note(jobs)
            self.post(JobsLoaded(jobs, complete=False))
        for jobs in (await self._user_only(seen), await self._unindexed(seen, full=True)):
            self._note(jobs)
            if jobs:
                self.post(JobsLoaded(jobs, complete=False))
        gone = [i for i in previous if i not in seen]
        self._forget(gone)
        self.post(JobsLoaded([], complete=True))
        if gone:
            self.post(JobsChanged([], gone))
        self.loaded = True

    def _hints(self, ids: list[str]) -> dict[str, str]:
        return {i: u for i in ids if (u := self.outside.get(i))}

    def _skip(self, job_id: str) -> bool:
        """Already held, from any source (no copy of the id set: it can hold a million)."""
        return job_id in self.known or job_id in self.outside

    async def _user_only(self, seen: set[str], newest: int = 0) -> list[Job]:
        """Jobs that only per-user indexes list (gn-uploader's own code indexes there only).

        `newest`: only the newest ids of the indexes known to hold such jobs (a poll);
        0: every per-user index, but read whole only where its size says it holds
        more than the all-jobs index has of that user.
        """
        store = self.store
        if newest:
            names = [store.keys.user_jobs(u) for u in sorted(self.foreign_users)]
        else:
            names = await store.user_indexes()
            sizes = await store._run([("ZCARD", n) for n in names], raise_on_error=False)
            names = [n for n, size in zip(names, sizes, strict=False)
                     if isinstance(size, int) and size > self.user_counts.get(
                         store.keys.user_of(n) or "", 0)]
        hints: dict[str, str] = {}
        for name in names:
            user = store.keys.user_of(name) or ""
            for job_id, _ in await store.index_page(name, 0, newest or 1_000_000_000):
                if job_id not in seen and job_id not in hints and not self._skip(job_id):
                    hints[job_id] = user
        ids = [i for i, inside in zip(hints, await store.in_index(list(hints)), strict=False)
               if not inside]
        if not newest:
            self.foreign_users = {hints[i] for i in ids}
        for job_id in ids:
            self.outside[job_id] = hints[job_id]
        return [j for j in await store.get_jobs(ids, hints) if not j.is_missing]

    async def _unindexed(self, seen: set[str], *, full: bool) -> list[Job]:
        """Job hashes nobody indexed: a whole pass, or a bounded slice of the key space."""
        found: list[str] = []

        def held(job_id: str) -> bool:
            return job_id in seen or self._skip(job_id)

        if full:
            cursor = 0
            while True:
                cursor, ids = await self.store.discover(cursor, budget=10, count=SCAN_COUNT,
                                                        skip=held)
                found.extend(ids)
                if cursor == 0:
                    break
        else:
            self._scan_cursor, found = await self.store.discover(
                self._scan_cursor, budget=SLICE_BUDGET, count=SLICE_COUNT, skip=held)
        fresh = [i for i in dict.fromkeys(found) if i not in seen and not self._skip(i)]
        jobs = [j for j in await self.store.get_jobs(fresh) if looks_like_a_job(j)]
        for job in jobs:
            self.outside[job.job_id] = None
        return jobs

    async def listen(self, ready: Callable[[], object] | None = None) -> None:
        flusher = asyncio.create_task(self._flush_loop())
        try:
            async for job_id, what in self.store.subscribe(ready=ready):
                if self.store.caps.keyspace is False and "no keyspace events" not in self.notes:
                    self._post_notes()
                if what and set(what) <= KEY_ONLY:
                    # New output or child records: the table shows none of it;
                    # only an open drill-down of that job wants to know.
                    self.post(KeysChanged(job_id))
                    continue
                self.changed.add(job_id)
                self._wake.set()
        finally:
            flusher.cancel()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(COALESCE)
            self._wake.clear()
            ids, self.changed = sorted(self.changed), set()
            if ids:
                await self.refresh_ids(ids)

    async def refresh_ids(self, ids: list[str]) -> None:
        jobs = await self.store.get_jobs(ids, self._hints(ids))
        present = [j for j in jobs if not j.is_missing and
                   (j.job_id in self.known or looks_like_a_job(j))]
        gone = [j.job_id for j in jobs if j.is_missing and j.created is None]
        await self._mark_lost(present)
        new_indexed = [j for j in present if j.job_id not in self.known
                       and j.job_id not in self.outside]
        self._note(new_indexed, indexed=True)
        self._note(present)
        self._forget(gone)
        self.post(JobsChanged(present, gone))

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.poll_once()

    async def poll_once(self) -> None:
        """One bounded round of what events cannot tell us (see the module docstring)."""
        self._polls += 1
        store = self.store
        ids: list[str] = []
        # Lapsed heartbeats: one range query, however many jobs run.
        now, lapsed = await store.lapsed(self._lapsed_since)
        self._lapsed_since = now
        ids.extend(lapsed)
        # Other producers' active jobs announce nothing: a rotating, bounded slice.
        active = sorted(self.foreign_active)
        if active:
            start = self._active_at % len(active)
            chunk = (active[start:] + active[:start])[:ACTIVE_SLICE]
            self._active_at = start + len(chunk)
            ids.extend(chunk)
        if ids:
            await self.refresh_ids(list(dict.fromkeys(ids)))
        # New ids in the all-jobs index from producers that publish nothing: ids only,
        # and only the unseen ones are read.
        newest = await store.index_page(store.keys.jobs_index, 0, 20)
        fresh = [i for i, _ in newest if i not in self.known]
        unseen = [j for j in await store.get_jobs(fresh) if not j.is_missing] if fresh else []
        self._note(unseen, indexed=True)
        keys = await store.dbsize()
        small = keys <= SMALL_KEYSPACE
        if not small:
            extra = await self._unindexed(set(), full=False)
        elif keys != self._keys or self._polls % FULL_PASS_EVERY == 0:
            # Something was added or removed (or it is time for the safety pass): a new
            # unindexed job appears within one poll, and a steady server costs no SCAN.
            extra = await self._unindexed(set(), full=True)
        else:
            extra = []
        self._keys = keys
        rescan_users = small and self._polls % USERS_EVERY == 0
        if self.foreign_users or rescan_users:
            extra += await self._user_only({j.job_id for j in extra},
                                           newest=0 if rescan_users else 20)
        self._note(extra)
        if unseen or extra:
            self.post(JobsChanged(unseen + extra, []))
        if store.target is not None and store.target.kind == "sentinel":
            before = self.failover
            await self._check_primary()
            if self.failover != before:
                # Reads still work on a demoted primary (now a replica): move to the new one.
                await store.r.connection_pool.disconnect()
                self._post_notes()
        if self._polls % MEMORY_EVERY == 0 and store.caps.info_allowed:
            await store.refresh_caps()
            self._post_notes()
        if await store.count() < self.indexed:
            self.request_reload()  # jobs were removed (cleanup, expiry): re-read and sweep
        self.post(Polled(time.time()))

    async def aclose(self) -> None:
        await self.store.aclose()
