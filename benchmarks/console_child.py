"""One headless console in its own process (clean RSS): load N jobs, time it.

Prints JSON: first_screen_s, all_loaded_s, sort_ms, filter_ms, rss_mb.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import psutil

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.ui.app import JobsApp


async def main(url: str, prefix: str, n: int) -> dict[str, float]:
    config = Config(url, prefix)
    t0 = time.perf_counter()
    app = JobsApp(config, poll_interval=3600, tick=0)
    out: dict[str, float] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.index.order:
            await pilot.pause(0.005)
        await pilot.pause(0)  # let the frame with the first rows paint
        out["first_screen_s"] = time.perf_counter() - t0
        while not (app.loaded_all and len(app.index.jobs) >= n):
            await pilot.pause(0.01)
        app.screen.table.refresh_rows()
        out["all_loaded_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        app.index.set_sort("user")
        app.index.ensure_order()
        out["sort_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        app.index.set_filter(text="step 99")
        app.index.ensure_order()
        out["filter_ms"] = (time.perf_counter() - t) * 1000
        out["filtered_rows"] = len(app.index.order)
        out["rss_mb"] = psutil.Process().memory_info().rss / 1e6
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
