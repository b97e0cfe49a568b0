"""The console and the CLI on real Sentinel and Cluster topologies (tests/topology.py).

Jobs here are written by the store (no supervisors): what is tested is that
the readers find every job, hear every change and follow a failover. The
supervisors' own failover tests run real jobs (tests/test_faults_server.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store, job_fields
from gn_jobs_tui.ui.app import JobsApp
from tests.helpers import run_async
from tests.topology import ClusterSet, SentinelSet


def gn(url: str, prefix: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gn_jobs_tui", "--redis-url", url, "--prefix",
                           prefix, *args], capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    topo = SentinelSet(Path(tmp_path_factory.mktemp("sentinel")))
    yield topo
    topo.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    topo = ClusterSet(Path(tmp_path_factory.mktemp("cluster")))
    yield topo
    topo.close()


def make(store: Store, n: int, tag: str) -> list[str]:
    ids = []
    for i in range(n):
        job_id = f"{tag}{i:04d}".ljust(32, "0")
        store.create_job(job_fields(job_id, "sleep", f"user{i % 3}", ["true"], {},
                                    created=1e9 + i))
        ids.append(job_id)
    return ids


async def until(pilot, predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def test_console_and_cli_follow_a_sentinel_failover(sentinels: SentinelSet) -> None:
    url, prefix = sentinels.url, "sent"
    store = Store.from_url(url, prefix)
    ids = make(store, 30, "5e")
    listed = json.loads(gn(url, prefix, "list", "--json").stdout)
    assert {j["job_id"] for j in listed} == set(ids)

    async def go() -> tuple[str, ...]:
        app = JobsApp(Config(url, prefix), poll_interval=0.3)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.loaded_all and set(ids) <= app.index.jobs.keys(),
                        "every job through the sentinels")
            old = sentinels.current_primary()
            new = await asyncio.to_thread(sentinels.failover)
            assert new != old
            await until(pilot, lambda: any("failover" in n for n in app.feed.notes),
                        "the failover named in the top bar")
            notes = app.feed.notes
            # A change written to the new primary reaches the console.
            writer = Store.from_url(url, prefix)
            writer.update(ids[0], "status", status="failed", message="after the failover")
            await until(pilot, lambda: app.index.jobs[ids[0]].effective_status == "failed",
                        "a change made after the failover")
            return notes

    notes = run_async(go())
    assert any(f":{sentinels.current_primary()}" in n for n in notes), notes
    shown = json.loads(gn(url, prefix, "show", ids[0][:8], "--json").stdout)
    assert shown["status"] == "failed"


def test_console_and_cli_on_a_cluster(cluster: ClusterSet) -> None:
    prefix = "clu"
    store = Store.from_url(cluster.url, prefix)
    ids = make(store, 60, "c1")
    # Jobs land on every primary: the readers must ask each of them.
    slots = {int(store.r.cluster_keyslot(store.keys.job(i))) // 5462 for i in ids}
    assert len(slots) == 3
    store.r.hset(f"{prefix}:jobs:foreign-1", mapping={"status": "running", "job-type": "qc"})
    for port in cluster.ports[:3]:
        url = f"redis+cluster://127.0.0.1:{port}"
        listed = json.loads(gn(url, prefix, "list", "--json").stdout)
        assert {j["job_id"] for j in listed} == {*ids, "foreign-1"}
    one_node = f"redis://127.0.0.1:{cluster.ports[1]}"  # found to be a Cluster by asking it
    assert json.loads(gn(one_node, prefix, "show", ids[7][:6], "--json").stdout)["job_id"] == ids[7]
    failed = gn(cluster.url, prefix, "list", "--status", "queued", "--limit", "5", "--json")
    assert len(json.loads(failed.stdout)) == 5, failed.stderr

    async def go() -> None:
        # The console talks to one node; changes are written through another.
        app = JobsApp(Config(f"redis+cluster://127.0.0.1:{cluster.ports[0]}", prefix),
                      poll_interval=3600)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.loaded_all and {*ids, "foreign-1"} <=
                        app.index.jobs.keys(), "every job from every primary")
            writer = Store.from_url(f"redis+cluster://127.0.0.1:{cluster.ports[2]}", prefix)
            for job_id in ids[:10]:
                writer.update(job_id, "status", status="completed", message="done elsewhere")
            await until(pilot, lambda: all(app.index.jobs[i].effective_status == "completed"
                                           for i in ids[:10]), "events from any node")

    run_async(go())
