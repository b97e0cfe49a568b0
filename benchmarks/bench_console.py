"""2. The console with 100,000 jobs vs 100: first screen, full load, sort, filter, memory."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import best_of, fill, report, server
from gn_jobs_tui.core.store import Store


def child(url: str, prefix: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.console_child", url, prefix, str(n)],
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(big: int = 100_000, small: int = 100) -> None:
    with server() as srv:
        s_small, s_big = Store.from_url(srv.url, "csmall"), Store.from_url(srv.url, "cbig")
        fill(s_small, small)
        fill(s_big, big)
        t_list = best_of(lambda: [j for p in s_big.iter_jobs() for j in p], repeat=2)
        small_run = min((child(srv.url, "csmall", small) for _ in range(2)),
                        key=lambda r: r["first_screen_s"])
        big_run = min((child(srv.url, "cbig", big) for _ in range(2)),
                      key=lambda r: r["first_screen_s"])
        ratio = big_run["first_screen_s"] / small_run["first_screen_s"]
        report(f"console {big}: time to first screen", big_run["first_screen_s"], "s")
        report(f"console {small}: time to first screen", small_run["first_screen_s"], "s")
        report(f"console first screen ratio {big}/{small}", ratio, "x", target="<= 1.5",
               ok=ratio <= 1.5)
        full = big_run["all_loaded_s"] / t_list
        report(f"console {big}: every job in the table", big_run["all_loaded_s"], "s")
        report(f"store full listing of {big}", t_list, "s")
        report("console full load / store listing", full, "x", target="<= 2", ok=full <= 2)
        report(f"console {big}: one sort (by user)", big_run["sort_ms"], "ms")
        report(f"console {big}: one text filter", big_run["filter_ms"], "ms")
        per_job = (big_run["rss_mb"] - small_run["rss_mb"]) * 1e6 / (big - small)
        report("console memory per job (RSS delta)", per_job / 1000, "KB/job", target="<= 1",
               ok=per_job <= 1000)


if __name__ == "__main__":
    run()
