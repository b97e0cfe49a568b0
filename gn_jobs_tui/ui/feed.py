"""The live feed: load, subscribe and poll, as asyncio workers of the app.

- load: the first page first (first screen fast), then the rest in pages.
- subscribe: change events (and keyspace events where enabled); changed ids
  are coalesced for 50 ms and re-read in one script call.
- poll: one loop, so polls never overlap: re-read active jobs (catches
  producers that publish nothing and lapsed heartbeats), notice deletions,
  and scan a bounded slice for unindexed jobs.
If Redis goes away, every loop reports it, backs off and reloads on return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.model import Job
from gn_jobs_tui.core.redact import redact_text
from gn_jobs_tui.core.store import AsyncStore
from gn_jobs_tui.ui.messages import Connection, JobsChanged, JobsLoaded, KeysChanged

FIRST_PAGE = 200
PAGE = 5000
COALESCE = 0.05
DISCOVER_EVERY = 5
ACTIVE_SLICE = 1000
KEY_ONLY = frozenset({"output", "child"})
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class Feed:
    def __init__(self, config: Config, post: Callable[[object], object], *,
                 poll_interval: float = 3.0) -> None:
        self.config = config
        self.post = post
        self.poll_interval = poll_interval
        self.store = AsyncStore.from_url(config.url, config.prefix, config.read_only)
        self.known_active: set[str] = set()
        self.known: set[str] = set()
        self.unindexed: set[str] = set()
        self.changed: set[str] = set()
        self.connected: bool | None = None
        self.loaded = False
        self._wake = asyncio.Event()
        self._reload = asyncio.Event()
        self._scan_cursor = 0
        self._polls = 0
        self._active_at = 0

    def _error(self, exc: BaseException) -> str:
        return redact_text(f"{type(exc).__name__}: {exc}", self.config.url)

    def _note(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.known.add(job.job_id)
            if job.is_terminal:
                self.known_active.discard(job.job_id)
            else:
                self.known_active.add(job.job_id)

    async def _mark_lost(self, jobs: list[Job]) -> None:
        if self.config.read_only:
            return
        for job in jobs:
            if job.is_lost:
                await self.store.mark_lost(job.job_id)

    # -- loops -------------------------------------------------------------
    async def run(self) -> None:
        """Load, then keep subscribe and poll going; reconnect with backoff."""
        delay = 0.5
        while True:
            try:
                await self.load()
                if self.connected is not True:
                    self.connected = True
                    self.post(Connection(True))
                delay = 0.5
                self._reload.clear()
                tasks = {asyncio.create_task(self.listen()), asyncio.create_task(self.poll())}
                reload = asyncio.create_task(self._reload.wait())
                tasks.add(reload)
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    # Cancelled (app closing) or one ended: none may outlive this loop.
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    if task is not reload and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            except REDIS_ERRORS as exc:
                self.connected = False
                self.post(Connection(False, self._error(exc), delay))
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
            except redis.ResponseError as exc:
                self.connected = False
                self.post(Connection(False, self._error(exc), delay))
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    def request_reload(self) -> None:
        self._reload.set()

    async def load(self) -> None:
        first = await self.store.list_jobs(None, 0, FIRST_PAGE)
        self.known = set()
        self.known_active = set()
        self._note(first)
        self.post(JobsLoaded(first, reset=True, complete=len(first) < FIRST_PAGE))
        start = FIRST_PAGE
        while len(first) == FIRST_PAGE:
            page = await self.store.list_jobs(None, start, PAGE)
            fresh = [j for j in page if j.job_id not in self.known]
            self._note(fresh)
            self.post(JobsLoaded(fresh, complete=len(page) < PAGE))
            if len(page) < PAGE:
                break
            start += PAGE
        self.loaded = True

    async def listen(self) -> None:
        flusher = asyncio.create_task(self._flush_loop())
        try:
            async for job_id, what in self.store.subscribe():
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
        jobs = await self.store.get_jobs(ids)
        present = [j for j in jobs if not j.is_missing]
        gone = [j.job_id for j in jobs if j.is_missing and j.created is None]
        await self._mark_lost(present)
        self._note(present)
        self.known.difference_update(gone)
        self.post(JobsChanged(present, gone))

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.poll_once()

    async def poll_once(self) -> None:
        # A bounded, rotating slice of the active jobs: the cost of a poll does
        # not grow with the number of jobs (events carry our own changes anyway).
        active = sorted(self.known_active)
        if active:
            start = self._active_at % len(active)
            ids = (active[start:] + active[:start])[:ACTIVE_SLICE]
            self._active_at = start + len(ids)
            await self.refresh_ids(ids)
        newest = await self.store.list_jobs(None, 0, 20)
        unseen = [j for j in newest if j.job_id not in self.known]
        self._polls += 1
        found: list[str] = []
        if self._polls % DISCOVER_EVERY == 1:
            # Unindexed jobs are rare: a bounded slice of the key space now and then.
            self._scan_cursor, found = await self.store.discover(self._scan_cursor, budget=2)
        found = [i for i in found if i not in self.known]
        if found:
            self.unindexed.update(found)
            unseen.extend(await self.store.get_jobs(found))
        if unseen:
            self._note(unseen)
            self.post(JobsChanged(unseen, []))
        if await self.store.count() < len(self.known - self.unindexed):
            self.request_reload()  # jobs were removed (cleanup, expiry): start fresh

    async def aclose(self) -> None:
        await self.store.aclose()
