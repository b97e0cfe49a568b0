"""4. Output throughput: lines/s through the supervisor vs raw XADD loops."""

from __future__ import annotations

import sys
import time

from benchmarks.common import best_of, report, server
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import start_job
from gn_jobs_tui.core.store import Store, job_fields, new_job_id

LINE = "x" * 60


def raw_pipelined(store: Store, n: int, batch: int = 2000) -> None:
    key = store.keys.output("raw")
    store.r.delete(key)
    for i in range(0, n, batch):
        with store.r.pipeline(transaction=False) as pipe:
            for j in range(i, min(n, i + batch)):
                pipe.xadd(key, {"n": j, "stream": "out", "line": f"{j} {LINE}"},
                          maxlen=n, approximate=True)
            pipe.execute()


def one_per_line(store: Store, n: int) -> None:
    key = store.keys.output("single")
    store.r.delete(key)
    for j in range(n):
        store.r.xadd(key, {"n": j, "stream": "out", "line": f"{j} {LINE}"}, maxlen=n,
                     approximate=True)


def supervised(store: Store, config: Config, n: int) -> float:
    """Seconds from the job's first line to its last line in the stream."""
    code = (f"import sys\nw = sys.stdout.write\nfor i in range({n}):\n"
            f"    w(str(i) + ' ' + {LINE!r} + '\\n')\n")
    job_id = start_job(store, config, job_fields(new_job_id(), "bench", "b",
                                                 [sys.executable, "-c", code], {}),
                       env_extra={"GN_JOBS_OUTPUT_MAXLEN": str(n)})
    key = store.keys.output(job_id)
    while not store.r.xlen(key):
        time.sleep(0.001)
    first = time.perf_counter()
    while int((store.r.xrevrange(key, count=1) or [(0, {b"n": 0})])[0][1][b"n"]) < n:
        time.sleep(0.002)
    elapsed = time.perf_counter() - first
    assert store.r.xlen(key) >= n * 0.99
    return elapsed


def run(n: int = 200_000) -> None:
    with server() as srv:
        config = Config(srv.url, "out")
        store = Store.from_url(srv.url, "out")
        t_raw = best_of(lambda: raw_pipelined(store, n), repeat=2)
        t_sup = min(supervised(store, config, n) for _ in range(2))
        small = n // 10
        t_one = best_of(lambda: one_per_line(store, small), repeat=1) * 10
        report("output: supervisor lines/s", n / t_sup, "lines/s")
        report("output: raw pipelined XADD lines/s", n / t_raw, "lines/s")
        report("output: supervisor / raw pipelined", t_raw / t_sup, "x", target=">= 0.8",
               ok=t_raw / t_sup >= 0.8)
        report("output: supervisor / one XADD per line", t_one / t_sup, "x", target=">= 5",
               ok=t_one / t_sup >= 5)


if __name__ == "__main__":
    run()
