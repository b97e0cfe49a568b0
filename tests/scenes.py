"""Deterministic console scenes: fixed ids and times, a frozen clock.

Used by the snapshot tests and, rendered by `python -m tests.scenes OUTDIR`,
for the SVGs in `screenshots/` that the README shows.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot

from gn_jobs_tui.core.config import Config
from gn_jobs_tui.core.store import Store
from gn_jobs_tui.ui.app import JobsApp

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, the frozen clock
LABEL = "redis://ops:***@jobs-db:6379/0"


def _job(store: Store, job_id: str, job_type: str, user: str, status: str, created: float,
         **fields: str) -> None:
    data = {"job_id": job_id, "job_type": job_type, "user_id": user, "status": status,
            "command": json.dumps(["python", "-m", f"gn_jobs_tui.jobs.{job_type}"]),
            "created": repr(created), "attempt": "1", "host": "node-a", **fields}
    store.r.hset(store.keys.job(job_id), mapping=data)
    store.r.zadd(store.keys.jobs_index, {job_id: created})
    store.r.zadd(store.keys.user_jobs(user), {job_id: created})


def seed(store: Store) -> None:
    """The same fleet of jobs for every scene."""
    t = NOW - 3600
    qc = "9c0ffee000000000000000000000qc01"
    children = [store.keys.child(qc, i) for i in range(3)]
    _job(store, qc, "qc-files", "alice", "running", t + 3000, started=repr(t + 3001),
         progress="62", message="checking 3 files with 3 workers", children=json.dumps(children),
         params=json.dumps({"files": ["geno_chr1.tsv", "geno_chr2.tsv", "pheno.csv"],
                            "workers": 3}))
    recs = [
        (0, "geno_chr1.tsv", "120", "", "fields", "39", "39 fields, header has 41"),
        (0, "geno_chr1.tsv", "300", "S017", "numeric", "abc", "not a number"),
        (0, "geno_chr1.tsv", "9000", "", "duplicates", "m0000002", "id already on line 2"),
        (1, "geno_chr2.tsv", "1", "41", "header", "S000", "duplicate column name"),
        (1, "geno_chr2.tsv", "42", "", "missing", "40/40", "40 of 40 values missing"),
        (1, "geno_chr2.tsv", "777", "", "decode", "b'\\xff\\xfe'", "line is not UTF-8"),
    ]
    for i, key in enumerate(children):
        store.r.xadd(key, {"kind": "start", "files": json.dumps([f"file{i}"]), "pid": str(100 + i)},
                     id=f"{int(t * 1000)}-{i}")
    for n, (i, f, line, col, check, value, msg) in enumerate(recs):
        store.r.xadd(children[i], {"kind": "record", "file": f, "line": line, "column": col,
                                   "check": check, "value": value, "message": msg},
                     id=f"{int(t * 1000) + 1}-{n}")
    store.r.xadd(children[0], {"kind": "progress", "done": "700", "total": "1000"},
                 id=f"{int(t * 1000) + 2}-0")
    store.r.xadd(children[1], {"kind": "finish", "status": "completed",
                               "counts": json.dumps({"header": 1, "missing": 1, "decode": 1})},
                 id=f"{int(t * 1000) + 2}-1")
    _job(store, "1a5e47000000000000000000000ins01", "insert-rows", "carol", "running", t + 2900,
         started=repr(t + 2901), progress="40", message="48000 of 120000 rows, 2,000 rows/s",
         rows_done="48000", rows_total="120000", rows_per_s="2000", committed="48000",
         bad_rows="0")
    _job(store, "5eed0000000000000000000000000s01", "sleep", "dave", "running", t + 2800,
         started=repr(t + 2801), progress="35", message="sleeping, 58s left")
    _job(store, "fa11ed00000000000000000000000s02", "sleep", "bob", "failed", t + 2700,
         started=repr(t + 2701), finished=repr(t + 2705), exit_code="2", progress="100",
         message="ending with 2 [exited with code 2]", error="exited with code 2",
         host="node-b")
    out = store.keys.output("fa11ed00000000000000000000000s02")
    lines = [f"step {i}: sleeping" for i in range(1, 31)] + [
        "Traceback (most recent call last):",
        '  File "/opt/jobs/sleep.py", line 31, in <module>',
        "    raise SystemExit(main())",
        '  File "/opt/jobs/sleep.py", line 27, in main',
        '    check(params["seconds"])',
        "ValueError: boom: the disk is full (step 31)",
        "ending with 2"]
    for n, line in enumerate(lines, start=1):
        store.r.xadd(out, {"n": str(n), "stream": "err" if 30 < n < 37 else "out", "line": line},
                     id=f"{int((t + 2701) * 1000)}-{n}")
    for i, (action, job_id, detail) in enumerate([
            ("launch", "9c0ffee000000000000000000000qc01", "qc-files"),
            ("launch", "1a5e47000000000000000000000ins01", "insert-rows"),
            ("kill", "ki11ed00000000000000000000000s03", "console"),
            ("retry", "fa11ed00000000000000000000000s02", "new job 5eed0000000000000000000000000s01"),
            ("cleanup", "*", "removed 120 jobs older than 604800s")]):
        store.r.xadd(store.keys.audit_stream, {
            "action": action, "job_id": job_id, "detail": detail, "at": repr(t + 2000 + 300 * i),
            "by_user": ["alice", "carol", "ops", "ops", "root"][i],
            "by_host": "console-1.example.org"}, id=f"{int((t + 2000 + 300 * i) * 1000)}-0")
    _job(store, "c0ffee00000000000000000000000qc2", "qc-files", "bob", "completed", t + 2600,
         started=repr(t + 2601), finished=repr(t + 2603), exit_code="0", progress="100",
         message="passed: 1 file", errors="0", host="node-b")
    _job(store, "bad0e7000000000000000000000qc003", "qc-files", "alice", "completed", t + 2500,
         started=repr(t + 2501), finished=repr(t + 2504), exit_code="0", progress="100",
         message="11 errors in 3 files (4 numeric, 2 fields, 2 missing)", errors="11")
    _job(store, "dead00000000000000000000000000l1", "insert-rows", "carol", "lost", t + 2400,
         started=repr(t + 2401), progress="12", message="supervisor stopped answering")
    _job(store, "ki11ed00000000000000000000000s03", "sleep", "erin", "killed", t + 2300,
         started=repr(t + 2301), finished=repr(t + 2320), exit_code="-15", progress="30",
         message="killed (SIGTERM): sleeping, 40s left")
    _job(store, "9ueued00000000000000000000000s04", "sleep", "erin", "queued", t + 2200)
    _job(store, "0ldjob00000000000000000000000x01", "reindex", "bob", "success", t + 2100,
         started=repr(t + 2101), finished=repr(t + 2190), message="legacy producer job")
    store.r.hset(store.keys.job("broken0000000000000000000000000b"),
                 mapping={"job_id": "broken0000000000000000000000000b", "status": "running",
                          "job_type": "qc-files", "user_id": "alice", "created": "soon",
                          "progress": "250", "message": b"caf\xe9 \xff bytes"})
    store.r.zadd(store.keys.jobs_index, {"broken0000000000000000000000000b": t + 2000})
    for i in range(14):
        _job(store, f"01d{i:05d}000000000000000000000000"[:32], "sleep", ["alice", "bob", "carol"][i % 3],
             "completed", t + 1000 - i * 60, started=repr(t + 1001 - i * 60),
             finished=repr(t + 1030 - i * 60), exit_code="0", progress="100", message="done")


def seed_gn2(store: Store) -> None:
    """GeneNetwork2's jobs, as its runner writes them: no index, a verdict beside `status`."""
    from tests.producers import gn2_job, gn2_manager

    gn2_job(store.r, prefix=store.prefix, job_id="f0e1d2c3-0000-4000-8000-00000000a001",
            stdout="loading HC_M2_0606_P\ncomputing correlations for 41,000 traits\n",
            stderr="Traceback (most recent call last):\n  File \"scripts/corr.py\", line 88, "
                   "in compute\nValueError: trait 1427384_at has no values\n")
    gn2_job(store.r, prefix=store.prefix, job_id="a0b1c2d3-0000-4000-8000-00000000a002",
            status="running", verdict=None, return_code=None, stdout="loading BXD genotypes\n")
    gn2_manager(store.r, store.prefix)


