"""3. Update cost and latency: commands per changed job, event-to-screen latency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time

import redis

from benchmarks.common import fill, percentile, report, server
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp


def console_commands(client: redis.Redis) -> int:
    total = 0
    for c in client.client_list():
        if c.get("name") == "gn-jobs-console":
            total += int(c.get("tot-cmds", 0))
    return total


class TimedApp(JobsApp):
    """Records, for each change that reaches the table, write-to-screen latency."""

    def __init__(self, *a: object, **k: object) -> None:
        super().__init__(*a, **k)  # type: ignore[arg-type]
        self.latencies: list[float] = []
        self.seen: dict[str, str] = {}

    def _apply(self, jobs, removed=(), *, redraw=True):  # type: ignore[override]
        jobs = list(jobs)
        super()._apply(jobs, removed, redraw=redraw)
        if redraw:
            self.refresh()  # the frame that shows it is scheduled now
        now = time.time()
        for job in jobs:
            msg = job.message or ""
            if msg.startswith("t=") and self.seen.get(job.job_id) != msg:
                self.seen[job.job_id] = msg
                self.latencies.append(now - float(msg[2:].split()[0]))


async def measure(url: str, prefix: str, ids: list[str], n: int, rate: int,
                  seconds: float) -> None:
    client = redis.Redis.from_url(url)
    app = TimedApp(Config(url, prefix), poll_interval=3600, tick=0)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.loaded_all and len(app.index.jobs) >= n):
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        # Cost: K changes, one by one, from another connection.
        k = 200
        before = console_commands(client)
        stats = client.info("commandstats")
        writer = Store.from_url(url, prefix)
        for i in range(k):
            writer.update(ids[i * 37 % len(ids)], "status", status="failed", message=f"cost {i}")
            await pilot.pause(0.02)
        await pilot.pause(0.5)
        per_job = (console_commands(client) - before) / k
        after = client.info("commandstats")
        trips = sum(after.get(f"cmdstat_{c}", {}).get("calls", 0)
                    - stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha_ro", "eval_ro"))
        report("update cost: console commands per changed job", per_job, "cmds",
               target="<= 2", ok=per_job <= 2,
               note=f"{n} jobs loaded; counts the commands its scripts run too")
        report("update cost: console round trips per changed job", trips / k, "calls",
               note="events within 50 ms share one call")
        # Latency: RATE changes a second for SECONDS, from another process.
        app.latencies.clear()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ids[:5000], f)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.update_writer", url, prefix, str(rate),
            str(seconds), f.name, stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        await pilot.pause(1.0)
        result = json.loads(out.decode().strip().splitlines()[-1])
        missed = [j for j, msg in result["last"].items() if app.index.jobs[j].message != msg]
        lat = [x * 1000 for x in app.latencies]
        report(f"latency at {rate}/s for {seconds:.0f}s: p50", percentile(lat, 50), "ms")
        p95 = percentile(lat, 95)
        report(f"latency at {rate}/s for {seconds:.0f}s: p95", p95, "ms", target="<= 100",
               ok=p95 <= 100)
        report("changes missed", float(len(missed)), "jobs", target="0", ok=not missed,
               note=f"{result['writes']} writes to {len(result['last'])} jobs")


def run(n: int = 100_000, rate: int = 200, seconds: float = 10.0) -> None:
    with server() as srv:
        store = Store.from_url(srv.url, "upd")
        ids = fill(store, n)
        asyncio.run(measure(srv.url, "upd", ids, n, rate, seconds))
        report("for comparison: rq-dashboard / k9s / Sidekiq poll every", 2500, "ms",
               note="2.5 s / 2 s / 5 s")


if __name__ == "__main__":
    run()
