"""Snapshot tests of the console on deterministic data (see scenes.py)."""

from __future__ import annotations

import pytest

from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store
from tests.scenes import SCENES, make_app, seed, seed_gn2

PREFIX = "snapshots"


@pytest.fixture(scope="module")
def seeded(server: EmbeddedServer) -> str:
    store = Store.from_url(server.url, PREFIX)
    for key in store.r.scan_iter(match=f"{PREFIX}*"):
        store.r.delete(key)
    seed(store)
    seed_gn2(Store.from_url(server.url, PREFIX + "-gn2"))
    return server.url


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_scene(scene, seeded: str, snap_compare) -> None:
    app = make_app(scene, seeded, PREFIX)
    assert snap_compare(app, run_before=scene.run_before, terminal_size=scene.size)
