"""The supervisor on Sentinel and Cluster, with a failover while its job writes.

Real topologies from the embedded binary (`tests/topology.py`): a primary, a
replica and three sentinels; three primaries with a replica each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gn_jobs_tui.core import wire
from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from tests.conftest import wait_for
from tests.helpers import python, run_command
from tests.topology import ClusterSet, SentinelSet


@pytest.fixture(autouse=True)
def _state_dir(server) -> None:
    """The session fixture points XDG_STATE_HOME (supervisor logs, spool) at a temp dir."""


def printer(n: int, per_s: float) -> list[str]:
    return python(f"import time\nfor i in range({n}):\n    print(f'line {{i}}', flush=True)\n"
                  f"    time.sleep({1 / per_s})\n")


def settled(url: str, prefix: str, job_id: str, n: int, timeout: float = 60.0):
    """The job as the (new) primary has it, once final; and its output line numbers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            store = Store.from_url(url, prefix)
            job = store.get_job(job_id)
            if job and job.status in ("completed", "failed", "killed"):
                entries = store.r.xrange(store.keys.output(job_id))
                return job, [int(f[b"n"]) for _, f in entries], [f[b"line"].decode() for _, f in entries]
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass  # mid-failover: ask again
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never settled")
        time.sleep(0.2)


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSet]:
    topo = SentinelSet(tmp_path / "sentinel")
    yield topo
    topo.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    topo = ClusterSet(tmp_path / "cluster")
    yield topo
    topo.close()


def test_sentinel_failover_mid_job_loses_no_line(sentinel: SentinelSet) -> None:
    prefix, n = "sent", 400
    store = Store.from_url(sentinel.url, prefix)
    job_id = run_command(store, Config(sentinel.url, prefix), printer(n, 100))
    wait_for(lambda: store.r.xlen(store.keys.output(job_id)) > 100, what="output flowing")
    old = sentinel.current_primary()
    new = sentinel.failover()
    assert new != old
    job, seqs, lines = settled(sentinel.url, prefix, job_id, n)
    assert job.status == "completed" and job.exit_code == 0
    assert seqs == list(range(1, n + 1)) and lines == [f"line {i}" for i in range(n)]


def test_cluster_failover_mid_job_loses_no_line(cluster: ClusterSet) -> None:
    prefix, n = "clu", 400
    store = Store.from_url(cluster.url, prefix)
    job_id = run_command(store, Config(cluster.url, prefix), printer(n, 100))
    wait_for(lambda: store.r.xlen(store.keys.output(job_id)) > 100, what="output flowing")
    slot = wire.key_slot(store.keys.output(job_id))
    owner = next(int(master[1]) for start, end, master, *_ in
                 cluster.client(cluster.ports[0]).execute_command("CLUSTER", "SLOTS")
                 if int(start) <= slot <= int(end))
    cluster.failover(owner)  # the node holding the output stream hands over to its replica
    job, seqs, lines = settled(cluster.url, prefix, job_id, n)
    assert job.status == "completed" and job.exit_code == 0
    assert seqs == list(range(1, n + 1)) and lines == [f"line {i}" for i in range(n)]
