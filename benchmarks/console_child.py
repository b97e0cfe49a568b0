"""One console in its own process (clean RSS), for bench_console.

`python -m benchmarks.console_child load URL PREFIX N`: a headless console
loads N jobs; prints JSON: first_screen_s, all_loaded_s, builds during the
load, sort and filter times, the longest event-loop stall during the load,
the sort and the filter (a probe task that should wake every 5 ms), the
share of it spent parsing the feed's pages, and RSS.

`python -m benchmarks.console_child first URL PREFIX N`: the same console, ended as
soon as its first screen is painted (prints first_screen_s).

`python -m benchmarks.console_child listing URL PREFIX`: RSS of the store's
listing alone (the Job objects), the baseline for memory per job.

`python -m benchmarks.console_child idle URL PREFIX`: the real console on a
terminal (run it under a pty): bench_console counts the bytes it writes.

`python -m benchmarks.console_child idlecpu URL PREFIX N`: a headless console with
the real poll (3 s) and clock tick (1 s) loads N jobs, then sits idle: prints the
share of one CPU it used over 30 idle seconds (polls included).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui import feed, rows
from gn_jobs_tui.ui.app import JobsApp
from gn_jobs_tui.ui.ordering import full_key
from gn_jobs_tui.ui.query import Query

PROBE = 0.005


class Probe:
    """The longest time the event loop failed to run a task that asked to wake in 5 ms."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(PROBE)
            self.worst = max(self.worst, time.perf_counter() - t - PROBE)

    def start(self) -> None:
        self.worst = 0.0
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> float:
        if self.task is not None:
            self.task.cancel()
        return self.worst * 1000


def _timed(original: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    def parse(flat: Any, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(flat, *args)
        finally:
            spent.append(time.perf_counter() - t)

    return parse


def timed_parse(store: Any, spent: list[float]) -> None:
    """Record how long each page of the feed takes to parse (into Jobs: the first page,
    other sources; into table rows: the all-jobs pages), in a thread or on the loop."""
    store._parse_rows = _timed(store._parse_rows, spent)
    feed.rows_from_listing = _timed(feed.rows_from_listing, spent)


async def load(url: str, prefix: str, n: int, first_only: bool = False) -> dict[str, float]:
    config = Config(url, prefix)
    t0 = time.perf_counter()
    app = JobsApp(config, poll_interval=3600, tick=0,
                  settings_path=Path("/nonexistent/gn-jobs-bench.json"))
    parse: list[float] = []
    timed_parse(app.feed.store, parse)
    index_time: list[float] = []
    load_page = app._load

    def timed_load(message: Any) -> None:
        t = time.perf_counter()
        try:
            load_page(message)
        finally:
            index_time.append(time.perf_counter() - t)

    app._load = timed_load  # type: ignore[method-assign]
    out: dict[str, float] = {}
    probe = Probe()
    async with app.run_test(size=(120, 40)) as pilot:
        probe.start()
        while not len(app.index):
            await pilot.pause(0.005)
        await pilot.pause(0)  # let the frame with the first rows paint
        out["first_screen_s"] = time.perf_counter() - t0
        if first_only:
            return out
        while not (app.loaded_all and len(app.index.jobs) >= n and app.index.building is None):
            # Not pilot.pause: it forces a full layout and repaint each time (100 a second
            # here, a cost of the harness), where the console repaints at most 60 times a
            # second and only what changed.
            await asyncio.sleep(0.01)
        out["all_loaded_s"] = time.perf_counter() - t0
        out["rows_long_way"] = rows.long_way
        out["load_stall_ms"] = probe.stop()
        out["parse_worst_ms"] = max(parse, default=0.0) * 1000
        out["parse_s"] = sum(parse)
        out["index_s"] = sum(index_time)
        out["index_worst_ms"] = max(index_time, default=0.0) * 1000
        out["builds_during_load"] = app.index.builds
        out["pages"] = len(parse)

        async def settle(what: str) -> None:
            probe.start()
            t = time.perf_counter()
            while app.index.building is not None:
                await asyncio.sleep(0.005)
            out[f"{what}_s"] = time.perf_counter() - t
            out[f"{what}_stall_ms"] = probe.stop()

        await pilot.pause(0.2)
        t = time.perf_counter()
        app.set_view(sort_key="user", reverse=False)
        out["sort_call_ms"] = (time.perf_counter() - t) * 1000
        await settle("sort")
        t = time.perf_counter()
        app.set_view(query=Query.parse("step 99"))
        out["filter_call_ms"] = (time.perf_counter() - t) * 1000
        await settle("filter")
        out["filtered_rows"] = len(app.index.order)
        # What the same sort costs when done the old way, in one blocking call.
        jobs = list(app.index.jobs.values())
        t = time.perf_counter()
        jobs.sort(key=full_key("user", 0.0))
        out["blocking_sort_ms"] = (time.perf_counter() - t) * 1000
        del jobs
        app.set_view(query=Query(), sort_key="created", reverse=True)
        while app.index.building is not None:
            await asyncio.sleep(0.01)
        gc.collect()
        out["rss_mb"] = psutil.Process().memory_info().rss / 1e6
        out["jobs"] = len(app.index.jobs)
        # What the feed keeps besides (its sets of ids): tables only, the ids are shared.
        out["feed_sets_mb"] = sum(sys.getsizeof(getattr(app.feed, name, ()))
                                  for name in ("known", "known_active", "unindexed")) / 1e6
    return out


def listing(url: str, prefix: str) -> dict[str, float]:
    store = Store.from_url(url, prefix)
    before = psutil.Process().memory_info().rss
    jobs = {j.job_id: j for page in store.iter_jobs() for j in page}
    gc.collect()
    return {"rss_mb": (psutil.Process().memory_info().rss - before) / 1e6, "jobs": len(jobs),
            "base_rss_mb": before / 1e6}


async def idle_cpu(url: str, prefix: str, n: int, seconds: float = 30.0) -> dict[str, float]:
    app = JobsApp(Config(url, prefix), poll_interval=3.0,
                  settings_path=Path("/nonexistent/gn-jobs-bench.json"))
    me = psutil.Process()
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.loaded_all and len(app.index.jobs) >= n and app.index.building is None):
            await pilot.pause(0.05)
        await pilot.pause(5.0)  # the load's leftovers (collector, first polls) settle
        cpu, t = sum(me.cpu_times()[:2]), time.perf_counter()
        await pilot.pause(seconds)
        used = sum(me.cpu_times()[:2]) - cpu
        return {"idle_cpu_pct": 100 * used / (time.perf_counter() - t), "jobs": len(app.index.jobs)}


def idle(url: str, prefix: str) -> None:
    JobsApp(Config(url, prefix), poll_interval=3.0,
            settings_path=Path("/nonexistent/gn-jobs-bench.json")).run()


if __name__ == "__main__":
    mode, url, prefix = sys.argv[1:4]
    if mode in ("load", "first"):
        print(json.dumps(asyncio.run(load(url, prefix, int(sys.argv[4]), mode == "first"))))
    elif mode == "listing":
        print(json.dumps(listing(url, prefix)))
    elif mode == "idlecpu":
        print(json.dumps(asyncio.run(idle_cpu(url, prefix, int(sys.argv[4])))))
    else:
        idle(url, prefix)
