"""Load (issue 6, rows 8 and 9): a busy server with one console, then 20 consoles.

8. N jobs in Redis, 50 running jobs each printing 1,000 lines/s for 30 s, one
   console attached: no output line lost, key press to screen p95, the
   supervisors' heartbeats never lapse.
9. 20 consoles (headless feeds) on one server: the server's commands per second
   follow the changes, not consoles x jobs.
`python -m benchmarks.bench_load [quick]`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import redis
from textual import events

from benchmarks.common import fill, percentile, report, save, server
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id
from gn_jobs_tui.ui.app import JobsApp
from gn_jobs_tui.ui.feed import Feed


def chatty(rate: int, seconds: int) -> list[str]:
    code = ("import sys, time\nt0 = time.monotonic()\nn = 0\n"
            f"while n < {rate * seconds}:\n"
            f"    due = min({rate * seconds}, int((time.monotonic() - t0) * {rate}) + 1)\n"
            "    while n < due:\n        sys.stdout.write(f'line {n}\\n'); n += 1\n"
            "    sys.stdout.flush(); time.sleep(0.05)\n")
    return [sys.executable, "-c", code]


async def busy(url: str, prefix: str, n_jobs: int, running: int, rate: int, seconds: int) -> None:
    store = Store.from_url(url, prefix)
    config = Config(url, prefix)
    app = JobsApp(config, poll_interval=3.0)
    presses: list[float] = []
    lapses = 0
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.loaded_all and len(app.index.jobs) >= n_jobs):
            await pilot.pause(0.05)
        ids = [start_job(store, config, job_fields(new_job_id(), "chatty", "load",
                                                   chatty(rate, seconds), {}),
                         env_extra={"GN_JOBS_OUTPUT_MAXLEN": str(rate * seconds * 2)})
               for _ in range(running)]
        t0 = time.monotonic()
        table = app.screen.table
        loop = asyncio.get_running_loop()
        while time.monotonic() - t0 < seconds + 5:
            # Key to screen: post the key as the terminal would, wait until it has
            # moved the cursor, then until the next screen refresh has been done.
            before = table.cursor_id
            t = time.perf_counter()
            app.post_message(events.Key("down" if len(presses) % 20 < 10 else "up", None))
            while table.cursor_id == before:
                await asyncio.sleep(0.001)
            painted = loop.create_future()
            app.call_after_refresh(lambda f=painted: f.done() or f.set_result(None))
            await painted
            presses.append((time.perf_counter() - t) * 1000)
            states = await asyncio.to_thread(lambda: [store.get_job(i) for i in ids])
            lapses += sum(1 for j in states if j.status == "running" and j.heartbeat_alive is False)
            if all(j.is_terminal for j in states):
                break
            await pilot.pause(0.2)
    deadline = time.monotonic() + 60
    while not all(store.get_job(i).is_terminal for i in ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    expected = rate * seconds
    lost = 0
    for job_id in ids:
        tip = store.r.xrevrange(store.keys.output(job_id), count=1)  # last line number
        seq = int(tip[0][1][b"n"]) if tip else 0
        length = store.r.xlen(store.keys.output(job_id))
        lost += (expected - seq) + (expected - length)
    report(f"load: output lines lost ({running} jobs x {rate}/s x {seconds}s)", float(lost),
           "lines", target="0", ok=lost == 0, note=f"{n_jobs} jobs in Redis")
    report("load: key press to screen p50", percentile(presses, 50), "ms",
           note="key posted -> cursor moved -> next refresh done")
    p95 = percentile(presses, 95)
    report("load: key press to screen p95", p95, "ms", target="< 200", ok=p95 < 200)
    report("load: heartbeat lapses seen", float(lapses), "", target="0", ok=lapses == 0)


async def consoles(url: str, prefix: str, n_consoles: int, changes_per_s: int,
                   seconds: float) -> float:
    """Server commands/s (incl. inside scripts) while N feeds watch and one writer writes."""
    posted: list[int] = []
    feeds = [Feed(Config(url, prefix), lambda m: posted.append(1), poll_interval=3.0)
             for _ in range(n_consoles)]
    tasks = [asyncio.create_task(f.run()) for f in feeds]
    while not all(f.loaded for f in feeds):
        await asyncio.sleep(0.05)
    client = redis.Redis.from_url(url)
    writer = Store.from_url(url, prefix)
    ids = [j.job_id for j in writer.list_jobs(count=500)]
    await asyncio.sleep(0.5)
    before = sum(v["calls"] for v in client.info("commandstats").values())
    t0 = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - t0) < seconds:
        while n < int(elapsed * changes_per_s):
            writer.update(ids[n % len(ids)], "progress", progress=float(n % 100))
            n += 1
        await asyncio.sleep(0.01)
    after = sum(v["calls"] for v in client.info("commandstats").values())
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    writer_cmds = n * 4  # MULTI HSET PUBLISH EXEC
    return (after - before - writer_cmds) / seconds


def run(quick: bool = False) -> None:
    os.environ["GN_JOBS_HEARTBEAT"] = "1"
    n_jobs = 20_000 if quick else 100_000
    with server() as srv:
        fill(Store.from_url(srv.url, "load"), n_jobs, t0=1_600_000_000)
        asyncio.run(busy(srv.url, "load", n_jobs, 10 if quick else 50, 1000, 10 if quick else 30))
        small, big = Store.from_url(srv.url, "c1k"), Store.from_url(srv.url, "c10k")
        # Mostly finished jobs, as in production: 50 active in each.
        for store, n in ((small, 1000), (big, 10_000)):
            fill(store, n)
            with store.r.pipeline() as pipe:
                for job in store.list_jobs(count=n)[50:]:
                    pipe.hset(store.keys.job(job.job_id), "status", "completed")
                pipe.execute()
        rate = 20
        one = asyncio.run(consoles(srv.url, "c10k", 1, rate, 6))
        twenty = asyncio.run(consoles(srv.url, "c10k", 20, rate, 6))
        twenty_small = asyncio.run(consoles(srv.url, "c1k", 20, rate, 6))
        report(f"consoles: server commands/s, 1 console, 10k jobs, {rate} changes/s", one, "cmd/s")
        report(f"consoles: server commands/s, 20 consoles, 10k jobs, {rate} changes/s", twenty,
               "cmd/s")
        report(f"consoles: server commands/s, 20 consoles, 1k jobs, {rate} changes/s",
               twenty_small, "cmd/s")
        report("consoles: 10k jobs / 1k jobs (20 consoles)", twenty / twenty_small, "x",
               target="~1 (not x10)", ok=twenty / twenty_small < 2)
        report("consoles: per console per change", twenty / 20 / rate, "cmd")
    save()


if __name__ == "__main__":
    run("quick" in sys.argv[1:])
