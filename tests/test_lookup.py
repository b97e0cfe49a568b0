"""Bounded lookups: their cost in server commands does not grow with the jobs stored.

Counts, not times: INFO commandstats on a private server (nothing else talks
to it), commands run inside scripts included.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks.common import commands_spent
from gn_jobs_tui.core import lookup
from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, StoreError, job_fields


def fill(store: Store, n: int, start: int = 0) -> list[str]:
    statuses = ["completed", "failed", "queued", "killed"]
    ids = []
    with store.r.pipeline(transaction=False) as pipe:
        for i in range(start, start + n):
            job_id = f"{i:08x}" + "ab" * 12
            f = job_fields(job_id, "sleep", f"user{i % 5}", ["x"], {}, created=1e9 + i)
            f["status"] = statuses[i % 4]
            pipe.hset(store.keys.job(job_id), mapping=f)
            for cmd in store._index_cmds(job_id, f["user_id"], 1e9 + i, f["status"]):
                pipe.execute_command(*cmd)
            ids.append(job_id)
        pipe.execute()
    return ids


def spent(store: Store, fn: Callable[[], object]) -> int:
    return commands_spent(store.r, fn)


def test_lookups_cost_the_same_with_20x_the_jobs(tmp_path) -> None:
    srv = EmbeddedServer(tmp_path / "s")
    srv.ensure()
    try:
        store = Store.from_url(srv.url, "lk")
        store.detect()
        ids = fill(store, 100)

        def costs(target: str) -> dict[str, int]:
            return {
                "short id": spent(store, lambda: lookup.find(store, target[:8])),
                "lost, limit 1, no match": spent(store, lambda: lookup.listing(
                    store, status="lost", limit=1)),
                "failed, limit 2": spent(store, lambda: lookup.listing(store, status="failed",
                                                                       limit=2)),
                "user, limit 3": spent(store, lambda: lookup.listing(store, user="user1", limit=3)),
                "limit 5": spent(store, lambda: lookup.listing(store, limit=5)),
            }

        costs(ids[50])  # scripts loaded into the server's cache (a first EVALSHA misses)
        few = costs(ids[50])
        more = fill(store, 1900, start=100)
        many = costs(more[0])
        assert few == many, (few, many)
        assert few["short id"] <= 5 and all(n <= 20 for n in few.values()), few
        assert lookup.find(store, ids[50][:8]).job_id == ids[50]
        assert len(lookup.listing(store, status="failed", limit=2)) == 2
    finally:
        srv.stop()


def test_short_ids_ambiguous_and_unknown(store: Store) -> None:
    fill(store, 3)  # ids 00000000ab.., 00000001ab.., 00000002ab..
    with pytest.raises(StoreError, match="ambiguous job id '0000000': 3 jobs match"):
        lookup.find(store, "0000000")
    with pytest.raises(StoreError, match="no such job: ffff"):
        lookup.find(store, "ffff")
    assert lookup.find(store, "00000002").job_id.startswith("00000002")
