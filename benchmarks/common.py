"""What every benchmark shares: a throw-away server, data, timing, reporting."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from gn_jobs_tui.core.server import EmbeddedServer
from gn_jobs_tui.core.store import Store, job_fields

RESULTS = Path(__file__).parent / "results"
FIGURES: dict[str, dict[str, object]] = {}
#: Every process a benchmark starts (servers, supervisors, jobs) inherits this mark.
RUN_MARK = "GN_JOBS_BENCH_RUN"
os.environ.setdefault(RUN_MARK, uuid.uuid4().hex)


def ours() -> list[psutil.Process]:
    """Live processes this benchmark run started (they carry its mark), but not us."""
    mark, me, found = os.environ[RUN_MARK], os.getpid(), []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != me and proc.environ().get(RUN_MARK) == mark and \
                    proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@atexit.register
def _nothing_left_running() -> None:
    """As the test suite's fixture: a benchmark that leaves a process behind fails (exit 1)."""
    deadline = time.monotonic() + 20  # supervisors finishing their last writes
    left = ours()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = ours()
    if not left:
        return
    for proc in left:
        try:
            print(f"left running, now killed: {proc.pid} {' '.join(proc.cmdline())[:120]}",
                  file=sys.stderr)
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    sys.stderr.flush()
    os._exit(1)


@contextlib.contextmanager
def server() -> Iterator[EmbeddedServer]:
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
