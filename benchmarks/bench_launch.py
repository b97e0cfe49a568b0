"""5. Launch: from `launch` to `running` in Redis vs starting a bare `python -c pass`."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import median, report, server
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store


def run(repeat: int = 7) -> None:
    with server() as srv:
        config = Config(srv.url, "launch")
        store = Store.from_url(srv.url, "launch")
        bare, ours = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            job_id = launch(store, config, "sleep", {"seconds": "0.2"})
            while store.r.hget(store.keys.job(job_id), "status") != b"running":
                time.sleep(0.002)
            ours.append(time.perf_counter() - t)
        ratio = median(ours) / median(bare)
        report("launch: launch -> running", median(ours) * 1000, "ms")
        report("launch: bare python -c pass", median(bare) * 1000, "ms")
        report("launch: ratio", ratio, "x", target="<= 4", ok=ratio <= 4)


if __name__ == "__main__":
    run()
