"""Past one server (issue 13): listing on a Cluster vs one node, and kill latency.

- Listing N jobs (default 100,000) through the store on a 3-primary Cluster
  (pipelines routed per node: scripts may only touch one slot there) against
  one server (one read-only script per page), as a ratio.
- Kill latency: from `gn-jobs kill` (the store's request) to the job recorded
  `killed`, through Redis as it goes between hosts (the notice on
  `P:control`, the durable key behind it), for real supervisors and jobs; and
  the same with the notice lost (the durable key is found at the next beat).

    python -m benchmarks.bench_topology [--size N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import best_of, fill, median, percentile, report, server
from gn_jobs_tui.core import control
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.launcher import launch
from gn_jobs_tui.core.store import Store


def listing(store: Store) -> int:
    return sum(len(page) for page in store.iter_jobs())


def kill_latency(config: Config, store: Store, n: int, lose_notice: bool) -> list[float]:
    out = []
    for _ in range(n):
        job_id = launch(store, config, "sleep", {"seconds": "60"}, user="bench")
        while store.r.hget(store.keys.job(job_id), "status") != b"running":
            time.sleep(0.005)
        t = time.perf_counter()
        if lose_notice:  # only the durable request: as if the notice never arrived
            store.r.set(store.keys.kill_request(job_id), "{}")
        else:
            control.kill(store, job_id, "bench")
        while store.r.hget(store.keys.job(job_id), "status") not in (b"killed", b"failed",
                                                                     b"completed"):
            time.sleep(0.002)
        out.append(time.perf_counter() - t)
    return out


def run(size: int = 100_000, kills: int = 10) -> None:
    from tests.topology import ClusterSet

    with server() as srv:
        single = Store.from_url(srv.url, "topo")
        fill(single, size)
        t_single = best_of(lambda: listing(single), repeat=2)
        with tempfile.TemporaryDirectory(prefix="gjc") as tmp:
            cluster = ClusterSet(Path(tmp), replicas=False)
            try:
                clustered = Store.from_url(cluster.url, "topo")
                fill(clustered, size)
                assert listing(clustered) == size
                t_cluster = best_of(lambda: listing(clustered), repeat=2)
            finally:
                cluster.close()
        report(f"topology: listing {size} jobs, one server", t_single * 1e6 / size, "us/job")
        report(f"topology: listing {size} jobs, 3-primary Cluster", t_cluster * 1e6 / size,
               "us/job", note="pipelines routed per node")
        report("topology: Cluster vs one server", t_cluster / t_single, "x")
        config = Config(srv.url, "kill")
        store = Store.from_url(srv.url, "kill")
        notified = kill_latency(config, store, kills, lose_notice=False)
        durable = kill_latency(config, store, kills, lose_notice=True)
        report("kill: request to `killed`, notice delivered (p50)", median(notified) * 1000, "ms",
               note=f"p95 {percentile(notified, 95) * 1000:.0f} ms over {kills}")
        report("kill: request to `killed`, notice lost (p50)", median(durable) * 1000, "ms",
               note=f"p95 {percentile(durable, 95) * 1000:.0f} ms: found at the next heartbeat")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    run(args.size, args.kills)
