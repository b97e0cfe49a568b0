"""What every benchmark shares: a throw-away server, data, timing, reporting."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, job_fields
from tests.leftovers import end_leftovers

RESULTS = Path(__file__).parent / "results"
FIGURES: dict[str, dict[str, object]] = {}
#: Every process a benchmark starts (servers, supervisors, jobs) inherits this mark.
RUN_MARK = "GN_JOBS_BENCH_RUN"
_guarded = False


def guard() -> None:
    """Make this process a benchmark run: what it starts is marked, SIGTERM unwinds (servers
    stop), and at exit a process left running fails the run (exit 1), as the suite's fixture
    does. Called by `server()`; nothing happens on import (the tests import `fill`)."""
    global _guarded
    if _guarded:
        return
    _guarded = True
    os.environ.setdefault(RUN_MARK, uuid.uuid4().hex)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    atexit.register(_nothing_left_running)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _nothing_left_running() -> None:
    ended = end_leftovers(RUN_MARK)
    if ended:
        print("left running, now killed:\n" + "\n".join(ended), file=sys.stderr, flush=True)
        os._exit(1)


@contextlib.contextmanager
def server() -> Iterator[EmbeddedServer]:
    guard()
    with tempfile.TemporaryDirectory(prefix="gjb") as tmp:
        os.environ.setdefault("XDG_STATE_HOME", str(Path(tmp) / "state"))
        srv = EmbeddedServer(Path(tmp) / "s")
        srv.ensure()
        try:
            yield srv
        finally:
            srv.stop()


def fill(store: Store, n: int, *, users: int = 20, t0: float = 1_700_000_000.0) -> list[str]:
    """N jobs in the contract's layout, written in pipelined batches."""
    ids: list[str] = []
    statuses = ["completed", "failed", "running", "queued", "killed"]
    for start in range(0, n, 5000):
        with store.r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 5000)):
                job_id = f"{i:08x}" + "0" * 24
                f = job_fields(job_id, "sleep", f"user{i % users}", ["python", "-m", "x"],
                               {"seconds": 1}, created=t0 + i)
                f.update(status=statuses[i % 5], started=repr(t0 + i + 1), progress="50",
                         host="node-a", message=f"step {i}")
                pipe.hset(store.keys.job(job_id), mapping=f)
                # The indexes the launcher keeps: all jobs, the user's, ids, the status's.
                for cmd in store._index_cmds(job_id, f["user_id"], t0 + i, f["status"]):
                    pipe.execute_command(*cmd)
                ids.append(job_id)
            pipe.execute()
    return ids


def server_calls(client: Any) -> int:
    """Every command the server has run (those inside scripts too), INFO itself left out."""
    return sum(int(v["calls"]) for k, v in client.info("commandstats").items()
               if k != "cmdstat_info")


def commands_spent(client: Any, fn: Callable[[], object]) -> int:
    """Server commands `fn` cost: counts, not times (nothing else may use the server)."""
    before = server_calls(client)
    fn()
    return server_calls(client) - before


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of `repeat` runs, in seconds (least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(name: str, value: float, unit: str, *, target: str = "", ok: bool | None = None,
           note: str = "") -> None:
    verdict = "" if ok is None else ("  [meets target]" if ok else "  [MISSES target]")
    tgt = f"  (target {target})" if target else ""
    print(f"{name:<58} {value:>12.3f} {unit:<8}{tgt}{verdict}{('  ' + note) if note else ''}",
          flush=True)
    FIGURES[name] = {"value": value, "unit": unit, "target": target, "ok": ok, "note": note}


def save() -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(FIGURES)
    path.write_text(json.dumps(existing, indent=1))
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