async def loaded(pilot: Pilot) -> None:
    app = pilot.app
    for _ in range(200):
        if app.loaded_all and app.index.jobs:  # type: ignore[attr-defined]
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def press(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await loaded(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.05)
        await pilot.pause(0.4)
    return run


async def disconnected(pilot: Pilot) -> None:
    for _ in range(100):
        if pilot.app.link_state and not pilot.app.link_state[0]:  # type: ignore[attr-defined]
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


@dataclass(frozen=True)
class Scene:
    name: str
    size: tuple[int, int]
    run_before: Callable[[Pilot], Awaitable[None]]
    read_only: bool = False
    user: str | None = None
    down: bool = False
    #: Added to the prefix: scenes of another producer's jobs (seeded by `seed_gn2`).
    suffix: str = ""


SCENES = [
    # the table
    Scene("table_80x24", (80, 24), press()),
    Scene("table_120x40", (120, 40), press()),
    Scene("table_200x50", (200, 50), press()),
    Scene("user_filter", (100, 30), press(), user="alice"),
    Scene("text_filter", (100, 30), press("slash", *"insert", "enter")),
    Scene("filter_tokens_80x24", (80, 24), press("slash", *"type:qc status:running", "enter")),
    Scene("marks_80x24", (80, 24), press("space", "space", "down", "space")),
    Scene("paused_80x24", (80, 24), press("p")),
    # drill-down
    Scene("qc_drilldown", (120, 40), press("enter")),
    Scene("qc_drilldown_80x24", (80, 24), press("enter")),
    Scene("qc_child", (120, 40), press("enter", "down", "down", "down")),
    Scene("qc_child_80x24", (80, 24), press("enter", "down", "down", "down")),
    Scene("insert_progress", (100, 30), press("down", "enter")),
    Scene("output_search", (120, 40), press("down", "down", "down", "enter", "slash",
                                            *"sleep.py", "enter")),
    Scene("output_search_80x24", (80, 24), press("down", "down", "down", "enter", "e")),
    # dialogs
    Scene("launcher_error", (120, 40), press("l", "ctrl+s")),
    Scene("launcher_error_80x24", (80, 24), press("l", "ctrl+s")),
    Scene("kill_confirm", (80, 24), press("down", "down", "k")),
    Scene("kill_matching_80x24", (80, 24), press("slash", *"user:alice", "enter", "K")),
    Scene("cleanup_confirm_80x24", (80, 24), press("X", *"30m", "enter")),
    Scene("columns_80x24", (80, 24), press("C")),
    Scene("help", (80, 24), press("question_mark")),
    # views
    Scene("hosts_80x24", (80, 24), press("h")),
    Scene("hosts_120x40", (120, 40), press("h")),
    Scene("pulse_80x24", (80, 24), press("s")),
    Scene("pulse_120x40", (120, 40), press("s")),
    Scene("audit_80x24", (80, 24), press("a")),
    Scene("audit_120x40", (120, 40), press("a")),
    # states
    Scene("disconnected", (80, 24), disconnected, down=True),
    Scene("read_only", (80, 24), press(), read_only=True),
    # GeneNetwork2's job that failed by its `completion-status`, its stderr in the output pane.
    Scene("gn2_failed", (120, 40), press("enter", "down"), suffix="-gn2"),
]


def make_app(scene: Scene, url: str, prefix: str) -> JobsApp:
    import os

    os.environ["LOGNAME"] = "operator"  # the launcher's default user, same on every machine
    if scene.down:
        url = "redis://ops:hunter2@127.0.0.1:1/0"
    config = Config(url, prefix + scene.suffix, read_only=scene.read_only)
    # Default settings whatever the user running the tests has saved.
    return JobsApp(config, user=scene.user, clock=lambda: NOW, server_label=LABEL,
                   poll_interval=3600, tick=0,
                   settings_path=Path(tempfile.gettempdir()) / "gn-jobs-scenes" / "none.json")


def main() -> None:
    """Render every scene to OUTDIR/<name>.svg against a throw-away server."""
    import asyncio
    import sys

    from gn_jobs_tui.core.server import EmbeddedServer

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        srv = EmbeddedServer(Path(tmp) / "s")
        srv.ensure()
        try:
            store = Store.from_url(srv.url, "scenes")
            seed(store)
            seed_gn2(Store.from_url(srv.url, "scenes-gn2"))
            for scene in SCENES:
                app = make_app(scene, srv.url, "scenes")

                async def shoot(app: JobsApp = app, scene: Scene = scene) -> None:
                    async with app.run_test(size=scene.size) as pilot:
                        await scene.run_before(pilot)
                        (out / f"{scene.name}.svg").write_text(app.export_screenshot(
                            title=f"gn-jobs: {scene.name.replace('_', ' ')}"))

                asyncio.run(shoot())
                print(f"wrote {out / scene.name}.svg")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
